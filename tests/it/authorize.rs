//! The authorization endpoint's checks, one test per rule (RFC 6749 §4.1, OIDC Core §3.1.2,
//! RFC 7636, RFC 9207).

use crate::support::*;
use portcullis::ops::clients::ClientInput;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn setup() -> (TestApp, String, reqwest::Client) {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Immich".into(),
        redirect_uris: vec![
            "http://app.test/cb".into(),
            "app.immich:///oauth-callback".into(),
        ],
        skip_consent: true,
        ..Default::default()
    });
    let b = app.browser();
    (app, cid, b)
}

fn url(app: &TestApp, query: &str) -> String {
    format!("{}/authorize?{query}", app.url)
}

fn base(cid: &str) -> String {
    format!(
        "response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256"
    )
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_shows_a_page_and_never_redirects() {
    let (app, cid, b) = setup().await;
    for q in [
        "response_type=code&client_id=nope&redirect_uri=http%3A%2F%2Fapp.test%2Fcb".to_string(),
        format!("response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fevil.test%2Fcb"),
        format!("response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb%2F"),
        format!(
            "response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb%3Fx%3D1"
        ),
        // Several registered: redirect_uri is required.
        format!("response_type=code&client_id={cid}"),
        "response_type=code".to_string(),
    ] {
        let r = b.get(url(&app, &q)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(r.headers().get("location").is_none(), "{q}");
        assert!(r.text().await.unwrap().contains("<h1>"), "{q}");
    }
}

#[tokio::test]
async fn native_app_custom_scheme_is_matched_byte_for_byte() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let q = base(&cid).replace(
        "http%3A%2F%2Fapp.test%2Fcb",
        "app.immich%3A%2F%2F%2Foauth-callback",
    );
    let r = b.get(url(&app, &q)).send().await.unwrap();
    assert!(
        location(&r).starts_with("app.immich:///oauth-callback?code="),
        "{}",
        location(&r)
    );
    let q = base(&cid).replace(
        "http%3A%2F%2Fapp.test%2Fcb",
        "app.immich%3A%2F%2Foauth-callback",
    );
    assert_eq!(b.get(url(&app, &q)).send().await.unwrap().status(), 400);
}

async fn error_of(b: &reqwest::Client, u: String) -> (String, Option<String>, Option<String>) {
    let r = b.get(u).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("http://app.test/cb?"), "{loc}");
    assert!(
        query_param(&loc, "code").is_none(),
        "never a code beside an error"
    );
    (
        query_param(&loc, "error").unwrap_or_default(),
        query_param(&loc, "state"),
        query_param(&loc, "iss"),
    )
}

#[tokio::test]
async fn protocol_errors_go_back_to_the_client_with_state_and_iss() {
    let (app, cid, b) = setup().await;
    let cases = [
        (
            base(&cid).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            base(&cid).replace("response_type=code&", ""),
            "invalid_request",
        ),
        (
            base(&cid).replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            base(&cid).replace(
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
                "",
            ),
            "invalid_request",
        ),
        (
            format!("{}&request=eyJhbGciOiJub25lIn0.e30.", base(&cid)),
            "request_not_supported",
        ),
        (
            format!("{}&request_uri=https%3A%2F%2Fx", base(&cid)),
            "request_uri_not_supported",
        ),
        (
            format!("{}&prompt=none%20login", base(&cid)),
            "invalid_request",
        ),
        (format!("{}&max_age=-1", base(&cid)), "invalid_request"),
        (format!("{}&claims=notjson", base(&cid)), "invalid_request"),
        (format!("{}&prompt=none", base(&cid)), "login_required"),
    ];
    for (q, want) in cases {
        let state = "AbC%2B%2F%3D%3D_padded-state".to_string();
        let (err, st, iss) = error_of(&b, url(&app, &format!("{q}&state={state}"))).await;
        assert_eq!(err, want, "{q}");
        assert_eq!(
            st.as_deref(),
            Some("AbC+/==_padded-state"),
            "state byte-exact for {q}"
        );
        assert_eq!(iss.as_deref(), Some(app.config.public_url.as_str()));
    }
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let (app, cid, b) = setup().await;
    let r = b
        .get(url(&app, &format!("{}&scope=email", base(&cid))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn prompt_none_without_consent_is_consent_required() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "X".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        ..Default::default()
    });
    let b = app.browser();
    app.sign_in(&b, "alice").await;
    let (err, _, _) = error_of(
        &b,
        url(&app, &format!("{}&prompt=none&state=x", base(&cid))),
    )
    .await;
    assert_eq!(err, "consent_required");
}

