//! End-user sign-in over real HTTP: passwords, throttling, sessions, CSRF, consent, account.

use crate::support::*;
use portcullis::ops::clients::ClientInput;

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let wrong = app
        .sign_in_at(&b, "/login", "alice", "not the password")
        .await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.text().await.unwrap();
    let unknown = app
        .sign_in_at(&b, "/login", "nobody", "not the password")
        .await;
    assert_eq!(unknown.status(), 401);
    let unknown_body = unknown.text().await.unwrap();
    assert!(wrong_body.contains("The username or password is incorrect."));
    assert!(unknown_body.contains("The username or password is incorrect."));
    let events = app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 10, 0))
        .unwrap();
    assert_eq!(
        events.iter().filter(|e| e.kind == "login.failed").count(),
        2
    );
}

#[tokio::test]
async fn sign_in_by_username_or_email_sets_a_hardened_session_cookie() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let r = app
        .sign_in_at(&b, "/login", "ALICE@example.com", PASSWORD)
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("pc_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain="), "host-only: {cookie}");
    // 256 bits, stored only as a hash.
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pc_session=")
        .to_string();
    assert_eq!(value.len(), 43);
    let stored: i64 = app
        .db
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM sessions WHERE id_hash = ?1",
                [&value],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(stored, 0, "the raw cookie value is never stored");
    let account = b.get(format!("{}/account", app.url)).send().await.unwrap();
    assert_eq!(account.status(), 200);
    assert!(account.text().await.unwrap().contains("alice Example"));
}

#[tokio::test]
async fn session_cookie_is_secure_and_host_prefixed_on_https_issuers() {
    let app = TestApp::spawn_with(|c| c.public_url = "https://auth.example.com".into()).await;
    app.add_user("alice", &[], false);
    // Without an https front the browser won't return Secure cookies; read the header only.
    let b = app.browser();
    let page = b.get(format!("{}/login", app.url)).send().await.unwrap();
    let set: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("__Host-pc_browser=") && c.contains("Secure")),
        "{set:?}"
    );
}

