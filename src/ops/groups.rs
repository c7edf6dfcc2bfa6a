//! Group operations shared by the console, the admin API and the CLI. Group names are what
//! the `groups` claim carries; membership of `admins` opens the console.

use serde_json::{Map, Value, json};

use crate::clock::UnixTime;
use crate::crypto::secret::random_id;
use crate::ops::FieldError;
use crate::ops::users;
use crate::ops::{self, Actor, OpError, Subject};
use crate::store::groups::GroupDetail;
use crate::store::users::{ADMIN_GROUP, User};
use crate::store::{self, StoreError};

/// Everything an administrator sets on a group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupInput {
    pub name: String,
    pub description: Option<String>,
    pub claims: Map<String, Value>,
    /// Members must also use a passkey after their password.
    pub require_passkey: bool,
}

impl GroupInput {
    pub fn of(g: &GroupDetail) -> Self {
        Self {
            name: g.name.clone(),
            description: g.description.clone(),
            claims: g.claims.clone(),
            require_passkey: g.require_passkey,
        }
    }
}

/// 1 to 64 letters, digits, spaces and `. _ - @` (apps compare these names, e.g. Grafana's
/// role mapping, so keep them simple).
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name == name.trim()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ' '));
    if ok {
        Ok(())
    } else {
        Err(FieldError {
            field: "name",
            message: "Use 1 to 64 letters, digits, spaces and . _ - @ only.".into(),
        })
    }
}

fn validate(input: &GroupInput) -> Result<(), FieldError> {
    validate_name(&input.name)?;
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(FieldError {
            field: "description",
            message: "Keep the description under 500 characters.".into(),
        });
    }
    users::validate_claims(&input.claims)
}

fn normalized(mut input: GroupInput) -> GroupInput {
    input.name = input.name.trim().to_string();
    input.description = input
        .description
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    input
}

/// A group by id or, failing that, by name.
pub fn find(
    conn: &rusqlite::Connection,
    id_or_name: &str,
) -> Result<Option<GroupDetail>, StoreError> {
    match store::groups::detail_by_id(conn, id_or_name)? {
        Some(g) => Ok(Some(g)),
        None => store::groups::detail_by_name(conn, id_or_name),
    }
}

pub fn create(
    conn: &rusqlite::Connection,
    actor: &Actor,
    input: GroupInput,
    now: UnixTime,
) -> Result<GroupDetail, OpError> {
    let input = normalized(input);
    validate(&input)?;
    if store::groups::id_by_name(conn, &input.name)?.is_some() {
        return Err(ops::conflict("name", "A group with this name exists."));
    }
    let g = GroupDetail {
        id: random_id(),
        name: input.name,
        description: input.description,
        claims: input.claims,
        require_passkey: input.require_passkey,
        created_at: now,
        members: 0,
    };
    store::groups::insert_detail(conn, &g)?;
    ops::record(
        conn,
        actor,
        "group.created",
        Subject {
            detail: Some(json!({"group_id": g.id, "name": g.name})),
            ..Default::default()
        },
        now,
    )?;
    Ok(g)
}

pub fn update(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    input: GroupInput,
    now: UnixTime,
) -> Result<GroupDetail, OpError> {
    let input = normalized(input);
    validate(&input)?;
    let cur = store::groups::detail_by_id(conn, id)?.ok_or(OpError::NotFound)?;
    if cur.name.eq_ignore_ascii_case(ADMIN_GROUP) && input.name != cur.name {
        return Err(ops::conflict(
            "name",
            "The admins group keeps its name: its members may use this console.",
        ));
    }
    if store::groups::id_by_name(conn, &input.name)?.is_some_and(|other| other != id) {
        return Err(ops::conflict("name", "A group with this name exists."));
    }
    let g = GroupDetail {
        name: input.name,
        description: input.description,
        claims: input.claims,
        require_passkey: input.require_passkey,
        ..cur.clone()
    };
    store::groups::update_detail(conn, &g)?;
    let mut changed = Vec::new();
    for (name, differs) in [
        ("name", cur.name != g.name),
        ("description", cur.description != g.description),
        ("claims", cur.claims != g.claims),
        ("require_passkey", cur.require_passkey != g.require_passkey),
    ] {
        if differs {
            changed.push(name);
        }
    }
    if !changed.is_empty() {
        ops::record(
            conn,
            actor,
            "group.updated",
            Subject {
                detail: Some(json!({"group_id": id, "name": g.name, "changed": changed})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(g)
}

/// Deletes a group. `admins` stays; a group that restricts an application stays until the
/// application no longer names it (deleting it would let everyone in).
pub fn delete(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    now: UnixTime,
) -> Result<GroupDetail, OpError> {
    let g = store::groups::detail_by_id(conn, id)?.ok_or(OpError::NotFound)?;
    if g.name.eq_ignore_ascii_case(ADMIN_GROUP) {
        return Err(ops::conflict(
            "group",
            "The admins group cannot be deleted: its members may use this console.",
        ));
    }
    let apps = store::groups::restricting_clients(conn, id)?;
    if !apps.is_empty() {
        return Err(ops::conflict(
            "group",
            format!(
                "Only this group may sign in to {}: remove the group from {} first, or deleting it would let everyone in.",
                apps.join(", "),
                if apps.len() == 1 {
                    "that application"
                } else {
                    "those applications"
                }
            ),
        ));
    }
    store::groups::delete(conn, id)?;
    ops::record(
        conn,
        actor,
        "group.deleted",
        Subject {
            detail: Some(json!({"group_id": id, "name": g.name, "members": g.members})),
            ..Default::default()
        },
        now,
    )?;
    Ok(g)
}

/// Adds a user (by id or username) to the group.
pub fn add_member(
    conn: &rusqlite::Connection,
    actor: &Actor,
    group_id: &str,
    user: &str,
    now: UnixTime,
) -> Result<User, OpError> {
    let g = store::groups::detail_by_id(conn, group_id)?.ok_or(OpError::NotFound)?;
    let Some(u) = users::find(conn, user)? else {
        return Err(ops::invalid(
            "username",
            format!("There is no user named {user:?}."),
        ));
    };
    if !store::groups::is_member(conn, group_id, &u.id)? {
        store::groups::add_member(conn, group_id, &u.id)?;
        ops::record(
            conn,
            actor,
            "group.member_added",
            Subject {
                user_id: Some(&u.id),
                detail: Some(json!({"group_id": group_id, "name": g.name})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(u)
}

/// Removes a user (by id or username) from the group; false if they were not a member.
pub fn remove_member(
    conn: &rusqlite::Connection,
    actor: &Actor,
    group_id: &str,
    user: &str,
    now: UnixTime,
) -> Result<bool, OpError> {
    let g = store::groups::detail_by_id(conn, group_id)?.ok_or(OpError::NotFound)?;
    let Some(u) = users::find(conn, user)? else {
        return Ok(false);
    };
    if g.name.eq_ignore_ascii_case(ADMIN_GROUP) {
        users::guard_admins(conn, actor, &u, true, "username")?;
    }
    if !store::groups::remove_member(conn, group_id, &u.id)? {
        return Ok(false);
    }
    ops::record(
        conn,
        actor,
        "group.member_removed",
        Subject {
            user_id: Some(&u.id),
            detail: Some(json!({"group_id": group_id, "name": g.name})),
            ..Default::default()
        },
        now,
    )?;
    Ok(true)
}

pub fn to_json(g: &GroupDetail) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "claims": g.claims,
        "require_passkey": g.require_passkey,
        "members": g.members,
        "created_at": g.created_at,
    })
}
