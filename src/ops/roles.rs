//! Roles per application, shared by the console, the admin API and the CLI. An application
//! defines its roles (Grafana: Admin, Editor, Viewer); roles are granted to people and to
//! groups of that application only; the `roles` claim carries the names a person holds there.

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::crypto::secret::random_id;
use crate::ops::{self, Actor, FieldError, OpError, Subject};
use crate::store::roles::{Grantee, Role};
use crate::store::{self, StoreError};

/// What an administrator types for a role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleInput {
    pub name: String,
    pub description: Option<String>,
}

/// 1 to 64 characters without spaces or commas: apps split role lists on both (Grafana's
/// `role_attribute_path`, `X-Roles: a,b` headers), so a name with one would become two roles.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ops::field("name", "Use 1 to 64 characters."));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == ',' || c.is_control())
    {
        return Err(ops::field(
            "name",
            "A role name cannot contain spaces or commas (apps split role lists on them). Try Admin, Editor or read-only.",
        ));
    }
    Ok(())
}

fn normalized(mut input: RoleInput) -> Result<RoleInput, FieldError> {
    input.name = input.name.trim().to_string();
    input.description = input
        .description
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    validate_name(&input.name)?;
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(ops::field(
            "description",
            "Keep the description under 500 characters.",
        ));
    }
    Ok(input)
}

/// The application's role by id or, failing that, by name (any case). A role of another
/// application is not found here: roles never cross applications.
pub fn find(
    conn: &rusqlite::Connection,
    client_id: &str,
    id_or_name: &str,
) -> Result<Option<Role>, StoreError> {
    if let Some(r) = store::roles::by_id(conn, id_or_name)?
        && r.client_id == client_id
    {
        return Ok(Some(r));
    }
    store::roles::by_name(conn, client_id, id_or_name)
}

fn role_detail(r: &Role) -> Value {
    json!({"role_id": r.id, "name": r.name})
}

pub fn create(
    conn: &rusqlite::Connection,
    actor: &Actor,
    client_id: &str,
    input: RoleInput,
    now: UnixTime,
) -> Result<Role, OpError> {
    let input = normalized(input)?;
    store::clients::by_id(conn, client_id)?.ok_or(OpError::NotFound)?;
    if let Some(same) = store::roles::by_name(conn, client_id, &input.name)? {
        return Err(ops::conflict(
            "name",
            format!("This application already has a role named {}.", same.name),
        ));
    }
    let role = Role {
        id: random_id(),
        client_id: client_id.to_string(),
        name: input.name,
        description: input.description,
        created_at: now,
        grants: 0,
    };
    store::roles::insert(conn, &role)?;
    ops::record(
        conn,
        actor,
        "role.created",
        Subject {
            client_id: Some(client_id),
            detail: Some(role_detail(&role)),
            ..Default::default()
        },
        now,
    )?;
    Ok(role)
}

