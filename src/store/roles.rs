//! Roles per application and who holds them. A role is granted to a person or to a group; a
//! person's roles in an application are their own grants and those of their groups. Role
//! names are what the `roles` claim carries.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: UnixTime,
    /// People and groups it is granted to.
    pub grants: i64,
}

/// Who holds a role: one person or one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    User(String),
    Group(String),
}

/// A grant as listed on a role's page.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub grantee: Grantee,
    /// Username or group name.
    pub name: String,
    /// A person's display name, if they have one.
    pub display_name: Option<String>,
    pub created_at: UnixTime,
}

const ROLE: &str = "SELECT r.id, r.client_id, r.name, r.description, r.created_at,
    (SELECT count(*) FROM role_grants g WHERE g.role_id = r.id) FROM client_roles r";

fn role_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Role> {
    Ok(Role {
        id: r.get(0)?,
        client_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        created_at: r.get(4)?,
        grants: r.get(5)?,
    })
}

pub fn insert(conn: &Connection, role: &Role) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO client_roles (id, client_id, name, description, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![
            role.id,
            role.client_id,
            role.name,
            role.description,
            role.created_at
        ],
    )?;
    Ok(())
}

pub fn update(conn: &Connection, role: &Role) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE client_roles SET name = ?2, description = ?3 WHERE id = ?1",
        params![role.id, role.name, role.description],
    )? == 1)
}

/// Deletes the role and, through the foreign key, every grant of it.
pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec("DELETE FROM client_roles WHERE id = ?1", [id])? == 1)
}

