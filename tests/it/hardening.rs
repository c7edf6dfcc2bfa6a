//! What an attacker and real relying parties found (issue 14), each as the request that
//! showed it, against the real server.

use portcullis::ops::clients::ClientInput;
use serde_json::Value;

use crate::support::*;
use crate::token::{CHALLENGE, Fx, REDIRECT, error_of};

/// "Return to" values a browser would follow off-site, typed or percent-encoded.
pub const HOSTILE_NEXT: &[&str] = &[
    "/\t/127.0.0.1:9/x",
    "/\r/evil.example",
    "/\n/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/%0d%0aSet-Cookie:x=y",
    "https:/\\evil.example",
    "https://root@evil.example/",
    "//user:pw@evil.example/",
    "javascript:alert(1)",
    "https://evil.example/",
    "\\\\evil.example",
];

/// A Location we send must be a path on this server.
pub fn assert_local(location: &str, what: &str) {
    assert!(
        location.starts_with('/')
            && !location.starts_with("//")
            && !location.contains(|c: char| c.is_control() || c.is_whitespace() || c == '\\'),
        "{what}: not a local path: {location:?}"
    );
}

#[tokio::test]
async fn next_after_sign_in_never_leaves_the_server() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    for bad in HOSTILE_NEXT {
        let login = format!("/login?next={}", portcullis::web::ui::enc(bad));
        // Signed out: the page carries no hostile value in its form or passkey box…
        let b = app.browser();
        let (status, page) = app.page(&b, &login).await;
        assert_eq!(status, 200);
        assert_eq!(input_value(&page, "next").as_deref(), Some(""), "{bad:?}");
        assert!(page.contains("data-next=\"\""), "{bad:?}");
        // …and a POST that carries one anyway (a crafted form) goes to a local page.
        let csrf = csrf_from(&page);
        let r = app
            .post_form(
                &b,
                "/login",
                &[
                    ("csrf", &csrf),
                    ("next", bad),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "{bad:?}");
        assert_local(&location(&r), bad);
        assert_eq!(location(&r), "/account", "{bad:?}");
        // Signed in: GET /login?next=… redirects at once, locally.
        let r = b.get(app.abs(&login)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{bad:?}");
        assert_eq!(location(&r), "/account", "{bad:?}");
    }
}

#[tokio::test]
async fn a_local_next_is_followed_after_sign_in() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], true);
    let b = app.browser();
    let r = app
        .sign_in_at(
            &b,
            "/login?next=%2Fadmin%2Fusers%3Fq%3Dal",
            "alice",
            PASSWORD,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/users?q=al");
}

/// Signs `user` in from a fresh browser, then ends that session from the console's button
/// with `back`; the redirect.
async fn end_session_from_console(
    app: &TestApp,
    admin: &reqwest::Client,
    user: &portcullis::store::users::User,
    back: &str,
) -> reqwest::Response {
    assert_eq!(
        app.sign_in(&app.browser(), &user.username).await.status(),
        303
    );
    let uid = user.id.clone();
    let sid = app
        .db
        .read_blocking(move |c| portcullis::store::sessions::list_for_user(c, &uid, 0))
        .unwrap()[0]
        .sid
        .clone();
    app.submit(
        admin,
        "/admin/sessions",
        "/admin/sessions/end",
        &[("sid", &sid), ("back", back)],
    )
    .await
}

#[tokio::test]
async fn the_console_back_value_is_a_console_path_or_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_browser().await;
    let alice = app.add_user("alice", &[], false);
    let hostile = HOSTILE_NEXT.iter().copied();
    for back in hostile.chain(["/admin//evil.example", "/admin/users?x=1"]) {
        let r = end_session_from_console(&app, &admin, &alice, back).await;
        assert_eq!(r.status(), 303, "{back:?}");
        assert_eq!(location(&r), "/admin/sessions?done=ended", "{back:?}");
    }
    // A console page is still where the button returns to.
    let back = format!("/admin/users/{}", alice.id);
    let r = end_session_from_console(&app, &admin, &alice, &back).await;
    assert_eq!(location(&r), format!("{back}?done=session"));
}

