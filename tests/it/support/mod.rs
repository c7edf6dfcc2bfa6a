//! `TestApp::spawn()` starts the same `app::serve` as `main`, on 127.0.0.1:0, with a temporary
//! data dir and a `FixedClock` tests can advance.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web;
use portcullis::clock::FixedClock;
use portcullis::config::Config;
use portcullis::ops::clients::{self, ClientInput};
use portcullis::ops::users::{self, NewUser};
use portcullis::state::AppState;
use portcullis::store::Db;

pub mod webauthn;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub url: String,
    pub port: u16,
    pub clock: FixedClock,
    pub db: Db,
    pub state: web::Data<AppState>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Cheap argon2 parameters so tests stay fast (production defaults are tested in unit tests).
pub fn test_config(dir: &std::path::Path, port: u16) -> Config {
    Config {
        public_url: format!("http://127.0.0.1:{port}"),
        bind: format!("127.0.0.1:{port}"),
        data_dir: dir.to_path_buf(),
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = test_config(dir.path(), port);
        tweak(&mut config);
        Self::start(dir, listener, config).await
    }

    pub async fn start(dir: tempfile::TempDir, listener: TcpListener, config: Config) -> Self {
        let port = listener.local_addr().unwrap().port();
        let clock = FixedClock::new(1_800_000_000);
        let cfg = config.clone();
        let c2 = clock.clone();
        let state =
            tokio::task::spawn_blocking(move || portcullis::server::build_state(cfg, Arc::new(c2)))
                .await
                .unwrap()
                .unwrap();
        let state = web::Data::new(state);
        let db = state.db.clone();
        let handle = tokio::spawn(portcullis::server::serve(listener, state.clone()));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            clock,
            db,
            state,
            dir,
            config,
            handle,
        }
    }

    /// A reqwest client with a cookie jar that does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn add_user(
        &self,
        username: &str,
        groups: &[&str],
        admin: bool,
    ) -> portcullis::store::users::User {
        let hash = self.state.hasher.hash_now(PASSWORD).unwrap();
        let new = NewUser {
            username: username.into(),
            email: Some(format!("{username}@example.com")),
            display_name: Some(format!("{username} Example")),
            password_hash: Some(hash),
            email_verified: true,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            admin,
        };
        let now = self.clock_now();
        self.db
            .try_write_blocking(|c| users::insert(c, &new, now))
            .unwrap()
    }

    /// A confidential client; returns (client_id, secret).
    pub fn add_client(&self, input: ClientInput) -> (String, Option<String>) {
        let now = self.clock_now();
        let (c, s) = self
            .db
            .try_write_blocking(|c| clients::create(c, input, now))
            .unwrap();
        (c.id, s)
    }

    pub fn confidential(&self, name: &str, redirect: &str) -> (String, String) {
        let (id, s) = self.add_client(ClientInput {
            name: name.into(),
            redirect_uris: vec![redirect.into()],
            skip_consent: true,
            ..Default::default()
        });
        (id, s.unwrap())
    }

    pub fn clock_now(&self) -> i64 {
        use portcullis::clock::Clock;
        self.clock.now()
    }
}

/// The CSRF token of the first form on a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The value of a hidden input or query parameter named `name` in a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(
        html[start..]
            .split('"')
            .next()?
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "="),
    )
}

/// The Location header of a redirect.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

impl TestApp {
    /// Resolves a Location (relative to this server) to an absolute URL.
    pub fn abs(&self, loc: &str) -> String {
        if loc.starts_with('/') {
            format!("{}{loc}", self.url)
        } else {
            loc.to_string()
        }
    }

