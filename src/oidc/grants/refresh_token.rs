//! grant_type=refresh_token (RFC 6749 §6) with rotation (OAuth 2.0 Security BCP §4.14.2).
//!
//! Every use rotates: the presented token is marked rotated and a successor (same family, same
//! scope, sliding expiry capped by the family's absolute expiry) is issued. The successor is
//! also kept sealed with the master key for `refresh_token_reuse_grace` seconds (and no
//! longer: the minute sweep clears it after the same grace), so a second request with the
//! same token inside the grace (parallel tabs, a retried request) receives the same successor
//! rather than logging the user out — but only while that successor has not been used
//! itself. Any other reuse is treated as theft: the whole family and its access tokens are
//! revoked, the answer is invalid_grant, and the audit log records it.

use crate::clock::UnixTime;
use crate::crypto::secret::{new_refresh_token, ordered_id, refresh_token_key};
use crate::domain::claims::{self, Target};
use crate::domain::scope;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::{scope_list, user_may_use};
use crate::oidc::mint::{Lifetimes, Minting, UserGrant};
use crate::state::AppState;
use crate::store;
use crate::store::audit::NewEvent;
use crate::store::clients::Client;
use crate::store::tokens::{AccessRecord, RefreshGrant, RefreshRecord};

fn seal_context(old_hash: &str) -> String {
    format!("refresh_successor:{old_hash}")
}

/// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
/// resource owner, and if omitted is treated as equal to the scope originally granted".
/// Scopes the server does not know are dropped first, exactly as at authorization
/// (`scope::grantable`): relying parties such as mod_auth_openidc resend their configured
/// scopes (`phone`, say) on every refresh, and were never granted them.
pub fn narrow_scope(
    granted: &str,
    requested: Option<&[String]>,
    custom: &[String],
) -> Result<Vec<String>, OAuthError> {
    let granted = scope_list(granted);
    let Some(requested) = requested else {
        return Ok(granted);
    };
    let known: Vec<String> = requested
        .iter()
        .filter(|s| scope::is_known(s, custom))
        .cloned()
        .collect();
    if let Some(extra) = known.iter().find(|s| !granted.contains(s)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the scope {extra} was not granted to this refresh token"),
        ));
    }
    Ok(known)
}

/// The custom claim scopes, read only when the request names a scope that is not built in.
fn custom_scopes_for(
    conn: &rusqlite::Connection,
    requested: Option<&[String]>,
) -> Result<Vec<String>, crate::store::StoreError> {
    if requested.is_none_or(|r| r.iter().all(|s| scope::is_built_in(s))) {
        return Ok(Vec::new());
    }
    Ok(claims::custom_scopes(&store::users::claim_scopes(conn)?))
}

/// Why a presented refresh token cannot be used as it is (besides rotation).
pub fn usable(rec: &RefreshRecord, client_id: &str, now: UnixTime) -> Result<(), OAuthError> {
    if rec.grant.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if rec.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    if rec.expires_at <= now || rec.grant.family_expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    Ok(())
}

enum Refreshed {
    Issued(Box<UserGrant>),
    Reused,
}

/// What the rotation writes, made before the transaction: the successor, its key and sealed
/// copy (for a parallel request within the grace), and the new access token's `jti`.
struct Successor {
    token: String,
    hash: String,
    sealed: String,
    jti: String,
}

