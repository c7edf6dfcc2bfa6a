//! The admin HTTP API (/admin/api): authorization by API key, every operation and its
//! validation errors (stable codes, the field named), and the OpenAPI document.

use portcullis::ops::Actor;
use portcullis::ops::clients::ClientInput;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// A fresh API key (made as the CLI would).
fn api_key(app: &TestApp) -> String {
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| portcullis::ops::api_keys::create(c, &Actor::Cli, "tests", now))
        .unwrap()
        .1
}

struct Api<'a> {
    app: &'a TestApp,
    key: String,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            key: api_key(app),
            app,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/admin/api{path}", self.app.url))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    async fn put(&self, path: &str) -> (u16, Value) {
        self.call(Method::PUT, path, None).await
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }
}

fn assert_error(got: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()));
    match field {
        Some(f) => assert_eq!(got.1["field"], f, "{}", got.1),
        None => assert!(got.1.get("field").is_none(), "{}", got.1),
    }
}

#[tokio::test]
async fn no_key_an_unknown_key_and_a_revoked_key_are_401() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/api/users", app.url);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "missing_api_key");
    let r = http.get(&url).bearer_auth("pck_nope").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_api_key");

    let api = Api::new(&app);
    assert_eq!(api.get("/users").await.0, 200);
    let id = app
        .db
        .read_blocking(portcullis::store::api_keys::list)
        .unwrap()
        .pop()
        .unwrap()
        .id;
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| portcullis::ops::api_keys::revoke(c, &Actor::Cli, &id, now))
        .unwrap();
    assert_error(&api.get("/users").await, 401, "revoked_api_key", None);
    // A POST with a revoked key changes nothing.
    let got = api.post("/groups", json!({"name": "family"})).await;
    assert_eq!(got.0, 401);
    assert!(
        app.db
            .read_blocking(|c| portcullis::store::groups::id_by_name(c, "family"))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_signed_in_admin_session_is_not_an_api_key() {
    let app = TestApp::spawn().await;
    app.add_user("root", &[], true);
    let b = app.browser();
    app.sign_in(&b, "root").await;
    let r = b
        .get(format!("{}/admin/api/users", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "cookies are not credentials for the API");
}

#[tokio::test]
async fn a_key_made_by_someone_who_is_no_longer_an_admin_is_403() {
    let app = TestApp::spawn().await;
    let root = app.add_user("root", &[], true);
    app.add_user("boss", &[], true);
    let now = app.clock_now();
    let key = app
        .db
        .try_write_blocking(|c| {
            portcullis::ops::api_keys::create(c, &Actor::User(root.id.clone()), "mine", now)
        })
        .unwrap()
        .1;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/api/users", app.url);
    assert_eq!(
        http.get(&url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let boss = Api::new(&app);
    let got = boss
        .patch(&format!("/users/{}", root.id), json!({"groups": []}))
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
    let r = http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "forbidden");
}

#[tokio::test]
async fn unknown_endpoints_and_bad_bodies_are_json_errors() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    assert_error(&api.get("/nothing").await, 404, "unknown_endpoint", None);
    assert_error(&api.delete("/users").await, 404, "unknown_endpoint", None);
    let r = reqwest::Client::new()
        .post(format!("{}/admin/api/users", app.url))
        .bearer_auth(&api.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    assert_error(
        &api.post("/users", json!({"usernme": "x"})).await,
        422,
        "invalid_field",
        Some("usernme"),
    );
    assert_error(
        &api.post("/users", json!({})).await,
        422,
        "invalid_field",
        Some("username"),
    );
    assert_error(
        &api.get("/users?limit=lots").await,
        400,
        "invalid_request",
        None,
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/admin/api/openapi.json", app.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "public, like any API description");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/admin/api");
    let api = Api::new(&app);
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["responses"].is_object(), "{method} {path}");
            let concrete = path
                .replace("{id}", "nobody")
                .replace("{user}", "nobody")
                .replace("{sid}", "nobody")
                .replace("{slug}", "nobody")
                .replace("{provider}", "nobody")
                .replace("{role}", "nobody")
                .replace("{group}", "nobody");
            let (status, body) = api.call(m.clone(), &concrete, None).await;
            assert_ne!(
                body["error"], "unknown_endpoint",
                "{method} {path} is documented but not routed ({status})"
            );
            count += 1;
        }
    }
    assert_eq!(
        count, 49,
        "every route of api::scope() is documented, and no more"
    );
}

