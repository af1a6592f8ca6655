//! [`Review`] on SQLite: the queue from the projections on a reader
//! connection, records loaded as the pull loads them.

use super::super::Result;
use super::super::review::{
    FindingListRow, FindingsPage, FindingsQuery, QueuePage, QueueQuery, QueueRow, Review,
};
use super::SqliteStorage;
use super::records::{area_clause, whole_save};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::area::prefix_upper_bound;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params_from_iter};

/// Statuses the queue shows when none is asked for: drafts are the
/// inspector's own business until submitted.
const REVIEWED_STATUSES: [&str; 3] = ["submitted", "returned", "approved"];

/// Above this many matching inspections the queue walks the submission-time
/// index and filters as it goes (the first page is found at once); below
/// it, it reads the matching rows by area and sorts them (a small township
/// in a large province is found without walking everyone's queue).
const WALK_ABOVE: i64 = 2_000;

/// The WHERE clause of `q` (without status and paging) and its parameters.
/// `walk`: keep the area out of index choice (a unary `+`), so SQLite
/// walks the queue in order.
fn filters(q: &QueueQuery, walk: bool) -> (Vec<String>, Vec<SqlValue>) {
    let mut clauses = vec!["i.submitted_at IS NOT NULL".to_owned()];
    let mut params: Vec<SqlValue> = Vec::new();
    let col = if walk {
        "+i.village_code"
    } else {
        "i.village_code"
    };
    let (areas, area_params) = area_clause(col, &q.areas, 1);
    clauses.push(areas);
    params.extend(area_params.into_iter().map(SqlValue::Text));
    let mut push = |clause: String, v: SqlValue, params: &mut Vec<SqlValue>| {
        params.push(v);
        clauses.push(clause.replace('?', &format!("?{}", params.len())));
    };
    if let Some(a) = &q.area {
        push(
            "i.village_code >= ?".into(),
            SqlValue::Text(a.clone()),
            &mut params,
        );
        push(
            "i.village_code < ?".into(),
            SqlValue::Text(prefix_upper_bound(a)),
            &mut params,
        );
    }
    if let Some(k) = &q.site_kind {
        push(
            "i.site_kind = ?".into(),
            SqlValue::Text(k.clone()),
            &mut params,
        );
    }
    if let Some(u) = &q.inspector {
        push(
            "i.inspector = ?".into(),
            SqlValue::Text(u.clone()),
            &mut params,
        );
    }
    if let Some(t) = q.from {
        push(
            "i.submitted_at >= ?".into(),
            SqlValue::Integer(t),
            &mut params,
        );
    }
    if let Some(t) = q.until {
        push(
            "i.submitted_at < ?".into(),
            SqlValue::Integer(t),
            &mut params,
        );
    }
    (clauses, params)
}

fn statuses(q: &QueueQuery) -> Vec<String> {
    if q.statuses.is_empty() {
        REVIEWED_STATUSES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        q.statuses.clone()
    }
}

