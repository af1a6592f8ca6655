//! Coverage, site maps and the raw records export, read from the server's
//! projections.
//!
//! Coverage is the core's evaluator ([`fieldbook_core::model::indicator`])
//! fed one site at a time from [`Reports::scan_sites`]: each approved
//! inspection's rule outcomes are computed from its stored answers with the
//! template version it was filled in with, so a template edit never changes
//! what an old inspection meant. Drafts, submitted and returned inspections
//! never count.
//!
//! The records export takes a different path on purpose: it writes every
//! inspection with its answers and rule outcomes as they are, without
//! judging periods or roll-ups, so a reader can recompute every indicator
//! from it and check the coverage export.

use crate::export::{Cell, ExportError, SiteFeature, TableFormat, TableWriter};
use crate::storage::reports::{FindingRow, InspectionRow, Reports, Shard, SiteRow};
use crate::storage::{Result, StorageError};
use fieldbook_core::model::indicator::Approved;
use fieldbook_core::model::indicator::{
    Coverage, CoverageRow, FindingFacts, Indicators, Period, SiteSummary,
};
use fieldbook_core::model::workflow::china_date;
use fieldbook_core::model::{Divisions, FindingStatus, SiteKind, Templates, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

fn malformed(what: &str, id: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        id: id.to_owned(),
        reason: format!("its {what} are not valid JSON: {e}"),
    }
}

fn json_map(what: &str, id: &str, text: &str) -> Result<BTreeMap<String, Value>> {
    serde_json::from_str(text).map_err(|e| malformed(what, id, e))
}

/// The rule outcomes of an inspection's answers under its own template
/// version; empty when the template is unknown (a newer server's record).
pub fn outcomes(kind: SiteKind, i: &InspectionRow) -> Result<BTreeMap<String, bool>> {
    let Some(template) = Templates::builtin().get(kind, i.template_version) else {
        return Ok(BTreeMap::new());
    };
    let answers = json_map("answers", &i.id, &i.answers)?;
    Ok(template.rule_outcomes(&answers).into_iter().collect())
}

fn site_kind(site: &SiteRow) -> Result<SiteKind> {
    SiteKind::from_key(&site.kind).ok_or_else(|| StorageError::Corrupt {
        id: site.id.clone(),
        reason: format!("unknown site kind {:?}", site.kind),
    })
}

/// What coverage keeps of one site's approvals while it reads them: the
/// latest in the period with the outcomes of the rules the indicators read
/// (as bits, in [`Indicators::rules_read`] order), and the number in the
/// schedule window. A few dozen bytes a site, so a city's million sites
/// fit in a few tens of megabytes.
#[derive(Debug, Clone, Copy, Default)]
struct SiteApprovals {
    latest_at: Option<i64>,
    latest_holds: u64,
    in_window: u32,
}

/// The rules each kind's indicators read, looked up once per report.
fn rules_by_kind(defs: &Indicators) -> HashMap<SiteKind, Vec<&str>> {
    SiteKind::ALL
        .into_iter()
        .map(|k| (k, defs.rules_read(k)))
        .collect()
}

/// Unix ms where China date `d` begins.
fn day_start(d: &str) -> Result<i64> {
    fieldbook_core::model::workflow::china_day_start_ms(d).ok_or_else(|| StorageError::Corrupt {
        id: d.to_owned(),
        reason: "a period bound is not a date".into(),
    })
}

/// Threads a city's report reads with: one per core, up to the storage's
/// reader connections.
fn report_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4) as u32)
}

/// Runs `work` on `parts` threads, one shard each, and reports the shared
/// row count to `progress` from the calling thread while they run.
fn in_parallel<T: Send>(
    parts: u32,
    read: &AtomicU64,
    progress: &mut dyn FnMut(u64),
    work: &(dyn Fn(Shard) -> Result<T> + Sync),
) -> Result<Vec<T>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parts)
            .map(|index| {
                scope.spawn(move || {
                    work(Shard {
                        index,
                        count: parts,
                    })
                })
            })
            .collect();
        while !handles
            .iter()
            .all(std::thread::ScopedJoinHandle::is_finished)
        {
            progress(read.load(Ordering::Relaxed));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StorageError::Conflict("a report thread failed".into()))
                })
            })
            .collect()
    })
}

