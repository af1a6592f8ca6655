//! Coverage from a real server: a generated registry, inspections made on a
//! phone and reviewed on another with every edge case (approved, submitted
//! only, returned, draft, inspected twice, approved last year, never
//! inspected), then the coverage computed from the projections checked
//! against an independent recomputation from the raw records export.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::indicator::{Indicators, Numerator, Period, Unit};
use fieldbook_core::model::workflow::china_day_start_ms;
use fieldbook_core::model::{Divisions, Level, Role, Site, SiteKind, Value};
use fieldbook_core::store::{SiteFilter, Store};
use fieldbook_server::coverage::{coverage_rows, write_records_csv};
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{Phone, TestServer, photo_ref, raw_get, toilet_answers, token};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const TOWN: &str = "410324101"; // 赤土店镇, 栾川县

/// An approval as the records export shows it: China date and outcomes.
type Approval = (String, BTreeMap<String, bool>);

/// Unix ms of `date` at 10:00 China time.
fn at(date: &str) -> i64 {
    china_day_start_ms(date).unwrap() + 10 * 3_600_000
}

/// A generated registry of the township, imported into `server`.
fn town_registry(server: &TestServer, toilets_per_village: u32) -> Vec<Site> {
    let registry = generate(
        Divisions::luoyang(),
        &RegistryOptions {
            area: TOWN.into(),
            toilets_per_village,
            ..RegistryOptions::default()
        },
        0,
    );
    assert_eq!(
        server
            .storage
            .import_sites(&registry, &fieldbook_tests::operator(), 0)
            .unwrap(),
        registry.len()
    );
    registry
}

/// Fills in an inspection of `site`; submits it when asked.
fn inspect(store: &mut Store, site: &str, sanitary: bool, submit: bool, n: u64) -> String {
    let id = store.start_inspection(site).unwrap();
    store.set_answers(&id, &toilet_answers(sanitary)).unwrap();
    store
        .add_photo_ref(&id, photo_ref(2 * n, "photos"))
        .unwrap();
    store
        .add_photo_ref(&id, photo_ref(2 * n + 1, "photos"))
        .unwrap();
    if submit {
        store.submit(&id).unwrap();
    }
    id
}

