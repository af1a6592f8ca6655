//! One inspection as a supervisor reviews it, and the review steps on it.
//!
//! A step (approve, return, comment) is an Automerge change made by the
//! console session's own actor on the record as the server holds it, then
//! pushed through [`crate::storage::Records::ingest`] exactly as a phone's
//! change is: the same budget, author, layout and policy checks, the same
//! log the phones pull from. The buttons shown are the steps
//! [`fieldbook_core::policy::inspection_steps`] accepts, which tries each
//! through the same policy.

use super::map::{Frame as MapFrame, Tile, TileSource};
use super::queue::Filter;
use super::session::Web;
use super::{Frame, Lang, china_time, page_error, place_name, render};
use crate::error::AppError;
use crate::http::state::AppState;
use crate::storage::{Outcome, Session};
use askama::Template;
use automerge::{ActorId, Automerge};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use fieldbook_core::doc::{self, RecordKind};
use fieldbook_core::model::template::{FieldType, Template as Checklist};
use fieldbook_core::model::workflow::fold_inspection;
use fieldbook_core::model::{EventKind, Inspection, InspectionStatus, Site, Templates, Value};
use fieldbook_core::policy::{self, Context, SiteFacts};
use fieldbook_core::sync::wire::{Item, ItemKind, RejectCode, doc_id_bytes};

/// Reads a stored record of `kind`; 404 when unknown or quarantined.
pub(super) fn load(
    s: &dyn crate::storage::Storage,
    id: &str,
    kind: RecordKind,
) -> Result<Automerge, AppError> {
    let missing = || AppError::NotFound(format!("no {} {id}", kind.key()));
    let Some((k, bytes)) = s.record(id)? else {
        return Err(missing());
    };
    if k != kind {
        return Err(missing());
    }
    fieldbook_core::store::untrusted(|| Automerge::load(&bytes))
        .map_err(AppError::Internal)?
        .map_err(|e| AppError::Internal(format!("stored record {id}: {e}")))
}

