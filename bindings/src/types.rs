//! The records and enums the apps see, and their conversions from the
//! core's types. Views are flattened for screens: labels come in the user's
//! language, times are Unix milliseconds, enums are plain.

use fieldbook_core::model::template::{FieldType, Label, Problem};
use fieldbook_core::model::{self, Value};
use fieldbook_core::store;

/// The language labels are given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Language {
    Zh,
    En,
}

impl Language {
    pub(crate) fn pick(self, l: &Label) -> String {
        match self {
            Language::Zh => l.zh.clone(),
            Language::En => l.en.clone(),
        }
    }

    pub(crate) fn pick_text(self, zh: &str, en: &str) -> String {
        match self {
            Language::Zh => zh.into(),
            Language::En => en.into(),
        }
    }

    fn pick_static(self, zh: &'static str, en: &'static str) -> String {
        match self {
            Language::Zh => zh.into(),
            Language::En => en.into(),
        }
    }
}

/// Declares an app-facing enum that mirrors a core enum variant for variant.
macro_rules! mirror_enum {
    ($(#[$m:meta])* $name:ident <=> $core:path { $($v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
        pub enum $name { $($v),+ }

        impl From<$core> for $name {
            fn from(c: $core) -> Self {
                use $core as C;
                match c { $(C::$v => $name::$v),+ }
            }
        }

        impl From<$name> for $core {
            fn from(c: $name) -> Self {
                use $core as C;
                match c { $($name::$v => C::$v),+ }
            }
        }
    };
}

mirror_enum!(
    /// The seven kinds of site the plan tracks.
    SiteKind <=> model::SiteKind {
        RuralSewage, TownshipSewagePlant, HouseholdToilet, GarbagePoint,
        TailingsPond, SewageOutfall, BlackOdorousWater,
    }
);
mirror_enum!(
    Role <=> model::Role { Inspector, Supervisor, CountyOffice, Admin }
);
mirror_enum!(
    InspectionStatus <=> model::InspectionStatus { Draft, Submitted, Returned, Approved }
);
mirror_enum!(
    FindingStatus <=> model::FindingStatus {
        Found, Assigned, Rectifying, ClosureRequested, Closed, SentBack,
    }
);

/// A step in a finding's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FindingStep {
    Assigned,
    Rectifying,
    ClosureRequested,
    Closed,
    SentBack,
    Escalated,
}

impl FindingStep {
    fn from_core(k: model::EventKind) -> Option<FindingStep> {
        Some(match k {
            model::EventKind::Assigned => FindingStep::Assigned,
            model::EventKind::Rectifying => FindingStep::Rectifying,
            model::EventKind::ClosureRequested => FindingStep::ClosureRequested,
            model::EventKind::Closed => FindingStep::Closed,
            model::EventKind::SentBack => FindingStep::SentBack,
            model::EventKind::Escalated => FindingStep::Escalated,
            _ => return None,
        })
    }

    /// The steps `role` may take on a finding in `status`, as the core
    /// decides them.
    pub(crate) fn offered(status: model::FindingStatus, role: model::Role) -> Vec<FindingStep> {
        status
            .steps_for(role)
            .into_iter()
            .filter_map(FindingStep::from_core)
            .collect()
    }
}

impl From<FindingStep> for model::EventKind {
    fn from(s: FindingStep) -> Self {
        match s {
            FindingStep::Assigned => model::EventKind::Assigned,
            FindingStep::Rectifying => model::EventKind::Rectifying,
            FindingStep::ClosureRequested => model::EventKind::ClosureRequested,
            FindingStep::Closed => model::EventKind::Closed,
            FindingStep::SentBack => model::EventKind::SentBack,
            FindingStep::Escalated => model::EventKind::Escalated,
        }
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FieldValue {
    YesNo {
        value: bool,
    },
    Number {
        value: f64,
    },
    /// A choice key, free text, or a date `YYYY-MM-DD`.
    Text {
        value: String,
    },
}

impl From<FieldValue> for Value {
    fn from(v: FieldValue) -> Self {
        match v {
            FieldValue::YesNo { value } => Value::Bool(value),
            FieldValue::Number { value } => Value::Number(value),
            FieldValue::Text { value } => Value::Text(value),
        }
    }
}

impl From<Value> for FieldValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Bool(value) => FieldValue::YesNo { value },
            Value::Number(value) => FieldValue::Number { value },
            Value::Text(value) => FieldValue::Text { value },
        }
    }
}

