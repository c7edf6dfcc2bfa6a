//! `portcullis user add | list | show | edit | disable | enable | delete | reset-link |
//! invite`: the same operations as the console's and the admin API's (`ops::users`), so a user
//! added here meets the same rules (an unknown `--group` is refused there too).

use super::shared::{CLI, find_user, op, print_json, read_stdin_line};
use crate::config::Config;
use crate::crypto::password::PasswordHasher;
use crate::ops::OpError;
use crate::ops::users::{self, LinkKind, UserEdit};
use crate::store::users::ADMIN_GROUP;
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum UserCmd {
    /// Add a user. The password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Group to add the user to (repeatable; it must exist: `portcullis group add`).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Make the user an administrator (member of the `admins` group).
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Print the created user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users (all of them, by username).
    List {
        /// Only users whose username, email or name contains this.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by username or id).
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a user; only the options given change.
    Edit(UserEditArgs),
    /// Disable a user: signs them out everywhere and revokes their tokens.
    Disable { user: String },
    /// Enable a disabled user.
    Enable { user: String },
    /// Delete a user (their sessions end first, so their apps are told).
    Delete { user: String },
    /// Print a one-time link that lets the user set a new password.
    ResetLink { username: String },
    /// Print a one-time invite link where the user registers a passkey.
    Invite {
        username: String,
        /// Also let them choose a password instead.
        #[arg(long)]
        allow_password: bool,
    },
}

#[derive(clap::Args)]
pub struct UserEditArgs {
    /// The user to change (username or id).
    user: String,
    #[arg(long)]
    username: Option<String>,
    /// New email address ("" removes it).
    #[arg(long)]
    email: Option<String>,
    #[arg(long, action = clap::ArgAction::Set)]
    email_verified: Option<bool>,
    /// Display name ("" removes it).
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Replace the groups with these (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Add to a group (repeatable).
    #[arg(long = "add-group")]
    add_groups: Vec<String>,
    /// Remove from a group (repeatable).
    #[arg(long = "remove-group")]
    remove_groups: Vec<String>,
    /// Custom claims, a JSON object (replaces the current ones).
    #[arg(long)]
    claims: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: UserCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    match cmd {
        UserCmd::Add {
            username,
            email,
            name,
            groups,
            admin,
            password_stdin,
            json,
        } => {
            let edit = UserEdit {
                username,
                email_verified: email.is_some(),
                email,
                display_name: name,
                groups,
                ..Default::default()
            };
            add(&db, config, edit, admin, password_stdin, json, now)
        }
        UserCmd::List { search, json } => list(&db, search.unwrap_or_default(), json),
        UserCmd::Show { user, json } => show(&db, &user, json),
        UserCmd::Edit(a) => edit(&db, a, now),
        UserCmd::Disable { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::set_disabled(c, &CLI, &u.id, true, now)),
                "such user",
            )?;
            println!(
                "disabled {}: signed out everywhere, tokens revoked",
                u.username
            );
            Ok(())
        }
        UserCmd::Enable { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::set_disabled(c, &CLI, &u.id, false, now)),
                "such user",
            )?;
            println!("enabled {}", u.username);
            Ok(())
        }
        UserCmd::Delete { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::delete(c, &CLI, &u.id, now)),
                "such user",
            )?;
            println!("deleted {}", u.username);
            Ok(())
        }
        UserCmd::Invite {
            username,
            allow_password,
        } => issue_link(
            &db,
            config,
            &username,
            LinkKind::Invite { allow_password },
            now,
        ),
        UserCmd::ResetLink { username } => {
            issue_link(&db, config, &username, LinkKind::PasswordReset, now)
        }
    }
}

/// `user add`: `users::create`, as the console and the admin API call it. `--admin` adds the
/// user to the administrators' group (made on first use: this is how a first administrator
/// can be made without the setup link).
fn add(
    db: &Db,
    config: &Config,
    mut edit: UserEdit,
    admin: bool,
    password_stdin: bool,
    json: bool,
    now: i64,
) -> anyhow::Result<()> {
    let password_hash = if password_stdin {
        let pw = read_stdin_line()?;
        users::validate_password(&pw, config.password_min_length)?;
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            1,
            0,
        )?;
        Some(hasher.hash_now(&pw)?)
    } else {
        None
    };
    if admin
        && !edit
            .groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(ADMIN_GROUP))
    {
        edit.groups.push(ADMIN_GROUP.to_string());
    }
    let has_password = password_hash.is_some();
    let user = op(
        db.try_write_blocking(|c| {
            if admin {
                store::groups::ensure(c, ADMIN_GROUP, now)?;
            }
            users::create(c, &CLI, edit, password_hash, now)
        }),
        "such user",
    )?;
    if json {
        println!(
            "{}",
            serde_json::json!({"id": user.id, "username": user.username, "email": user.email, "admin": admin})
        );
        return Ok(());
    }
    println!("created user {} (id {})", user.username, user.id);
    if !has_password {
        println!(
            "no password set: send a set-up link from `portcullis user invite {}`",
            user.username
        );
    }
    Ok(())
}

