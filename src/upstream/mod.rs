//! Portcullis as a relying party of upstream identity providers ("Sign in with Google /
//! GitHub / any OpenID Connect provider"). The login page offers one button per enabled
//! provider; the handshake ends in an ordinary Portcullis session (`amr` = `fed` plus the
//! upstream's), so every downstream app sees one local identity whatever the upstream.
//!
//! - `providers`: management (CLI, console, admin API) with validation and presets
//! - `handshake`: start and finish, state/nonce/PKCE stored server-side, bound to the browser
//! - `oidc` (the `openidconnect` crate) and `github` (OAuth 2.0 + REST API): the two kinds
//! - `accounts`: linking by (provider, subject) and the per-provider account policy
//! - `login`, `account`: the HTTP handlers; `cli`: `portcullis upstream …`

pub mod accounts;
pub mod github;
pub mod handshake;
pub mod login;
pub mod oidc;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use crate::state::AppState;
use crate::store::{self, StoreError};

/// What an upstream said about the person, whichever the kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The stable identifier at the provider (`sub`, or GitHub's numeric user id).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub name: Option<String>,
    /// The upstream `groups` claim (for group mapping).
    pub groups: Vec<String>,
    /// The upstream's `amr` and `acr`, when it sent them.
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

/// Why a federated sign-in did not complete. Each is a page with a fixed message (and a way
/// back to the sign-in page) and the `reason` of an `upstream.login_failed` audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No such handshake: forged, already used, or never started.
    InvalidState,
    /// The handshake was started in another browser.
    WrongBrowser,
    Expired,
    /// The person cancelled at the provider (`error=access_denied`).
    Cancelled,
    /// The provider answered with an OAuth error code.
    ProviderError(String),
    Unreachable,
    InvalidResponse,
    /// The ID token (or userinfo) failed validation: signature, iss, aud, at_hash…
    InvalidToken,
    NonceMismatch,
    /// The authorization response named another issuer (RFC 9207, mix-up attack).
    IssuerMismatch,
    ClockSkew,
    /// The provider is unknown or disabled.
    ProviderGone,
    Misconfigured,
    /// `existing_only` and the identity is not linked.
    NotLinked,
    /// Another local account already uses the upstream's email address.
    EmailInUse,
    AccountDisabled,
    PasskeyRequired,
    /// Linking an identity that is already linked to another account.
    LinkedElsewhere,
    /// Linking, but the browser is no longer signed in as the account that started it.
    SignedOut,
    Unavailable,
    Internal,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e.answer() {
            store::Answer::Busy => Failure::Unavailable,
            store::Answer::Internal => Failure::Internal,
        }
    }
}