/// A record of `kind`, read by `read`, and the site it refers to, if the
/// user's areas hold the record's village (`place` gives village and
/// site): the one scope check of every console page and step.
pub(super) fn scoped<T>(
    s: &dyn crate::storage::Storage,
    who: &policy::Identity,
    id: &str,
    kind: RecordKind,
    read: impl FnOnce(&Automerge) -> Result<T, doc::DocError>,
    place: impl FnOnce(&T) -> (&str, &str),
) -> Result<(Automerge, T, Option<Site>), AppError> {
    if doc_id_bytes(id).is_none() {
        return Err(AppError::NotFound(format!("{id:?} is not a record id")));
    }
    let d = load(s, id, kind)?;
    let record = read(&d).map_err(|e| AppError::Internal(e.to_string()))?;
    let (village, site_id) = place(&record);
    if !who.covers(village) {
        return Err(AppError::Forbidden(format!(
            "{} {id} lies in area {village}, outside user {}'s areas",
            kind.key(),
            who.user
        )));
    }
    let site = match load(s, site_id, RecordKind::Site) {
        Ok(sd) => doc::site::read(&sd).ok(),
        Err(AppError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    Ok((d, record, site))
}

/// The inspection and its site, if the user's areas hold the inspection.
pub(super) fn read(
    s: &dyn crate::storage::Storage,
    who: &policy::Identity,
    id: &str,
) -> Result<(Automerge, Inspection, Option<Site>), AppError> {
    scoped(
        s,
        who,
        id,
        RecordKind::Inspection,
        doc::inspection::read,
        |i: &Inspection| (i.village_code.as_str(), i.site_id.as_str()),
    )
}

/// The policy's view of the one site and inspection a step on this page
/// could refer to.
struct OneSite(Option<Site>, Option<(String, String)>);

impl Context for OneSite {
    fn site(&self, id: &str) -> Option<SiteFacts> {
        self.0.as_ref().filter(|s| s.id == id).map(|s| SiteFacts {
            kind: s.kind,
            village_code: s.village_code.clone(),
        })
    }
    fn inspection_site(&self, id: &str) -> Option<String> {
        self.1
            .as_ref()
            .filter(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
    }
}

/// Whether `who` may raise a finding from `ins`: a finding raised now,
/// tried through the policy.
fn may_raise(who: &policy::Identity, ins: &Inspection, ctx: &OneSite) -> bool {
    let trial = fieldbook_core::model::Finding {
        id: "-".into(),
        inspection_id: Some(ins.id.clone()),
        site_id: ins.site_id.clone(),
        site_kind: ins.site_kind,
        village_code: ins.village_code.clone(),
        title: "-".into(),
        description: String::new(),
        raised_by: who.user.clone(),
        raised_at: 0,
        photos: Vec::new(),
        events: vec![fieldbook_core::model::Event {
            id: "-".into(),
            kind: EventKind::Found,
            author: who.user.clone(),
            role: who.role,
            at: 0,
            revision: None,
            comment: None,
            responsible: None,
            deadline: None,
        }],
    };
    policy::check_write(who, None, &doc::Record::Finding(trial), ctx).is_ok()
}

/// What a refusal by ingest answers in the console.
pub(super) fn steps_refused(code: RejectCode, message: String) -> AppError {
    match code {
        RejectCode::Forbidden | RejectCode::OutOfScope | RejectCode::ForeignActor => {
            AppError::Forbidden(message)
        }
        _ => AppError::BadRequest(message),
    }
}

pub struct Answer {
    /// The heading of the checklist's part this answer begins.
    pub section: Option<String>,
    pub label: String,
    pub value: String,
    /// Every value of a field edited on two phones at once, when it was.
    pub conflict: Vec<String>,
}

pub struct RuleView {
    pub label: String,
    pub holds: bool,
    /// The outcome is the good one: a rule holds, or an adverse rule
    /// (a problem) does not.
    pub good: bool,
}

pub struct PhotoView {
    pub hash: String,
    pub field: String,
    pub taken: String,
    pub gps: String,
}

pub struct EventView {
    pub at: String,
    pub who: String,
    pub what: String,
    pub revision: String,
    pub comment: String,
}

/// The inline map: the site's registered position and the inspection's
/// fix on a plain background, no tiles.
pub struct MapView {
    pub site: Option<(f64, f64)>,
    pub fix: Option<(f64, f64)>,
    pub distance: String,
    pub tiles: Vec<Tile>,
}

fn value_text(t: Option<&Checklist>, key: &str, v: &Value, lang: Lang) -> String {
    if let Some(l) = t.and_then(|t| t.value_label(key, v)) {
        return lang.t(&l.zh, &l.en).to_owned();
    }
    let unit = t
        .and_then(|t| t.field(key))
        .and_then(|f| match &f.ty {
            FieldType::Number { unit, .. } => unit.clone(),
            _ => None,
        })
        .unwrap_or_default();
    match v {
        Value::Bool(true) => lang.t("是", "yes").to_owned(),
        Value::Bool(false) => lang.t("否", "no").to_owned(),
        Value::Number(n) => format!("{n} {unit}").trim_end().to_owned(),
        Value::Text(s) => s.clone(),
    }
}

/// The site's registered position and the inspection's fix in a 360×220
/// map, north up, on tiles when a tile server is configured.
fn map(site: Option<&Site>, ins: &Inspection, tiles: Option<&TileSource>) -> MapView {
    let s = site.and_then(|s| s.location);
    let f = ins.location.map(|f| f.point());
    let distance = match (s, f) {
        (Some(a), Some(b)) => format!("{:.0} m", a.distance_m(&b)),
        _ => String::new(),
    };
    let pts: Vec<(f64, f64)> = [s, f]
        .into_iter()
        .flatten()
        .map(|p| (p.lat, p.lon))
        .collect();
    let frame = MapFrame::fit(&pts, 360.0, 220.0, 30.0, tiles);
    MapView {
        site: s.map(|p| frame.at(p.lat, p.lon)),
        fix: f.map(|p| frame.at(p.lat, p.lon)),
        distance,
        tiles: frame.tiles,
    }
}

#[derive(Template)]
#[template(path = "console/inspection.html")]
struct InspectionPage {
    frame: Frame,
    id: String,
    view: String,
    site_name: String,
    site_kind: String,
    place: String,
    village_code: String,
    attributes: Vec<(String, String)>,
    status_key: String,
    status: String,
    revision: u32,
    inspector: String,
    started: String,
    fix: String,
    map: MapView,
    answers: Vec<Answer>,
    outcomes: Vec<RuleView>,
    photos: Vec<PhotoView>,
    notes: Vec<(String, String, String)>,
    events: Vec<EventView>,
    can_approve: bool,
    can_return: bool,
    can_comment: bool,
    can_raise: bool,
}

/// `GET /inspections/{id}`.
pub async fn page(
    State(st): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Query(f): Query<Filter>,
) -> Response {
    let lang = web.lang;
    let who = web.session.pusher.clone();
    let i2 = id.clone();
    let (_, ins, site) = match st.db_app(move |s| read(s, &who, &i2)).await {
        Ok(x) => x,
        Err(e) => return page_error(e, lang),
    };
    let who = &web.session.pusher;
    let ctx = OneSite(site.clone(), Some((ins.id.clone(), ins.site_id.clone())));
    let steps = policy::inspection_steps(who, &ins, &ctx);
    let can_raise = may_raise(who, &ins, &ctx);
    let t = Templates::builtin().get(ins.site_kind, ins.template_version);
    let answers = match t {
        // In template order, each part of the checklist under its heading.
        Some(t) => {
            let mut heading: Option<String> = None;
            let mut out = Vec::new();
            for fd in &t.fields {
                if let Some(sec) = &fd.section {
                    heading = Some(lang.t(&sec.zh, &sec.en).to_owned());
                }
                let Some(v) = ins.answers.get(&fd.key) else {
                    continue;
                };
                out.push(Answer {
                    section: heading.take(),
                    label: lang.t(&fd.label.zh, &fd.label.en).to_owned(),
                    value: value_text(Some(t), &fd.key, v, lang),
                    conflict: ins
                        .conflicts
                        .get(&fd.key)
                        .map(|all| {
                            all.iter()
                                .map(|v| value_text(Some(t), &fd.key, v, lang))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
            out
        }
        None => ins
            .answers
            .iter()
            .map(|(k, v)| Answer {
                section: None,
                label: k.clone(),
                value: value_text(None, k, v, lang),
                conflict: Vec::new(),
            })
            .collect(),
    };
    let outcomes = t.map_or_else(Vec::new, |t| {
        t.rule_outcomes(&ins.answers)
            .into_iter()
            .map(|(rid, holds)| {
                let rule = t.rule(&rid);
                RuleView {
                    label: rule
                        .map_or(rid.clone(), |r| lang.t(&r.label.zh, &r.label.en).to_owned()),
                    holds,
                    good: holds != rule.is_some_and(|r| r.adverse),
                }
            })
            .collect()
    });
    let field_label = |k: &str| {
        t.and_then(|t| t.field(k)).map_or(k.to_owned(), |f| {
            lang.t(&f.label.zh, &f.label.en).to_owned()
        })
    };
    let photos = ins
        .photos
        .iter()
        .map(|p| PhotoView {
            hash: p.hash.clone(),
            field: p.field.as_deref().map(field_label).unwrap_or_default(),
            taken: p
                .taken_at
                .map(china_time)
                .unwrap_or_else(|| lang.t("无拍摄时间", "no capture time").to_owned()),
            gps: p
                .gps
                .map(|g| format!("{:.5}, {:.5}", g.lat, g.lon))
                .unwrap_or_else(|| lang.t("无位置", "no position").to_owned()),
        })
        .collect();
    let events = ins
        .events
        .iter()
        .map(|e| EventView {
            at: china_time(e.at),
            who: e.author.clone(),
            what: lang.t(e.kind.label_zh(), e.kind.label_en()).to_owned(),
            revision: e.revision.map(|r| r.to_string()).unwrap_or_default(),
            comment: e.comment.clone().unwrap_or_default(),
        })
        .collect();
    let status = fold_inspection(&ins.events);
    let attributes = site
        .as_ref()
        .map(|s| {
            let specs = s.kind.attributes();
            s.attributes
                .iter()
                .map(|(k, v)| {
                    let label = specs
                        .iter()
                        .find(|a| a.key == k)
                        .map_or(k.as_str(), |a| lang.t(a.label_zh, a.label_en));
                    (label.to_owned(), value_text(None, k, v, lang))
                })
                .collect()
        })
        .unwrap_or_default();
    let fix = match &ins.location {
        Some(l) => format!(
            "{:.5}, {:.5} (±{:.0} m{})",
            l.lat,
            l.lon,
            l.accuracy_m,
            if l.mock {
                lang.t("，模拟位置", ", mock location")
            } else {
                ""
            }
        ),
        None => lang.t("无定位", "no fix").to_owned(),
    };
    render(&InspectionPage {
        frame: Frame::new(&web, "/queue"),
        view: f.query_string(),
        map: map(site.as_ref(), &ins, st.tiles.as_deref()),
        site_name: site.as_ref().map_or_else(String::new, |s| s.name.clone()),
        site_kind: lang
            .t(ins.site_kind.label_zh(), ins.site_kind.label_en())
            .to_owned(),
        place: place_name(&ins.village_code),
        village_code: ins.village_code.clone(),
        attributes,
        status_key: status.status.key().to_owned(),
        status: lang
            .t(status.status.label_zh(), status.status.label_en())
            .to_owned(),
        revision: status.revision,
        inspector: ins.inspector.clone(),
        started: china_time(ins.started_at),
        fix,
        answers,
        outcomes,
        photos,
        notes: ins
            .notes
            .iter()
            .map(|n| (china_time(n.at), n.author.clone(), n.text.clone()))
            .collect(),
        events,
        can_approve: steps.contains(&EventKind::Approved),
        can_return: steps.contains(&EventKind::Returned),
        can_comment: steps.contains(&EventKind::Commented),
        can_raise,
        id,
    })
}

#[derive(serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    /// The queue view to come back to (a query string).
    #[serde(default)]
    view: String,
}

/// Makes `kind` on inspection `id` as `session`'s actor and pushes it
/// through ingest. The outcome is the ingest's, word for word.
pub fn write_step(
    s: &dyn crate::storage::Storage,
    session: &Session,
    id: &str,
    kind: EventKind,
    comment: Option<String>,
    now: i64,
) -> Result<(), AppError> {
    let (mut d, ins, _) = read(s, &session.pusher, id)?;
    let actor = hex_bytes(&session.actor)
        .ok_or_else(|| AppError::Internal("session actor is not hex".into()))?;
    d.set_actor(ActorId::from(actor));
    let e = policy::inspection_event(
        &session.pusher,
        kind,
        &ins.events,
        comment,
        uuid::Uuid::now_v7().to_string(),
        now,
    );
    let mut tx = d.transaction();
    doc::inspection::add_event(&mut tx, &e).map_err(|e| AppError::Internal(e.to_string()))?;
    tx.commit();
    let change = d
        .get_last_local_change()
        .ok_or_else(|| AppError::Internal("the step made no change".into()))?;
    let item = Item {
        kind: ItemKind::Change,
        record: RecordKind::Inspection,
        doc_id: doc_id_bytes(id).ok_or_else(|| AppError::NotFound(id.to_owned()))?,
        data: change.raw_bytes().to_vec(),
    };
    match s.ingest(session, std::slice::from_ref(&item), now)?.pop() {
        Some(Outcome::Stored { .. }) => Ok(()),
        Some(Outcome::Rejected(code, message)) => Err(steps_refused(code, message)),
        None => Err(AppError::Internal("ingest answered nothing".into())),
    }
}

pub(super) fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// `POST /inspections/{id}/{approve|return|comment}`.
pub async fn act(
    State(st): State<AppState>,
    web: Web,
    Path((id, step)): Path<(String, String)>,
    axum::Form(form): axum::Form<StepForm>,
) -> Response {
    let lang = web.lang;
    if let Err(e) = web.check_csrf(&form.csrf) {
        let _ = st
            .audit(
                &web.session.pusher.user,
                Some(&web.session.pusher.device),
                "refused",
                format!("console {step} on {id}: CSRF token missing or wrong"),
            )
            .await;
        return page_error(e, lang);
    }
    let comment = form.comment.trim().to_owned();
    let kind = match step.as_str() {
        "approve" => EventKind::Approved,
        "return" if comment.is_empty() => {
            return page_error(
                AppError::BadRequest(lang.t("退回必须填写原因", "a return needs a reason").into()),
                lang,
            );
        }
        "return" => EventKind::Returned,
        "comment" if comment.is_empty() => {
            return page_error(
                AppError::BadRequest(lang.t("评论不能为空", "a comment needs text").into()),
                lang,
            );
        }
        "comment" => EventKind::Commented,
        _ => return page_error(AppError::NotFound(format!("no step {step:?}")), lang),
    };
    let now = st.now();
    let (session, i2) = (web.session.clone(), id.clone());
    let c = (!comment.is_empty()).then_some(comment);
    let result = st
        .db_app(move |s| write_step(s, &session, &i2, kind, c, now))
        .await;
    let (user, device) = (&web.session.pusher.user, &web.session.pusher.device);
    if let Err(e) = result {
        let _ = st
            .audit(
                user,
                Some(device),
                "refused",
                format!("console {step} on {id}: {e}"),
            )
            .await;
        return page_error(e, lang);
    }
    let _ = st
        .audit(user, Some(device), &format!("console_{step}"), id.clone())
        .await;
    let view: Filter = serde_urlencoded::from_str(&form.view).unwrap_or_default();
    let qs = view.query_string();
    if kind == EventKind::Commented {
        return Redirect::to(&format!("/inspections/{id}?{qs}")).into_response();
    }
    // After a review, the next inspection waiting in the same view.
    let who = web.session.pusher.clone();
    let mut waiting = view.clone();
    waiting.status = InspectionStatus::Submitted.key().into();
    let next = match waiting.query(&who, 2) {
        Ok(q) => st
            .db(move |s| s.review_queue(&q))
            .await
            .ok()
            .and_then(|p| p.rows.into_iter().find(|r| r.id != id))
            .map(|r| r.id),
        Err(_) => None,
    };
    match next {
        Some(n) => Redirect::to(&format!("/inspections/{n}?{qs}")).into_response(),
        None => Redirect::to(&format!("/queue?{qs}")).into_response(),
    }
}

/// `GET /console/photos/{hash}`: the same scope check as the phone API.
pub async fn photo(State(st): State<AppState>, web: Web, Path(hash): Path<String>) -> Response {
    crate::http::photos::readable(&st, &web.session.pusher.areas, &hash, false)
        .await
        .unwrap_or_else(|e| page_error(e, web.lang))
}

/// `GET /console/photos/{hash}/thumb`: made once, then served from disk.
pub async fn thumb(State(st): State<AppState>, web: Web, Path(hash): Path<String>) -> Response {
    crate::http::photos::readable(&st, &web.session.pusher.areas, &hash, true)
        .await
        .unwrap_or_else(|e| page_error(e, web.lang))
}
