//! What reports read: every site of an area with its inspections, and every
//! finding, streamed row by row from the projections so an export of a
//! million sites holds one site at a time.

use super::Result;

/// One inspection of a site, as projected.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionRow {
    pub id: String,
    pub status: String,
    pub revision: u32,
    pub template_version: u32,
    pub inspector: String,
    pub started_at: i64,
    pub submitted_at: Option<i64>,
    /// Time of the last review (approval or return).
    pub reviewed_at: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub mock_location: bool,
    pub photos: u32,
    pub conflicts: u32,
    /// JSON object of the winning answers.
    pub answers: String,
    /// Content hashes of the photos the inspection references; filled only
    /// when the scan asks for them.
    pub photos_hashes: Vec<String>,
}

/// One site with its inspections, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub village_code: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// JSON object of registry attributes.
    pub attributes: String,
    pub inspections: Vec<InspectionRow>,
}

/// One finding, as projected.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub id: String,
    pub site_id: String,
    pub site_kind: String,
    pub village_code: String,
    pub title: String,
    pub status: String,
    pub deadline: Option<String>,
    pub raised_at: i64,
    pub closed_at: Option<i64>,
}

/// Streaming reads for reports and exports. `area` is a division-code
/// prefix ("" for all). Rows come in site-id order; the callback may stop
/// the scan by returning an error. Each scan is one query on one
/// connection, and the callback must not call back into the storage: a
/// scan waiting for a second connection while holding one could wait for
/// ever once every connection is held by such a scan.
pub trait Reports {
    /// Sites with their inspections; `with_photos` also fills each
    /// inspection's photo hashes (the records export needs them, coverage
    /// does not).
    fn scan_sites(
        &self,
        area: &str,
        with_photos: bool,
        f: &mut dyn FnMut(SiteRow) -> Result<()>,
    ) -> Result<()>;
    fn scan_findings(&self, area: &str, f: &mut dyn FnMut(FindingRow) -> Result<()>) -> Result<()>;
}
