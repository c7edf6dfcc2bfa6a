//! Numbered SQL migrations embedded from migrations/, applied in one transaction each and
//! recorded in `PRAGMA user_version`. A database newer than this binary is refused.

use rusqlite::Connection;

use super::StoreError;
/// migrations/, embedded in the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "migrations/"]
#[include = "*.sql"]
struct Migrations;

/// (version, sql) sorted by version, from files named `NNNN_name.sql`.
pub fn embedded() -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Migrations::iter()
        .filter_map(|name| {
            let version = name.split('_').next()?.parse::<u32>().ok()?;
            let file = Migrations::get(&name)?;
            Some((version, String::from_utf8_lossy(&file.data).into_owned()))
        })
        .collect();
    out.sort_by_key(|(v, _)| *v);
    out
}

pub fn latest_version() -> u32 {
    embedded().last().map(|(v, _)| *v).unwrap_or(0)
}

pub fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                StoreError::Migration(
                    "the database file is not a SQLite database (corrupt or another file)".into(),
                )
            }
            other => StoreError::Sqlite(other),
        })
}

/// Applies every pending migration; returns the versions applied.
pub fn migrate(conn: &mut Connection) -> Result<Vec<u32>, StoreError> {
    let current = current_version(conn)?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {current}, newer than this binary understands ({latest}); \
             run a newer Portcullis or restore a backup"
        )));
    }
    let mut applied = Vec::new();
    for (version, sql) in embedded().into_iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&sql)
            .map_err(|e| StoreError::Migration(format!("migration {version:04} failed: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        applied.push(version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps() {
        let versions: Vec<u32> = embedded().iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=versions.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn migrate_applies_once_and_records_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        assert_eq!(migrate(&mut conn).unwrap().len(), embedded().len());
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        assert!(migrate(&mut conn).unwrap().is_empty());
    }

    #[test]
    fn signing_out_finds_families_through_the_partial_session_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT family_id FROM refresh_tokens
                 WHERE sid = ?1 AND code_hash IS NOT NULL AND offline = 0",
            )
            .unwrap()
            .query_map(["s"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|d| d.contains("refresh_tokens_first_sid")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let e = migrate(&mut conn).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
    }

    #[test]
    fn schema_enforces_constraints() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        migrate(&mut conn).unwrap();
        // A confidential client needs a secret hash.
        assert!(conn
            .execute("INSERT INTO clients (id, name, public, created_at, updated_at) VALUES ('c', 'C', 0, 0, 0)", [])
            .is_err());
        // Memberships need real users and groups.
        assert!(
            conn.execute(
                "INSERT INTO group_members (group_id, user_id) VALUES ('g', 'u')",
                []
            )
            .is_err()
        );
    }
}
