//! GET|POST /login — password sign-in, reached from the authorization endpoint
//! (`?req=…`) or directly (`?next=/account`).
//!
//! Errors never reveal whether an account exists; unknown users cost one argon2 verification
//! like known ones; failures are throttled per account and per client IP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::crypto::password::Verified;
use crate::crypto::secret::Secret;
use crate::domain::throttle;
use crate::login::sign_in;
use crate::oidc::authorize;
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, CsrfForm, Page, PageError};

#[derive(Template)]
#[template(path = "login/password.html")]
struct LoginPage {
    page: Page,
    client_name: Option<String>,
    req: String,
    next: String,
    username: String,
    error: Option<String>,
    notice: Option<String>,
    /// "Continue with …" buttons of the enabled upstream providers.
    providers: Vec<crate::upstream::ProviderButton>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
    #[serde(default)]
    reset: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one page, many optional parts
async fn render(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    pending: &str,
    next: &str,
    username: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, PageError> {
    // Carried through the form, passkey and upstream sign-in only when it is a local path.
    let next = crate::web::return_to::local_path(&state.issuer_url, next).unwrap_or_default();
    let mut client_name = None;
    let mut username = username;
    if !pending.is_empty()
        && let Some((ar, client)) = authorize::load_pending(state, req, pending).await?
    {
        client_name = Some(client.name);
        if username.is_empty() {
            username = ar.login_hint.unwrap_or_default();
        }
    }
    let title = client_name
        .as_ref()
        .map(|n| format!("Sign in to {n}"))
        .unwrap_or_else(|| "Sign in".into());
    Ok(ui::render(
        status,
        &LoginPage {
            page: Page::new(state, req, title),
            client_name,
            req: pending.to_string(),
            next: next.clone(),
            username,
            error,
            notice,
            providers: crate::upstream::login_buttons(state, pending, &next).await?,
        },
    ))
}

pub async fn get(
    state: State,
    req: HttpRequest,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = if q.signed_out.is_some() {
        Some("You are signed out.".to_string())
    } else if q.reset.is_some() {
        Some("Your password is changed. Sign in with the new one.".to_string())
    } else {
        None
    };
    // Already signed in and not part of an authorization request: nothing to do here.
    if q.req.is_empty() && notice.is_none() && session::current(&state, &req).await?.is_some() {
        return Ok(ui::see_other(&crate::web::return_to::local_or_default(
            &state.issuer_url,
            &q.next,
        )));
    }
    // `kc_idp_hint` on the authorization request: straight to that provider.
    if let Some(to) = crate::upstream::hinted_start(&state, &req, &q.req).await? {
        return Ok(ui::see_other(&to));
    }
    render(
        &state,
        &req,
        StatusCode::OK,
        &q.req,
        &q.next,
        String::new(),
        None,
        notice,
    )
    .await
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

const WRONG: &str = "The username or password is incorrect.";

pub async fn post(
    state: State,
    req: HttpRequest,
    form: CsrfForm<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    let login = f.username.trim().to_string();
    let ip = session::ip_string(&state, &req);
    let now = state.now();

    let Attempt {
        admission,
        user,
        passkey_policy,
    } = admit_attempt(&state, &login, &ip, now).await?;
    let reservation = match admission {
        throttle::Admission::Go(r) => r,
        throttle::Admission::Wait(wait) => {
            let msg = format!("Too many failed attempts. Wait {wait} seconds, then try again.");
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut resp = render_error(&state, &req, &f, status, login, msg).await?;
            ui::retry_after(&mut resp, wait);
            return Ok(resp);
        }
    };

    // Always one verification, against the dummy hash when there is no usable password.
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = match state
        .hasher
        .verify(Secret::new(f.password.clone()), phc)
        .await
    {
        Ok(v) => v,
        Err(e) => return Err(PageError::from(e)),
    };
    let usable = user.as_ref().filter(|u| !u.disabled);

    let Some(user) = usable.filter(|_| verified != Verified::No) else {
        // The failure was counted when the attempt was admitted.
        let uid = user.as_ref().map(|u| u.id.clone());
        let failures = reservation.failures();
        record_failure(&state, uid, &login, &ip, failures, now).await?;
        tracing::info!(failures, "sign-in failed");
        let status = StatusCode::UNAUTHORIZED;
        return render_error(&state, &req, &f, status, login, WRONG.into()).await;
    };

    rehash_if_weaker(&state, verified, &user.id, &f.password, now).await?;
    let (needs_passkey, passkeys) = passkey_policy.unwrap_or((false, 0));
    if needs_passkey {
        return passkey_step(&state, &req, &f, login, &user.id, passkeys, reservation).await;
    }
    let cookie = sign_in::complete_sign_in_clearing(
        &state,
        &req,
        &user.id,
        vec!["pwd".into()],
        &f.req,
        Some(reservation),
    )
    .await?;
    Ok(session::redirect_with_cookie(
        &sign_in::after_sign_in(&state, &f.req, &f.next),
        cookie,
    ))
}

/// What the admitting transaction found.
struct Attempt {
    /// The throttle's answer; `Go` holds the attempt already counted as a failure.
    admission: throttle::Admission,
    /// The account named by the login, if any (not read when throttled).
    user: Option<User>,
    /// For a known account: whether it must use a passkey, and how many it has.
    passkey_policy: Option<(bool, i64)>,
}

/// Admits (and counts) the attempt and reads the account and its passkey policy.
async fn admit_attempt(
    state: &State,
    login: &str,
    ip: &Option<String>,
    now: UnixTime,
) -> Result<Attempt, StoreError> {
    let keys = vec![
        throttle::user_key(login),
        throttle::ip_key(ip.as_deref().unwrap_or("unknown")),
    ];
    // One write before the hash: the throttle admits and counts the attempt, and the account
    // and its passkey policy are read, all in one transaction.
    let (l, ip2, st) = (login.to_string(), ip.clone(), state.clone());
    state
        .db
        .write(move |c| {
            let admission = throttle::admit(c, &st.config, &keys, now)?;
            if let throttle::Admission::Wait(_) = admission {
                store::audit::record(
                    c,
                    &NewEvent {
                        kind: "login.throttled",
                        ip: ip2.as_deref(),
                        detail: Some(serde_json::json!({"login": l})),
                        ..Default::default()
                    },
                    now,
                )?;
                return Ok(Attempt {
                    admission,
                    user: None,
                    passkey_policy: None,
                });
            }
            let user = if l.is_empty() {
                None
            } else {
                store::users::by_login(c, &l)?
            };
            let passkey_policy = match &user {
                Some(u) => Some((
                    store::passkeys::required_for(c, &u.id)?,
                    store::passkeys::count_for_user(c, &u.id)?,
                )),
                None => None,
            };
            Ok(Attempt {
                admission,
                user,
                passkey_policy,
            })
        })
        .await
}

/// The sign-in form again, with what was typed and an error message.
async fn render_error(
    state: &AppState,
    req: &HttpRequest,
    f: &LoginForm,
    status: StatusCode,
    login: String,
    error: String,
) -> Result<HttpResponse, PageError> {
    render(
        state,
        req,
        status,
        &f.req,
        &f.next,
        login,
        Some(error),
        None,
    )
    .await
}

/// Audits a failed sign-in (wrong password, unknown or disabled account).
async fn record_failure(
    state: &AppState,
    uid: Option<String>,
    login: &str,
    ip: &Option<String>,
    failures: u32,
    now: UnixTime,
) -> Result<(), StoreError> {
    let (l, ip2) = (login.to_string(), ip.clone());
    state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind: "login.failed",
                    user_id: uid.as_deref(),
                    ip: ip2.as_deref(),
                    detail: Some(serde_json::json!({"login": l, "failures": failures})),
                    ..Default::default()
                },
                now,
            )
        })
        .await
}

