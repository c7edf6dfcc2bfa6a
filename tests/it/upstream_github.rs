//! The GitHub preset against a local stand-in serving GitHub's documented shapes:
//! `POST /login/oauth/access_token` (JSON when `Accept: application/json`, errors as 200 with
//! `error`), `GET /api/v3/user` and `GET /api/v3/user/emails` (GitHub Enterprise Server paths,
//! which is how a non-github.com base URL is addressed).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use portcullis::crypto::secret::Secret;
use portcullis::ops::upstream_providers::{self, Preset, ProviderInput};
use portcullis::store;
use portcullis::store::upstream::{Kind, Policy};
use serde_json::json;
use sha2::Digest;

use crate::support::{TestApp, location, query_param};

const CLIENT_ID: &str = "Iv1.standin";
const CLIENT_SECRET: &str = "standin-secret";
const TOKEN: &str = "gho_standin_token";

#[derive(Default)]
struct Standin {
    /// code → PKCE challenge it was issued for
    codes: Mutex<HashMap<String, String>>,
    /// verified flag of the primary email
    verified: Mutex<bool>,
}

struct GitHub {
    url: String,
    state: Arc<Standin>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for GitHub {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}

fn bearer_ok(req: &HttpRequest) -> bool {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // GitHub refuses API requests without a User-Agent.
    let ua = req.headers().contains_key("user-agent");
    ua && (auth == format!("Bearer {TOKEN}") || auth == format!("token {TOKEN}"))
}

async fn access_token(
    req: HttpRequest,
    st: web::Data<Standin>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept.contains("application/json") {
        return HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded")
            .body(format!(
                "access_token={TOKEN}&scope=read%3Auser&token_type=bearer"
            ));
    }
    let f = form.into_inner();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let challenge = st.codes.lock().unwrap().remove(&get("code"));
    let verifier_ok = challenge.is_some_and(|c| {
        let h = sha2::Sha256::digest(get("code_verifier").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h) == c
    });
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET || !verifier_ok {
        return HttpResponse::Ok().json(json!({
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        }));
    }
    HttpResponse::Ok().json(json!({
        "access_token": TOKEN,
        "token_type": "bearer",
        "scope": "read:user,user:email"
    }))
}

async fn user(req: HttpRequest) -> HttpResponse {
    if !bearer_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"message": "Requires authentication"}));
    }
    HttpResponse::Ok().json(json!({
        "login": "octocat",
        "id": 583231,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": "https://github.com/images/error/octocat_happy.gif",
        "type": "User",
        "site_admin": false,
        "name": "The Octocat",
        "company": "GitHub",
        "email": null
    }))
}

async fn emails(req: HttpRequest, st: web::Data<Standin>) -> HttpResponse {
    if !bearer_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"message": "Requires authentication"}));
    }
    let verified = *st.verified.lock().unwrap();
    HttpResponse::Ok().json(json!([
        {"email": "octocat@users.noreply.github.com", "verified": true, "primary": false, "visibility": null},
        {"email": "octocat@example.com", "verified": verified, "primary": true, "visibility": "public"}
    ]))
}

