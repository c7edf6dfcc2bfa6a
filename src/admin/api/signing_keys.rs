//! /admin/api/keys — signing keys: list with state, rotate now.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, ApiKey, created, ok};
use crate::admin::blocking;
use crate::ops::signing_keys::KeyError;
use crate::web::State;

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Store(s) => s.into(),
        e => {
            tracing::error!(error = %e, "signing keys");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The signing keys could not be read or made.",
            )
        }
    }
}

/// GET /admin/api/keys
pub async fn list(state: State, _key: ApiKey) -> Result<HttpResponse, ApiError> {
    let (s, now) = (state.clone(), state.now());
    let keys = blocking(move || s.keys.list(now))
        .await
        .map_err(key_error)?;
    Ok(ok(json!({"keys": keys})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Sign with the new keys at once (a key leaked), instead of after the publish grace.
    #[serde(default)]
    immediately: bool,
}

/// POST /admin/api/keys/rotate — `{"immediately": false}` by default.
pub async fn rotate(
    state: State,
    key: ApiKey,
    body: ApiJson<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let kids = crate::admin::signing_keys::rotate_keys(&state, &key.actor(), body.0.immediately)
        .await
        .map_err(key_error)?;
    let (s, now) = (state.clone(), state.now());
    let keys = blocking(move || s.keys.list(now))
        .await
        .map_err(key_error)?;
    Ok(created(json!({"published": kids, "keys": keys})))
}
