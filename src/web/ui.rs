//! What every HTML page shares: the base context (brand, CSRF token, signed-in user),
//! rendering, the browser cookie, CSRF-checked forms (`CsrfForm<T>`) and `PageError`.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::de::DeserializeOwned;

use crate::crypto::secret::{ct_eq, hash_token, random_token};
use crate::state::AppState;
use crate::web::request_id;

/// The base context every page template embeds as `page`.
#[derive(Debug, Clone)]
pub struct Page {
    pub brand: String,
    pub logo: String,
    pub title: String,
    pub csrf: String,
    /// Display name of the signed-in user, if any (shows the account link).
    pub user: Option<String>,
    pub is_admin: bool,
}

impl Page {
    pub fn new(state: &AppState, req: &HttpRequest, title: impl Into<String>) -> Self {
        let logo = if state.config.logo_url.is_empty() {
            "/static/logo.svg".to_string()
        } else {
            state.config.logo_url.clone()
        };
        Self {
            brand: state.config.brand_name.clone(),
            logo,
            title: title.into(),
            csrf: csrf_token(state, &browser_id(req)),
            user: None,
            is_admin: false,
        }
    }

    pub fn with_user(mut self, name: &str, is_admin: bool) -> Self {
        self.user = Some(name.to_string());
        self.is_admin = is_admin;
        self
    }
}

/// Renders a template as an HTML response with `status`.
pub fn render<T: Template>(status: StatusCode, t: &T) -> HttpResponse {
    match t.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError().body("internal error")
        }
    }
}

pub fn ok<T: Template>(t: &T) -> HttpResponse {
    render(StatusCode::OK, t)
}

/// POST-redirect-GET.
/// Percent-encodes one query-string value (`application/x-www-form-urlencoded`).
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

// ---- browser cookie and CSRF ---------------------------------------------------------------

/// Name of a cookie: `__Host-` prefixed when the issuer is https (Secure, host-only, Path=/).
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if state.config.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A cookie with our flags: HttpOnly, Secure on https, SameSite=Lax, host-only, Path=/.
pub fn make_cookie(
    state: &AppState,
    base: &str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build(cookie_name(state, base), value)
        .path("/")
        .http_only(true)
        .secure(state.config.secure_cookies())
        .same_site(SameSite::Lax)
        .finish();
    if let Some(secs) = max_age {
        c.set_max_age(actix_web::cookie::time::Duration::seconds(secs));
    }
    c
}

pub fn removal_cookie(state: &AppState, base: &str) -> Cookie<'static> {
    let mut c = make_cookie(state, base, String::new(), Some(0));
    c.make_removal();
    c
}

/// The browser id: a random value in the `pc_browser` cookie. Pending authorization requests
/// and CSRF tokens are bound to it. A new id is made only when a handler asks for one (pages
/// with forms), and the middleware then sets the cookie (see `app`); API calls pay nothing.
pub fn browser_id(req: &HttpRequest) -> String {
    match req.extensions().get::<std::rc::Rc<BrowserId>>() {
        Some(b) => b.get(),
        None => String::new(),
    }
}

/// This request's browser id: the cookie's, or one made on first use (or at a sign-in).
pub struct BrowserId {
    existing: Option<String>,
    fresh: std::cell::OnceCell<String>,
    /// A sign-in replaced the cookie's id with `fresh`.
    renewed: std::cell::Cell<bool>,
}

impl BrowserId {
    pub fn new(existing: Option<String>) -> Self {
        Self {
            existing,
            fresh: std::cell::OnceCell::new(),
            renewed: std::cell::Cell::new(false),
        }
    }

    pub fn get(&self) -> String {
        match &self.existing {
            Some(id) if !self.renewed.get() => id.clone(),
            _ => self.fresh.get_or_init(new_browser_id).clone(),
        }
    }

    /// A new id for the rest of this request and in the cookie the response sets. Called at
    /// sign-in, so that a browser id planted before (sign-in CSRF fixation) is worth nothing
    /// afterwards: CSRF tokens derive from it.
    pub fn renew(&self) -> String {
        self.renewed.set(true);
        self.fresh.get_or_init(new_browser_id).clone()
    }

    /// The id made during this request, which the response must set as a cookie.
    pub fn made(&self) -> Option<&String> {
        self.fresh.get()
    }
}

/// Gives this browser a new id at sign-in (see [`BrowserId::renew`]); returns its hash (what
/// pending requests are bound to).
pub fn renew_browser_id(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<std::rc::Rc<BrowserId>>()
        .map(|b| hash_token(&b.renew()))
}

/// `HMAC-SHA256(master key, browser id)` as the synchronizer token, so it needs no storage and
/// cannot be forged by setting a cookie alone.
pub fn csrf_token(state: &AppState, browser: &str) -> String {
    state.mac("csrf", browser)
}

