//! `portcullis role add | list | delete | grant | revoke --app APP`: roles per application
//! (the `roles` claim) and who holds them.

use anyhow::{Context, bail};

use super::shared::{CLI, find_app, op, print_json};
use crate::config::Config;
use crate::ops::roles::{self, GranteeRef, RoleInput};
use crate::store::roles::Grantee;
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum RoleCmd {
    /// Define a role of an application (e.g. Admin, Editor, Viewer for Grafana).
    Add {
        /// The application: its client id or its name.
        #[arg(long)]
        app: String,
        /// 1 to 64 characters, no spaces or commas; what the `roles` claim carries.
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List an application's roles and who holds each directly.
    List {
        #[arg(long)]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a role. One still granted needs --revoke-grants (all its grants go with it).
    Delete {
        #[arg(long)]
        app: String,
        role: String,
        #[arg(long)]
        revoke_grants: bool,
    },
    /// Grant a role to a user or a group.
    Grant {
        #[arg(long)]
        app: String,
        #[command(flatten)]
        who: Who,
        role: String,
    },
    /// Revoke a role from a user or a group.
    Revoke {
        #[arg(long)]
        app: String,
        #[command(flatten)]
        who: Who,
        role: String,
    },
}

/// Exactly one of --user or --group.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// A username or user id.
    #[arg(long)]
    user: Option<String>,
    /// A group name or id.
    #[arg(long)]
    group: Option<String>,
}

impl Who {
    fn grantee(self) -> anyhow::Result<GranteeRef> {
        match (self.user, self.group) {
            (Some(u), None) => Ok(GranteeRef::User(u)),
            (None, Some(g)) => Ok(GranteeRef::Group(g)),
            _ => bail!("name exactly one of --user or --group"),
        }
    }
}

pub fn run(cmd: RoleCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    match cmd {
        RoleCmd::Add {
            app,
            name,
            description,
            json,
        } => {
            let c = find_app(&db, &app)?;
            let input = RoleInput { name, description };
            let r = op(
                db.try_write_blocking(|conn| roles::create(conn, &CLI, &c.id, input, now)),
                "such application",
            )?;
            if json {
                return print_json(&roles::to_json(&r));
            }
            println!("added role {} to {} (id {})", r.name, c.name, r.id);
            Ok(())
        }
        RoleCmd::List { app, json } => list(&db, &app, json),
        RoleCmd::Delete {
            app,
            role,
            revoke_grants,
        } => {
            let c = find_app(&db, &app)?;
            let (cid, name) = (c.id.clone(), role.clone());
            let found = db
                .read_blocking(move |conn| roles::find(conn, &cid, &name))?
                .with_context(|| format!("{} has no role named {role:?}", c.name))?;
            if found.grants > 0 && !revoke_grants {
                bail!(
                    "{} is still granted to {} user(s) or group(s): add --revoke-grants to revoke it from all of them and delete it",
                    found.name,
                    found.grants
                );
            }
            let r = op(
                db.try_write_blocking(|conn| {
                    roles::delete(conn, &CLI, &c.id, &found.id, revoke_grants, now)
                }),
                "such role",
            )?;
            if r.grants > 0 {
                println!(
                    "deleted role {} of {} and revoked it from {} grantee(s)",
                    r.name, c.name, r.grants
                );
            } else {
                println!("deleted role {} of {}", r.name, c.name);
            }
            Ok(())
        }
        RoleCmd::Grant { app, who, role } => {
            let c = find_app(&db, &app)?;
            let who = who.grantee()?;
            let (r, added) = op(
                db.try_write_blocking(|conn| roles::grant(conn, &CLI, &c.id, &role, &who, now)),
                "such application",
            )?;
            let name = grantee_name(&who);
            if added {
                println!("granted {} in {} to {name}", r.name, c.name);
            } else {
                println!("{name} already holds {} in {}", r.name, c.name);
            }
            Ok(())
        }
        RoleCmd::Revoke { app, who, role } => {
            let c = find_app(&db, &app)?;
            let who = who.grantee()?;
            let (r, removed) = op(
                db.try_write_blocking(|conn| roles::revoke(conn, &CLI, &c.id, &role, &who, now)),
                "such application",
            )?;
            let name = grantee_name(&who);
            if !removed {
                bail!("{name} does not hold {} in {} directly", r.name, c.name);
            }
            println!("revoked {} in {} from {name}", r.name, c.name);
            Ok(())
        }
    }
}

fn grantee_name(who: &GranteeRef) -> String {
    match who {
        GranteeRef::User(u) => format!("user {u}"),
        GranteeRef::Group(g) => format!("group {g}"),
    }
}

fn list(db: &Db, app: &str, json: bool) -> anyhow::Result<()> {
    let c = find_app(db, app)?;
    let cid = c.id.clone();
    let rows = db.read_blocking(move |conn| {
        store::roles::list(conn, &cid)?
            .into_iter()
            .map(|r| {
                let g = store::roles::grantees(conn, &r.id)?;
                Ok((r, g))
            })
            .collect::<Result<Vec<_>, store::StoreError>>()
    })?;
    if json {
        let arr: Vec<_> = rows
            .iter()
            .map(|(r, g)| {
                let mut v = roles::to_json(r);
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "granted_to".into(),
                        serde_json::json!(g.iter().map(label).collect::<Vec<_>>()),
                    );
                }
                v
            })
            .collect();
        return print_json(&serde_json::json!(arr));
    }
    if rows.is_empty() {
        println!(
            "{} defines no roles (add one with `portcullis role add --app {} NAME`)",
            c.name, c.id
        );
    }
    for (r, g) in rows {
        let who: Vec<String> = g.iter().map(label).collect();
        println!(
            "{:<20} {:<30} {}",
            r.name,
            if who.is_empty() {
                "-".to_string()
            } else {
                who.join(", ")
            },
            r.description.unwrap_or_default()
        );
    }
    Ok(())
}

fn label(g: &store::roles::GrantRow) -> String {
    match g.grantee {
        Grantee::User(_) => format!("user:{}", g.name),
        Grantee::Group(_) => format!("group:{}", g.name),
    }
}
