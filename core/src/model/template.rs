//! Checklist templates: what an inspection of each site kind asks, and the
//! named rules that judge its answers (effective, sanitary, compliant, …).
//!
//! Templates are data, one TOML file per site kind and version in
//! `templates/<kind>.v<version>.toml`, because county offices edit them.
//! [`Template::parse`] checks a file thoroughly, so that a bad edit is
//! rejected with a message naming the field and the reason instead of
//! producing inspections nobody can judge. After that, answers are checked
//! one at a time ([`Template::check_value`], while typing) or all at once
//! ([`Template::validate`], on submission), and rules are evaluated
//! ([`Template::evaluate`]). Pure: no I/O, and no panic on any input.
//!
//! # Format
//!
//! ```toml
//! kind = "garbage_point"              # a SiteKind key
//! version = 1                         # 1 or more; inspections record "kind@version"
//! title = { zh = "垃圾收集点检查", en = "Garbage point check" }
//!
//! [params]                            # named numbers rules compare against
//! containers_min = 2
//!
//! [[fields]]                          # asked in this order
//! key = "overflowing"                 # snake_case ASCII, unique; stored in answers
//! label = { zh = "满溢", en = "Overflowing" }
//! type = "yes_no"                     # yes_no | choice | number | text | date | photo
//! required = true                     # default false
//! photo = { min = 1, required_if = { field = "overflowing", eq = true }, hint = { zh = "满溢的容器", en = "bins" } }
//!
//! [[fields]]
//! key = "containers"
//! label = { zh = "容器数量", en = "Containers" }
//! type = "number"
//! integer = true
//! min = 0
//! max = 10000
//! show_if = { field = "overflowing", eq = false }
//! help = { zh = "…", en = "…" }
//! section = { zh = "收运", en = "Collection" }   # begins a part of the checklist
//!
//! [[rules]]
//! id = "covered"
//! label = { zh = "已覆盖", en = "Covered" }
//! # adverse = true  marks a rule that names a problem (holding is bad)
//! when = { all = [
//!   { field = "overflowing", eq = false },
//!   { field = "containers", ge = { param = "containers_min" } },
//! ] }
//! ```
//!
//! Keys that only some types take: `choice` needs
//! `options = [{ key = "…", zh = "…", en = "…" }, …]`; `number` takes `unit`,
//! `min`, `max` and `integer` (default false); `text` takes `max_len` in
//! characters (default [`TEXT_CHARS_DEFAULT`]). Any other key, or a key on a
//! type that does not take it, is an error: a typo must not silently drop a
//! constraint.
//!
//! A condition (`show_if`, `photo.required_if`, a rule's `when`) is an inline
//! table with exactly one operator:
//! - `{ all = [c, …] }`, `{ any = [c, …] }`, `{ not = c }`;
//! - `{ field = "k", eq = v }`, likewise `ne`, `lt`, `le`, `gt`, `ge`, where
//!   `v` is a literal of the field's type (`true`/`false`, a number, a choice
//!   key, text, or a date as a quoted `"YYYY-MM-DD"`) or, for number fields,
//!   `{ param = "name" }`; `lt`/`le`/`gt`/`ge` only for numbers and dates;
//! - `{ field = "k", in = [v, …] }` and `not_in`;
//! - `{ is_set = "k" }` and `{ not_set = "k" }`.
//!
//! # Meaning
//!
//! - A field is *unanswered* when it has no answer, a blank text, an answer of
//!   the wrong shape (say a number for a yes/no field, or a choice key that is
//!   not an option), or when it is hidden. Every comparison on an unanswered
//!   field is **false**, `ne` and `not_in` included; `not_set` (or a `not`
//!   around the comparison) is how to say otherwise.
//!   So "an optional lab value counts as within limits when absent" is written
//!   `{ any = [{ not_set = "x" }, { field = "x", le = { param = "x_max" } }] }`.
//! - A field is *hidden* when its `show_if` is false; a field whose `show_if`
//!   reads a hidden field sees it as unanswered, so hiding cascades. In
//!   [`Template::validate`] an answer to a hidden field is
//!   [`ProblemCode::NotApplicable`], and a hidden required field is not asked.
//! - A `photo` requirement applies while its field is visible and its
//!   `required_if` (if any) holds: at least `min` photos tagged with the
//!   field's key. On a `photo` field, `required = true` without a `photo` table
//!   means one photo. Photo fields hold no answer and no condition reads them.
//! - Rules only read answers; anything that needs several inspections (how
//!   often a pond was inspected, whether this is the latest inspection) is
//!   judged elsewhere, and each template says so next to the rule.
//!
//! # Recipes
//!
//! - **To add a field**: add a `[[fields]]` table where it should be asked.
//!   If inspections were already made with this version and the field is
//!   required or changes a rule, make a new version instead (below), so old
//!   inspections still validate against what they were asked.
//! - **To add a kind**: add the [`SiteKind`] variant (see `site.rs`), write
//!   `templates/<key>.v1.toml`, add it to [`BUILTIN_TEXTS`], and add its
//!   checklist keys to the `checklist_keys` test.
//! - **To add a version**: copy `<key>.v<N>.toml` to `<key>.v<N+1>.toml`, set
//!   `version = N+1`, edit, and add it to [`BUILTIN_TEXTS`]. Keep the old
//!   file: inspections name the version they were made with, and
//!   [`Templates::latest`] hands the new one to new inspections.

use crate::model::site::SiteKind;
use crate::model::value::{Value, is_iso_date};
use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

/// Largest template text accepted, in bytes.
pub const TEMPLATE_BYTES_MAX: usize = 256 * 1024;
/// Most templates one [`Templates`] holds.
pub const TEMPLATES_MAX: usize = 200;
/// Most fields in one template.
pub const FIELDS_MAX: usize = 300;
/// Most options of one choice field.
pub const OPTIONS_MAX: usize = 100;
/// Most rules in one template.
pub const RULES_MAX: usize = 100;
/// Most params in one template.
pub const PARAMS_MAX: usize = 100;
/// Deepest nesting of one condition (`all`/`any`/`not`), counting the top.
pub const CONDITION_DEPTH_MAX: usize = 8;
/// Most items in one `all`/`any`/`in`/`not_in` list.
pub const CONDITION_LIST_MAX: usize = 100;
/// Longest key, option key, param name or rule id, in bytes (ASCII).
pub const KEY_BYTES_MAX: usize = 64;
/// Longest label or photo hint, in characters.
pub const LABEL_CHARS_MAX: usize = 200;
/// Longest help text, in characters.
pub const HELP_CHARS_MAX: usize = 2000;
/// Longest unit, in characters.
pub const UNIT_CHARS_MAX: usize = 20;
/// Largest `max_len` a text field may declare, in characters.
pub const TEXT_CHARS_MAX: u32 = crate::model::limits::TEXT_CHARS_MAX as u32;
/// `max_len` of a text field that does not declare one, in characters.
pub const TEXT_CHARS_DEFAULT: u32 = 500;
/// Largest photo `min` a field may declare.
pub const PHOTOS_PER_FIELD_MAX: u32 = 50;
/// Longest piece of an answer quoted back in a problem message, in characters.
const QUOTE_CHARS_MAX: usize = 40;

/// The built-in templates as `(file name, text)`, compiled in so that a phone
/// can inspect before it has ever synced.
pub const BUILTIN_TEXTS: [(&str, &str); 7] = [
    (
        "rural_sewage.v1.toml",
        include_str!("../../templates/rural_sewage.v1.toml"),
    ),
    (
        "township_sewage_plant.v1.toml",
        include_str!("../../templates/township_sewage_plant.v1.toml"),
    ),
    (
        "household_toilet.v1.toml",
        include_str!("../../templates/household_toilet.v1.toml"),
    ),
    (
        "garbage_point.v1.toml",
        include_str!("../../templates/garbage_point.v1.toml"),
    ),
    (
        "tailings_pond.v1.toml",
        include_str!("../../templates/tailings_pond.v1.toml"),
    ),
    (
        "sewage_outfall.v1.toml",
        include_str!("../../templates/sewage_outfall.v1.toml"),
    ),
    (
        "black_odorous_water.v1.toml",
        include_str!("../../templates/black_odorous_water.v1.toml"),
    ),
];

/// A text in both languages the system speaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Label {
    pub zh: String,
    pub en: String,
}

/// One checklist: a site kind's questions at one version, and its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub kind: SiteKind,
    pub version: u32,
    pub title: Label,
    /// In the order they are asked.
    pub fields: Vec<Field>,
    pub params: BTreeMap<String, f64>,
    pub rules: Vec<Rule>,
}

/// One question.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub label: Label,
    pub ty: FieldType,
    /// Needs an answer when visible.
    pub required: bool,
    /// Asked only when this holds.
    pub show_if: Option<Condition>,
    pub photo: Option<PhotoRequirement>,
    pub help: Option<Label>,
    /// A field with a section begins that part of the checklist; the
    /// fields after it belong to it until the next section.
    pub section: Option<Label>,
}

/// What a field's answer looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// `Value::Bool`.
    YesNo,
    /// `Value::Text` holding one option key.
    Choice { options: Vec<ChoiceOption> },
    /// `Value::Number`, finite, within `min..=max`.
    Number {
        unit: Option<String>,
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
    },
    /// `Value::Text` of at most `max_len` characters.
    Text { max_len: u32 },
    /// `Value::Text` holding `YYYY-MM-DD`.
    Date,
    /// No answer: photos tagged with the field's key.
    Photo,
}

impl FieldType {
    /// The name used for `type` in the TOML.
    pub fn key(&self) -> &'static str {
        match self {
            FieldType::YesNo => "yes_no",
            FieldType::Choice { .. } => "choice",
            FieldType::Number { .. } => "number",
            FieldType::Text { .. } => "text",
            FieldType::Date => "date",
            FieldType::Photo => "photo",
        }
    }

    fn expected(&self) -> (&'static str, &'static str) {
        match self {
            FieldType::YesNo => ("是/否", "yes/no"),
            FieldType::Choice { .. } => ("选项", "a choice"),
            FieldType::Number { .. } => ("数字", "a number"),
            FieldType::Text { .. } => ("文本", "text"),
            FieldType::Date => ("日期", "a date"),
            FieldType::Photo => ("照片", "photos"),
        }
    }
}

/// One option of a choice field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceOption {
    /// Stable ASCII key, stored in answers.
    pub key: String,
    pub label: Label,
}

/// Photos a field needs, tagged with the field's key.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRequirement {
    /// At least this many (1 or more).
    pub min: u32,
    /// Only when this holds; always when `None`.
    pub required_if: Option<Condition>,
    /// What to photograph.
    pub hint: Option<Label>,
}

/// A test on answers. See the module doc for how unanswered fields compare.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every one holds (a template never writes an empty list).
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// The field's answer compared with a literal or a param.
    Compare {
        field: String,
        op: CompareOp,
        rhs: Operand,
    },
    /// The field's answer is one of these.
    In {
        field: String,
        values: Vec<Value>,
    },
    /// The field is answered and its answer is none of these.
    NotIn {
        field: String,
        values: Vec<Value>,
    },
    /// The field is answered.
    IsSet(String),
    /// The field is unanswered.
    NotSet(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The name used in the TOML.
    pub fn key(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    /// A number from the template's `[params]`.
    Param(String),
}

impl Condition {
    /// The field keys this condition reads, in order, repeats included.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().for_each(|c| c.collect_fields(out));
            }
            Condition::Not(c) => c.collect_fields(out),
            Condition::Compare { field, .. }
            | Condition::In { field, .. }
            | Condition::NotIn { field, .. }
            | Condition::IsSet(field)
            | Condition::NotSet(field) => out.push(field),
        }
    }
}

/// Compact and unambiguous, for logs, test snapshots and template reviews:
/// `all(running_status eq "normal", lab_cod_mg_l le $lab_cod_max_mg_l)`.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, cs: &[Condition]| {
            write!(f, "{name}(")?;
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        };
        let values = |f: &mut fmt::Formatter<'_>, vs: &[Value]| {
            f.write_str("[")?;
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_literal(f, v)?;
            }
            f.write_str("]")
        };
        match self {
            Condition::All(cs) => list(f, "all", cs),
            Condition::Any(cs) => list(f, "any", cs),
            Condition::Not(c) => write!(f, "not({c})"),
            Condition::Compare { field, op, rhs } => {
                write!(f, "{field} {} ", op.key())?;
                match rhs {
                    Operand::Literal(v) => write_literal(f, v),
                    Operand::Param(p) => write!(f, "${p}"),
                }
            }
            Condition::In { field, values: vs } => {
                write!(f, "{field} in ")?;
                values(f, vs)
            }
            Condition::NotIn { field, values: vs } => {
                write!(f, "{field} not_in ")?;
                values(f, vs)
            }
            Condition::IsSet(field) => write!(f, "is_set({field})"),
            Condition::NotSet(field) => write!(f, "not_set({field})"),
        }
    }
}

fn write_literal(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::Text(s) => write!(f, "{s:?}"),
        // As the TOML writes it, not as `Value`'s Display ("yes"/"no").
        Value::Bool(b) => write!(f, "{b}"),
        Value::Number(n) => write!(f, "{n}"),
    }
}