/// Who is logged in on this phone.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AccountInfo {
    pub server: String,
    pub user: String,
    pub role: Role,
    /// Division-code prefixes the user may see and write.
    pub areas: Vec<String>,
    pub device: String,
    /// The next sync needs a fresh login (token expired, revoked or
    /// logged out). Everything else keeps working offline.
    pub login_required: bool,
}

/// A map position.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}

/// A GPS fix as the phone's location service gives it.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub at_ms: i64,
    /// The OS flagged the fix as coming from a mock provider.
    pub mock: bool,
}

impl From<Location> for model::GpsFix {
    fn from(l: Location) -> Self {
        model::GpsFix {
            lat: l.lat,
            lon: l.lon,
            accuracy_m: l.accuracy_m,
            at: l.at_ms,
            mock: l.mock,
        }
    }
}

impl From<model::GpsFix> for Location {
    fn from(f: model::GpsFix) -> Self {
        Location {
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            at_ms: f.at,
            mock: f.mock,
        }
    }
}

/// One row of the site list.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SiteItem {
    pub id: String,
    pub kind: SiteKind,
    pub kind_label: String,
    pub name: String,
    pub village_code: String,
    /// County › township › village, when the code is a known division.
    pub place: Option<String>,
    pub position: Option<Position>,
    /// Found in the field rather than imported from the registry.
    pub found_in_field: bool,
}

impl SiteItem {
    pub(crate) fn from_core(s: store::SiteSummary, lang: Language) -> SiteItem {
        SiteItem {
            kind_label: lang.pick_static(s.kind.label_zh(), s.kind.label_en()),
            place: model::area::Divisions::luoyang().path_name(&s.village_code),
            id: s.id,
            kind: s.kind.into(),
            name: s.name,
            village_code: s.village_code,
            position: s.location.map(|p| Position {
                lat: p.lat,
                lon: p.lon,
            }),
            found_in_field: s.source == model::SiteSource::Field,
        }
    }
}

/// The kind of input a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FieldKind {
    YesNo,
    Choice,
    Number,
    Text,
    Date,
    /// No answer: the field asks for photos tagged with its key.
    Photo,
}

/// One option of a choice field.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChoiceItem {
    pub key: String,
    pub label: String,
}

/// One field of a checklist, everything a form needs to render it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TemplateField {
    pub key: String,
    pub label: String,
    pub help: Option<String>,
    pub kind: FieldKind,
    pub required: bool,
    pub options: Vec<ChoiceItem>,
    pub unit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub integer: bool,
    /// Longest text answer, in characters.
    pub max_len: Option<u32>,
    /// Photos the field asks for (0 = none), and what to photograph.
    pub photos_min: u32,
    pub photo_hint: Option<String>,
    /// When the field is shown, in the template's notation; the core
    /// decides visibility (see `FieldState::visible`), this is for display.
    pub shown_if: Option<String>,
}

/// A checklist.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TemplateInfo {
    pub id: String,
    pub kind: SiteKind,
    pub title: String,
    pub fields: Vec<TemplateField>,
}

impl TemplateInfo {
    pub(crate) fn from_core(t: &model::template::Template, lang: Language) -> TemplateInfo {
        TemplateInfo {
            id: t.id(),
            kind: t.kind.into(),
            title: lang.pick(&t.title),
            fields: t
                .fields
                .iter()
                .map(|f| {
                    let mut out = TemplateField {
                        key: f.key.clone(),
                        label: lang.pick(&f.label),
                        help: f.help.as_ref().map(|h| lang.pick(h)),
                        kind: FieldKind::Photo,
                        required: f.required,
                        options: Vec::new(),
                        unit: None,
                        min: None,
                        max: None,
                        integer: false,
                        max_len: None,
                        photos_min: f.photo.as_ref().map_or(0, |p| p.min),
                        photo_hint: f
                            .photo
                            .as_ref()
                            .and_then(|p| p.hint.as_ref())
                            .map(|h| lang.pick(h)),
                        shown_if: f.show_if.as_ref().map(ToString::to_string),
                    };
                    match &f.ty {
                        FieldType::YesNo => out.kind = FieldKind::YesNo,
                        FieldType::Choice { options } => {
                            out.kind = FieldKind::Choice;
                            out.options = options
                                .iter()
                                .map(|o| ChoiceItem {
                                    key: o.key.clone(),
                                    label: lang.pick(&o.label),
                                })
                                .collect();
                        }
                        FieldType::Number {
                            unit,
                            min,
                            max,
                            integer,
                        } => {
                            out.kind = FieldKind::Number;
                            out.unit = unit.clone();
                            out.min = *min;
                            out.max = *max;
                            out.integer = *integer;
                        }
                        FieldType::Text { max_len } => {
                            out.kind = FieldKind::Text;
                            out.max_len = Some(*max_len);
                        }
                        FieldType::Date => out.kind = FieldKind::Date,
                        FieldType::Photo => out.kind = FieldKind::Photo,
                    }
                    out
                })
                .collect(),
        }
    }
}

