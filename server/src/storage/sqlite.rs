//! The embedded default: one SQLite file (WAL, `synchronous=FULL`).
//!
//! One writer connection behind a mutex makes every change: SQLite has
//! one writer anyway. A few reader connections serve sessions, pulls and
//! the other lookups, and the checking half of an ingest, so those run in
//! parallel with each other and with the writer (WAL readers see the last
//! commit and never block it). Each call is one transaction; an ingest
//! batch commits durably before the reply names anything as stored.

use super::*;
use crate::ingest::{self, Accepted, DocWrite, Step};
use automerge::{ActorId, Automerge};
use fieldbook_core::doc::{self, Record, RecordKind};
use fieldbook_core::sync::wire::{ItemKind, doc_id_bytes};
use records::{SqlSource, area_clause, corrupt, load_doc, refresh, store, unchanged, whole_save};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

mod accounts;
mod records;
mod reports;
mod review;

/// Schema migrations, in order; index + 1 is the version each produces.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("schema_001", include_str!("schema_001.sql")),
    ("schema_002", include_str!("schema_002.sql")),
    ("schema_003", include_str!("schema_003.sql")),
];

/// Log rows read per pull query.
const PULL_ROWS_MAX: usize = 5_000;

/// Reader connections. Each holds its own page cache; more readers than
/// sync requests worked on at once (`http::state::sync_slots`, at most 4) would
/// mostly idle.
const READERS: usize = 4;
/// Reader connections of reports and exports, apart from sync's: a queue
/// of downloads never takes the connections phones sync through. Coverage
/// runs a shard per core on these.
fn report_readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Statements kept prepared per connection: every statement of an ingest
/// and a pull, with room for the per-area variants of the pull.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    readers: Pool,
    report_readers: Pool,
}

