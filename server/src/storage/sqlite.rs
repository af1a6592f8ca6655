//! The embedded default: one SQLite file (WAL, `synchronous=FULL`).
//!
//! One writer connection behind a mutex makes every change: SQLite has
//! one writer anyway. A few reader connections serve sessions, pulls and
//! the other lookups, and the checking half of an ingest, so those run in
//! parallel with each other and with the writer (WAL readers see the last
//! commit and never block it). Each call is one transaction; an ingest
//! batch commits durably before the reply names anything as stored.

use super::*;
use crate::rules::{self, Record};
use automerge::{ActorId, Automerge, Change, ReadDoc};
use fieldbook_core::doc::{self, RecordKind};
use fieldbook_core::model::area::prefix_upper_bound;
use fieldbook_core::model::workflow::{fold_finding, fold_inspection};
use fieldbook_core::model::{Event, EventKind};
use fieldbook_core::store::untrusted;
use fieldbook_core::sync::wire::{ItemKind, doc_id_bytes};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

mod reports;

const MIGRATIONS: &[&str] = &[include_str!("schema_001.sql")];

/// Log rows read per pull query.
const PULL_ROWS_MAX: usize = 5_000;

/// Reader connections. Each holds its own page cache; more readers than
/// sync requests worked on at once (`app::sync_slots`, at most 4) would
/// mostly idle.
const READERS: usize = 4;

/// Statements kept prepared per connection: every statement of an ingest
/// and a pull, with room for the per-area variants of the pull.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_freed: Condvar,
}

/// A reader connection, returned to the pool on drop.
struct Reader<'a> {
    storage: &'a SqliteStorage,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Taken out only by `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            lock(&self.storage.readers).push(c);
            self.storage.reader_freed.notify_one();
        }
    }
}

