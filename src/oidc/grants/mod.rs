//! The grant types of the token endpoint and what they share: the typed request, the
//! response, and signing the user's tokens once the database work is done.
//!
//! Each grant runs one `db.try_write` closure (check, consume, record — an `Err` rolls it all
//! back) and signs tokens afterwards, outside the transaction.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::Serialize;

use crate::clock::UnixTime;
use crate::crypto::key_pairs::Alg;
use crate::domain::claims::{self, Target, UserData};
use crate::domain::scope;
use crate::oidc::client_auth::FormParams;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens::{self, AccessClaims, IdTokenFacts};
use crate::state::AppState;
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
}

fn required(form: &FormParams, name: &'static str) -> Result<String, OAuthError> {
    form.get(name)
        .map(str::to_string)
        .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is missing")))
}

fn scope_param(form: &FormParams) -> Result<Option<Vec<String>>, OAuthError> {
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
    }
}

/// Whether the client receives refresh tokens at all: the administrator's "keep people signed
/// in" setting, which `offline_access` cannot override (that scope only lets a family outlive
/// the browser session, and is not granted to a client without refresh tokens).
pub fn issues_refresh_tokens(client: &Client) -> bool {
    client.allow_refresh
}

/// RFC 6749 §5.1 (and OIDC Core §3.1.3.3 for `id_token`).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The facts a user's tokens carry, from a code or a refresh token family.
pub struct UserTokens<'a> {
    pub client: &'a Client,
    pub alg: Alg,
    pub access: AccessClaims,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub sid: Option<&'a str>,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    /// The `claims` request parameter (JSON text).
    pub claims_request: Option<&'a str>,
    pub refresh_token: Option<String>,
    pub id_token_ttl: i64,
}

/// Signs the access token and, when `openid` was granted, the ID token (with `at_hash`).
/// CPU work: call it outside any database closure.
pub fn sign_user_tokens(
    state: &AppState,
    t: UserTokens<'_>,
    data: &UserData,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let access_token = tokens::sign_access(state, &t.access, t.alg, now)?;
    let id_token = if t.scopes.iter().any(|s| s == "openid") {
        let requested = claims::requested(t.claims_request, Target::IdToken);
        let released = claims::release(data, t.scopes, &requested);
        let facts = IdTokenFacts {
            client_id: &t.client.id,
            user_id: &data.user.id,
            auth_time: t.auth_time,
            nonce: t.nonce,
            sid: t.sid,
            amr: t.amr,
            acr: t.acr,
            at_hash: Some(tokens::at_hash(&access_token, t.alg)),
        };
        let c =
            tokens::id_token_claims(state.config.issuer(), &facts, released, now, t.id_token_ttl);
        Some(tokens::sign_id_token(state, &c, t.alg, now)?)
    } else {
        None
    };
    Ok(TokenResponse {
        expires_in: t.access.exp - now,
        scope: Some(t.access.scope.clone()),
        access_token,
        token_type: "Bearer",
        id_token,
        refresh_token: t.refresh_token,
    })
}

/// Whether the user may still use the client: enabled and, if the client lists allowed
/// groups, a member of one of them.
pub fn user_may_use(
    conn: &rusqlite::Connection,
    client: &Client,
    data: &UserData,
) -> Result<bool, crate::store::StoreError> {
    if data.user.disabled {
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
    fn malformed_scope_is_invalid_scope() {
        let e =
            TokenRequest::parse(&form("grant_type=client_credentials&scope=a%22b")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
