//! Roles per application: the `roles` claim (only that app's, in the ID token and userinfo
//! for the `roles` scope, always in its access token), "only people with a role", Grafana's
//! role_attribute_path from the console evaluated by PyPI's `jmespath`, and the console, API
//! and CLI flows with their refusals.

use std::process::Command;

use portcullis::ops::Actor;
use portcullis::ops::clients::ClientInput;
use portcullis::ops::roles::{self, GranteeRef, RoleInput};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const CB: &str = "https://grafana.example.com/login/generic_oauth";

fn add_role(app: &TestApp, client: &str, name: &str) -> String {
    let now = app.clock_now();
    let input = RoleInput {
        name: name.into(),
        description: None,
    };
    app.db
        .try_write_blocking(|c| roles::create(c, &Actor::Cli, client, input, now))
        .unwrap()
        .id
}

fn grant(app: &TestApp, client: &str, role: &str, who: GranteeRef) {
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| roles::grant(c, &Actor::Cli, client, role, &who, now))
        .unwrap();
}

fn revoke(app: &TestApp, client: &str, role: &str, who: GranteeRef) {
    let now = app.clock_now();
    app.db
        .try_write_blocking(|c| roles::revoke(c, &Actor::Cli, client, role, &who, now))
        .unwrap();
}

async fn userinfo(app: &TestApp, at: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}/userinfo", app.url))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Grafana (Admin, Editor, Viewer; `editors` hold Editor through their group, alice Admin
/// directly) and a second app that also has an `Admin` role nobody holds.
struct Family {
    app: TestApp,
    grafana: (String, String),
    other: (String, String),
}

async fn family() -> Family {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    app.add_user("bob", &[], false);
    app.add_user("carol", &[], false);
    let now = app.clock_now();
    let group = app
        .db
        .try_write_blocking(|c| {
            portcullis::ops::groups::create(
                c,
                &Actor::Cli,
                portcullis::ops::groups::GroupInput {
                    name: "editors".into(),
                    description: None,
                    claims: serde_json::Map::new(),
                    require_passkey: false,
                },
                now,
            )
        })
        .unwrap();
    app.db
        .try_write_blocking(|c| {
            portcullis::ops::groups::add_member(c, &Actor::Cli, &group.id, "bob", now)
        })
        .unwrap();
    let grafana = app.confidential("Grafana", CB);
    let other = app.confidential("Wiki", "https://wiki.example.com/cb");
    for r in ["Admin", "Editor", "Viewer"] {
        add_role(&app, &grafana.0, r);
    }
    add_role(&app, &other.0, "Admin");
    grant(&app, &grafana.0, "Admin", GranteeRef::User("alice".into()));
    grant(
        &app,
        &grafana.0,
        "Editor",
        GranteeRef::Group("editors".into()),
    );
    Family {
        app,
        grafana,
        other,
    }
}

