//! Server storage behind one trait, so the embedded SQLite default and the
//! PostgreSQL scale-out path share every caller and one conformance suite.
//!
//! Methods are blocking and coarse: one call is one transaction (an ingest
//! batch, a page, a login). The HTTP layer runs them on tokio's blocking
//! pool. Documents are loaded, changed and dropped within a call; nothing
//! holds Automerge documents between requests.

pub mod reports;
pub mod sqlite;

use crate::rules::Pusher;
use fieldbook_core::model::{Role, Site};
use fieldbook_core::sync::wire::{Item, PageItem, RejectCode};

/// A storage failure (as opposed to a refused input).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored record {id} is damaged: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("schema: {0}")]
    Schema(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub areas: Vec<String>,
    pub created_at: i64,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub user: String,
    pub actor: String,
    pub registered_at: i64,
    pub last_seen: Option<i64>,
    pub revoked: bool,
}

/// A valid device token's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub pusher: Pusher,
    pub actor: String,
    pub expires_at: i64,
}

/// What became of one pushed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (new) or already there.
    Stored {
        new: bool,
    },
    Rejected(RejectCode, String),
}

/// One page of the pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<PageItem>,
    pub cursor: u64,
    pub more: bool,
}

/// Counts for /metrics and the demo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub devices: u64,
    pub documents: u64,
    pub log_entries: u64,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub user: String,
    pub device: Option<String>,
    pub action: String,
    pub detail: String,
}

/// Everything the server stores.
pub trait Storage: reports::Reports + Send + Sync + 'static {
    fn create_user(&self, user: &UserRecord) -> Result<()>;
    fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    fn users(&self) -> Result<Vec<UserRecord>>;
    /// Registers (or re-registers) a device with its actor and stores a new
    /// token hash. An actor already owned by another device is a conflict.
    fn register_device(
        &self,
        user: &str,
        device: &str,
        actor: &str,
        token_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()>;
    /// The session of a token hash, if the token is known, unexpired at
    /// `now` and its device not revoked.
    fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>>;
    fn devices(&self) -> Result<Vec<DeviceRecord>>;
    /// Revokes a device and all its tokens; false if unknown.
    fn revoke_device(&self, device: &str) -> Result<bool>;
    /// Checks and stores pushed items in one durable transaction.
    fn ingest(&self, session: &Session, items: &[Item], now: i64) -> Result<Vec<Outcome>>;
    /// Changes above `cursor` in the session's areas, at most about `max_bytes`.
    fn pull(&self, session: &Session, cursor: u64, max_bytes: usize) -> Result<Page>;
    /// Stores registry sites: new ids are created; a known id whose
    /// registry fields changed (moved to another village, renamed,
    /// re-surveyed) gets a change; an unchanged one is left alone. Returns
    /// how many sites were written.
    fn import_sites(&self, sites: &[Site], by: &str, now: i64) -> Result<usize>;
    /// Whether a user with `areas` may read a record referencing photo `hash`.
    fn photo_readable(&self, hash: &str, areas: &[String]) -> Result<bool>;
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>>;
    fn counts(&self) -> Result<Counts>;
    /// Recomputes every projection from documents and reports the rows
    /// that differ from the stored ones (empty when all is consistent).
    fn verify_projections(&self) -> Result<Vec<String>>;
}
