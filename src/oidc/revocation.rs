//! POST /revoke — OAuth 2.0 Token Revocation (RFC 7009).
//!
//! The client authenticates as at the token endpoint (public clients with `none`). A refresh
//! token revokes its whole family and the access tokens minted from it; an access token (one
//! of our JWTs, signature checked, expiry not) revokes its row. `token_type_hint` is only a
//! hint (§2.1: the server "MAY ignore such hints"); the token's form tells which it is. A
//! token of another client, or an unknown one, is left alone and still answered with 200
//! (§2.2: "invalid tokens do not cause an error response").

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::clock::UnixTime;
use crate::crypto::secret::refresh_token_key;
use crate::oidc::client_auth::{self, FormParams};
use crate::oidc::cors;
use crate::oidc::error::OAuthError;
use crate::oidc::token::error_response;
use crate::oidc::tokens;
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::{self, StoreError};
use crate::web::State;

pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut resp = match handle(&state, &req, &body).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => error_response(&e, "revocation"),
    };
    cors::apply_to(&state, &req, &mut resp).await;
    resp
}

async fn handle(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<(), OAuthError> {
    let form = FormParams::parse(req, body)?;
    let client = client_auth::authenticate(state, req, &form).await?.client;
    let Some(token) = form.get("token") else {
        return Err(OAuthError::invalid_request(
            "the token parameter is missing",
        ));
    };
    let now = state.now();
    let ip = crate::web::session::ip_string(state, req);
    // An access token: only the signature matters here, an expired one may still be revoked.
    let access = tokens::looks_like_jwt(token)
        .then(|| tokens::verify_access(state, token, now, true))
        .flatten();
    let client_token = own_client_token(access.as_ref(), &client.id);
    let jti = access.map(|c| c.jti);
    let token_hash = jti.is_none().then(|| refresh_token_key(token));
    let revocation = Revocation {
        client_id: client.id.clone(),
        ip,
        client_token,
        jti,
        token_hash,
    };
    state
        .db
        .write(move |conn| revocation.apply(conn, now))
        .await?;
    Ok(())
}

/// A client's own token and an exchanged token have no issuance row: revoking one records it.
fn own_client_token(
    access: Option<&tokens::AccessClaims>,
    client_id: &str,
) -> Option<store::tokens::AccessRecord> {
    access
        .filter(|c| {
            (crate::oidc::grants::client_credentials::is_client_token(c)
                || crate::oidc::grants::token_exchange::is_exchanged(c))
                && c.client_id == client_id
        })
        .map(|c| store::tokens::AccessRecord {
            jti: c.jti.clone(),
            client_id: c.client_id.clone(),
            user_id: crate::oidc::grants::token_exchange::is_exchanged(c).then(|| c.sub.clone()),
            family_id: None,
            code_hash: None,
            sid: None,
            scope: c.scope.clone(),
            claims: None,
            issued_at: c.iat,
            expires_at: c.exp,
            revoked_at: None,
        })
}

/// What a revocation request asks for, by the authenticated client.
struct Revocation {
    client_id: String,
    ip: Option<String>,
    /// The client's own (client credentials) access token, as the row revoking it records.
    client_token: Option<store::tokens::AccessRecord>,
    /// The `jti` of a verified access token.
    jti: Option<String>,
    /// The lookup key of what may be a refresh token (when it is no access token).
    token_hash: Option<String>,
}

impl Revocation {
    /// Revokes the token, if it is this client's and not yet revoked, and audits it; runs
    /// inside the one write transaction.
    fn apply(self, conn: &rusqlite::Connection, now: UnixTime) -> Result<(), StoreError> {
        let Revocation {
            client_id,
            ip,
            client_token,
            jti,
            token_hash,
        } = self;
        let audit = |conn: &rusqlite::Connection, user: Option<&str>, kind: &str| {
            store::audit::record(
                conn,
                &NewEvent {
                    kind: "token.revoked",
                    user_id: user,
                    client_id: Some(&client_id),
                    ip: ip.as_deref(),
                    detail: Some(json!({"token_type": kind})),
                    ..Default::default()
                },
                now,
            )
        };
        if let Some(rec) = &client_token
            && store::tokens::access_by_jti(conn, &rec.jti)?.is_none()
        {
            store::tokens::record_revoked_access(conn, rec, now)?;
            audit(conn, None, "access_token")?;
            return Ok(());
        }
        if let Some(jti) = jti {
            if let Some(rec) = store::tokens::access_by_jti(conn, &jti)?
                && rec.client_id == client_id
                && rec.revoked_at.is_none()
            {
                store::tokens::revoke_access(conn, &jti, now)?;
                audit(conn, rec.user_id.as_deref(), "access_token")?;
            }
            return Ok(());
        }
        if let Some(hash) = token_hash
            && let Some(rec) = store::tokens::refresh_by_hash(conn, &hash)?
            && rec.grant.client_id == client_id
            && rec.revoked_at.is_none()
        {
            store::tokens::revoke_family(conn, &rec.grant.family_id, now)?;
            audit(conn, Some(&rec.grant.user_id), "refresh_token")?;
        }
        Ok(())
    }
}
