//! Workflow: roles, the append-only event list, and the status folds.
//!
//! Status is never stored as a register that the last writer wins. Each
//! record keeps an append-only list of events and its status is a pure fold
//! over that list. The list order is Automerge's: an event
//! appended after seeing another always comes after it, and concurrent
//! appends are ordered by operation id, the same way on every replica. So
//! the fold follows causality and all replicas that hold the same changes
//! compute the same status. Phones' clocks are not trusted for ordering: a
//! supervisor whose clock runs slow still closes a finding *after* the
//! closure request they saw.
//!
//! Inspections: the inspector submits numbered revisions; a supervisor's
//! return or approval names the revision it reviewed. The status is decided
//! by the highest submitted revision: approved if a review approves it,
//! returned if a review returns it, otherwise submitted. A review of an older
//! revision is history, so a concurrent "approve revision 1" and "resubmit as
//! revision 2" converge to "submitted (revision 2)" everywhere. Of two
//! concurrent reviews of one revision, the later in list order decides.
//!
//! Findings follow the lifecycle found → assigned → rectifying → closure
//! requested → closed, with "sent back" returning a closure request. A
//! transition not allowed from the state reached so far is skipped, so a
//! concurrent pair such as "closed" and "sent back" resolves the same way on
//! every replica.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user may do. Every user has exactly one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Fills in inspections, raises and follows up findings.
    Inspector,
    /// Reviews inspections (comment, return, approve) and steers findings
    /// (assign, escalate, verify closure, send back).
    Supervisor,
    /// Reads and reports coverage; may comment.
    CountyOffice,
    /// Manages users and the registry; may comment.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Inspector,
        Role::Supervisor,
        Role::CountyOffice,
        Role::Admin,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::Supervisor => "supervisor",
            Role::CountyOffice => "county_office",
            Role::Admin => "admin",
        }
    }

    pub fn from_key(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.key() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The kinds of event an inspection or finding can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    // Inspections.
    /// The inspector submits revision `revision`.
    Submitted,
    /// A supervisor returns revision `revision` with a comment.
    Returned,
    /// A supervisor approves revision `revision`.
    Approved,
    /// Anyone comments; changes no status.
    Commented,
    // Findings.
    /// 发现: the finding is raised.
    Found,
    /// 交办: a supervisor assigns a responsible party and a deadline.
    Assigned,
    /// 整改中: rectification reported under way.
    Rectifying,
    /// 申请销号: closure requested, with evidence.
    ClosureRequested,
    /// 核查销号: a supervisor verified the rectification.
    Closed,
    /// 退回: a supervisor sent the closure request back.
    SentBack,
    /// 督办: a supervisor escalated the finding.
    Escalated,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Submitted,
        EventKind::Returned,
        EventKind::Approved,
        EventKind::Commented,
        EventKind::Found,
        EventKind::Assigned,
        EventKind::Rectifying,
        EventKind::ClosureRequested,
        EventKind::Closed,
        EventKind::SentBack,
        EventKind::Escalated,
    ];

    /// The steps of a finding's lifecycle after it is raised.
    pub const FINDING_STEPS: [EventKind; 6] = [
        EventKind::Assigned,
        EventKind::Rectifying,
        EventKind::ClosureRequested,
        EventKind::Closed,
        EventKind::SentBack,
        EventKind::Escalated,
    ];

    pub fn key(self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::Returned => "returned",
            EventKind::Approved => "approved",
            EventKind::Commented => "commented",
            EventKind::Found => "found",
            EventKind::Assigned => "assigned",
            EventKind::Rectifying => "rectifying",
            EventKind::ClosureRequested => "closure_requested",
            EventKind::Closed => "closed",
            EventKind::SentBack => "sent_back",
            EventKind::Escalated => "escalated",
        }
    }

    pub fn from_key(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.key() == s)
    }

    /// The roles allowed to append this event. This is the one table the
    /// core API and the server both check.
    pub fn allowed_roles(self) -> &'static [Role] {
        use EventKind::*;
        match self {
            Submitted | Rectifying | ClosureRequested => &[Role::Inspector],
            Returned | Approved | Assigned | Closed | SentBack | Escalated => &[Role::Supervisor],
            Found => &[Role::Inspector, Role::Supervisor],
            Commented => &Role::ALL,
        }
    }

    /// Chinese label for timelines.
    pub fn label_zh(self) -> &'static str {
        match self {
            EventKind::Submitted => "提交",
            EventKind::Returned => "退回修改",
            EventKind::Approved => "审核通过",
            EventKind::Commented => "评论",
            EventKind::Found => "发现",
            EventKind::Assigned => "交办",
            EventKind::Rectifying => "整改中",
            EventKind::ClosureRequested => "申请销号",
            EventKind::Closed => "核查销号",
            EventKind::SentBack => "退回",
            EventKind::Escalated => "督办",
        }
    }

    /// English label for timelines.
    pub fn label_en(self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::Returned => "returned for changes",
            EventKind::Approved => "approved",
            EventKind::Commented => "comment",
            EventKind::Found => "found",
            EventKind::Assigned => "assigned",
            EventKind::Rectifying => "rectifying",
            EventKind::ClosureRequested => "closure requested",
            EventKind::Closed => "verified closed",
            EventKind::SentBack => "sent back",
            EventKind::Escalated => "escalated",
        }
    }
}