/// A problem with one field (or with the record when `field` is empty).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldProblem {
    pub field: String,
    pub code: String,
    /// In the user's language.
    pub message: String,
}

impl FieldProblem {
    pub(crate) fn from_core(p: &Problem, lang: Language) -> FieldProblem {
        FieldProblem {
            field: p.field.clone(),
            code: p.code.key().into(),
            message: match lang {
                Language::Zh => p.zh.clone(),
                Language::En => p.en.clone(),
            },
        }
    }
}

/// One field of an inspection as it stands.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldState {
    pub key: String,
    pub label: String,
    pub required: bool,
    /// Shown under the current answers (the core evaluates the conditions).
    pub visible: bool,
    pub value: Option<FieldValue>,
    /// The label of a choice answer.
    pub value_label: Option<String>,
    /// Other values written concurrently on other phones; the form shows
    /// them for the inspector to pick one.
    pub conflicts: Vec<FieldValue>,
    /// Photos tagged with this field.
    pub photos: u32,
}

/// An event in a record's history: submissions, reviews, comments.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TimelineItem {
    pub at_ms: i64,
    pub label: String,
    pub author: String,
    pub role: Role,
    pub revision: Option<u32>,
    pub comment: Option<String>,
}

impl TimelineItem {
    fn from_core(t: store::TimelineEntry, lang: Language) -> TimelineItem {
        TimelineItem {
            at_ms: t.at,
            label: lang.pick(&t.label),
            author: t.author,
            role: t.role.into(),
            revision: t.revision,
            comment: t.comment,
        }
    }
}

/// A photo attached to a record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PhotoItem {
    /// BLAKE3 of the compressed file; the photo's name everywhere.
    pub hash: String,
    pub field: Option<String>,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub taken_at_ms: Option<i64>,
    pub position: Option<Position>,
    /// Where the compressed file is on this phone (it may be absent for a
    /// photo taken on another phone: download it).
    pub path: String,
}

impl PhotoItem {
    pub(crate) fn from_core(p: model::PhotoRef, dir: &std::path::Path) -> PhotoItem {
        PhotoItem {
            path: store::photo_file(dir, &p.hash).display().to_string(),
            hash: p.hash,
            field: p.field,
            width: p.width,
            height: p.height,
            bytes: p.bytes,
            taken_at_ms: p.taken_at,
            position: p.gps.map(|g| Position {
                lat: g.lat,
                lon: g.lon,
            }),
        }
    }
}

/// A note or comment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NoteItem {
    pub text: String,
    pub author: String,
    pub at_ms: i64,
}

/// An inspection with everything its screen shows.
#[derive(Debug, Clone, uniffi::Record)]
pub struct InspectionDetail {
    pub id: String,
    pub site_id: String,
    pub site_name: Option<String>,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub template_id: String,
    pub title: String,
    pub inspector: String,
    pub started_at_ms: i64,
    pub location: Option<Location>,
    pub status: InspectionStatus,
    pub status_label: String,
    pub revision: u32,
    /// This user may change answers now.
    pub editable: bool,
    pub fields: Vec<FieldState>,
    pub photos: Vec<PhotoItem>,
    pub notes: Vec<NoteItem>,
    pub timeline: Vec<TimelineItem>,
    /// What still stops a submission (empty when it can be submitted).
    pub problems: Vec<FieldProblem>,
}