#[test]
fn coverage_matches_a_recomputation_from_the_records_export() {
    let server = TestServer::start();
    server.add_user("li", Role::Inspector, &["410324"]);
    server.add_user("zhang", Role::Supervisor, &["410324"]);
    let registry = town_registry(&server, 2);

    let mut li = Phone::login(&server, "li", "li-phone");
    let mut zhang = Phone::login(&server, "zhang", "zhang-phone");
    // The supervisor's clock decides approval times: the test sets it.
    let now = Arc::new(AtomicI64::new(at("2025-06-01")));
    let clock = now.clone();
    zhang
        .store
        .set_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    li.sync().unwrap();
    let toilets = li
        .store
        .list_sites(&SiteFilter {
            kind: Some(SiteKind::HouseholdToilet),
            ..SiteFilter::default()
        })
        .unwrap();
    assert!(toilets.len() >= 10, "{} toilets", toilets.len());
    let t: Vec<&str> = toilets.iter().map(|s| s.id.as_str()).collect();

    // Approved last year (2025): counts "as of" 2026, not "in 2026".
    let last_year = inspect(&mut li.store, t[7], true, true, 7);
    li.sync().unwrap();
    zhang.sync().unwrap();
    zhang.store.approve(&last_year, None).unwrap();
    zhang.sync().unwrap();

    now.store(at("2026-03-01"), Ordering::SeqCst);
    let approved_ok = inspect(&mut li.store, t[0], true, true, 0);
    let approved_bad = inspect(&mut li.store, t[1], false, true, 1);
    let _submitted = inspect(&mut li.store, t[2], true, true, 2);
    let returned = inspect(&mut li.store, t[3], true, true, 3);
    let _draft = inspect(&mut li.store, t[4], true, false, 4);
    let first_ok = inspect(&mut li.store, t[5], true, true, 5);
    let first_bad = inspect(&mut li.store, t[6], false, true, 6);
    li.sync().unwrap();
    zhang.sync().unwrap();
    for id in [&approved_ok, &approved_bad, &first_ok, &first_bad] {
        zhang.store.approve(id, None).unwrap();
    }
    zhang
        .store
        .return_inspection(&returned, "照片不清")
        .unwrap();
    zhang.sync().unwrap();

    // Each of two sites inspected again; the later approval wins.
    now.store(at("2026-09-01"), Ordering::SeqCst);
    li.sync().unwrap();
    let second_bad = inspect(&mut li.store, t[5], false, true, 8);
    let second_ok = inspect(&mut li.store, t[6], true, true, 9);
    li.sync().unwrap();
    zhang.sync().unwrap();
    zhang.store.approve(&second_bad, None).unwrap();
    zhang.store.approve(&second_ok, None).unwrap();
    zhang.sync().unwrap();

    let defs = Indicators::builtin();
    let divisions = Divisions::luoyang();
    let year = coverage_rows(
        server.storage.as_ref(),
        defs,
        divisions,
        "410324",
        Period::year(2026),
        &mut |_| {},
    )
    .unwrap();
    let town = year
        .iter()
        .find(|r| r.indicator == "sanitary_toilet_rate" && r.area_code == TOWN)
        .unwrap();
    // t0 and t6 are sanitary; t1 and t5 approved but not; t2, t3, t4 (and
    // t7, approved in 2025) have no approval in 2026.
    assert_eq!(town.tally.numerator, 2);
    assert_eq!(town.tally.denominator, toilets.len() as u64);
    assert_eq!(town.tally.not_inspected, toilets.len() as u64 - 4);
    assert_eq!(town.level, Level::Township);
    let as_of = coverage_rows(
        server.storage.as_ref(),
        defs,
        divisions,
        "410324",
        Period::as_of("2026-12-31"),
        &mut |_| {},
    )
    .unwrap();
    let town_as_of = as_of
        .iter()
        .find(|r| r.indicator == "sanitary_toilet_rate" && r.area_code == TOWN)
        .unwrap();
    assert_eq!(town_as_of.tally.numerator, 3, "as of 2026 counts t7 too");

    // The independent path: the records export (every inspection as it
    // is) and the registry, judged here without the evaluator.
    let mut csv_bytes = Vec::new();
    let written = write_records_csv(
        server.storage.as_ref(),
        divisions,
        "410324",
        "http://127.0.0.1",
        &mut csv_bytes,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(written, 10, "every inspection, drafts and returns included");
    // More exports at once than the storage has reader connections: each
    // scan must finish on the one connection it holds.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for _ in 0..8 {
        let (storage, done) = (server.storage.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let n = write_records_csv(
                storage.as_ref(),
                Divisions::luoyang(),
                "410324",
                "",
                &mut sink,
                &mut |_| {},
            );
            let _ = done.send(n.map_err(|e| e.to_string()));
        });
    }
    for _ in 0..8 {
        let n = done_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("concurrent records exports finish");
        assert_eq!(n.unwrap(), 10);
    }
    let text = String::from_utf8(csv_bytes).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    // site -> (approval date, outcomes) of each approved inspection.
    let mut approvals: HashMap<String, Vec<Approval>> = HashMap::new();
    for rec in reader.records() {
        let rec = rec.unwrap();
        assert!(rec[col("photo_links")].contains("/v1/photos/"), "{rec:?}");
        if &rec[col("status")] != "approved" {
            continue;
        }
        let date = rec[col("reviewed_at")][..10].to_owned();
        let outcomes: BTreeMap<String, bool> = serde_json::from_str(&rec[col("outcomes")]).unwrap();
        approvals
            .entry(rec[col("site_id")].to_owned())
            .or_default()
            .push((date, outcomes));
    }
    for (period, rows) in [
        ((Some("2026-01-01"), "2026-12-31"), &year),
        ((None, "2026-12-31"), &as_of),
    ] {
        for ind in &defs.indicators {
            let (Unit::Site, Numerator::Rule(rule), Some(kind)) =
                (ind.unit, &ind.numerator, ind.kind)
            else {
                continue;
            };
            // area code -> (numerator, denominator), at every level.
            let mut expect: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for site in registry.iter().filter(|s| s.kind == kind) {
                if let Some(attr) = &ind.site_filter {
                    match site.attributes.get(attr) {
                        None | Some(Value::Bool(false)) => continue,
                        _ => {}
                    }
                }
                let latest = approvals
                    .get(&site.id)
                    .into_iter()
                    .flatten()
                    .filter(|(d, _)| {
                        d.as_str() <= period.1 && period.0.is_none_or(|f| d.as_str() >= f)
                    })
                    .max_by(|a, b| a.0.cmp(&b.0));
                let holds = latest.is_some_and(|(_, o)| o.get(rule) == Some(&true));
                for len in [6, 9, 12] {
                    let e = expect
                        .entry(site.village_code[..len].to_owned())
                        .or_default();
                    e.0 += u64::from(holds);
                    e.1 += 1;
                }
            }
            for (code, (num, den)) in expect {
                let row = rows
                    .iter()
                    .find(|r| r.indicator == ind.id && r.area_code == code)
                    .unwrap_or_else(|| panic!("no row {} {code}", ind.id));
                assert_eq!(
                    (row.tally.numerator, row.tally.denominator),
                    (num, den),
                    "{} {code} {period:?}",
                    ind.id
                );
            }
        }
    }
}

