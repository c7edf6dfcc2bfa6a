//! Claims about the user, released by scope (OIDC Core §5.4) or asked for by name with the
//! `claims` request parameter (§5.5). The ID token and userinfo carry the same set for the
//! same scope; only the `claims` request member (`id_token` or `userinfo`) differs.
//!
//! Rules, each a test below:
//! - `profile` → `name` (display name, else username), `preferred_username`, `given_name`,
//!   `family_name`, `picture` (only fields the user has), `updated_at` (a number).
//! - `email` → `email` and `email_verified` (a boolean), when the user has an address.
//! - `groups` → `groups`, the array of group names.
//! - `roles` → `roles`, the array of the person's role names in *this* application (direct
//!   grants and their groups'), present only when the application defines roles.
//! - custom claims: `claim_scopes` names the scope that releases each; values come from the
//!   user's groups (later group names win) overridden by the user's own `claims`.
//! - a claim named in the `claims` request is released even without its scope, if the user
//!   has a value (`null` and `{"essential": true}` both mean "requested").
//! - standard claims win over custom claims of the same name, and protocol claims (`sub`,
//!   `iss`, `aud`, …) never come from custom claims.

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::store::users::User;
use crate::store::{self, StoreError};

/// Where claims go: the member of the `claims` request parameter that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    IdToken,
    Userinfo,
}

impl Target {
    fn member(self) -> &'static str {
        match self {
            Target::IdToken => "id_token",
            Target::Userinfo => "userinfo",
        }
    }
}

/// Standard claims and the scope that releases each.
pub const STANDARD: &[(&str, &str)] = &[
    ("name", "profile"),
    ("preferred_username", "profile"),
    ("given_name", "profile"),
    ("family_name", "profile"),
    ("picture", "profile"),
    ("updated_at", "profile"),
    ("email", "email"),
    ("email_verified", "email"),
    ("groups", "groups"),
    ("roles", "roles"),
];

/// Claims the protocol sets; a custom claim of the same name is never released.
pub const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "client_id",
    "scope",
    "cnf",
    "typ",
    "events",
];

/// Everything the claims of one user are computed from.
#[derive(Debug, Clone)]
pub struct UserData {
    pub user: User,
    pub groups: Vec<String>,
    pub group_claims: Map<String, Value>,
    pub claim_scopes: Vec<(String, String)>,
    /// The person's roles in the application the tokens are for; `None` when that
    /// application defines no roles (then no `roles` claim at all).
    pub roles: Option<Vec<String>>,
}

/// The claim names the `claims` request parameter (JSON text) asks for in `target`.
/// Unparseable text asks for nothing (the authorization endpoint validated it).
pub fn requested(claims_param: Option<&str>, target: Target) -> Vec<String> {
    let Some(text) = claims_param else {
        return Vec::new();
    };
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    match root.get(target.member()) {
        // Each member's value is `null` or an object (`essential`, `value`, `values`): all
        // of them mean the claim is requested.
        Some(Value::Object(members)) => members
            .iter()
            .filter(|(_, v)| v.is_null() || v.is_object())
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    }
}

fn standard_value(data: &UserData, name: &str) -> Option<Value> {
    let u = &data.user;
    let text = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
    };
    match name {
        "name" => Some(json!(u.shown_name())),
        "preferred_username" => Some(json!(u.username)),
        "given_name" => text(&u.given_name),
        "family_name" => text(&u.family_name),
        "picture" => text(&u.picture),
        "updated_at" => Some(json!(u.updated_at)),
        "email" => text(&u.email),
        "email_verified" => text(&u.email).map(|_| json!(u.email_verified)),
        "groups" => Some(json!(data.groups)),
        "roles" => data.roles.as_ref().map(|r| json!(r)),
        _ => None,
    }
}

fn granted(scopes: &[String], scope: &str) -> bool {
    scopes.iter().any(|s| s == scope)
}

fn asked(requested: &[String], claim: &str) -> bool {
    requested.iter().any(|r| r == claim)
}

