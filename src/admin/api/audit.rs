//! /admin/api/audit — the audit log, newest first, with the console's filters.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiKey, ApiQuery, ok};
use crate::store::audit::Filter;
use crate::store::{self, StoreError};
use crate::web::State;

#[derive(Deserialize)]
pub struct ListQuery {
    /// A user id or username: events by or about them.
    user: Option<String>,
    client: Option<String>,
    /// A kind or a prefix such as `login`.
    kind: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    /// Only events with a smaller id (the next page).
    before: Option<i64>,
    /// Only events with a larger id (what is new since).
    after: Option<i64>,
    limit: Option<u32>,
}

/// GET /admin/api/audit
pub async fn list(
    state: State,
    _key: ApiKey,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let limit = q
        .limit
        .unwrap_or(super::DEFAULT_LIMIT)
        .clamp(1, super::MAX_LIMIT);
    let events = state
        .db
        .read(move |c| -> Result<_, StoreError> {
            let user_id = match q.user.filter(|u| !u.is_empty()) {
                Some(u) => Some(crate::ops::users::find(c, &u)?.map(|x| x.id).unwrap_or(u)),
                None => None,
            };
            let f = Filter {
                user_id,
                client_id: q.client.filter(|s| !s.is_empty()),
                since: q.since,
                until: q.until,
                after_id: q.after,
                ..Default::default()
            }
            .with_kind(q.kind);
            store::audit::search(c, &f, q.before, limit)
        })
        .await?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.event.id))
        .flatten();
    Ok(ok(json!({"events": events, "next_before": next})))
}
