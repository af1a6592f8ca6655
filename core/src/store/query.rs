//! Lists (from projection tables only) and record views (from one loaded
//! document, with template labels, conflicts, status and timeline).

use super::{Result, Store, StoreError};
use crate::model::area::prefix_upper_bound;
use crate::model::template::{Label, Problem};
use crate::model::workflow::{Event, china_date, fold_finding, fold_inspection};
use crate::model::{
    FindingStatus, GeoPoint, GpsFix, InspectionStatus, Note, PhotoRef, Role, SiteKind, SiteSource,
    Value,
};
use rusqlite::types::Value as SqlValue;

/// Most rows one list call returns.
pub const LIST_LIMIT_MAX: u32 = 10_000;

/// Which sites to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteFilter {
    /// Division-code prefix (county, township or village); `None` = all of
    /// the user's areas.
    pub area: Option<String>,
    pub kind: Option<SiteKind>,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// A row of the site list.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSummary {
    pub id: String,
    pub kind: SiteKind,
    pub name: String,
    pub village_code: String,
    pub location: Option<GeoPoint>,
    pub source: SiteSource,
}

/// Which inspections to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InspectionFilter {
    pub area: Option<String>,
    pub site_id: Option<String>,
    pub kind: Option<SiteKind>,
    pub status: Option<InspectionStatus>,
    pub inspector: Option<String>,
    /// Started at or after (Unix ms).
    pub from: Option<i64>,
    /// Started before (Unix ms).
    pub to: Option<i64>,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// A row of the inspection list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionSummary {
    pub id: String,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub status: InspectionStatus,
    pub revision: u32,
    pub inspector: String,
    pub started_at: i64,
    pub submitted_at: Option<i64>,
    pub answered: u32,
    pub photos: u32,
    pub conflicts: u32,
}

/// Which findings to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingFilter {
    pub area: Option<String>,
    pub site_id: Option<String>,
    pub status: Option<FindingStatus>,
    /// Only open findings whose deadline is before this day (`YYYY-MM-DD`);
    /// pass today for the overdue list.
    pub due_before: Option<String>,
    pub open_only: bool,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// A row of the finding list, earliest deadline first.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingSummary {
    pub id: String,
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub title: String,
    pub status: FindingStatus,
    pub responsible: Option<String>,
    pub deadline: Option<String>,
    pub escalated: bool,
    pub overdue: bool,
    pub raised_at: i64,
}

/// One field of an inspection as a form or review screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldView {
    pub key: String,
    pub label: Label,
    pub required: bool,
    /// Hidden by its show-if condition given the current answers.
    pub visible: bool,
    pub value: Option<Value>,
    /// The choice label of `value` when the field is a choice.
    pub value_label: Option<Label>,
    /// All concurrent values (winner first) when replicas disagree.
    pub conflicts: Vec<Value>,
    pub photos: u32,
}

/// One line of a record's history.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: i64,
    pub label: Label,
    pub kind: crate::model::EventKind,
    pub author: String,
    pub role: Role,
    pub revision: Option<u32>,
    pub comment: Option<String>,
}

/// An inspection for display.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionView {
    pub id: String,
    pub site_id: String,
    pub site_name: Option<String>,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub template_id: String,
    pub template_title: Label,
    pub inspector: String,
    pub device: String,
    pub started_at: i64,
    pub location: Option<GpsFix>,
    pub status: InspectionStatus,
    pub revision: u32,
    pub fields: Vec<FieldView>,
    /// Answers to keys the template does not have (from a newer template
    /// version on another device): kept and shown, never dropped.
    pub extra_answers: Vec<(String, Value)>,
    pub photos: Vec<PhotoRef>,
    pub notes: Vec<Note>,
    pub timeline: Vec<TimelineEntry>,
    /// Rule outcomes (effective, sanitary, …) for the current answers.
    pub outcomes: Vec<(String, bool)>,
    /// What still stops submission.
    pub problems: Vec<Problem>,
    pub editable: bool,
}

