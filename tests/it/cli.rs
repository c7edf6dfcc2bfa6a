//! Smoke tests of the built binary: CLI commands, bad input (one clear line, non-zero exit),
//! a real server process on a real port, graceful shutdown on SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

pub fn portcullis(
    data_dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_ARGON2_MEMORY_KIB", "64")
        .env("PORTCULLIS_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_example_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = portcullis(dir.path(), &["config", "example"], None);
    assert_eq!(code, 0);
    assert!(out.contains("public_url = \"http://localhost:8080\""));
    let (code, out, _) = portcullis(dir.path(), &["config", "check"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("bind = \"127.0.0.1:8080\""));
}

#[test]
fn a_bad_setting_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .env("PORTCULLIS_BIND", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind") && err.lines().count() == 1, "{err}");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "public_url = [unclosed").unwrap();
    let out = Command::new(BIN)
        .args(["--config", file.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn user_add_json_then_list_and_client_add_json() {
    let dir = tempfile::tempdir().unwrap();
    // As in the console and the admin API, a user joins only groups that exist.
    let (code, _, err) = portcullis(
        dir.path(),
        &["user", "add", "--username", "alice", "--group", "family"],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("no group named \"family\"") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = portcullis(dir.path(), &["group", "add", "family"], None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = portcullis(
        dir.path(),
        &[
            "user",
            "add",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--group",
            "family",
            "--admin",
            "--password-stdin",
            "--json",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let user: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(user["username"], "alice");
    assert!(user["id"].is_string() && user["email"] == "alice@example.com");
    let (code, out, _) = portcullis(dir.path(), &["user", "list", "--json"], None);
    assert_eq!(code, 0);
    assert!(out.contains("alice"));
    // Duplicates and weak passwords: one line, non-zero.
    let (code, _, err) = portcullis(
        dir.path(),
        &["user", "add", "--username", "alice", "--password-stdin"],
        Some("another long passphrase\n"),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("username") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = portcullis(
        dir.path(),
        &["user", "add", "--username", "bob", "--password-stdin"],
        Some("password\n"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("password"), "{err}");

    let (code, out, err) = portcullis(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Immich",
            "--redirect-uri",
            "app.immich:///oauth-callback",
            "--redirect-uri",
            "https://photos.example.com/auth/login",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let client: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        client["client_id"].is_string() && client["client_secret"].as_str().unwrap().len() >= 43
    );
    assert_eq!(client["redirect_uris"][0], "app.immich:///oauth-callback");
    let (code, out, _) = portcullis(
        dir.path(),
        &[
            "client",
            "show",
            client["client_id"].as_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        !out.contains("client_secret"),
        "the secret is shown once only"
    );
    // A bad redirect URI is refused with the field named, nothing saved.
    let (code, _, err) = portcullis(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://x.example/cb#frag",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("redirect_uris"), "{err}");
    let (_, out, _) = portcullis(dir.path(), &["client", "list", "--json"], None);
    assert!(!out.contains("Bad"));
    // A reset link for the user.
    let (code, out, _) = portcullis(dir.path(), &["user", "reset-link", "alice"], None);
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("http://localhost:8080/reset?token="));
    // Keys.
    let (code, out, _) = portcullis(dir.path(), &["keys", "list", "--json"], None);
    assert_eq!(code, 0);
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 3);
}

#[test]
fn a_corrupt_database_or_unusable_data_dir_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.db"),
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let (code, _, err) = portcullis(dir.path(), &["user", "list"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("not a SQLite database") && err.trim().lines().count() == 1,
        "{err}"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, err) = portcullis(&file.join("data"), &["user", "list"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("data dir") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn backup_writes_a_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    portcullis(dir.path(), &["user", "add", "--username", "alice"], None);
    let dest = dir.path().join("backup");
    let (code, _, err) = portcullis(dir.path(), &["backup", dest.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(dest.join("portcullis.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM users WHERE username = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    let (code, _, err) = portcullis(dir.path(), &["backup", dest.to_str().unwrap()], None);
    assert_ne!(code, 0, "never overwrites");
    assert!(err.contains("already exists"));
}

/// Starts the real binary on a free port; returns the child and the port.
pub fn serve(dir: &std::path::Path, port: u16) -> std::process::Child {
    Command::new(BIN)
        .arg("serve")
        .env("PORTCULLIS_DATA_DIR", dir)
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("PORTCULLIS_ARGON2_MEMORY_KIB", "64")
        .env("PORTCULLIS_ARGON2_ITERATIONS", "1")
        .env("PORTCULLIS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_healthy(port: u16) {
    // Generous: under the whole suite's load a debug binary may take seconds to start.
    for _ in 0..800 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/health")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("server did not become healthy");
}

#[tokio::test]
async fn the_binary_serves_logs_a_setup_link_sees_cli_changes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve(dir.path(), port);
    wait_healthy(port).await;
    // The CLI works on the same data dir while the server runs.
    let (code, _, err) = portcullis(
        dir.path(),
        &["user", "add", "--username", "carol", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = b
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::support::csrf_from(&page);
    let r = b
        .post(format!("http://127.0.0.1:{port}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "carol"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // A second server on the same port fails with one line.
    let (code, _, err) = {
        let out = Command::new(BIN)
            .arg("serve")
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot listen") && err.trim().lines().count() == 1,
        "{err}"
    );

    // SIGTERM: graceful shutdown, exit 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("/setup?token="),
        "setup link printed: {stdout}"
    );
}

/// The kids of the RS256 keys a server publishes.
async fn published_kids(port: u16) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "RS256")
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// The kid that signs a client_credentials token from the server now.
async fn signing_kid(port: u16, id: &str, secret: &str) -> String {
    let t: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    crate::support::jwt_header(t["access_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn keys_rotated_by_the_cli_reach_the_running_server_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    // Without a server the CLI says nobody picked them up.
    let (code, out, err) = portcullis(dir.path(), &["keys", "rotate"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("No running server picked them up"), "{out}");

    let port = free_port();
    let mut child = serve(dir.path(), port);
    wait_healthy(port).await;
    let (code, out, err) = portcullis(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Svc",
            "--redirect-uri",
            "http://app.test/cb",
            "--client-credentials",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    );
    let before = signing_kid(port, id, secret).await;

    // A normal rotation: published at once, signing later.
    let (code, out, err) = portcullis(dir.path(), &["keys", "rotate"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("The running server serves them"), "{out}");
    let published = published_kids(port).await;
    assert!(
        published.len() >= 2,
        "the new key is in the JWKS now: {published:?}"
    );
    assert_eq!(signing_kid(port, id, secret).await, before);

    // After a leak: the new key signs at once, the old one no longer.
    let (code, out, err) = portcullis(dir.path(), &["keys", "rotate", "--immediately"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("The running server serves them"), "{out}");
    assert!(out.contains("sign from now on"), "{out}");
    let now_signing = signing_kid(port, id, secret).await;
    assert_ne!(now_signing, before, "the retired key stopped signing");
    assert!(published_kids(port).await.contains(&now_signing));
    let _ = child.kill();
    let _ = child.wait();
}
