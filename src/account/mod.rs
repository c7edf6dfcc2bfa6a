//! Self-service account page (GET /account) and its forms: change (or, for an account made
//! at a first sign-in through another provider, set) the password, end a session, withdraw an
//! app's access.

pub mod linked;
pub mod passkeys;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::crypto::password::Verified;
use crate::crypto::secret::Secret;
use crate::domain::scope;
use crate::domain::throttle;
use crate::ops::users;
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::consents::Consent;
use crate::store::passkeys::StoredPasskey;
use crate::store::sessions::Session;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session::{self, SignedIn};
use crate::web::ui::{self, CsrfForm, PageError};

/// GET / — the account page when signed in, else the sign-in page.
pub async fn home(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let signed_in = session::current(&state, &req).await?.is_some();
    Ok(ui::see_other(if signed_in { "/account" } else { "/login" }))
}

struct SessionRow {
    sid: String,
    device: String,
    ip: String,
    last_seen: String,
    current: bool,
}

struct PasskeyRow {
    id: String,
    name: String,
    kind: &'static str,
    created: String,
    last_used: String,
}

struct AppRow {
    client_id: String,
    name: String,
    scopes: String,
}

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    page: ui::Page,
    display_name: String,
    username: String,
    email: Option<String>,
    groups: Vec<String>,
    sessions: Vec<SessionRow>,
    apps: Vec<AppRow>,
    passkeys: Vec<PasskeyRow>,
    require_passkey: bool,
    has_password: bool,
    min_length: u32,
    notice: Option<String>,
    error: Option<String>,
    /// "Linked sign-ins": upstream identities to unlink and providers to link.
    upstream: linked::LinkedSignIns,
}

/// "Firefox on Linux" from a User-Agent header (a hint for people, not a security check).
pub fn describe_device(ua: Option<&str>) -> String {
    let Some(ua) = ua else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v)
    .unwrap_or("Browser");
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_string(),
    }
}

/// "3 minutes ago" style.
pub fn ago(now: UnixTime, then: UnixTime) -> String {
    let d = (now - then).max(0);
    match d {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    me: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let uid = me.user.id.clone();
    let now = state.now();
    let (groups, sessions, consents, keys, required) = state
        .db
        .read(move |c| {
            Ok((
                store::users::group_names(c, &uid)?,
                store::sessions::list_for_user(c, &uid, now)?,
                store::consents::list_for_user(c, &uid)?,
                store::passkeys::list_for_user(c, &uid)?,
                store::passkeys::required_for(c, &uid)?,
            ))
        })
        .await?;
    let page = AccountPage {
        page: me.page(state, req, "Your account"),
        display_name: me.user.shown_name().to_string(),
        username: me.user.username.clone(),
        email: me.user.email.clone(),
        groups,
        sessions: session_rows(sessions, me, now),
        apps: app_rows(consents),
        passkeys: passkey_rows(keys, now),
        require_passkey: required,
        has_password: me.user.password_hash.is_some(),
        min_length: state.config.password_min_length,
        notice,
        error,
        upstream: linked::account_section(state, &me.user.id).await?,
    };
    Ok(ui::render(status, &page))
}

/// The user's sessions as listed, marking the one of this request.
fn session_rows(sessions: Vec<Session>, me: &SignedIn, now: UnixTime) -> Vec<SessionRow> {
    sessions
        .into_iter()
        .map(|s| SessionRow {
            current: s.sid == me.session.sid,
            device: describe_device(s.user_agent.as_deref()),
            ip: s.ip.clone().unwrap_or_default(),
            last_seen: ago(now, s.last_seen_at),
            sid: s.sid,
        })
        .collect()
}

/// The apps the user consented to, each with what it may see in words.
fn app_rows(consents: Vec<Consent>) -> Vec<AppRow> {
    consents
        .into_iter()
        .map(|c| AppRow {
            name: c.client_name,
            scopes: {
                let words: Vec<String> =
                    c.scopes.iter().filter_map(|s| scope::describe(s)).collect();
                if words.is_empty() {
                    "who you are".into()
                } else {
                    words.join(", ")
                }
            },
            client_id: c.client_id,
        })
        .collect()
}

/// The user's passkeys: synced or not, when added and last used.
fn passkey_rows(keys: Vec<StoredPasskey>, now: UnixTime) -> Vec<PasskeyRow> {
    keys.into_iter()
        .map(|p| PasskeyRow {
            kind: if p.backup_eligible {
                "synced"
            } else {
                "this device only"
            },
            created: ago(now, p.created_at),
            last_used: p
                .last_used_at
                .map(|t| ago(now, t))
                .unwrap_or_else(|| "never".into()),
            id: p.id,
            name: p.name,
        })
        .collect()
}

/// The account page with an error message (for refused actions).
pub async fn render_with_error(
    state: &AppState,
    req: &HttpRequest,
    me: &SignedIn,
    status: StatusCode,
    message: &str,
) -> Result<HttpResponse, PageError> {
    render(state, req, me, status, None, Some(message.to_string())).await
}

#[derive(Deserialize, Default)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
}

