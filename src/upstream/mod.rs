//! Portcullis as a relying party of upstream identity providers ("Sign in with Google /
//! GitHub / any OIDC provider"). In progress.

use actix_web::web;

/// Routes of the upstream sign-in (called from the route table in `app.rs`).
pub fn routes(_cfg: &mut web::ServiceConfig) {}
