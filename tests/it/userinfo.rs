//! GET|POST /userinfo (OIDC Core §5.3, RFC 6750). Tokens come from direct codes (see
//! `token.rs`): /authorize is tested elsewhere.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use crate::token::{Fx, verify_jwt};

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn get_with_a_bearer_header_returns_the_id_token_claims() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid profile email groups").await;
    let r = fx.userinfo(v["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let u: Value = r.json().await.unwrap();
    let (_, id) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
    assert_eq!(u["sub"], id["sub"]);
    for claim in [
        "name",
        "preferred_username",
        "email",
        "email_verified",
        "updated_at",
        "groups",
    ] {
        assert_eq!(u[claim], id[claim], "{claim}");
    }
    assert_eq!(u["groups"], json!(["family"]));
    assert!(
        u.get("iss").is_none() && u.get("aud").is_none(),
        "plain JSON, not a JWT claim set"
    );
}

#[tokio::test]
async fn openid_alone_gives_only_sub() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let u: Value = fx
        .userinfo(v["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(u, json!({"sub": fx.user.id}));
}

#[tokio::test]
async fn post_accepts_the_header_or_the_form_field_but_not_both() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid email").await;
    let at = v["access_token"].as_str().unwrap();
    let r = fx
        .http
        .post(fx.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = fx
        .http
        .post(fx.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["email"], "ada@example.com");
    let r = fx
        .http
        .post(fx.url("/userinfo"))
        .bearer_auth(at)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(www_authenticate(&r).contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge() {
    let fx = Fx::new().await;
    for r in [
        fx.http.get(fx.url("/userinfo")).send().await.unwrap(),
        fx.http.post(fx.url("/userinfo")).send().await.unwrap(),
    ] {
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), "Bearer");
    }
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let at = v["access_token"].as_str().unwrap();
    let id_token = v["id_token"].as_str().unwrap();
    // Garbage, an ID token (typ JWT, not at+jwt), a tampered token.
    let mut tampered = at.to_string();
    tampered.pop();
    tampered.push(if at.ends_with('A') { 'B' } else { 'A' });
    for bad in ["garbage", id_token, &tampered] {
        let r = fx.userinfo(bad).await;
        assert_eq!(r.status(), 401, "{bad}");
        assert!(www_authenticate(&r).starts_with("Bearer error=\"invalid_token\""));
    }
}

#[tokio::test]
async fn an_expired_access_token_is_invalid_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    fx.app.clock.advance(601);
    let r = fx.userinfo(v["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    assert!(www_authenticate(&r).contains("invalid_token"));
}

#[tokio::test]
async fn a_revoked_access_token_is_invalid_token() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let at = v["access_token"].as_str().unwrap();
    let r = fx
        .http
        .post(fx.url("/revoke"))
        .basic_auth(&fx.client_id, Some(&fx.secret))
        .form(&[("token", at), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = fx.userinfo(at).await;
    assert_eq!(r.status(), 401);
    assert!(www_authenticate(&r).starts_with("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn a_token_without_openid_is_403_insufficient_scope() {
    let fx = Fx::new().await;
    let v = fx.tokens("profile").await;
    let r = fx.userinfo(v["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 403);
    assert!(www_authenticate(&r).contains("error=\"insufficient_scope\""));
}

#[tokio::test]
async fn a_disabled_user_gets_no_userinfo() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let mut u = fx.user.clone();
    u.disabled = true;
    let now = fx.app.clock_now();
    fx.app
        .db
        .write_blocking(|c| portcullis::store::users::update_profile(c, &u, now))
        .unwrap();
    assert_eq!(
        fx.userinfo(v["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_claims_parameter_adds_claims_to_userinfo_or_the_id_token_only() {
    let fx = Fx::new().await;
    let mut g = fx.grant("openid");
    g.claims = Some(
        json!({"userinfo": {"email": null}, "id_token": {"preferred_username": {"essential": true}}})
            .to_string(),
    );
    let v = fx.redeem(&fx.code(&g)).await;
    let (_, id) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
    assert_eq!(id["preferred_username"], "ada");
    assert!(id.get("email").is_none());
    let u: Value = fx
        .userinfo(v["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(u["email"], "ada@example.com");
    assert!(u.get("preferred_username").is_none());
}

#[tokio::test]
async fn custom_claims_are_released_by_their_scope_in_both_places() {
    let fx = Fx::new().await;
    let uid = fx.user.id.clone();
    fx.app
        .db
        .write_blocking(move |c| {
            c.execute("INSERT INTO claim_scopes (claim, scope) VALUES ('quota', 'storage'), ('tier', 'storage')", [])?;
            c.execute("UPDATE groups SET claims = '{\"quota\": 10, \"tier\": \"gold\"}' WHERE name = 'family'", [])?;
            c.execute("UPDATE users SET claims = '{\"quota\": 99}' WHERE id = ?1", [&uid])?;
            Ok(())
        })
        .unwrap();
    let v = fx.tokens("openid storage").await;
    let (_, id) = verify_jwt(&fx.app, v["id_token"].as_str().unwrap()).await;
    let u: Value = fx
        .userinfo(v["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    for c in [&id, &u] {
        assert_eq!(c["quota"], 99, "the user's value wins");
        assert_eq!(c["tier"], "gold");
    }
    let v = fx.tokens("openid").await;
    let u: Value = fx
        .userinfo(v["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(u.get("quota").is_none());
}

#[tokio::test]
async fn registered_origins_get_cors_headers() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let r = fx
        .http
        .get(fx.url("/userinfo"))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .header("Origin", "http://app.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    let r = fx
        .http
        .get(fx.url("/userinfo"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// A token checked once is not checked again while the keys stay the same; once its key is
/// no longer published, the very same token is refused (the check is made again).
#[tokio::test]
async fn a_token_whose_key_is_unpublished_is_refused_even_after_it_was_accepted() {
    let fx = Fx::new().await;
    let v = fx.tokens("openid").await;
    let at = v["access_token"].as_str().unwrap();
    assert_eq!(fx.userinfo(at).await.status(), 200);
    assert_eq!(fx.userinfo(at).await.status(), 200, "accepted again");
    let kid = crate::support::jwt_header(at)["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let now = fx.app.clock_now();
    fx.app.state.keys.rotate(now, true).unwrap();
    // The key is gone from the database (as if pruned); the server reloads its key set.
    fx.app
        .db
        .write_blocking(move |c| {
            c.execute("DELETE FROM signing_keys WHERE kid = ?1", [&kid])?;
            Ok(())
        })
        .unwrap();
    assert!(fx.app.state.keys.refresh_if_changed(now).unwrap());
    let r = fx.userinfo(at).await;
    assert_eq!(r.status(), 401);
    assert!(www_authenticate(&r).contains("invalid_token"));
}
