//! The state every handler shares: storage, photos, metrics, the clock,
//! and the budgets that keep a burst of requests from costing memory or
//! delaying phones (sync slots, export slots, the body byte budget, the
//! password-check permits, the login backoff).

use super::backoff::Limiter;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::photo_store::PhotoStore;
use crate::storage::{AuditEntry, Session, Storage};
use fieldbook_core::model::Role;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest JSON body (login, admin), bytes.
pub const JSON_BYTES_MAX: usize = 64 << 10;
/// Largest registry CSV, bytes.
pub const CSV_BYTES_MAX: usize = 256 << 20;
/// Body bytes all requests together may hold while being read and worked
/// on, bytes: a hundred phones sending their largest sync at once queue
/// instead of costing gigabytes.
pub const BODY_BYTES_IN_FLIGHT_MAX: usize = 192 << 20;
/// How long a request waits for room in the byte budget before the server
/// answers 503 (retry later).
pub const BODY_BUDGET_WAIT: Duration = Duration::from_secs(20);
/// Longest pause between two chunks of a body.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Exports produced at once; more wait (they read whole areas).
pub const EXPORTS_AT_ONCE: usize = 2;
/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub metrics: Arc<Metrics>,
    /// Unix milliseconds; injectable so tests can expire tokens.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub photos: Arc<PhotoStore>,
    /// Password checks allowed at once: argon2 takes 19 MiB and a core per
    /// check, so a burst of logins must queue, not multiply memory.
    pub password_checks: Arc<Semaphore>,
    /// Sync requests decoded and worked on at once. A request waits for a
    /// slot holding only its body as it came (compressed); a burst of
    /// phones then costs queued bytes, not decoded batches, documents and
    /// pages, and the work in progress is enough to keep the cores and the
    /// writer busy.
    pub sync_slots: Arc<Semaphore>,
    /// Body bytes in flight ([`read_body`]).
    pub body_budget: ByteBudget,
    /// Exports produced at once, apart from sync so that a queue of
    /// downloads never delays a phone.
    pub export_slots: Arc<Semaphore>,
    /// Failed logins per user and per address, for backoff.
    pub logins: Arc<Limiter>,
    /// How long a body waits for room in `body_budget`
    /// ([`BODY_BUDGET_WAIT`]).
    pub body_budget_wait: Duration,
    /// Longest pause between two chunks of a body ([`BODY_IDLE_TIMEOUT`]).
    pub body_idle_timeout: Duration,
    /// A tile server the console's maps draw on (`serve --tile-url`);
    /// `None`: plain maps that need nothing outside this server.
    pub tiles: Option<Arc<crate::http::console::map::TileSource>>,
}

/// Sync requests worked on at once: two per core keeps one checking or
/// pulling while another stores, up to the storage's reader connections.
pub fn sync_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .clamp(2, 4)
}

impl AppState {
    /// State over `storage`, keeping photos in `photo_dir`.
    pub fn new(
        storage: Arc<dyn Storage>,
        photo_dir: std::path::PathBuf,
    ) -> std::io::Result<AppState> {
        Ok(AppState {
            storage,
            metrics: Arc::new(Metrics::default()),
            clock: fieldbook_core::store::system_clock(),
            photos: Arc::new(PhotoStore::new(photo_dir)?),
            password_checks: Arc::new(Semaphore::new(2)),
            sync_slots: Arc::new(Semaphore::new(sync_slots())),
            body_budget: ByteBudget::new(BODY_BYTES_IN_FLIGHT_MAX),
            export_slots: Arc::new(Semaphore::new(EXPORTS_AT_ONCE)),
            logins: Arc::new(Limiter::default()),
            body_budget_wait: BODY_BUDGET_WAIT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            tiles: None,
        })
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs a storage call on the blocking pool.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> crate::storage::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let s = self.storage.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| AppError::Internal(format!("storage task failed: {e}")))?
            .map_err(AppError::from)
    }

    /// Runs blocking work that reads and writes storage and answers with
    /// an [`AppError`] of its own, on the blocking pool.
    pub(crate) async fn db_app<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let s = self.storage.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| AppError::Internal(format!("storage task failed: {e}")))?
    }

    pub(crate) async fn audit(
        &self,
        user: &str,
        device: Option<&str>,
        action: &str,
        detail: String,
    ) -> Result<(), AppError> {
        let e = AuditEntry {
            at: self.now(),
            user: user.into(),
            device: device.map(str::to_owned),
            action: action.into(),
            detail,
        };
        self.db(move |s| s.audit(&e)).await
    }

    /// Refuses a request as forbidden, writing the refusal to the audit log.
    pub(crate) async fn forbid(&self, s: &Session, message: String) -> AppError {
        if let Err(e) = self
            .audit(
                &s.pusher.user,
                Some(&s.pusher.device),
                "refused",
                message.clone(),
            )
            .await
        {
            return e;
        }
        AppError::Forbidden(message)
    }

    /// Passes if the caller's role is one of `roles`; otherwise a 403 that
    /// the audit log records.
    pub(crate) async fn require(
        &self,
        s: &Session,
        roles: &[Role],
        what: &str,
    ) -> Result<(), AppError> {
        if roles.contains(&s.pusher.role) {
            Ok(())
        } else {
            Err(self
                .forbid(s, format!("the role {} may not {what}", s.pusher.role))
                .await)
        }
    }
}

/// Bytes all requests' bodies may hold together, one permit per byte.
#[derive(Clone)]
pub struct ByteBudget {
    pub(super) permits: Arc<Semaphore>,
    pub(super) total: usize,
}

impl ByteBudget {
    pub fn new(total: usize) -> ByteBudget {
        ByteBudget {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }
}