#[tokio::test]
async fn an_old_refresh_token_whose_successor_was_used_is_theft_even_inside_the_grace() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let r2: Value = fx.refresh(&rt1).await.json().await.unwrap();
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    let r3: Value = fx.refresh(&rt2).await.json().await.unwrap();
    let rt3 = r3["refresh_token"].as_str().unwrap().to_string();
    let at3 = r3["access_token"].as_str().unwrap().to_string();
    assert_eq!(fx.userinfo(&at3).await.status(), 200);

    // RT1 again, 2 s later: its successor RT2 was already rotated, so this is a stolen RT1.
    fx.app.clock.advance(2);
    let (status, e) = error_of(fx.refresh(&rt1).await).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert!(e.get("refresh_token").is_none());
    // The whole family is revoked: the newest token and its access token too.
    assert_eq!(
        error_of(fx.refresh(&rt3).await).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(fx.userinfo(&at3).await.status(), 401);
    let events = fx
        .app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 20, 0))
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "token.refresh_reused"));
}

#[tokio::test]
async fn the_reuse_grace_is_kept_as_long_as_it_is_configured() {
    // A grace above the old hard-coded 300 s: the sweep keeps the successor for all of it.
    let app =
        TestApp::spawn_with(|c| c.refresh_token_reuse_grace = std::time::Duration::from_secs(600))
            .await;
    let fx = Fx::on(app);
    let v = fx.tokens("openid offline_access").await;
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let r2: Value = fx.refresh(&rt1).await.json().await.unwrap();
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    fx.app.clock.advance(400);
    let now = fx.app.clock_now();
    portcullis::jobs::collect_garbage(&fx.app.state, now).unwrap();
    let again: Value = fx.refresh(&rt1).await.json().await.unwrap();
    assert_eq!(
        again["refresh_token"].as_str(),
        Some(rt2.as_str()),
        "{again}"
    );
    // After the grace the sweep forgets the successor, and the reuse revokes the family.
    fx.app.clock.advance(201);
    let now = fx.app.clock_now();
    portcullis::jobs::collect_garbage(&fx.app.state, now).unwrap();
    let sealed: i64 = fx
        .app
        .db
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM refresh_tokens WHERE successor_sealed IS NOT NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(sealed, 0);
    assert_eq!(
        error_of(fx.refresh(&rt1).await).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        error_of(fx.refresh(&rt2).await).await.1["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn refresh_tokens_turned_off_hold_for_every_grant() {
    let fx = Fx::new().await;
    let (id, secret) = fx.app.add_client(ClientInput {
        name: "NoRefresh".into(),
        redirect_uris: vec![REDIRECT.into()],
        allow_refresh: false,
        skip_consent: true,
        ..Default::default()
    });
    let secret = secret.unwrap();
    // Through /authorize: offline_access is not granted, and no refresh token comes back.
    let b = fx.app.browser();
    let t = fx
        .app
        .tokens_for(
            &b,
            "ada",
            &id,
            Some(&secret),
            REDIRECT,
            "openid offline_access",
        )
        .await;
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert_eq!(t["scope"], "openid");

    // A family issued while refresh tokens were on stops at once when they are turned off.
    let v = fx.tokens("openid offline_access").await;
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    let cid = fx.client_id.clone();
    fx.app
        .db
        .write_blocking(move |c| {
            let mut client = portcullis::store::clients::by_id(c, &cid)?.unwrap();
            client.allow_refresh = false;
            portcullis::store::clients::save(c, &client)
        })
        .unwrap();
    fx.app.state.client_cache.clear();
    let (status, e) = error_of(fx.refresh(&rt).await).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "unauthorized_client")
    );
}

