//! The sign-in journey (HTML): password sign-in with throttling, consent, reset links, and
//! browser sessions.

pub mod consent;
pub mod device;
pub mod invite;
pub mod passkey;
pub mod password;
pub mod reset;
pub mod second_factor;
pub mod setup;
pub mod sign_in;
pub mod sign_out;
