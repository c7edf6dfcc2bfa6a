//! "Return to" values a request carries (`next` after sign-in, through password, passkey,
//! second factor and upstream sign-in; the console page to go back to): only a path on this
//! server is ever followed, so none of them is an open redirect.
//!
//! The value is parsed as a URL relative to the issuer and its origin compared with the
//! issuer's, rather than pattern-matched: browsers drop tabs and newlines from a Location
//! (`/\t/evil.example` becomes `//evil.example`) and read `\` as `/`, so any control
//! character, whitespace or backslash — typed or percent-encoded — refuses the value before
//! parsing, and so does a scheme-relative form (`//host`, `/\host`). What is followed is
//! re-serialised from the parsed URL (path, query, fragment), never the raw text.

use url::{Position, Url};

/// Where a refused or empty value leads instead.
pub const DEFAULT: &str = "/account";

/// The same-origin path `raw` names, or `None` when it is empty, foreign or suspicious.
pub fn local_path(issuer: &Url, raw: &str) -> Option<String> {
    if raw.is_empty() || suspicious(raw) {
        return None;
    }
    // Encoded, only what a later decoding could turn into a redirect: a control character,
    // a backslash, a second leading slash (`%20` in a query is an ordinary space).
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    if decoded.chars().any(|c| c.is_control() || c == '\\') || decoded.starts_with("//") {
        return None;
    }
    if raw.starts_with("//") || !(raw.starts_with('/') || raw.contains(':')) {
        return None;
    }
    let url = issuer.join(raw).ok()?;
    if url.origin() != issuer.origin() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let path = &url[Position::BeforePath..];
    // What a browser will do with it must be what we checked: a single leading slash.
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_string())
}

/// [`local_path`], or [`DEFAULT`].
pub fn local_or_default(issuer: &Url, raw: &str) -> String {
    local_path(issuer, raw).unwrap_or_else(|| DEFAULT.to_string())
}

/// Control characters (C0, DEL, C1), any whitespace, and backslashes.
fn suspicious(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn issuer() -> Url {
        Url::parse("https://id.example.com").unwrap()
    }

    #[test]
    fn local_paths_are_kept_with_their_query_and_fragment() {
        let i = issuer();
        assert_eq!(local_path(&i, "/account").as_deref(), Some("/account"));
        assert_eq!(
            local_path(&i, "/admin/users?q=a%20b#top").as_deref(),
            Some("/admin/users?q=a%20b#top")
        );
        assert_eq!(
            local_path(&i, "https://id.example.com/admin").as_deref(),
            Some("/admin"),
            "an absolute URL of this server becomes its path"
        );
    }

    #[test]
    fn hostile_values_are_refused() {
        let i = issuer();
        for bad in [
            "",
            "/\t/evil.example/x",
            "/%09/evil.example/x",
            "/\r/evil.example",
            "/\n/evil.example",
            "/%0d%0a/evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "/%5Cevil.example",
            "/%5C%5Cevil.example",
            "/%2F/evil.example",
            "\\\\evil.example",
            "https:/\\evil.example",
            "https://evil.example/account",
            "https://id.example.com@evil.example/",
            "https://user:pw@id.example.com/account",
            "//user@evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "http://id.example.com/account",
            "https://id.example.com:8443/account",
            "account",
            "/ evil",
            "/\u{a0}x",
            "/\u{2028}x",
            "/\u{85}x",
        ] {
            assert_eq!(local_path(&i, bad), None, "{bad:?}");
        }
        assert_eq!(local_or_default(&i, "//evil.example"), "/account");
    }
}