/// Upgrades a hash made with weaker parameters while we hold the password.
async fn rehash_if_weaker(
    state: &AppState,
    verified: Verified,
    user_id: &str,
    password: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    if verified == Verified::YesRehash
        && let Ok(h) = state.hasher.hash(Secret::new(password.to_string())).await
    {
        let uid = user_id.to_string();
        state
            .db
            .write(move |c| store::users::set_password_hash(c, &uid, &h, now))
            .await?;
    }
    Ok(())
}

/// For an account that must use a passkey: the second step, or a refusal when it has none.
async fn passkey_step(
    state: &AppState,
    req: &HttpRequest,
    f: &LoginForm,
    login: String,
    user_id: &str,
    passkeys: i64,
    reservation: throttle::Reservation,
) -> Result<HttpResponse, PageError> {
    if passkeys == 0 {
        state
            .db
            .write(move |c| throttle::succeeded(c, &reservation))
            .await?;
        let msg = "Your account must confirm sign-in with a passkey, but none is registered. \
                   Ask your administrator for an invite link to add one.";
        return render_error(state, req, f, StatusCode::FORBIDDEN, login, msg.into()).await;
    }
    // Password verified; the session starts only after the passkey (see second_factor).
    state
        .db
        .write(move |c| throttle::succeeded(c, &reservation))
        .await?;
    Ok(super::second_factor::begin(state, user_id, &f.req, &f.next).await?)
}
