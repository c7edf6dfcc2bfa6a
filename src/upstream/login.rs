//! GET /login/upstream/{slug} and GET /login/upstream/callback — signing in through an
//! upstream provider. The start sends the browser to the provider; the callback finishes
//! the handshake, finds (or links, or creates) the local account by the provider's policy,
//! and continues exactly like a password sign-in: a fresh session with `amr` = `fed` plus the
//! upstream's values (RFC 8176), then back to the pending authorization request.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::handshake::{self, CallbackParams, Context, Purpose};
use super::{Failure, Identity, accounts};
use crate::crypto::secret::hash_token;
use crate::login::sign_in;
use crate::state::AppState;
use crate::store;
use crate::store::audit::NewEvent;
use crate::web::State;
use crate::web::session;
use crate::web::ui;

#[derive(Deserialize, Default)]
pub struct StartQuery {
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
}

/// The sign-in page, keeping the pending request and `next`.
fn login_path(pending: &str, next: &str) -> String {
    let mut path = "/login".to_string();
    if !pending.is_empty() {
        path.push_str(&format!("?req={}", crate::web::ui::enc(pending)));
    }
    if !next.is_empty() {
        path.push(if pending.is_empty() { '?' } else { '&' });
        path.push_str(&format!("next={}", crate::web::ui::enc(next)));
    }
    path
}

/// Records the failure and shows its page with a way back.
async fn fail(
    state: &AppState,
    req: &HttpRequest,
    ctx: &Context,
    failure: Failure,
) -> HttpResponse {
    let (purpose, back) = match &ctx.data {
        Some(d) if d.purpose == Purpose::Link => ("link", "/account".to_string()),
        Some(d) => ("login", login_path(&d.req, &d.next)),
        None => ("login", "/login".to_string()),
    };
    let detail = json!({
        "provider": ctx.provider.as_ref().map(|p| p.slug.clone()),
        "reason": failure.reason(),
        "purpose": purpose,
        "error": match &failure { Failure::ProviderError(c) => Some(c.clone()), _ => None },
    });
    let ip = session::ip_string(state, req);
    let user = ctx.data.as_ref().and_then(|d| d.user_id.clone());
    let now = state.now();
    let recorded = state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind: "upstream.login_failed",
                    user_id: user.as_deref(),
                    actor_id: user.as_deref(),
                    ip: ip.as_deref(),
                    detail: Some(detail),
                    ..Default::default()
                },
                now,
            )
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "audit of a failed upstream sign-in failed");
    }
    tracing::info!(reason = failure.reason(), "upstream sign-in failed");
    let (status, heading, message) = failure.page(ctx.provider_name());
    ui::error_page(status, heading, &message, Some(back))
}

/// GET /login/upstream/{slug}?req=…&next=… — off to the provider.
pub async fn start(
    state: State,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<StartQuery>,
) -> HttpResponse {
    let slug = slug.into_inner();
    let found = state
        .db
        .read(move |c| store::upstream::by_slug(c, &slug))
        .await;
    let mut ctx = Context {
        data: Some(handshake::HandshakeData {
            purpose: Purpose::Login,
            user_id: None,
            req: q.req.clone(),
            next: q.next.clone(),
            nonce: String::new(),
            verifier: String::new(),
        }),
        ..Default::default()
    };
    let provider = match found {
        Ok(Some(p)) => p,
        Ok(None) => return fail(&state, &req, &ctx, Failure::ProviderGone).await,
        Err(e) => return fail(&state, &req, &ctx, e.into()).await,
    };
    ctx.provider = Some(provider.clone());
    match handshake::begin(
        &state,
        ui::browser_hash(&req),
        &provider,
        Purpose::Login,
        None,
        &q.req,
        &q.next,
    )
    .await
    {
        Ok(url) => ui::see_other(&url),
        Err(f) => fail(&state, &req, &ctx, f).await,
    }
}