#[tokio::test]
async fn a_long_state_comes_back_byte_exact_with_the_code() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let state: String = "Zz9-_".repeat(26); // 130 characters
    let r = b
        .get(url(&app, &format!("{}&state={state}", base(&cid))))
        .send()
        .await
        .unwrap();
    let loc = location(&r);
    assert_eq!(query_param(&loc, "state").unwrap(), state);
    assert!(
        query_param(&loc, "code").unwrap().len() >= 43,
        "at least 256 bits"
    );
    assert_eq!(query_param(&loc, "iss").unwrap(), app.config.public_url);
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_fresh_sign_in() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let r = b
        .get(url(&app, &format!("{}&prompt=login", base(&cid))))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?req="), "{}", location(&r));
    // Signing in again completes the request.
    let back = app
        .authorize(
            &b,
            &url(&app, &format!("{}&prompt=login", base(&cid))),
            "alice",
        )
        .await;
    assert!(query_param(&back, "code").is_some());
    app.clock.advance(120);
    let r = b
        .get(url(&app, &format!("{}&max_age=60", base(&cid))))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?req="));
    let r = b
        .get(url(&app, &format!("{}&max_age=600", base(&cid))))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("http://app.test/cb?code="));
}

#[tokio::test]
async fn login_hint_prefills_the_username() {
    let (app, cid, b) = setup().await;
    let r = b
        .get(url(
            &app,
            &format!("{}&login_hint=alice%40example.com", base(&cid)),
        ))
        .send()
        .await
        .unwrap();
    let page = b
        .get(app.abs(&location(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"alice@example.com\""), "{page}");
    assert!(page.contains("Sign in to <span class=\"app-name\">Immich</span>"));
}

#[tokio::test]
async fn display_ui_locales_claims_locales_acr_values_never_cause_an_error() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let q = format!(
        "{}&display=popup&ui_locales=de&claims_locales=fr&acr_values=urn%3Ax&unknown_param=1",
        base(&cid)
    );
    let r = b.get(url(&app, &q)).send().await.unwrap();
    assert!(
        location(&r).starts_with("http://app.test/cb?code="),
        "{}",
        location(&r)
    );
}

#[tokio::test]
async fn form_post_answers_with_an_auto_submitting_form() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let r = b
        .get(url(
            &app,
            &format!("{}&response_mode=form_post&state=st", base(&cid)),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("action=\"http://app.test/cb\""), "{html}");
    assert!(
        html.contains("name=\"code\"")
            && html.contains("name=\"state\" value=\"st\"")
            && html.contains("name=\"iss\"")
    );
    assert!(
        html.contains("<button") && html.contains("/static/form_post.js"),
        "works without JavaScript too"
    );
}

#[tokio::test]
async fn post_to_the_authorization_endpoint_works() {
    let (app, cid, b) = setup().await;
    app.sign_in(&b, "alice").await;
    let body = base(&cid);
    let r = b
        .post(format!("{}/authorize", app.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        location(&r).starts_with("http://app.test/cb?code="),
        "{}",
        location(&r)
    );
}

#[tokio::test]
async fn users_outside_the_allowed_groups_get_a_clear_page() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &["family"], false);
    app.add_user("bob", &[], false);
    let (cid, _) = app.add_client(ClientInput {
        name: "Photos".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        allowed_groups: vec!["family".into()],
        skip_consent: true,
        ..Default::default()
    });
    let bob = app.browser();
    app.sign_in(&bob, "bob").await;
    let r = bob.get(url(&app, &base(&cid))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not allowed to use Photos")
    );
    let alice = app.browser();
    let back = app
        .authorize(&alice, &url(&app, &base(&cid)), "alice")
        .await;
    assert!(query_param(&back, "code").is_some());
}

#[tokio::test]
async fn a_pending_request_is_bound_to_the_browser_that_started_it() {
    let (app, cid, b) = setup().await;
    let r = b.get(url(&app, &base(&cid))).send().await.unwrap();
    let login = location(&r);
    let req = login.split("req=").nth(1).unwrap().to_string();
    let thief = app.browser();
    app.sign_in(&thief, "alice").await;
    let r = thief
        .get(format!("{}/authorize/resume?req={req}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