/// A panic while holding a connection leaves SQLite consistent (the
/// transaction rolls back on drop), so a poisoned lock is usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<SqliteStorage> {
        let mut conn = Connection::open(path)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StorageError::Schema(format!(
                "database schema {version} is newer than this server's {}",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
            tx.commit()?;
        }
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open(path)?;
            // No mmap: it would save reports a copy per page, but mapped
            // pages count as the server's resident memory, a whole database
            // of it after one city report.
            r.execute_batch("PRAGMA query_only=ON; PRAGMA busy_timeout=10000;")?;
            r.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            readers.push(r);
        }
        Ok(SqliteStorage {
            writer: Mutex::new(conn),
            readers: Mutex::new(readers),
            reader_freed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A reader connection, waiting for one to be free.
    fn reader(&self) -> Reader<'_> {
        let mut idle = lock(&self.readers);
        loop {
            if let Some(conn) = idle.pop() {
                return Reader {
                    storage: self,
                    conn: Some(conn),
                };
            }
            idle = self
                .reader_freed
                .wait(idle)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn role_of(s: &str) -> Result<Role> {
    Role::from_key(s).ok_or_else(|| StorageError::Schema(format!("unknown role {s}")))
}

fn split_areas(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

fn corrupt(id: &str, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        id: id.into(),
        reason: reason.to_string(),
    }
}

/// A stored record as loaded.
struct Loaded {
    kind: RecordKind,
    doc: Automerge,
    /// Version of the row: every write to a record appends to the log.
    last_seq: i64,
    snapshot_bytes: i64,
    chunk_bytes: i64,
}

/// Loads a record from its snapshot and the log rows after it.
fn load_doc(tx: &Connection, id: &str) -> Result<Option<Loaded>> {
    let row: Option<(String, Vec<u8>, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT kind, snapshot, snapshot_seq, last_seq, chunk_bytes FROM documents WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((kind, snapshot, snap_seq, last_seq, chunk_bytes)) = row else {
        return Ok(None);
    };
    let kind = RecordKind::from_key(&kind).ok_or_else(|| corrupt(id, "unknown kind"))?;
    let mut d = Automerge::load(&snapshot).map_err(|e| corrupt(id, e))?;
    if last_seq > snap_seq {
        let mut st = tx.prepare_cached(
            "SELECT item_kind, data FROM log WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = st.query_map(params![id, snap_seq], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (k, data) = row?;
            if k == 1 {
                let c = Change::try_from(data.as_slice()).map_err(|e| corrupt(id, e))?;
                d.apply_changes([c]).map_err(|e| corrupt(id, e))?;
            } else {
                let mut other = Automerge::load(&data).map_err(|e| corrupt(id, e))?;
                d.merge(&mut other).map_err(|e| corrupt(id, e))?;
            }
        }
    }
    Ok(Some(Loaded {
        kind,
        doc: d,
        last_seq,
        snapshot_bytes: snapshot.len() as i64,
        chunk_bytes,
    }))
}

/// A save of a whole record. A snapshot with no log rows after it is the
/// whole record already: it is sent as stored, not decoded and re-encoded.
fn whole_save(conn: &Connection, id: &str) -> Result<Vec<u8>> {
    let (snapshot, snap_seq, last_seq): (Vec<u8>, i64, i64) = conn
        .prepare_cached("SELECT snapshot, snapshot_seq, last_seq FROM documents WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| corrupt(id, "vanished"))?;
    if snap_seq == last_seq {
        return Ok(snapshot);
    }
    let l = load_doc(conn, id)?.ok_or_else(|| corrupt(id, "vanished"))?;
    Ok(l.doc.save())
}

/// Rewrites the projection rows of one record read from `d`.
fn refresh(tx: &Connection, id: &str, kind: RecordKind, d: &Automerge) -> Result<()> {
    let record = Record::read(kind, d).map_err(|e| corrupt(id, e))?;
    refresh_record(tx, id, &record)
}

/// Rewrites the projection rows of one record.
fn refresh_record(tx: &Connection, id: &str, record: &Record) -> Result<()> {
    match record {
        Record::Site(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sites(id, kind, name, village_code, lat, lon, source, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                    s.id,
                    s.kind.key(),
                    s.name,
                    s.village_code,
                    s.location.map(|p| p.lat),
                    s.location.map(|p| p.lon),
                    s.source.key(),
                    serde_json::to_string(&s.attributes).unwrap_or_default()
                ])?;
        }
        Record::Inspection(i) => {
            let st = fold_inspection(&i.events);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO inspections(id, site_id, site_kind, village_code, template_version, status,
                   revision, inspector, device, started_at, submitted_at, reviewed_at, lat, lon, accuracy_m,
                   mock_location, answers, photos, conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?
            .execute(params![
                    i.id,
                    i.site_id,
                    i.site_kind.key(),
                    i.village_code,
                    i.template_version,
                    st.status.key(),
                    st.revision,
                    i.inspector,
                    i.device,
                    i.started_at,
                    st.submitted_at,
                    st.reviewed_at,
                    i.location.map(|l| l.lat),
                    i.location.map(|l| l.lon),
                    i.location.map(|l| l.accuracy_m),
                    i.location.is_some_and(|l| l.mock),
                    serde_json::to_string(&i.answers).unwrap_or_default(),
                    i.photos.len() as i64,
                    i.conflicts.len() as i64
                ])?;
            photo_refs(tx, id, i.photos.iter().map(|p| p.hash.as_str()))?;
        }
        Record::Finding(f) => {
            let st = fold_finding(&f.events);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO findings(id, inspection_id, site_id, site_kind, village_code, title, status,
                   responsible, deadline, escalated, raised_at, closed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                    f.id,
                    f.inspection_id,
                    f.site_id,
                    f.site_kind.key(),
                    f.village_code,
                    f.title,
                    st.status.key(),
                    st.responsible,
                    st.deadline,
                    st.escalated,
                    f.raised_at,
                    st.closed_at
                ])?;
            photo_refs(tx, id, f.photos.iter().map(|p| p.hash.as_str()))?;
        }
    }
    Ok(())
}

/// Rewrites the photo references of one record.
fn photo_refs<'a>(tx: &Connection, id: &str, hashes: impl Iterator<Item = &'a str>) -> Result<()> {
    tx.prepare_cached("DELETE FROM record_photos WHERE doc_id = ?1")?
        .execute([id])?;
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO record_photos(hash, doc_id) VALUES (?1, ?2)")?;
    for h in hashes {
        insert.execute(params![h, id])?;
    }
    Ok(())
}

/// What a checked item writes to the `documents` row.
enum DocWrite<'a> {
    /// A record new to the server, with its first snapshot.
    Insert { snapshot: Cow<'a, [u8]> },
    /// A stored record gains log rows; `compact` is its new snapshot when
    /// the log since the old one outgrew it.
    Update { compact: Option<Vec<u8>> },
}

/// One record's accepted change, ready to store.
struct Accepted<'a> {
    id: String,
    kind: RecordKind,
    record: Record,
    rows: Rows<'a>,
    doc: DocWrite<'a>,
    /// Workflow events the change adds, for the audit log.
    events: Vec<Event>,
}

enum Step<'a> {
    /// Refused or already stored: nothing to write.
    Done(Outcome),
    Store(Box<Accepted<'a>>),
}

/// A record as the batch has it so far.
struct Held {
    kind: RecordKind,
    doc: Automerge,
    record: Record,
    /// Whether SQLite has a `documents` row for it (before this batch or
    /// from an earlier item of it).
    stored: bool,
    snapshot_bytes: i64,
    chunk_bytes: i64,
}

/// A checked batch: what to do per item, and the version of every record
/// the checks read (`None`: absent), to confirm before storing.
struct Checked<'a> {
    steps: Vec<Step<'a>>,
    read: Vec<(String, Option<i64>)>,
}

/// Checks every item of a batch against the records `conn` holds, in
/// order, as if each accepted item were already stored. Nothing is written.
fn check_batch<'a>(
    conn: &Connection,
    s: &Session,
    actor: &ActorId,
    items: &'a [Item],
) -> Result<Checked<'a>> {
    // Items left per record: a record's document is kept only while a
    // later item of the batch needs it.
    let mut left: HashMap<[u8; 16], usize> = HashMap::new();
    for item in items {
        *left.entry(item.doc_id).or_default() += 1;
    }
    let mut held: HashMap<[u8; 16], Held> = HashMap::new();
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let mut checked = Checked {
        steps: Vec::with_capacity(items.len()),
        read: Vec::new(),
    };
    for item in items {
        let key = item.doc_id;
        let id = item.doc_id_text();
        if seen.insert(key) {
            let loaded = load_doc(conn, &id)?;
            checked
                .read
                .push((id.clone(), loaded.as_ref().map(|l| l.last_seq)));
            if let Some(l) = loaded {
                let record = Record::read(l.kind, &l.doc).map_err(|e| corrupt(&id, e))?;
                held.insert(
                    key,
                    Held {
                        kind: l.kind,
                        doc: l.doc,
                        record,
                        stored: true,
                        snapshot_bytes: l.snapshot_bytes,
                        chunk_bytes: l.chunk_bytes,
                    },
                );
            }
        }
        let last_use = left.get_mut(&key).is_some_and(|n| {
            *n -= 1;
            *n == 0
        });
        let step = match check_item(held.get(&key), s, actor, item, &id)? {
            ItemCheck::Done(o) => Step::Done(o),
            ItemCheck::Accept(accept) => {
                let Accept {
                    after,
                    record,
                    rows,
                    whole,
                    events,
                } = *accept;
                let bytes: i64 = rows.iter().map(|(_, b)| b.len() as i64).sum();
                let prior = held.remove(&key);
                let (doc, snapshot_bytes, chunk_bytes) = match prior {
                    Some(h) if h.stored => {
                        // As on the phone: a floor keeps small records from
                        // being re-encoded on every change.
                        let chunks = h.chunk_bytes + bytes;
                        let floor = h
                            .snapshot_bytes
                            .max(fieldbook_core::store::COMPACT_FLOOR_BYTES);
                        if chunks > floor {
                            let snapshot = after.save();
                            let n = snapshot.len() as i64;
                            (
                                DocWrite::Update {
                                    compact: Some(snapshot),
                                },
                                n,
                                0,
                            )
                        } else {
                            (DocWrite::Update { compact: None }, h.snapshot_bytes, chunks)
                        }
                    }
                    _ => {
                        let snapshot = match whole {
                            Some(save) => Cow::Borrowed(save),
                            None => Cow::Owned(after.save()),
                        };
                        let n = snapshot.len() as i64;
                        (DocWrite::Insert { snapshot }, n, 0)
                    }
                };
                if !last_use {
                    held.insert(
                        key,
                        Held {
                            kind: item.record,
                            doc: after,
                            record: record.clone(),
                            stored: true,
                            snapshot_bytes,
                            chunk_bytes,
                        },
                    );
                }
                Step::Store(Box::new(Accepted {
                    id,
                    kind: item.record,
                    record,
                    rows,
                    doc,
                    events,
                }))
            }
        };
        checked.steps.push(step);
        if last_use {
            held.remove(&key);
        }
    }
    Ok(checked)
}