/// A finding for display.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingView {
    pub id: String,
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub title: String,
    pub description: String,
    pub raised_by: String,
    pub raised_at: i64,
    pub status: FindingStatus,
    pub responsible: Option<String>,
    pub deadline: Option<String>,
    pub escalated: bool,
    pub overdue: bool,
    pub photos: Vec<PhotoRef>,
    pub timeline: Vec<TimelineEntry>,
}

fn timeline(events: &[Event]) -> Vec<TimelineEntry> {
    events
        .iter()
        .map(|e| TimelineEntry {
            at: e.at,
            label: Label {
                zh: e.kind.label_zh().into(),
                en: e.kind.label_en().into(),
            },
            kind: e.kind,
            author: e.author.clone(),
            role: e.role,
            revision: e.revision,
            comment: e.comment.clone(),
        })
        .collect()
}

/// Builds `WHERE` clauses with positional parameters.
struct Where {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Where {
    fn new() -> Where {
        Where {
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, clause: &str, values: impl IntoIterator<Item = SqlValue>) {
        let mut c = clause.to_owned();
        for v in values {
            self.params.push(v);
            c = c.replacen('?', &format!("?{}", self.params.len()), 1);
        }
        self.clauses.push(c);
    }

    /// Restricts `col` to the area prefix, or to the union of the user's areas.
    fn area(&mut self, col: &str, area: &Option<String>, identity_areas: &[String]) {
        let prefixes: Vec<&str> = match area {
            Some(a) => vec![a.as_str()],
            None => identity_areas.iter().map(String::as_str).collect(),
        };
        if prefixes.is_empty() {
            self.clauses.push("0".into());
            return;
        }
        let mut parts = Vec::new();
        for p in prefixes {
            self.params.push(SqlValue::Text(p.to_owned()));
            let lo = self.params.len();
            self.params.push(SqlValue::Text(prefix_upper_bound(p)));
            parts.push(format!("({col} >= ?{lo} AND {col} < ?{})", lo + 1));
        }
        self.clauses.push(format!("({})", parts.join(" OR ")));
    }

    /// `LIMIT ?n OFFSET ?m`, bound rather than written into the SQL so one
    /// cached statement serves every page.
    fn page(&mut self, l: Option<u32>, offset: u32) -> String {
        self.params.push(SqlValue::Integer(i64::from(limit(l))));
        self.params.push(SqlValue::Integer(i64::from(offset)));
        format!(
            "LIMIT ?{} OFFSET ?{}",
            self.params.len() - 1,
            self.params.len()
        )
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn limit(l: Option<u32>) -> u32 {
    l.unwrap_or(1000).min(LIST_LIMIT_MAX)
}

fn parse_kind(s: &str) -> rusqlite::Result<SiteKind> {
    SiteKind::from_key(s).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, s.to_owned(), rusqlite::types::Type::Text)
    })
}

impl Store {
    fn check_area(&self, area: &Option<String>) -> Result<()> {
        match area {
            Some(a)
                if !self.identity.covers(a)
                    && !self
                        .identity
                        .areas
                        .iter()
                        .any(|u| u.starts_with(a.as_str())) =>
            {
                Err(StoreError::OutOfScope { code: a.clone() })
            }
            _ => Ok(()),
        }
    }

