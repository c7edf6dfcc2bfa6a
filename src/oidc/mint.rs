//! Minting the tokens of a token response: the one place that builds and signs access tokens
//! (RFC 9068) and ID tokens (OIDC Core §2, with `at_hash`), and shapes the RFC 6749 §5.1 answer.
//!
//! The token endpoint decides once per request what every token of the client is made with
//! (`Minting::for_client`: signing algorithm and lifetimes); each grant returns what it
//! decided (`UserGrant`: who, which scopes, which access-token id it recorded, the refresh
//! token it issued); `Minting::user_tokens` or `Minting::client_token` turns that into the
//! response.
//!
//! Choices worth knowing:
//! - Every token is signed with the client's `signing_alg` by the key active for it now.
//! - Access token `aud` (RFC 9068 §3 wants a resource indicator; without a `resource`
//!   parameter the server picks a default): user tokens carry `[client_id, <issuer>/userinfo]`
//!   — the client's own API and the one resource this server hosts (Auth0 does the same);
//!   client-credentials tokens carry the client_id only. Userinfo requires its own URL.
//! - `roles` (the person's roles in this application) is in every user access token of an
//!   application that defines roles, whatever the scope: the application's API authorises
//!   from it. ID token and userinfo carry it only for the `roles` scope.
//! - `at_hash` (OIDC Core §3.1.3.6): left half of the hash named by the ID token's `alg`:
//!   SHA-256 for RS256 and ES256. JWA names no hash for EdDSA; OIDC Core 1.0 errata set 2 and
//!   node-oidc-provider (`oidc-token-hash`) use SHA-512 for Ed25519, and so do we.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::UnixTime;
use crate::config::Config;
use crate::crypto::jwt;
use crate::crypto::key_pairs::Alg;
use crate::domain::claims::{self, UserData};
use crate::oidc::error::OAuthError;
use crate::oidc::tokens::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::state::AppState;
use crate::store::clients::Client;

/// Token lifetimes in seconds: the client's override, else the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access: i64,
    pub id_token: i64,
    pub refresh: i64,
    pub refresh_absolute: i64,
}

impl Lifetimes {
    pub fn of(config: &Config, client: &Client) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            access: client
                .access_token_ttl
                .unwrap_or(secs(config.access_token_ttl)),
            id_token: client.id_token_ttl.unwrap_or(secs(config.id_token_ttl)),
            refresh: client
                .refresh_token_ttl
                .unwrap_or(secs(config.refresh_token_ttl)),
            refresh_absolute: secs(config.refresh_token_absolute_ttl),
        }
    }
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
    /// RFC 8693 §2.2.1, token exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What a user grant (authorization code, refresh token) decided, once its transaction
/// committed: everything the tokens say.
pub struct UserGrant {
    /// The access token's id, as recorded in the store by the grant.
    pub jti: String,
    pub data: UserData,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    pub sid: Option<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// Claims the `claims` request parameter asks for by name in the ID token (parsed once,
    /// by the grant, which loaded the user's data for them).
    pub id_token_claims: Vec<String>,
    /// The refresh token the grant issued (or handed out again), if any.
    pub refresh_token: Option<String>,
}

/// What every token of one client is made with, decided once per request.
#[derive(Debug, Clone, Copy)]
pub struct Minting {
    pub alg: Alg,
    pub life: Lifetimes,
}

impl Minting {
    pub fn for_client(config: &Config, client: &Client) -> Result<Self, OAuthError> {
        let alg = Alg::parse(&client.signing_alg).ok_or_else(|| {
            tracing::error!(client = %client.id, alg = %client.signing_alg, "unknown signing algorithm");
            OAuthError::server_error()
        })?;
        Ok(Self {
            alg,
            life: Lifetimes::of(config, client),
        })
    }

