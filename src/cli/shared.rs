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
