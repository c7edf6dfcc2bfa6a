//! grant_type=urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): a confidential
//! application exchanges a person's access token it received for a short-lived access token
//! addressed to another application (the target), carrying that person's roles *in the
//! target* and an `act` claim naming the requester (§4.1).
//!
//! Rules:
//! - Only access tokens of this server are subjects (`subject_token_type` …:access_token);
//!   the subject token must be addressed to the requester (it was given to it to call it),
//!   live (its row not revoked, its user enabled) and not itself an exchanged token.
//! - The target is named by `audience` (its client id) or `resource` (the same id, RFC 8707);
//!   it must list the requester among the apps allowed to exchange for it. A requester that
//!   no application lists may not exchange at all (`unauthorized_client`); an unknown target,
//!   or one that does not list this requester, is `invalid_target` (§2.2.2).
//! - Scope: the requested scopes, each of which the subject token holds (else
//!   `invalid_scope`), within the target's allowed scopes; by default the subject's scopes.
//! - Lifetime: the target's exchange lifetime (default 60 s), never beyond the subject's.
//! - The person must still be allowed into the target (groups, "only people with a role").
//! - No access-token row is written (the token is short-lived, like a client's own token);
//!   introspection and revocation recognise it by its `act` claim. The checks are reads; the
//!   exchange is audited (`token.exchanged`, who, for which audience, for whom), once per
//!   caller, audience and person per minute, so a service exchanging per request neither
//!   floods the log nor queues every request behind the writer.

use serde_json::json;

use crate::clock::UnixTime;
use crate::domain::claims;
use crate::oidc::client_auth::FormParams;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::{self, scope_list};
use crate::oidc::tokens::{self, AccessClaims};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: "Indicates that the token is an OAuth 2.0 access token".
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Lifetime of an exchanged token when the target sets none: enough for one call downstream.
pub const DEFAULT_TTL: i64 = 60;
const AUDIT_KIND: &str = "token.exchanged";
/// A service that exchanges per request would write an event per request; the log keeps the
/// first exchange of each caller, audience and person per minute.
const AUDIT_WINDOW: i64 = 60;

/// The parameters of RFC 8693 §2.1.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRequest {
    pub subject_token: String,
    /// The target application's client id (`audience`, or `resource`).
    pub target: String,
    pub scope: Option<Vec<String>>,
}

impl ExchangeRequest {
    pub fn parse(form: &FormParams) -> Result<Self, OAuthError> {
        let subject_token = grants::required(form, "subject_token")?;
        match form.get("subject_token_type") {
            None => {
                return Err(OAuthError::invalid_request(
                    "the subject_token_type parameter is missing",
                ));
            }
            Some(ACCESS_TOKEN_TYPE) => {}
            Some(_) => {
                return Err(OAuthError::invalid_request(format!(
                    "only access tokens of this server can be exchanged (subject_token_type {ACCESS_TOKEN_TYPE})"
                )));
            }
        }
        if form.get("actor_token").is_some() {
            return Err(OAuthError::invalid_request(
                "actor tokens are not supported: the authenticated client is the actor",
            ));
        }
        if let Some(t) = form.get("requested_token_type")
            && t != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "only access tokens can be issued (requested_token_type {ACCESS_TOKEN_TYPE})"
            )));
        }
        let target = match (form.get("audience"), form.get("resource")) {
            (Some(a), Some(r)) if a != r => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "audience and resource name different applications",
                ));
            }
            (Some(t), _) | (None, Some(t)) => t.to_string(),
            (None, None) => {
                return Err(OAuthError::invalid_request(
                    "name the application the token is for in the audience parameter (its client id)",
                ));
            }
        };
        Ok(Self {
            subject_token,
            target,
            scope: grants::scope_param(form)?,
        })
    }
}

/// RFC 8693 §2.1: the requester authenticates; public clients cannot (asked by
/// `grants::permit`).
pub fn may_use(client: &Client) -> Result<(), OAuthError> {
    if client.public {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients may not exchange tokens",
        ));
    }
    Ok(())
}

/// A token made by an exchange (it names its actor).
pub fn is_exchanged(claims: &AccessClaims) -> bool {
    claims.act.is_some()
}

/// What an exchange decided: everything the new token says.
pub struct Exchanged {
    pub target: Client,
    pub user_id: String,
    pub scope: String,
    pub roles: Option<Vec<String>>,
    pub auth_time: Option<UnixTime>,
    /// Seconds the token lives.
    pub ttl: i64,
}

/// The granted scope: requested (each held by the subject) or the subject's, minus
/// `offline_access` (no refresh token comes of an exchange), within the target's list.
pub fn granted_scope(
    subject: &[String],
    requested: Option<&[String]>,
    target_allowed: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let wanted: Vec<String> = match requested {
        Some(r) => {
            if let Some(extra) = r.iter().find(|s| !subject.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("the subject token does not hold the scope {extra}"),
                ));
            }
            r.to_vec()
        }
        None => subject.to_vec(),
    };
    Ok(wanted
        .into_iter()
        .filter(|s| s != "offline_access")
        .filter(|s| target_allowed.is_none_or(|a| a.split_whitespace().any(|x| x == s)))
        .collect())
}

