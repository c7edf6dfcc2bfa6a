//! Which local account an upstream identity signs in to. Identities are linked by the
//! (provider, subject) pair only, never by a mutable claim; the provider's policy decides
//! what happens to an identity that is not linked yet:
//!
//! - `create`: a new account (just in time): username from `preferred_username` (or the email's
//!   local part) made unique, email and `email_verified` as the upstream reports them, the
//!   default groups, and local groups mapped from the upstream `groups` claim.
//! - `link_verified_email`: linked to the local account with the same email when the upstream
//!   says `email_verified=true` AND the local address is verified too; otherwise a new account
//!   as with `create`. An unverified email never links.
//! - `existing_only`: refused; people link the provider from their account page first.
//!
//! An email already used by another local account is never duplicated nor taken over: the
//! person is told to sign in to that account and link the provider there. Each decision runs
//! inside the caller's single transaction, so a refusal leaves nothing half-created.

use rusqlite::Connection;
use serde_json::json;

use super::{Failure, Identity};
use crate::clock::UnixTime;
use crate::ops::OpError;
use crate::ops::users::{self, NewUser};
use crate::store::audit::NewEvent;
use crate::store::upstream::{LinkedIdentity, Policy, Provider};
use crate::store::users::User;
use crate::store::{self, StoreError};

/// The outcome of a federated sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub user: User,
    pub created: bool,
    /// Linked during this sign-in (by verified email or creation).
    pub linked_now: bool,
}

fn audit(
    conn: &Connection,
    kind: &str,
    user_id: &str,
    p: &Provider,
    id: &Identity,
    how: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    store::audit::record(
        conn,
        &NewEvent {
            kind,
            actor_id: Some(user_id),
            user_id: Some(user_id),
            detail: Some(json!({"provider": p.slug, "subject": id.subject, "how": how})),
            ..Default::default()
        },
        now,
    )
}

fn link(
    conn: &Connection,
    p: &Provider,
    id: &Identity,
    user_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    store::upstream::insert_link(
        conn,
        &LinkedIdentity {
            provider_id: p.id.clone(),
            subject: id.subject.clone(),
            user_id: user_id.to_string(),
            email: id.email.clone(),
            linked_at: now,
            last_used_at: Some(now),
        },
    )
}