/// Pass one: the approvals of one shard, judged and reduced per site.
fn approvals_part(
    src: &dyn Reports,
    defs: &Indicators,
    area: &str,
    period: &Period,
    shard: Shard,
    read: &AtomicU64,
) -> Result<HashMap<Box<str>, SiteApprovals>> {
    // Both spans as Unix ms, so each approval is placed by two comparisons
    // rather than by formatting its China date.
    let window = period.schedule_window();
    let start = |p: &Period| p.from.as_deref().map_or(Ok(i64::MIN), day_start);
    let until = day_start(&period.to)? + 86_400_000;
    let (period_from, window_from) = (start(period)?, start(&window)?);
    let from = Some(period_from.min(window_from)).filter(|f| *f > i64::MIN);
    let rules = rules_by_kind(defs);
    let mut by_site: HashMap<Box<str>, SiteApprovals> = HashMap::new();
    src.scan_approvals(area, from, until, shard, &mut |a| {
        read.fetch_add(1, Ordering::Relaxed);
        // Both spans end with the period.
        let in_period = (period_from..until).contains(&a.reviewed_at);
        let in_window = (window_from..until).contains(&a.reviewed_at);
        if !in_period && !in_window {
            return Ok(());
        }
        let entry = match by_site.get_mut(a.site_id) {
            Some(e) => e,
            None => by_site.entry(a.site_id.into()).or_default(),
        };
        entry.in_window += u32::from(in_window);
        // Only a new latest is judged: earlier approvals count for the
        // schedule alone.
        if in_period && entry.latest_at.is_none_or(|t| a.reviewed_at > t) {
            let kind = SiteKind::from_key(a.site_kind).ok_or_else(|| StorageError::Corrupt {
                id: a.site_id.to_owned(),
                reason: format!("unknown site kind {:?}", a.site_kind),
            })?;
            let holds = match Templates::builtin().get(kind, a.template_version) {
                Some(t) => {
                    let answers = json_map("answers", a.site_id, a.answers)?;
                    t.rules_holding(rules.get(&kind).map_or(&[], Vec::as_slice), &answers)
                }
                None => 0,
            };
            entry.latest_at = Some(a.reviewed_at);
            entry.latest_holds = holds;
        }
        Ok(())
    })?;
    Ok(by_site)
}

/// Pass two: the sites of one shard counted with their summaries.
fn sites_part<'d>(
    src: &dyn Reports,
    defs: &'d Indicators,
    area: &str,
    period: &Period,
    approvals: &HashMap<Box<str>, SiteApprovals>,
    shard: Shard,
    read: &AtomicU64,
) -> Result<Coverage<'d>> {
    let mut cov = Coverage::new(defs, period.clone());
    let rules = rules_by_kind(defs);
    let attribute_kinds: Vec<&str> = defs
        .kinds_reading_attributes()
        .into_iter()
        .map(SiteKind::key)
        .collect();
    let none = BTreeMap::new();
    src.scan_site_facts(area, &attribute_kinds, shard, &mut |site| {
        read.fetch_add(1, Ordering::Relaxed);
        let kind = SiteKind::from_key(site.kind).ok_or_else(|| StorageError::Corrupt {
            id: site.id.to_owned(),
            reason: format!("unknown site kind {:?}", site.kind),
        })?;
        let attributes = match site.attributes {
            Some(text) => json_map("attributes", site.id, text)?,
            None => none.clone(),
        };
        let summary = approvals.get(site.id).copied().unwrap_or_default();
        let latest = summary.latest_at.map(|at| Approved {
            approved_at: at,
            outcomes: rules
                .get(&kind)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(bit, r)| ((*r).to_owned(), summary.latest_holds & (1 << bit) != 0))
                .collect(),
        });
        cov.add_site_summary(&SiteSummary {
            kind,
            village_code: site.village_code,
            attributes: &attributes,
            latest: latest.as_ref(),
            in_schedule_window: summary.in_window,
        });
        Ok(())
    })?;
    Ok(cov)
}

