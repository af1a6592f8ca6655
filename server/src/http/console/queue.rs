//! The review queue: inspections of the user's areas, oldest waiting
//! first, with filters, counts per status and paging by key.
//!
//! The query string is the whole state of the page, so a supervisor can
//! bookmark a filter and the inspection page can return to the same view
//! (and find the next inspection waiting in it).

use super::session::Web;
use super::{Frame, Lang, china_time, page_error, place_name, render};
use crate::error::AppError;
use crate::http::state::AppState;
use crate::storage::review::{QueueQuery, QueueRow};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use fieldbook_core::model::area::Level;
use fieldbook_core::model::workflow::china_day_start_ms;
use fieldbook_core::model::{Divisions, InspectionStatus, SiteKind};
use fieldbook_core::policy::Identity;

/// Rows per page.
pub const PAGE_ROWS: u32 = 50;

/// The queue's filters as the query string carries them. Every field is
/// text from the address bar: checked before use.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Filter {
    /// A status key, `all`, or empty: submitted (what waits for review).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub area: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub inspector: String,
    /// China date `YYYY-MM-DD`, submitted on or after.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// China date, submitted on or before.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// Integrity flag; flags are not computed yet, so only "" is valid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flag: String,
    /// `submitted_at.id` of the previous page's last row.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub after: String,
}

impl Filter {
    /// The storage query for `who`, or what is wrong with the filter.
    pub fn query(&self, who: &Identity, limit: u32) -> Result<QueueQuery, AppError> {
        let bad = |m: String| Err(AppError::BadRequest(m));
        let mut q = QueueQuery {
            areas: who.areas.clone(),
            limit,
            ..Default::default()
        };
        // A supervisor opens the queue on what waits for review.
        if self.status.is_empty() {
            q.statuses = vec![InspectionStatus::Submitted.key().into()];
        } else if self.status != "all" {
            match InspectionStatus::from_key(&self.status) {
                Some(s) if s != InspectionStatus::Draft => q.statuses = vec![s.key().into()],
                _ => return bad(format!("unknown status {:?}", self.status)),
            }
        }
        if !self.area.is_empty() {
            if !self.area.bytes().all(|b| b.is_ascii_digit()) || self.area.len() > 12 {
                return bad(format!("{:?} is not a division code", self.area));
            }
            if !who.covers(&self.area) && !who.contains_area(&self.area) {
                return Err(AppError::Forbidden(format!(
                    "area {} is outside user {}'s areas",
                    self.area, who.user
                )));
            }
            q.area = Some(self.area.clone());
        }
        if !self.kind.is_empty() {
            match SiteKind::from_key(&self.kind) {
                Some(k) => q.site_kind = Some(k.key().into()),
                None => return bad(format!("unknown site kind {:?}", self.kind)),
            }
        }
        if !self.inspector.is_empty() {
            if !fieldbook_core::model::limits::fits(
                &self.inspector,
                fieldbook_core::model::limits::USER_CHARS_MAX,
            ) {
                return bad("the inspector's name is too long".into());
            }
            q.inspector = Some(self.inspector.trim().to_owned());
        }
        let day = |d: &str| {
            china_day_start_ms(d)
                .ok_or_else(|| AppError::BadRequest(format!("{d:?} is not a date (YYYY-MM-DD)")))
        };
        if !self.from.is_empty() {
            q.from = Some(day(&self.from)?);
        }
        if !self.to.is_empty() {
            q.until = Some(day(&self.to)? + 86_400_000);
        }
        if !self.flag.is_empty() {
            return bad("integrity flags are not computed yet".into());
        }
        if !self.after.is_empty() {
            let parsed = self
                .after
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())));
            match parsed {
                Some(k) => q.after = Some(k),
                None => return bad(format!("{:?} is not a page key", self.after)),
            }
        }
        Ok(q)
    }

    /// The query string of this filter (without the page key).
    pub fn query_string(&self) -> String {
        let f = Filter {
            after: String::new(),
            ..self.clone()
        };
        serde_urlencoded::to_string(&f).unwrap_or_default()
    }
}

pub struct Row {
    pub id: String,
    pub submitted: String,
    pub site: String,
    pub kind: String,
    pub place: String,
    pub inspector: String,
    pub status_key: String,
    pub status: String,
    pub revision: u32,
    pub photos: u32,
    pub conflicts: u32,
}