    /// The user's access token, the ID token when `openid` was granted (with `at_hash`), and
    /// the grant's refresh token. CPU work: call it outside any database closure.
    pub fn user_tokens(
        &self,
        state: &AppState,
        client: &Client,
        g: UserGrant,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let scope = g.scopes.join(" ");
        let access = AccessClaims {
            iss: state.config.issuer().to_string(),
            sub: g.data.user.id.clone(),
            aud: json!([client.id, state.url("/userinfo")]),
            exp: now.saturating_add(self.life.access),
            iat: now,
            jti: g.jti.clone(),
            client_id: client.id.clone(),
            scope: scope.clone(),
            auth_time: Some(g.auth_time),
            sid: g.sid.clone(),
            // Always, when the application defines roles: its API decides from them.
            roles: g.data.roles.clone(),
            act: None,
        };
        let access_token = sign(state, &access, self.alg, ACCESS_TOKEN_TYP, now)?;
        let id_token = if g.scopes.iter().any(|s| s == "openid") {
            let released = claims::release(&g.data, &g.scopes, &g.id_token_claims);
            let at_hash = at_hash(&access_token, self.alg);
            let c = id_token_claims(
                state.config.issuer(),
                client,
                &g,
                at_hash,
                released,
                now,
                self.life.id_token,
            );
            Some(sign(state, &c, self.alg, "JWT", now)?)
        } else {
            None
        };
        Ok(TokenResponse {
            expires_in: self.life.access,
            scope: Some(scope),
            access_token,
            token_type: "Bearer",
            id_token,
            refresh_token: g.refresh_token,
            issued_token_type: None,
        })
    }

    /// A client's access token for itself (client_credentials): `sub` is the client, no ID
    /// or refresh token (RFC 6749 §4.4.3). No row is written: see `client_credentials`.
    pub fn client_token(
        &self,
        state: &AppState,
        client: &Client,
        scope: String,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let access = AccessClaims {
            iss: state.config.issuer().to_string(),
            sub: client.id.clone(),
            aud: json!(client.id),
            exp: now.saturating_add(self.life.access),
            iat: now,
            jti: crate::crypto::secret::ordered_id(),
            client_id: client.id.clone(),
            scope,
            auth_time: None,
            sid: None,
            roles: None,
            act: None,
        };
        let access_token = sign(state, &access, self.alg, ACCESS_TOKEN_TYP, now)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.life.access,
            id_token: None,
            refresh_token: None,
            scope: Some(access.scope).filter(|s| !s.is_empty()),
            issued_token_type: None,
        })
    }

    /// An exchanged access token (RFC 8693): for the person, addressed to the target only,
    /// naming the requester as `client_id` and actor, with the person's roles in the target.
    /// `self` is the target's minting (its algorithm). No row is written: see
    /// `grants::token_exchange`.
    pub fn exchanged_token(
        &self,
        state: &AppState,
        requester: &Client,
        x: crate::oidc::grants::token_exchange::Exchanged,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let access = AccessClaims {
            iss: state.config.issuer().to_string(),
            sub: x.user_id,
            aud: json!(x.target.id),
            exp: now.saturating_add(x.ttl),
            iat: now,
            jti: crate::crypto::secret::ordered_id(),
            client_id: requester.id.clone(),
            scope: x.scope,
            auth_time: x.auth_time,
            sid: None,
            roles: x.roles,
            act: Some(crate::oidc::tokens::Actor {
                sub: requester.id.clone(),
            }),
        };
        let access_token = sign(state, &access, self.alg, ACCESS_TOKEN_TYP, now)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: x.ttl,
            id_token: None,
            refresh_token: None,
            scope: Some(access.scope).filter(|s| !s.is_empty()),
            issued_token_type: Some(crate::oidc::grants::token_exchange::ACCESS_TOKEN_TYPE),
        })
    }
}

/// OIDC Core §3.1.3.6: "Its value is the base64url encoding of the left-most half of the hash
/// of the octets of the ASCII representation of the access_token value, where the hash
/// algorithm used is the hash algorithm used in the alg Header Parameter of the ID Token's
/// JOSE Header." EdDSA (Ed25519): SHA-512, per the errata and common practice.
pub fn at_hash(access_token: &str, alg: Alg) -> String {
    match alg {
        Alg::RS256 | Alg::ES256 => {
            let h = Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(h.get(..16).unwrap_or_default())
        }
        Alg::EdDSA => {
            let h = Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(h.get(..32).unwrap_or_default())
        }
    }
}

