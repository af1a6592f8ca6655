//! The phone's record store: one SQLite file, every record an Automerge
//! document.
//!
//! Each write runs one Automerge transaction (one change), then one SQLite
//! transaction that appends the change to the document's chunks, queues it
//! in the outbox, refreshes the record's projection row and, when the chunks
//! outgrow the snapshot, compacts them. When the API returns `Ok`, the
//! SQLite transaction has committed in WAL mode with `synchronous=FULL`, so
//! the record survives a process kill or a power cut.
//!
//! Lists read projection tables only; documents are loaded on demand and a
//! few recently edited ones are kept in a small cache (a loaded document
//! costs tens of kilobytes).
//!
//! Only this module knows the phone's SQL.

mod api;
mod coverage;
mod error;
pub mod migrations;
mod photos;
mod projection;
mod query;
mod recover;
mod sync;

pub use api::{FindingAction, NewFinding, NewSite};
pub use error::{Result, StoreError};
pub use photos::photo_file;
pub use query::{
    FieldView, FindingFilter, FindingSummary, FindingView, InspectionFilter, InspectionSummary,
    InspectionView, SiteFilter, SiteSummary, TimelineEntry,
};
pub use recover::Recovery;
pub use sync::{
    ApplyReport, IncomingRecord, OutboxEntry, OutgoingItem, PendingCounts, PendingPhoto,
    SyncRejection,
};

