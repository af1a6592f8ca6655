//! The rules, per record kind. Each takes the record before the write
//! (`None`: the write creates it) and after, and returns the workflow
//! events the write adds, or why it is refused.

use super::{Context, FIELD_SITE_ROLES, FINDING_PHOTO_ROLES, INSPECTION_ROLES, Identity, Refusal};
use crate::doc::Record;
use crate::model::workflow::{fold_finding, fold_inspection};
use crate::model::{
    Event, EventKind, Finding, Inspection, InspectionStatus, Role, Site, SiteKind, SiteSource,
    Templates, area, limits, value,
};

type Verdict = Result<Vec<Event>, Refusal>;

/// Decides whether `who` may turn `before` into `after`.
pub fn check_write(
    who: &Identity,
    before: Option<&Record>,
    after: &Record,
    ctx: &dyn Context,
) -> Verdict {
    if let Some(b) = before
        && b.id() != after.id()
    {
        return Err(Refusal::invalid(format!(
            "record {} cannot become record {}",
            b.id(),
            after.id()
        )));
    }
    match (before, after) {
        (None, Record::Inspection(a)) => inspection(who, None, a, ctx),
        (Some(Record::Inspection(b)), Record::Inspection(a)) => inspection(who, Some(b), a, ctx),
        (None, Record::Finding(a)) => finding(who, None, a, ctx),
        (Some(Record::Finding(b)), Record::Finding(a)) => finding(who, Some(b), a, ctx),
        (None, Record::Site(a)) => site(who, None, a, ctx),
        (Some(Record::Site(b)), Record::Site(a)) => site(who, Some(b), a, ctx),
        _ => Err(Refusal::invalid("a record cannot change its kind")),
    }
}

fn scope(who: &Identity, code: &str) -> Result<(), Refusal> {
    if who.covers(code) {
        Ok(())
    } else {
        Err(Refusal::out_of_scope(format!(
            "area {code} is outside user {}'s areas",
            who.user
        )))
    }
}

fn role_in(who: &Identity, roles: &[Role], what: &str) -> Result<(), Refusal> {
    if roles.contains(&who.role) {
        Ok(())
    } else {
        Err(Refusal::forbidden(format!(
            "the role {} may not {what}",
            who.role
        )))
    }
}

fn text(what: &str, s: &str, max: usize, required: bool) -> Result<(), Refusal> {
    if required && s.trim().is_empty() {
        return Err(Refusal::invalid(format!("{what} must not be empty")));
    }
    if !limits::fits(s, max) {
        return Err(Refusal::invalid(format!(
            "{what} is {} characters long; the limit is {max}",
            s.chars().count()
        )));
    }
    Ok(())
}

/// The site a record refers to must exist and be of the record's kind. Its
/// village is the record's, or (a site the registry has since moved) one
/// also inside the user's areas: a record can never tie itself to a site
/// its author cannot see.
fn site_ref(
    who: &Identity,
    site_id: &str,
    kind: SiteKind,
    village: &str,
    ctx: &dyn Context,
) -> Result<(), Refusal> {
    let Some(s) = ctx.site(site_id) else {
        return Err(Refusal::invalid(format!("site {site_id} does not exist")));
    };
    if s.kind != kind {
        return Err(Refusal::invalid(format!(
            "site {site_id} is of kind {}, not {}",
            s.kind.key(),
            kind.key()
        )));
    }
    if s.village_code != village && !who.covers(&s.village_code) {
        return Err(Refusal::out_of_scope(format!(
            "site {site_id} lies in area {}, outside user {}'s areas",
            s.village_code, who.user
        )));
    }
    Ok(())
}