#[tokio::test]
async fn users_are_created_listed_read_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    assert_eq!(api.post("/groups", json!({"name": "family"})).await.0, 201);
    // With a password: they can sign in with it.
    let (s, alice) = api
        .post(
            "/users",
            json!({"username": "alice", "email": "alice@example.com", "email_verified": true,
                   "display_name": "Alice", "groups": ["family"], "password": PASSWORD,
                   "claims": {"quota": "5 GB"}}),
        )
        .await;
    assert_eq!(s, 201, "{alice}");
    assert_eq!(alice["has_password"], true);
    assert_eq!(alice["groups"], json!(["family"]));
    assert_eq!(alice["claims"]["quota"], "5 GB");
    assert!(alice.get("password_hash").is_none() && alice.get("invite_url").is_none());
    let b = app.browser();
    assert_eq!(app.sign_in(&b, "alice").await.status(), 303);
    // Without one: an invite link, once.
    let (s, bob) = api.post("/users", json!({"username": "bob"})).await;
    assert_eq!(s, 201);
    let invite = bob["invite_url"].as_str().unwrap();
    assert!(invite.starts_with(&format!("{}/invite?token=", app.url)));
    assert_eq!(reqwest::get(invite).await.unwrap().status(), 200);
    assert!(bob["invite_expires_at"].is_i64());
    // Validation names the field; conflicts are 409.
    let cases = [
        (json!({"username": "a b"}), 422, "invalid_field", "username"),
        (
            json!({"username": "c", "email": "nope"}),
            422,
            "invalid_field",
            "email",
        ),
        (
            json!({"username": "c", "groups": ["nosuch"]}),
            422,
            "invalid_field",
            "groups",
        ),
        (
            json!({"username": "c", "password": "short"}),
            422,
            "invalid_field",
            "password",
        ),
        (
            json!({"username": "c", "claims": {"sub": "x"}}),
            422,
            "invalid_field",
            "claims",
        ),
        (json!({"username": "ALICE"}), 409, "conflict", "username"),
        (
            json!({"username": "c", "email": "Alice@Example.com"}),
            409,
            "conflict",
            "email",
        ),
    ];
    for (body, status, code, field) in cases {
        assert_error(&api.post("/users", body).await, status, code, Some(field));
    }
    assert_error(
        &api.post("/users", json!({"username": 5})).await,
        400,
        "invalid_request",
        None,
    );
    // List with search and paging.
    for i in 0..5 {
        api.post("/users", json!({"username": format!("user{i}")}))
            .await;
    }
    let (s, page) = api.get("/users?q=user&limit=2&offset=2").await;
    assert_eq!(s, 200);
    assert_eq!(page["total"], 5);
    assert_eq!(page["limit"], 2);
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["user2", "user3"]);
    // Read by id or username.
    let id = alice["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/users/{id}")).await.1["username"],
        "alice"
    );
    assert_eq!(api.get("/users/alice").await.1["id"], id);
    assert_error(&api.get("/users/nobody").await, 404, "not_found", None);
    // Change some fields; null clears.
    let (s, changed) = api
        .patch(
            "/users/alice",
            json!({"display_name": null, "given_name": "Alice", "groups": [], "email_verified": false}),
        )
        .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["display_name"], Value::Null);
    assert_eq!(changed["given_name"], "Alice");
    assert_eq!(changed["groups"], json!([]));
    assert_eq!(changed["email"], "alice@example.com", "untouched");
    assert_error(
        &api.patch("/users/alice", json!({"username": "bob"})).await,
        409,
        "conflict",
        Some("username"),
    );
    assert_error(
        &api.patch("/users/nobody", json!({})).await,
        404,
        "not_found",
        None,
    );
    // A new password from the API signs the user out.
    let (s, _) = api
        .patch(
            "/users/alice",
            json!({"password": "another long passphrase"}),
        )
        .await;
    assert_eq!(s, 200);
    let r = b.get(format!("{}/account", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // One-time links.
    let (s, link) = api.post("/users/alice/reset-link", json!({})).await;
    assert_eq!(s, 201);
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/reset?token=", app.url)));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    let (s, link) = api
        .post("/users/bob/invite-link", json!({"allow_password": false}))
        .await;
    assert_eq!(s, 201);
    assert!(link["url"].as_str().unwrap().contains("/invite?token="));
    assert_eq!(
        reqwest::get(invite).await.unwrap().status(),
        404,
        "the old invite stopped working"
    );
    // Delete.
    assert_eq!(api.delete("/users/bob").await.0, 204);
    assert_error(&api.get("/users/bob").await, 404, "not_found", None);
    assert_error(&api.delete("/users/bob").await, 404, "not_found", None);
    // The audit log names the API key as the actor.
    let (_, audit) = api.get("/audit?kind=user").await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"user.deleted") && kinds.contains(&"user.created"));
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_id"].as_str().unwrap().starts_with("apikey:"))
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_revokes_tokens_and_tells_their_apps() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    let alice = app.add_user("alice", &[], false);
    let rp = LogoutReceiver::start().await;
    let (cid, secret) = app.add_client(ClientInput {
        name: "Grafana".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        backchannel_logout_uri: Some(format!("{}/bc", rp.url)),
        skip_consent: true,
        ..Default::default()
    });
    let secret = secret.unwrap();
    let b = app.browser();
    let tokens = app
        .tokens_for(
            &b,
            "alice",
            &cid,
            Some(&secret),
            "http://app.test/cb",
            "openid offline_access",
        )
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (_, sessions) = api.get("/users/alice/sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);

    let (s, v) = api.post("/users/alice/disable", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["disabled"], true);
    // Sessions ended, every refresh token revoked (offline ones too).
    let (sessions, live_refresh) = app
        .db
        .read_blocking(|c| {
            Ok((
                c.query_row(
                    "SELECT count(*) FROM sessions WHERE user_id = ?1",
                    [&alice.id],
                    |r| r.get::<_, i64>(0),
                )?,
                c.query_row(
                    "SELECT count(*) FROM refresh_tokens WHERE user_id = ?1 AND revoked_at IS NULL",
                    [&alice.id],
                    |r| r.get::<_, i64>(0),
                )?,
            ))
        })
        .unwrap();
    assert_eq!((sessions, live_refresh), (0, 0));
    let r = reqwest::Client::new()
        .post(format!("{}/token", app.url))
        .basic_auth(&cid, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The app was told by back-channel logout (queued in the outbox, delivered).
    let got = rp.wait_for(1).await;
    let claims = jwt_claims(&got[0].1);
    assert_eq!(claims["sub"], alice.id);
    // The browser is signed out, and cannot sign in again.
    let r = b.get(format!("{}/account", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_ne!(app.sign_in(&app.browser(), "alice").await.status(), 303);
    // Enable again.
    let (s, v) = api.post("/users/alice/enable", json!({})).await;
    assert_eq!((s, v["disabled"].clone()), (200, json!(false)));
    assert_eq!(app.sign_in(&app.browser(), "alice").await.status(), 303);
}

#[tokio::test]
async fn disabling_queues_a_logout_notice_in_the_outbox_in_the_same_transaction() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    // An app whose logout endpoint never answers: the outbox row stays for retries.
    let (cid, secret) = app.add_client(ClientInput {
        name: "Down".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        backchannel_logout_uri: Some("http://127.0.0.1:9/bc".into()),
        skip_consent: true,
        ..Default::default()
    });
    app.tokens_for(
        &app.browser(),
        "alice",
        &cid,
        secret.as_deref(),
        "http://app.test/cb",
        "openid",
    )
    .await;
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| {
            portcullis::ops::users::set_disabled(c, &Actor::Cli, &alice.id, true, now)
        })
        .unwrap();
    let rows: i64 = app
        .db
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM logout_outbox WHERE user_id = ?1 AND client_id = ?2",
                [&alice.id, &cid],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn sessions_are_listed_and_ended() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    app.add_user("alice", &[], false);
    app.add_user("bob", &[], false);
    let a = app.browser();
    app.sign_in(&a, "alice").await;
    app.sign_in(&app.browser(), "bob").await;
    let (s, all) = api.get("/sessions").await;
    assert_eq!(s, 200);
    assert_eq!(all["total"], 2);
    let (_, mine) = api.get("/sessions?user=alice").await;
    let list = mine["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["username"], "alice");
    let sid = list[0]["sid"].as_str().unwrap();
    assert_eq!(api.delete(&format!("/sessions/{sid}")).await.0, 204);
    assert_error(
        &api.delete(&format!("/sessions/{sid}")).await,
        404,
        "not_found",
        None,
    );
    assert_eq!(
        a.get(format!("{}/account", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_error(
        &api.get("/sessions?user=nobody").await,
        404,
        "not_found",
        None,
    );
}

#[tokio::test]
async fn the_last_administrator_cannot_be_disabled_deleted_or_demoted() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    app.add_user("root", &[], true);
    assert_error(
        &api.post("/users/root/disable", json!({})).await,
        409,
        "conflict",
        Some("disabled"),
    );
    assert_error(
        &api.delete("/users/root").await,
        409,
        "conflict",
        Some("user"),
    );
    assert_error(
        &api.patch("/users/root", json!({"groups": []})).await,
        409,
        "conflict",
        Some("groups"),
    );
    assert_error(
        &api.delete("/groups/admins/members/root").await,
        409,
        "conflict",
        Some("username"),
    );
    // With a second administrator, it is fine.
    app.add_user("deputy", &[], true);
    assert_eq!(api.post("/users/root/disable", json!({})).await.0, 200);
}

#[tokio::test]
async fn groups_members_and_claim_scopes() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    app.add_user("alice", &[], false);
    let (s, g) = api
        .post(
            "/groups",
            json!({"name": "family", "description": "Everyone at home", "claims": {"home": true}}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["members"], 0);
    assert_error(
        &api.post("/groups", json!({"name": "FAMILY"})).await,
        409,
        "conflict",
        Some("name"),
    );
    assert_error(
        &api.post("/groups", json!({"name": "x".repeat(65)})).await,
        422,
        "invalid_field",
        Some("name"),
    );
    assert_error(
        &api.post("/groups", json!({"name": "a/b"})).await,
        422,
        "invalid_field",
        Some("name"),
    );
    assert_error(
        &api.post("/groups", json!({})).await,
        422,
        "invalid_field",
        Some("name"),
    );
    let (_, list) = api.get("/groups").await;
    assert!(
        list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "family")
    );
    // Members by username.
    assert_eq!(api.put("/groups/family/members/alice").await.0, 204);
    assert_eq!(
        api.put("/groups/family/members/alice").await.0,
        204,
        "idempotent"
    );
    assert_error(
        &api.put("/groups/family/members/nobody").await,
        404,
        "not_found",
        None,
    );
    let (_, m) = api.get("/groups/family/members").await;
    assert_eq!(m["total"], 1);
    assert_eq!(m["members"][0]["username"], "alice");
    // Rename and change.
    let (s, g2) = api
        .patch(
            "/groups/family",
            json!({"name": "household", "description": null, "require_passkey": true}),
        )
        .await;
    assert_eq!(s, 200, "{g2}");
    assert_eq!(
        (
            g2["name"].clone(),
            g2["description"].clone(),
            g2["require_passkey"].clone()
        ),
        (json!("household"), Value::Null, json!(true))
    );
    assert_eq!(g2["claims"]["home"], true);
    assert_error(
        &api.patch("/groups/admins", json!({"name": "owners"})).await,
        404,
        "not_found",
        None,
    );
    app.add_user("root", &[], true);
    assert_error(
        &api.patch("/groups/admins", json!({"name": "owners"})).await,
        409,
        "conflict",
        Some("name"),
    );
    assert_error(
        &api.delete("/groups/admins").await,
        409,
        "conflict",
        Some("group"),
    );
    // Claim scopes.
    let (s, cs) = api.put("/claim-scopes").await;
    assert_eq!((s, cs["claim_scopes"].clone()), (200, json!({})));
    let (s, cs) = api
        .call(
            Method::PUT,
            "/claim-scopes",
            Some(json!({"home": "profile", "quota": "storage"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        cs["claim_scopes"],
        json!({"home": "profile", "quota": "storage"})
    );
    let (_, cs) = api
        .call(Method::PUT, "/claim-scopes", Some(json!({"quota": null})))
        .await;
    assert_eq!(cs["claim_scopes"], json!({"home": "profile"}));
    assert_error(
        &api.call(
            Method::PUT,
            "/claim-scopes",
            Some(json!({"home": "two words"})),
        )
        .await,
        422,
        "invalid_field",
        Some("claim_scopes"),
    );
    assert_error(
        &api.call(
            Method::PUT,
            "/claim-scopes",
            Some(json!({"email": "profile"})),
        )
        .await,
        422,
        "invalid_field",
        Some("claim_scopes"),
    );
    // Remove the member, then the group.
    assert_eq!(api.delete("/groups/household/members/alice").await.0, 204);
    assert_error(
        &api.delete("/groups/household/members/alice").await,
        404,
        "not_found",
        None,
    );
    // A group that is the only way into an application stays.
    let (_, c) = api
        .post("/clients", json!({"name": "Grafana", "redirect_uris": ["https://g.example.com/cb"], "allowed_groups": ["household"]}))
        .await;
    assert_error(
        &api.delete("/groups/household").await,
        409,
        "conflict",
        Some("group"),
    );
    let cid = c["client_id"].as_str().unwrap();
    assert_eq!(
        api.patch(&format!("/clients/{cid}"), json!({"allowed_groups": []}))
            .await
            .0,
        200
    );
    assert_eq!(api.delete("/groups/household").await.0, 204);
    assert_error(&api.get("/groups/household").await, 404, "not_found", None);
}

/// The status of an RFC 7009 revocation (of a made-up token) with client_secret_post: 200 when
/// the client authenticates, 401 when not.
async fn revoke_status(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/revoke", app.url))
        .form(&[
            ("token", "not-a-token"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn clients_are_created_with_their_secret_once_and_validated() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    let (s, c) = api
        .post(
            "/clients",
            json!({"name": "Immich", "redirect_uris": ["https://photos.example.com/auth/login", "app.immich:///oauth-callback"],
                   "token_endpoint_auth_method": "client_secret_post"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["client_id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().unwrap().to_string();
    assert_eq!(c["redirect_uris"][1], "app.immich:///oauth-callback");
    assert_eq!(c["issuer"], app.url);
    assert_eq!(c["warnings"], json!([]));
    // The secret works, and is never shown again.
    let (_, again) = api.get(&format!("/clients/{cid}")).await;
    assert!(again.get("client_secret").is_none() && again.get("secret_hash").is_none());
    let (_, list) = api.get("/clients?q=imm").await;
    assert_eq!(list["total"], 1);
    assert!(!list.to_string().contains(&secret));
    // Validation: the field is named (with the API's names) and nothing is saved.
    let cases = [
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb#f"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "X", "redirect_uris": ["/relative"]}),
            "redirect_uris",
        ),
        (json!({"name": "X"}), "redirect_uris"),
        (
            json!({"name": "", "redirect_uris": ["https://x.example/cb"]}),
            "name",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "public": true, "token_endpoint_auth_method": "client_secret_basic"}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "id_token_signed_response_alg": "HS256"}),
            "id_token_signed_response_alg",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "access_token_ttl": 0}),
            "access_token_ttl",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "allowed_groups": ["nosuch"]}),
            "allowed_groups",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "backchannel_logout_uri": "not a url"}),
            "backchannel_logout_uri",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "logo_url": "javascript:x"}),
            "logo_url",
        ),
    ];
    for (body, field) in cases {
        assert_error(
            &api.post("/clients", body).await,
            422,
            "invalid_field",
            Some(field),
        );
    }
    let (_, list) = api.get("/clients").await;
    assert_eq!(list["total"], 1, "nothing saved");
    // Plain http on a LAN host works, with a warning.
    let (s, lan) = api
        .post(
            "/clients",
            json!({"name": "LAN", "redirect_uris": ["http://192.168.1.5/cb"], "public": true}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(lan["warnings"].as_array().unwrap().len(), 1);
    assert!(
        lan.get("client_secret").is_none(),
        "public clients have no secret"
    );
    let lan_id = lan["client_id"].as_str().unwrap();
    assert_error(
        &api.post(&format!("/clients/{lan_id}/secret"), json!({}))
            .await,
        409,
        "conflict",
        Some("public"),
    );
    // Becoming confidential gives it a secret, once.
    let (s, now_conf) = api
        .patch(&format!("/clients/{lan_id}"), json!({"public": false}))
        .await;
    assert_eq!(s, 200, "{now_conf}");
    assert!(
        now_conf["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 43)
    );
    // Change settings.
    let (s, changed) = api
        .patch(
            &format!("/clients/{cid}"),
            json!({"skip_consent": true, "access_token_ttl": 300, "allowed_scopes": "openid email", "logo_url": null}),
        )
        .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["skip_consent"], true);
    assert_eq!(changed["access_token_ttl"], 300);
    assert_eq!(
        changed["token_endpoint_auth_method"], "client_secret_post",
        "untouched"
    );
    assert!(changed.get("client_secret").is_none());
    assert_error(
        &api.patch(
            &format!("/clients/{cid}"),
            json!({"redirect_uris": ["nope"]}),
        )
        .await,
        422,
        "invalid_field",
        Some("redirect_uris"),
    );
    // A new secret: the old one stops working, at once — also for the token endpoint's
    // cache of clients, which the request below fills.
    assert_eq!(revoke_status(&app, &cid, &secret).await, 200);
    let (s, rotated) = api.post(&format!("/clients/{cid}/secret"), json!({})).await;
    assert_eq!(s, 200);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(revoke_status(&app, &cid, &secret).await, 401);
    assert_eq!(revoke_status(&app, &cid, new_secret).await, 200);
    let stored = app
        .db
        .read_blocking(|c| portcullis::store::clients::by_id(c, &cid))
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.secret_hash.unwrap(),
        portcullis::crypto::secret::hash_token(new_secret)
    );
    // Delete: the token endpoint no longer knows it either.
    assert_eq!(api.delete(&format!("/clients/{cid}")).await.0, 204);
    assert_eq!(revoke_status(&app, &cid, new_secret).await, 401);
    assert_error(
        &api.get(&format!("/clients/{cid}")).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &api.delete(&format!("/clients/{cid}")).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &api.post("/clients/nope/secret", json!({})).await,
        404,
        "not_found",
        None,
    );
}

#[tokio::test]
async fn signing_keys_are_listed_and_rotated() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    let (s, keys) = api.get("/keys").await;
    assert_eq!(s, 200);
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k["state"] == "active"));
    let (s, rotated) = api.post("/keys/rotate", json!({})).await;
    assert_eq!(s, 201, "{rotated}");
    assert_eq!(rotated["published"].as_array().unwrap().len(), 3);
    let states: Vec<&str> = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "next").count(), 3);
    let (s, now) = api.post("/keys/rotate", json!({"immediately": true})).await;
    assert_eq!(s, 201);
    assert!(
        now["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "retired")
    );
    assert_error(
        &api.post("/keys/rotate", json!({"immediately": "yes"}))
            .await,
        400,
        "invalid_request",
        None,
    );
    let (_, audit) = api.get("/audit?kind=keys").await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_audit_log_filters_and_pages() {
    let app = TestApp::spawn().await;
    let api = Api::new(&app);
    app.add_user("alice", &[], false);
    for _ in 0..3 {
        app.sign_in(&app.browser(), "alice").await;
    }
    app.sign_in_at(&app.browser(), "/login", "alice", "wrong password")
        .await;
    let (_, all) = api.get("/audit?user=alice&kind=login").await;
    let kinds: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "login.failed",
            "login.succeeded",
            "login.succeeded",
            "login.succeeded"
        ]
    );
    assert_eq!(all["events"][0]["user_name"], "alice");
    let (_, page) = api.get("/audit?kind=login.succeeded&limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_i64().unwrap();
    let (_, rest) = api
        .get(&format!(
            "/audit?kind=login.succeeded&limit=2&before={next}"
        ))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    let t = app.clock_now();
    let (_, none) = api.get(&format!("/audit?since={}", t + 10)).await;
    assert_eq!(none["events"], json!([]));
}
