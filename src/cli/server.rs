//! `portcullis serve`, `migrate` and `backup`: the server process and its database file.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store;

/// Runs the server until SIGTERM/SIGINT.
pub fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
    // actix-web runs its own worker threads; the main runtime only accepts connections and
    // runs the periodic jobs, so one thread is enough (and keeps idle memory low).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    rt.block_on(crate::server::run(config, clock))
}

pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    let version = db.read_blocking(store::migrate::current_version)?;
    println!(
        "database {} is at schema version {version}",
        db.path().display()
    );
    Ok(())
}

pub fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} already exists; choose a new file name", file.display());
    }
    let (db, _) = crate::server::open(config)?;
    db.backup_to(file)
        .with_context(|| format!("backup to {}", file.display()))?;
    println!("backed up to {}", file.display());
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
