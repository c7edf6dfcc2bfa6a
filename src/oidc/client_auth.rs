//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post` and `none` (public clients), plus the one-pass
//! parse of the form body those endpoints share.
//!
//! Not an actix extractor: the form body can be read only once and the handler needs it
//! after authentication, and the handler must add CORS headers to failures too. Each handler
//! therefore calls [`FormParams::parse`] and then [`authenticate`] before anything else, so a
//! failed authentication never touches a code or a token.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use url::form_urlencoded;

use crate::crypto::secret::{ct_eq, hash_token};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;

/// The parameters of an `application/x-www-form-urlencoded` request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormParams(HashMap<String, String>);

impl FormParams {
    /// Reads the body of a form POST. An empty body gives no parameters.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Self::from_body(body)
    }

    /// RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    /// RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted
    /// from the request."
    pub fn from_body(body: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the request body is not a valid form"))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if map.contains_key(&k) {
                return Err(OAuthError::invalid_request(format!(
                    "the {k} parameter is included more than once"
                )));
            }
            map.insert(k, v);
        }
        // Empty values count as absent, but still counted for duplicates above.
        map.retain(|_, v| !v.is_empty());
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// How the client authenticated (RFC 7591 §2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// The credentials a request presents, before the client is looked up.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "********"))
            .field("method", &self.method)
            .finish()
    }
}

/// A client whose credentials have been checked.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    pub method: AuthMethod,
}

fn invalid_client(basic: bool, description: &'static str) -> OAuthError {
    let mut e = OAuthError::new(ErrorCode::InvalidClient, description);
    e.basic_auth_attempted = basic;
    e
}

/// Decodes one `application/x-www-form-urlencoded` component of HTTP Basic credentials
/// (RFC 6749 §2.3.1). A component carrying a raw `&` or `=` cannot be the output of that
/// encoding: the client did not encode, and the value is taken as it is.
fn form_decode(component: &str) -> String {
    if component.contains(['&', '=']) {
        return component.to_string();
    }
    form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// Parses `Authorization: Basic …`. `Ok(None)` when the header is absent or another scheme.
/// RFC 6749 §2.3.1: "The client identifier is encoded using the
/// application/x-www-form-urlencoded encoding algorithm …, and the encoded value is used as
/// the username; the client password is encoded using the same algorithm and used as the
/// password."
pub fn parse_basic(authorization: Option<&str>) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = value.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("basic") {
            Err(invalid_client(true, "malformed Basic credentials"))
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_client(true, "malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client(true, "malformed Basic credentials"))?;
    let (id, secret) = (form_decode(id), form_decode(secret));
    if id.is_empty() {
        return Err(invalid_client(true, "malformed Basic credentials"));
    }
    Ok(Some((id, secret)))
}

/// Which credentials the request presents. RFC 6749 §2.3: "The client MUST NOT use more than
/// one authentication method in each request."
pub fn presented(
    authorization: Option<&str>,
    form: &FormParams,
) -> Result<Option<Presented>, OAuthError> {
    let basic = parse_basic(authorization)?;
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match basic {
        Some((id, secret)) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(Some(Presented {
                client_id: id,
                secret: Some(secret),
                method: AuthMethod::ClientSecretBasic,
            }))
        }
        None => Ok(form_id.map(|id| Presented {
            client_id: id.to_string(),
            secret: form_secret.map(str::to_string),
            method: if form_secret.is_some() {
                AuthMethod::ClientSecretPost
            } else {
                AuthMethod::None
            },
        })),
    }
}

/// Checks presented credentials against the registered client. Confidential clients accept
/// basic and post unless `auth_method` pins one; public clients only `none`.
pub fn verify(client: &Client, p: &Presented) -> Result<(), OAuthError> {
    let basic = p.method == AuthMethod::ClientSecretBasic;
    let fail = || invalid_client(basic, "client authentication failed");
    if client.public {
        // A public client has no secret; one presented cannot be checked.
        return if p.method == AuthMethod::None {
            Ok(())
        } else {
            Err(fail())
        };
    }
    if p.method == AuthMethod::None {
        return Err(fail());
    }
    if client
        .auth_method
        .as_deref()
        .is_some_and(|m| m != p.method.as_str())
    {
        return Err(fail());
    }
    let (Some(secret), Some(stored)) = (p.secret.as_deref(), client.secret_hash.as_deref()) else {
        return Err(fail());
    };
    if ct_eq(hash_token(secret).as_bytes(), stored.as_bytes()) {
        Ok(())
    } else {
        Err(fail())
    }
}

/// Authenticates the calling client. Every failure is `invalid_client` (401, and
/// `WWW-Authenticate: Basic` when Basic was tried).
pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    form: &FormParams,
) -> Result<AuthenticatedClient, OAuthError> {
    let p = credentials(req, form)?;
    if let Some(client) = state.client_cache.get(&p.client_id) {
        verify(&client, &p)?;
        return Ok(AuthenticatedClient {
            client,
            method: p.method,
        });
    }
    let (authed, ()) = read_and_verify(state, p, |_| Ok(())).await?;
    state.client_cache.put(&authed.client);
    Ok(authed)
}

/// [`authenticate`], with `read` run in the same database read as the client lookup (one trip
/// to the read pool instead of two). `read`'s result is dropped unless authentication
/// succeeds, so it may look at anything the endpoint needs afterwards.
pub async fn authenticate_and_read<T: Send + 'static>(
    state: &AppState,
    req: &HttpRequest,
    form: &FormParams,
    read: impl FnOnce(&rusqlite::Connection) -> Result<T, store::StoreError> + Send + 'static,
) -> Result<(AuthenticatedClient, T), OAuthError> {
    read_and_verify(state, credentials(req, form)?, read).await
}

