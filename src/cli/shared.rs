//! What the subcommands share: the CLI as audit actor, errors as one line, finding a user,
//! JSON output, standard input.

use std::io::Read;

use anyhow::Context;

use crate::ops::users;
use crate::ops::{Actor, OpError};
use crate::store;

/// The CLI's name in the audit log.
pub const CLI: Actor = Actor::Cli;

/// An operation's error as one line: "not found" names what was looked for.
pub fn op<T>(r: Result<T, OpError>, what: &str) -> anyhow::Result<T> {
    r.map_err(|e| match e {
        OpError::NotFound => anyhow::anyhow!("no {what}"),
        OpError::Invalid(f) | OpError::Conflict(f) => anyhow::anyhow!("{}: {}", f.field, f.message),
        OpError::Store(s) => anyhow::anyhow!(s),
        OpError::Sealing => anyhow::anyhow!("a secret could not be sealed with the master key"),
    })
}

pub fn find_user(db: &store::Db, user: &str) -> anyhow::Result<store::users::User> {
    let u = user.to_string();
    db.read_blocking(move |c| users::find(c, &u))?
        .with_context(|| format!("no user named {user:?}"))
}

pub fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn read_stdin_line() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// An application by client id or, failing that, by its name (any case; it must be unique).
pub fn find_app(db: &store::Db, app: &str) -> anyhow::Result<store::clients::Client> {
    let a = app.to_string();
    let (by_id, all) = db.read_blocking(move |c| {
        Ok((
            store::clients::by_id(c, &a)?,
            store::clients::list(c).unwrap_or_default(),
        ))
    })?;
    if let Some(c) = by_id {
        return Ok(c);
    }
    let mut named: Vec<store::clients::Client> = all
        .into_iter()
        .filter(|c| c.name.eq_ignore_ascii_case(app))
        .collect();
    match named.len() {
        0 => None.with_context(|| {
            format!("no application with client id or name {app:?} (see `portcullis client list`)")
        }),
        1 => Ok(named.remove(0)),
        n => anyhow::bail!("{n} applications are named {app:?}: use the client id"),
    }
}
