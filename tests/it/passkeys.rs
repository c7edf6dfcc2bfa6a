//! Passkey ceremonies over real HTTP with a software authenticator: registration from the
//! account page, passwordless sign-in through an OIDC request, second factor, invites, and
//! every refusal the spec requires (replayed challenge, wrong origin or RP id, unknown
//! credential, a counter that goes backwards).

use portcullis::ops::clients::ClientInput;
use serde_json::{Value, json};

use crate::support::webauthn::SoftAuthenticator;
use crate::support::*;

/// WebAuthn refuses IP addresses as RP ids: these tests use a localhost issuer.
async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.public_url = c.public_url.replace("127.0.0.1", "localhost")).await
}

fn origin(app: &TestApp) -> String {
    app.config.public_url.clone()
}

/// The CSRF token a page's script would send.
async fn csrf(app: &TestApp, b: &reqwest::Client, path: &str) -> String {
    let page = b
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf-token\" content=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

async fn post_json(
    app: &TestApp,
    b: &reqwest::Client,
    csrf: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = b
        .post(format!("{}{path}", app.url))
        .header("X-CSRF-Token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs `username` in with the password and registers a passkey from the account page.
async fn register(app: &TestApp, b: &reqwest::Client, username: &str) -> SoftAuthenticator {
    assert_eq!(app.sign_in(b, username).await.status(), 303);
    let token = csrf(app, b, "/account").await;
    let (status, start) = post_json(
        app,
        b,
        &token,
        "/account/passkeys/register/start",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let sel = &start["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(
        sel["residentKey"], "required",
        "discoverable credentials: {sel}"
    );
    assert_eq!(start["options"]["publicKey"]["rp"]["id"], "localhost");
    let (auth, credential) = SoftAuthenticator::register(&start["options"], &origin(app));
    let (status, done) = post_json(
        app,
        b,
        &token,
        "/account/passkeys/register/finish",
        json!({"ceremony": start["ceremony"], "credential": credential, "name": "My phone"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    auth
}

/// Runs a passwordless sign-in; returns (status, body, browser).
async fn passkey_login(
    app: &TestApp,
    auth: &mut SoftAuthenticator,
    req: &str,
) -> (u16, Value, reqwest::Client) {
    passkey_login_to(app, auth, req, "").await
}

/// [`passkey_login`] with the page's `data-next` value.
async fn passkey_login_to(
    app: &TestApp,
    auth: &mut SoftAuthenticator,
    req: &str,
    next: &str,
) -> (u16, Value, reqwest::Client) {
    let b = app.browser();
    let token = csrf(app, &b, "/login").await;
    let (status, start) = post_json(app, &b, &token, "/login/passkey/start", json!({})).await;
    assert_eq!(status, 200);
    let credential = auth.assert(&start["options"], &origin(app));
    let (status, body) = post_json(
        app,
        &b,
        &token,
        "/login/passkey/finish",
        json!({"ceremony": start["ceremony"], "credential": credential, "req": req, "next": next}),
    )
    .await;
    (status, body, b)
}

#[tokio::test]
async fn register_then_sign_in_with_the_passkey_alone_through_an_oidc_request() {
    let app = app().await;
    app.add_user("alice", &[], false);
    let (cid, secret) = app.add_client(ClientInput {
        name: "Immich".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        skip_consent: true,
        ..Default::default()
    });
    let mut auth = register(&app, &app.browser(), "alice").await;

    // A fresh browser starts an authorization request and signs in with the passkey alone.
    let b = app.browser();
    let u = format!(
        "{}/authorize?response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256",
        app.url
    );
    let r = b.get(&u).send().await.unwrap();
    let login = location(&r);
    let req = login.split("req=").nth(1).unwrap().to_string();
    let token = csrf(&app, &b, &login).await;
    let (_, start) = post_json(
        &app,
        &b,
        &token,
        "/login/passkey/start",
        json!({"conditional": true}),
    )
    .await;
    assert_eq!(
        start["options"]["mediation"], "conditional",
        "autofill request"
    );
    let credential = auth.assert(&start["options"], &origin(&app));
    let (status, body) = post_json(
        &app,
        &b,
        &token,
        "/login/passkey/finish",
        json!({"ceremony": start["ceremony"], "credential": credential, "req": req}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let back = app
        .authorize(&b, body["redirect"].as_str().unwrap(), "alice")
        .await;
    let code = query_param(&back, "code").unwrap();
    let t: Value = reqwest::Client::new()
        .post(format!("{}/token", app.url))
        .basic_auth(&cid, secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(
        amr.contains(&"swk".into()) && amr.contains(&"mfa".into()) && !amr.contains(&"pwd".into()),
        "{amr:?}"
    );
}

#[tokio::test]
async fn passkey_sign_in_returns_only_to_a_local_next() {
    let app = app().await;
    app.add_user("alice", &[], false);
    let mut auth = register(&app, &app.browser(), "alice").await;
    for bad in crate::hardening::HOSTILE_NEXT {
        let (status, body, _) = passkey_login_to(&app, &mut auth, "", bad).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["redirect"], "/account", "{bad:?}");
    }
    let (_, body, _) = passkey_login_to(&app, &mut auth, "", "/account#passkeys").await;
    assert_eq!(body["redirect"], "/account#passkeys");
}

#[tokio::test]
async fn a_challenge_can_be_answered_only_once() {
    let app = app().await;
    app.add_user("alice", &[], false);
    let mut auth = register(&app, &app.browser(), "alice").await;
    let b = app.browser();
    let token = csrf(&app, &b, "/login").await;
    let (_, start) = post_json(&app, &b, &token, "/login/passkey/start", json!({})).await;
    let credential = auth.assert(&start["options"], &origin(&app));
    let body = json!({"ceremony": start["ceremony"], "credential": credential});
    assert_eq!(
        post_json(&app, &b, &token, "/login/passkey/finish", body.clone())
            .await
            .0,
        200
    );
    // The sign-in gave the browser a new id: the replay carries the page's new token.
    let token = csrf(&app, &b, "/account").await;
    let (status, err) = post_json(&app, &b, &token, "/login/passkey/finish", body).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn wrong_origin_wrong_rp_id_and_unknown_credentials_are_refused() {
    let app = app().await;
    app.add_user("alice", &[], false);
    let auth = register(&app, &app.browser(), "alice").await;
    let b = app.browser();
    let token = csrf(&app, &b, "/login").await;
    type MakeAssertion<'a> = Box<dyn Fn(&Value) -> Value + 'a>;
    let cases: Vec<MakeAssertion> = vec![
        Box::new(|o| auth.assert_with(o, "http://evil.test", "localhost", 50)),
        Box::new(|o| auth.assert_with(o, "http://localhost:1", "evil.test", 51)),
    ];
    for make in cases {
        let (_, start) = post_json(&app, &b, &token, "/login/passkey/start", json!({})).await;
        let (status, body) = post_json(
            &app,
            &b,
            &token,
            "/login/passkey/finish",
            json!({"ceremony": start["ceremony"], "credential": make(&start["options"])}),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    // A key this server never saw.
    let (_, reg_opts) = {
        let b2 = app.browser();
        app.sign_in(&b2, "alice").await;
        let t2 = csrf(&app, &b2, "/account").await;
        post_json(
            &app,
            &b2,
            &t2,
            "/account/passkeys/register/start",
            json!({}),
        )
        .await
    };
    let (mut stranger, _) = SoftAuthenticator::register(&reg_opts["options"], &origin(&app));
    let (status, body, _) = passkey_login(&app, &mut stranger, "").await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not registered"));
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let app = app().await;
    let alice = app.add_user("alice", &[], false);
    let mut auth = register(&app, &app.browser(), "alice").await;
    assert_eq!(passkey_login(&app, &mut auth, "").await.0, 200);
    assert_eq!(passkey_login(&app, &mut auth, "").await.0, 200);
    auth.counter = 1; // a clone still at an old count
    let (status, body, _) = passkey_login(&app, &mut auth, "").await;
    assert_eq!(status, 401, "{body}");
    let uid = alice.id.clone();
    let events = app
        .db
        .read_blocking(|c| {
            portcullis::store::audit::list(
                c,
                &portcullis::store::audit::Filter {
                    user_id: Some(uid),
                    ..Default::default()
                },
                50,
                0,
            )
        })
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "passkey.clone_detected"));
}

#[tokio::test]
async fn a_passkey_as_second_factor_after_the_password() {
    let app = app().await;
    let alice = app.add_user("alice", &[], false);
    let mut auth = register(&app, &app.browser(), "alice").await;
    let uid = alice.id.clone();
    app.db
        .write_blocking(|c| {
            Ok(c.execute("UPDATE users SET require_passkey = 1 WHERE id = ?1", [&uid])?)
        })
        .unwrap();

    let b = app.browser();
    let r = app.sign_in(&b, "alice").await;
    assert_eq!(location(&r), "/login/second-factor");
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "not signed in yet"
    );
    let token = csrf(&app, &b, "/login/second-factor").await;
    let (status, start) =
        post_json(&app, &b, &token, "/login/second-factor/start", json!({})).await;
    assert_eq!(status, 200, "{start}");
    let credential = auth.assert(&start["options"], &origin(&app));
    let (status, body) = post_json(
        &app,
        &b,
        &token,
        "/login/second-factor/finish",
        json!({"ceremony": start["ceremony"], "credential": credential}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let uid = alice.id.clone();
    let sessions = app
        .db
        .read_blocking(|c| portcullis::store::sessions::list_for_user(c, &uid, 0))
        .unwrap();
    let newest = sessions.iter().max_by_key(|s| s.created_at).unwrap();
    assert!(
        newest.amr.contains(&"pwd".to_string()) && newest.amr.contains(&"mfa".to_string()),
        "{:?}",
        newest.amr
    );
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_deleted() {
    let app = app().await;
    let bob = app.add_user("bob", &[], false);
    let b = app.browser();
    let _auth = register(&app, &b, "bob").await;
    let uid = bob.id.clone();
    app.db
        .write_blocking(|c| {
            Ok(c.execute(
                "UPDATE users SET password_hash = NULL WHERE id = ?1",
                [&uid],
            )?)
        })
        .unwrap();
    let uid = bob.id.clone();
    let pk = app
        .db
        .read_blocking(|c| portcullis::store::passkeys::list_for_user(c, &uid))
        .unwrap();
    let page = b
        .get(format!("{}/account", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("My phone"));
    let r = b
        .post(format!("{}/account/passkeys/delete", app.url))
        .form(&[
            ("csrf", csrf_from(&page).as_str()),
            ("id", pk[0].id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("only way to sign in"));
}

#[tokio::test]
async fn an_invite_link_registers_a_passkey_once_and_signs_in() {
    let app = app().await;
    let carol = app
        .db
        .try_write_blocking(|c| {
            portcullis::ops::users::insert(
                c,
                &portcullis::ops::users::NewUser {
                    username: "carol".into(),
                    ..Default::default()
                },
                0,
            )
        })
        .unwrap();
    let link = portcullis::crypto::secret::random_token();
    let (hash, now, uid) = (
        portcullis::crypto::secret::hash_token(&link),
        app.clock_now(),
        carol.id.clone(),
    );
    app.db
        .write_blocking(|c| {
            portcullis::store::links::insert(
                c,
                &hash,
                portcullis::store::links::Purpose::Invite,
                Some(&uid),
                false,
                now,
                now + 3600,
            )
        })
        .unwrap();
    let b = app.browser();
    let page = b
        .get(format!("{}/invite?token={link}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let token = csrf(&app, &b, &format!("/invite?token={link}")).await;
    let (status, start) = post_json(
        &app,
        &b,
        &token,
        "/invite/passkey/start",
        json!({"token": link}),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let (_, credential) = SoftAuthenticator::register(&start["options"], &origin(&app));
    let (status, body) = post_json(&app, &b, &token, "/invite/passkey/finish", json!({"token": link, "ceremony": start["ceremony"], "credential": credential, "name": "Laptop"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        b.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        b.get(format!("{}/invite?token={link}", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "single use"
    );
}
