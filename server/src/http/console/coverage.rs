//! The county office's coverage page: every indicator of an area with
//! numerator, denominator, rate, target and gap, the areas one level down
//! to drill into, the period as a year or an as-of date, and the downloads
//! (the same files as `fieldbook export`, through the same code).
//!
//! The figures come from [`crate::coverage::coverage_rows`], the function
//! the exports use, under one of the export slots, so a page and a file
//! can never disagree and a burst of dashboards never delays a phone.

use super::session::Web;
use super::{Frame, Lang, page_error, place_name, render};
use crate::error::AppError;
use crate::http::exports::{CoverageQuery, RecordsQuery};
use crate::http::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use fieldbook_core::model::area::Level;
use fieldbook_core::model::indicator::{CoverageRow, Indicators, Unit};
use fieldbook_core::model::{Divisions, Role};

/// Roles that see coverage: the same as the exports'.
pub const COVERAGE_ROLES: &[Role] = &[Role::CountyOffice, Role::Admin];

#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct View {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// `YYYY-MM-DD`; an empty field of the form means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

pub struct Figure {
    pub name: String,
    pub unit: String,
    pub numerator: u64,
    pub denominator: u64,
    pub rate: String,
    pub target: String,
    pub gap: String,
    /// Below target.
    pub behind: bool,
}

