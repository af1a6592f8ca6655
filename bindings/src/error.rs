//! One error type for the apps, sorted by what the app should do next.
//! Every message is safe to show to the user: it names the record, field
//! or limit at fault, never a file path of the server or a stack.

use crate::types::{FieldProblem, Language};
use fieldbook_core::photo::PhotoError;
use fieldbook_core::policy::RefusalCode;
use fieldbook_core::session::SessionError;
use fieldbook_core::store::StoreError;
use fieldbook_core::sync::{SyncError, TransportError};

#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// Fix the input and try again: a template rule, a value out of range,
    /// a damaged or oversized photo. `problems` lists every field at fault.
    #[error("{reason}")]
    InvalidInput {
        reason: String,
        problems: Vec<FieldProblem>,
    },
    /// Not possible for this user or in this state (role, area, workflow
    /// status): do not offer the action again.
    #[error("{reason}")]
    NotAllowed { reason: String },
    /// Log in again; nothing stored is lost.
    #[error("{reason}")]
    LoginRequired { reason: String },
    /// No connection or the server is busy: try again later (the work is
    /// kept and a later sync carries on).
    #[error("{reason}")]
    RetryLater { reason: String },
    /// The phone's storage is full: free space, then try again.
    #[error("{reason}")]
    StorageFull { reason: String },
    /// The store's database file is damaged: offer `recover_store`, which
    /// keeps the file aside and brings back everything that still reads.
    #[error("{reason}")]
    Damaged { reason: String },
    /// Anything else; report it.
    #[error("{reason}")]
    Other { reason: String },
}

impl ApiError {
    pub(crate) fn from_store(e: StoreError, lang: Language) -> ApiError {
        let reason = e.to_string();
        match e {
            StoreError::Invalid { problems } => ApiError::InvalidInput {
                reason: problems
                    .iter()
                    .map(|p| FieldProblem::from_core(p, lang).message)
                    .collect::<Vec<_>>()
                    .join("; "),
                problems: problems
                    .iter()
                    .map(|p| FieldProblem::from_core(p, lang))
                    .collect(),
            },
            StoreError::BadInput(_) | StoreError::NotFound { .. } => ApiError::InvalidInput {
                reason,
                problems: Vec::new(),
            },
            StoreError::Photo(PhotoError::Io(_)) => ApiError::Other { reason },
            StoreError::Photo(_) => ApiError::InvalidInput {
                reason,
                problems: Vec::new(),
            },
            StoreError::IllegalTransition { .. }
            | StoreError::Forbidden { .. }
            | StoreError::OutOfScope { .. }
            | StoreError::WrongUser => ApiError::NotAllowed { reason },
            StoreError::Refused(r) if r.code == RefusalCode::Invalid => ApiError::InvalidInput {
                reason,
                problems: Vec::new(),
            },
            StoreError::Refused(_) => ApiError::NotAllowed { reason },
            StoreError::StorageFull => ApiError::StorageFull { reason },
            StoreError::CorruptDatabase { .. } => ApiError::Damaged { reason },
            _ => ApiError::Other { reason },
        }
    }

    pub(crate) fn from_session(e: SessionError, lang: Language) -> ApiError {
        let reason = e.to_string();
        match e {
            SessionError::Store(s) => ApiError::from_store(s, lang),
            SessionError::NotLoggedIn | SessionError::LoginRequired => {
                ApiError::LoginRequired { reason }
            }
            SessionError::BadCredentials => ApiError::InvalidInput {
                problems: vec![FieldProblem {
                    field: "password".into(),
                    code: "bad_credentials".into(),
                    message: match lang {
                        Language::Zh => "用户名或密码错误".into(),
                        Language::En => reason.clone(),
                    },
                }],
                reason,
            },
            SessionError::SyncRunning => ApiError::RetryLater { reason },
            SessionError::Transport(t) => ApiError::from_transport(t),
            SessionError::Sync(SyncError::Cancelled) => ApiError::Other { reason },
            SessionError::Sync(SyncError::Wire(_) | SyncError::TooManyRounds(_)) => {
                ApiError::RetryLater { reason }
            }
            SessionError::Sync(SyncError::Transport(t)) => ApiError::from_transport(t),
            SessionError::Sync(SyncError::Store(s)) => ApiError::from_store(s, lang),
            SessionError::Account { .. } => ApiError::Other { reason },
        }
    }

    fn from_transport(t: TransportError) -> ApiError {
        let reason = t.to_string();
        match t {
            TransportError::Unauthorized => ApiError::LoginRequired { reason },
            TransportError::Unreachable(_) | TransportError::Server { .. } => {
                ApiError::RetryLater { reason }
            }
            // 429 and 503 are the server asking to be left alone a while.
            TransportError::Refused { status: 429, .. } => ApiError::RetryLater { reason },
            TransportError::Refused { status: 403, .. } => ApiError::NotAllowed { reason },
            TransportError::Refused {
                status: 400..=499, ..
            } => ApiError::InvalidInput {
                reason,
                problems: Vec::new(),
            },
            TransportError::Refused { .. } => ApiError::Other { reason },
        }
    }
}
