//! OpenID Connect upstreams through the `openidconnect` crate: discovery (cached for a few
//! minutes), the authorization URL (code flow, PKCE S256, state, nonce), the code exchange,
//! ID token validation (signature through the upstream JWKS, `iss`, `aud`, `exp` with a small
//! skew, `nonce`, `at_hash`) and userinfo when the ID token lacks claims.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use super::{Failure, Identity};
use crate::clock::UnixTime;
use crate::crypto::secret::Secret;
use crate::state::AppState;
use crate::store::upstream::Provider;

/// How long discovered metadata (with the JWKS) is reused. A signature that fails with the
/// cached keys is retried once with fresh ones (key rotation).
const METADATA_TTL: i64 = 5 * 60;

/// Allowed difference between our clock and the upstream's for `exp` and `iat`.
const CLOCK_SKEW: i64 = 60;

/// Claims beyond the standard ones: `groups` (for group mapping).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpstreamClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<serde_json::Value>,
}

impl AdditionalClaims for UpstreamClaims {}

impl UpstreamClaims {
    /// `groups` as a list of names (a single string counts as one group).
    fn names(&self) -> Vec<String> {
        match &self.groups {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

type Fields = IdTokenFields<
    UpstreamClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type OidcClient = Client<
    UpstreamClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovered metadata by issuer, with the time it was fetched. Process-wide: entries are
/// keyed by issuer URL and refreshed after `METADATA_TTL` or when a signature needs new keys.
static METADATA: LazyLock<Mutex<HashMap<String, (UnixTime, CoreProviderMetadata)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached(issuer: &str, now: UnixTime) -> Option<CoreProviderMetadata> {
    let map = METADATA.lock().ok()?;
    map.get(issuer)
        .filter(|(at, _)| now - *at < METADATA_TTL && *at <= now)
        .map(|(_, m)| m.clone())
}

fn remember(issuer: &str, now: UnixTime, m: &CoreProviderMetadata) {
    if let Ok(mut map) = METADATA.lock() {
        map.insert(issuer.to_string(), (now, m.clone()));
    }
}

/// The provider's metadata and JWKS (OpenID Connect Discovery 1.0), from the cache unless
/// `fresh`.
async fn metadata(
    state: &AppState,
    p: &Provider,
    fresh: bool,
) -> Result<CoreProviderMetadata, Failure> {
    let issuer = p.issuer.clone().unwrap_or_default();
    let now = state.now();
    if !fresh && let Some(m) = cached(&issuer, now) {
        return Ok(m);
    }
    let url = IssuerUrl::new(issuer.clone()).map_err(|_| Failure::Misconfigured)?;
    let m = CoreProviderMetadata::discover_async(url, &|r| state.outbound.send(r))
        .await
        .map_err(|e| {
            tracing::warn!(provider = %p.slug, error = %e, "upstream discovery failed");
            match e {
                openidconnect::DiscoveryError::Request(_) => Failure::Unreachable,
                _ => Failure::InvalidResponse,
            }
        })?;
    remember(&issuer, now, &m);
    Ok(m)
}

fn client(
    m: CoreProviderMetadata,
    p: &Provider,
    secret: Option<&Secret<String>>,
    redirect_uri: &str,
) -> Result<OidcClient, Failure> {
    // Client authentication at the token endpoint: client_secret_basic unless the provider
    // only offers client_secret_post (OIDC Discovery's default is basic).
    let post_only = m.token_endpoint_auth_methods_supported().is_some_and(|v| {
        !v.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && v.contains(&CoreClientAuthMethod::ClientSecretPost)
    });
    let redirect =
        RedirectUrl::new(redirect_uri.to_string()).map_err(|_| Failure::Misconfigured)?;
    let c = OidcClient::from_provider_metadata(
        m,
        ClientId::new(p.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.expose().clone())),
    )
    .set_redirect_uri(redirect);
    Ok(if post_only {
        c.set_auth_type(AuthType::RequestBody)
    } else {
        c
    })
}

/// The authorization request URL (code flow, PKCE S256, our state and nonce).
pub async fn authorize_url(
    state: &AppState,
    p: &Provider,
    secret: Option<&Secret<String>>,
    redirect_uri: &str,
    csrf: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, Failure> {
    let m = metadata(state, p, false).await?;
    let c = client(m, p, secret, redirect_uri)?;
    let (csrf, nonce) = (csrf.to_string(), nonce.to_string());
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_string()));
    let mut request = c
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(csrf),
            move || Nonce::new(nonce),
        )
        .set_pkce_challenge(challenge);
    for s in p.scopes.split_whitespace().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(s.to_string()));
    }
    let (url, _, _) = request.url();
    Ok(url.to_string())
}

/// The issuer the provider's metadata names (for the RFC 9207 `iss` check).
pub async fn issuer(state: &AppState, p: &Provider) -> Result<String, Failure> {
    Ok(metadata(state, p, false).await?.issuer().to_string())
}

fn to_system_time(t: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0))
}

/// An upstream ID token, with our additional claims (`groups`).
type IdToken = openidconnect::IdToken<
    UpstreamClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
/// The claims of an upstream ID token.
type IdClaims = openidconnect::IdTokenClaims<UpstreamClaims, CoreGenderClaim>;

