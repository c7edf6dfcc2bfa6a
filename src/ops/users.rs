//! User operations shared by the CLI, the setup page and (later) the console and admin API:
//! validate once, write once.

use serde_json::{Map, Value, json};

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::domain::password_policy;
use crate::ops::{self, Actor, FieldError, OpError, Subject, field};
use crate::store::users::{ADMIN_GROUP, User};
use crate::store::{self, StoreError};

/// Input for a new user. The password, if any, is already hashed (hashing never runs inside a
/// transaction).
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
    pub admin: bool,
}

pub fn validate_username(username: &str) -> Result<(), FieldError> {
    if username.is_empty() || username.chars().count() > 64 {
        return Err(field("username", "Use 1 to 64 characters."));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(field("username", "Use letters, digits, and . _ - @ only."));
    }
    Ok(())
}

pub fn validate_email(email: &str) -> Result<(), FieldError> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(field(
            "email",
            "Enter an email address such as name@example.com.",
        ))
    }
}

/// Checks a password against the policy (before hashing it).
pub fn validate_password(password: &str, min_length: u32) -> Result<(), FieldError> {
    password_policy::check(password, min_length as usize)
        .map_err(|e| field("password", e.to_string()))
}

/// Checks the fields of a new user without touching the database.
pub fn validate_new(u: &NewUser) -> Result<(), FieldError> {
    validate_username(&u.username)?;
    if let Some(e) = &u.email {
        validate_email(e)?;
    }
    Ok(())
}

/// Inserts the user and its memberships (creating missing groups) on `conn`, inside the
/// caller's transaction.
pub fn insert(conn: &rusqlite::Connection, u: &NewUser, now: UnixTime) -> Result<User, OpError> {
    validate_new(u)?;
    if store::users::by_username(conn, &u.username)?.is_some() {
        return Err(field("username", "This username is taken.").into());
    }
    if let Some(e) = &u.email
        && store::users::by_login(conn, e)?.is_some_and(|x| {
            x.email
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(e))
        })
    {
        return Err(field("email", "Another account uses this email address.").into());
    }
    let user = User {
        id: random_id(),
        username: u.username.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        display_name: u.display_name.clone().filter(|s| !s.trim().is_empty()),
        given_name: None,
        family_name: None,
        picture: None,
        password_hash: u.password_hash.clone(),
        disabled: false,
        require_passkey: false,
        claims: Map::new(),
        created_at: now,
        updated_at: now,
    };
    store::users::insert(conn, &user)?;
    let mut groups = u.groups.clone();
    if u.admin {
        groups.push(ADMIN_GROUP.to_string());
    }
    for g in groups {
        let g = g.trim();
        if g.is_empty() {
            continue;
        }
        let gid = store::groups::ensure(conn, g, now)?;
        store::groups::add_member(conn, &gid, &user.id)?;
    }
    Ok(user)
}

// ---- administration: console, admin API and CLI ---------------------------------------------

/// Everything an administrator edits on a user (the console form, the API body, the CLI flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserEdit {
    pub username: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Group names; each must exist.
    pub groups: Vec<String>,
    pub disabled: bool,
    pub claims: Map<String, Value>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl UserEdit {
    /// The user as it is now, to change a few fields.
    pub fn of(u: &User, groups: Vec<String>) -> Self {
        Self {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            given_name: u.given_name.clone(),
            family_name: u.family_name.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            groups,
            disabled: u.disabled,
            claims: u.claims.clone(),
        }
    }

    fn normalized(mut self) -> Self {
        self.username = self.username.trim().to_string();
        self.display_name = non_empty(self.display_name);
        self.given_name = non_empty(self.given_name);
        self.family_name = non_empty(self.family_name);
        self.email = non_empty(self.email);
        let mut groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        groups.sort_by_key(|g| g.to_lowercase());
        groups.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        self.groups = groups;
        self
    }

    fn validate(&self) -> Result<(), FieldError> {
        validate_username(&self.username)?;
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        for (name, v) in [
            ("display_name", &self.display_name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 128) {
                return Err(field(
                    match name {
                        "display_name" => "display_name",
                        "given_name" => "given_name",
                        _ => "family_name",
                    },
                    "Use at most 128 characters.",
                ));
            }
        }
        validate_claims(&self.claims)
    }

    fn is_admin(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(ADMIN_GROUP))
    }
}