/// A named judgement on an inspection's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub label: Label,
    pub when: Condition,
    /// The rule names a problem (黑臭, 问题厕所, 隐患): holding is the bad
    /// outcome. A page shows 达标 when a rule holds, or when an adverse one
    /// does not.
    pub adverse: bool,
}

/// Something wrong with the answers, for the inspector to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field key (or the unknown key that was answered).
    pub field: String,
    pub code: ProblemCode,
    /// Names the field's Chinese label and the reason.
    pub zh: String,
    /// Names the field's English label and the reason.
    pub en: String,
}

impl Problem {
    /// A problem with ready-made texts (for checks outside a template, such
    /// as site attributes).
    pub fn simple(field: &str, code: ProblemCode, zh: String, en: String) -> Problem {
        Problem {
            field: field.to_owned(),
            code,
            zh,
            en,
        }
    }
}

/// What kind of problem, for code that reacts to it (the text is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemCode {
    /// The answer's key is not a field of the template.
    UnknownField,
    /// The answer has the wrong shape for the field (or the field takes none).
    WrongType,
    /// A fraction for a whole-number field.
    NotInteger,
    /// A number outside the field's range, or not finite.
    OutOfRange,
    /// A choice that is not one of the field's options.
    NotAnOption,
    /// Not a real `YYYY-MM-DD` date.
    BadDate,
    /// Text longer than the field's `max_len`.
    TooLong,
    /// A visible required field has no answer.
    Required,
    /// Fewer photos than the field needs.
    PhotoMissing,
    /// An answer to a field hidden by the other answers.
    NotApplicable,
}

impl ProblemCode {
    /// A stable snake_case name, for logs and the FFI.
    pub fn key(self) -> &'static str {
        match self {
            ProblemCode::UnknownField => "unknown_field",
            ProblemCode::WrongType => "wrong_type",
            ProblemCode::NotInteger => "not_integer",
            ProblemCode::OutOfRange => "out_of_range",
            ProblemCode::NotAnOption => "not_an_option",
            ProblemCode::BadDate => "bad_date",
            ProblemCode::TooLong => "too_long",
            ProblemCode::Required => "required",
            ProblemCode::PhotoMissing => "photo_missing",
            ProblemCode::NotApplicable => "not_applicable",
        }
    }
}

/// Why a template text was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The text is larger than [`TEMPLATE_BYTES_MAX`].
    #[error("template is {bytes} bytes, more than the {max} allowed")]
    TooLarge { bytes: usize, max: usize },
    /// Not TOML, or not a template's shape: a syntax error, a missing or
    /// unknown key, a value of the wrong type. The message has line and column.
    #[error("not a valid template: {0}")]
    Toml(#[source] toml::de::Error),
    /// `kind` names no [`SiteKind`].
    #[error("unknown kind `{0}`")]
    UnknownKind(String),
    /// `version` is 0.
    #[error("version must be 1 or more")]
    BadVersion,
    /// A field key, option key, param name or rule id that is not snake_case ASCII.
    #[error(
        "{what} `{key}` is not a snake_case key (a-z, 0-9 and _, starting with a letter, at most {KEY_BYTES_MAX} bytes)"
    )]
    BadKey { what: &'static str, key: String },
    /// Two fields share a key.
    #[error("duplicate field key `{0}`")]
    DuplicateField(String),
    /// A choice field lists one option key twice.
    #[error("field `{field}`: duplicate option `{option}`")]
    DuplicateOption { field: String, option: String },
    /// Two rules share an id.
    #[error("duplicate rule id `{0}`")]
    DuplicateRule(String),
    /// A field declaration that does not fit its type.
    #[error("field `{field}`: {reason}")]
    BadField { field: String, reason: String },
    /// A number field whose `min` is above its `max`.
    #[error("field `{field}`: min {min} is greater than max {max}")]
    MinAboveMax { field: String, min: f64, max: f64 },
    /// An empty or overlong label, help text or hint.
    #[error("{context}: {reason}")]
    BadLabel { context: String, reason: String },
    /// A param that is not a finite number.
    #[error("param `{0}` is not a finite number")]
    BadParam(String),
    /// A condition reads a field the template does not have.
    #[error("{context}: refers to field `{field}`, which the template does not have")]
    UnknownField { context: String, field: String },
    /// A condition reads a param `[params]` does not define.
    #[error("{context}: refers to param `{param}`, which [params] does not define")]
    UnknownParam { context: String, param: String },
    /// A condition compares a choice field with a key that is not an option.
    #[error("{context}: `{literal}` is not an option of field `{field}`")]
    NotAnOption {
        context: String,
        field: String,
        literal: String,
    },
    /// Any other malformed condition: no or several operators, a literal of
    /// the wrong type, an ordering on a choice, too deep.
    #[error("{context}: {reason}")]
    BadCondition { context: String, reason: String },
    /// Fields whose `show_if` conditions depend on each other in a loop.
    #[error("show_if conditions form a cycle: {0}")]
    Cycle(String),
    /// More of something than the limit.
    #[error("too many {what}: {count}, at most {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// An error in one of several named texts.
    #[error("{name}: {source}")]
    InFile {
        name: String,
        source: Box<TemplateError>,
    },
    /// Two texts define the same kind and version.
    #[error("{id} is defined twice: in {first} and in {second}")]
    DuplicateTemplate {
        id: String,
        first: String,
        second: String,
    },
}

impl Template {
    /// Parses and checks one template text.
    ///
    /// Besides the TOML shape this checks that keys are snake_case and
    /// unique, every condition and rule reads existing fields and params with
    /// literals of the right type (choice literals among the options),
    /// `min <= max`, `show_if` has no cycles, the kind is known, and
    /// everything is within the limits above.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > TEMPLATE_BYTES_MAX {
            return Err(TemplateError::TooLarge {
                bytes: text.len(),
                max: TEMPLATE_BYTES_MAX,
            });
        }
        let raw: RawTemplate = toml::from_str(text).map_err(TemplateError::Toml)?;
        convert(raw)
    }

    /// `kind@version`, as inspections record it: `"household_toilet@1"`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.kind.key(), self.version)
    }

    /// The field with this key.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The label of a choice answer (`None` for other field types or an
    /// unknown option).
    pub fn value_label(&self, key: &str, value: &Value) -> Option<Label> {
        match (&self.field(key)?.ty, value) {
            (FieldType::Choice { options }, Value::Text(t)) => options
                .iter()
                .find(|o| &o.key == t)
                .map(|o| o.label.clone()),
            _ => None,
        }
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Checks one answer on its own: the field exists and the value fits its
    /// type, range, options and length. Visibility and required-ness need the
    /// other answers: see [`Template::validate`].
    pub fn check_value(&self, key: &str, value: &Value) -> Result<(), Problem> {
        let Some(field) = self.field(key) else {
            return Err(Problem {
                field: key.to_owned(),
                code: ProblemCode::UnknownField,
                zh: format!("「{}」不是本检查表（{}）中的项目", quote(key), self.id()),
                en: format!("`{}` is not a field of {}", quote(key), self.id()),
            });
        };
        check_field_value(field, value)
    }

    /// Whether the field is asked, given these answers. False for unknown keys.
    pub fn is_visible(&self, key: &str, answers: &BTreeMap<String, Value>) -> bool {
        let view = View::new(self, answers);
        view.index.get(key).is_some_and(|&i| view.visible[i])
    }

    /// How many photos tagged with `key` the answers call for (0 when the
    /// field is hidden, unknown or needs none).
    pub fn photos_needed(&self, key: &str, answers: &BTreeMap<String, Value>) -> u32 {
        let view = View::new(self, answers);
        match view.index.get(key) {
            Some(&i) if view.visible[i] => view.photos_needed(&self.fields[i]),
            _ => 0,
        }
    }

    /// Every problem with a submission, in field order (then answers to
    /// unknown keys, in key order): each answer checked, visible required
    /// fields unanswered, photo requirements unmet, answers to hidden fields.
    /// `photo_counts` is the number of photos tagged with each field key;
    /// photos tagged with other keys are not this function's concern.
    pub fn validate(
        &self,
        answers: &BTreeMap<String, Value>,
        photo_counts: &BTreeMap<String, u32>,
    ) -> Vec<Problem> {
        let view = View::new(self, answers);
        let mut problems = Vec::new();
        for (field, &visible) in self.fields.iter().zip(&view.visible) {
            // A blank text is what a cleared input leaves behind: treat it as
            // no answer rather than as an answer to complain about.
            let answer = answers.get(&field.key).filter(|v| !is_blank(v));
            match answer {
                Some(_) if !visible => problems.push(problem(
                    field,
                    ProblemCode::NotApplicable,
                    "根据其他回答，此项不适用，请删除该回答".to_owned(),
                    "answered, but does not apply given the other answers".to_owned(),
                )),
                Some(value) => {
                    if let Err(p) = check_field_value(field, value) {
                        problems.push(p);
                    }
                }
                None if visible && field.required && field.ty != FieldType::Photo => {
                    problems.push(problem(
                        field,
                        ProblemCode::Required,
                        "必填".to_owned(),
                        "required".to_owned(),
                    ))
                }
                None => {}
            }
            if visible {
                let need = view.photos_needed(field);
                let have = photo_counts.get(&field.key).copied().unwrap_or(0);
                if have < need {
                    problems.push(photo_problem(field, need, have));
                }
            }
        }
        for (key, value) in answers {
            if self.field(key).is_none()
                && let Err(p) = self.check_value(key, value)
            {
                problems.push(p);
            }
        }
        problems
    }

    /// Whether the rule holds for these answers; `None` when the template has
    /// no rule with this id. A comparison on an unanswered (or hidden) field
    /// is false, so a rule that must tolerate a missing answer says
    /// `not_set` explicitly.
    pub fn evaluate(&self, rule_id: &str, answers: &BTreeMap<String, Value>) -> Option<bool> {
        let rule = self.rule(rule_id)?;
        Some(View::new(self, answers).holds(&rule.when))
    }

    /// Every rule's outcome, in the template's order.
    /// Which of the rules `ids` hold for `answers`, as bits (bit `i` for
    /// `ids[i]`; an id the template lacks never holds). Reports judge
    /// hundreds of thousands of inspections and read only a few rules.
    pub fn rules_holding(&self, ids: &[&str], answers: &BTreeMap<String, Value>) -> u64 {
        let view = View::new(self, answers);
        let mut bits = 0u64;
        for (i, id) in ids.iter().enumerate().take(64) {
            if self
                .rules
                .iter()
                .find(|r| r.id == *id)
                .is_some_and(|r| view.holds(&r.when))
            {
                bits |= 1 << i;
            }
        }
        bits
    }

    pub fn rule_outcomes(&self, answers: &BTreeMap<String, Value>) -> Vec<(String, bool)> {
        let view = View::new(self, answers);
        self.rules
            .iter()
            .map(|r| (r.id.clone(), view.holds(&r.when)))
            .collect()
    }
}

/// All templates the system knows, every kind and version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Templates {
    /// Sorted by kind, then version.
    list: Vec<Template>,
}

impl Templates {
    /// The templates compiled into the binary ([`BUILTIN_TEXTS`]).
    pub fn builtin() -> &'static Templates {
        static BUILTIN: OnceLock<Templates> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // The texts are compiled in, and the `builtin_templates_parse`
            // test parses exactly them, so failing here is a build defect
            // that no input can trigger: panicking is right.
            #[allow(clippy::expect_used)]
            Templates::from_texts(BUILTIN_TEXTS)
                .expect("built-in templates must parse: run the builtin_templates_parse test")
        })
    }

    /// Parses `(name, text)` pairs; `name` (usually the file name) only
    /// labels errors. Rejects two texts with the same kind and version.
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Templates, TemplateError> {
        let mut named: Vec<(&str, Template)> = Vec::new();
        for (name, text) in texts {
            if named.len() >= TEMPLATES_MAX {
                return Err(TemplateError::TooMany {
                    what: "templates",
                    count: named.len() + 1,
                    max: TEMPLATES_MAX,
                });
            }
            let template = Template::parse(text).map_err(|e| TemplateError::InFile {
                name: name.to_owned(),
                source: Box::new(e),
            })?;
            if let Some((first, _)) = named
                .iter()
                .find(|(_, t)| t.kind == template.kind && t.version == template.version)
            {
                return Err(TemplateError::DuplicateTemplate {
                    id: template.id(),
                    first: (*first).to_owned(),
                    second: name.to_owned(),
                });
            }
            named.push((name, template));
        }
        let mut list: Vec<Template> = named.into_iter().map(|(_, t)| t).collect();
        list.sort_by_key(|t| (t.kind, t.version));
        Ok(Templates { list })
    }

    /// The template of this kind and version.
    pub fn get(&self, kind: SiteKind, version: u32) -> Option<&Template> {
        self.list
            .iter()
            .find(|t| t.kind == kind && t.version == version)
    }

    /// The highest version of this kind: the one new inspections use.
    pub fn latest(&self, kind: SiteKind) -> Option<&Template> {
        self.list
            .iter()
            .filter(|t| t.kind == kind)
            .max_by_key(|t| t.version)
    }

    /// Every template, by kind then version.
    pub fn all(&self) -> impl Iterator<Item = &Template> {
        self.list.iter()
    }
}