pub async fn get(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    q: actix_web::web::Query<Flash>,
) -> Result<HttpResponse, PageError> {
    let notice = match q.done.as_deref() {
        Some("password") => {
            Some("Your password is changed. Your other devices are signed out.".to_string())
        }
        Some("password_set") => Some(
            "Your password is set. You can now also sign in with your username and password."
                .to_string(),
        ),
        Some("session") => Some("That device is signed out.".to_string()),
        Some("app") => Some("The app no longer has access to your account.".to_string()),
        Some("passkey") => Some("Your passkey is added. You can now sign in with it.".to_string()),
        Some("passkey_renamed") => Some("Passkey renamed.".to_string()),
        Some("passkey_deleted") => Some("Passkey removed.".to_string()),
        Some("passkey_required") => Some("Your sign-in setting is saved.".to_string()),
        Some("linked") => Some("Linked. You can now sign in with it.".to_string()),
        Some("unlinked") => Some("Unlinked.".to_string()),
        _ => None,
    };
    render(&state, &req, &me, StatusCode::OK, notice, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    /// Absent when the account has no password yet.
    #[serde(default)]
    current: String,
    new_password: String,
}

/// GET /.well-known/change-password (W3C "A Well-Known URL for Changing Passwords"): where
/// password managers send people to change theirs — the account page's password form
/// (signed-out visitors sign in first).
pub async fn change_password_url() -> HttpResponse {
    ui::see_other("/account#password")
}

/// POST /account/password — asks for the current password; signs out the other sessions.
/// An account without a password (made at a first sign-in through another provider, or with a
/// passkey) has no current password to give: it sets its first one, and keeps its sessions.
pub async fn change_password(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    if me.user.password_hash.is_none() {
        return set_first_password(state, req, me, f.new_password).await;
    }
    let attempt = match admit_password_check(&state, &req, &me).await? {
        throttle::Admission::Go(r) => r,
        throttle::Admission::Wait(wait) => {
            let msg = format!("Too many failed attempts. Wait {wait} seconds, then try again.");
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut resp = render(&state, &req, &me, status, None, Some(msg)).await?;
            ui::retry_after(&mut resp, wait);
            return Ok(resp);
        }
    };
    let ok = state
        .hasher
        .verify(
            Secret::new(f.current.clone()),
            me.user.password_hash.clone(),
        )
        .await
        .map_err(PageError::from)?;
    if ok == Verified::No {
        tracing::info!(failures = attempt.failures(), "current password wrong");
        return render(
            &state,
            &req,
            &me,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Your current password is not correct.".into()),
        )
        .await;
    }
    let hash = match hash_new_password(&state, f.new_password).await? {
        Ok(hash) => hash,
        Err(refusal) => {
            state
                .db
                .write(move |c| throttle::succeeded(c, &attempt))
                .await?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render(&state, &req, &me, status, None, Some(refusal)).await;
        }
    };
    save_changed_password(&state, &me, attempt, hash).await?;
    Ok(ui::see_other("/account?done=password"))
}

/// Admits (and counts) a check of the current password.
async fn admit_password_check(
    state: &State,
    req: &HttpRequest,
    me: &SignedIn,
) -> Result<throttle::Admission, StoreError> {
    // The current password is checked under the same throttle as sign-in: a stolen session
    // cookie must not become a password oracle.
    let keys = vec![
        throttle::user_key(&me.user.username),
        throttle::ip_key(
            session::ip_string(state, req)
                .as_deref()
                .unwrap_or("unknown"),
        ),
    ];
    let (st, now) = (state.clone(), state.now());
    state
        .db
        .write(move |c| throttle::admit(c, &st.config, &keys, now))
        .await
}

/// One transaction: clears the throttle, stores the new hash, signs out the other sessions
/// and audits the change.
async fn save_changed_password(
    state: &AppState,
    me: &SignedIn,
    attempt: throttle::Reservation,
    hash: String,
) -> Result<(), StoreError> {
    let (uid, sid, now) = (me.user.id.clone(), me.session.sid.clone(), state.now());
    state
        .db
        .write(move |c| -> Result<(), StoreError> {
            throttle::succeeded(c, &attempt)?;
            store::users::set_password_hash(c, &uid, &hash, now)?;
            let others = store::sessions::sids_of_user(c, &uid, Some(&sid))?;
            crate::domain::session::end_sessions(c, &others, Some(&uid), "password_changed", now)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "password.changed",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ..Default::default()
                },
                now,
            )
        })
        .await
}

