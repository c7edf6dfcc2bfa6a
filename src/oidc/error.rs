//! Protocol errors: RFC 6749 §5.2 / OIDC Core §3.1.2.6 codes. The client sees the code and a
//! fixed description; causes go to the log with the request id.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    /// RFC 8693 §2.2.2 (and RFC 8707 §2): the audience or resource is unknown or not allowed.
    InvalidTarget,
    /// RFC 8628 §3.5.
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }
}

/// An OAuth error for the token, revocation, introspection and userinfo endpoints.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// The client tried HTTP Basic: a 401 carries `WWW-Authenticate: Basic`.
    pub basic_auth_attempted: bool,
    /// Userinfo style: errors go in `WWW-Authenticate: Bearer`.
    pub bearer: bool,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_auth_attempted: false,
            bearer: false,
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    pub fn bearer(code: ErrorCode, d: impl Into<Cow<'static, str>>) -> Self {
        Self {
            bearer: true,
            ..Self::new(code, d)
        }
    }

    /// `error_description` must not contain `"` or `\` (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E).
    pub fn safe_description(&self) -> String {
        self.description
            .chars()
            .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            .collect()
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e.answer() {
            crate::store::Answer::Busy => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the server is busy, retry shortly",
            ),
            crate::store::Answer::Internal => OAuthError::server_error(),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken if self.bearer => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = self.safe_description();
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.bearer {
            // RFC 6750 §3: a request without any token gets no error attribute.
            let value = if self.code == ErrorCode::InvalidRequest && description.is_empty() {
                "Bearer".to_string()
            } else {
                format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.code.as_str(),
                    description
                )
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.insert_header((header::WWW_AUTHENTICATE, v));
            }
        } else if self.code == ErrorCode::InvalidClient && self.basic_auth_attempted {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                "Basic realm=\"token\", charset=\"UTF-8\"",
            ));
        }
        resp.json(json!({"error": self.code.as_str(), "error_description": description}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_description_never_carries_quotes_or_backslashes() {
        let e = OAuthError::invalid_request("bad \"value\" \\ here");
        assert_eq!(e.safe_description(), "bad value  here");
    }

    #[test]
    fn invalid_client_with_basic_gets_401_and_www_authenticate() {
        let mut e = OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");
        e.basic_auth_attempted = true;
        let r = e.error_response();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    }
}
