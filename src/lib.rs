//! Portcullis: a self-contained OpenID Connect identity provider for self-hosters.
//!
//! Layers by dependency: HTTP handlers (actix) → protocol/domain functions → `store`
//! (rusqlite) and `crypto`. `store` and `crypto` never import actix. The route table in
//! `app.rs` is the index of every URL. This list is the map of the code (it follows
//! ../shared/ARCHITECTURE.md, with the differences noted here):
//!
//! - `app`: AppState, middleware (request id, browser cookie, security headers), the route
//!   table, `serve`; `server`: start-up shared by `main` and the tests; `main.rs`: the CLI
//! - `config`: settings with documented defaults (TOML + `PORTCULLIS_*`); `clock`; `assets`
//! - `ui`: page base context, rendering, `CsrfForm`/`CsrfJson`, `PageError`, error pages
//! - `oidc`: everything a relying party calls, one module per endpoint (discovery, jwks,
//!   authorize, token + grants/, userinfo, revocation, introspection, end_session,
//!   backchannel, cors) and the pure cores (pkce, scope, redirect_uri, claims, tokens,
//!   client_auth — a function each handler calls first, since the form body is read once)
//! - `login`: the sign-in journey (password, passkey, second_factor, consent, reset, invite,
//!   session, throttle); `account`: self-service pages; `admin`: console + api/
//! - `passkeys`: WebAuthn ceremonies (webauthn-rs); `upstream`: Portcullis as a relying party
//! - `signing_keys`: key rotation; `users`, `groups`, `clients`, `api_keys`: operations
//!   shared by the CLI, the console and the admin API (`ops`: actor, errors, audit)
//! - `store`: the only module with SQL; reads on an r2d2 pool, writes through one writer
//!   thread with group commit and WAL checkpoints on a thread of their own
//!   (`store/writer.rs`); `crypto`: no actix, no SQL
//! - `jobs`: periodic work (expiry GC, key rotation, back-channel logout delivery)
//!
//! Outside `src/`: `build.rs` orders the release link so the code an idle server runs sits
//! together (`packaging/startup-symbols.txt`, made by `benches/startup_symbols.sh`); the map in
//! ARCHITECTURE.md lists `packaging/` for the systemd unit and config only.

pub mod account;
pub mod admin;
pub mod app;
pub mod brand;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod jobs;
pub mod login;
pub mod oidc;
pub mod ops;
pub mod outbound;
pub mod server;
pub mod state;
pub mod store;
pub mod upstream;
pub mod web;
