//! Upstream identity providers, the identities linked to local users by (provider, subject),
//! and the handshake state of a sign-in in progress (single use, bound to the browser).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

/// How Portcullis talks to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// OpenID Connect, configured by discovery from the issuer.
    Oidc,
    /// GitHub's OAuth 2.0 apps with its user and email APIs (no OpenID Connect).
    Github,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Oidc => "oidc",
            Kind::Github => "github",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc" => Some(Kind::Oidc),
            "github" => Some(Kind::Github),
            _ => None,
        }
    }
}

/// What happens when someone signs in with an identity that is not linked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Create a local account on first sign-in (just in time).
    Create,
    /// Link to the local account with the same verified email; otherwise create one.
    LinkVerifiedEmail,
    /// Only identities already linked (by a user from their account page) may sign in.
    ExistingOnly,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Create => "create",
            Policy::LinkVerifiedEmail => "link_verified_email",
            Policy::ExistingOnly => "existing_only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Policy::Create),
            "link_verified_email" => Some(Policy::LinkVerifiedEmail),
            "existing_only" => Some(Policy::ExistingOnly),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub id: String,
    pub slug: String,
    pub kind: Kind,
    pub display_name: String,
    pub icon: Option<String>,
    /// OIDC: the issuer (discovery at `<issuer>/.well-known/openid-configuration`).
    /// GitHub: the web base URL (`https://github.com`, or a GitHub Enterprise Server).
    pub issuer: Option<String>,
    pub client_id: String,
    /// Sealed with the master key, context `upstream_secret:<id>`.
    pub client_secret_sealed: Option<String>,
    pub scopes: String,
    pub enabled: bool,
    pub policy: Policy,
    pub default_groups: Vec<String>,
    /// Upstream group name → local group name.
    pub group_mapping: BTreeMap<String, String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

const COLUMNS: &str = "id, slug, kind, display_name, icon, issuer, client_id, client_secret_sealed, scopes, \
                       enabled, account_policy, default_groups, group_mapping, created_at, updated_at";

type RawProvider = (Provider, String, String, String, String);

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawProvider> {
    Ok((
        Provider {
            id: r.get(0)?,
            slug: r.get(1)?,
            kind: Kind::Oidc,
            display_name: r.get(3)?,
            icon: r.get(4)?,
            issuer: r.get(5)?,
            client_id: r.get(6)?,
            client_secret_sealed: r.get(7)?,
            scopes: r.get(8)?,
            enabled: r.get(9)?,
            policy: Policy::ExistingOnly,
            default_groups: Vec::new(),
            group_mapping: BTreeMap::new(),
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
        },
        r.get(2)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn finish((mut p, kind, policy, groups, mapping): RawProvider) -> Result<Provider, StoreError> {
    p.kind = Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?;
    p.policy =
        Policy::parse(&policy).ok_or_else(|| StoreError::Corrupt(format!("policy {policy}")))?;
    p.default_groups = json_col(&groups)?;
    p.group_mapping = json_col(&mapping)?;
    Ok(p)
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn insert(conn: &Connection, p: &Provider) -> Result<(), StoreError> {
    conn.exec(
        &format!(
            "INSERT INTO upstream_providers ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"
        ),
        params![
            p.id,
            p.slug,
            p.kind.as_str(),
            p.display_name,
            p.icon,
            p.issuer,
            p.client_id,
            p.client_secret_sealed,
            p.scopes,
            p.enabled,
            p.policy.as_str(),
            json_text(&p.default_groups)?,
            json_text(&p.group_mapping)?,
            p.created_at,
            p.updated_at
        ],
    )?;
    Ok(())
}

/// Saves every field but `id` and `created_at`.
pub fn update(conn: &Connection, p: &Provider) -> Result<bool, StoreError> {
    let n = conn.exec(
        "UPDATE upstream_providers SET slug = ?2, kind = ?3, display_name = ?4, icon = ?5, issuer = ?6,
                client_id = ?7, client_secret_sealed = ?8, scopes = ?9, enabled = ?10, account_policy = ?11,
                default_groups = ?12, group_mapping = ?13, updated_at = ?14
         WHERE id = ?1",
        params![
            p.id,
            p.slug,
            p.kind.as_str(),
            p.display_name,
            p.icon,
            p.issuer,
            p.client_id,
            p.client_secret_sealed,
            p.scopes,
            p.enabled,
            p.policy.as_str(),
            json_text(&p.default_groups)?,
            json_text(&p.group_mapping)?,
            p.updated_at
        ],
    )?;
    Ok(n == 1)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Provider>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM upstream_providers WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

pub fn by_slug(conn: &Connection, slug: &str) -> Result<Option<Provider>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM upstream_providers WHERE slug = ?1"),
        [slug],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// Every provider, by display name (`enabled_only` for the sign-in page).
pub fn list(conn: &Connection, enabled_only: bool) -> Result<Vec<Provider>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM upstream_providers WHERE enabled = 1 OR ?1 = 0
         ORDER BY display_name COLLATE NOCASE, slug"
    ))?;
    let rows = stmt.query_map([enabled_only], from_row)?;
    rows.map(|r| finish(r?)).collect()
}

/// Deletes the provider; its linked identities and pending handshakes go with it.
pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec("DELETE FROM upstream_providers WHERE id = ?1", [id])? == 1)
}