/// A custom claim name: a JSON member name an app can ask for (no spaces or quotes), not a
/// claim the protocol or the profile already sets.
pub fn validate_claim_name(name: &str, at: &'static str) -> Result<(), FieldError> {
    use crate::domain::claims::{RESERVED, STANDARD};
    if name.is_empty() || name.len() > 64 || !crate::domain::scope::is_scope_token(name) {
        return Err(field(
            at,
            format!(
                "{name:?} is not a usable claim name: use up to 64 letters, digits and _ - . : without spaces."
            ),
        ));
    }
    if RESERVED.contains(&name) || STANDARD.iter().any(|(s, _)| *s == name) {
        return Err(field(
            at,
            format!(
                "{name:?} is set by {} itself; choose another name.",
                crate::brand::name()
            ),
        ));
    }
    Ok(())
}

/// Custom claims: a JSON object of at most 16 KiB with usable names.
pub fn validate_claims(claims: &Map<String, Value>) -> Result<(), FieldError> {
    for name in claims.keys() {
        validate_claim_name(name, "claims")?;
    }
    if Value::Object(claims.clone()).to_string().len() > 16 * 1024 {
        return Err(field("claims", "Keep custom claims under 16 KiB."));
    }
    Ok(())
}

/// Parses the claims text of a form (empty means none).
pub fn parse_claims(text: &str) -> Result<Map<String, Value>, FieldError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(field(
            "claims",
            "Write a JSON object, such as {\"department\": \"kitchen\"}.",
        )),
        Err(e) => Err(field("claims", format!("This is not valid JSON: {e}."))),
    }
}

/// A user by id or, failing that, by username.
pub fn find(conn: &rusqlite::Connection, id_or_name: &str) -> Result<Option<User>, StoreError> {
    match store::users::by_id(conn, id_or_name)? {
        Some(u) => Ok(Some(u)),
        None => store::users::by_username(conn, id_or_name),
    }
}

fn check_unique(
    conn: &rusqlite::Connection,
    me: Option<&str>,
    username: &str,
    email: Option<&str>,
) -> Result<(), OpError> {
    if store::users::by_username(conn, username)?.is_some_and(|u| Some(u.id.as_str()) != me) {
        return Err(ops::conflict("username", "This username is taken."));
    }
    if let Some(e) = email
        && store::users::by_login(conn, e)?.is_some_and(|u| {
            Some(u.id.as_str()) != me
                && u.email
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(e))
        })
    {
        return Err(ops::conflict(
            "email",
            "Another account uses this email address.",
        ));
    }
    Ok(())
}

/// The ids of the named groups; every one must exist.
fn group_ids(conn: &rusqlite::Connection, names: &[String]) -> Result<Vec<String>, OpError> {
    let mut ids = Vec::new();
    for g in names {
        match store::groups::id_by_name(conn, g)? {
            Some(id) => ids.push(id),
            None => {
                return Err(ops::invalid(
                    "groups",
                    format!("There is no group named {g:?}. Create it first."),
                ));
            }
        }
    }
    Ok(ids)
}

/// Refuses a change that would leave no enabled administrator, or lock the acting
/// administrator out of the console.
pub(crate) fn guard_admins(
    conn: &rusqlite::Connection,
    actor: &Actor,
    user: &User,
    losing_admin: bool,
    at: &'static str,
) -> Result<(), OpError> {
    if !losing_admin || !store::users::is_admin(conn, &user.id)? {
        return Ok(());
    }
    if actor.user_id() == Some(user.id.as_str()) {
        return Err(ops::conflict(
            at,
            "You cannot do this to your own account: ask another administrator.",
        ));
    }
    if !user.disabled && store::users::active_admin_count(conn)? <= 1 {
        return Err(ops::conflict(
            at,
            "This is the last administrator: make someone else an administrator first.",
        ));
    }
    Ok(())
}

/// Signs the user out everywhere (sessions ended with back-channel logout queued) and revokes
/// every token they hold. Returns how many sessions ended. Call `AppState::kick_logout_delivery` after
/// the transaction commits.
pub fn sign_out_everywhere(
    conn: &rusqlite::Connection,
    actor: &Actor,
    user_id: &str,
    reason: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    let sids = store::sessions::sids_of_user(conn, user_id, None)?;
    let actor_id = actor.audit_id();
    crate::domain::session::end_sessions(conn, &sids, Some(&actor_id), reason, now)?;
    store::tokens::revoke_all_for_user(conn, user_id, now)?;
    Ok(sids.len())
}

