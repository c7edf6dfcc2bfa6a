//! The middleware every request passes: its id, the browser cookie, the access log, the
//! security headers, JSON errors for API clients; and the 404 page.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use tracing::Instrument;

use super::State;
use super::request_id;
use super::ui::{self, BrowserId};

/// Request id, browser cookie, access log, security headers, JSON errors for API clients.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let rid = request_id_of(&req);
    let state = req.app_data::<State>().cloned();
    if let Some(state) = &state {
        attach_browser_id(state, &req);
    }
    let wants_json = wants_json(&req);
    let method = req.method().to_string();
    let path = req.path().to_string();
    // A change through the console or the admin API may touch a client (or the groups it
    // allows): the token endpoint's cache of clients starts over.
    let admin_change = path.starts_with("/admin") && !matches!(method.as_str(), "GET" | "HEAD");
    let span = tracing::info_span!("request", id = %rid, %method, %path);
    let started = std::time::Instant::now();
    let res = request_id::REQUEST_ID
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
        res = json_error(res, &rid);
    }
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        headers.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    set_security_headers(headers);
    if let Some(state) = state {
        set_new_browser_cookie(&state, &mut res);
    }
    Ok(res)
}

/// The caller's `X-Request-Id` when it is short and plain (letters, digits, -), else a new id.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(request_id::next)
}

/// The browser id cookie binds pending requests and CSRF tokens to this browser: the one the
/// request carries (if well-formed), or a new one made when first asked for.
fn attach_browser_id(state: &State, req: &ServiceRequest) {
    let name = ui::cookie_name(state, "pc_browser");
    let existing = req
        .cookie(&name)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43);
    req.extensions_mut()
        .insert(std::rc::Rc::new(BrowserId::new(existing)));
}

/// An API client: it accepts JSON and not HTML.
fn wants_json(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// An HTML error page replaced by a JSON error with the same status and the request id.
fn json_error(res: ServiceResponse<BoxBody>, rid: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let body = serde_json::json!({
        "error": status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_"),
        "message": status.canonical_reason().unwrap_or("error"),
        "request_id": rid,
    });
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, HttpResponse::build(status).json(body))
}

/// The security headers every response carries, unless the handler set its own.
fn set_security_headers(headers: &mut header::HeaderMap) {
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
}

/// Sets the browser id cookie when this request made a new browser id.
fn set_new_browser_cookie(state: &State, res: &mut ServiceResponse<BoxBody>) {
    let made = res
        .request()
        .extensions()
        .get::<std::rc::Rc<BrowserId>>()
        .and_then(|b| b.made().cloned());
    if let Some(id) = made {
        let cookie = ui::make_cookie(state, "pc_browser", id, Some(400 * 86_400));
        let _ = res.response_mut().add_cookie(&cookie);
    }
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

pub async fn not_found() -> Result<HttpResponse, ui::PageError> {
    Err(ui::PageError::NotFound)
}
