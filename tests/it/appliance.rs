//! Health, first-run setup, restart on the same data dir, refusal of a newer schema.

use crate::support::*;

#[tokio::test]
async fn health_reports_ok_with_a_real_database_check() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/health", app.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/login", "/does-not-exist", "/static/app.css"] {
        let r = reqwest::get(format!("{}{path}", app.url)).await.unwrap();
        let h = r.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert!(h.get("referrer-policy").is_some(), "{path}");
        assert!(h.get("x-request-id").is_some(), "{path}");
    }
}

#[tokio::test]
async fn static_files_have_etags_and_revalidate() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/static/app.css", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let again = client
        .get(format!("{}/static/app.css", app.url))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn unknown_paths_get_a_page_for_browsers_and_json_for_api_clients() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let html = client
        .get(format!("{}/nope", app.url))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 404);
    assert!(html.text().await.unwrap().contains("Page not found"));
    let json = client
        .get(format!("{}/nope", app.url))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    let v: serde_json::Value = json.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
}

#[tokio::test]
async fn first_run_setup_creates_the_administrator_end_to_end() {
    let app = TestApp::spawn().await;
    let link = portcullis::server::setup_link_if_needed(&app.state)
        .unwrap()
        .expect("no admin yet");
    let path = link
        .strip_prefix(&app.config.public_url)
        .unwrap()
        .to_string();
    let token = path.split("token=").nth(1).unwrap().to_string();
    let browser = app.browser();
    let page = browser
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    let csrf = crate::support::csrf_from(&body);

    // A common password is refused and nothing is created.
    let weak = browser
        .post(format!("{}/setup", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", &token),
            ("username", "admin"),
            ("email", "admin@example.com"),
            ("password", "password123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    assert!(weak.text().await.unwrap().contains("too common"));

    let ok = browser
        .post(format!("{}/setup", app.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", &token),
            ("username", "admin"),
            ("email", "admin@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303, "{:?}", ok.text().await);
    assert!(
        app.db
            .read_blocking(portcullis::store::users::any_admin)
            .unwrap()
    );

    // Single use: the link no longer works, and no new link is made once an admin exists.
    let again = browser
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert!(
        portcullis::server::setup_link_if_needed(&app.state)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn setup_link_expires_after_an_hour() {
    let app = TestApp::spawn().await;
    let link = portcullis::server::setup_link_if_needed(&app.state)
        .unwrap()
        .unwrap();
    let path = link
        .strip_prefix(&app.config.public_url)
        .unwrap()
        .to_string();
    app.clock.advance(3601);
    let r = reqwest::get(format!("{}{path}", app.url)).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_second_start_on_the_same_data_dir_keeps_the_data() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let jwks_before = reqwest::get(format!("{}/jwks", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Stop the first server, then start a new one on the same data dir.
    let data_dir = app.dir.path().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    app.db.checkpoint();
    drop(app);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = test_config(dir.path(), port);
    let app2 = TestApp::start(dir, listener, config).await;
    let alice = app2
        .db
        .read_blocking(|c| portcullis::store::users::by_username(c, "alice"))
        .unwrap();
    assert!(alice.is_some());
    let jwks_after = reqwest::get(format!("{}/jwks", app2.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "signing keys survive a restart");
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 9999).unwrap();
    }
    let err = portcullis::store::Db::open(&path)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("newer"), "{err}");
}