impl Failure {
    /// A stable word for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::InvalidState => "invalid_state",
            Failure::WrongBrowser => "wrong_browser",
            Failure::Expired => "expired",
            Failure::Cancelled => "cancelled",
            Failure::ProviderError(_) => "provider_error",
            Failure::Unreachable => "unreachable",
            Failure::InvalidResponse => "invalid_response",
            Failure::InvalidToken => "invalid_token",
            Failure::NonceMismatch => "nonce_mismatch",
            Failure::IssuerMismatch => "issuer_mismatch",
            Failure::ClockSkew => "clock_skew",
            Failure::ProviderGone => "provider_unavailable",
            Failure::Misconfigured => "misconfigured",
            Failure::NotLinked => "not_linked",
            Failure::EmailInUse => "email_in_use",
            Failure::AccountDisabled => "account_disabled",
            Failure::PasskeyRequired => "passkey_required",
            Failure::LinkedElsewhere => "linked_elsewhere",
            Failure::SignedOut => "signed_out",
            Failure::Unavailable => "unavailable",
            Failure::Internal => "internal",
        }
    }

    /// Status, heading and message for the person; `provider` is the display name.
    pub fn page(&self, provider: &str) -> (StatusCode, &'static str, String) {
        let p = if provider.is_empty() {
            "the provider"
        } else {
            provider
        };
        match self {
            Failure::InvalidState | Failure::WrongBrowser => (
                StatusCode::BAD_REQUEST,
                "This sign-in cannot be continued",
                "It was already used, or it was started in another browser. Start again from the sign-in page.".into(),
            ),
            Failure::Expired => (
                StatusCode::BAD_REQUEST,
                "This sign-in took too long",
                "For your security it expired. Start again from the sign-in page.".into(),
            ),
            Failure::Cancelled => (
                StatusCode::BAD_REQUEST,
                "Sign-in cancelled",
                format!("You did not allow signing in with {p}. You can try again or sign in another way."),
            ),
            Failure::ProviderError(code) => (
                StatusCode::BAD_GATEWAY,
                "The sign-in was refused",
                format!("{p} could not sign you in (it answered: {code}). Try again, or sign in another way."),
            ),
            Failure::Unreachable => (
                StatusCode::BAD_GATEWAY,
                "The provider cannot be reached",
                format!("{p} did not answer. Try again in a moment, or sign in another way."),
            ),
            Failure::InvalidResponse => (
                StatusCode::BAD_GATEWAY,
                "The provider's answer cannot be used",
                format!("{p} answered in a way this server does not understand. Try again; if it keeps happening, tell your administrator."),
            ),
            Failure::InvalidToken | Failure::NonceMismatch | Failure::IssuerMismatch => (
                StatusCode::BAD_REQUEST,
                "The sign-in could not be verified",
                format!("The answer could not be confirmed as coming from {p} for this sign-in, so it was refused. Start again from the sign-in page."),
            ),
            Failure::ClockSkew => (
                StatusCode::BAD_REQUEST,
                "The sign-in could not be verified in time",
                format!("The clocks of this server and {p} disagree, or the answer is out of date. Try again; if it keeps happening, tell your administrator."),
            ),
            Failure::ProviderGone => (
                StatusCode::NOT_FOUND,
                "This sign-in option is not available",
                "It was turned off or removed. Sign in another way.".into(),
            ),
            Failure::Misconfigured => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "This sign-in option is not set up correctly",
                format!("Signing in with {p} cannot work until your administrator fixes its settings. Sign in another way."),
            ),
            Failure::NotLinked => (
                StatusCode::FORBIDDEN,
                "No account here for you yet",
                format!("Your {p} account is not linked to an account here. Ask your administrator for an account, or sign in another way and link {p} from your account page."),
            ),
            Failure::EmailInUse => (
                StatusCode::CONFLICT,
                "You may already have an account",
                format!("An account here already uses the email address {p} gave. Sign in to it with your password or passkey, then link {p} from your account page."),
            ),
            Failure::AccountDisabled => (
                StatusCode::FORBIDDEN,
                "Your account is disabled",
                "Ask your administrator to enable it.".into(),
            ),
            Failure::PasskeyRequired => (
                StatusCode::FORBIDDEN,
                "Sign in with your passkey",
                format!("Your account must confirm sign-in with a passkey, which signing in with {p} cannot do. Sign in with your passkey instead."),
            ),
            Failure::LinkedElsewhere => (
                StatusCode::CONFLICT,
                "Already linked to another account",
                format!("This {p} account is linked to a different account here. Unlink it there first."),
            ),
            Failure::SignedOut => (
                StatusCode::BAD_REQUEST,
                "Sign in again",
                format!("You were signed out while linking {p}. Sign in and try again from your account page."),
            ),
            Failure::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "The server is busy. Wait a moment and try again.".into(),
            ),
            Failure::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An unexpected error occurred. Try again; if it keeps happening, tell your administrator.".into(),
            ),
        }
    }
}

// ---- the sign-in page ----------------------------------------------------------------------

/// A "Continue with …" button on the sign-in page.
#[derive(Debug, Clone)]
pub struct ProviderButton {
    pub name: String,
    pub icon: Option<String>,
    pub href: String,
}

/// `/login/upstream/<slug>` carrying the pending request and the local `next`.
pub fn start_path(slug: &str, pending: &str, next: &str) -> String {
    let mut path = format!("/login/upstream/{slug}");
    let mut sep = '?';
    for (k, v) in [("req", pending), ("next", next)] {
        if !v.is_empty() {
            path.push(sep);
            path.push_str(&format!("{k}={}", crate::web::ui::enc(v)));
            sep = '&';
        }
    }
    path
}

/// One button per enabled provider for the sign-in page.
pub async fn login_buttons(
    state: &AppState,
    pending: &str,
    next: &str,
) -> Result<Vec<ProviderButton>, StoreError> {
    let list = state.db.read(|c| store::upstream::list(c, true)).await?;
    Ok(list
        .into_iter()
        .map(|p| ProviderButton {
            href: start_path(&p.slug, pending, next),
            name: p.display_name,
            icon: p.icon,
        })
        .collect())
}

/// `kc_idp_hint=<slug>` on the authorization request: where the sign-in page sends the browser
/// straight away. The hint is used once (cleared), so coming back to the sign-in page after a
/// failed or cancelled upstream sign-in shows every option.
pub async fn hinted_start(
    state: &AppState,
    req: &HttpRequest,
    pending: &str,
) -> Result<Option<String>, StoreError> {
    if pending.is_empty() {
        return Ok(None);
    }
    let Some((mut ar, _)) = crate::oidc::authorize::load_pending(state, req, pending).await? else {
        return Ok(None);
    };
    let Some(slug) = ar.idp_hint.take() else {
        return Ok(None);
    };
    crate::oidc::authorize::update_pending(state, pending, &ar).await?;
    let s = slug.clone();
    let provider = state
        .db
        .read(move |c| store::upstream::by_slug(c, &s))
        .await?;
    Ok(provider
        .filter(|p| p.enabled)
        .map(|p| start_path(&p.slug, pending, "")))
}
