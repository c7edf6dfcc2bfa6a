//! Sign-in providers managed by administrators: the console pages under /admin/upstream, the
//! linked sign-ins on the user page, the admin API (/admin/api/upstream and
//! /admin/api/users/{id}/identities), and the first password of an account made just in time.
//! Sign-ins go through a real upstream (a second Portcullis, see `upstream::federation`).

use portcullis::crypto::secret::Secret;
use portcullis::ops::Actor;
use portcullis::ops::upstream_providers::{self, ProviderInput};
use portcullis::store;
use portcullis::store::upstream::{Kind, Policy, Provider};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, location};
use crate::upstream::{Fed, federation};

const SECRET: &str = "typed-secret-0123456789";

fn provider(app: &TestApp, slug: &str) -> Option<Provider> {
    let slug = slug.to_string();
    app.db
        .read_blocking(move |c| store::upstream::by_slug(c, &slug))
        .unwrap()
}

fn secret_of(app: &TestApp, p: &Provider) -> Option<String> {
    upstream_providers::client_secret(&app.state.master_key, p)
        .unwrap()
        .map(|s| s.expose().clone())
}

/// Adds a provider as the CLI would.
fn add_provider(app: &TestApp, slug: &str, name: &str) -> Provider {
    let mut input = ProviderInput::new(slug, Kind::Oidc, name, "the-client");
    input.issuer = Some("https://id.example.com".into());
    input.client_secret = Some(Secret::new(SECRET.into()));
    let key = app.state.master_key.clone();
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| upstream_providers::create(c, &key, input, None, now))
        .unwrap()
}