/// Rotates `refresh_token` for `client` and records the new access token, in one
/// transaction; returns what the tokens say (the successor, or the same successor again to a
/// parallel request within the grace).
pub async fn refresh(
    state: &AppState,
    client: &Client,
    minting: &Minting,
    refresh_token: &str,
    scope: Option<Vec<String>>,
    now: UnixTime,
) -> Result<UserGrant, OAuthError> {
    let old_hash = refresh_token_key(refresh_token);
    let token = new_refresh_token();
    let next = Successor {
        hash: refresh_token_key(&token),
        sealed: state
            .master_key
            .seal(&seal_context(&old_hash), token.as_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, "sealing refresh successor");
                OAuthError::server_error()
            })?,
        token,
        jti: ordered_id(),
    };
    let rules = Rules {
        grace: i64::try_from(state.config.refresh_token_reuse_grace.as_secs()).unwrap_or(0),
        life: minting.life,
        master: state.master_key.clone(),
    };
    let c = client.clone();
    let outcome = state
        .db
        .try_write(move |conn| rotate(conn, &c, &rules, &old_hash, next, scope, now))
        .await?;
    match outcome {
        Refreshed::Issued(decided) => Ok(*decided),
        Refreshed::Reused => {
            tracing::warn!(client = %client.id, "rotated refresh token reused; family revoked");
            Err(OAuthError::invalid_grant(
                "the refresh token was already used; its family is revoked",
            ))
        }
    }
}

/// What a rotation is decided by besides the token.
struct Rules {
    grace: i64,
    life: Lifetimes,
    master: std::sync::Arc<crate::crypto::master_key::MasterKey>,
}

/// The rotation's transaction: find the presented token, rotate it (or hand out its unused
/// successor within the grace, or treat the reuse as theft), then load the user and record
/// the access token.
fn rotate(
    conn: &rusqlite::Connection,
    c: &Client,
    rules: &Rules,
    old_hash: &str,
    next: Successor,
    scope: Option<Vec<String>>,
    now: UnixTime,
) -> Result<Refreshed, OAuthError> {
    let Some(rec) = store::tokens::refresh_by_hash(conn, old_hash)? else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    };
    usable(&rec, &c.id, now)?;
    let custom = custom_scopes_for(conn, scope.as_deref())?;
    let (token, grant) = match rec.rotated_at {
        None => {
            // Narrow first: a refused scope must not rotate (the Err rolls back anyway).
            narrow_scope(&rec.grant.scope, scope.as_deref(), &custom)?;
            let expires_at = now.saturating_add(rules.life.refresh);
            store::tokens::insert_successor(conn, &next.hash, &rec.grant, now, expires_at)?;
            if !store::tokens::mark_rotated(conn, old_hash, &next.hash, &next.sealed, now)? {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used",
                ));
            }
            (next.token, rec.grant)
        }
        Some(rotated_at) => match unused_successor(conn, rules, &rec, old_hash, rotated_at, now)? {
            Some(successor) => successor,
            None => {
                // OAuth 2.0 Security BCP §4.14.2: a rotated token used again means it
                // leaked; revoke the whole family.
                store::tokens::revoke_family(conn, &rec.grant.family_id, now)?;
                store::audit::record(
                    conn,
                    &NewEvent {
                        kind: "token.refresh_reused",
                        user_id: Some(&rec.grant.user_id),
                        client_id: Some(&c.id),
                        detail: Some(serde_json::json!({"family_id": rec.grant.family_id})),
                        ..Default::default()
                    },
                    now,
                )?;
                return Ok(Refreshed::Reused);
            }
        },
    };
    let scopes = narrow_scope(&grant.scope, scope.as_deref(), &custom)?;
    let decided = record(conn, c, grant, scopes, token, next.jti, rules.life, now)?;
    Ok(Refreshed::Issued(Box::new(decided)))
}

