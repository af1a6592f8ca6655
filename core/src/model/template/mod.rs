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

mod eval;
mod parse;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod tests;

use eval::*;
use parse::*;
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
        include_str!("../../../templates/rural_sewage.v1.toml"),
    ),
    (
        "township_sewage_plant.v1.toml",
        include_str!("../../../templates/township_sewage_plant.v1.toml"),
    ),
    (
        "household_toilet.v1.toml",
        include_str!("../../../templates/household_toilet.v1.toml"),
    ),
    (
        "garbage_point.v1.toml",
        include_str!("../../../templates/garbage_point.v1.toml"),
    ),
    (
        "tailings_pond.v1.toml",
        include_str!("../../../templates/tailings_pond.v1.toml"),
    ),
    (
        "sewage_outfall.v1.toml",
        include_str!("../../../templates/sewage_outfall.v1.toml"),
    ),
    (
        "black_odorous_water.v1.toml",
        include_str!("../../../templates/black_odorous_water.v1.toml"),
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
