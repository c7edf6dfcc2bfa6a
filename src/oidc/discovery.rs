//! GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
//! GET /.well-known/oauth-authorization-server (RFC 8414). Every field is true to what the
//! server supports; the documents depend only on configuration, so they are built once.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::domain::scope::KNOWN_SCOPES;
use crate::state::AppState;
use crate::web::State;

pub fn document(state: &AppState) -> Value {
    let u = |p: &str| state.url(p);
    json!({
        "issuer": state.config.issuer(),
        "authorization_endpoint": u("/authorize"),
        "token_endpoint": u("/token"),
        "userinfo_endpoint": u("/userinfo"),
        "jwks_uri": u("/jwks"),
        "revocation_endpoint": u("/revoke"),
        "introspection_endpoint": u("/introspect"),
        "end_session_endpoint": u("/logout"),
        "device_authorization_endpoint": u("/device_authorization"),
        "scopes_supported": KNOWN_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            crate::oidc::grants::DEVICE_CODE_GRANT,
            crate::oidc::grants::token_exchange::GRANT_TYPE
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash",
            "name", "preferred_username", "given_name", "family_name", "picture", "updated_at",
            "email", "email_verified", "groups", "roles"
        ],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "ui_locales_supported": ["en"],
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
    })
}

fn rfc8414_document(state: &AppState) -> Value {
    let mut doc = document(state);
    if let Some(obj) = doc.as_object_mut() {
        // RFC 8414 lists OAuth metadata; OIDC-only members are harmless but userinfo stays
        // meaningful for OIDC clients reading this document, so the document is shared.
        obj.insert("service_documentation".into(), json!(state.url("/")));
    }
    doc
}

async fn respond(req: &HttpRequest, state: &AppState, body: &[u8]) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=3600"));
    super::cors::apply(state, req, &mut resp).await;
    resp.body(body.to_vec())
}

pub async fn openid_configuration(state: State, req: HttpRequest) -> HttpResponse {
    let body = state
        .discovery
        .get_or_init(|| serde_json::to_vec(&document(&state)).unwrap_or_default());
    respond(&req, &state, body).await
}

pub async fn oauth_authorization_server(state: State, req: HttpRequest) -> HttpResponse {
    let body = state
        .oauth_metadata
        .get_or_init(|| serde_json::to_vec(&rfc8414_document(&state)).unwrap_or_default());
    respond(&req, &state, body).await
}
