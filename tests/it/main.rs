//! The one integration test binary: every test starts the real server on 127.0.0.1:0 with a
//! temporary data dir and talks HTTP to it.

// Test code may unwrap, panic and index; the crate's lints guard the request paths.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod admin_api;
mod admin_cli;
mod admin_console;
mod appliance;
mod authorize;
mod cli;
mod device;
mod flow;
mod hardening;
mod logout;
mod operations;
mod passkeys;
mod revocation;
mod roles;
mod signin;
mod token;
mod token_exchange;
mod upstream;
mod upstream_admin;
mod upstream_cli;
mod upstream_github;
mod userinfo;
