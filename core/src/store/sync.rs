//! What the sync client needs from the store: the outbox of unacknowledged
//! local changes, acknowledgement, and applying a page of remote records
//! together with the new cursor in one transaction.

use super::{
    Result, Store, StoreError, append_chunk, ensure_document_row, maybe_compact, projection,
};
use crate::doc::{self, RecordKind};
use automerge::{Automerge, ReadDoc};
use rusqlite::params;

/// A local change waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Position in the outbox; changes go out in this (causal) order.
    pub seq: i64,
    /// Automerge change hash, hex.
    pub hash: String,
    pub doc_id: String,
    pub kind: RecordKind,
    /// The raw Automerge change.
    pub bytes: Vec<u8>,
}

/// A record (or part of one) received from the server: exactly one
/// Automerge change, or one full document save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    pub doc_id: String,
    pub kind: RecordKind,
    pub data: Vec<u8>,
}

/// What applying a page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Records that changed.
    pub applied: Vec<String>,
    /// Records whose data this store already had.
    pub unchanged: Vec<String>,
    /// Records refused, with the reason; nothing of them was stored.
    pub rejected: Vec<(String, String)>,
}

/// What is waiting to go up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingCounts {
    pub changes: u64,
    pub records: u64,
    pub outbox_bytes: u64,
    pub photos: u64,
}

