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
use crate::domain::claims::{self, Target, UserData};
use crate::domain::scope;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::{TokenResponse, UserTokens, scope_list, sign_user_tokens, user_may_use};
use crate::oidc::tokens::{self, Lifetimes, Subject};
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

struct Issued {
    token: String,
    grant: RefreshGrant,
    scopes: Vec<String>,
    data: UserData,
}

enum Refreshed {
    Issued(Box<Issued>),
    Reused,
}

pub async fn refresh(
    state: &AppState,
    client: &Client,
    refresh_token: &str,
    scope: Option<Vec<String>>,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let alg = tokens::signing_alg(client)?;
    let life = Lifetimes::of(&state.config, client);
    let grace = i64::try_from(state.config.refresh_token_reuse_grace.as_secs()).unwrap_or(0);
    let old_hash = refresh_token_key(refresh_token);
    let successor = new_refresh_token();
    let successor_hash = refresh_token_key(&successor);
    let sealed = state
        .master_key
        .seal(&seal_context(&old_hash), successor.as_bytes())
        .map_err(|e| {
            tracing::error!(error = %e, "sealing refresh successor");
            OAuthError::server_error()
        })?;
    let jti = ordered_id();
    let master = state.master_key.clone();
    let c = client.clone();
    let j = jti.clone();

    let outcome = state
        .db
        .try_write(move |conn| -> Result<Refreshed, OAuthError> {
            let Some(rec) = store::tokens::refresh_by_hash(conn, &old_hash)? else {
                return Err(OAuthError::invalid_grant("the refresh token is invalid"));
            };
            usable(&rec, &c.id, now)?;
            let custom = custom_scopes_for(conn, scope.as_deref())?;
            let (token, grant) = match rec.rotated_at {
                None => {
                    // Narrow first: a refused scope must not rotate (the Err rolls back anyway).
                    narrow_scope(&rec.grant.scope, scope.as_deref(), &custom)?;
                    store::tokens::insert_successor(
                        conn,
                        &successor_hash,
                        &rec.grant,
                        now,
                        now.saturating_add(life.refresh),
                    )?;
                    if !store::tokens::mark_rotated(conn, &old_hash, &successor_hash, &sealed, now)?
                    {
                        return Err(OAuthError::invalid_grant(
                            "the refresh token was already used",
                        ));
                    }
                    (successor, rec.grant)
                }
                Some(rotated_at) => {
                    let within_grace = now.saturating_sub(rotated_at) <= grace;
                    let previous = rec
                        .successor_sealed
                        .as_deref()
                        .filter(|_| within_grace)
                        .and_then(|s| master.open(&seal_context(&old_hash), s).ok())
                        .and_then(|b| String::from_utf8(b).ok());
                    let next = match &previous {
                        Some(p) => store::tokens::refresh_by_hash(conn, &refresh_token_key(p))?,
                        None => None,
                    };
                    match (previous, next) {
                        // The grace serves a parallel request with the token just rotated:
                        // only while its successor is itself unused. Once the successor
                        // was rotated (or revoked), the old token can only be a stolen copy.
                        (Some(p), Some(next))
                            if next.revoked_at.is_none() && next.rotated_at.is_none() =>
                        {
                            (p, next.grant)
                        }
                        _ => {
                            // OAuth 2.0 Security BCP §4.14.2: a rotated token used again
                            // means it leaked; revoke the whole family.
                            store::tokens::revoke_family(conn, &rec.grant.family_id, now)?;
                            store::audit::record(
                                conn,
                                &NewEvent {
                                    kind: "token.refresh_reused",
                                    user_id: Some(&rec.grant.user_id),
                                    client_id: Some(&c.id),
                                    detail: Some(
                                        serde_json::json!({"family_id": rec.grant.family_id}),
                                    ),
                                    ..Default::default()
                                },
                                now,
                            )?;
                            return Ok(Refreshed::Reused);
                        }
                    }
                }
            };
            let scopes = narrow_scope(&grant.scope, scope.as_deref(), &custom)?;
            let requested = claims::requested(grant.claims.as_deref(), Target::IdToken);
            let data = match claims::load(conn, &grant.user_id, &scopes, &requested)? {
                Some(d) if user_may_use(conn, &c, &d)? => d,
                _ => {
                    return Err(OAuthError::invalid_grant(
                        "the user no longer exists or may not use this client",
                    ));
                }
            };
            store::tokens::insert_access(
                conn,
                &AccessRecord {
                    jti: j,
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
            Ok(Refreshed::Issued(Box::new(Issued {
                token,
                grant,
                scopes,
                data,
            })))
        })
        .await?;

    let Issued {
        token,
        grant,
        scopes,
        data,
    } = match outcome {
        Refreshed::Issued(issued) => *issued,
        Refreshed::Reused => {
            tracing::warn!(client = %client.id, "rotated refresh token reused; family revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; its family is revoked",
            ));
        }
    };
    let mut access = tokens::access_claims(
        state,
        &client.id,
        Subject::User {
            user_id: &grant.user_id,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
        },
        &scopes.join(" "),
        now,
        life.access,
    );
    access.jti = jti;
    // OIDC Core §12.2: a refreshed ID token keeps auth_time (and sid) and has no nonce.
    sign_user_tokens(
        state,
        UserTokens {
            client,
            alg,
            access,
            scopes: &scopes,
            nonce: None,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
            amr: &grant.amr,
            acr: grant.acr.as_deref(),
            claims_request: grant.claims.as_deref(),
            refresh_token: Some(token),
            id_token_ttl: life.id_token,
        },
        &data,
        now,
    )
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
