//! The upstream handshake: `begin` builds the authorization URL and stores state, nonce and
//! PKCE verifier server-side (`upstream_logins`, keyed by the state's hash, bound to this
//! browser, 10 minutes); `finish` takes that row back exactly once and checks it before any
//! network call, then lets the provider's kind exchange the code and validate what comes back.

use serde::{Deserialize, Serialize};

use super::{Failure, Identity, github, oidc};
use crate::clock::UnixTime;
use crate::crypto::secret::{Secret, ct_eq, hash_token, random_token};
use crate::ops::upstream_providers::{self, callback_url};
use crate::state::AppState;
use crate::store::upstream::{Kind, PendingLogin, Provider};
use crate::store::{self, StoreError};

/// How long the person has to finish at the provider.
pub const HANDSHAKE_TTL: i64 = 10 * 60;

/// Why the handshake was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Sign in (possibly for a pending authorization request).
    Login,
    /// Link the identity to the signed-in account (from the account page).
    Link,
}

/// What `upstream_logins.data` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandshakeData {
    pub purpose: Purpose,
    /// Link: the account that asked.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The pending authorization request id and local `next`, for the way back.
    #[serde(default)]
    pub req: String,
    #[serde(default)]
    pub next: String,
    pub nonce: String,
    pub verifier: String,
}

/// Starts a handshake with `p`; returns the provider's authorization URL.
pub async fn begin(
    state: &AppState,
    browser: String,
    p: &Provider,
    purpose: Purpose,
    user_id: Option<String>,
    pending: &str,
    next: &str,
) -> Result<String, Failure> {
    if !p.enabled {
        return Err(Failure::ProviderGone);
    }
    let secret = secret_of(state, p)?;
    let csrf = random_token();
    let nonce = random_token();
    // RFC 7636 §4.1: 43 characters of [A-Z a-z 0-9 - _] with 256 bits of entropy.
    let verifier = random_token();
    let redirect = callback_url(&state.config.public_url);
    let url = match p.kind {
        Kind::Oidc => {
            oidc::authorize_url(
                state,
                p,
                secret.as_ref(),
                &redirect,
                &csrf,
                &nonce,
                &verifier,
            )
            .await?
        }
        Kind::Github => github::authorize_url(p, &redirect, &csrf, &verifier)?,
    };
    let data = HandshakeData {
        purpose,
        user_id,
        req: pending.to_string(),
        next: next.to_string(),
        nonce,
        verifier,
    };
    let json = serde_json::to_string(&data).map_err(|_| Failure::Internal)?;
    let (hash, pid, expires) = (hash_token(&csrf), p.id.clone(), state.now() + HANDSHAKE_TTL);
    state
        .db
        .write(move |c| store::upstream::insert_login(c, &hash, &pid, &browser, &json, expires))
        .await?;
    Ok(url)
}

fn secret_of(state: &AppState, p: &Provider) -> Result<Option<Secret<String>>, Failure> {
    upstream_providers::client_secret(&state.master_key, p).map_err(|e| {
        tracing::error!(provider = %p.slug, error = %e, "upstream client secret cannot be opened");
        Failure::Misconfigured
    })
}

/// The parameters of the authorization response (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 `iss`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
}

/// What is known about the handshake, even when it failed (for the page and the audit event).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub provider: Option<Provider>,
    pub data: Option<HandshakeData>,
}

impl Context {
    pub fn provider_name(&self) -> &str {
        self.provider
            .as_ref()
            .map(|p| p.display_name.as_str())
            .unwrap_or("")
    }
}

/// The state names a handshake of this browser that has not expired.
/// RFC 6749 §10.12: the client "MUST implement CSRF protection for its redirection URI …
/// binding the value used for CSRF protection to the user-agent's authenticated state".
pub fn check_pending(
    row: Option<&PendingLogin>,
    browser: &str,
    now: UnixTime,
) -> Result<(), Failure> {
    let Some(row) = row else {
        return Err(Failure::InvalidState);
    };
    if !ct_eq(row.browser.as_bytes(), browser.as_bytes()) {
        return Err(Failure::WrongBrowser);
    }
    if row.expires_at <= now {
        return Err(Failure::Expired);
    }
    Ok(())
}