/// The application's roles by name.
pub fn list(conn: &Connection, client_id: &str) -> Result<Vec<Role>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{ROLE} WHERE r.client_id = ?1 ORDER BY r.name COLLATE NOCASE"
    ))?;
    let rows = stmt.query_map([client_id], role_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Role>, StoreError> {
    Ok(conn
        .row(&format!("{ROLE} WHERE r.id = ?1"), [id], role_row)
        .optional()?)
}

/// The application's role of this name (any case).
pub fn by_name(conn: &Connection, client_id: &str, name: &str) -> Result<Option<Role>, StoreError> {
    Ok(conn
        .row(
            &format!("{ROLE} WHERE r.client_id = ?1 AND r.name = ?2"),
            params![client_id, name],
            role_row,
        )
        .optional()?)
}

/// Grants the role; `false` if the grantee already held it directly.
pub fn grant(
    conn: &Connection,
    role_id: &str,
    to: &Grantee,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let (user, group) = columns(to);
    Ok(conn.exec(
        "INSERT OR IGNORE INTO role_grants (role_id, user_id, group_id, created_at) VALUES (?1,?2,?3,?4)",
        params![role_id, user, group, now],
    )? == 1)
}

/// Revokes a direct grant; `false` if there was none.
pub fn revoke(conn: &Connection, role_id: &str, from: &Grantee) -> Result<bool, StoreError> {
    let n = match from {
        Grantee::User(id) => conn.exec(
            "DELETE FROM role_grants WHERE role_id = ?1 AND user_id = ?2",
            params![role_id, id],
        )?,
        Grantee::Group(id) => conn.exec(
            "DELETE FROM role_grants WHERE role_id = ?1 AND group_id = ?2",
            params![role_id, id],
        )?,
    };
    Ok(n == 1)
}

fn columns(g: &Grantee) -> (Option<&str>, Option<&str>) {
    match g {
        Grantee::User(id) => (Some(id), None),
        Grantee::Group(id) => (None, Some(id)),
    }
}

/// Who holds the role directly: groups first, then people, each by name.
pub fn grantees(conn: &Connection, role_id: &str) -> Result<Vec<GrantRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 'group', g.id, g.name, rg.created_at, NULL FROM role_grants rg JOIN groups g ON g.id = rg.group_id
           WHERE rg.role_id = ?1
         UNION ALL
         SELECT 'user', u.id, u.username, rg.created_at, u.display_name FROM role_grants rg JOIN users u ON u.id = rg.user_id
           WHERE rg.role_id = ?1
         ORDER BY 1, 3 COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([role_id], |r| {
        let kind: String = r.get(0)?;
        let id: String = r.get(1)?;
        Ok(GrantRow {
            grantee: if kind == "group" {
                Grantee::Group(id)
            } else {
                Grantee::User(id)
            },
            name: r.get(2)?,
            created_at: r.get(3)?,
            display_name: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The application's roles with whether the user holds each (directly or through a group),
/// in one read: empty when the application defines no roles. What the `roles` claim and
/// "only people with a role" are computed from.
pub fn of_user(
    conn: &Connection,
    client_id: &str,
    user_id: &str,
) -> Result<Vec<(String, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name, EXISTS (
             SELECT 1 FROM role_grants g WHERE g.role_id = r.id AND (g.user_id = ?2
               OR g.group_id IN (SELECT group_id FROM group_members WHERE user_id = ?2)))
         FROM client_roles r WHERE r.client_id = ?1 ORDER BY r.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map(params![client_id, user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A role a person holds, as the user's page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRole {
    pub client_id: String,
    pub client_name: String,
    pub role: String,
    /// The group it comes through; `None` when granted to the person directly.
    pub via_group: Option<String>,
}

/// The roles the user holds in every application, by application and role name.
pub fn held_by_user(conn: &Connection, user_id: &str) -> Result<Vec<HeldRole>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.name, r.name, NULL FROM role_grants g
           JOIN client_roles r ON r.id = g.role_id JOIN clients c ON c.id = r.client_id
           WHERE g.user_id = ?1
         UNION ALL
         SELECT c.id, c.name, r.name, gr.name FROM role_grants g
           JOIN client_roles r ON r.id = g.role_id JOIN clients c ON c.id = r.client_id
           JOIN groups gr ON gr.id = g.group_id
           JOIN group_members m ON m.group_id = g.group_id AND m.user_id = ?1
         ORDER BY 2 COLLATE NOCASE, 3 COLLATE NOCASE, 4",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(HeldRole {
            client_id: r.get(0)?,
            client_name: r.get(1)?,
            role: r.get(2)?,
            via_group: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the application defines any role.
pub fn any(conn: &Connection, client_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT 1 FROM client_roles WHERE client_id = ?1 LIMIT 1",
            [client_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        crate::store::migrate::migrate(&mut conn).unwrap();
        for (id, name) in [("c1", "Grafana"), ("c2", "Wiki")] {
            conn.execute(
                "INSERT INTO clients (id, name, public, created_at, updated_at) VALUES (?1, ?2, 1, 0, 0)",
                params![id, name],
            )
            .unwrap();
        }
        for (id, name) in [("u1", "ada"), ("u2", "bob")] {
            conn.execute(
                "INSERT INTO users (id, username, created_at, updated_at) VALUES (?1, ?2, 0, 0)",
                params![id, name],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO groups (id, name, created_at) VALUES ('g1', 'family', 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO group_members (group_id, user_id) VALUES ('g1', 'u2')",
            [],
        )
        .unwrap();
        conn
    }

    fn role(conn: &Connection, id: &str, client: &str, name: &str) {
        insert(
            conn,
            &Role {
                id: id.into(),
                client_id: client.into(),
                name: name.into(),
                description: None,
                created_at: 0,
                grants: 0,
            },
        )
        .unwrap();
    }

    #[test]
    fn roles_come_from_direct_grants_and_groups_and_stay_in_their_application() {
        let conn = db();
        assert!(of_user(&conn, "c1", "u1").unwrap().is_empty());
        role(&conn, "r1", "c1", "Admin");
        role(&conn, "r2", "c1", "Viewer");
        role(&conn, "r3", "c2", "Admin");
        assert!(grant(&conn, "r1", &Grantee::User("u1".into()), 1).unwrap());
        assert!(!grant(&conn, "r1", &Grantee::User("u1".into()), 2).unwrap());
        grant(&conn, "r2", &Grantee::Group("g1".into()), 1).unwrap();
        let held = |c, u| -> Vec<String> {
            of_user(&conn, c, u)
                .unwrap()
                .into_iter()
                .filter(|(_, h)| *h)
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(held("c1", "u1"), ["Admin"]);
        assert_eq!(held("c1", "u2"), ["Viewer"]);
        assert!(held("c2", "u1").is_empty());
        assert_eq!(of_user(&conn, "c2", "u1").unwrap().len(), 1);
        assert_eq!(by_id(&conn, "r1").unwrap().unwrap().grants, 1);
        assert_eq!(held_by_user(&conn, "u2").unwrap().len(), 1);
        assert!(revoke(&conn, "r1", &Grantee::User("u1".into())).unwrap());
        assert!(held("c1", "u1").is_empty());
    }

    #[test]
    fn names_are_unique_per_application_in_any_case() {
        let conn = db();
        role(&conn, "r1", "c1", "Admin");
        let dup = insert(
            &conn,
            &Role {
                id: "r2".into(),
                client_id: "c1".into(),
                name: "admin".into(),
                description: None,
                created_at: 0,
                grants: 0,
            },
        );
        assert!(dup.is_err());
        role(&conn, "r3", "c2", "admin");
        assert_eq!(by_name(&conn, "c1", "ADMIN").unwrap().unwrap().id, "r1");
    }

    #[test]
    fn deleting_a_role_removes_its_grants() {
        let conn = db();
        role(&conn, "r1", "c1", "Admin");
        grant(&conn, "r1", &Grantee::Group("g1".into()), 1).unwrap();
        assert!(delete(&conn, "r1").unwrap());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM role_grants", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
