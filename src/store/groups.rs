//! Groups and memberships. Group names are what the `groups` claim carries.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::clock::UnixTime;
use crate::crypto::secret::random_id;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub members: i64,
}

/// The id of the group named `name`, creating it if absent.
pub fn ensure(conn: &Connection, name: &str, now: UnixTime) -> Result<String, StoreError> {
    if let Some(id) = id_by_name(conn, name)? {
        return Ok(id);
    }
    let id = random_id();
    conn.execute(
        "INSERT INTO groups (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, now],
    )?;
    Ok(id)
}

pub fn id_by_name(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT id FROM groups WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn add_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
        params![group_id, user_id],
    )?;
    Ok(())
}

pub fn remove_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
        params![group_id, user_id],
    )? == 1)
}

pub fn list(conn: &Connection) -> Result<Vec<Group>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
         FROM groups g ORDER BY g.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Group {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            members: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM groups WHERE id = ?1", [id])? == 1)
}
