//! Parsing a template: the TOML's shape, then its conversion into a
//! [`Template`] with every bound and reference checked.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
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
pub(super) struct RawLabel {
    zh: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
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
pub(super) enum RawType {
    YesNo,
    Choice,
    Number,
    Text,
    Date,
    Photo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOption {
    key: String,
    zh: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhoto {
    #[serde(default = "one")]
    min: u32,
    required_if: Option<RawCondition>,
    hint: Option<RawLabel>,
}

pub(super) fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
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
pub(super) struct RawCondition {
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

pub(super) fn convert(raw: RawTemplate) -> Result<Template, TemplateError> {
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

pub(super) fn limit(what: &'static str, count: usize, max: usize) -> Result<(), TemplateError> {
    if count > max {
        Err(TemplateError::TooMany { what, count, max })
    } else {
        Ok(())
    }
}

/// Keys end up in SQL, Automerge documents and file names: keep them plain.
pub(super) fn check_key(what: &'static str, key: &str) -> Result<(), TemplateError> {
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

pub(super) fn label(
    raw: RawLabel,
    context: &str,
    max_chars: usize,
) -> Result<Label, TemplateError> {
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

pub(super) fn field_type(rf: &RawField) -> Result<FieldType, TemplateError> {
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
pub(super) struct Scope<'a> {
    types: BTreeMap<&'a str, &'a FieldType>,
    params: &'a BTreeMap<String, f64>,
}

impl Scope<'_> {
    pub(super) fn condition(
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
    pub(super) fn readable(&self, ctx: &str, field: &str) -> Result<&FieldType, TemplateError> {
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

    pub(super) fn literal(
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
pub(super) fn param_name(v: &toml::Value) -> Option<&str> {
    let table = v.as_table()?;
    if table.len() != 1 {
        return None;
    }
    table.get("param")?.as_str()
}

/// Rejects `show_if` loops, which would leave fields neither shown nor hidden.
pub(super) fn check_cycles(fields: &[Field]) -> Result<(), TemplateError> {
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
