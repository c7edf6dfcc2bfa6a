//! `portcullis apikey create | list | revoke`: keys for the admin HTTP API.

use super::shared::{CLI, op, print_json};
use crate::config::Config;
use crate::ops::api_keys;
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key; prints it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by id.
    Revoke { id: String },
}

pub fn run(cmd: ApiKeyCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    match cmd {
        ApiKeyCmd::Create { name, json } => create(&db, config, &name, json, now),
        ApiKeyCmd::List { json } => list(&db, json),
        ApiKeyCmd::Revoke { id } => {
            op(
                db.try_write_blocking(|c| api_keys::revoke(c, &CLI, &id, now)),
                "API key with that id",
            )?;
            println!("revoked {id}");
            Ok(())
        }
    }
}

fn create(db: &Db, config: &Config, name: &str, json: bool, now: i64) -> anyhow::Result<()> {
    let (k, key) = op(
        db.try_write_blocking(|c| api_keys::create(c, &CLI, name, now)),
        "key",
    )?;
    if json {
        let mut v = api_keys::to_json(&k);
        if let Some(o) = v.as_object_mut() {
            o.insert("key".into(), serde_json::json!(key));
        }
        return print_json(&v);
    }
    println!("{key}");
    eprintln!(
        "API key {:?} (id {}): shown only now; send it as `Authorization: Bearer <key>` to {}/admin/api/",
        k.name, k.id, config.public_url
    );
    Ok(())
}

fn list(db: &Db, json: bool) -> anyhow::Result<()> {
    let list = db.read_blocking(store::api_keys::list)?;
    if json {
        let arr: Vec<_> = list.iter().map(api_keys::to_json).collect();
        return print_json(&serde_json::json!(arr));
    }
    for k in list {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!("{:<34} {:<24} {}", k.id, k.name, state);
    }
    Ok(())
}