pub fn update(
    conn: &rusqlite::Connection,
    actor: &Actor,
    client_id: &str,
    role_id: &str,
    input: RoleInput,
    now: UnixTime,
) -> Result<Role, OpError> {
    let input = normalized(input)?;
    let cur = find(conn, client_id, role_id)?.ok_or(OpError::NotFound)?;
    if store::roles::by_name(conn, client_id, &input.name)?.is_some_and(|o| o.id != cur.id) {
        return Err(ops::conflict(
            "name",
            "This application already has a role with this name.",
        ));
    }
    let role = Role {
        name: input.name,
        description: input.description,
        ..cur.clone()
    };
    if role != cur {
        store::roles::update(conn, &role)?;
        ops::record(
            conn,
            actor,
            "role.updated",
            Subject {
                client_id: Some(client_id),
                detail: Some(json!({"role_id": role.id, "name": role.name, "was": cur.name})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(role)
}

/// Deletes a role. One still granted to someone is deleted only when `confirmed`, and then
/// every grant goes with it in this same transaction.
pub fn delete(
    conn: &rusqlite::Connection,
    actor: &Actor,
    client_id: &str,
    role_id: &str,
    confirmed: bool,
    now: UnixTime,
) -> Result<Role, OpError> {
    let role = find(conn, client_id, role_id)?.ok_or(OpError::NotFound)?;
    if role.grants > 0 && !confirmed {
        return Err(ops::conflict(
            "confirm",
            format!(
                "{} is still granted to {} {}. Confirm to revoke it from all of them and delete it.",
                role.name,
                role.grants,
                if role.grants == 1 {
                    "person or group"
                } else {
                    "people or groups"
                }
            ),
        ));
    }
    store::roles::delete(conn, &role.id)?;
    ops::record(
        conn,
        actor,
        "role.deleted",
        Subject {
            client_id: Some(client_id),
            detail: Some(json!({"role_id": role.id, "name": role.name, "revoked": role.grants})),
            ..Default::default()
        },
        now,
    )?;
    Ok(role)
}

/// Who a grant is for, as an administrator names them: a user or a group, by id or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GranteeRef {
    User(String),
    Group(String),
}

/// The grantee and their name for messages and audit.
fn resolve(
    conn: &rusqlite::Connection,
    to: &GranteeRef,
) -> Result<(Grantee, String, Option<String>), OpError> {
    match to {
        GranteeRef::User(u) => {
            let user = ops::users::find(conn, u)?
                .ok_or_else(|| ops::invalid("user", format!("There is no user {u}.")))?;
            Ok((Grantee::User(user.id.clone()), user.username, Some(user.id)))
        }
        GranteeRef::Group(g) => {
            let group = ops::groups::find(conn, g)?
                .ok_or_else(|| ops::invalid("group", format!("There is no group {g}.")))?;
            Ok((Grantee::Group(group.id), group.name, None))
        }
    }
}

/// The role to grant or revoke: it must be one of this application's.
fn role_of_app(conn: &rusqlite::Connection, client_id: &str, role: &str) -> Result<Role, OpError> {
    let client = store::clients::by_id(conn, client_id)?.ok_or(OpError::NotFound)?;
    if let Some(r) = find(conn, client_id, role)? {
        return Ok(r);
    }
    if let Some(other) = store::roles::by_id(conn, role)? {
        let owner = store::clients::by_id(conn, &other.client_id)?
            .map(|c| c.name)
            .unwrap_or_default();
        return Err(ops::invalid(
            "role",
            format!(
                "{} is a role of {owner}, not of {}: roles are granted per application.",
                other.name, client.name
            ),
        ));
    }
    Err(ops::invalid(
        "role",
        format!(
            "{} has no role named {role}. Define it on the application's Roles tab first.",
            client.name
        ),
    ))
}

/// Grants an application's role to a person or a group; granting it again changes nothing.
pub fn grant(
    conn: &rusqlite::Connection,
    actor: &Actor,
    client_id: &str,
    role: &str,
    to: &GranteeRef,
    now: UnixTime,
) -> Result<(Role, bool), OpError> {
    let role = role_of_app(conn, client_id, role)?;
    let (grantee, name, user_id) = resolve(conn, to)?;
    let added = store::roles::grant(conn, &role.id, &grantee, now)?;
    if added {
        ops::record(
            conn,
            actor,
            "role.granted",
            Subject {
                client_id: Some(client_id),
                user_id: user_id.as_deref(),
                detail: Some(grant_detail(&role, &grantee, &name)),
            },
            now,
        )?;
    }
    Ok((role, added))
}

/// Revokes a direct grant; `false` if they did not hold it directly.
pub fn revoke(
    conn: &rusqlite::Connection,
    actor: &Actor,
    client_id: &str,
    role: &str,
    from: &GranteeRef,
    now: UnixTime,
) -> Result<(Role, bool), OpError> {
    let role = role_of_app(conn, client_id, role)?;
    let (grantee, name, user_id) = resolve(conn, from)?;
    let removed = store::roles::revoke(conn, &role.id, &grantee)?;
    if removed {
        ops::record(
            conn,
            actor,
            "role.revoked",
            Subject {
                client_id: Some(client_id),
                user_id: user_id.as_deref(),
                detail: Some(grant_detail(&role, &grantee, &name)),
            },
            now,
        )?;
    }
    Ok((role, removed))
}

fn grant_detail(role: &Role, to: &Grantee, name: &str) -> Value {
    match to {
        Grantee::User(_) => json!({"role_id": role.id, "role": role.name, "username": name}),
        Grantee::Group(id) => {
            json!({"role_id": role.id, "role": role.name, "group_id": id, "group": name})
        }
    }
}

pub fn to_json(r: &Role) -> Value {
    json!({
        "id": r.id,
        "client_id": r.client_id,
        "name": r.name,
        "description": r.description,
        "grants": r.grants,
        "created_at": r.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_refuse_spaces_commas_and_length() {
        assert!(validate_name("Admin").is_ok());
        assert!(validate_name("read-only").is_ok());
        assert!(validate_name("grafana:editor").is_ok());
        for bad in ["", "Site Admin", "a,b", "tab\there", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
