//! Full flows driven by a relying party we did not write: the `openidconnect` crate does
//! discovery, the authorization code flow with PKCE and nonce, ID token validation against
//! JWKS, userinfo, refresh and revocation, against the real server over HTTP.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IdTokenClaims, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse, UserInfoClaims,
};
use portcullis::ops::clients::ClientInput;
use serde::{Deserialize, Serialize};

use crate::support::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupsClaim {
    #[serde(default)]
    groups: Vec<String>,
}
impl AdditionalClaims for GroupsClaim {}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn openidconnect_crate_signs_in_with_code_pkce_and_nonce() {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", &["family"], false);
    let (cid, secret) = app.add_client(ClientInput {
        name: "Grafana".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        ..Default::default()
    });
    let http = http();
    let secret_copy = secret.clone().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(cid.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new("http://app.test/cb".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("groups".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = app.browser();
    let back = app.authorize(&browser, auth_url.as_str(), "alice").await;
    assert_eq!(query_param(&back, "state").unwrap(), *csrf.secret());
    let code = query_param(&back, "code").unwrap();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = token.id_token().expect("an ID token");
    let claims: &IdTokenClaims<openidconnect::EmptyAdditionalClaims, CoreGenderClaim> = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token validates");
    assert_eq!(claims.subject().as_str(), alice.id);
    assert_eq!(claims.issuer().as_str(), app.config.public_url);
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert!(claims.auth_time().is_some());
    // at_hash binds the access token.
    let expected = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));

    let info: UserInfoClaims<GroupsClaim, CoreGenderClaim> = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), alice.id);
    assert_eq!(info.additional_claims().groups, vec!["family".to_string()]);
    let _: Option<CoreUserInfoClaims> = None;

    // Refresh rotates the token and keeps the identity.
    let refresh = token
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    let again: UserInfoClaims<GroupsClaim, CoreGenderClaim> = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(again.subject().as_str(), alice.id);

    // Revocation of the refresh token ends the family. (The oauth2 crate refuses a plain-http
    // revocation URL, so this request is made by hand, as RFC 7009 describes it.)
    let r = http
        .post(format!("{}/revoke", app.url))
        .basic_auth(&cid, Some(&secret_copy))
        .form(&[
            ("token", new_refresh.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = client
        .exchange_refresh_token(&RefreshToken::new(new_refresh.secret().clone()))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "revoked refresh token is refused");
}

#[tokio::test]
async fn openid_scope_alone_releases_no_profile_claims_and_nonce_only_when_sent() {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let (cid, secret) = app.add_client(ClientInput {
        name: "Immich".into(),
        redirect_uris: vec!["http://app.test/cb".into()],
        skip_consent: true,
        ..Default::default()
    });
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let u = format!(
        "{}/authorize?response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&scope=openid&code_challenge={}&code_challenge_method=S256",
        app.url,
        challenge.as_str()
    );
    let b = app.browser();
    let back = app.authorize(&b, &u, "alice").await;
    let code = query_param(&back, "code").unwrap();
    let r: serde_json::Value = http()
        .post(format!("{}/token", app.url))
        .basic_auth(&cid, secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
            ("code_verifier", verifier.secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = r["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims.get("nonce").is_none(),
        "Immich sends no nonce and rejects one: {claims}"
    );
    assert!(
        claims.get("email").is_none()
            && claims.get("name").is_none()
            && claims.get("preferred_username").is_none(),
        "{claims}"
    );
    assert!(claims["sid"].is_string());
}
