//! Parsing a template: every error named, the documented example, the
//! shipped texts, and no panic on any input.

use super::tests::{MINI, builtin, num, text};
use super::*;
use expect_test::{Expect, expect};

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
    let source = include_str!("mod.rs");
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
        expect!["field `b` show_if: `a` is a yes_no field, so it cannot be compared with a string"],
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
    let on =
        |d: &str| -> BTreeMap<String, Value> { [("d".to_owned(), text(d))].into_iter().collect() };
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
    let ts = Templates::from_texts([("g1", garbage), ("o1", other.as_str()), ("g2", v2.as_str())])
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