/// Creates a user (with a password hash made beforehand, or none: then send an invite link).
pub fn create(
    conn: &rusqlite::Connection,
    actor: &Actor,
    edit: UserEdit,
    password_hash: Option<String>,
    now: UnixTime,
) -> Result<User, OpError> {
    let edit = edit.normalized();
    edit.validate()?;
    check_unique(conn, None, &edit.username, edit.email.as_deref())?;
    group_ids(conn, &edit.groups)?;
    let mut user = insert(
        conn,
        &NewUser {
            username: edit.username.clone(),
            email: edit.email.clone(),
            display_name: edit.display_name.clone(),
            password_hash,
            email_verified: edit.email_verified,
            groups: edit.groups.clone(),
            admin: false,
        },
        now,
    )?;
    if edit.given_name.is_some()
        || edit.family_name.is_some()
        || !edit.claims.is_empty()
        || edit.disabled
    {
        user.given_name = edit.given_name.clone();
        user.family_name = edit.family_name.clone();
        user.claims = edit.claims.clone();
        user.disabled = edit.disabled;
        store::users::update_profile(conn, &user, now)?;
    }
    ops::record(
        conn,
        actor,
        "user.created",
        Subject {
            user_id: Some(&user.id),
            detail: Some(json!({"username": user.username, "groups": edit.groups})),
            ..Default::default()
        },
        now,
    )?;
    Ok(user)
}

