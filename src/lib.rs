//! Portcullis: a self-contained OpenID Connect identity provider for self-hosters.
//!
//! Layers by dependency: HTTP handlers (actix) → protocol/domain functions → `store`
//! (rusqlite) and `crypto`. `store` and `crypto` never import actix. The route table in
//! `app.rs` is the index of every URL. See ../shared/ARCHITECTURE.md for the full map.
//!
//! - `app`: AppState, middleware, the route table, `serve`
//! - `config`: settings with documented defaults (TOML + `PORTCULLIS_*`)
//! - `oidc`: everything a relying party calls (discovery, jwks, authorize, token, userinfo, …)
//! - `login`: the sign-in journey (password, consent, reset links, sessions)
//! - `account`: self-service pages; `admin`: the console
//! - `signing_keys`: key rotation; `users`, `groups`, `clients`, `api_keys`: operations shared
//!   by the CLI, the console and the admin API (`ops`: actor, errors, audit of changes)
//! - `store`: the only module with SQL; `crypto`: no actix, no SQL
//! - `jobs`: periodic work (expiry GC, key rotation)

pub mod account;
pub mod admin;
pub mod api_keys;
pub mod app;
pub mod assets;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod groups;
pub mod health;
pub mod jobs;
pub mod login;
pub mod oidc;
pub mod ops;
pub mod passkeys;
pub mod server;
pub mod setup;
pub mod signing_keys;
pub mod store;
pub mod ui;
pub mod upstream;
pub mod users;