    /// Opens /login (optionally `?…`), submits the credentials, returns the POST response.
    pub async fn sign_in_at(
        &self,
        browser: &reqwest::Client,
        login_path: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = browser.get(self.abs(login_path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "login page");
        let body = page.text().await.unwrap();
        let csrf = csrf_from(&body);
        let req = input_value(&body, "req").unwrap_or_default();
        let next = input_value(&body, "next").unwrap_or_default();
        browser
            .post(format!("{}/login", self.url))
            .form(&[
                ("csrf", csrf.as_str()),
                ("req", &req),
                ("next", &next),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_in(&self, browser: &reqwest::Client, username: &str) -> reqwest::Response {
        self.sign_in_at(browser, "/login", username, PASSWORD).await
    }

    /// Follows an authorization request through sign-in (as `username`, if asked) and consent
    /// (allowing, if asked) until the redirect back to the client; returns that URL.
    pub async fn authorize(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        username: &str,
    ) -> String {
        let mut url = authorize_url.to_string();
        for _ in 0..10 {
            let r = browser.get(self.abs(&url)).send().await.unwrap();
            if r.status() == 200 && url.contains("/consent") {
                let body = r.text().await.unwrap();
                let csrf = csrf_from(&body);
                let req = input_value(&body, "req").unwrap();
                let post = browser
                    .post(format!("{}/consent", self.url))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("req", &req),
                        ("decision", "allow"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(post.status(), 303);
                url = location(&post);
                continue;
            }
            if r.status() == 200 && url.contains("/login") {
                let post = self.sign_in_at(browser, &url, username, PASSWORD).await;
                assert_eq!(post.status(), 303, "sign-in failed");
                url = location(&post);
                continue;
            }
            assert_eq!(
                r.status(),
                303,
                "unexpected {} at {url}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
            let next = location(&r);
            if !next.starts_with('/') {
                return next;
            }
            url = next;
        }
        panic!("too many redirects");
    }
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// RFC 7636 Appendix B's verifier and challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

impl TestApp {
    /// Runs the code flow in `browser` (signing in as `username` if needed) and exchanges the
    /// code: returns the token response JSON.
    pub async fn tokens_for(
        &self,
        browser: &reqwest::Client,
        username: &str,
        client_id: &str,
        secret: Option<&str>,
        redirect_uri: &str,
        scope: &str,
    ) -> serde_json::Value {
        let mut u = url::Url::parse(&format!("{}/authorize", self.url)).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", "st")
            .append_pair("nonce", "n-0S6_WzA2Mj")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        let back = self.authorize(browser, u.as_str(), username).await;
        let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
        let mut req = reqwest::Client::new().post(format!("{}/token", self.url));
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_verifier", VERIFIER.to_string()),
        ];
        match secret {
            Some(s) => req = req.basic_auth(client_id, Some(s)),
            None => form.push(("client_id", client_id.to_string())),
        }
        let r = req.form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// The claims of a JWT, unverified (tests verify signatures separately where it matters).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub fn jwt_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap()
}

/// A relying party's back-channel logout endpoint on loopback that records what it receives.
pub struct LogoutReceiver {
    pub url: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// When false the endpoint answers 503 (an RP that is down).
    pub up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for LogoutReceiver {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}

impl LogoutReceiver {
    pub async fn start() -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (r2, u2) = (received.clone(), up.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (r, u) = (r2.clone(), u2.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (r, u) = (r.clone(), u.clone());
                async move {
                    if !u.load(std::sync::atomic::Ordering::SeqCst) {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    r.lock().unwrap().push((
                        req.path().to_string(),
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                    HttpResponse::Ok().finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            received,
            up,
            handle,
        }
    }

    /// Waits (bounded) until `n` logout tokens have arrived; returns (path, logout_token).
    pub async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..100 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got
                    .into_iter()
                    .map(|(p, body)| {
                        let form: Vec<(String, String)> =
                            serde_urlencoded::from_str(&body).unwrap();
                        assert_eq!(form.len(), 1, "logout_token is the only field: {body}");
                        assert_eq!(form[0].0, "logout_token");
                        (p, form[0].1.clone())
                    })
                    .collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "expected {n} logout tokens, got {:?}",
            self.received.lock().unwrap()
        );
    }
}

impl TestApp {
    /// The CSRF token of the page at `path` for this browser (what its forms would send).
    pub async fn csrf_at(&self, browser: &reqwest::Client, path: &str) -> String {
        let page = browser
            .get(self.abs(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_from(&page)
    }
}

impl TestApp {
    /// A browser signed in as a fresh administrator `root`.
    pub async fn admin_browser(&self) -> reqwest::Client {
        self.add_user("root", &[], true);
        let b = self.browser();
        let r = self.sign_in(&b, "root").await;
        assert_eq!(r.status(), 303);
        b
    }

    /// GETs `path` in `browser`; returns the status and the body.
    pub async fn page(&self, browser: &reqwest::Client, path: &str) -> (u16, String) {
        let r = browser.get(self.abs(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// GETs `path` in `browser`; returns the body (whatever the status).
    pub async fn text_at(&self, browser: &reqwest::Client, path: &str) -> String {
        browser
            .get(self.abs(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// GETs `path` in `browser`; returns only the status (e.g. 200 signed in, 303 signed out).
    pub async fn status_at(&self, browser: &reqwest::Client, path: &str) -> u16 {
        browser
            .get(self.abs(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// POSTs the form `fields` (as given, CSRF token included by the caller) to `path`.
    pub async fn post_form(
        &self,
        browser: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        browser
            .post(self.abs(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// GETs the page `from` for its CSRF token, then POSTs it first with `fields` to `path`
    /// (what submitting that page's form does).
    pub async fn submit(
        &self,
        browser: &reqwest::Client,
        from: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf_at(browser, from).await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_form(browser, path, &form).await
    }
}

impl TestApp {
    /// The audit events of a kind or kind prefix (`""`: all), newest first, up to 200.
    pub fn audit_events(&self, kind: &str) -> Vec<portcullis::store::audit::Event> {
        let filter = portcullis::store::audit::Filter {
            kind_prefix: Some(kind.to_string()).filter(|k| !k.is_empty()),
            ..Default::default()
        };
        self.db
            .read_blocking(|c| portcullis::store::audit::list(c, &filter, 200, 0))
            .unwrap()
    }
}