/// The ID token claim set: the released user claims, then the protocol claims (which always
/// win). `iss` is byte for byte the issuer of discovery.
fn id_token_claims(
    issuer: &str,
    client: &Client,
    g: &UserGrant,
    at_hash: String,
    released: Map<String, Value>,
    now: UnixTime,
    ttl: i64,
) -> Map<String, Value> {
    let mut c = released;
    c.insert("iss".into(), json!(issuer));
    c.insert("sub".into(), json!(g.data.user.id));
    c.insert("aud".into(), json!(client.id));
    c.insert("exp".into(), json!(now.saturating_add(ttl)));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(g.auth_time));
    c.insert("azp".into(), json!(client.id));
    // Only when the authorization request carried one (OIDC Core §3.1.2.1).
    if let Some(n) = &g.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if let Some(sid) = &g.sid {
        c.insert("sid".into(), json!(sid));
    }
    if !g.amr.is_empty() {
        c.insert("amr".into(), json!(g.amr));
    }
    if let Some(acr) = &g.acr {
        c.insert("acr".into(), json!(acr));
    }
    c.insert("at_hash".into(), json!(at_hash));
    c
}

/// Signs with the key active for `alg` now.
fn sign<T: Serialize>(
    state: &AppState,
    claims: &T,
    alg: Alg,
    typ: &str,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let kid = state.keys.active_kid(alg, now).map_err(|e| {
        tracing::error!(error = %e, "no signing key");
        OAuthError::server_error()
    })?;
    jwt::sign(claims, &kid, alg, typ).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        OAuthError::server_error()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::store::users::User;

    #[test]
    fn at_hash_is_the_left_half_of_sha256_for_rs256_and_es256() {
        // OIDC Core example (§A.3 ID token with at_hash): access token and its at_hash.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, Alg::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(token, Alg::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn at_hash_for_eddsa_is_the_left_half_of_sha512() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let full = Sha512::digest(token.as_bytes());
        let h = at_hash(token, Alg::EdDSA);
        assert_eq!(URL_SAFE_NO_PAD.decode(&h).unwrap(), full[..32].to_vec());
        assert_eq!(h.len(), 43);
    }

    fn client() -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            public: true,
            auth_method: None,
            require_pkce: true,
            skip_consent: false,
            allow_refresh: true,
            allow_client_credentials: false,
            allowed_scopes: None,
            signing_alg: "RS256".into(),
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: true,
            frontchannel_logout_uri: None,
            logo_url: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_groups: vec![],
            exchange_sources: vec![],
            allow_device_code: false,
            require_role: false,
            exchange_token_ttl: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "u".into(),
            email: None,
            email_verified: false,
            display_name: None,
            given_name: None,
            family_name: None,
            picture: None,
            password_hash: None,
            disabled: false,
            require_passkey: false,
            claims: Map::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn grant(nonce: Option<&str>, amr: &[&str]) -> UserGrant {
        UserGrant {
            jti: "j".into(),
            data: UserData {
                user: user(),
                groups: vec![],
                group_claims: Map::new(),
                claim_scopes: vec![],
                roles: None,
            },
            scopes: vec!["openid".into()],
            nonce: nonce.map(str::to_string),
            auth_time: 100,
            sid: Some("s1".into()),
            amr: amr.iter().map(|s| s.to_string()).collect(),
            acr: None,
            id_token_claims: vec![],
            refresh_token: None,
        }
    }

    #[test]
    fn id_token_has_nonce_only_when_the_request_had_one() {
        let c = id_token_claims(
            "https://id",
            &client(),
            &grant(None, &[]),
            "h".into(),
            Map::new(),
            1000,
            60,
        );
        assert!(c.get("nonce").is_none());
        assert!(c.get("amr").is_none(), "empty amr is left out");
        let g = grant(Some("n"), &["pwd"]);
        let c = id_token_claims(
            "https://id",
            &client(),
            &g,
            "h".into(),
            Map::new(),
            1000,
            60,
        );
        assert_eq!(c.get("nonce"), Some(&json!("n")));
        assert_eq!(c.get("amr"), Some(&json!(["pwd"])));
    }

    #[test]
    fn id_token_protocol_claims_win_over_released_claims() {
        let mut released = Map::new();
        released.insert("sub".into(), json!("evil"));
        released.insert("email".into(), json!("a@b.c"));
        let c = id_token_claims(
            "https://id",
            &client(),
            &grant(None, &[]),
            "h".into(),
            released,
            1000,
            60,
        );
        assert_eq!(c.get("sub"), Some(&json!("u1")));
        assert_eq!(c.get("aud"), Some(&json!("app")));
        assert_eq!(c.get("azp"), Some(&json!("app")));
        assert_eq!(c.get("exp"), Some(&json!(1060)));
        assert_eq!(c.get("auth_time"), Some(&json!(100)));
        assert_eq!(c.get("sid"), Some(&json!("s1")));
        assert_eq!(c.get("email"), Some(&json!("a@b.c")));
    }
}
