//! The sign-in journey (HTML): password sign-in with throttling, consent, reset links, and
//! browser sessions.

pub mod consent;
pub mod invite;
pub mod passkey;
pub mod password;
pub mod reset;
pub mod second_factor;
pub mod session;
pub mod throttle;