#[tokio::test]
async fn unknown_scopes_resent_at_refresh_are_ignored_like_at_authorization() {
    let fx = Fx::new().await;
    let b = fx.app.browser();
    // mod_auth_openidc's OIDCScope "openid email profile phone": phone is unknown here.
    let t = fx
        .app
        .tokens_for(
            &b,
            "ada",
            &fx.client_id,
            Some(&fx.secret),
            REDIRECT,
            "openid email profile phone",
        )
        .await;
    assert_eq!(t["scope"], "openid email profile");
    let rt = t["refresh_token"].as_str().unwrap();
    let r = fx
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid email profile phone"),
        ])
        .await;
    assert_eq!(r.status(), 200, "the resent unknown scope is ignored");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["scope"], "openid email profile");
    // A known scope that was not granted is still refused.
    let r = fx
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            ("scope", "openid groups phone"),
        ])
        .await;
    assert_eq!(error_of(r).await.1["error"], "invalid_scope");
}

/// POSTs `n` sign-ins at once from one browser; returns their statuses.
async fn parallel_sign_ins(app: &TestApp, username: &str, password: &str, n: usize) -> Vec<u16> {
    let b = app.browser();
    let csrf = app.csrf_at(&b, "/login").await;
    let posts = (0..n).map(|_| {
        let (b, csrf) = (b.clone(), csrf.clone());
        let url = app.abs("/login");
        let (u, p) = (username.to_string(), password.to_string());
        async move {
            b.post(url)
                .form(&[("csrf", csrf.as_str()), ("username", &u), ("password", &p)])
                .send()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(posts).await;
    for r in &answers {
        if r.status() == 429 || r.status() == 503 {
            assert!(r.headers().get("retry-after").is_some(), "{}", r.status());
        }
    }
    answers.iter().map(|r| r.status().as_u16()).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn a_burst_of_parallel_wrong_passwords_gets_only_the_threshold_of_guesses() {
    // Threshold 5; the clock stands still. A real hash cost, so that the attempts overlap
    // (with a check-then-hash-then-record throttle all 20 were checked).
    let app = TestApp::spawn_with(|c| {
        c.argon2_memory_kib = 19 * 1024;
        c.argon2_iterations = 2;
    })
    .await;
    app.add_user("alice", &[], false);
    let statuses = parallel_sign_ins(&app, "alice", "guess", 20).await;
    assert_eq!(count(&statuses, 401), 5, "guesses checked: {statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    // Even the right password waits now (the block is per account and per IP).
    let b = app.browser();
    assert_eq!(app.sign_in(&b, "alice").await.status(), 429);
    app.clock.advance(2);
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
}

#[tokio::test]
async fn successful_sign_ins_do_not_count_against_their_ip() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    app.add_user("bob", &[], false);
    // A family behind one address: many good sign-ins (an attempt in flight counts until it
    // is decided, so these come one after another).
    for _ in 0..12 {
        assert_eq!(app.sign_in(&app.browser(), "alice").await.status(), 303);
    }
    let failures: i64 = app
        .db
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT coalesce(sum(failures), 0) FROM login_failures",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(failures, 0);
    assert_eq!(app.sign_in(&app.browser(), "bob").await.status(), 303);
}

#[tokio::test]
async fn the_current_password_on_the_account_page_is_throttled_too() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
    let csrf = app.csrf_at(&b, "/account").await;
    let posts = (0..12).map(|_| {
        let (b, csrf) = (b.clone(), csrf.clone());
        let url = app.abs("/account/password");
        async move {
            b.post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("current", "guess"),
                    ("new_password", "a brand new passphrase"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert_eq!(count(&statuses, 422), 5, "guesses checked: {statuses:?}");
    assert_eq!(count(&statuses, 429), 7, "{statuses:?}");
    // The account's sign-in is throttled by the same count.
    assert_eq!(app.sign_in(&app.browser(), "alice").await.status(), 429);
}

#[tokio::test]
async fn a_full_password_queue_answers_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.argon2_memory_kib = 8 * 1024;
        c.argon2_iterations = 4;
        c.argon2_concurrency = 1;
        c.argon2_queue = 1;
        c.login_throttle_threshold = 1000;
    })
    .await;
    app.add_user("alice", &[], false);
    let statuses = parallel_sign_ins(&app, "alice", "guess", 24).await;
    assert!(count(&statuses, 503) >= 1, "{statuses:?}");
    assert_eq!(
        count(&statuses, 503) + count(&statuses, 401),
        24,
        "{statuses:?}"
    );
    // Nothing is stuck: once the burst is over, sign-in works.
    assert_eq!(app.sign_in(&app.browser(), "alice").await.status(), 303);
}

/// An ID token for `user` from a direct code (test fixture), as an RP would hold it.
async fn id_token_of(fx: &Fx, user: &portcullis::store::users::User) -> String {
    let mut g = fx.grant("openid");
    g.user_id = user.id.clone();
    fx.redeem(&fx.code(&g)).await["id_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `/authorize` for the fixture's client with `extra` parameters; the redirect back.
async fn authorize_with(fx: &Fx, b: &reqwest::Client, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&fx.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &fx.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    let r = b.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    location(&r)
}

#[tokio::test]
async fn id_token_hint_for_another_user_or_forged_is_refused() {
    let fx = Fx::new().await; // user "ada"; the client skips consent
    let bob = fx.app.add_user("bob", &[], false);
    let ada = fx.user.clone();
    let b = fx.app.browser();
    assert_eq!(fx.app.sign_in(&b, "ada").await.status(), 303);
    let for_ada = id_token_of(&fx, &ada).await;
    let for_bob = id_token_of(&fx, &bob).await;

    // The signed-in user's own hint: a code, even once the ID token has expired.
    fx.app.clock.advance(2 * 3600);
    let back = authorize_with(&fx, &b, &[("prompt", "none"), ("id_token_hint", &for_ada)]).await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // A genuine hint for someone else: login_required, never a code for the wrong person.
    let back = authorize_with(&fx, &b, &[("prompt", "none"), ("id_token_hint", &for_bob)]).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );
    assert!(query_param(&back, "code").is_none());
    // Without prompt=none the person is asked to sign in as the hinted user.
    let to = authorize_with(&fx, &b, &[("id_token_hint", &for_bob)]).await;
    assert!(to.starts_with("/login?req="), "{to}");
    let signed = fx.app.sign_in_at(&b, &to, "bob", PASSWORD).await;
    let back = fx.app.authorize(&b, &location(&signed), "bob").await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // Forged hints: alg none, and HS256 keyed with the published RS256 key.
    let parts: Vec<&str> = for_ada.split('.').collect();
    let header: Value = jwt_header(&for_ada);
    let none = format!(
        "{}.{}.",
        base64url(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
        parts[1]
    );
    let jwks: Value = reqwest::get(fx.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let signing_input = format!(
        "{}.{}",
        base64url(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]})),
        parts[1]
    );
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        rsa["n"].as_str().unwrap().as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    let hs256 = {
        use base64::Engine;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!("{signing_input}.{sig}")
    };
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    for forged in [none, hs256, tampered, "not-a-jwt".to_string()] {
        let back = authorize_with(&fx, &b, &[("prompt", "none"), ("id_token_hint", &forged)]).await;
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request"),
            "{back}"
        );
        assert!(query_param(&back, "code").is_none());
    }
}

fn base64url(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn the_admin_api_checks_the_key_before_it_reads_the_body() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let now = app.clock_now();
    let (revoked_id, revoked) = app
        .db
        .try_write_blocking(|c| {
            portcullis::ops::api_keys::create(c, &portcullis::ops::Actor::Cli, "old", now)
        })
        .unwrap();
    app.db
        .try_write_blocking(|c| {
            portcullis::ops::api_keys::revoke(c, &portcullis::ops::Actor::Cli, &revoked_id.id, now)
        })
        .unwrap();
    let attempts = [
        ("POST", "/admin/api/users", "{}"),
        ("POST", "/admin/api/groups", "{}"),
        ("POST", "/admin/api/upstream", "{}"),
        ("POST", "/admin/api/clients", "{not json"),
        ("PATCH", "/admin/api/users/x", "{\"unknown\": 1}"),
        ("GET", "/admin/api/no-such-endpoint", ""),
    ];
    for round in 0..20 {
        for (method, path, body) in attempts {
            for key in [Some("pck_wrong"), Some(revoked.as_str()), None] {
                let mut r = http
                    .request(method.parse().unwrap(), app.abs(path))
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(k) = key {
                    r = r.bearer_auth(k);
                }
                let r = r.send().await.unwrap();
                assert_eq!(
                    r.status(),
                    401,
                    "round {round}: {method} {path} with {key:?}"
                );
            }
        }
    }
}

/// The hidden fields of the first form of a page, as a browser would submit them.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let form = &html[html.find("<form").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .map(|tag| {
            let attr = |name: &str| {
                let marker = format!("{name}=\"");
                let start = tag.find(&marker).unwrap() + marker.len();
                tag[start..]
                    .split('"')
                    .next()
                    .unwrap()
                    .replace("&#x2f;", "/")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

#[tokio::test]
async fn logout_through_the_confirmation_page_adds_state_only_when_it_was_sent() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Outline".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        post_logout_redirect_uris: vec!["http://app.test/bye".into()],
        ..Default::default()
    });
    // express-openid-connect, its own session gone: client_id and the return address only.
    for (query_state, expected) in [
        (None, "http://app.test/bye"),
        (Some("xyz"), "http://app.test/bye?state=xyz"),
        (Some(""), "http://app.test/bye?state="),
    ] {
        let b = app.browser();
        assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
        let mut q = vec![
            ("client_id", cid.as_str()),
            ("post_logout_redirect_uri", "http://app.test/bye"),
        ];
        if let Some(s) = query_state {
            q.push(("state", s));
        }
        let page = b
            .get(app.abs("/logout"))
            .query(&q)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Sign out of all apps?"));
        let fields = hidden_fields(&page);
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = app.post_form(&b, "/logout", &form).await;
        assert_eq!(r.status(), 303, "{query_state:?}");
        assert_eq!(location(&r), expected, "{query_state:?}");
    }
}

#[tokio::test]
async fn the_token_request_must_repeat_a_redirect_uri_the_authorization_request_sent() {
    let fx = Fx::new().await; // one registered redirect URI
    let b = fx.app.browser();
    assert_eq!(fx.app.sign_in(&b, "ada").await.status(), 303);
    let exchange = |code: String, redirect: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("code_verifier", crate::token::VERIFIER.to_string()),
        ];
        if let Some(r) = redirect {
            form.push(("redirect_uri", r.to_string()));
        }
        fx.http
            .post(fx.url("/token"))
            .basic_auth(&fx.client_id, Some(&fx.secret))
            .form(&form)
            .send()
    };
    // Sent at /authorize, missing at /token: invalid_grant (and the code is not spent).
    let back = authorize_with(&fx, &b, &[]).await;
    let code = query_param(&back, "code").unwrap();
    let r = exchange(code.clone(), None).await.unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(exchange(code, Some(REDIRECT)).await.unwrap().status(), 200);

    // Left out at both steps (the client's only URI): accepted.
    let mut u = url::Url::parse(&fx.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &fx.client_id)
        .append_pair("scope", "openid")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let r = b.get(u.as_str()).send().await.unwrap();
    let code = query_param(&location(&r), "code").unwrap();
    assert_eq!(exchange(code, None).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_store_error_at_authorize_is_a_500_like_everywhere_else() {
    let fx = Fx::new().await;
    let b = fx.app.browser();
    assert_eq!(fx.app.sign_in(&b, "ada").await.status(), 303);
    // Not busy, just broken: a table the request reads is gone.
    fx.app
        .db
        .write_blocking(|c| Ok(c.execute_batch("DROP TABLE claim_scopes")?))
        .unwrap();
    let mut u = url::Url::parse(&fx.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &fx.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let r = b.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    assert!(r.text().await.unwrap().contains("Something went wrong"));
}

#[tokio::test]
async fn a_planted_browser_cookie_is_replaced_at_sign_in() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let planted = "a".repeat(43);
    let url: url::Url = app.url.parse().unwrap();
    // The attacker learns the CSRF token that goes with the id it plants in the victim's browser.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("pc_browser={planted}; Path=/"), &url);
    let attacker = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let planted_csrf = app.csrf_at(&attacker, "/login").await;

    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("pc_browser={planted}; Path=/"), &url);
    let victim = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = app.sign_in(&victim, "alice").await;
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let renewed = set
        .iter()
        .find(|c| c.starts_with("pc_browser="))
        .unwrap_or_else(|| panic!("a new browser cookie at sign-in: {set:?}"));
    assert!(!renewed.starts_with(&format!("pc_browser={planted}")));
    assert!(renewed.contains("HttpOnly"), "{renewed}");
    // The signed-in victim's forms no longer accept the planted token…
    let r = app
        .post_form(&victim, "/signout", &[("csrf", planted_csrf.as_str())])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.status_at(&victim, "/account").await,
        200,
        "still signed in"
    );
    // …while the page's own token works.
    let csrf = app.csrf_at(&victim, "/account").await;
    assert_ne!(csrf, planted_csrf);
    let r = app
        .post_form(&victim, "/signout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(r.status(), 200);
}

