//! The template format's tests: the shipped checklists, conditions,
//! validation and rules. Parsing is tested in `parse_tests.rs`.

use super::*;
use expect_test::expect;

pub(super) fn builtin(kind: SiteKind) -> &'static Template {
    Templates::builtin().latest(kind).unwrap()
}

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub(super) fn num(n: f64) -> Value {
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

pub(super) const MINI: &str = r#"kind = "garbage_point"
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
