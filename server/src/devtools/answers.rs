//! Plausible answers to an inspection template, for the demo's simulated
//! inspectors and for tests that need every kind of site inspected: valid
//! for the template (visible fields only, values its checks accept), and
//! either in good order or not, so reports have both to show.

use fieldbook_core::model::template::FieldType;
use fieldbook_core::model::{Template, Value};
use std::collections::BTreeMap;

/// xorshift: the same choices on every machine for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Rules whose holding is bad news (they raise findings).
const BAD_RULES: [&str; 4] = ["problem", "hazard", "black_odorous", "influent_bod_high"];

/// Answers a field may take, the template's usual good one first.
fn candidates(ty: &FieldType, rng: &mut Rng) -> Vec<Value> {
    match ty {
        FieldType::YesNo => vec![Value::Bool(true), Value::Bool(false)],
        FieldType::Choice { options } => {
            options.iter().map(|o| Value::Text(o.key.clone())).collect()
        }
        FieldType::Number {
            min, max, integer, ..
        } => {
            let lo = min.unwrap_or(0.0);
            let hi = max.unwrap_or(lo + 100.0).min(lo + 1000.0);
            let v = lo + (hi - lo) * (0.1 + 0.3 * rng.unit());
            let v = if *integer {
                v.round()
            } else {
                (v * 10.0).round() / 10.0
            };
            vec![Value::Number(v), Value::Number(lo)]
        }
        FieldType::Text { .. } => vec![Value::Text("现场核实".into())],
        FieldType::Date => vec![Value::Text("2026-12-31".into())],
        FieldType::Photo => Vec::new(),
    }
}

/// How good a set of answers looks: good rules holding minus bad ones.
fn score(t: &Template, answers: &BTreeMap<String, Value>) -> i32 {
    t.rule_outcomes(answers)
        .iter()
        .filter(|(_, holds)| *holds)
        .map(|(id, _)| {
            if BAD_RULES.contains(&id.as_str()) {
                -1
            } else {
                1
            }
        })
        .sum()
}

/// Random attempts a site in good order keeps the best of. One field at a
/// time cannot find answers for a rule that needs several fields at once
/// (a garbage point is "covered" only when four answers agree), so good
/// answers start from the best of many random fills.
const GOOD_TRIES: usize = 200;

/// Answers to template `t` for one inspection. A site in good order
/// (`good`) gets answers that make as many of the template's good rules
/// hold as can be found; otherwise values are random among the valid ones.
/// Derived from `seed` alone.
pub fn plausible(t: &Template, good: bool, seed: u64) -> BTreeMap<String, Value> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let rng = &mut rng;
    if !good {
        return fill(t, false, rng, None);
    }
    let mut best = (i32::MIN, BTreeMap::new());
    for _ in 0..GOOD_TRIES {
        let a = fill(t, true, rng, None);
        let s = score(t, &a);
        if s > best.0 {
            best = (s, a);
        }
    }
    fill(t, true, rng, Some(best.1))
}

/// Fills the visible fields of `t` at random, or with `improve`, starts
/// from those answers and changes a field only where that scores better.
fn fill(
    t: &Template,
    good: bool,
    rng: &mut Rng,
    improve: Option<BTreeMap<String, Value>>,
) -> BTreeMap<String, Value> {
    let greedy = improve.is_some();
    let mut answers = improve.unwrap_or_default();
    // A few passes: answers reveal conditional fields.
    for _ in 0..3 {
        for f in &t.fields {
            if !t.is_visible(&f.key, &answers) {
                answers.remove(&f.key);
                continue;
            }
            // Optional fields (lab values, notes) are mostly left empty, as
            // in the field; a careless visit fills some at random.
            if !f.required && (good || rng.unit() < 0.5) && !answers.contains_key(&f.key) {
                continue;
            }
            let mut options: Vec<Value> = candidates(&f.ty, rng)
                .into_iter()
                .filter(|v| t.check_value(&f.key, v).is_ok())
                .collect();
            let current = answers.get(&f.key).cloned();
            if let Some(c) = &current {
                options.retain(|o| o != c);
                options.insert(0, c.clone());
            }
            if options.is_empty() {
                continue;
            }
            let pick = match (&current, greedy) {
                (None, _) => (rng.next() % options.len() as u64) as usize,
                (Some(_), false) => continue,
                (Some(_), true) => {
                    let mut best = (i32::MIN, 0);
                    for (i, v) in options.iter().enumerate() {
                        let mut trial = answers.clone();
                        trial.insert(f.key.clone(), v.clone());
                        let s = score(t, &trial);
                        if s > best.0 {
                            best = (s, i);
                        }
                    }
                    best.1
                }
            };
            answers.insert(f.key.clone(), options[pick].clone());
        }
    }
    let snapshot = answers.clone();
    answers.retain(|k, _| t.is_visible(k, &snapshot));
    answers
}