/// Coverage rows for `area` in `period`. `progress` is told the number of
/// approvals, sites and findings read so far.
///
/// Two passes over the storage, each split over the cores, then findings:
/// approved inspections reviewed in the period (or its schedule window)
/// are judged as they come and reduced to a [`SiteApprovals`] per site;
/// then each site is read once and counted with its summary, and the
/// parts' counts are added up. A join of sites to inspections would cost an
/// index lookup per site, several times slower for a city.
pub fn coverage_rows(
    src: &dyn Reports,
    defs: &Indicators,
    divisions: &Divisions,
    area: &str,
    period: Period,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<CoverageRow>> {
    let parts = report_threads();
    let read = AtomicU64::new(0);
    let mut maps = in_parallel(parts, &read, progress, &|shard| {
        approvals_part(src, defs, area, &period, shard, &read)
    })?;
    // The largest part takes in the others. A site's approvals may fall in
    // several parts: schedule counts add, the later latest wins.
    maps.sort_by_key(HashMap::len);
    let mut approvals = maps.pop().unwrap_or_default();
    for m in maps {
        for (site, b) in m {
            let a = approvals.entry(site).or_default();
            a.in_window += b.in_window;
            if b.latest_at > a.latest_at {
                a.latest_at = b.latest_at;
                a.latest_holds = b.latest_holds;
            }
        }
    }
    let parts_cov = in_parallel(parts, &read, progress, &|shard| {
        sites_part(src, defs, area, &period, &approvals, shard, &read)
    })?;
    drop(approvals);
    let mut cov = Coverage::new(defs, period);
    for part in parts_cov {
        cov.merge(part);
    }
    let mut n = read.load(Ordering::Relaxed);
    src.scan_findings(area, &mut |f: FindingRow| {
        let (Some(kind), Some(status)) = (
            SiteKind::from_key(&f.site_kind),
            FindingStatus::from_key(&f.status),
        ) else {
            return Err(StorageError::Corrupt {
                reason: format!("site kind {:?} and status {:?}", f.site_kind, f.status),
                id: f.id,
            });
        };
        cov.add_finding(&FindingFacts {
            site_kind: kind,
            village_code: &f.village_code,
            status,
            raised_at: f.raised_at,
            deadline: f.deadline.as_deref(),
            closed_at: f.closed_at,
        });
        n += 1;
        Ok(())
    })?;
    progress(n);
    Ok(cov.rows(divisions, area))
}

/// One map feature per site in `area`: its latest inspection's status and
/// the rule outcomes of its latest approved inspection in `period`.
pub fn site_features(
    src: &dyn Reports,
    area: &str,
    period: &Period,
    f: &mut dyn FnMut(SiteFeature) -> Result<()>,
) -> Result<()> {
    src.scan_sites(area, false, &mut |site| {
        let kind = site_kind(&site)?;
        let latest = site.inspections.iter().max_by_key(|i| i.started_at);
        let approved = site
            .inspections
            .iter()
            .filter(|i| i.status == "approved")
            .filter(|i| i.reviewed_at.is_some_and(|t| period.contains(t)))
            .max_by_key(|i| i.reviewed_at);
        let outcomes = match approved {
            Some(i) => outcomes(kind, i)?,
            None => BTreeMap::new(),
        };
        f(SiteFeature {
            latest_status: latest.map_or_else(|| "not_inspected".into(), |i| i.status.clone()),
            latest_approved_at: approved.and_then(|i| i.reviewed_at).map(china_date),
            outcomes,
            id: site.id,
            kind,
            name: site.name,
            village_code: site.village_code,
            lat: site.lat,
            lon: site.lon,
        })
    })
}

/// Columns of the records export.
pub const RECORD_COLUMNS: [&str; 22] = [
    "inspection_id",
    "site_id",
    "site_kind",
    "site_name",
    "village_code",
    "village_name",
    "status",
    "revision",
    "template",
    "inspector",
    "started_at",
    "submitted_at",
    "reviewed_at",
    "lat",
    "lon",
    "accuracy_m",
    "mock_location",
    "distance_to_site_m",
    "photos",
    "answers",
    "outcomes",
    "photo_links",
];

/// Great-circle distance in metres (spherical Earth, good to 0.5%).
fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0_f64;
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

fn iso(ms: Option<i64>) -> String {
    ms.map(|t| {
        let d = china_date(t);
        let secs = (t + 8 * 3_600_000).rem_euclid(86_400_000) / 1000;
        format!(
            "{d}T{:02}:{:02}:{:02}+08:00",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    })
    .unwrap_or_default()
}

/// Column widths of the records sheet, in Excel character units.
const RECORD_WIDTHS: [f64; RECORD_COLUMNS.len()] = [
    38.0, 38.0, 18.0, 24.0, 14.0, 14.0, 10.0, 8.0, 22.0, 12.0, 26.0, 26.0, 26.0, 11.0, 11.0, 10.0,
    8.0, 10.0, 7.0, 60.0, 40.0, 60.0,
];

/// A table filled from a storage scan: rows counted for progress, and a
/// write failure kept aside so the scan can be stopped and the writer's own
/// error returned rather than the scan's.
struct ScanTable<'p, W: Write + Send> {
    table: TableWriter<W>,
    rows: u64,
    failure: Option<ExportError>,
    progress: &'p mut dyn FnMut(u64),
}

impl<'p, W: Write + Send> ScanTable<'p, W> {
    fn row(&mut self, cells: &[Cell]) -> Result<()> {
        if let Err(e) = self.table.row(cells) {
            self.failure = Some(e);
            return Err(StorageError::Conflict("the export stopped".into()));
        }
        self.rows += 1;
        if self.rows.is_multiple_of(4096) {
            (self.progress)(self.rows);
        }
        Ok(())
    }

    fn finish(self, scanned: Result<()>) -> std::result::Result<u64, ExportError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        scanned.map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))?;
        self.table.finish()?;
        (self.progress)(self.rows);
        Ok(self.rows)
    }
}

