//! Recovering a store whose database file is damaged.
//!
//! WAL with `synchronous=FULL` does not tear pages on a crash, but a phone's
//! flash can still fail, a backup tool can restore half a file, and a user
//! can copy a store by hand. A damaged file must give a clear error
//! ([`StoreError::CorruptDatabase`]) and a way out that keeps every record
//! that can still be read, above all the changes not yet sent:
//!
//! 1. the damaged file (with its WAL) is moved aside, never deleted, so
//!    nothing is lost for good whatever happens next;
//! 2. every document and outbox row that still reads is salvaged, one row
//!    at a time, so a bad page costs the rows on it, not the whole file;
//! 3. a fresh store is created with the same device identity (the server
//!    knows the device by its Automerge actor), the documents are put back
//!    as they were, the unsent changes go back into the outbox, and every
//!    photo file in the folder is queued for upload again (the server skips
//!    those it has);
//! 4. the sync cursor starts over, so the next sync brings back from the
//!    server whatever could not be read here.

use super::{DB_FILE, IncomingRecord, KV_ACTOR, PHOTO_DIR, Result, Store, StoreError};
use crate::doc::RecordKind;
use crate::store::Identity;
use automerge::{Automerge, Change};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// What a recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged database now is.
    pub moved_to: PathBuf,
    /// Records read back and stored again.
    pub records: u64,
    /// Unsent changes put back into the outbox.
    pub unsent_changes: u64,
    /// Records or changes that could not be read (the next sync restores
    /// those the server has).
    pub unreadable: u64,
    /// Photo files queued for upload again.
    pub photos: u64,
}

/// Rows read from the damaged file.
#[derive(Default)]
struct Salvage {
    actor: Option<String>,
    docs: Vec<IncomingRecord>,
    outbox: Vec<(String, String, String, Vec<u8>, i64)>,
    unreadable: u64,
}

/// Opens the damaged file for reading. When its schema does not read (a
/// file cut short still claims its old page count, and SQLite then refuses
/// it whole), a copy with the header made to match the pages present is
/// read instead, so the pages that survived can still be reached.
fn open_damaged(path: &Path) -> Option<(Connection, Option<PathBuf>)> {
    let readable = |c: &Connection| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok()
    };
    if let Ok(c) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        && readable(&c)
    {
        return Some((c, None));
    }
    let mut bytes = std::fs::read(path).ok()?;
    if bytes.len() < 100 || !bytes.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let page = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    if page < 512 {
        return None;
    }
    let pages = bytes.len() / page;
    bytes.truncate(pages * page);
    bytes[28..32].copy_from_slice(&u32::try_from(pages).ok()?.to_be_bytes());
    // No WAL beside the copy: it is read as the main file alone.
    bytes[18] = 1;
    bytes[19] = 1;
    let copy = PathBuf::from(format!("{}.salvage", path.display()));
    std::fs::write(&copy, &bytes).ok()?;
    let c = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    readable(&c).then_some((c, Some(copy)))
}

fn salvage(path: &Path) -> Salvage {
    let mut out = Salvage::default();
    let Some((conn, copy)) = open_damaged(path) else {
        return out;
    };
    salvage_rows(&conn, &mut out);
    drop(conn);
    if let Some(copy) = copy {
        let _ = std::fs::remove_file(copy);
    }
    out
}

