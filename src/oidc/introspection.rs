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

use crate::app::{AppState, State};
use crate::crypto::secret::hash_token;
use crate::oidc::client_auth::{self, FormParams};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::token::error_response;
use crate::oidc::tokens;
use crate::store;

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

async fn handle(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<Value, OAuthError> {
    let form = FormParams::parse(req, body)?;
    let authed = client_auth::authenticate(state, req, &form).await?;
    if authed.client.public {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "public clients may not introspect tokens",
        ));
    }
    let Some(token) = form.get("token") else {
        return Err(OAuthError::invalid_request(
            "the token parameter is missing",
        ));
    };
    let now = state.now();
    if tokens::looks_like_jwt(token) {
        let Some(at) = tokens::verify_access(state, token, now, false) else {
            return Ok(inactive());
        };
        let jti = at.jti.clone();
        let client_token = crate::oidc::grants::client_credentials::is_client_token(&at);
        let stand_in = store::tokens::AccessRecord {
            jti: at.jti.clone(),
            client_id: at.client_id.clone(),
            user_id: None,
            family_id: None,
            code_hash: None,
            sid: None,
            scope: at.scope.clone(),
            claims: None,
            issued_at: at.iat,
            expires_at: at.exp,
            revoked_at: None,
        };
        let live = state
            .db
            .read(move |conn| {
                let rec = match store::tokens::access_by_jti(conn, &jti)? {
                    Some(rec) => rec,
                    // A client's own token has a row only once revoked; its client must exist.
                    None if client_token
                        && store::clients::by_id(conn, &stand_in.client_id)?.is_some() =>
                    {
                        stand_in
                    }
                    None => return Ok(None),
                };
                if rec.revoked_at.is_some() || rec.expires_at <= now {
                    return Ok(None);
                }
                let user = match &rec.user_id {
                    Some(uid) => match store::users::by_id(conn, uid)? {
                        Some(u) if !u.disabled => Some(u),
                        _ => return Ok(None),
                    },
                    None => None,
                };
                Ok(Some((rec, user)))
            })
            .await?;
        let Some((rec, user)) = live else {
            return Ok(inactive());
        };
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
        if let (Some(u), Some(obj)) = (user, v.as_object_mut()) {
            obj.insert("username".into(), json!(u.username));
        }
        return Ok(v);
    }
    let hash = hash_token(token);
    let client_id = authed.client.id.clone();
    let iss = state.config.issuer().to_string();
    state
        .db
        .read(move |conn| {
            let Some(rec) = store::tokens::refresh_by_hash(conn, &hash)? else {
                return Ok(inactive());
            };
            if rec.grant.client_id != client_id
                || rec.revoked_at.is_some()
                || rec.rotated_at.is_some()
                || rec.expires_at <= now
                || rec.grant.family_expires_at <= now
            {
                return Ok(inactive());
            }
            match store::users::by_id(conn, &rec.grant.user_id)? {
                Some(u) if !u.disabled => Ok(json!({
                    "active": true,
                    "scope": rec.grant.scope,
                    "client_id": rec.grant.client_id,
                    "username": u.username,
                    "token_type": "refresh_token",
                    "exp": rec.expires_at,
                    "sub": rec.grant.user_id,
                    "iss": iss,
                })),
                _ => Ok(inactive()),
            }
        })
        .await
        .map_err(OAuthError::from)
}
