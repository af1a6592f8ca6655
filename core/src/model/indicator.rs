//! Coverage indicators: what county offices report, as data, and the one
//! evaluator the server's exports and a phone's own-township view share.
//!
//! Definitions live in `indicators/indicators.v1.toml` (format in that
//! file's header): each indicator counts units of one kind — rural
//! villages, township seats, sites, or findings — and judges each from the
//! **latest approved inspection in the period**. A site with none counts in
//! the denominator only, and is reported as "not inspected".
//!
//! [`Coverage`] is fed one site and one finding at a time, so a caller can
//! stream a million sites from SQL in bounded memory: it keeps per-village
//! tallies only. [`Coverage::rows`] then rolls villages up into townships,
//! counties and the city by **adding numerators and denominators**, never
//! by averaging rates, and attaches the target in force at the period's end.
//! Pure: no I/O.

use super::area::{self, Divisions, Level};
use super::template::Label;
use super::workflow::{FindingStatus, china_date};
use super::{SiteKind, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

/// The built-in definitions.
pub const BUILTIN_TEXT: &str = include_str!("../../indicators/indicators.v1.toml");

/// What an indicator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    RuralVillage,
    TownshipSeat,
    Site,
    Finding,
}

/// When a unit counts in the numerator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Numerator {
    /// Site units: the latest approved inspection's template rule holds.
    Rule(String),
    /// Village or seat units: some site of the kind in it has the rule
    /// holding on its latest approved inspection.
    AnySite(String),
    /// Village units: sites whose rule holds serve at least the
    /// `rural_sewage_household_share_min` share of the village's households.
    HouseholdsShare(String),
    /// Site units: enough approved inspections in the period for the
    /// site's supervision level (`tailings_inspections_per_year`).
    InspectedOnSchedule,
    /// Finding units, raised in the period: verified closed by its end.
    Closed,
    /// Finding units, due in the period: verified closed on or before the
    /// deadline.
    ClosedByDeadline,
}

/// A target: at least `rate` by the date `by`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub by: String,
    pub rate: f64,
}

/// One indicator.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub id: String,
    pub name: Label,
    pub unit: Unit,
    /// The site kind judged; `None` only for findings on any site.
    #[serde(default, deserialize_with = "kind_key")]
    pub kind: Option<SiteKind>,
    pub numerator: Numerator,
    /// Site units: only sites whose registry attribute of this name is set
    /// (and not `false`) count.
    #[serde(default, rename = "where")]
    pub site_filter: Option<String>,
    /// Village units: leave out `exempt_villages`.
    #[serde(default)]
    pub exempt: bool,
    /// Milestones in date order; empty for "report only".
    #[serde(default)]
    pub targets: Vec<Target>,
}

fn kind_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SiteKind>, D::Error> {
    let s = String::deserialize(d)?;
    SiteKind::from_key(&s)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown site kind {s:?}")))
}

/// Parameters shared by the indicators.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub rural_sewage_household_share_min: f64,
    #[serde(default)]
    pub exempt_villages: Vec<String>,
    /// Supervision level ("1", "2", "3") to approved inspections a year.
    pub tailings_inspections_per_year: BTreeMap<String, u32>,
}

/// A definitions file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicators {
    pub params: Params,
    pub indicators: Vec<Indicator>,
}

/// A definitions file that does not hold together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndicatorError {
    #[error("indicator definitions: {0}")]
    Syntax(String),
    #[error("indicator {id}: {reason}")]
    Invalid { id: String, reason: String },
}

impl Indicators {
    /// Site kinds whose indicators read registry attributes (household
    /// counts, supervision levels, the closure list); the others need only
    /// a site's kind and village, so readers can skip their attributes.
    pub fn kinds_reading_attributes(&self) -> HashSet<SiteKind> {
        self.indicators
            .iter()
            .filter(|i| {
                i.site_filter.is_some()
                    || i.unit == Unit::RuralVillage
                    || matches!(
                        i.numerator,
                        Numerator::HouseholdsShare(_) | Numerator::InspectedOnSchedule
                    )
            })
            .filter_map(|i| i.kind)
            .collect()
    }

