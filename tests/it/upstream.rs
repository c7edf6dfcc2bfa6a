//! Upstream federated sign-in against a REAL upstream OpenID Provider on loopback: a second
//! Portcullis (its own server, keys, users and client registry) acting as "Corp ID". Two cookie
//! jars stand for the one browser (cookies do not isolate ports, so the two 127.0.0.1 servers'
//! cookies would otherwise collide); the test routes each request to the jar of its host.

use std::collections::BTreeMap;

use portcullis::crypto::secret::Secret;
use portcullis::ops::upstream_providers::{self, ProviderInput};
use portcullis::store;
use portcullis::store::upstream::{Kind, Policy, Provider};

use crate::support::{CHALLENGE, TestApp, VERIFIER, csrf_from, jwt_claims, location, query_param};

pub struct Fed {
    pub up: TestApp,
    pub down: TestApp,
    pub provider: Provider,
}

pub async fn federation(policy: Policy) -> Fed {
    let up = TestApp::spawn().await;
    let down = TestApp::spawn().await;
    let (cid, secret) = up.confidential(
        "Downstream Portcullis",
        &format!("{}/login/upstream/callback", down.url),
    );
    let mut input = ProviderInput::new("corp", Kind::Oidc, "Corp ID", &cid);
    input.issuer = Some(up.url.clone());
    input.client_secret = Some(Secret::new(secret));
    input.scopes = Some("openid email profile groups".into());
    input.policy = policy;
    input.default_groups = vec!["family".into()];
    input.group_mapping = BTreeMap::from([("staff".into(), "editors".into())]);
    let key = down.state.master_key.clone();
    let now = down.clock_now();
    let provider = down
        .db
        .try_write_blocking(|c| upstream_providers::create(c, &key, input, None, now))
        .unwrap();
    Fed { up, down, provider }
}

impl Fed {
    /// GET `start` on the downstream (it must send the browser to the upstream), sign in at the
    /// upstream as `user` if asked, and return the callback URL the upstream sends back.
    pub async fn to_callback(
        &self,
        down_b: &reqwest::Client,
        up_b: &reqwest::Client,
        start: &str,
        user: &str,
    ) -> String {
        let r = down_b.get(self.down.abs(start)).send().await.unwrap();
        assert_eq!(r.status(), 303, "start: {}", r.text().await.unwrap());
        let to_up = location(&r);
        assert!(to_up.starts_with(&self.up.url), "sent to {to_up}");
        let back = self.up.authorize(up_b, &to_up, user).await;
        assert!(
            back.starts_with(&format!("{}/login/upstream/callback?", self.down.url)),
            "came back to {back}"
        );
        back
    }

    /// The whole round trip; returns the downstream's answer to the callback.
    pub async fn through_upstream(
        &self,
        down_b: &reqwest::Client,
        up_b: &reqwest::Client,
        start: &str,
        user: &str,
    ) -> reqwest::Response {
        let back = self.to_callback(down_b, up_b, start, user).await;
        down_b.get(back).send().await.unwrap()
    }

    /// Fresh browsers go through the upstream as `user` from /login/upstream/corp; returns the
    /// downstream's answer to the callback and the downstream browser.
    pub async fn sign_in_fresh(&self, user: &str) -> (reqwest::Response, reqwest::Client) {
        let (down_b, up_b) = (self.down.browser(), self.up.browser());
        let r = self
            .through_upstream(&down_b, &up_b, "/login/upstream/corp", user)
            .await;
        (r, down_b)
    }

    pub fn users(&self) -> Vec<store::users::User> {
        self.down
            .db
            .read_blocking(|c| store::users::list(c, "", 100, 0))
            .unwrap()
    }

    pub fn links(&self) -> Vec<store::upstream::LinkedWithProvider> {
        let pid = self.provider.id.clone();
        self.down
            .db
            .read_blocking(move |c| store::upstream::links_for_provider(c, &pid))
            .unwrap()
    }