impl Review for SqliteStorage {
    fn review_queue(&self, q: &QueueQuery) -> Result<QueuePage> {
        let statuses = statuses(q);
        let with_statuses = |walk: bool| {
            let (mut clauses, mut params) = filters(q, walk);
            let marks: Vec<String> = statuses
                .iter()
                .map(|s| {
                    params.push(SqlValue::Text(s.clone()));
                    format!("?{}", params.len())
                })
                .collect();
            // Several statuses walk the all-status index.
            let col = if walk && statuses.len() > 1 {
                "+i.status"
            } else {
                "i.status"
            };
            clauses.push(format!("{col} IN ({})", marks.join(", ")));
            (clauses, params)
        };
        let conn = self.reader();
        let matching: i64 = {
            let (clauses, params) = with_statuses(false);
            conn.prepare_cached(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM inspections i WHERE {} LIMIT {})",
                clauses.join(" AND "),
                WALK_ABOVE + 1
            ))?
            .query_row(params_from_iter(params.iter()), |r| r.get(0))?
        };
        let (mut clauses, mut params) = with_statuses(matching > WALK_ABOVE);
        if let Some((at, id)) = &q.after {
            params.push(SqlValue::Integer(*at));
            let n = params.len();
            params.push(SqlValue::Text(id.clone()));
            clauses.push(format!(
                "(i.submitted_at > ?{n} OR (i.submitted_at = ?{n} AND i.id > ?{}))",
                n + 1
            ));
        }
        let limit = q.limit.clamp(1, 500) as usize;
        params.push(SqlValue::Integer(limit as i64 + 1));
        let sql = format!(
            "SELECT i.id, i.site_id, coalesce(s.name, ''), i.site_kind, i.village_code, i.status,
                    i.revision, i.inspector, i.started_at, i.submitted_at, i.reviewed_at,
                    i.photos, i.conflicts
             FROM inspections i LEFT JOIN sites s ON s.id = i.site_id
             WHERE {}
             ORDER BY i.submitted_at, i.id
             LIMIT ?{}",
            clauses.join(" AND "),
            params.len()
        );
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows: Vec<QueueRow> = st
            .query_map(params_from_iter(params.iter()), |r| {
                Ok(QueueRow {
                    id: r.get(0)?,
                    site_id: r.get(1)?,
                    site_name: r.get(2)?,
                    site_kind: r.get(3)?,
                    village_code: r.get(4)?,
                    status: r.get(5)?,
                    revision: r.get(6)?,
                    inspector: r.get(7)?,
                    started_at: r.get(8)?,
                    submitted_at: r.get(9)?,
                    reviewed_at: r.get(10)?,
                    photos: r.get(11)?,
                    conflicts: r.get(12)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| (r.submitted_at, r.id.clone()))
        } else {
            None
        };
        Ok(QueuePage { rows, next })
    }

    fn status_counts(&self, q: &QueueQuery) -> Result<Vec<(String, u64)>> {
        // One count per status: each reads one contiguous stretch of
        // `inspections_counts` (status, area, kind, time) and no rows.
        let (clauses, mut params) = filters(q, false);
        params.push(SqlValue::Null);
        let n = params.len();
        let sql = format!(
            "SELECT count(*) FROM inspections i WHERE i.status = ?{n} AND {}",
            clauses.join(" AND ")
        );
        let conn = self.reader();
        let mut st = conn.prepare_cached(&sql)?;
        let mut out = Vec::new();
        for status in REVIEWED_STATUSES {
            params[n - 1] = SqlValue::Text(status.to_owned());
            let c: i64 = st.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
            out.push((status.to_owned(), c.max(0) as u64));
        }
        Ok(out)
    }

    fn record(&self, id: &str) -> Result<Option<(RecordKind, Vec<u8>)>> {
        let conn = self.reader();
        let kind: Option<String> = conn
            .prepare_cached(
                "SELECT kind FROM documents WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM quarantine WHERE doc_id = ?1)",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(kind) = kind.as_deref().and_then(RecordKind::from_key) else {
            return Ok(None);
        };
        Ok(Some((kind, whole_save(&conn, id)?)))
    }

    fn findings_list(&self, q: &FindingsQuery) -> Result<FindingsPage> {
        let (areas, area_params) = area_clause("f.village_code", &q.areas, 1);
        let mut clauses = vec![areas];
        let mut params: Vec<SqlValue> = area_params.into_iter().map(SqlValue::Text).collect();
        let bind = |v: SqlValue, params: &mut Vec<SqlValue>| {
            params.push(v);
            format!("?{}", params.len())
        };
        if let Some(a) = &q.area {
            let lo = bind(SqlValue::Text(a.clone()), &mut params);
            let hi = bind(SqlValue::Text(prefix_upper_bound(a)), &mut params);
            clauses.push(format!("f.village_code >= {lo} AND f.village_code < {hi}"));
        }
        if !q.statuses.is_empty() {
            let marks: Vec<String> = q
                .statuses
                .iter()
                .map(|s| bind(SqlValue::Text(s.clone()), &mut params))
                .collect();
            clauses.push(format!("f.status IN ({})", marks.join(", ")));
        }
        if let Some(day) = &q.overdue_on {
            let d = bind(SqlValue::Text(day.clone()), &mut params);
            clauses.push(format!(
                "f.status != 'closed' AND f.deadline IS NOT NULL AND f.deadline < {d}"
            ));
        }
        if q.escalated_only {
            clauses.push("f.escalated != 0".into());
        }
        if let Some((at, id)) = &q.before {
            let a = bind(SqlValue::Integer(*at), &mut params);
            let i = bind(SqlValue::Text(id.clone()), &mut params);
            clauses.push(format!(
                "(f.raised_at < {a} OR (f.raised_at = {a} AND f.id < {i}))"
            ));
        }
        let limit = q.limit.clamp(1, 500) as usize;
        let l = bind(SqlValue::Integer(limit as i64 + 1), &mut params);
        let sql = format!(
            "SELECT f.id, coalesce(s.name, ''), f.site_kind, f.village_code, f.title, f.status,
                    f.responsible, f.deadline, f.escalated, f.raised_at
             FROM findings f LEFT JOIN sites s ON s.id = f.site_id
             WHERE {}
             ORDER BY f.raised_at DESC, f.id DESC
             LIMIT {l}",
            clauses.join(" AND ")
        );
        let conn = self.reader();
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows: Vec<FindingListRow> = st
            .query_map(params_from_iter(params.iter()), |r| {
                Ok(FindingListRow {
                    id: r.get(0)?,
                    site_name: r.get(1)?,
                    site_kind: r.get(2)?,
                    village_code: r.get(3)?,
                    title: r.get(4)?,
                    status: r.get(5)?,
                    responsible: r.get(6)?,
                    deadline: r.get(7)?,
                    escalated: r.get::<_, i64>(8)? != 0,
                    raised_at: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| (r.raised_at, r.id.clone()))
        } else {
            None
        };
        Ok(FindingsPage { rows, next })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Both ways of reading the queue (walking it in order above
    /// [`WALK_ABOVE`] matches, reading the area and sorting below) page
    /// through the same rows in the same order.
    #[test]
    fn walking_and_sorting_read_the_same_queue() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(&dir.path().join("server.db")).unwrap();
        {
            let conn = s.lock();
            let mut ins = conn
                .prepare(
                    "INSERT INTO inspections(id, site_id, site_kind, village_code, template_version,
                     status, revision, inspector, device, started_at, submitted_at, mock_location,
                     answers, photos, conflicts)
                     VALUES (?1, 's', ?2, ?3, 1, ?4, 1, 'li', 'd', 0, ?5, 0, '{}', 0, 0)",
                )
                .unwrap();
            for i in 0..(WALK_ABOVE as usize * 4) {
                let village = if i % 50 == 0 {
                    "410324101201"
                } else {
                    "410325101201"
                };
                let status = ["submitted", "approved", "returned"][i % 3];
                let kind = if i % 2 == 0 {
                    "household_toilet"
                } else {
                    "garbage_point"
                };
                // Ties on submission time are broken by id.
                ins.execute(rusqlite::params![
                    format!("{i:06}"),
                    kind,
                    village,
                    status,
                    (i / 3) as i64
                ])
                .unwrap();
            }
        }
        let all_pages = |q: &QueueQuery| {
            let mut q = q.clone();
            let mut ids = Vec::new();
            loop {
                let page = s.review_queue(&q).unwrap();
                ids.extend(page.rows.iter().map(|r| r.id.clone()));
                match page.next {
                    Some(k) => q.after = Some(k),
                    None => return ids,
                }
            }
        };
        let base = QueueQuery {
            areas: vec!["4103".into()],
            limit: 37,
            ..Default::default()
        };
        // Every status: walked (8,000 match).
        let walked = all_pages(&base);
        assert_eq!(walked.len(), WALK_ABOVE as usize * 4);
        let mut sorted = walked.clone();
        sorted.sort_by_key(|id| {
            let i: usize = id.parse().unwrap();
            ((i / 3) as i64, id.clone())
        });
        assert_eq!(walked, sorted, "oldest first, ties by id");
        // A small township: read by area and sorted (160 match); the same
        // rows as the walked queue filtered by hand.
        let q = QueueQuery {
            area: Some("410324101".into()),
            ..base.clone()
        };
        let small = all_pages(&q);
        let expect: Vec<String> = walked
            .iter()
            .filter(|id| id.parse::<usize>().unwrap().is_multiple_of(50))
            .cloned()
            .collect();
        assert_eq!(small, expect);
        // One status (2,667 match: walked), then with a kind (1,334:
        // sorted); counts agree with the pages.
        for kind in [None, Some("household_toilet".to_owned())] {
            let q = QueueQuery {
                statuses: vec!["submitted".into()],
                site_kind: kind.clone(),
                ..base.clone()
            };
            let one = all_pages(&q);
            let counts = s.status_counts(&q).unwrap();
            let submitted = counts.iter().find(|c| c.0 == "submitted").unwrap().1;
            assert_eq!(one.len() as u64, submitted);
            let expect: Vec<String> = walked
                .iter()
                .filter(|id| {
                    let i: usize = id.parse().unwrap();
                    i.is_multiple_of(3) && (kind.is_none() || i.is_multiple_of(2))
                })
                .cloned()
                .collect();
            assert_eq!(one, expect, "{kind:?}");
        }
    }
}
