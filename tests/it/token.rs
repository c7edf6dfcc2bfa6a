//! POST /token: client authentication, the authorization code grant (with PKCE), refresh
//! token rotation, client credentials, and the signed tokens themselves.
//!
//! /authorize is tested elsewhere; these tests mint codes by inserting them directly with
//! `store::codes::insert` (and a session row when a `sid` is needed), marked "direct code".

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Header, Validation};
use portcullis::crypto::secret::{hash_token, random_id, random_token, sha256};
use portcullis::ops::clients::ClientInput;
use portcullis::store::codes::{self, CodeGrant};
use portcullis::store::sessions::{self, Session};
use portcullis::store::users::User;
use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::support::*;

pub const REDIRECT: &str = "http://app.test/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A running server with one user and one default confidential client.
pub struct Fx {
    pub app: TestApp,
    pub http: reqwest::Client,
    pub client_id: String,
    pub secret: String,
    pub user: User,
}

impl Fx {
    pub async fn new() -> Self {
        Self::on(TestApp::spawn().await)
    }

    /// The fixture on a server started with other settings.
    pub fn on(app: TestApp) -> Self {
        let user = app.add_user("ada", &["family"], false);
        let (client_id, secret) = app.confidential("Wiki", REDIRECT);
        Self {
            app,
            http: reqwest::Client::new(),
            client_id,
            secret,
            user,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.url)
    }

    /// A code grant for the default client and user with `scope`, PKCE S256 and a nonce.
    pub fn grant(&self, scope: &str) -> CodeGrant {
        CodeGrant {
            client_id: self.client_id.clone(),
            user_id: self.user.id.clone(),
            sid: None,
            redirect_uri: REDIRECT.into(),
            redirect_uri_sent: true,
            scope: scope.into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: Some(CHALLENGE.into()),
            claims: None,
            auth_time: self.app.clock_now() - 5,
            amr: vec!["pwd".into()],
            acr: None,
        }
    }

    /// Direct code: inserted into the store as /authorize would, valid for 60 s.
    pub fn code(&self, g: &CodeGrant) -> String {
        let code = random_token();
        let now = self.app.clock_now();
        let hash = hash_token(&code);
        self.app
            .db
            .write_blocking(|c| codes::insert(c, &hash, g, now, now + 60))
            .unwrap();
        code
    }

    /// A browser session row for the user; returns its `sid`.
    pub fn session(&self) -> String {
        let now = self.app.clock_now();
        let s = Session {
            id_hash: hash_token(&random_token()),
            sid: random_id(),
            user_id: self.user.id.clone(),
            auth_time: now - 5,
            amr: vec!["pwd".into()],
            acr: None,
            user_agent: None,
            ip: None,
            created_at: now - 5,
            last_seen_at: now,
            expires_at: now + 86_400,
        };
        let sid = s.sid.clone();
        self.app
            .db
            .write_blocking(|c| sessions::insert(c, &s))
            .unwrap();
        sid
    }

    /// POST /token with client_secret_basic for the default client.
    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.token_as(&self.client_id.clone(), &self.secret.clone(), form)
            .await
    }

    pub async fn token_as(
        &self,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Redeems `code` with the default verifier and redirect URI; the JSON body.
    pub async fn redeem(&self, code: &str) -> Value {
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// A fresh direct code for `scope`, redeemed.
    pub async fn tokens(&self, scope: &str) -> Value {
        let code = self.code(&self.grant(scope));
        self.redeem(&code).await
    }

    /// POST /token without Basic (client_secret_post, public clients, no credentials).
    pub async fn token_post(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }
}

/// Verifies a JWT against the published /jwks with the `jsonwebtoken` crate (expiry and
/// audience are checked by the caller: the server runs on a fixed clock).
pub async fn verify_jwt(app: &TestApp, token: &str) -> (Header, Value) {
    portcullis::crypto::jwt::install();
    let jwks: JwkSet = reqwest::get(format!("{}/jwks", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid in the header"))
        .expect("kid published in /jwks");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).expect("signature verifies");
    (data.header, data.claims)
}

pub async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "errors are no-store too"
    );
    let v: Value = r.json().await.unwrap();
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(!d.contains('"') && !d.contains('\\'), "{d}");
    assert!(
        v.get("access_token").is_none(),
        "never a token beside an error"
    );
    (status, v)
}