/// The password policy, then the hash; `Err` is the sentence shown when the policy refuses.
async fn hash_new_password(
    state: &AppState,
    password: String,
) -> Result<Result<String, String>, PageError> {
    if let Err(e) = users::validate_password(&password, state.config.password_min_length) {
        return Ok(Err(format!("New password: {}", e.message)));
    }
    let hash = state
        .hasher
        .hash(Secret::new(password))
        .await
        .map_err(PageError::from)?;
    Ok(Ok(hash))
}

/// The first password of an account that has none, under the same password policy.
async fn set_first_password(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    new_password: String,
) -> Result<HttpResponse, PageError> {
    let hash = match hash_new_password(&state, new_password).await? {
        Ok(hash) => hash,
        Err(refusal) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render(&state, &req, &me, status, None, Some(refusal)).await;
        }
    };
    let (uid, now) = (me.user.id.clone(), state.now());
    let set = state
        .db
        .write(move |c| -> Result<bool, StoreError> {
            // A password set meanwhile (another tab, a reset link) is changed only by someone
            // who knows it: the skipped check must still hold inside the transaction.
            if store::users::by_id(c, &uid)?.is_none_or(|u| u.password_hash.is_some()) {
                return Ok(false);
            }
            store::users::set_password_hash(c, &uid, &hash, now)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "password.set",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ..Default::default()
                },
                now,
            )?;
            Ok(true)
        })
        .await?;
    if !set {
        return render(
            &state,
            &req,
            &me,
            StatusCode::CONFLICT,
            None,
            Some("Your account has a password now. Reload this page and change it with your current password.".into()),
        )
        .await;
    }
    Ok(ui::see_other("/account?done=password_set"))
}

#[derive(Deserialize)]
pub struct EndSessionForm {
    sid: String,
}

/// POST /account/sessions/end — signs out one of the user's own sessions.
pub async fn end_session(
    state: State,
    me: SignedIn,
    form: CsrfForm<EndSessionForm>,
) -> Result<HttpResponse, PageError> {
    let (uid, sid, now) = (me.user.id.clone(), form.0.sid, state.now());
    let own = sid.clone();
    state
        .db
        .write(move |c| {
            // Only the user's own sessions.
            if store::sessions::by_sid(c, &sid)?.is_some_and(|s| s.user_id == uid) {
                crate::domain::session::end_sessions(
                    c,
                    &[sid],
                    Some(&uid),
                    "signed_out_from_account",
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    if own == me.session.sid {
        let mut resp = ui::see_other("/login?signed_out=1");
        let _ = resp.add_removal_cookie(&ui::removal_cookie(&state, session::COOKIE));
        return Ok(resp);
    }
    Ok(ui::see_other("/account?done=session"))
}

#[derive(Deserialize)]
pub struct RevokeAppForm {
    client_id: String,
}

/// POST /account/apps/revoke — deletes the consent and revokes that app's tokens for the user.
pub async fn revoke_app(
    state: State,
    me: SignedIn,
    form: CsrfForm<RevokeAppForm>,
) -> Result<HttpResponse, PageError> {
    let (uid, cid, now) = (me.user.id.clone(), form.0.client_id, state.now());
    state
        .db
        .write(move |c| {
            if store::consents::revoke(c, &uid, &cid, now)? {
                store::audit::record(
                    c,
                    &NewEvent {
                        kind: "consent.revoked",
                        actor_id: Some(&uid),
                        user_id: Some(&uid),
                        client_id: Some(&cid),
                        ..Default::default()
                    },
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(ui::see_other("/account?done=app"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_described_in_words() {
        assert_eq!(
            describe_device(Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            )),
            "Firefox on Linux"
        );
        assert_eq!(describe_device(None), "Unknown device");
    }

    #[test]
    fn relative_times() {
        assert_eq!(ago(100, 90), "just now");
        assert_eq!(ago(10_000, 10_000 - 7200), "2 h ago");
    }
}
