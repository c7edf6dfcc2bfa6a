//! GET|POST /device and POST /device/decide — the verification page of device sign-in
//! (RFC 8628 §3.3): the person types the code their device shows, sees what asks (the app,
//! the device's address and kind, when it started, what it may see) and allows or denies.
//!
//! Signed-out visitors sign in first (`/login?next=/device?code=…`, any sign-in method) and
//! come back with the code kept. A wrong, expired or used code gets one answer that does not
//! tell them apart; rejected codes are counted per client IP, per person and over the server
//! (`domain::throttle::code_guess_limits`), and past the limits the page answers 429 with a
//! wait. The app's group and role restrictions apply as at /authorize (the same 403 page and
//! audit events); the confirmation page is the consent, recorded as the code flow records it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::{ago, describe_device};
use crate::domain::{scope, throttle};
use crate::oidc::authorize;
use crate::oidc::device_authorization::{display_user_code, normalize_user_code, user_code_hash};
use crate::state::AppState;
use crate::store;
use crate::store::audit::NewEvent;
use crate::store::clients::Client;
use crate::store::device_codes::{Approval, DeviceCode, Status};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::web::State;
use crate::web::session::{self, SignedIn};
use crate::web::ui::{self, CsrfForm, Page, PageError};

/// What a rejected code is told, whatever the reason (unknown, expired, used, decided).
pub const INVALID_CODE: &str =
    "That code is not valid. Check it on your device, or start again there.";
/// The longest typed code kept for the form (a code is 9 characters).
const MAX_TYPED: usize = 32;

#[derive(Template)]
#[template(path = "login/device.html")]
struct DevicePage {
    page: Page,
    /// "enter", "confirm", "approved" or "denied".
    step: &'static str,
    username: String,
    code: String,
    error: Option<String>,
    app: Option<AppView>,
}

/// What the confirmation page says about the request.
struct AppView {
    name: String,
    logo: Option<String>,
    device: String,
    ip: String,
    started: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    code: String,
}

/// The typed code, shortened, for showing it back in the form.
fn typed(code: &str) -> String {
    let code = code.trim();
    match normalize_user_code(code) {
        Some(n) => display_user_code(&n),
        None => code.chars().take(MAX_TYPED).collect(),
    }
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    me: &Me,
    step: &'static str,
    title: &str,
) -> DevicePage {
    DevicePage {
        page: Page::new(state, req, title).with_user(me.user.shown_name(), me.is_admin),
        step,
        username: me.user.username.clone(),
        code: String::new(),
        error: None,
        app: None,
    }
}

/// The signed-in person (the extractor's fields, for pages reached by POST too).
struct Me {
    session: Session,
    user: User,
    is_admin: bool,
}

impl From<SignedIn> for Me {
    fn from(s: SignedIn) -> Self {
        Self {
            session: s.session,
            user: s.user,
            is_admin: s.is_admin,
        }
    }
}

/// The person signed in on this browser, or where to send them to sign in first (back to
/// /device with the code they typed).
async fn signed_in(state: &AppState, req: &HttpRequest, code: &str) -> Result<Me, HttpResponse> {
    match session::current(state, req).await {
        Ok(Some((session, user))) => {
            let uid = user.id.clone();
            let is_admin = state
                .db
                .read(move |c| store::users::is_admin(c, &uid))
                .await
                .unwrap_or(false);
            Ok(Me {
                session,
                user,
                is_admin,
            })
        }
        Ok(None) => {
            let back = format!("/device?code={}", ui::enc(&typed(code)));
            Err(ui::see_other(&format!("/login?next={}", ui::enc(&back))))
        }
        Err(e) => Err(PageError::from(e).error_response_html()),
    }
}

/// GET /device[?code=XXXX-XXXX] — the code entry form (prefilled from the link the device
/// showed; the person still confirms it, RFC 8628 §3.3.1).
pub async fn get(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    q: web::Query<DeviceQuery>,
) -> Result<HttpResponse, PageError> {
    let me = Me::from(me);
    let mut p = page(&state, &req, &me, "enter", "Sign in on a device");
    p.code = typed(&q.code);
    Ok(ui::ok(&p))
}

#[derive(Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    code: String,
}

/// What looking up a typed code found.
enum Lookup {
    /// A pending, live code, and its client.
    Found(Box<(DeviceCode, Client)>),
    Invalid,
    /// Too many rejected codes: wait this many seconds.
    Wait(i64),
}

