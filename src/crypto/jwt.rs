//! JWT signing and verification through `jsonwebtoken`, with signing done by the parsed key
//! pairs in `keys` (a custom `CryptoProvider`: the `EncodingKey` carries the `kid`, the
//! provider signs with the already-parsed aws-lc key). Verification is jsonwebtoken's own.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::CryptoError;
use super::key_pairs::{self, Alg};

struct RegistrySigner {
    alg: Algorithm,
    pair: std::sync::Arc<key_pairs::KeyPair>,
}

impl signature::Signer<Vec<u8>> for RegistrySigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.pair.sign(msg).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for RegistrySigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn signer_factory(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let kid = std::str::from_utf8(key.as_bytes())
        .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let pair =
        key_pairs::registered(kid).ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(RegistrySigner { alg: *alg, pair }))
}

static PROVIDER: std::sync::LazyLock<CryptoProvider> =
    std::sync::LazyLock::new(|| CryptoProvider {
        signer_factory,
        verifier_factory: jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory,
        key_utils: jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
            .key_utils
            .clone(),
    });

/// Installs the provider; call once at start (later calls are harmless).
pub fn install() {
    let provider: &'static CryptoProvider = &PROVIDER;
    let _ = provider.install_default();
}

/// Signs `claims` with the registered key `kid`, setting `typ` and `kid` in the header.
pub fn sign<T: Serialize>(
    claims: &T,
    kid: &str,
    alg: Alg,
    typ: &str,
) -> Result<String, CryptoError> {
    install();
    let mut header = Header::new(alg.jwt());
    header.kid = Some(kid.to_string());
    header.typ = Some(typ.to_string());
    let family_key = match alg {
        Alg::RS256 => EncodingKey::from_rsa_der(kid.as_bytes()),
        Alg::ES256 => EncodingKey::from_ec_der(kid.as_bytes()),
        Alg::EdDSA => EncodingKey::from_ed_der(kid.as_bytes()),
    };
    Ok(jsonwebtoken::encode(&header, claims, &family_key)?)
}
