//! [`Reports`] on SQLite: one query per scan on a reader connection, so
//! exports run beside sync without taking the writer.

use super::super::Result;
use super::super::reports::{FindingRow, InspectionRow, Reports, SiteRow};
use super::SqliteStorage;
use fieldbook_core::model::area::prefix_upper_bound;

impl Reports for SqliteStorage {
    fn scan_sites(
        &self,
        area: &str,
        with_photos: bool,
        f: &mut dyn FnMut(SiteRow) -> Result<()>,
    ) -> Result<()> {
        let conn = self.reader();
        // One pass over sites joined to their inspections, in site order:
        // the rows of a site are adjacent, so one site is held at a time.
        // Photo hashes come from the same query, never from a second
        // connection taken while this one is held.
        let photos = if with_photos {
            "(SELECT group_concat(p.hash, ' ') FROM record_photos p WHERE p.doc_id = i.id)"
        } else {
            "NULL"
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT s.id, s.kind, s.name, s.village_code, s.lat, s.lon, s.attributes,
                    i.id, i.status, i.revision, i.template_version, i.inspector,
                    i.started_at, i.submitted_at, i.reviewed_at, i.lat, i.lon,
                    i.accuracy_m, i.mock_location, i.photos, i.conflicts, i.answers,
                    {photos}
             FROM sites s LEFT JOIN inspections i ON i.site_id = s.id
             WHERE s.village_code >= ?1 AND s.village_code < ?2
             ORDER BY s.id, i.started_at, i.id"
        ))?;
        let mut rows = stmt.query([area, prefix_upper_bound(area).as_str()])?;
        let mut current: Option<SiteRow> = None;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if current.as_ref().is_none_or(|c| c.id != id) {
                if let Some(done) = current.take() {
                    f(done)?;
                }
                current = Some(SiteRow {
                    id,
                    kind: r.get(1)?,
                    name: r.get(2)?,
                    village_code: r.get(3)?,
                    lat: r.get(4)?,
                    lon: r.get(5)?,
                    attributes: r.get(6)?,
                    inspections: Vec::new(),
                });
            }
            let inspection: Option<String> = r.get(7)?;
            if let (Some(iid), Some(site)) = (inspection, current.as_mut()) {
                site.inspections.push(InspectionRow {
                    id: iid,
                    status: r.get(8)?,
                    revision: r.get(9)?,
                    template_version: r.get(10)?,
                    inspector: r.get(11)?,
                    started_at: r.get(12)?,
                    submitted_at: r.get(13)?,
                    reviewed_at: r.get(14)?,
                    lat: r.get(15)?,
                    lon: r.get(16)?,
                    accuracy_m: r.get(17)?,
                    mock_location: r.get::<_, i64>(18)? != 0,
                    photos: r.get(19)?,
                    conflicts: r.get(20)?,
                    answers: r.get(21)?,
                    photos_hashes: r
                        .get::<_, Option<String>>(22)?
                        .map(|h| h.split(' ').map(str::to_owned).collect())
                        .unwrap_or_default(),
                });
            }
        }
        if let Some(done) = current.take() {
            f(done)?;
        }
        Ok(())
    }

    fn scan_findings(&self, area: &str, f: &mut dyn FnMut(FindingRow) -> Result<()>) -> Result<()> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id, site_id, site_kind, village_code, title, status, deadline,
                    raised_at, closed_at
             FROM findings WHERE village_code >= ?1 AND village_code < ?2
             ORDER BY id",
        )?;
        let mut rows = stmt.query([area, prefix_upper_bound(area).as_str()])?;
        while let Some(r) = rows.next()? {
            f(FindingRow {
                id: r.get(0)?,
                site_id: r.get(1)?,
                site_kind: r.get(2)?,
                village_code: r.get(3)?,
                title: r.get(4)?,
                status: r.get(5)?,
                deadline: r.get(6)?,
                raised_at: r.get(7)?,
                closed_at: r.get(8)?,
            })?;
        }
        Ok(())
    }
}
