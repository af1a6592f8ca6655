//! Coverage of the user's own areas, computed on the phone.
//!
//! An inspector or township supervisor wants to see, offline, where their
//! township stands against the plan's targets. The phone holds every site,
//! inspection and finding of the user's areas (that is what sync pulls), so
//! the county's evaluator ([`crate::model::indicator::Coverage`]) runs here
//! over the same definitions and gives the same numbers as the server's
//! export for the same records; the figures are as of the last sync.
//!
//! The phone's projections keep only what lists need, so the facts the
//! evaluator wants beyond them (answers and approval times of approved
//! inspections, registry attributes of the kinds whose indicators read
//! them) come from the documents themselves. A township holds a few
//! thousand sites and far fewer approved inspections, so this is a second
//! or so of work on a phone, done when the screen asks for it.

use super::{Result, Store, StoreError};
use crate::model::indicator::{
    Approved, Coverage, CoverageRow, FindingFacts, Indicators, Period, SiteFacts,
};
use crate::model::workflow::fold_inspection;
use crate::model::{Divisions, FindingStatus, SiteKind, Value};
use std::collections::{BTreeMap, HashMap};

fn bad_row(id: &str, what: &str, value: &str) -> StoreError {
    StoreError::CorruptDocument {
        id: id.to_owned(),
        reason: format!("its projected {what} {value:?} is unknown"),
    }
}

impl Store {
    /// Coverage rows of every indicator for each of the user's areas (and
    /// every level below them) in `period`, from the records on this phone.
    pub fn coverage(&mut self, period: Period) -> Result<Vec<CoverageRow>> {
        let defs = Indicators::builtin();
        let mut cov = Coverage::new(defs, period);

        // Approved inspections, by site: the outcomes of their answers under
        // the template version each was filled in with.
        let approved_ids: Vec<String> = {
            let mut st = self.conn().prepare_cached(
                "SELECT id FROM inspections WHERE status = 'approved' ORDER BY id",
            )?;
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?
        };
        let mut approved: HashMap<String, Vec<Approved>> = HashMap::new();
        for id in approved_ids {
            let ins = self.read_inspection(&id)?;
            let Some(at) = fold_inspection(&ins.events).reviewed_at else {
                continue;
            };
            let outcomes: BTreeMap<String, bool> = self
                .templates()
                .get(ins.site_kind, ins.template_version)
                .map(|t| t.rule_outcomes(&ins.answers).into_iter().collect())
                .unwrap_or_default();
            approved.entry(ins.site_id).or_default().push(Approved {
                approved_at: at,
                outcomes,
            });
        }

        let sites: Vec<(String, String, String)> = {
            let mut st = self
                .conn()
                .prepare_cached("SELECT id, kind, village_code FROM sites ORDER BY id")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        let with_attributes = defs.kinds_reading_attributes();
        let none: BTreeMap<String, Value> = BTreeMap::new();
        for (id, kind, village) in sites {
            let kind = SiteKind::from_key(&kind).ok_or_else(|| bad_row(&id, "site kind", &kind))?;
            let attributes = if with_attributes.contains(&kind) {
                self.read_site(&id)?.attributes
            } else {
                none.clone()
            };
            cov.add_site(&SiteFacts {
                kind,
                village_code: &village,
                attributes: &attributes,
                approved: approved.get(&id).map_or(&[], Vec::as_slice),
            });
        }

        type FindingRow = (
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<i64>,
        );
        let findings: Vec<FindingRow> = {
            let mut st = self.conn().prepare_cached(
                "SELECT id, site_kind, village_code, status, raised_at, deadline, closed_at
                 FROM findings ORDER BY id",
            )?;
            st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        for (id, kind, village, status, raised_at, deadline, closed_at) in findings {
            cov.add_finding(&FindingFacts {
                site_kind: SiteKind::from_key(&kind)
                    .ok_or_else(|| bad_row(&id, "site kind", &kind))?,
                village_code: &village,
                status: FindingStatus::from_key(&status)
                    .ok_or_else(|| bad_row(&id, "finding status", &status))?,
                raised_at,
                deadline: deadline.as_deref(),
                closed_at,
            });
        }

        let mut rows = Vec::new();
        for area in &self.identity.areas {
            rows.extend(cov.rows(Divisions::luoyang(), area));
        }
        Ok(rows)
    }
}