    /// The template rules the indicators of `kind` read, in definition
    /// order: a reader that keeps outcomes compactly keeps only these.
    pub fn rules_read(&self, kind: SiteKind) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for i in self.indicators.iter().filter(|i| i.kind == Some(kind)) {
            if let Numerator::Rule(r) | Numerator::AnySite(r) | Numerator::HouseholdsShare(r) =
                &i.numerator
                && !out.contains(&r.as_str())
            {
                out.push(r);
            }
        }
        out
    }

    /// The built-in definitions.
    pub fn builtin() -> &'static Indicators {
        static BUILTIN: OnceLock<Indicators> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // Compiled in and parsed by the `builtin_indicators_parse` test:
            // a failure here is a build defect, not an input error.
            #[allow(clippy::expect_used)]
            Indicators::parse(BUILTIN_TEXT).expect("built-in indicators must parse")
        })
    }

    /// Parses and checks a definitions file: unique ids, a kind wherever the
    /// unit needs one, numerators that fit their unit, rules that exist in
    /// the kind's template, targets between 0 and 1 in date order.
    pub fn parse(text: &str) -> Result<Indicators, IndicatorError> {
        let defs: Indicators =
            toml::from_str(text).map_err(|e| IndicatorError::Syntax(e.to_string()))?;
        let templates = super::Templates::builtin();
        let mut seen = HashSet::new();
        let share = defs.params.rural_sewage_household_share_min;
        if !(0.0..=1.0).contains(&share) {
            return Err(IndicatorError::Syntax(format!(
                "rural_sewage_household_share_min {share} is not between 0 and 1"
            )));
        }
        for code in &defs.params.exempt_villages {
            if code.len() != 12 || !area::is_code(code) {
                return Err(IndicatorError::Syntax(format!(
                    "exempt village {code:?} is not a 12-digit village code"
                )));
            }
        }
        for i in &defs.indicators {
            let bad = |reason: String| IndicatorError::Invalid {
                id: i.id.clone(),
                reason,
            };
            if !seen.insert(i.id.as_str()) {
                return Err(bad("defined twice".into()));
            }
            let fits = matches!(
                (i.unit, &i.numerator),
                (
                    Unit::Site,
                    Numerator::Rule(_) | Numerator::InspectedOnSchedule
                ) | (
                    Unit::RuralVillage,
                    Numerator::AnySite(_) | Numerator::HouseholdsShare(_)
                ) | (Unit::TownshipSeat, Numerator::AnySite(_))
                    | (
                        Unit::Finding,
                        Numerator::Closed | Numerator::ClosedByDeadline
                    )
            );
            if !fits {
                return Err(bad(format!(
                    "numerator {:?} does not apply to {:?} units",
                    i.numerator, i.unit
                )));
            }
            if i.kind.is_none() && i.unit != Unit::Finding {
                return Err(bad("needs a site kind".into()));
            }
            if let (
                Some(kind),
                Numerator::Rule(r) | Numerator::AnySite(r) | Numerator::HouseholdsShare(r),
            ) = (i.kind, &i.numerator)
            {
                let known = templates
                    .all()
                    .filter(|t| t.kind == kind)
                    .any(|t| t.rule(r).is_some());
                if !known {
                    return Err(bad(format!("no template of {kind} has a rule {r:?}")));
                }
            }
            let mut last = "";
            for t in &i.targets {
                if !super::value::is_iso_date(&t.by) || t.by.as_str() <= last {
                    return Err(bad(format!(
                        "target date {:?} is not a date after the one before",
                        t.by
                    )));
                }
                if !(0.0..=1.0).contains(&t.rate) {
                    return Err(bad(format!(
                        "target rate {} is not between 0 and 1",
                        t.rate
                    )));
                }
                last = &t.by;
            }
        }
        Ok(defs)
    }

    pub fn get(&self, id: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.id == id)
    }
}

impl Indicator {
    /// The target in force for a period ending on `end`: the first
    /// milestone on or after it, else the last one (the plan's goal stays).
    pub fn target_for(&self, end: &str) -> Option<f64> {
        self.targets
            .iter()
            .find(|t| t.by.as_str() >= end)
            .or(self.targets.last())
            .map(|t| t.rate)
    }
}

/// The reporting period, in China dates (`YYYY-MM-DD`, both ends included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `None`: from the beginning ("as of" a date).
    pub from: Option<String>,
    pub to: String,
}

impl Period {
    pub fn year(y: i32) -> Period {
        Period {
            from: Some(format!("{y:04}-01-01")),
            to: format!("{y:04}-12-31"),
        }
    }