/// Asserts an OAuth error answer (see `error_of`) with this status and `error` code.
pub async fn assert_error(r: reqwest::Response, status: u16, error: &str) {
    let (got, v) = error_of(r).await;
    assert_eq!((got, v["error"].as_str().unwrap()), (status, error));
}

fn code_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

#[tokio::test]
async fn basic_and_post_auth_both_work_for_a_default_confidential_client() {
    let fx = Fx::new().await;
    // Direct code.
    let code = fx.code(&fx.grant("openid"));
    let r = fx.token(&code_form(&code)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 600);
    assert_eq!(v["scope"], "openid");
    assert!(v["access_token"].is_string() && v["id_token"].is_string());

    let code = fx.code(&fx.grant("openid"));
    let mut form = code_form(&code);
    form.push(("client_id", &fx.client_id));
    form.push(("client_secret", &fx.secret));
    let r = fx.token_post(&form).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_pinned_auth_method_refuses_the_other() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "Pinned".into(),
        redirect_uris: vec![REDIRECT.into()],
        auth_method: Some("client_secret_post".into()),
        ..Default::default()
    });
    let secret = secret.unwrap();
    let mut g = fx.grant("openid");
    g.client_id = id.clone();
    let code = fx.code(&g);
    let r = fx.token_as(&id, &secret, &code_form(&code)).await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_error(r, 401, "invalid_client").await;
    let mut form = code_form(&code);
    form.push(("client_id", &id));
    form.push(("client_secret", &secret));
    let r = fx.token_post(&form).await;
    assert_eq!(
        r.status(),
        200,
        "the code was not consumed by the refused attempt"
    );
}

