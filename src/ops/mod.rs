//! The vocabulary of administrative operations shared by the console, the admin API and the
//! CLI: who acts (`Actor`, named in every audit event), how an operation fails (`OpError`),
//! and how a change is recorded. The operations themselves are the files of this folder. None
//! of them knows HTTP, pages or the protocol handlers: they take a connection (one
//! transaction) and typed input, and return `Result<_, OpError>`.

pub mod api_keys;
pub mod backchannel_logout;
pub mod backup;
pub mod clients;
pub mod groups;
pub mod passkeys;
pub mod roles;
pub mod signing_keys;
pub mod upstream_providers;
pub mod users;

use serde_json::Value;

use crate::clock::UnixTime;
use crate::store::audit::NewEvent;
use crate::store::{self, StoreError};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An administrator in the console (user id).
    User(String),
    /// The admin API, with this API key (key id).
    ApiKey(String),
    /// The `portcullis` command on the server.
    Cli,
}

impl Actor {
    /// The `actor_id` recorded in the audit log.
    pub fn audit_id(&self) -> String {
        match self {
            Actor::User(id) => id.clone(),
            Actor::ApiKey(id) => format!("apikey:{id}"),
            Actor::Cli => "cli".into(),
        }
    }

    /// The acting person, when a person acts.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id),
            _ => None,
        }
    }
}

/// A field-level validation problem: which input, and a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Why an administrative operation did not happen. Nothing was written. Each surface turns
/// it into its own answer once (`ApiError`, `PageError`, the CLI's one line).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The input is not acceptable; `field` names the input.
    #[error(transparent)]
    Invalid(FieldError),
    /// The input is fine but conflicts with what exists (a taken name, the last administrator).
    #[error("{0}")]
    Conflict(FieldError),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret could not be sealed or opened with the master key.
    #[error("a secret could not be sealed with the master key")]
    Sealing,
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        OpError::Invalid(e)
    }
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> OpError {
    OpError::Invalid(FieldError {
        field,
        message: message.into(),
    })
}

pub fn conflict(field: &'static str, message: impl Into<String>) -> OpError {
    OpError::Conflict(FieldError {
        field,
        message: message.into(),
    })
}

/// What an administrative change concerns, for its audit event.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: Option<Value>,
}

/// Records an administrative change (`kind` such as `user.disabled`) naming the actor.
pub fn record(
    conn: &rusqlite::Connection,
    actor: &Actor,
    kind: &str,
    subject: Subject<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let actor_id = actor.audit_id();
    store::audit::record(
        conn,
        &NewEvent {
            kind,
            actor_id: Some(&actor_id),
            user_id: subject.user_id,
            client_id: subject.client_id,
            ip: None,
            detail: subject.detail,
        },
        now,
    )
}
