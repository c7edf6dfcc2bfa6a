//! Passkey ceremonies with webauthn-rs: registration of discoverable credentials, passwordless
//! (discoverable) sign-in, and a passkey as a second factor after the password.
//!
//! The relying party id is the issuer's host and the origin is the issuer's origin. Ceremony
//! state is kept server-side in SQLite (`webauthn_ceremonies`), single use and short-lived, so
//! it survives restarts and works behind several processes. No actix here: handlers live in
//! `login::passkey` and `account::passkeys`.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::store::passkeys::StoredPasskey;
use crate::store::users::User;
use crate::store::{self, Db, StoreError};

/// How long a ceremony may take (the browser's own timeout is shorter).
pub const CEREMONY_TTL: i64 = 5 * 60;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys are not available with this issuer ({0})")]
    Unavailable(String),
    #[error("this passkey request expired or was already used")]
    UnknownCeremony,
    #[error("this passkey is not registered here")]
    UnknownCredential,
    #[error("the passkey could not be verified: {0}")]
    Rejected(WebauthnError),
    #[error("the passkey's signature counter went backwards: it may have been cloned")]
    PossibleClone { user_id: String, passkey_id: String },
    #[error("this passkey belongs to another account")]
    WrongUser,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the relying party from the issuer: rp id = host, origin = the issuer's origin.
pub fn relying_party(issuer: &str, name: &str) -> Result<Webauthn, PasskeyError> {
    let url = Url::parse(issuer).map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
    let host = url
        .host_str()
        .ok_or_else(|| PasskeyError::Unavailable("no host".into()))?
        .to_string();
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| PasskeyError::Unavailable(e.to_string()))
}

/// The WebAuthn user handle: our user ids are 128-bit hex, which is a UUID's size.
pub fn user_handle(user_id: &str) -> Option<Uuid> {
    Uuid::try_parse(user_id).ok()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

/// RFC 8176 method for a passkey: `swk` when it can be synced (backup eligible, a software
/// key in a password manager), `hwk` when bound to one device.
pub fn amr_for(backup_eligible: bool) -> &'static str {
    if backup_eligible { "swk" } else { "hwk" }
}

// ---- registration --------------------------------------------------------------------------

/// Starts registering a discoverable passkey for `user`; returns the ceremony id and options.
pub async fn start_registration(
    wa: &Webauthn,
    db: &Db,
    user: &User,
    now: UnixTime,
) -> Result<(String, CreationChallengeResponse), PasskeyError> {
    let handle = user_handle(&user.id).ok_or(PasskeyError::UnknownCredential)?;
    let uid = user.id.clone();
    let existing = db
        .read(move |c| store::passkeys::list_for_user(c, &uid))
        .await?;
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (mut ccr, state) = wa
        .start_passkey_registration(handle, &user.username, user.shown_name(), Some(exclude))
        .map_err(PasskeyError::Rejected)?;
    // Discoverable (resident) credentials, so a later sign-in needs no username.
    if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
        sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        sel.require_resident_key = true;
    }
    let id = random_token();
    let (hash, state_json, uid) = (hash_token(&id), to_json(&state)?, user.id.clone());
    db.write(move |c| {
        store::passkeys::put_ceremony(
            c,
            &hash,
            "register",
            Some(&uid),
            &state_json,
            now,
            now + CEREMONY_TTL,
        )
    })
    .await?;
    Ok((id, ccr))
}

