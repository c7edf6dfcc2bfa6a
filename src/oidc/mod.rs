//! Everything a relying party calls: one module per protocol surface.

pub mod authorize;
pub mod client_auth;
pub mod cors;
pub mod device_authorization;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod jwks;
pub mod mint;
pub mod pkce;
pub mod redirect_uri;
pub mod revocation;
pub mod token;
pub mod tokens;
pub mod userinfo;
