//! The findings board (问题整改): findings of the user's areas with their
//! lifecycle (found → assigned 交办 → rectifying → closure requested →
//! closed 核查销号, or sent back), escalation (督办), overdue by China date;
//! a finding's page with its steps; raising a finding from an inspection.
//!
//! Raising and every step are Automerge changes made with the console
//! session's actor and pushed through ingest, as in [`super::inspection`];
//! the buttons are the steps [`policy::finding_steps`] accepts.

use super::inspection::{hex_bytes, scoped, steps_refused};
use super::session::Web;
use super::{Frame, china_time, page_error, place_name, render, step_outcome};
use crate::error::AppError;
use crate::http::state::AppState;
use crate::storage::review::FindingsQuery;
use crate::storage::{Outcome, Session};
use askama::Template;
use automerge::{ActorId, Automerge};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use fieldbook_core::doc::{self, RecordKind};
use fieldbook_core::model::workflow::{china_date, fold_finding};
use fieldbook_core::model::{Event, EventKind, Finding, FindingStatus, Site, SiteKind};
use fieldbook_core::policy::{self, Context, SiteFacts};
use fieldbook_core::sync::wire::{Item, ItemKind, doc_id_bytes};

/// Rows per page of the board.
const PAGE_ROWS: u32 = 50;

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct BoardFilter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub area: String,
    /// `1`: only overdue findings.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub overdue: String,
    /// `1`: only escalated findings.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub escalated: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub before: String,
}

pub struct BoardRow {
    pub id: String,
    pub title: String,
    pub site: String,
    pub place: String,
    pub status_key: String,
    pub status: String,
    pub responsible: String,
    pub deadline: String,
    pub overdue: bool,
    pub escalated: bool,
    pub raised: String,
}

#[derive(Template)]
#[template(path = "console/findings.html")]
struct BoardPage {
    frame: Frame,
    filter: BoardFilter,
    statuses: Vec<(String, String, bool)>,
    rows: Vec<BoardRow>,
    next: Option<String>,
    today: String,
}

/// `GET /findings`.
pub async fn board(State(st): State<AppState>, web: Web, Query(f): Query<BoardFilter>) -> Response {
    let lang = web.lang;
    let who = &web.session.pusher;
    let today = china_date(st.now());
    let mut q = FindingsQuery {
        areas: who.areas.clone(),
        limit: PAGE_ROWS,
        escalated_only: f.escalated == "1",
        overdue_on: (f.overdue == "1").then(|| today.clone()),
        ..Default::default()
    };
    if !f.status.is_empty() {
        match FindingStatus::from_key(&f.status) {
            Some(s) => q.statuses = vec![s.key().into()],
            None => {
                return page_error(
                    AppError::BadRequest(format!("unknown status {:?}", f.status)),
                    lang,
                );
            }
        }
    }
    if !f.area.is_empty() {
        if !fieldbook_core::model::area::is_code(&f.area) {
            return page_error(
                AppError::BadRequest(format!("{:?} is not a division code", f.area)),
                lang,
            );
        }
        if !who.covers(&f.area) {
            return page_error(
                AppError::Forbidden(format!("area {} is outside your areas", f.area)),
                lang,
            );
        }
        q.area = Some(f.area.clone());
    }
    if !f.before.is_empty() {
        match f
            .before
            .split_once('.')
            .and_then(|(a, id)| Some((a.parse::<i64>().ok()?, id.to_owned())))
        {
            Some(k) => q.before = Some(k),
            None => {
                return page_error(
                    AppError::BadRequest(format!("{:?} is not a page key", f.before)),
                    lang,
                );
            }
        }
    }
    let page = match st.db(move |s| s.findings_list(&q)).await {
        Ok(p) => p,
        Err(e) => return page_error(e, lang),
    };
    let rows = page
        .rows
        .into_iter()
        .map(|r| {
            let status = FindingStatus::from_key(&r.status);
            let overdue = status != Some(FindingStatus::Closed)
                && r.deadline.as_deref().is_some_and(|d| d < today.as_str());
            BoardRow {
                title: r.title,
                site: format!(
                    "{} · {}",
                    r.site_name,
                    SiteKind::from_key(&r.site_kind)
                        .map_or(r.site_kind.as_str(), |k| lang.t(k.label_zh(), k.label_en()))
                ),
                place: place_name(&r.village_code),
                status: status.map_or(r.status.clone(), |s| {
                    lang.t(s.label_zh(), s.label_en()).to_owned()
                }),
                status_key: r.status,
                responsible: r.responsible.unwrap_or_default(),
                deadline: r.deadline.unwrap_or_default(),
                overdue,
                escalated: r.escalated,
                raised: china_time(r.raised_at),
                id: r.id,
            }
        })
        .collect();
    let statuses = FindingStatus::ALL
        .iter()
        .map(|s| {
            (
                s.key().to_owned(),
                lang.t(s.label_zh(), s.label_en()).to_owned(),
                f.status == s.key(),
            )
        })
        .collect();
    let next = page.next.map(|(at, id)| {
        let mut g = f.clone();
        g.before = format!("{at}.{id}");
        serde_urlencoded::to_string(&g).unwrap_or_default()
    });
    render(&BoardPage {
        frame: Frame::new(&web, "/findings"),
        filter: f,
        statuses,
        rows,
        next,
        today,
    })
}

