//! The indicators' tests: hand-built divisions, sites and approvals at
//! the edges of each definition.

use super::*;

/// A city with one county, a town (seat) with a rural and an urban
/// village, a township (seat) with one rural village, and a
/// sub-district (no seat).
fn divisions() -> Divisions {
    let csv = "code,name,level,parent_code\n\
        4103,洛阳市,city,41\n\
        410324,栾川县,county,4103\n\
        410324100,城关镇,township,410324\n\
        410324100001,城关社区,village,410324100\n\
        410324100201,东村,village,410324100\n\
        410324100202,西村,village,410324100\n\
        410324200,秋扒乡,township,410324\n\
        410324200201,北村,village,410324200\n\
        410324001,城区街道,township,410324\n\
        410324001201,南村,village,410324001\n";
    Divisions::from_csv(csv.as_bytes()).unwrap()
}

/// Unix ms of noon, China time, on `date`.
fn at(date: &str) -> i64 {
    super::super::workflow::china_day_start_ms(date).unwrap() + 12 * 3_600_000
}

fn approved(date: &str, rule: &str, holds: bool) -> Approved {
    Approved {
        approved_at: at(date),
        outcomes: [(rule.to_owned(), holds)].into(),
    }
}

fn attrs(pairs: &[(&str, f64)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Number(*v)))
        .collect()
}

fn row<'r>(rows: &'r [CoverageRow], id: &str, code: &str) -> &'r CoverageRow {
    rows.iter()
        .find(|r| r.indicator == id && r.area_code == code)
        .unwrap_or_else(|| panic!("no row {id} {code}"))
}

#[test]
fn builtin_indicators_parse() {
    let ids: Vec<&str> = Indicators::builtin()
        .indicators
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "rural_sewage_rate",
            "township_seat_sewage",
            "sanitary_toilet_rate",
            "problem_toilet_fixed",
            "garbage_coverage",
            "outfall_traced",
            "outfall_rectified",
            "black_odorous_eliminated",
            "tailings_inspected_on_time",
            "tailings_closure_done",
            "findings_on_time",
        ]
    );
}

#[test]
fn bad_definitions_are_refused_with_the_reason() {
    let base = BUILTIN_TEXT;
    let cases = [
        (
            base.replace("rule = \"sanitary\"", "rule = \"sanitory\""),
            "no template of household_toilet has a rule \"sanitory\"",
        ),
        (
            base.replace(
                "{ by = \"2024-12-31\", rate = 0.7 }",
                "{ by = \"2022-12-31\", rate = 0.7 }",
            ),
            "target date",
        ),
        (
            base.replace("rate = 0.55", "rate = 55"),
            "not between 0 and 1",
        ),
        (
            base.replace(
                "unit = \"finding\"\nkind = \"household_toilet\"",
                "unit = \"site\"\nkind = \"household_toilet\"",
            ),
            "does not apply",
        ),
        (
            base.replace("exempt = true", "exempt = true\ncolour = \"red\""),
            "unknown field",
        ),
        (
            base.replace("exempt_villages = []", "exempt_villages = [\"4103\"]"),
            "12-digit",
        ),
    ];
    for (text, want) in cases {
        assert_ne!(text, base, "the case for {want:?} changed nothing");
        let err = Indicators::parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{err} should say {want}");
    }
}

#[test]
fn targets_follow_the_milestones() {
    let defs = Indicators::builtin();
    let rectified = defs.get("outfall_rectified").unwrap();
    assert_eq!(rectified.target_for("2023-12-31"), Some(0.3));
    assert_eq!(rectified.target_for("2024-06-30"), Some(0.7));
    assert_eq!(rectified.target_for("2025-12-31"), Some(1.0));
    assert_eq!(rectified.target_for("2027-12-31"), Some(1.0));
    assert_eq!(
        defs.get("sanitary_toilet_rate")
            .unwrap()
            .target_for("2025-12-31"),
        None
    );
}