#[tokio::test]
async fn basic_credentials_are_url_decoded_so_special_characters_work() {
    let fx = Fx::new().await;
    let secret = "p@ss w:rd/+%&=ü~";
    let now = fx.app.clock_now();
    let (id, h) = (fx.client_id.clone(), hash_token(secret));
    fx.app
        .db
        .write_blocking(|c| portcullis::store::clients::set_secret_hash(c, &id, &h, now))
        .unwrap();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let header = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(&fx.client_id), enc(secret)))
    );
    let code = fx.code(&fx.grant("openid"));
    let r = fx
        .http
        .post(fx.url("/token"))
        .header("Authorization", header)
        .form(&code_form(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same secret through client_secret_post.
    let code = fx.code(&fx.grant("openid"));
    let mut form = code_form(&code);
    form.push(("client_id", &fx.client_id));
    form.push(("client_secret", secret));
    let r = fx.token_post(&form).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_bad_secret_is_401_invalid_client_and_leaves_the_code_unused() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid"));
    let r = fx.token_as(&fx.client_id, "wrong", &code_form(&code)).await;
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"token\", charset=\"UTF-8\""
    );
    assert_error(r, 401, "invalid_client").await;
    // Without Basic there is no WWW-Authenticate challenge.
    let mut form = code_form(&code);
    form.push(("client_id", &fx.client_id));
    form.push(("client_secret", "wrong"));
    let r = fx.token_post(&form).await;
    assert!(r.headers().get("www-authenticate").is_none());
    assert_eq!(error_of(r).await.0, 401);
    // An unknown client is refused the same way.
    let r = fx.token_as("nobody", "x", &code_form(&code)).await;
    assert_eq!(error_of(r).await.1["error"], "invalid_client");
    // Go's x/oauth2 then retries with the other method: the code still works.
    let mut form = code_form(&code);
    form.push(("client_id", &fx.client_id));
    form.push(("client_secret", &fx.secret));
    let r = fx.token_post(&form).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn basic_and_client_secret_together_or_duplicate_parameters_are_invalid_request() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid"));
    let mut form = code_form(&code);
    form.push(("client_secret", &fx.secret));
    assert_error(fx.token(&form).await, 400, "invalid_request").await;
    let mut form = code_form(&code);
    form.push(("code", "again"));
    assert_error(fx.token(&form).await, 400, "invalid_request").await;
    assert_eq!(fx.token(&code_form(&code)).await.status(), 200);
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_what_it_issued() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid offline_access"));
    let first = fx.redeem(&code).await;
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(fx.userinfo(at).await.status(), 200);

    assert_error(fx.token(&code_form(&code)).await, 400, "invalid_grant").await;
    assert_eq!(fx.userinfo(at).await.status(), 401, "access token revoked");
    let (_, v) = error_of(fx.refresh(rt).await).await;
    assert_eq!(v["error"], "invalid_grant", "refresh token revoked");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid"));
    fx.app.clock.advance(61);
    assert_error(fx.token(&code_form(&code)).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_unknown_code_or_another_clients_code_is_invalid_grant() {
    let fx = Fx::new().await;
    assert_error(fx.token(&code_form("made-up")).await, 400, "invalid_grant").await;
    let (other, other_secret) = fx.app.confidential("Other", REDIRECT);
    let code = fx.code(&fx.grant("openid"));
    let (_, v) = error_of(fx.token_as(&other, &other_secret, &code_form(&code)).await).await;
    assert_eq!(v["error"], "invalid_grant");
}

#[tokio::test]
async fn a_redirect_uri_mismatch_is_invalid_grant() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid"));
    for bad in [
        "http://app.test/cb/",
        "http://app.test/other",
        "http://APP.test/cb",
    ] {
        let r = fx
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", bad),
                ("code_verifier", VERIFIER),
            ])
            .await;
        let (status, v) = error_of(r).await;
        assert_eq!(
            (status, v["error"].as_str().unwrap()),
            (400, "invalid_grant"),
            "{bad}"
        );
    }
    assert_eq!(fx.token(&code_form(&code)).await.status(), 200);
}

#[tokio::test]
async fn pkce_missing_or_wrong_verifier_is_refused_and_a_128_character_verifier_works() {
    let fx = Fx::new().await;
    let code = fx.code(&fx.grant("openid"));
    let r = fx
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(error_of(r).await.1["error"], "invalid_grant");
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
    let r = fx
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", wrong),
        ])
        .await;
    assert_eq!(error_of(r).await.1["error"], "invalid_grant");

    let long: String = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
        .chars()
        .cycle()
        .take(128)
        .collect();
    let mut g = fx.grant("openid");
    g.code_challenge = Some(URL_SAFE_NO_PAD.encode(sha256(long.as_bytes())));
    let code = fx.code(&g);
    let r = fx
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &long),
        ])
        .await;
    assert_eq!(r.status(), 200);

    // A verifier sent for a code issued without a challenge is refused.
    let mut g = fx.grant("openid");
    g.code_challenge = None;
    let code = fx.code(&g);
    assert_eq!(
        error_of(fx.token(&code_form(&code)).await).await.1["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_id_token_verifies_against_jwks_with_exact_claims() {
    let fx = Fx::new().await;
    let sid = fx.session();
    let mut g = fx.grant("openid profile email");
    g.sid = Some(sid.clone());
    let auth_time = g.auth_time;
    let v = fx.redeem(&fx.code(&g)).await;
    let id_token = v["id_token"].as_str().unwrap();
    let at = v["access_token"].as_str().unwrap();
    let (header, c) = verify_jwt(&fx.app, id_token).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(header.kid.is_some());
    // Byte-identical to the configured issuer (what discovery publishes). Not compared with
    // /.well-known here: discovery caches its document process-wide, so in this one test
    // binary it may describe another TestApp.
    assert_eq!(c["iss"].as_str().unwrap(), fx.app.config.public_url);
    assert_eq!(c["sub"], fx.user.id);
    assert_eq!(c["aud"], fx.client_id);
    assert_eq!(c["azp"], fx.client_id);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["sid"], sid);
    assert_eq!(c["auth_time"], auth_time);
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    let now = fx.app.clock_now();
    assert_eq!(c["iat"], now);
    assert_eq!(c["exp"], now + 3600);
    let expected = URL_SAFE_NO_PAD.encode(&sha256(at.as_bytes())[..16]);
    assert_eq!(c["at_hash"], expected);
    assert_eq!(c["preferred_username"], "ada");
    assert_eq!(c["name"], "ada Example");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["email_verified"], true);
    assert!(c["updated_at"].is_i64());
    assert!(c.get("groups").is_none(), "groups scope not granted");

    // The session now lists the client (back-channel logout fan-out).
    let clients = fx
        .app
        .db
        .read_blocking(|c| sessions::clients_of(c, &sid))
        .unwrap();
    assert_eq!(clients, vec![fx.client_id.clone()]);

    // The access token is an RFC 9068 JWT.
    let (h, a) = verify_jwt(&fx.app, at).await;
    assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    assert_eq!(a["iss"], c["iss"]);
    assert_eq!(a["sub"], fx.user.id);
    assert_eq!(a["client_id"], fx.client_id);
    assert_eq!(a["scope"], "openid profile email");
    assert_eq!(a["sid"], sid);
    assert_eq!(a["auth_time"], auth_time);
    assert_eq!(a["exp"], now + 600);
    assert!(a["jti"].is_string());
    let aud: Vec<&str> = a["aud"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(aud.contains(&fx.client_id.as_str()));
}

