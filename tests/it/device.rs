//! Device sign-in (RFC 8628): /device_authorization, the /device pages and the device code
//! grant at /token — every error of §3.5, single use, the guess limits, group restrictions,
//! and tokens that work at /userinfo.

use portcullis::ops::clients::ClientInput;
use portcullis::store::audit::Filter;
use serde_json::Value;

use crate::support::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const INVALID: &str = "That code is not valid. Check it on your device, or start again there.";

struct Fx {
    app: TestApp,
    http: reqwest::Client,
    /// A confidential client allowed device sign-in (refresh tokens on, consent asked).
    cid: String,
    secret: String,
}

impl Fx {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        app.add_user("ada", &["family"], false);
        let (cid, secret) = app.add_client(ClientInput {
            name: "Living Room TV".into(),
            allow_device_code: true,
            ..Default::default()
        });
        Self {
            app,
            http: reqwest::Client::new(),
            cid,
            secret: secret.unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.url)
    }

    /// POST /device_authorization as the confidential client.
    async fn start(&self, scope: &str) -> Value {
        let (status, body) = self.start_as(&self.cid, Some(&self.secret), scope).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn start_as(&self, cid: &str, secret: Option<&str>, scope: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/device_authorization"))
            .header("user-agent", "KitchenTV/2.1 (Linux; Android 12)");
        let mut form = vec![("scope", scope.to_string())];
        match secret {
            Some(s) => req = req.basic_auth(cid, Some(s)),
            None => form.push(("client_id", cid.to_string())),
        }
        let r = req.form(&form).send().await.unwrap();
        let status = r.status().as_u16();
        if status == 200 {
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
        (status, r.json().await.unwrap())
    }

    /// One poll of /token as the confidential client.
    async fn poll(&self, device_code: &str) -> (u16, Value) {
        self.poll_as(&self.cid, Some(&self.secret), device_code)
            .await
    }

    async fn poll_as(&self, cid: &str, secret: Option<&str>, device_code: &str) -> (u16, Value) {
        let mut req = self.http.post(self.url("/token"));
        let mut form = vec![("grant_type", GRANT), ("device_code", device_code)];
        match secret {
            Some(s) => req = req.basic_auth(cid, Some(s)),
            None => form.push(("client_id", cid)),
        }
        let r = req.form(&form).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn signed_in(&self, username: &str) -> reqwest::Client {
        let b = self.app.browser();
        assert_eq!(self.app.sign_in(&b, username).await.status(), 303);
        b
    }

    /// Types `code` at /device in `b`; returns the status and the page.
    async fn enter(&self, b: &reqwest::Client, code: &str) -> (u16, String) {
        let r = self
            .app
            .submit(b, "/device", "/device", &[("code", code)])
            .await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// Types `code`, then answers `decision` on the confirmation page.
    async fn decide(&self, b: &reqwest::Client, code: &str, decision: &str) -> (u16, String) {
        let (status, page) = self.enter(b, code).await;
        assert_eq!(status, 200, "{page}");
        let csrf = csrf_from(&page);
        let shown = input_value(&page, "code").unwrap();
        let r = self
            .app
            .post_form(
                b,
                "/device/decide",
                &[("csrf", &csrf), ("code", &shown), ("decision", decision)],
            )
            .await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// The interval the device must now keep (as stored).
    fn interval(&self, device_code: &str) -> i64 {
        let hash = portcullis::crypto::secret::hash_token(device_code);
        self.app
            .db
            .read_blocking(move |c| portcullis::store::device_codes::by_device_code_hash(c, &hash))
            .unwrap()
            .unwrap()
            .interval_secs
    }

    fn audit_kinds(&self) -> Vec<String> {
        self.app
            .db
            .read_blocking(|c| portcullis::store::audit::list(c, &Filter::default(), 200, 0))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// The text of the page's error alert.
fn alert(page: &str) -> String {
    let start = page.find("role=\"alert\">").expect("an alert") + "role=\"alert\">".len();
    page[start..].split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn discovery_names_the_endpoint_and_the_grant() {
    let fx = Fx::new().await;
    let doc: Value = fx
        .http
        .get(fx.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["device_authorization_endpoint"],
        fx.url("/device_authorization")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from(GRANT))
    );
}

#[tokio::test]
async fn the_response_has_every_rfc8628_field() {
    let fx = Fx::new().await;
    let r = fx.start("openid profile").await;
    assert_eq!(r["device_code"].as_str().unwrap().len(), 43);
    let code = r["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 9);
    assert!(
        code.chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{code}"
    );
    assert_eq!(r["verification_uri"], fx.url("/device"));
    assert_eq!(
        r["verification_uri_complete"],
        fx.url(&format!("/device?code={code}"))
    );
    assert_eq!(r["expires_in"], 600);
    assert_eq!(r["interval"], 5);
    // Unknown scopes are dropped; a malformed one is invalid_scope.
    let (status, body) = fx.start_as(&fx.cid, Some(&fx.secret), "openid \"bad").await;
    assert_eq!((status, error_of(&body)), (400, "invalid_scope"));
    // A wrong secret is invalid_client.
    let (status, body) = fx.start_as(&fx.cid, Some("wrong"), "openid").await;
    assert_eq!((status, error_of(&body)), (401, "invalid_client"));
}

#[tokio::test]
async fn a_client_without_the_setting_is_unauthorized_client() {
    let fx = Fx::new().await;
    let (cid, secret) = fx.app.confidential("Wiki", "http://app.test/cb");
    let (status, body) = fx.start_as(&cid, Some(&secret), "openid").await;
    assert_eq!((status, error_of(&body)), (400, "unauthorized_client"));
    // At /token too, before the code is looked at.
    let started = fx.start("openid").await;
    let (status, body) = fx
        .poll_as(
            &cid,
            Some(&secret),
            started["device_code"].as_str().unwrap(),
        )
        .await;
    assert_eq!((status, error_of(&body)), (400, "unauthorized_client"));
}

#[tokio::test]
async fn pending_slow_down_then_tokens_that_work_once() {
    let fx = Fx::new().await;
    let started = fx.start("openid profile offline_access nonsense").await;
    let dc = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();

    let (status, body) = fx.poll(dc).await;
    assert_eq!((status, error_of(&body)), (400, "authorization_pending"));
    // Polled again at once: slow_down, and the interval is 5 s longer from now on.
    let (status, body) = fx.poll(dc).await;
    assert_eq!((status, error_of(&body)), (400, "slow_down"));
    assert_eq!(fx.interval(dc), 10);
    fx.app.clock.advance(5);
    let (_, body) = fx.poll(dc).await;
    assert_eq!(error_of(&body), "slow_down", "the interval is now 10 s");
    assert_eq!(fx.interval(dc), 15, "each slow_down adds 5 s");
    fx.app.clock.advance(15);
    let (_, body) = fx.poll(dc).await;
    assert_eq!(error_of(&body), "authorization_pending");
    assert_eq!(fx.interval(dc), 15);

    // The person: signed out, sent to sign in, back at /device with the code kept.
    let b = fx.app.browser();
    let r = b
        .get(fx.url(&format!("/device?code={user_code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r);
    assert!(login.starts_with("/login?next="), "{login}");
    let r = fx.app.sign_in_at(&b, &login, "ada", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert_eq!(back, format!("/device?code={user_code}"));
    let (status, page) = fx.app.page(&b, &back).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("value=\"{user_code}\"")), "{page}");

    // Typed in lower case without the dash: the confirmation page says what asks.
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, page) = fx.enter(&b, &typed).await;
    assert_eq!(status, 200, "{page}");
    for words in [
        "Living Room TV",
        "Only continue if you started this sign-in yourself on a device in front of you.",
        "If someone gave you this code, deny.",
        "127.0.0.1",
        "on Android",
        "just now",
        "your name and username",
        "stay signed in",
        user_code,
    ] {
        assert!(page.contains(words), "{words} missing: {page}");
    }
    let (status, page) = fx.decide(&b, &typed, "allow").await;
    assert_eq!(status, 200);
    assert!(page.contains("Your device is signed in"), "{page}");

    fx.app.clock.advance(10);
    let (status, tokens) = fx.poll(dc).await;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], fx.cid.as_str());
    assert!(id["amr"].as_array().unwrap().contains(&Value::from("pwd")));
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let info: Value = fx
        .http
        .get(fx.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "ada");
    // The refresh token works too.
    let r = fx
        .http
        .post(fx.url("/token"))
        .basic_auth(&fx.cid, Some(&fx.secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Single use.
    fx.app.clock.advance(20);
    let (status, body) = fx.poll(dc).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    // And the code is no longer accepted at /device, with the same words as any wrong code.
    let (status, page) = fx.enter(&b, user_code).await;
    assert_eq!((status, alert(&page).as_str()), (400, INVALID));

    let kinds = fx.audit_kinds();
    assert!(kinds.iter().any(|k| k == "device.approved"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "consent.granted"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k == "device.code_rejected"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_public_client_without_refresh_tokens_gets_none() {
    let fx = Fx::new().await;
    let (cid, _) = fx.app.add_client(ClientInput {
        name: "CLI".into(),
        public: true,
        allow_device_code: true,
        allow_refresh: false,
        skip_consent: true,
        ..Default::default()
    });
    let (status, started) = fx.start_as(&cid, None, "openid email offline_access").await;
    assert_eq!(status, 200, "{started}");
    let b = fx.signed_in("ada").await;
    let (status, _) = fx
        .decide(&b, started["user_code"].as_str().unwrap(), "allow")
        .await;
    assert_eq!(status, 200);
    let (status, tokens) = fx
        .poll_as(&cid, None, started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "openid email");
    // skip_consent: no consent recorded.
    assert!(!fx.audit_kinds().iter().any(|k| k == "consent.granted"));
}

#[tokio::test]
async fn denied_is_access_denied() {
    let fx = Fx::new().await;
    let started = fx.start("openid").await;
    let b = fx.signed_in("ada").await;
    let (status, page) = fx
        .decide(&b, started["user_code"].as_str().unwrap(), "deny")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Device sign-in denied"), "{page}");
    let (status, body) = fx.poll(started["device_code"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&body)), (400, "access_denied"));
    assert!(fx.audit_kinds().iter().any(|k| k == "device.denied"));
}

#[tokio::test]
async fn an_expired_code_is_expired_token_and_refused_like_an_unknown_one() {
    let fx = Fx::new().await;
    let started = fx.start("openid").await;
    let b = fx.signed_in("ada").await;
    fx.app.clock.advance(601);
    let (status, body) = fx.poll(started["device_code"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&body)), (400, "expired_token"));
    let (s1, expired) = fx.enter(&b, started["user_code"].as_str().unwrap()).await;
    let (s2, unknown) = fx.enter(&b, "BCDF-GHJK").await;
    let (s3, malformed) = fx.enter(&b, "hello").await;
    assert_eq!((s1, s2, s3), (400, 400, 400));
    assert_eq!(alert(&expired), INVALID);
    assert_eq!(alert(&unknown), INVALID);
    assert_eq!(alert(&malformed), INVALID);
    // The pages differ only in the code typed back.
    assert_eq!(
        expired.replace(started["user_code"].as_str().unwrap(), "X"),
        unknown.replace("BCDF-GHJK", "X")
    );
}

#[tokio::test]
async fn another_clients_device_code_is_invalid_grant() {
    let fx = Fx::new().await;
    let started = fx.start("openid").await;
    let (other, secret) = fx.app.add_client(ClientInput {
        name: "Other TV".into(),
        allow_device_code: true,
        ..Default::default()
    });
    let (status, body) = fx
        .poll_as(
            &other,
            secret.as_deref(),
            started["device_code"].as_str().unwrap(),
        )
        .await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let (status, body) = fx.poll("not-a-device-code").await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    // The owner still polls normally.
    let (_, body) = fx.poll(started["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&body), "authorization_pending");
}

#[tokio::test]
async fn guessing_codes_is_throttled() {
    let fx = Fx::new().await;
    let started = fx.start("openid").await;
    let b = fx.signed_in("ada").await;
    for guess in [
        "BCDF-GHJK",
        "BCDF-GHJL",
        "BCDF-GHJM",
        "BCDF-GHJN",
        "BCDF-GHJP",
    ] {
        let (status, page) = fx.enter(&b, guess).await;
        assert_eq!((status, alert(&page).as_str()), (400, INVALID));
    }
    // Past the limit even the right code must wait.
    let r = fx
        .app
        .submit(
            &b,
            "/device",
            "/device",
            &[("code", started["user_code"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let page = r.text().await.unwrap();
    assert!(
        alert(&page).starts_with("Too many codes were not valid. Wait"),
        "{page}"
    );
    // The wait passes.
    fx.app.clock.advance(2);
    let (status, page) = fx.enter(&b, started["user_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{page}");
}

#[tokio::test]
async fn a_person_outside_the_allowed_groups_gets_the_no_access_page() {
    let fx = Fx::new().await;
    fx.app.add_user("bob", &[], false);
    let (cid, secret) = fx.app.add_client(ClientInput {
        name: "Family Photos".into(),
        allow_device_code: true,
        allowed_groups: vec!["family".into()],
        ..Default::default()
    });
    let (_, started) = fx.start_as(&cid, secret.as_deref(), "openid").await;
    let code = started["user_code"].as_str().unwrap();
    let bob = fx.signed_in("bob").await;
    let (status, page) = fx.enter(&bob, code).await;
    assert_eq!(status, 403);
    assert!(page.contains("not allowed to use Family Photos"), "{page}");
    assert!(
        fx.audit_kinds()
            .iter()
            .any(|k| k == "authorize.denied_group")
    );
    // A forged decision is refused the same way, and the code stays pending.
    let csrf = fx.app.csrf_at(&bob, "/device").await;
    let r = fx
        .app
        .post_form(
            &bob,
            "/device/decide",
            &[("csrf", &csrf), ("code", code), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let (_, body) = fx
        .poll_as(
            &cid,
            secret.as_deref(),
            started["device_code"].as_str().unwrap(),
        )
        .await;
    assert_eq!(error_of(&body), "authorization_pending");
    // A member may approve it.
    let ada = fx.signed_in("ada").await;
    let (status, _) = fx.decide(&ada, code, "allow").await;
    assert_eq!(status, 200);
    fx.app.clock.advance(5);
    let (status, _) = fx
        .poll_as(
            &cid,
            secret.as_deref(),
            started["device_code"].as_str().unwrap(),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let fx = Fx::new().await;
    let started = fx.start("openid").await;
    let b = fx.signed_in("ada").await;
    let r = fx
        .app
        .post_form(
            &b,
            "/device",
            &[
                ("csrf", "forged"),
                ("code", started["user_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = fx
        .app
        .post_form(
            &b,
            "/device/decide",
            &[
                ("code", started["user_code"].as_str().unwrap()),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
}
