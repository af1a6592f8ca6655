//! How the SQLite backend keeps records: documents as a snapshot plus the
//! log rows after it, projections rewritten in the transaction that
//! changes a record, and the reads the ingest checks make.

use super::{Result, StorageError};
use crate::ingest::{Accepted, DocWrite, Loaded, Source};
use automerge::{Automerge, Change};
use fieldbook_core::doc::{Record, RecordKind};
use fieldbook_core::model::EventKind;
use fieldbook_core::model::area::prefix_upper_bound;
use fieldbook_core::model::workflow::{fold_finding, fold_inspection};
use fieldbook_core::policy::{SiteFacts, WHOLE_DEPLOYMENT};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn corrupt(id: &str, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        id: id.into(),
        reason: reason.to_string(),
    }
}

/// Loads a record from its snapshot and the log rows after it.
pub(super) fn load_doc(tx: &Connection, id: &str) -> Result<Option<Loaded>> {
    let row: Option<(String, Vec<u8>, i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT kind, snapshot, snapshot_seq, last_seq, chunk_bytes, ops FROM documents WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    let Some((kind, snapshot, snap_seq, last_seq, chunk_bytes, ops)) = row else {
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
        ops,
    }))
}

/// A save of a whole record. A snapshot with no log rows after it is the
/// whole record already: it is sent as stored, not decoded and re-encoded.
pub(super) fn whole_save(conn: &Connection, id: &str) -> Result<Vec<u8>> {
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

/// Removes the projection rows of one record (quarantine).
pub(super) fn remove_projection(tx: &Connection, id: &str, kind: &str) -> Result<()> {
    let table = match RecordKind::from_key(kind) {
        Some(RecordKind::Site) => "sites",
        Some(RecordKind::Inspection) => "inspections",
        Some(RecordKind::Finding) => "findings",
        None => return Err(corrupt(id, "unknown kind")),
    };
    tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
    tx.execute("DELETE FROM record_photos WHERE doc_id = ?1", [id])?;
    Ok(())
}

/// Rewrites the projection rows of one record read from `d`.
pub(super) fn refresh(tx: &Connection, id: &str, kind: RecordKind, d: &Automerge) -> Result<()> {
    let record = Record::read(kind, d).map_err(|e| corrupt(id, e))?;
    refresh_record(tx, id, &record)
}

/// Rewrites the projection rows of one record.
pub(super) fn refresh_record(tx: &Connection, id: &str, record: &Record) -> Result<()> {
    match record {
        Record::Site(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sites(id, kind, name, village_code, lat, lon, source, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                    id,
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
                    id,
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
            record_photos(tx, id, i.photos.iter().map(|p| p.hash.as_str()))?;
        }
        Record::Finding(f) => {
            let st = fold_finding(&f.events);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO findings(id, inspection_id, site_id, site_kind, village_code, title, status,
                   responsible, deadline, escalated, raised_at, closed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                    id,
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
            record_photos(tx, id, f.photos.iter().map(|p| p.hash.as_str()))?;
        }
    }
    Ok(())
}

/// Rewrites the photo references of one record.
fn record_photos<'a>(
    tx: &Connection,
    id: &str,
    hashes: impl Iterator<Item = &'a str>,
) -> Result<()> {
    tx.prepare_cached("DELETE FROM record_photos WHERE doc_id = ?1")?
        .execute([id])?;
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO record_photos(hash, doc_id) VALUES (?1, ?2)")?;
    for h in hashes {
        insert.execute(params![h, id])?;
    }
    Ok(())
}

/// Whether every record `read` names is still at the version read.
pub(super) fn unchanged(tx: &Connection, read: &[(String, Option<i64>)]) -> Result<bool> {
    let mut st = tx.prepare_cached("SELECT last_seq FROM documents WHERE id = ?1")?;
    for (id, seen) in read {
        let now: Option<i64> = st.query_row([id], |r| r.get(0)).optional()?;
        if now != *seen {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes an accepted change: audit lines for review and finding steps,
/// log rows, the `documents` row and the projections.
pub(super) fn store(
    tx: &Connection,
    a: &Accepted<'_>,
    user: &str,
    device: &str,
    now: i64,
) -> Result<()> {
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
            tx.prepare_cached("UPDATE documents SET chunk_bytes = chunk_bytes + ?2, last_seq = ?3, village_code = ?4, ops = ops + ?5 WHERE id = ?1")?
                .execute(params![id, bytes, last, village, a.ops])?;
            if let Some(snapshot) = compact {
                tx.prepare_cached("UPDATE documents SET snapshot = ?2, snapshot_seq = last_seq, chunk_bytes = 0 WHERE id = ?1")?
                    .execute(params![id, snapshot])?;
            }
        }
        DocWrite::Insert { snapshot } => {
            tx.prepare_cached(
                "INSERT INTO documents(id, kind, village_code, snapshot, snapshot_seq, chunk_bytes, first_seq, last_seq, creator_device, ops)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?5, ?7, ?8)",
            )?
            .execute(params![id, a.kind.key(), village, snapshot.as_ref(), last, first, device, a.ops])?;
        }
    }
    let mut attached = tx.prepare_cached(
        "INSERT OR IGNORE INTO photo_refs(hash, doc_id, user) VALUES (?1, ?2, ?3)",
    )?;
    for h in &a.new_photos {
        attached.execute(params![h, id, user])?;
    }
    refresh_record(tx, id, &a.record)
}

/// `(col >= ?a AND col < ?b) OR …` for the session's areas.
pub(super) fn area_clause(
    col: &str,
    areas: &[String],
    first_param: usize,
) -> (String, Vec<String>) {
    if areas.is_empty() {
        return ("0".into(), Vec::new());
    }
    if areas.iter().any(|a| a == WHOLE_DEPLOYMENT) {
        return ("1".into(), Vec::new());
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

/// The ingest checks' reads, on one connection inside the caller's
/// transaction.
pub(super) struct SqlSource<'c>(pub &'c Connection);

impl Source for SqlSource<'_> {
    fn load(&self, id: &str) -> Result<Option<Loaded>> {
        load_doc(self.0, id)
    }

    fn site(&self, id: &str) -> Result<Option<SiteFacts>> {
        let row: Option<(String, String)> = self
            .0
            .prepare_cached("SELECT kind, village_code FROM sites WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(kind, village_code)| {
            Some(SiteFacts {
                kind: fieldbook_core::model::SiteKind::from_key(&kind)?,
                village_code,
            })
        }))
    }

    fn inspection_site(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .prepare_cached("SELECT site_id FROM inspections WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn quarantined(&self, id: &str) -> Result<bool> {
        Ok(self
            .0
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM quarantine WHERE doc_id = ?1)")?
            .query_row([id], |r| r.get(0))?)
    }
}
