//! grant_type=client_credentials (RFC 6749 §4.4): a confidential client acting for itself.
//! An access token only (§4.4.3: "A refresh token SHOULD NOT be included"), no ID token
//! (there is no user), `sub` = the client id.

use crate::domain::claims;
use crate::domain::scope;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens;
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;

/// Scopes that only mean something for a user: never granted to a client for itself.
const USER_ONLY: &[&str] = &["openid", "offline_access"];

/// RFC 6749 §4.4.2 / §4.1.2.1: only confidential clients registered for this grant (asked
/// by `grants::permit`).
pub fn may_use(client: &Client) -> Result<(), OAuthError> {
    if client.public || !client.allow_client_credentials {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ));
    }
    Ok(())
}

/// The granted scope: requested ∩ allowed (RFC 6749 §3.3 lets the server grant less), where
/// "allowed" is the client's list, or every scope the server knows when it has none; with no
/// `scope` parameter, the client's allowed scopes. User-only scopes are dropped.
pub fn granted_scope(
    client: &Client,
    requested: Option<&[String]>,
    custom: &[String],
) -> Vec<String> {
    let requested: Vec<String> = match requested {
        Some(r) => r.to_vec(),
        None => client
            .allowed_scopes
            .as_deref()
            .and_then(scope::parse)
            .unwrap_or_default(),
    };
    let granted = match client.allowed_scopes.as_deref() {
        // The administrator listed this client's scopes: API scopes need not be known to
        // the server.
        Some(allowed) => requested
            .into_iter()
            .filter(|s| allowed.split_whitespace().any(|a| a == s))
            .collect(),
        None => scope::grantable(&requested, None, custom),
    };
    granted
        .into_iter()
        .filter(|s| !USER_ONLY.contains(&s.as_str()))
        .collect()
}

/// A token the client obtained for itself (client_credentials): its subject is the client.
pub fn is_client_token(claims: &tokens::AccessClaims) -> bool {
    claims.sub == claims.client_id && claims.auth_time.is_none() && claims.sid.is_none()
}

/// The scope of the client's token for itself (the token endpoint mints it with
/// `Minting::client_token`). No row is written at issuance: a client's token for itself is
/// checked by signature and expiry, and revoking it writes a server-side record that
/// introspection honours (see `is_client_token`). Issuance stays a read, off the single-writer
/// path.
pub async fn scope(
    state: &AppState,
    client: &Client,
    requested: Option<Vec<String>>,
) -> Result<String, OAuthError> {
    let custom = claims::custom_scopes(&state.db.read(store::users::claim_scopes).await?);
    Ok(granted_scope(client, requested.as_deref(), &custom).join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(public: bool, allowed: bool, scopes: Option<&str>) -> Client {
        Client {
            id: "svc".into(),
            name: "Service".into(),
            secret_hash: (!public).then(|| "x".into()),
            public,
            auth_method: None,
            require_pkce: true,
            skip_consent: false,
            allow_refresh: true,
            allow_client_credentials: allowed,
            allowed_scopes: scopes.map(str::to_string),
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

    #[test]
    fn only_confidential_clients_with_the_grant_enabled_may_use_it() {
        assert!(may_use(&client(false, true, None)).is_ok());
        assert_eq!(
            may_use(&client(false, false, None)).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
        assert!(may_use(&client(true, true, None)).is_err());
    }

    #[test]
    fn scope_is_requested_intersected_with_allowed_without_openid() {
        let c = client(false, true, Some("openid api.read api.write"));
        let custom = vec![];
        let req: Vec<String> = ["openid", "api.read", "admin"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(granted_scope(&c, Some(&req), &custom), vec!["api.read"]);
        assert_eq!(
            granted_scope(&c, None, &custom),
            vec!["api.read", "api.write"]
        );
        let open = client(false, true, None);
        let req: Vec<String> = ["openid", "email", "api.read", "storage"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            granted_scope(&open, Some(&req), &["storage".to_string()]),
            vec!["email", "storage"]
        );
        assert!(granted_scope(&open, None, &[]).is_empty());
    }
}
