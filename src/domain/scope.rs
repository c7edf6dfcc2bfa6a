//! Scopes: parsing (RFC 6749 §3.3), the scopes Portcullis knows, and their plain-words
//! descriptions for the consent screen.

/// Built-in scopes. Custom claim scopes (named by administrators) come from the database.
pub const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "groups",
    "roles",
    "offline_access",
];

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Parses a space-delimited scope string; `None` if a token is malformed.
pub fn parse(s: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in s.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(t) {
            return None;
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    Some(out)
}

/// The requested scopes this client may have: known to the server (built-in or a custom
/// claim scope) and, if the client lists allowed scopes, among them. Others are dropped
/// (RFC 6749 §3.3 lets the server grant less than asked and say so in `scope`).
pub fn grantable(requested: &[String], allowed: Option<&str>, custom: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| is_known(s, custom))
        .filter(|s| {
            s.as_str() == "openid"
                || allowed.is_none_or(|a| a.split_whitespace().any(|x| x == s.as_str()))
        })
        .cloned()
        .collect()
}

/// A scope the server knows: built in, or a custom claim scope.
pub fn is_known(scope: &str, custom: &[String]) -> bool {
    is_built_in(scope) || custom.iter().any(|c| c == scope)
}

pub fn is_built_in(scope: &str) -> bool {
    KNOWN_SCOPES.contains(&scope)
}

/// What a scope lets the app see, in words for the consent screen (None: nothing to show).
pub fn describe(scope: &str) -> Option<String> {
    Some(match scope {
        "openid" => return None,
        "profile" => "your name and username".into(),
        "email" => "your email address".into(),
        "groups" => "the groups you belong to".into(),
        "roles" => "your roles in this app (what you may do there)".into(),
        "offline_access" => "stay signed in and access your account while you are away".into(),
        other => format!("extra account details ({other})"),
    })
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_scope_tokens_are_refused() {
        assert_eq!(parse("openid  email").unwrap(), vec!["openid", "email"]);
        assert!(parse("openid \"x\"").is_none());
        assert!(parse("open\\id").is_none());
    }

    #[test]
    fn unknown_and_disallowed_scopes_are_dropped() {
        let req: Vec<String> = ["openid", "email", "profile", "weird", "immich"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            grantable(&req, None, &["immich".into()]),
            vec!["openid", "email", "profile", "immich"]
        );
        assert_eq!(grantable(&req, Some("email"), &[]), vec!["openid", "email"]);
    }
}