/// The claims released for `scopes` plus those `requested` by name.
pub fn release(data: &UserData, scopes: &[String], requested: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for (claim, scope) in STANDARD {
        if (granted(scopes, scope) || asked(requested, claim))
            && let Some(v) = standard_value(data, claim)
        {
            out.insert((*claim).to_string(), v);
        }
    }
    for (claim, scope) in &data.claim_scopes {
        let c = claim.as_str();
        if RESERVED.contains(&c) || STANDARD.iter().any(|(s, _)| *s == c) {
            continue;
        }
        if !(granted(scopes, scope) || asked(requested, c)) {
            continue;
        }
        // The user's own value wins over the groups'.
        if let Some(v) = data.user.claims.get(c).or_else(|| data.group_claims.get(c)) {
            out.insert(c.to_string(), v.clone());
        }
    }
    out
}

/// Loads what `release` needs for `user_id` in the application `client_id`, skipping group
/// queries the scopes and requested claims do not need. Roles are always loaded: the
/// access token carries them whenever the application defines roles. `None` if the user
/// does not exist.
pub fn load(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    requested: &[String],
) -> Result<Option<UserData>, StoreError> {
    let Some(user) = store::users::by_id(conn, user_id)? else {
        return Ok(None);
    };
    let claim_scopes = store::users::claim_scopes(conn)?;
    let groups = if granted(scopes, "groups") || asked(requested, "groups") {
        store::users::group_names(conn, user_id)?
    } else {
        Vec::new()
    };
    let custom_needed = claim_scopes
        .iter()
        .any(|(c, s)| granted(scopes, s) || asked(requested, c));
    let group_claims = if custom_needed {
        store::users::group_claims(conn, user_id)?
    } else {
        Map::new()
    };
    Ok(Some(UserData {
        user,
        groups,
        group_claims,
        claim_scopes,
        roles: roles_in(conn, client_id, user_id)?,
    }))
}

/// What an access token alone needs of the user for `client_id`: the user and their roles
/// there, no claims (token exchange issues no ID token). `None` if the user does not exist.
pub fn load_for_access_token(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<UserData>, StoreError> {
    let Some(user) = store::users::by_id(conn, user_id)? else {
        return Ok(None);
    };
    Ok(Some(UserData {
        user,
        groups: Vec::new(),
        group_claims: Map::new(),
        claim_scopes: Vec::new(),
        roles: roles_in(conn, client_id, user_id)?,
    }))
}

/// The person's role names in the application, `None` if it defines no roles.
pub fn roles_in(
    conn: &Connection,
    client_id: &str,
    user_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let all = store::roles::of_user(conn, client_id, user_id)?;
    if all.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        all.into_iter()
            .filter(|(_, held)| *held)
            .map(|(name, _)| name)
            .collect(),
    ))
}

