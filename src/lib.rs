//! Portcullis: a self-contained OpenID Connect identity provider for self-hosters.
//!
//! The map in short (ARCHITECTURE.md at the repository root is the full one). Floors by
//! dependency, each importing only the floors below it:
//!
//! 1. base: `config`, `clock`, `brand`, `outbound` (outgoing HTTP and where it may go),
//!    `crypto` (argon2, JOSE, sealing), `store` (the only SQL; one writer thread with group
//!    commit, checkpoints on a thread of their own)
//! 2. `domain`: scope, claims, password policy, the browser session model, sign-in throttle
//! 3. `ops`: what the CLI, the console and the admin API do (`Result<_, OpError>` over one
//!    transaction), and the services they need: signing keys, passkeys, back-channel logout
//! 4. `state` (`AppState`: config, db, clock, the services) and `jobs` (periodic work)
//! 5. `web` (middleware, pages and CSRF forms, session extractors) and the surfaces: `oidc`
//!    (what a relying party calls), `login`, `account`, `admin` (+ `admin::api`), `upstream`
//! 6. `app`: THE ROUTE TABLE, one line per URL
//! 7. `server` (start-up, serving) and `cli` (one module per subcommand); `main.rs` only
//!    parses the command line
//!
//! Outside `src/`: `build.rs` orders the release link so the code an idle server runs sits
//! together (`packaging/startup-symbols.txt`, made by `benches/startup_symbols.sh`; a test
//! fails when the list is stale).

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
