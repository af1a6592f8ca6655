//! What the review console reads: the queue of inspections waiting for a
//! supervisor, counts per status, the findings board, and whole records
//! to show and change.
//!
//! The queue is read from the projections, paged by key (`submitted_at`,
//! `id`) rather than by offset, so page 500 of a province costs what page 1
//! does.

use super::Result;
use fieldbook_core::doc::RecordKind;

/// Which inspections the queue shows. Every filter narrows; `areas` is the
/// caller's scope and is never empty in a real query (an empty list matches
/// nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueQuery {
    /// Division-code prefixes the caller may see (`*`: all).
    pub areas: Vec<String>,
    /// Only these statuses (keys); empty: submitted, returned and approved.
    pub statuses: Vec<String>,
    /// A division-code prefix inside `areas` (a township or a village).
    pub area: Option<String>,
    pub site_kind: Option<String>,
    pub inspector: Option<String>,
    /// Submitted at or after, Unix ms.
    pub from: Option<i64>,
    /// Submitted before, Unix ms.
    pub until: Option<i64>,
    /// The last row of the previous page: `(submitted_at, id)`.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// One inspection in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub id: String,
    pub site_id: String,
    pub site_name: String,
    pub site_kind: String,
    pub village_code: String,
    pub status: String,
    pub revision: u32,
    pub inspector: String,
    pub started_at: i64,
    pub submitted_at: i64,
    pub reviewed_at: Option<i64>,
    pub photos: u32,
    pub conflicts: u32,
}

/// One page of the queue; `next` is the key to ask for the page after.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub next: Option<(i64, String)>,
}

/// The console's reads.
pub trait Review {
    /// Inspections matching `q`, oldest submission first.
    fn review_queue(&self, q: &QueueQuery) -> Result<QueuePage>;
    /// How many inspections match `q` per status, ignoring its status
    /// filter and paging.
    fn status_counts(&self, q: &QueueQuery) -> Result<Vec<(String, u64)>>;
    /// A whole record as stored (one Automerge save), unless unknown or
    /// quarantined.
    fn record(&self, id: &str) -> Result<Option<(RecordKind, Vec<u8>)>>;
    /// Findings matching `q`, newest raised first.
    fn findings_list(&self, q: &FindingsQuery) -> Result<FindingsPage>;
}

/// Which findings the board shows, newest raised first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingsQuery {
    /// Division-code prefixes the caller may see (`*`: all).
    pub areas: Vec<String>,
    /// Only these statuses (keys); empty: all.
    pub statuses: Vec<String>,
    /// A division-code prefix inside `areas`.
    pub area: Option<String>,
    /// Only open findings whose deadline (China date) is before this day.
    pub overdue_on: Option<String>,
    pub escalated_only: bool,
    /// The last row of the previous page: `(raised_at, id)`.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// One finding on the board.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingListRow {
    pub id: String,
    pub site_name: String,
    pub site_kind: String,
    pub village_code: String,
    pub title: String,
    pub status: String,
    pub responsible: Option<String>,
    pub deadline: Option<String>,
    pub escalated: bool,
    pub raised_at: i64,
}

/// One page of findings; `next` is the key of the page after.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingsPage {
    pub rows: Vec<FindingListRow>,
    pub next: Option<(i64, String)>,
}