use crate::doc::{self, RecordKind};
use crate::model::Templates;
use automerge::{ActorId, Automerge, Change};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Who uses this store: one user on one device (the policy's `Identity`).
pub use crate::policy::Identity;

/// A source of Unix-millisecond time; tests and simulations inject their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// Name of the database file inside a store folder.
pub const DB_FILE: &str = "fieldbook.db";
/// Name of the photo folder inside a store folder.
pub const PHOTO_DIR: &str = "photos";
/// Documents kept loaded after an edit. Small on purpose: memory on a
/// mid-range phone matters more than reloading a document (~100 µs).
pub const DOC_CACHE_MAX: usize = 8;

/// The phone's store. Not `Sync`: wrap it in a mutex to share it.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    identity: Identity,
    actor: ActorId,
    templates: &'static Templates,
    clock: Clock,
    cache: VecDeque<(String, RecordKind, Automerge)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

const KV_USER: &str = "identity.user";
const KV_DEVICE: &str = "identity.device";
const KV_ACTOR: &str = "identity.actor";

impl Store {
    /// Opens the store in folder `dir`, creating it on first use. A store
    /// belongs to one user; opening it as another is refused.
    pub fn open(dir: &Path, identity: Identity) -> Result<Store> {
        Store::open_with_clock(dir, identity, system_clock())
    }

    /// As [`Store::open`], with an injected clock.
    pub fn open_with_clock(dir: &Path, identity: Identity, clock: Clock) -> Result<Store> {
        if identity.user.trim().is_empty() || identity.device.trim().is_empty() {
            return Err(StoreError::BadInput(
                "user and device must not be empty".into(),
            ));
        }
        let (mut conn, actor) = open_db(dir)?;
        let tx = conn.transaction()?;
        match kv_get(&tx, KV_USER)? {
            Some(u) if u != identity.user => return Err(StoreError::WrongUser),
            Some(_) => {}
            None => {
                kv_set(&tx, KV_USER, &identity.user)?;
                kv_set(&tx, KV_DEVICE, &identity.device)?;
            }
        }
        tx.commit()?;
        photos::clear_partial_writes(&dir.join(PHOTO_DIR));
        Ok(Store {
            conn,
            dir: dir.to_owned(),
            identity,
            actor,
            templates: Templates::builtin(),
            clock,
            cache: VecDeque::new(),
        })
    }

    /// Creates the store folder if needed and returns this device's actor
    /// id (hex) without opening the store for a user: a phone logs in with
    /// it before it knows its user's role and areas.
    pub fn prepare(dir: &Path) -> Result<String> {
        Ok(open_db(dir)?.1.to_hex_string())
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Takes the role and areas of a fresh login of the same user on the
    /// same device (an administrator may have changed them).
    pub fn set_identity(&mut self, identity: Identity) -> Result<()> {
        if identity.user != self.identity.user {
            return Err(StoreError::WrongUser);
        }
        if identity.device != self.identity.device {
            return Err(StoreError::BadInput(format!(
                "this store belongs to device {}, not {}",
                self.identity.device, identity.device
            )));
        }
        self.identity = identity;
        Ok(())
    }

    /// This device's Automerge actor id, hex. The server registers it at
    /// login and refuses changes from any other actor for this device.
    pub fn actor_hex(&self) -> String {
        self.actor.to_hex_string()
    }

    pub fn templates(&self) -> &'static Templates {
        self.templates
    }

    /// The folder the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Replaces the clock (simulations skew phones' clocks).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Reads a setting (sync cursor, tokens' metadata).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        kv_get(&self.conn, key)
    }

    /// Writes a setting durably.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        kv_set(&self.conn, key, value)
    }

    /// Runs SQLite's full integrity check (for recovery screens and tests).
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    // ---- documents -------------------------------------------------------

    /// A new record id: UUIDv7, so ids sort by creation time and keep SQL
    /// indexes local.
    pub(crate) fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Takes a document out of the cache, or loads it from SQLite.
    pub(crate) fn take_doc(&mut self, id: &str) -> Result<Option<(RecordKind, Automerge)>> {
        if let Some(pos) = self.cache.iter().position(|(i, _, _)| i == id) {
            let (_, kind, doc) = self
                .cache
                .remove(pos)
                .ok_or_else(|| StoreError::BadInput("cache".into()))?;
            return Ok(Some((kind, doc)));
        }
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT kind, snapshot FROM documents WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((kind, snapshot)) = row else {
            return Ok(None);
        };
        let kind = RecordKind::from_key(&kind).ok_or_else(|| StoreError::CorruptDocument {
            id: id.into(),
            reason: format!("unknown kind {kind}"),
        })?;
        let corrupt = |e: automerge::AutomergeError| StoreError::CorruptDocument {
            id: id.into(),
            reason: e.to_string(),
        };
        let mut doc = Automerge::load(&snapshot)
            .map_err(corrupt)?
            .with_actor(self.actor.clone());
        let mut st = self
            .conn
            .prepare_cached("SELECT bytes FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")?;
        let chunks = st.query_map([id], |r| r.get::<_, Vec<u8>>(0))?;
        for c in chunks {
            merge_chunk(&mut doc, &c?).map_err(|reason| StoreError::CorruptDocument {
                id: id.into(),
                reason,
            })?;
        }
        Ok(Some((kind, doc)))
    }

    pub(crate) fn put_back(&mut self, id: &str, kind: RecordKind, doc: Automerge) {
        self.cache.push_front((id.to_owned(), kind, doc));
        self.cache.truncate(DOC_CACHE_MAX);
    }

    /// Loads a document of the expected kind for reading.
    pub(crate) fn load(&mut self, id: &str, expected: RecordKind) -> Result<Automerge> {
        match self.take_doc(id)? {
            Some((kind, doc)) if kind == expected => Ok(doc),
            Some((kind, doc)) => {
                self.put_back(id, kind, doc);
                Err(StoreError::NotFound {
                    kind: expected.key(),
                    id: id.into(),
                })
            }
            None => Err(StoreError::NotFound {
                kind: expected.key(),
                id: id.into(),
            }),
        }
    }

    /// Commits the local change just made to `doc` and persists it. On any
    /// failure the document is dropped from memory, so the next read reloads
    /// what SQLite has: the in-memory document never runs ahead of the file.
    pub(crate) fn persist_local(
        &mut self,
        id: &str,
        kind: RecordKind,
        doc: Automerge,
        change: Change,
        extra: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        let now = self.now();
        let res = (|| -> Result<()> {
            let tx = self.conn.transaction()?;
            let chunk = change.raw_bytes();
            if !ensure_document_row(&tx, id, kind, &doc, now)? {
                append_chunk(&tx, id, chunk, now)?;
            }
            tx.prepare_cached("INSERT OR IGNORE INTO outbox(hash, doc_id, kind, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![change.hash().to_string(), id, kind.key(), chunk, now],
            )?;
            projection::refresh(&tx, id, kind, &doc)?;
            maybe_compact(&tx, id, &doc)?;
            extra(&tx)?;
            tx.commit()?;
            Ok(())
        })();
        match res {
            Ok(()) => {
                self.put_back(id, kind, doc);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `edit` as one Automerge transaction on document `id`, then
    /// persists the change. `edit` returning an error rolls everything back.
    pub(crate) fn change_doc<T>(
        &mut self,
        id: &str,
        kind: RecordKind,
        edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.change_doc_with(id, kind, edit, |_| Ok(()))
    }

    /// As [`Store::change_doc`], running `extra` SQL in the same SQLite
    /// transaction as the change.
    pub(crate) fn change_doc_with<T>(
        &mut self,
        id: &str,
        kind: RecordKind,
        edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<T>,
        extra: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<T> {
        let mut doc = self.load(id, kind)?;
        let before = match doc::Record::read(kind, &doc) {
            Ok(r) => r,
            Err(source) => {
                self.put_back(id, kind, doc);
                return Err(StoreError::MalformedDocument {
                    id: id.into(),
                    source,
                });
            }
        };
        let now = self.now();
        let mut tx = doc.transaction();
        let out = match edit(&mut tx) {
            Ok(v) => v,
            Err(e) => {
                tx.rollback();
                self.put_back(id, kind, doc);
                return Err(e);
            }
        };
        let (hash, _patches) =
            tx.commit_with(automerge::transaction::CommitOptions::default().with_time(now / 1000));
        if hash.is_none() {
            self.put_back(id, kind, doc);
            return Ok(out);
        }
        // The document now holds the change; a refusal drops it from
        // memory, so the next read reloads what SQLite has.
        self.check_policy(id, Some(&before), kind, &doc)?;
        let change = doc
            .get_last_local_change()
            .ok_or_else(|| StoreError::CorruptDocument {
                id: id.into(),
                reason: "change vanished".into(),
            })?;
        self.persist_local(id, kind, doc, change, extra)?;
        Ok(out)
    }

    /// Creates a new document written by `write`, persisted like any change.
    pub(crate) fn create_doc(
        &mut self,
        id: &str,
        kind: RecordKind,
        write: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> doc::AmResult<()>,
    ) -> Result<()> {
        let mut doc = Automerge::new().with_actor(self.actor.clone());
        let now = self.now();
        let mut tx = doc.transaction();
        write(&mut tx).map_err(|e| StoreError::CorruptDocument {
            id: id.into(),
            reason: e.to_string(),
        })?;
        tx.commit_with(automerge::transaction::CommitOptions::default().with_time(now / 1000));
        self.check_policy(id, None, kind, &doc)?;
        let change = doc
            .get_last_local_change()
            .ok_or_else(|| StoreError::CorruptDocument {
                id: id.into(),
                reason: "empty record".into(),
            })?;
        self.persist_local(id, kind, doc, change, |_| Ok(()))
    }

    /// Runs the shared policy on a local write: the same decision the
    /// server makes when the change arrives.
    fn check_policy(
        &self,
        id: &str,
        before: Option<&doc::Record>,
        kind: RecordKind,
        doc: &Automerge,
    ) -> Result<()> {
        let after =
            doc::Record::read(kind, doc).map_err(|source| StoreError::MalformedDocument {
                id: id.into(),
                source,
            })?;
        crate::policy::check_write(&self.identity, before, &after, &StoreContext(&self.conn))?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn forget_cached(&mut self, id: &str) {
        self.cache.retain(|(i, _, _)| i != id);
    }

    /// Number of documents stored (all kinds).
    pub fn document_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM documents", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// The policy's view of other records: the store's projections.
struct StoreContext<'a>(&'a Connection);

impl crate::policy::Context for StoreContext<'_> {
    fn site(&self, id: &str) -> Option<crate::policy::SiteFacts> {
        let row: Option<(String, String)> = self
            .0
            .prepare_cached("SELECT kind, village_code FROM sites WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ok()
            .flatten();
        row.and_then(|(kind, village_code)| {
            Some(crate::policy::SiteFacts {
                kind: crate::model::SiteKind::from_key(&kind)?,
                village_code,
            })
        })
    }

    fn inspection_site(&self, id: &str) -> Option<String> {
        self.0
            .prepare_cached("SELECT site_id FROM inspections WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
            .ok()
            .flatten()
    }
}

/// Opens (creating) the database of a store folder, checks it, brings the
/// schema up to date, and returns it with the device's actor id.
fn open_db(dir: &Path) -> Result<(Connection, ActorId)> {
    std::fs::create_dir_all(dir.join(PHOTO_DIR))?;
    let path = dir.join(DB_FILE);
    let corrupt = |e: &dyn std::fmt::Display| StoreError::CorruptDatabase {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut conn = Connection::open(&path).map_err(|e| corrupt(&e))?;
    // The first statement that reads the file tells a damaged file apart.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| corrupt(&e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(&format!("journal mode is {mode}")));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
    )
    .map_err(|e| corrupt(&e))?;
    // No full-file check here: it reads the whole database (60 ms for
    // 20,000 records, far more from cold flash) on every open, while WAL with
    // synchronous=FULL does not tear pages on a crash. Damage shows as
    // SQLITE_CORRUPT on use and maps to `CorruptDatabase`;
    // `integrity_check` serves a recovery screen.
    migrations::migrate(&mut conn).map_err(|e| match e {
        migrations::MigrationError::Failed { source, .. }
        | migrations::MigrationError::Version(source)
            if matches!(
                source.sqlite_error_code(),
                Some(
                    rusqlite::ffi::ErrorCode::DatabaseCorrupt
                        | rusqlite::ffi::ErrorCode::NotADatabase
                )
            ) =>
        {
            corrupt(&source)
        }
        other => StoreError::Migration(other),
    })?;
    let tx = conn.transaction()?;
    let actor = match kv_get(&tx, KV_ACTOR)? {
        Some(hex) => {
            ActorId::from(hex_decode(&hex).ok_or_else(|| corrupt(&"device identity unreadable"))?)
        }
        None => {
            let actor = ActorId::from(uuid::Uuid::now_v7().as_bytes().as_slice());
            kv_set(&tx, KV_ACTOR, &actor.to_hex_string())?;
            actor
        }
    };
    tx.commit()?;
    Ok((conn, actor))
}

/// Inserts the document row with a full save if it is new (returns true),
/// so a new record is stored as a snapshot rather than as chunks.
pub(crate) fn ensure_document_row(
    tx: &Transaction<'_>,
    id: &str,
    kind: RecordKind,
    doc: &Automerge,
    now: i64,
) -> Result<bool> {
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM documents WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?;
    if !exists {
        tx.prepare_cached("INSERT INTO documents(id, kind, snapshot, incr_bytes, incr_count, updated_at) VALUES (?1, ?2, ?3, 0, 0, ?4)")?.execute(params![id, kind.key(), doc.save(), now],
        )?;
    }
    Ok(!exists)
}

/// Appends an incremental chunk (a change or a merged save).
pub(crate) fn append_chunk(tx: &Transaction<'_>, id: &str, chunk: &[u8], now: i64) -> Result<()> {
    tx.prepare_cached("INSERT INTO doc_chunks(doc_id, bytes) VALUES (?1, ?2)")?
        .execute(params![id, chunk])?;
    tx.prepare_cached("UPDATE documents SET incr_bytes = incr_bytes + ?2, incr_count = incr_count + 1, updated_at = ?3 WHERE id = ?1")?.execute(params![id, chunk.len() as i64, now],
    )?;
    Ok(())
}

/// Chunks a record may gather before compaction is considered, bytes. A
/// save costs a full encode and deflate; compacting a small record after
/// every change would spend more than the chunks ever cost to load.
pub const COMPACT_FLOOR_BYTES: i64 = 8 << 10;

/// Replaces snapshot + chunks with one fresh save once the chunks outgrow
/// the snapshot (and the floor), inside the caller's transaction.
pub(crate) fn maybe_compact(tx: &Transaction<'_>, id: &str, doc: &Automerge) -> Result<()> {
    let (snap, incr): (i64, i64) = tx
        .prepare_cached("SELECT length(snapshot), incr_bytes FROM documents WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if incr > snap.max(COMPACT_FLOOR_BYTES) {
        compact(tx, id, doc)?;
    }
    Ok(())
}

pub(crate) fn compact(tx: &Transaction<'_>, id: &str, doc: &Automerge) -> Result<()> {
    tx.prepare_cached(
        "UPDATE documents SET snapshot = ?2, incr_bytes = 0, incr_count = 0 WHERE id = ?1",
    )?
    .execute(params![id, doc.save()])?;
    tx.prepare_cached("DELETE FROM doc_chunks WHERE doc_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Whether the checksum in an Automerge change chunk's header matches its
/// contents. `Change::try_from` does not check it (`Automerge::load`
/// does), yet a change waiting in a document's queue for a missing
/// dependency is saved byte for byte: a damaged one would make every later
/// save of the record fail to load. The checksum is the first four bytes of
/// the change hash, right after the magic bytes, in plain and compressed
/// change chunks alike.
pub fn change_checksum_valid(bytes: &[u8], change: &Change) -> bool {
    bytes.get(4..8) == change.hash().0.get(..4)
}

/// Runs an Automerge operation on bytes from outside, turning a panic
/// inside Automerge into an error. Automerge 0.12 panics on some changes
/// its decoder accepts (an `unwrap` in `BatchApply::import_ops` when a
/// change names an actor the document does not know): a damaged or hostile
/// record must be refused, not take the app or the server down. What `f`
/// was changing may be left half-done, so callers drop it on error.
pub fn untrusted<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "Automerge failed on this data".to_owned())
}

/// Strictly decodes one chunk — a single change or a whole save — and merges
/// it into `doc`. Automerge's own `load_incremental` skips chunks it cannot
/// parse without saying so; a store must notice damaged bytes instead.
pub(crate) fn merge_chunk(doc: &mut Automerge, data: &[u8]) -> std::result::Result<(), String> {
    // Automerge's change parser panics on some damaged columns too.
    match untrusted(|| Change::try_from(data)).map_err(|e| format!("undecodable change: {e}"))? {
        Ok(change) if !change_checksum_valid(data, &change) => {
            Err("undecodable change: bad checksum".into())
        }
        Ok(change) => untrusted(|| doc.apply_changes([change]))
            .map_err(|e| format!("change does not apply: {e}"))?
            .map_err(|e| format!("change does not apply: {e}")),
        Err(automerge::LoadChangeError::WrongChunkType) => {
            let mut other = untrusted(|| Automerge::load(data))
                .map_err(|e| format!("undecodable record: {e}"))?
                .map_err(|e| format!("undecodable record: {e}"))?;
            untrusted(|| doc.merge(&mut other))
                .map_err(|e| format!("record does not merge: {e}"))?
                .map(drop)
                .map_err(|e| format!("record does not merge: {e}"))
        }
        Err(e) => Err(format!("undecodable change: {e}")),
    }
}

pub(crate) fn kv_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn kv_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute("INSERT INTO kv(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![key, value])?;
    Ok(())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
