//! Token exchange (RFC 8693): a confidential app trades a person's access token for a
//! short-lived one addressed to another app, with that person's roles there and an `act`
//! claim; every refusal of §2.2.2 / RFC 6749 §5.2.

use portcullis::ops::Actor;
use portcullis::ops::clients::ClientInput;
use portcullis::ops::roles::{self, GranteeRef, RoleInput};
use serde_json::{Value, json};

use crate::support::*;

const PORTAL_CB: &str = "https://portal.example.com/cb";
const SUBJECT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

struct Fx {
    app: TestApp,
    portal: (String, String),
    photos: String,
    /// A confidential app no application lets exchange.
    lonely: (String, String),
}

async fn fx() -> Fx {
    let app = TestApp::spawn().await;
    app.add_user("alice", &[], false);
    let portal = app.confidential("Portal", PORTAL_CB);
    let lonely = app.confidential("Lonely", "https://lonely.example.com/cb");
    let (photos, _) = app.add_client(ClientInput {
        name: "Photos API".into(),
        redirect_uris: vec!["https://photos.example.com/cb".into()],
        signing_alg: "ES256".into(),
        exchange_sources: vec![portal.0.clone()],
        ..Default::default()
    });
    let now = app.clock_now();
    let input = RoleInput {
        name: "uploader".into(),
        description: None,
    };
    app.db
        .try_write_blocking(|c| roles::create(c, &Actor::Cli, &photos, input, now))
        .unwrap();
    app.db
        .try_write_blocking(|c| {
            roles::grant(
                c,
                &Actor::Cli,
                &photos,
                "uploader",
                &GranteeRef::User("alice".into()),
                now,
            )
        })
        .unwrap();
    Fx {
        app,
        portal,
        photos,
        lonely,
    }
}

impl Fx {
    async fn subject(&self, client: &(String, String), cb: &str, scope: &str) -> String {
        let t = self
            .app
            .tokens_for(
                &self.app.browser(),
                "alice",
                &client.0,
                Some(&client.1),
                cb,
                scope,
            )
            .await;
        t["access_token"].as_str().unwrap().to_string()
    }

    async fn exchange(&self, by: &(String, String), extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![("grant_type", GRANT)];
        form.extend_from_slice(extra);
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.app.url))
            .basic_auth(&by.0, Some(&by.1))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

fn refused(got: &(u16, Value), code: &str) {
    assert_eq!(
        got.0,
        if code == "invalid_client" { 401 } else { 400 },
        "{}",
        got.1
    );
    assert_eq!(got.1["error"], code, "{}", got.1);
}