/// Events are only ever appended: every event of `before` is kept as it
/// was. The new ones, in list order, must be by `who`, of a kind their role
/// may record and valid for the state the events before them reach.
fn new_events(
    who: &Identity,
    before: &[Event],
    after: &[Event],
    mut each: impl FnMut(&[Event], &Event) -> Result<(), Refusal>,
) -> Verdict {
    if after.len() < before.len() {
        return Err(Refusal::forbidden("workflow events were removed"));
    }
    for e in before {
        if !after.contains(e) {
            return Err(Refusal::forbidden(format!(
                "event {} was removed or altered",
                e.id
            )));
        }
    }
    let mut seen: Vec<Event> = Vec::with_capacity(after.len());
    let mut added = Vec::new();
    for e in after {
        if before.contains(e) {
            seen.push(e.clone());
            continue;
        }
        if e.author != who.user || e.role != who.role {
            return Err(Refusal::forbidden(format!(
                "event {} claims author {} ({}), written by {} ({})",
                e.id, e.author, e.role, who.user, who.role
            )));
        }
        if !e.kind.allowed_roles().contains(&who.role) {
            return Err(Refusal::forbidden(format!(
                "the role {} may not record {}",
                who.role,
                e.kind.key()
            )));
        }
        if let Some(c) = &e.comment {
            text("a comment", c, limits::TEXT_CHARS_MAX, false)?;
        }
        if e.kind == EventKind::Commented {
            text(
                "a comment",
                e.comment.as_deref().unwrap_or(""),
                limits::TEXT_CHARS_MAX,
                true,
            )?;
        }
        each(&seen, e)?;
        seen.push(e.clone());
        added.push(e.clone());
    }
    Ok(added)
}

fn inspection_header(i: &Inspection) -> (&str, &str, SiteKind, &str, u32, &str, &str, i64) {
    (
        &i.id,
        &i.site_id,
        i.site_kind,
        &i.village_code,
        i.template_version,
        &i.inspector,
        &i.device,
        i.started_at,
    )
}

fn inspection(
    who: &Identity,
    b: Option<&Inspection>,
    a: &Inspection,
    ctx: &dyn Context,
) -> Verdict {
    scope(who, &a.village_code)?;
    let template = Templates::builtin()
        .get(a.site_kind, a.template_version)
        .ok_or_else(|| {
            Refusal::invalid(format!(
                "template {}@{} is unknown",
                a.site_kind.key(),
                a.template_version
            ))
        })?;
    let status_before = b.map_or(InspectionStatus::Draft, |b| {
        fold_inspection(&b.events).status
    });
    match b {
        None => {
            role_in(who, INSPECTION_ROLES, "start inspections")?;
            if a.inspector != who.user {
                return Err(Refusal::forbidden(format!(
                    "the inspection names inspector {}, written by {}",
                    a.inspector, who.user
                )));
            }
            site_ref(who, &a.site_id, a.site_kind, &a.village_code, ctx)?;
        }
        Some(b) => {
            if inspection_header(b) != inspection_header(a) {
                return Err(Refusal::forbidden(
                    "an inspection's site, template, inspector and start cannot change",
                ));
            }
        }
    }
    let empty = Inspection {
        answers: Default::default(),
        conflicts: Default::default(),
        photos: Vec::new(),
        notes: Vec::new(),
        events: Vec::new(),
        location: None,
        ..a.clone()
    };
    let b = b.unwrap_or(&empty);
    let body_changed = a.answers != b.answers
        || a.conflicts != b.conflicts
        || a.photos != b.photos
        || a.notes != b.notes
        || a.location != b.location;
    if body_changed {
        if who.role != Role::Inspector || who.user != a.inspector {
            return Err(Refusal::forbidden(format!(
                "only inspector {} may change this inspection's answers, photos, notes or location",
                a.inspector
            )));
        }
        if !status_before.editable() {
            return Err(Refusal::forbidden(format!(
                "inspection {} is {}; its answers, photos, notes and location change only while it is a draft or returned",
                a.id,
                status_before.key()
            )));
        }
    }
    for (k, v) in &a.answers {
        let all = a
            .conflicts
            .get(k)
            .map_or(std::slice::from_ref(v), Vec::as_slice);
        let changed = b.answers.get(k) != Some(v) || b.conflicts.get(k) != a.conflicts.get(k);
        if changed {
            for v in all {
                template
                    .check_value(k, v)
                    .map_err(|p| Refusal::invalid(p.en))?;
            }
        }
    }
    kept_photos(&b.photos, &a.photos)?;
    for p in a.photos.iter().filter(|p| !b.photos.contains(p)) {
        if let Some(f) = &p.field
            && template.field(f).is_none()
        {
            return Err(Refusal::invalid(format!(
                "photo {} is tagged {f:?}, which is not a field of the template",
                p.hash
            )));
        }
    }
    for n in &b.notes {
        if !a.notes.contains(n) {
            return Err(Refusal::forbidden(format!(
                "note {} was removed or altered",
                n.id
            )));
        }
    }
    for n in a.notes.iter().filter(|n| !b.notes.contains(n)) {
        if n.author != who.user {
            return Err(Refusal::forbidden(format!(
                "note {} claims author {}, written by {}",
                n.id, n.author, who.user
            )));
        }
        text("a note", &n.text, limits::TEXT_CHARS_MAX, true)?;
    }
    new_events(who, &b.events, &a.events, |seen, e| {
        let state = fold_inspection(seen);
        match e.kind {
            EventKind::Submitted => {
                if who.user != a.inspector {
                    return Err(Refusal::forbidden(format!(
                        "only inspector {} may submit this inspection",
                        a.inspector
                    )));
                }
                if !state.status.editable() {
                    return Err(Refusal::forbidden(format!(
                        "inspection {} is {}; only a draft or a returned inspection is submitted",
                        a.id,
                        state.status.key()
                    )));
                }
                if e.revision != Some(state.revision + 1) {
                    return Err(Refusal::invalid(format!(
                        "the submission is numbered {:?}; the next revision is {}",
                        e.revision,
                        state.revision + 1
                    )));
                }
                let problems = template.validate(&a.answers, &a.photo_counts());
                if let Some(p) = problems.first() {
                    return Err(Refusal::invalid(format!(
                        "the submission is incomplete ({} problems), first: {}",
                        problems.len(),
                        p.en
                    )));
                }
            }
            EventKind::Returned | EventKind::Approved => {
                if state.status != InspectionStatus::Submitted {
                    return Err(Refusal::forbidden(format!(
                        "inspection {} is {}; only a submitted inspection is reviewed",
                        a.id,
                        state.status.key()
                    )));
                }
                if e.revision != Some(state.revision) {
                    return Err(Refusal::invalid(format!(
                        "the review names revision {:?}; revision {} waits for review",
                        e.revision, state.revision
                    )));
                }
                if e.kind == EventKind::Returned {
                    text(
                        "the reason for returning",
                        e.comment.as_deref().unwrap_or(""),
                        limits::TEXT_CHARS_MAX,
                        true,
                    )?;
                }
            }
            EventKind::Commented => {}
            other => {
                return Err(Refusal::invalid(format!(
                    "{} is not an inspection event",
                    other.key()
                )));
            }
        }
        Ok(())
    })
}

