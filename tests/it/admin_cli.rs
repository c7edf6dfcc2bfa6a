//! The administration commands of the built binary: users, groups, applications, API keys
//! and the audit log, with `--json` for scripts and one line on stderr for bad input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn command(data_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_ARGON2_MEMORY_KIB", "64")
        .env("PORTCULLIS_ARGON2_ITERATIONS", "1");
    cmd
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(data_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = command(data_dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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

/// Runs and expects success; returns stdout.
fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (code, out, err) = run(dir, args, None);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Runs and expects failure with one line on stderr containing `needle`.
fn fails(dir: &std::path::Path, args: &[&str], needle: &str) {
    let (code, _, err) = run(dir, args, None);
    assert_ne!(code, 0, "{args:?} should fail");
    assert!(
        err.contains(needle) && err.trim().lines().count() == 1,
        "{args:?}: {err}"
    );
}

#[test]
fn users_and_groups_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = run(
        d,
        &[
            "user",
            "add",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let g = json(
        d,
        &[
            "group",
            "add",
            "family",
            "--description",
            "Everyone",
            "--json",
        ],
    );
    assert_eq!(g["name"], "family");
    fails(d, &["group", "add", "family"], "name");
    fails(d, &["group", "add", "a/b"], "name");
    ok(d, &["group", "add-member", "family", "alice"]);
    fails(d, &["group", "add-member", "family", "nobody"], "nobody");
    let groups = json(d, &["group", "list", "--json"]);
    assert_eq!(groups[0]["members"], 1);
    let members = json(d, &["group", "members", "family", "--json"]);
    assert_eq!(members[0]["username"], "alice");

    let u = json(d, &["user", "show", "alice", "--json"]);
    assert_eq!(u["groups"], serde_json::json!(["family"]));
    assert_eq!(u["has_password"], true);
    let u = json(
        d,
        &[
            "user",
            "edit",
            "alice",
            "--name",
            "Alice Liddell",
            "--email-verified",
            "true",
            "--remove-group",
            "family",
            "--claims",
            "{\"quota\": \"5 GB\"}",
            "--json",
        ],
    );
    assert_eq!(u["display_name"], "Alice Liddell");
    assert_eq!(u["groups"], serde_json::json!([]));
    assert_eq!(u["claims"]["quota"], "5 GB");
    fails(
        d,
        &["user", "edit", "alice", "--email", "not-an-address"],
        "email",
    );
    fails(d, &["user", "edit", "alice", "--claims", "[1]"], "claims");
    fails(
        d,
        &["user", "edit", "alice", "--add-group", "nosuch"],
        "groups",
    );
    fails(d, &["user", "show", "nobody"], "no user named");

    let list = json(d, &["user", "list", "--search", "ali", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(ok(d, &["user", "list"]).contains("alice"));

    ok(d, &["user", "disable", "alice"]);
    assert_eq!(
        json(d, &["user", "show", "alice", "--json"])["disabled"],
        true
    );
    ok(d, &["user", "enable", "alice"]);
    assert_eq!(
        json(d, &["user", "show", "alice", "--json"])["disabled"],
        false
    );
    let link = ok(d, &["user", "invite", "alice", "--allow-password"]);
    assert!(
        link.trim()
            .starts_with("http://localhost:8080/invite?token="),
        "{link}"
    );

    // The last administrator is protected here too.
    let (code, _, err) = run(
        d,
        &[
            "user",
            "add",
            "--username",
            "root",
            "--admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    fails(d, &["user", "disable", "root"], "last administrator");
    fails(d, &["group", "delete", "admins"], "admins");

    ok(d, &["user", "delete", "alice"]);
    fails(d, &["user", "delete", "alice"], "no user named");
    ok(d, &["group", "delete", "family"]);
    fails(d, &["group", "delete", "family"], "no group named");
}

#[test]
fn applications_api_keys_and_the_audit_log_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = json(
        d,
        &[
            "client",
            "add",
            "--name",
            "Grafana",
            "--redirect-uri",
            "https://g.example.com/cb",
            "--json",
        ],
    );
    let id = c["client_id"].as_str().unwrap().to_string();
    let edited = json(
        d,
        &[
            "client",
            "edit",
            &id,
            "--name",
            "Grafana (home)",
            "--skip-consent",
            "true",
            "--redirect-uri",
            "http://192.168.1.9:3000/login/generic_oauth",
            "--json",
        ],
    );
    assert_eq!(edited["name"], "Grafana (home)");
    assert_eq!(edited["skip_consent"], true);
    assert!(edited.get("client_secret").is_none(), "the secret stays");
    fails(
        d,
        &["client", "edit", &id, "--redirect-uri", "nope"],
        "redirect_uris",
    );
    fails(
        d,
        &["client", "edit", "nosuch", "--name", "x"],
        "no application",
    );
    let (code, _, err) = run(d, &["client", "edit", &id, "--scopes", "openid"], None);
    assert_eq!(code, 0);
    assert!(
        err.contains("plain http"),
        "the warning stays visible: {err}"
    );
    let rotated = json(d, &["client", "rotate-secret", &id, "--json"]);
    assert!(rotated["client_secret"].as_str().unwrap().len() >= 43);

    // API keys: made once, listed without the key, revoked.
    let k = json(d, &["apikey", "create", "--name", "ansible", "--json"]);
    let key = k["key"].as_str().unwrap();
    assert!(key.starts_with("pck_"));
    let keys = json(d, &["apikey", "list", "--json"]);
    assert_eq!(keys[0]["name"], "ansible");
    assert!(keys[0]["revoked_at"].is_null());
    assert!(!serde_json::to_string(&keys).unwrap().contains(key));
    ok(d, &["apikey", "revoke", k["id"].as_str().unwrap()]);
    assert!(json(d, &["apikey", "list", "--json"])[0]["revoked_at"].is_i64());
    fails(d, &["apikey", "revoke", "nosuch"], "no API key");
    fails(d, &["apikey", "create", "--name", ""], "name");

    ok(d, &["client", "delete", &id]);
    fails(d, &["client", "delete", &id], "no application");

    // The audit log names the command line as the actor, oldest first.
    let out = ok(d, &["audit", "tail", "-n", "3", "--json"]);
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["apikey.created", "apikey.revoked", "client.deleted"]
    );
    let text = ok(d, &["audit", "tail", "--kind", "client"]);
    assert!(
        text.contains("client.created") && text.contains("by=cli"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5, "{text}");

    // --follow prints new events as they happen.
    let mut child = command(d, &["audit", "tail", "-n", "0", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok(d, &["group", "add", "latecomers"]);
    let line = rx.recv_timeout(std::time::Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a line within 10 seconds");
    assert!(line.contains("group.created"), "{line}");
}
