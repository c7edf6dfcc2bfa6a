//! /admin/api/sessions — active browser sessions; end one.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiKey, ApiQuery, Paging, no_content, ok};
use crate::ops::users;
use crate::store::{self, StoreError};
use crate::web::State;

#[derive(Deserialize)]
pub struct ListQuery {
    /// A user id or username.
    user: Option<String>,
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

/// GET /admin/api/sessions?user=&limit=&offset= — most recently active first.
pub async fn list(
    state: State,
    _key: ApiKey,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let (limit, offset) = (q.paging().limit(), q.paging().offset());
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let user = q.user.filter(|u| !u.is_empty());
    let found = state
        .db
        .read(move |c| -> Result<_, StoreError> {
            let uid = match &user {
                Some(u) => match users::find(c, u)? {
                    Some(found) => Some(found.id),
                    None => return Ok(None),
                },
                None => None,
            };
            Ok(Some((
                store::sessions::count_active(c, now, idle, uid.as_deref())?,
                store::sessions::list_active(c, now, idle, uid.as_deref(), limit, offset)?,
            )))
        })
        .await?;
    let Some((total, list)) = found else {
        return Err(ApiError::not_found("user"));
    };
    let rows: Vec<_> = list.iter().map(super::users::session_json).collect();
    Ok(ok(
        json!({"sessions": rows, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// DELETE /admin/api/sessions/{sid} — ends it, revokes its tokens, tells its apps.
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (actor, now, sid) = (key.actor(), state.now(), path.into_inner());
    let ended = state
        .db
        .write(move |c| users::end_session(c, &actor, &sid, now))
        .await?;
    if !ended {
        return Err(ApiError::not_found("session"));
    }
    state.kick_logout_delivery();
    Ok(no_content())
}
