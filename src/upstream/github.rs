//! GitHub upstreams: OAuth 2.0 without OpenID Connect. The authorization code (with PKCE
//! S256) is exchanged at `<base>/login/oauth/access_token`; the person is `GET <api>/user`
//! (the numeric `id` is the subject: logins can be renamed) and the email is the primary,
//! verified one from `GET <api>/user/emails`.
//!
//! Documented shapes: <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>,
//! <https://docs.github.com/en/rest/users/users#get-the-authenticated-user>,
//! <https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user>.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{Failure, Identity};
use crate::crypto::secret::{Secret, sha256};
use crate::ops::upstream_providers::github_bases;
use crate::state::AppState;
use crate::store::upstream::Provider;

const USER_AGENT: &str = concat!("Portcullis/", env!("CARGO_PKG_VERSION"));

/// The authorization URL at `<base>/login/oauth/authorize`.
pub fn authorize_url(
    p: &Provider,
    redirect_uri: &str,
    csrf: &str,
    verifier: &str,
) -> Result<String, Failure> {
    let (base, _) = github_bases(p);
    let mut u = url::Url::parse(&format!("{base}/login/oauth/authorize"))
        .map_err(|_| Failure::Misconfigured)?;
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    u.query_pairs_mut()
        .append_pair("client_id", &p.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &p.scopes)
        .append_pair("state", csrf)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(u.to_string())
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: i64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

fn unreachable(p: &Provider, what: &str, e: reqwest::Error) -> Failure {
    tracing::warn!(provider = %p.slug, error = %e, "{what} failed");
    if e.is_connect() || e.is_timeout() || e.is_request() {
        Failure::Unreachable
    } else {
        Failure::InvalidResponse
    }
}

fn refused(p: &Provider, e: crate::outbound::Refused) -> Failure {
    tracing::warn!(provider = %p.slug, error = %e, "GitHub request refused");
    Failure::Unreachable
}

async fn get_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    p: &Provider,
    url: &str,
    token: &str,
) -> Result<T, Failure> {
    let r = state
        .outbound
        .get(url)
        .map_err(|e| refused(p, e))?
        .bearer_auth(token)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("User-Agent", USER_AGENT)
        .send()
        .await
        .map_err(|e| unreachable(p, "GitHub API", e))?;
    if !r.status().is_success() {
        tracing::warn!(provider = %p.slug, status = r.status().as_u16(), %url, "GitHub API refused");
        return Err(Failure::InvalidResponse);
    }
    r.json()
        .await
        .map_err(|e| unreachable(p, "GitHub API response", e))
}

/// Exchanges the code, then reads the user and their primary verified email.
pub async fn finish(
    state: &AppState,
    p: &Provider,
    secret: Option<&Secret<String>>,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<Identity, Failure> {
    let (base, api) = github_bases(p);
    let mut form = vec![
        ("client_id", p.client_id.clone()),
        ("code", code.to_string()),
        ("redirect_uri", redirect_uri.to_string()),
        ("code_verifier", verifier.to_string()),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s.expose().clone()));
    }
    let r = state
        .outbound
        .post(&format!("{base}/login/oauth/access_token"))
        .map_err(|e| refused(p, e))?
        .header("Accept", "application/json")
        .header("User-Agent", USER_AGENT)
        .form(&form)
        .send()
        .await
        .map_err(|e| unreachable(p, "GitHub token request", e))?;
    let status = r.status();
    let body: TokenResponse = r
        .json()
        .await
        .map_err(|e| unreachable(p, "GitHub token response", e))?;
    // GitHub answers errors such as bad_verification_code with 200 and an `error` field.
    let token = match (body.access_token, body.error) {
        (Some(t), None) if status.is_success() && !t.is_empty() => t,
        (_, Some(e)) => {
            tracing::warn!(provider = %p.slug, error = %e, "GitHub refused the code");
            return Err(Failure::ProviderError(e));
        }
        _ => return Err(Failure::InvalidResponse),
    };
    let user: User = get_json(state, p, &format!("{api}/user"), &token).await?;
    let emails: Vec<Email> = get_json(state, p, &format!("{api}/user/emails"), &token).await?;
    let (email, email_verified) = pick_email(&emails);
    Ok(Identity {
        subject: user.id.to_string(),
        email,
        email_verified,
        username: Some(user.login),
        name: user.name.filter(|n| !n.trim().is_empty()),
        groups: Vec::new(),
        amr: Vec::new(),
        acr: None,
    })
}

/// The primary email if verified; else any verified one; else the primary one, unverified.
fn pick_email(emails: &[Email]) -> (Option<String>, bool) {
    if let Some(e) = emails.iter().find(|e| e.primary && e.verified) {
        return (Some(e.email.clone()), true);
    }
    if let Some(e) = emails.iter().find(|e| e.verified) {
        return (Some(e.email.clone()), true);
    }
    (
        emails.iter().find(|e| e.primary).map(|e| e.email.clone()),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(email: &str, primary: bool, verified: bool) -> Email {
        Email {
            email: email.into(),
            primary,
            verified,
        }
    }

    #[test]
    fn the_primary_verified_email_wins_and_unverified_is_marked() {
        let list = [e("a@x.org", false, true), e("b@x.org", true, true)];
        assert_eq!(pick_email(&list), (Some("b@x.org".into()), true));
        let list = [e("a@x.org", true, false), e("c@x.org", false, true)];
        assert_eq!(pick_email(&list), (Some("c@x.org".into()), true));
        let list = [e("a@x.org", true, false)];
        assert_eq!(pick_email(&list), (Some("a@x.org".into()), false));
        assert_eq!(pick_email(&[]), (None, false));
    }
}