impl InspectionDetail {
    pub(crate) fn from_core(
        v: store::InspectionView,
        lang: Language,
        photo_dir: &std::path::Path,
    ) -> InspectionDetail {
        InspectionDetail {
            status_label: lang.pick_static(v.status.label_zh(), v.status.label_en()),
            id: v.id,
            site_id: v.site_id,
            site_name: v.site_name,
            site_kind: v.site_kind.into(),
            village_code: v.village_code,
            template_id: v.template_id,
            title: lang.pick(&v.template_title),
            inspector: v.inspector,
            started_at_ms: v.started_at,
            location: v.location.map(Into::into),
            status: v.status.into(),
            revision: v.revision,
            editable: v.editable,
            fields: v
                .fields
                .into_iter()
                .map(|f| FieldState {
                    label: lang.pick(&f.label),
                    value_label: f.value_label.as_ref().map(|l| lang.pick(l)),
                    key: f.key,
                    required: f.required,
                    visible: f.visible,
                    value: f.value.map(Into::into),
                    conflicts: f.conflicts.into_iter().map(Into::into).collect(),
                    photos: f.photos,
                })
                .collect(),
            photos: v
                .photos
                .into_iter()
                .map(|p| PhotoItem::from_core(p, photo_dir))
                .collect(),
            notes: v.notes.into_iter().map(note).collect(),
            timeline: v
                .timeline
                .into_iter()
                .map(|t| TimelineItem::from_core(t, lang))
                .collect(),
            problems: v
                .problems
                .iter()
                .map(|p| FieldProblem::from_core(p, lang))
                .collect(),
        }
    }
}

fn note(n: model::Note) -> NoteItem {
    NoteItem {
        text: n.text,
        author: n.author,
        at_ms: n.at,
    }
}

/// One row of an inspection list.
#[derive(Debug, Clone, uniffi::Record)]
pub struct InspectionItem {
    pub id: String,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub status: InspectionStatus,
    pub status_label: String,
    pub revision: u32,
    pub inspector: String,
    pub started_at_ms: i64,
    pub submitted_at_ms: Option<i64>,
    pub answered: u32,
    pub photos: u32,
    pub conflicts: u32,
}

impl InspectionItem {
    pub(crate) fn from_core(s: store::InspectionSummary, lang: Language) -> InspectionItem {
        InspectionItem {
            status_label: lang.pick_static(s.status.label_zh(), s.status.label_en()),
            id: s.id,
            site_id: s.site_id,
            site_kind: s.site_kind.into(),
            village_code: s.village_code,
            status: s.status.into(),
            revision: s.revision,
            inspector: s.inspector,
            started_at_ms: s.started_at,
            submitted_at_ms: s.submitted_at,
            answered: s.answered,
            photos: s.photos,
            conflicts: s.conflicts,
        }
    }
}

/// A finding to raise.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewFindingInput {
    /// The inspection that found it, if any.
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub title: String,
    pub description: String,
    /// Rectification deadline `YYYY-MM-DD`, if known.
    pub deadline: Option<String>,
}

/// One row of a finding list, or a finding's screen.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FindingItem {
    pub id: String,
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub title: String,
    pub description: Option<String>,
    pub status: FindingStatus,
    pub status_label: String,
    pub responsible: Option<String>,
    pub deadline: Option<String>,
    pub escalated: bool,
    pub overdue: bool,
    pub raised_at_ms: i64,
    pub photos: Vec<PhotoItem>,
    pub timeline: Vec<TimelineItem>,
    /// The steps this user may take now (buttons to offer).
    pub next_steps: Vec<FindingStep>,
}

impl FindingItem {
    pub(crate) fn from_summary(
        s: store::FindingSummary,
        lang: Language,
        role: model::Role,
    ) -> FindingItem {
        FindingItem {
            next_steps: FindingStep::offered(s.status, role),
            status_label: lang.pick_static(s.status.label_zh(), s.status.label_en()),
            id: s.id,
            inspection_id: s.inspection_id,
            site_id: s.site_id,
            site_kind: s.site_kind.into(),
            village_code: s.village_code,
            title: s.title,
            description: None,
            status: s.status.into(),
            responsible: s.responsible,
            deadline: s.deadline,
            escalated: s.escalated,
            overdue: s.overdue,
            raised_at_ms: s.raised_at,
            photos: Vec::new(),
            timeline: Vec::new(),
        }
    }

    pub(crate) fn from_view(
        v: store::FindingView,
        lang: Language,
        role: model::Role,
        photo_dir: &std::path::Path,
    ) -> FindingItem {
        FindingItem {
            next_steps: FindingStep::offered(v.status, role),
            status_label: lang.pick_static(v.status.label_zh(), v.status.label_en()),
            id: v.id,
            inspection_id: v.inspection_id,
            site_id: v.site_id,
            site_kind: v.site_kind.into(),
            village_code: v.village_code,
            title: v.title,
            description: Some(v.description),
            status: v.status.into(),
            responsible: v.responsible,
            deadline: v.deadline,
            escalated: v.escalated,
            overdue: v.overdue,
            raised_at_ms: v.raised_at,
            photos: v
                .photos
                .into_iter()
                .map(|p| PhotoItem::from_core(p, photo_dir))
                .collect(),
            timeline: v
                .timeline
                .into_iter()
                .map(|t| TimelineItem::from_core(t, lang))
                .collect(),
        }
    }
}