impl GitHub {
    async fn start() -> Self {
        let state = Arc::new(Standin::default());
        *state.verified.lock().unwrap() = true;
        let data = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/api/v3/user", web::get().to(user))
                .route("/api/v3/user/emails", web::get().to(emails))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// What GitHub's authorize page does after the person approves: a code for this challenge.
    fn approve(&self, authorize_url: &str) -> (String, String) {
        let challenge = query_param(authorize_url, "code_challenge").unwrap();
        assert_eq!(
            query_param(authorize_url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        let code = format!("code-{}", self.state.codes.lock().unwrap().len());
        self.state
            .codes
            .lock()
            .unwrap()
            .insert(code.clone(), challenge);
        (code, query_param(authorize_url, "state").unwrap())
    }
}

async fn setup(policy: Policy) -> (TestApp, GitHub) {
    let gh = GitHub::start().await;
    let down = TestApp::spawn().await;
    let mut input = ProviderInput::new("github", Kind::Github, "", CLIENT_ID);
    Preset::Github.apply(&mut input);
    input.issuer = Some(gh.url.clone()); // a GitHub Enterprise-style base: the stand-in
    input.client_secret = Some(Secret::new(CLIENT_SECRET.into()));
    input.policy = policy;
    let key = down.state.master_key.clone();
    down.db
        .try_write_blocking(|c| upstream_providers::create(c, &key, input, None, 1))
        .unwrap();
    (down, gh)
}

async fn go_to_github(down: &TestApp, b: &reqwest::Client) -> String {
    let r = b
        .get(format!("{}/login/upstream/github?next=/account", down.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("/login/oauth/authorize?"), "{to}");
    assert_eq!(query_param(&to, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_param(&to, "redirect_uri"),
        Some(format!("{}/login/upstream/callback", down.url))
    );
    assert_eq!(
        query_param(&to, "scope").as_deref(),
        Some("read:user user:email")
    );
    to
}

#[tokio::test]
async fn github_sign_in_uses_the_numeric_id_and_the_verified_primary_email() {
    let (down, gh) = setup(Policy::Create).await;
    let b = down.browser();
    let to = go_to_github(&down, &b).await;
    assert!(to.starts_with(&gh.url));
    let (code, state) = gh.approve(&to);
    let r = b
        .get(format!(
            "{}/login/upstream/callback?code={code}&state={state}",
            down.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/account");
    let users = down
        .db
        .read_blocking(|c| store::users::list(c, "", 10, 0))
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "octocat");
    assert_eq!(users[0].display_name.as_deref(), Some("The Octocat"));
    assert_eq!(users[0].email.as_deref(), Some("octocat@example.com"));
    assert!(users[0].email_verified);
    let pid = down
        .db
        .read_blocking(|c| store::upstream::by_slug(c, "github"))
        .unwrap()
        .unwrap()
        .id;
    let link = down
        .db
        .read_blocking(move |c| store::upstream::link_by_subject(c, &pid, "583231"))
        .unwrap()
        .unwrap();
    assert_eq!(link.user_id, users[0].id);
}

#[tokio::test]
async fn a_bad_code_at_github_ends_on_a_clear_page() {
    let (down, _gh) = setup(Policy::Create).await;
    let b = down.browser();
    let to = go_to_github(&down, &b).await;
    let state = query_param(&to, "state").unwrap();
    let r = b
        .get(format!(
            "{}/login/upstream/callback?code=not-issued&state={state}",
            down.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let page = r.text().await.unwrap();
    assert!(page.contains("bad_verification_code"), "{page}");
    assert_eq!(
        down.db.read_blocking(store::users::count).unwrap(),
        0,
        "nothing created"
    );
}

#[tokio::test]
async fn an_unverified_github_email_does_not_link_an_existing_account() {
    let (down, gh) = setup(Policy::LinkVerifiedEmail).await;
    *gh.state.verified.lock().unwrap() = false;
    // A local account with the address GitHub reports as primary (unverified there).
    let mut local = down.add_user("octo", &[], false);
    local.email = Some("octocat@example.com".into());
    down.db
        .write_blocking(|c| store::users::update_profile(c, &local, 1))
        .unwrap();
    let b = down.browser();
    let to = go_to_github(&down, &b).await;
    let (code, state) = gh.approve(&to);
    let r = b
        .get(format!(
            "{}/login/upstream/callback?code={code}&state={state}",
            down.url
        ))
        .send()
        .await
        .unwrap();
    // The verified no-reply address is used instead; it matches nobody, so a new account.
    assert_eq!(r.status(), 303);
    let users = down
        .db
        .read_blocking(|c| store::users::list(c, "", 10, 0))
        .unwrap();
    assert_eq!(users.len(), 2);
    let new = users.iter().find(|u| u.id != local.id).unwrap();
    assert_eq!(
        new.email.as_deref(),
        Some("octocat@users.noreply.github.com")
    );
}
