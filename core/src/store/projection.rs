//! Projections: the query tables, rewritten from a record's document in the
//! same SQLite transaction as every write to it. A projection is a pure
//! function of the document, so any two replicas holding the same changes
//! hold the same rows.

use super::{Result, StoreError};
use crate::doc::{self, RecordKind};
use crate::model::workflow::{fold_finding, fold_inspection};
use automerge::Automerge;
use rusqlite::{Transaction, params};

/// Removes the projection row of document `id` (a record whose creation
/// the server refused).
pub(crate) fn remove(tx: &Transaction<'_>, id: &str, kind: RecordKind) -> Result<()> {
    let table = match kind {
        RecordKind::Site => "sites",
        RecordKind::Inspection => "inspections",
        RecordKind::Finding => "findings",
    };
    tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
    Ok(())
}

/// Rewrites the projection row of document `id`.
pub(crate) fn refresh(
    tx: &Transaction<'_>,
    id: &str,
    kind: RecordKind,
    doc: &Automerge,
) -> Result<()> {
    let malformed = |source| StoreError::MalformedDocument {
        id: id.into(),
        source,
    };
    match kind {
        RecordKind::Site => {
            let s = doc::site::read(doc).map_err(malformed)?;
            tx.prepare_cached(
                "INSERT INTO sites(id, kind, name, village_code, lat, lon, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                   village_code = excluded.village_code, lat = excluded.lat, lon = excluded.lon,
                   source = excluded.source",
            )?
            .execute(params![
                id,
                s.kind.key(),
                s.name,
                s.village_code,
                s.location.map(|p| p.lat),
                s.location.map(|p| p.lon),
                s.source.key()
            ])?;
        }
        RecordKind::Inspection => {
            // The head suffices: the projection holds counts, not answers.
            let i = doc::inspection::read_head(doc).map_err(malformed)?;
            let st = fold_inspection(&i.events);
            tx.prepare_cached("INSERT INTO inspections(id, site_id, site_kind, village_code, status, revision, inspector,
                   started_at, submitted_at, answered, photos, conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(id) DO UPDATE SET site_id = excluded.site_id, site_kind = excluded.site_kind,
                   village_code = excluded.village_code, status = excluded.status, revision = excluded.revision,
                   inspector = excluded.inspector, started_at = excluded.started_at,
                   submitted_at = excluded.submitted_at, answered = excluded.answered, photos = excluded.photos,
                   conflicts = excluded.conflicts")?.execute(params![
                    id,
                    i.site_id,
                    i.site_kind.key(),
                    i.village_code,
                    st.status.key(),
                    st.revision,
                    i.inspector,
                    i.started_at,
                    st.submitted_at,
                    i.answered as i64,
                    i.photos as i64,
                    i.conflicts as i64
                ],
            )?;
        }
        RecordKind::Finding => {
            let f = doc::finding::read(doc).map_err(malformed)?;
            let st = fold_finding(&f.events);
            tx.prepare_cached("INSERT INTO findings(id, inspection_id, site_id, site_kind, village_code, title, status,
                   responsible, deadline, escalated, raised_at, closed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(id) DO UPDATE SET inspection_id = excluded.inspection_id, site_id = excluded.site_id,
                   site_kind = excluded.site_kind, village_code = excluded.village_code, title = excluded.title,
                   status = excluded.status, responsible = excluded.responsible, deadline = excluded.deadline,
                   escalated = excluded.escalated, raised_at = excluded.raised_at, closed_at = excluded.closed_at")?.execute(params![
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
                ],
            )?;
        }
    }
    Ok(())
}