    /// Sites by area and kind, by name.
    pub fn list_sites(&self, f: &SiteFilter) -> Result<Vec<SiteSummary>> {
        self.check_area(&f.area)?;
        let mut w = Where::new();
        w.area("village_code", &f.area, &self.identity.areas);
        if let Some(k) = f.kind {
            w.push("kind = ?", [SqlValue::Text(k.key().into())]);
        }
        let page = w.page(f.limit, f.offset);
        let sql = format!(
            "SELECT id, kind, name, village_code, lat, lon, source FROM sites {} ORDER BY village_code, name, id {}",
            w.sql(),
            page
        );
        let mut st = self.conn().prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(w.params.iter()), |r| {
            let lat: Option<f64> = r.get(4)?;
            let lon: Option<f64> = r.get(5)?;
            let source: String = r.get(6)?;
            Ok(SiteSummary {
                id: r.get(0)?,
                kind: parse_kind(&r.get::<_, String>(1)?)?,
                name: r.get(2)?,
                village_code: r.get(3)?,
                location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
                source: SiteSource::from_key(&source).unwrap_or(SiteSource::Field),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Inspections by area, site, kind, status and date, newest first.
    pub fn list_inspections(&self, f: &InspectionFilter) -> Result<Vec<InspectionSummary>> {
        self.check_area(&f.area)?;
        let mut w = Where::new();
        w.area("village_code", &f.area, &self.identity.areas);
        if let Some(s) = &f.site_id {
            w.push("site_id = ?", [SqlValue::Text(s.clone())]);
        }
        if let Some(k) = f.kind {
            w.push("site_kind = ?", [SqlValue::Text(k.key().into())]);
        }
        if let Some(s) = f.status {
            w.push("status = ?", [SqlValue::Text(s.key().into())]);
        }
        if let Some(u) = &f.inspector {
            w.push("inspector = ?", [SqlValue::Text(u.clone())]);
        }
        if let Some(t) = f.from {
            w.push("started_at >= ?", [SqlValue::Integer(t)]);
        }
        if let Some(t) = f.to {
            w.push("started_at < ?", [SqlValue::Integer(t)]);
        }
        let page = w.page(f.limit, f.offset);
        let sql = format!(
            "SELECT id, site_id, site_kind, village_code, status, revision, inspector, started_at, submitted_at,
                    answered, photos, conflicts
             FROM inspections {} ORDER BY started_at DESC, id DESC {}",
            w.sql(),
            page
        );
        let mut st = self.conn().prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(w.params.iter()), |r| {
            let status: String = r.get(4)?;
            Ok(InspectionSummary {
                id: r.get(0)?,
                site_id: r.get(1)?,
                site_kind: parse_kind(&r.get::<_, String>(2)?)?,
                village_code: r.get(3)?,
                status: InspectionStatus::from_key(&status).unwrap_or(InspectionStatus::Draft),
                revision: r.get(5)?,
                inspector: r.get(6)?,
                started_at: r.get(7)?,
                submitted_at: r.get(8)?,
                answered: r.get(9)?,
                photos: r.get(10)?,
                conflicts: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Findings by area, status and deadline, earliest deadline first.
    pub fn list_findings(&self, f: &FindingFilter) -> Result<Vec<FindingSummary>> {
        self.check_area(&f.area)?;
        let mut w = Where::new();
        w.area("village_code", &f.area, &self.identity.areas);
        if let Some(s) = &f.site_id {
            w.push("site_id = ?", [SqlValue::Text(s.clone())]);
        }
        if let Some(s) = f.status {
            w.push("status = ?", [SqlValue::Text(s.key().into())]);
        }
        if f.open_only || f.due_before.is_some() {
            w.push("status <> 'closed'", []);
        }
        if let Some(d) = &f.due_before {
            w.push("deadline < ?", [SqlValue::Text(d.clone())]);
        }
        let page = w.page(f.limit, f.offset);
        let sql = format!(
            "SELECT id, inspection_id, site_id, site_kind, village_code, title, status, responsible, deadline,
                    escalated, raised_at
             FROM findings {} ORDER BY deadline IS NULL, deadline, raised_at, id {}",
            w.sql(),
            page
        );
        let today = china_date(self.now());
        let mut st = self.conn().prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(w.params.iter()), |r| {
            let status =
                FindingStatus::from_key(&r.get::<_, String>(6)?).unwrap_or(FindingStatus::Found);
            let deadline: Option<String> = r.get(8)?;
            Ok(FindingSummary {
                id: r.get(0)?,
                inspection_id: r.get(1)?,
                site_id: r.get(2)?,
                site_kind: parse_kind(&r.get::<_, String>(3)?)?,
                village_code: r.get(4)?,
                title: r.get(5)?,
                overdue: status != FindingStatus::Closed
                    && deadline.as_deref().is_some_and(|d| d < today.as_str()),
                status,
                responsible: r.get(7)?,
                deadline,
                escalated: r.get(9)?,
                raised_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One inspection with labels, values, conflicts, status and timeline.
    pub fn inspection_view(&mut self, id: &str) -> Result<InspectionView> {
        let ins = self.read_inspection(id)?;
        self.require_read_scope(&ins.village_code)?;
        let t = self.template_for(ins.site_kind, ins.template_version)?;
        let st = fold_inspection(&ins.events);
        let counts = ins.photo_counts();
        let fields = t
            .fields
            .iter()
            .map(|f| {
                let value = ins.answers.get(&f.key).cloned();
                FieldView {
                    key: f.key.clone(),
                    label: f.label.clone(),
                    required: f.required,
                    visible: t.is_visible(&f.key, &ins.answers),
                    value_label: value.as_ref().and_then(|v| t.value_label(&f.key, v)),
                    value,
                    conflicts: ins.conflicts.get(&f.key).cloned().unwrap_or_default(),
                    photos: counts.get(&f.key).copied().unwrap_or(0),
                }
            })
            .collect();
        let extra_answers = ins
            .answers
            .iter()
            .filter(|(k, _)| t.field(k).is_none())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let site_name = self
            .conn()
            .query_row(
                "SELECT name FROM sites WHERE id = ?1",
                [&ins.site_id],
                |r| r.get(0),
            )
            .ok();
        Ok(InspectionView {
            template_id: t.id(),
            template_title: t.title.clone(),
            site_name,
            status: st.status,
            revision: st.revision,
            fields,
            extra_answers,
            outcomes: t.rule_outcomes(&ins.answers),
            problems: t.validate(&ins.answers, &counts),
            editable: st.status.editable()
                && self.identity.role == Role::Inspector
                && ins.inspector == self.identity.user,
            timeline: timeline(&ins.events),
            id: ins.id,
            site_id: ins.site_id,
            site_kind: ins.site_kind,
            village_code: ins.village_code,
            inspector: ins.inspector,
            device: ins.device,
            started_at: ins.started_at,
            location: ins.location,
            photos: ins.photos,
            notes: ins.notes,
        })
    }

    /// One finding with its lifecycle state and timeline.
    pub fn finding_view(&mut self, id: &str) -> Result<FindingView> {
        let f = self.read_finding(id)?;
        self.require_read_scope(&f.village_code)?;
        let st = fold_finding(&f.events);
        let today = china_date(self.now());
        Ok(FindingView {
            overdue: st.is_overdue(&today),
            status: st.status,
            responsible: st.responsible,
            deadline: st.deadline,
            escalated: st.escalated,
            timeline: timeline(&f.events),
            id: f.id,
            inspection_id: f.inspection_id,
            site_id: f.site_id,
            site_kind: f.site_kind,
            village_code: f.village_code,
            title: f.title,
            description: f.description,
            raised_by: f.raised_by,
            raised_at: f.raised_at,
            photos: f.photos,
        })
    }

    /// One site.
    pub fn site(&mut self, id: &str) -> Result<crate::model::Site> {
        let s = self.read_site(id)?;
        self.require_read_scope(&s.village_code)?;
        Ok(s)
    }

    fn require_read_scope(&self, code: &str) -> Result<()> {
        if self.identity.covers(code) {
            Ok(())
        } else {
            Err(StoreError::OutOfScope { code: code.into() })
        }
    }

    /// Counts of inspections by status in the user's areas (home screen).
    pub fn inspection_counts(&self) -> Result<Vec<(InspectionStatus, u64)>> {
        let mut out = Vec::new();
        for s in InspectionStatus::ALL {
            let mut w = Where::new();
            w.area("village_code", &None, &self.identity.areas);
            w.push("status = ?", [SqlValue::Text(s.key().into())]);
            let n: i64 = self.conn().query_row(
                &format!("SELECT count(*) FROM inspections {}", w.sql()),
                rusqlite::params_from_iter(w.params.iter()),
                |r| r.get(0),
            )?;
            out.push((s, n as u64));
        }
        Ok(out)
    }
}