#[tokio::test]
async fn every_sign_in_gets_a_fresh_session_id() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let first = app.sign_in(&b, "alice").await;
    let c1 = session_cookie(&first);
    // Signing in again from the same browser (e.g. as another user) replaces the session.
    let csrf = app.csrf_at(&b, "/account").await;
    let second = b
        .post(format!("{}/login", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 303);
    let c2 = session_cookie(&second);
    assert_ne!(c1, c2, "no session fixation");
    // The replaced session no longer works.
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = old
        .get(format!("{}/account", app.url))
        .header("Cookie", format!("pc_session={c1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("pc_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pc_session=")
        .to_string()
}

#[tokio::test]
async fn repeated_failures_slow_down_then_recover() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    for _ in 0..5 {
        assert_eq!(
            app.sign_in_at(&b, "/login", "alice", "wrong")
                .await
                .status(),
            401
        );
    }
    // Now even the right password must wait.
    let throttled = app.sign_in_at(&b, "/login", "alice", PASSWORD).await;
    assert_eq!(throttled.status(), 429);
    assert!(
        throttled
            .text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );
    // A temporary slow-down: after the delay the right password works.
    app.clock.advance(2);
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
    // The successful sign-in forgot the account's failures (in its own transaction).
    let now = app.clock_now();
    let left = app
        .db
        .read_blocking(|c| portcullis::store::throttle::blocked_until(c, "user:alice", now))
        .unwrap();
    assert_eq!(left, 0, "the account's failure record is gone");
    let kinds: Vec<String> = app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 50, 0))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"login.throttled".to_string()));
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_or_from_another_origin_are_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let _ = b.get(format!("{}/login", app.url)).send().await.unwrap();
    let no_token = b
        .post(format!("{}/login", app.url))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    // A token from another browser does not work either.
    let other = app.browser();
    let page = other
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let foreign = csrf_from(&page);
    let r = b
        .post(format!("{}/login", app.url))
        .form(&[
            ("csrf", foreign.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A right token posted cross-origin is refused.
    let csrf = app.csrf_at(&b, "/login").await;
    let r = b
        .post(format!("{}/login", app.url))
        .header("Origin", "https://evil.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

fn authorize_url(app: &TestApp, client_id: &str, scope: &str, extra: &str) -> String {
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&scope={scope}&state=s1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        app.url
    )
}

#[tokio::test]
async fn consent_is_asked_once_then_remembered_and_asked_again_for_wider_scopes() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Immich".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        ..Default::default()
    });
    let b = app.browser();
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);

    // First time: the consent page names the app and the scopes in words.
    let r = b
        .get(authorize_url(&app, &cid, "openid%20email", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let consent = location(&r);
    assert!(consent.starts_with("/consent?req="), "{consent}");
    let page = b
        .get(app.abs(&consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Immich") && page.contains("your email address"),
        "{page}"
    );
    let back = app
        .authorize(
            &b,
            &authorize_url(&app, &cid, "openid%20email", ""),
            "alice",
        )
        .await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // Second time: remembered, straight back with a code.
    let r = b
        .get(authorize_url(&app, &cid, "openid%20email", ""))
        .send()
        .await
        .unwrap();
    assert!(
        location(&r).starts_with("http://app.test/cb?code="),
        "{}",
        location(&r)
    );

    // A wider scope set asks again; so does prompt=consent.
    let r = b
        .get(authorize_url(&app, &cid, "openid%20email%20groups", ""))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/consent"), "{}", location(&r));
    let r = b
        .get(authorize_url(
            &app,
            &cid,
            "openid%20email",
            "&prompt=consent",
        ))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/consent"), "{}", location(&r));
}

#[tokio::test]
async fn deny_returns_access_denied_to_the_client() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Grafana".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        ..Default::default()
    });
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    let r = b
        .get(authorize_url(&app, &cid, "openid", ""))
        .send()
        .await
        .unwrap();
    let consent = location(&r);
    let page = b
        .get(app.abs(&consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&page);
    let req = input_value(&page, "req").unwrap();
    let r = b
        .post(format!("{}/consent", app.url))
        .form(&[("csrf", csrf.as_str()), ("req", &req), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let back = location(&r);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.config.public_url.as_str())
    );
}

#[tokio::test]
async fn first_party_clients_never_ask_for_consent() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Home".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        skip_consent: true,
        ..Default::default()
    });
    let b = app.browser();
    let back = app
        .authorize(
            &b,
            &authorize_url(&app, &cid, "openid%20email", "&prompt=consent"),
            "alice",
        )
        .await;
    assert!(query_param(&back, "code").is_some());
}