/// One workflow event. Events are only ever appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (UUIDv7 text); breaks ties between events at the same time.
    pub id: String,
    pub kind: EventKind,
    /// User name of the author.
    pub author: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch, by the author's clock.
    pub at: i64,
    /// The inspection revision this event submits or reviews.
    pub revision: Option<u32>,
    pub comment: Option<String>,
    /// Findings: the responsible party named on assignment.
    pub responsible: Option<String>,
    /// Findings: the deadline (`YYYY-MM-DD`) set on raising or assignment.
    pub deadline: Option<String>,
}

/// Review status of an inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    /// Not yet submitted.
    Draft,
    /// Submitted, waiting for review.
    Submitted,
    /// Returned to the inspector for changes.
    Returned,
    /// Approved by a supervisor: counts for coverage.
    Approved,
}

impl InspectionStatus {
    pub const ALL: [InspectionStatus; 4] = [
        InspectionStatus::Draft,
        InspectionStatus::Submitted,
        InspectionStatus::Returned,
        InspectionStatus::Approved,
    ];

    pub fn key(self) -> &'static str {
        match self {
            InspectionStatus::Draft => "draft",
            InspectionStatus::Submitted => "submitted",
            InspectionStatus::Returned => "returned",
            InspectionStatus::Approved => "approved",
        }
    }

    pub fn from_key(s: &str) -> Option<InspectionStatus> {
        InspectionStatus::ALL.into_iter().find(|k| k.key() == s)
    }

    /// Whether the inspector may edit answers in this status.
    pub fn editable(self) -> bool {
        matches!(self, InspectionStatus::Draft | InspectionStatus::Returned)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            InspectionStatus::Draft => "草稿",
            InspectionStatus::Submitted => "待审核",
            InspectionStatus::Returned => "已退回",
            InspectionStatus::Approved => "已通过",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            InspectionStatus::Draft => "draft",
            InspectionStatus::Submitted => "submitted",
            InspectionStatus::Returned => "returned",
            InspectionStatus::Approved => "approved",
        }
    }
}

/// The fold of an inspection's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionState {
    pub status: InspectionStatus,
    /// The highest submitted revision (0 when never submitted).
    pub revision: u32,
    /// Time of the latest submission by the author's clock.
    pub submitted_at: Option<i64>,
    /// Time of the review that decided the status.
    pub reviewed_at: Option<i64>,
}

/// Folds inspection events (in list order) into their status.
pub fn fold_inspection(events: &[Event]) -> InspectionState {
    let ordered = events;
    let mut revision = 0;
    let mut submitted_at = None;
    for e in ordered {
        if e.kind == EventKind::Submitted {
            let r = e.revision.unwrap_or(0);
            // `>=` so that among equal revisions (two phones of one
            // inspector resubmitting concurrently) the last one gives the time.
            if r >= revision && r > 0 {
                revision = r;
                submitted_at = Some(e.at);
            }
        }
    }
    if revision == 0 {
        return InspectionState {
            status: InspectionStatus::Draft,
            revision: 0,
            submitted_at: None,
            reviewed_at: None,
        };
    }
    let mut status = InspectionStatus::Submitted;
    let mut reviewed_at = None;
    for e in ordered {
        if e.revision != Some(revision) {
            continue;
        }
        match e.kind {
            EventKind::Approved => {
                status = InspectionStatus::Approved;
                reviewed_at = Some(e.at);
            }
            EventKind::Returned => {
                status = InspectionStatus::Returned;
                reviewed_at = Some(e.at);
            }
            _ => {}
        }
    }
    InspectionState {
        status,
        revision,
        submitted_at,
        reviewed_at,
    }
}

