//! grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6, OIDC Core §3.1.3).
//!
//! One transaction: consume the code atomically, check redirect URI and PKCE (a failure rolls
//! the consumption back, as node-oidc-provider checks before consuming), load the user,
//! start the refresh token family, record the access token and the session's client. A code
//! seen twice revokes what its first use issued (done by `store::codes::consume`).
//! The token endpoint mints the tokens afterwards (`mint`).

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, new_refresh_token, ordered_id, refresh_token_key};
use crate::domain::claims::{self, Target};
use crate::oidc::error::OAuthError;
use crate::oidc::grants::{issues_refresh_tokens, scope_list, user_may_use};
use crate::oidc::mint::{Lifetimes, Minting, UserGrant};
use crate::oidc::pkce;
use crate::state::AppState;
use crate::store;
use crate::store::audit::NewEvent;
use crate::store::clients::Client;
use crate::store::codes::{CodeGrant, Consumed};
use crate::store::tokens::{AccessRecord, RefreshGrant};

/// RFC 6749 §4.1.3: "ensure that the "redirect_uri" parameter is present if the
/// "redirect_uri" parameter was included in the initial authorization request …, and if
/// included ensure that their values are identical." The code records the redirect URI it
/// was issued for and whether the request named it; when it did not (the client's only
/// registered URI was used), the token request may leave it out too.
pub fn check_redirect_uri(grant: &CodeGrant, redirect_uri: Option<&str>) -> Result<(), OAuthError> {
    match redirect_uri {
        Some(r) if r == grant.redirect_uri => Ok(()),
        Some(_) => Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )),
        None if !grant.redirect_uri_sent => Ok(()),
        None => Err(OAuthError::invalid_grant(
            "redirect_uri is required: the authorization request included it",
        )),
    }
}