/// Whether every record `read` names is still at the version read.
fn unchanged(tx: &Connection, read: &[(String, Option<i64>)]) -> Result<bool> {
    let mut st = tx.prepare_cached("SELECT last_seq FROM documents WHERE id = ?1")?;
    for (id, seen) in read {
        let now: Option<i64> = st.query_row([id], |r| r.get(0)).optional()?;
        if now != *seen {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Log rows of an accepted item.
type Rows<'a> = Vec<(ItemKind, Cow<'a, [u8]>)>;

enum ItemCheck<'a> {
    Done(Outcome),
    Accept(Box<Accept<'a>>),
}

/// An item that passed its checks, with the record after it.
struct Accept<'a> {
    after: Automerge,
    record: Record,
    rows: Rows<'a>,
    /// The pushed save of a record new to the server, kept as it came.
    whole: Option<&'a [u8]>,
    events: Vec<Event>,
}

/// Checks one item against the record as the batch has it (`before`).
fn check_item<'a>(
    before: Option<&Held>,
    s: &Session,
    actor: &ActorId,
    item: &'a Item,
    id: &str,
) -> Result<ItemCheck<'a>> {
    if let Some(h) = before
        && h.kind != item.record
    {
        return Ok(ItemCheck::Done(Outcome::Rejected(
            RejectCode::Invalid,
            format!(
                "record {id} is a {}, not a {}",
                h.kind.key(),
                item.record.key()
            ),
        )));
    }
    let reject = |c: RejectCode, m: String| Ok(ItemCheck::Done(Outcome::Rejected(c, m)));
    let duplicate = || Ok(ItemCheck::Done(Outcome::Stored { new: false }));
    let mut whole: Option<&[u8]> = None;
    let (after, rows): (Automerge, Rows<'a>) = match item.kind {
        ItemKind::Change => {
            // `untrusted`: the change parser panics on some damaged columns.
            let decoded = untrusted(|| Change::try_from(item.data.as_slice()))
                .and_then(|r| r.map_err(|e| e.to_string()));
            let change = match decoded {
                // Phones refuse such a change (see `change_checksum_valid`):
                // storing it would send them bytes they cannot take.
                Ok(c) if !fieldbook_core::store::change_checksum_valid(&item.data, &c) => {
                    return reject(
                        RejectCode::Undecodable,
                        "not an Automerge change: bad checksum".into(),
                    );
                }
                Ok(c) => c,
                Err(e) => {
                    return reject(
                        RejectCode::Undecodable,
                        format!("not an Automerge change: {e}"),
                    );
                }
            };
            if change.actor_id() != actor {
                return reject(
                    RejectCode::ForeignActor,
                    format!(
                        "change by actor {} pushed by device {}",
                        change.actor_id(),
                        s.pusher.device
                    ),
                );
            }
            let hash = change.hash();
            let mut after = match before {
                Some(h) if h.doc.get_change_by_hash(&hash).is_some() => {
                    return duplicate();
                }
                Some(h) => h.doc.clone(),
                None if !change.deps().is_empty() => {
                    return reject(
                        RejectCode::NeedDocument,
                        format!("the server has no record {id}; send it whole"),
                    );
                }
                None => Automerge::new(),
            };
            // `untrusted`: Automerge panics on some changes it decodes.
            let applied = untrusted(|| after.apply_changes([change]))
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = applied {
                return reject(
                    RejectCode::Undecodable,
                    format!("change does not apply: {e}"),
                );
            }
            if after.get_change_by_hash(&hash).is_none() {
                return reject(
                    RejectCode::NeedDocument,
                    format!("the server lacks history of record {id}; send it whole"),
                );
            }
            (
                after,
                vec![(ItemKind::Change, Cow::Borrowed(item.data.as_slice()))],
            )
        }
        ItemKind::Document => {
            let loaded = match untrusted(|| Automerge::load(&item.data))
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(d) => d,
                Err(e) => {
                    return reject(
                        RejectCode::Undecodable,
                        format!("not an Automerge document: {e}"),
                    );
                }
            };
            match before {
                // New to the server: every change must be this device's;
                // the save is kept as it came, one log row and the snapshot.
                None => {
                    if let Some(m) = loaded
                        .get_changes_meta(&[])
                        .iter()
                        .find(|m| m.actor.as_ref() != actor)
                    {
                        return reject(
                            RejectCode::ForeignActor,
                            format!(
                                "document holds changes by actor {} unknown to the server",
                                m.actor
                            ),
                        );
                    }
                    whole = Some(item.data.as_slice());
                    (
                        loaded,
                        vec![(ItemKind::Document, Cow::Borrowed(item.data.as_slice()))],
                    )
                }
                // Known: store only what is new, change by change.
                Some(h) => {
                    let new: Vec<Change> = loaded
                        .get_changes(&[])
                        .into_iter()
                        .filter(|c| h.doc.get_change_by_hash(&c.hash()).is_none())
                        .collect();
                    if new.is_empty() {
                        return duplicate();
                    }
                    if let Some(c) = new.iter().find(|c| c.actor_id() != actor) {
                        return reject(
                            RejectCode::ForeignActor,
                            format!(
                                "document holds changes by actor {} unknown to the server",
                                c.actor_id()
                            ),
                        );
                    }
                    let mut after = h.doc.clone();
                    let rows = new
                        .iter()
                        .map(|c| (ItemKind::Change, Cow::Owned(c.raw_bytes().to_vec())))
                        .collect();
                    let applied = untrusted(|| after.apply_changes(new))
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    if let Err(e) = applied {
                        return reject(
                            RejectCode::Undecodable,
                            format!("changes do not apply: {e}"),
                        );
                    }
                    (after, rows)
                }
            }
        }
    };
    let record = match Record::read(item.record, &after) {
        Ok(r) => r,
        Err(e) => return reject(RejectCode::Invalid, format!("record does not read: {e}")),
    };
    let events = match rules::check(&s.pusher, before.map(|h| &h.record), &record) {
        Ok(events) => events,
        Err((code, msg)) => return reject(code, msg),
    };
    Ok(ItemCheck::Accept(Box::new(Accept {
        after,
        record,
        rows,
        whole,
        events,
    })))
}