fn finding(who: &Identity, b: Option<&Finding>, a: &Finding, ctx: &dyn Context) -> Verdict {
    scope(who, &a.village_code)?;
    match b {
        None => {
            role_in(who, EventKind::Found.allowed_roles(), "raise findings")?;
            if a.raised_by != who.user {
                return Err(Refusal::forbidden(format!(
                    "the finding names {} as raiser, written by {}",
                    a.raised_by, who.user
                )));
            }
            text("a finding's title", &a.title, limits::NAME_CHARS_MAX, true)?;
            text(
                "a finding's description",
                &a.description,
                limits::TEXT_CHARS_MAX,
                false,
            )?;
            site_ref(who, &a.site_id, a.site_kind, &a.village_code, ctx)?;
            if let Some(iid) = &a.inspection_id {
                match ctx.inspection_site(iid) {
                    Some(site) if site == a.site_id => {}
                    Some(site) => {
                        return Err(Refusal::invalid(format!(
                            "inspection {iid} is of site {site}, not {}",
                            a.site_id
                        )));
                    }
                    None => {
                        return Err(Refusal::invalid(format!("inspection {iid} does not exist")));
                    }
                }
            }
            match a.events.first() {
                Some(e) if e.kind == EventKind::Found => {}
                _ => {
                    return Err(Refusal::invalid(
                        "a finding begins with the event that raises it",
                    ));
                }
            }
        }
        Some(b) => {
            let head = |f: &Finding| {
                (
                    f.inspection_id.clone(),
                    f.site_id.clone(),
                    f.site_kind,
                    f.village_code.clone(),
                    f.title.clone(),
                    f.description.clone(),
                    f.raised_by.clone(),
                    f.raised_at,
                )
            };
            if head(a) != head(b) {
                return Err(Refusal::forbidden(
                    "a finding's site, title, description and raiser cannot change",
                ));
            }
        }
    }
    let no_events: &[Event] = &[];
    let (photos_before, events_before) = match b {
        Some(b) => (b.photos.as_slice(), b.events.as_slice()),
        None => (&[][..], no_events),
    };
    kept_photos(photos_before, &a.photos)?;
    if a.photos.len() > photos_before.len() {
        role_in(who, FINDING_PHOTO_ROLES, "add evidence to findings")?;
    }
    let creating = b.is_none();
    new_events(who, events_before, &a.events, |seen, e| {
        let state = fold_finding(seen);
        match e.kind {
            EventKind::Found => {
                if !(creating && seen.is_empty()) {
                    return Err(Refusal::invalid(
                        "a finding is raised once, by its first event",
                    ));
                }
                if let Some(d) = &e.deadline {
                    date("the deadline", d)?;
                }
            }
            EventKind::Commented => {}
            kind if EventKind::FINDING_STEPS.contains(&kind) => {
                if !state.status.allows(kind) {
                    return Err(Refusal::forbidden(format!(
                        "finding {} is {}; {} is not a step from there",
                        a.id,
                        state.status.key(),
                        kind.key()
                    )));
                }
                if kind == EventKind::Assigned {
                    text(
                        "the responsible party",
                        e.responsible.as_deref().unwrap_or(""),
                        limits::NAME_CHARS_MAX,
                        true,
                    )?;
                    date("the deadline", e.deadline.as_deref().unwrap_or(""))?;
                }
                if kind == EventKind::SentBack {
                    text(
                        "the reason for sending back",
                        e.comment.as_deref().unwrap_or(""),
                        limits::TEXT_CHARS_MAX,
                        true,
                    )?;
                }
            }
            other => {
                return Err(Refusal::invalid(format!(
                    "{} is not a finding event",
                    other.key()
                )));
            }
        }
        Ok(())
    })
}

