//! Server storage behind one trait, so the embedded SQLite default and the
//! PostgreSQL scale-out path share every caller and one conformance suite.
//!
//! Methods are blocking and coarse: one call is one transaction (an ingest
//! batch, a page, a login). The HTTP layer runs them on tokio's blocking
//! pool. Documents are loaded, changed and dropped within a call; nothing
//! holds Automerge documents between requests.

pub mod reports;
pub mod review;
pub mod sqlite;

use fieldbook_core::model::{Role, Site};
pub use fieldbook_core::policy::Identity;
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
    /// The caller's role or areas do not allow this.
    #[error("{0}")]
    Forbidden(String),
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
    /// Disabled accounts cannot log in and hold no tokens.
    pub disabled: bool,
}

impl UserRecord {
    /// Whether every area of this user lies inside `admin`'s areas: the
    /// users an administrator may see and manage.
    pub fn within(&self, admin: &Identity) -> bool {
        !self.areas.is_empty() && self.areas.iter().all(|a| admin.contains_area(a))
    }
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
    pub pusher: Identity,
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

/// A stored audit line: repeats of one line within [`AUDIT_REPEAT_MS`]
/// are counted on it instead of stored again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub id: i64,
    pub entry: AuditEntry,
    pub count: u64,
    /// Time of the latest repeat.
    pub last_at: i64,
}

/// Repeats of an identical audit line within this window add to its count.
pub const AUDIT_REPEAT_MS: i64 = 10 * 60 * 1000;
/// Longest stored audit field, in characters: user, device, action, detail.
pub const AUDIT_FIELD_CHARS_MAX: [usize; 4] = [100, 200, 64, 1000];

/// Which audit lines to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Lines with an id below this one (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
    /// Only lines by these users; `None`: all lines.
    pub users: Option<Vec<String>>,
    /// Only lines of this action.
    pub action: Option<String>,
    /// Only lines written at or after / before these times, Unix ms.
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// A record an operator quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: String,
    pub reason: String,
    pub by: String,
    pub at: i64,
}

/// Users, devices, tokens and the audit log.
pub trait Accounts {
    fn create_user(&self, user: &UserRecord) -> Result<()>;
    fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    fn users(&self) -> Result<Vec<UserRecord>>;
    /// Disables or enables a user; disabling revokes every token of the
    /// user's devices. False if there is no such user.
    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool>;
    /// Replaces a user's password hash and revokes every token of the
    /// user's devices. False if there is no such user.
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    /// Registers (or re-registers) a device with its actor and stores a new
    /// token hash, replacing the device's earlier tokens. An actor already
    /// owned by another device is a conflict.
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
    /// `now`, its device not revoked and its user not disabled.
    fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>>;
    /// Moves a token's expiry to `until`, but never past `created_at +
    /// lifetime_ms`: the console's sessions expire when idle and at the
    /// latest a fixed time after login.
    fn extend_token(&self, token_hash: &str, until: i64, lifetime_ms: i64) -> Result<()>;
    /// Changes a user's role and areas; their sessions carry the new ones
    /// from the next request. False if there is no such user.
    fn set_role_areas(&self, name: &str, role: Role, areas: &[String]) -> Result<bool>;
    fn devices(&self) -> Result<Vec<DeviceRecord>>;
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>>;
    /// Revokes a device and all its tokens; false if unknown.
    fn revoke_device(&self, device: &str) -> Result<bool>;
    /// Appends a line, or counts it on the latest line of the same user if
    /// that one is identical and recent. Fields are cut to
    /// [`AUDIT_FIELD_CHARS_MAX`].
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditLine>>;
}

/// Records: the sync log, projections, the registry, photos' access.
pub trait Records {
    /// Checks and stores pushed items in one durable transaction.
    fn ingest(&self, session: &Session, items: &[Item], now: i64) -> Result<Vec<Outcome>>;
    /// Changes above `cursor` in the session's areas, at most about `max_bytes`.
    fn pull(&self, session: &Session, cursor: u64, max_bytes: usize) -> Result<Page>;
    /// Stores registry sites: new ids are created; a known id whose
    /// registry fields changed (moved to another village, renamed,
    /// re-surveyed) gets a change; an unchanged one is left alone. Returns
    /// how many sites were written. Sites outside `who`'s areas (where they
    /// are or would move to) are refused, and nothing is written.
    fn import_sites(&self, sites: &[Site], who: &Identity, now: i64) -> Result<usize>;
    /// Whether a user with `areas` may read photo `hash`: a record in those
    /// areas holds it, attached by a user who uploaded its bytes.
    fn photo_readable(&self, hash: &str, areas: &[String]) -> Result<bool>;
    /// Whether `user` uploaded the bytes of photo `hash`.
    fn photo_owned(&self, hash: &str, user: &str) -> Result<bool>;
    /// Records that `user` uploaded the bytes of photo `hash`.
    fn add_photo_owner(&self, hash: &str, user: &str, now: i64) -> Result<()>;
    /// Takes a record out of circulation: phones stop pulling it, reports
    /// and exports skip it, pushes to it are refused. False if unknown.
    fn quarantine(&self, id: &str, reason: &str, by: &str, now: i64) -> Result<bool>;
    /// Puts a quarantined record back. False if it was not quarantined.
    fn release(&self, id: &str) -> Result<bool>;
    fn quarantined(&self) -> Result<Vec<Quarantined>>;
    fn counts(&self) -> Result<Counts>;
    /// Recomputes every projection from documents and reports the rows
    /// that differ from the stored ones (empty when all is consistent).
    fn verify_projections(&self) -> Result<Vec<String>>;
}

/// Everything the server stores.
pub trait Storage:
    Accounts + Records + reports::Reports + review::Review + Send + Sync + 'static
{
}

impl<T: Accounts + Records + reports::Reports + review::Review + Send + Sync + 'static> Storage
    for T
{
}

/// The storage traits, for callers that use a backend's methods.
pub mod prelude {
    pub use super::reports::Reports;
    pub use super::review::Review;
    pub use super::{Accounts, Records, Storage};
}