/// An admin API key (bearer) for `app`.
fn api_key(app: &TestApp) -> String {
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| {
            portcullis::ops::api_keys::create(c, &portcullis::ops::Actor::Cli, "tests", now)
        })
        .unwrap()
        .1
}

#[tokio::test]
async fn link_local_and_metadata_targets_are_refused_when_saved_and_when_called() {
    let app = TestApp::spawn().await;
    let key = api_key(&app);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(app.abs(&format!("/admin/api{path}")))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    for uri in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/logout",
        "http://[fe80::1]/logout",
        "http://2852039166/logout",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let r = post(
            "/clients",
            serde_json::json!({"name": "App", "redirect_uris": ["http://app.test/cb"],
                               "backchannel_logout_uri": uri}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422, "{uri}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], "backchannel_logout_uri", "{uri}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("outbound_allow_link_local"),
            "{v}"
        );
    }
    for issuer in [
        "https://169.254.169.254",
        "https://[fe80::1]",
        "https://metadata.google.internal",
    ] {
        let r = post(
            "/upstream",
            serde_json::json!({"slug": "corp", "name": "Corp", "client_id": "c", "issuer": issuer}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422, "{issuer}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], "issuer", "{issuer}: {v}");
    }
    // Loopback and the LAN are where a homelab's apps live.
    for uri in ["http://192.168.1.20/logout", "http://127.0.0.1:9/logout"] {
        let r = post(
            "/clients",
            serde_json::json!({"name": "LAN app", "redirect_uris": ["http://app.test/cb"],
                               "backchannel_logout_uri": uri}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{uri}");
    }

    // A URI stored before (or by hand) is refused when the logout is delivered.
    app.add_user("alice", &[], false);
    let (cid, secret) = app.confidential("Old", "http://app.test/cb");
    let id = cid.clone();
    app.db
        .write_blocking(move |c| {
            let mut client = portcullis::store::clients::by_id(c, &id)?.unwrap();
            client.backchannel_logout_uri = Some("http://169.254.169.254/logout".into());
            portcullis::store::clients::save(c, &client)
        })
        .unwrap();
    app.state.client_cache.clear();
    let b = app.browser();
    app.tokens_for(
        &b,
        "alice",
        &cid,
        Some(&secret),
        "http://app.test/cb",
        "openid",
    )
    .await;
    let csrf = app.csrf_at(&b, "/account").await;
    app.post_form(&b, "/signout", &[("csrf", csrf.as_str())])
        .await;
    // This pass, or the server's own worker (woken by the sign-out), claims the delivery.
    portcullis::jobs::deliver_logouts(&app.state).await.unwrap();
    let mut error = None;
    for _ in 0..100 {
        error = app
            .db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT last_error FROM logout_outbox", [], |r| r.get(0))?)
            })
            .unwrap();
        if error.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let error: String = error.unwrap();
    assert!(error.contains("cloud metadata address"), "{error}");
}