/// Idle reader connections.
struct Pool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Pool {
    fn open(path: &Path, n: usize) -> Result<Pool> {
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let r = Connection::open(path)?;
            // No mmap: it would save reports a copy per page, but mapped
            // pages count as the server's resident memory, a whole database
            // of it after one city report.
            r.execute_batch("PRAGMA query_only=ON; PRAGMA busy_timeout=10000;")?;
            r.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            idle.push(r);
        }
        Ok(Pool {
            idle: Mutex::new(idle),
            freed: Condvar::new(),
        })
    }

    /// A connection, waiting for one to be free.
    fn take(&self) -> Reader<'_> {
        let mut idle = lock(&self.idle);
        loop {
            if let Some(conn) = idle.pop() {
                return Reader {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self.freed.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A reader connection, returned to its pool on drop.
pub(super) struct Reader<'a> {
    pool: &'a Pool,
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
            lock(&self.pool.idle).push(c);
            self.pool.freed.notify_one();
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
        for (i, (_, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
            tx.commit()?;
        }
        Ok(SqliteStorage {
            writer: Mutex::new(conn),
            readers: Pool::open(path, READERS)?,
            report_readers: Pool::open(path, report_readers())?,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A reader connection for sync and lookups, waiting for one to be free.
    pub(super) fn reader(&self) -> Reader<'_> {
        self.readers.take()
    }

    /// A reader connection for reports and exports.
    pub(super) fn report_reader(&self) -> Reader<'_> {
        self.report_readers.take()
    }
}

pub(super) fn role_of(s: &str) -> Result<Role> {
    Role::from_key(s).ok_or_else(|| StorageError::Schema(format!("unknown role {s}")))
}

pub(super) fn split_areas(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Records for SqliteStorage {
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
            ingest::check_batch(&SqlSource(&tx), session, &actor, items)?
        };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let checked = if unchanged(&tx, &checked.read)? {
            checked
        } else {
            drop(checked);
            ingest::check_batch(&SqlSource(&tx), session, &actor, items)?
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
             WHERE l.seq > ?1 AND {area}
               AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.doc_id = l.doc_id)
             ORDER BY l.seq LIMIT ?2"
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

    fn import_sites(&self, sites: &[Site], who: &Identity, now: i64) -> Result<usize> {
        let by = who.user.as_str();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut n = 0;
        for s in sites {
            if !who.covers(&s.village_code) {
                return Err(StorageError::Forbidden(format!(
                    "site {} lies in {}, outside {by}'s areas",
                    s.id, s.village_code
                )));
            }
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
                if !who.covers(&current.village_code) {
                    return Err(StorageError::Forbidden(format!(
                        "site {} lies in {}, outside {by}'s areas",
                        s.id, current.village_code
                    )));
                }
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
                    .ok_or_else(|| corrupt(&s.id, "the registry change vanished"))?;
                let record =
                    Record::read(RecordKind::Site, &loaded.doc).map_err(|e| corrupt(&s.id, e))?;
                let a = Accepted {
                    id: s.id.clone(),
                    kind: RecordKind::Site,
                    record,
                    rows: vec![(ItemKind::Change, Cow::Owned(change.raw_bytes().to_vec()))],
                    doc: DocWrite::Update { compact: None },
                    events: Vec::new(),
                    new_photos: Vec::new(),
                    ops: change.len() as i64,
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
                new_photos: Vec::new(),
                ops: d.get_changes(&[]).iter().map(|c| c.len() as i64).sum(),
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
        // Through a record in the reader's areas that still holds the
        // photo, attached by a user who uploaded its bytes: knowing a hash
        // grants nothing.
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM record_photos p
               JOIN documents d ON d.id = p.doc_id
               JOIN photo_refs r ON r.hash = p.hash AND r.doc_id = p.doc_id
               JOIN photo_owners o ON o.hash = r.hash AND o.user = r.user
               WHERE p.hash = ?1 AND {area}
                 AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.doc_id = d.id))"
        );
        let mut bind: Vec<rusqlite::types::Value> = vec![hash.to_owned().into()];
        bind.extend(area_params.into_iter().map(rusqlite::types::Value::from));
        Ok(conn.query_row(&sql, rusqlite::params_from_iter(bind.iter()), |r| r.get(0))?)
    }

    fn photo_owned(&self, hash: &str, user: &str) -> Result<bool> {
        let conn = self.reader();
        Ok(conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM photo_owners WHERE hash = ?1 AND user = ?2)",
            )?
            .query_row(params![hash, user], |r| r.get(0))?)
    }

    fn add_photo_owner(&self, hash: &str, user: &str, now: i64) -> Result<()> {
        let conn = self.lock();
        conn.prepare_cached(
            "INSERT OR IGNORE INTO photo_owners(hash, user, at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![hash, user, now])?;
        Ok(())
    }

    fn quarantine(&self, id: &str, reason: &str, by: &str, now: i64) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let kind: Option<String> = tx
            .query_row("SELECT kind FROM documents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(kind) = kind else {
            return Ok(false);
        };
        tx.execute(
            "INSERT OR REPLACE INTO quarantine(doc_id, reason, by, at) VALUES (?1, ?2, ?3, ?4)",
            params![id, reason, by, now],
        )?;
        // Out of every report and export: they read the projections.
        records::remove_projection(&tx, id, &kind)?;
        tx.commit()?;
        Ok(true)
    }

    fn release(&self, id: &str) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if tx.execute("DELETE FROM quarantine WHERE doc_id = ?1", [id])? == 0 {
            return Ok(false);
        }
        let l = load_doc(&tx, id)?.ok_or_else(|| corrupt(id, "vanished"))?;
        refresh(&tx, id, l.kind, &l.doc)?;
        tx.commit()?;
        Ok(true)
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let conn = self.reader();
        let mut st = conn.prepare("SELECT doc_id, reason, by, at FROM quarantine ORDER BY at")?;
        let rows = st.query_map([], |r| {
            Ok(Quarantined {
                id: r.get(0)?,
                reason: r.get(1)?,
                by: r.get(2)?,
                at: r.get(3)?,
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
        // Quarantined records have no projection rows by design.
        for t in ["sites", "inspections", "findings", "record_photos"] {
            tx.execute_batch(&format!(
                "CREATE TEMP TABLE old_{t} AS SELECT * FROM {t}; DELETE FROM {t};"
            ))?;
        }
        let ids: Vec<String> = {
            let mut st = tx.prepare(
                "SELECT id FROM documents WHERE id NOT IN (SELECT doc_id FROM quarantine)",
            )?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A schema file left out of the list is never applied: the list must
    /// name every file, in order, with its content.
    #[test]
    fn the_list_names_every_schema_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("schema_") && n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, files);
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*name, format!("schema_{:03}", i + 1));
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.sql"))).unwrap();
            assert_eq!(*sql, on_disk);
        }
    }

    /// A schema-1 database with records upgrades, and the photos its
    /// records hold stay readable by those who could read them.
    #[test]
    fn schema_1_upgrades_and_keeps_photos_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        {
            let mut c = Connection::open(&path).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0].1).unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            tx.execute_batch(
                "INSERT INTO users VALUES ('li', 'x', 'inspector', '410324', 0);
                 INSERT INTO devices(id, user, actor, registered_at) VALUES ('p', 'li', 'aa', 0);
                 INSERT INTO documents VALUES ('i1', 'inspection', '410324101201', x'00', 1, 0, 1, 1, 'p');
                 INSERT INTO documents VALUES ('f1', 'finding', '410324101201', x'00', 2, 0, 2, 2, 'p');
                 INSERT INTO inspections VALUES ('i1', 's', 'household_toilet', '410324101201', 1,
                   'draft', 0, 'li', 'p', 0, NULL, NULL, NULL, NULL, NULL, 0, '{}', 1, 0);
                 INSERT INTO record_photos VALUES ('h1', 'i1'), ('h2', 'f1');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        let areas = vec!["410324".to_owned()];
        assert!(s.photo_readable("h1", &areas).unwrap());
        assert!(s.photo_readable("h2", &areas).unwrap());
        assert!(!s.photo_readable("h1", &["410325".to_owned()]).unwrap());
        assert!(s.photo_owned("h1", "li").unwrap());
        let v: u32 = s
            .reader()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }
}