#[test]
fn sites_count_by_their_latest_approval_in_the_period() {
    let defs = Indicators::builtin();
    let none = BTreeMap::new();
    let never: Vec<Approved> = vec![];
    let ok = vec![approved("2024-03-01", "sanitary", true)];
    // Latest approved wins: sanitary in March, not in May.
    let regressed = vec![
        approved("2024-05-01", "sanitary", false),
        approved("2024-03-01", "sanitary", true),
    ];
    let fixed = vec![
        approved("2024-03-01", "sanitary", false),
        approved("2024-09-01", "sanitary", true),
    ];
    // Approved only the year before.
    let old = vec![approved("2023-06-01", "sanitary", true)];
    let sites = [
        ("410324100201", &never),
        ("410324100201", &ok),
        ("410324100202", &regressed),
        ("410324100202", &fixed),
        ("410324200201", &old),
    ];
    let mut year = Coverage::new(defs, Period::year(2024));
    let mut as_of = Coverage::new(defs, Period::as_of("2024-12-31"));
    for (village, approved) in sites {
        let s = SiteFacts {
            kind: SiteKind::HouseholdToilet,
            village_code: village,
            attributes: &none,
            approved,
        };
        year.add_site(&s);
        as_of.add_site(&s);
    }
    let rows = year.rows(&divisions(), "");
    let t = |code| row(&rows, "sanitary_toilet_rate", code).tally;
    assert_eq!(
        t("410324100201"),
        Tally {
            numerator: 1,
            denominator: 2,
            not_inspected: 1
        }
    );
    assert_eq!(
        t("410324100202"),
        Tally {
            numerator: 1,
            denominator: 2,
            not_inspected: 0
        }
    );
    assert_eq!(
        t("410324200201"),
        Tally {
            numerator: 0,
            denominator: 1,
            not_inspected: 1
        }
    );
    // Roll-ups add counts: 2 of 5, not the mean of the villages' rates.
    assert_eq!(
        t("410324"),
        Tally {
            numerator: 2,
            denominator: 5,
            not_inspected: 2
        }
    );
    assert_eq!(row(&rows, "sanitary_toilet_rate", "4103").rate, Some(0.4));
    // A village with no toilets reports 0 of 0 and no rate.
    assert_eq!(
        row(&rows, "sanitary_toilet_rate", "410324001201").rate,
        None
    );
    // "As of" the end of 2024 includes the 2023 approval.
    let rows = as_of.rows(&divisions(), "");
    assert_eq!(
        row(&rows, "sanitary_toilet_rate", "410324").tally.numerator,
        3
    );
}

#[test]
fn parts_merged_equal_the_whole() {
    let defs = Indicators::builtin();
    let ok = vec![approved("2024-04-01", "effective", true)];
    let bad = vec![
        approved("2024-03-01", "effective", true),
        approved("2024-05-01", "effective", false),
    ];
    let a1 = attrs(&[("households_served", 40.0), ("village_households", 100.0)]);
    let a2 = attrs(&[("households_served", 30.0)]);
    let sites = [
        ("410324100201", &a1, &ok),
        ("410324100201", &a2, &ok),
        ("410324100202", &a1, &bad),
        ("410324200201", &a2, &ok),
    ];
    type Site<'a> = (&'a str, &'a BTreeMap<String, Value>, &'a Vec<Approved>);
    fn fact<'a>(s: &Site<'a>) -> SiteFacts<'a> {
        SiteFacts {
            kind: SiteKind::RuralSewage,
            village_code: s.0,
            attributes: s.1,
            approved: s.2,
        }
    }
    let mut whole = Coverage::new(defs, Period::year(2024));
    for s in &sites {
        whole.add_site(&fact(s));
    }
    // Split inside one village too: merging must add households, not
    // take one part's.
    let mut first = Coverage::new(defs, Period::year(2024));
    let mut second = Coverage::new(defs, Period::year(2024));
    for (i, s) in sites.iter().enumerate() {
        if i % 2 == 0 { &mut first } else { &mut second }.add_site(&fact(s));
    }
    first.merge(second);
    assert_eq!(
        first.rows(&divisions(), "410324"),
        whole.rows(&divisions(), "410324")
    );
    let rows = whole.rows(&divisions(), "410324");
    assert_eq!(
        row(&rows, "rural_sewage_rate", "410324100201")
            .tally
            .numerator,
        1
    );
    assert_eq!(
        row(&rows, "rural_sewage_rate", "410324100202")
            .tally
            .numerator,
        0
    );
}

