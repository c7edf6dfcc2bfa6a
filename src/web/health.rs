//! GET /health — liveness with a real database check (200, or 503 when unusable), and the
//! last scheduled backup when backups are scheduled (`backup`: when, whether it worked).

use actix_web::HttpResponse;
use serde_json::json;

use crate::web::State;

pub async fn get(state: State) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION");
    if let Err(e) = state.db.ping().await {
        tracing::error!(error = %e, "health check: database unusable");
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({"status": "unavailable", "version": version, "database": "error"}));
    }
    let mut body = json!({"status": "ok", "version": version, "database": "ok",
                          "role": state.config.role});
    if !state.config.backup_dir.is_empty() {
        let last = state
            .db
            .read(crate::ops::backup::last_status)
            .await
            .ok()
            .flatten();
        let backup = match last {
            Some(s) => json!({"last_at": s.at, "ok": s.ok, "error": s.error}),
            None => json!({"last_at": null, "ok": null}),
        };
        if let Some(obj) = body.as_object_mut() {
            obj.insert("backup".into(), backup);
        }
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}
