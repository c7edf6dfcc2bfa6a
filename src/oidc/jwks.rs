//! GET /jwks — every public key that may still verify a live token (RFC 7517).

use actix_web::{HttpRequest, HttpResponse};

use crate::web::State;

pub async fn get(state: State, req: HttpRequest) -> HttpResponse {
    let body = state.keys.jwks();
    let mut resp = HttpResponse::Ok();
    // Short caching: a key is published a whole grace period before it signs.
    resp.content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=300"));
    super::cors::apply(&state, &req, &mut resp).await;
    resp.body(body.as_ref().clone())
}