fn list(db: &Db, search: String, json: bool) -> anyhow::Result<()> {
    let list = db.read_blocking(|c| {
        let mut out = Vec::new();
        for u in store::users::list(c, &search, u32::MAX, 0)? {
            let g = store::users::group_names(c, &u.id)?;
            out.push((u, g));
        }
        Ok(out)
    })?;
    if json {
        let arr: Vec<_> = list.iter().map(|(u, g)| users::to_json(u, g)).collect();
        print_json(&serde_json::json!(arr))?;
    } else {
        for (u, g) in list {
            println!(
                "{:<24} {:<32} {:<24} {}",
                u.username,
                u.email.unwrap_or_default(),
                g.join(","),
                if u.disabled { "disabled" } else { "" }
            );
        }
    }
    Ok(())
}

fn show(db: &Db, user: &str, json: bool) -> anyhow::Result<()> {
    let u = find_user(db, user)?;
    let uid = u.id.clone();
    let groups = db.read_blocking(|c| store::users::group_names(c, &uid))?;
    let v = users::to_json(&u, &groups);
    if json {
        return print_json(&v);
    }
    println!("id:             {}", u.id);
    println!("username:       {}", u.username);
    println!(
        "name:           {}",
        u.display_name.as_deref().unwrap_or("-")
    );
    println!(
        "email:          {}{}",
        u.email.as_deref().unwrap_or("-"),
        if u.email_verified { " (verified)" } else { "" }
    );
    println!("groups:         {}", groups.join(", "));
    println!(
        "password:       {}",
        if u.password_hash.is_some() {
            "set"
        } else {
            "none"
        }
    );
    println!("disabled:       {}", if u.disabled { "yes" } else { "no" });
    if !u.claims.is_empty() {
        println!(
            "claims:         {}",
            serde_json::Value::Object(u.claims.clone())
        );
    }
    Ok(())
}

/// The user as they are, with the options given changed.
fn edited(
    mut e: UserEdit,
    a: UserEditArgs,
    claims: Option<serde_json::Map<String, serde_json::Value>>,
) -> UserEdit {
    if let Some(v) = a.username {
        e.username = v;
    }
    if let Some(v) = a.email {
        e.email = Some(v);
    }
    if let Some(v) = a.email_verified {
        e.email_verified = v;
    }
    if let Some(v) = a.name {
        e.display_name = Some(v);
    }
    if let Some(v) = a.given_name {
        e.given_name = Some(v);
    }
    if let Some(v) = a.family_name {
        e.family_name = Some(v);
    }
    if !a.groups.is_empty() {
        e.groups = a.groups;
    }
    e.groups.extend(a.add_groups);
    e.groups
        .retain(|g| !a.remove_groups.iter().any(|r| r.eq_ignore_ascii_case(g)));
    if let Some(v) = claims {
        e.claims = v;
    }
    e
}

fn edit(db: &Db, a: UserEditArgs, now: i64) -> anyhow::Result<()> {
    let u = find_user(db, &a.user)?;
    let claims = match &a.claims {
        Some(text) => Some(users::parse_claims(text)?),
        None => None,
    };
    let (id, name, json) = (u.id.clone(), a.user.clone(), a.json);
    let updated = op(
        db.try_write_blocking(|c| {
            let e = edited(
                UserEdit::of(&u, store::users::group_names(c, &id)?),
                a,
                claims,
            );
            let u = users::update(c, &CLI, &id, e, now)?;
            let g = store::users::group_names(c, &id)?;
            Ok::<_, OpError>(users::to_json(&u, &g))
        }),
        "such user",
    )?;
    if json {
        return print_json(&updated);
    }
    println!("updated user {name}");
    Ok(())
}

fn issue_link(
    db: &Db,
    config: &Config,
    user: &str,
    kind: LinkKind,
    now: i64,
) -> anyhow::Result<()> {
    let u = find_user(db, user)?;
    let ttl = config.password_reset_ttl.as_secs() as i64;
    let token = op(
        db.try_write_blocking(|c| users::issue_link(c, &CLI, &u.id, kind, ttl, now)),
        "such user",
    )?;
    println!("{}{}", config.public_url, kind.path(&token));
    Ok(())
}