/// Local groups from the provider's mapping of the upstream `groups` claim.
pub fn mapped_groups(p: &Provider, id: &Identity) -> Vec<String> {
    let mut out: Vec<String> = id
        .groups
        .iter()
        .filter_map(|g| p.group_mapping.get(g).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Adds the user to the mapped groups (never removes: local memberships stay the
/// administrator's).
fn sync_groups(
    conn: &Connection,
    p: &Provider,
    id: &Identity,
    user_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    for g in mapped_groups(p, id) {
        let gid = store::groups::ensure(conn, &g, now)?;
        store::groups::add_member(conn, &gid, user_id)?;
    }
    Ok(())
}

/// A local account may sign in through an upstream: enabled, and no passkey demanded (a
/// federated sign-in cannot give the passkey an administrator asked for).
fn usable(conn: &Connection, user: &User) -> Result<(), Failure> {
    if user.disabled {
        return Err(Failure::AccountDisabled);
    }
    if store::passkeys::required_for(conn, &user.id)? {
        return Err(Failure::PasskeyRequired);
    }
    Ok(())
}

/// Resolves (and links or creates) the local account for `id` signing in through `p`.
pub fn resolve(
    conn: &Connection,
    p: &Provider,
    id: &Identity,
    now: UnixTime,
) -> Result<Resolved, Failure> {
    if id.subject.is_empty() {
        return Err(Failure::InvalidToken);
    }
    // Known (provider, subject): that account, whatever the claims say today.
    if let Some(l) = store::upstream::link_by_subject(conn, &p.id, &id.subject)? {
        let user = store::users::by_id(conn, &l.user_id)?.ok_or(Failure::Internal)?;
        usable(conn, &user)?;
        store::upstream::touch_link(conn, &p.id, &id.subject, id.email.as_deref(), now)?;
        sync_groups(conn, p, id, &user.id, now)?;
        return Ok(Resolved {
            user,
            created: false,
            linked_now: false,
        });
    }
    match p.policy {
        Policy::ExistingOnly => return Err(Failure::NotLinked),
        Policy::LinkVerifiedEmail => {
            if let Some(user) = verified_email_match(conn, id)? {
                usable(conn, &user)?;
                link(conn, p, id, &user.id, now)?;
                sync_groups(conn, p, id, &user.id, now)?;
                audit(
                    conn,
                    "upstream.linked",
                    &user.id,
                    p,
                    id,
                    "verified_email",
                    now,
                )?;
                return Ok(Resolved {
                    user,
                    created: false,
                    linked_now: true,
                });
            }
        }
        Policy::Create => {}
    }
    let user = create(conn, p, id, now)?;
    usable(conn, &user)?;
    Ok(Resolved {
        user,
        created: true,
        linked_now: true,
    })
}

/// The local account with the same email, when both sides say it is verified.
fn verified_email_match(conn: &Connection, id: &Identity) -> Result<Option<User>, StoreError> {
    // "An unverified email never links": only an email the upstream verified is compared.
    let Some(email) = id.email.as_deref().filter(|_| id.email_verified) else {
        return Ok(None);
    };
    let Some(uid) = store::upstream::user_with_verified_email(conn, email)? else {
        return Ok(None);
    };
    store::users::by_id(conn, &uid)
}

/// A just-in-time account, linked, in the default and mapped groups.
fn create(conn: &Connection, p: &Provider, id: &Identity, now: UnixTime) -> Result<User, Failure> {
    let email = id
        .email
        .clone()
        .filter(|e| users::validate_email(e).is_ok());
    if let Some(e) = &email
        && store::upstream::email_in_use(conn, e)?
    {
        return Err(Failure::EmailInUse);
    }
    let username = unique_username(conn, &username_base(id))?;
    let mut groups = p.default_groups.clone();
    groups.extend(mapped_groups(p, id));
    let new = NewUser {
        username,
        email_verified: email.is_some() && id.email_verified,
        email,
        display_name: id.name.clone(),
        password_hash: None,
        groups,
        admin: false,
    };
    let user = users::insert(conn, &new, now).map_err(|e| match e {
        OpError::Store(s) => Failure::from(s),
        refused => {
            tracing::warn!(error = %refused, "just-in-time account refused");
            Failure::Internal
        }
    })?;
    link(conn, p, id, &user.id, now)?;
    audit(conn, "user.created", &user.id, p, id, "upstream", now)?;
    Ok(user)
}

/// `preferred_username`, else the email's local part, else `user`, reduced to the characters
/// usernames allow.
pub fn username_base(id: &Identity) -> String {
    let raw = id
        .username
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| id.email.as_deref().and_then(|e| e.split('@').next()))
        .unwrap_or("user");
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    let cleaned = cleaned.trim_matches('-').to_string();
    if cleaned.is_empty() {
        "user".into()
    } else {
        cleaned
    }
}

/// `base`, or `base-2`, `base-3`… whichever is free.
fn unique_username(conn: &Connection, base: &str) -> Result<String, StoreError> {
    if store::users::by_username(conn, base)?.is_none() {
        return Ok(base.to_string());
    }
    for n in 2..1000 {
        let candidate = format!("{base}-{n}");
        if store::users::by_username(conn, &candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    Ok(format!(
        "{base}-{}",
        crate::crypto::secret::random_id().get(..8).unwrap_or("x")
    ))
}

/// Links `id` to the signed-in `user_id` (from the account page). Linking the same identity
/// again is fine; an identity linked to someone else is refused.
pub fn link_to(
    conn: &Connection,
    p: &Provider,
    id: &Identity,
    user_id: &str,
    now: UnixTime,
) -> Result<(), Failure> {
    if id.subject.is_empty() {
        return Err(Failure::InvalidToken);
    }
    match store::upstream::link_by_subject(conn, &p.id, &id.subject)? {
        Some(l) if l.user_id == user_id => {
            store::upstream::touch_link(conn, &p.id, &id.subject, id.email.as_deref(), now)?;
            Ok(())
        }
        Some(_) => Err(Failure::LinkedElsewhere),
        None => {
            link(conn, p, id, user_id, now)?;
            audit(conn, "upstream.linked", user_id, p, id, "account_page", now)?;
            Ok(())
        }
    }
}

/// Why an unlink is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkRefused {
    NotFound,
    LastSignInMethod,
}

/// Unlinks one of the user's identities, unless it is their last way to sign in (no password,
/// no passkey, no other linked identity). `actor_id` is who asked: the user on their account
/// page, or an administrator (`Actor::audit_id`) in the console or the admin API.
pub fn unlink(
    conn: &Connection,
    user_id: &str,
    provider_id: &str,
    subject: &str,
    actor_id: &str,
    now: UnixTime,
) -> Result<Result<(), UnlinkRefused>, StoreError> {
    let Some(user) = store::users::by_id(conn, user_id)? else {
        return Ok(Err(UnlinkRefused::NotFound));
    };
    let Some(l) = store::upstream::link_by_subject(conn, provider_id, subject)?
        .filter(|l| l.user_id == user.id)
    else {
        return Ok(Err(UnlinkRefused::NotFound));
    };
    if crate::ops::users::sign_in_methods(conn, &user.id)?.only_one_left() {
        return Ok(Err(UnlinkRefused::LastSignInMethod));
    }
    store::upstream::delete_link(conn, &user.id, provider_id, subject)?;
    let slug = store::upstream::by_id(conn, provider_id)?
        .map(|p| p.slug)
        .unwrap_or_default();
    store::audit::record(
        conn,
        &NewEvent {
            kind: "upstream.unlinked",
            actor_id: Some(actor_id),
            user_id: Some(&user.id),
            detail: Some(json!({"provider": slug, "subject": l.subject})),
            ..Default::default()
        },
        now,
    )?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn provider(policy: Policy) -> Provider {
        Provider {
            id: "p1".into(),
            slug: "idp".into(),
            kind: store::upstream::Kind::Oidc,
            display_name: "IdP".into(),
            icon: None,
            issuer: Some("https://idp.example.com".into()),
            client_id: "c".into(),
            client_secret_sealed: None,
            scopes: "openid".into(),
            enabled: true,
            policy,
            default_groups: vec!["family".into()],
            group_mapping: BTreeMap::from([("idp-admins".into(), "editors".into())]),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn identity(sub: &str, email: &str, verified: bool) -> Identity {
        Identity {
            subject: sub.into(),
            email: Some(email.into()),
            email_verified: verified,
            username: Some("Alice Smith".into()),
            name: Some("Alice".into()),
            groups: vec!["idp-admins".into(), "other".into()],
            amr: vec![],
            acr: None,
        }
    }

    fn setup(policy: Policy) -> (tempfile::TempDir, crate::store::Db, Provider) {
        let (d, db) = store::test_db();
        let p = provider(policy);
        db.write_blocking(|c| store::upstream::insert(c, &p))
            .unwrap();
        (d, db, p)
    }

    fn local(db: &crate::store::Db, name: &str, email: &str, verified: bool) -> User {
        let u = NewUser {
            username: name.into(),
            email: Some(email.into()),
            email_verified: verified,
            password_hash: Some("x".into()),
            ..Default::default()
        };
        db.try_write_blocking(|c| users::insert(c, &u, 0)).unwrap()
    }

    #[test]
    fn usernames_are_derived_and_cleaned() {
        let mut id = identity("s", "bob.jones@example.com", true);
        assert_eq!(username_base(&id), "Alice-Smith");
        id.username = None;
        assert_eq!(username_base(&id), "bob.jones");
        id.email = None;
        assert_eq!(username_base(&id), "user");
    }

    #[test]
    fn create_makes_one_account_then_finds_it_by_subject() {
        let (_d, db, p) = setup(Policy::Create);
        let id = identity("sub-1", "alice@example.com", true);
        let first = db.try_write_blocking(|c| resolve(c, &p, &id, 5)).unwrap();
        assert!(first.created);
        assert_eq!(first.user.email.as_deref(), Some("alice@example.com"));
        assert!(first.user.email_verified);
        let groups = db
            .read_blocking(|c| store::users::group_names(c, &first.user.id))
            .unwrap();
        assert!(groups.contains(&"family".to_string()) && groups.contains(&"editors".to_string()));
        // Claims changed upstream: still the same account (linked by subject, not email).
        let changed = identity("sub-1", "new@example.com", false);
        let again = db
            .try_write_blocking(|c| resolve(c, &p, &changed, 6))
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.user.id, first.user.id);
    }

    #[test]
    fn a_taken_username_gets_a_suffix_and_a_taken_email_is_refused() {
        let (_d, db, p) = setup(Policy::Create);
        local(&db, "Alice-Smith", "other@example.com", true);
        let id = identity("sub-1", "alice@example.com", true);
        let r = db.try_write_blocking(|c| resolve(c, &p, &id, 5)).unwrap();
        assert_eq!(r.user.username, "Alice-Smith-2");
        let clash = identity("sub-2", "OTHER@example.com", true);
        let e = db
            .try_write_blocking(|c| resolve(c, &p, &clash, 5))
            .unwrap_err();
        assert_eq!(e, Failure::EmailInUse);
    }

    #[test]
    fn verified_email_links_only_when_both_sides_are_verified() {
        let (_d, db, p) = setup(Policy::LinkVerifiedEmail);
        let alice = local(&db, "alice", "alice@example.com", true);
        let r = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s1", "Alice@Example.com", true), 5))
            .unwrap();
        assert_eq!(r.user.id, alice.id);
        assert!(!r.created && r.linked_now);
        // An unverified upstream email never links (and does not duplicate the address).
        local(&db, "bob", "bob@example.com", true);
        let e = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s2", "bob@example.com", false), 5))
            .unwrap_err();
        assert_eq!(e, Failure::EmailInUse);
        // A local address nobody verified is not linked either.
        local(&db, "carol", "carol@example.com", false);
        let e = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s3", "carol@example.com", true), 5))
            .unwrap_err();
        assert_eq!(e, Failure::EmailInUse);
        // No match at all: a new account.
        let r = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s4", "dave@example.com", true), 5))
            .unwrap();
        assert!(r.created);
    }

    #[test]
    fn existing_only_refuses_unlinked_identities_and_writes_nothing() {
        let (_d, db, p) = setup(Policy::ExistingOnly);
        let e = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s1", "x@example.com", true), 5))
            .unwrap_err();
        assert_eq!(e, Failure::NotLinked);
        assert_eq!(db.read_blocking(store::users::count).unwrap(), 0);
    }

    #[test]
    fn the_last_sign_in_method_cannot_be_unlinked() {
        let (_d, db, p) = setup(Policy::Create);
        let r = db
            .try_write_blocking(|c| resolve(c, &p, &identity("s1", "x@example.com", true), 5))
            .unwrap();
        let refused = db
            .write_blocking(|c| unlink(c, &r.user.id, &p.id, "s1", &r.user.id, 6))
            .unwrap();
        assert_eq!(refused, Err(UnlinkRefused::LastSignInMethod));
        db.write_blocking(|c| store::users::set_password_hash(c, &r.user.id, "x", 6))
            .unwrap();
        let ok = db
            .write_blocking(|c| unlink(c, &r.user.id, &p.id, "s1", &r.user.id, 6))
            .unwrap();
        assert_eq!(ok, Ok(()));
    }
}