/// Finishes a registration for `user_id`; stores the passkey named `name`.
pub async fn finish_registration(
    wa: &Webauthn,
    db: &Db,
    user_id: &str,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    name: &str,
    now: UnixTime,
) -> Result<StoredPasskey, PasskeyError> {
    let hash = hash_token(ceremony);
    let taken = db
        .write(move |c| store::passkeys::take_ceremony(c, &hash, "register", now))
        .await?;
    let Some((Some(owner), state_json)) = taken else {
        return Err(PasskeyError::UnknownCeremony);
    };
    if owner != user_id {
        return Err(PasskeyError::WrongUser);
    }
    let state: PasskeyRegistration = serde_json::from_str(&state_json).map_err(corrupt)?;
    let passkey = wa
        .finish_passkey_registration(credential, &state)
        .map_err(PasskeyError::Rejected)?;
    let json: serde_json::Value = serde_json::to_value(&passkey).map_err(corrupt)?;
    let cred = json.get("cred");
    let flag = |k: &str| {
        cred.and_then(|c| c.get(k))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let stored = StoredPasskey {
        id: random_id(),
        user_id: user_id.to_string(),
        credential_id: credential.id.clone(),
        name: clean_name(name),
        passkey: json.to_string(),
        sign_count: cred
            .and_then(|c| c.get("counter"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
        backup_eligible: flag("backup_eligible"),
        backup_state: flag("backup_state"),
        created_at: now,
        last_used_at: None,
    };
    let s2 = stored.clone();
    db.write(move |c| store::passkeys::insert(c, &s2)).await?;
    Ok(stored)
}

/// A passkey name as shown in lists: trimmed, 1–64 characters.
pub fn clean_name(name: &str) -> String {
    let n: String = name.trim().chars().take(64).collect();
    if n.is_empty() { "Passkey".into() } else { n }
}

// ---- authentication ------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
enum AuthState {
    /// Passwordless: the browser picks a discoverable credential.
    Discoverable(DiscoverableAuthentication),
    /// Second factor: one of this user's passkeys.
    ForUser(PasskeyAuthentication),
}

/// Starts a passwordless sign-in. `conditional` asks for autofill (conditional mediation);
/// otherwise the browser shows its modal passkey picker.
pub async fn start_discoverable(
    wa: &Webauthn,
    db: &Db,
    conditional: bool,
    now: UnixTime,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    let (mut rcr, state) = wa
        .start_discoverable_authentication()
        .map_err(PasskeyError::Rejected)?;
    if !conditional {
        rcr.mediation = None;
    }
    put_auth(db, None, AuthState::Discoverable(state), now)
        .await
        .map(|id| (id, rcr))
}

/// Starts a second-factor confirmation with one of `user_id`'s passkeys.
pub async fn start_for_user(
    wa: &Webauthn,
    db: &Db,
    user_id: &str,
    now: UnixTime,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    let uid = user_id.to_string();
    let stored = db
        .read(move |c| store::passkeys::list_for_user(c, &uid))
        .await?;
    let keys: Vec<Passkey> = stored
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey).ok())
        .collect();
    if keys.is_empty() {
        return Err(PasskeyError::UnknownCredential);
    }
    let (rcr, state) = wa
        .start_passkey_authentication(&keys)
        .map_err(PasskeyError::Rejected)?;
    put_auth(db, Some(user_id), AuthState::ForUser(state), now)
        .await
        .map(|id| (id, rcr))
}

async fn put_auth(
    db: &Db,
    user_id: Option<&str>,
    state: AuthState,
    now: UnixTime,
) -> Result<String, PasskeyError> {
    let id = random_token();
    let (hash, json, uid) = (
        hash_token(&id),
        to_json(&state)?,
        user_id.map(str::to_string),
    );
    db.write(move |c| {
        store::passkeys::put_ceremony(
            c,
            &hash,
            "authenticate",
            uid.as_deref(),
            &json,
            now,
            now + CEREMONY_TTL,
        )
    })
    .await?;
    Ok(id)
}

/// A verified passkey assertion.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: User,
    pub passkey_id: String,
    /// `hwk` or `swk`.
    pub method: &'static str,
}

/// Finishes an authentication ceremony: the challenge is used up whatever the outcome; the
/// credential must be registered (to the expected user, for a second factor); the signature,
/// origin, RP id, user verification and counter are checked by webauthn-rs; the new counter and
/// backup flags are stored. A counter that goes backwards is refused (possible clone).
pub async fn finish_authentication(
    wa: &Webauthn,
    db: &Db,
    ceremony: &str,
    credential: &PublicKeyCredential,
    now: UnixTime,
) -> Result<Verified, PasskeyError> {
    let hash = hash_token(ceremony);
    let taken = db
        .write(move |c| store::passkeys::take_ceremony(c, &hash, "authenticate", now))
        .await?;
    let Some((expected_user, state_json)) = taken else {
        return Err(PasskeyError::UnknownCeremony);
    };
    let state: AuthState = serde_json::from_str(&state_json).map_err(corrupt)?;
    let cred_id = credential.id.clone();
    let found = db
        .read(move |c| store::passkeys::by_credential_id(c, &cred_id))
        .await?;
    let Some(stored) = found else {
        return Err(PasskeyError::UnknownCredential);
    };
    if expected_user
        .as_deref()
        .is_some_and(|u| u != stored.user_id)
    {
        return Err(PasskeyError::WrongUser);
    }
    let mut passkey: Passkey = serde_json::from_str(&stored.passkey).map_err(corrupt)?;
    let result = match state {
        AuthState::Discoverable(s) => {
            // The user handle the authenticator returned must be the credential's owner.
            let (handle, _) = wa
                .identify_discoverable_authentication(credential)
                .map_err(PasskeyError::Rejected)?;
            if user_handle(&stored.user_id) != Some(handle) {
                return Err(PasskeyError::WrongUser);
            }
            wa.finish_discoverable_authentication_v2(credential, s, &passkey)
        }
        AuthState::ForUser(s) => wa.finish_passkey_authentication(credential, &s),
    };
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Err(PasskeyError::PossibleClone {
                user_id: stored.user_id,
                passkey_id: stored.id,
            });
        }
        Err(e) => return Err(PasskeyError::Rejected(e)),
    };
    passkey.update_credential(&result);
    let uid = stored.user_id.clone();
    let (pid, json) = (stored.id.clone(), to_json(&passkey)?);
    let (count, be, bs) = (
        i64::from(result.counter()),
        result.backup_eligible(),
        result.backup_state(),
    );
    let user = db
        .write(move |c| {
            store::passkeys::record_use(c, &pid, &json, count, be, bs, now)?;
            store::users::by_id(c, &uid)
        })
        .await?;
    let Some(user) = user else {
        return Err(PasskeyError::UnknownCredential);
    };
    if user.disabled {
        return Err(PasskeyError::Disabled);
    }
    Ok(Verified {
        user,
        passkey_id: stored.id,
        method: amr_for(result.backup_eligible()),
    })
}
