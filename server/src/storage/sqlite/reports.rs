//! [`Reports`] on SQLite: one query per scan on a reader connection, so
//! exports run beside sync without taking the writer.

use super::super::Result;
use super::super::reports::{
    ApprovalRef, FindingRow, InspectionRow, Reports, Shard, SiteFactsRef, SiteRow,
};
use super::SqliteStorage;
use fieldbook_core::model::area::prefix_upper_bound;

/// The rowids of part `shard` of `table`: equal slices of its rowid span,
/// so each part is a contiguous stretch of the file.
fn rowid_range(conn: &rusqlite::Connection, table: &str, shard: Shard) -> Result<(i64, i64)> {
    let count = i64::from(shard.count.max(1));
    let index = i64::from(shard.index).min(count - 1);
    let (min, max): (Option<i64>, Option<i64>) = conn.query_row(
        &format!("SELECT min(rowid), max(rowid) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok((0, 0));
    };
    let span = (max - min) / count + 1;
    let lo = min + span * index;
    let hi = if index == count - 1 {
        max + 1
    } else {
        lo + span
    };
    Ok((lo, hi))
}

/// Column `i` as text borrowed from the row, without a copy.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    text_or_null(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(
        i,
        "NULL".into(),
        rusqlite::types::Type::Text,
    ))
}

fn text_or_null<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

impl Reports for SqliteStorage {
    fn scan_sites(
        &self,
        area: &str,
        with_photos: bool,
        f: &mut dyn FnMut(SiteRow) -> Result<()>,
    ) -> Result<()> {
        let conn = self.report_reader();
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
        let conn = self.report_reader();
        let mut stmt = conn.prepare(
            "SELECT id, site_id, site_kind, village_code, title, status, deadline,
                    raised_at, closed_at, responsible, escalated
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
                responsible: r.get(9)?,
                escalated: r.get::<_, i64>(10)? != 0,
            })?;
        }
        Ok(())
    }

    fn scan_approvals(
        &self,
        area: &str,
        from: Option<i64>,
        until: i64,
        shard: Shard,
        f: &mut dyn FnMut(&ApprovalRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.report_reader();
        let (lo, hi) = rowid_range(&conn, "inspections", shard)?;
        // By the site's current village, not the inspection's own: a site
        // the registry moved takes its inspections with it. The whole city
        // needs no area test at all.
        let in_area = if area.is_empty() {
            "AND ?3 = ?3 AND ?4 = ?4"
        } else {
            "AND site_id IN (SELECT id FROM sites WHERE village_code >= ?3 AND village_code < ?4)"
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT site_id, site_kind, template_version, reviewed_at, answers
             FROM inspections
             WHERE status = 'approved' AND reviewed_at >= ?1 AND reviewed_at < ?2
               AND rowid >= ?5 AND rowid < ?6 {in_area}"
        ))?;
        let upper = prefix_upper_bound(area);
        let from = from.unwrap_or(i64::MIN);
        let mut rows = stmt.query(rusqlite::params![from, until, area, upper, lo, hi])?;
        while let Some(r) = rows.next()? {
            f(&ApprovalRef {
                site_id: text(r, 0)?,
                site_kind: text(r, 1)?,
                template_version: r.get(2)?,
                reviewed_at: r.get(3)?,
                answers: text(r, 4)?,
            })?;
        }
        Ok(())
    }

    fn scan_site_facts(
        &self,
        area: &str,
        attribute_kinds: &[&str],
        shard: Shard,
        f: &mut dyn FnMut(&SiteFactsRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.report_reader();
        let (lo, hi) = rowid_range(&conn, "sites", shard)?;
        // The whole city reads the table in storage order; an area goes
        // through the village index.
        use rusqlite::types::Value;
        let mut bind: Vec<Value> = vec![Value::Integer(lo), Value::Integer(hi)];
        let filter = if area.is_empty() {
            "rowid >= ?1 AND rowid < ?2"
        } else {
            bind.extend([
                Value::Text(area.to_owned()),
                Value::Text(prefix_upper_bound(area)),
            ]);
            "rowid >= ?1 AND rowid < ?2 AND village_code >= ?3 AND village_code < ?4"
        };
        let kinds = if attribute_kinds.is_empty() {
            "0".to_owned()
        } else {
            let first = bind.len() + 1;
            bind.extend(attribute_kinds.iter().map(|k| Value::Text((*k).to_owned())));
            let marks: Vec<String> = (first..first + attribute_kinds.len())
                .map(|n| format!("?{n}"))
                .collect();
            format!("kind IN ({})", marks.join(", "))
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT id, kind, village_code, CASE WHEN {kinds} THEN attributes END
             FROM sites WHERE {filter}"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(bind))?;
        while let Some(r) = rows.next()? {
            f(&SiteFactsRef {
                id: text(r, 0)?,
                kind: text(r, 1)?,
                village_code: text(r, 2)?,
                attributes: text_or_null(r, 3)?,
            })?;
        }
        Ok(())
    }
}