#[tokio::test]
async fn an_exchanged_token_is_for_the_target_with_its_roles_and_names_the_actor() {
    let f = fx().await;
    let at = f.subject(&f.portal, PORTAL_CB, "openid profile").await;
    let (s, v) = f
        .exchange(
            &f.portal,
            &[
                ("subject_token", &at),
                ("subject_token_type", SUBJECT_TYPE),
                ("audience", &f.photos),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["issued_token_type"], SUBJECT_TYPE);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 60);
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none());
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(jwt_header(token)["alg"], "ES256", "the target's algorithm");
    assert_eq!(jwt_header(token)["typ"], "at+jwt");
    let c = jwt_claims(token);
    let subject = jwt_claims(&at);
    assert_eq!(c["aud"], json!(f.photos));
    assert_eq!(c["sub"], subject["sub"]);
    assert_eq!(c["client_id"], json!(f.portal.0));
    assert_eq!(c["act"], json!({"sub": f.portal.0}));
    assert_eq!(c["roles"], json!(["uploader"]));
    assert_eq!(c["scope"], "openid profile");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
    assert!(subject.get("roles").is_none(), "the portal has no roles");

    // Introspection knows it (no row was written), and revoking it sticks.
    let introspect = |t: String| {
        let f = &f;
        async move {
            reqwest::Client::new()
                .post(format!("{}/introspect", f.app.url))
                .basic_auth(&f.portal.0, Some(&f.portal.1))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let i = introspect(token.to_string()).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["act"], json!({"sub": f.portal.0}));
    assert_eq!(i["roles"], json!(["uploader"]));
    assert_eq!(i["aud"], json!(f.photos));
    let r = reqwest::Client::new()
        .post(format!("{}/revoke", f.app.url))
        .basic_auth(&f.portal.0, Some(&f.portal.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(token.to_string()).await["active"], false);

    // A narrower scope, the resource parameter, the target's own lifetime.
    let photos = f.photos.clone();
    f.app
        .db
        .write_blocking(move |c| {
            c.execute(
                "UPDATE clients SET exchange_token_ttl = 30 WHERE id = ?1",
                [&photos],
            )?;
            Ok(())
        })
        .unwrap();
    // Written behind the server's back (as another process would): its one-second client
    // cache would serve the old lifetime until then.
    f.app.state.client_cache.clear();
    let (s, v) = f
        .exchange(
            &f.portal,
            &[
                ("subject_token", &at),
                ("subject_token_type", SUBJECT_TYPE),
                ("resource", &f.photos),
                ("scope", "profile"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 30);
    assert_eq!(v["scope"], "profile");

    let kinds = f.app.audit_events("token.exchanged");
    // One event for both: the same caller, audience and person within a minute.
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].client_id.as_deref(), Some(f.photos.as_str()));
    assert_eq!(kinds[0].actor_id.as_deref(), Some(f.portal.0.as_str()));
    assert_eq!(kinds[0].user_id.as_deref(), subject["sub"].as_str());
    assert_eq!(kinds[0].detail["requester"], json!(f.portal.0));
    assert_eq!(kinds[0].detail["audience"], json!(f.photos));
    // A minute later, the next exchange is recorded again.
    f.app.clock.advance(61);
    let (s, _) = f
        .exchange(
            &f.portal,
            &[
                ("subject_token", &at),
                ("subject_token_type", SUBJECT_TYPE),
                ("audience", &f.photos),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let n = f.app.audit_events("token.exchanged").len();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn every_refusal_has_its_rfc_code() {
    let f = fx().await;
    let at = f.subject(&f.portal, PORTAL_CB, "openid profile").await;
    let with = |token: &str, aud: &str, more: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("subject_token", token.to_string()),
            ("subject_token_type", SUBJECT_TYPE.to_string()),
            ("audience", aud.to_string()),
        ];
        v.extend(more.iter().map(|(k, x)| (*k, x.to_string())));
        v
    };
    async fn go(f: &Fx, by: &(String, String), form: Vec<(&'static str, String)>) -> (u16, Value) {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.exchange(by, &pairs).await
    }

    // An application that does not exist, and one that does not list the portal.
    refused(
        &go(&f, &f.portal, with(&at, "no-such-app", &[])).await,
        "invalid_target",
    );
    refused(
        &go(&f, &f.portal, with(&at, &f.lonely.0, &[])).await,
        "invalid_target",
    );
    // A requester no application lists; a public client.
    let lonely_at = f
        .subject(&f.lonely, "https://lonely.example.com/cb", "openid")
        .await;
    refused(
        &go(&f, &f.lonely, with(&lonely_at, &f.photos, &[])).await,
        "unauthorized_client",
    );
    let (public, _) = f.app.add_client(ClientInput {
        name: "Phone".into(),
        public: true,
        redirect_uris: vec!["https://phone.example.com/cb".into()],
        ..Default::default()
    });
    let r = reqwest::Client::new()
        .post(format!("{}/token", f.app.url))
        .form(&[
            ("grant_type", GRANT),
            ("client_id", &public),
            ("subject_token", &at),
            ("subject_token_type", SUBJECT_TYPE),
            ("audience", &f.photos),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );

    // Bad subject tokens: garbage, another client's token, an ID token, broader scope.
    refused(
        &go(&f, &f.portal, with("not-a-token", &f.photos, &[])).await,
        "invalid_grant",
    );
    refused(
        &go(&f, &f.portal, with(&lonely_at, &f.photos, &[])).await,
        "invalid_grant",
    );
    refused(
        &go(
            &f,
            &f.portal,
            with(&at, &f.photos, &[("scope", "profile email")]),
        )
        .await,
        "invalid_scope",
    );
    let mut id_type = with(&at, &f.photos, &[]);
    id_type[1].1 = "urn:ietf:params:oauth:token-type:id_token".into();
    refused(&go(&f, &f.portal, id_type).await, "invalid_request");
    let mut no_aud = with(&at, &f.photos, &[]);
    no_aud.pop();
    refused(&go(&f, &f.portal, no_aud).await, "invalid_request");
    // An exchanged token cannot be exchanged again (it is not addressed to the portal).
    let (_, v) = go(&f, &f.portal, with(&at, &f.photos, &[])).await;
    let exchanged = v["access_token"].as_str().unwrap().to_string();
    refused(
        &go(&f, &f.portal, with(&exchanged, &f.photos, &[])).await,
        "invalid_grant",
    );

    // Revoked, then expired.
    let r = reqwest::Client::new()
        .post(format!("{}/revoke", f.app.url))
        .basic_auth(&f.portal.0, Some(&f.portal.1))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused(
        &go(&f, &f.portal, with(&at, &f.photos, &[])).await,
        "invalid_grant",
    );
    let fresh = f.subject(&f.portal, PORTAL_CB, "openid").await;
    f.app.clock.advance(3600);
    refused(
        &go(&f, &f.portal, with(&fresh, &f.photos, &[])).await,
        "invalid_grant",
    );
    // Nothing was recorded for the refusals.
    let n = f.app.audit_events("token.exchanged").len();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn discovery_lists_the_grant() {
    let app = TestApp::spawn().await;
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == GRANT)
    );
}

#[tokio::test]
async fn the_console_decides_who_may_exchange_and_for_how_long() {
    let f = fx().await;
    let app = &f.app;
    let admin = app.admin_browser().await;
    let edit = format!("/admin/apps/{}/edit", f.photos);
    let (_, page) = app.page(&admin, &edit).await;
    assert!(page.contains("Short-lived tokens for this app"));
    assert!(
        page.contains(&format!("value=\"{}\" checked", f.portal.0)),
        "the portal is ticked"
    );
    let save = |sources: &[&str], ttl: &str| -> Vec<(String, String)> {
        let mut fields: Vec<(&str, &str)> = vec![
            ("name", "Photos API"),
            ("redirect_uris", "https://photos.example.com/cb"),
            ("type", "confidential"),
            ("require_pkce", "on"),
            ("signing_alg", "ES256"),
            ("require_role", "on"),
            ("exchange_token_ttl", ttl),
        ];
        fields.extend(sources.iter().map(|s| ("exchange_source", *s)));
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let submit = |fields: Vec<(String, String)>| {
        let (app, admin, edit) = (app, &admin, &edit);
        async move {
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            app.submit(admin, edit, edit, &pairs).await
        }
    };
    let lonely = f.lonely.0.as_str();
    // A lifetime that is not a number is refused, and nothing changes.
    let r = submit(save(&[lonely], "soon")).await;
    assert_eq!(r.status(), 422);
    let c = app
        .db
        .read_blocking(|x| portcullis::store::clients::by_id(x, &f.photos))
        .unwrap()
        .unwrap();
    assert_eq!(c.exchange_sources, vec![f.portal.0.clone()]);
    // Only the lonely app now, for 20 s, and only people with a role.
    let r = submit(save(&[lonely], "20")).await;
    assert_eq!(r.status(), 303);
    let c = app
        .db
        .read_blocking(|x| portcullis::store::clients::by_id(x, &f.photos))
        .unwrap()
        .unwrap();
    assert_eq!(c.exchange_sources, vec![f.lonely.0.clone()]);
    assert_eq!(c.exchange_token_ttl, Some(20));
    assert!(c.require_role);

    let at = f.subject(&f.portal, PORTAL_CB, "openid").await;
    let ask = |by: &(String, String), token: String| {
        let photos = f.photos.clone();
        let by = by.clone();
        let f = &f;
        async move {
            f.exchange(
                &by,
                &[
                    ("subject_token", token.as_str()),
                    ("subject_token_type", SUBJECT_TYPE),
                    ("audience", photos.as_str()),
                ],
            )
            .await
        }
    };
    // The portal is no longer listed anywhere.
    refused(&ask(&f.portal, at).await, "unauthorized_client");
    let lonely_at = f
        .subject(&f.lonely, "https://lonely.example.com/cb", "openid")
        .await;
    let (s, v) = ask(&f.lonely, lonely_at).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 20);
}

#[tokio::test]
async fn no_exchange_for_a_person_the_target_refuses_or_for_an_apps_own_token() {
    let f = fx().await;
    let at = f.subject(&f.portal, PORTAL_CB, "openid").await;
    let form = |token: &str, aud: &str| -> Vec<(String, String)> {
        vec![
            ("subject_token".into(), token.into()),
            ("subject_token_type".into(), SUBJECT_TYPE.into()),
            ("audience".into(), aud.into()),
        ]
    };
    let go = |by: (String, String), fields: Vec<(String, String)>| {
        let f = &f;
        async move {
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            f.exchange(&by, &pairs).await
        }
    };
    // The Photos API lets in only people with a role: alice holds one, until it is revoked.
    let photos = f.photos.clone();
    f.app
        .db
        .write_blocking(move |c| {
            c.execute(
                "UPDATE clients SET require_role = 1 WHERE id = ?1",
                [&photos],
            )?;
            Ok(())
        })
        .unwrap();
    f.app.state.client_cache.clear();
    let (s, v) = go(f.portal.clone(), form(&at, &f.photos)).await;
    assert_eq!(s, 200, "{v}");
    let now = f.app.clock_now();
    f.app
        .db
        .try_write_blocking(|c| {
            roles::revoke(
                c,
                &Actor::Cli,
                &f.photos,
                "uploader",
                &GranteeRef::User("alice".into()),
                now,
            )
        })
        .unwrap();
    refused(
        &go(f.portal.clone(), form(&at, &f.photos)).await,
        "invalid_grant",
    );

    // A token the portal got for itself (client_credentials) stands for no person.
    let photos = f.photos.clone();
    let portal = f.portal.0.clone();
    f.app
        .db
        .write_blocking(move |c| {
            c.execute(
                "UPDATE clients SET allow_client_credentials = 1 WHERE id = ?1",
                [&portal],
            )?;
            c.execute(
                "UPDATE clients SET require_role = 0 WHERE id = ?1",
                [&photos],
            )?;
            Ok(())
        })
        .unwrap();
    f.app.state.client_cache.clear();
    let r = reqwest::Client::new()
        .post(format!("{}/token", f.app.url))
        .basic_auth(&f.portal.0, Some(&f.portal.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let own: Value = r.json().await.unwrap();
    let own = own["access_token"].as_str().unwrap();
    refused(
        &go(f.portal.clone(), form(own, &f.photos)).await,
        "invalid_grant",
    );
    // Only the one allowed exchange was recorded.
    assert_eq!(f.app.audit_events("token.exchanged").len(), 1);
}