// ---------------------------------------------------------------------------
// Answers: visibility, conditions, checks.

/// The answers as conditions see them: hidden fields and answers of the
/// wrong shape count as unanswered.
struct View<'t, 'a> {
    template: &'t Template,
    answers: &'a BTreeMap<String, Value>,
    index: BTreeMap<&'t str, usize>,
    /// By field index.
    visible: Vec<bool>,
}

impl<'t, 'a> View<'t, 'a> {
    fn new(template: &'t Template, answers: &'a BTreeMap<String, Value>) -> Self {
        let fields = &template.fields;
        let mut index = BTreeMap::new();
        for (i, f) in fields.iter().enumerate() {
            // The first of duplicate keys wins; parse rejects duplicates, but
            // a hand-built template must not make this panic or loop.
            index.entry(f.key.as_str()).or_insert(i);
        }
        let deps: Vec<Vec<Option<usize>>> = fields
            .iter()
            .map(|f| {
                f.show_if.as_ref().map_or_else(Vec::new, |c| {
                    c.fields()
                        .into_iter()
                        .map(|k| index.get(k).copied())
                        .collect()
                })
            })
            .collect();
        // Settle visibility in dependency order without recursion: each pass
        // decides the fields whose show_if reads only decided fields. Parse
        // rejects cycles; in a hand-built template a field on a cycle is
        // never decided and stays hidden.
        let mut state: Vec<Option<bool>> = vec![None; fields.len()];
        loop {
            let mut progressed = false;
            for i in 0..fields.len() {
                if state[i].is_some()
                    || !deps[i].iter().all(|d| d.is_none_or(|j| state[j].is_some()))
                {
                    continue;
                }
                let visible = match &fields[i].show_if {
                    None => true,
                    Some(c) => {
                        let lookup = |k: &str| {
                            let &j = index.get(k)?;
                            if state[j] != Some(true) {
                                return None;
                            }
                            answers.get(k).filter(|v| fits(&fields[j].ty, v))
                        };
                        holds(c, &template.params, &lookup)
                    }
                };
                state[i] = Some(visible);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        let visible = state.into_iter().map(|s| s.unwrap_or(false)).collect();
        View {
            template,
            answers,
            index,
            visible,
        }
    }

    fn answer(&self, key: &str) -> Option<&'a Value> {
        let &i = self.index.get(key)?;
        if !self.visible[i] {
            return None;
        }
        self.answers
            .get(key)
            .filter(|v| fits(&self.template.fields[i].ty, v))
    }

    fn holds(&self, c: &Condition) -> bool {
        holds(c, &self.template.params, &|k| self.answer(k))
    }

    fn photos_needed(&self, field: &Field) -> u32 {
        match &field.photo {
            Some(p) => match &p.required_if {
                Some(c) if !self.holds(c) => 0,
                _ => p.min,
            },
            None if field.ty == FieldType::Photo && field.required => 1,
            None => 0,
        }
    }
}

/// Whether a value is a usable answer for a field of this type.
fn fits(ty: &FieldType, v: &Value) -> bool {
    match (ty, v) {
        (FieldType::YesNo, Value::Bool(_)) => true,
        (FieldType::Number { .. }, Value::Number(n)) => n.is_finite(),
        (FieldType::Choice { options }, Value::Text(s)) => options.iter().any(|o| o.key == *s),
        (FieldType::Text { .. }, Value::Text(s)) => !s.trim().is_empty(),
        (FieldType::Date, Value::Text(s)) => is_iso_date(s),
        _ => false,
    }
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Text(s) if s.trim().is_empty())
}

fn holds<'v>(
    c: &Condition,
    params: &BTreeMap<String, f64>,
    answer: &dyn Fn(&str) -> Option<&'v Value>,
) -> bool {
    match c {
        Condition::All(cs) => cs.iter().all(|c| holds(c, params, answer)),
        Condition::Any(cs) => cs.iter().any(|c| holds(c, params, answer)),
        Condition::Not(c) => !holds(c, params, answer),
        Condition::IsSet(k) => answer(k).is_some(),
        Condition::NotSet(k) => answer(k).is_none(),
        Condition::Compare { field, op, rhs } => {
            let Some(lhs) = answer(field) else {
                return false;
            };
            let param;
            let rhs = match rhs {
                Operand::Literal(v) => v,
                Operand::Param(p) => {
                    let Some(&n) = params.get(p) else {
                        return false;
                    };
                    param = Value::Number(n);
                    &param
                }
            };
            compare(lhs, *op, rhs)
        }
        Condition::In { field, values } => {
            answer(field).is_some_and(|v| values.iter().any(|x| compare(v, CompareOp::Eq, x)))
        }
        Condition::NotIn { field, values } => {
            answer(field).is_some_and(|v| !values.iter().any(|x| compare(v, CompareOp::Eq, x)))
        }
    }
}

/// Values of different shapes, and NaN, compare false under every operator.
fn compare(a: &Value, op: CompareOp, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        // ISO dates sort as text; other texts only meet eq/ne.
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ord) = ord else {
        return false;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    }
}

fn check_field_value(field: &Field, value: &Value) -> Result<(), Problem> {
    match (&field.ty, value) {
        (FieldType::Photo, _) => Err(problem(
            field,
            ProblemCode::WrongType,
            "照片项不填写答案，请拍照".to_owned(),
            "photo fields take no answer; take photos instead".to_owned(),
        )),
        (FieldType::YesNo, Value::Bool(_)) => Ok(()),
        (FieldType::Choice { options }, Value::Text(s)) => {
            if options.iter().any(|o| o.key == *s) {
                return Ok(());
            }
            let list = |pick: fn(&Label) -> &str, sep: &str| {
                options
                    .iter()
                    .map(|o| pick(&o.label))
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            Err(problem(
                field,
                ProblemCode::NotAnOption,
                format!("「{}」不是可选项（{}）", quote(s), list(|l| &l.zh, "、")),
                format!(
                    "`{}` is not an option ({})",
                    quote(s),
                    list(|l| &l.en, ", ")
                ),
            ))
        }
        (
            FieldType::Number {
                unit,
                min,
                max,
                integer,
            },
            Value::Number(n),
        ) => {
            let u = unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
            if !n.is_finite() {
                return Err(problem(
                    field,
                    ProblemCode::OutOfRange,
                    "须为有限数值".to_owned(),
                    "must be a finite number".to_owned(),
                ));
            }
            if *integer && n.fract() != 0.0 {
                return Err(problem(
                    field,
                    ProblemCode::NotInteger,
                    format!("{n} 不是整数"),
                    format!("{n} is not a whole number"),
                ));
            }
            let below = min.is_some_and(|m| *n < m);
            let above = max.is_some_and(|m| *n > m);
            if below || above {
                let (zh, en) = match (min, max) {
                    (Some(a), Some(b)) => (format!("{a}–{b}{u}"), format!("{a}–{b}{u}")),
                    (Some(a), None) => (format!("不小于 {a}{u}"), format!("at least {a}{u}")),
                    (None, Some(b)) => (format!("不大于 {b}{u}"), format!("at most {b}{u}")),
                    (None, None) => (String::new(), String::new()),
                };
                return Err(problem(
                    field,
                    ProblemCode::OutOfRange,
                    format!("{n}{u} 超出范围（{zh}）"),
                    format!("{n}{u} is out of range ({en})"),
                ));
            }
            Ok(())
        }
        (FieldType::Text { max_len }, Value::Text(s)) => {
            let chars = s.chars().count();
            if chars > *max_len as usize {
                return Err(problem(
                    field,
                    ProblemCode::TooLong,
                    format!("共 {chars} 个字符，最多 {max_len} 个"),
                    format!("{chars} characters, at most {max_len}"),
                ));
            }
            Ok(())
        }
        (FieldType::Date, Value::Text(s)) => {
            if is_iso_date(s) {
                return Ok(());
            }
            Err(problem(
                field,
                ProblemCode::BadDate,
                format!("「{}」不是有效日期（YYYY-MM-DD）", quote(s)),
                format!("`{}` is not a date (YYYY-MM-DD)", quote(s)),
            ))
        }
        (ty, v) => {
            let (want_zh, want_en) = ty.expected();
            let got_zh = match v {
                Value::Bool(_) => "是/否",
                Value::Number(_) => "数字",
                Value::Text(_) => "文本",
            };
            Err(problem(
                field,
                ProblemCode::WrongType,
                format!("应为{want_zh}，实际为{got_zh}"),
                format!("expected {want_en}, got {}", v.type_name()),
            ))
        }
    }
}

fn problem(field: &Field, code: ProblemCode, zh: String, en: String) -> Problem {
    Problem {
        field: field.key.clone(),
        code,
        zh: format!("{}：{zh}", field.label.zh),
        en: format!("{}: {en}", field.label.en),
    }
}

fn photo_problem(field: &Field, need: u32, have: u32) -> Problem {
    let hint = field.photo.as_ref().and_then(|p| p.hint.as_ref());
    let (hint_zh, hint_en) = hint
        .map(|h| (format!("（{}）", h.zh), format!(" ({})", h.en)))
        .unwrap_or_default();
    let plural = if need == 1 { "photo" } else { "photos" };
    problem(
        field,
        ProblemCode::PhotoMissing,
        format!("至少需要 {need} 张照片{hint_zh}，现有 {have} 张"),
        format!("needs at least {need} {plural}{hint_en}, has {have}"),
    )
}

/// An answer quoted back to the inspector, cut short so one wild answer
/// cannot flood the screen.
fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_CHARS_MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(QUOTE_CHARS_MAX).collect();
        out.push('…');
        out
    }
}

// ---------------------------------------------------------------------------
// Parsing: the TOML's shape, then conversion with checks.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    kind: String,
    version: u32,
    title: RawLabel,
    #[serde(default)]
    params: BTreeMap<String, f64>,
    fields: Vec<RawField>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    zh: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    key: String,
    label: RawLabel,
    #[serde(rename = "type")]
    ty: RawType,
    #[serde(default)]
    required: bool,
    show_if: Option<RawCondition>,
    photo: Option<RawPhoto>,
    help: Option<RawLabel>,
    section: Option<RawLabel>,
    unit: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    integer: Option<bool>,
    options: Option<Vec<RawOption>>,
    max_len: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawType {
    YesNo,
    Choice,
    Number,
    Text,
    Date,
    Photo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    key: String,
    zh: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhoto {
    #[serde(default = "one")]
    min: u32,
    required_if: Option<RawCondition>,
    hint: Option<RawLabel>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    label: RawLabel,
    when: RawCondition,
    #[serde(default)]
    adverse: bool,
}

/// Every operator is optional here so that "exactly one" is checked by us,
/// with a message that says so, rather than by serde's untagged-enum error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    all: Option<Vec<RawCondition>>,
    any: Option<Vec<RawCondition>>,
    not: Option<Box<RawCondition>>,
    field: Option<String>,
    eq: Option<toml::Value>,
    ne: Option<toml::Value>,
    lt: Option<toml::Value>,
    le: Option<toml::Value>,
    gt: Option<toml::Value>,
    ge: Option<toml::Value>,
    #[serde(rename = "in")]
    in_: Option<Vec<toml::Value>>,
    not_in: Option<Vec<toml::Value>>,
    is_set: Option<String>,
    not_set: Option<String>,
}

