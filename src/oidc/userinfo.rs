//! GET|POST /userinfo — OpenID Connect Core 1.0 §5.3, bearer tokens per RFC 6750.
//!
//! The access token comes from `Authorization: Bearer` or, on POST, the form field
//! `access_token` (RFC 6750 §2.2), never both. It must verify (published key, `typ: at+jwt`,
//! our issuer, not expired, audience this endpoint) and its server-side row must be live; the
//! user must exist and be enabled; `openid` must have been granted. The answer is the same
//! claim set the ID token carries for that scope, with `sub` equal to the ID token's.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};

use crate::domain::claims::{self, Target};
use crate::oidc::client_auth::FormParams;
use crate::oidc::cors;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::scope_list;
use crate::oidc::tokens;
use crate::state::AppState;
use crate::store;
use crate::web::State;

/// Why userinfo refuses.
#[derive(Debug)]
enum Refusal {
    /// RFC 6750 §3.1: "If the request lacks any authentication information …, the resource
    /// server SHOULD NOT include an error code": 401 with a bare `WWW-Authenticate: Bearer`.
    NoToken,
    OAuth(OAuthError),
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Refusal::OAuth(e)
    }
}

fn invalid_token() -> Refusal {
    Refusal::OAuth(OAuthError::bearer(
        ErrorCode::InvalidToken,
        "the access token is invalid, expired or revoked",
    ))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if that header
/// is there. Another scheme counts as no token.
pub fn bearer_from_header(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        OAuthError::bearer(ErrorCode::InvalidRequest, "malformed Authorization header")
    })?;
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(OAuthError::bearer(
            ErrorCode::InvalidRequest,
            "the bearer token is empty",
        ));
    }
    Ok(Some(token.to_string()))
}

/// RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each
/// request."
pub fn one_token(header: Option<String>, form: Option<&str>) -> Result<Option<String>, OAuthError> {
    match (header, form) {
        (Some(_), Some(_)) => Err(OAuthError::bearer(
            ErrorCode::InvalidRequest,
            "send the access token in the header or the body, not both",
        )),
        (Some(h), None) => Ok(Some(h)),
        (None, f) => Ok(f.map(str::to_string)),
    }
}

pub async fn get(state: State, req: HttpRequest) -> HttpResponse {
    let token = bearer_from_header(&req).map_err(Refusal::from);
    respond(&state, &req, token).await
}

pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let token = (|| {
        let header = bearer_from_header(&req)?;
        let form = FormParams::parse(&req, &body).map_err(|e| OAuthError { bearer: true, ..e })?;
        one_token(header, form.get("access_token"))
    })()
    .map_err(Refusal::from);
    respond(&state, &req, token).await
}

async fn respond(
    state: &AppState,
    req: &HttpRequest,
    token: Result<Option<String>, Refusal>,
) -> HttpResponse {
    let result = match token {
        Ok(Some(t)) => claims_for(state, &t).await,
        Ok(None) => Err(Refusal::NoToken),
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(body),
        Err(Refusal::NoToken) => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(Refusal::OAuth(e)) => {
            tracing::info!(endpoint = "userinfo", error = e.code.as_str(), description = %e.description, "request refused");
            e.error_response()
        }
    };
    cors::apply_to(state, req, &mut resp).await;
    resp
}

enum Looked {
    Claims(Map<String, Value>),
    InsufficientScope,
    Invalid,
}

async fn claims_for(state: &AppState, token: &str) -> Result<Value, Refusal> {
    let now = state.now();
    let Some(at) = tokens::verify_access(state, token, now, false) else {
        return Err(invalid_token());
    };
    // Only tokens meant for this endpoint (user tokens; see `tokens` on `aud`).
    let userinfo_url = state.url("/userinfo");
    if !at.audiences().contains(&userinfo_url.as_str()) {
        return Err(invalid_token());
    }
    let (jti, sub, client_id) = (at.jti.clone(), at.sub.clone(), at.client_id.clone());
    let looked = state
        .db
        .read(move |conn| {
            let Some(rec) = store::tokens::access_by_jti(conn, &jti)? else {
                return Ok(Looked::Invalid);
            };
            if rec.revoked_at.is_some()
                || rec.expires_at <= now
                || rec.user_id.as_deref() != Some(sub.as_str())
                || rec.client_id != client_id
            {
                return Ok(Looked::Invalid);
            }
            let scopes = scope_list(&rec.scope);
            // OIDC Core §5.3: the access token must have been issued for an OpenID request.
            if !scopes.iter().any(|s| s == "openid") {
                return Ok(Looked::InsufficientScope);
            }
            let requested = claims::requested(rec.claims.as_deref(), Target::Userinfo);
            match claims::load(conn, &sub, &client_id, &scopes, &requested)? {
                Some(d) if !d.user.disabled => {
                    Ok(Looked::Claims(claims::release(&d, &scopes, &requested)))
                }
                _ => Ok(Looked::Invalid),
            }
        })
        .await
        .map_err(OAuthError::from)
        .map_err(|e| Refusal::OAuth(OAuthError { bearer: true, ..e }))?;
    match looked {
        Looked::Claims(mut c) => {
            c.insert("sub".into(), json!(at.sub));
            Ok(Value::Object(c))
        }
        Looked::InsufficientScope => Err(Refusal::OAuth(OAuthError::bearer(
            ErrorCode::InsufficientScope,
            "the access token was not issued for the openid scope",
        ))),
        Looked::Invalid => Err(invalid_token()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_no_token() {
        let r = TestRequest::default()
            .insert_header(("Authorization", "bearer abc"))
            .to_http_request();
        assert_eq!(bearer_from_header(&r).unwrap().as_deref(), Some("abc"));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert_eq!(bearer_from_header(&r).unwrap(), None);
        let r = TestRequest::default().to_http_request();
        assert_eq!(bearer_from_header(&r).unwrap(), None);
    }

    #[test]
    fn token_in_header_and_body_at_once_is_invalid_request() {
        let e = one_token(Some("a".into()), Some("b")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.bearer);
        assert_eq!(one_token(None, Some("b")).unwrap().as_deref(), Some("b"));
    }
}
