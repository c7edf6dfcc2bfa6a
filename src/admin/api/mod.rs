//! The admin HTTP API under /admin/api/: JSON for automation (Ansible, scripts), with bearer
//! API keys (`ApiKey`). No cookies, so no CSRF. Every error is
//! `{"error": stable_code, "message": "…", "field"?: "…"}` with a fitting status; the
//! OpenAPI 3.1 document at /admin/api/openapi.json describes every route below.

pub mod audit;
pub mod clients;
pub mod groups;
pub mod roles;
pub mod sessions;
pub mod signing_keys;
pub mod upstream;
pub mod users;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::ops::api_keys::{self, Check};
use crate::ops::{Actor, OpError};
use crate::state::AppState;
use crate::store::StoreError;

/// The OpenAPI document, written by hand beside the routes it describes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Default and largest page sizes of list endpoints.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// GET /admin/api/openapi.json — public, like any API description.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(OPENAPI)
}

pub async fn unknown_endpoint(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_endpoint",
        format!(
            "There is no {} {} in the admin API; see /admin/api/openapi.json.",
            req.method(),
            req.path()
        ),
    ))
}

// ---- errors --------------------------------------------------------------------------------

/// `{"error": code, "message": …, "field"?: …}`. Codes are stable; messages are for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such {what}."),
        )
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    /// A 500 naming the request id (the cause is in the log under it).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!(
                "Something went wrong (request {}).",
                crate::web::request_id::current()
            ),
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if let (Some(f), Some(obj)) = (&self.field, body.as_object_mut()) {
            obj.insert("field".into(), serde_json::json!(f));
        }
        let mut resp = HttpResponse::build(self.status);
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"admin api\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header((
                header::RETRY_AFTER,
                crate::web::ui::BUSY_RETRY_SECS.to_string(),
            ));
        }
        resp.json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.answer() {
            crate::store::Answer::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The server is busy; try again in a moment.",
            ),
            crate::store::Answer::Internal => ApiError::internal(),
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(f) => ApiError::invalid(f.field, f.message),
            OpError::Conflict(f) => ApiError {
                field: Some(f.field.to_string()),
                ..ApiError::new(StatusCode::CONFLICT, "conflict", f.message)
            },
            OpError::NotFound => ApiError::not_found("resource"),
            OpError::Store(s) => s.into(),
            OpError::Sealing => {
                tracing::error!("a secret could not be sealed with the master key");
                ApiError::internal()
            }
        }
    }
}

/// Maps `OpError::NotFound` to a 404 naming `what`.
pub fn op(what: &'static str) -> impl Fn(OpError) -> ApiError {
    move |e| match e {
        OpError::NotFound => ApiError::not_found(what),
        e => e.into(),
    }
}

// ---- extractors ----------------------------------------------------------------------------

/// The API key of the request, checked by [`authenticate`] before anything else runs.
#[derive(Clone)]
pub struct ApiKey {
    pub key: crate::store::api_keys::ApiKey,
}

impl ApiKey {
    pub fn actor(&self) -> Actor {
        Actor::ApiKey(self.key.id.clone())
    }
}

impl FromRequest for ApiKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        std::future::ready(req.extensions().get::<ApiKey>().cloned().ok_or_else(|| {
            tracing::error!("admin API route reached without authentication");
            ApiError::from(StoreError::Join("no API key".into()))
        }))
    }
}

/// Authenticates every /admin/api request (but the public OpenAPI document) before its
/// route is chosen or its body read: a wrong or revoked key is a 401 whatever the body, the
/// method or the path (handler extractors run concurrently, so a check among them could
/// lose the race to a body parser's 422).
pub async fn authenticate(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    if req.path() == "/admin/api/openapi.json" {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    match check_key(req.request()).await {
        Ok(key) => {
            req.extensions_mut().insert(key);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(e) => Ok(req.error_response(e)),
    }
}

async fn check_key(req: &HttpRequest) -> Result<ApiKey, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::from(StoreError::Join("no state".into())))?
        .clone();
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "Send an API key as `Authorization: Bearer <key>` (create one in the console under API keys).",
        ));
    };
    let now = state.now();
    let check = state
        .db
        .write(move |c| api_keys::check(c, &presented, now))
        .await?;
    match check {
        Check::Valid(key) => Ok(ApiKey { key }),
        Check::Unknown => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "This API key is not known.",
        )),
        Check::Revoked => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "revoked_api_key",
            "This API key was revoked.",
        )),
        Check::CreatorNotAdmin => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The person who created this API key is no longer an administrator.",
        )),
    }
}

/// A JSON body (an empty body reads as `{}`). A missing or unknown field is a 422 naming it;
/// other malformed JSON is a 400.
pub struct ApiJson<T>(pub T);

fn backquoted(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_string())
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|_| ApiError::bad_request("The request body could not be read."))?;
            let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                &body
            };
            serde_json::from_slice(text).map(ApiJson).map_err(|e| {
                let msg = e.to_string();
                if let Some(f) = backquoted(&msg, "missing field `") {
                    ApiError::invalid(f, "This field is required.")
                } else if let Some(f) = backquoted(&msg, "unknown field `") {
                    ApiError::invalid(
                        f,
                        "This field is not known here; see /admin/api/openapi.json.",
                    )
                } else {
                    ApiError::bad_request(format!("The JSON body is not valid: {msg}."))
                }
            })
        })
    }
}

/// Query parameters, with a JSON error when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            serde_urlencoded::from_str(req.query_string())
                .map(ApiQuery)
                .map_err(|e| ApiError::bad_request(format!("The query is not valid: {e}."))),
        )
    }
}

/// `limit` and `offset` of list endpoints.
#[derive(Debug, Deserialize)]
pub struct Paging {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl Paging {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
    pub fn offset(&self) -> u32 {
        self.offset.unwrap_or(0)
    }
}

/// For PATCH bodies: absent (`None`), `null` (`Some(None)`) or a value.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub fn created(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

pub fn ok(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        assert_eq!(
            backquoted(
                "missing field `username` at line 1 column 2",
                "missing field `"
            ),
            Some("username".into())
        );
        assert_eq!(backquoted("expected value", "missing field `"), None);
    }

    #[test]
    fn the_openapi_document_is_json_and_3_1() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        assert!(v["paths"].as_object().unwrap().len() > 15);
    }
}