/// RFC 9207 §2.4: "clients MUST compare the value of the iss parameter to the issuer
/// identifier of the authorization server … If the values do not match, the client MUST NOT
/// proceed with the authorization."
pub fn check_iss(sent: Option<&str>, expected: &str) -> Result<(), Failure> {
    match sent {
        Some(iss) if iss != expected => Err(Failure::IssuerMismatch),
        _ => Ok(()),
    }
}

/// Takes the handshake back (once) and completes it at the provider.
pub async fn finish(
    state: &AppState,
    browser: String,
    params: CallbackParams,
) -> (Context, Result<Identity, Failure>) {
    let mut ctx = Context::default();
    let result = finish_inner(state, browser, params, &mut ctx).await;
    (ctx, result)
}

async fn finish_inner(
    state: &AppState,
    browser: String,
    params: CallbackParams,
    ctx: &mut Context,
) -> Result<Identity, Failure> {
    let Some(csrf) = params.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Err(Failure::InvalidState);
    };
    let hash = hash_token(&csrf);
    let (row, provider) = state
        .db
        .write(move |c| -> Result<_, StoreError> {
            let row = store::upstream::take_login(c, &hash)?;
            let provider = match &row {
                Some(r) => store::upstream::by_id(c, &r.provider_id)?,
                None => None,
            };
            Ok((row, provider))
        })
        .await?;
    ctx.provider = provider.clone();
    ctx.data = row
        .as_ref()
        .and_then(|r| serde_json::from_str::<HandshakeData>(&r.data).ok());
    check_pending(row.as_ref(), &browser, state.now())?;
    let data = ctx.data.clone().ok_or(Failure::InvalidState)?;
    let p = provider
        .filter(|p| p.enabled)
        .ok_or(Failure::ProviderGone)?;

    // RFC 6749 §4.1.2.1: the provider sends `error` instead of a code.
    if let Some(error) = params.error {
        return Err(if error == "access_denied" {
            Failure::Cancelled
        } else {
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            Failure::ProviderError(code)
        });
    }
    let code = params
        .code
        .filter(|c| !c.is_empty())
        .ok_or(Failure::InvalidResponse)?;
    let secret = secret_of(state, &p)?;
    let redirect = callback_url(&state.config.public_url);
    match p.kind {
        Kind::Oidc => {
            check_iss(params.iss.as_deref(), &oidc::issuer(state, &p).await?)?;
            oidc::finish(
                state,
                &p,
                secret.as_ref(),
                &redirect,
                &code,
                &data.nonce,
                &data.verifier,
            )
            .await
        }
        Kind::Github => {
            github::finish(state, &p, secret.as_ref(), &redirect, &code, &data.verifier).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(browser: &str, expires_at: UnixTime) -> PendingLogin {
        PendingLogin {
            provider_id: "p".into(),
            browser: browser.into(),
            data: "{}".into(),
            expires_at,
        }
    }

    #[test]
    fn state_must_exist_belong_to_this_browser_and_be_fresh() {
        assert_eq!(check_pending(None, "b", 0), Err(Failure::InvalidState));
        assert_eq!(
            check_pending(Some(&row("other", 10)), "b", 0),
            Err(Failure::WrongBrowser)
        );
        assert_eq!(
            check_pending(Some(&row("b", 10)), "b", 10),
            Err(Failure::Expired)
        );
        assert_eq!(check_pending(Some(&row("b", 10)), "b", 9), Ok(()));
    }

    #[test]
    fn an_iss_naming_another_issuer_is_refused() {
        assert_eq!(check_iss(None, "https://a"), Ok(()));
        assert_eq!(check_iss(Some("https://a"), "https://a"), Ok(()));
        assert_eq!(
            check_iss(Some("https://evil"), "https://a"),
            Err(Failure::IssuerMismatch)
        );
    }
}
