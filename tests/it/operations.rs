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