pub struct Child {
    pub code: String,
    pub name: String,
    /// One cell per indicator, in the order of the header: the rate and
    /// its fraction.
    pub cells: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/coverage.html")]
struct CoveragePage {
    frame: Frame,
    area: String,
    area_name: String,
    /// `(code, name)` from the user's area down to this one.
    trail: Vec<(String, String)>,
    period_label: String,
    year: String,
    as_of: String,
    /// Query string of the period, for links.
    period_qs: String,
    figures: Vec<Figure>,
    headers: Vec<String>,
    children: Vec<Child>,
    child_level: String,
    /// `(label, href)`.
    downloads: Vec<(String, String)>,
    map: super::sites_map::SitesMap,
}

/// A village's everyday name: the official one without the county and
/// township in front and without the committee suffix
/// (`栾川县赤土店镇竹园村村民委员会` → `竹园村`).
fn short_name(code: &str) -> String {
    let d = Divisions::luoyang();
    let Some(area) = d.get(code) else {
        return code.to_owned();
    };
    let mut name = area.name.as_str();
    let mut up = area.parent.as_deref();
    let mut prefixes = Vec::new();
    while let Some(p) = up.and_then(|c| d.get(c)) {
        prefixes.push(p.name.as_str());
        up = p.parent.as_deref();
    }
    for p in prefixes.iter().rev() {
        name = name.strip_prefix(p).unwrap_or(name);
    }
    let short = match name.strip_suffix("村民委员会") {
        Some(s) if s.ends_with('村') => s.to_owned(),
        Some(s) => format!("{s}村"),
        None => match name.strip_suffix("居民委员会") {
            Some(s) if s.ends_with("社区") => s.to_owned(),
            Some(s) => format!("{s}社区"),
            None => name.to_owned(),
        },
    };
    if short.is_empty() {
        area.name.clone()
    } else {
        short
    }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

fn unit_label(u: &Unit, lang: Lang) -> &'static str {
    match u {
        Unit::RuralVillage => lang.t("行政村", "villages"),
        Unit::TownshipSeat => lang.t("乡镇驻地", "township seats"),
        Unit::Site => lang.t("点位", "sites"),
        Unit::Finding => lang.t("问题", "findings"),
    }
}

fn level_label(l: Option<Level>, lang: Lang) -> String {
    match l {
        Some(Level::Province) => lang.t("省", "province"),
        Some(Level::City) => lang.t("市", "city"),
        Some(Level::County) => lang.t("县（市、区）", "county"),
        Some(Level::Township) => lang.t("乡镇（街道）", "township"),
        Some(Level::Village) => lang.t("村", "village"),
        None => "",
    }
    .to_owned()
}

/// The area to show: the asked one inside the user's areas, else the
/// user's first area (a whole-deployment user: the division list's top).
fn area_of(web: &Web, asked: Option<String>) -> Result<String, AppError> {
    let asked = asked.filter(|a| !a.is_empty());
    let who = &web.session.pusher;
    match asked {
        Some(a) => crate::http::exports::area_for(&web.session, Some(a)),
        None => match who.areas.first() {
            Some(a) if a == fieldbook_core::policy::WHOLE_DEPLOYMENT => Ok(Divisions::luoyang()
                .within("", Level::City)
                .first()
                .map_or_else(|| "41".to_owned(), |a| a.code.clone())),
            Some(a) => Ok(a.clone()),
            None => Err(AppError::Forbidden("this user has no areas".into())),
        },
    }
}

/// `GET /coverage`.
pub async fn page(State(st): State<AppState>, web: Web, Query(v): Query<View>) -> Response {
    let lang = web.lang;
    if !COVERAGE_ROLES.contains(&web.session.pusher.role) {
        return page_error(
            AppError::Forbidden(format!(
                "the role {} may not read coverage",
                web.session.pusher.role
            )),
            lang,
        );
    }
    let area = match area_of(&web, v.area.clone()) {
        Ok(a) => a,
        Err(e) => return page_error(e, lang),
    };
    let as_of = v.as_of.clone().filter(|d| !d.is_empty());
    let q = CoverageQuery {
        format: "csv".into(),
        area: Some(area.clone()),
        year: if as_of.is_some() { None } else { v.year },
        as_of: as_of.clone(),
    };
    let period = match crate::http::exports::period(&q, st.now()) {
        Ok(p) => p,
        Err(e) => return page_error(e, lang),
    };
    let slot = match crate::http::exports::export_slot(&st).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang),
    };
    let (storage, a2, p2) = (st.storage.clone(), area.clone(), period.clone());
    let today = fieldbook_core::model::workflow::china_date(st.now());
    let tiles = st.tiles.clone();
    let drawn = st
        .db_app(move |_| {
            let _slot = slot;
            let src = storage.as_ref() as &dyn crate::storage::reports::Reports;
            let rows = crate::coverage::coverage_rows(
                src,
                Indicators::builtin(),
                Divisions::luoyang(),
                &a2,
                p2.clone(),
                &mut |_| {},
            )?;
            let village = |code: &str| short_name(code);
            let map =
                super::sites_map::draw(src, &a2, &p2, &today, &village, lang, tiles.as_deref())?;
            Ok((rows, map))
        })
        .await;
    let (rows, map): (Vec<CoverageRow>, super::sites_map::SitesMap) = match drawn {
        Ok(r) => r,
        Err(e) => return page_error(e, lang),
    };
    let defs = Indicators::builtin();
    let name_of = |id: &str| {
        defs.indicators
            .iter()
            .find(|i| i.id == id)
            .map_or(id.to_owned(), |i| lang.t(&i.name.zh, &i.name.en).to_owned())
    };
    let figures = rows
        .iter()
        .filter(|r| r.area_code == area)
        .map(|r| Figure {
            name: name_of(&r.indicator),
            unit: defs
                .indicators
                .iter()
                .find(|i| i.id == r.indicator)
                .map_or("", |i| unit_label(&i.unit, lang))
                .to_owned(),
            numerator: r.tally.numerator,
            denominator: r.tally.denominator,
            rate: percent(r.rate),
            target: percent(r.target),
            gap: match r.gap {
                Some(g) if g > 0.0 => format!("{} {:.1}", lang.t("差", "short by"), g * 100.0),
                Some(_) => lang.t("已达到", "met").to_owned(),
                None => String::new(),
            },
            behind: r.gap.is_some_and(|g| g > 0.0),
        })
        .collect();
    let level = Level::from_code_len(area.len());
    let child_level = match level {
        Some(Level::Province) => Some(Level::City),
        Some(Level::City) => Some(Level::County),
        Some(Level::County) => Some(Level::Township),
        Some(Level::Township) => Some(Level::Village),
        _ => None,
    };
    let ids: Vec<&str> = defs.indicators.iter().map(|i| i.id.as_str()).collect();
    // Rows come indicator by indicator; the table is area by area.
    let mut children: Vec<Child> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for r in rows.iter().filter(|r| Some(r.level) == child_level) {
        let n = *at.entry(r.area_code.clone()).or_insert_with(|| {
            children.push(Child {
                code: r.area_code.clone(),
                name: if r.level == Level::Village {
                    short_name(&r.area_code)
                } else {
                    r.area_name.clone()
                },
                cells: vec![(String::new(), String::new()); ids.len()],
            });
            children.len() - 1
        });
        if let Some(i) = ids.iter().position(|id| *id == r.indicator) {
            children[n].cells[i] = (
                percent(r.rate),
                format!("{}/{}", r.tally.numerator, r.tally.denominator),
            );
        }
    }
    children.sort_by(|a, b| a.code.cmp(&b.code));
    let who = &web.session.pusher;
    let mut trail = Vec::new();
    for l in [Level::City, Level::County, Level::Township, Level::Village] {
        if let Some(code) = fieldbook_core::model::area::ancestor(&area, l)
            && (who.covers(code) || code == area)
        {
            let name = Divisions::luoyang()
                .get(code)
                .map_or(code.to_owned(), |a| a.name.clone());
            trail.push((code.to_owned(), name));
        }
    }
    let period_view = View {
        area: None,
        year: if as_of.is_some() { None } else { v.year },
        as_of: as_of.clone(),
    };
    let period_qs = serde_urlencoded::to_string(&period_view).unwrap_or_default();
    let period_label = match &period.from {
        Some(from) => format!("{from} — {}", period.to),
        None => format!("{} {}", lang.t("截至", "as of"), period.to),
    };
    let year = period.to.get(..4).unwrap_or("").to_owned();
    let cov_q = |fmt: &str| {
        let mut s = format!("/console/exports/coverage?format={fmt}&area={area}");
        if !period_qs.is_empty() {
            s.push('&');
            s.push_str(&period_qs);
        }
        s
    };
    let downloads = vec![
        (
            lang.t("覆盖率 CSV", "Coverage CSV").to_owned(),
            cov_q("csv"),
        ),
        (
            lang.t("覆盖率 XLSX", "Coverage XLSX").to_owned(),
            cov_q("xlsx"),
        ),
        (
            lang.t("点位地图 GeoJSON", "Sites GeoJSON").to_owned(),
            cov_q("geojson"),
        ),
        (
            lang.t("检查记录 XLSX", "Records XLSX").to_owned(),
            format!("/console/exports/records?format=xlsx&area={area}"),
        ),
        (
            lang.t("检查记录 CSV", "Records CSV").to_owned(),
            format!("/console/exports/records?format=csv&area={area}"),
        ),
        (
            lang.t("问题清单 XLSX", "Findings XLSX").to_owned(),
            format!("/console/exports/findings?format=xlsx&area={area}"),
        ),
        (
            lang.t("问题清单 CSV", "Findings CSV").to_owned(),
            format!("/console/exports/findings?format=csv&area={area}"),
        ),
    ];
    render(&CoveragePage {
        frame: Frame::new(&web, "/coverage"),
        area_name: place_name(&area),
        trail,
        period_label,
        year,
        as_of: as_of.unwrap_or_default(),
        period_qs,
        figures,
        headers: ids.iter().map(|id| name_of(id)).collect(),
        children,
        child_level: level_label(child_level, lang),
        downloads,
        map,
        area,
    })
}

/// `GET /console/exports/coverage`: the export, for the console session.
pub async fn coverage_file(
    State(st): State<AppState>,
    web: Web,
    Query(q): Query<CoverageQuery>,
) -> Response {
    crate::http::exports::coverage_file(&st, &web.session, q)
        .await
        .unwrap_or_else(|e| page_error(e, web.lang))
}

/// `GET /console/exports/records`.
pub async fn records_file(
    State(st): State<AppState>,
    web: Web,
    Query(q): Query<RecordsQuery>,
) -> Response {
    crate::http::exports::records_file(&st, &web.session, q)
        .await
        .unwrap_or_else(|e| page_error(e, web.lang))
}

/// `GET /console/exports/findings`.
pub async fn findings_file(
    State(st): State<AppState>,
    web: Web,
    Query(q): Query<RecordsQuery>,
) -> Response {
    crate::http::exports::findings_file(&st, &web.session, q)
        .await
        .unwrap_or_else(|e| page_error(e, web.lang))
}
