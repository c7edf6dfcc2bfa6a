//! The admin console (/admin): who may use it, every page renders for an administrator,
//! forms need their CSRF token, and the main journeys (add a user with a set-up link, add an
//! application and see its secret once, refuse bad settings, delete after confirming).

use portcullis::ops::clients::ClientInput;

use crate::support::{TestApp, location};

#[tokio::test]
async fn signed_out_browsers_go_to_the_login_page_and_come_back() {
    let app = TestApp::spawn().await;
    let r = app
        .browser()
        .get(format!("{}/admin/users?q=al", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=%2Fadmin%2Fusers%3Fq%3Dal");
}

#[tokio::test]
async fn people_outside_the_admins_group_get_403() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &["family"], false);
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    for path in ["/admin", "/admin/users", "/admin/apps/new", "/admin/audit"] {
        let (status, body) = app.page(&b, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(body.contains("Not allowed"));
    }
    // Forms too (even with a valid CSRF token from the account page).
    let r = app
        .submit(&b, "/account", "/admin/groups", &[("name", "x")])
        .await;
    assert_eq!(r.status(), 403);
    let n: i64 = app
        .db
        .read_blocking(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM groups WHERE name = 'x'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn every_console_page_renders_for_an_administrator() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let alice = app.add_user("alice", &["family"], false);
    let (cid, _) = app.confidential("Immich", "https://photos.example.com/auth/login");
    let gid = app
        .db
        .read_blocking(|c| portcullis::store::groups::id_by_name(c, "family"))
        .unwrap()
        .unwrap();
    let paths = [
        "/admin".to_string(),
        "/admin/users".into(),
        "/admin/users?q=ali".into(),
        "/admin/users?page=3".into(),
        "/admin/users/new".into(),
        format!("/admin/users/{}", alice.id),
        format!("/admin/users/{}/delete", alice.id),
        "/admin/groups".into(),
        format!("/admin/groups/{gid}"),
        format!("/admin/groups/{gid}/delete"),
        "/admin/apps".into(),
        "/admin/apps?q=imm".into(),
        "/admin/apps/new".into(),
        format!("/admin/apps/{cid}"),
        format!("/admin/apps/{cid}/edit"),
        format!("/admin/apps/{cid}/secret"),
        format!("/admin/apps/{cid}/delete"),
        "/admin/keys".into(),
        "/admin/keys/rotate".into(),
        "/admin/sessions".into(),
        "/admin/audit".into(),
        "/admin/audit?user=root&kind=login&from=2020-01-01&to=2099-12-31".into(),
        "/admin/api-keys".into(),
        "/admin/upstream".into(),
        "/admin/upstream/new".into(),
        "/admin/upstream/new?preset=google".into(),
        "/admin/upstream/new?preset=github".into(),
        "/admin/upstream/new?preset=oidc".into(),
    ];
    for p in &paths {
        let r = b.get(format!("{}{p}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
        assert_eq!(r.headers().get("cache-control").unwrap(), "no-store", "{p}");
        let html = r.text().await.unwrap();
        assert!(html.contains("aria-label=\"Administration\""), "{p}");
    }
    // The application page has what an app needs.
    let (_, html) = app.page(&b, &format!("/admin/apps/{cid}")).await;
    assert!(html.contains(&format!("{}/.well-known/openid-configuration", app.url)));
    assert!(html.contains("Immich") && html.contains("[auth.generic_oauth]"));
    assert!(html.contains(&cid));
    // Unknown ids are 404 pages.
    let (status, _) = app.page(&b, "/admin/users/nobody-here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let r = app
        .post_form(&b, "/admin/groups", &[("name", "family")])
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            &b,
            "/admin/groups",
            &[("csrf", "forged"), ("name", "family")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let none = app
        .db
        .read_blocking(|c| portcullis::store::groups::id_by_name(c, "family"))
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn adding_a_user_without_a_password_shows_a_set_up_link_once() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let r = app
        .submit(&b, "/admin/groups", "/admin/groups", &[("name", "family")])
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .submit(
            &b,
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "bob"),
                ("display_name", "Bob"),
                ("email", "bob@example.com"),
                ("email_verified", "on"),
                ("group", "family"),
                ("setup", "link"),
                ("allow_password", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let html = r.text().await.unwrap();
    let marker = format!("{}/invite?token=", app.url);
    let start = html.find(&marker).expect("an invite link");
    let link: String = html[start..]
        .chars()
        .take_while(|c| *c != '<' && !c.is_whitespace())
        .collect();
    // The link works for the new user (the invite page greets them).
    let r = reqwest::get(link.replace("&#x3d;", "=")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Bob"));
    // The user is in the group; the audit log names the admin.
    let (_, list) = app.page(&b, "/admin/users?q=bob").await;
    assert!(list.contains("family") && list.contains("no password"));
    let (_, audit) = app.page(&b, "/admin/audit?kind=user").await;
    assert!(audit.contains("User added") && audit.contains("Set-up link made"));
    assert!(audit.contains(">root</a>"));
    // A duplicate username comes back marked, with what was typed.
    let r = app
        .submit(
            &b,
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "bob"),
                ("display_name", "Other Bob"),
                ("setup", "link"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("This username is taken."));
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"username-error\""));
    assert!(html.contains("value=\"Other Bob\""));
    // A weak password is refused before anything is saved.
    let r = app
        .submit(
            &b,
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "carol"),
                ("setup", "password"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        app.db
            .read_blocking(|c| portcullis::store::users::by_username(c, "carol"))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_application_is_added_with_its_secret_shown_once() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    // A bad redirect URI: refused, field marked, nothing saved.
    let r = app
        .submit(
            &b,
            "/admin/apps/new",
            "/admin/apps",
            &[
                ("name", "Photos"),
                ("redirect_uris", "https://photos.example.com/cb#frag"),
                ("type", "confidential"),
                ("require_pkce", "on"),
                ("allow_refresh", "on"),
                ("signing_alg", "RS256"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("aria-describedby=\"redirect_uris-error\""));
    assert!(
        html.contains("https://photos.example.com/cb#frag"),
        "kept as typed"
    );
    let n = app
        .db
        .read_blocking(|c| portcullis::store::clients::count_matching(c, ""))
        .unwrap();
    assert_eq!(n, 0);
    // Plain http on a LAN host and a custom scheme: accepted, with a visible warning.
    let r = app
        .submit(
            &b,
            "/admin/apps/new",
            "/admin/apps",
            &[
                ("name", "Photos"),
                (
                    "redirect_uris",
                    "http://192.168.1.20:2283/auth/login\napp.immich:///oauth-callback",
                ),
                ("type", "confidential"),
                ("require_pkce", "on"),
                ("allow_refresh", "on"),
                ("signing_alg", "RS256"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("plain http"));
    let secret = html
        .split("id=\"client-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 43);
    let c = app
        .db
        .read_blocking(portcullis::store::clients::list)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        c.redirect_uris,
        vec![
            "http://192.168.1.20:2283/auth/login",
            "app.immich:///oauth-callback"
        ]
    );
    assert_eq!(
        c.secret_hash.as_deref(),
        Some(portcullis::crypto::secret::hash_token(&secret).as_str())
    );
    // Never again: not on the app page, not on the edit page.
    for p in [
        format!("/admin/apps/{}", c.id),
        format!("/admin/apps/{}/edit", c.id),
    ] {
        let (_, html) = app.page(&b, &p).await;
        assert!(!html.contains(&secret), "{p}");
    }
    // Regenerating needs the box ticked, then shows a new secret once.
    let confirm = format!("/admin/apps/{}/secret", c.id);
    let r = app.submit(&b, &confirm, &confirm, &[]).await;
    assert_eq!(r.status(), 422);
    let r = app
        .submit(&b, &confirm, &confirm, &[("confirm", "yes")])
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"client-secret\"") && !html.contains(&secret));
    // Editing keeps the secret and saves every setting.
    let edit = format!("/admin/apps/{}/edit", c.id);
    let r = app
        .submit(
            &b,
            &edit,
            &edit,
            &[
                ("name", "Immich"),
                ("redirect_uris", "https://photos.example.com/auth/login"),
                ("type", "confidential"),
                ("auth_method", "client_secret_post"),
                ("require_pkce", "on"),
                ("skip_consent", "on"),
                ("signing_alg", "ES256"),
                ("access_token_ttl", "600"),
                ("allowed_scopes", "openid  profile email"),
                (
                    "backchannel_logout_uri",
                    "https://photos.example.com/logout",
                ),
                ("backchannel_logout_session_required", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let saved = app
        .db
        .read_blocking(|x| portcullis::store::clients::by_id(x, &c.id))
        .unwrap()
        .unwrap();
    assert_eq!(saved.name, "Immich");
    assert!(saved.skip_consent && !saved.allow_refresh);
    assert_eq!(saved.auth_method.as_deref(), Some("client_secret_post"));
    assert_eq!(saved.signing_alg, "ES256");
    assert_eq!(saved.access_token_ttl, Some(600));
    assert_eq!(
        saved.allowed_scopes.as_deref(),
        Some("openid profile email")
    );
    assert!(saved.secret_hash.is_some());
    // A TTL that is not a number names its field.
    let r = app
        .submit(
            &b,
            &edit,
            &edit,
            &[
                ("name", "Immich"),
                ("redirect_uris", "https://photos.example.com/auth/login"),
                ("access_token_ttl", "ten"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("access_token_ttl-error"));
    // Delete: confirmation first.
    let del = format!("/admin/apps/{}/delete", c.id);
    let r = app.submit(&b, &del, &del, &[]).await;
    assert_eq!(r.status(), 422);
    let r = app.submit(&b, &del, &del, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/apps?done=deleted");
    let (status, _) = app.page(&b, &format!("/admin/apps/{}", c.id)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn disabling_and_deleting_a_user_from_the_console() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let alice = app.add_user("alice", &["family"], false);
    let ab = app.browser();
    app.sign_in(&ab, "alice").await;
    let show = format!("/admin/users/{}", alice.id);
    let r = app.submit(&b, &show, &format!("{show}/disable"), &[]).await;
    assert_eq!(r.status(), 303);
    let r = ab.get(format!("{}/account", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303, "alice is signed out");
    let (_, html) = app.page(&b, &show).await;
    assert!(html.contains("This user is disabled"));
    // The administrator cannot disable or delete themselves.
    let root = app
        .db
        .read_blocking(|c| portcullis::store::users::by_username(c, "root"))
        .unwrap()
        .unwrap();
    let me = format!("/admin/users/{}", root.id);
    let r = app.submit(&b, &me, &format!("{me}/disable"), &[]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("your own account"));
    // Delete after confirming.
    let del = format!("{show}/delete");
    let r = app.submit(&b, &del, &del, &[]).await;
    assert_eq!(r.status(), 422);
    let r = app.submit(&b, &del, &del, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 303);
    assert!(
        app.db
            .read_blocking(|c| portcullis::store::users::by_id(c, &alice.id))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn editing_a_user_with_groups_claims_and_claim_scopes() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let alice = app.add_user("alice", &["family", "friends"], false);
    let show = format!("/admin/users/{}", alice.id);
    let r = app
        .submit(
            &b,
            &show,
            &show,
            &[
                ("username", "alice"),
                ("display_name", "Alice Liddell"),
                ("given_name", "Alice"),
                ("family_name", "Liddell"),
                ("email", "alice@example.org"),
                ("group", "friends"),
                ("claims", "{\"quota\": \"10 GB\"}"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = app.page(&b, &show).await;
    assert!(html.contains("name=\"scope.quota\""));
    let r = app
        .submit(
            &b,
            &show,
            &show,
            &[
                ("username", "alice"),
                ("display_name", "Alice Liddell"),
                ("email", "alice@example.org"),
                ("group", "friends"),
                ("claims", "{\"quota\": \"10 GB\"}"),
                ("scope.quota", "profile"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (u, groups, scopes) = app
        .db
        .read_blocking(|c| {
            Ok((
                portcullis::store::users::by_id(c, &alice.id)?.unwrap(),
                portcullis::store::users::group_names(c, &alice.id)?,
                portcullis::store::users::claim_scopes(c)?,
            ))
        })
        .unwrap();
    assert_eq!(u.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(u.email.as_deref(), Some("alice@example.org"));
    assert!(!u.email_verified);
    assert_eq!(groups, vec!["friends"]);
    assert_eq!(u.claims["quota"], "10 GB");
    assert_eq!(scopes, vec![("quota".to_string(), "profile".to_string())]);
    // The claim reaches an app with the profile scope.
    let (cid, secret) = app.confidential("App", "https://app.example.com/cb");
    let tokens = app
        .tokens_for(
            &app.browser(),
            "alice",
            &cid,
            Some(&secret),
            "https://app.example.com/cb",
            "openid profile",
        )
        .await;
    let claims = crate::support::jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["quota"], "10 GB");
    // Not JSON, and reserved names, are refused with the field marked.
    for bad in ["{oops", "[1]", "{\"sub\": \"x\"}"] {
        let r = app
            .submit(&b, &show, &show, &[("username", "alice"), ("claims", bad)])
            .await;
        assert_eq!(r.status(), 422, "{bad}");
        assert!(r.text().await.unwrap().contains("claims-error"), "{bad}");
    }
}

#[tokio::test]
async fn groups_members_and_safeguards() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    app.add_user("alice", &[], false);
    let r = app
        .submit(&b, "/admin/groups", "/admin/groups", &[("name", "family")])
        .await;
    assert_eq!(r.status(), 303);
    let show = location(&r).split('?').next().unwrap().to_string();
    let r = app
        .submit(
            &b,
            &show,
            &format!("{show}/members"),
            &[("username", "alice")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .submit(
            &b,
            &show,
            &format!("{show}/members"),
            &[("username", "nobody")],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("There is no user named"));
    let (_, html) = app.page(&b, &show).await;
    assert!(html.contains(">alice Example</a>"));
    // A group that restricts an application cannot be deleted (everyone would get in).
    app.add_client(ClientInput {
        name: "Grafana".into(),
        redirect_uris: vec!["https://grafana.example.com/login/generic_oauth".into()],
        allowed_groups: vec!["family".into()],
        ..Default::default()
    });
    let del = format!("{show}/delete");
    let r = app.submit(&b, &del, &del, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Grafana"));
    // The admins group keeps its name.
    let admins = app
        .db
        .read_blocking(|c| portcullis::store::groups::id_by_name(c, "admins"))
        .unwrap()
        .unwrap();
    let ap = format!("/admin/groups/{admins}");
    let r = app.submit(&b, &ap, &ap, &[("name", "owners")]).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn api_keys_are_made_in_the_console_and_shown_once() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let r = app
        .submit(
            &b,
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "ansible")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let key = html
        .split("id=\"api-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(key.starts_with("pck_"));
    let api = reqwest::Client::new();
    let r = api
        .get(format!("{}/admin/api/users", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = app.page(&b, "/admin/api-keys").await;
    assert!(list.contains("ansible") && !list.contains(&key));
    // Rotating signing keys from the console, after the confirmation page.
    let r = app
        .submit(&b, "/admin/keys/rotate", "/admin/keys/rotate", &[])
        .await;
    assert_eq!(r.status(), 303);
    let (_, keys) = app.page(&b, "/admin/keys").await;
    assert!(keys.contains(">next</span>"));
}
