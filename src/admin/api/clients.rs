//! /admin/api/clients — applications: list, create (the secret is in the response, once),
//! read, change, delete, new secret. Field names follow OAuth dynamic client registration
//! (RFC 7591) where one exists, and are the same in requests and responses.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiKey, ApiQuery, Paging, created, no_content, nullable, ok};
use crate::ops::OpError;
use crate::ops::clients::{self, ClientInput};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;
use crate::web::State;

/// The API's names for the fields `clients::validate` reports.
fn api_field(field: &str) -> &str {
    match field {
        "auth_method" => "token_endpoint_auth_method",
        "signing_alg" => "id_token_signed_response_alg",
        other => other,
    }
}

fn err(e: OpError) -> ApiError {
    match e {
        OpError::NotFound => ApiError::not_found("client"),
        e => {
            let mut a = ApiError::from(e);
            a.field = a.field.map(|f| api_field(&f).to_string());
            a
        }
    }
}

fn client_json(state: &AppState, c: &Client, secret: Option<&str>) -> Value {
    let mut v = clients::to_json(c, state.config.issuer());
    if let Some(obj) = v.as_object_mut() {
        obj.insert("warnings".into(), json!(clients::warnings(c)));
        if let Some(s) = secret {
            obj.insert("client_secret".into(), json!(s));
        }
    }
    v
}

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

/// GET /admin/api/clients?q=&limit=&offset=
pub async fn list(
    state: State,
    _key: ApiKey,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let (limit, offset, search) = (q.paging().limit(), q.paging().offset(), q.q);
    let (total, list) = state
        .db
        .read(move |c| {
            Ok((
                store::clients::count_matching(c, &search)?,
                store::clients::list_page(c, &search, limit, offset)?,
            ))
        })
        .await?;
    let rows: Vec<Value> = list.iter().map(|c| client_json(&state, c, None)).collect();
    Ok(ok(
        json!({"clients": rows, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// Every setting, optional: absent keeps the current (or default) value, `null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    public: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    token_endpoint_auth_method: Option<Option<String>>,
    require_pkce: Option<bool>,
    skip_consent: Option<bool>,
    allow_refresh: Option<bool>,
    allow_client_credentials: Option<bool>,
    allowed_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    allowed_scopes: Option<Option<String>>,
    id_token_signed_response_alg: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    access_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    id_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    refresh_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    backchannel_logout_uri: Option<Option<String>>,
    backchannel_logout_session_required: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    frontchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    logo_url: Option<Option<String>>,
    allow_device_code: Option<bool>,
    require_role: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    exchange_token_ttl: Option<Option<i64>>,
    exchange_sources: Option<Vec<String>>,
}

macro_rules! set {
    ($input:ident, $body:ident, $($field:ident => $target:ident),* $(,)?) => {
        $( if let Some(v) = $body.$field { $input.$target = v; } )*
    };
}

impl ClientBody {
    fn apply(self, i: &mut ClientInput) {
        let b = self;
        set!(i, b,
            name => name,
            redirect_uris => redirect_uris,
            post_logout_redirect_uris => post_logout_redirect_uris,
            public => public,
            token_endpoint_auth_method => auth_method,
            require_pkce => require_pkce,
            skip_consent => skip_consent,
            allow_refresh => allow_refresh,
            allow_client_credentials => allow_client_credentials,
            allowed_groups => allowed_groups,
            allowed_scopes => allowed_scopes,
            id_token_signed_response_alg => signing_alg,
            access_token_ttl => access_token_ttl,
            id_token_ttl => id_token_ttl,
            refresh_token_ttl => refresh_token_ttl,
            backchannel_logout_uri => backchannel_logout_uri,
            backchannel_logout_session_required => backchannel_logout_session_required,
            frontchannel_logout_uri => frontchannel_logout_uri,
            logo_url => logo_url,
            allow_device_code => allow_device_code,
            require_role => require_role,
            exchange_token_ttl => exchange_token_ttl,
            exchange_sources => exchange_sources,
        );
    }
}

/// POST /admin/api/clients — 201 with `client_secret` (confidential clients), shown once.
pub async fn create(
    state: State,
    key: ApiKey,
    body: ApiJson<ClientBody>,
) -> Result<HttpResponse, ApiError> {
    let mut input = ClientInput::default();
    body.0.apply(&mut input);
    let (actor, now) = (key.actor(), state.now());
    let (c, secret) = state
        .db
        .try_write(move |c| clients::create_as(c, &actor, input, now))
        .await
        .map_err(err)?;
    Ok(created(client_json(&state, &c, secret.as_deref())))
}

async fn load(state: &AppState, id: String) -> Result<Client, ApiError> {
    state
        .db
        .read(move |c| store::clients::by_id(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("client"))
}

/// GET /admin/api/clients/{id}
pub async fn get(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = load(&state, path.into_inner()).await?;
    Ok(ok(client_json(&state, &c, None)))
}

/// PATCH /admin/api/clients/{id} — a client that becomes confidential gets a secret,
/// returned once as `client_secret`.
pub async fn update(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<ClientBody>,
) -> Result<HttpResponse, ApiError> {
    let cur = load(&state, path.into_inner()).await?;
    let mut input = clients::input_of(&cur);
    body.0.apply(&mut input);
    let (actor, now) = (key.actor(), state.now());
    let (c, secret) = state
        .db
        .try_write(move |c| clients::update(c, &actor, &cur.id, input, now))
        .await
        .map_err(err)?;
    Ok(ok(client_json(&state, &c, secret.as_deref())))
}

/// DELETE /admin/api/clients/{id}
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (actor, now, id) = (key.actor(), state.now(), path.into_inner());
    state
        .db
        .try_write(move |c| clients::delete(c, &actor, &id, now))
        .await
        .map_err(err)?;
    Ok(no_content())
}

/// POST /admin/api/clients/{id}/secret — the old secret stops working; the new one is in the
/// response, once.
pub async fn regenerate_secret(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (actor, now, id) = (key.actor(), state.now(), path.into_inner());
    let id2 = id.clone();
    let secret = state
        .db
        .try_write(move |c| clients::regenerate_secret(c, &actor, &id2, now))
        .await
        .map_err(err)?;
    Ok(ok(json!({"client_id": id, "client_secret": secret})))
}
