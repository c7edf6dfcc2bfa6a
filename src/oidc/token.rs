//! POST /token — the token endpoint (RFC 6749 §3.2, §5; OIDC Core §3.1.3).
//!
//! Parse the form once, authenticate the client before anything looks at a code or token,
//! dispatch on `grant_type`. Every response, success or error, carries
//! `Cache-Control: no-store` (RFC 6749 §5.1) and the CORS headers for registered origins.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::oidc::client_auth::{self, FormParams};
use crate::oidc::cors;
use crate::oidc::error::OAuthError;
use crate::oidc::grants::{
    self, TokenRequest, authorization_code, client_credentials, device_code, refresh_token,
    token_exchange,
};
use crate::oidc::mint::{Minting, TokenResponse};
use crate::state::AppState;
use crate::web::State;

pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut resp = match handle(&state, &req, &body).await {
        Ok(tokens) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(tokens),
        Err(e) => error_response(&e, "token"),
    };
    cors::apply_to(&state, &req, &mut resp).await;
    resp
}

/// Logs a refused request (the cause stays in the log) and renders the RFC 6749 §5.2 body.
pub(crate) fn error_response(e: &OAuthError, endpoint: &'static str) -> HttpResponse {
    tracing::info!(
        endpoint,
        error = e.code.as_str(),
        description = %e.description,
        "request refused"
    );
    e.error_response()
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let form = FormParams::parse(req, body)?;
    let client = client_auth::authenticate(state, req, &form).await?.client;
    let now = state.now();
    let request = TokenRequest::parse(&form)?;
    grants::permit(&client, &request)?;
    let minting = Minting::for_client(&state.config, &client)?;
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let decided = authorization_code::redeem(
                state,
                &client,
                &minting,
                &code,
                redirect_uri,
                code_verifier,
                now,
            )
            .await?;
            minting.user_tokens(state, &client, decided, now)
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            let decided =
                refresh_token::refresh(state, &client, &minting, &refresh_token, scope, now)
                    .await?;
            minting.user_tokens(state, &client, decided, now)
        }
        TokenRequest::DeviceCode { device_code } => {
            let decided =
                device_code::exchange(state, &client, &minting, &device_code, now).await?;
            minting.user_tokens(state, &client, decided, now)
        }
        TokenRequest::ClientCredentials { scope } => {
            let scope = client_credentials::scope(state, &client, scope).await?;
            minting.client_token(state, &client, scope, now)
        }
        TokenRequest::TokenExchange(ex) => {
            let ip = crate::web::session::ip_string(state, req);
            let done = token_exchange::exchange(state, &client, *ex, ip, now).await?;
            // Signed as the target verifies its tokens: with the target's algorithm.
            Minting::for_client(&state.config, &done.target)?
                .exchanged_token(state, &client, done, now)
        }
    }
}
