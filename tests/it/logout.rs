//! RP-Initiated Logout 1.0 and Back-Channel Logout 1.0 over real HTTP.

use portcullis::ops::clients::ClientInput;

use crate::support::*;

struct Setup {
    app: TestApp,
    rp: LogoutReceiver,
    a: (String, String),
    b: (String, String),
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let rp = LogoutReceiver::start().await;
    let mk = |name: &str, path: &str| {
        let (id, secret) = app.add_client(ClientInput {
            name: name.into(),
            redirect_uris: vec!["http://app.test/cb".into()],
            post_logout_redirect_uris: vec!["http://app.test/bye".into()],
            backchannel_logout_uri: Some(format!("{}{path}", rp.url)),
            skip_consent: true,
            ..Default::default()
        });
        (id, secret.unwrap())
    };
    let a = mk("Grafana", "/a");
    let b = mk("Immich", "/b");
    Setup { app, rp, a, b }
}

/// Runs the code flow as alice for the app `client` (id, secret); the token response.
async fn alice_tokens(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, String),
) -> serde_json::Value {
    alice_tokens_for_scope(app, browser, client, "openid").await
}

async fn alice_tokens_for_scope(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, String),
    scope: &str,
) -> serde_json::Value {
    app.tokens_for(
        browser,
        "alice",
        &client.0,
        Some(&client.1),
        "http://app.test/cb",
        scope,
    )
    .await
}