#[tokio::test]
async fn account_page_revokes_an_app_and_ends_sessions() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Immich".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        ..Default::default()
    });
    let b = app.browser();
    app.authorize(
        &b,
        &authorize_url(&app, &cid, "openid%20email", ""),
        "alice",
    )
    .await;
    let page = b
        .get(format!("{}/account", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Immich"));
    let csrf = csrf_from(&page);
    let r = b
        .post(format!("{}/account/apps/revoke", app.url))
        .form(&[("csrf", csrf.as_str()), ("client_id", &cid)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let uid = alice.id.clone();
    let c2 = cid.clone();
    assert!(
        app.db
            .read_blocking(|c| portcullis::store::consents::scopes(c, &uid, &c2))
            .unwrap()
            .is_none()
    );
    // Consent is asked again after revocation.
    let r = b
        .get(authorize_url(&app, &cid, "openid%20email", ""))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/consent"));

    // A second browser signs in; the first ends it from the account page.
    let other = app.browser();
    app.clock.advance(1);
    app.sign_in(&other, "alice").await;
    let uid = alice.id.clone();
    let sessions = app
        .db
        .read_blocking(|c| portcullis::store::sessions::list_for_user(c, &uid, 0))
        .unwrap();
    assert_eq!(sessions.len(), 2);
    let csrf = app.csrf_at(&b, "/account").await;
    // The other browser's session is the newer one.
    let target = sessions
        .iter()
        .max_by_key(|s| (s.created_at, s.sid.clone()))
        .unwrap()
        .sid
        .clone();
    let r = b
        .post(format!("{}/account/sessions/end", app.url))
        .form(&[("csrf", csrf.as_str()), ("sid", &target)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let uid = alice.id.clone();
    assert_eq!(
        app.db
            .read_blocking(|c| portcullis::store::sessions::list_for_user(c, &uid, 0))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        other
            .get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "other browser signed out"
    );
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_signs_out_other_sessions() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    let other = app.browser();
    app.sign_in(&other, "alice").await;
    let csrf = app.csrf_at(&b, "/account").await;
    let bad = b
        .post(format!("{}/account/password", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", "nope"),
            ("new_password", "a brand new passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let ok = b
        .post(format!("{}/account/password", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", PASSWORD),
            ("new_password", "a brand new passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(
        other
            .get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "other session ended"
    );
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "this session kept"
    );
    let uid = alice.id.clone();
    assert_eq!(
        app.db
            .read_blocking(|c| portcullis::store::sessions::list_for_user(c, &uid, 0))
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_lifetime() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    app.clock.advance(13 * 86_400);
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.clock.advance(13 * 86_400);
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "used recently: still valid"
    );
    app.clock.advance(5 * 86_400);
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "30-day absolute lifetime"
    );
    let b2 = app.browser();
    app.sign_in(&b2, "alice").await;
    app.clock.advance(15 * 86_400);
    assert_eq!(
        b2.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "14-day idle timeout"
    );
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    let csrf = app.csrf_at(&b, "/account").await;
    let r = b
        .post(format!("{}/signout", app.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

#[tokio::test]
async fn reset_link_sets_a_new_password_once() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    let token = portcullis::crypto::secret::random_token();
    let hash = portcullis::crypto::secret::hash_token(&token);
    let now = app.clock_now();
    let uid = alice.id.clone();
    app.db
        .write_blocking(|c| {
            portcullis::store::links::insert(
                c,
                &hash,
                portcullis::store::links::Purpose::PasswordReset,
                Some(&uid),
                true,
                now,
                now + 3600,
            )
        })
        .unwrap();
    let b = app.browser();
    let page = b
        .get(format!("{}/reset?token={token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_from(&page.text().await.unwrap());
    let r = b
        .post(format!("{}/reset", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", &token),
            ("password", "a fresh long passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.sign_in_at(&b, "/login", "alice", "a fresh long passphrase")
            .await
            .status(),
        303
    );
    let again = b
        .get(format!("{}/reset?token={token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "single use");
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    for (trusted, want) in [
        (vec![], "127.0.0.1"),
        (vec!["127.0.0.1".to_string()], "203.0.113.9"),
    ] {
        let app = TestApp::spawn_with(|c| c.trusted_proxies = trusted.clone()).await;
        let alice = app.add_user("alice", &[], false);
        let b = app.browser();
        let csrf = app.csrf_at(&b, "/login").await;
        let r = b
            .post(format!("{}/login", app.url))
            .header("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let uid = alice.id.clone();
        let s = app
            .db
            .read_blocking(|c| portcullis::store::sessions::list_for_user(c, &uid, 0))
            .unwrap();
        assert_eq!(
            s[0].ip.as_deref(),
            Some(want),
            "trusted proxies: {trusted:?}"
        );
    }
}

#[tokio::test]
async fn the_well_known_change_password_address_leads_to_the_password_form() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let r = b
        .get(format!("{}/.well-known/change-password", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account#password");
    // Signed out, the account page sends them to sign in first; signed in, the form is there.
    assert_eq!(app.status_at(&b, "/account").await, 303);
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
    let (status, html) = app.page(&b, "/account").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<section id=\"password\">"),
        "the anchor exists"
    );
}