#[test]
fn a_summary_counts_like_the_approvals_it_stands_for() {
    let defs = Indicators::builtin();
    let period = Period::as_of("2024-12-31");
    let twice = vec![
        approved("2023-06-01", "closure_done", false),
        approved("2024-03-01", "closure_done", false),
        approved("2024-09-01", "closure_done", true),
    ];
    let a = attrs(&[("supervision_level", 1.0)]);
    let mut from_facts = Coverage::new(defs, period.clone());
    from_facts.add_site(&SiteFacts {
        kind: SiteKind::TailingsPond,
        village_code: "410324100201",
        attributes: &a,
        approved: &twice,
    });
    let mut from_summary = Coverage::new(defs, period.clone());
    from_summary.add_site_summary(&SiteSummary {
        kind: SiteKind::TailingsPond,
        village_code: "410324100201",
        attributes: &a,
        latest: Some(&twice[2]),
        in_schedule_window: 2,
    });
    let rows = from_facts.rows(&divisions(), "410324");
    assert_eq!(rows, from_summary.rows(&divisions(), "410324"));
    let t = row(&rows, "tailings_inspected_on_time", "410324100201").tally;
    assert_eq!(
        (t.numerator, t.denominator),
        (1, 1),
        "two in 2024 meet level 1"
    );
}

#[test]
fn rural_villages_count_by_household_share_and_exemptions() {
    let text = BUILTIN_TEXT.replace(
        "exempt_villages = []",
        "exempt_villages = [\"410324200201\"]",
    );
    let defs = Indicators::parse(&text).unwrap();
    let mut cov = Coverage::new(&defs, Period::year(2024));
    let ok = vec![approved("2024-04-01", "effective", true)];
    let bad = vec![approved("2024-04-01", "effective", false)];
    // 东村: 100 households, effective facilities serve 40 + 20 = 60%.
    let a1 = attrs(&[("households_served", 40.0), ("village_households", 100.0)]);
    let a2 = attrs(&[("households_served", 20.0)]);
    // 西村: 100 households, effective serves 59, a broken one 30.
    let b1 = attrs(&[("households_served", 59.0), ("village_households", 100.0)]);
    let b2 = attrs(&[("households_served", 30.0)]);
    for (village, a, ap) in [
        ("410324100201", &a1, &ok),
        ("410324100201", &a2, &ok),
        ("410324100202", &b1, &ok),
        ("410324100202", &b2, &bad),
        // The urban residents' committee is not a rural village.
        ("410324100001", &a1, &ok),
    ] {
        cov.add_site(&SiteFacts {
            kind: SiteKind::RuralSewage,
            village_code: village,
            attributes: a,
            approved: ap,
        });
    }
    let rows = cov.rows(&divisions(), "410324");
    let t = |code| row(&rows, "rural_sewage_rate", code).tally;
    assert_eq!(
        t("410324100201"),
        Tally {
            numerator: 1,
            denominator: 1,
            not_inspected: 0
        }
    );
    assert_eq!(
        t("410324100202"),
        Tally {
            numerator: 0,
            denominator: 1,
            not_inspected: 0
        }
    );
    // 北村 is exempt (a row, but 0 of 0); 南村 (in a sub-district) is
    // rural and uninspected.
    assert_eq!(t("410324200201"), Tally::default());
}

