//! The review console in a real headless Chromium (Debian's `chromium`,
//! driven by npm `playwright-core` from `tests/browser/`): the server and
//! the inspector's phone are real, the browser does what a supervisor does,
//! and the test checks the result on the server and on the phone.
//!
//! Needs `chromium` and `tests/browser/node_modules` (`scripts/deps.sh
//! --tests` installs both). Without them the test fails and says so: it
//! never passes without having run the browser.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::{InspectionStatus, Role, SiteKind};
use fieldbook_core::store::NewSite;
use fieldbook_tests::{PASSWORD, Phone, TestServer, photo_ref, toilet_answers};
use std::path::{Path, PathBuf};
use std::process::Command;

const COUNTY: &str = "410324";
const VILLAGE: &str = "410324101201";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Where screenshots go: `target/browser-shots/`.
fn shots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/browser-shots")
        .to_path_buf()
}

/// Runs one scenario of `tests/browser/console.mjs`; its standard output.
fn scenario(server: &TestServer, name: &str, args: serde_json::Value) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run scripts/deps.sh --tests (or set CHROMIUM)"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/deps.sh --tests (npm ci in tests/browser)"
    );
    let out = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .arg(name)
        .env("FB_URL", &server.url)
        .env("FB_PASSWORD", PASSWORD)
        .env("FB_SHOTS", shots())
        .env("FB_ARGS", args.to_string())
        .env("CHROMIUM", chromium)
        .output()
        .expect("node runs (scripts/deps.sh --tests installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser scenario {name} failed:\n{stdout}\n{stderr}"
    );
    eprint!("{stdout}");
    stdout
}

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &[COUNTY]);
    s.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    s.add_user("zhao.lei", Role::Supervisor, &["410325"]);
    s.add_user("zhou.min", Role::CountyOffice, &[COUNTY]);
    s.add_user("root", Role::Admin, &[COUNTY]);
    s
}

/// A submitted household-toilet inspection of a new site named `name`.
fn submitted(p: &mut Phone, name: &str, note: &str) -> String {
    let site = p
        .store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: name.into(),
            village_code: VILLAGE.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    let id = p.store.start_inspection(&site).unwrap();
    p.store.set_answers(&id, &toilet_answers(true)).unwrap();
    p.store.add_photo_ref(&id, photo_ref(1, "photos")).unwrap();
    p.store.add_photo_ref(&id, photo_ref(2, "photos")).unwrap();
    if !note.is_empty() {
        p.store.add_note(&id, note).unwrap();
    }
    p.store.submit(&id).unwrap();
    id
}

fn status(p: &mut Phone, id: &str) -> InspectionStatus {
    let s = p.sync().unwrap();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    p.store.inspection_view(id).unwrap().status
}

#[test]
fn a_supervisor_reviews_in_the_browser_and_the_phone_follows() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let first = submitted(&mut li, "张家户厕", "盖板完好");
    let second = submitted(&mut li, "李家户厕", "");
    li.sync().unwrap();

    scenario(
        &server,
        "menus",
        serde_json::json!({
            "id": first,
            "users": [
                {"name": "wang.fang", "menu": ["/queue", "/findings"], "page": 200, "approve": true},
                {"name": "zhou.min", "menu": ["/coverage", "/queue", "/findings"], "page": 200, "approve": false},
                {"name": "root", "menu": ["/admin/users", "/admin/devices", "/admin/registry", "/admin/audit", "/coverage"], "page": 200, "approve": false},
                {"name": "zhao.lei", "menu": ["/queue", "/findings"], "page": 403, "approve": false},
            ]
        }),
    );
    assert_eq!(status(&mut li, &first), InspectionStatus::Submitted);

    scenario(
        &server,
        "return",
        serde_json::json!({"id": first, "other": second, "comment": "照片清楚", "reason": "缺少化粪池照片"}),
    );
    assert_eq!(status(&mut li, &first), InspectionStatus::Returned);
    assert_eq!(status(&mut li, &second), InspectionStatus::Submitted);
    let comments: Vec<String> = li
        .store
        .inspection_view(&first)
        .unwrap()
        .timeline
        .into_iter()
        .filter_map(|t| t.comment)
        .collect();
    assert_eq!(comments, ["照片清楚", "缺少化粪池照片"]);

    // The inspector fixes it on the phone and submits again.
    li.store.add_note(&first, "已补拍化粪池").unwrap();
    li.store.submit(&first).unwrap();
    li.sync().unwrap();
    scenario(&server, "approve", serde_json::json!({"id": first}));
    assert_eq!(status(&mut li, &first), InspectionStatus::Approved);
    assert_eq!(li.store.inspection_view(&first).unwrap().revision, 2);
}

#[test]
fn three_inspections_reviewed_with_the_keyboard_alone() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let ids: Vec<String> = (0..4)
        .map(|i| submitted(&mut li, &format!("户厕{i}"), ""))
        .collect();
    li.sync().unwrap();
    let out = scenario(&server, "keyboard", serde_json::json!({}));
    let line = out.lines().find(|l| l.starts_with("approved ")).unwrap();
    let seen: Vec<String> = serde_json::from_str(&line["approved ".len()..]).unwrap();
    // The queue is oldest first: the first three submitted, in order.
    assert_eq!(seen, ids[..3]);
    for id in &ids[..3] {
        assert_eq!(status(&mut li, id), InspectionStatus::Approved);
    }
    assert_eq!(status(&mut li, &ids[3]), InspectionStatus::Submitted);
}

