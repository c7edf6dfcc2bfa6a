//! What an attacker and real relying parties found (issue 14), each as the request that
//! showed it, against the real server.

use crate::support::*;

/// "Return to" values a browser would follow off-site, typed or percent-encoded.
pub const HOSTILE_NEXT: &[&str] = &[
    "/\t/127.0.0.1:9/x",
    "/\r/evil.example",
    "/\n/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/%0d%0aSet-Cookie:x=y",
    "https:/\\evil.example",
    "https://root@evil.example/",
    "//user:pw@evil.example/",
    "javascript:alert(1)",
    "https://evil.example/",
    "\\\\evil.example",
];

/// A Location we send must be a path on this server.
pub fn assert_local(location: &str, what: &str) {
    assert!(
        location.starts_with('/')
            && !location.starts_with("//")
            && !location.contains(|c: char| c.is_control() || c.is_whitespace() || c == '\\'),
        "{what}: not a local path: {location:?}"
    );
}

#[tokio::test]
async fn next_after_sign_in_never_leaves_the_server() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    for bad in HOSTILE_NEXT {
        let login = format!("/login?next={}", portcullis::ui::enc(bad));
        // Signed out: the page carries no hostile value in its form or passkey box…
        let b = app.browser();
        let (status, page) = app.page(&b, &login).await;
        assert_eq!(status, 200);
        assert_eq!(input_value(&page, "next").as_deref(), Some(""), "{bad:?}");
        assert!(page.contains("data-next=\"\""), "{bad:?}");
        // …and a POST that carries one anyway (a crafted form) goes to a local page.
        let csrf = csrf_from(&page);
        let r = app
            .post_form(
                &b,
                "/login",
                &[
                    ("csrf", &csrf),
                    ("next", bad),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "{bad:?}");
        assert_local(&location(&r), bad);
        assert_eq!(location(&r), "/account", "{bad:?}");
        // Signed in: GET /login?next=… redirects at once, locally.
        let r = b.get(app.abs(&login)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{bad:?}");
        assert_eq!(location(&r), "/account", "{bad:?}");
    }
}

#[tokio::test]
async fn a_local_next_is_followed_after_sign_in() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], true);
    let b = app.browser();
    let r = app
        .sign_in_at(
            &b,
            "/login?next=%2Fadmin%2Fusers%3Fq%3Dal",
            "alice",
            PASSWORD,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/users?q=al");
}

#[tokio::test]
async fn the_console_back_value_is_a_console_path_or_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_browser().await;
    let alice = app.add_user("alice", &[], false);
    let hostile = HOSTILE_NEXT.iter().copied();
    for back in hostile.chain(["/admin//evil.example", "/admin/users?x=1"]) {
        let other = app.browser();
        assert_eq!(app.sign_in(&other, "alice").await.status(), 303);
        let uid = alice.id.clone();
        let sid = app
            .db
            .read_blocking(move |c| portcullis::store::sessions::list_for_user(c, &uid, 0))
            .unwrap()[0]
            .sid
            .clone();
        let r = app
            .submit(
                &admin,
                "/admin/sessions",
                "/admin/sessions/end",
                &[("sid", &sid), ("back", back)],
            )
            .await;
        assert_eq!(r.status(), 303, "{back:?}");
        assert_eq!(location(&r), "/admin/sessions?done=ended", "{back:?}");
    }
    // A console page is still where the button returns to.
    let other = app.browser();
    assert_eq!(app.sign_in(&other, "alice").await.status(), 303);
    let uid = alice.id.clone();
    let sid = app
        .db
        .read_blocking(move |c| portcullis::store::sessions::list_for_user(c, &uid, 0))
        .unwrap()[0]
        .sid
        .clone();
    let back = format!("/admin/users/{}", alice.id);
    let r = app
        .submit(
            &admin,
            "/admin/sessions",
            "/admin/sessions/end",
            &[("sid", &sid), ("back", &back)],
        )
        .await;
    assert_eq!(location(&r), format!("{back}?done=session"));
}
