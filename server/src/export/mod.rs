//! Export writers: coverage rows to CSV and XLSX, sites to GeoJSON, and
//! flat tables (records, findings) to CSV or XLSX.
//!
//! County offices take coverage figures into Excel and site maps into a GIS,
//! so each format is written the way its usual reader wants it:
//!
//! - [`write_coverage_csv`]: UTF-8 with a byte-order mark (without it Excel
//!   decodes Chinese as the local ANSI code page), bilingual headers, RFC
//!   4180 quoting and CRLF line ends.
//! - [`write_coverage_xlsx`]: one sheet per division level, frozen header,
//!   counts as integers and rate, target and gap as percentages.
//! - [`write_sites_geojson`]: an RFC 7946 FeatureCollection of points.
//!
//! Every writer takes an iterator and a [`std::io::Write`] and never holds
//! the whole export: a city-wide village report or a site map can run to a
//! million rows, and the server must produce it in bounded memory while
//! other requests go on. CSV and GeoJSON are written row by row through a
//! buffer; XLSX uses `rust_xlsxwriter`'s constant-memory worksheets, which
//! spill each finished row to a temporary file, so peak memory does not
//! grow with the row count (the temporary files do, on disk).
//!
//! Each writer reports progress as the number of rows written so far, every
//! [`PROGRESS_EVERY`] rows and once at the end, and returns the final count.
//! The same column list ([`COVERAGE_COLUMNS`]) heads the CSV and every XLSX
//! sheet, so the two formats can be checked against each other cell by
//! cell.

mod csv_out;
mod geojson;
mod table;
mod xlsx;

pub use csv_out::write_coverage_csv;
pub use geojson::{SiteFeature, write_sites_geojson};
pub use table::{Cell, TableFormat, TableWriter};
pub use xlsx::{MAX_SHEET_DATA_ROWS, write_coverage_xlsx, write_coverage_xlsx_split_at};

use fieldbook_core::model::Level;
use fieldbook_core::model::indicator::{CoverageRow, Indicators};
use std::collections::HashMap;

/// Rows between two progress reports: often enough for a smooth bar, rare
/// enough that a callback that redraws a terminal costs nothing.
pub const PROGRESS_EVERY: u64 = 1024;

/// Coverage export columns, `(zh, en)`, in file order. Headers are written
/// as `"{zh} {en}"`.
pub const COVERAGE_COLUMNS: [(&str, &str); 11] = [
    ("指标", "indicator"),
    ("指标名称", "indicator name"),
    ("层级", "level"),
    ("区划代码", "area code"),
    ("区划名称", "area name"),
    ("分子", "numerator"),
    ("分母", "denominator"),
    ("比率", "rate"),
    ("目标", "target"),
    ("差距", "gap to target"),
    ("未检查", "not inspected"),
];

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error("export CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("export XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("export GeoJSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Bilingual header texts.
fn headers() -> impl Iterator<Item = String> {
    COVERAGE_COLUMNS.iter().map(|(zh, en)| format!("{zh} {en}"))
}

/// Indicator id to Chinese name, looked up once per export rather than by a
/// linear scan per row.
fn indicator_names(defs: &Indicators) -> HashMap<&str, &str> {
    defs.indicators
        .iter()
        .map(|i| (i.id.as_str(), i.name.zh.as_str()))
        .collect()
}

/// A ratio fit for a number cell: a caller-built row could hold NaN or an
/// infinity, which neither CSV readers nor Excel take as a number.
/// Text as a spreadsheet takes it without running it: a cell that begins
/// with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula (or
/// starts one) in Excel and LibreOffice, so a site named `=HYPERLINK(…)`
/// would run on the clerk's desktop. Such text gets a leading apostrophe,
/// which spreadsheets show as text and do not display.
pub fn csv_safe(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{s}")),
        _ => std::borrow::Cow::Borrowed(s),
    }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// The Chinese name a level's sheet is called by.
fn level_zh(level: Level) -> &'static str {
    match level {
        Level::Province => "省",
        Level::City => "市",
        Level::County => "县区",
        Level::Township => "乡镇",
        Level::Village => "村",
    }
}

/// Calls `progress` every [`PROGRESS_EVERY`] rows.
fn tick(n: u64, progress: &mut dyn FnMut(u64)) {
    if n.is_multiple_of(PROGRESS_EVERY) {
        progress(n);
    }
}

/// The indicator's Chinese name for a row; empty for an id the definitions
/// do not know (the id column still identifies it).
fn name_of<'a>(names: &HashMap<&str, &'a str>, row: &CoverageRow) -> &'a str {
    names.get(row.indicator.as_str()).copied().unwrap_or("")
}