/// Lifecycle state of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Found,
    Assigned,
    Rectifying,
    ClosureRequested,
    Closed,
    SentBack,
}

impl FindingStatus {
    pub const ALL: [FindingStatus; 6] = [
        FindingStatus::Found,
        FindingStatus::Assigned,
        FindingStatus::Rectifying,
        FindingStatus::ClosureRequested,
        FindingStatus::Closed,
        FindingStatus::SentBack,
    ];

    pub fn key(self) -> &'static str {
        match self {
            FindingStatus::Found => "found",
            FindingStatus::Assigned => "assigned",
            FindingStatus::Rectifying => "rectifying",
            FindingStatus::ClosureRequested => "closure_requested",
            FindingStatus::Closed => "closed",
            FindingStatus::SentBack => "sent_back",
        }
    }

    pub fn from_key(s: &str) -> Option<FindingStatus> {
        FindingStatus::ALL.into_iter().find(|k| k.key() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FindingStatus::Found => "已发现",
            FindingStatus::Assigned => "已交办",
            FindingStatus::Rectifying => "整改中",
            FindingStatus::ClosureRequested => "申请销号",
            FindingStatus::Closed => "已销号",
            FindingStatus::SentBack => "已退回",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            FindingStatus::Found => "found",
            FindingStatus::Assigned => "assigned",
            FindingStatus::Rectifying => "rectifying",
            FindingStatus::ClosureRequested => "closure requested",
            FindingStatus::Closed => "verified closed",
            FindingStatus::SentBack => "sent back",
        }
    }

    /// Whether step `kind` may be taken from here (escalation is allowed in
    /// any open state and changes no status).
    pub fn allows(self, kind: EventKind) -> bool {
        if kind == EventKind::Escalated {
            self != FindingStatus::Closed
        } else {
            self.next(kind).is_some()
        }
    }

    /// The steps a user with `role` may take from here, for an app to
    /// offer as buttons.
    pub fn steps_for(self, role: Role) -> Vec<EventKind> {
        EventKind::FINDING_STEPS
            .into_iter()
            .filter(|k| k.allowed_roles().contains(&role) && self.allows(*k))
            .collect()
    }

    /// The state `kind` leads to from here, or `None` if not allowed.
    pub fn next(self, kind: EventKind) -> Option<FindingStatus> {
        use EventKind as E;
        use FindingStatus as S;
        match (self, kind) {
            (S::Closed, _) => None,
            (S::Found | S::Assigned | S::Rectifying | S::SentBack, E::Assigned) => {
                Some(S::Assigned)
            }
            (S::Assigned | S::SentBack | S::Rectifying, E::Rectifying) => Some(S::Rectifying),
            (S::Assigned | S::Rectifying | S::SentBack, E::ClosureRequested) => {
                Some(S::ClosureRequested)
            }
            (S::ClosureRequested, E::Closed) => Some(S::Closed),
            (S::ClosureRequested, E::SentBack) => Some(S::SentBack),
            _ => None,
        }
    }
}

/// The fold of a finding's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingState {
    pub status: FindingStatus,
    pub responsible: Option<String>,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
    pub escalated: bool,
    /// Time of the verified closure.
    pub closed_at: Option<i64>,
}

impl FindingState {
    /// Overdue: not closed and the deadline day is before `today`.
    pub fn is_overdue(&self, today: &str) -> bool {
        self.status != FindingStatus::Closed && self.deadline.as_deref().is_some_and(|d| d < today)
    }
}