/// The custom scopes administrators defined (for `scope::grantable`).
pub fn custom_scopes(claim_scopes: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = claim_scopes.iter().map(|(_, s)| s.clone()).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "ada".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            display_name: Some("Ada Lovelace".into()),
            given_name: Some("Ada".into()),
            family_name: None,
            picture: None,
            password_hash: None,
            disabled: false,
            require_passkey: false,
            claims: Map::new(),
            created_at: 1,
            updated_at: 42,
        }
    }

    fn data() -> UserData {
        UserData {
            user: user(),
            groups: vec!["admins".into(), "family".into()],
            group_claims: Map::new(),
            claim_scopes: Vec::new(),
            roles: None,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn openid_alone_releases_no_profile_claims() {
        assert!(release(&data(), &s(&["openid"]), &[]).is_empty());
    }

    #[test]
    fn profile_releases_present_fields_name_and_numeric_updated_at() {
        let c = release(&data(), &s(&["openid", "profile"]), &[]);
        assert_eq!(c["name"], "Ada Lovelace");
        assert_eq!(c["preferred_username"], "ada");
        assert_eq!(c["given_name"], "Ada");
        assert!(c.get("family_name").is_none() && c.get("picture").is_none());
        assert_eq!(c["updated_at"], 42);
        assert!(c.get("email").is_none());
    }

    #[test]
    fn name_falls_back_to_username() {
        let mut d = data();
        d.user.display_name = None;
        assert_eq!(release(&d, &s(&["profile"]), &[])["name"], "ada");
    }

    #[test]
    fn email_releases_email_and_boolean_email_verified() {
        let c = release(&data(), &s(&["openid", "email"]), &[]);
        assert_eq!(c["email"], "ada@example.com");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c.len(), 2);
        let mut d = data();
        d.user.email = None;
        assert!(release(&d, &s(&["email"]), &[]).is_empty());
    }

    #[test]
    fn groups_releases_the_array_of_group_names() {
        let c = release(&data(), &s(&["groups"]), &[]);
        assert_eq!(c["groups"], json!(["admins", "family"]));
    }

    #[test]
    fn roles_are_released_by_their_scope_only_when_the_app_defines_roles() {
        let mut d = data();
        assert!(release(&d, &s(&["roles"]), &[]).get("roles").is_none());
        d.roles = Some(vec![]);
        assert_eq!(release(&d, &s(&["roles"]), &[])["roles"], json!([]));
        d.roles = Some(vec!["Editor".into()]);
        assert_eq!(release(&d, &s(&["roles"]), &[])["roles"], json!(["Editor"]));
        assert!(
            release(&d, &s(&["openid", "groups"]), &[])
                .get("roles")
                .is_none()
        );
        assert_eq!(
            release(&d, &s(&["openid"]), &s(&["roles"]))["roles"],
            json!(["Editor"])
        );
    }

    #[test]
    fn custom_claims_are_released_by_their_scope_user_over_group() {
        let mut d = data();
        d.claim_scopes = vec![
            ("quota".into(), "storage".into()),
            ("tier".into(), "storage".into()),
        ];
        d.group_claims.insert("quota".into(), json!(10));
        d.group_claims.insert("tier".into(), json!("gold"));
        d.user.claims.insert("quota".into(), json!(99));
        assert!(release(&d, &s(&["openid"]), &[]).is_empty());
        let c = release(&d, &s(&["openid", "storage"]), &[]);
        assert_eq!(c["quota"], 99);
        assert_eq!(c["tier"], "gold");
    }

    #[test]
    fn custom_claims_never_shadow_protocol_or_standard_claims() {
        let mut d = data();
        d.claim_scopes = vec![
            ("sub".into(), "x".into()),
            ("email_verified".into(), "x".into()),
        ];
        d.user.claims.insert("sub".into(), json!("evil"));
        d.user.claims.insert("email_verified".into(), json!(true));
        d.user.email_verified = false;
        let c = release(&d, &s(&["x", "email"]), &[]);
        assert!(c.get("sub").is_none());
        assert_eq!(c["email_verified"], false);
    }

    #[test]
    fn requested_claims_are_added_without_their_scope_when_the_user_has_a_value() {
        let c = release(
            &data(),
            &s(&["openid"]),
            &s(&["email", "family_name", "nope"]),
        );
        assert_eq!(c["email"], "ada@example.com");
        assert!(c.get("family_name").is_none(), "no value, not released");
        assert!(c.get("nope").is_none());
        assert!(c.get("email_verified").is_none(), "only what was asked");
    }

    #[test]
    fn claims_parameter_null_and_essential_both_mean_requested_per_member() {
        let p =
            r#"{"userinfo":{"email":null,"name":{"essential":true}},"id_token":{"groups":null}}"#;
        let mut u = requested(Some(p), Target::Userinfo);
        u.sort();
        assert_eq!(u, vec!["email", "name"]);
        assert_eq!(requested(Some(p), Target::IdToken), vec!["groups"]);
        assert!(requested(Some("not json"), Target::IdToken).is_empty());
        assert!(requested(None, Target::IdToken).is_empty());
    }

    #[test]
    fn custom_claims_can_be_requested_by_name() {
        let mut d = data();
        d.claim_scopes = vec![("quota".into(), "storage".into())];
        d.group_claims.insert("quota".into(), json!(5));
        let c = release(&d, &s(&["openid"]), &s(&["quota"]));
        assert_eq!(c["quota"], 5);
    }
}
