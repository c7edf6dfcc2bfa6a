//! argon2id password hashing on a bounded blocking pool.
//!
//! Each hash takes `argon2_memory_kib` of memory and ~20 ms of CPU, so at most
//! `argon2_concurrency` run at once; further sign-ins queue on the semaphore instead of
//! exhausting memory, and the work never runs on async worker threads.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::CryptoError;
use super::secret::Secret;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist so an
    /// unknown username costs the same time as a known one. Made on first use (on the
    /// blocking pool), not at start-up.
    dummy: Arc<std::sync::OnceLock<String>>,
}

/// Outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with weaker parameters than configured: store a fresh hash.
    YesRehash,
}

impl PasswordHasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: u32,
    ) -> Result<Self, CryptoError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| CryptoError::Password(e.to_string()))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1) as usize)),
            dummy: Arc::default(),
        })
    }

    /// Hashes on the blocking pool, waiting for a permit first.
    pub async fn hash(&self, password: Secret<String>) -> Result<String, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CryptoError::PoolClosed)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, password.expose()))
            .await
            .map_err(|e| CryptoError::Password(e.to_string()))?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when there is none.
    pub async fn verify(
        &self,
        password: Secret<String>,
        phc: Option<String>,
    ) -> Result<Verified, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CryptoError::PoolClosed)?;
        let params = self.params.clone();
        let real = phc.is_some();
        let dummy = self.dummy.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let phc = match phc {
                Some(p) => p,
                None => dummy
                    .get_or_init(|| {
                        hash_blocking(&params, &super::secret::random_token()).unwrap_or_default()
                    })
                    .clone(),
            };
            verify_blocking(&params, password.expose(), &phc)
        })
        .await
        .map_err(|e| CryptoError::Password(e.to_string()))?;
        Ok(if real { ok } else { Verified::No })
    }

    /// Hash synchronously (CLI use, outside the server).
    pub fn hash_now(&self, password: &str) -> Result<String, CryptoError> {
        hash_blocking(&self.params, password)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Password(e.to_string()))
}

fn verify_blocking(params: &Params, password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified::No;
    };
    // Verify with the parameters recorded in the PHC string, then compare with the current ones.
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).map(|p| {
            p.m_cost() >= params.m_cost()
                && p.t_cost() >= params.t_cost()
                && p.p_cost() >= params.p_cost()
        }) == Ok(true);
    if current {
        Verified::Yes
    } else {
        Verified::YesRehash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1, 2).unwrap()
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = small();
        let phc = h.hash(Secret::new("correct horse".into())).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert_eq!(
            h.verify(Secret::new("correct horse".into()), Some(phc.clone()))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify(Secret::new("wrong".into()), Some(phc))
                .await
                .unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn unknown_user_is_refused_after_a_real_verification() {
        assert_eq!(
            small().verify(Secret::new("x".into()), None).await.unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn weaker_parameters_ask_for_a_rehash() {
        let weak = small();
        let phc = weak.hash(Secret::new("pw".into())).await.unwrap();
        let strong = PasswordHasher::new(128, 2, 1, 1).unwrap();
        assert_eq!(
            strong
                .verify(Secret::new("pw".into()), Some(phc))
                .await
                .unwrap(),
            Verified::YesRehash
        );
    }
}