    pub fn audit_reasons(&self) -> Vec<String> {
        self.down
            .db
            .read_blocking(|c| {
                let mut stmt = c.prepare(
                    "SELECT json_extract(detail, '$.reason') FROM audit_events
                     WHERE kind = 'upstream.login_failed' ORDER BY id",
                )?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    }
}

/// The `amr` of the user's newest session on the downstream.
fn session_amr(app: &TestApp, user_id: &str) -> Vec<String> {
    let uid = user_id.to_string();
    let text: String = app
        .db
        .read_blocking(move |c| {
            Ok(c.query_row(
                "SELECT amr FROM sessions WHERE user_id = ?1 ORDER BY rowid DESC LIMIT 1",
                [uid],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_login_page_shows_a_button_per_enabled_provider() {
    let fed = federation(Policy::Create).await;
    let b = fed.down.browser();
    let page = fed.down.text_at(&b, "/login?next=/account").await;
    assert!(page.contains("Corp ID"), "{page}");
    assert!(
        page.contains("/login/upstream/corp?next=%2Faccount"),
        "{page}"
    );
    let key = fed.down.state.master_key.clone();
    fed.down
        .db
        .write_blocking(|c| upstream_providers::set_enabled(c, "corp", false, None, 1))
        .unwrap();
    drop(key);
    let page = fed.down.text_at(&b, "/login").await;
    assert!(!page.contains("Corp ID"));
    // A disabled provider cannot be used by URL either.
    let r = b
        .get(format!("{}/login/upstream/corp", fed.down.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn first_sign_in_creates_the_user_and_the_second_finds_the_same_user() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &["staff"], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let r = fed
        .through_upstream(
            &down_b,
            &up_b,
            "/login/upstream/corp?next=/account",
            "alice",
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let users = fed.users();
    assert_eq!(users.len(), 1);
    let alice = &users[0];
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert!(alice.email_verified);
    assert!(alice.password_hash.is_none());
    let groups = fed
        .down
        .db
        .read_blocking(|c| store::users::group_names(c, &alice.id))
        .unwrap();
    assert!(groups.contains(&"family".to_string()), "{groups:?}");
    assert!(groups.contains(&"editors".to_string()), "{groups:?}");
    // RFC 8176 "fed", then what the upstream reported (the upstream Portcullis says "pwd").
    assert_eq!(session_amr(&fed.down, &alice.id), vec!["fed", "pwd"]);
    // The account page works for the new session and lists the link.
    let account = fed.down.text_at(&down_b, "/account").await;
    assert!(account.contains("Linked sign-ins") && account.contains("Corp ID"));

    // Another browser, later: the same local user, nothing new.
    let (r, _b) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 303);
    let users = fed.users();
    assert_eq!(users.len(), 1);
    let links = fed.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].link.user_id, alice.id);
}

#[tokio::test]
async fn the_downstream_app_receives_an_id_token_for_the_local_user_with_fed() {
    let fed = federation(Policy::Create).await;
    let upstream_alice = fed.up.add_user("alice", &[], false);
    let redirect = "https://app.example.com/cb";
    let (app_id, app_secret) = fed.down.confidential("App", redirect);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());

    let mut u = url::Url::parse(&format!("{}/authorize", fed.down.url)).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "app-state")
        .append_pair("nonce", "app-nonce")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("kc_idp_hint", "corp");
    let r = down_b.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "{login}");
    // kc_idp_hint: the sign-in page sends the browser straight to the provider.
    let r = down_b.get(fed.down.abs(&login)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let start = location(&r);
    assert!(start.starts_with("/login/upstream/corp?req="), "{start}");

    let r = fed.through_upstream(&down_b, &up_b, &start, "alice").await;
    assert_eq!(r.status(), 303);
    let resume = location(&r);
    assert!(resume.starts_with("/authorize/resume?req="), "{resume}");
    let r = down_b.get(fed.down.abs(&resume)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(back.starts_with(redirect), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("app-state"));
    let code = query_param(&back, "code").unwrap();

    let tokens: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", fed.down.url))
        .basic_auth(&app_id, Some(&app_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    let local = fed.users().pop().unwrap();
    assert_eq!(claims["sub"], local.id.as_str());
    assert_ne!(
        claims["sub"],
        upstream_alice.id.as_str(),
        "the LOCAL user, not the upstream's"
    );
    assert_eq!(claims["iss"], fed.down.url.as_str());
    assert_eq!(claims["nonce"], "app-nonce");
    assert_eq!(claims["email"], "alice@example.com");
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert!(amr.contains(&"fed".to_string()), "{amr:?}");
}

#[tokio::test]
async fn link_verified_email_links_to_the_local_account_with_that_verified_email() {
    let fed = federation(Policy::LinkVerifiedEmail).await;
    fed.up.add_user("alice", &[], false);
    let local_alice = fed.down.add_user("alice", &[], false); // alice@example.com, verified
    let (r, _b) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 303);
    assert_eq!(fed.users().len(), 1, "linked, not created");
    let links = fed.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].link.user_id, local_alice.id);
}

#[tokio::test]
async fn an_unverified_email_never_links() {
    let fed = federation(Policy::LinkVerifiedEmail).await;
    // At the upstream, bob's email is not verified.
    let mut bob = fed.up.add_user("bob", &[], false);
    bob.email_verified = false;
    let now = fed.up.clock_now();
    fed.up
        .db
        .write_blocking(|c| store::users::update_profile(c, &bob, now))
        .unwrap();
    fed.down.add_user("bob", &[], false); // bob@example.com, verified locally
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let r = fed
        .through_upstream(
            &down_b,
            &up_b,
            "/login/upstream/corp?req=&next=/account",
            "bob",
        )
        .await;
    assert_eq!(r.status(), 409);
    let page = r.text().await.unwrap();
    assert!(page.contains("already uses the email address"), "{page}");
    assert!(
        page.contains("href=\"/login?next=%2Faccount\""),
        "a way back: {page}"
    );
    assert!(fed.links().is_empty(), "never linked");
    assert_eq!(fed.users().len(), 1, "nothing created");
    assert_eq!(fed.audit_reasons(), vec!["email_in_use"]);
}

#[tokio::test]
async fn the_create_policy_never_links_by_email() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    fed.down.add_user("alice", &[], false);
    let (r, _b) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 409);
    assert!(fed.links().is_empty());
    assert_eq!(fed.users().len(), 1);
}

#[tokio::test]
async fn existing_only_refuses_unlinked_identities_until_the_user_links_from_the_account_page() {
    let fed = federation(Policy::ExistingOnly).await;
    fed.up.add_user("alice", &[], false);
    let local = fed.down.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let r = fed
        .through_upstream(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("Ask your administrator"), "{page}");
    assert!(fed.links().is_empty());
    assert_eq!(fed.audit_reasons(), vec!["not_linked"]);

    // Alice signs in with her password and links Corp ID from her account page.
    let r = fed.down.sign_in(&down_b, "alice").await;
    assert_eq!(r.status(), 303);
    let account = fed.down.text_at(&down_b, "/account").await;
    assert!(account.contains("Link Corp ID"), "{account}");
    let csrf = csrf_from(&account);
    let r = fed
        .down
        .post_form(
            &down_b,
            "/account/upstream/link",
            &[("csrf", csrf.as_str()), ("slug", "corp")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let to_up = location(&r);
    let back = fed.up.authorize(&up_b, &to_up, "alice").await;
    let r = down_b.get(back).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=linked");
    assert_eq!(fed.links()[0].link.user_id, local.id);

    // Now a fresh browser signs in through Corp ID as the local alice.
    let (r, down_b2) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 303);
    assert_eq!(session_amr(&fed.down, &local.id), vec!["fed", "pwd"]);

    // She has a password, so she may unlink.
    let link = &fed.links()[0].link;
    let r = fed
        .down
        .submit(
            &down_b2,
            "/account",
            "/account/upstream/unlink",
            &[
                ("provider_id", &link.provider_id),
                ("subject", &link.subject),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=unlinked");
    assert!(fed.links().is_empty());
}

#[tokio::test]
async fn unlinking_the_last_sign_in_method_is_refused() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("carol", &[], false);
    let (r, down_b) = fed.sign_in_fresh("carol").await;
    assert_eq!(r.status(), 303);
    let link = fed.links()[0].link.clone();
    let r = fed
        .down
        .submit(
            &down_b,
            "/account",
            "/account/upstream/unlink",
            &[
                ("provider_id", &link.provider_id),
                ("subject", &link.subject),
            ],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("only way to sign in"));
    assert_eq!(fed.links().len(), 1);
}

#[tokio::test]
async fn a_forged_reused_or_foreign_state_is_refused() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());

    // A state nobody issued.
    let r = down_b
        .get(format!(
            "{}/login/upstream/callback?state=forged&code=whatever",
            fed.down.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("This sign-in cannot be continued"), "{page}");

    // A real callback finished in another browser (login CSRF): refused, and used up.
    let back = fed
        .to_callback(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    let r = fed.down.browser().get(&back).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = down_b.get(&back).send().await.unwrap();
    assert_eq!(
        r.status(),
        400,
        "a state is used once, even after a refusal"
    );

    // A good one, then replayed.
    let back = fed
        .to_callback(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    assert_eq!(down_b.get(&back).send().await.unwrap().status(), 303);
    assert_eq!(down_b.get(&back).send().await.unwrap().status(), 400);

    // Too late: the handshake expires after ten minutes.
    let back = fed
        .to_callback(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    fed.down.clock.advance(11 * 60);
    let r = down_b.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("took too long"));

    assert_eq!(
        fed.audit_reasons(),
        vec![
            "invalid_state",
            "wrong_browser",
            "invalid_state",
            "invalid_state",
            "expired"
        ]
    );
    assert_eq!(fed.users().len(), 1, "only the good sign-in created alice");
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let back = fed
        .to_callback(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    // The ID token will carry the nonce sent; the stored one no longer matches.
    let changed = fed
        .down
        .db
        .write_blocking(|c| {
            Ok(c.execute(
                "UPDATE upstream_logins SET data = json_set(data, '$.nonce', 'forged-nonce')",
                [],
            )?)
        })
        .unwrap();
    assert_eq!(changed, 1);
    let r = down_b.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("could not be verified"));
    assert!(fed.users().is_empty());
    assert_eq!(fed.audit_reasons(), vec!["nonce_mismatch"]);
}

#[tokio::test]
async fn a_wrong_issuer_in_the_response_is_refused() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let back = fed
        .to_callback(&down_b, &up_b, "/login/upstream/corp", "alice")
        .await;
    let mut u = url::Url::parse(&back).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "https://evil.example".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let r = down_b.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fed.audit_reasons(), vec!["issuer_mismatch"]);
}

#[tokio::test]
async fn cancelling_at_the_provider_ends_on_a_page_back_to_the_request() {
    let fed = federation(Policy::Create).await;
    let down_b = fed.down.browser();
    let r = down_b
        .get(format!("{}/login/upstream/corp?req=REQ1", fed.down.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let state = query_param(&location(&r), "state").unwrap();
    let r = down_b
        .get(format!(
            "{}/login/upstream/callback?error=access_denied&state={state}",
            fed.down.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign-in cancelled"), "{page}");
    assert!(page.contains("req=REQ1"), "keeps the request: {page}");
    assert_eq!(fed.audit_reasons(), vec!["cancelled"]);
}

#[tokio::test]
async fn an_unreachable_provider_ends_on_a_clear_page() {
    let down = TestApp::spawn().await;
    let mut input = ProviderInput::new("gone", Kind::Oidc, "Gone", "cid");
    input.issuer = Some("http://127.0.0.1:1".into());
    input.policy = Policy::Create;
    let key = down.state.master_key.clone();
    down.db
        .try_write_blocking(|c| upstream_providers::create(c, &key, input, None, 1))
        .unwrap();
    let r = down
        .browser()
        .get(format!("{}/login/upstream/gone?req=R", down.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let page = r.text().await.unwrap();
    assert!(page.contains("cannot be reached"), "{page}");
    assert!(page.contains("req=R"), "{page}");
}

#[tokio::test]
async fn an_id_token_from_the_future_is_refused_as_clock_skew() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    let (down_b, up_b) = (fed.down.browser(), fed.up.browser());
    let r = down_b
        .get(format!("{}/login/upstream/corp", fed.down.url))
        .send()
        .await
        .unwrap();
    let to_up = location(&r);
    // The upstream's clock runs five minutes ahead of ours (more than the allowed skew).
    fed.up.clock.advance(5 * 60);
    let back = fed.up.authorize(&up_b, &to_up, "alice").await;
    let r = down_b.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("clocks"));
    assert_eq!(fed.audit_reasons(), vec!["clock_skew"]);
    assert!(fed.users().is_empty());
}

#[tokio::test]
async fn new_upstream_signing_keys_are_fetched_when_the_cached_ones_do_not_verify() {
    let fed = federation(Policy::Create).await;
    fed.up.add_user("alice", &[], false);
    let (r, _b) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 303);
    // The upstream rotates its keys at once; our cached JWKS does not know the new kid.
    let now = fed.up.clock_now();
    fed.up.state.keys.rotate(now, true).unwrap();
    let (r, _b) = fed.sign_in_fresh("alice").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}
