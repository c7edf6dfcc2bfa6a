//! `portcullis group list | add | delete | members | add-member | remove-member`.

use anyhow::{Context, bail};

use super::shared::{CLI, op, print_json};
use crate::config::Config;
use crate::ops::groups::{self, GroupInput};
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum GroupCmd {
    /// List groups with their member counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Members must also use a passkey after their password.
        #[arg(long)]
        require_passkey: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (by name or id).
    Delete { group: String },
    /// List the members of a group.
    Members {
        group: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
}

pub fn run(cmd: GroupCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    match cmd {
        GroupCmd::List { json } => list(&db, json),
        GroupCmd::Add {
            name,
            description,
            require_passkey,
            json,
        } => {
            let input = GroupInput {
                name,
                description,
                require_passkey,
                ..Default::default()
            };
            let g = op(
                db.try_write_blocking(|c| groups::create(c, &CLI, input, now)),
                "such group",
            )?;
            if json {
                return print_json(&groups::to_json(&g));
            }
            println!("created group {} (id {})", g.name, g.id);
            Ok(())
        }
        GroupCmd::Delete { group } => {
            let g = find(&db, &group)?;
            op(
                db.try_write_blocking(|c| groups::delete(c, &CLI, &g.id, now)),
                "such group",
            )?;
            println!("deleted group {}", g.name);
            Ok(())
        }
        GroupCmd::Members { group, json } => members(&db, &group, json),
        GroupCmd::AddMember { group, user } => {
            let g = find(&db, &group)?;
            let u = op(
                db.try_write_blocking(|c| groups::add_member(c, &CLI, &g.id, &user, now)),
                "such group",
            )?;
            println!("{} is a member of {}", u.username, g.name);
            Ok(())
        }
        GroupCmd::RemoveMember { group, user } => {
            let g = find(&db, &group)?;
            let removed = op(
                db.try_write_blocking(|c| groups::remove_member(c, &CLI, &g.id, &user, now)),
                "such group",
            )?;
            if !removed {
                bail!("{user:?} is not a member of {}", g.name);
            }
            println!("removed {user} from {}", g.name);
            Ok(())
        }
    }
}

fn find(db: &Db, group: &str) -> anyhow::Result<store::groups::GroupDetail> {
    let name = group.to_string();
    db.read_blocking(move |c| groups::find(c, &name))?
        .with_context(|| format!("no group named {group:?}"))
}

fn list(db: &Db, json: bool) -> anyhow::Result<()> {
    let list = db.read_blocking(store::groups::list_details)?;
    if json {
        let arr: Vec<_> = list.iter().map(groups::to_json).collect();
        return print_json(&serde_json::json!(arr));
    }
    for g in list {
        println!(
            "{:<24} {:>6} members  {}",
            g.name,
            g.members,
            g.description.unwrap_or_default()
        );
    }
    Ok(())
}

fn members(db: &Db, group: &str, json: bool) -> anyhow::Result<()> {
    let g = find(db, group)?;
    let gid = g.id.clone();
    let list = db.read_blocking(move |c| store::groups::members(c, &gid, u32::MAX, 0))?;
    if json {
        let arr: Vec<_> = list
            .iter()
            .map(|m| serde_json::json!({"id": m.user_id, "username": m.username, "display_name": m.display_name, "disabled": m.disabled}))
            .collect();
        return print_json(&serde_json::json!(arr));
    }
    for m in list {
        println!("{}", m.username);
    }
    Ok(())
}