#[tokio::test]
async fn roles_reach_only_their_app_with_the_scope_and_always_in_its_access_token() {
    let f = family().await;
    let app = &f.app;
    let (gid, gsecret) = (&f.grafana.0, &f.grafana.1);

    let t = app
        .tokens_for(
            &app.browser(),
            "alice",
            gid,
            Some(gsecret),
            CB,
            "openid roles",
        )
        .await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(id["roles"], json!(["Admin"]));
    assert_eq!(jwt_claims(at)["roles"], json!(["Admin"]));
    assert_eq!(userinfo(app, at).await["roles"], json!(["Admin"]));

    // Through a group, and without the scope: the access token still carries them.
    let t = app
        .tokens_for(
            &app.browser(),
            "bob",
            gid,
            Some(gsecret),
            CB,
            "openid profile",
        )
        .await;
    assert!(
        jwt_claims(t["id_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["roles"], json!(["Editor"]));
    assert!(userinfo(app, at).await.get("roles").is_none());

    // The wiki also has an Admin role; alice holds Grafana's, not the wiki's.
    let t = app
        .tokens_for(
            &app.browser(),
            "alice",
            &f.other.0,
            Some(&f.other.1),
            "https://wiki.example.com/cb",
            "openid roles",
        )
        .await;
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["roles"],
        json!([])
    );
    assert_eq!(
        jwt_claims(t["access_token"].as_str().unwrap())["roles"],
        json!([])
    );

    // An app without roles: no claim at all, even when asked for.
    let (plain, psecret) = app.confidential("Plain", "https://plain.example.com/cb");
    let t = app
        .tokens_for(
            &app.browser(),
            "alice",
            &plain,
            Some(&psecret),
            "https://plain.example.com/cb",
            "openid roles",
        )
        .await;
    assert!(
        jwt_claims(t["id_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
    assert!(
        jwt_claims(t["access_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
}

/// The `role_attribute_path = …` line of the console's Grafana snippet, as shown.
async fn grafana_line(
    app: &TestApp,
    admin: &reqwest::Client,
    client: &str,
    key: &str,
) -> Option<String> {
    let (status, html) = app.page(admin, &format!("/admin/apps/{client}")).await;
    assert_eq!(status, 200);
    let prefix = format!("{key} = ");
    html.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| {
        // What a browser shows of askama's escapes.
        [
            ("&#38;", "&"),
            ("&#39;", "'"),
            ("&#34;", "\""),
            ("&#60;", "<"),
            ("&#62;", ">"),
            ("&amp;", "&"),
        ]
        .iter()
        .fold(v.to_string(), |t, (from, to)| t.replace(from, to))
    })
}

/// Evaluates a JMESPath expression with the `jmespath` package (the language Grafana uses).
fn jmespath(expr: &str, doc: &Value) -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jmespath; print(json.dumps(jmespath.search(sys.argv[1], json.loads(sys.argv[2]))))",
            expr,
            &doc.to_string(),
        ])
        .output()
        .expect("python3 runs (with the jmespath package: python3-jmespath)");
    assert!(
        out.status.success(),
        "jmespath failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn grafanas_role_attribute_path_from_the_console_picks_each_persons_role() {
    let f = family().await;
    let app = &f.app;
    let admin = app.admin_browser().await;
    let (gid, gsecret) = (&f.grafana.0, &f.grafana.1);
    let expr = grafana_line(app, &admin, gid, "role_attribute_path")
        .await
        .unwrap();
    assert!(!expr.contains("groups"), "{expr}");
    assert_eq!(
        grafana_line(app, &admin, gid, "role_attribute_strict")
            .await
            .as_deref(),
        Some("true")
    );
    let scopes = grafana_line(app, &admin, gid, "scopes").await.unwrap();
    assert!(scopes.split(' ').any(|s| s == "roles"), "{scopes}");

    // carol holds no role and the app has a Viewer role she lacks: no Grafana role at all,
    // which role_attribute_strict turns into a refusal. Then she is given Viewer.
    let t = app
        .tokens_for(&app.browser(), "carol", gid, Some(gsecret), CB, &scopes)
        .await;
    let info = userinfo(app, t["access_token"].as_str().unwrap()).await;
    // `false`, not a role name: Grafana reads no role from it.
    assert!(!jmespath(&expr, &info).is_string(), "{info}");
    grant(app, gid, "Viewer", GranteeRef::User("carol".into()));
    for (who, want) in [("alice", "Admin"), ("bob", "Editor"), ("carol", "Viewer")] {
        let t = app
            .tokens_for(&app.browser(), who, gid, Some(gsecret), CB, &scopes)
            .await;
        let info = userinfo(app, t["access_token"].as_str().unwrap()).await;
        assert_eq!(jmespath(&expr, &info), json!(want), "{who}: {info}");
    }

    // Without a Viewer role, people holding none of them are Viewers (unless a role is
    // required); a Grafana-only role name in another case maps to Grafana's spelling.
    let (id2, s2) = app.confidential("Grafana 2", CB);
    add_role(app, &id2, "editor");
    grant(app, &id2, "editor", GranteeRef::User("bob".into()));
    let expr = grafana_line(app, &admin, &id2, "role_attribute_path")
        .await
        .unwrap();
    for (who, want) in [("bob", "Editor"), ("carol", "Viewer")] {
        let t = app
            .tokens_for(&app.browser(), who, &id2, Some(&s2), CB, "openid roles")
            .await;
        let info = userinfo(app, t["access_token"].as_str().unwrap()).await;
        assert_eq!(jmespath(&expr, &info), json!(want), "{who}: {info}");
    }
}

#[tokio::test]
async fn only_people_with_a_role_may_sign_in_when_the_app_says_so() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    app.add_user("carol", &[], false);
    let (id, secret) = app.add_client(ClientInput {
        name: "Tools".into(),
        redirect_uris: vec![CB.into()],
        skip_consent: true,
        require_role: true,
        ..Default::default()
    });
    let secret = secret.unwrap();
    add_role(&app, &id, "operator");
    grant(&app, &id, "operator", GranteeRef::User("alice".into()));

    // carol: the same 403 page as a group restriction, naming the fix.
    let b = app.browser();
    let mut u = url::Url::parse(&format!("{}/authorize", app.url)).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &id)
        .append_pair("redirect_uri", CB)
        .append_pair("scope", "openid")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let login = app.abs(&location(&b.get(u.as_str()).send().await.unwrap()));
    let r = app.sign_in_at(&b, &login, "carol", PASSWORD).await;
    let r = b.get(app.abs(&location(&r))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("No access to this app"), "{body}");
    assert!(body.contains("give you a role in Tools"), "{body}");
    let events = app.audit_events("authorize.denied_role");
    assert_eq!(events.len(), 1);

    // alice signs in; once her role is revoked, her refresh token stops working.
    let t = app
        .tokens_for(
            &app.browser(),
            "alice",
            &id,
            Some(&secret),
            CB,
            "openid offline_access",
        )
        .await;
    let rt = t["refresh_token"].as_str().unwrap();
    revoke(&app, &id, "operator", GranteeRef::User("alice".into()));
    let r = reqwest::Client::new()
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
}

struct Api<'a> {
    app: &'a TestApp,
    key: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = reqwest::Client::new()
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
}

#[tokio::test]
async fn the_admin_api_defines_grants_and_deletes_roles_and_refuses_bad_input() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    let now = app.clock_now();
    let key = app
        .db
        .try_write_blocking(|c| portcullis::ops::api_keys::create(c, &Actor::Cli, "t", now))
        .unwrap()
        .1;
    let api = Api { app: &app, key };
    let (gid, _) = app.confidential("Grafana", CB);
    let (wid, _) = app.confidential("Wiki", "https://wiki.example.com/cb");
    let base = format!("/clients/{gid}/roles");

    let (s, r) = api
        .call(
            Method::POST,
            &base,
            Some(json!({"name": "Editor", "description": "Edits dashboards"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let editor = r["id"].as_str().unwrap().to_string();
    for (name, status, code) in [
        ("editor", 409, "conflict"),
        ("two words", 422, "invalid_field"),
        ("a,b", 422, "invalid_field"),
        ("", 422, "invalid_field"),
    ] {
        let (s, e) = api
            .call(Method::POST, &base, Some(json!({"name": name})))
            .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{name}: {e}"
        );
        assert_eq!(e["field"], "name", "{e}");
    }
    // A role of another app cannot be granted here.
    let (s, r) = api
        .call(
            Method::POST,
            &format!("/clients/{wid}/roles"),
            Some(json!({"name": "Admin"})),
        )
        .await;
    assert_eq!(s, 201);
    let wiki_admin = r["id"].as_str().unwrap();
    let (s, e) = api
        .call(
            Method::PUT,
            &format!("{base}/{wiki_admin}/users/alice"),
            None,
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("role of Wiki"),
        "{e}"
    );

    let (s, _) = api
        .call(Method::PUT, &format!("{base}/Editor/users/alice"), None)
        .await;
    assert!(s == 200 || s == 204, "{s}");
    let (s, held) = api
        .call(Method::GET, &format!("/users/{}/roles", alice.id), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(held["roles"][0]["role"], "Editor");
    assert_eq!(held["roles"][0]["client_id"], gid.as_str());

    // Deleting a granted role needs the confirmation, then revokes it from everyone.
    let (s, e) = api
        .call(Method::DELETE, &format!("{base}/{editor}"), None)
        .await;
    assert_eq!(s, 409, "{e}");
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("{base}/{editor}?revoke_grants=true"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, held) = api
        .call(Method::GET, &format!("/users/{}/roles", alice.id), None)
        .await;
    assert_eq!(held["roles"], json!([]));
    let (s, _) = api
        .call(Method::GET, &format!("{base}/{editor}"), None)
        .await;
    assert_eq!(s, 404);
    let kinds: Vec<String> = app
        .audit_events("role")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for k in ["role.created", "role.granted", "role.deleted"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn the_console_roles_tab_adds_grants_shows_and_deletes_with_confirmation() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &[], false);
    let admin = app.admin_browser().await;
    let (gid, _) = app.confidential("Grafana", CB);
    let tab = format!("/admin/apps/{gid}/roles");
    assert!(
        app.text_at(&admin, &format!("/admin/apps/{gid}"))
            .await
            .contains(&tab)
    );

    let r = app
        .submit(
            &admin,
            &tab,
            &tab,
            &[("name", "Editor"), ("description", "Edits dashboards")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .submit(
            &admin,
            &tab,
            &tab,
            &[("name", "EDITOR"), ("description", "kept")],
        )
        .await;
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("value=\"EDITOR\"") && body.contains("value=\"kept\""),
        "typed values kept"
    );
    let r = app
        .submit(&admin, &tab, &tab, &[("name", "read only")])
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("cannot contain spaces or commas")
    );

    let role_id = {
        let (_, html) = app.page(&admin, &tab).await;
        let start = html.find("/roles/").unwrap() + "/roles/".len();
        html[start..].split('/').next().unwrap().to_string()
    };
    let who = format!("user:{}", alice.id);
    let r = app
        .submit(
            &admin,
            &tab,
            &format!("{tab}/{role_id}/grant"),
            &[("who", &who)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = app.page(&admin, &tab).await;
    assert!(html.contains("alice"), "holder listed");
    let user_page = app
        .text_at(&admin, &format!("/admin/users/{}", alice.id))
        .await;
    assert!(user_page.contains("Roles in apps") && user_page.contains("<code>Editor</code>"));

    // Delete: asked first; without the tick nothing happens.
    let del = format!("{tab}/{role_id}/delete");
    let (s, page) = app.page(&admin, &del).await;
    assert_eq!(s, 200);
    assert!(page.contains("revoke it from everyone"));
    let r = app.submit(&admin, &del, &del, &[]).await;
    assert_eq!(r.status(), 422);
    assert!(app.text_at(&admin, &tab).await.contains("Editor"));
    let r = app.submit(&admin, &del, &del, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), 303);
    let html = app.text_at(&admin, &tab).await;
    assert!(html.contains("No roles yet"), "{html}");

    // The audit page: the same filters, each kind in words.
    let (_, audit) = app
        .page(&admin, "/admin/audit?action=role.*&app=grafana")
        .await;
    for words in [
        "Role defined",
        "Role granted",
        "Role deleted (and revoked from everyone)",
    ] {
        assert!(audit.contains(words), "{words}");
    }
    assert!(!audit.contains("Signed in<"), "only role events");
    let (_, audit) = app.page(&admin, "/admin/audit?kind=role&user=alice").await;
    assert!(audit.contains("Role granted") && !audit.contains("Role defined"));
    let user_page = app
        .text_at(&admin, &format!("/admin/users/{}", alice.id))
        .await;
    assert!(user_page.contains("They hold no role in any app"));
}

/// Runs the built binary on `dir`; returns (exit code, stdout, stderr).
fn cli(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_DATA_DIR", dir)
        .env("PORTCULLIS_ARGON2_MEMORY_KIB", "64")
        .env("PORTCULLIS_ARGON2_ITERATIONS", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_adds_lists_grants_revokes_and_deletes_roles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let (code, out, err) = cli(d, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let fails = |args: &[&str], needle: &str| {
        let (code, out, err) = cli(d, args);
        assert_ne!(code, 0, "{args:?} succeeded: {out}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    ok(&["migrate"]);
    ok(&["user", "add", "--username", "alice"]);
    ok(&["group", "add", "editors"]);
    ok(&["client", "add", "--name", "Grafana", "--redirect-uri", CB]);
    ok(&[
        "role",
        "add",
        "--app",
        "Grafana",
        "Admin",
        "--description",
        "Everything",
    ]);
    ok(&["role", "add", "--app", "Grafana", "Editor"]);
    fails(&["role", "add", "--app", "Grafana", "admin"], "already");
    fails(
        &["role", "add", "--app", "Grafana", "read only"],
        "spaces or commas",
    );
    fails(&["role", "add", "--app", "Nope", "Admin"], "Nope");
    let out = ok(&[
        "role", "grant", "--app", "Grafana", "--user", "alice", "Admin",
    ]);
    assert!(out.contains("granted Admin"), "{out}");
    ok(&[
        "role", "grant", "--app", "Grafana", "--group", "editors", "Editor",
    ]);
    fails(
        &[
            "role", "grant", "--app", "Grafana", "--user", "alice", "Viewer",
        ],
        "no role named",
    );
    let list: Value =
        serde_json::from_str(&ok(&["role", "list", "--app", "Grafana", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admin", "Editor"]);
    fails(
        &["role", "delete", "--app", "Grafana", "Editor"],
        "--revoke-grants",
    );
    let out = ok(&[
        "role",
        "delete",
        "--app",
        "Grafana",
        "Editor",
        "--revoke-grants",
    ]);
    assert!(out.contains("revoked it from 1"), "{out}");
    ok(&[
        "role", "revoke", "--app", "Grafana", "--user", "alice", "Admin",
    ]);
    let list: Value =
        serde_json::from_str(&ok(&["role", "list", "--app", "Grafana", "--json"])).unwrap();
    assert_eq!(list[0]["grants"], 0);
}

#[test]
fn every_audit_kind_the_code_records_has_words_on_the_console() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut kinds = std::collections::BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // `kind: "a.b"` (store::audit::NewEvent) and `record(conn, actor, "a.b", …)` (ops).
        for (i, _) in text
            .match_indices("kind: \"")
            .chain(text.match_indices("record("))
        {
            let window: String = text[i..].chars().take(160).collect();
            if let Some(start) = window.find('"') {
                let lit: String = window[start + 1..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                let mut parts = lit.split('.');
                if let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next())
                    && !a.is_empty()
                    && !b.is_empty()
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                {
                    kinds.insert(lit);
                }
            }
        }
    }
    assert!(
        kinds.contains("role.granted") && kinds.contains("login.failed"),
        "{kinds:?}"
    );
    let missing: Vec<_> = kinds
        .iter()
        .filter(|k| portcullis::admin::audit::describe(k).is_empty())
        .collect();
    assert!(
        missing.is_empty(),
        "no words on the audit page for {missing:?}"
    );
}