fn audit_kinds(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    let kind = kind.to_string();
    app.db
        .read_blocking(move |c| {
            let mut stmt = c.prepare(
                "SELECT coalesce(actor_id, ''), coalesce(detail, '') FROM audit_events
                 WHERE kind = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

/// A federation where `alice` signed in through the upstream once: her downstream account was
/// made just in time (no password) and is linked. Returns her downstream user id and the
/// browser she is signed in with.
/// Submits the account page's password form with only a new password (no current one).
async fn new_password(app: &TestApp, b: &reqwest::Client, password: &str) -> reqwest::Response {
    app.submit(
        b,
        "/account",
        "/account/password",
        &[("new_password", password)],
    )
    .await
}

async fn alice_signed_in_through_upstream(fed: &Fed) -> (String, reqwest::Client) {
    fed.up.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let r = fed
        .through_upstream(
            &down_b,
            &up_b,
            "/login/upstream/corp?next=/account",
            "alice",
        )
        .await;
    assert_eq!(r.status(), 303);
    let alice = fed
        .users()
        .into_iter()
        .find(|u| u.username == "alice")
        .unwrap();
    assert!(alice.password_hash.is_none());
    (alice.id, down_b)
}

// ---- console -------------------------------------------------------------------------------

#[tokio::test]
async fn the_console_adds_a_provider_and_refuses_a_bad_issuer_and_a_taken_slug() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    let redirect = format!("{}/login/upstream/callback", app.url);

    let (status, html) = app.page(&b, "/admin/upstream").await;
    assert_eq!(status, 200);
    assert!(html.contains("No sign-in providers yet"), "{html}");
    assert!(html.contains("Sign-in providers") && html.contains("aria-current=\"page\""));
    let (status, html) = app.page(&b, "/admin/upstream/new").await;
    assert_eq!(status, 200);
    for preset in ["google", "github", "oidc"] {
        assert!(html.contains(&format!("/admin/upstream/new?preset={preset}")));
    }
    let (status, html) = app.page(&b, "/admin/upstream/new?preset=oidc").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&redirect),
        "the redirect URI to register is shown"
    );
    assert!(html.contains("type=\"password\""));

    // A plain-http issuer on another host: refused, the typed values kept, the secret not.
    let fields = [
        ("preset", "oidc"),
        ("slug", "corp"),
        ("name", "Corp ID"),
        ("issuer", "http://id.example.com"),
        ("client_id", "portcullis-at-corp"),
        ("client_secret", SECRET),
        ("scopes", "openid email groups"),
        ("enabled", "on"),
        ("policy", "create"),
        ("group_mapping", "staff=editors"),
    ];
    let from = "/admin/upstream/new?preset=oidc";
    let r = app.submit(&b, from, "/admin/upstream", &fields).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Use an https:// URL"), "{html}");
    assert!(html.contains("id=\"issuer-error\""));
    assert!(html.contains("value=\"http://id.example.com\""), "{html}");
    assert!(html.contains("value=\"portcullis-at-corp\"") && html.contains("value=\"Corp ID\""));
    assert!(html.contains("staff=editors"));
    assert!(!html.contains(SECRET), "the secret is never sent back");
    assert!(html.contains("enter it again"));
    assert!(provider(&app, "corp").is_none());

    // Fixed: added, with the secret sealed.
    let mut good = fields.to_vec();
    good[3] = ("issuer", "https://id.example.com");
    let r = app.submit(&b, from, "/admin/upstream", &good).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/admin/upstream/corp?done=created");
    let p = provider(&app, "corp").unwrap();
    assert_eq!(p.issuer.as_deref(), Some("https://id.example.com"));
    assert_eq!(p.policy, Policy::Create);
    assert_eq!(p.scopes, "openid email groups");
    assert_eq!(p.group_mapping.get("staff").unwrap(), "editors");
    assert!(p.enabled);
    assert_eq!(secret_of(&app, &p).as_deref(), Some(SECRET));
    let (_, html) = app.page(&b, "/admin/upstream/corp?done=created").await;
    assert!(html.contains("The provider is added"));
    assert!(html.contains(&redirect));
    assert!(html.contains("A secret is stored"));
    assert!(!html.contains(SECRET));
    let events = audit_kinds(&app, "upstream.provider_created");
    assert_eq!(events.len(), 1);
    let root = app
        .db
        .read_blocking(|c| store::users::by_username(c, "root"))
        .unwrap()
        .unwrap();
    assert_eq!(events[0].0, root.id, "the administrator is the actor");

    // The same slug again: refused, nothing changed.
    let r = app.submit(&b, from, "/admin/upstream", &good).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Another provider uses this slug")
    );

    // The Google preset fills the issuer and the name.
    let r = app
        .submit(
            &b,
            "/admin/upstream/new?preset=google",
            "/admin/upstream",
            &[
                ("preset", "google"),
                ("slug", "google"),
                ("client_id", "123.apps.googleusercontent.com"),
                ("client_secret", "g-secret"),
                ("policy", "existing_only"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let g = provider(&app, "google").unwrap();
    assert_eq!(g.issuer.as_deref(), Some(upstream_providers::GOOGLE_ISSUER));
    assert_eq!(g.display_name, "Google");
    assert!(!g.enabled, "the box was not ticked");

    // GitHub: no issuer needed.
    let r = app
        .submit(
            &b,
            "/admin/upstream/new?preset=github",
            "/admin/upstream",
            &[
                ("preset", "github"),
                ("slug", "github"),
                ("name", "GitHub"),
                ("client_id", "Iv1.abc"),
                ("client_secret", "gh-secret"),
                ("enabled", "on"),
                ("policy", "existing_only"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(provider(&app, "github").unwrap().kind, Kind::Github);

    let (_, html) = app.page(&b, "/admin/upstream").await;
    assert!(html.contains("Corp ID") && html.contains("Google") && html.contains("GitHub"));
    assert!(html.contains("OpenID Connect"));
    assert!(html.contains("new account for everyone"));
    assert!(html.contains(upstream_providers::GITHUB_BASE));
}

#[tokio::test]
async fn editing_keeps_the_secret_unless_a_new_one_is_typed() {
    let app = TestApp::spawn().await;
    let b = app.admin_browser().await;
    add_provider(&app, "corp", "Corp ID");
    let from = "/admin/upstream/corp";
    let (status, html) = app.page(&b, from).await;
    assert_eq!(status, 200);
    assert!(html.contains("leave empty to keep the current secret"));
    assert!(!html.contains(SECRET));
    let base = [
        ("slug", "corp"),
        ("name", "Corp Sign-In"),
        ("issuer", "https://id.example.com"),
        ("client_id", "the-client"),
        ("client_secret", ""),
        ("scopes", ""),
        ("policy", "link_verified_email"),
        ("default_group", "family"),
    ];
    let r = app.submit(&b, from, from, &base).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/upstream/corp?done=saved");
    let p = provider(&app, "corp").unwrap();
    assert_eq!(p.display_name, "Corp Sign-In");
    assert_eq!(p.policy, Policy::LinkVerifiedEmail);
    assert_eq!(p.default_groups, vec!["family".to_string()]);
    assert_eq!(
        p.scopes,
        upstream_providers::OIDC_SCOPES,
        "empty: the default"
    );
    assert_eq!(secret_of(&app, &p).as_deref(), Some(SECRET), "kept");

    // A refused change keeps what was typed and changes nothing.
    let mut bad = base.to_vec();
    bad[1] = ("name", "Renamed");
    bad.push(("icon", "javascript:alert(1)"));
    bad[4] = ("client_secret", "never-saved-secret");
    let r = app.submit(&b, from, from, &bad).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"icon-error\"") && html.contains("value=\"Renamed\""));
    assert!(!html.contains("never-saved-secret"));
    let p = provider(&app, "corp").unwrap();
    assert_eq!(p.display_name, "Corp Sign-In");
    assert_eq!(secret_of(&app, &p).as_deref(), Some(SECRET));

    // A new secret replaces it; the box removes it.
    let mut new_secret = base.to_vec();
    new_secret[4] = ("client_secret", "the-new-secret");
    assert_eq!(app.submit(&b, from, from, &new_secret).await.status(), 303);
    let p = provider(&app, "corp").unwrap();
    assert_eq!(secret_of(&app, &p).as_deref(), Some("the-new-secret"));
    let mut remove = base.to_vec();
    remove.push(("remove_secret", "on"));
    assert_eq!(app.submit(&b, from, from, &remove).await.status(), 303);
    assert_eq!(provider(&app, "corp").unwrap().client_secret_sealed, None);
    let (_, html) = app.page(&b, from).await;
    assert!(html.contains("No secret is stored"));

    // A new slug moves the page.
    let mut renamed = base.to_vec();
    renamed[0] = ("slug", "corp-id");
    let r = app.submit(&b, from, from, &renamed).await;
    assert_eq!(location(&r), "/admin/upstream/corp-id?done=saved");
    assert!(provider(&app, "corp").is_none());
    assert_eq!(app.page(&b, from).await.0, 404);
}

#[tokio::test]
async fn turning_a_provider_off_and_on_changes_the_sign_in_page() {
    let fed = federation(Policy::Create).await;
    let app = &fed.down;
    let b = app.admin_browser().await;
    let login_has_button = || async move {
        let html = app
            .browser()
            .get(app.abs("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.contains("Continue with Corp ID")
    };
    assert!(login_has_button().await);
    let from = "/admin/upstream/corp";
    let r = app
        .submit(&b, from, "/admin/upstream/corp/disable", &[])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/upstream/corp?done=disabled");
    assert!(!provider(app, "corp").unwrap().enabled);
    assert!(!login_has_button().await);
    let (_, html) = app.page(&b, "/admin/upstream/corp?done=disabled").await;
    assert!(html.contains("Turn on") && html.contains("The provider is off"));
    let r = app
        .submit(&b, from, "/admin/upstream/corp/enable", &[])
        .await;
    assert_eq!(r.status(), 303);
    assert!(login_has_button().await);
    assert_eq!(audit_kinds(app, "upstream.provider_disabled").len(), 1);
    assert_eq!(audit_kinds(app, "upstream.provider_enabled").len(), 1);
    // Unknown providers are 404s.
    let r = app
        .submit(&b, from, "/admin/upstream/nope/disable", &[])
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_provider_page_lists_the_people_linked_through_it() {
    let fed = federation(Policy::Create).await;
    let (alice_id, _) = alice_signed_in_through_upstream(&fed).await;
    let b = fed.down.admin_browser().await;
    let (_, html) = fed.down.page(&b, "/admin/upstream/corp").await;
    assert!(html.contains(&format!("/admin/users/{alice_id}")), "{html}");
    assert!(html.contains("alice@example.com"));
    let (_, html) = fed.down.page(&b, "/admin/upstream").await;
    assert!(html.contains("<td>1</td>"), "one linked user: {html}");
}

#[tokio::test]
async fn deleting_asks_first_and_unlinks_everyone_linked_through_it() {
    let fed = federation(Policy::Create).await;
    let (alice_id, _) = alice_signed_in_through_upstream(&fed).await;
    let app = &fed.down;
    let b = app.admin_browser().await;
    let from = "/admin/upstream/corp/delete";
    let (status, html) = app.page(&b, from).await;
    assert_eq!(status, 200);
    assert!(html.contains("1 linked sign-in is removed"), "{html}");
    assert!(
        html.contains("1 person has no other way to sign in"),
        "{html}"
    );
    // Without the box ticked: asked again, nothing deleted.
    let r = app.submit(&b, from, from, &[]).await;
    assert_eq!(r.status(), 422);
    assert!(provider(app, "corp").is_some());
    let r = app.submit(&b, from, from, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/upstream?done=deleted");
    assert!(provider(app, "corp").is_none());
    assert!(fed.links().is_empty());
    let links = app
        .db
        .read_blocking(|c| store::upstream::count_links_for_user(c, &alice_id))
        .unwrap();
    assert_eq!(links, 0);
    assert!(
        app.db
            .read_blocking(|c| store::users::by_id(c, &alice_id))
            .unwrap()
            .is_some(),
        "the account stays"
    );
    assert_eq!(audit_kinds(app, "upstream.provider_deleted").len(), 1);
    assert_eq!(app.page(&b, from).await.0, 404);
}

#[tokio::test]
async fn upstream_pages_are_for_administrators_and_their_forms_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    add_provider(&app, "corp", "Corp ID");
    app.add_user("alice", &["family"], false);
    let alice = app.browser();
    app.sign_in(&alice, "alice").await;
    for path in [
        "/admin/upstream",
        "/admin/upstream/new",
        "/admin/upstream/corp",
        "/admin/upstream/corp/delete",
    ] {
        assert_eq!(app.page(&alice, path).await.0, 403, "{path}");
    }
    // Forms too, even with a valid CSRF token (from the account page).
    let fields = [
        ("slug", "evil"),
        ("name", "Evil"),
        ("issuer", "https://evil.example"),
        ("client_id", "x"),
        ("policy", "create"),
    ];
    let r = app
        .submit(&alice, "/account", "/admin/upstream", &fields)
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .submit(&alice, "/account", "/admin/upstream/corp/disable", &[])
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .submit(
            &alice,
            "/account",
            "/admin/upstream/corp/delete",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(provider(&app, "evil").is_none());
    assert!(provider(&app, "corp").unwrap().enabled);

    // An administrator without the token (or with a forged one) is refused too.
    let b = app.admin_browser().await;
    let r = b
        .post(app.abs("/admin/upstream"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(app.abs("/admin/upstream/corp/delete"))
        .form(&[("csrf", "forged"), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(provider(&app, "evil").is_none() && provider(&app, "corp").is_some());
}

#[tokio::test]
async fn an_administrator_unlinks_an_identity_but_never_the_last_way_to_sign_in() {
    let fed = federation(Policy::Create).await;
    let (alice_id, _) = alice_signed_in_through_upstream(&fed).await;
    let app = &fed.down;
    let b = app.admin_browser().await;
    let user_page = format!("/admin/users/{alice_id}");
    let (_, html) = app.page(&b, &user_page).await;
    assert!(html.contains("Linked sign-ins") && html.contains("Corp ID"));
    assert!(html.contains("/admin/upstream/corp"));
    assert!(html.contains(&format!("/admin/users/{alice_id}/identities/unlink")));
    let subject = fed.links()[0].link.subject.clone();
    let fields = [
        ("provider_id", fed.provider.id.as_str()),
        ("subject", subject.as_str()),
    ];
    let action = format!("{user_page}/identities/unlink");

    // Her only way to sign in: refused with a clear message, nothing removed.
    let r = app.submit(&b, &user_page, &action, &fields).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("only way to sign in"), "{html}");
    assert_eq!(fed.links().len(), 1);

    // With a password as well, it goes.
    let hash = app.state.hasher.hash_now(PASSWORD).unwrap();
    let now = app.clock_now();
    app.db
        .write_blocking(|c| store::users::set_password_hash(c, &alice_id, &hash, now))
        .unwrap();
    let r = app.submit(&b, &user_page, &action, &fields).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{user_page}?done=unlinked"));
    assert!(fed.links().is_empty());
    let events = audit_kinds(app, "upstream.unlinked");
    assert_eq!(events.len(), 1);
    assert_ne!(events[0].0, alice_id, "the administrator is the actor");
    // Unlinking it again: there is nothing to unlink.
    let r = app.submit(&b, &user_page, &action, &fields).await;
    assert_eq!(r.status(), 404);
}

// ---- a first password for an account made just in time ------------------------------------

#[tokio::test]
async fn an_account_made_at_a_federated_sign_in_sets_a_first_password_without_a_current_one() {
    let fed = federation(Policy::Create).await;
    let (alice_id, b) = alice_signed_in_through_upstream(&fed).await;
    let app = &fed.down;
    let (_, html) = app.page(&b, "/account").await;
    assert!(html.contains("Set a password"), "{html}");
    assert!(!html.contains("Current password"));

    // The password policy applies.
    let r = new_password(app, &b, "short").await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("New password: Use at least")
    );
    let r = new_password(app, &b, "password123").await;
    assert_eq!(r.status(), 422);

    let first = "a first password for alice";
    let r = new_password(app, &b, first).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=password_set");
    assert_eq!(audit_kinds(app, "password.set").len(), 1);
    // Still signed in here; now the account page asks for the current password.
    let (status, html) = app.page(&b, "/account?done=password_set").await;
    assert_eq!(status, 200);
    assert!(html.contains("Your password is set") && html.contains("Current password"));

    // And the password signs her in.
    let other = app.browser();
    let r = app.sign_in_at(&other, "/login", "alice", first).await;
    assert_eq!(r.status(), 303);

    // From now on, changing it needs the current one.
    let r = new_password(app, &b, "an attacker's new password").await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );
    let u = app
        .db
        .read_blocking(|c| store::users::by_id(c, &alice_id))
        .unwrap()
        .unwrap();
    assert!(
        app.state
            .hasher
            .verify(Secret::new(first.into()), u.password_hash)
            .await
            .unwrap()
            == portcullis::crypto::password::Verified::Yes
    );
}

// ---- admin API -----------------------------------------------------------------------------

struct Api<'a> {
    app: &'a TestApp,
    key: String,
}

impl<'a> Api<'a> {
    fn new(app: &'a TestApp) -> Self {
        let now = app.clock_now();
        let key = app
            .db
            .try_write_blocking(|c| portcullis::ops::api_keys::create(c, &Actor::Cli, "tests", now))
            .unwrap()
            .1;
        Self { app, key }
    }

    /// Status, JSON body and the raw text (to check what it never contains).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value, String) {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}/admin/api{path}", self.app.url))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }
}

#[tokio::test]
async fn the_api_manages_providers_and_never_returns_the_secret() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/admin/api/upstream", app.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let api = Api::new(&app);
    let (s, v, _) = api.call(Method::GET, "/upstream", None).await;
    assert_eq!((s, v["total"].as_i64()), (200, Some(0)));

    // The GitHub preset: kind and name filled in.
    let body = json!({"slug": "github", "preset": "github", "client_id": "Iv1.abc",
                      "client_secret": SECRET, "policy": "link_verified_email",
                      "default_groups": ["family"]});
    let (s, v, text) = api
        .call(Method::POST, "/upstream", Some(body.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(!text.contains(SECRET), "the secret never comes back");
    assert_eq!(v["kind"], "github");
    assert_eq!(v["name"], "GitHub");
    assert_eq!(v["has_client_secret"], true);
    assert_eq!(v["policy"], "link_verified_email");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["linked_identities"], 0);
    assert_eq!(
        v["redirect_uri"],
        format!("{}/login/upstream/callback", app.url)
    );
    assert_eq!(
        secret_of(&app, &provider(&app, "github").unwrap()).as_deref(),
        Some(SECRET)
    );
    let events = audit_kinds(&app, "upstream.provider_created");
    assert!(events[0].0.starts_with("apikey:"), "{events:?}");

    // Refusals name the field.
    let (s, v, _) = api.call(Method::POST, "/upstream", Some(body)).await;
    assert_eq!(
        (s, &v["error"], &v["field"]),
        (409, &json!("conflict"), &json!("slug"))
    );
    for (bad, field) in [
        (
            json!({"slug": "corp", "client_id": "c", "name": "Corp", "issuer": "http://id.example.com"}),
            "issuer",
        ),
        (
            json!({"slug": "corp", "client_id": "c", "name": "Corp"}),
            "issuer",
        ),
        (
            json!({"slug": "Corp!", "client_id": "c", "name": "Corp", "issuer": "https://id.example.com"}),
            "slug",
        ),
        (
            json!({"slug": "corp", "client_id": "c", "preset": "google", "policy": "everyone"}),
            "policy",
        ),
        (
            json!({"slug": "corp", "client_id": "c", "preset": "facebook"}),
            "preset",
        ),
        (
            json!({"slug": "corp", "client_id": "c", "preset": "google", "kind": "github"}),
            "kind",
        ),
        (json!({"slug": "corp", "preset": "google"}), "client_id"),
        (
            json!({"slug": "corp", "client_id": "c", "preset": "google", "colour": "red"}),
            "colour",
        ),
    ] {
        let (s, v, _) = api.call(Method::POST, "/upstream", Some(bad.clone())).await;
        assert_eq!(s, 422, "{bad} -> {v}");
        assert_eq!(v["error"], "invalid_field");
        assert_eq!(v["field"], field, "{bad} -> {v}");
    }
    assert!(provider(&app, "corp").is_none());

    // Google by preset, then read, list, change.
    let (s, v, _) = api
        .call(
            Method::POST,
            "/upstream",
            Some(json!({"slug": "google", "preset": "google", "client_id": "123.apps", "client_secret": "g"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["issuer"], upstream_providers::GOOGLE_ISSUER);
    assert_eq!(v["policy"], "existing_only", "the safe default");
    let (s, v, _) = api.call(Method::GET, "/upstream/google", None).await;
    assert_eq!((s, &v["name"]), (200, &json!("Google")));
    let (s, v, text) = api.call(Method::GET, "/upstream", None).await;
    assert_eq!((s, v["total"].as_i64()), (200, Some(2)));
    assert!(!text.contains(SECRET));
    assert_eq!(
        api.call(Method::GET, "/upstream/nope", None).await.1["error"],
        "not_found"
    );

    let (s, v, text) = api
        .call(
            Method::PATCH,
            "/upstream/github",
            Some(
                json!({"enabled": false, "client_secret": "the-new-secret", "name": "GitHub Corp",
                        "group_mapping": {"my-org/admins": "admins"}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(!text.contains("the-new-secret"));
    assert_eq!(
        (&v["enabled"], &v["name"]),
        (&json!(false), &json!("GitHub Corp"))
    );
    assert_eq!(v["group_mapping"]["my-org/admins"], "admins");
    assert_eq!(v["default_groups"], json!(["family"]), "untouched");
    let p = provider(&app, "github").unwrap();
    assert_eq!(secret_of(&app, &p).as_deref(), Some("the-new-secret"));
    let (s, v, _) = api
        .call(
            Method::PATCH,
            "/upstream/github",
            Some(json!({"client_secret": null})),
        )
        .await;
    assert_eq!((s, &v["has_client_secret"]), (200, &json!(false)));
    let (s, v, _) = api
        .call(
            Method::PATCH,
            "/upstream/github",
            Some(json!({"slug": "google"})),
        )
        .await;
    assert_eq!(
        (s, &v["error"], &v["field"]),
        (409, &json!("conflict"), &json!("slug"))
    );
    let (s, v, _) = api
        .call(
            Method::PATCH,
            "/upstream/github",
            Some(json!({"issuer": "ftp://x"})),
        )
        .await;
    assert_eq!((s, &v["field"]), (422, &json!("issuer")));
    let (s, v, _) = api
        .call(
            Method::PATCH,
            "/upstream/github",
            Some(json!({"kind": "oidc"})),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (422, &json!("kind")),
        "the kind cannot change"
    );
    let (s, _, _) = api
        .call(
            Method::PATCH,
            "/upstream/nope",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 404);

    let (s, v, _) = api.call(Method::DELETE, "/upstream/github", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["unlinked_identities"], 0);
    assert!(provider(&app, "github").is_none());
    let (s, _, _) = api.call(Method::DELETE, "/upstream/github", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_api_lists_and_unlinks_identities_but_never_the_last_way_to_sign_in() {
    let fed = federation(Policy::Create).await;
    let (alice_id, _) = alice_signed_in_through_upstream(&fed).await;
    let app = &fed.down;
    let api = Api::new(app);
    let path = format!("/users/{alice_id}/identities");
    let (s, v, _) = api.call(Method::GET, &path, None).await;
    assert_eq!(s, 200, "{v}");
    let ids = v["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["provider"], "corp");
    assert_eq!(ids[0]["provider_name"], "Corp ID");
    assert_eq!(ids[0]["email"], "alice@example.com");
    assert_eq!(ids[0]["subject"], fed.links()[0].link.subject.as_str());
    let (s, v, _) = api.call(Method::GET, "/upstream/corp", None).await;
    assert_eq!((s, &v["linked_identities"]), (200, &json!(1)));

    let (s, v, _) = api
        .call(Method::DELETE, &format!("{path}/corp"), None)
        .await;
    assert_eq!(
        (s, &v["error"]),
        (409, &json!("last_sign_in_method")),
        "{v}"
    );
    assert_eq!(fed.links().len(), 1);

    let hash = app.state.hasher.hash_now(PASSWORD).unwrap();
    let now = app.clock_now();
    app.db
        .write_blocking(|c| store::users::set_password_hash(c, &alice_id, &hash, now))
        .unwrap();
    let (s, v, _) = api
        .call(
            Method::DELETE,
            &format!("{path}/corp?subject=someone-else"),
            None,
        )
        .await;
    assert_eq!((s, &v["error"]), (404, &json!("not_found")));
    let (s, _, _) = api
        .call(Method::DELETE, &format!("{path}/corp"), None)
        .await;
    assert_eq!(s, 204);
    assert!(fed.links().is_empty());
    let events = audit_kinds(app, "upstream.unlinked");
    assert!(events[0].0.starts_with("apikey:"), "{events:?}");
    let (_, v, _) = api.call(Method::GET, &path, None).await;
    assert_eq!(v["identities"], json!([]));
    let (s, _, _) = api
        .call(Method::DELETE, &format!("{path}/corp"), None)
        .await;
    assert_eq!(s, 404);
    let (s, _, _) = api
        .call(Method::DELETE, &format!("{path}/nope"), None)
        .await;
    assert_eq!(s, 404);
    let (s, _, _) = api
        .call(Method::GET, "/users/nobody/identities", None)
        .await;
    assert_eq!(s, 404);
    // Without a key: 401.
    let r = reqwest::get(format!("{}/admin/api{path}", app.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
