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
    /// The responsible unit named on raising or assignment (责任单位).
    pub responsible: Option<String>,
    /// Escalated (督办).
    pub escalated: bool,
    pub raised_at: i64,
    pub closed_at: Option<i64>,
}

/// An approved inspection as coverage reads it, borrowed from the row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApprovalRef<'a> {
    pub site_id: &'a str,
    pub site_kind: &'a str,
    pub template_version: u32,
    pub reviewed_at: i64,
    /// JSON object of the winning answers.
    pub answers: &'a str,
}

/// A site as coverage reads it, borrowed from the row: registry
/// attributes only for the kinds asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteFactsRef<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub village_code: &'a str,
    pub attributes: Option<&'a str>,
}

/// One of `count` disjoint parts of a scan, so a report can read on several
/// cores at once; `Shard::WHOLE` is the whole scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

/// Streaming reads for reports and exports. `area` is a division-code
/// prefix ("" for all). Rows come in site-id order; the callback may stop
/// the scan by returning an error. Each scan is one query on one
/// connection, and the callback must not call back into the storage: a
/// scan waiting for a second connection while holding one could wait for
/// ever once every connection is held by such a scan.
pub trait Reports: Sync {
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

    /// Approved inspections of the sites of `area` reviewed in
    /// `[from, until)` (Unix ms), in no particular order, of part `shard`. Coverage reads
    /// them apart from the sites so a city's report is two sequential
    /// passes instead of a million index lookups. The default goes through
    /// [`Reports::scan_sites`].
    fn scan_approvals(
        &self,
        area: &str,
        from: Option<i64>,
        until: i64,
        shard: Shard,
        f: &mut dyn FnMut(&ApprovalRef<'_>) -> Result<()>,
    ) -> Result<()> {
        // The default cannot split its scan: the first part is all of it.
        if shard.index > 0 {
            return Ok(());
        }
        self.scan_sites(area, false, &mut |site| {
            for i in &site.inspections {
                let Some(at) = i.reviewed_at else { continue };
                if i.status != "approved" || at >= until || from.is_some_and(|f| at < f) {
                    continue;
                }
                f(&ApprovalRef {
                    site_id: &site.id,
                    site_kind: &site.kind,
                    template_version: i.template_version,
                    reviewed_at: at,
                    answers: &i.answers,
                })?;
            }
            Ok(())
        })
    }

    /// The sites of `area` in part `shard`, in no particular order, with
    /// attributes for the kinds in `attribute_kinds`. The default goes through
    /// [`Reports::scan_sites`].
    fn scan_site_facts(
        &self,
        area: &str,
        attribute_kinds: &[&str],
        shard: Shard,
        f: &mut dyn FnMut(&SiteFactsRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if shard.index > 0 {
            return Ok(());
        }
        self.scan_sites(area, false, &mut |site| {
            f(&SiteFactsRef {
                id: &site.id,
                kind: &site.kind,
                village_code: &site.village_code,
                attributes: attribute_kinds
                    .contains(&site.kind.as_str())
                    .then_some(site.attributes.as_str()),
            })
        })
    }
}
