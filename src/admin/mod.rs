//! The admin console (HTML under /admin) and the admin HTTP API (JSON under /admin/api).
//!
//! Both are thin views on the operations in `users`, `groups`, `clients`, `api_keys`,
//! `signing_keys` and `upstream::providers`, which the CLI calls too. The console is for members of the `admins`
//! group (`AdminSession`); the API takes bearer API keys (`api::ApiKey`). One module per
//! console area; templates mirror them under templates/admin/.

pub mod api;
mod api_keys;
mod apps;
mod audit;
mod groups;
mod overview;
mod sessions;
pub(crate) mod signing_keys;
mod upstream;
mod users;
pub mod view;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};

use crate::ops::{Actor, OpError};
use crate::state::AppState;
use crate::web::session::SignedIn;
use crate::web::ui::{self, PageError};

/// Routes under /admin (called from the route table in `app.rs`). The API scope comes first:
/// it answers every /admin/api/… path itself (JSON errors included).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(api::scope())
        .route("/admin", web::get().to(overview::get))
        // Users
        .route("/admin/users", web::get().to(users::list))
        .route("/admin/users", web::post().to(users::create))
        .route("/admin/users/new", web::get().to(users::new))
        .route("/admin/users/{id}", web::get().to(users::show))
        .route("/admin/users/{id}", web::post().to(users::save))
        .route("/admin/users/{id}/disable", web::post().to(users::disable))
        .route("/admin/users/{id}/enable", web::post().to(users::enable))
        .route(
            "/admin/users/{id}/delete",
            web::get().to(users::confirm_delete),
        )
        .route("/admin/users/{id}/delete", web::post().to(users::delete))
        .route(
            "/admin/users/{id}/reset-link",
            web::post().to(users::reset_link),
        )
        .route(
            "/admin/users/{id}/invite-link",
            web::post().to(users::invite_link),
        )
        .route(
            "/admin/users/{id}/consents/revoke",
            web::post().to(users::revoke_consent),
        )
        .route(
            "/admin/users/{id}/identities/unlink",
            web::post().to(users::unlink_identity),
        )
        // Groups
        .route("/admin/groups", web::get().to(groups::list))
        .route("/admin/groups", web::post().to(groups::create))
        .route("/admin/groups/{id}", web::get().to(groups::show))
        .route("/admin/groups/{id}", web::post().to(groups::save))
        .route(
            "/admin/groups/{id}/members",
            web::post().to(groups::add_member),
        )
        .route(
            "/admin/groups/{id}/members/remove",
            web::post().to(groups::remove_member),
        )
        .route(
            "/admin/groups/{id}/delete",
            web::get().to(groups::confirm_delete),
        )
        .route("/admin/groups/{id}/delete", web::post().to(groups::delete))
        // Applications (OAuth clients)
        .route("/admin/apps", web::get().to(apps::list))
        .route("/admin/apps", web::post().to(apps::create))
        .route("/admin/apps/new", web::get().to(apps::new))
        .route("/admin/apps/{id}", web::get().to(apps::show))
        .route("/admin/apps/{id}/edit", web::get().to(apps::edit))
        .route("/admin/apps/{id}/edit", web::post().to(apps::save))
        .route(
            "/admin/apps/{id}/secret",
            web::get().to(apps::confirm_secret),
        )
        .route(
            "/admin/apps/{id}/secret",
            web::post().to(apps::regenerate_secret),
        )
        .route(
            "/admin/apps/{id}/delete",
            web::get().to(apps::confirm_delete),
        )
        .route("/admin/apps/{id}/delete", web::post().to(apps::delete))
        // Sign-in providers (upstream identity providers); `new` is not a valid slug.
        .route("/admin/upstream", web::get().to(upstream::list))
        .route("/admin/upstream", web::post().to(upstream::create))
        .route("/admin/upstream/new", web::get().to(upstream::new))
        .route("/admin/upstream/{slug}", web::get().to(upstream::show))
        .route("/admin/upstream/{slug}", web::post().to(upstream::save))
        .route(
            "/admin/upstream/{slug}/enable",
            web::post().to(upstream::enable),
        )
        .route(
            "/admin/upstream/{slug}/disable",
            web::post().to(upstream::disable),
        )
        .route(
            "/admin/upstream/{slug}/delete",
            web::get().to(upstream::confirm_delete),
        )
        .route(
            "/admin/upstream/{slug}/delete",
            web::post().to(upstream::delete),
        )
        // Signing keys, sessions, audit log, API keys
        .route("/admin/keys", web::get().to(signing_keys::list))
        .route(
            "/admin/keys/rotate",
            web::get().to(signing_keys::confirm_rotate),
        )
        .route("/admin/keys/rotate", web::post().to(signing_keys::rotate))
        .route("/admin/sessions", web::get().to(sessions::list))
        .route("/admin/sessions/end", web::post().to(sessions::end))
        .route("/admin/audit", web::get().to(audit::list))
        .route("/admin/api-keys", web::get().to(api_keys::list))
        .route("/admin/api-keys", web::post().to(api_keys::create))
        .route(
            "/admin/api-keys/{id}/revoke",
            web::post().to(api_keys::revoke),
        );
}

/// A signed-in member of the `admins` group. Signed-out browsers go to the login page and
/// come back; other people get a 403 page.
pub struct AdminSession(pub SignedIn);

impl AdminSession {
    pub fn actor(&self) -> Actor {
        Actor::User(self.0.user.id.clone())
    }

    pub fn page(&self, state: &AppState, req: &HttpRequest, title: &str) -> ui::Page {
        self.0.page(state, req, title)
    }
}

impl FromRequest for AdminSession {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let me = signed_in.await?;
            if !me.is_admin {
                return Err(PageError::Forbidden.into());
            }
            Ok(AdminSession(me))
        })
    }
}

impl From<OpError> for PageError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(f) | OpError::Conflict(f) => PageError::BadRequest(f.message),
            OpError::NotFound => PageError::NotFound,
            OpError::Store(s) => PageError::from(s),
            OpError::Sealing => {
                tracing::error!("a secret could not be sealed with the master key");
                PageError::Internal
            }
        }
    }
}

/// Runs blocking key work (RSA generation, its own transactions) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::ops::signing_keys::KeyError> + Send + 'static,
) -> Result<T, crate::ops::signing_keys::KeyError> {
    web::block(f).await.map_err(|e| {
        crate::ops::signing_keys::KeyError::Store(crate::store::StoreError::Join(e.to_string()))
    })?
}