/// Looks a typed code up, under the guess limits, in one write transaction: the wait is
/// checked, then the code; a rejection is counted and audited (`device.code_rejected`).
async fn look_up(
    state: &AppState,
    req: &HttpRequest,
    me: &Me,
    code: &str,
) -> Result<Lookup, PageError> {
    let normalized = normalize_user_code(code);
    let hash = normalized.as_deref().map(|n| user_code_hash(state, n));
    let ip = session::ip_string(state, req);
    let limits = throttle::code_guess_limits(
        &state.config,
        ip.as_deref().unwrap_or("unknown"),
        &me.user.id,
    );
    let uid = me.user.id.clone();
    let now = state.now();
    Ok(state
        .db
        .write(move |c| {
            let wait = throttle::code_guess_wait(c, &limits, now)?;
            if wait > 0 {
                return Ok(Lookup::Wait(wait));
            }
            let found = match &hash {
                Some(h) => store::device_codes::by_user_code_hash(c, h)?
                    .filter(|d| d.status == Status::Pending && !d.is_expired(now)),
                None => None,
            };
            if let Some(d) = found
                && let Some(client) = store::clients::by_id(c, &d.client_id)?
                && client.allow_device_code
            {
                return Ok(Lookup::Found(Box::new((d, client))));
            }
            // A malformed code cannot match anything: not counted as a guess.
            if hash.is_some() {
                throttle::code_guess_failed(c, &limits, now)?;
            }
            store::audit::record(
                c,
                &NewEvent {
                    kind: "device.code_rejected",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
                now,
            )?;
            Ok(Lookup::Invalid)
        })
        .await?)
}

/// The entry form again, with what went wrong.
fn refused(
    state: &AppState,
    req: &HttpRequest,
    me: &Me,
    code: &str,
    lookup: &Lookup,
) -> HttpResponse {
    let mut p = page(state, req, me, "enter", "Sign in on a device");
    p.code = typed(code);
    match lookup {
        Lookup::Wait(secs) => {
            p.error = Some(format!(
                "Too many codes were not valid. Wait {} and try again.",
                wait_words(*secs)
            ));
            let mut resp = ui::render(StatusCode::TOO_MANY_REQUESTS, &p);
            ui::retry_after(&mut resp, *secs);
            resp
        }
        _ => {
            p.error = Some(INVALID_CODE.into());
            ui::render(StatusCode::BAD_REQUEST, &p)
        }
    }
}

fn wait_words(secs: i64) -> String {
    match secs {
        ..=1 => "a second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "a minute".into(),
        _ => format!("{} minutes", (secs + 59) / 60),
    }
}

/// POST /device — the typed code: the confirmation page, or the form again.
pub async fn post(
    state: State,
    req: HttpRequest,
    form: CsrfForm<EntryForm>,
) -> Result<HttpResponse, PageError> {
    let code = form.0.code;
    let me = match signed_in(&state, &req, &code).await {
        Ok(me) => me,
        Err(resp) => return Ok(resp),
    };
    let lookup = look_up(&state, &req, &me, &code).await?;
    let Lookup::Found(found) = lookup else {
        return Ok(refused(&state, &req, &me, &code, &lookup));
    };
    let (d, client) = *found;
    if let Some(resp) = authorize::refuse_if_not_allowed(&state, &client, &me.user).await? {
        return Ok(resp);
    }
    let mut p = page(
        &state,
        &req,
        &me,
        "confirm",
        &format!("Allow {}?", client.name),
    );
    p.code = typed(&code);
    p.app = Some(AppView {
        name: client.name.clone(),
        logo: client.logo_url.clone().filter(|l| !l.is_empty()),
        device: device_words(d.device_agent.as_deref()),
        ip: d.device_ip.clone().unwrap_or_else(|| "unknown".into()),
        started: ago(state.now(), d.created_at),
        scopes: grants_words(&d.scope),
    });
    Ok(ui::ok(&p))
}

/// The device in words: `describe_device` ("Firefox on Linux"), with the product the
/// User-Agent names instead of the generic "Browser" (devices are seldom browsers):
/// "KitchenTV on Android", "node".
fn device_words(ua: Option<&str>) -> String {
    let described = describe_device(ua);
    let Some(rest) = described.strip_prefix("Browser") else {
        return described;
    };
    let product: String = ua
        .unwrap_or("")
        .split(['/', ' ', ';', '('])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    if product.is_empty() {
        described
    } else {
        format!("{product}{rest}")
    }
}

/// The scopes in plain words (`openid` says nothing of its own).
fn grants_words(scope_text: &str) -> Vec<String> {
    scope_text
        .split_whitespace()
        .filter_map(scope::describe)
        .collect()
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    decision: String,
}

/// POST /device/decide — Allow or Deny on the confirmation page.
pub async fn decide(
    state: State,
    req: HttpRequest,
    form: CsrfForm<DecideForm>,
) -> Result<HttpResponse, PageError> {
    let DecideForm { code, decision } = form.0;
    let me = match signed_in(&state, &req, &code).await {
        Ok(me) => me,
        Err(resp) => return Ok(resp),
    };
    let allow = match decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return Err(PageError::BadRequest("Choose Allow or Deny.".into())),
    };
    let lookup = look_up(&state, &req, &me, &code).await?;
    let Lookup::Found(found) = lookup else {
        return Ok(refused(&state, &req, &me, &code, &lookup));
    };
    let (d, client) = *found;
    if allow && let Some(resp) = authorize::refuse_if_not_allowed(&state, &client, &me.user).await?
    {
        return Ok(resp);
    }
    let done = record_decision(&state, &req, &me, &d, &client, allow).await?;
    if !done {
        // Decided (or expired) between the lookup and now.
        return Ok(refused(&state, &req, &me, &code, &Lookup::Invalid));
    }
    let (step, title) = if allow {
        ("approved", "Device signed in")
    } else {
        ("denied", "Device sign-in denied")
    };
    let mut p = page(&state, &req, &me, step, title);
    p.app = Some(AppView {
        name: client.name.clone(),
        logo: None,
        device: device_words(d.device_agent.as_deref()),
        ip: String::new(),
        started: String::new(),
        scopes: Vec::new(),
    });
    Ok(ui::ok(&p))
}