#[test]
fn exports_over_http_are_for_county_offices_in_their_area() {
    let server = TestServer::start();
    server.add_user("office", Role::CountyOffice, &["410324"]);
    server.add_user("li", Role::Inspector, &["410324"]);
    let registry = town_registry(&server, 1);
    let office = token(&server, "office", "office-pc");
    let inspector = token(&server, "li", "li-phone");
    let get = |path: &str, tok: &str| raw_get(&server.url, path, Some(tok));

    let (status, body) = get("/v1/exports/coverage?format=csv&year=2026", &office);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8(body).unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("CSV starts with a byte-order mark");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let n = rows.records().count();
    // 11 indicators × (county + townships + villages of 栾川).
    assert!(n > 11 * 200, "{n} rows");
    assert!(text.contains("栾川县") && text.contains("sanitary_toilet_rate"));

    let (status, body) = get("/v1/exports/coverage?format=xlsx&as_of=2026-06-30", &office);
    assert_eq!(status, 200);
    assert_eq!(&body[..2], b"PK", "an XLSX file is a zip");
    let (status, body) = get("/v1/exports/coverage?format=geojson", &office);
    assert_eq!(status, 200);
    let map: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        map["features"].as_array().unwrap().len(),
        registry.len(),
        "one feature per site"
    );
    let (status, body) = get("/v1/exports/records", &office);
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("inspection_id"));
    let (status, body) = get("/v1/exports/records?format=xlsx", &office);
    assert_eq!(status, 200);
    assert_eq!(&body[..2], b"PK");
    let (status, body) = get("/v1/exports/findings", &office);
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("finding_id"));
    let (status, body) = get("/v1/exports/findings?format=xlsx&area=410324", &office);
    assert_eq!(status, 200);
    assert_eq!(&body[..2], b"PK");

    for (path, tok, want) in [
        ("/v1/exports/coverage?format=csv", inspector.as_str(), 403),
        ("/v1/exports/records", inspector.as_str(), 403),
        ("/v1/exports/findings", inspector.as_str(), 403),
        ("/v1/exports/findings?area=410325", office.as_str(), 403),
        ("/v1/exports/findings?format=pdf", office.as_str(), 400),
        ("/v1/exports/records?format=geojson", office.as_str(), 400),
        (
            "/v1/exports/coverage?format=csv&area=410325",
            office.as_str(),
            403,
        ),
        ("/v1/exports/coverage?format=pdf", office.as_str(), 400),
        (
            "/v1/exports/coverage?format=csv&year=1900",
            office.as_str(),
            400,
        ),
        (
            "/v1/exports/coverage?format=csv&as_of=2026-13-01",
            office.as_str(),
            400,
        ),
        (
            "/v1/exports/coverage?format=csv&area=41O324",
            office.as_str(),
            400,
        ),
        (
            "/v1/exports/coverage?format=csv&colour=red",
            office.as_str(),
            400,
        ),
    ] {
        let (status, body) = get(path, tok);
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _) = raw_get(&server.url, "/v1/exports/coverage?format=csv", None);
    assert_eq!(status, 401);
}