/// Writes an accepted change: audit lines for review and finding steps,
/// log rows, the `documents` row and the projections.
fn store(tx: &Connection, a: &Accepted<'_>, user: &str, device: &str, now: i64) -> Result<()> {
    let id = a.id.as_str();
    for e in a.events.iter().filter(|e| {
        !matches!(
            e.kind,
            EventKind::Commented | EventKind::Found | EventKind::Submitted
        )
    }) {
        let rev = e
            .revision
            .map(|r| format!(" revision {r}"))
            .unwrap_or_default();
        tx.prepare_cached(
            "INSERT INTO audit(at, user, device, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            now,
            user,
            device,
            e.kind.key(),
            format!("{} {id}{rev}", a.kind.key())
        ])?;
    }
    let mut first = 0;
    let mut last = 0;
    let mut bytes = 0i64;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO log(doc_id, item_kind, data, device, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (k, data) in &a.rows {
            insert.execute(params![id, *k as i64, data.as_ref(), device, now])?;
            last = tx.last_insert_rowid();
            if first == 0 {
                first = last;
            }
            bytes += data.len() as i64;
        }
    }
    let village = a.record.village_code();
    match &a.doc {
        DocWrite::Update { compact } => {
            tx.prepare_cached("UPDATE documents SET chunk_bytes = chunk_bytes + ?2, last_seq = ?3, village_code = ?4 WHERE id = ?1")?
                .execute(params![id, bytes, last, village])?;
            if let Some(snapshot) = compact {
                tx.prepare_cached("UPDATE documents SET snapshot = ?2, snapshot_seq = last_seq, chunk_bytes = 0 WHERE id = ?1")?
                    .execute(params![id, snapshot])?;
            }
        }
        DocWrite::Insert { snapshot } => {
            tx.prepare_cached(
                "INSERT INTO documents(id, kind, village_code, snapshot, snapshot_seq, chunk_bytes, first_seq, last_seq, creator_device)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?5, ?7)",
            )?
            .execute(params![id, a.kind.key(), village, snapshot.as_ref(), last, first, device])?;
        }
    }
    refresh_record(tx, id, &a.record)
}