// ---- linked identities ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkedIdentity {
    pub provider_id: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub linked_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// A linked identity with its provider's names (account page, console).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkedWithProvider {
    #[serde(flatten)]
    pub link: LinkedIdentity,
    pub slug: String,
    pub display_name: String,
    pub icon: Option<String>,
}

const LINK_COLUMNS: &str =
    "l.provider_id, l.subject, l.user_id, l.email, l.linked_at, l.last_used_at";

fn link_from_row(r: &Row<'_>) -> rusqlite::Result<LinkedIdentity> {
    Ok(LinkedIdentity {
        provider_id: r.get(0)?,
        subject: r.get(1)?,
        user_id: r.get(2)?,
        email: r.get(3)?,
        linked_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

/// The link of (provider, subject): the only way an upstream identity finds a local user.
pub fn link_by_subject(
    conn: &Connection,
    provider_id: &str,
    subject: &str,
) -> Result<Option<LinkedIdentity>, StoreError> {
    Ok(conn
        .row(
            &format!(
                "SELECT {LINK_COLUMNS} FROM linked_identities l WHERE l.provider_id = ?1 AND l.subject = ?2"
            ),
            params![provider_id, subject],
            link_from_row,
        )
        .optional()?)
}

pub fn insert_link(conn: &Connection, l: &LinkedIdentity) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO linked_identities (provider_id, subject, user_id, email, linked_at, last_used_at)
         VALUES (?1,?2,?3,?4,?5,?6)",
        params![
            l.provider_id,
            l.subject,
            l.user_id,
            l.email,
            l.linked_at,
            l.last_used_at
        ],
    )?;
    Ok(())
}

/// Records a sign-in through the link (and the email the provider reported this time).
pub fn touch_link(
    conn: &Connection,
    provider_id: &str,
    subject: &str,
    email: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE linked_identities SET last_used_at = ?3, email = coalesce(?4, email)
         WHERE provider_id = ?1 AND subject = ?2",
        params![provider_id, subject, now, email],
    )?;
    Ok(())
}

/// The user's linked identities with their providers, by provider name.
pub fn links_for_user(
    conn: &Connection,
    user_id: &str,
) -> Result<Vec<LinkedWithProvider>, StoreError> {
    links_where(conn, "l.user_id = ?1", user_id)
}

/// Every identity linked through a provider (console).
pub fn links_for_provider(
    conn: &Connection,
    provider_id: &str,
) -> Result<Vec<LinkedWithProvider>, StoreError> {
    links_where(conn, "l.provider_id = ?1", provider_id)
}