fn salvage_rows(conn: &Connection, out: &mut Salvage) {
    out.actor = conn
        .query_row("SELECT value FROM kv WHERE key = ?1", [KV_ACTOR], |r| {
            r.get(0)
        })
        .optional()
        .ok()
        .flatten();
    // Row by row through the table's rowids, each looked up from the root:
    // a damaged page fails the rows under it and no others, where a scan
    // would stop at the first one.
    let mut ids: Vec<(String, String)> = Vec::new();
    for rowid in rowids(conn, "documents") {
        match conn.query_row(
            "SELECT id, kind FROM documents WHERE rowid = ?1",
            [rowid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ) {
            Ok(row) => ids.push(row),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(_) => out.unreadable += 1,
        }
    }
    for (id, kind) in ids {
        match read_doc(conn, &id, &kind) {
            Some(rec) => out.docs.push(rec),
            None => out.unreadable += 1,
        }
    }
    let seqs = rowids(conn, "outbox");
    for seq in seqs {
        let row = conn.query_row(
            "SELECT hash, doc_id, kind, bytes, created_at FROM outbox WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        );
        match row {
            Ok(row) => out.outbox.push(row),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(_) => out.unreadable += 1,
        }
    }
}

/// Absent rowids looked up in a row before the probing past a damaged page
/// gives up: a damaged page can hide a long stretch, but a garbage "largest
/// rowid" must not send recovery through billions of lookups.
const PROBE_MISSES_MAX: u32 = 100_000;

/// The rowids of `table` that can be reached. A scan finds every row up to
/// the first damaged page; past it each rowid up to the largest (or, when
/// that does not read, until a long run of absent ones) is looked up from
/// the root, so rows behind the damage are found too.
fn rowids(conn: &Connection, table: &str) -> Vec<i64> {
    let mut found: Vec<i64> = Vec::new();
    let complete = conn
        .prepare(&format!("SELECT rowid FROM {table} ORDER BY rowid"))
        .and_then(|mut st| {
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                found.push(r.get(0)?);
            }
            Ok(())
        })
        .is_ok();
    if complete {
        return found;
    }
    let known_max: Option<i64> = conn
        .query_row(&format!("SELECT max(rowid) FROM {table}"), [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten();
    let max = known_max.unwrap_or(i64::MAX);
    let mut rowid = found.last().map_or(1, |l| l.saturating_add(1));
    let mut misses = 0;
    while rowid <= max && misses < PROBE_MISSES_MAX {
        match conn.query_row(
            &format!("SELECT 1 FROM {table} WHERE rowid = ?1"),
            [rowid],
            |_| Ok(()),
        ) {
            Ok(()) => {
                found.push(rowid);
                misses = 0;
            }
            Err(rusqlite::Error::QueryReturnedNoRows) => misses += 1,
            // Below a largest rowid that reads, a row on a damaged page:
            // kept, so the caller counts it unreadable. Without one, the
            // lookup may be past the end of a file cut short.
            Err(_) => {
                if known_max.is_some() {
                    found.push(rowid);
                }
                misses += 1;
            }
        }
        rowid = rowid.saturating_add(1);
        if rowid == i64::MAX {
            break;
        }
    }
    found
}

/// One document as it was: its snapshot and the chunks after it, merged.
fn read_doc(conn: &Connection, id: &str, kind: &str) -> Option<IncomingRecord> {
    let kind = RecordKind::from_key(kind)?;
    let snapshot: Vec<u8> = conn
        .query_row("SELECT snapshot FROM documents WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .ok()?;
    let mut doc = Automerge::load(&snapshot).ok()?;
    let mut st = conn
        .prepare("SELECT bytes FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")
        .ok()?;
    let chunks: Vec<Vec<u8>> = st
        .query_map([id], |r| r.get(0))
        .ok()?
        .collect::<rusqlite::Result<_>>()
        .ok()?;
    for c in chunks {
        // A chunk is a change or a whole save; both merge.
        if let Ok(change) = Change::try_from(c.as_slice()) {
            doc.apply_changes([change]).ok()?;
        } else {
            let mut other = Automerge::load(&c).ok()?;
            doc.merge(&mut other).ok()?;
        }
    }
    Some(IncomingRecord {
        doc_id: id.to_owned(),
        kind,
        data: doc.save(),
    })
}

/// Moves `path` (and its WAL and shared-memory files) to `to`.
fn move_aside(path: &Path, to: &Path) -> Result<()> {
    std::fs::rename(path, to)?;
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            std::fs::rename(&from, format!("{}{suffix}", to.display()))?;
        }
    }
    Ok(())
}

impl Store {
    /// Recovers the store in `dir` after [`StoreError::CorruptDatabase`]:
    /// moves the damaged database aside, salvages every record and unsent
    /// change that still reads into a fresh database, queues the photo
    /// files for upload again and returns the opened store. Run a sync
    /// next: it sends the salvaged changes and brings back the rest from
    /// the server.
    pub fn recover(dir: &Path, identity: Identity) -> Result<(Store, Recovery)> {
        Store::recover_keeping(dir, identity, None)
    }

    /// As [`Store::recover`], with the device's actor (hex) as the app
    /// saved it at login, for when the damaged file no longer says it.
    pub fn recover_keeping(
        dir: &Path,
        identity: Identity,
        actor: Option<&str>,
    ) -> Result<(Store, Recovery)> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::BadInput(format!(
                "there is no database at {} to recover",
                path.display()
            )));
        }
        let stamp = uuid::Uuid::now_v7().simple().to_string();
        let aside = dir.join(format!("{DB_FILE}.damaged-{stamp}"));
        move_aside(&path, &aside)?;
        let found = salvage(&aside);

        // A fresh database, keeping the device's identity when it reads.
        if let Some(actor) = found.actor.as_deref().or(actor) {
            let mut conn = Connection::open(&path)?;
            super::migrations::migrate(&mut conn).map_err(StoreError::Migration)?;
            super::kv_set(&conn, KV_ACTOR, actor)?;
        }
        let mut store = Store::open(dir, identity)?;
        let mut report = Recovery {
            moved_to: aside,
            unreadable: found.unreadable,
            ..Recovery::default()
        };
        let applied = store.apply_remote(&found.docs, &[])?;
        report.records = (applied.applied.len() + applied.unchanged.len()) as u64;
        report.unreadable += applied.rejected.len() as u64;
        {
            let tx = store.conn.transaction()?;
            for (hash, doc_id, kind, bytes, at) in &found.outbox {
                report.unsent_changes += tx.execute(
                    "INSERT OR IGNORE INTO outbox(hash, doc_id, kind, bytes, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![hash, doc_id, kind, bytes, at],
                )? as u64;
            }
            let now = (store.clock)();
            if let Ok(entries) = std::fs::read_dir(dir.join(PHOTO_DIR)) {
                for e in entries.filter_map(std::result::Result::ok) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let Some(hash) = name.strip_suffix(".jpg") else {
                        continue;
                    };
                    let bytes = e.metadata().map_or(0, |m| m.len()) as i64;
                    report.photos += tx.execute(
                        "INSERT OR IGNORE INTO photos(hash, path, bytes, created_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![hash, format!("{PHOTO_DIR}/{name}"), bytes, now],
                    )? as u64;
                }
            }
            tx.commit()?;
        }
        Ok((store, report))
    }
}