#[test]
fn township_seats_exclude_sub_districts() {
    let defs = Indicators::builtin();
    let mut cov = Coverage::new(defs, Period::year(2023));
    let none = BTreeMap::new();
    let ok = vec![approved("2023-10-01", "effective", true)];
    cov.add_site(&SiteFacts {
        kind: SiteKind::TownshipSewagePlant,
        village_code: "410324100201",
        attributes: &none,
        approved: &ok,
    });
    let rows = cov.rows(&divisions(), "");
    let county = row(&rows, "township_seat_sewage", "410324");
    assert_eq!(
        county.tally,
        Tally {
            numerator: 1,
            denominator: 2,
            not_inspected: 1
        }
    );
    assert_eq!(
        row(&rows, "township_seat_sewage", "410324001")
            .tally
            .denominator,
        0
    );
}

#[test]
fn tailings_schedule_and_closure_list() {
    let defs = Indicators::builtin();
    let mut cov = Coverage::new(defs, Period::as_of("2024-12-31"));
    let twice = vec![
        approved("2024-03-01", "closure_done", false),
        approved("2024-08-01", "closure_done", true),
    ];
    let once = vec![approved("2024-08-01", "closure_done", true)];
    // Last year's inspection does not count for this year's schedule.
    let last_year = vec![approved("2023-08-01", "closure_done", true)];
    let never: Vec<Approved> = vec![];
    let level = |l: f64| attrs(&[("supervision_level", l)]);
    let mut listed = level(2.0);
    listed.insert("on_closure_list".into(), Value::Bool(true));
    let unlisted = BTreeMap::new();
    for (a, ap) in [
        (level(1.0), &twice),
        (level(1.0), &once),
        (listed.clone(), &once),
        (level(2.0), &last_year),
        (level(3.0), &never),
        (unlisted, &once),
    ] {
        cov.add_site(&SiteFacts {
            kind: SiteKind::TailingsPond,
            village_code: "410324200201",
            attributes: &a,
            approved: ap,
        });
    }
    let rows = cov.rows(&divisions(), "410324200");
    let on_time = row(&rows, "tailings_inspected_on_time", "410324200").tally;
    // Under supervision: 5 ponds (not the one without a level); on
    // schedule: level 1 twice, level 2 once this year, level 3.
    assert_eq!((on_time.numerator, on_time.denominator), (3, 5));
    let closure = row(&rows, "tailings_closure_done", "410324200").tally;
    assert_eq!((closure.numerator, closure.denominator), (1, 1));
}

#[test]
fn findings_count_by_raise_date_and_deadline() {
    let defs = Indicators::builtin();
    let mut cov = Coverage::new(defs, Period::year(2024));
    let f = |kind, status, raised: &str, deadline: Option<&'static str>, closed: Option<&str>| {
        (kind, status, at(raised), deadline, closed.map(at))
    };
    use FindingStatus as S;
    use SiteKind::*;
    let cases = [
        f(
            HouseholdToilet,
            S::Closed,
            "2024-02-01",
            Some("2024-03-01"),
            Some("2024-02-20"),
        ),
        f(
            HouseholdToilet,
            S::Closed,
            "2024-02-01",
            Some("2024-03-01"),
            Some("2024-04-20"),
        ),
        f(
            HouseholdToilet,
            S::Rectifying,
            "2024-05-01",
            Some("2024-06-01"),
            None,
        ),
        f(
            HouseholdToilet,
            S::Closed,
            "2023-11-01",
            Some("2023-12-01"),
            Some("2023-11-20"),
        ),
        f(SewageOutfall, S::Assigned, "2024-05-01", None, None),
    ];
    for (kind, status, raised_at, deadline, closed_at) in cases {
        cov.add_finding(&FindingFacts {
            site_kind: kind,
            village_code: "410324100201",
            status,
            raised_at,
            deadline,
            closed_at,
        });
    }
    let rows = cov.rows(&divisions(), "");
    let fixed = row(&rows, "problem_toilet_fixed", "410324").tally;
    assert_eq!((fixed.numerator, fixed.denominator), (2, 3));
    // Due in 2024: three toilet findings with 2024 deadlines; one closed
    // in time. The outfall finding has no deadline yet.
    let on_time = row(&rows, "findings_on_time", "410324").tally;
    assert_eq!((on_time.numerator, on_time.denominator), (1, 3));
}
