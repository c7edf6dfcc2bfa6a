//! `portcullis keys list | rotate`: signing keys, through the same `KeyManager` the server and
//! the console use.

use std::sync::Arc;

use super::shared::CLI;
use crate::config::Config;
use crate::ops::signing_keys::KeyManager;
use crate::ops::{self, Subject};
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum KeysCmd {
    /// List signing keys with their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Publish new keys now; they sign after the publish grace (or at once with --immediately).
    Rotate {
        #[arg(long)]
        immediately: bool,
    },
}

pub fn run(cmd: KeysCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    crate::crypto::jwt::install();
    let (db, master) = crate::server::open(config)?;
    let keys = KeyManager::new(db.clone(), Arc::new(master), config);
    keys.maintain(now)?;
    match cmd {
        KeysCmd::List { json } => list(&keys, now, json),
        KeysCmd::Rotate { immediately } => rotate(&keys, &db, config, now, immediately),
    }
}

fn list(keys: &KeyManager, now: i64, json: bool) -> anyhow::Result<()> {
    let list = keys.list(now)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:<18} {:<6} {:<8} {:<12} UNPUBLISHED AFTER",
        "KID", "ALG", "STATE", "SIGNS FROM"
    );
    for k in list {
        println!(
            "{:<18} {:<6} {:<8} {:<12} {}",
            k.kid,
            k.alg,
            k.state,
            k.activates_at,
            k.prune_after
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

fn rotate(
    keys: &KeyManager,
    db: &Db,
    config: &Config,
    now: i64,
    immediately: bool,
) -> anyhow::Result<()> {
    let kids = keys.rotate(now, immediately)?;
    db.write_blocking(|c| {
        let detail = serde_json::json!({"kids": kids, "immediately": immediately});
        let subject = Subject {
            detail: Some(detail),
            ..Default::default()
        };
        ops::record(c, &CLI, "keys.rotated", subject, now)
    })?;
    let new: Vec<String> = keys
        .list(now)?
        .iter()
        .filter(|k| kids.contains(&k.kid))
        .map(|k| format!("{} ({})", k.kid, k.alg))
        .collect();
    println!("Added signing keys {}.", new.join(", "));
    if immediately {
        println!("They sign from now on; the keys they replace are retired.");
    } else {
        let grace = humantime::format_duration(config.key_publish_grace);
        println!(
            "They are published now and sign after the publish grace ({grace}), so apps learn them first."
        );
    }
    let wanted = db.read_blocking(store::signing_keys::fingerprint)?;
    println!("{}", served_report(db, &wanted)?);
    Ok(())
}

/// Waits (up to 2.5 s) for a running server on this database to serve the key set
/// `wanted`; says what happened.
fn served_report(db: &Db, wanted: &str) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        if db.read_blocking(store::signing_keys::served)?.as_deref() == Some(wanted) {
            return Ok(format!(
                "The running server serves them (it picked them up after {:.1} s).",
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(
        "No running server picked them up within 2.5 s (is one running on this data dir?); \
        a server serves them as soon as it starts."
            .into(),
    )
}