impl Store {
    /// The oldest unacknowledged changes, at most `max_changes` and about
    /// `max_bytes` (always at least one change if any is pending, so one
    /// large change cannot stall the queue).
    pub fn outbox_batch(&self, max_changes: usize, max_bytes: usize) -> Result<Vec<OutboxEntry>> {
        let mut st = self.conn().prepare_cached(
            "SELECT seq, hash, doc_id, kind, bytes FROM outbox ORDER BY seq LIMIT ?1",
        )?;
        let rows = st.query_map([max_changes as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        let mut total = 0usize;
        for row in rows {
            let (seq, hash, doc_id, kind, bytes) = row?;
            if !out.is_empty() && total + bytes.len() > max_bytes {
                break;
            }
            total += bytes.len();
            let kind = RecordKind::from_key(&kind).ok_or_else(|| StoreError::CorruptDocument {
                id: doc_id.clone(),
                reason: format!("outbox kind {kind}"),
            })?;
            out.push(OutboxEntry {
                seq,
                hash,
                doc_id,
                kind,
                bytes,
            });
        }
        Ok(out)
    }

    /// Removes acknowledged changes from the outbox. Unknown hashes are
    /// ignored (a repeated acknowledgement changes nothing).
    pub fn acknowledge(&mut self, hashes: &[String]) -> Result<usize> {
        let tx = self.conn_mut().transaction()?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached("DELETE FROM outbox WHERE hash = ?1")?;
            for h in hashes {
                n += st.execute([h])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Counts of what waits for upload.
    pub fn pending_counts(&self) -> Result<PendingCounts> {
        let (changes, records, outbox_bytes): (i64, i64, i64) = self.conn().query_row(
            "SELECT count(*), count(DISTINCT doc_id), coalesce(sum(length(bytes)), 0) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let photos: i64 = self.conn().query_row(
            "SELECT count(*) FROM photos WHERE upload_state <> 'done'",
            [],
            |r| r.get(0),
        )?;
        Ok(PendingCounts {
            changes: changes as u64,
            records: records as u64,
            outbox_bytes: outbox_bytes as u64,
            photos: photos as u64,
        })
    }

    /// The full save of one record (for sending a snapshot, or tests).
    pub fn export_document(&mut self, id: &str) -> Result<(RecordKind, Vec<u8>)> {
        let (kind, doc) = self.take_doc(id)?.ok_or_else(|| StoreError::NotFound {
            kind: "record",
            id: id.into(),
        })?;
        let bytes = doc.save();
        self.put_back(id, kind, doc);
        Ok((kind, bytes))
    }

    /// Applies a page of remote records and writes `settings` (the new sync
    /// cursor) in one SQLite transaction. A record whose bytes do not decode,
    /// are of another kind, or do not read as a valid record is rejected
    /// alone and nothing of it is stored; the rest of the page lands.
    pub fn apply_remote(
        &mut self,
        records: &[IncomingRecord],
        settings: &[(&str, &str)],
    ) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let mut touched: Vec<Touched<'_>> = Vec::new();
        for rec in records {
            // A record may appear several times in a page; later parts merge
            // into the copy already held, and every new part is kept.
            let held = touched.iter().position(|t| t.id == rec.doc_id);
            let mut doc = match held {
                Some(i) => Some((touched[i].kind, std::mem::take(&mut touched[i].doc))),
                None => self.take_doc(&rec.doc_id)?,
            };
            match merge_one(&mut doc, rec, self.actor.clone()) {
                Ok(changed) => {
                    let Some((kind, d)) = doc else { continue };
                    match held {
                        Some(i) => {
                            touched[i].doc = d;
                            if changed {
                                touched[i].chunks.push(&rec.data);
                            }
                        }
                        None if changed => touched.push(Touched {
                            id: rec.doc_id.clone(),
                            kind,
                            doc: d,
                            chunks: vec![&rec.data],
                        }),
                        None => self.put_back(&rec.doc_id, kind, d),
                    }
                    if changed {
                        report.applied.push(rec.doc_id.clone());
                    } else {
                        report.unchanged.push(rec.doc_id.clone());
                    }
                }
                Err(reason) => {
                    // The copy may hold part of the bad data: forget it, and
                    // everything of this record in the page, so nothing of it
                    // is stored and the next read reloads what SQLite has.
                    if let Some(i) = held {
                        touched.remove(i);
                    }
                    self.forget_cached(&rec.doc_id);
                    report.applied.retain(|a| a != &rec.doc_id);
                    report.rejected.push((rec.doc_id.clone(), reason));
                }
            }
        }
        let now = self.now();
        let res = (|| -> Result<()> {
            let tx = self.conn_mut().transaction()?;
            for t in &touched {
                if !ensure_document_row(&tx, &t.id, t.kind, &t.doc, now)? {
                    for chunk in &t.chunks {
                        append_chunk(&tx, &t.id, chunk, now)?;
                    }
                    maybe_compact(&tx, &t.id, &t.doc)?;
                }
                projection::refresh(&tx, &t.id, t.kind, &t.doc)?;
            }
            for (k, v) in settings {
                tx.execute(
                    "INSERT INTO kv(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![k, v],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        match res {
            Ok(()) => {
                for t in touched {
                    self.put_back(&t.id, t.kind, t.doc);
                }
                Ok(report)
            }
            Err(e) => {
                for t in &touched {
                    self.forget_cached(&t.id);
                }
                Err(e)
            }
        }
    }
}

/// A record changed by the page being applied.
struct Touched<'a> {
    id: String,
    kind: RecordKind,
    doc: Automerge,
    /// The new parts received, appended as chunks if the record existed.
    chunks: Vec<&'a [u8]>,
}

/// Merges one incoming record into `doc` (creating it if `None`). Returns
/// whether anything new arrived; an error is the reason to reject it.
fn merge_one(
    doc: &mut Option<(RecordKind, Automerge)>,
    rec: &IncomingRecord,
    actor: automerge::ActorId,
) -> Result<bool, String> {
    // What loading would cost is known before anything is loaded.
    doc::budget::check(&rec.data, &doc::budget::Budget::RECORD).map_err(|e| e.to_string())?;
    match doc {
        None => {
            let mut d = Automerge::new().with_actor(actor);
            super::merge_chunk(&mut d, &rec.data)?;
            check(&d, rec.kind, &rec.doc_id)?;
            *doc = Some((rec.kind, d));
            Ok(true)
        }
        Some((kind, d)) => {
            if *kind != rec.kind {
                return Err(format!(
                    "record is of kind {}; the update says {}",
                    kind.key(),
                    rec.kind.key()
                ));
            }
            // One change is new if the history lacks it (it may wait in
            // Automerge's queue for a missing dependency, and must still be
            // stored); a whole save is new if it moved the heads.
            let single = super::untrusted(|| automerge::Change::try_from(rec.data.as_slice()))
                .ok()
                .and_then(Result::ok);
            let already = single
                .as_ref()
                .is_some_and(|c| d.get_change_by_hash(&c.hash()).is_some());
            let before = d.get_heads();
            super::merge_chunk(d, &rec.data)?;
            let changed = if single.is_some() {
                !already
            } else {
                d.get_heads() != before
            };
            if changed {
                check(d, *kind, &rec.doc_id)?;
            }
            Ok(changed)
        }
    }
}

/// A record from elsewhere is kept only if it is, under the id it came
/// with, a record of its kind and nothing outside the layout.
fn check(d: &Automerge, kind: RecordKind, id: &str) -> Result<(), String> {
    doc::layout::check(d, kind, id)
        .and_then(|()| doc::Record::read(kind, d).map(drop))
        .map_err(|e| format!("not a valid {}: {e}", kind.key()))
}

/// One item to send, with the outbox entries it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingItem {
    pub item: crate::sync::wire::Item,
    /// Outbox hashes cleared when the server acknowledges the item.
    pub covers: Vec<String>,
}

/// A local change the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRejection {
    pub doc_id: String,
    pub hash: String,
    pub code: String,
    pub message: String,
    pub at: i64,
}

impl Store {
    /// The next items to push: the oldest outbox entries, at most
    /// `max_items` items and about `max_bytes`. A record the server has
    /// never acknowledged (its creation change is still in the outbox, or
    /// the server asked for it whole) goes as one document save covering all
    /// its queued changes — smaller than its changes one by one, and
    /// complete. Other records go change by change, in outbox order.
    pub fn outgoing_items(
        &mut self,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutgoingItem>> {
        use crate::sync::wire::{Item, ItemKind, doc_id_bytes};
        let entries = self.outbox_batch(max_items.max(1) * 4, usize::MAX)?;
        let whole: std::collections::HashSet<String> = {
            let mut st = self
                .conn()
                .prepare_cached("SELECT doc_id FROM sync_send_whole")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let one_by_one = self.sent_change_by_change()?;
        let mut out: Vec<OutgoingItem> = Vec::new();
        let mut sent_whole = std::collections::HashSet::new();
        let mut bytes = 0usize;
        for e in entries {
            if out.len() >= max_items || (!out.is_empty() && bytes >= max_bytes) {
                break;
            }
            if sent_whole.contains(&e.doc_id) {
                continue;
            }
            let doc_id = doc_id_bytes(&e.doc_id).ok_or_else(|| {
                StoreError::BadInput(format!("record id {} is not a UUID", e.doc_id))
            })?;
            let creation =
                automerge::Change::try_from(e.bytes.as_slice()).is_ok_and(|c| c.deps().is_empty());
            if (creation || whole.contains(&e.doc_id)) && !one_by_one.contains(&e.doc_id) {
                let (_, data) = self.export_document(&e.doc_id)?;
                let mut st = self
                    .conn()
                    .prepare_cached("SELECT hash FROM outbox WHERE doc_id = ?1 ORDER BY seq")?;
                let covers = st
                    .query_map([&e.doc_id], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                bytes += data.len();
                sent_whole.insert(e.doc_id.clone());
                out.push(OutgoingItem {
                    item: Item {
                        kind: ItemKind::Document,
                        record: e.kind,
                        doc_id,
                        data,
                    },
                    covers,
                });
            } else {
                bytes += e.bytes.len();
                out.push(OutgoingItem {
                    item: Item {
                        kind: ItemKind::Change,
                        record: e.kind,
                        doc_id,
                        data: e.bytes,
                    },
                    covers: vec![e.hash],
                });
            }
        }
        Ok(out)
    }

    /// Moves refused changes out of the outbox into the rejection list.
    pub fn record_rejection(
        &mut self,
        doc_id: &str,
        hashes: &[String],
        code: &str,
        message: &str,
    ) -> Result<()> {
        let now = self.now();
        let tx = self.conn_mut().transaction()?;
        for h in hashes {
            tx.execute(
                "INSERT OR REPLACE INTO sync_rejections(hash, doc_id, code, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![h, doc_id, code, message, now],
            )?;
            tx.execute("DELETE FROM outbox WHERE hash = ?1", [h])?;
        }
        tx.execute("DELETE FROM sync_send_whole WHERE doc_id = ?1", [doc_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Returns a record to what the server holds after the server refused
    /// some of its local changes: the refused changes, and every local
    /// change built on them, leave the document, the outbox and the
    /// projections; each is listed among the sync rejections with why. A
    /// record whose creation was refused is removed.
    ///
    /// Called only with changes the server refused one by one: it refuses
    /// a change item only when it does not have the change, so the changes
    /// dropped are ones it never stored. (A record refused whole is first
    /// sent change by change, `send_changes`, since the server may hold
    /// some of its changes already.)
    pub fn drop_refused(&mut self, doc_id: &str, refused: &[String]) -> Result<Vec<String>> {
        use automerge::ChangeHash;
        use std::collections::HashSet;
        let Some((kind, doc)) = self.take_doc(doc_id)? else {
            return Ok(Vec::new());
        };
        let mut dropped: HashSet<ChangeHash> =
            refused.iter().filter_map(|h| h.parse().ok()).collect();
        let all = doc.get_changes(&[]);
        // Descendants of a dropped change are dropped; repeat until no
        // change is added, whatever order the history lists them in.
        loop {
            let before = dropped.len();
            for c in &all {
                if !dropped.contains(&c.hash()) && c.deps().iter().any(|d| dropped.contains(d)) {
                    dropped.insert(c.hash());
                }
            }
            if dropped.len() == before {
                break;
            }
        }
        let keep: Vec<automerge::Change> = all
            .iter()
            .filter(|c| !dropped.contains(&c.hash()))
            .map(|c| (*c).clone())
            .collect();
        let gone: Vec<String> = all
            .iter()
            .filter(|c| dropped.contains(&c.hash()))
            .map(|c| c.hash().to_string())
            .collect();
        if gone.is_empty() {
            self.put_back(doc_id, kind, doc);
            return Ok(gone);
        }
        drop(all);
        let mut rebuilt = Automerge::new().with_actor(self.actor.clone());
        rebuilt
            .apply_changes(keep)
            .map_err(|e| StoreError::CorruptDocument {
                id: doc_id.into(),
                reason: e.to_string(),
            })?;
        let now = self.now();
        let tx = self.conn_mut().transaction()?;
        for h in &gone {
            tx.execute(
                "INSERT OR IGNORE INTO sync_rejections(hash, doc_id, code, message, at)
                 VALUES (?1, ?2, 'forbidden', 'built on a change the server refused', ?3)",
                params![h, doc_id, now],
            )?;
            tx.execute("DELETE FROM outbox WHERE hash = ?1", [h])?;
        }
        let empty = rebuilt.get_heads().is_empty();
        if empty {
            tx.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", [doc_id])?;
            tx.execute("DELETE FROM documents WHERE id = ?1", [doc_id])?;
            projection::remove(&tx, doc_id, kind)?;
        } else {
            super::compact(&tx, doc_id, &rebuilt)?;
            projection::refresh(&tx, doc_id, kind, &rebuilt)?;
        }
        tx.execute("DELETE FROM sync_send_whole WHERE doc_id = ?1", [doc_id])?;
        tx.execute(
            "DELETE FROM sync_send_changes WHERE doc_id = ?1 AND doc_id NOT IN (SELECT doc_id FROM outbox)",
            [doc_id],
        )?;
        tx.commit()?;
        if !empty {
            self.put_back(doc_id, kind, rebuilt);
        }
        Ok(gone)
    }

    /// Records sent change by change (`send_changes`).
    pub fn sent_change_by_change(&self) -> Result<std::collections::HashSet<String>> {
        let mut st = self
            .conn()
            .prepare_cached("SELECT doc_id FROM sync_send_changes")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks a record to be sent change by change until its outbox is
    /// empty: the server refused it whole, and each change must get a
    /// verdict of its own.
    pub fn send_changes(&mut self, doc_id: &str) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO sync_send_changes(doc_id) VALUES (?1)",
            [doc_id],
        )?;
        tx.execute("DELETE FROM sync_send_whole WHERE doc_id = ?1", [doc_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a record to be sent whole next time (the server lacks its history).
    pub fn send_whole(&mut self, doc_id: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO sync_send_whole(doc_id) VALUES (?1)",
            [doc_id],
        )?;
        Ok(())
    }

    /// Acknowledges outbox entries and forgets "send whole" marks of records
    /// that no longer have queued changes.
    pub fn acknowledge_items(&mut self, hashes: &[String]) -> Result<usize> {
        let n = self.acknowledge(hashes)?;
        self.conn().execute_batch(
            "DELETE FROM sync_send_whole WHERE doc_id NOT IN (SELECT doc_id FROM outbox);
             DELETE FROM sync_send_changes WHERE doc_id NOT IN (SELECT doc_id FROM outbox);",
        )?;
        Ok(n)
    }

    /// Changes the server refused, newest first.
    pub fn sync_rejections(&self) -> Result<Vec<SyncRejection>> {
        let mut st = self.conn().prepare_cached(
            "SELECT doc_id, hash, code, message, at FROM sync_rejections ORDER BY at DESC, hash",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SyncRejection {
                doc_id: r.get(0)?,
                hash: r.get(1)?,
                code: r.get(2)?,
                message: r.get(3)?,
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

/// A photo waiting for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhoto {
    pub hash: String,
    pub bytes: u64,
    pub state: String,
    pub offset: u64,
}

impl Store {
    /// Photos not yet fully on the server, oldest first.
    pub fn pending_photos(&self) -> Result<Vec<PendingPhoto>> {
        let mut st = self.conn().prepare_cached(
            "SELECT hash, bytes, upload_state, upload_offset FROM photos WHERE upload_state <> 'done' ORDER BY created_at, hash",
        )?;
        let rows = st.query_map([], |r| {
            Ok(PendingPhoto {
                hash: r.get(0)?,
                bytes: r.get::<_, i64>(1)? as u64,
                state: r.get(2)?,
                offset: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Records upload progress of a photo (`pending`, `uploading`, `done`).
    pub fn set_photo_upload(&mut self, hash: &str, state: &str, offset: u64) -> Result<()> {
        self.conn().execute(
            "UPDATE photos SET upload_state = ?2, upload_offset = ?3 WHERE hash = ?1",
            params![hash, state, offset as i64],
        )?;
        Ok(())
    }
}
