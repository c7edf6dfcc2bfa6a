//! `portcullis serve`, `migrate`, `backup` and `restore`: the server process and its data.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::ops::backup;
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

pub fn backup(config: &Config, dest: &Path, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    let (key_file, _) = MasterKey::locate(&config.master_key_file, &config.data_dir);
    let made = backup::create(&db, &key_file, dest, now)?;
    println!(
        "Backed up {} to {} in {:.1} s:",
        config.database_path().display(),
        made.dir.display(),
        made.seconds
    );
    for (name, f) in &made.manifest.files {
        println!("  {name:<14} {:>12} bytes  sha256 {}", f.bytes, f.sha256);
    }
    println!(
        "  {:<14} Portcullis {}, schema {}",
        backup::MANIFEST,
        made.manifest.version,
        made.manifest.schema
    );
    println!(
        "It includes the master key: whoever has this backup can read the sealed secrets (signing keys, provider secrets). Keep it as safe as the server."
    );
    println!("Restore it with: portcullis restore {}", made.dir.display());
    Ok(())
}

pub fn restore(config: &Config, dir: &Path, check_only: bool, now: i64) -> anyhow::Result<()> {
    if check_only {
        let c = backup::check(dir)?;
        println!("{}", checked_line(dir, &c));
        return Ok(());
    }
    let (key_path, _) = MasterKey::locate(&config.master_key_file, &config.data_dir);
    let from_credentials = std::env::var_os("CREDENTIALS_DIRECTORY")
        .is_some_and(|d| key_path.starts_with(std::path::Path::new(&d)));
    let r = backup::restore(dir, &config.data_dir, &key_path, !from_credentials, now)?;
    println!("{}", checked_line(dir, &r.checked));
    match &r.previous {
        Some(p) => println!(
            "Replaced {} (the database that was there is kept as {}).",
            r.database.display(),
            p.display()
        ),
        None => println!("Wrote {}.", r.database.display()),
    }
    match &r.key_written {
        Some(k) => println!("Wrote the backup's master key to {}.", k.display()),
        None => println!(
            "The master key at {} is already the backup's.",
            key_path.display()
        ),
    }
    println!("Start the server: it serves the restored data.");
    Ok(())
}

fn checked_line(dir: &Path, c: &backup::Checked) -> String {
    format!(
        "Checked {}: checksums, integrity, schema {} (this binary: {}), and its master key opens all {} sealed values (backup made by Portcullis {}).",
        dir.display(),
        c.manifest.schema,
        store::migrate::latest_version(),
        c.sealed_values,
        c.manifest.version
    )
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