fn links_where(
    conn: &Connection,
    condition: &str,
    value: &str,
) -> Result<Vec<LinkedWithProvider>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS}, p.slug, p.display_name, p.icon
         FROM linked_identities l JOIN upstream_providers p ON p.id = l.provider_id
         WHERE {condition} ORDER BY p.display_name COLLATE NOCASE, l.linked_at"
    ))?;
    let rows = stmt.query_map([value], |r| {
        Ok(LinkedWithProvider {
            link: link_from_row(r)?,
            slug: r.get(6)?,
            display_name: r.get(7)?,
            icon: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A person linked through a provider (the provider's page in the console).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedUser {
    pub link: LinkedIdentity,
    pub username: String,
    pub display_name: Option<String>,
    pub disabled: bool,
}

/// One page of the people linked through a provider, by username.
pub fn linked_users(
    conn: &Connection,
    provider_id: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<LinkedUser>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS}, u.username, u.display_name, u.disabled
         FROM linked_identities l JOIN users u ON u.id = l.user_id
         WHERE l.provider_id = ?1 ORDER BY u.username COLLATE NOCASE, l.subject
         LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![provider_id, limit, offset], |r| {
        Ok(LinkedUser {
            link: link_from_row(r)?,
            username: r.get(6)?,
            display_name: r.get(7)?,
            disabled: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many identities are linked through each provider (providers without any are absent).
pub fn link_counts(conn: &Connection) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider_id, count(*) FROM linked_identities GROUP BY provider_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count_links_for_user(conn: &Connection, user_id: &str) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM linked_identities WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

pub fn count_links_for_provider(conn: &Connection, provider_id: &str) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM linked_identities WHERE provider_id = ?1",
        [provider_id],
        |r| r.get(0),
    )?)
}

/// How many people linked through the provider have no other way to sign in: no password, no
/// passkey, no identity at another provider (`users::sign_in_methods` counted in SQL, for the
/// warning before a provider is deleted).
pub fn count_only_linked_through(conn: &Connection, provider_id: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(DISTINCT l.user_id) FROM linked_identities l JOIN users u ON u.id = l.user_id
         WHERE l.provider_id = ?1 AND u.password_hash IS NULL
           AND NOT EXISTS (SELECT 1 FROM passkeys k WHERE k.user_id = u.id)
           AND NOT EXISTS (SELECT 1 FROM linked_identities o
                           WHERE o.user_id = u.id AND o.provider_id <> ?1)",
        [provider_id],
        |r| r.get(0),
    )?)
}

/// Removes one of the user's own links.
pub fn delete_link(
    conn: &Connection,
    user_id: &str,
    provider_id: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "DELETE FROM linked_identities WHERE user_id = ?1 AND provider_id = ?2 AND subject = ?3",
        params![user_id, provider_id, subject],
    )? == 1)
}

/// The id of the user whose email is `email` (case-insensitive) and verified.
pub fn user_with_verified_email(
    conn: &Connection,
    email: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .row(
            "SELECT id FROM users WHERE email = ?1 AND email_verified = 1",
            [email],
            |r| r.get(0),
        )
        .optional()?)
}

/// Whether any user has this email (verified or not).
pub fn email_in_use(conn: &Connection, email: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row("SELECT 1 FROM users WHERE email = ?1", [email], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records the upstream's `acr` on the session a federated sign-in just started.
pub fn set_session_acr(conn: &Connection, id_hash: &str, acr: &str) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE sessions SET acr = ?2 WHERE id_hash = ?1",
        params![id_hash, acr],
    )?;
    Ok(())
}

// ---- handshakes in progress ----------------------------------------------------------------

/// A handshake row as taken back at the callback.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingLogin {
    pub provider_id: String,
    pub browser: String,
    pub data: String,
    pub expires_at: UnixTime,
}

pub fn insert_login(
    conn: &Connection,
    state_hash: &str,
    provider_id: &str,
    browser: &str,
    data_json: &str,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO upstream_logins (state_hash, provider_id, browser, data, expires_at) VALUES (?1,?2,?3,?4,?5)",
        params![state_hash, provider_id, browser, data_json, expires_at],
    )?;
    Ok(())
}

