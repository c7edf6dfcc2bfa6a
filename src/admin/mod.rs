//! The admin console (HTML, /admin) and the admin HTTP API (/admin/api). In progress.

use actix_web::web;

use crate::ui::PageError;

/// Routes under /admin (called from the route table in `app.rs`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(get));
}

pub async fn get() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
