//! What every HTTP surface shares: the request middleware, page rendering and CSRF-checked
//! forms (`ui`), the browser session as extractors (`session`), "return to" values, embedded
//! static files, /health.

use actix_web::web;

use crate::state::AppState;

pub mod assets;
pub mod health;
pub mod middleware;
pub mod request_id;
pub mod return_to;
pub mod session;
pub mod standby;
pub mod ui;

/// The state as handlers extract it.
pub type State = web::Data<AppState>;
