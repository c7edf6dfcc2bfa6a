//! The browser session model: a session row per signed-in browser (the cookie holds a random
//! 256-bit id, the database only its hash), started at every sign-in and ended by sign-out,
//! an administrator or a password change. One session serves every client (single sign-on)
//! and carries the `sid` of ID and logout tokens. The cookie and the extractors that read it
//! are in `web::session`.

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::store::audit::NewEvent;
use crate::store::sessions::Session;
use crate::store::{self, StoreError};

/// Starts a session for `user_id` inside the caller's transaction; returns it and the cookie
/// value (call after every successful sign-in; see `complete_sign_in`).
pub fn start(
    conn: &rusqlite::Connection,
    user_id: &str,
    amr: Vec<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    now: UnixTime,
    lifetime: i64,
) -> Result<(Session, String), StoreError> {
    let token = random_token();
    let session = Session {
        id_hash: hash_token(&token),
        sid: random_id(),
        user_id: user_id.to_string(),
        auth_time: now,
        amr,
        acr: None,
        user_agent: user_agent.map(|u| u.chars().take(256).collect()),
        ip,
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetime,
    };
    store::sessions::insert(conn, &session)?;
    Ok((session, token))
}

/// Ends sessions by `sid` in one transaction: deletes them, revokes their non-offline tokens,
/// records audit events. Returns the ended sessions with the clients that took part.
pub fn end_sessions(
    conn: &rusqlite::Connection,
    sids: &[String],
    actor: Option<&str>,
    reason: &str,
    now: UnixTime,
) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
    let mut ended = Vec::new();
    for sid in sids {
        let clients = store::sessions::clients_of(conn, sid)?;
        if let Some(s) = store::sessions::end(conn, sid, now)? {
            store::audit::record(
                conn,
                &NewEvent {
                    kind: "session.ended",
                    actor_id: actor,
                    user_id: Some(&s.user_id),
                    detail: Some(serde_json::json!({"sid": s.sid, "reason": reason})),
                    ..Default::default()
                },
                now,
            )?;
            ended.push((s, clients));
        }
    }
    Ok(ended)
}
