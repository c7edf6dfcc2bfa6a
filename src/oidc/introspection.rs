//! POST /introspect — OAuth 2.0 Token Introspection (RFC 7662).
//!
//! Only confidential clients may ask (§2.1: "the endpoint MUST also require some form of
//! authorization"); a public client is `invalid_client`. Any confidential client may
//! introspect access tokens (resource servers are such clients); a refresh token is described
//! only to the client that holds it. Anything not active — unknown, expired, revoked, rotated,
//! of a disabled user, another client's refresh token — is just `{"active": false}` (§2.2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use rusqlite::Connection;

use crate::clock::UnixTime;
use crate::crypto::secret::refresh_token_key;
use crate::oidc::client_auth::{self, FormParams};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::{client_credentials, token_exchange};
use crate::oidc::token::error_response;
use crate::oidc::tokens;
use crate::state::AppState;
use crate::store::tokens::{AccessRecord, RefreshRecord};
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;

pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    match handle(&state, &req, &body).await {
        Ok(v) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(v),
        Err(e) => error_response(&e, "introspection"),
    }
}

fn inactive() -> Value {
    json!({"active": false})
}

/// What the token names, worked out before the database read.
enum Presented {
    Missing,
    /// Not a token we issued, or expired: inactive without a lookup.
    Invalid,
    Access(Box<tokens::AccessClaims>),
    Refresh {
        hash: String,
    },
}

/// What the read found for it.
enum Found {
    Inactive,
    Access(Box<tokens::AccessClaims>, Box<AccessRecord>, Option<User>),
    Refresh(Box<RefreshRecord>, User),
}

/// The token's server-side record and its user, if it is live (inside the read).
fn lookup(conn: &Connection, presented: Presented, now: UnixTime) -> Result<Found, StoreError> {
    match presented {
        Presented::Missing | Presented::Invalid => Ok(Found::Inactive),
        Presented::Access(at) => {
            let rec = match store::tokens::access_by_jti(conn, &at.jti)? {
                Some(rec) => rec,
                // A client's own token and an exchanged one have a row only once revoked;
                // its client must exist (an exchanged token's user is checked below).
                None if (client_credentials::is_client_token(&at)
                    || token_exchange::is_exchanged(&at))
                    && store::clients::by_id(conn, &at.client_id)?.is_some() =>
                {
                    AccessRecord {
                        jti: at.jti.clone(),
                        client_id: at.client_id.clone(),
                        user_id: token_exchange::is_exchanged(&at).then(|| at.sub.clone()),
                        family_id: None,
                        code_hash: None,
                        sid: None,
                        scope: at.scope.clone(),
                        claims: None,
                        issued_at: at.iat,
                        expires_at: at.exp,
                        revoked_at: None,
                    }
                }
                None => return Ok(Found::Inactive),
            };
            if rec.revoked_at.is_some() || rec.expires_at <= now {
                return Ok(Found::Inactive);
            }
            let user = match &rec.user_id {
                Some(uid) => match store::users::by_id(conn, uid)? {
                    Some(u) if !u.disabled => Some(u),
                    _ => return Ok(Found::Inactive),
                },
                None => None,
            };
            Ok(Found::Access(at, Box::new(rec), user))
        }
        Presented::Refresh { hash } => {
            let Some(rec) = store::tokens::refresh_by_hash(conn, &hash)? else {
                return Ok(Found::Inactive);
            };
            match store::users::by_id(conn, &rec.grant.user_id)? {
                Some(u) if !u.disabled => Ok(Found::Refresh(Box::new(rec), u)),
                _ => Ok(Found::Inactive),
            }
        }
    }
}

async fn handle(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<Value, OAuthError> {
    let form = FormParams::parse(req, body)?;
    let now = state.now();
    // The signature is checked before the read; the client and the token's record then come
    // in one trip to the database. Nothing is answered before the client has authenticated.
    let presented = match form.get("token") {
        None => Presented::Missing,
        Some(t) if tokens::looks_like_jwt(t) => match tokens::verify_access(state, t, now, false) {
            Some(at) => Presented::Access(Box::new(at)),
            None => Presented::Invalid,
        },
        Some(t) => Presented::Refresh {
            hash: refresh_token_key(t),
        },
    };
    let missing = matches!(presented, Presented::Missing);
    let (authed, found) =
        client_auth::authenticate_and_read(state, req, &form, move |c| lookup(c, presented, now))
            .await?;
    if authed.client.public {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "public clients may not introspect tokens",
        ));
    }
    if missing {
        return Err(OAuthError::invalid_request(
            "the token parameter is missing",
        ));
    }
    match found {
        Found::Inactive => Ok(inactive()),
        Found::Access(at, rec, user) => {
            let mut v = json!({
                "active": true,
                "scope": rec.scope,
                "client_id": rec.client_id,
                "token_type": "Bearer",
                "exp": at.exp,
                "iat": at.iat,
                "sub": at.sub,
                "aud": at.aud,
                "iss": at.iss,
                "jti": at.jti,
            });
            if let Some(obj) = v.as_object_mut() {
                if let Some(u) = user {
                    obj.insert("username".into(), json!(u.username));
                }
                // RFC 8693 §4.1: the actor of an exchanged token; and the roles the token
                // carries, so a resource server that introspects sees what one that
                // verifies the JWT sees.
                if let Some(act) = &at.act {
                    obj.insert("act".into(), json!({"sub": act.sub}));
                }
                if let Some(roles) = &at.roles {
                    obj.insert("roles".into(), json!(roles));
                }
            }
            Ok(v)
        }
        Found::Refresh(rec, u) => {
            // A refresh token is described only to the client that holds it.
            if rec.grant.client_id != authed.client.id
                || rec.revoked_at.is_some()
                || rec.rotated_at.is_some()
                || rec.expires_at <= now
                || rec.grant.family_expires_at <= now
            {
                return Ok(inactive());
            }
            Ok(json!({
                "active": true,
                "scope": rec.grant.scope,
                "client_id": rec.grant.client_id,
                "username": u.username,
                "token_type": "refresh_token",
                "exp": rec.expires_at,
                "sub": rec.grant.user_id,
                "iss": state.config.issuer(),
            }))
        }
    }
}