/// What is waiting to go up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PendingInfo {
    /// Records with unsent changes.
    pub records: u64,
    pub changes: u64,
    pub photos: u64,
    /// Local changes the server refused (shown so the user can act).
    pub rejections: u64,
    /// When the last sync finished (Unix ms), kept across restarts so a
    /// background job in a fresh process paces itself.
    pub last_synced_ms: Option<i64>,
    /// A sync is running now.
    pub syncing: bool,
}

/// Running totals of a sync, reported after every exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    pub requests: u32,
    pub records_up: u64,
    pub bytes_up: u64,
    pub records_down: u64,
    pub bytes_down: u64,
    /// Changes still waiting to go up.
    pub pending: u64,
}

impl From<&fieldbook_core::sync::Progress> for SyncProgress {
    fn from(p: &fieldbook_core::sync::Progress) -> Self {
        SyncProgress {
            requests: p.requests,
            records_up: p.records_up,
            bytes_up: p.bytes_up,
            records_down: p.records_down,
            bytes_down: p.bytes_down,
            pending: p.pending,
        }
    }
}

/// A record the server refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RejectedRecord {
    pub record_id: String,
    pub code: String,
    pub message: String,
}

/// The result of a finished sync.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub progress: SyncProgress,
    pub rejected: Vec<RejectedRecord>,
    pub photos_uploaded: u32,
    /// Photos whose file on this phone is damaged: not sent; retake them.
    pub photos_damaged: u32,
    pub retries: u32,
}

impl From<fieldbook_core::sync::SyncSummary> for SyncReport {
    fn from(s: fieldbook_core::sync::SyncSummary) -> Self {
        SyncReport {
            progress: (&s.progress).into(),
            rejected: s
                .rejected
                .into_iter()
                .map(|(record_id, code, message)| RejectedRecord {
                    record_id,
                    code,
                    message,
                })
                .collect(),
            photos_uploaded: s.photos.uploaded + s.photos.already_there,
            photos_damaged: s.photos.damaged_files,
            retries: s.retries,
        }
    }
}

/// One row of the coverage table of the user's own areas: an indicator in
/// one area (the user's township and each village in it, or wider areas
/// for wider users).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CoverageItem {
    /// Stable indicator id, e.g. `sanitary_toilet_rate`.
    pub indicator: String,
    /// Its name in the user's language.
    pub indicator_name: String,
    /// `city`, `county`, `township` or `village`.
    pub level: String,
    pub area_code: String,
    pub area_name: String,
    pub numerator: u64,
    pub denominator: u64,
    /// Units with no approved inspection in the period.
    pub not_inspected: u64,
    /// Share 0–1; none when the area has no units (0 of 0).
    pub rate: Option<f64>,
    /// The plan's target for the period's end, 0–1, if it sets one.
    pub target: Option<f64>,
    /// Target minus rate.
    pub gap: Option<f64>,
}

impl CoverageItem {
    pub(crate) fn from_core(r: model::indicator::CoverageRow, lang: Language) -> CoverageItem {
        let indicator_name = model::indicator::Indicators::builtin()
            .get(&r.indicator)
            .map_or_else(|| r.indicator.clone(), |i| lang.pick(&i.name));
        CoverageItem {
            indicator_name,
            indicator: r.indicator,
            level: r.level.key().to_owned(),
            area_code: r.area_code,
            area_name: r.area_name,
            numerator: r.tally.numerator,
            denominator: r.tally.denominator,
            not_inspected: r.tally.not_inspected,
            rate: r.rate,
            target: r.target,
            gap: r.gap,
        }
    }
}

/// What `recover_store` brought back.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecoveryInfo {
    /// Where the damaged database was kept.
    pub kept_at: String,
    /// Records read back.
    pub records: u64,
    /// Unsent changes back in the outbox.
    pub unsent_changes: u64,
    /// Records or changes that could not be read; a sync restores those the
    /// server has.
    pub unreadable: u64,
    /// Photo files queued for upload again.
    pub photos: u64,
}
