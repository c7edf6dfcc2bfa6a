//! Groups and memberships. Group names are what the `groups` claim carries.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
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
    conn.exec(
        "INSERT INTO groups (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, now],
    )?;
    Ok(id)
}

pub fn id_by_name(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .row("SELECT id FROM groups WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn add_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<(), StoreError> {
    conn.exec(
        "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
        params![group_id, user_id],
    )?;
    Ok(())
}

pub fn remove_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec(
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
    Ok(conn.exec("DELETE FROM groups WHERE id = ?1", [id])? == 1)
}

// ---- administration (console, admin API, CLI) ----------------------------------------------

/// A group with everything the console and API edit.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDetail {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub require_passkey: bool,
    pub created_at: UnixTime,
    pub members: i64,
}

const DETAIL: &str =
    "SELECT g.id, g.name, g.description, g.claims, g.require_passkey, g.created_at,
    (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) FROM groups g";

fn detail_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(GroupDetail, String)> {
    Ok((
        GroupDetail {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            claims: serde_json::Map::new(),
            require_passkey: r.get(4)?,
            created_at: r.get(5)?,
            members: r.get(6)?,
        },
        r.get(3)?,
    ))
}

fn finish_detail((mut g, claims): (GroupDetail, String)) -> Result<GroupDetail, StoreError> {
    g.claims = super::json_col(&claims)?;
    Ok(g)
}

pub fn detail_by_id(conn: &Connection, id: &str) -> Result<Option<GroupDetail>, StoreError> {
    conn.row(&format!("{DETAIL} WHERE g.id = ?1"), [id], detail_row)
        .optional()?
        .map(finish_detail)
        .transpose()
}

pub fn detail_by_name(conn: &Connection, name: &str) -> Result<Option<GroupDetail>, StoreError> {
    conn.row(&format!("{DETAIL} WHERE g.name = ?1"), [name], detail_row)
        .optional()?
        .map(finish_detail)
        .transpose()
}

/// Every group with its details, by name (groups are few: tens, not thousands).
pub fn list_details(conn: &Connection) -> Result<Vec<GroupDetail>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{DETAIL} ORDER BY g.name"))?;
    let rows = stmt.query_map([], detail_row)?;
    rows.map(|r| finish_detail(r?)).collect()
}

pub fn insert_detail(conn: &Connection, g: &GroupDetail) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO groups (id, name, description, claims, require_passkey, created_at) VALUES (?1,?2,?3,?4,?5,?6)",
        params![
            g.id,
            g.name,
            g.description,
            serde_json::Value::Object(g.claims.clone()).to_string(),
            g.require_passkey,
            g.created_at
        ],
    )?;
    Ok(())
}

pub fn update_detail(conn: &Connection, g: &GroupDetail) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE groups SET name = ?2, description = ?3, claims = ?4, require_passkey = ?5 WHERE id = ?1",
        params![
            g.id,
            g.name,
            g.description,
            serde_json::Value::Object(g.claims.clone()).to_string(),
            g.require_passkey
        ],
    )? == 1)
}

/// A member as listed on a group page.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user_id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub disabled: bool,
}

/// Members by username, a page at a time.
pub fn members(
    conn: &Connection,
    group_id: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<Member>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.disabled FROM group_members m JOIN users u ON u.id = m.user_id
         WHERE m.group_id = ?1 ORDER BY u.username LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![group_id, limit, offset], |r| {
        Ok(Member {
            user_id: r.get(0)?,
            username: r.get(1)?,
            display_name: r.get(2)?,
            disabled: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn is_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT 1 FROM group_members WHERE group_id = ?1 AND user_id = ?2",
            params![group_id, user_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Names of the applications that only let this group (among others) sign in.
pub fn restricting_clients(conn: &Connection, group_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.name FROM client_allowed_groups a JOIN clients c ON c.id = a.client_id
         WHERE a.group_id = ?1 ORDER BY c.name COLLATE NOCASE",
    )?;
    Ok(stmt
        .query_map([group_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Makes the user a member of exactly these groups (ids).
pub fn set_memberships(
    conn: &Connection,
    user_id: &str,
    group_ids: &[String],
) -> Result<(), StoreError> {
    conn.exec("DELETE FROM group_members WHERE user_id = ?1", [user_id])?;
    for g in group_ids {
        add_member(conn, g, user_id)?;
    }
    Ok(())
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.row("SELECT count(*) FROM groups", [], |r| r.get(0))?)
}
