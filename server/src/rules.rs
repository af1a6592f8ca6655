//! What a pushed change may do, decided by comparing the record before and
//! after it. The same checks the core API makes on the phone, made again
//! here because the server trusts no phone.
//!
//! Rather than inspecting Automerge operations, the server reads the record
//! ([`Record::read`], through the core's document readers) before and
//! after applying the change and compares the models: which parts changed, and whether the
//! pushing user's role may change them. Anything unreadable is invalid.

use automerge::Automerge;
use fieldbook_core::doc::{self, RecordKind};
use fieldbook_core::model::{Event, EventKind, Inspection, Role, SiteSource, Templates};
use fieldbook_core::sync::wire::RejectCode;

/// Who is pushing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pusher {
    pub user: String,
    pub role: Role,
    pub areas: Vec<String>,
    pub device: String,
}

impl Pusher {
    pub fn covers(&self, code: &str) -> bool {
        self.areas.iter().any(|a| code.starts_with(a.as_str()))
    }
}

/// The workflow events a change adds (for the audit log), or why it is refused.
pub type Verdict = Result<Vec<Event>, (RejectCode, String)>;

/// A record read from its document, once, for checks and projections.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Site(fieldbook_core::model::Site),
    Inspection(Inspection),
    Finding(fieldbook_core::model::Finding),
}

impl Record {
    /// Reads the record of `kind` from `doc`.
    pub fn read(kind: RecordKind, doc: &Automerge) -> Result<Record, doc::DocError> {
        Ok(match kind {
            RecordKind::Site => Record::Site(doc::site::read(doc)?),
            RecordKind::Inspection => Record::Inspection(doc::inspection::read(doc)?),
            RecordKind::Finding => Record::Finding(doc::finding::read(doc)?),
        })
    }

    pub fn village_code(&self) -> &str {
        match self {
            Record::Site(s) => &s.village_code,
            Record::Inspection(i) => &i.village_code,
            Record::Finding(f) => &f.village_code,
        }
    }
}

fn reject<T>(code: RejectCode, msg: impl Into<String>) -> Result<T, (RejectCode, String)> {
    Err((code, msg.into()))
}

/// Checks the record `after` (and `before`, when the server had it).
pub fn check(p: &Pusher, before: Option<&Record>, after: &Record) -> Verdict {
    match (before, after) {
        (None, Record::Inspection(a)) => check_inspection(p, None, a),
        (Some(Record::Inspection(b)), Record::Inspection(a)) => check_inspection(p, Some(b), a),
        (None, Record::Finding(a)) => check_finding(p, None, a),
        (Some(Record::Finding(b)), Record::Finding(a)) => check_finding(p, Some(b), a),
        (None, Record::Site(a)) => check_site(p, None, a),
        (Some(Record::Site(b)), Record::Site(a)) => check_site(p, Some(b), a),
        _ => reject(RejectCode::Invalid, "the record changed kind"),
    }
}

/// Events in `after` must extend `before`'s (none removed or altered), and
/// every new one must be written by the pusher in a role allowed to.
fn check_events(p: &Pusher, before: &[Event], after: &[Event]) -> Verdict {
    for e in before {
        if !after.contains(e) {
            return reject(
                RejectCode::Forbidden,
                format!("event {} was removed or altered", e.id),
            );
        }
    }
    for e in after.iter().filter(|e| !before.contains(e)) {
        if e.author != p.user || e.role != p.role {
            return reject(
                RejectCode::Forbidden,
                format!(
                    "event {} claims author {} ({}), pushed by {} ({})",
                    e.id, e.author, e.role, p.user, p.role
                ),
            );
        }
        if !e.kind.allowed_roles().contains(&p.role) {
            return reject(
                RejectCode::Forbidden,
                format!("a {} may not record {}", p.role, e.kind.key()),
            );
        }
    }
    Ok(after
        .iter()
        .filter(|e| !before.contains(e))
        .cloned()
        .collect())
}

fn scope(p: &Pusher, code: &str) -> Result<(), (RejectCode, String)> {
    if p.covers(code) {
        Ok(())
    } else {
        reject(
            RejectCode::OutOfScope,
            format!("area {code} is outside user {}'s areas", p.user),
        )
    }
}

fn header(i: &Inspection) -> (&str, &str, &str, &str, u32, &str, &str, i64) {
    (
        &i.id,
        &i.site_id,
        i.site_kind.key(),
        &i.village_code,
        i.template_version,
        &i.inspector,
        &i.device,
        i.started_at,
    )
}

