//! Vocabulary and rules shared by every surface and operation: scopes, claims, the password
//! policy, the browser session model and the sign-in throttle. No actix, no pages.

pub mod claims;
pub mod password_policy;
pub mod scope;
pub mod session;
pub mod throttle;
