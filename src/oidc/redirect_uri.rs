//! Redirect URIs: exact string match against the client's registered list (no
//! normalisation), and the only constructor of `ValidatedRedirect`, so a response can only
//! ever be sent to a registered address.

use url::form_urlencoded;

use crate::store::clients::Client;

/// A redirect URI that exactly matches one the client registered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidatedRedirect(String);

impl ValidatedRedirect {
    /// OAuth 2.0 Security BCP §4.1.3 / RFC 6749 §3.1.2.3: compare as exact strings. A missing
    /// `redirect_uri` is allowed only when exactly one is registered.
    pub fn for_client(client: &Client, requested: Option<&str>) -> Option<Self> {
        match requested {
            Some(r) => client
                .redirect_uris
                .iter()
                .find(|u| u.as_str() == r)
                .map(|u| Self(u.clone())),
            None if client.redirect_uris.len() == 1 => {
                client.redirect_uris.first().map(|u| Self(u.clone()))
            }
            None => None,
        }
    }

    /// Like `for_client` but against the post-logout list (exact, no default).
    pub fn for_post_logout(client: &Client, requested: &str) -> Option<Self> {
        client
            .post_logout_redirect_uris
            .iter()
            .find(|u| u.as_str() == requested)
            .map(|u| Self(u.clone()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with `params` appended to its query (the registered part kept byte for byte).
    pub fn with_query(&self, params: &[(&str, &str)]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            ser.append_pair(k, v);
        }
        let query = ser.finish();
        if query.is_empty() {
            return self.0.clone();
        }
        let sep = if self.0.contains('?') {
            if self.0.ends_with('?') || self.0.ends_with('&') {
                ""
            } else {
                "&"
            }
        } else {
            "?"
        };
        format!("{}{sep}{query}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        let mut c = crate::store::clients::Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            public: true,
            auth_method: None,
            require_pkce: true,
            skip_consent: false,
            allow_refresh: true,
            allow_client_credentials: false,
            allowed_scopes: None,
            signing_alg: "RS256".into(),
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: true,
            frontchannel_logout_uri: None,
            logo_url: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_groups: vec![],
            exchange_sources: vec![],
            allow_device_code: false,
            require_role: false,
            exchange_token_ttl: None,
            created_at: 0,
            updated_at: 0,
        };
        c.redirect_uris = uris.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn redirect_uri_must_match_exactly() {
        let c = client(&["https://app.example/cb", "app.immich:///oauth-callback"]);
        assert!(ValidatedRedirect::for_client(&c, Some("https://app.example/cb")).is_some());
        assert!(ValidatedRedirect::for_client(&c, Some("https://app.example/cb/")).is_none());
        assert!(ValidatedRedirect::for_client(&c, Some("https://APP.example/cb")).is_none());
        assert!(ValidatedRedirect::for_client(&c, Some("https://app.example/cb?x=1")).is_none());
        assert!(ValidatedRedirect::for_client(&c, Some("app.immich://oauth-callback")).is_none());
        assert!(ValidatedRedirect::for_client(&c, Some("app.immich:///oauth-callback")).is_some());
    }

    #[test]
    fn missing_redirect_uri_only_with_a_single_registration() {
        assert!(ValidatedRedirect::for_client(&client(&["https://a/cb"]), None).is_some());
        assert!(
            ValidatedRedirect::for_client(&client(&["https://a/cb", "https://b/cb"]), None)
                .is_none()
        );
    }

    #[test]
    fn parameters_are_appended_keeping_the_registered_uri() {
        let r = ValidatedRedirect::for_client(&client(&["app.immich:///oauth-callback"]), None)
            .unwrap();
        assert_eq!(
            r.with_query(&[("code", "a b"), ("state", "x=")]),
            "app.immich:///oauth-callback?code=a+b&state=x%3D"
        );
        let r = ValidatedRedirect::for_client(&client(&["https://a/cb?tenant=1"]), None).unwrap();
        assert_eq!(
            r.with_query(&[("code", "c")]),
            "https://a/cb?tenant=1&code=c"
        );
    }
}