/// Checks the subject token and the target, and records the exchange, in one transaction.
pub async fn exchange(
    state: &AppState,
    requester: &Client,
    req: ExchangeRequest,
    ip: Option<String>,
    now: UnixTime,
) -> Result<Exchanged, OAuthError> {
    let subject =
        tokens::verify_access(state, &req.subject_token, now, false).ok_or_else(|| {
            OAuthError::invalid_grant(
                "the subject token is not a valid, unexpired access token of this server",
            )
        })?;
    if is_exchanged(&subject) {
        return Err(OAuthError::invalid_grant(
            "an exchanged token cannot be exchanged again",
        ));
    }
    if crate::oidc::grants::client_credentials::is_client_token(&subject) {
        return Err(OAuthError::invalid_grant(
            "the subject token stands for an application, not a person",
        ));
    }
    if !subject.audiences().contains(&requester.id.as_str()) {
        return Err(OAuthError::invalid_grant(
            "the subject token was not issued to this client",
        ));
    }
    let requester_id = requester.id.clone();
    // The target as client authentication sees it (cached for a second, forgotten at every
    // change in this process), else from the database.
    let cached = state.client_cache.get(&req.target);
    let from_cache = cached.is_some();
    // The checks are reads, in one read transaction (one snapshot, and the WAL's read lock
    // taken once): an exchange writes only its audit event, and only the first for the same
    // caller, audience and person in AUDIT_WINDOW seconds.
    let (done, recorded) = state
        .db
        .read(move |conn| {
            let snapshot = conn.unchecked_transaction()?;
            Ok(check(&snapshot, cached, &requester_id, &subject, &req, now))
        })
        .await??;
    if !from_cache {
        state.client_cache.put(&done.target);
    }
    if !recorded {
        let (requester_id, user_id, target_id) = (
            requester.id.clone(),
            done.user_id.clone(),
            done.target.id.clone(),
        );
        let detail = json!({"requester": requester_id, "audience": target_id, "scope": done.scope});
        state
            .db
            .write(move |conn| {
                store::audit::record(
                    conn,
                    &store::audit::NewEvent {
                        kind: AUDIT_KIND,
                        actor_id: Some(&requester_id),
                        user_id: Some(&user_id),
                        client_id: Some(&target_id),
                        ip: ip.as_deref(),
                        detail: Some(detail),
                    },
                    now,
                )
            })
            .await?;
    }
    Ok(done)
}

/// The target, the subject's live row and the person, and whether this exchange is already
/// in the audit log (an event for the same caller, audience and person in the window).
fn check(
    conn: &rusqlite::Connection,
    cached: Option<Client>,
    requester_id: &str,
    subject: &AccessClaims,
    req: &ExchangeRequest,
    now: UnixTime,
) -> Result<(Exchanged, bool), OAuthError> {
    let target = match cached {
        Some(c) => Some(c),
        None => store::clients::by_id(conn, &req.target)?,
    };
    let Some(target) = target else {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("there is no application {}", req.target),
        ));
    };
    if !target.exchange_sources.iter().any(|s| s == requester_id) {
        return Err(if store::clients::is_exchange_source(conn, requester_id)? {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "{} does not accept tokens exchanged by this client",
                    target.name
                ),
            )
        } else {
            OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "no application allows this client to exchange tokens for it",
            )
        });
    }
    let live = store::tokens::access_by_jti(conn, &subject.jti)?
        .is_some_and(|r| r.revoked_at.is_none() && r.expires_at > now);
    let data = if live {
        claims::load_for_access_token(conn, &subject.sub, &target.id)?
    } else {
        None
    };
    let Some(data) = data else {
        return Err(OAuthError::invalid_grant(
            "the subject token has been revoked",
        ));
    };
    if !grants::user_may_use(conn, &target, &data)? {
        return Err(OAuthError::invalid_grant(format!(
            "this person may not use {}",
            target.name
        )));
    }
    let scope = granted_scope(
        &scope_list(&subject.scope),
        req.scope.as_deref(),
        target.allowed_scopes.as_deref(),
    )?
    .join(" ");
    let ttl = target
        .exchange_token_ttl
        .unwrap_or(DEFAULT_TTL)
        .min(subject.exp.saturating_sub(now))
        .max(1);
    let recorded = store::audit::recorded_since(
        conn,
        AUDIT_KIND,
        requester_id,
        &subject.sub,
        &target.id,
        now.saturating_sub(AUDIT_WINDOW),
    )?;
    Ok((
        Exchanged {
            user_id: subject.sub.clone(),
            scope,
            roles: data.roles,
            auth_time: subject.auth_time,
            ttl,
            target,
        },
        recorded,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn form(body: &str) -> FormParams {
        FormParams::from_body(body.as_bytes()).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_request_names_an_access_token_and_one_target() {
        let ok = ExchangeRequest::parse(&form(
            "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=api",
        ))
        .unwrap();
        assert_eq!(ok.target, "api");
        let id_token = form(
            "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&audience=api",
        );
        assert_eq!(
            ExchangeRequest::parse(&id_token).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let two = form(
            "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=a&resource=b",
        );
        assert_eq!(
            ExchangeRequest::parse(&two).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        let none = form(
            "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
        );
        assert_eq!(
            ExchangeRequest::parse(&none).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_scope_never_exceeds_the_subjects() {
        let subject = s(&["openid", "profile", "api.read", "offline_access"]);
        assert_eq!(
            granted_scope(&subject, None, None).unwrap(),
            s(&["openid", "profile", "api.read"])
        );
        assert_eq!(
            granted_scope(&subject, Some(&s(&["api.read"])), None).unwrap(),
            s(&["api.read"])
        );
        assert_eq!(
            granted_scope(&subject, Some(&s(&["api.write"])), None)
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            granted_scope(&subject, None, Some("api.read")).unwrap(),
            s(&["api.read"])
        );
    }
}
