//! AppState, middleware, THE ROUTE TABLE, and `serve(listener, state)`.
//! Grep a URL here to find its handler.

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, OnceLock};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipnet::IpNet;
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::crypto::password::PasswordHasher;
use crate::signing_keys::KeyManager;
use crate::store::Db;
use crate::ui::{self, BrowserId};
use crate::{account, admin, health, login, oidc, setup};

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub master_key: Arc<MasterKey>,
    pub keys: Arc<KeyManager>,
    /// Outgoing HTTP (upstream providers, back-channel logout), under the address rule of
    /// `outbound`.
    pub outbound: crate::outbound::Outbound,
    pub trusted_proxies: Vec<IpNet>,
    /// `scheme://host[:port]` of the issuer, for Origin checks.
    pub issuer_origin: String,
    /// The issuer as a parsed URL ("return to" values are resolved against it).
    pub issuer_url: url::Url,
    /// Wakes the back-channel logout worker after a sign-out.
    pub logout_wake: tokio::sync::Notify,
    /// The discovery documents, built once (they depend only on configuration).
    pub discovery: OnceLock<Vec<u8>>,
    /// Origins of registered redirect URIs, for CORS.
    pub cors_origins: crate::oidc::cors::OriginCache,
    pub client_cache: crate::oidc::client_auth::ClientCache,
    pub oauth_metadata: OnceLock<Vec<u8>>,
    /// The WebAuthn relying party (`None` when the issuer cannot be one, e.g. a bare IP).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    mac_key: hmac::Key,
}

impl AppState {
    pub fn new(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
    ) -> anyhow::Result<Self> {
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            config.argon2_concurrency,
            config.argon2_queue,
        )?;
        let master_key = Arc::new(master_key);
        // A MAC key derived from the master key (never the master key itself).
        let derived = master_key.seal("derive:mac", b"")?;
        let mac_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            crate::crypto::secret::sha256(derived.as_bytes()).as_slice(),
        );
        let keys = Arc::new(KeyManager::new(db.clone(), master_key.clone(), &config));
        let issuer_url = url::Url::parse(&config.public_url)?;
        let issuer_origin = issuer_url.origin().ascii_serialization();
        let _ = BRAND.set(config.brand_name.clone());
        crate::outbound::set_allow_link_local(config.outbound_allow_link_local);
        let webauthn = match crate::passkeys::relying_party(&config.public_url, &config.brand_name)
        {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "passkeys disabled");
                None
            }
        };
        Ok(Self {
            trusted_proxies: config.trusted_proxy_nets(),
            outbound: crate::outbound::Outbound::new(config.outbound_allow_link_local),
            config: Arc::new(config),
            db,
            clock,
            hasher,
            master_key,
            keys,
            issuer_origin,
            issuer_url,
            logout_wake: tokio::sync::Notify::new(),
            webauthn,
            discovery: OnceLock::new(),
            cors_origins: Default::default(),
            client_cache: Default::default(),
            oauth_metadata: OnceLock::new(),
            mac_key,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// HMAC-SHA256 of `value` under a purpose label, base64url.
    pub fn mac(&self, purpose: &str, value: &str) -> String {
        let tag = hmac::sign(&self.mac_key, format!("{purpose}\0{value}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.public_url, path)
    }

    /// The client's IP: the peer, or — only when the peer is a trusted proxy — the
    /// right-most X-Forwarded-For entry that is not itself a trusted proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let mut hops = forwarded
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .rev();
        for hop in hops.by_ref() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted_proxy(ip) => continue,
                Ok(ip) => return Some(ip),
                Err(_) => return Some(peer),
            }
        }
        Some(peer)
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

pub type State = web::Data<AppState>;

static BRAND: OnceLock<String> = OnceLock::new();

pub fn brand() -> String {
    BRAND.get().cloned().unwrap_or_else(|| "Portcullis".into())
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id (for error pages and logs), or "-" outside a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".into())
}

/// Request ids: a random per-process prefix and a counter (unique, and cheap on hot paths).
fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix =
        PREFIX.get_or_init(|| crate::crypto::secret::random_id().chars().take(8).collect());
    format!(
        "{prefix}-{:x}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// The route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg
        // Appliance
        .route("/health", web::get().to(health::get))
        .route("/static/{path:.*}", web::get().to(crate::assets::serve))
        .route("/setup", web::get().to(setup::get))
        .route("/setup", web::post().to(setup::post))
        .route("/", web::get().to(account::home))
        // OpenID Connect provider
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oidc::discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oidc::discovery::oauth_authorization_server),
        )
        .route("/jwks", web::get().to(oidc::jwks::get))
        .route("/authorize", web::get().to(oidc::authorize::get))
        .route("/authorize", web::post().to(oidc::authorize::post))
        .route("/authorize/resume", web::get().to(oidc::authorize::resume))
        .route("/token", web::post().to(oidc::token::post))
        .route("/userinfo", web::get().to(oidc::userinfo::get))
        .route("/userinfo", web::post().to(oidc::userinfo::post))
        .route("/revoke", web::post().to(oidc::revocation::post))
        .route("/introspect", web::post().to(oidc::introspection::post))
        .route("/logout", web::get().to(oidc::end_session::get))
        .route("/logout", web::post().to(oidc::end_session::post))
        // Sign-in journey
        .route("/login", web::get().to(login::password::get))
        .route("/login", web::post().to(login::password::post))
        .route("/consent", web::get().to(login::consent::get))
        .route("/consent", web::post().to(login::consent::post))
        .route("/reset", web::get().to(login::reset::get))
        .route("/reset", web::post().to(login::reset::post))
        .route("/signout", web::post().to(login::session::sign_out))
        .route(
            "/login/passkey/start",
            web::post().to(login::passkey::start),
        )
        .route(
            "/login/passkey/finish",
            web::post().to(login::passkey::finish),
        )
        .route(
            "/login/second-factor",
            web::get().to(login::second_factor::get),
        )
        .route(
            "/login/second-factor/start",
            web::post().to(login::second_factor::start),
        )
        .route(
            "/login/second-factor/finish",
            web::post().to(login::second_factor::finish),
        )
        .route("/invite", web::get().to(login::invite::get))
        .route(
            "/invite/passkey/start",
            web::post().to(login::invite::passkey_start),
        )
        .route(
            "/invite/passkey/finish",
            web::post().to(login::invite::passkey_finish),
        )
        .route("/invite/password", web::post().to(login::invite::password))
        // Self-service account
        .route("/account", web::get().to(account::get))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/sessions/end",
            web::post().to(account::end_session),
        )
        .route("/account/apps/revoke", web::post().to(account::revoke_app))
        .route(
            "/account/passkeys/register/start",
            web::post().to(account::passkeys::register_start),
        )
        .route(
            "/account/passkeys/register/finish",
            web::post().to(account::passkeys::register_finish),
        )
        .route(
            "/account/passkeys/rename",
            web::post().to(account::passkeys::rename),
        )
        .route(
            "/account/passkeys/delete",
            web::post().to(account::passkeys::delete),
        )
        .route(
            "/account/passkeys/require",
            web::post().to(account::passkeys::require),
        )
        // Admin console and API: routes in admin/mod.rs
        .configure(admin::routes)
        // Upstream sign-in: routes in upstream/mod.rs
        .configure(crate::upstream::routes)
        // CORS preflight for the endpoints browsers call directly
        .route(
            "/{tail:.*}",
            web::method(actix_web::http::Method::OPTIONS).to(oidc::cors::preflight),
        );
}

