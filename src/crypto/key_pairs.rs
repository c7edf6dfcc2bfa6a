//! Signing key material: generation (aws-lc), public JWKs, and the parsed key pairs the JWT
//! signer uses. Keys are generated and stored as PKCS#8 DER; parsing an RSA key costs far
//! more than a hash, so parsed pairs are kept in a registry keyed by `kid` (see `jwt`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::CryptoError;

/// JOSE signing algorithms Portcullis signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// A parsed private key, ready to sign.
pub enum KeyPair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl KeyPair {
    pub fn from_pkcs8(alg: Alg, der: &[u8]) -> Result<Self, CryptoError> {
        Ok(match alg {
            Alg::RS256 => KeyPair::Rsa(
                aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|_| CryptoError::KeyGeneration)?,
            ),
            Alg::ES256 => KeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| CryptoError::KeyGeneration)?,
            ),
            Alg::EdDSA => KeyPair::Ed(
                Ed25519KeyPair::from_pkcs8(der).map_err(|_| CryptoError::KeyGeneration)?,
            ),
        })
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            KeyPair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| CryptoError::KeyGeneration)?;
                Ok(sig)
            }
            KeyPair::Ec(k) => Ok(k
                .sign(&SystemRandom::new(), message)
                .map_err(|_| CryptoError::KeyGeneration)?
                .as_ref()
                .to_vec()),
            KeyPair::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// The public JWK (RFC 7517) with `kid`, `alg` and `use`.
    pub fn public_jwk(&self, kid: &str, alg: Alg) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match self {
            KeyPair::Rsa(k) => {
                let p = k.public_key();
                json!({"kty": "RSA", "n": b64(p.modulus().big_endian_without_leading_zero()),
                       "e": b64(p.exponent().big_endian_without_leading_zero())})
            }
            KeyPair::Ec(k) => {
                // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
                let point = k.public_key().as_ref();
                let x = point.get(1..33).unwrap_or_default();
                let y = point.get(33..65).unwrap_or_default();
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
            }
            KeyPair::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), json!(kid));
            obj.insert("alg".into(), json!(alg.as_str()));
            obj.insert("use".into(), json!("sig"));
        }
        jwk
    }
}

/// A freshly generated key: PKCS#8 DER (to seal) and the parsed pair.
pub fn generate(alg: Alg) -> Result<(Vec<u8>, KeyPair), CryptoError> {
    let der: Vec<u8> = match alg {
        Alg::RS256 => {
            let k = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| CryptoError::KeyGeneration)?;
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k)
                .map_err(|_| CryptoError::KeyGeneration)?
                .as_ref()
                .to_vec()
        }
        Alg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| CryptoError::KeyGeneration)?
                .as_ref()
                .to_vec()
        }
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CryptoError::KeyGeneration)?
            .as_ref()
            .to_vec(),
    };
    let pair = KeyPair::from_pkcs8(alg, &der)?;
    Ok((der, pair))
}

/// Parsed private keys by `kid`, shared with the JWT signer.
static REGISTRY: LazyLock<RwLock<HashMap<String, Arc<KeyPair>>>> = LazyLock::new(Default::default);

pub fn register(kid: &str, pair: Arc<KeyPair>) {
    if let Ok(mut map) = REGISTRY.write() {
        map.insert(kid.to_string(), pair);
    }
}

pub fn registered(kid: &str) -> Option<Arc<KeyPair>> {
    REGISTRY.read().ok()?.get(kid).cloned()
}