/// Saves an administrator's edit. Disabling signs the user out everywhere.
pub fn update(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    edit: UserEdit,
    now: UnixTime,
) -> Result<User, OpError> {
    let edit = edit.normalized();
    edit.validate()?;
    let cur = store::users::by_id(conn, id)?.ok_or(OpError::NotFound)?;
    check_unique(conn, Some(id), &edit.username, edit.email.as_deref())?;
    let ids = group_ids(conn, &edit.groups)?;
    guard_admins(
        conn,
        actor,
        &cur,
        edit.disabled && !cur.disabled,
        "disabled",
    )?;
    guard_admins(conn, actor, &cur, !edit.is_admin(), "groups")?;
    let before = UserEdit::of(&cur, store::users::group_names(conn, id)?).normalized();
    let mut changed = Vec::new();
    for (name, differs) in [
        ("username", before.username != edit.username),
        ("display_name", before.display_name != edit.display_name),
        ("given_name", before.given_name != edit.given_name),
        ("family_name", before.family_name != edit.family_name),
        ("email", before.email != edit.email),
        (
            "email_verified",
            before.email_verified != edit.email_verified,
        ),
        ("groups", before.groups != edit.groups),
        ("disabled", before.disabled != edit.disabled),
        ("claims", before.claims != edit.claims),
    ] {
        if differs {
            changed.push(name);
        }
    }
    let user = User {
        username: edit.username,
        display_name: edit.display_name,
        given_name: edit.given_name,
        family_name: edit.family_name,
        email: edit.email,
        email_verified: edit.email_verified,
        disabled: edit.disabled,
        claims: edit.claims,
        updated_at: now,
        ..cur.clone()
    };
    store::users::update_profile(conn, &user, now)?;
    store::groups::set_memberships(conn, id, &ids)?;
    if user.disabled && !cur.disabled {
        sign_out_everywhere(conn, actor, id, "user_disabled", now)?;
    }
    if !changed.is_empty() {
        ops::record(
            conn,
            actor,
            "user.updated",
            Subject {
                user_id: Some(id),
                detail: Some(json!({"changed": changed})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(user)
}

/// Disables (signing the user out everywhere and revoking their tokens) or enables a user.
pub fn set_disabled(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    disabled: bool,
    now: UnixTime,
) -> Result<User, OpError> {
    let mut user = store::users::by_id(conn, id)?.ok_or(OpError::NotFound)?;
    if disabled {
        guard_admins(conn, actor, &user, !user.disabled, "disabled")?;
    }
    if user.disabled == disabled {
        return Ok(user);
    }
    store::users::set_disabled(conn, id, disabled, now)?;
    if disabled {
        sign_out_everywhere(conn, actor, id, "user_disabled", now)?;
    }
    ops::record(
        conn,
        actor,
        if disabled {
            "user.disabled"
        } else {
            "user.enabled"
        },
        Subject {
            user_id: Some(id),
            ..Default::default()
        },
        now,
    )?;
    user.disabled = disabled;
    user.updated_at = now;
    Ok(user)
}

/// Deletes a user: first their sessions end (so apps hear of it by back-channel logout) and
/// their tokens are revoked.
pub fn delete(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    now: UnixTime,
) -> Result<User, OpError> {
    let user = store::users::by_id(conn, id)?.ok_or(OpError::NotFound)?;
    guard_admins(conn, actor, &user, true, "user")?;
    sign_out_everywhere(conn, actor, id, "user_deleted", now)?;
    // Their API keys would otherwise outlive them (created_by becomes NULL).
    store::api_keys::revoke_created_by(conn, id, now)?;
    store::users::delete(conn, id)?;
    ops::record(
        conn,
        actor,
        "user.deleted",
        Subject {
            user_id: Some(id),
            detail: Some(json!({"username": user.username, "email": user.email})),
            ..Default::default()
        },
        now,
    )?;
    Ok(user)
}

/// A one-time link for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Set a new password (GET /reset).
    PasswordReset,
    /// Register a passkey, or also choose a password if allowed (GET /invite).
    Invite { allow_password: bool },
}

impl LinkKind {
    /// The link's path and query for a token.
    pub fn path(self, token: &str) -> String {
        match self {
            LinkKind::PasswordReset => format!("/reset?token={token}"),
            LinkKind::Invite { .. } => format!("/invite?token={token}"),
        }
    }
}

/// Issues a one-time link (earlier unused links of the same kind stop working); returns the
/// token, shown once.
pub fn issue_link(
    conn: &rusqlite::Connection,
    actor: &Actor,
    user_id: &str,
    kind: LinkKind,
    ttl: i64,
    now: UnixTime,
) -> Result<String, OpError> {
    if store::users::by_id(conn, user_id)?.is_none() {
        return Err(OpError::NotFound);
    }
    let (purpose, allow_password, event) = match kind {
        LinkKind::PasswordReset => (
            store::links::Purpose::PasswordReset,
            true,
            "user.reset_link_issued",
        ),
        LinkKind::Invite { allow_password } => (
            store::links::Purpose::Invite,
            allow_password,
            "user.invite_issued",
        ),
    };
    let token = random_token();
    store::links::invalidate_for_user(conn, user_id, purpose, now)?;
    store::links::insert(
        conn,
        &hash_token(&token),
        purpose,
        Some(user_id),
        allow_password,
        now,
        now + ttl,
    )?;
    ops::record(
        conn,
        actor,
        event,
        Subject {
            user_id: Some(user_id),
            detail: Some(json!({"expires_at": now + ttl})),
            ..Default::default()
        },
        now,
    )?;
    Ok(token)
}

/// Sets which scope releases each custom claim (an empty scope removes the mapping).
pub fn set_claim_scopes(
    conn: &rusqlite::Connection,
    actor: &Actor,
    pairs: &[(String, String)],
    now: UnixTime,
) -> Result<(), OpError> {
    for (claim, scope) in pairs {
        validate_claim_name(claim, "claim_scopes")?;
        let scope = scope.trim();
        if !scope.is_empty() && (!crate::domain::scope::is_scope_token(scope) || scope.len() > 64) {
            return Err(ops::invalid(
                "claim_scopes",
                format!("{scope:?} is not a valid scope name (no spaces or quotes)."),
            ));
        }
    }
    let before = store::users::claim_scopes(conn)?;
    let mut changed = Vec::new();
    for (claim, scope) in pairs {
        let scope = scope.trim();
        let old = before
            .iter()
            .find(|(c, _)| c == claim)
            .map(|(_, s)| s.as_str());
        if old.unwrap_or("") != scope {
            store::users::set_claim_scope(conn, claim, scope)?;
            changed.push(json!({"claim": claim, "scope": scope}));
        }
    }
    if !changed.is_empty() {
        ops::record(
            conn,
            actor,
            "claims.scopes_changed",
            Subject {
                detail: Some(json!({"changed": changed})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(())
}

/// Sets a new password (hashed beforehand) chosen by an administrator; the user's sessions
/// end, as when they change it themselves.
pub fn set_password(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    password_hash: &str,
    now: UnixTime,
) -> Result<(), OpError> {
    if store::users::by_id(conn, id)?.is_none() {
        return Err(OpError::NotFound);
    }
    store::users::set_password_hash(conn, id, password_hash, now)?;
    let sids = store::sessions::sids_of_user(conn, id, actor.user_id())?;
    let actor_id = actor.audit_id();
    crate::domain::session::end_sessions(
        conn,
        &sids,
        Some(&actor_id),
        "password_set_by_admin",
        now,
    )?;
    ops::record(
        conn,
        actor,
        "user.password_set",
        Subject {
            user_id: Some(id),
            ..Default::default()
        },
        now,
    )?;
    Ok(())
}

/// Ends one browser session (an administrator's action): its tokens are revoked and its apps
/// told by back-channel logout (call `AppState::kick_logout_delivery` after the commit). False if unknown.
pub fn end_session(
    conn: &rusqlite::Connection,
    actor: &Actor,
    sid: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let actor_id = actor.audit_id();
    let ended = crate::domain::session::end_sessions(
        conn,
        &[sid.to_string()],
        Some(&actor_id),
        "ended_by_admin",
        now,
    )?;
    Ok(!ended.is_empty())
}

/// Withdraws an app's access for a user (the consent and the app's tokens for them).
pub fn revoke_consent(
    conn: &rusqlite::Connection,
    actor: &Actor,
    user_id: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<bool, OpError> {
    if !store::consents::revoke(conn, user_id, client_id, now)? {
        return Ok(false);
    }
    ops::record(
        conn,
        actor,
        "consent.revoked",
        Subject {
            user_id: Some(user_id),
            client_id: Some(client_id),
            ..Default::default()
        },
        now,
    )?;
    Ok(true)
}

/// A user as JSON for the admin API and the CLI (never the password hash).
pub fn to_json(u: &User, groups: &[String]) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "email_verified": u.email_verified,
        "display_name": u.display_name,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "picture": u.picture,
        "disabled": u.disabled,
        "has_password": u.password_hash.is_some(),
        "groups": groups,
        "claims": u.claims,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails_are_checked() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("").is_err());
        assert!(validate_email("a@example.com").is_ok());
        assert!(validate_email("nope").is_err());
        assert!(validate_email("a@b").is_err());
    }

    #[test]
    fn duplicates_are_refused_with_the_field_named() {
        let (_d, db) = store::test_db();
        let u = NewUser {
            username: "alice".into(),
            email: Some("a@example.com".into()),
            admin: true,
            ..Default::default()
        };
        db.try_write_blocking(|c| insert(c, &u, 0)).unwrap();
        let again = NewUser {
            username: "ALICE".into(),
            ..Default::default()
        };
        let e = db.try_write_blocking(|c| insert(c, &again, 0)).unwrap_err();
        assert!(matches!(
            e,
            OpError::Invalid(FieldError {
                field: "username",
                ..
            })
        ));
        let same_mail = NewUser {
            username: "bob".into(),
            email: Some("A@example.com".into()),
            ..Default::default()
        };
        let e = db
            .try_write_blocking(|c| insert(c, &same_mail, 0))
            .unwrap_err();
        assert!(matches!(
            e,
            OpError::Invalid(FieldError { field: "email", .. })
        ));
        assert!(db.read_blocking(store::users::any_admin).unwrap());
    }
}

/// The ways a user can sign in; removing one must never leave none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInMethods {
    pub password: bool,
    pub passkeys: i64,
    pub linked_identities: i64,
}

impl SignInMethods {
    pub fn count(&self) -> i64 {
        i64::from(self.password) + self.passkeys + self.linked_identities
    }

    /// Whether removing one method (a passkey, a linked identity) would leave none.
    pub fn only_one_left(&self) -> bool {
        self.count() <= 1
    }
}

pub fn sign_in_methods(
    conn: &rusqlite::Connection,
    user_id: &str,
) -> Result<SignInMethods, StoreError> {
    Ok(SignInMethods {
        password: store::users::by_id(conn, user_id)?.is_some_and(|u| u.password_hash.is_some()),
        passkeys: store::passkeys::count_for_user(conn, user_id)?,
        linked_identities: store::upstream::count_links_for_user(conn, user_id)?,
    })
}
