//! The grant types of the token endpoint and what they share: the typed request, "may this
//! client use this grant", and whether the user may still use the client.
//!
//! Each grant runs one `db.try_write` closure (check, consume, record — an `Err` rolls it all
//! back) and returns what it decided (`mint::UserGrant`); the token endpoint mints and signs
//! the tokens afterwards, outside the transaction (`mint`).

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use crate::domain::claims::UserData;
use crate::domain::scope;
use crate::oidc::client_auth::FormParams;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::store::clients::Client;

/// A token request, parsed once from the form.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3 with RFC 7636 §4.5.
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<Vec<String>>,
    },
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Vec<String>> },
    /// RFC 8693 §2.1.
    TokenExchange(Box<token_exchange::ExchangeRequest>),
    /// RFC 8628 §3.4.
    DeviceCode { device_code: String },
}

/// RFC 8628 §3.4: the grant type of the device flow's token request.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) fn required(form: &FormParams, name: &'static str) -> Result<String, OAuthError> {
    form.get(name)
        .map(str::to_string)
        .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is missing")))
}

pub(crate) fn scope_param(form: &FormParams) -> Result<Option<Vec<String>>, OAuthError> {
    form.get("scope")
        .map(|s| {
            scope::parse(s)
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "the scope is malformed"))
        })
        .transpose()
}

impl TokenRequest {
    pub fn parse(form: &FormParams) -> Result<Self, OAuthError> {
        let grant_type = required(form, "grant_type")?;
        match grant_type.as_str() {
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: required(form, "code")?,
                redirect_uri: form.get("redirect_uri").map(str::to_string),
                code_verifier: form.get("code_verifier").map(str::to_string),
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: required(form, "refresh_token")?,
                scope: scope_param(form)?,
            }),
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope: scope_param(form)?,
            }),
            token_exchange::GRANT_TYPE => Ok(TokenRequest::TokenExchange(Box::new(
                token_exchange::ExchangeRequest::parse(form)?,
            ))),
            DEVICE_CODE_GRANT => Ok(TokenRequest::DeviceCode {
                device_code: required(form, "device_code")?,
            }),
            _ => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "the grant type is not supported",
            )),
        }
    }
}

/// "May this client use this grant?", asked once per token request before any code or token
/// is looked at. RFC 6749 §5.2 unauthorized_client: "The authenticated client is not
/// authorized to use this authorization grant type."
pub fn permit(client: &Client, request: &TokenRequest) -> Result<(), OAuthError> {
    match request {
        TokenRequest::AuthorizationCode { .. } => Ok(()),
        TokenRequest::RefreshToken { .. } if !issues_refresh_tokens(client) => {
            Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "refresh tokens are turned off for this client",
            ))
        }
        TokenRequest::RefreshToken { .. } => Ok(()),
        TokenRequest::ClientCredentials { .. } => client_credentials::may_use(client),
        TokenRequest::TokenExchange(_) => token_exchange::may_use(client),
        TokenRequest::DeviceCode { .. } => crate::oidc::device_authorization::may_use(client),
    }
}

/// Whether the client receives refresh tokens at all: the administrator's "keep people signed
/// in" setting, which `offline_access` cannot override (that scope only lets a family outlive
/// the browser session, and is not granted to a client without refresh tokens).
pub fn issues_refresh_tokens(client: &Client) -> bool {
    client.allow_refresh
}

/// The scopes a person's grant to `client` may carry: requested ∩ known (built-in and the
/// custom claim scopes `custom`) ∩ allowed for the client; `offline_access` only for a client
/// that gets refresh tokens (OIDC Core §11: the consent screen must not promise "stay signed
/// in" otherwise). Used by the authorization and the device authorization endpoints.
pub fn user_scopes(client: &Client, requested: &[String], custom: &[String]) -> Vec<String> {
    let mut scopes = scope::grantable(requested, client.allowed_scopes.as_deref(), custom);
    if !issues_refresh_tokens(client) {
        scopes.retain(|s| s != "offline_access");
    }
    scopes
}

/// Whether the user may still use the client: enabled; if the client lists allowed groups, a
/// member of one of them; if it lets in only people with a role, holding one of its roles
/// (`data.roles` was loaded for this client).
pub fn user_may_use(
    conn: &rusqlite::Connection,
    client: &Client,
    data: &UserData,
) -> Result<bool, crate::store::StoreError> {
    if data.user.disabled {
        return Ok(false);
    }
    if client.require_role && data.roles.as_ref().is_none_or(Vec::is_empty) {
        return Ok(false);
    }
    if client.allowed_groups.is_empty() {
        return Ok(true);
    }
    let groups = if data.groups.is_empty() {
        crate::store::users::group_names(conn, &data.user.id)?
    } else {
        data.groups.clone()
    };
    Ok(groups.iter().any(|g| {
        client
            .allowed_groups
            .iter()
            .any(|a| a.eq_ignore_ascii_case(g))
    }))
}

/// Space-separated scope text as a list.
pub fn scope_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn form(body: &str) -> FormParams {
        FormParams::from_body(body.as_bytes()).unwrap()
    }

    #[test]
    fn missing_grant_type_is_invalid_request() {
        let e = TokenRequest::parse(&form("code=x")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn unknown_grant_type_is_unsupported_grant_type() {
        let e = TokenRequest::parse(&form("grant_type=password")).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
    }

    #[test]
    fn authorization_code_requires_a_code() {
        let e = TokenRequest::parse(&form("grant_type=authorization_code")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(matches!(
            TokenRequest::parse(&form("grant_type=authorization_code&code=c")).unwrap(),
            TokenRequest::AuthorizationCode { code, redirect_uri: None, code_verifier: None } if code == "c"
        ));
    }

    #[test]
    fn device_code_grant_requires_a_device_code() {
        let e = TokenRequest::parse(&form(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
        ))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(
            TokenRequest::parse(&form(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d"
            ))
            .unwrap(),
            TokenRequest::DeviceCode {
                device_code: "d".into()
            }
        );
    }

    #[test]
    fn malformed_scope_is_invalid_scope() {
        let e =
            TokenRequest::parse(&form("grant_type=client_credentials&scope=a%22b")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
