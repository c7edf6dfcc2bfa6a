//! The `portcullis` command line: `Cli` is what clap parses, `run` dispatches to one module
//! per subcommand. Each is a thin call into the operations the console and the admin API use
//! (`ops::*`), so the three surfaces cannot drift. Errors print one line on stderr and exit
//! non-zero (2 for configuration problems).

pub mod apikey;
pub mod audit;
pub mod client;
pub mod config;
pub mod group;
pub mod keys;
pub mod role;
pub mod server;
mod shared;
pub mod upstream;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A self-contained OpenID Connect identity provider"
)]
pub struct Cli {
    /// Configuration file (TOML). Every setting can also come from PORTCULLIS_* variables.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (logs a one-time setup link while no administrator exists).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check or print configuration.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage groups (their names are what the `groups` claim carries).
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    Client(client::ClientCmd),
    /// Manage an application's roles and who holds them (the `roles` claim).
    #[command(subcommand)]
    Role(role::RoleCmd),
    /// Manage upstream identity providers (Sign in with Google, GitHub, any OpenID Connect provider).
    #[command(subcommand)]
    Upstream(upstream::UpstreamCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Manage keys for the admin HTTP API (/admin/api).
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCmd),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Write a backup to the new directory DEST (the database, the master key and a manifest;
    /// safe while the server runs, and it always finishes).
    Backup { dest: PathBuf },
    /// Check the backup BACKUP and restore it into the data dir (no server may run on it).
    Restore {
        backup: PathBuf,
        /// Only check the backup; change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Print the version.
    Version,
}

/// Loads the configuration and runs the command: the whole of `main`.
pub fn run(cli: Cli) -> ExitCode {
    let config = match crate::config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("portcullis: configuration: {line}");
            }
            return ExitCode::from(2);
        }
    };
    crate::outbound::set_allow_link_local(config.outbound_allow_link_local);
    match dispatch(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, config: crate::config::Config) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        Command::Serve => server::serve(config),
        Command::Migrate => server::migrate(&config),
        Command::Backup { dest } => server::backup(&config, &dest, now),
        Command::Restore { backup, check } => server::restore(&config, &backup, check, now),
        Command::Version => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Config(cmd) => config::run(cmd, &config),
        Command::User(cmd) => user::run(cmd, &config, now),
        Command::Group(cmd) => group::run(cmd, &config, now),
        Command::Client(cmd) => client::run(cmd, &config, now),
        Command::Role(cmd) => role::run(cmd, &config, now),
        Command::Apikey(cmd) => apikey::run(cmd, &config, now),
        Command::Audit(cmd) => audit::run(cmd, &config),
        Command::Upstream(cmd) => upstream::run(cmd, &config, now),
        Command::Keys(cmd) => keys::run(cmd, &config, now),
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', "; ")
}
