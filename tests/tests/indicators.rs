//! Every indicator, recomputed from the raw exports.
//!
//! A real server holds a generated registry of one county; an inspector
//! fills checklists of every site kind from their templates, some in good
//! order and some not, and a supervisor approves, returns or leaves them at
//! dates the test sets (several approvals of one site, approvals in another
//! year), raises findings and closes some of them on time, some late and
//! some never. The coverage evaluator's rows are then checked, at every
//! village, township and county, against a recomputation written here from
//! the indicator definitions in `indicators.md`, reading only the records
//! export, the findings export (both as CSV and XLSX, the XLSX read back
//! with Python's `openpyxl`), the registry and the division list.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::area::{has_township_seat, is_rural_village};
use fieldbook_core::model::indicator::{CoverageRow, Indicators, Numerator, Period, Unit};
use fieldbook_core::model::workflow::china_day_start_ms;
use fieldbook_core::model::{Divisions, EventKind, Level, Role, Site, SiteKind, Value};
use fieldbook_core::store::{FindingAction, NewFinding, Store};
use fieldbook_server::coverage::{coverage_rows, write_findings, write_records};
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::export::TableFormat;
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{Phone, TestServer, photo_ref};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const COUNTY: &str = "410324"; // 栾川县: mining, so it has tailings ponds.

fn at(date: &str) -> i64 {
    china_day_start_ms(date).unwrap() + 10 * 3_600_000
}

/// Inspections per kind: enough to reach several villages of each.
fn per_kind(kind: SiteKind) -> usize {
    match kind {
        SiteKind::HouseholdToilet => 12,
        SiteKind::RuralSewage => 14,
        _ => 8,
    }
}

/// Fills and submits an inspection of `site` from its template.
fn inspect(store: &mut Store, site: &Site, good: bool, n: u64) -> String {
    let t = store.templates().latest(site.kind).unwrap().clone();
    let answers = fieldbook_server::devtools::answers::plausible(&t, good, n);
    let id = store.start_inspection(&site.id).unwrap();
    let list: Vec<(String, Value)> = answers.clone().into_iter().collect();
    store.set_answers(&id, &list).unwrap();
    let mut k = 0;
    for f in &t.fields {
        for _ in 0..t.photos_needed(&f.key, &answers) {
            store
                .add_photo_ref(&id, photo_ref(n * 64 + k, &f.key))
                .unwrap();
            k += 1;
        }
    }
    store.submit(&id).unwrap();
    id
}

fn finding_step(store: &mut Store, id: &str, kind: EventKind, deadline: Option<&str>) {
    store
        .advance_finding(
            id,
            FindingAction {
                kind,
                comment: None,
                responsible: deadline.map(|_| "村委会".to_owned()),
                deadline: deadline.map(str::to_owned),
            },
        )
        .unwrap();
}

/// One exported table as header → column and rows of text.
struct Table {
    col: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn csv(bytes: &[u8]) -> Table {
        let text = std::str::from_utf8(bytes).unwrap();
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let col = (r.headers().unwrap().iter().enumerate())
            .map(|(i, h)| (h.to_owned(), i))
            .collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
            .collect();
        Table { col, rows }
    }

    fn get<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col[name]]
    }
}

/// The first sheet of an XLSX file as text cells, read by openpyxl (which
/// `.ci/run` installs).
fn xlsx_cells(bytes: &[u8]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let script = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
ws = wb.worksheets[0]
out = {"frozen": None, "rows": []}
wb2 = openpyxl.load_workbook(sys.argv[1])
out["frozen"] = wb2.worksheets[0].freeze_panes
for row in ws.iter_rows(values_only=True):
    out["rows"].append(["" if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in row])
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading the XLSX back failed (python3 -m pip install openpyxl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frozen"], "A2", "the header row is frozen");
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

/// What the recomputation knows of an approval: China date and outcomes.
struct Approval {
    date: String,
    outcomes: BTreeMap<String, bool>,
}

fn in_period(d: &str, p: &Period) -> bool {
    d <= p.to.as_str() && p.from.as_deref().is_none_or(|f| d >= f)
}

fn number(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) if n.is_finite() && *n >= 0.0 => *n as u64,
        _ => 0,
    }
}