#[test]
fn script_from_a_phone_is_shown_as_text_in_the_browser() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let name = "<script>alert('site')</script><img src=x onerror=alert(2)>";
    let note = "=HYPERLINK(\"http://evil.example\",\"点我\")<script>alert(3)</script>";
    let id = submitted(&mut li, name, note);
    li.sync().unwrap();
    scenario(
        &server,
        "escaping",
        serde_json::json!({"id": id, "name": name, "note": note}),
    );
}

/// Every sheet of an XLSX file as JSON values, read by openpyxl.
fn xlsx_values(path: &Path) -> serde_json::Value {
    let script = "import json, sys, openpyxl\n\
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)\n\
print(json.dumps({ws.title: [[c for c in row] for row in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, default=str))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs (scripts/deps.sh --tests installs openpyxl)");
    assert!(
        out.status.success(),
        "openpyxl cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_county_office_drills_down_and_downloads_what_the_export_writes() {
    use fieldbook_core::model::Divisions;
    use fieldbook_core::model::indicator::{Indicators, Period};
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let ids: Vec<String> = (0..3)
        .map(|i| submitted(&mut li, &format!("户厕{i}"), ""))
        .collect();
    li.sync().unwrap();
    let mut desk = Phone::login(&server, "wang.fang", "desk");
    desk.sync().unwrap();
    desk.store.approve(&ids[0], None).unwrap();
    desk.store.approve(&ids[1], None).unwrap();
    desk.sync().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let downloaded = dir.path().join("console.xlsx");
    let township = &VILLAGE[..9];
    let out = scenario(
        &server,
        "county",
        serde_json::json!({"township": township, "out": downloaded}),
    );
    let line = out.lines().find(|l| l.starts_with("downloaded ")).unwrap();
    let year = fieldbook_core::model::workflow::china_date(fieldbook_core::store::system_clock()())
        [..4]
        .to_owned();
    assert!(
        line.contains(&format!("coverage-{township}-{year}-12-31.xlsx")),
        "the file name says area and period: {line}"
    );

    // What `fieldbook export coverage --area TOWNSHIP --year YEAR --format xlsx` writes.
    let expected = dir.path().join("export.xlsx");
    let rows = fieldbook_server::coverage::coverage_rows(
        server.storage.as_ref(),
        Indicators::builtin(),
        Divisions::luoyang(),
        township,
        Period::year(year.parse().unwrap()),
        &mut |_| {},
    )
    .unwrap();
    fieldbook_server::export::write_coverage_xlsx(
        rows.into_iter(),
        Indicators::builtin(),
        std::fs::File::create(&expected).unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let (got, want) = (xlsx_values(&downloaded), xlsx_values(&expected));
    assert_eq!(got, want);
    assert!(
        got.to_string().contains("410324101"),
        "the township's rows are there"
    );
}

#[test]
fn a_finding_is_raised_assigned_and_escalated_in_the_browser_and_closed_after_the_phone_asks() {
    use fieldbook_core::model::{EventKind, FindingStatus};
    use fieldbook_core::store::FindingAction;
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let ins = submitted(&mut li, "张家户厕", "化粪池渗漏");
    li.sync().unwrap();
    let out = scenario(
        &server,
        "finding",
        serde_json::json!({"id": ins, "title": "化粪池渗漏", "responsible": "竹园村村委会"}),
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("finding "))
        .unwrap()
        .to_owned();
    li.sync().unwrap();
    let v = li.store.finding_view(&id).unwrap();
    assert_eq!(v.status, FindingStatus::Assigned);
    assert!(v.escalated);
    assert_eq!(v.responsible.as_deref(), Some("竹园村村委会"));
    for kind in [EventKind::Rectifying, EventKind::ClosureRequested] {
        li.store
            .advance_finding(
                &id,
                FindingAction {
                    kind,
                    comment: None,
                    responsible: None,
                    deadline: None,
                },
            )
            .unwrap();
    }
    li.sync().unwrap();
    scenario(&server, "close", serde_json::json!({"id": id}));
    li.sync().unwrap();
    assert_eq!(
        li.store.finding_view(&id).unwrap().status,
        FindingStatus::Closed
    );
}

#[test]
fn an_administrator_adds_a_user_and_a_bad_registry_is_refused_whole() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("registry.csv");
    std::fs::write(
        &bad,
        format!(
            "kind,name,village_code\nhousehold_toilet,王家户厕,{VILLAGE}\ncastle,<b>城堡</b>,{VILLAGE}\nhousehold_toilet,李家户厕,99\n"
        ),
    )
    .unwrap();
    use fieldbook_server::storage::prelude::*;
    let records = || {
        let c = server.storage.counts().unwrap();
        (c.documents, c.log_entries)
    };
    let before = records();
    let out = scenario(&server, "admin", serde_json::json!({"bad": bad}));
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("problems "))
        .unwrap();
    let problems: Vec<String> = serde_json::from_str(line).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("line 3") && problems[1].starts_with("line 4"));
    assert_eq!(records(), before, "no site written");
    let u = server.storage.user("sun.li").unwrap().unwrap();
    assert_eq!(
        (u.role, u.areas),
        (Role::Supervisor, vec!["410324101".to_owned()])
    );
}
