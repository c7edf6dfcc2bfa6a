//! User operations shared by the CLI, the setup page and (later) the console and admin API:
//! validate once, write once.

use serde_json::Map;

use crate::account::password_policy;
use crate::clock::UnixTime;
use crate::crypto::secret::random_id;
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

/// A field-level validation problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
pub fn insert(conn: &rusqlite::Connection, u: &NewUser, now: UnixTime) -> Result<User, UserError> {
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
            UserError::Invalid(FieldError {
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
            UserError::Invalid(FieldError { field: "email", .. })
        ));
        assert!(db.read_blocking(store::users::any_admin).unwrap());
    }
}
