//! Cryptography without actix or SQL: random tokens and hashing (`secret`), passwords
//! (`password`), the at-rest master key (`master_key`), signing keys (`keys`) and JWTs (`jwt`).

pub mod jwt;
pub mod key_pairs;
pub mod master_key;
pub mod password;
pub mod secret;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key generation failed")]
    KeyGeneration,
    #[error("sealed value could not be opened (wrong master key or corrupted data)")]
    Unseal,
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("password hashing pool is shut down")]
    PoolClosed,
    /// Every hashing thread is busy and the queue is full: try again shortly.
    #[error("password hashing queue is full")]
    PoolBusy,
}
