//! Answers as a template judges them: which fields are asked given the
//! other answers, whether a condition holds, and every problem of a value
//! or a submission.

use super::*;

/// The answers as conditions see them: hidden fields and answers of the
/// wrong shape count as unanswered.
pub(super) struct View<'t, 'a> {
    template: &'t Template,
    answers: &'a BTreeMap<String, Value>,
    pub(super) index: BTreeMap<&'t str, usize>,
    /// By field index.
    pub(super) visible: Vec<bool>,
}

impl<'t, 'a> View<'t, 'a> {
    pub(super) fn new(template: &'t Template, answers: &'a BTreeMap<String, Value>) -> Self {
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

    pub(super) fn answer(&self, key: &str) -> Option<&'a Value> {
        let &i = self.index.get(key)?;
        if !self.visible[i] {
            return None;
        }
        self.answers
            .get(key)
            .filter(|v| fits(&self.template.fields[i].ty, v))
    }

    pub(super) fn holds(&self, c: &Condition) -> bool {
        holds(c, &self.template.params, &|k| self.answer(k))
    }

    pub(super) fn photos_needed(&self, field: &Field) -> u32 {
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
pub(super) fn fits(ty: &FieldType, v: &Value) -> bool {
    match (ty, v) {
        (FieldType::YesNo, Value::Bool(_)) => true,
        (FieldType::Number { .. }, Value::Number(n)) => n.is_finite(),
        (FieldType::Choice { options }, Value::Text(s)) => options.iter().any(|o| o.key == *s),
        (FieldType::Text { .. }, Value::Text(s)) => !s.trim().is_empty(),
        (FieldType::Date, Value::Text(s)) => is_iso_date(s),
        _ => false,
    }
}

pub(super) fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Text(s) if s.trim().is_empty())
}

pub(super) fn holds<'v>(
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
pub(super) fn compare(a: &Value, op: CompareOp, b: &Value) -> bool {
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

pub(super) fn check_field_value(field: &Field, value: &Value) -> Result<(), Problem> {
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

pub(super) fn problem(field: &Field, code: ProblemCode, zh: String, en: String) -> Problem {
    Problem {
        field: field.key.clone(),
        code,
        zh: format!("{}：{zh}", field.label.zh),
        en: format!("{}: {en}", field.label.en),
    }
}

pub(super) fn photo_problem(field: &Field, need: u32, have: u32) -> Problem {
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
pub(super) fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_CHARS_MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(QUOTE_CHARS_MAX).collect();
        out.push('…');
        out
    }
}
