//! /admin/api/clients/{id}/roles — an application's roles and who holds them, and
//! /admin/api/users/{id}/roles — a person's roles in every application.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiKey, ApiQuery, created, no_content, nullable, ok, op};
use crate::ops::roles::{self, GranteeRef, RoleInput};
use crate::ops::users;
use crate::state::AppState;
use crate::store;
use crate::store::roles::{Grantee, Role};
use crate::web::State;

const ROLE: &str = "role";

/// The application's id (by id only: client ids are what the rest of the API uses).
async fn app(state: &AppState, id: String) -> Result<String, ApiError> {
    state
        .db
        .read(move |c| Ok(store::clients::by_id(c, &id)?.map(|c| c.id)))
        .await?
        .ok_or_else(|| ApiError::not_found("client"))
}

/// The role (id or name) of the application.
async fn role(state: &AppState, client_id: String, role: String) -> Result<Role, ApiError> {
    state
        .db
        .read(move |c| roles::find(c, &client_id, &role))
        .await?
        .ok_or_else(|| ApiError::not_found(ROLE))
}

fn role_json(r: &Role, grants: &[store::roles::GrantRow]) -> Value {
    let mut v = roles::to_json(r);
    let granted: Vec<Value> = grants
        .iter()
        .map(|g| match &g.grantee {
            Grantee::User(id) => json!({"type": "user", "id": id, "name": g.name}),
            Grantee::Group(id) => json!({"type": "group", "id": id, "name": g.name}),
        })
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("granted_to".into(), Value::Array(granted));
    }
    v
}

/// GET /admin/api/clients/{id}/roles — every role with who holds it directly.
pub async fn list(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cid = app(&state, path.into_inner()).await?;
    let all = state
        .db
        .read(move |c| {
            store::roles::list(c, &cid)?
                .into_iter()
                .map(|r| {
                    let g = store::roles::grantees(c, &r.id)?;
                    Ok(role_json(&r, &g))
                })
                .collect::<Result<Vec<_>, store::StoreError>>()
        })
        .await?;
    Ok(ok(json!({"roles": all})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    description: Option<String>,
}

/// POST /admin/api/clients/{id}/roles
pub async fn create(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let cid = app(&state, path.into_inner()).await?;
    let input = RoleInput {
        name: body.0.name,
        description: body.0.description,
    };
    let (actor, now) = (key.actor(), state.now());
    let r = state
        .db
        .try_write(move |c| roles::create(c, &actor, &cid, input, now))
        .await
        .map_err(op("client"))?;
    Ok(created(role_json(&r, &[])))
}

/// GET /admin/api/clients/{id}/roles/{role} (an id or a name)
pub async fn get(
    state: State,
    _key: ApiKey,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let cid = app(&state, id).await?;
    let r = role(&state, cid, name).await?;
    let rid = r.id.clone();
    let g = state
        .db
        .read(move |c| store::roles::grantees(c, &rid))
        .await?;
    Ok(ok(role_json(&r, &g)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
}

/// PATCH /admin/api/clients/{id}/roles/{role} — only the fields present change.
pub async fn update(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String)>,
    body: ApiJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let cid = app(&state, id).await?;
    let cur = role(&state, cid.clone(), name).await?;
    let input = RoleInput {
        name: body.0.name.unwrap_or_else(|| cur.name.clone()),
        description: body.0.description.unwrap_or(cur.description.clone()),
    };
    let (actor, now) = (key.actor(), state.now());
    let r = state
        .db
        .try_write(move |c| roles::update(c, &actor, &cid, &cur.id, input, now))
        .await
        .map_err(op(ROLE))?;
    Ok(ok(role_json(&r, &[])))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// A role still granted is deleted only with `revoke_grants=true`.
    #[serde(default)]
    revoke_grants: bool,
}

/// DELETE /admin/api/clients/{id}/roles/{role}[?revoke_grants=true]
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String)>,
    q: ApiQuery<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let cid = app(&state, id).await?;
    let r = role(&state, cid.clone(), name).await?;
    let (actor, now, confirmed) = (key.actor(), state.now(), q.0.revoke_grants);
    state
        .db
        .try_write(move |c| roles::delete(c, &actor, &cid, &r.id, confirmed, now))
        .await
        .map_err(op(ROLE))?;
    Ok(no_content())
}

async fn change_grant(
    state: &AppState,
    key: &ApiKey,
    client: String,
    role: String,
    who: GranteeRef,
    grant: bool,
) -> Result<HttpResponse, ApiError> {
    let cid = app(state, client).await?;
    let exists = state
        .db
        .read({
            let who = who.clone();
            move |c| {
                Ok(match &who {
                    GranteeRef::User(u) => users::find(c, u)?.is_some(),
                    GranteeRef::Group(g) => crate::ops::groups::find(c, g)?.is_some(),
                })
            }
        })
        .await?;
    if !exists {
        return Err(ApiError::not_found(match who {
            GranteeRef::User(_) => "user",
            GranteeRef::Group(_) => "group",
        }));
    }
    let (actor, now) = (key.actor(), state.now());
    let (_, changed) = state
        .db
        .try_write(move |c| {
            if grant {
                roles::grant(c, &actor, &cid, &role, &who, now)
            } else {
                roles::revoke(c, &actor, &cid, &role, &who, now)
            }
        })
        .await
        .map_err(op(ROLE))?;
    if !grant && !changed {
        return Err(ApiError::not_found("grant"));
    }
    Ok(no_content())
}

/// PUT /admin/api/clients/{id}/roles/{role}/users/{user} — grants the role (idempotent).
pub async fn grant_user(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, r, u) = path.into_inner();
    change_grant(&state, &key, c, r, GranteeRef::User(u), true).await
}

/// DELETE /admin/api/clients/{id}/roles/{role}/users/{user}
pub async fn revoke_user(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, r, u) = path.into_inner();
    change_grant(&state, &key, c, r, GranteeRef::User(u), false).await
}

/// PUT /admin/api/clients/{id}/roles/{role}/groups/{group}
pub async fn grant_group(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, r, g) = path.into_inner();
    change_grant(&state, &key, c, r, GranteeRef::Group(g), true).await
}

/// DELETE /admin/api/clients/{id}/roles/{role}/groups/{group}
pub async fn revoke_group(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, r, g) = path.into_inner();
    change_grant(&state, &key, c, r, GranteeRef::Group(g), false).await
}

/// GET /admin/api/users/{id}/roles — the person's roles in every application, direct or
/// through a group.
pub async fn of_user(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let held = state
        .db
        .read(move |c| {
            let Some(u) = users::find(c, &id)? else {
                return Ok(None);
            };
            store::roles::held_by_user(c, &u.id).map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let list: Vec<Value> = held
        .iter()
        .map(|h| {
            json!({"client_id": h.client_id, "client_name": h.client_name, "role": h.role, "via_group": h.via_group})
        })
        .collect();
    Ok(ok(json!({"roles": list})))
}
