//! /admin/api/groups and /admin/api/claim-scopes — groups, their members, and which scope
//! releases each custom claim.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiJson, ApiKey, ApiQuery, Paging, created, no_content, nullable, ok, op};
use crate::ops::OpError;
use crate::ops::groups::{self, GroupInput};
use crate::ops::users;
use crate::state::AppState;
use crate::store;
use crate::web::State;

const GROUP: &str = "group";

async fn resolve(state: &AppState, id: String) -> Result<store::groups::GroupDetail, ApiError> {
    state
        .db
        .read(move |c| groups::find(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found(GROUP))
}

/// GET /admin/api/groups — every group (groups are few).
pub async fn list(state: State, _key: ApiKey) -> Result<HttpResponse, ApiError> {
    let all = state.db.read(store::groups::list_details).await?;
    Ok(ok(
        json!({"groups": all.iter().map(groups::to_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    description: Option<String>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    require_passkey: bool,
}

/// POST /admin/api/groups
pub async fn create(
    state: State,
    key: ApiKey,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let input = GroupInput {
        name: b.name,
        description: b.description,
        claims: b.claims,
        require_passkey: b.require_passkey,
    };
    let (actor, now) = (key.actor(), state.now());
    let g = state
        .db
        .try_write(move |c| groups::create(c, &actor, input, now))
        .await?;
    Ok(created(groups::to_json(&g)))
}

/// GET /admin/api/groups/{id} (an id or a name)
pub async fn get(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(groups::to_json(
        &resolve(&state, path.into_inner()).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    claims: Option<Map<String, Value>>,
    require_passkey: Option<bool>,
}

/// PATCH /admin/api/groups/{id} — only the fields present change.
pub async fn update(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let g = resolve(&state, path.into_inner()).await?;
    let b = body.0;
    let mut input = GroupInput::of(&g);
    if let Some(v) = b.name {
        input.name = v;
    }
    if let Some(v) = b.description {
        input.description = v;
    }
    if let Some(v) = b.claims {
        input.claims = v;
    }
    if let Some(v) = b.require_passkey {
        input.require_passkey = v;
    }
    let (actor, now) = (key.actor(), state.now());
    let g = state
        .db
        .try_write(move |c| groups::update(c, &actor, &g.id, input, now))
        .await
        .map_err(op(GROUP))?;
    Ok(ok(groups::to_json(&g)))
}

/// DELETE /admin/api/groups/{id}
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let g = resolve(&state, path.into_inner()).await?;
    let (actor, now) = (key.actor(), state.now());
    state
        .db
        .try_write(move |c| groups::delete(c, &actor, &g.id, now))
        .await
        .map_err(op(GROUP))?;
    Ok(no_content())
}

/// GET /admin/api/groups/{id}/members?limit=&offset=
pub async fn members(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
    q: ApiQuery<Paging>,
) -> Result<HttpResponse, ApiError> {
    let g = resolve(&state, path.into_inner()).await?;
    let (limit, offset) = (q.0.limit(), q.0.offset());
    let gid = g.id.clone();
    let list = state
        .db
        .read(move |c| store::groups::members(c, &gid, limit, offset))
        .await?;
    let members: Vec<Value> = list
        .iter()
        .map(|m| {
            json!({"id": m.user_id, "username": m.username, "display_name": m.display_name, "disabled": m.disabled})
        })
        .collect();
    Ok(ok(
        json!({"members": members, "total": g.members, "limit": limit, "offset": offset}),
    ))
}

/// PUT /admin/api/groups/{id}/members/{user} (a user id or username)
pub async fn add_member(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (gid, user) = path.into_inner();
    let g = resolve(&state, gid).await?;
    let (actor, now) = (key.actor(), state.now());
    let found = state
        .db
        .read({
            let user = user.clone();
            move |c| users::find(c, &user)
        })
        .await?;
    if found.is_none() {
        return Err(ApiError::not_found("user"));
    }
    state
        .db
        .try_write(move |c| groups::add_member(c, &actor, &g.id, &user, now))
        .await
        .map_err(op(GROUP))?;
    Ok(no_content())
}

/// DELETE /admin/api/groups/{id}/members/{user}
pub async fn remove_member(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (gid, user) = path.into_inner();
    let g = resolve(&state, gid).await?;
    let (actor, now) = (key.actor(), state.now());
    let removed = state
        .db
        .try_write(move |c| groups::remove_member(c, &actor, &g.id, &user, now))
        .await
        .map_err(op(GROUP))?;
    if !removed {
        return Err(ApiError::not_found("member of this group"));
    }
    Ok(no_content())
}

async fn claim_scope_map(state: &AppState) -> Result<Value, ApiError> {
    let list = state.db.read(store::users::claim_scopes).await?;
    let map: Map<String, Value> = list.into_iter().map(|(c, s)| (c, json!(s))).collect();
    Ok(json!({"claim_scopes": map}))
}

/// GET /admin/api/claim-scopes — `{"claim_scopes": {"claim": "scope", …}}`
pub async fn claim_scopes(state: State, _key: ApiKey) -> Result<HttpResponse, ApiError> {
    Ok(ok(claim_scope_map(&state).await?))
}

/// PUT /admin/api/claim-scopes — `{"claim": "scope" | null, …}`: sets the named claims
/// (`null` or "" removes one); claims not named are unchanged.
pub async fn set_claim_scopes(
    state: State,
    key: ApiKey,
    body: ApiJson<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let mut pairs = Vec::new();
    for (claim, v) in body.0 {
        match v {
            Value::Null => pairs.push((claim, String::new())),
            Value::String(s) => pairs.push((claim, s)),
            _ => {
                return Err(ApiError::invalid(
                    "claim_scopes",
                    format!("The scope of {claim:?} must be a string or null."),
                ));
            }
        }
    }
    let (actor, now) = (key.actor(), state.now());
    state
        .db
        .try_write(move |c| users::set_claim_scopes(c, &actor, &pairs, now))
        .await
        .map_err(|e: OpError| ApiError::from(e))?;
    Ok(ok(claim_scope_map(&state).await?))
}