fn convert(raw: RawTemplate) -> Result<Template, TemplateError> {
    let kind = SiteKind::from_key(&raw.kind)
        .ok_or_else(|| TemplateError::UnknownKind(raw.kind.clone()))?;
    if raw.version == 0 {
        return Err(TemplateError::BadVersion);
    }
    let title = label(raw.title, "title", LABEL_CHARS_MAX)?;

    limit("params", raw.params.len(), PARAMS_MAX)?;
    for (name, value) in &raw.params {
        check_key("param", name)?;
        if !value.is_finite() {
            return Err(TemplateError::BadParam(name.clone()));
        }
    }
    let params = raw.params;

    limit("fields", raw.fields.len(), FIELDS_MAX)?;
    if raw.fields.is_empty() {
        return Err(TemplateError::TooMany {
            what: "fields (none)",
            count: 0,
            max: FIELDS_MAX,
        });
    }
    // First the fields without their conditions, because checking a
    // condition needs the types of every field, including later ones.
    let mut fields = Vec::with_capacity(raw.fields.len());
    let mut pending = Vec::with_capacity(raw.fields.len());
    let mut seen = BTreeSet::new();
    for rf in raw.fields {
        check_key("field key", &rf.key)?;
        if !seen.insert(rf.key.clone()) {
            return Err(TemplateError::DuplicateField(rf.key));
        }
        let ty = field_type(&rf)?;
        let ctx = |what: &str| format!("field `{}` {what}", rf.key);
        let field_label = label(rf.label, &ctx("label"), LABEL_CHARS_MAX)?;
        let section = rf
            .section
            .map(|l| label(l, &ctx("section"), LABEL_CHARS_MAX))
            .transpose()?;
        let help = rf
            .help
            .map(|h| label(h, &ctx("help"), HELP_CHARS_MAX))
            .transpose()?;
        let (photo, required_if) = match rf.photo {
            None => (None, None),
            Some(p) => {
                if p.min == 0 || p.min > PHOTOS_PER_FIELD_MAX {
                    return Err(TemplateError::BadField {
                        field: rf.key,
                        reason: format!("photo.min must be 1 to {PHOTOS_PER_FIELD_MAX}"),
                    });
                }
                let hint = p
                    .hint
                    .map(|h| label(h, &ctx("photo.hint"), LABEL_CHARS_MAX))
                    .transpose()?;
                (
                    Some(PhotoRequirement {
                        min: p.min,
                        required_if: None,
                        hint,
                    }),
                    p.required_if,
                )
            }
        };
        pending.push((rf.show_if, required_if));
        fields.push(Field {
            key: rf.key,
            label: field_label,
            ty,
            required: rf.required,
            show_if: None,
            photo,
            help,
            section,
        });
    }

    let scope = Scope {
        types: fields.iter().map(|f| (f.key.as_str(), &f.ty)).collect(),
        params: &params,
    };
    let mut conditions = Vec::with_capacity(fields.len());
    for (field, (show_if, required_if)) in fields.iter().zip(pending) {
        let show_if = show_if
            .map(|c| scope.condition(c, &format!("field `{}` show_if", field.key), 1))
            .transpose()?;
        let required_if = required_if
            .map(|c| scope.condition(c, &format!("field `{}` photo.required_if", field.key), 1))
            .transpose()?;
        conditions.push((show_if, required_if));
    }

    limit("rules", raw.rules.len(), RULES_MAX)?;
    let mut rules = Vec::with_capacity(raw.rules.len());
    let mut rule_ids = BTreeSet::new();
    for rr in raw.rules {
        check_key("rule id", &rr.id)?;
        if !rule_ids.insert(rr.id.clone()) {
            return Err(TemplateError::DuplicateRule(rr.id));
        }
        let ctx = format!("rule `{}`", rr.id);
        let rule_label = label(rr.label, &format!("{ctx} label"), LABEL_CHARS_MAX)?;
        let when = scope.condition(rr.when, &ctx, 1)?;
        rules.push(Rule {
            id: rr.id,
            label: rule_label,
            when,
            adverse: rr.adverse,
        });
    }
    drop(scope);

    for (field, (show_if, required_if)) in fields.iter_mut().zip(conditions) {
        field.show_if = show_if;
        if let Some(p) = &mut field.photo {
            p.required_if = required_if;
        }
    }
    check_cycles(&fields)?;
    Ok(Template {
        kind,
        version: raw.version,
        title,
        fields,
        params,
        rules,
    })
}

fn limit(what: &'static str, count: usize, max: usize) -> Result<(), TemplateError> {
    if count > max {
        Err(TemplateError::TooMany { what, count, max })
    } else {
        Ok(())
    }
}

/// Keys end up in SQL, Automerge documents and file names: keep them plain.
fn check_key(what: &'static str, key: &str) -> Result<(), TemplateError> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= KEY_BYTES_MAX
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(TemplateError::BadKey {
            what,
            key: key.to_owned(),
        })
    }
}

fn label(raw: RawLabel, context: &str, max_chars: usize) -> Result<Label, TemplateError> {
    for (lang, text) in [("zh", &raw.zh), ("en", &raw.en)] {
        let reason = if text.trim().is_empty() {
            format!("{lang} is empty")
        } else if text.chars().count() > max_chars {
            format!("{lang} is longer than {max_chars} characters")
        } else {
            continue;
        };
        return Err(TemplateError::BadLabel {
            context: context.to_owned(),
            reason,
        });
    }
    Ok(Label {
        zh: raw.zh,
        en: raw.en,
    })
}

fn field_type(rf: &RawField) -> Result<FieldType, TemplateError> {
    let type_key = match rf.ty {
        RawType::YesNo => "yes_no",
        RawType::Choice => "choice",
        RawType::Number => "number",
        RawType::Text => "text",
        RawType::Date => "date",
        RawType::Photo => "photo",
    };
    let bad = |reason: String| TemplateError::BadField {
        field: rf.key.clone(),
        reason,
    };
    let takes: &[&str] = match rf.ty {
        RawType::Choice => &["options"],
        RawType::Number => &["unit", "min", "max", "integer"],
        RawType::Text => &["max_len"],
        RawType::YesNo | RawType::Date | RawType::Photo => &[],
    };
    let present = [
        ("options", rf.options.is_some()),
        ("unit", rf.unit.is_some()),
        ("min", rf.min.is_some()),
        ("max", rf.max.is_some()),
        ("integer", rf.integer.is_some()),
        ("max_len", rf.max_len.is_some()),
    ];
    if let Some((name, _)) = present
        .iter()
        .find(|(name, set)| *set && !takes.contains(name))
    {
        return Err(bad(format!(
            "`{name}` does not apply to a {type_key} field"
        )));
    }
    Ok(match rf.ty {
        RawType::YesNo => FieldType::YesNo,
        RawType::Date => FieldType::Date,
        RawType::Photo => FieldType::Photo,
        RawType::Text => {
            let max_len = rf.max_len.unwrap_or(TEXT_CHARS_DEFAULT);
            if max_len == 0 || max_len > TEXT_CHARS_MAX {
                return Err(bad(format!("max_len must be 1 to {TEXT_CHARS_MAX}")));
            }
            FieldType::Text { max_len }
        }
        RawType::Number => {
            for (name, v) in [("min", rf.min), ("max", rf.max)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    return Err(bad(format!("{name} is not a finite number")));
                }
            }
            if let (Some(min), Some(max)) = (rf.min, rf.max)
                && min > max
            {
                return Err(TemplateError::MinAboveMax {
                    field: rf.key.clone(),
                    min,
                    max,
                });
            }
            if let Some(u) = &rf.unit
                && (u.trim().is_empty() || u.chars().count() > UNIT_CHARS_MAX)
            {
                return Err(bad(format!(
                    "unit must be 1 to {UNIT_CHARS_MAX} characters"
                )));
            }
            FieldType::Number {
                unit: rf.unit.clone(),
                min: rf.min,
                max: rf.max,
                integer: rf.integer.unwrap_or(false),
            }
        }
        RawType::Choice => {
            let raw_options = rf.options.as_deref().unwrap_or_default();
            if raw_options.is_empty() {
                return Err(bad("a choice field needs `options`".to_owned()));
            }
            limit("options", raw_options.len(), OPTIONS_MAX)?;
            let mut options: Vec<ChoiceOption> = Vec::with_capacity(raw_options.len());
            for o in raw_options {
                check_key("option key", &o.key)?;
                if options.iter().any(|x| x.key == o.key) {
                    return Err(TemplateError::DuplicateOption {
                        field: rf.key.clone(),
                        option: o.key.clone(),
                    });
                }
                let raw_label = RawLabel {
                    zh: o.zh.clone(),
                    en: o.en.clone(),
                };
                let ctx = format!("field `{}` option `{}`", rf.key, o.key);
                options.push(ChoiceOption {
                    key: o.key.clone(),
                    label: label(raw_label, &ctx, LABEL_CHARS_MAX)?,
                });
            }
            FieldType::Choice { options }
        }
    })
}

/// What a condition may refer to.
struct Scope<'a> {
    types: BTreeMap<&'a str, &'a FieldType>,
    params: &'a BTreeMap<String, f64>,
}

impl Scope<'_> {
    fn condition(
        &self,
        raw: RawCondition,
        ctx: &str,
        depth: usize,
    ) -> Result<Condition, TemplateError> {
        let bad = |reason: String| TemplateError::BadCondition {
            context: ctx.to_owned(),
            reason,
        };
        if depth > CONDITION_DEPTH_MAX {
            return Err(bad(format!("nested more than {CONDITION_DEPTH_MAX} deep")));
        }
        let RawCondition {
            all,
            any,
            not,
            field,
            eq,
            ne,
            lt,
            le,
            gt,
            ge,
            in_,
            not_in,
            is_set,
            not_set,
        } = raw;
        let ops = [
            ("all", all.is_some()),
            ("any", any.is_some()),
            ("not", not.is_some()),
            ("eq", eq.is_some()),
            ("ne", ne.is_some()),
            ("lt", lt.is_some()),
            ("le", le.is_some()),
            ("gt", gt.is_some()),
            ("ge", ge.is_some()),
            ("in", in_.is_some()),
            ("not_in", not_in.is_some()),
            ("is_set", is_set.is_some()),
            ("not_set", not_set.is_some()),
        ];
        let used: Vec<&str> = ops
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        let [op] = used[..] else {
            let found = if used.is_empty() {
                "none".to_owned()
            } else {
                used.join(", ")
            };
            return Err(bad(format!(
                "needs exactly one of all, any, not, eq, ne, lt, le, gt, ge, in, not_in, is_set, not_set; found {found}"
            )));
        };
        let compares = matches!(
            op,
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "in" | "not_in"
        );
        let field = match (compares, field) {
            (true, Some(f)) => f,
            (true, None) => return Err(bad(format!("`{op}` needs `field`"))),
            (false, Some(_)) => return Err(bad(format!("`field` does not go with `{op}`"))),
            (false, None) => String::new(),
        };
        let list = |items: Vec<RawCondition>| -> Result<Vec<Condition>, TemplateError> {
            if items.is_empty() {
                return Err(bad(format!("`{op}` needs at least one condition")));
            }
            limit("conditions in one list", items.len(), CONDITION_LIST_MAX)?;
            items
                .into_iter()
                .map(|c| self.condition(c, ctx, depth + 1))
                .collect()
        };
        let compare = |op: CompareOp, v: toml::Value| -> Result<Condition, TemplateError> {
            let ty = self.readable(ctx, &field)?;
            if op.is_ordering() && !matches!(ty, FieldType::Number { .. } | FieldType::Date) {
                return Err(bad(format!(
                    "`{}` compares numbers or dates, but `{field}` is a {} field",
                    op.key(),
                    ty.key()
                )));
            }
            let rhs = match param_name(&v) {
                Some(name) => {
                    if !matches!(ty, FieldType::Number { .. }) {
                        return Err(bad(format!(
                            "params are numbers, but `{field}` is a {} field",
                            ty.key()
                        )));
                    }
                    if !self.params.contains_key(name) {
                        return Err(TemplateError::UnknownParam {
                            context: ctx.to_owned(),
                            param: name.to_owned(),
                        });
                    }
                    Operand::Param(name.to_owned())
                }
                None => Operand::Literal(self.literal(ctx, &field, ty, v)?),
            };
            Ok(Condition::Compare {
                field: field.clone(),
                op,
                rhs,
            })
        };
        let values = |items: Vec<toml::Value>| -> Result<Vec<Value>, TemplateError> {
            let ty = self.readable(ctx, &field)?;
            if items.is_empty() {
                return Err(bad(format!("`{op}` needs at least one value")));
            }
            limit("values in one list", items.len(), CONDITION_LIST_MAX)?;
            items
                .into_iter()
                .map(|v| self.literal(ctx, &field, ty, v))
                .collect()
        };
        let set = |key: String| -> Result<String, TemplateError> {
            self.readable(ctx, &key)?;
            Ok(key)
        };
        // Exactly one of these is Some: checked above.
        if let Some(items) = all {
            return Ok(Condition::All(list(items)?));
        }
        if let Some(items) = any {
            return Ok(Condition::Any(list(items)?));
        }
        if let Some(inner) = not {
            return Ok(Condition::Not(Box::new(self.condition(
                *inner,
                ctx,
                depth + 1,
            )?)));
        }
        for (op, v) in [
            (CompareOp::Eq, eq),
            (CompareOp::Ne, ne),
            (CompareOp::Lt, lt),
            (CompareOp::Le, le),
            (CompareOp::Gt, gt),
            (CompareOp::Ge, ge),
        ] {
            if let Some(v) = v {
                return compare(op, v);
            }
        }
        if let Some(items) = in_ {
            return Ok(Condition::In {
                field: field.clone(),
                values: values(items)?,
            });
        }
        if let Some(items) = not_in {
            return Ok(Condition::NotIn {
                field: field.clone(),
                values: values(items)?,
            });
        }
        if let Some(key) = is_set {
            return Ok(Condition::IsSet(set(key)?));
        }
        if let Some(key) = not_set {
            return Ok(Condition::NotSet(set(key)?));
        }
        Err(bad("no operator".to_owned()))
    }

    /// The type of a field a condition may read: one that exists and holds answers.
    fn readable(&self, ctx: &str, field: &str) -> Result<&FieldType, TemplateError> {
        let Some(&ty) = self.types.get(field) else {
            return Err(TemplateError::UnknownField {
                context: ctx.to_owned(),
                field: field.to_owned(),
            });
        };
        if *ty == FieldType::Photo {
            return Err(TemplateError::BadCondition {
                context: ctx.to_owned(),
                reason: format!("`{field}` is a photo field, which holds no answer to test"),
            });
        }
        Ok(ty)
    }

    fn literal(
        &self,
        ctx: &str,
        field: &str,
        ty: &FieldType,
        v: toml::Value,
    ) -> Result<Value, TemplateError> {
        let bad = |reason: String| TemplateError::BadCondition {
            context: ctx.to_owned(),
            reason,
        };
        match (ty, v) {
            (FieldType::YesNo, toml::Value::Boolean(b)) => Ok(Value::Bool(b)),
            (FieldType::Number { .. }, toml::Value::Integer(i)) => Ok(Value::Number(i as f64)),
            (FieldType::Number { .. }, toml::Value::Float(f)) if f.is_finite() => {
                Ok(Value::Number(f))
            }
            (FieldType::Choice { options }, toml::Value::String(s)) => {
                if options.iter().any(|o| o.key == s) {
                    Ok(Value::Text(s))
                } else {
                    Err(TemplateError::NotAnOption {
                        context: ctx.to_owned(),
                        field: field.to_owned(),
                        literal: s,
                    })
                }
            }
            (FieldType::Text { .. }, toml::Value::String(s)) => Ok(Value::Text(s)),
            (FieldType::Date, toml::Value::String(s)) if is_iso_date(&s) => Ok(Value::Text(s)),
            (FieldType::Date, toml::Value::String(s)) => {
                Err(bad(format!("`{}` is not a date (YYYY-MM-DD)", quote(&s))))
            }
            (FieldType::Date, toml::Value::Datetime(_)) => Err(bad(
                "write dates as quoted strings, e.g. \"2025-06-30\"".to_owned(),
            )),
            (ty, v) => Err(bad(format!(
                "`{field}` is a {} field, so it cannot be compared with a {}",
                ty.key(),
                v.type_str()
            ))),
        }
    }
}

