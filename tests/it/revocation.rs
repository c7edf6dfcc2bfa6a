//! POST /revoke (RFC 7009) and POST /introspect (RFC 7662). Tokens come from direct codes
//! (see `token.rs`): /authorize is tested elsewhere.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis::ops::clients::ClientInput;
use portcullis::store::audit;
use serde_json::Value;

use crate::token::{Fx, REDIRECT, error_of};

async fn revoke(fx: &Fx, id: &str, secret: &str, token: &str) -> reqwest::Response {
    fx.http
        .post(fx.url("/revoke"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn introspect(fx: &Fx, id: &str, secret: &str, token: &str) -> Value {
    let r = fx
        .http
        .post(fx.url("/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_family_and_access_tokens() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let rt1 = v["refresh_token"].as_str().unwrap();
    let at1 = v["access_token"].as_str().unwrap();
    let next: Value = fx.refresh(rt1).await.json().await.unwrap();
    let rt2 = next["refresh_token"].as_str().unwrap();
    let at2 = next["access_token"].as_str().unwrap();

    let r = revoke(&fx, &fx.client_id, &fx.secret, rt2).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().is_empty());
    assert_eq!(
        error_of(fx.refresh(rt2).await).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(fx.userinfo(at1).await.status(), 401);
    assert_eq!(fx.userinfo(at2).await.status(), 401);

    let events = fx
        .app
        .db
        .read_blocking(|c| {
            audit::list(
                c,
                &audit::Filter {
                    kind_prefix: Some("token.revoked".into()),
                    ..Default::default()
                },
                10,
                0,
            )
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(fx.client_id.as_str()));
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let at = v["access_token"].as_str().unwrap();
    assert_eq!(
        revoke(&fx, &fx.client_id, &fx.secret, at).await.status(),
        200
    );
    assert_eq!(fx.userinfo(at).await.status(), 401);
    assert_eq!(
        fx.refresh(v["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_expired_access_token_can_still_be_revoked() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let at = v["access_token"].as_str().unwrap();
    fx.app.clock.advance(601);
    assert_eq!(
        revoke(&fx, &fx.client_id, &fx.secret, at).await.status(),
        200
    );
    let jti = at.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, jti).unwrap(),
    )
    .unwrap();
    let jti = claims["jti"].as_str().unwrap().to_string();
    let rec = fx
        .app
        .db
        .read_blocking(move |c| portcullis::store::tokens::access_by_jti(c, &jti))
        .unwrap()
        .unwrap();
    assert!(rec.revoked_at.is_some());
}

#[tokio::test]
async fn another_clients_tokens_are_left_alone_but_answered_200() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let (other, other_secret) = fx.app.confidential("Other", REDIRECT);
    for t in [&v["refresh_token"], &v["access_token"]] {
        let r = revoke(&fx, &other, &other_secret, t.as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        fx.userinfo(v["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        fx.refresh(v["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_tokens_get_200_with_an_empty_body() {
    let fx = Fx::new().await;
    for t in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        let r = revoke(&fx, &fx.client_id, &fx.secret, t).await;
        assert_eq!(r.status(), 200, "{t}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let rt = v["refresh_token"].as_str().unwrap();
    let r = revoke(&fx, &fx.client_id, "wrong", rt).await;
    assert!(r.headers().get("www-authenticate").is_some());
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
    assert_eq!(fx.refresh(rt).await.status(), 200, "not revoked");
    let r = fx
        .http
        .post(fx.url("/revoke"))
        .basic_auth(&fx.client_id, Some(&fx.secret))
        .form(&[("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn a_public_client_revokes_its_own_refresh_token() {
    let fx = Fx::new().await;
    let (id, _) = fx.app.add_client(ClientInput {
        name: "SPA".into(),
        redirect_uris: vec![REDIRECT.into()],
        public: true,
        ..Default::default()
    });
    let mut g = fx.grant("openid offline_access");
    g.client_id = id.clone();
    let code = fx.code(&g);
    let v: Value = fx
        .token_post(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", crate::token::VERIFIER),
            ("client_id", &id),
        ])
        .await
        .json()
        .await
        .unwrap();
    let rt = v["refresh_token"].as_str().unwrap();
    let r = fx
        .http
        .post(fx.url("/revoke"))
        .form(&[("token", rt), ("client_id", &id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = fx
        .token_post(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &id),
        ])
        .await;
    assert_eq!(error_of(r).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn introspection_describes_active_access_and_refresh_tokens() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid email offline_access").await;
    let at = v["access_token"].as_str().unwrap();
    let rt = v["refresh_token"].as_str().unwrap();
    let i = introspect(&fx, &fx.client_id, &fx.secret, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["scope"], "openid email offline_access");
    assert_eq!(i["client_id"], fx.client_id);
    assert_eq!(i["username"], "ada");
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["sub"], fx.user.id);
    assert_eq!(i["iss"].as_str().unwrap(), fx.app.config.public_url);
    assert_eq!(i["exp"], fx.app.clock_now() + 600);
    assert!(i["iat"].is_i64() && i["jti"].is_string() && !i["aud"].is_null());

    let i = introspect(&fx, &fx.client_id, &fx.secret, rt).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(i["client_id"], fx.client_id);
    assert_eq!(i["sub"], fx.user.id);
    assert!(i["exp"].is_i64());

    // Another confidential client (a resource server) may introspect the access token, but
    // the refresh token is only described to its holder.
    let (rs, rs_secret) = fx.app.confidential("API", REDIRECT);
    assert_eq!(introspect(&fx, &rs, &rs_secret, at).await["active"], true);
    assert_eq!(
        introspect(&fx, &rs, &rs_secret, rt).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn introspection_says_inactive_for_revoked_expired_and_unknown_tokens() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid offline_access").await;
    let at = v["access_token"].as_str().unwrap();
    let rt = v["refresh_token"].as_str().unwrap();
    let inactive = serde_json::json!({"active": false});
    for t in ["garbage", "a.b.c"] {
        assert_eq!(
            introspect(&fx, &fx.client_id, &fx.secret, t).await,
            inactive
        );
    }
    assert_eq!(
        revoke(&fx, &fx.client_id, &fx.secret, rt).await.status(),
        200
    );
    assert_eq!(
        introspect(&fx, &fx.client_id, &fx.secret, rt).await,
        inactive
    );
    assert_eq!(
        introspect(&fx, &fx.client_id, &fx.secret, at).await,
        inactive,
        "family revoked"
    );

    let v = fx.tokens("openid").await;
    let at = v["access_token"].as_str().unwrap();
    fx.app.clock.advance(601);
    assert_eq!(
        introspect(&fx, &fx.client_id, &fx.secret, at).await,
        inactive
    );
}

#[tokio::test]
async fn introspection_refuses_public_clients_and_bad_credentials() {
    let fx = Fx::new().await;
    let (id, _) = fx.app.add_client(ClientInput {
        name: "SPA".into(),
        redirect_uris: vec![REDIRECT.into()],
        public: true,
        ..Default::default()
    });
    let v = fx.tokens("openid").await;
    let r = fx
        .http
        .post(fx.url("/introspect"))
        .form(&[
            ("token", v["access_token"].as_str().unwrap()),
            ("client_id", &id),
        ])
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
    let r = fx
        .http
        .post(fx.url("/introspect"))
        .basic_auth(&fx.client_id, Some("wrong"))
        .form(&[("token", v["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 401);
}

/// A client's token for itself has no issuance row: introspection finds it active by its
/// signature, revocation records a row, and from then on it is inactive.
#[tokio::test]
async fn a_client_credentials_token_is_introspected_and_revoked_without_an_issuance_row() {
    let app = crate::support::TestApp::spawn().await;
    let (id, secret) = app.add_client(portcullis::ops::clients::ClientInput {
        name: "Backup job".into(),
        allow_client_credentials: true,
        ..Default::default()
    });
    let secret = secret.unwrap();
    let http = reqwest::Client::new();
    let t: serde_json::Value = http
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = t["access_token"].as_str().unwrap().to_string();
    let rows: i64 = app
        .db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM access_tokens", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 0, "no write at issuance");
    let introspect = |token: String| {
        let (http, url, id, secret) = (http.clone(), app.url.clone(), id.clone(), secret.clone());
        async move {
            http.post(format!("{url}/introspect"))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let v = introspect(at.clone()).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], id);
    let r = http
        .post(format!("{}/revoke", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(at.clone()).await["active"], false);
    // Expired: inactive too.
    app.clock.advance(3600);
    let t2: serde_json::Value = http
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.clock.advance(3600);
    assert_eq!(
        introspect(t2["access_token"].as_str().unwrap().to_string()).await["active"],
        false
    );
}
