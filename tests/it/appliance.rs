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

/// The dependencies' `name version` lines of Cargo.lock, sorted (this crate left out), then
/// the `[dependencies]` table of Cargo.toml (the features chosen), as SHA-256 hex: what
/// `benches/startup_symbols.sh` records, since symbol names change with both.
fn dependency_fingerprint(lock: &str, manifest: &str) -> String {
    use sha2::Digest;
    let mut packages: Vec<String> = Vec::new();
    let (mut name, mut version) = (None::<String>, None::<String>);
    for line in lock.lines().chain(std::iter::once("[[package]]")) {
        if line == "[[package]]" {
            if let (Some(n), Some(v)) = (name.take(), version.take())
                && n != "portcullis"
            {
                packages.push(format!("{n} {v}"));
            }
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            version = Some(v.trim_matches('"').to_string());
        }
    }
    packages.sort();
    let deps: Vec<&str> = manifest
        .lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let text = format!("{}\n--\n{}", packages.join("\n"), deps.join("\n"));
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The plain path segments of a legacy-mangled Rust symbol (`_ZN10portcullis5store…E`), up to
/// the first one that is not an identifier (an impl block, a closure) or the hash.
fn plain_segments(symbol: &str) -> Vec<String> {
    let mut rest = symbol.strip_prefix("_ZN").unwrap_or("");
    let mut out = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0) {
        let len: usize = rest[..digits].parse().unwrap();
        let Some(seg) = rest.get(digits..digits + len) else {
            break;
        };
        rest = &rest[digits + len..];
        let is_hash = seg.len() == 17 && seg.starts_with('h');
        if is_hash || !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            break;
        }
        out.push(seg.to_string());
    }
    out
}

/// `build.rs` gives the release link `packaging/startup-symbols.txt` (idle memory: issue 2),
/// a list of mangled names that only holds for the rustc, the dependency versions and the
/// code paths it was made with; a stale list costs ~5 MB of idle memory with no other sign.
/// So a stale list fails here, in every test run.
#[test]
fn the_release_link_order_is_not_stale() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join("packaging/startup-symbols.txt")).unwrap();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let hint = "run benches/startup_symbols.sh (about 6 minutes) and commit the new list";
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let rustc = rustc.split_whitespace().nth(1).unwrap_or("?");
    assert!(
        list.lines()
            .take(5)
            .any(|l| l.contains(&format!("with rustc {rustc}"))),
        "packaging/startup-symbols.txt was made with another rustc than {rustc}: {hint}"
    );
    let deps = dependency_fingerprint(&lock, &manifest);
    assert!(
        list.lines()
            .take(5)
            .any(|l| l.contains(&format!("dependencies {deps}"))),
        "packaging/startup-symbols.txt was made with other dependency versions or features (Cargo.lock, Cargo.toml): {hint}"
    );
    let mut gone = Vec::new();
    let ours: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("_ZN10portcullis"))
        .collect();
    for symbol in &ours {
        let segs = plain_segments(symbol);
        // The longest prefix of the path that is a module file, then the item in it.
        let module = (1..segs.len()).rev().find_map(|n| {
            let path = segs[1..n].join("/");
            let candidates = if path.is_empty() {
                vec![root.join("src/lib.rs"), root.join("src/main.rs")]
            } else {
                vec![
                    root.join(format!("src/{path}.rs")),
                    root.join(format!("src/{path}/mod.rs")),
                ]
            };
            candidates
                .into_iter()
                .find(|p| p.exists())
                .map(|p| (p, segs.get(n).cloned()))
        });
        let found = module.is_some_and(|(file, item)| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            item.is_none_or(|i| {
                text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == i)
            })
        });
        if !found {
            gone.push(segs.join("::"));
        }
    }
    assert!(
        gone.is_empty(),
        "{} of the {} functions of this crate in packaging/startup-symbols.txt moved or are gone \
         (e.g. {:?}): {hint}",
        gone.len(),
        ours.len(),
        &gone[..gone.len().min(5)]
    );
}

/// The Debian package's unit is the hardened unit of INSTALL.md, with the binary where the
/// package puts it: nothing else may drift apart.
#[test]
fn the_debian_unit_is_the_documented_unit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plain = std::fs::read_to_string(root.join("packaging/portcullis.service")).unwrap();
    let deb = std::fs::read_to_string(root.join("packaging/debian/portcullis.service")).unwrap();
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.replace("/usr/local/bin/portcullis", "/usr/bin/portcullis"))
            .collect()
    };
    assert_eq!(settings(&plain), settings(&deb));
    assert!(deb.contains("ExecStart=/usr/bin/portcullis serve"));
}
