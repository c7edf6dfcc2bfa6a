//! /admin/api/users — list, create (with a password, or an invite link returned once), read,
//! change, disable, enable, delete, one-time links, sessions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiJson, ApiKey, ApiQuery, Paging, created, no_content, nullable, ok, op};
use crate::crypto::secret::Secret;
use crate::ops::OpError;
use crate::ops::users::{self, LinkKind, UserEdit};
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::web::State;

const USER: &str = "user";

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl ListQuery {
    fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// GET /admin/api/users?q=&limit=&offset=
pub async fn list(
    state: State,
    _key: ApiKey,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let (limit, offset) = (q.paging().limit(), q.paging().offset());
    let search = q.q;
    let (total, rows) = state
        .db
        .read(move |c| {
            let total = store::users::count_matching(c, &search)?;
            let mut rows = Vec::new();
            for u in store::users::list(c, &search, limit, offset)? {
                let g = store::users::group_names(c, &u.id)?;
                rows.push(users::to_json(&u, &g));
            }
            Ok((total, rows))
        })
        .await?;
    Ok(ok(
        json!({"users": rows, "total": total, "limit": limit, "offset": offset}),
    ))
}

async fn user_json(state: &AppState, id: String) -> Result<Value, ApiError> {
    state
        .db
        .read(move |c| {
            let Some(u) = users::find(c, &id)? else {
                return Ok(None);
            };
            let g = store::users::group_names(c, &u.id)?;
            Ok(Some(users::to_json(&u, &g)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(USER))
}

async fn resolve(state: &AppState, id: String) -> Result<String, ApiError> {
    state
        .db
        .read(move |c| Ok(users::find(c, &id)?.map(|u| u.id)))
        .await?
        .ok_or_else(|| ApiError::not_found(USER))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    username: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    display_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    claims: Map<String, Value>,
    /// Without a password, the response carries a one-time invite link.
    password: Option<String>,
    /// Whether the invite link may also set a password (default true).
    invite_allow_password: Option<bool>,
}

async fn hash_password(state: &AppState, pw: String) -> Result<String, ApiError> {
    users::validate_password(&pw, state.config.password_min_length)
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    state
        .hasher
        .hash(Secret::new(pw))
        .await
        .map_err(|e| match e {
            crate::crypto::CryptoError::PoolBusy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Too many passwords are being hashed right now; try again in a moment.",
            ),
            e => {
                tracing::error!(error = %e, "hashing");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "The password could not be hashed.",
                )
            }
        })
}

/// POST /admin/api/users
pub async fn create(
    state: State,
    key: ApiKey,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let password_hash = match b.password {
        Some(pw) => Some(hash_password(&state, pw).await?),
        None => None,
    };
    let edit = UserEdit {
        username: b.username,
        display_name: b.display_name,
        given_name: b.given_name,
        family_name: b.family_name,
        email: b.email,
        email_verified: b.email_verified,
        groups: b.groups,
        disabled: b.disabled,
        claims: b.claims,
    };
    let invite = password_hash.is_none().then_some(LinkKind::Invite {
        allow_password: b.invite_allow_password.unwrap_or(true),
    });
    let (actor, now) = (key.actor(), state.now());
    let ttl = state.config.password_reset_ttl.as_secs() as i64;
    let (user, groups, token) = state
        .db
        .try_write(move |c| {
            let user = users::create(c, &actor, edit, password_hash, now)?;
            let token = match invite {
                Some(kind) => Some(users::issue_link(c, &actor, &user.id, kind, ttl, now)?),
                None => None,
            };
            let groups = store::users::group_names(c, &user.id)?;
            Ok::<_, OpError>((user, groups, token))
        })
        .await?;
    let mut v = users::to_json(&user, &groups);
    if let (Some(obj), Some(token), Some(kind)) = (v.as_object_mut(), token, invite) {
        obj.insert("invite_url".into(), json!(state.url(&kind.path(&token))));
        obj.insert("invite_expires_at".into(), json!(now + ttl));
    }
    Ok(created(v))
}

/// GET /admin/api/users/{id} (an id or a username)
pub async fn get(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(user_json(&state, path.into_inner()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    username: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    email_verified: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    family_name: Option<Option<String>>,
    groups: Option<Vec<String>>,
    disabled: Option<bool>,
    claims: Option<Map<String, Value>>,
    password: Option<String>,
}

/// PATCH /admin/api/users/{id} — only the fields present change; `null` clears a text field.
/// Disabling signs the user out everywhere.
pub async fn update(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = resolve(&state, path.into_inner()).await?;
    let b = body.0;
    let password_hash = match b.password {
        Some(pw) => Some(hash_password(&state, pw).await?),
        None => None,
    };
    let (actor, now, id2) = (key.actor(), state.now(), id.clone());
    state
        .db
        .try_write(move |c| {
            let cur = store::users::by_id(c, &id2)?.ok_or(OpError::NotFound)?;
            let mut e = UserEdit::of(&cur, store::users::group_names(c, &id2)?);
            if let Some(v) = b.username {
                e.username = v;
            }
            if let Some(v) = b.email {
                e.email = v;
            }
            if let Some(v) = b.email_verified {
                e.email_verified = v;
            }
            if let Some(v) = b.display_name {
                e.display_name = v;
            }
            if let Some(v) = b.given_name {
                e.given_name = v;
            }
            if let Some(v) = b.family_name {
                e.family_name = v;
            }
            if let Some(v) = b.groups {
                e.groups = v;
            }
            if let Some(v) = b.disabled {
                e.disabled = v;
            }
            if let Some(v) = b.claims {
                e.claims = v;
            }
            users::update(c, &actor, &id2, e, now)?;
            if let Some(h) = password_hash {
                users::set_password(c, &actor, &id2, &h, now)?;
            }
            Ok::<_, OpError>(())
        })
        .await
        .map_err(op(USER))?;
    state.kick_logout_delivery();
    Ok(ok(user_json(&state, id).await?))
}

/// DELETE /admin/api/users/{id} — their sessions end first (apps are told), then the user
/// and everything about them goes.
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = resolve(&state, path.into_inner()).await?;
    let (actor, now) = (key.actor(), state.now());
    state
        .db
        .try_write(move |c| users::delete(c, &actor, &id, now))
        .await
        .map_err(op(USER))?;
    state.kick_logout_delivery();
    Ok(no_content())
}

async fn set_disabled(
    state: State,
    key: ApiKey,
    id: String,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    let id = resolve(&state, id).await?;
    let (actor, now, id2) = (key.actor(), state.now(), id.clone());
    state
        .db
        .try_write(move |c| users::set_disabled(c, &actor, &id2, disabled, now))
        .await
        .map_err(op(USER))?;
    state.kick_logout_delivery();
    Ok(ok(user_json(&state, id).await?))
}

/// POST /admin/api/users/{id}/disable — signs them out everywhere, revokes their tokens.
pub async fn disable(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(state, key, path.into_inner(), true).await
}

/// POST /admin/api/users/{id}/enable
pub async fn enable(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(state, key, path.into_inner(), false).await
}

async fn link(
    state: State,
    key: ApiKey,
    id: String,
    kind: LinkKind,
) -> Result<HttpResponse, ApiError> {
    let id = resolve(&state, id).await?;
    let (actor, now) = (key.actor(), state.now());
    let ttl = state.config.password_reset_ttl.as_secs() as i64;
    let token = state
        .db
        .try_write(move |c| users::issue_link(c, &actor, &id, kind, ttl, now))
        .await
        .map_err(op(USER))?;
    Ok(created(
        json!({"url": state.url(&kind.path(&token)), "expires_at": now + ttl}),
    ))
}

/// POST /admin/api/users/{id}/reset-link — a one-time link to set a new password.
pub async fn reset_link(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    link(state, key, path.into_inner(), LinkKind::PasswordReset).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    #[serde(default = "yes")]
    allow_password: bool,
}

fn yes() -> bool {
    true
}

/// POST /admin/api/users/{id}/invite-link — a one-time set-up link (passkey, or password).
pub async fn invite_link(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = LinkKind::Invite {
        allow_password: body.0.allow_password,
    };
    link(state, key, path.into_inner(), kind).await
}

/// A session as JSON.
pub fn session_json(a: &store::sessions::ActiveSession) -> Value {
    let s = &a.session;
    json!({
        "sid": s.sid,
        "user_id": s.user_id,
        "username": a.username,
        "auth_time": s.auth_time,
        "amr": s.amr,
        "user_agent": s.user_agent,
        "ip": s.ip,
        "created_at": s.created_at,
        "last_seen_at": s.last_seen_at,
        "expires_at": s.expires_at,
    })
}

/// GET /admin/api/users/{id}/sessions
pub async fn sessions(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = resolve(&state, path.into_inner()).await?;
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let list = state
        .db
        .read(move |c| -> Result<_, StoreError> {
            store::sessions::list_active(c, now, idle, Some(&id), super::MAX_LIMIT, 0)
        })
        .await?;
    Ok(ok(
        json!({"sessions": list.iter().map(session_json).collect::<Vec<_>>()}),
    ))
}