/// GET /login/upstream/callback?state=…&code=… (or `error=…`) — back from the provider.
pub async fn callback(
    state: State,
    req: HttpRequest,
    q: web::Query<CallbackParams>,
) -> HttpResponse {
    let (ctx, result) = handshake::finish(&state, ui::browser_hash(&req), q.into_inner()).await;
    let outcome = match (result, &ctx.provider, &ctx.data) {
        (Ok(identity), Some(p), Some(data)) => match data.purpose {
            Purpose::Login => sign_in(&state, &req, p, identity, &data.req, &data.next).await,
            Purpose::Link => link(&state, &req, p, identity, data.user_id.as_deref()).await,
        },
        (Ok(_), _, _) => Err(Failure::Internal),
        (Err(f), _, _) => Err(f),
    };
    match outcome {
        Ok(resp) => resp,
        Err(f) => fail(&state, &req, &ctx, f).await,
    }
}

/// `fed` first, then the upstream's own `amr` values (RFC 8176 §2: "fed — Federated
/// authentication"), without repeats.
pub fn federated_amr(upstream: &[String]) -> Vec<String> {
    let mut amr = vec!["fed".to_string()];
    for a in upstream {
        if !a.is_empty() && a.len() <= 32 && !amr.contains(a) {
            amr.push(a.clone());
        }
    }
    amr
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    p: &store::upstream::Provider,
    identity: Identity,
    pending: &str,
    next: &str,
) -> Result<HttpResponse, Failure> {
    let now = state.now();
    let (provider, id) = (p.clone(), identity.clone());
    // One transaction: linking, creating the account and its groups happen together or not.
    let ip = session::ip_string(state, req);
    let resolved = state
        .db
        .try_write(move |c| {
            let r = accounts::resolve(c, &provider, &id, now)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "upstream.signed_in",
                    actor_id: Some(&r.user.id),
                    user_id: Some(&r.user.id),
                    ip: ip.as_deref(),
                    detail: Some(json!({
                        "provider": provider.slug,
                        "subject": id.subject,
                        "created": r.created,
                        "linked_now": r.linked_now,
                    })),
                    ..Default::default()
                },
                now,
            )?;
            Ok::<_, Failure>(r)
        })
        .await?;
    if resolved.created {
        tracing::info!(provider = %p.slug, user = %resolved.user.username, "account created on first upstream sign-in");
    }
    let cookie = sign_in::complete_sign_in(
        state,
        req,
        &resolved.user.id,
        federated_amr(&identity.amr),
        pending,
    )
    .await?;
    if let Some(acr) = identity.acr.filter(|a| !a.is_empty() && a.len() <= 256) {
        let hash = hash_token(cookie.value());
        state
            .db
            .write(move |c| store::upstream::set_session_acr(c, &hash, &acr))
            .await?;
    }
    Ok(session::redirect_with_cookie(
        &sign_in::after_sign_in(state, pending, next),
        cookie,
    ))
}

async fn link(
    state: &AppState,
    req: &HttpRequest,
    p: &store::upstream::Provider,
    identity: Identity,
    user_id: Option<&str>,
) -> Result<HttpResponse, Failure> {
    // The browser must still be signed in as the account that asked for the link.
    let current = session::current(state, req).await?;
    let Some((_, user)) = current.filter(|(_, u)| Some(u.id.as_str()) == user_id) else {
        return Err(Failure::SignedOut);
    };
    let (provider, uid, now) = (p.clone(), user.id.clone(), state.now());
    state
        .db
        .try_write(move |c| accounts::link_to(c, &provider, &identity, &uid, now))
        .await?;
    Ok(ui::see_other("/account?done=linked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_reports_federation_first_and_keeps_upstream_values() {
        assert_eq!(federated_amr(&[]), vec!["fed"]);
        assert_eq!(
            federated_amr(&["pwd".into(), "mfa".into(), "fed".into()]),
            vec!["fed", "pwd", "mfa"]
        );
    }

    #[test]
    fn the_way_back_keeps_the_pending_request() {
        assert_eq!(login_path("", ""), "/login");
        assert_eq!(login_path("abc", ""), "/login?req=abc");
        assert_eq!(login_path("a b", "/x"), "/login?req=a+b&next=%2Fx");
        assert_eq!(login_path("", "/x"), "/login?next=%2Fx");
    }
}