/// RFC 7636 §4.6: the server verifies the code_verifier against the code_challenge; a code
/// issued with a challenge is refused without a verifier, and a verifier sent for a code that
/// had no challenge is refused too (it shows the request does not belong to this code;
/// OAuth 2.0 Security BCP §2.1.1 PKCE downgrade).
pub fn check_pkce(grant: &CodeGrant, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (grant.code_challenge.as_deref(), verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent for a code issued without a code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

/// The ids a code exchange may write: the refresh token (and its key), the family, the
/// access token's `jti`.
pub(super) struct NewIds {
    refresh_token: String,
    refresh_hash: String,
    family_id: String,
    jti: String,
}

impl NewIds {
    pub(super) fn new() -> Self {
        let refresh_token = new_refresh_token();
        Self {
            refresh_hash: refresh_token_key(&refresh_token),
            refresh_token,
            family_id: ordered_id(),
            jti: ordered_id(),
        }
    }
}

enum Redeemed {
    Fresh(Box<UserGrant>),
    Replayed,
}

/// Redeems `code` for `client`: in one transaction, consumes it and checks redirect URI and
/// PKCE, loads the user, starts the refresh token family (when the client gets refresh
/// tokens), records the access token and the session's client. Returns what the tokens say.
pub async fn redeem(
    state: &AppState,
    client: &Client,
    minting: &Minting,
    code: &str,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    now: UnixTime,
) -> Result<UserGrant, OAuthError> {
    let life = minting.life;
    let c = client.clone();
    let code_hash = hash_token(code);
    // Random values and their hashes are made before the transaction (the writer thread
    // does nothing it need not).
    let ids = NewIds::new();
    let outcome = state
        .db
        .try_write(move |conn| -> Result<Redeemed, OAuthError> {
            let grant = match store::codes::consume(conn, &code_hash, &c.id, now)? {
                Consumed::Fresh(g) => *g,
                Consumed::Replayed => {
                    store::audit::record(
                        conn,
                        &NewEvent {
                            kind: "token.code_replayed",
                            client_id: Some(&c.id),
                            ..Default::default()
                        },
                        now,
                    )?;
                    return Ok(Redeemed::Replayed);
                }
                Consumed::Invalid => {
                    return Err(OAuthError::invalid_grant(
                        "the code is invalid, expired or was issued to another client",
                    ));
                }
            };
            check_redirect_uri(&grant, redirect_uri.as_deref())?;
            check_pkce(&grant, code_verifier.as_deref())?;
            let decided = record(conn, &c, grant, &code_hash, ids, life, now)?;
            Ok(Redeemed::Fresh(Box::new(decided)))
        })
        .await?;
    match outcome {
        Redeemed::Fresh(decided) => Ok(*decided),
        Redeemed::Replayed => {
            tracing::warn!(client = %client.id, "authorization code replayed; its tokens were revoked");
            Err(OAuthError::invalid_grant(
                "the code was already used; tokens issued from it are revoked",
            ))
        }
    }
}

/// The writes of a fresh code's exchange (inside `redeem`'s transaction): the refresh token
/// family, the access token's record, the session's client. The device code grant records an
/// approved device authorization through it too (a `CodeGrant` without redirect URI, PKCE or
/// nonce, `code_hash` the device code's hash), so both issue tokens under the same rules.
pub(super) fn record(
    conn: &rusqlite::Connection,
    c: &Client,
    grant: CodeGrant,
    code_hash: &str,
    ids: NewIds,
    life: Lifetimes,
    now: UnixTime,
) -> Result<UserGrant, OAuthError> {
    let scopes = scope_list(&grant.scope);
    let id_token_claims = claims::requested(grant.claims.as_deref(), Target::IdToken);
    let Some(data) = claims::load(conn, &grant.user_id, &c.id, &scopes, &id_token_claims)? else {
        return Err(OAuthError::invalid_grant("the user no longer exists"));
    };
    if !user_may_use(conn, c, &data)? {
        return Err(OAuthError::invalid_grant(
            "the user may not use this client",
        ));
    }
    let refresh = issues_refresh_tokens(c);
    let offline = refresh && scopes.iter().any(|s| s == "offline_access");
    let NewIds {
        refresh_token,
        refresh_hash,
        family_id,
        jti,
    } = ids;
    let refresh_token = refresh.then_some(refresh_token);
    let exchange = Exchange {
        client: c,
        grant: &grant,
        code_hash,
        life,
        now,
    };
    if refresh_token.is_some() {
        store::tokens::insert_refresh(
            conn,
            &refresh_hash,
            &exchange.refresh_grant(family_id.clone(), offline),
            now,
            now.saturating_add(life.refresh),
        )?;
    }
    store::tokens::insert_access(
        conn,
        &exchange.access_record(jti.clone(), refresh.then_some(family_id)),
    )?;
    if let Some(sid) = &grant.sid {
        store::sessions::record_client(conn, sid, &c.id, now)?;
    }
    Ok(UserGrant {
        jti,
        data,
        scopes,
        nonce: grant.nonce,
        auth_time: grant.auth_time,
        sid: grant.sid,
        amr: grant.amr,
        acr: grant.acr,
        id_token_claims,
        refresh_token,
    })
}

/// One code exchange, for building the rows it writes.
struct Exchange<'a> {
    client: &'a Client,
    grant: &'a CodeGrant,
    code_hash: &'a str,
    life: Lifetimes,
    now: UnixTime,
}

impl Exchange<'_> {
    /// The new refresh token family's grant, ending `refresh_absolute` after the sign-in.
    fn refresh_grant(&self, family_id: String, offline: bool) -> RefreshGrant {
        let grant = self.grant;
        let family_expires_at = grant.auth_time.saturating_add(self.life.refresh_absolute);
        RefreshGrant {
            family_id,
            client_id: self.client.id.clone(),
            user_id: grant.user_id.clone(),
            sid: grant.sid.clone(),
            scope: grant.scope.clone(),
            claims: grant.claims.clone(),
            auth_time: grant.auth_time,
            amr: grant.amr.clone(),
            acr: grant.acr.clone(),
            offline,
            code_hash: Some(self.code_hash.to_string()),
            family_expires_at,
        }
    }

    /// The access token's record, in its refresh token family when there is one.
    fn access_record(&self, jti: String, family_id: Option<String>) -> AccessRecord {
        let grant = self.grant;
        AccessRecord {
            jti,
            client_id: self.client.id.clone(),
            user_id: Some(grant.user_id.clone()),
            family_id,
            code_hash: Some(self.code_hash.to_string()),
            sid: grant.sid.clone(),
            scope: grant.scope.clone(),
            claims: grant.claims.clone(),
            issued_at: self.now,
            expires_at: self.now.saturating_add(self.life.access),
            revoked_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oidc::error::ErrorCode;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn grant(challenge: Option<&str>) -> CodeGrant {
        CodeGrant {
            client_id: "app".into(),
            user_id: "u1".into(),
            sid: None,
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_sent: true,
            scope: "openid".into(),
            nonce: None,
            code_challenge: challenge.map(str::to_string),
            claims: None,
            auth_time: 0,
            amr: vec![],
            acr: None,
        }
    }

    #[test]
    fn pkce_verifier_matching_the_challenge_is_accepted() {
        assert!(check_pkce(&grant(Some(CHALLENGE)), Some(VERIFIER)).is_ok());
    }

    #[test]
    fn pkce_missing_verifier_is_invalid_grant() {
        let e = check_pkce(&grant(Some(CHALLENGE)), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[test]
    fn pkce_wrong_verifier_is_invalid_grant() {
        let wrong = format!("{}x", &VERIFIER[..42]);
        let e = check_pkce(&grant(Some(CHALLENGE)), Some(&wrong)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[test]
    fn pkce_verifier_without_a_challenge_is_invalid_grant() {
        let e = check_pkce(&grant(None), Some(VERIFIER)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(check_pkce(&grant(None), None).is_ok());
    }

    #[test]
    fn pkce_accepts_a_128_character_verifier() {
        let v = "a".repeat(128);
        let challenge = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(crate::crypto::secret::sha256(v.as_bytes()))
        };
        assert!(check_pkce(&grant(Some(&challenge)), Some(&v)).is_ok());
    }

    #[test]
    fn redirect_uri_must_be_byte_identical() {
        assert!(check_redirect_uri(&grant(None), Some("https://app.example/cb")).is_ok());
        for bad in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example/other",
        ] {
            let e = check_redirect_uri(&grant(None), Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{bad}");
        }
    }

    #[test]
    fn redirect_uri_may_be_omitted_only_when_the_authorization_request_omitted_it() {
        let e = check_redirect_uri(&grant(None), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        let mut g = grant(None);
        g.redirect_uri_sent = false;
        assert!(check_redirect_uri(&g, None).is_ok());
        assert!(check_redirect_uri(&g, Some("https://app.example/cb")).is_ok());
        assert!(check_redirect_uri(&g, Some("https://app.example/other")).is_err());
    }
}