/// `{ param = "name" }` as an operand.
fn param_name(v: &toml::Value) -> Option<&str> {
    let table = v.as_table()?;
    if table.len() != 1 {
        return None;
    }
    table.get("param")?.as_str()
}

/// Rejects `show_if` loops, which would leave fields neither shown nor hidden.
fn check_cycles(fields: &[Field]) -> Result<(), TemplateError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let index: BTreeMap<&str, usize> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = fields
        .iter()
        .map(|f| {
            f.show_if.as_ref().map_or_else(Vec::new, |c| {
                c.fields()
                    .into_iter()
                    .filter_map(|k| index.get(k).copied())
                    .collect()
            })
        })
        .collect();
    let mut marks = vec![Mark::New; fields.len()];
    // Iterative depth-first search: (node, next dependency to visit).
    for start in 0..fields.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Open;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            if let Some(&dep) = deps[node].get(top.1) {
                top.1 += 1;
                match marks[dep] {
                    Mark::New => {
                        marks[dep] = Mark::Open;
                        stack.push((dep, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut path: Vec<&str> = stack[from..]
                            .iter()
                            .map(|&(n, _)| fields[n].key.as_str())
                            .collect();
                        path.push(&fields[dep].key);
                        return Err(TemplateError::Cycle(path.join(" → ")));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn builtin(kind: SiteKind) -> &'static Template {
        Templates::builtin().latest(kind).unwrap()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn num(n: f64) -> Value {
        Value::Number(n)
    }

    /// An answer set for `kind` that passes validation and makes the kind's
    /// positive rules hold; cases below change a few answers.
    fn base(kind: SiteKind) -> BTreeMap<String, Value> {
        let yes = || Value::Bool(true);
        let no = || Value::Bool(false);
        let sewage = || {
            vec![
                ("mode", text("centralised")),
                ("capacity_m3_per_day", num(50.0)),
                ("households_served", num(120.0)),
                ("running_status", text("normal")),
                ("inflow", text("normal")),
                ("effluent_look", text("clear")),
                ("equipment_ok", yes()),
                ("network", text("intact")),
                ("operator_and_log", yes()),
                ("sludge_disposed", yes()),
                ("signboard", yes()),
            ]
        };
        let pairs: Vec<(&str, Value)> = match kind {
            SiteKind::RuralSewage => sewage(),
            SiteKind::TownshipSewagePlant => {
                let mut v = sewage();
                v.extend([
                    ("influent_bod_mg_l", num(120.0)),
                    ("sludge_harmless", yes()),
                    ("online_monitoring", yes()),
                ]);
                v
            }
            SiteKind::HouseholdToilet => vec![
                ("toilet_type", text("three_chamber")),
                ("usage", text("in_use")),
                ("enclosure_ok", yes()),
                ("clean_no_odor", yes()),
                ("tank_condition", text("intact")),
                ("pipe_condition", text("normal")),
                ("lid_sealed", yes()),
                ("emptying", text("on_time")),
                ("effluent_to", text("field_reuse")),
                ("old_toilet_removed", yes()),
                ("aftercare_arranged", yes()),
                ("satisfaction", text("satisfied")),
            ],
            SiteKind::GarbagePoint => vec![
                ("facility_type", text("bins")),
                ("containers", num(4.0)),
                ("overflowing", no()),
                ("litter_around", no()),
                ("collection_frequency", text("daily")),
                ("chain", text("village_township_county")),
                ("sorting", yes()),
                ("cleaner_on_duty", yes()),
                ("burning_or_leachate", no()),
            ],
            SiteKind::TailingsPond => vec![
                ("supervision_level", text("level_2")),
                ("status", text("in_use")),
                ("registered", yes()),
                ("one_pond_one_file_eia", yes()),
                ("one_pond_one_file_acceptance", yes()),
                ("one_pond_one_file_emergency_plan", yes()),
                ("downstream_receptors", text("下游2公里王庄村")),
                ("leachate_collection", yes()),
                ("groundwater_wells", num(3.0)),
                ("groundwater_report_this_year", yes()),
                ("emergency_pool", yes()),
                ("interception_dam", yes()),
                ("flood_diversion_channel", yes()),
                ("flood_drainage_ok", yes()),
                ("dust_control", text("covered")),
                ("visible_seepage", no()),
            ],
            SiteKind::SewageOutfall => vec![
                ("outfall_code", text("LY-RK-0412")),
                ("outfall_type", text("other")),
                ("discharging", text("intermittent")),
                ("look_and_smell", text("normal")),
                ("sampled", no()),
                ("traced", text("traced")),
                ("traced_party", text("某养殖场")),
                ("rectification_method", text("regularised")),
                ("rectification_status", text("done")),
                ("signboard", yes()),
            ],
            SiteKind::BlackOdorousWater => vec![
                ("water_type", text("pond")),
                ("area_m2", num(1200.0)),
                ("colour_abnormal", no()),
                ("odour", no()),
                ("floating_garbage", no()),
                ("direct_discharge", no()),
                ("status", text("struck_off")),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// `base(kind)` changed by `spec`, `"key=value; key=value"`: `true` and
    /// `false` are yes/no, numbers are numbers, `-` removes the answer,
    /// `"…"` is text as written, anything else is text.
    fn with(kind: SiteKind, spec: &str) -> BTreeMap<String, Value> {
        let mut answers = base(kind);
        for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, raw) = item.split_once('=').unwrap();
            let key = key.trim().to_owned();
            let raw = raw.trim();
            let value = match raw {
                "-" => {
                    answers.remove(&key);
                    continue;
                }
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') => {
                    text(&raw[1..raw.len() - 1])
                }
                _ => raw.parse().map(Value::Number).unwrap_or_else(|_| text(raw)),
            };
            answers.insert(key, value);
        }
        answers
    }

    /// `"key=count; key=count"`.
    fn photos(spec: &str) -> BTreeMap<String, u32> {
        spec.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                let (k, n) = item.split_once('=').unwrap();
                (k.trim().to_owned(), n.trim().parse().unwrap())
            })
            .collect()
    }

    /// Plenty of photos on every field, for tests about something else.
    fn all_photos(t: &Template) -> BTreeMap<String, u32> {
        t.fields
            .iter()
            .map(|f| (f.key.clone(), PHOTOS_PER_FIELD_MAX))
            .collect()
    }

    /// `"field:code field:code"`, in the order reported.
    fn codes(problems: &[Problem]) -> String {
        let parts: Vec<String> = problems
            .iter()
            .map(|p| format!("{}:{}", p.field, p.code.key()))
            .collect();
        parts.join(" ")
    }

    #[test]
    fn builtin_templates_parse() {
        let parsed = Templates::from_texts(BUILTIN_TEXTS);
        let templates = match parsed {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        for kind in SiteKind::ALL {
            let t = templates
                .latest(kind)
                .unwrap_or_else(|| panic!("no template for {kind}"));
            assert_eq!(t.version, 1);
            assert_eq!(templates.get(kind, 1), Some(t));
            assert!(templates.get(kind, 2).is_none());
        }
        assert_eq!(templates.all().count(), BUILTIN_TEXTS.len());
        // The file name says what the file holds, so the two cannot drift.
        for (name, text) in BUILTIN_TEXTS {
            let t = Template::parse(text).unwrap();
            assert_eq!(name, format!("{}.v{}.toml", t.kind.key(), t.version));
        }
        assert_eq!(Templates::builtin(), &templates);
        assert_eq!(
            builtin(SiteKind::HouseholdToilet).id(),
            "household_toilet@1"
        );
    }

    /// Every key of the plan's checklists (`docs/domain.md`); rows that list several
    /// things are split into one field each.
    #[test]
    fn checklist_keys() {
        const SEWAGE: &[&str] = &[
            "mode",
            "capacity_m3_per_day",
            "households_served",
            "running_status",
            "inflow",
            "effluent_look",
            "lab_cod_mg_l",
            "lab_nh3n_mg_l",
            "lab_tp_mg_l",
            "lab_ss_mg_l",
            "equipment_ok",
            "equipment_fault",
            "network",
            "operator_and_log",
            "sludge_disposed",
            "signboard",
            "photos",
        ];
        let township: Vec<&str> = SEWAGE
            .iter()
            .copied()
            .chain(["influent_bod_mg_l", "sludge_harmless", "online_monitoring"])
            .collect();
        let expected: [(SiteKind, &[&str]); 7] = [
            (SiteKind::RuralSewage, SEWAGE),
            (SiteKind::TownshipSewagePlant, &township),
            (
                SiteKind::HouseholdToilet,
                &[
                    "toilet_type",
                    "usage",
                    "enclosure_ok",
                    "clean_no_odor",
                    "tank_condition",
                    "pipe_condition",
                    "lid_sealed",
                    "emptying",
                    "effluent_to",
                    "old_toilet_removed",
                    "aftercare_arranged",
                    "satisfaction",
                    "photos",
                ],
            ),
            (
                SiteKind::GarbagePoint,
                &[
                    "facility_type",
                    "containers",
                    "overflowing",
                    "litter_around",
                    "collection_frequency",
                    "chain",
                    "sorting",
                    "cleaner_on_duty",
                    "burning_or_leachate",
                ],
            ),
            (
                SiteKind::TailingsPond,
                &[
                    "supervision_level",
                    "status",
                    "registered",
                    "one_pond_one_file_eia",
                    "one_pond_one_file_acceptance",
                    "one_pond_one_file_emergency_plan",
                    "downstream_receptors",
                    "leachate_collection",
                    "groundwater_wells",
                    "groundwater_report_this_year",
                    "emergency_pool",
                    "interception_dam",
                    "flood_diversion_channel",
                    "flood_drainage_ok",
                    "dust_control",
                    "visible_seepage",
                    "closure_cover",
                    "hazards",
                    "hazard_deadline",
                ],
            ),
            (
                SiteKind::SewageOutfall,
                &[
                    "outfall_code",
                    "outfall_type",
                    "discharging",
                    "look_and_smell",
                    "sampled",
                    "sample_cod_mg_l",
                    "sample_nh3n_mg_l",
                    "sample_tp_mg_l",
                    "traced",
                    "traced_party",
                    "rectification_method",
                    "rectification_status",
                    "signboard",
                ],
            ),
            (
                SiteKind::BlackOdorousWater,
                &[
                    "water_type",
                    "area_m2",
                    "colour_abnormal",
                    "odour",
                    "transparency_cm",
                    "do_mg_l",
                    "nh3n_mg_l",
                    "floating_garbage",
                    "direct_discharge",
                    "status",
                ],
            ),
        ];
        for (kind, keys) in expected {
            let t = builtin(kind);
            // As sets: the township plant asks its extra questions where
            // they fit, not at the end.
            let actual: BTreeSet<&str> = t.fields.iter().map(|f| f.key.as_str()).collect();
            let keys: BTreeSet<&str> = keys.iter().copied().collect();
            assert_eq!(actual, keys, "{kind}");
        }
        // Rule ids per kind, as the report and the indicators expect them.
        let rules: Vec<String> = Templates::builtin()
            .all()
            .map(|t| {
                let ids: Vec<&str> = t.rules.iter().map(|r| r.id.as_str()).collect();
                format!("{}: {}", t.kind, ids.join(", "))
            })
            .collect();
        expect![[r#"
            rural_sewage: effective
            township_sewage_plant: effective, covered, influent_bod_high
            household_toilet: sanitary, problem
            garbage_point: covered
            tailings_pond: compliant, hazard, closure_done
            sewage_outfall: traced, rectified
            black_odorous_water: eliminated, black_odorous"#]]
        .assert_eq(&rules.join("\n"));
    }

    #[test]
    fn base_answers_are_valid() {
        for kind in SiteKind::ALL {
            let t = builtin(kind);
            let problems = t.validate(&base(kind), &all_photos(t));
            assert_eq!(codes(&problems), "", "{kind}");
        }
    }

    #[test]
    fn check_value_codes() {
        use ProblemCode::*;
        use SiteKind::*;
        let long = |n: usize| text(&"长".repeat(n));
        let cases: &[(SiteKind, &str, Value, Option<ProblemCode>)] = &[
            (RuralSewage, "effluent_look", text("clear"), None),
            (RuralSewage, "equipment_ok", Value::Bool(false), None),
            (RuralSewage, "lab_cod_mg_l", num(0.0), None),
            (RuralSewage, "lab_cod_mg_l", num(10000.0), None),
            (RuralSewage, "households_served", num(120.0), None),
            (RuralSewage, "equipment_fault", long(500), None),
            (TailingsPond, "hazard_deadline", text("2024-02-29"), None),
            (RuralSewage, "colour", text("black"), Some(UnknownField)),
            (RuralSewage, "equipment_ok", num(1.0), Some(WrongType)),
            (RuralSewage, "equipment_ok", text("yes"), Some(WrongType)),
            (RuralSewage, "lab_cod_mg_l", text("80"), Some(WrongType)),
            (
                RuralSewage,
                "effluent_look",
                Value::Bool(true),
                Some(WrongType),
            ),
            (RuralSewage, "photos", text("IMG_0001.jpg"), Some(WrongType)),
            (
                TailingsPond,
                "hazard_deadline",
                num(20250630.0),
                Some(WrongType),
            ),
            (
                RuralSewage,
                "households_served",
                num(12.5),
                Some(NotInteger),
            ),
            (RuralSewage, "lab_cod_mg_l", num(10000.5), Some(OutOfRange)),
            (RuralSewage, "lab_cod_mg_l", num(-1.0), Some(OutOfRange)),
            (RuralSewage, "lab_cod_mg_l", num(f64::NAN), Some(OutOfRange)),
            (
                RuralSewage,
                "lab_cod_mg_l",
                num(f64::INFINITY),
                Some(OutOfRange),
            ),
            (
                RuralSewage,
                "households_served",
                num(100001.0),
                Some(OutOfRange),
            ),
            (
                RuralSewage,
                "effluent_look",
                text("muddy"),
                Some(NotAnOption),
            ),
            (
                RuralSewage,
                "effluent_look",
                text("浑浊"),
                Some(NotAnOption),
            ),
            (
                TailingsPond,
                "hazard_deadline",
                text("2025-02-30"),
                Some(BadDate),
            ),
            (
                TailingsPond,
                "hazard_deadline",
                text("30/06/2025"),
                Some(BadDate),
            ),
            (RuralSewage, "equipment_fault", long(501), Some(TooLong)),
        ];
        for (kind, key, value, expected) in cases {
            let actual = builtin(*kind).check_value(key, value);
            let code = actual.as_ref().err().map(|p| p.code);
            assert_eq!(code, *expected, "{kind} {key} = {value:?}: {actual:?}");
            if let Err(p) = actual {
                assert_eq!(p.field, *key);
                assert!(!p.zh.is_empty() && !p.en.is_empty());
            }
        }
    }

    #[test]
    fn check_value_messages() {
        let t = builtin(SiteKind::RuralSewage);
        let tp = builtin(SiteKind::TailingsPond);
        let rendered: Vec<String> = [
            t.check_value("lab_cod_mg_l", &num(12000.0)),
            t.check_value("households_served", &num(-3.0)),
            t.check_value("effluent_look", &text("muddy")),
            t.check_value("equipment_ok", &num(1.0)),
            t.check_value("photos", &text("x")),
            t.check_value("equipment_fault", &text(&"x".repeat(600))),
            t.check_value("no_such_field", &text(&"y".repeat(100))),
            tp.check_value("hazard_deadline", &text("2025-02-30")),
        ]
        .into_iter()
        .map(|r| match r {
            Ok(()) => "ok".to_owned(),
            Err(p) => format!("{} | {} | {}", p.code.key(), p.zh, p.en),
        })
        .collect();
        expect![[r#"
            out_of_range | 化验值：化学需氧量（COD）：12000 mg/L 超出范围（0–10000 mg/L） | Lab value: COD: 12000 mg/L is out of range (0–10000 mg/L)
            out_of_range | 受益户数：-3 超出范围（0–100000） | Households served: -3 is out of range (0–100000)
            not_an_option | 出水感官：「muddy」不是可选项（清、微浊、浑浊、黑臭） | Effluent appearance: `muddy` is not an option (clear, slightly turbid, turbid, black-odorous)
            wrong_type | 设备完好：应为是/否，实际为数字 | Equipment intact: expected yes/no, got number
            wrong_type | 现场照片：照片项不填写答案，请拍照 | Site photos: photo fields take no answer; take photos instead
            too_long | 设备故障描述：共 600 个字符，最多 500 个 | Equipment fault description: 600 characters, at most 500
            unknown_field | 「no_such_field」不是本检查表（rural_sewage@1）中的项目 | `no_such_field` is not a field of rural_sewage@1
            bad_date | 整改期限：「2025-02-30」不是有效日期（YYYY-MM-DD） | Rectification deadline: `2025-02-30` is not a date (YYYY-MM-DD)"#]]
        .assert_eq(&rendered.join("\n"));
    }

    fn render(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| {
                format!(
                    "{} {}\n  zh: {}\n  en: {}",
                    p.field,
                    p.code.key(),
                    p.zh,
                    p.en
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything wrong is reported at once, in field order, in both languages.
    #[test]
    fn validate_reports_every_problem() {
        let t = builtin(SiteKind::RuralSewage);
        // equipment_ok holds text where yes/no belongs, so the fault
        // description it would show is not applicable.
        let answers = with(
            SiteKind::RuralSewage,
            "mode=septic; households_served=12.5; running_status=-; lab_cod_mg_l=12000; \
             equipment_ok=yes; equipment_fault=水泵不转; colour=black",
        );
        let problems = t.validate(&answers, &photos("photos=1"));
        expect![[r#"
            mode not_an_option
              zh: 治理模式：「septic」不是可选项（纳管、集中、分散、资源化）
              en: Treatment mode: `septic` is not an option (sewer connection, centralised, decentralised, reuse)
            households_served not_integer
              zh: 受益户数：12.5 不是整数
              en: Households served: 12.5 is not a whole number
            running_status required
              zh: 运行状态：必填
              en: Running status: required
            effluent_look photo_missing
              zh: 出水感官：至少需要 1 张照片（出水口出水），现有 0 张
              en: Effluent appearance: needs at least 1 photo (the effluent at the outlet), has 0
            lab_cod_mg_l out_of_range
              zh: 化验值：化学需氧量（COD）：12000 mg/L 超出范围（0–10000 mg/L）
              en: Lab value: COD: 12000 mg/L is out of range (0–10000 mg/L)
            equipment_ok wrong_type
              zh: 设备完好：应为是/否，实际为文本
              en: Equipment intact: expected yes/no, got text
            equipment_fault not_applicable
              zh: 设备故障描述：根据其他回答，此项不适用，请删除该回答
              en: Equipment fault description: answered, but does not apply given the other answers
            photos photo_missing
              zh: 现场照片：至少需要 3 张照片（进水口、出水口、设备），现有 1 张
              en: Site photos: needs at least 3 photos (inlet, outlet, equipment), has 1
            colour unknown_field
              zh: 「colour」不是本检查表（rural_sewage@1）中的项目
              en: `colour` is not a field of rural_sewage@1"#]]
        .assert_eq(&render(&problems));
    }

    #[test]
    fn show_if() {
        use SiteKind::*;
        let cases: &[(SiteKind, &str, &str, bool)] = &[
            (RuralSewage, "", "equipment_fault", false),
            (RuralSewage, "equipment_ok=false", "equipment_fault", true),
            // Unanswered: the comparison is false, so the follow-up waits.
            (RuralSewage, "equipment_ok=-", "equipment_fault", false),
            (RuralSewage, "", "equipment_ok", true),
            (RuralSewage, "", "no_such_field", false),
            (HouseholdToilet, "", "tank_condition", true),
            (
                HouseholdToilet,
                "toilet_type=flush_sewer",
                "tank_condition",
                false,
            ),
            (
                HouseholdToilet,
                "toilet_type=flush_sewer",
                "emptying",
                false,
            ),
            (TailingsPond, "", "groundwater_report_this_year", true),
            (
                TailingsPond,
                "groundwater_wells=0",
                "groundwater_report_this_year",
                false,
            ),
            (TailingsPond, "", "closure_cover", false),
            (TailingsPond, "status=closed", "closure_cover", true),
            (TailingsPond, "", "hazard_deadline", false),
            (TailingsPond, "hazards=坝体裂缝", "hazard_deadline", true),
            (TailingsPond, r#"hazards="  ""#, "hazard_deadline", false),
            (SewageOutfall, "", "traced_party", true),
            (SewageOutfall, "traced=not_traced", "traced_party", false),
            (SewageOutfall, "", "sample_cod_mg_l", false),
            (SewageOutfall, "sampled=true", "sample_cod_mg_l", true),
        ];
        for (kind, spec, key, expected) in cases {
            let visible = builtin(*kind).is_visible(key, &with(*kind, spec));
            assert_eq!(visible, *expected, "{kind} {key} after {spec:?}");
        }
    }

    #[test]
    fn validate_follows_visibility() {
        use SiteKind::*;
        let cases: &[(SiteKind, &str, &str)] = &[
            (
                RuralSewage,
                "equipment_ok=false",
                "equipment_fault:required",
            ),
            (
                RuralSewage,
                r#"equipment_ok=false; equipment_fault="  ""#,
                "equipment_fault:required",
            ),
            (RuralSewage, "equipment_ok=false; equipment_fault=漏电", ""),
            (
                RuralSewage,
                "equipment_fault=漏电",
                "equipment_fault:not_applicable",
            ),
            (TailingsPond, "hazards=坝体裂缝", "hazard_deadline:required"),
            (
                TailingsPond,
                "hazards=坝体裂缝; hazard_deadline=2025-09-30",
                "",
            ),
            (TailingsPond, "status=closed", "closure_cover:required"),
            (
                TailingsPond,
                "groundwater_wells=0",
                "groundwater_report_this_year:not_applicable",
            ),
            (
                HouseholdToilet,
                "toilet_type=flush_sewer; tank_condition=-; emptying=-",
                "",
            ),
            (
                SewageOutfall,
                "traced=not_traced",
                "traced_party:not_applicable",
            ),
            (SewageOutfall, "traced_party=-", "traced_party:required"),
            // Optional fields may stay empty.
            (SewageOutfall, "rectification_method=-", ""),
            (BlackOdorousWater, "area_m2=-; transparency_cm=-", ""),
        ];
        for (kind, spec, expected) in cases {
            let t = builtin(*kind);
            let problems = t.validate(&with(*kind, spec), &all_photos(t));
            assert_eq!(codes(&problems), *expected, "{kind} after {spec:?}");
        }
    }

    /// Hiding cascades: a field shown by a hidden field's answer is hidden too.
    #[test]
    fn hiding_cascades() {
        let t = Template::parse(&MINI.replace(
            "[[rules]]",
            r#"[[fields]]
key = "c"
label = { zh = "丙", en = "C" }
type = "text"
required = true
show_if = { field = "b", eq = "x" }

[[rules]]"#,
        ))
        .unwrap();
        let answers = |a: bool| -> BTreeMap<String, Value> {
            [("a", Value::Bool(a)), ("b", text("x")), ("c", text("丙"))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        };
        assert!(t.is_visible("c", &answers(true)));
        assert!(!t.is_visible("b", &answers(false)));
        assert!(!t.is_visible("c", &answers(false)));
        let problems = t.validate(&answers(false), &BTreeMap::new());
        assert_eq!(codes(&problems), "b:not_applicable c:not_applicable");
        assert_eq!(codes(&t.validate(&answers(true), &BTreeMap::new())), "");
    }

    #[test]
    fn photo_requirements() {
        use SiteKind::*;
        let cases: &[(SiteKind, &str, &str, &str)] = &[
            // Conditional: only overflowing bins need a photo.
            (GarbagePoint, "", "", ""),
            (GarbagePoint, "overflowing=true", "", "overflowing"),
            (GarbagePoint, "overflowing=true", "overflowing=1", ""),
            (
                GarbagePoint,
                "overflowing=true; litter_around=true",
                "",
                "overflowing litter_around",
            ),
            // Unconditional, and a dedicated photo field with a minimum.
            (RuralSewage, "", "effluent_look=1; photos=3", ""),
            (RuralSewage, "", "effluent_look=1; photos=2", "photos"),
            (RuralSewage, "", "", "effluent_look photos"),
            // The fault description is asked, so its photo is too.
            (
                RuralSewage,
                "equipment_ok=false; equipment_fault=漏电",
                "effluent_look=1; photos=3",
                "equipment_fault",
            ),
            (HouseholdToilet, "", "photos=2", ""),
            (
                HouseholdToilet,
                "tank_condition=broken",
                "photos=2",
                "tank_condition",
            ),
            // A hidden field needs no photo.
            (
                HouseholdToilet,
                "toilet_type=flush_sewer; tank_condition=-; emptying=-",
                "photos=2",
                "",
            ),
            (
                BlackOdorousWater,
                "odour=true",
                "colour_abnormal=1",
                "odour",
            ),
            (
                TailingsPond,
                "",
                "leachate_collection=1; flood_drainage_ok=1",
                "",
            ),
            (
                TailingsPond,
                "visible_seepage=true",
                "leachate_collection=1; flood_drainage_ok=1",
                "visible_seepage",
            ),
        ];
        for (kind, spec, counts, missing) in cases {
            let problems = builtin(*kind).validate(&with(*kind, spec), &photos(counts));
            let expected: Vec<String> = missing
                .split_whitespace()
                .map(|k| format!("{k}:photo_missing"))
                .collect();
            assert_eq!(
                codes(&problems),
                expected.join(" "),
                "{kind} after {spec:?} with {counts:?}"
            );
        }
        let t = builtin(GarbagePoint);
        assert_eq!(t.photos_needed("overflowing", &base(GarbagePoint)), 0);
        assert_eq!(
            t.photos_needed("overflowing", &with(GarbagePoint, "overflowing=true")),
            1
        );
        let sewage = builtin(RuralSewage);
        assert_eq!(sewage.photos_needed("photos", &BTreeMap::new()), 3);
        assert_eq!(sewage.photos_needed("no_such_field", &BTreeMap::new()), 0);
    }

    #[test]
    fn rules() {
        use SiteKind::*;
        let cases: &[(SiteKind, &str, &str, bool)] = &[
            (RuralSewage, "effective", "", true),
            (
                RuralSewage,
                "effective",
                "effluent_look=slightly_turbid",
                true,
            ),
            (RuralSewage, "effective", "running_status=stopped", false),
            (RuralSewage, "effective", "running_status=built_idle", false),
            (RuralSewage, "effective", "running_status=-", false),
            (RuralSewage, "effective", "inflow=none", false),
            (RuralSewage, "effective", "inflow=little", true),
            (RuralSewage, "effective", "effluent_look=turbid", false),
            (
                RuralSewage,
                "effective",
                "effluent_look=black_odorous",
                false,
            ),
            (
                RuralSewage,
                "effective",
                "equipment_ok=false; equipment_fault=漏电",
                false,
            ),
            (RuralSewage, "effective", "lab_cod_mg_l=60", true),
            (RuralSewage, "effective", "lab_cod_mg_l=80", false),
            (RuralSewage, "effective", "lab_nh3n_mg_l=9", false),
            (RuralSewage, "effective", "lab_tp_mg_l=1.5", false),
            (RuralSewage, "effective", "lab_ss_mg_l=25", false),
            (
                RuralSewage,
                "effective",
                "lab_cod_mg_l=40; lab_nh3n_mg_l=5; lab_tp_mg_l=0.5; lab_ss_mg_l=10",
                true,
            ),
            (TownshipSewagePlant, "effective", "", true),
            (TownshipSewagePlant, "effective", "lab_cod_mg_l=80", false),
            (TownshipSewagePlant, "covered", "", true),
            (
                TownshipSewagePlant,
                "covered",
                "running_status=built_idle",
                false,
            ),
            (
                TownshipSewagePlant,
                "covered",
                "effluent_look=black_odorous",
                false,
            ),
            (TownshipSewagePlant, "influent_bod_high", "", true),
            (
                TownshipSewagePlant,
                "influent_bod_high",
                "influent_bod_mg_l=100",
                false,
            ),
            (
                TownshipSewagePlant,
                "influent_bod_high",
                "influent_bod_mg_l=-",
                false,
            ),
            (HouseholdToilet, "sanitary", "", true),
            (HouseholdToilet, "sanitary", "emptying=dumped", false),
            (HouseholdToilet, "sanitary", "toilet_type=dry_pit", false),
            (HouseholdToilet, "sanitary", "usage=idle", false),
            (HouseholdToilet, "sanitary", "lid_sealed=false", false),
            (HouseholdToilet, "sanitary", "enclosure_ok=false", false),
            (HouseholdToilet, "sanitary", "clean_no_odor=false", false),
            (HouseholdToilet, "sanitary", "tank_condition=seeping", false),
            (HouseholdToilet, "sanitary", "effluent_to=untreated", false),
            (
                HouseholdToilet,
                "sanitary",
                "toilet_type=flush_sewer; tank_condition=-; emptying=-",
                true,
            ),
            (HouseholdToilet, "problem", "", false),
            (HouseholdToilet, "problem", "emptying=dumped", true),
            (HouseholdToilet, "problem", "emptying=overflowing", true),
            (
                HouseholdToilet,
                "problem",
                "tank_condition=floated_tipped",
                true,
            ),
            (HouseholdToilet, "problem", "pipe_condition=reversed", true),
            (HouseholdToilet, "problem", "pipe_condition=blocked", true),
            (
                HouseholdToilet,
                "problem",
                "pipe_condition=low_slope",
                false,
            ),
            (HouseholdToilet, "problem", "usage=unusable", true),
            // A stale answer to a hidden question does not count.
            (
                HouseholdToilet,
                "problem",
                "toilet_type=flush_sewer; tank_condition=broken",
                false,
            ),
            (GarbagePoint, "covered", "", true),
            (
                GarbagePoint,
                "covered",
                "collection_frequency=every_other_day",
                true,
            ),
            (
                GarbagePoint,
                "covered",
                "collection_frequency=weekly",
                false,
            ),
            (GarbagePoint, "covered", "overflowing=true", false),
            (GarbagePoint, "covered", "litter_around=true", false),
            (GarbagePoint, "covered", "burning_or_leachate=true", false),
            (TailingsPond, "compliant", "", true),
            (TailingsPond, "compliant", "visible_seepage=true", true),
            (
                TailingsPond,
                "compliant",
                "hazards=坝体裂缝; hazard_deadline=2025-09-30",
                false,
            ),
            (
                TailingsPond,
                "compliant",
                "groundwater_report_this_year=false",
                false,
            ),
            (
                TailingsPond,
                "compliant",
                "groundwater_wells=0; groundwater_report_this_year=-",
                false,
            ),
            (
                TailingsPond,
                "compliant",
                "leachate_collection=false",
                false,
            ),
            (TailingsPond, "compliant", "emergency_pool=false", false),
            (TailingsPond, "compliant", "interception_dam=false", false),
            (
                TailingsPond,
                "compliant",
                "flood_diversion_channel=false",
                false,
            ),
            (TailingsPond, "hazard", "", false),
            (TailingsPond, "hazard", r#"hazards="  ""#, false),
            (TailingsPond, "hazard", "hazards=坝体裂缝", true),
            (TailingsPond, "closure_done", "", false),
            (
                TailingsPond,
                "closure_done",
                "status=closed; closure_cover=true",
                true,
            ),
            (
                TailingsPond,
                "closure_done",
                "status=closed; closure_cover=true; groundwater_wells=0",
                false,
            ),
            (
                TailingsPond,
                "closure_done",
                "status=closed; closure_cover=true; leachate_collection=false",
                false,
            ),
            (SewageOutfall, "traced", "", true),
            (
                SewageOutfall,
                "traced",
                "traced=not_traced; traced_party=-",
                false,
            ),
            (SewageOutfall, "rectified", "", true),
            (
                SewageOutfall,
                "rectified",
                "rectification_status=verified",
                true,
            ),
            (
                SewageOutfall,
                "rectified",
                "rectification_status=in_progress",
                false,
            ),
            (
                SewageOutfall,
                "rectified",
                "rectification_status=not_started",
                false,
            ),
            (BlackOdorousWater, "eliminated", "", true),
            (
                BlackOdorousWater,
                "eliminated",
                "colour_abnormal=true",
                false,
            ),
            (BlackOdorousWater, "eliminated", "odour=true", false),
            (
                BlackOdorousWater,
                "eliminated",
                "status=awaiting_acceptance",
                false,
            ),
            (
                BlackOdorousWater,
                "eliminated",
                "transparency_cm=30; do_mg_l=5; nh3n_mg_l=2",
                true,
            ),
            (BlackOdorousWater, "eliminated", "transparency_cm=20", false),
            (BlackOdorousWater, "eliminated", "do_mg_l=1.5", false),
            (BlackOdorousWater, "eliminated", "nh3n_mg_l=10", false),
            (BlackOdorousWater, "black_odorous", "", false),
            (
                BlackOdorousWater,
                "black_odorous",
                "colour_abnormal=true",
                true,
            ),
            (BlackOdorousWater, "black_odorous", "odour=true", true),
            (
                BlackOdorousWater,
                "black_odorous",
                "transparency_cm=24",
                true,
            ),
            (BlackOdorousWater, "black_odorous", "do_mg_l=1.5", true),
            (BlackOdorousWater, "black_odorous", "nh3n_mg_l=8", false),
            (BlackOdorousWater, "black_odorous", "nh3n_mg_l=8.5", true),
        ];
        let mut seen: BTreeSet<(SiteKind, &str, bool)> = BTreeSet::new();
        for (kind, rule, spec, expected) in cases {
            let answers = with(*kind, spec);
            let t = builtin(*kind);
            assert_eq!(
                t.evaluate(rule, &answers),
                Some(*expected),
                "{kind} {rule} after {spec:?}"
            );
            let outcome = ((*rule).to_owned(), *expected);
            assert!(
                t.rule_outcomes(&answers).contains(&outcome),
                "{kind} {rule} after {spec:?}"
            );
            seen.insert((*kind, rule, *expected));
        }
        // Every rule of every template is shown both holding and failing.
        for t in Templates::builtin().all() {
            for r in &t.rules {
                for outcome in [true, false] {
                    let case = (t.kind, r.id.as_str(), outcome);
                    assert!(
                        seen.contains(&case),
                        "{} {}: no case where it is {outcome}",
                        t.kind,
                        r.id
                    );
                }
            }
        }
        assert_eq!(
            builtin(RuralSewage).evaluate("no_such_rule", &base(RuralSewage)),
            None
        );
    }

    /// A comparison on an unanswered field is false, `ne` and `not_in`
    /// included; `not_set` is how a rule tolerates a missing answer.
    #[test]
    fn unanswered_compares_false() {
        let t = Template::parse(&MINI.replace(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            r#"when = { field = "n", le = { param = "limit" } }

[[rules]]
id = "b_ne"
label = { zh = "乙不是叉", en = "B is not x" }
when = { field = "b", ne = "x" }

[[rules]]
id = "b_not_in"
label = { zh = "乙不在", en = "B not in" }
when = { field = "b", not_in = ["x"] }

[[rules]]
id = "n_absent_or_small"
label = { zh = "数缺省或小", en = "N absent or small" }
when = { any = [{ not_set = "n" }, { field = "n", lt = 3 }] }"#,
        ))
        .unwrap();
        let none = BTreeMap::new();
        let outcomes = |answers: &BTreeMap<String, Value>| -> String {
            t.rule_outcomes(answers)
                .into_iter()
                .map(|(id, ok)| format!("{id}={ok}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            outcomes(&none),
            "r=false b_ne=false b_not_in=false n_absent_or_small=true"
        );
        let answered: BTreeMap<String, Value> = [
            ("a".to_owned(), Value::Bool(true)),
            ("b".to_owned(), text("y")),
            ("n".to_owned(), num(4.0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            outcomes(&answered),
            "r=true b_ne=true b_not_in=true n_absent_or_small=false"
        );
        // Wrong-shaped answers count as unanswered too.
        let wrong: BTreeMap<String, Value> = [
            ("a".to_owned(), Value::Bool(true)),
            ("b".to_owned(), text("zzz")),
            ("n".to_owned(), text("4")),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            outcomes(&wrong),
            "r=false b_ne=false b_not_in=false n_absent_or_small=true"
        );
    }

    const MINI: &str = r#"kind = "garbage_point"
version = 1
title = { zh = "测试", en = "Test" }

[params]
limit = 5

[[fields]]
key = "a"
label = { zh = "甲", en = "A" }
type = "yes_no"

[[fields]]
key = "b"
label = { zh = "乙", en = "B" }
type = "choice"
options = [{ key = "x", zh = "叉", en = "x" }, { key = "y", zh = "歪", en = "y" }]
show_if = { field = "a", eq = true }

[[fields]]
key = "n"
label = { zh = "数", en = "N" }
type = "number"
min = 0
max = 10

[[rules]]
id = "r"
label = { zh = "规则", en = "Rule" }
when = { field = "n", le = { param = "limit" } }
"#;

    /// Parses MINI with `from` replaced by `to` and snapshots the error.
    fn check_err(from: &str, to: &str, expect: Expect) {
        assert!(MINI.contains(from), "MINI has no {from:?}");
        let text = MINI.replacen(from, to, 1);
        let actual = match Template::parse(&text) {
            Ok(_) => "parsed".to_owned(),
            Err(e) => e.to_string(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn mini_parses() {
        let t = Template::parse(MINI).unwrap();
        assert_eq!(t.id(), "garbage_point@1");
        assert_eq!(t.params.get("limit"), Some(&5.0));
        assert_eq!(
            t.field("b")
                .and_then(|f| f.show_if.as_ref())
                .map(|c| c.to_string())
                .as_deref(),
            Some("a eq true")
        );
    }

    /// The example in the module doc is a real template.
    #[test]
    fn doc_example_parses() {
        let source = include_str!("template.rs");
        let example: String = source
            .lines()
            .skip_while(|l| *l != "//! ```toml")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let t = Template::parse(&example).unwrap();
        assert_eq!(t.id(), "garbage_point@1");
        assert_eq!(t.fields.len(), 2);
        let answers = |spec: &[(&str, Value)]| -> BTreeMap<String, Value> {
            spec.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let ok = answers(&[
            ("overflowing", Value::Bool(false)),
            ("containers", num(3.0)),
        ]);
        assert_eq!(t.evaluate("covered", &ok), Some(true));
    }

    #[test]
    fn parse_errors() {
        check_err(
            "type = \"yes_no\"",
            "type = \"yes_no\"\ncolour = \"red\"",
            expect![[r#"
                not a valid template: TOML parse error at line 12, column 1
                   |
                12 | colour = "red"
                   | ^^^^^^
                unknown field `colour`, expected one of `key`, `label`, `type`, `required`, `show_if`, `photo`, `help`, `section`, `unit`, `min`, `max`, `integer`, `options`, `max_len`
            "#]],
        );
        check_err(
            "key = \"b\"",
            "key = \"a\"",
            expect!["duplicate field key `a`"],
        );
        check_err(
            r#"{ field = "a", eq = true }"#,
            r#"{ field = "z", eq = true }"#,
            expect!["field `b` show_if: refers to field `z`, which the template does not have"],
        );
        check_err(
            r#"{ field = "a", eq = true }"#,
            r#"{ field = "a", equals = true }"#,
            expect![[r#"
            not a valid template: TOML parse error at line 18, column 26
               |
            18 | show_if = { field = "a", equals = true }
               |                          ^^^^^^
            unknown field `equals`, expected one of `all`, `any`, `not`, `field`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `in`, `not_in`, `is_set`, `not_set`
        "#]],
        );
        check_err(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            r#"when = { field = "b", in = ["x", "maybe"] }"#,
            expect!["rule `r`: `maybe` is not an option of field `b`"],
        );
        check_err(
            "min = 0\nmax = 10",
            "min = 10\nmax = 0",
            expect!["field `n`: min 10 is greater than max 0"],
        );
        check_err(
            r#"{ param = "limit" }"#,
            r#"{ param = "limmit" }"#,
            expect!["rule `r`: refers to param `limmit`, which [params] does not define"],
        );
        check_err(
            "type = \"yes_no\"",
            "type = \"yes_no\"\nshow_if = { field = \"b\", eq = \"x\" }",
            expect!["show_if conditions form a cycle: a → b → a"],
        );
        check_err(
            "type = \"yes_no\"",
            "type = \"yes_no\"\nmax_len = 20",
            expect!["field `a`: `max_len` does not apply to a yes_no field"],
        );
        check_err(
            "type = \"yes_no\"",
            "type = \"bool\"",
            expect![[r#"
            not a valid template: TOML parse error at line 11, column 8
               |
            11 | type = "bool"
               |        ^^^^^^
            unknown variant `bool`, expected one of `yes_no`, `choice`, `number`, `text`, `date`, `photo`
        "#]],
        );
        check_err(
            "key = \"n\"",
            "key = \"N-value\"",
            expect![
                "field key `N-value` is not a snake_case key (a-z, 0-9 and _, starting with a letter, at most 64 bytes)"
            ],
        );
        check_err(
            "kind = \"garbage_point\"",
            "kind = \"volcano\"",
            expect!["unknown kind `volcano`"],
        );
        check_err(
            "version = 1",
            "version = 0",
            expect!["version must be 1 or more"],
        );
        check_err(
            r#"{ field = "a", eq = true }"#,
            r#"{ field = "a", eq = true, ne = false }"#,
            expect![
                "field `b` show_if: needs exactly one of all, any, not, eq, ne, lt, le, gt, ge, in, not_in, is_set, not_set; found eq, ne"
            ],
        );
        check_err(
            r#"{ field = "a", eq = true }"#,
            r#"{ field = "a", eq = "yes" }"#,
            expect![
                "field `b` show_if: `a` is a yes_no field, so it cannot be compared with a string"
            ],
        );
        check_err(
            r#"le = { param = "limit" }"#,
            r#"le = "5""#,
            expect!["rule `r`: `n` is a number field, so it cannot be compared with a string"],
        );
        check_err(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            r#"when = { field = "b", lt = "x" }"#,
            expect!["rule `r`: `lt` compares numbers or dates, but `b` is a choice field"],
        );
        check_err(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            "when = { all = [] }",
            expect!["rule `r`: `all` needs at least one condition"],
        );
        check_err(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            &format!(
                "when = {}{{ is_set = \"a\" }}{}",
                "{ not = ".repeat(9),
                " }".repeat(9)
            ),
            expect!["rule `r`: nested more than 8 deep"],
        );
        check_err(
            "options = [{ key = \"x\"",
            "options = [{ key = \"y\"",
            expect!["field `b`: duplicate option `y`"],
        );
        check_err(
            "limit = 5",
            "limit = nan",
            expect!["param `limit` is not a finite number"],
        );
        check_err(
            "label = { zh = \"甲\", en = \"A\" }",
            "label = { zh = \" \", en = \"A\" }",
            expect!["field `a` label: zh is empty"],
        );
        check_err(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            "when = { is_set = \"a\" }\n\n[[rules]]\nid = \"r\"\nlabel = { zh = \"二\", en = \"2\" }\nwhen = { is_set = \"a\" }",
            expect!["duplicate rule id `r`"],
        );
    }

    #[test]
    fn photo_field_and_date_conditions() {
        let photo_field = r#"[[fields]]
key = "p"
label = { zh = "照片", en = "Photos" }
type = "photo"
required = true

[[rules]]"#;
        let with_photo = MINI.replace("[[rules]]", photo_field);
        let t = Template::parse(&with_photo).unwrap();
        assert_eq!(t.photos_needed("p", &BTreeMap::new()), 1);
        let err = Template::parse(&with_photo.replace(
            r#"when = { field = "n", le = { param = "limit" } }"#,
            r#"when = { is_set = "p" }"#,
        ))
        .unwrap_err();
        expect!["rule `r`: `p` is a photo field, which holds no answer to test"]
            .assert_eq(&err.to_string());

        let date_field = r#"[[fields]]
key = "d"
label = { zh = "日期", en = "Date" }
type = "date"

[[rules]]"#;
        let with_date = MINI.replace("[[rules]]", date_field);
        let rule = |cond: &str| {
            with_date.replace(
                r#"when = { field = "n", le = { param = "limit" } }"#,
                &format!("when = {cond}"),
            )
        };
        let t = Template::parse(&rule(r#"{ field = "d", lt = "2025-07-01" }"#)).unwrap();
        let on = |d: &str| -> BTreeMap<String, Value> {
            [("d".to_owned(), text(d))].into_iter().collect()
        };
        assert_eq!(t.evaluate("r", &on("2025-06-30")), Some(true));
        assert_eq!(t.evaluate("r", &on("2025-07-01")), Some(false));
        let errors: Vec<String> = [
            rule(r#"{ field = "d", lt = 2025-07-01 }"#),
            rule(r#"{ field = "d", lt = "2025-02-30" }"#),
            rule(r#"{ field = "d", lt = { param = "limit" } }"#),
        ]
        .iter()
        .map(|text| {
            Template::parse(text)
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        })
        .collect();
        expect![[r#"
            rule `r`: write dates as quoted strings, e.g. "2025-06-30"
            rule `r`: `2025-02-30` is not a date (YYYY-MM-DD)
            rule `r`: params are numbers, but `d` is a date field"#]]
        .assert_eq(&errors.join("\n"));
    }

    #[test]
    fn templates_from_texts() {
        let garbage = MINI;
        let other = MINI.replace("kind = \"garbage_point\"", "kind = \"sewage_outfall\"");
        let v2 = MINI.replace("version = 1", "version = 2");
        let ts =
            Templates::from_texts([("g1", garbage), ("o1", other.as_str()), ("g2", v2.as_str())])
                .unwrap();
        let ids: Vec<String> = ts.all().map(Template::id).collect();
        assert_eq!(
            ids,
            ["garbage_point@1", "garbage_point@2", "sewage_outfall@1"]
        );
        assert_eq!(
            ts.latest(SiteKind::GarbagePoint).map(|t| t.version),
            Some(2)
        );
        assert_eq!(
            ts.get(SiteKind::GarbagePoint, 1).map(|t| t.version),
            Some(1)
        );
        assert!(ts.latest(SiteKind::TailingsPond).is_none());

        let dup = Templates::from_texts([("a.toml", garbage), ("b.toml", garbage)]).unwrap_err();
        let bad =
            Templates::from_texts([("a.toml", garbage), ("broken.toml", "kind = 1")]).unwrap_err();
        expect![[r#"
            garbage_point@1 is defined twice: in a.toml and in b.toml
            broken.toml: not a valid template: TOML parse error at line 1, column 8
              |
            1 | kind = 1
              |        ^
            invalid type: integer `1`, expected a string
        "#]]
        .assert_eq(&format!("{dup}\n{bad}"));
    }

    /// Whatever the text, parse returns; it never panics.
    #[test]
    fn parse_never_panics() {
        for (_, text) in BUILTIN_TEXTS {
            let cuts = text.char_indices().map(|(i, _)| i).step_by(13);
            for cut in cuts {
                let _ = Template::parse(&text[..cut]);
            }
        }
        let deep = format!(
            "{}{}",
            "when = ".to_owned() + &"{ not = ".repeat(5000),
            "}".repeat(5000)
        );
        let oversized = "#".repeat(TEMPLATE_BYTES_MAX + 1);
        for text in [
            "",
            "\0\u{1}",
            "[[fields]]",
            "kind = \"rural_sewage\"",
            deep.as_str(),
            oversized.as_str(),
        ] {
            assert!(Template::parse(text).is_err());
        }
    }

    /// The shape of one template, so that an edit shows up as a diff.
    #[test]
    fn household_toilet_shape() {
        let t = builtin(SiteKind::HouseholdToilet);
        let lines: Vec<String> = t
            .fields
            .iter()
            .map(|f| {
                let mut line = format!("{}: ", f.key);
                match &f.ty {
                    FieldType::Choice { options } => {
                        let keys: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
                        line += &format!("choice[{}]", keys.join("|"));
                    }
                    FieldType::Number {
                        unit,
                        min,
                        max,
                        integer,
                    } => {
                        line += &format!("number[{unit:?} {min:?}..{max:?} integer={integer}]");
                    }
                    FieldType::Text { max_len } => line += &format!("text[{max_len}]"),
                    other => line += other.key(),
                }
                if f.required {
                    line += " required";
                }
                if let Some(c) = &f.show_if {
                    line += &format!(" show_if({c})");
                }
                if let Some(p) = &f.photo {
                    line += &format!(" photo>={}", p.min);
                    if let Some(c) = &p.required_if {
                        line += &format!(" if({c})");
                    }
                }
                line
            })
            .chain(t.rules.iter().map(|r| format!("rule {}: {}", r.id, r.when)))
            .collect();
        expect![[r#"
            toilet_type: choice[three_chamber|double_urn|urine_diverting|double_pit|flush_sewer|haul_away|dry_pit] required
            usage: choice[in_use|idle|unusable|demolished] required
            enclosure_ok: yes_no required
            clean_no_odor: yes_no required
            tank_condition: choice[intact|seeping|broken|floated_tipped|cracked_slab] required show_if(toilet_type ne "flush_sewer") photo>=1 if(tank_condition ne "intact")
            pipe_condition: choice[normal|reversed|blocked|low_slope] required
            lid_sealed: yes_no required
            emptying: choice[on_time|overflowing|dumped] required show_if(toilet_type ne "flush_sewer")
            effluent_to: choice[sewer|field_reuse|untreated] required
            old_toilet_removed: yes_no required
            aftercare_arranged: yes_no required
            satisfaction: choice[satisfied|mostly_satisfied|dissatisfied] required
            photos: photo required photo>=2
            rule sanitary: all(toilet_type ne "dry_pit", usage eq "in_use", enclosure_ok eq true, lid_sealed eq true, clean_no_odor eq true, any(toilet_type eq "flush_sewer", all(tank_condition eq "intact", emptying eq "on_time")), effluent_to ne "untreated")
            rule problem: any(tank_condition in ["seeping", "broken", "floated_tipped", "cracked_slab"], pipe_condition in ["reversed", "blocked"], usage eq "unusable", emptying in ["overflowing", "dumped"])"#]].assert_eq(&lines.join("\n"));
    }
}