    pub fn as_of(date: &str) -> Period {
        Period {
            from: None,
            to: date.to_owned(),
        }
    }

    /// Whether the China date of `ms` falls in the period.
    pub fn contains(&self, ms: i64) -> bool {
        self.contains_date(&china_date(ms))
    }

    fn contains_date(&self, d: &str) -> bool {
        d <= self.to.as_str() && self.from.as_deref().is_none_or(|f| d >= f)
    }

    /// The year schedules are counted over: the period itself for a year,
    /// the calendar year of the end date for "as of".
    pub fn schedule_window(&self) -> Period {
        match &self.from {
            Some(_) => self.clone(),
            None => Period {
                from: Some(format!("{}-01-01", self.to.get(..4).unwrap_or("0000"))),
                to: self.to.clone(),
            },
        }
    }
}

/// An approved inspection of a site: when it was approved and which
/// template rules held for its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    pub approved_at: i64,
    pub outcomes: BTreeMap<String, bool>,
}

/// One registered site with its approved inspections (any order, any
/// period: [`Coverage`] keeps those in the period).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFacts<'a> {
    pub kind: SiteKind,
    /// The site's current village: a site moved to another village counts
    /// there.
    pub village_code: &'a str,
    pub attributes: &'a BTreeMap<String, Value>,
    pub approved: &'a [Approved],
}

/// A site with its approvals already reduced to what the evaluator reads
/// of them, for readers that reduce as they scan (a city's report reads
/// approvals apart from sites, and keeps one small summary per site).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSummary<'a> {
    pub kind: SiteKind,
    pub village_code: &'a str,
    pub attributes: &'a BTreeMap<String, Value>,
    /// The latest approval in the period.
    pub latest: Option<&'a Approved>,
    /// Approvals in the period's schedule window
    /// ([`Period::schedule_window`]).
    pub in_schedule_window: u32,
}

/// One finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingFacts<'a> {
    pub site_kind: SiteKind,
    pub village_code: &'a str,
    pub status: FindingStatus,
    pub raised_at: i64,
    pub deadline: Option<&'a str>,
    pub closed_at: Option<i64>,
}

/// Counts for one indicator in one area.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub numerator: u64,
    pub denominator: u64,
    /// Units with no approved inspection in the period.
    pub not_inspected: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.numerator += o.numerator;
        self.denominator += o.denominator;
        self.not_inspected += o.not_inspected;
    }

    /// `None` when the denominator is 0.
    pub fn rate(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

/// One row of a coverage report.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageRow {
    pub indicator: String,
    pub area_code: String,
    pub area_name: String,
    pub level: Level,
    pub tally: Tally,
    pub rate: Option<f64>,
    pub target: Option<f64>,
    /// Target minus rate, when both exist (positive: still to go).
    pub gap: Option<f64>,
}

/// Per-village state for village- and seat-level indicators.
#[derive(Debug, Default, Clone)]
struct VillageAcc {
    /// A site of the kind holds the rule.
    any_holds: bool,
    /// A site of the kind has an approved inspection in the period.
    any_inspected: bool,
    /// Households served by sites whose rule holds, and by all sites.
    served_ok: u64,
    served_all: u64,
    /// The largest `village_households` any site states.
    households: u64,
}

/// The evaluator. Feed sites and findings, then read [`Coverage::rows`].
pub struct Coverage<'d> {
    defs: &'d Indicators,
    period: Period,
    /// Site and finding tallies per (indicator index, village code).
    direct: HashMap<(usize, String), Tally>,
    /// Village/seat accumulators per (indicator index, village code).
    villages: HashMap<(usize, String), VillageAcc>,
}

fn count(attrs: &BTreeMap<String, Value>, key: &str) -> u64 {
    attrs
        .get(key)
        .and_then(Value::as_number)
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map_or(0, |n| n as u64)
}

