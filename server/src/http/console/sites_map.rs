//! The county office's map: every site of an area as a dot coloured by its
//! latest state, drawn as inline SVG on a plain background with the
//! villages' names at their sites' centre, so it needs no tile server and
//! no script. Drawn for areas of at most [`MAP_SITES_MAX`] sites (a
//! township, a small county); above that the page says so and the GeoJSON
//! download carries every site for a GIS.
//!
//! A site's state, first that applies: an overdue open finding, an open
//! finding, not inspected (no approved inspection in the period), passed
//! (every rule of its latest approved inspection in the period has the good
//! outcome: a rule holds, or an adverse rule does not), failed.

use super::Lang;
use crate::storage::reports::{FindingRow, Reports};
use crate::storage::{Result, StorageError};
use fieldbook_core::model::indicator::Period;
use fieldbook_core::model::{FindingStatus, Templates};
use std::collections::{BTreeMap, HashMap};

/// Most sites drawn; a county of a large registry is left to the GeoJSON.
pub const MAP_SITES_MAX: usize = 3_000;

/// Each dot names its site (a tooltip) when the map has at most this many:
/// a county's thousand names would weigh more than the rest of the page.
const DOT_TITLES_MAX: usize = 300;

/// Village names are written when the map shows at most this many villages.
const VILLAGE_LABELS_MAX: usize = 60;

const W: f64 = 720.0;
const H: f64 = 480.0;
const MARGIN: f64 = 24.0;

/// A site's state on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Overdue,
    Finding,
    NotInspected,
    Passed,
    Failed,
}

impl State {
    pub const ALL: [State; 5] = [
        State::NotInspected,
        State::Passed,
        State::Failed,
        State::Finding,
        State::Overdue,
    ];

    pub fn key(self) -> &'static str {
        match self {
            State::Overdue => "overdue",
            State::Finding => "finding",
            State::NotInspected => "not_inspected",
            State::Passed => "passed",
            State::Failed => "failed",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            State::Overdue => lang.t("问题逾期", "overdue finding"),
            State::Finding => lang.t("问题整改中", "open finding"),
            State::NotInspected => lang.t("未检查", "not inspected"),
            State::Passed => lang.t("达标", "passed"),
            State::Failed => lang.t("不达标", "failed"),
        }
    }
}

/// One dot; `title` is empty on a crowded map.
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub state: &'static str,
    pub title: String,
}

/// The drawn map: dots, village names, and counts per state for the
/// legend; `too_many` when the area has more sites than are drawn.
#[derive(Default)]
pub struct SitesMap {
    pub dots: Vec<Dot>,
    pub labels: Vec<(f64, f64, String)>,
    /// `(state key, label, count)`.
    pub legend: Vec<(&'static str, &'static str, usize)>,
    pub without_position: usize,
    pub too_many: Option<usize>,
    /// Tiles under the dots, when a tile server is configured.
    pub tiles: Vec<super::map::Tile>,
}

struct Site {
    name: String,
    village: String,
    lat: f64,
    lon: f64,
    state: State,
}

/// Reads the sites and findings of `area` and draws them.
pub fn draw(
    src: &dyn Reports,
    area: &str,
    period: &Period,
    today: &str,
    village_name: &dyn Fn(&str) -> String,
    lang: Lang,
    tiles: Option<&super::map::TileSource>,
) -> Result<SitesMap> {
    // Open findings per site, overdue or not.
    let mut findings: HashMap<String, State> = HashMap::new();
    src.scan_findings(area, &mut |f: FindingRow| {
        let status = FindingStatus::from_key(&f.status);
        if status == Some(FindingStatus::Closed) {
            return Ok(());
        }
        let overdue = f.deadline.as_deref().is_some_and(|d| d < today);
        let s = if overdue {
            State::Overdue
        } else {
            State::Finding
        };
        let e = findings.entry(f.site_id).or_insert(s);
        *e = (*e).min(s);
        Ok(())
    })?;
    let mut sites = Vec::new();
    let mut total = 0usize;
    let mut counts: BTreeMap<State, usize> = BTreeMap::new();
    let mut without_position = 0;
    crate::coverage::site_features(src, area, period, &mut |f| {
        total += 1;
        let state = if let Some(s) = findings.get(&f.id) {
            *s
        } else if f.latest_approved_at.is_none() {
            State::NotInspected
        } else {
            let t = Templates::builtin().latest(f.kind);
            let good = f.outcomes.iter().all(|(rule, holds)| {
                let adverse = t.and_then(|t| t.rule(rule)).is_some_and(|r| r.adverse);
                *holds != adverse
            });
            if good { State::Passed } else { State::Failed }
        };
        *counts.entry(state).or_default() += 1;
        match (f.lat, f.lon) {
            (Some(lat), Some(lon)) if lat.is_finite() && lon.is_finite() => {
                if sites.len() < MAP_SITES_MAX {
                    sites.push(Site {
                        name: format!(
                            "{} · {}",
                            f.name,
                            lang.t(f.kind.label_zh(), f.kind.label_en())
                        ),
                        village: f.village_code,
                        lat,
                        lon,
                        state,
                    });
                }
            }
            _ => without_position += 1,
        }
        Ok(())
    })
    .map_err(|e: StorageError| e)?;
    let mut map = SitesMap {
        legend: State::ALL
            .iter()
            .map(|s| (s.key(), s.label(lang), counts.get(s).copied().unwrap_or(0)))
            .collect(),
        without_position,
        ..Default::default()
    };
    if total > MAP_SITES_MAX {
        map.too_many = Some(total);
        return Ok(map);
    }
    if sites.is_empty() {
        return Ok(map);
    }
    let pts: Vec<(f64, f64)> = sites.iter().map(|s| (s.lat, s.lon)).collect();
    let frame = super::map::Frame::fit(&pts, W, H, MARGIN, tiles);
    let at = |lat: f64, lon: f64| frame.at(lat, lon);
    let mut villages: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
    // Worse states drawn last, on top.
    sites.sort_by_key(|s| std::cmp::Reverse(s.state));
    let titled = sites.len() <= DOT_TITLES_MAX;
    for s in &sites {
        let (x, y) = at(s.lat, s.lon);
        let v = villages.entry(s.village.clone()).or_insert((0.0, 0.0, 0));
        v.0 += x;
        v.1 += y;
        v.2 += 1;
        map.dots.push(Dot {
            x,
            y,
            state: s.state.key(),
            title: if titled {
                format!("{} — {}", s.name, s.state.label(lang))
            } else {
                String::new()
            },
        });
    }
    // Names only where they can be read.
    if villages.len() <= VILLAGE_LABELS_MAX {
        for (code, (x, y, n)) in villages {
            let n = n as f64;
            map.labels
                .push(((x / n).round(), (y / n).round(), village_name(&code)));
        }
    }
    map.tiles = frame.tiles;
    Ok(map)
}