/// Village-level (or, for seats, township-level) numerator and
/// denominator of one indicator, from the exports alone.
fn recompute(
    ind: &fieldbook_core::model::indicator::Indicator,
    defs: &Indicators,
    period: &Period,
    registry: &[Site],
    approvals: &HashMap<String, Vec<Approval>>,
    findings: &Table,
) -> BTreeMap<String, (u64, u64)> {
    let divisions = Divisions::luoyang();
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let latest = |site: &str| {
        approvals
            .get(site)
            .into_iter()
            .flatten()
            .filter(|a| in_period(&a.date, period))
            .max_by(|a, b| a.date.cmp(&b.date))
    };
    let holds =
        |site: &str, rule: &str| latest(site).is_some_and(|a| a.outcomes.get(rule) == Some(&true));
    let of_kind = || registry.iter().filter(|s| Some(s.kind) == ind.kind);
    match (ind.unit, &ind.numerator) {
        (Unit::Site, num) => {
            for s in of_kind() {
                if let Some(attr) = &ind.site_filter
                    && matches!(s.attributes.get(attr), None | Some(Value::Bool(false)))
                {
                    continue;
                }
                let ok = match num {
                    Numerator::Rule(r) => holds(&s.id, r),
                    Numerator::InspectedOnSchedule => {
                        // The year of the period's end, up to that end.
                        let year = Period {
                            from: Some(format!("{}-01-01", &period.to[..4])),
                            to: period.to.clone(),
                        };
                        let done = approvals
                            .get(&s.id)
                            .into_iter()
                            .flatten()
                            .filter(|a| in_period(&a.date, &year))
                            .count() as u64;
                        let level = number(s.attributes.get("supervision_level")).to_string();
                        let needed = defs
                            .params
                            .tailings_inspections_per_year
                            .get(&level)
                            .copied()
                            .unwrap_or(1);
                        done >= u64::from(needed)
                    }
                    other => panic!("no site numerator {other:?}"),
                };
                let e = out.entry(s.village_code.clone()).or_default();
                e.0 += u64::from(ok);
                e.1 += 1;
            }
        }
        (Unit::RuralVillage, num) => {
            let exempt: HashSet<&str> = if ind.exempt {
                defs.params
                    .exempt_villages
                    .iter()
                    .map(String::as_str)
                    .collect()
            } else {
                HashSet::new()
            };
            for v in divisions.within(COUNTY, Level::Village) {
                if !is_rural_village(&v.code) || exempt.contains(v.code.as_str()) {
                    continue;
                }
                let sites: Vec<&Site> = of_kind().filter(|s| s.village_code == v.code).collect();
                let ok = match num {
                    Numerator::AnySite(r) => sites.iter().any(|s| holds(&s.id, r)),
                    Numerator::HouseholdsShare(r) => {
                        let stated = sites
                            .iter()
                            .map(|s| number(s.attributes.get("village_households")))
                            .max()
                            .unwrap_or(0);
                        let served = |s: &&&Site| number(s.attributes.get("households_served"));
                        let all: u64 = sites.iter().map(|s| served(&s)).sum();
                        let ok: u64 = sites
                            .iter()
                            .filter(|s| holds(&s.id, r))
                            .map(|s| served(&s))
                            .sum();
                        let base = if stated > 0 { stated } else { all };
                        base > 0
                            && ok as f64
                                >= defs.params.rural_sewage_household_share_min * base as f64
                    }
                    other => panic!("no village numerator {other:?}"),
                };
                out.insert(v.code.clone(), (u64::from(ok), 1));
            }
        }
        (Unit::TownshipSeat, Numerator::AnySite(r)) => {
            for t in divisions.within(COUNTY, Level::Township) {
                if !has_township_seat(&t.code) {
                    continue;
                }
                let ok = of_kind()
                    .filter(|s| s.village_code.starts_with(&t.code))
                    .any(|s| holds(&s.id, r));
                out.insert(t.code.clone(), (u64::from(ok), 1));
            }
        }
        (Unit::Finding, num) => {
            for row in &findings.rows {
                let kind = findings.get(row, "site_kind");
                if ind.kind.is_some_and(|k| k.key() != kind) {
                    continue;
                }
                let closed = (findings.get(row, "status") == "closed")
                    .then(|| findings.get(row, "closed_at").get(..10))
                    .flatten();
                let raised = &findings.get(row, "raised_at")[..10];
                let deadline = findings.get(row, "deadline");
                let (counts, ok) = match num {
                    Numerator::Closed => (
                        in_period(raised, period),
                        closed.is_some_and(|d| d <= period.to.as_str()),
                    ),
                    Numerator::ClosedByDeadline => (
                        !deadline.is_empty() && in_period(deadline, period),
                        closed.is_some_and(|d| d <= deadline),
                    ),
                    other => panic!("no finding numerator {other:?}"),
                };
                if counts {
                    let e = out
                        .entry(findings.get(row, "village_code").to_owned())
                        .or_default();
                    e.0 += u64::from(ok);
                    e.1 += 1;
                }
            }
        }
        other => panic!("unexpected indicator shape {other:?}"),
    }
    out
}