/// Request id, browser cookie, access log, security headers, JSON errors for API clients.
async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(next_request_id);
    let state = req.app_data::<State>().cloned();
    // The browser id cookie binds pending requests and CSRF tokens to this browser.
    if let Some(state) = &state {
        let name = ui::cookie_name(state, "pc_browser");
        let existing = req
            .cookie(&name)
            .map(|c| c.value().to_string())
            .filter(|v| v.len() == 43);
        req.extensions_mut()
            .insert(std::rc::Rc::new(BrowserId::new(existing)));
    }
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    let method = req.method().to_string();
    let path = req.path().to_string();
    // A change through the console or the admin API may touch a client (or the groups it
    // allows): the token endpoint's cache of clients starts over.
    let admin_change = path.starts_with("/admin") && !matches!(method.as_str(), "GET" | "HEAD");
    let span = tracing::info_span!("request", id = %rid, %method, %path);
    let started = std::time::Instant::now();
    let res = REQUEST_ID
        .scope(rid.clone(), async move { next.call(req).await })
        .instrument(span.clone())
        .await?;
    let mut res = res.map_into_boxed_body();
    let status = res.status();
    if admin_change && let Some(state) = &state {
        state.client_cache.clear();
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "served"
        )
    });

    if wants_json && status.as_u16() >= 400 && is_html(&res) {
        let body = serde_json::json!({
            "error": status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_"),
            "message": status.canonical_reason().unwrap_or("error"),
            "request_id": rid,
        });
        let (req, _) = res.into_parts();
        res = ServiceResponse::new(req, HttpResponse::build(status).json(body));
    }
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        headers.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on our own
    // form posts, which the CSRF origin check must refuse.
    set_default(headers, header::REFERRER_POLICY, "same-origin");
    set_default(headers, header::X_FRAME_OPTIONS, "DENY");
    set_default(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    );
    set_default(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    let made = res
        .request()
        .extensions()
        .get::<std::rc::Rc<BrowserId>>()
        .and_then(|b| b.made().cloned());
    if let (Some(state), Some(id)) = (state, made) {
        let cookie = ui::make_cookie(&state, "pc_browser", id, Some(400 * 86_400));
        let _ = res.response_mut().add_cookie(&cookie);
    }
    Ok(res)
}

fn is_html(res: &ServiceResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn set_default(
    headers: &mut actix_web::http::header::HeaderMap,
    name: header::HeaderName,
    value: &'static str,
) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

async fn not_found() -> Result<HttpResponse, ui::PageError> {
    Err(ui::PageError::NotFound)
}

/// Serves until SIGTERM/SIGINT; in-flight requests finish (graceful shutdown).
pub async fn serve(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<()> {
    let server_state = state.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(server_state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .app_data(web::PayloadConfig::default().limit(256 * 1024))
            .wrap(from_fn(middleware))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    let jobs = crate::jobs::spawn(state.clone(), server.handle());
    let result = server.await;
    jobs.abort();
    state.db.checkpoint();
    tracing::info!("stopped");
    result
}
