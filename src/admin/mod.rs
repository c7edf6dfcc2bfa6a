//! The admin console (HTML under /admin) and the admin HTTP API (JSON under /admin/api).
//!
//! Both are thin views on the operations in `users`, `groups`, `clients`, `api_keys`,
//! `signing_keys` and `upstream::providers`, which the CLI calls too. The console is for members of the `admins`
//! group (`AdminSession`); the API takes bearer API keys (`api::ApiKey`). One module per
//! console area; templates mirror them under templates/admin/.

pub mod api;
pub mod api_keys;
pub mod app_roles;
pub mod apps;
pub mod audit;
pub mod groups;
pub mod guides;
pub mod overview;
pub mod sessions;
pub(crate) mod signing_keys;
pub mod upstream;
pub mod users;
pub mod view;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};

use crate::ops::{Actor, OpError};
use crate::state::AppState;
use crate::web::session::SignedIn;
use crate::web::ui::{self, PageError};

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
