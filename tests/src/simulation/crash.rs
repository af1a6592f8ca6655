//! Crashes on purpose: a server whose storage dies at a chosen operation
//! and is restarted from its files, and a phone whose store access dies at
//! a chosen step of a sync and is reopened from its folder.
//!
//! The server's storage calls are its durable steps: each call is one
//! SQLite transaction (an ingest batch, a page, a token check, an audit
//! line). [`CrashingStorage`] numbers every call and, at the planned
//! number, fails that call either before it runs or after it committed;
//! every later call fails too, as the process is gone. The simulation then
//! drops every handle of the old server and opens a new one on the same
//! database file and photo folder, so what survives is exactly what SQLite
//! committed. Inside one call there is nothing finer to crash between: a
//! transaction that did not commit leaves no trace, which is what "crash
//! before the call" already produces.
//!
//! The phone's sync engine reaches its store only through
//! [`StoreAccess`]; [`CrashingAccess`] unwinds at the planned access
//! (outside the store's lock, so nothing is poisoned), and
//! the simulation drops the store (its cache and open connection with it)
//! and reopens it with `Store::open`. Every access is one store transaction,
//! so unwinding between two of them is a process kill between two steps.

use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::Site;
use fieldbook_core::store::Store;
use fieldbook_core::sync::client::StoreAccess;
use fieldbook_core::sync::wire::Item;
use fieldbook_server::storage::reports::{FindingRow, Reports, SiteRow};
use fieldbook_server::storage::review::{
    FindingsPage, FindingsQuery, QueuePage, QueueQuery, Review,
};
use fieldbook_server::storage::sqlite::SqliteStorage;
use fieldbook_server::storage::{
    Accounts, AuditEntry, AuditLine, AuditQuery, Counts, DeviceRecord, Identity, Outcome, Page,
    Quarantined, Records, Result, Session, StorageError, UserRecord,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// When the server dies, counted in storage calls.
#[derive(Debug, Default)]
pub struct Plan {
    /// Storage calls made while armed.
    pub ops: u64,
    /// Whether calls are counted and crashes happen (off during set-up
    /// and the final checks).
    pub armed: bool,
    /// The call that crashes, and whether it crashes after committing.
    pub crash_at: Option<(u64, bool)>,
    /// The process is dead: every call fails until the restart.
    pub crashed: bool,
    /// What died, for the trace.
    pub what: Option<String>,
}

fn lock(p: &Mutex<Plan>) -> MutexGuard<'_, Plan> {
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn dead() -> StorageError {
    StorageError::Schema("the server process crashed (simulated)".into())
}

/// The real SQLite storage, dying at the planned call.
pub struct CrashingStorage {
    inner: SqliteStorage,
    plan: Arc<Mutex<Plan>>,
}

impl CrashingStorage {
    pub fn new(inner: SqliteStorage, plan: Arc<Mutex<Plan>>) -> CrashingStorage {
        CrashingStorage { inner, plan }
    }

    /// The storage without crashes, for the checks.
    pub fn inner(&self) -> &SqliteStorage {
        &self.inner
    }

    fn gate<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let after = {
            let mut p = lock(&self.plan);
            if p.crashed {
                return Err(dead());
            }
            if !p.armed {
                None
            } else {
                p.ops += 1;
                match p.crash_at {
                    Some((n, false)) if n == p.ops => {
                        p.crashed = true;
                        p.what = Some(format!("before storage call {n} ({op})"));
                        return Err(dead());
                    }
                    Some((n, true)) if n == p.ops => Some(n),
                    _ => None,
                }
            }
        };
        let r = f();
        if let Some(n) = after {
            let mut p = lock(&self.plan);
            p.crashed = true;
            p.what = Some(format!(
                "after storage call {n} ({op}, {})",
                if r.is_ok() { "committed" } else { "failed" }
            ));
            return Err(dead());
        }
        r
    }
}

impl Reports for CrashingStorage {
    fn scan_sites(
        &self,
        area: &str,
        with_photos: bool,
        f: &mut dyn FnMut(SiteRow) -> Result<()>,
    ) -> Result<()> {
        self.gate("scan_sites", || self.inner.scan_sites(area, with_photos, f))
    }

    fn scan_findings(&self, area: &str, f: &mut dyn FnMut(FindingRow) -> Result<()>) -> Result<()> {
        self.gate("scan_findings", || self.inner.scan_findings(area, f))
    }
}

impl Review for CrashingStorage {
    fn review_queue(&self, q: &QueueQuery) -> Result<QueuePage> {
        self.gate("review_queue", || self.inner.review_queue(q))
    }
    fn status_counts(&self, q: &QueueQuery) -> Result<Vec<(String, u64)>> {
        self.gate("status_counts", || self.inner.status_counts(q))
    }
    fn record(&self, id: &str) -> Result<Option<(RecordKind, Vec<u8>)>> {
        self.gate("record", || self.inner.record(id))
    }
    fn findings_list(&self, q: &FindingsQuery) -> Result<FindingsPage> {
        self.gate("findings_list", || self.inner.findings_list(q))
    }
}

