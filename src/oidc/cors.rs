//! CORS for the endpoints browsers call directly (discovery, JWKS, token, userinfo,
//! revocation), allowed for the origins of registered redirect URIs only.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::state::AppState;
use crate::store;
use crate::web::State;

const CORS_PATHS: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks",
    "/token",
    "/userinfo",
    "/revoke",
];

async fn allowed_origins(state: &AppState) -> Arc<Vec<String>> {
    if let Some(fresh) = state.cors_origins.get() {
        return fresh;
    }
    let fresh = Arc::new(
        state
            .db
            .read(store::clients::redirect_origins)
            .await
            .unwrap_or_default(),
    );
    state.cors_origins.put(fresh.clone());
    fresh
}

async fn allowed_origin(state: &AppState, req: &HttpRequest) -> Option<String> {
    let origin = req
        .headers()
        .get(header::ORIGIN)?
        .to_str()
        .ok()?
        .to_string();
    allowed_origins(state)
        .await
        .contains(&origin)
        .then_some(origin)
}

/// Adds CORS headers for an allowed Origin.
pub async fn apply(state: &AppState, req: &HttpRequest, resp: &mut HttpResponseBuilder) {
    if req.headers().contains_key(header::ORIGIN) {
        resp.insert_header((header::VARY, "Origin"));
        if let Some(o) = allowed_origin(state, req).await {
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o));
        }
    }
}

/// Adds CORS headers to a finished response.
pub async fn apply_to(state: &AppState, req: &HttpRequest, resp: &mut HttpResponse) {
    if req.headers().contains_key(header::ORIGIN) {
        resp.headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("Origin"));
        if let Some(v) = allowed_origin(state, req)
            .await
            .and_then(|o| header::HeaderValue::from_str(&o).ok())
        {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
    }
}

/// OPTIONS preflight.
pub async fn preflight(state: State, req: HttpRequest) -> HttpResponse {
    if !CORS_PATHS.contains(&req.path()) {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let mut resp = HttpResponse::NoContent();
    if let Some(o) = allowed_origin(&state, &req).await {
        resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    }
    resp.insert_header((header::VARY, "Origin"));
    resp.finish()
}