/// A form whose `csrf` field matched this browser's token and whose Origin (when sent) is ours.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(PageError::Internal)?
                .clone();
            if !same_origin(&state, &req) {
                return Err(PageError::Csrf);
            }
            let body = body
                .await
                .map_err(|_| PageError::BadRequest("The form could not be read.".into()))?;
            let field: CsrfField =
                serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Csrf)?;
            let expected = csrf_token(&state, &browser_id(&req));
            if field.csrf.is_empty() || !ct_eq(field.csrf.as_bytes(), expected.as_bytes()) {
                return Err(PageError::Csrf);
            }
            let form: T = serde_urlencoded::from_bytes(&body)
                .map_err(|e| PageError::BadRequest(format!("The form is incomplete ({e}).")))?;
            Ok(CsrfForm(form))
        })
    }
}

/// Refuses cross-origin form posts: Origin, when present, must be the issuer's origin, and
/// Sec-Fetch-Site, when present, must not be cross-site.
fn same_origin(state: &AppState, req: &HttpRequest) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        && site == "cross-site"
    {
        return false;
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(origin) => origin == state.issuer_origin,
    }
}

/// Stable hash of a browser id for storage.
pub fn browser_hash(req: &HttpRequest) -> String {
    hash_token(&browser_id(req))
}

pub fn new_browser_id() -> String {
    random_token()
}

// ---- errors --------------------------------------------------------------------------------

/// An error shown to a person as a page (or JSON to API clients), with a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("csrf check failed")]
    Csrf,
    #[error("internal error")]
    Internal,
    #[error("temporarily unavailable")]
    Unavailable,
}

impl PageError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address.".into()),
            PageError::Forbidden => {
                (StatusCode::FORBIDDEN, "Not allowed", "Your account does not have access to this page.".into())
            }
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Something is missing", m.clone()),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your security the form could not be accepted. Go back, reload the page and try again.".into(),
            ),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An unexpected error occurred. Try again; if it keeps happening, tell your administrator.".into(),
            ),
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "The server is busy. Wait a moment and try again.".into(),
            ),
        }
    }
}

/// Password hashing failed: a full queue is "busy, try again"; anything else is internal.
impl From<crate::crypto::CryptoError> for PageError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        match e {
            crate::crypto::CryptoError::PoolBusy => {
                tracing::warn!("sign-in refused: the password hashing queue is full");
                PageError::Unavailable
            }
            e => {
                tracing::error!(error = %e, "password hashing failed");
                PageError::Internal
            }
        }
    }
}

/// Seconds a refused client should wait (`Retry-After`, RFC 9110 §10.2.3).
pub fn retry_after(resp: &mut HttpResponse, secs: i64) {
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// How long to wait after a 503 (busy database, full hashing queue).
pub const BUSY_RETRY_SECS: i64 = 2;

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        match e.answer() {
            crate::store::Answer::Busy => PageError::Unavailable,
            crate::store::Answer::Internal => PageError::Internal,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub page: Page,
    pub heading: String,
    pub message: String,
    pub request_id: String,
    pub back: Option<String>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, heading, message) = self.parts();
        let mut resp = error_page(status, heading, &message, None);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            retry_after(&mut resp, BUSY_RETRY_SECS);
        }
        resp
    }
}

/// An error page outside a request context (no CSRF token needed: it has no form).
pub fn error_page(
    status: StatusCode,
    heading: &str,
    message: &str,
    back: Option<String>,
) -> HttpResponse {
    let rid = request_id::current();
    let page = Page {
        brand: crate::brand::name(),
        logo: "/static/logo.svg".into(),
        title: heading.to_string(),
        csrf: String::new(),
        user: None,
        is_admin: false,
    };
    let mut resp = render(
        status,
        &ErrorPage {
            page,
            heading: heading.into(),
            message: message.into(),
            request_id: rid.clone(),
            back,
        },
    );
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    resp
}

/// A JSON body from our own pages' scripts: the `X-CSRF-Token` header must carry this
/// browser's token and the Origin (when sent) must be ours, as for `CsrfForm`.
pub struct CsrfJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfJson<T> {
    type Error = JsonError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, JsonError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(JsonError::internal())?
                .clone();
            let token = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let expected = csrf_token(&state, &browser_id(&req));
            if !same_origin(&state, &req)
                || token.is_empty()
                || !ct_eq(token.as_bytes(), expected.as_bytes())
            {
                return Err(JsonError::new(
                    StatusCode::FORBIDDEN,
                    "This page has expired. Reload it and try again.",
                ));
            }
            let body = body.await.map_err(|_| {
                JsonError::new(StatusCode::BAD_REQUEST, "The request could not be read.")
            })?;
            serde_json::from_slice(&body).map(CsrfJson).map_err(|_| {
                JsonError::new(StatusCode::BAD_REQUEST, "The request could not be read.")
            })
        })
    }
}

/// An error for our pages' scripts: `{"error": "<message for the person>"}`.
#[derive(Debug)]
pub struct JsonError {
    pub status: StatusCode,
    pub message: String,
}

impl JsonError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong. Try again.",
        )
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for JsonError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "error": self.message }))
    }
}

impl From<crate::store::StoreError> for JsonError {
    fn from(e: crate::store::StoreError) -> Self {
        match e.answer() {
            crate::store::Answer::Busy => JsonError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Wait a moment and try again.",
            ),
            crate::store::Answer::Internal => JsonError::internal(),
        }
    }
}
