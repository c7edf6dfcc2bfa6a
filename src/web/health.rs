//! GET /health — liveness with a real database check (200, or 503 when unusable).

use actix_web::HttpResponse;
use serde_json::json;

use crate::web::State;

pub async fn get(state: State) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION");
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({"status": "ok", "version": version, "database": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unusable");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Cache-Control", "no-store"))
                .json(json!({"status": "unavailable", "version": version, "database": "error"}))
        }
    }
}
