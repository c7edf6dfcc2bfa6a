//! A standby (`role = "standby"`) serves what never writes — discovery, JWKS, static files,
//! /health — from its read-only copy of the database, and answers everything else 503 with
//! `Retry-After`: a person or an app that reaches it is told to try again (at the primary,
//! or once this server is promoted). JSON for the protocol and API endpoints, a page for
//! people.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;

use super::State;

/// Seconds a client is asked to wait: a promotion takes a restart.
const RETRY_AFTER: &str = "30";

/// The paths a standby serves.
fn served(path: &str) -> bool {
    path == "/health"
        || path == "/jwks"
        || path == "/favicon.ico"
        || path.starts_with("/.well-known/")
        || path.starts_with("/static/")
}

fn wants_json(req: &ServiceRequest) -> bool {
    let path = req.path();
    [
        "/token",
        "/introspect",
        "/revoke",
        "/userinfo",
        "/admin/api/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let standby = req
        .app_data::<State>()
        .is_some_and(|s| s.config.is_standby());
    let readable = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !standby || (readable && served(req.path())) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let resp = if wants_json(&req) {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, RETRY_AFTER))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "this server is a standby (read-only copy); use the primary",
            }))
    } else {
        let mut page = super::ui::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "This is a standby server",
            "It keeps a read-only copy for when the main server is down, and cannot sign you in. \
             Try again in a moment; if it keeps happening, tell your administrator.",
            None,
        );
        if let Ok(v) = header::HeaderValue::from_str(RETRY_AFTER) {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
        page
    };
    let (req, _) = req.into_parts();
    Ok(ServiceResponse::new(req, resp))
}
