//! The one policy: what each role may change, in which status, inside which
//! areas, and what a submission requires. The phone's store runs it on every
//! write before committing, and the server runs it on every pushed record
//! before storing, so a write one side accepts is a write the other
//! accepts, and what one refuses the other refuses.
//!
//! The policy compares a record before a write with the record after it
//! (both read through `doc`, so it never looks at Automerge operations) and
//! decides against the state *before*, as the deciding side holds it. On
//! the server that is the server's state: a phone cannot claim to have
//! edited an approved inspection "before" the approval by pointing its
//! change at an old version. When concurrent work makes a phone's change
//! one the server refuses (two desks reviewing one submission, an edit from
//! a second device arriving after the approval), the phone drops the
//! refused change and returns to the server's version
//! (`Store::drop_refused`), listing what was refused and why.
//!
//! To add a rule: add it here, with a case in `tests/tests/policy.rs`, which
//! checks that the phone and the server agree on it.

mod rules;

pub use rules::check_write;

use crate::model::Role;

/// Who acts: one user on one device, with their role and areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: Role,
    /// Division-code prefixes the user may see and write; `*` (admins only)
    /// is the whole deployment.
    pub areas: Vec<String>,
    /// Stable id of this device (the app's installation).
    pub device: String,
}

/// The area that stands for the whole deployment.
pub const WHOLE_DEPLOYMENT: &str = "*";

impl Identity {
    /// Whether `code` (a division code) lies inside one of the user's areas.
    pub fn covers(&self, code: &str) -> bool {
        covers(&self.areas, code)
    }

    /// Whether the whole of area `prefix` lies inside the user's areas: an
    /// administrator may hand out only what they hold.
    pub fn contains_area(&self, prefix: &str) -> bool {
        prefix == WHOLE_DEPLOYMENT && self.whole_deployment()
            || prefix != WHOLE_DEPLOYMENT && covers(&self.areas, prefix)
    }

    /// Whether the user's areas are the whole deployment.
    pub fn whole_deployment(&self) -> bool {
        self.areas.iter().any(|a| a == WHOLE_DEPLOYMENT)
    }
}

/// Whether `code` lies inside one of `areas` (division-code prefixes).
pub fn covers(areas: &[String], code: &str) -> bool {
    areas
        .iter()
        .any(|a| a == WHOLE_DEPLOYMENT || code.starts_with(a.as_str()))
}

/// Roles that may add a site found in the field.
pub const FIELD_SITE_ROLES: &[Role] = &[Role::Inspector, Role::Supervisor];
/// Roles that may fill in inspections.
pub const INSPECTION_ROLES: &[Role] = &[Role::Inspector];
/// Roles that may attach evidence photos to a finding.
pub const FINDING_PHOTO_ROLES: &[Role] = &[Role::Inspector, Role::Supervisor];
/// Roles that may upload photos at all (the ones that may reference them).
pub const PHOTO_UPLOAD_ROLES: &[Role] = &[Role::Inspector, Role::Supervisor];

/// Why a write is refused; the code tells the pushing phone what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// The role, the author or the record's status does not allow it.
    Forbidden,
    /// The record lies outside the user's areas.
    OutOfScope,
    /// The record breaks the layout, the template or a reference.
    Invalid,
}

/// A refused write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    pub fn forbidden(m: impl Into<String>) -> Refusal {
        Refusal {
            code: RefusalCode::Forbidden,
            message: m.into(),
        }
    }

    pub fn invalid(m: impl Into<String>) -> Refusal {
        Refusal {
            code: RefusalCode::Invalid,
            message: m.into(),
        }
    }

    pub fn out_of_scope(m: impl Into<String>) -> Refusal {
        Refusal {
            code: RefusalCode::OutOfScope,
            message: m.into(),
        }
    }
}

/// What the site a record refers to is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFacts {
    pub kind: crate::model::SiteKind,
    pub village_code: String,
}

/// Facts about other records and the divisions that a write's references
/// are checked against: the phone answers from its store, the server from
/// its projections (and the records accepted earlier in the same batch).
pub trait Context {
    /// The site with this id, if known.
    fn site(&self, id: &str) -> Option<SiteFacts>;
    /// The site id of the inspection with this id, if known.
    fn inspection_site(&self, id: &str) -> Option<String>;
    /// Whether `code` is a village of the division list.
    fn village_exists(&self, code: &str) -> bool {
        crate::model::Divisions::luoyang().is_village(code)
    }
}

/// A workflow event on an inspection by `who`, numbered for the revision
/// it submits or reviews given the events so far.
pub fn inspection_event(
    who: &Identity,
    kind: crate::model::EventKind,
    events: &[crate::model::Event],
    comment: Option<String>,
    id: String,
    at: i64,
) -> crate::model::Event {
    use crate::model::EventKind;
    let state = crate::model::workflow::fold_inspection(events);
    let revision = match kind {
        EventKind::Submitted => Some(state.revision + 1),
        EventKind::Returned | EventKind::Approved => Some(state.revision),
        _ => None,
    };
    crate::model::Event {
        id,
        kind,
        author: who.user.clone(),
        role: who.role,
        at,
        revision,
        comment,
        responsible: None,
        deadline: None,
    }
}

/// The review steps `who` may take on inspection `i` now (approve, return,
/// comment), found by trying each on a copy through [`check_write`]: the
/// buttons an app offers are exactly what the rules accept.
pub fn inspection_steps(
    who: &Identity,
    i: &crate::model::Inspection,
    ctx: &dyn Context,
) -> Vec<crate::model::EventKind> {
    use crate::model::EventKind;
    let before = crate::doc::Record::Inspection(i.clone());
    [
        EventKind::Approved,
        EventKind::Returned,
        EventKind::Commented,
    ]
    .into_iter()
    .filter(|&kind| {
        let mut after = i.clone();
        let e = inspection_event(who, kind, &i.events, Some("-".into()), "-".into(), 0);
        after.events.push(e);
        check_write(
            who,
            Some(&before),
            &crate::doc::Record::Inspection(after),
            ctx,
        )
        .is_ok()
    })
    .collect()
}

/// The finding steps `who` may take on finding `f` now (the lifecycle
/// steps, escalation and comment), found as [`inspection_steps`] finds
/// them: each tried on a copy through [`check_write`]. A step that needs
/// a responsible party and a deadline (assignment) or a reason (sending
/// back) is tried with placeholders.
pub fn finding_steps(
    who: &Identity,
    f: &crate::model::Finding,
    ctx: &dyn Context,
) -> Vec<crate::model::EventKind> {
    use crate::model::EventKind;
    let before = crate::doc::Record::Finding(f.clone());
    EventKind::FINDING_STEPS
        .into_iter()
        .chain([EventKind::Commented])
        .filter(|&kind| {
            let mut after = f.clone();
            after.events.push(crate::model::Event {
                id: "-".into(),
                kind,
                author: who.user.clone(),
                role: who.role,
                at: 0,
                revision: None,
                comment: Some("-".into()),
                responsible: Some("-".into()),
                deadline: Some("2000-01-01".into()),
            });
            check_write(who, Some(&before), &crate::doc::Record::Finding(after), ctx).is_ok()
        })
        .collect()
}