#[test]
fn a_site_moved_by_the_registry_counts_in_its_new_village() {
    let server = TestServer::start();
    server.add_user("li", Role::Inspector, &["410324"]);
    server.add_user("zhang", Role::Supervisor, &["410324"]);
    let registry = town_registry(&server, 1);
    let mut li = Phone::login(&server, "li", "li-phone");
    let mut zhang = Phone::login(&server, "zhang", "zhang-phone");
    li.sync().unwrap();
    let toilet = registry
        .iter()
        .find(|s| s.kind == SiteKind::HouseholdToilet)
        .unwrap()
        .clone();
    let id = inspect(&mut li.store, &toilet.id, true, true, 0);
    li.sync().unwrap();
    zhang.sync().unwrap();
    zhang.store.approve(&id, None).unwrap();
    zhang.sync().unwrap();

    let year = china_date_year();
    let rate_in = |village: &str| {
        let rows = coverage_rows(
            server.storage.as_ref(),
            Indicators::builtin(),
            Divisions::luoyang(),
            TOWN,
            Period::year(year),
            &mut |_| {},
        )
        .unwrap();
        let r = rows
            .iter()
            .find(|r| r.indicator == "sanitary_toilet_rate" && r.area_code == village)
            .unwrap();
        (r.tally.numerator, r.tally.denominator)
    };
    let old = toilet.village_code.clone();
    let new = Divisions::luoyang()
        .within(TOWN, Level::Village)
        .into_iter()
        .map(|v| v.code.clone())
        .find(|c| *c != old)
        .unwrap();
    let (old_num, old_den) = rate_in(&old);
    let (new_num, new_den) = rate_in(&new);
    assert_eq!(
        old_num, 1,
        "the approved sanitary toilet counts where it is"
    );

    // The same registry again writes nothing; the site moved writes one.
    assert_eq!(
        server
            .storage
            .import_sites(&registry, &fieldbook_tests::operator(), 1)
            .unwrap(),
        0
    );
    let mut moved = toilet.clone();
    moved.village_code = new.clone();
    moved.name = format!("{}（迁）", toilet.name);
    assert_eq!(
        server
            .storage
            .import_sites(&[moved], &fieldbook_tests::operator(), 2)
            .unwrap(),
        1
    );
    assert!(server.storage.verify_projections().unwrap().is_empty());

    assert_eq!(rate_in(&old), (old_num - 1, old_den - 1));
    assert_eq!(rate_in(&new), (new_num + 1, new_den + 1));
    // The phone learns of the move like any other change.
    li.sync().unwrap();
    let site = li
        .store
        .list_sites(&SiteFilter::default())
        .unwrap()
        .into_iter()
        .find(|s| s.id == toilet.id)
        .unwrap();
    assert_eq!(site.village_code, new);
    assert!(site.name.ends_with("（迁）"));
    // A new kind under a known id is refused, and nothing changes.
    let mut wrong = toilet.clone();
    wrong.kind = SiteKind::GarbagePoint;
    assert!(
        server
            .storage
            .import_sites(&[wrong], &fieldbook_tests::operator(), 3)
            .is_err()
    );
    assert_eq!(rate_in(&new), (new_num + 1, new_den + 1));
}

/// This year in China, as the server stamps approvals.
fn china_date_year() -> i32 {
    let today =
        fieldbook_core::model::workflow::china_date(fieldbook_core::store::system_clock()());
    today[..4].parse().unwrap()
}