/// Exchanges the code and validates the ID token; fills missing claims from userinfo.
pub async fn finish(
    state: &AppState,
    p: &Provider,
    secret: Option<&Secret<String>>,
    redirect_uri: &str,
    code: &str,
    nonce: &str,
    verifier: &str,
) -> Result<Identity, Failure> {
    let m = metadata(state, p, false).await?;
    let c = client(m, p, secret, redirect_uri)?;
    let tokens = exchange_code(state, &c, p, code, verifier).await?;
    let Some(id_token) = tokens.id_token() else {
        tracing::warn!(provider = %p.slug, "upstream sent no ID token");
        return Err(Failure::InvalidResponse);
    };
    let nonce = Nonce::new(nonce.to_string());
    let now = state.now();
    let (mut claims, mut at_hash_ok) = verify_id_token(&c, id_token, &tokens, &nonce, now);
    if matches!(
        claims,
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
    ) {
        // Perhaps the upstream rotated its keys: fetch them again, once.
        let fresh = client(metadata(state, p, true).await?, p, secret, redirect_uri)?;
        (claims, at_hash_ok) = verify_id_token(&fresh, id_token, &tokens, &nonce, now);
    }
    let claims = claims.map_err(|e| {
        tracing::warn!(provider = %p.slug, error = %e, "upstream ID token refused");
        match e {
            openidconnect::ClaimsVerificationError::InvalidNonce(_) => Failure::NonceMismatch,
            openidconnect::ClaimsVerificationError::Expired(_) => Failure::ClockSkew,
            _ => Failure::InvalidToken,
        }
    })?;
    if !at_hash_ok {
        tracing::warn!(provider = %p.slug, "upstream at_hash does not match the access token");
        return Err(Failure::InvalidToken);
    }

    let mut id = identity_from(&claims);
    if id.email.is_none() || id.username.is_none() || id.name.is_none() {
        fill_from_userinfo(state, &c, p, &tokens, &mut id).await?;
    }
    Ok(id)
}

/// The token request: the code with our PKCE verifier, at the upstream's token endpoint.
async fn exchange_code(
    state: &AppState,
    c: &OidcClient,
    p: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Tokens, Failure> {
    c.exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|_| Failure::InvalidResponse)?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&|r| state.outbound.send(r))
        .await
        .map_err(|e| {
            tracing::warn!(provider = %p.slug, error = %e, "upstream token request failed");
            match e {
                RequestTokenError::Request(_) => Failure::Unreachable,
                RequestTokenError::ServerResponse(r) => {
                    Failure::ProviderError(r.error().as_ref().to_string())
                }
                _ => Failure::InvalidResponse,
            }
        })
}

/// Checks the ID token with the client's keys: its claims (or why not), and whether its
/// `at_hash`, if any, matches the access token (true when the claims failed).
fn verify_id_token(
    c: &OidcClient,
    id_token: &IdToken,
    tokens: &Tokens,
    nonce: &Nonce,
    now: UnixTime,
) -> (
    Result<IdClaims, openidconnect::ClaimsVerificationError>,
    bool,
) {
    let verifier = c
        .id_token_verifier()
        // exp: accepted up to CLOCK_SKEW seconds after it passed on our clock.
        .set_time_fn(move || to_system_time(now - CLOCK_SKEW).into())
        // iat: not more than CLOCK_SKEW in our future.
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now + CLOCK_SKEW {
                Err(format!("issued in the future ({})", iat.timestamp()))
            } else {
                Ok(())
            }
        });
    let claims = id_token.claims(&verifier, nonce).cloned();
    let at_hash_ok = match &claims {
        Ok(claims) => match claims.access_token_hash() {
            None => true,
            Some(expected) => id_token
                .signing_alg()
                .ok()
                .zip(id_token.signing_key(&verifier).ok())
                .and_then(|(alg, key)| {
                    AccessTokenHash::from_token(tokens.access_token(), alg, key).ok()
                })
                .is_some_and(|actual| actual == *expected),
        },
        Err(_) => true,
    };
    (claims, at_hash_ok)
}

/// The identity as the verified ID token states it.
fn identity_from(claims: &IdClaims) -> Identity {
    Identity {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        username: claims.preferred_username().map(|u| u.to_string()),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        groups: claims.additional_claims().names(),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        acr: claims.auth_context_ref().map(|a| a.to_string()),
    }
}

/// OIDC Core §5.3: claims the ID token did not carry, from the userinfo endpoint (whose `sub`
/// must be the ID token's).
async fn fill_from_userinfo(
    state: &AppState,
    c: &OidcClient,
    p: &Provider,
    tokens: &Tokens,
    id: &mut Identity,
) -> Result<(), Failure> {
    let Ok(request) = c.user_info(
        tokens.access_token().clone(),
        Some(openidconnect::SubjectIdentifier::new(id.subject.clone())),
    ) else {
        return Ok(()); // no userinfo endpoint: the ID token is all there is
    };
    let info: UserInfoClaims<UpstreamClaims, CoreGenderClaim> = request
        .request_async(&|r| state.outbound.send(r))
        .await
        .map_err(|e| {
            tracing::warn!(provider = %p.slug, error = %e, "upstream userinfo failed");
            match e {
                openidconnect::UserInfoError::Request(_) => Failure::Unreachable,
                openidconnect::UserInfoError::ClaimsVerification(_) => Failure::InvalidToken,
                _ => Failure::InvalidResponse,
            }
        })?;
    if id.email.is_none() {
        // The email and whether it is verified come from the same source.
        id.email = info.email().map(|e| e.to_string());
        id.email_verified = info.email_verified().unwrap_or(false);
    }
    if id.username.is_none() {
        id.username = info.preferred_username().map(|u| u.to_string());
    }
    if id.name.is_none() {
        id.name = info.name().and_then(|n| n.get(None)).map(|n| n.to_string());
    }
    if id.groups.is_empty() {
        id.groups = info.additional_claims().names();
    }
    Ok(())
}