/// Takes the handshake atomically: a state is used once, whatever happens next.
pub fn take_login(conn: &Connection, state_hash: &str) -> Result<Option<PendingLogin>, StoreError> {
    Ok(conn
        .row(
            "DELETE FROM upstream_logins WHERE state_hash = ?1
             RETURNING provider_id, browser, data, expires_at",
            [state_hash],
            |r| {
                Ok(PendingLogin {
                    provider_id: r.get(0)?,
                    browser: r.get(1)?,
                    data: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn delete_expired_logins(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec("DELETE FROM upstream_logins WHERE expires_at <= ?1", [now])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db;

    fn provider(id: &str, slug: &str) -> Provider {
        Provider {
            id: id.into(),
            slug: slug.into(),
            kind: Kind::Github,
            display_name: "GitHub".into(),
            icon: None,
            issuer: Some("https://github.com".into()),
            client_id: "cid".into(),
            client_secret_sealed: Some("sealed".into()),
            scopes: "read:user user:email".into(),
            enabled: true,
            policy: Policy::LinkVerifiedEmail,
            default_groups: vec!["family".into()],
            group_mapping: BTreeMap::from([("staff".into(), "editors".into())]),
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn providers_round_trip_and_list_by_name() {
        let (_d, db) = test_db();
        let p = provider("p1", "github");
        db.write_blocking(|c| insert(c, &p)).unwrap();
        assert_eq!(
            db.read_blocking(|c| by_slug(c, "github")).unwrap(),
            Some(p.clone())
        );
        let mut off = p.clone();
        off.enabled = false;
        db.write_blocking(|c| update(c, &off)).unwrap();
        assert!(db.read_blocking(|c| list(c, true)).unwrap().is_empty());
        assert_eq!(db.read_blocking(|c| list(c, false)).unwrap().len(), 1);
        assert!(db.write_blocking(|c| delete(c, "p1")).unwrap());
        assert_eq!(db.read_blocking(|c| by_id(c, "p1")).unwrap(), None);
    }

    fn user(id: &str, password: bool) -> crate::store::users::User {
        crate::store::users::User {
            id: id.into(),
            username: id.into(),
            email: None,
            email_verified: false,
            display_name: None,
            given_name: None,
            family_name: None,
            picture: None,
            password_hash: password.then(|| "x".into()),
            disabled: false,
            require_passkey: false,
            claims: Default::default(),
            created_at: 1,
            updated_at: 1,
        }
    }

    fn linked(provider: &str, subject: &str, user: &str) -> LinkedIdentity {
        LinkedIdentity {
            provider_id: provider.into(),
            subject: subject.into(),
            user_id: user.into(),
            email: None,
            linked_at: 1,
            last_used_at: None,
        }
    }

    #[test]
    fn links_are_counted_paged_and_the_people_without_another_way_in_found() {
        let (_d, db) = test_db();
        db.write_blocking(|c| {
            insert(c, &provider("p1", "one"))?;
            insert(c, &provider("p2", "two"))?;
            // only: nothing but p1; pw: a password too; both: p1 and p2.
            for (id, pw) in [("only", false), ("pw", true), ("both", false)] {
                crate::store::users::insert(c, &user(id, pw))?;
            }
            insert_link(c, &linked("p1", "s-only", "only"))?;
            insert_link(c, &linked("p1", "s-pw", "pw"))?;
            insert_link(c, &linked("p1", "s-both", "both"))?;
            insert_link(c, &linked("p2", "s-both2", "both"))
        })
        .unwrap();
        let counts = db.read_blocking(link_counts).unwrap();
        assert_eq!(counts.get("p1"), Some(&3));
        assert_eq!(counts.get("p2"), Some(&1));
        let stranded = db
            .read_blocking(|c| count_only_linked_through(c, "p1"))
            .unwrap();
        assert_eq!(stranded, 1, "only `only`");
        assert_eq!(
            db.read_blocking(|c| count_only_linked_through(c, "p2"))
                .unwrap(),
            0
        );
        let page: Vec<String> = db
            .read_blocking(|c| linked_users(c, "p1", 2, 1))
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(page, vec!["only", "pw"], "by username, second and third");
    }

    #[test]
    fn a_handshake_is_taken_once() {
        let (_d, db) = test_db();
        db.write_blocking(|c| insert(c, &provider("p1", "gh")))
            .unwrap();
        db.write_blocking(|c| insert_login(c, "h", "p1", "b", "{}", 10))
            .unwrap();
        let first = db.write_blocking(|c| take_login(c, "h")).unwrap();
        assert_eq!(first.map(|p| p.browser), Some("b".to_string()));
        assert_eq!(db.write_blocking(|c| take_login(c, "h")).unwrap(), None);
    }
}