#[test]
fn every_indicator_matches_a_recomputation_from_the_exports() {
    let server = TestServer::start();
    server.add_user("li", Role::Inspector, &[COUNTY]);
    server.add_user("zhang", Role::Supervisor, &[COUNTY]);
    let mut registry = generate(
        Divisions::luoyang(),
        &RegistryOptions {
            area: COUNTY.into(),
            toilets_per_village: 1,
            ..RegistryOptions::default()
        },
        0,
    );
    // Every kind needs two sites at least, so that both outcomes can show:
    // copies of the rarest ones, in the next village of the county.
    let villages = Divisions::luoyang().within(COUNTY, Level::Village);
    for kind in SiteKind::ALL {
        let of_kind: Vec<Site> = registry
            .iter()
            .filter(|s| s.kind == kind)
            .cloned()
            .collect();
        if let [only] = of_kind.as_slice() {
            let mut twin = only.clone();
            let last = twin.id.pop().unwrap();
            twin.id.push(if last == '0' { '1' } else { '0' });
            let at = villages
                .iter()
                .position(|v| v.code == only.village_code)
                .unwrap();
            twin.village_code = villages[(at + 1) % villages.len()].code.clone();
            registry.push(twin);
        }
    }
    server
        .storage
        .import_sites(&registry, &fieldbook_tests::operator(), 0)
        .unwrap();
    let mut li = Phone::login(&server, "li", "li-phone");
    let mut zhang = Phone::login(&server, "zhang", "zhang-phone");
    let now = Arc::new(AtomicI64::new(at("2025-10-01")));
    let clock = now.clone();
    zhang
        .store
        .set_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    li.sync().unwrap();

    // Per kind, the first sites of the registry; every kind is present.
    let mut chosen: Vec<&Site> = Vec::new();
    for kind in SiteKind::ALL {
        let sites: Vec<&Site> = registry.iter().filter(|s| s.kind == kind).collect();
        assert!(!sites.is_empty(), "the registry has no {kind:?}");
        // Spread over villages: every other site of the kind.
        let step = if sites.len() > 2 { 2 } else { 1 };
        chosen.extend(sites.iter().step_by(step).take(per_kind(kind)));
    }

    // Round one, approved in 2025: counts "as of" 2026 but not "in 2026".
    let mut n = 0u64;
    let mut submitted = Vec::new();
    for s in chosen.iter().step_by(3) {
        n += 1;
        submitted.push(inspect(&mut li.store, s, n.is_multiple_of(2), n));
    }
    li.sync().unwrap();
    zhang.sync().unwrap();
    for id in &submitted {
        zhang.store.approve(id, None).unwrap();
    }
    zhang.sync().unwrap();

    // Round two, 2026: most approved, some returned, some left waiting;
    // tailings ponds twice, so the schedule sees two approvals.
    now.store(at("2026-04-01"), Ordering::SeqCst);
    li.sync().unwrap();
    let mut round: Vec<(String, SiteKind)> = Vec::new();
    for s in &chosen {
        n += 1;
        round.push((inspect(&mut li.store, s, !n.is_multiple_of(3), n), s.kind));
    }
    li.sync().unwrap();
    zhang.sync().unwrap();
    for (i, (id, _)) in round.iter().enumerate() {
        match i % 7 {
            5 => zhang.store.return_inspection(id, "照片不清").unwrap(),
            6 => {} // still waiting for review
            _ => zhang.store.approve(id, None).unwrap(),
        }
    }
    zhang.sync().unwrap();
    now.store(at("2026-08-15"), Ordering::SeqCst);
    li.sync().unwrap();
    let tailings: Vec<&&Site> = chosen
        .iter()
        .filter(|s| s.kind == SiteKind::TailingsPond)
        .collect();
    let again: Vec<String> = tailings
        .iter()
        .take(3)
        .map(|s| {
            n += 1;
            inspect(&mut li.store, s, true, n)
        })
        .collect();
    li.sync().unwrap();
    zhang.sync().unwrap();
    for id in &again {
        zhang.store.approve(id, None).unwrap();
    }

    // Findings: raised in 2025 and 2026, on toilets and other kinds; closed
    // before the deadline, after it, or not at all.
    let plans = [
        ("2025-11-01", "2025-12-20", Some("2025-12-10")),
        ("2026-02-01", "2026-03-31", Some("2026-03-20")),
        ("2026-02-01", "2026-03-31", Some("2026-05-05")),
        ("2026-05-01", "2026-06-30", Some("2026-06-20")),
        ("2026-06-01", "2027-01-31", None),
        ("2026-07-01", "2026-09-30", None),
    ];
    let mut findings = Vec::new();
    for (i, (raised, deadline, _)) in plans.iter().enumerate() {
        now.store(at(raised), Ordering::SeqCst);
        let site = if i % 2 == 0 {
            chosen
                .iter()
                .filter(|s| s.kind == SiteKind::HouseholdToilet)
                .nth(i)
                .unwrap()
        } else {
            chosen
                .iter()
                .filter(|s| s.kind != SiteKind::HouseholdToilet)
                .nth(i * 3)
                .unwrap()
        };
        let id = zhang
            .store
            .raise_finding(NewFinding {
                inspection_id: None,
                site_id: site.id.clone(),
                title: format!("问题 {i}"),
                description: String::new(),
                deadline: Some((*deadline).to_owned()),
            })
            .unwrap();
        finding_step(&mut zhang.store, &id, EventKind::Assigned, Some(deadline));
        findings.push(id);
    }
    zhang.sync().unwrap();
    li.sync().unwrap();
    for id in &findings {
        finding_step(&mut li.store, id, EventKind::ClosureRequested, None);
    }
    li.sync().unwrap();
    zhang.sync().unwrap();
    for (id, (_, _, closed)) in findings.iter().zip(plans) {
        if let Some(day) = closed {
            now.store(at(day), Ordering::SeqCst);
            finding_step(&mut zhang.store, id, EventKind::Closed, None);
        }
    }
    zhang.sync().unwrap();
    assert!(server.storage.verify_projections().unwrap().is_empty());

    // The exports, in both table formats.
    let storage: &dyn fieldbook_server::storage::reports::Reports = server.storage.as_ref();
    let export = |what: &str, format: TableFormat| {
        let mut bytes = Vec::new();
        let n = if what == "records" {
            write_records(
                storage,
                Divisions::luoyang(),
                COUNTY,
                "",
                format,
                &mut bytes,
                &mut |_| {},
            )
        } else {
            write_findings(
                storage,
                Divisions::luoyang(),
                COUNTY,
                "2026-12-01",
                format,
                &mut bytes,
                &mut |_| {},
            )
        }
        .unwrap();
        (n, bytes)
    };
    let (n_records, records_csv) = export("records", TableFormat::Csv);
    let (n_findings, findings_csv) = export("findings", TableFormat::Csv);
    let records = Table::csv(&records_csv);
    let findings_table = Table::csv(&findings_csv);
    assert_eq!(records.rows.len() as u64, n_records);
    assert_eq!(n_findings, plans.len() as u64);
    assert_eq!(
        n_records as usize,
        submitted.len() + round.len() + again.len()
    );
    // The XLSX tables hold the same cells (numbers as numbers).
    for (what, csv_table) in [("records", &records), ("findings", &findings_table)] {
        let (_, bytes) = export(what, TableFormat::Xlsx);
        let cells = xlsx_cells(&bytes);
        assert_eq!(
            cells.len(),
            csv_table.rows.len() + 1,
            "{what}: header + rows"
        );
        for (x, c) in cells[1..].iter().zip(&csv_table.rows) {
            for (xv, cv) in x.iter().zip(c) {
                match (xv.parse::<f64>(), cv.parse::<f64>()) {
                    (Ok(a), Ok(b)) => assert!((a - b).abs() < 1e-9, "{what}: {xv} vs {cv}"),
                    _ => assert_eq!(xv, cv, "{what}"),
                }
            }
        }
    }

    let mut approvals: HashMap<String, Vec<Approval>> = HashMap::new();
    for row in &records.rows {
        if records.get(row, "status") != "approved" {
            continue;
        }
        approvals
            .entry(records.get(row, "site_id").to_owned())
            .or_default()
            .push(Approval {
                date: records.get(row, "reviewed_at")[..10].to_owned(),
                outcomes: serde_json::from_str(records.get(row, "outcomes")).unwrap(),
            });
    }

    let defs = Indicators::builtin();
    let mut compared = 0;
    let mut nonzero: HashSet<String> = HashSet::new();
    for period in [Period::year(2026), Period::as_of("2026-12-31")] {
        let rows: Vec<CoverageRow> = coverage_rows(
            server.storage.as_ref(),
            defs,
            Divisions::luoyang(),
            COUNTY,
            period.clone(),
            &mut |_| {},
        )
        .unwrap();
        let by_key: HashMap<(&str, &str), &CoverageRow> = rows
            .iter()
            .map(|r| ((r.indicator.as_str(), r.area_code.as_str()), r))
            .collect();
        for ind in &defs.indicators {
            let leaves = recompute(ind, defs, &period, &registry, &approvals, &findings_table);
            let mut expect: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for (code, (num, den)) in leaves {
                for len in [6, 9, 12] {
                    if let Some(prefix) = code.get(..len) {
                        let e = expect.entry(prefix.to_owned()).or_default();
                        e.0 += num;
                        e.1 += den;
                    }
                }
            }
            let county = expect.get(COUNTY).copied().unwrap_or_default();
            if county.0 > 0 && county.0 < county.1 {
                nonzero.insert(ind.id.clone());
            }
            for (code, (num, den)) in &expect {
                let row = by_key
                    .get(&(ind.id.as_str(), code.as_str()))
                    .unwrap_or_else(|| panic!("no row {} {code}", ind.id));
                assert_eq!(
                    (row.tally.numerator, row.tally.denominator),
                    (*num, *den),
                    "{} {code} {period:?}",
                    ind.id
                );
                compared += 1;
            }
            // And no row claims units the recomputation did not find.
            for r in rows.iter().filter(|r| r.indicator == ind.id) {
                if r.tally.denominator > 0 {
                    assert!(
                        expect.contains_key(&r.area_code),
                        "{} {} has units the exports do not show",
                        r.indicator,
                        r.area_code
                    );
                }
            }
        }
    }
    // The phone computes its user's own area offline from what it holds,
    // with the same definitions: after a sync it agrees with the server.
    li.sync().unwrap();
    for period in [Period::year(2026), Period::as_of("2026-12-31")] {
        let on_phone = li.store.coverage(period.clone()).unwrap();
        let on_server = coverage_rows(
            server.storage.as_ref(),
            defs,
            Divisions::luoyang(),
            COUNTY,
            period.clone(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(on_phone.len(), on_server.len());
        assert!(
            on_phone == on_server,
            "phone and server differ for {period:?}"
        );
    }
    eprintln!(
        "{compared} area rows compared; indicators with both outcomes: {:?}",
        nonzero
    );
    // The data set exercises every indicator with both outcomes somewhere,
    // so a recomputation that always said yes (or no) would fail.
    assert_eq!(
        nonzero.len(),
        defs.indicators.len(),
        "indicators with only one outcome: {:?}",
        defs.indicators
            .iter()
            .map(|i| &i.id)
            .filter(|i| !nonzero.contains(*i))
            .collect::<Vec<_>>()
    );
}