/// The credentials of the request; none at all is `invalid_client`.
fn credentials(req: &HttpRequest, form: &FormParams) -> Result<Presented, OAuthError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    presented(authorization, form)?
        .ok_or_else(|| invalid_client(false, "client authentication is required"))
}

/// Looks the client up (with `read`, in the same trip) and checks the credentials.
async fn read_and_verify<T: Send + 'static>(
    state: &AppState,
    p: Presented,
    read: impl FnOnce(&rusqlite::Connection) -> Result<T, store::StoreError> + Send + 'static,
) -> Result<(AuthenticatedClient, T), OAuthError> {
    let id = p.client_id.clone();
    let (client, extra) = state
        .db
        .read(move |c| Ok((store::clients::by_id(c, &id)?, read(c)?)))
        .await?;
    let Some(client) = client else {
        // Hash anyway so an unknown client takes as long as a wrong secret.
        let _ = p.secret.as_deref().map(hash_token);
        return Err(invalid_client(
            p.method == AuthMethod::ClientSecretBasic,
            "client authentication failed",
        ));
    };
    verify(&client, &p)?;
    Ok((
        AuthenticatedClient {
            client,
            method: p.method,
        },
        extra,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn client(public: bool, secret: &str, pinned: Option<&str>) -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: (!public).then(|| hash_token(secret)),
            public,
            auth_method: pinned.map(str::to_string),
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
        }
    }

    fn form(body: &str) -> FormParams {
        FormParams::from_body(body.as_bytes()).unwrap()
    }

    #[test]
    fn basic_credentials_are_url_decoded_after_base64() {
        // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
        let secret = "p@ss:w/rd+ü&=%";
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let id_encoded: String = form_urlencoded::byte_serialize(b"my client").collect();
        let (id, s) = parse_basic(Some(&basic(&id_encoded, &encoded)))
            .unwrap()
            .unwrap();
        assert_eq!(id, "my client");
        assert_eq!(s, secret);
    }

    #[test]
    fn basic_plus_decodes_to_space_and_percent_escapes_decode() {
        let (id, s) = parse_basic(Some(&basic("a%3Ab", "x+y%2Bz")))
            .unwrap()
            .unwrap();
        assert_eq!((id.as_str(), s.as_str()), ("a:b", "x y+z"));
    }

    #[test]
    fn basic_secret_may_contain_colons_after_the_first() {
        let (_, s) = parse_basic(Some(&basic("a", "b:c"))).unwrap().unwrap();
        assert_eq!(s, "b:c");
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_basic_flag() {
        for h in [
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            let e = parse_basic(Some(h)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{h}");
            assert!(e.basic_auth_attempted);
        }
    }

    #[test]
    fn other_authorization_schemes_are_not_basic() {
        assert_eq!(parse_basic(Some("Bearer abc")).unwrap(), None);
        assert_eq!(parse_basic(None).unwrap(), None);
        assert!(
            parse_basic(Some(&basic("a", "b").replace("Basic", "bAsIc")))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn more_than_one_method_is_invalid_request() {
        let e = presented(
            Some(&basic("app", "s")),
            &form("client_id=app&client_secret=s"),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn client_id_in_body_must_match_basic() {
        assert!(presented(Some(&basic("app", "s")), &form("client_id=app")).is_ok());
        let e = presented(Some(&basic("app", "s")), &form("client_id=other")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn post_and_none_are_recognised() {
        let p = presented(None, &form("client_id=app&client_secret=s"))
            .unwrap()
            .unwrap();
        assert_eq!(p.method, AuthMethod::ClientSecretPost);
        let p = presented(None, &form("client_id=app")).unwrap().unwrap();
        assert_eq!(p.method, AuthMethod::None);
        assert!(presented(None, &form("grant_type=x")).unwrap().is_none());
    }

    #[test]
    fn confidential_client_accepts_basic_and_post_unless_pinned() {
        let c = client(false, "s3cret", None);
        let b = presented(Some(&basic("app", "s3cret")), &FormParams::default())
            .unwrap()
            .unwrap();
        let p = presented(None, &form("client_id=app&client_secret=s3cret"))
            .unwrap()
            .unwrap();
        assert!(verify(&c, &b).is_ok());
        assert!(verify(&c, &p).is_ok());
        let pinned = client(false, "s3cret", Some("client_secret_post"));
        let e = verify(&pinned, &b).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.basic_auth_attempted);
        assert!(verify(&pinned, &p).is_ok());
    }

    #[test]
    fn wrong_secret_or_no_secret_fails_for_confidential_clients() {
        let c = client(false, "s3cret", None);
        let p = presented(None, &form("client_id=app&client_secret=nope"))
            .unwrap()
            .unwrap();
        assert_eq!(verify(&c, &p).unwrap_err().code, ErrorCode::InvalidClient);
        let none = presented(None, &form("client_id=app")).unwrap().unwrap();
        assert_eq!(
            verify(&c, &none).unwrap_err().code,
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn public_clients_authenticate_with_none_only() {
        let c = client(true, "", None);
        let none = presented(None, &form("client_id=app")).unwrap().unwrap();
        assert!(verify(&c, &none).is_ok());
        let p = presented(None, &form("client_id=app&client_secret=x"))
            .unwrap()
            .unwrap();
        assert!(verify(&c, &p).is_err());
    }

    #[test]
    fn duplicate_parameters_are_invalid_request() {
        let e = FormParams::from_body(b"code=a&code=b").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn empty_parameters_count_as_omitted() {
        let f = form("client_secret=&client_id=app");
        assert_eq!(f.get("client_secret"), None);
        assert_eq!(f.get("client_id"), Some("app"));
    }
}
