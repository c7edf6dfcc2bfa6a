//! A minimal software authenticator for tests: makes "none"-attestation ES256 credentials and
//! assertions exactly as the WebAuthn spec lays them out, so tests can also make them wrong
//! (another origin, another RP id, an old counter, an unknown key).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct SoftAuthenticator {
    key: EcdsaKeyPair,
    pub cred_id: Vec<u8>,
    pub counter: u32,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn cbor(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// Flags: user present, user verified, backup eligible and backed up (a synced passkey).
const FLAGS: u8 = 0x01 | 0x04 | 0x08 | 0x10;

impl SoftAuthenticator {
    /// Answers `navigator.credentials.create(options)`; `options` is the server's JSON
    /// (`{"publicKey": …}`). Returns the authenticator and the credential JSON to send back.
    pub fn register(options: &Value, origin: &str) -> (Self, Value) {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap().to_string();
        let user_handle = URL_SAFE_NO_PAD
            .decode(pk["user"]["id"].as_str().unwrap())
            .unwrap();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let cred_id: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
        let point = key.public_key().as_ref().to_vec(); // 0x04 || x || y
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point[1..33].to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point[33..65].to_vec()),
            ),
        ]);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(FLAGS | 0x40); // attested credential data included
        auth_data.extend_from_slice(&1u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&cred_id);
        auth_data.extend_from_slice(&cbor(&cose));
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false
        })
        .to_string();
        let credential = json!({
            "id": b64(&cred_id),
            "rawId": b64(&cred_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&cbor(&attestation)),
                "clientDataJSON": b64(client_data.as_bytes()),
            },
            "extensions": {}
        });
        (
            Self {
                key,
                cred_id,
                counter: 1,
                user_handle,
                rp_id,
            },
            credential,
        )
    }

    /// Answers `navigator.credentials.get(options)` with the next counter value.
    pub fn assert(&mut self, options: &Value, origin: &str) -> Value {
        self.counter += 1;
        let rp_id = self.rp_id.clone();
        self.assert_with(options, origin, &rp_id, self.counter)
    }

    /// An assertion with everything chosen by the test.
    pub fn assert_with(&self, options: &Value, origin: &str, rp_id: &str, counter: u32) -> Value {
        let pk = &options["publicKey"];
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(FLAGS);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false
        })
        .to_string();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(client_data.as_bytes()));
        let sig = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(client_data.as_bytes()),
                "signature": b64(sig.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {}
        })
    }
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    b[0]
}