/// Approves or denies the code in one transaction with its audit event (and, on approval,
/// the consent, unless the app skips consent). False when the code was no longer pending.
async fn record_decision(
    state: &AppState,
    req: &HttpRequest,
    me: &Me,
    d: &DeviceCode,
    client: &Client,
    allow: bool,
) -> Result<bool, PageError> {
    let now = state.now();
    let ip = session::ip_string(state, req);
    let (uid, cid, hash) = (
        me.user.id.clone(),
        client.id.clone(),
        d.device_code_hash.clone(),
    );
    let scopes = crate::oidc::grants::scope_list(&d.scope);
    let record_consent = allow && !client.skip_consent;
    let s = me.session.clone();
    let device_ip = d.device_ip.clone();
    Ok(state
        .db
        .write(move |c| {
            let changed = if allow {
                store::device_codes::approve(
                    c,
                    &hash,
                    &Approval {
                        user_id: &uid,
                        sid: Some(&s.sid),
                        auth_time: s.auth_time,
                        amr: &s.amr,
                        acr: s.acr.as_deref(),
                    },
                    now,
                )?
            } else {
                store::device_codes::deny(c, &hash, &uid, now)?
            };
            if !changed {
                return Ok(false);
            }
            if record_consent {
                store::consents::grant(c, &uid, &cid, &scopes, now)?;
                store::audit::record(
                    c,
                    &NewEvent {
                        kind: "consent.granted",
                        actor_id: Some(&uid),
                        user_id: Some(&uid),
                        client_id: Some(&cid),
                        detail: Some(serde_json::json!({"scopes": scopes})),
                        ..Default::default()
                    },
                    now,
                )?;
            }
            store::audit::record(
                c,
                &NewEvent {
                    kind: if allow {
                        "device.approved"
                    } else {
                        "device.denied"
                    },
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    client_id: Some(&cid),
                    ip: ip.as_deref(),
                    detail: Some(serde_json::json!({"device_ip": device_ip, "scopes": scopes})),
                },
                now,
            )?;
            Ok(true)
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(wait_words(1), "a second");
        assert_eq!(wait_words(30), "30 seconds");
        assert_eq!(wait_words(61), "a minute");
        assert_eq!(wait_words(900), "15 minutes");
    }

    #[test]
    fn devices_are_named_by_their_product() {
        assert_eq!(
            device_words(Some("KitchenTV/2.1 (Linux; Android 12)")),
            "KitchenTV on Android"
        );
        assert_eq!(device_words(Some("node")), "node");
        assert_eq!(
            device_words(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")),
            "Firefox on Linux"
        );
        assert_eq!(device_words(None), "Unknown device");
    }

    #[test]
    fn typed_codes_are_shown_back_normalised_or_cut() {
        assert_eq!(typed(" wdjbmjht "), "WDJB-MJHT");
        assert_eq!(typed("nope"), "nope");
        assert_eq!(typed(&"x".repeat(100)).len(), MAX_TYPED);
    }
}