/// The policy's view of the site and inspection a finding refers to.
struct Refs {
    site: Option<Site>,
    inspection: Option<(String, String)>,
}

impl Context for Refs {
    fn site(&self, id: &str) -> Option<SiteFacts> {
        self.site
            .as_ref()
            .filter(|s| s.id == id)
            .map(|s| SiteFacts {
                kind: s.kind,
                village_code: s.village_code.clone(),
            })
    }
    fn inspection_site(&self, id: &str) -> Option<String> {
        self.inspection
            .as_ref()
            .filter(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
    }
}

/// A finding and its site, if the user's areas hold it.
fn read(
    s: &dyn crate::storage::Storage,
    who: &policy::Identity,
    id: &str,
) -> Result<(Automerge, Finding, Option<Site>), AppError> {
    scoped(
        s,
        who,
        id,
        RecordKind::Finding,
        doc::finding::read,
        |f: &Finding| (f.village_code.as_str(), f.site_id.as_str()),
    )
}

pub struct EventRow {
    pub at: String,
    pub who: String,
    pub what: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/finding.html")]
struct FindingPage {
    frame: Frame,
    id: String,
    title: String,
    description: String,
    site: String,
    place: String,
    inspection: Option<String>,
    status_key: String,
    status: String,
    responsible: String,
    deadline: String,
    overdue: bool,
    escalated: bool,
    /// `(hash, "before" | "after")`.
    photos: Vec<(String, String)>,
    events: Vec<EventRow>,
    steps: Vec<(String, String)>,
}

fn step_key(k: EventKind) -> &'static str {
    match k {
        EventKind::Assigned => "assign",
        EventKind::Closed => "close",
        EventKind::SentBack => "send_back",
        EventKind::Escalated => "escalate",
        EventKind::Rectifying => "rectifying",
        EventKind::ClosureRequested => "request_closure",
        _ => "comment",
    }
}

fn step_of(key: &str) -> Option<EventKind> {
    [
        EventKind::Assigned,
        EventKind::Closed,
        EventKind::SentBack,
        EventKind::Escalated,
        EventKind::Rectifying,
        EventKind::ClosureRequested,
        EventKind::Commented,
    ]
    .into_iter()
    .find(|k| step_key(*k) == key)
}

/// `GET /findings/{id}`.
pub async fn page(State(st): State<AppState>, web: Web, Path(id): Path<String>) -> Response {
    let lang = web.lang;
    let who = web.session.pusher.clone();
    let i2 = id.clone();
    let (_, f, site) = match st.db_app(move |s| read(s, &who, &i2)).await {
        Ok(x) => x,
        Err(e) => return page_error(e, lang),
    };
    let state = fold_finding(&f.events);
    let today = china_date(st.now());
    let steps = policy::finding_steps(
        &web.session.pusher,
        &f,
        &Refs {
            site: site.clone(),
            inspection: None,
        },
    );
    // Photos added once rectification began show the result.
    let rectifying_at = f
        .events
        .iter()
        .find(|e| e.kind == EventKind::Rectifying)
        .map(|e| e.at);
    let photos = f
        .photos
        .iter()
        .map(|p| {
            let after = rectifying_at.is_some_and(|t| p.added_at >= t);
            (
                p.hash.clone(),
                if after {
                    lang.t("整改后", "after")
                } else {
                    lang.t("整改前", "before")
                }
                .to_owned(),
            )
        })
        .collect();
    let events = f
        .events
        .iter()
        .map(|e| EventRow {
            at: china_time(e.at),
            who: e.author.clone(),
            what: lang.t(e.kind.label_zh(), e.kind.label_en()).to_owned(),
            detail: [
                e.responsible.clone(),
                e.deadline
                    .clone()
                    .map(|d| format!("{} {d}", lang.t("期限", "due"))),
                e.comment.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · "),
        })
        .collect();
    render(&FindingPage {
        frame: Frame::new(&web, "/findings"),
        title: f.title.clone(),
        description: f.description.clone(),
        site: site.as_ref().map_or_else(String::new, |s| s.name.clone()),
        place: place_name(&f.village_code),
        inspection: f.inspection_id.clone(),
        status_key: state.status.key().to_owned(),
        status: lang
            .t(state.status.label_zh(), state.status.label_en())
            .to_owned(),
        responsible: state.responsible.clone().unwrap_or_default(),
        deadline: state.deadline.clone().unwrap_or_default(),
        overdue: state.is_overdue(&today),
        escalated: state.escalated,
        photos,
        events,
        steps: steps
            .into_iter()
            .map(|k| {
                (
                    step_key(k).to_owned(),
                    lang.t(k.label_zh(), k.label_en()).to_owned(),
                )
            })
            .collect(),
        id,
    })
}

#[derive(serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    responsible: String,
    #[serde(default)]
    deadline: String,
}

fn trimmed(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Pushes one item through ingest as `session`; the ingest's verdict.
fn push(
    s: &dyn crate::storage::Storage,
    session: &Session,
    item: Item,
    now: i64,
) -> Result<(), AppError> {
    match s.ingest(session, std::slice::from_ref(&item), now)?.pop() {
        Some(Outcome::Stored { .. }) => Ok(()),
        Some(Outcome::Rejected(code, message)) => Err(steps_refused(code, message)),
        None => Err(AppError::Internal("ingest answered nothing".into())),
    }
}

fn actor(session: &Session) -> Result<ActorId, AppError> {
    hex_bytes(&session.actor)
        .map(ActorId::from)
        .ok_or_else(|| AppError::Internal("session actor is not hex".into()))
}

/// `POST /findings/{id}/{step}`.
pub async fn act(
    State(st): State<AppState>,
    web: Web,
    Path((id, step)): Path<(String, String)>,
    axum::Form(form): axum::Form<StepForm>,
) -> Response {
    let lang = web.lang;
    if let Err(e) = web.check_csrf(&form.csrf) {
        return page_error(e, lang);
    }
    let Some(kind) = step_of(&step) else {
        return page_error(AppError::NotFound(format!("no step {step:?}")), lang);
    };
    let comment = trimmed(&form.comment);
    let need = |ok: bool, zh: &str, en: &str| {
        (!ok).then(|| page_error(AppError::BadRequest(lang.t(zh, en).to_owned()), lang))
    };
    let missing = match kind {
        EventKind::Assigned => need(
            trimmed(&form.responsible).is_some()
                && fieldbook_core::model::value::is_iso_date(form.deadline.trim()),
            "交办需要填写责任单位和整改期限",
            "an assignment needs a responsible party and a deadline",
        ),
        EventKind::SentBack | EventKind::Commented => need(
            comment.is_some(),
            "请填写说明",
            "this step needs a comment saying why",
        ),
        _ => None,
    };
    if let Some(r) = missing {
        return r;
    }
    let now = st.now();
    let (session, i2) = (web.session.clone(), id.clone());
    let (responsible, deadline) = (trimmed(&form.responsible), trimmed(&form.deadline));
    let result = st
        .db_app(move |s| {
            let (mut d, f, _) = read(s, &session.pusher, &i2)?;
            d.set_actor(actor(&session)?);
            let e = Event {
                id: uuid::Uuid::now_v7().to_string(),
                kind,
                author: session.pusher.user.clone(),
                role: session.pusher.role,
                at: now,
                revision: None,
                comment,
                responsible: responsible.filter(|_| kind == EventKind::Assigned),
                deadline: deadline.filter(|_| kind == EventKind::Assigned),
            };
            let _ = f;
            let mut tx = d.transaction();
            doc::finding::add_event(&mut tx, &e).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.commit();
            let change = d
                .get_last_local_change()
                .ok_or_else(|| AppError::Internal("the step made no change".into()))?;
            let item = Item {
                kind: ItemKind::Change,
                record: RecordKind::Finding,
                doc_id: doc_id_bytes(&i2).ok_or_else(|| AppError::NotFound(i2.clone()))?,
                data: change.raw_bytes().to_vec(),
            };
            push(s, &session, item, now)
        })
        .await;
    let to = format!("/findings/{id}");
    step_outcome(
        &st,
        &web,
        result.map(|()| to),
        &format!("console_finding_{step}"),
        id,
    )
    .await
}

#[derive(serde::Deserialize)]
pub struct RaiseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    responsible: String,
    #[serde(default)]
    deadline: String,
}

/// `POST /inspections/{id}/finding`: a new finding on the inspection's
/// site, raised by the session's user.
pub async fn raise(
    State(st): State<AppState>,
    web: Web,
    Path(inspection_id): Path<String>,
    axum::Form(form): axum::Form<RaiseForm>,
) -> Response {
    let lang = web.lang;
    if let Err(e) = web.check_csrf(&form.csrf) {
        return page_error(e, lang);
    }
    let Some(title) = trimmed(&form.title) else {
        return page_error(
            AppError::BadRequest(lang.t("问题需要标题", "a finding needs a title").into()),
            lang,
        );
    };
    let deadline = trimmed(&form.deadline);
    if deadline
        .as_deref()
        .is_some_and(|d| !fieldbook_core::model::value::is_iso_date(d))
    {
        return page_error(
            AppError::BadRequest(lang.t("期限应为日期", "the deadline is a date").into()),
            lang,
        );
    }
    let now = st.now();
    let session = web.session.clone();
    let (desc, responsible, iid) = (
        form.description.trim().to_owned(),
        trimmed(&form.responsible),
        inspection_id.clone(),
    );
    let result = st
        .db_app(move |s| {
            let (_, ins, _) = super::inspection::read(s, &session.pusher, &iid)?;
            let id = uuid::Uuid::now_v7().to_string();
            let found = Event {
                id: uuid::Uuid::now_v7().to_string(),
                kind: EventKind::Found,
                author: session.pusher.user.clone(),
                role: session.pusher.role,
                at: now,
                revision: None,
                comment: None,
                responsible,
                deadline,
            };
            let f = Finding {
                id: id.clone(),
                inspection_id: Some(ins.id.clone()),
                site_id: ins.site_id.clone(),
                site_kind: ins.site_kind,
                village_code: ins.village_code.clone(),
                title,
                description: desc,
                raised_by: session.pusher.user.clone(),
                raised_at: now,
                photos: Vec::new(),
                events: vec![found],
            };
            let mut d = Automerge::new().with_actor(actor(&session)?);
            let mut tx = d.transaction();
            doc::finding::create(&mut tx, &f).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.commit();
            let item = Item {
                kind: ItemKind::Document,
                record: RecordKind::Finding,
                doc_id: doc_id_bytes(&id).ok_or_else(|| AppError::Internal("new id".into()))?,
                data: d.save(),
            };
            push(s, &session, item, now)?;
            Ok(format!("/findings/{id}"))
        })
        .await;
    let what = match &result {
        Ok(to) => format!(
            "{} from inspection {inspection_id}",
            to.trim_start_matches("/findings/")
        ),
        Err(_) => format!("from inspection {inspection_id}"),
    };
    step_outcome(&st, &web, result, "console_raise_finding", what).await
}
