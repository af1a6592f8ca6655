//! Errors of the store API. Each variant says what went wrong in words a
//! caller can show or act on; the bindings map them to what the app should do.

use crate::doc::DocError;
use crate::model::Role;
use crate::model::template::Problem;

/// Everything the store can refuse or fail at. When an operation returns an
/// error, nothing it would have written is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No record with this id on this device.
    #[error("no {kind} with id {id}")]
    NotFound { kind: &'static str, id: String },
    /// Input broke a template or model rule; every problem is listed.
    #[error("invalid input: {}", problems.iter().map(|p| p.en.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid { problems: Vec<Problem> },
    /// Input that is not about a template field (names, ids, coordinates).
    #[error("invalid input: {0}")]
    BadInput(String),
    /// The record's workflow does not allow this now.
    #[error("cannot {action} a record that is {status}")]
    IllegalTransition {
        action: &'static str,
        status: &'static str,
    },
    /// The user's role may not do this.
    #[error("a user with role {role} may not {action}")]
    Forbidden { role: Role, action: &'static str },
    /// The record or area lies outside the user's areas.
    #[error("area {code} is outside this user's areas")]
    OutOfScope { code: String },
    /// The shared policy refused the write (role, status, area, reference);
    /// the server would refuse it for the same reason.
    #[error("not allowed: {0}")]
    Refused(#[from] crate::policy::Refusal),
    /// The store belongs to another user.
    #[error("this store belongs to another user; open a separate store per user")]
    WrongUser,
    /// The database file is not a readable Fieldbook store.
    #[error(
        "the database file {path} is damaged or not a Fieldbook store ({reason}); move it aside and sync again to restore synced records"
    )]
    CorruptDatabase { path: String, reason: String },
    /// Document bytes could not be decoded.
    #[error("record {id} could not be decoded: {reason}")]
    CorruptDocument { id: String, reason: String },
    /// A document decoded but does not have the Fieldbook layout.
    #[error("record {id} is malformed: {source}")]
    MalformedDocument {
        id: String,
        #[source]
        source: DocError,
    },
    /// The schema could not be migrated.
    #[error(transparent)]
    Migration(#[from] super::migrations::MigrationError),
    /// The disk is full.
    #[error("the phone's storage is full")]
    StorageFull,
    /// Another SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// A file-system failure.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// The photo was refused (too large, a decompression bomb, truncated,
    /// damaged, not JPEG/PNG) or could not be compressed; nothing was stored.
    #[error(transparent)]
    Photo(#[from] crate::photo::PhotoError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::StorageFull,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::CorruptDatabase {
                    path: String::new(),
                    reason: e.to_string(),
                }
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    pub(crate) fn invalid(p: Problem) -> StoreError {
        StoreError::Invalid { problems: vec![p] }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