/// RP-initiated logout in `browser` with only an ID token hint (no redirect asked for).
async fn sign_out(app: &TestApp, browser: &reqwest::Client, id_token: &str) -> reqwest::Response {
    browser
        .get(format!("{}/logout", app.url))
        .query(&[("id_token_hint", id_token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_out_through_one_app_notifies_every_app_of_the_session() {
    let Setup { app, rp, a, b } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    let tb = alice_tokens(&app, &browser, &b).await;
    let id_a = ta["id_token"].as_str().unwrap().to_string();
    let sid = jwt_claims(&id_a)["sid"].as_str().unwrap().to_string();
    assert_eq!(
        jwt_claims(tb["id_token"].as_str().unwrap())["sid"],
        sid,
        "one session, one sid"
    );

    let r = browser
        .get(format!("{}/logout", app.url))
        .query(&[
            ("id_token_hint", id_a.as_str()),
            ("post_logout_redirect_uri", "http://app.test/bye"),
            ("state", "xyz"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "http://app.test/bye?state=xyz",
        "only state is added"
    );

    let tokens = rp.wait_for(2).await;
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/jwks", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut paths: Vec<String> = Vec::new();
    for (path, token) in tokens {
        paths.push(path.clone());
        let header = jwt_header(&token);
        assert_eq!(header["typ"], "logout+jwt");
        let kid = header["kid"].as_str().unwrap();
        let jwk = jwks.find(kid).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&[if path == "/a" { &a.0 } else { &b.0 }]);
        v.set_issuer(&[&app.config.public_url]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v)
            .expect("logout token verifies")
            .claims;
        assert_eq!(claims["sid"], sid);
        assert!(claims["sub"].is_string());
        assert!(
            claims["iat"].is_number() && claims["exp"].is_number() && claims["jti"].is_string()
        );
        assert_eq!(
            claims["events"],
            serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(claims.get("nonce").is_none());
    }
    paths.sort();
    assert_eq!(paths, vec!["/a", "/b"]);

    // The session really ended: prompt=none gets login_required.
    let u = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&scope=openid&prompt=none&code_challenge={CHALLENGE}&code_challenge_method=S256",
        app.url, a.0
    );
    let r = browser.get(u).send().await.unwrap();
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn an_rp_that_is_down_gets_its_logout_token_when_it_comes_back() {
    let Setup { app, rp, a, .. } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    rp.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = sign_out(&app, &browser, ta["id_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200, "signed-out page does not wait for the RP");
    assert!(r.text().await.unwrap().contains("You are signed out"));
    // Wait for the failed attempt to be recorded.
    for _ in 0..100 {
        let attempts: i64 = app
            .db
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT coalesce(max(attempts), 0) FROM logout_outbox",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        if attempts >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    rp.up.store(true, std::sync::atomic::Ordering::SeqCst);
    app.clock.advance(10); // past the first backoff
    app.state.kick_logout_delivery();
    let got = rp.wait_for(1).await;
    assert_eq!(got[0].0, "/a");
    let claims = jwt_claims(&got[0].1);
    assert!(
        claims["iat"].as_i64().unwrap() >= app.clock_now() - 1,
        "a fresh token per attempt"
    );
    let kinds: Vec<String> = app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 50, 0))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"logout.backchannel_failed".into())
            && kinds.contains(&"logout.backchannel_delivered".into()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn unregistered_or_altered_post_logout_redirects_are_never_followed() {
    let Setup { app, a, .. } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    let hint = ta["id_token"].as_str().unwrap();
    for uri in [
        "http://evil.test/bye",
        "http://app.test/bye?x=1",
        "http://app.test/bye/",
    ] {
        let r = browser
            .get(format!("{}/logout", app.url))
            .query(&[("id_token_hint", hint), ("post_logout_redirect_uri", uri)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{uri}");
        assert!(r.headers().get("location").is_none());
    }
    // Still signed in: nothing happened.
    assert_eq!(app.status_at(&browser, "/account").await, 200);
}

#[tokio::test]
async fn an_untrusted_request_asks_for_confirmation_first() {
    let Setup { app, a, .. } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    let hint = ta["id_token"].as_str().unwrap().to_string();
    // An altered hint and an alg:none hint are not trusted.
    let mut parts: Vec<String> = hint.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    let altered = parts.join(".");
    use base64::Engine;
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        hint.split('.').nth(1).unwrap()
    );
    for h in [None, Some(altered.as_str()), Some(none.as_str())] {
        let mut q = vec![];
        if let Some(h) = h {
            q.push(("id_token_hint", h));
        }
        let r = browser
            .get(format!("{}/logout", app.url))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Sign out of all apps?"));
        assert_eq!(
            app.status_at(&browser, "/account").await,
            200,
            "not signed out yet"
        );
    }
    // Confirming signs out; with client_id and a registered URI it returns to the app.
    let page = browser
        .get(format!("{}/logout", app.url))
        .query(&[
            ("client_id", a.0.as_str()),
            ("post_logout_redirect_uri", "http://app.test/bye"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&page);
    let r = app
        .post_form(
            &browser,
            "/logout",
            &[
                ("csrf", csrf.as_str()),
                ("confirm", "yes"),
                ("client_id", &a.0),
                ("post_logout_redirect_uri", "http://app.test/bye"),
                ("state", "s"),
            ],
        )
        .await;
    assert_eq!(location(&r), "http://app.test/bye?state=s");
    assert_eq!(app.status_at(&browser, "/account").await, 303);
}

#[tokio::test]
async fn an_expired_id_token_hint_still_signs_out_immediately() {
    let Setup { app, a, .. } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    app.clock.advance(2 * 3600);
    let r = sign_out(&app, &browser, ta["id_token"].as_str().unwrap()).await;
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(app.status_at(&browser, "/account").await, 303);
}

#[tokio::test]
async fn front_channel_logout_frames_each_app_of_the_session_with_iss_and_sid() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, secret) = app.add_client(ClientInput {
        name: "Wiki".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        frontchannel_logout_uri: Some("http://wiki.test/fc-logout".into()),
        skip_consent: true,
        ..Default::default()
    });
    let browser = app.browser();
    let t = app
        .tokens_for(
            &browser,
            "alice",
            &cid,
            secret.as_deref(),
            "http://app.test/cb",
            "openid",
        )
        .await;
    let sid = jwt_claims(t["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let csrf = app.csrf_at(&browser, "/account").await;
    let r = app
        .post_form(&browser, "/signout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-src http://wiki.test"), "{csp}");
    let html = r.text().await.unwrap();
    let iss =
        url::form_urlencoded::byte_serialize(app.config.public_url.as_bytes()).collect::<String>();
    assert!(
        html.contains(&format!(
            "src=\"http://wiki.test/fc-logout?iss={iss}&#38;sid={sid}\""
        )),
        "{html}"
    );
}

/// One refresh with the app's credentials: (status, new refresh token if any).
async fn refresh(app: &TestApp, client: &(String, String), token: &str) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{}/token", app.url))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["refresh_token"].as_str().map(str::to_string))
}

#[tokio::test]
async fn signing_out_revokes_the_sessions_rotated_refresh_tokens_but_not_offline_ones() {
    let Setup { app, a, b, .. } = setup().await;
    let browser = app.browser();
    let ta = alice_tokens(&app, &browser, &a).await;
    let tb = alice_tokens_for_scope(&app, &browser, &b, "openid offline_access").await;
    // Rotate both families twice: the live tokens are successors, not the code's first token.
    let (mut ra, mut rb) = (
        ta["refresh_token"].as_str().unwrap().to_string(),
        tb["refresh_token"].as_str().unwrap().to_string(),
    );
    for _ in 0..2 {
        let (s, next) = refresh(&app, &a, &ra).await;
        assert_eq!(s, 200);
        ra = next.unwrap();
        let (s, next) = refresh(&app, &b, &rb).await;
        assert_eq!(s, 200);
        rb = next.unwrap();
    }
    let r = sign_out(&app, &browser, ta["id_token"].as_str().unwrap()).await;
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(
        refresh(&app, &a, &ra).await.0,
        400,
        "the session's token is revoked"
    );
    let (s, next) = refresh(&app, &b, &rb).await;
    assert_eq!(s, 200, "offline_access outlives the session");
    assert!(next.is_some());
}
