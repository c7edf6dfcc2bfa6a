//! `portcullis audit tail [--follow]`: the audit log, as lines or JSON.

use super::shared::find_user;
use crate::config::Config;
use crate::store;

#[derive(clap::Subcommand)]
pub enum AuditCmd {
    /// Print the latest events, oldest first; with --follow, keep printing new ones.
    Tail {
        /// How many of the latest events to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing new events as they happen (checks every second).
        #[arg(long)]
        follow: bool,
        /// Only events whose kind matches: a kind (`role.granted`), a prefix (`role`), or a
        /// pattern with `*` and `?` (`role.*`, `*.denied_*`).
        #[arg(long, visible_alias = "kind", value_name = "PATTERN")]
        action: Option<String>,
        /// Only events by or about this user (username or id).
        #[arg(long)]
        user: Option<String>,
        /// Only events about this application (client id or its unique name).
        #[arg(long)]
        app: Option<String>,
        /// Only events since then: a duration back from now (`30m`, `2h`, `7d`), a date
        /// (`2026-12-01`, UTC) or a time (`2026-12-01T08:00:00Z`).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// One audit event as a line: time, kind, who, about whom, which app, where, details.
fn audit_line(e: &store::audit::Event, names: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(e.at).unwrap_or(0));
    let mut name = |id: &Option<String>| {
        id.as_deref()
            .map(|i| names(i).unwrap_or_else(|| i.to_string()))
            .unwrap_or_else(|| "-".into())
    };
    let (by, about) = (name(&e.actor_id), name(&e.user_id));
    let detail = match &e.detail {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        v => v.to_string(),
    };
    format!(
        "{}  {:<28} by={} user={} client={} ip={} {}",
        humantime::format_rfc3339_seconds(t),
        e.kind,
        by,
        about,
        e.client_id.as_deref().unwrap_or("-"),
        e.ip.as_deref().unwrap_or("-"),
        detail
    )
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `--since`: a duration back from `now` (humantime: `30m`, `2h`, `7d`), a UTC date or an
/// RFC 3339 time; as Unix seconds.
fn parse_since(s: &str, now: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    }
    let as_time = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = humantime::parse_rfc3339(&as_time).map_err(|_| {
        anyhow::anyhow!(
            "--since {s:?} is neither a duration (30m, 2h, 7d) nor a date (2026-12-01) or time (2026-12-01T08:00:00Z)"
        )
    })?;
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

pub fn run(cmd: AuditCmd, config: &Config) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    let AuditCmd::Tail {
        lines,
        follow,
        action,
        user,
        app,
        since,
        json,
    } = cmd;
    let since = since.map(|s| parse_since(&s, now_secs())).transpose()?;
    let user_id = user.map(|u| find_user(&db, &u).map(|x| x.id).unwrap_or(u));
    let client_id = app
        .map(|a| super::shared::find_app(&db, &a).map(|c| c.id))
        .transpose()?;
    let mut filter = store::audit::Filter {
        user_id,
        client_id,
        since,
        ..Default::default()
    }
    .with_kind(action);
    let mut cache: std::collections::HashMap<String, Option<String>> = Default::default();
    let db2 = db.clone();
    let mut names = move |id: &str| -> Option<String> {
        cache
            .entry(id.to_string())
            .or_insert_with(|| {
                db2.read_blocking(|c| store::users::by_id(c, id))
                    .ok()
                    .flatten()
                    .map(|u| u.username)
            })
            .clone()
    };
    let mut print = |events: Vec<store::audit::Event>| -> anyhow::Result<Option<i64>> {
        let mut last = None;
        for e in events {
            if json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!("{}", audit_line(&e, &mut names));
            }
            last = Some(e.id);
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        Ok(last)
    };
    // The latest `lines` events, oldest first.
    let f2 = filter.clone();
    let mut latest: Vec<store::audit::Event> = db
        .read_blocking(|c| store::audit::search(c, &f2, None, lines))?
        .into_iter()
        .map(|n| n.event)
        .collect();
    latest.reverse();
    let mut last = print(latest)?.unwrap_or(0);
    if !follow {
        return Ok(());
    }
    if last == 0 {
        last = db.read_blocking(store::audit::latest_id)?;
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        filter.after_id = Some(last);
        // At most 500 a second: a burst is printed over the next seconds, never skipped.
        let f2 = filter.clone();
        let batch = db.read_blocking(|c| store::audit::list(c, &f2, 500, 0))?;
        if let Some(id) = print(batch)? {
            last = id;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_times() {
        assert_eq!(parse_since("2h", 10_000).unwrap(), 10_000 - 7200);
        assert_eq!(
            parse_since("7d", 1_000_000).unwrap(),
            1_000_000 - 7 * 86_400
        );
        assert_eq!(parse_since("2026-12-01", 0).unwrap(), 1_796_083_200);
        assert_eq!(
            parse_since("2026-12-01T08:00:00Z", 0).unwrap(),
            1_796_083_200 + 8 * 3600
        );
        assert!(parse_since("yesterday", 0).is_err());
    }
}