impl<'d> Coverage<'d> {
    pub fn new(defs: &'d Indicators, period: Period) -> Coverage<'d> {
        Coverage {
            defs,
            period,
            direct: HashMap::new(),
            villages: HashMap::new(),
        }
    }

    /// Folds in the counts of another evaluator of the same definitions and
    /// period, fed with other sites and findings: a report can be computed
    /// in parts (one per county, on several cores) and added up.
    pub fn merge(&mut self, other: Coverage<'d>) {
        for (k, t) in other.direct {
            self.direct.entry(k).or_default().add(&t);
        }
        for (k, v) in other.villages {
            let acc = self.villages.entry(k).or_default();
            acc.any_holds |= v.any_holds;
            acc.any_inspected |= v.any_inspected;
            acc.served_ok += v.served_ok;
            acc.served_all += v.served_all;
            acc.households = acc.households.max(v.households);
        }
    }

    /// Counts one registered site.
    pub fn add_site(&mut self, s: &SiteFacts<'_>) {
        let latest = s
            .approved
            .iter()
            .filter(|a| self.period.contains(a.approved_at))
            .max_by_key(|a| a.approved_at);
        let window = self.period.schedule_window();
        let done = s
            .approved
            .iter()
            .filter(|a| window.contains(a.approved_at))
            .count();
        self.add_site_summary(&SiteSummary {
            kind: s.kind,
            village_code: s.village_code,
            attributes: s.attributes,
            latest,
            in_schedule_window: u32::try_from(done).unwrap_or(u32::MAX),
        });
    }

    /// Counts one registered site whose approvals the caller has reduced.
    pub fn add_site_summary(&mut self, s: &SiteSummary<'_>) {
        let latest = s.latest;
        for (ix, ind) in self.defs.indicators.iter().enumerate() {
            if ind.kind != Some(s.kind) {
                continue;
            }
            match (&ind.unit, &ind.numerator) {
                (Unit::Site, num) => {
                    if let Some(attr) = &ind.site_filter {
                        let on = match s.attributes.get(attr) {
                            None => false,
                            Some(Value::Bool(b)) => *b,
                            Some(_) => true,
                        };
                        if !on {
                            continue;
                        }
                    }
                    let holds = match num {
                        Numerator::Rule(r) => {
                            latest.is_some_and(|a| a.outcomes.get(r) == Some(&true))
                        }
                        Numerator::InspectedOnSchedule => {
                            let done = s.in_schedule_window;
                            let level = count(s.attributes, "supervision_level").to_string();
                            let needed = self
                                .defs
                                .params
                                .tailings_inspections_per_year
                                .get(&level)
                                .copied()
                                .unwrap_or(1);
                            u64::from(done) >= u64::from(needed)
                        }
                        _ => false,
                    };
                    let t = self
                        .direct
                        .entry((ix, s.village_code.to_owned()))
                        .or_default();
                    t.denominator += 1;
                    t.numerator += u64::from(holds);
                    t.not_inspected += u64::from(latest.is_none());
                }
                (
                    Unit::RuralVillage | Unit::TownshipSeat,
                    Numerator::AnySite(r) | Numerator::HouseholdsShare(r),
                ) => {
                    let key = match ind.unit {
                        Unit::TownshipSeat => s.village_code.get(..9).unwrap_or(s.village_code),
                        _ => s.village_code,
                    };
                    let holds = latest.is_some_and(|a| a.outcomes.get(r) == Some(&true));
                    let acc = self.villages.entry((ix, key.to_owned())).or_default();
                    acc.any_holds |= holds;
                    acc.any_inspected |= latest.is_some();
                    let served = count(s.attributes, "households_served");
                    acc.served_all += served;
                    if holds {
                        acc.served_ok += served;
                    }
                    acc.households = acc
                        .households
                        .max(count(s.attributes, "village_households"));
                }
                _ => {}
            }
        }
    }

    /// Counts one finding.
    pub fn add_finding(&mut self, f: &FindingFacts<'_>) {
        let end = self.period.to.as_str();
        for (ix, ind) in self.defs.indicators.iter().enumerate() {
            if ind.unit != Unit::Finding || ind.kind.is_some_and(|k| k != f.site_kind) {
                continue;
            }
            let closed_date = f
                .closed_at
                .filter(|_| f.status == FindingStatus::Closed)
                .map(china_date);
            let (counts, holds) = match ind.numerator {
                Numerator::Closed => (
                    self.period.contains(f.raised_at),
                    closed_date.as_deref().is_some_and(|d| d <= end),
                ),
                Numerator::ClosedByDeadline => match f.deadline {
                    Some(due) => (
                        self.period.contains_date(due),
                        closed_date.as_deref().is_some_and(|d| d <= due),
                    ),
                    None => (false, false),
                },
                _ => (false, false),
            };
            if counts {
                let t = self
                    .direct
                    .entry((ix, f.village_code.to_owned()))
                    .or_default();
                t.denominator += 1;
                t.numerator += u64::from(holds);
            }
        }
    }

    /// Village-level tallies of indicator `ix` for every village the
    /// indicator counts in `divisions`, plus sites in villages the division
    /// list does not know.
    fn village_tallies(
        &self,
        ix: usize,
        divisions: &Divisions,
        area: &str,
    ) -> BTreeMap<String, Tally> {
        let ind = &self.defs.indicators[ix];
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        match ind.unit {
            Unit::Site | Unit::Finding => {
                for ((i, v), t) in &self.direct {
                    if *i == ix && v.starts_with(area) {
                        out.entry(v.clone()).or_default().add(t);
                    }
                }
            }
            Unit::RuralVillage => {
                let exempt: HashSet<&str> = if ind.exempt {
                    self.defs
                        .params
                        .exempt_villages
                        .iter()
                        .map(String::as_str)
                        .collect()
                } else {
                    HashSet::new()
                };
                let share = self.defs.params.rural_sewage_household_share_min;
                for v in divisions.within(area, Level::Village) {
                    if !area::is_rural_village(&v.code) || exempt.contains(v.code.as_str()) {
                        continue;
                    }
                    let acc = self.villages.get(&(ix, v.code.clone()));
                    let holds = acc.is_some_and(|a| match &ind.numerator {
                        Numerator::HouseholdsShare(_) => {
                            // A village's own household count when a site
                            // states it; else the households its registered
                            // facilities serve.
                            let base = if a.households > 0 {
                                a.households
                            } else {
                                a.served_all
                            };
                            base > 0 && a.served_ok as f64 >= share * base as f64
                        }
                        _ => a.any_holds,
                    });
                    out.insert(
                        v.code.clone(),
                        Tally {
                            numerator: u64::from(holds),
                            denominator: 1,
                            not_inspected: u64::from(!acc.is_some_and(|a| a.any_inspected)),
                        },
                    );
                }
            }
            Unit::TownshipSeat => {
                for t in divisions.within(area, Level::Township) {
                    if !area::has_township_seat(&t.code) {
                        continue;
                    }
                    let acc = self.villages.get(&(ix, t.code.clone()));
                    out.insert(
                        t.code.clone(),
                        Tally {
                            numerator: u64::from(acc.is_some_and(|a| a.any_holds)),
                            denominator: 1,
                            not_inspected: u64::from(!acc.is_some_and(|a| a.any_inspected)),
                        },
                    );
                }
            }
        }
        out
    }

    /// Rows for every indicator and every area inside `area` (a code
    /// prefix; "" for everything) at the city, county, township and village
    /// levels, each a sum of the level below.
    pub fn rows(&self, divisions: &Divisions, area: &str) -> Vec<CoverageRow> {
        let mut rows = Vec::new();
        for (ix, ind) in self.defs.indicators.iter().enumerate() {
            let leaves = self.village_tallies(ix, divisions, area);
            let mut sums: BTreeMap<String, Tally> = BTreeMap::new();
            for (code, t) in &leaves {
                for level in [Level::City, Level::County, Level::Township, Level::Village] {
                    if let Some(prefix) = area::ancestor(code, level) {
                        sums.entry(prefix.to_owned()).or_default().add(t);
                    }
                }
            }
            // Areas with no units still get a row (0 of 0), so gaps show.
            for level in [Level::City, Level::County, Level::Township, Level::Village] {
                for a in divisions.within(area, level) {
                    sums.entry(a.code.clone()).or_default();
                }
            }
            let target = ind.target_for(&self.period.to);
            for (code, tally) in sums {
                let Some(level) = Level::from_code_len(code.len()) else {
                    continue;
                };
                // Ancestors above the requested area are not part of it.
                if code.len() < area.len() {
                    continue;
                }
                let rate = tally.rate();
                rows.push(CoverageRow {
                    indicator: ind.id.clone(),
                    area_name: divisions
                        .get(&code)
                        .map_or_else(String::new, |a| a.name.clone()),
                    area_code: code,
                    level,
                    tally,
                    rate,
                    target,
                    gap: match (target, rate) {
                        (Some(t), Some(r)) => Some(t - r),
                        _ => None,
                    },
                });
            }
        }
        rows
    }
}

#[cfg(test)]
#[path = "indicator_tests.rs"]
mod tests;
