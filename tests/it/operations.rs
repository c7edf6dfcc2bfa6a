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