fn check_inspection(p: &Pusher, b: Option<&Inspection>, a: &Inspection) -> Verdict {
    scope(p, &a.village_code)?;
    let template = Templates::builtin()
        .get(a.site_kind, a.template_version)
        .ok_or_else(|| {
            (
                RejectCode::Invalid,
                format!(
                    "unknown template {}@{}",
                    a.site_kind.key(),
                    a.template_version
                ),
            )
        })?;
    let answers_changed: Vec<&String> = match &b {
        None => a.answers.keys().collect(),
        Some(b) => a
            .answers
            .iter()
            .filter(|(k, v)| b.answers.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(b.answers.keys().filter(|k| !a.answers.contains_key(*k)))
            .collect(),
    };
    for k in &answers_changed {
        if let Some(v) = a.answers.get(*k) {
            template
                .check_value(k, v)
                .map_err(|pr| (RejectCode::Invalid, pr.en))?;
        }
    }
    match &b {
        None => {
            if p.role != Role::Inspector {
                return reject(
                    RejectCode::Forbidden,
                    format!("a {} may not create inspections", p.role),
                );
            }
            if a.inspector != p.user {
                return reject(
                    RejectCode::Forbidden,
                    format!(
                        "inspection names inspector {}, pushed by {}",
                        a.inspector, p.user
                    ),
                );
            }
            check_events(p, &[], &a.events)
        }
        Some(b) => {
            if header(b) != header(a) {
                return reject(
                    RejectCode::Forbidden,
                    "the inspection's header (site, template, inspector, times) cannot change",
                );
            }
            let body_changed = !answers_changed.is_empty()
                || a.photos != b.photos
                || a.notes != b.notes
                || a.location != b.location;
            if body_changed && (p.role != Role::Inspector || p.user != a.inspector) {
                return reject(
                    RejectCode::Forbidden,
                    format!(
                        "only inspector {} may change this inspection's answers, photos, notes or location",
                        a.inspector
                    ),
                );
            }
            check_events(p, &b.events, &a.events)
        }
    }
}

fn check_finding(
    p: &Pusher,
    before: Option<&fieldbook_core::model::Finding>,
    a: &fieldbook_core::model::Finding,
) -> Verdict {
    scope(p, &a.village_code)?;
    match before {
        None => {
            if !EventKind::Found.allowed_roles().contains(&p.role) {
                return reject(
                    RejectCode::Forbidden,
                    format!("a {} may not raise findings", p.role),
                );
            }
            if a.raised_by != p.user {
                return reject(
                    RejectCode::Forbidden,
                    format!(
                        "finding names {} as raiser, pushed by {}",
                        a.raised_by, p.user
                    ),
                );
            }
            check_events(p, &[], &a.events)
        }
        Some(d) => {
            let b = d;
            let head = |f: &fieldbook_core::model::Finding| {
                (
                    f.id.clone(),
                    f.inspection_id.clone(),
                    f.site_id.clone(),
                    f.village_code.clone(),
                    f.title.clone(),
                    f.description.clone(),
                    f.raised_by.clone(),
                    f.raised_at,
                )
            };
            if head(a) != head(b) {
                return reject(
                    RejectCode::Forbidden,
                    "the finding's header (site, title, description, raiser) cannot change",
                );
            }
            if a.photos != b.photos && !matches!(p.role, Role::Inspector | Role::Supervisor) {
                return reject(
                    RejectCode::Forbidden,
                    format!("a {} may not add evidence", p.role),
                );
            }
            check_events(p, &b.events, &a.events)
        }
    }
}

fn check_site(
    p: &Pusher,
    before: Option<&fieldbook_core::model::Site>,
    a: &fieldbook_core::model::Site,
) -> Verdict {
    scope(p, &a.village_code)?;
    if a.village_code.len() != 12 {
        return reject(
            RejectCode::Invalid,
            format!("{} is not a village code", a.village_code),
        );
    }
    match before {
        None => match (p.role, a.source) {
            (Role::Inspector, SiteSource::Field) | (Role::Supervisor | Role::Admin, _)
                if a.created_by == p.user =>
            {
                Ok(Vec::new())
            }
            _ => reject(
                RejectCode::Forbidden,
                format!(
                    "a {} may not create a {} site as {}",
                    p.role,
                    a.source.key(),
                    a.created_by
                ),
            ),
        },
        Some(d) => {
            let b = d;
            if b != a && !matches!(p.role, Role::Supervisor | Role::Admin) {
                return reject(
                    RejectCode::Forbidden,
                    format!("a {} may not edit sites", p.role),
                );
            }
            if b.village_code != a.village_code {
                scope(p, &b.village_code)?;
            }
            Ok(Vec::new())
        }
    }
}