/// Writes every inspection of `area` as CSV (UTF-8 with a BOM).
/// See [`write_records`].
pub fn write_records_csv(
    src: &dyn Reports,
    divisions: &Divisions,
    area: &str,
    photo_base: &str,
    out: impl Write + Send,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<u64, ExportError> {
    write_records(
        src,
        divisions,
        area,
        photo_base,
        TableFormat::Csv,
        out,
        progress,
    )
}

/// Writes every inspection of `area`, drafts and returns included, as a
/// CSV or XLSX table of [`RECORD_COLUMNS`]: answers and rule outcomes as
/// JSON, the distance between the inspection's GPS fix and the registered
/// site, and links to its photos under `photo_base`
/// (`{photo_base}/v1/photos/{hash}`). Returns the number of rows.
pub fn write_records(
    src: &dyn Reports,
    divisions: &Divisions,
    area: &str,
    photo_base: &str,
    format: TableFormat,
    out: impl Write + Send,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<u64, ExportError> {
    let mut table = ScanTable {
        table: TableWriter::new(format, "检查记录", &RECORD_COLUMNS, &RECORD_WIDTHS, out)?,
        rows: 0,
        failure: None,
        progress,
    };
    let text = |s: &str| Cell::Text(s.to_owned());
    let scanned = src.scan_sites(area, true, &mut |site| {
        let kind = site_kind(&site)?;
        let village = divisions
            .get(&site.village_code)
            .map_or("", |a| a.name.as_str());
        for i in &site.inspections {
            let outcomes = outcomes(kind, i)?;
            let distance = match (site.lat, site.lon, i.lat, i.lon) {
                (Some(a), Some(b), Some(c), Some(d)) => Some(distance_m((a, b), (c, d)).round()),
                _ => None,
            };
            let links = i
                .photos_hashes
                .iter()
                .map(|h| format!("{photo_base}/v1/photos/{h}"))
                .collect::<Vec<_>>()
                .join(" ");
            let record = [
                text(&i.id),
                text(&site.id),
                text(&site.kind),
                text(&site.name),
                text(&site.village_code),
                text(village),
                text(&i.status),
                Cell::Number(Some(f64::from(i.revision))),
                Cell::Text(format!("{}@{}", site.kind, i.template_version)),
                text(&i.inspector),
                Cell::Text(iso(Some(i.started_at))),
                Cell::Text(iso(i.submitted_at)),
                Cell::Text(iso(i.reviewed_at)),
                Cell::Number(i.lat),
                Cell::Number(i.lon),
                Cell::Number(i.accuracy_m),
                text(if i.mock_location { "true" } else { "false" }),
                Cell::Number(distance),
                Cell::Number(Some(f64::from(i.photos))),
                text(&i.answers),
                Cell::Text(serde_json::to_string(&outcomes).unwrap_or_default()),
                Cell::Text(links),
            ];
            table.row(&record)?;
        }
        Ok(())
    });
    table.finish(scanned)
}

/// Columns of the findings export.
pub const FINDING_COLUMNS: [&str; 13] = [
    "finding_id",
    "site_id",
    "site_kind",
    "village_code",
    "village_name",
    "title",
    "status",
    "responsible",
    "escalated",
    "deadline",
    "days_overdue",
    "raised_at",
    "closed_at",
];

const FINDING_WIDTHS: [f64; FINDING_COLUMNS.len()] = [
    38.0, 38.0, 18.0, 14.0, 14.0, 40.0, 12.0, 24.0, 10.0, 12.0, 12.0, 26.0, 26.0,
];

/// Whole China days an open finding is past its deadline on `today`
/// (`YYYY-MM-DD`); `None` when closed, without a deadline, or not late.
pub fn days_overdue(status: &str, deadline: Option<&str>, today: &str) -> Option<i64> {
    use fieldbook_core::model::workflow::china_day_start_ms;
    if status == FindingStatus::Closed.key() {
        return None;
    }
    let (d, t) = (china_day_start_ms(deadline?)?, china_day_start_ms(today)?);
    let days = (t - d) / 86_400_000;
    (days > 0).then_some(days)
}

/// Writes every finding of `area` (rectification orders raised on sites,
/// with their status, deadline and when they were raised and closed) as a
/// CSV or XLSX table of [`FINDING_COLUMNS`]; with the records export it is
/// enough to recompute every indicator. `today` (China date) dates the
/// days overdue. Returns the number of rows.
pub fn write_findings(
    src: &dyn Reports,
    divisions: &Divisions,
    area: &str,
    today: &str,
    format: TableFormat,
    out: impl Write + Send,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<u64, ExportError> {
    let mut table = ScanTable {
        table: TableWriter::new(format, "问题整改", &FINDING_COLUMNS, &FINDING_WIDTHS, out)?,
        rows: 0,
        failure: None,
        progress,
    };
    let scanned = src.scan_findings(area, &mut |f| {
        let village = divisions
            .get(&f.village_code)
            .map_or(String::new(), |a| a.name.clone());
        let row = [
            Cell::Text(f.id),
            Cell::Text(f.site_id),
            Cell::Text(f.site_kind),
            Cell::Text(f.village_code),
            Cell::Text(village),
            Cell::Text(f.title),
            Cell::Text(f.status.clone()),
            Cell::Text(f.responsible.unwrap_or_default()),
            Cell::Text(if f.escalated { "true" } else { "false" }.into()),
            Cell::Text(f.deadline.clone().unwrap_or_default()),
            Cell::Text(
                days_overdue(&f.status, f.deadline.as_deref(), today)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ),
            Cell::Text(iso(Some(f.raised_at))),
            Cell::Text(iso(f.closed_at)),
        ];
        table.row(&row)
    });
    table.finish(scanned)
}