impl Accounts for CrashingStorage {
    fn create_user(&self, user: &UserRecord) -> Result<()> {
        self.gate("create_user", || self.inner.create_user(user))
    }
    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.gate("user", || self.inner.user(name))
    }
    fn users(&self) -> Result<Vec<UserRecord>> {
        self.gate("users", || self.inner.users())
    }
    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        self.gate("set_user_disabled", || {
            self.inner.set_user_disabled(name, disabled)
        })
    }
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        self.gate("set_password", || {
            self.inner.set_password(name, password_hash)
        })
    }
    fn register_device(
        &self,
        user: &str,
        device: &str,
        actor: &str,
        token_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        self.gate("register_device", || {
            self.inner
                .register_device(user, device, actor, token_hash, expires_at, now)
        })
    }
    fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        self.gate("session", || self.inner.session(token_hash, now))
    }
    fn set_role_areas(
        &self,
        name: &str,
        role: fieldbook_core::model::Role,
        areas: &[String],
    ) -> Result<bool> {
        self.gate("set_role_areas", || {
            self.inner.set_role_areas(name, role, areas)
        })
    }
    fn extend_token(&self, token_hash: &str, until: i64, lifetime_ms: i64) -> Result<()> {
        self.gate("extend_token", || {
            self.inner.extend_token(token_hash, until, lifetime_ms)
        })
    }
    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.gate("devices", || self.inner.devices())
    }
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        self.gate("device", || self.inner.device(id))
    }
    fn revoke_device(&self, device: &str) -> Result<bool> {
        self.gate("revoke_device", || self.inner.revoke_device(device))
    }
    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        self.gate("audit", || self.inner.audit(entry))
    }
    fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditLine>> {
        self.gate("audit_log", || self.inner.audit_log(q))
    }
}

impl Records for CrashingStorage {
    fn ingest(&self, session: &Session, items: &[Item], now: i64) -> Result<Vec<Outcome>> {
        self.gate("ingest", || self.inner.ingest(session, items, now))
    }
    fn pull(&self, session: &Session, cursor: u64, max_bytes: usize) -> Result<Page> {
        self.gate("pull", || self.inner.pull(session, cursor, max_bytes))
    }
    fn import_sites(&self, sites: &[Site], who: &Identity, now: i64) -> Result<usize> {
        self.gate("import_sites", || self.inner.import_sites(sites, who, now))
    }
    fn photo_readable(&self, hash: &str, areas: &[String]) -> Result<bool> {
        self.gate("photo_readable", || self.inner.photo_readable(hash, areas))
    }
    fn photo_owned(&self, hash: &str, user: &str) -> Result<bool> {
        self.gate("photo_owned", || self.inner.photo_owned(hash, user))
    }
    fn add_photo_owner(&self, hash: &str, user: &str, now: i64) -> Result<()> {
        self.gate("add_photo_owner", || {
            self.inner.add_photo_owner(hash, user, now)
        })
    }
    fn quarantine(&self, id: &str, reason: &str, by: &str, now: i64) -> Result<bool> {
        self.gate("quarantine", || self.inner.quarantine(id, reason, by, now))
    }
    fn release(&self, id: &str) -> Result<bool> {
        self.gate("release", || self.inner.release(id))
    }
    fn quarantined(&self) -> Result<Vec<Quarantined>> {
        self.gate("quarantined", || self.inner.quarantined())
    }
    fn counts(&self) -> Result<Counts> {
        self.gate("counts", || self.inner.counts())
    }
    fn verify_projections(&self) -> Result<Vec<String>> {
        self.gate("verify_projections", || self.inner.verify_projections())
    }
}

/// The unwind payload of a simulated phone crash.
#[derive(Debug)]
pub struct PhoneCrash;

/// Keeps simulated crashes out of the test output; real panics still print.
pub fn quiet_simulated_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<PhoneCrash>().is_none() {
                previous(info);
            }
        }));
    });
}

/// The store as the sync engine sees it, dying before access number
/// `left` (counted from 0) when set. The store is shared with the user,
/// who may edit while the engine waits for the network.
pub struct CrashingAccess<'a> {
    pub store: &'a Mutex<Store>,
    pub left: Option<u32>,
    /// Accesses made, for the trace.
    pub made: u32,
}

impl StoreAccess for CrashingAccess<'_> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        if let Some(n) = self.left.as_mut() {
            if *n == 0 {
                std::panic::panic_any(PhoneCrash);
            }
            *n -= 1;
        }
        self.made += 1;
        let mut guard = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}