/// `(col >= ?a AND col < ?b) OR …` for the session's areas.
fn area_clause(col: &str, areas: &[String], first_param: usize) -> (String, Vec<String>) {
    if areas.is_empty() {
        return ("0".into(), Vec::new());
    }
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for (i, a) in areas.iter().enumerate() {
        let n = first_param + 2 * i;
        parts.push(format!("({col} >= ?{n} AND {col} < ?{})", n + 1));
        params.push(a.clone());
        params.push(prefix_upper_bound(a));
    }
    (format!("({})", parts.join(" OR ")), params)
}

impl Storage for SqliteStorage {
    fn create_user(&self, u: &UserRecord) -> Result<()> {
        let conn = self.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO users(name, password_hash, role, areas, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.name, u.password_hash, u.role.key(), u.areas.join(","), u.created_at],
        )?;
        if n == 0 {
            return Err(StorageError::Conflict(format!(
                "user {} already exists",
                u.name
            )));
        }
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let conn = self.reader();
        let row: Option<(String, String, String, String, i64)> = conn
            .query_row(
                "SELECT name, password_hash, role, areas, created_at FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        row.map(|(name, password_hash, role, areas, created_at)| {
            Ok(UserRecord {
                name,
                password_hash,
                role: role_of(&role)?,
                areas: split_areas(&areas),
                created_at,
            })
        })
        .transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.reader();
        let mut st = conn.prepare(
            "SELECT name, password_hash, role, areas, created_at FROM users ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, password_hash, role, areas, created_at) = row?;
            out.push(UserRecord {
                name,
                password_hash,
                role: role_of(&role)?,
                areas: split_areas(&areas),
                created_at,
            });
        }
        Ok(out)
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
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let owner: Option<String> = tx
            .query_row("SELECT id FROM devices WHERE actor = ?1", [actor], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(old) = owner.as_deref().filter(|o| *o != device) {
            let old_user: String =
                tx.query_row("SELECT user FROM devices WHERE id = ?1", [old], |r| {
                    r.get(0)
                })?;
            if old_user != user {
                return Err(StorageError::Conflict(
                    "this actor id belongs to another device".into(),
                ));
            }
            // The same user brings the actor to a new device id: a store
            // rebuilt after its database was damaged, which must pull back
            // the records its old self pushed. The actor moves and the old
            // device is revoked, so two devices never write as one actor.
            tx.execute(
                "UPDATE devices SET revoked = 1, actor = 'moved:' || actor || ':' || id WHERE id = ?1",
                [old],
            )?;
            tx.execute("DELETE FROM tokens WHERE device = ?1", [old])?;
        }
        let existing: Option<(String, bool)> = tx
            .query_row(
                "SELECT user, revoked FROM devices WHERE id = ?1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            Some((u, _)) if u != user => {
                return Err(StorageError::Conflict(
                    "this device is registered to another user".into(),
                ));
            }
            Some((_, true)) => {
                return Err(StorageError::Conflict(
                    "this device was revoked; ask an administrator".into(),
                ));
            }
            Some(_) => {
                tx.execute(
                    "UPDATE devices SET actor = ?2, last_seen = ?3 WHERE id = ?1",
                    params![device, actor, now],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO devices(id, user, actor, registered_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![device, user, actor, now],
                )?;
            }
        }
        tx.execute(
            "INSERT INTO tokens(hash, device, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, device, expires_at, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let conn = self.reader();
        let row: Option<(String, String, String, String, String, i64)> = conn
            .query_row(
                "SELECT u.name, u.role, u.areas, d.id, d.actor, t.expires_at
                 FROM tokens t JOIN devices d ON d.id = t.device JOIN users u ON u.name = d.user
                 WHERE t.hash = ?1 AND t.expires_at > ?2 AND d.revoked = 0",
                params![token_hash, now],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(user, role, areas, device, actor, expires_at)| {
            Ok(Session {
                pusher: rules::Pusher {
                    user,
                    role: role_of(&role)?,
                    areas: split_areas(&areas),
                    device,
                },
                actor,
                expires_at,
            })
        })
        .transpose()
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        let conn = self.reader();
        let mut st = conn.prepare("SELECT id, user, actor, registered_at, last_seen, revoked FROM devices ORDER BY user, id")?;
        let rows = st.query_map([], |r| {
            Ok(DeviceRecord {
                id: r.get(0)?,
                user: r.get(1)?,
                actor: r.get(2)?,
                registered_at: r.get(3)?,
                last_seen: r.get(4)?,
                revoked: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_device(&self, device: &str) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device])?;
        tx.execute("DELETE FROM tokens WHERE device = ?1", [device])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn ingest(&self, session: &Session, items: &[Item], now: i64) -> Result<Vec<Outcome>> {
        let actor = ActorId::from(
            hex(&session.actor)
                .ok_or_else(|| StorageError::Schema("stored actor is not hex".into()))?,
        );
        // Checking (decoding documents, reading records, the rules) is most
        // of an ingest and needs only a consistent read, so it runs on a
        // reader, beside other requests' checks and pulls. The writer then
        // confirms that no record read has moved and stores; a batch that
        // raced another one touching its records is checked again under
        // the lock, so the outcome is as if batches ran one at a time.
        let checked = {
            let mut conn = self.reader();
            let tx = conn.transaction()?;
            check_batch(&tx, session, &actor, items)?
        };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let checked = if unchanged(&tx, &checked.read)? {
            checked
        } else {
            drop(checked);
            check_batch(&tx, session, &actor, items)?
        };
        let mut out = Vec::with_capacity(items.len());
        for step in checked.steps {
            match step {
                Step::Done(o) => out.push(o),
                Step::Store(a) => {
                    store(&tx, &a, &session.pusher.user, &session.pusher.device, now)?;
                    out.push(Outcome::Stored { new: true });
                }
            }
        }
        tx.prepare_cached("UPDATE devices SET last_seen = ?2 WHERE id = ?1")?
            .execute(params![session.pusher.device, now])?;
        tx.commit()?;
        Ok(out)
    }

    fn pull(&self, session: &Session, cursor: u64, max_bytes: usize) -> Result<Page> {
        let mut conn = self.reader();
        // One read transaction: the rows and the whole records sent are of
        // one state of the database.
        let conn = conn.transaction()?;
        let (area, area_params) = area_clause("d.village_code", &session.pusher.areas, 3);
        let sql = format!(
            "SELECT l.seq, l.doc_id, d.kind, l.item_kind, l.data, l.device, d.first_seq, d.creator_device
             FROM log l JOIN documents d ON d.id = l.doc_id
             WHERE l.seq > ?1 AND {area} ORDER BY l.seq LIMIT ?2"
        );
        let mut st = conn.prepare_cached(&sql)?;
        let mut bind: Vec<rusqlite::types::Value> =
            vec![(cursor as i64).into(), (PULL_ROWS_MAX as i64).into()];
        bind.extend(area_params.into_iter().map(rusqlite::types::Value::from));
        let rows = st.query_map(rusqlite::params_from_iter(bind.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
        let full = rows.len() == PULL_ROWS_MAX;
        let mut page = Page {
            items: Vec::new(),
            cursor,
            more: false,
        };
        let mut bytes = 0usize;
        let mut whole_sent: HashSet<String> = HashSet::new();
        let me = &session.pusher.device;
        for (seq, doc_id, kind, item_kind, data, device, first_seq, creator) in rows {
            if bytes >= max_bytes && !page.items.is_empty() {
                page.more = true;
                return Ok(page);
            }
            page.cursor = seq as u64;
            if &device == me || whole_sent.contains(&doc_id) {
                continue;
            }
            let record =
                RecordKind::from_key(&kind).ok_or_else(|| corrupt(&doc_id, "unknown kind"))?;
            let doc_bytes =
                doc_id_bytes(&doc_id).ok_or_else(|| corrupt(&doc_id, "id is not a UUID"))?;
            let (ik, payload) = if first_seq as u64 > cursor && &creator != me {
                // The phone has never had this record: send it whole, once.
                whole_sent.insert(doc_id.clone());
                (ItemKind::Document, whole_save(&conn, &doc_id)?)
            } else if item_kind == 1 {
                (ItemKind::Change, data)
            } else {
                (ItemKind::Document, data)
            };
            bytes += payload.len();
            page.items.push(PageItem {
                seq: seq as u64,
                item: Item {
                    kind: ik,
                    record,
                    doc_id: doc_bytes,
                    data: payload,
                },
            });
        }
        page.more = full;
        Ok(page)
    }

    fn import_sites(&self, sites: &[Site], by: &str, now: i64) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut n = 0;
        for s in sites {
            if let Some(mut loaded) = load_doc(&tx, &s.id)? {
                // A known id: the registry may have moved, renamed or
                // re-surveyed the site. Only a difference is written, as an
                // ordinary change that phones pull like any other; the
                // site's inspections follow it because reports join them
                // through the site, not through where they were made.
                if loaded.kind != RecordKind::Site {
                    return Err(corrupt(
                        &s.id,
                        "a registry site id names another kind of record",
                    ));
                }
                let current = doc::site::read(&loaded.doc).map_err(|e| corrupt(&s.id, e))?;
                if current.kind != s.kind {
                    return Err(StorageError::Conflict(format!(
                        "site {} is a {} in the registry already; a new kind needs a new id",
                        s.id,
                        current.kind.key()
                    )));
                }
                let mut t = loaded.doc.transaction();
                let changed =
                    doc::site::update(&mut t, &current, s).map_err(|e| corrupt(&s.id, e))?;
                t.commit();
                if !changed {
                    continue;
                }
                let change = loaded
                    .doc
                    .get_last_local_change()
                    .map(|c| c.raw_bytes().to_vec())
                    .ok_or_else(|| corrupt(&s.id, "the registry change vanished"))?;
                let record =
                    Record::read(RecordKind::Site, &loaded.doc).map_err(|e| corrupt(&s.id, e))?;
                let a = Accepted {
                    id: s.id.clone(),
                    kind: RecordKind::Site,
                    record,
                    rows: vec![(ItemKind::Change, Cow::Owned(change))],
                    doc: DocWrite::Update { compact: None },
                    events: Vec::new(),
                };
                store(&tx, &a, by, &format!("registry:{by}"), now)?;
                n += 1;
                continue;
            }
            let mut d = Automerge::new();
            let mut t = d.transaction();
            doc::site::create(&mut t, s).map_err(|e| corrupt(&s.id, e))?;
            t.commit();
            let save = d.save();
            let a = Accepted {
                id: s.id.clone(),
                kind: RecordKind::Site,
                record: Record::Site(s.clone()),
                rows: vec![(ItemKind::Document, Cow::Borrowed(save.as_slice()))],
                doc: DocWrite::Insert {
                    snapshot: Cow::Borrowed(save.as_slice()),
                },
                events: Vec::new(),
            };
            store(&tx, &a, by, &format!("registry:{by}"), now)?;
            n += 1;
        }
        tx.commit()?;
        Ok(n)
    }

    fn photo_readable(&self, hash: &str, areas: &[String]) -> Result<bool> {
        let conn = self.reader();
        let (area, area_params) = area_clause("d.village_code", areas, 2);
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM record_photos p JOIN documents d ON d.id = p.doc_id WHERE p.hash = ?1 AND {area})"
        );
        let mut bind: Vec<rusqlite::types::Value> = vec![hash.to_owned().into()];
        bind.extend(area_params.into_iter().map(rusqlite::types::Value::from));
        Ok(conn.query_row(&sql, rusqlite::params_from_iter(bind.iter()), |r| r.get(0))?)
    }

    fn audit(&self, e: &AuditEntry) -> Result<()> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO audit(at, user, device, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.at, e.user, e.device, e.action, e.detail],
        )?;
        Ok(())
    }

    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let conn = self.reader();
        let mut st = conn.prepare(
            "SELECT at, user, device, action, detail FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                user: r.get(1)?,
                device: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn counts(&self) -> Result<Counts> {
        let conn = self.reader();
        let c = |sql: &str| {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        Ok(Counts {
            users: c("SELECT count(*) FROM users")?,
            devices: c("SELECT count(*) FROM devices")?,
            documents: c("SELECT count(*) FROM documents")?,
            log_entries: c("SELECT count(*) FROM log")?,
        })
    }

    fn verify_projections(&self) -> Result<Vec<String>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for t in ["sites", "inspections", "findings", "record_photos"] {
            tx.execute_batch(&format!(
                "CREATE TEMP TABLE old_{t} AS SELECT * FROM {t}; DELETE FROM {t};"
            ))?;
        }
        let ids: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM documents")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
            let l = load_doc(&tx, &id)?.ok_or_else(|| corrupt(&id, "vanished"))?;
            refresh(&tx, &id, l.kind, &l.doc)?;
        }
        let mut diffs = Vec::new();
        for (t, key) in [
            ("sites", "id"),
            ("inspections", "id"),
            ("findings", "id"),
            ("record_photos", "hash || ' ' || doc_id"),
        ] {
            let sql = format!(
                "SELECT 'missing from {t}: ' || {key} FROM (SELECT * FROM {t} EXCEPT SELECT * FROM old_{t})
                 UNION ALL SELECT 'stale in {t}: ' || {key} FROM (SELECT * FROM old_{t} EXCEPT SELECT * FROM {t})"
            );
            let mut st = tx.prepare(&sql)?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            for r in rows {
                diffs.push(r?);
            }
        }
        // Leave everything as it was: this is a check, not a repair.
        tx.rollback()?;
        Ok(diffs)
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