/// Photos are evidence: once attached, a photo stays (its field tag may
/// change while the record is editable).
fn kept_photos(
    before: &[crate::model::PhotoRef],
    after: &[crate::model::PhotoRef],
) -> Result<(), Refusal> {
    for p in before {
        if !after.iter().any(|q| q.hash == p.hash) {
            return Err(Refusal::forbidden(format!(
                "photo {} was removed; evidence is only ever added",
                p.hash
            )));
        }
    }
    Ok(())
}

fn date(what: &str, d: &str) -> Result<(), Refusal> {
    if value::is_iso_date(d) {
        Ok(())
    } else {
        Err(Refusal::invalid(format!(
            "{what} {d:?} is not a date written YYYY-MM-DD"
        )))
    }
}

/// Sites come from the registry import; over sync, a user may only add a
/// site found in the field, once. Changing a site (moving, renaming,
/// re-surveying it) is the registry's: a pushed change to a site is
/// refused, so no phone can move another area's site into its own.
fn site(who: &Identity, b: Option<&Site>, a: &Site, ctx: &dyn Context) -> Verdict {
    scope(who, &a.village_code)?;
    if b.is_some() {
        return Err(Refusal::forbidden(
            "sites change only through the registry import",
        ));
    }
    role_in(who, FIELD_SITE_ROLES, "add sites")?;
    if a.source != SiteSource::Field {
        return Err(Refusal::forbidden(
            "registry sites come only from the registry import",
        ));
    }
    if a.created_by != who.user {
        return Err(Refusal::forbidden(format!(
            "the site names {} as its author, written by {}",
            a.created_by, who.user
        )));
    }
    text("a site's name", &a.name, limits::NAME_CHARS_MAX, true)?;
    if !(area::is_code(&a.village_code)
        && a.village_code.len() == 12
        && ctx.village_exists(&a.village_code))
    {
        return Err(Refusal::invalid(format!(
            "{} is not a village of the division list",
            a.village_code
        )));
    }
    if let Some(p) = &a.location
        && !p.is_valid()
    {
        return Err(Refusal::invalid("the site's location is off the globe"));
    }
    let specs = a.kind.attributes();
    for (k, v) in &a.attributes {
        match specs.iter().find(|s| s.key == k) {
            None => {
                return Err(Refusal::invalid(format!(
                    "{k} is not an attribute of a {}",
                    a.kind.label_en()
                )));
            }
            Some(spec) if !spec.accepts(v) => {
                return Err(Refusal::invalid(format!("{} cannot be {v}", spec.label_en)));
            }
            Some(_) => {}
        }
    }
    Ok(Vec::new())
}