/// Folds finding events (in list order) into their lifecycle state;
/// transitions not allowed where they land are skipped.
pub fn fold_finding(events: &[Event]) -> FindingState {
    let mut s = FindingState {
        status: FindingStatus::Found,
        responsible: None,
        deadline: None,
        escalated: false,
        closed_at: None,
    };
    for e in events {
        match e.kind {
            EventKind::Found => {
                if s.deadline.is_none() {
                    s.deadline.clone_from(&e.deadline);
                }
                if s.responsible.is_none() {
                    s.responsible.clone_from(&e.responsible);
                }
            }
            EventKind::Escalated => {
                if s.status != FindingStatus::Closed {
                    s.escalated = true;
                }
            }
            kind => {
                if let Some(next) = s.status.next(kind) {
                    s.status = next;
                    if kind == EventKind::Assigned {
                        if e.responsible.is_some() {
                            s.responsible.clone_from(&e.responsible);
                        }
                        if e.deadline.is_some() {
                            s.deadline.clone_from(&e.deadline);
                        }
                    }
                    if kind == EventKind::Closed {
                        s.closed_at = Some(e.at);
                    }
                }
            }
        }
    }
    s
}

/// China Standard Time, UTC+8, with no daylight saving: deadlines are days
/// in the inspectors' own calendar.
pub const CHINA_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// The `YYYY-MM-DD` day in China of a Unix-millisecond time.
pub fn china_date(ms: i64) -> String {
    let days = (ms + CHINA_OFFSET_MS).div_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix millisecond at which China date `YYYY-MM-DD` begins, or
/// `None` when `date` is not a valid date.
pub fn china_day_start_ms(date: &str) -> Option<i64> {
    if !super::value::is_iso_date(date) {
        return None;
    }
    let y: i64 = date.get(..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    // H. Hinnant's days-from-civil, the inverse of `civil_from_days`.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + d - 1;
    Some((era * 146_097 + doe - 719_468) * 86_400_000 - CHINA_OFFSET_MS)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_offered_follow_the_transition_table_and_the_roles() {
        use EventKind as E;
        use FindingStatus as S;
        assert_eq!(
            S::Found.steps_for(Role::Supervisor),
            vec![E::Assigned, E::Escalated]
        );
        assert!(S::Found.steps_for(Role::Inspector).is_empty());
        assert_eq!(
            S::Assigned.steps_for(Role::Inspector),
            vec![E::Rectifying, E::ClosureRequested]
        );
        assert_eq!(
            S::ClosureRequested.steps_for(Role::Supervisor),
            vec![E::Closed, E::SentBack, E::Escalated]
        );
        for role in Role::ALL {
            assert!(S::Closed.steps_for(role).is_empty());
        }
        // Every offered step is one the transition table accepts.
        for status in S::ALL {
            for role in Role::ALL {
                for step in status.steps_for(role) {
                    assert!(status.allows(step) && step.allowed_roles().contains(&role));
                }
            }
        }
    }

    fn ev(id: &str, kind: EventKind, at: i64, revision: Option<u32>) -> Event {
        Event {
            id: id.into(),
            kind,
            author: "u".into(),
            role: kind.allowed_roles()[0],
            at,
            revision,
            comment: None,
            responsible: None,
            deadline: None,
        }
    }

    #[test]
    fn inspection_fold_table() {
        use EventKind::*;
        use InspectionStatus as S;
        let cases: Vec<(&str, Vec<Event>, S, u32)> = vec![
            ("no events", vec![], S::Draft, 0),
            (
                "comment only",
                vec![ev("a", Commented, 1, None)],
                S::Draft,
                0,
            ),
            (
                "submitted",
                vec![ev("a", Submitted, 1, Some(1))],
                S::Submitted,
                1,
            ),
            (
                "approved",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("b", Approved, 2, Some(1)),
                ],
                S::Approved,
                1,
            ),
            (
                "returned",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("b", Returned, 2, Some(1)),
                ],
                S::Returned,
                1,
            ),
            (
                "resubmitted after return",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("b", Returned, 2, Some(1)),
                    ev("c", Submitted, 3, Some(2)),
                ],
                S::Submitted,
                2,
            ),
            (
                "approval of an old revision races a resubmission",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("b", Returned, 2, Some(1)),
                    ev("c", Submitted, 3, Some(2)),
                    ev("d", Approved, 4, Some(1)),
                ],
                S::Submitted,
                2,
            ),
            (
                "the same race in the other list order",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("b", Returned, 2, Some(1)),
                    ev("d", Approved, 4, Some(1)),
                    ev("c", Submitted, 3, Some(2)),
                ],
                S::Submitted,
                2,
            ),
            (
                "two reviews of one revision: the later in the list wins, whatever the clocks say",
                vec![
                    ev("a", Submitted, 1, Some(1)),
                    ev("c", Approved, 9, Some(1)),
                    ev("b", Returned, 5, Some(1)),
                ],
                S::Returned,
                1,
            ),
        ];
        for (name, events, status, revision) in cases {
            let st = fold_inspection(&events);
            assert_eq!((st.status, st.revision), (status, revision), "{name}");
        }
    }

    #[test]
    fn finding_fold_table() {
        use EventKind::*;
        use FindingStatus as S;
        let cases: Vec<(&str, Vec<Event>, S)> = vec![
            ("raised", vec![ev("a", Found, 1, None)], S::Found),
            (
                "assigned",
                vec![ev("a", Found, 1, None), ev("b", Assigned, 2, None)],
                S::Assigned,
            ),
            (
                "closed",
                vec![
                    ev("a", Found, 1, None),
                    ev("b", Assigned, 2, None),
                    ev("c", ClosureRequested, 3, None),
                    ev("d", Closed, 4, None),
                ],
                S::Closed,
            ),
            (
                "sent back then rectifying",
                vec![
                    ev("a", Found, 1, None),
                    ev("b", Assigned, 2, None),
                    ev("c", ClosureRequested, 3, None),
                    ev("d", SentBack, 4, None),
                    ev("e", Rectifying, 5, None),
                ],
                S::Rectifying,
            ),
            (
                "closure before assignment is skipped",
                vec![ev("a", Found, 1, None), ev("b", Closed, 2, None)],
                S::Found,
            ),
            (
                "concurrent close and send back: the first in the list decides",
                vec![
                    ev("a", Found, 1, None),
                    ev("b", Assigned, 2, None),
                    ev("c", ClosureRequested, 3, None),
                    ev("d", Closed, 4, None),
                    ev("e", SentBack, 4, None),
                ],
                S::Closed,
            ),
            (
                "a slow supervisor clock does not reorder a close after the request it saw",
                vec![
                    ev("a", Found, 10, None),
                    ev("b", Assigned, 20, None),
                    ev("c", ClosureRequested, 30, None),
                    ev("d", Closed, 5, None),
                ],
                S::Closed,
            ),
        ];
        for (name, events, status) in cases {
            assert_eq!(fold_finding(&events).status, status, "{name}");
        }
    }

    #[test]
    fn finding_deadline_and_overdue() {
        let mut found = ev("a", EventKind::Found, 1, None);
        found.deadline = Some("2025-03-01".into());
        let mut assigned = ev("b", EventKind::Assigned, 2, None);
        assigned.deadline = Some("2025-04-01".into());
        assigned.responsible = Some("村委会".into());
        let st = fold_finding(&[found.clone(), assigned.clone()]);
        assert_eq!(st.deadline.as_deref(), Some("2025-04-01"));
        assert_eq!(st.responsible.as_deref(), Some("村委会"));
        assert!(st.is_overdue("2025-04-02"));
        assert!(!st.is_overdue("2025-04-01"));
        let esc = ev("c", EventKind::Escalated, 3, None);
        assert!(fold_finding(&[found, assigned, esc]).escalated);
    }

    #[test]
    fn dates_in_china() {
        assert_eq!(china_date(0), "1970-01-01");
        // 2024-02-28T16:00:00Z is midnight of the 29th in Beijing.
        assert_eq!(china_date(1_709_136_000_000), "2024-02-29");
        assert_eq!(china_date(1_709_135_999_999), "2024-02-28");
        assert_eq!(china_date(-1), "1970-01-01");
        assert_eq!(china_day_start_ms("2024-02-29"), Some(1_709_136_000_000));
        assert_eq!(china_day_start_ms("2024-02-30"), None);
        assert_eq!(china_day_start_ms("soon"), None);
        // The two agree on every day of a few centuries.
        for day in (-40_000i64..60_000).step_by(7) {
            let start = day * 86_400_000 - 8 * 3_600_000;
            assert_eq!(china_day_start_ms(&china_date(start)), Some(start));
        }
    }

    #[test]
    fn role_table() {
        assert_eq!(EventKind::Approved.allowed_roles(), &[Role::Supervisor]);
        assert!(
            EventKind::Commented
                .allowed_roles()
                .contains(&Role::Inspector)
        );
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_key(k.key()), Some(k));
        }
    }
}