/// The successor of a token rotated `rotated_at`, when this is a parallel request within the
/// grace: the successor is still sealed, and has itself been neither rotated nor revoked.
/// Once it was used, the old token can only be a stolen copy (`None`).
fn unused_successor(
    conn: &rusqlite::Connection,
    rules: &Rules,
    rec: &RefreshRecord,
    old_hash: &str,
    rotated_at: UnixTime,
    now: UnixTime,
) -> Result<Option<(String, RefreshGrant)>, OAuthError> {
    let within_grace = now.saturating_sub(rotated_at) <= rules.grace;
    let previous = rec
        .successor_sealed
        .as_deref()
        .filter(|_| within_grace)
        .and_then(|s| rules.master.open(&seal_context(old_hash), s).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some(previous) = previous else {
        return Ok(None);
    };
    Ok(
        store::tokens::refresh_by_hash(conn, &refresh_token_key(&previous))?
            .filter(|next| next.revoked_at.is_none() && next.rotated_at.is_none())
            .map(|next| (previous, next.grant)),
    )
}

/// Loads the user (who must still be allowed to use the client) and records the new access
/// token; what the tokens say. OIDC Core §12.2: a refreshed ID token keeps auth_time (and sid)
/// and has no nonce.
#[allow(clippy::too_many_arguments)] // one transaction's facts, passed on once
fn record(
    conn: &rusqlite::Connection,
    c: &Client,
    grant: RefreshGrant,
    scopes: Vec<String>,
    token: String,
    jti: String,
    life: Lifetimes,
    now: UnixTime,
) -> Result<UserGrant, OAuthError> {
    let id_token_claims = claims::requested(grant.claims.as_deref(), Target::IdToken);
    let data = match claims::load(conn, &grant.user_id, &c.id, &scopes, &id_token_claims)? {
        Some(d) if user_may_use(conn, c, &d)? => d,
        _ => {
            return Err(OAuthError::invalid_grant(
                "the user no longer exists or may not use this client",
            ));
        }
    };
    store::tokens::insert_access(
        conn,
        &AccessRecord {
            jti: jti.clone(),
            client_id: c.id.clone(),
            user_id: Some(grant.user_id.clone()),
            family_id: Some(grant.family_id.clone()),
            code_hash: None,
            sid: grant.sid.clone(),
            scope: scopes.join(" "),
            claims: grant.claims.clone(),
            issued_at: now,
            expires_at: now.saturating_add(life.access),
            revoked_at: None,
        },
    )?;
    Ok(UserGrant {
        jti,
        data,
        scopes,
        nonce: None,
        auth_time: grant.auth_time,
        sid: grant.sid,
        amr: grant.amr,
        acr: grant.acr,
        id_token_claims,
        refresh_token: Some(token),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec() -> RefreshRecord {
        RefreshRecord {
            grant: RefreshGrant {
                family_id: "f".into(),
                client_id: "app".into(),
                user_id: "u".into(),
                sid: None,
                scope: "openid email offline_access".into(),
                claims: None,
                auth_time: 0,
                amr: vec![],
                acr: None,
                offline: true,
                code_hash: None,
                family_expires_at: 1000,
            },
            expires_at: 500,
            rotated_at: None,
            successor_sealed: None,
            revoked_at: None,
        }
    }

    #[test]
    fn requested_scope_may_only_narrow() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            narrow_scope("openid email", Some(&s(&["email"])), &[]).unwrap(),
            vec!["email"]
        );
        assert_eq!(
            narrow_scope("openid email", None, &[]).unwrap(),
            vec!["openid", "email"]
        );
        let e = narrow_scope("openid email", Some(&s(&["openid", "profile"])), &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        let custom = vec!["nextcloud".to_string()];
        let e = narrow_scope("openid", Some(&s(&["openid", "nextcloud"])), &custom).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope, "a known scope not granted");
    }

    #[test]
    fn unknown_scopes_are_ignored_at_refresh_as_at_authorization() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // mod_auth_openidc resends its OIDCScope, `phone` included, on every refresh.
        assert_eq!(
            narrow_scope(
                "openid email profile",
                Some(&s(&["openid", "email", "profile", "phone"])),
                &[]
            )
            .unwrap(),
            vec!["openid", "email", "profile"]
        );
    }

    #[test]
    fn another_clients_revoked_or_expired_token_is_invalid_grant() {
        assert!(usable(&rec(), "app", 100).is_ok());
        assert_eq!(
            usable(&rec(), "other", 100).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        let mut r = rec();
        r.revoked_at = Some(1);
        assert!(usable(&r, "app", 100).is_err());
        assert!(usable(&rec(), "app", 500).is_err(), "sliding expiry");
        let mut r = rec();
        r.expires_at = 2000;
        assert!(usable(&r, "app", 1000).is_err(), "absolute expiry");
    }
}