fn row(r: QueueRow, lang: Lang) -> Row {
    let kind = SiteKind::from_key(&r.site_kind).map_or(r.site_kind.clone(), |k| {
        lang.t(k.label_zh(), k.label_en()).into()
    });
    let status = InspectionStatus::from_key(&r.status).map_or(r.status.clone(), |s| {
        lang.t(s.label_zh(), s.label_en()).into()
    });
    Row {
        submitted: china_time(r.submitted_at),
        place: place_name(&r.village_code),
        id: r.id,
        site: r.site_name,
        kind,
        inspector: r.inspector,
        status_key: r.status,
        status,
        revision: r.revision,
        photos: r.photos,
        conflicts: r.conflicts,
    }
}

/// A choice of a `<select>`: `(value, label, selected)`.
pub type Choice = (String, String, bool);

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    frame: Frame,
    filter: Filter,
    /// `(status key, label, count, current)`; the first is "all".
    tabs: Vec<(String, String, u64, bool)>,
    areas: Vec<Choice>,
    kinds: Vec<Choice>,
    rows: Vec<Row>,
    /// Query string of this view, for links to inspections.
    view: String,
    next: Option<String>,
}

/// The townships a supervisor filters by and, under the chosen township
/// (or for a township's own users), its villages.
fn area_choices(who: &Identity, current: &str) -> Vec<Choice> {
    let d = Divisions::luoyang();
    let mut out = Vec::new();
    let prefixes: Vec<&str> = if who.whole_deployment() {
        vec![""]
    } else {
        who.areas.iter().map(String::as_str).collect()
    };
    for p in prefixes {
        let level = Level::from_code_len(p.len());
        let list = match level {
            None | Some(Level::Province | Level::City | Level::County) => {
                d.within(p, Level::Township)
            }
            Some(Level::Township) => {
                let mut v = d.within(p, Level::Township);
                v.extend(d.within(p, Level::Village));
                v
            }
            Some(Level::Village) => d.get(p).into_iter().collect(),
        };
        for a in list {
            let chosen_township = current.len() >= 9
                && a.level == Level::Township
                && current.starts_with(a.code.as_str())
                && level != Some(Level::Township);
            out.push((a.code.clone(), place_name(&a.code), a.code == current));
            if chosen_township {
                for v in d.within(&a.code, Level::Village) {
                    out.push((
                        v.code.clone(),
                        format!("　{}", place_name(&v.code)),
                        v.code == current,
                    ));
                }
            }
        }
    }
    out
}

/// `GET /queue`.
pub async fn page(State(st): State<AppState>, web: Web, Query(f): Query<Filter>) -> Response {
    let lang = web.lang;
    let who = web.session.pusher.clone();
    let q = match f.query(&who, PAGE_ROWS) {
        Ok(q) => q,
        Err(e) => return page_error(e, lang),
    };
    let (page, counts) = match st
        .db(move |s| Ok((s.review_queue(&q)?, s.status_counts(&q)?)))
        .await
    {
        Ok(x) => x,
        Err(e) => return page_error(e, lang),
    };
    let count = |k: &str| counts.iter().find(|(s, _)| s == k).map_or(0, |c| c.1);
    let mut tabs = Vec::new();
    for s in [
        InspectionStatus::Submitted,
        InspectionStatus::Returned,
        InspectionStatus::Approved,
    ] {
        tabs.push((
            s.key().into(),
            lang.t(s.label_zh(), s.label_en()).into(),
            count(s.key()),
            f.status == s.key() || (f.status.is_empty() && s == InspectionStatus::Submitted),
        ));
    }
    tabs.push((
        "all".into(),
        lang.t("全部", "All").to_owned(),
        ["submitted", "returned", "approved"]
            .iter()
            .map(|k| count(k))
            .sum(),
        f.status == "all",
    ));
    let kinds = SiteKind::ALL
        .iter()
        .map(|k| {
            (
                k.key().to_owned(),
                lang.t(k.label_zh(), k.label_en()).to_owned(),
                f.kind == k.key(),
            )
        })
        .collect();
    let next = page.next.map(|(at, id)| {
        let mut g = f.clone();
        g.after = format!("{at}.{id}");
        serde_urlencoded::to_string(&g).unwrap_or_default()
    });
    render(&QueuePage {
        frame: Frame::new(&web, "/queue"),
        areas: area_choices(&who, &f.area),
        kinds,
        view: f.query_string(),
        tabs,
        rows: page.rows.into_iter().map(|r| row(r, lang)).collect(),
        next,
        filter: f,
    })
}