#[tokio::test]
async fn the_nonce_is_in_the_id_token_only_when_the_code_carried_one() {
    let fx = Fx::new().await;
    let mut g = fx.grant("openid");
    g.nonce = None;
    let v = fx.redeem(&fx.code(&g)).await;
    let (_, c) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
    assert!(c.get("nonce").is_none());
    assert!(c.get("sid").is_none(), "no session, no sid");
}

#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("profile").await;
    assert!(v.get("id_token").is_none());
    assert_eq!(v["scope"], "profile");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_within_the_grace_returns_the_same_successor() {
    let fx = Fx::new().await;
    let sid = fx.session();
    let mut g = fx.grant("openid email offline_access");
    g.sid = Some(sid.clone());
    let first = fx.redeem(&fx.code(&g)).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let (_, c1) = verify_jwt(&fx.app, first["id_token"].as_str().unwrap()).await;

    fx.app.clock.advance(5);
    let r = fx.refresh(&rt1).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let second: Value = r.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "rotated");
    assert_eq!(second["scope"], "openid email offline_access");
    let (_, c2) = verify_jwt(&fx.app, second["id_token"].as_str().unwrap()).await;
    assert_eq!(c2["auth_time"], c1["auth_time"]);
    assert_eq!(c2["sid"], sid);
    assert_eq!(c2["sub"], c1["sub"]);
    assert!(c2.get("nonce").is_none(), "no nonce on refresh");
    assert_eq!(c2["email"], "ada@example.com");

    // A parallel tab uses rt1 again within the grace: same successor, fresh access token.
    fx.app.clock.advance(3);
    let again: Value = fx.refresh(&rt1).await.json().await.unwrap();
    assert_eq!(again["refresh_token"].as_str().unwrap(), rt2);
    assert_ne!(again["access_token"], second["access_token"]);
    assert_eq!(
        fx.userinfo(again["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // rt2 keeps working and rotates in turn.
    let third: Value = fx.refresh(&rt2).await.json().await.unwrap();
    let rt3 = third["refresh_token"].as_str().unwrap().to_string();
    let at3 = third["access_token"].as_str().unwrap().to_string();
    assert_eq!(fx.userinfo(&at3).await.status(), 200);

    // Reuse after the grace is theft: the family and its access tokens are revoked.
    fx.app.clock.advance(11);
    let (status, v) = error_of(fx.refresh(&rt1).await).await;
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(
        error_of(fx.refresh(&rt3).await).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(fx.userinfo(&at3).await.status(), 401);
}

#[tokio::test]
async fn refresh_scope_may_only_narrow() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid email offline_access").await;
    let rt = v["refresh_token"].as_str().unwrap();
    let r = fx
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid profile"),
        ])
        .await;
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "invalid_scope")
    );
    let r = fx
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "email"),
        ])
        .await;
    assert_eq!(
        r.status(),
        200,
        "the refused request did not rotate the token"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["scope"], "email");
    assert!(v.get("id_token").is_none(), "openid not requested");
    // The successor keeps the original scope.
    let v: Value = fx
        .refresh(v["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["scope"], "openid email offline_access");
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client_and_user() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let rt = v["refresh_token"].as_str().unwrap();
    let (other, other_secret) = fx.app.confidential("Other", REDIRECT);
    let r = fx
        .token_as(
            &other,
            &other_secret,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(error_of(r).await.1["error"], "invalid_grant");
    let (status, e) = error_of(fx.refresh("not-a-token").await).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );

    // A disabled user's refresh token stops working.
    let mut u = fx.user.clone();
    u.disabled = true;
    let now = fx.app.clock_now();
    fx.app
        .db
        .write_blocking(|c| portcullis::store::users::update_profile(c, &u, now))
        .unwrap();
    assert_eq!(
        error_of(fx.refresh(rt).await).await.1["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    fx.app.clock.advance(30 * 86_400 + 1);
    let r = fx.refresh(v["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_of(r).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn a_client_without_refresh_gets_none_even_for_offline_access() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "NoRefresh".into(),
        redirect_uris: vec![REDIRECT.into()],
        allow_refresh: false,
        ..Default::default()
    });
    let secret = secret.unwrap();
    for scope in ["openid", "openid offline_access"] {
        let mut g = fx.grant(scope);
        g.client_id = id.clone();
        let code = fx.code(&g);
        let v: Value = fx
            .token_as(&id, &secret, &code_form(&code))
            .await
            .json()
            .await
            .unwrap();
        assert!(v.get("refresh_token").is_none(), "{scope}: {v}");
        assert!(v["access_token"].is_string());
    }
}

#[tokio::test]
async fn client_credentials_issue_an_access_token_only() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "Backup job".into(),
        allow_client_credentials: true,
        allowed_scopes: Some("backup.read backup.write".into()),
        ..Default::default()
    });
    let secret = secret.unwrap();
    let r = fx
        .token_as(
            &id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "openid backup.read admin"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["scope"], "backup.read");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none());
    let (h, c) = verify_jwt(&fx.app, v["access_token"].as_str().unwrap()).await;
    assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    assert_eq!(c["sub"], id);
    assert_eq!(c["client_id"], id);
    assert!(c.get("auth_time").is_none());
    // Not a user token: userinfo refuses it.
    assert_eq!(
        fx.userinfo(v["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    // Without a scope parameter: the client's allowed scopes.
    let v: Value = fx
        .token_as(&id, &secret, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["scope"], "backup.read backup.write");
}

#[tokio::test]
async fn client_credentials_are_refused_to_a_client_without_the_grant() {
    let fx = Fx::new().await;
    let r = fx.token(&[("grant_type", "client_credentials")]).await;
    assert_error(r, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn an_unknown_or_missing_grant_type_is_refused() {
    let fx = Fx::new().await;
    assert_error(
        fx.token(&[("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
    assert_error(fx.token(&[("code", "x")]).await, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_and_no_secret() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "SPA".into(),
        redirect_uris: vec![REDIRECT.into()],
        public: true,
        ..Default::default()
    });
    assert!(secret.is_none());
    let mut g = fx.grant("openid offline_access");
    g.client_id = id.clone();
    let code = fx.code(&g);
    let mut form = code_form(&code);
    form.push(("client_id", &id));
    let r = fx
        .http
        .post(fx.url("/token"))
        .header("Origin", "http://app.test")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    let v: Value = r.json().await.unwrap();
    let r = fx
        .http
        .post(fx.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            ("client_id", &id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No credentials at all.
    let r = fx.token_post(&code_form("x")).await;
    assert_eq!(error_of(r).await.1["error"], "invalid_client");
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let old = v["id_token"].as_str().unwrap().to_string();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let now = fx.app.clock_now();
    fx.app.state.keys.rotate(now, true).unwrap();
    let (_, c) = verify_jwt(&fx.app, &old).await;
    assert_eq!(c["sub"], fx.user.id);
    // The old access token still works at userinfo; new tokens use the new key.
    assert_eq!(
        fx.userinfo(v["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let fresh: Value = fx
        .refresh(v["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let new_kid = jsonwebtoken::decode_header(fresh["id_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(new_kid, old_kid);
    verify_jwt(&fx.app, fresh["id_token"].as_str().unwrap()).await;
    assert_eq!(
        fx.userinfo(fresh["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn es256_and_eddsa_clients_get_tokens_signed_with_those_algorithms() {
    let fx = Fx::new().await;
    for (alg, expected) in [
        ("ES256", jsonwebtoken::Algorithm::ES256),
        ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let (id, secret) = fx.app.add_client(ClientInput {
            name: alg.into(),
            redirect_uris: vec![REDIRECT.into()],
            signing_alg: alg.into(),
            ..Default::default()
        });
        let mut g = fx.grant("openid email");
        g.client_id = id.clone();
        let code = fx.code(&g);
        let v: Value = fx
            .token_as(&id, &secret.unwrap(), &code_form(&code))
            .await
            .json()
            .await
            .unwrap();
        let at = v["access_token"].as_str().unwrap();
        let (h, c) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
        assert_eq!(h.alg, expected);
        let (ah, _) = verify_jwt(&fx.app, at).await;
        assert_eq!(ah.alg, expected);
        let at_hash = if alg == "EdDSA" {
            URL_SAFE_NO_PAD.encode(&Sha512::digest(at.as_bytes())[..32])
        } else {
            URL_SAFE_NO_PAD.encode(&sha256(at.as_bytes())[..16])
        };
        assert_eq!(c["at_hash"], at_hash, "{alg}");
        let r = fx.userinfo(at).await;
        assert_eq!(r.status(), 200, "{alg}");
        let u: Value = r.json().await.unwrap();
        assert_eq!(u["sub"], c["sub"]);
    }
}

#[tokio::test]
async fn client_lifetimes_override_the_server_defaults() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "Short".into(),
        redirect_uris: vec![REDIRECT.into()],
        access_token_ttl: Some(60),
        id_token_ttl: Some(120),
        ..Default::default()
    });
    let mut g = fx.grant("openid");
    g.client_id = id.clone();
    let code = fx.code(&g);
    let v: Value = fx
        .token_as(&id, &secret.unwrap(), &code_form(&code))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["expires_in"], 60);
    let (_, c) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
}

#[tokio::test]
async fn a_refresh_token_from_before_handles_still_rotates_into_the_new_format() {
    use portcullis::crypto::secret::refresh_token_key;
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let issued = v["refresh_token"].as_str().unwrap().to_string();
    assert!(issued.contains('.'), "new tokens carry a handle: {issued}");
    // Rewrite the stored row as an older release stored it: the plain hash of a token
    // without a handle.
    let old = random_token();
    let (from, to) = (refresh_token_key(&issued), hash_token(&old));
    let n = fx
        .app
        .db
        .write_blocking(move |c| {
            Ok(c.execute(
                "UPDATE refresh_tokens SET token_hash = ?2 WHERE token_hash = ?1",
                [&from, &to],
            )?)
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(error_of(fx.refresh(&issued).await).await.0, 400);
    let r = fx.refresh(&old).await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    let next = next["refresh_token"].as_str().unwrap();
    assert!(next.contains('.'));
    assert_eq!(fx.refresh(next).await.status(), 200);
}
