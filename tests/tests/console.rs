//! The review console over real HTTP: every route for every role, inside
//! and outside its areas and without a session; review steps written in
//! the console reaching a real phone store; sessions, CSRF and escaping.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::{GpsFix, InspectionStatus, Role, SiteKind};
use fieldbook_core::photo::PhotoInput;
use fieldbook_core::store::NewSite;
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::console::Console;
use fieldbook_tests::{PASSWORD, Phone, TestServer, server_state, test_png, toilet_answers};

const COUNTY: &str = "410324";
const VILLAGE: &str = "410324101201";
const OTHER_COUNTY: &str = "410325";
const VILLAGE_TOWNSHIP: &str = "410324101";

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &[COUNTY]);
    s.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    s.add_user("zhao.lei", Role::Supervisor, &[OTHER_COUNTY]);
    s.add_user("zhou.min", Role::CountyOffice, &[COUNTY]);
    s.add_user("root", Role::Admin, &[COUNTY]);
    s
}

/// A submitted household-toilet inspection with one real photo, synced:
/// its id and the photo's hash.
fn submitted(p: &mut Phone, site_name: &str, note: &str) -> (String, String) {
    let site = p
        .store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: site_name.into(),
            village_code: VILLAGE.into(),
            location: Some(fieldbook_core::model::GeoPoint {
                lat: 33.80,
                lon: 111.60,
            }),
            attributes: Default::default(),
        })
        .unwrap();
    let id = p.store.start_inspection(&site).unwrap();
    p.store.set_answers(&id, &toilet_answers(true)).unwrap();
    let mut hashes = [7, 8].map(|seed| {
        p.store
            .add_photo(
                &id,
                PhotoInput::Bytes(&test_png(640, 480, seed)),
                Some("photos"),
            )
            .unwrap()
            .hash
    });
    let hash = std::mem::take(&mut hashes[0]);
    p.store
        .set_location(
            &id,
            GpsFix {
                lat: 33.801,
                lon: 111.601,
                accuracy_m: 9.0,
                at: 1_780_000_000_000,
                mock: false,
            },
        )
        .unwrap();
    p.store.add_note(&id, note).unwrap();
    p.store.submit(&id).unwrap();
    let s = p.sync().unwrap();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(s.photos.uploaded, 2);
    (id, hash)
}

fn status_on_phone(p: &mut Phone, id: &str) -> InspectionStatus {
    p.sync().unwrap();
    p.store.inspection_view(id).unwrap().status
}

#[test]
fn every_route_for_every_role_inside_outside_and_without_a_session() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (id, hash) = submitted(&mut li, "张家户厕", "盖板完好");
    let url = &server.url;

    // Without a session every page leads to the login, every step too,
    // and nothing changes.
    let anon = Console::new(url);
    for path in [
        "/".to_owned(),
        "/queue".into(),
        format!("/inspections/{id}"),
        format!("/console/photos/{hash}"),
        format!("/console/photos/{hash}/thumb"),
    ] {
        let r = anon.get(&path);
        assert_eq!((r.status, r.location()), (303, "/login"), "{path}");
    }
    let before = server_state(&server);
    let r = anon.post_form(&format!("/inspections/{id}/approve"), &[("csrf", "x")]);
    assert_eq!((r.status, r.location()), (303, "/login"));
    assert_eq!(server_state(&server), before);

    // (user, sees the inspection, may review it)
    let cases = [
        ("wang.fang", true, true),
        ("zhou.min", true, false),
        ("zhao.lei", false, false),
        ("root", true, false),
        ("li.wei", true, false),
    ];
    for (user, inside, reviews) in cases {
        let (c, r) = Console::login(url, user, PASSWORD);
        assert_eq!((r.status, r.location()), (303, "/"), "{user} logs in");
        let home = c.get("/");
        assert!(matches!(home.status, 200 | 303), "{user}: {home:?}");
        let queue = c.get("/queue?status=all");
        assert_eq!(queue.status, 200, "{user}");
        assert_eq!(queue.body.contains(&id), inside, "{user} lists it");
        let page = c.get(&format!("/inspections/{id}"));
        assert_eq!(page.status, if inside { 200 } else { 403 }, "{user}");
        assert_eq!(
            page.body.contains(&format!("/inspections/{id}/approve")),
            reviews,
            "{user}: the approve button shows only to who may approve"
        );
        assert_eq!(
            page.body.contains(&format!("/inspections/{id}/return")),
            reviews,
            "{user}"
        );
        for path in [
            format!("/console/photos/{hash}"),
            format!("/console/photos/{hash}/thumb"),
        ] {
            let (status, bytes) = c.get_bytes(&path);
            assert_eq!(status, if inside { 200 } else { 404 }, "{user} {path}");
            if inside {
                assert_eq!(&bytes[..2], &[0xff, 0xd8], "{user} {path}: a JPEG");
            }
        }
        let (_, full) = c.get_bytes(&format!("/console/photos/{hash}"));
        let (_, thumb) = c.get_bytes(&format!("/console/photos/{hash}/thumb"));
        if inside {
            assert!(thumb.len() < full.len(), "the thumbnail is smaller");
        }
        // A forged approval: the role's own token, posted without the
        // button. Only a supervisor of the area may; the rest get 403 and
        // nothing changes.
        if !reviews {
            let csrf = Console::csrf_of(&c.get("/queue").body);
            let before = server_state(&server);
            for step in ["approve", "return"] {
                let r = c.post_form(
                    &format!("/inspections/{id}/{step}"),
                    &[("csrf", &csrf), ("comment", "forged")],
                );
                assert_eq!(r.status, 403, "{user} {step}: {}", r.body);
            }
            assert_eq!(server_state(&server), before, "{user}");
        }
        // Out of the user's areas as a filter: refused, not widened.
        let r = c.get(&format!("/queue?area={OTHER_COUNTY}"));
        if user != "zhao.lei" {
            assert_eq!(r.status, 403, "{user}");
        }
    }
    assert_eq!(status_on_phone(&mut li, &id), InspectionStatus::Submitted);

    // A step without the page's CSRF token is refused and changes nothing.
    let (c, _) = Console::login(url, "wang.fang", PASSWORD);
    let before = server_state(&server);
    for csrf in ["", "0000", &"a".repeat(64)] {
        let r = c.post_form(&format!("/inspections/{id}/approve"), &[("csrf", csrf)]);
        assert_eq!(r.status, 403, "csrf {csrf:?}");
    }
    assert_eq!(server_state(&server), before);
    // Malformed ids, steps and filters answer clearly.
    assert_eq!(c.get("/inspections/not-a-uuid").status, 404);
    assert_eq!(
        c.get(&format!("/inspections/{}", uuid::Uuid::now_v7()))
            .status,
        404
    );
    assert_eq!(c.step(&id, "delete", "").status, 404);
    assert_eq!(
        c.step(&id, "return", "  ").status,
        400,
        "a reason is required"
    );
    for bad in [
        "status=draft",
        "status=nonsense",
        "kind=castle",
        "from=2026-13-01",
        "area=41x",
        "after=zzz",
    ] {
        assert_eq!(c.get(&format!("/queue?{bad}")).status, 400, "{bad}");
    }
    assert_eq!(server_state(&server), before);
}

#[test]
fn a_return_and_an_approval_in_the_console_reach_the_phone() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (id, _) = submitted(&mut li, "张家户厕", "盖板完好");
    let (c, _) = Console::login(&server.url, "wang.fang", PASSWORD);
    let queue = c.get("/queue");
    assert!(queue.body.contains(&id), "waiting in the queue");
    // Rule outcomes say which is the good one: a sanitary toilet passes,
    // and so does the adverse rule "problem toilet" not holding.
    let page = c.get(&format!("/inspections/{id}")).body;
    assert!(
        page.contains("<li class=\"pass\">达标 · 卫生厕所：是</li>"),
        "{page}"
    );
    assert!(page.contains("<li class=\"pass\">达标 · 问题厕所：否</li>"));
    assert!(page.contains("与登记位置相距"), "the distance to the site");
    // Answers under the checklist's parts, in template order.
    let parts: Vec<usize> = ["户厕", "化粪池与管道", "粪污处理", "管护与满意度"]
        .iter()
        .map(|p| {
            page.find(&format!(
                "<tr class=\"section\"><th colspan=\"2\">{p}</th></tr>"
            ))
            .unwrap_or_else(|| panic!("section {p}"))
        })
        .collect();
    assert!(parts.windows(2).all(|w| w[0] < w[1]), "{parts:?}");

    // Filtering by township, then by one of its villages.
    let by_township = c.get(&format!("/queue?area={}", &VILLAGE[..9]));
    assert!(by_township.body.contains(&id));
    assert!(
        by_township
            .body
            .contains(&format!("<option value=\"{VILLAGE}\"")),
        "the township's villages are offered"
    );
    assert!(c.get(&format!("/queue?area={VILLAGE}")).body.contains(&id));
    assert!(!c.get("/queue?area=410324101202").body.contains(&id));
    let r = c.step(&id, "comment", "照片清楚");
    assert_eq!(
        (r.status, r.location()),
        (303, &*format!("/inspections/{id}?"))
    );
    let r = c.step(&id, "return", "缺少化粪池照片");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(status_on_phone(&mut li, &id), InspectionStatus::Returned);
    let view = li.store.inspection_view(&id).unwrap();
    let reasons: Vec<_> = view
        .timeline
        .iter()
        .filter_map(|t| t.comment.clone())
        .collect();
    assert!(
        reasons.contains(&"缺少化粪池照片".to_owned()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"照片清楚".to_owned()), "{reasons:?}");

    // Approving a returned inspection is not offered, and refused.
    let page = c.get(&format!("/inspections/{id}"));
    assert!(!page.body.contains("/approve\""), "no approve button now");
    assert_eq!(c.step(&id, "approve", "").status, 403);

    li.store.add_note(&id, "已补拍").unwrap();
    li.store.submit(&id).unwrap();
    li.sync().unwrap();
    let r = c.step(&id, "approve", "");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(status_on_phone(&mut li, &id), InspectionStatus::Approved);
    let view = li.store.inspection_view(&id).unwrap();
    assert_eq!(view.revision, 2);
    // The console's changes are in the log under its own device and actor.
    let audit = server
        .storage
        .audit_log(&fieldbook_server::storage::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|l| l.entry.action == "console_approve" && l.entry.user == "wang.fang"),
        "audited"
    );
    assert!(server.storage.verify_projections().unwrap().is_empty());
}

#[test]
fn text_from_phones_is_shown_as_text() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let name = "<script>alert('site')</script>";
    let note = "=HYPERLINK(\"http://evil.example\",\"点我\") <img src=x onerror=alert(1)>";
    let (id, _) = submitted(&mut li, name, note);
    let (c, _) = Console::login(&server.url, "wang.fang", PASSWORD);
    for path in ["/queue".to_owned(), format!("/inspections/{id}")] {
        let page = c.get(&path);
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body.contains("&#60;script&#62;alert(&#39;site&#39;)"),
            "{path}: shown, escaped"
        );
        let csp = &page.headers["content-security-policy"];
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
    }
    assert!(
        c.get(&format!("/inspections/{id}"))
            .body
            .contains("=HYPERLINK(")
    );
}

#[test]
fn sessions_are_cookies_that_expire_and_end() {
    let server = server();
    let url = &server.url;
    let (c, r) = Console::login(url, "wang.fang", PASSWORD);
    let cookie = &r.headers["set-cookie"];
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert_eq!(c.get("/queue").status, 200);

    let (_, r) = Console::login(url, "wang.fang", "wrong password!");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong user name or password"));
    assert!(!r.headers.contains_key("set-cookie"));

    // A phone's bearer token is not a console cookie.
    let token = fieldbook_tests::token(&server, "wang.fang", "desk");
    let mut phone_cookie = Console::new(url);
    phone_cookie.cookie = Some(format!("fb_session={token}"));
    assert_eq!(phone_cookie.get("/queue").status, 303);

    // Idle for longer than the idle limit: back to the login.
    let (idle, _) = Console::login(url, "wang.fang", PASSWORD);
    server.clock_offset.store(
        fieldbook_server::http::console::session::IDLE_MS + 60_000,
        std::sync::atomic::Ordering::SeqCst,
    );
    assert_eq!(idle.get("/queue").location(), "/login");
    server
        .clock_offset
        .store(0, std::sync::atomic::Ordering::SeqCst);

    // Logging out revokes the session's device.
    let (c, _) = Console::login(url, "wang.fang", PASSWORD);
    let csrf = Console::csrf_of(&c.get("/queue").body);
    let r = c.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!((r.status, r.location()), (303, "/login"));
    assert_eq!(c.get("/queue").location(), "/login");
}

#[test]
fn coverage_and_downloads_by_role_and_area() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (ins, _) = submitted(&mut li, "张家户厕", "盖板完好");
    let url = &server.url;
    // The map: one site, not inspected until approved, passed after, an
    // overdue finding above all.
    let (office, _) = Console::login(url, "zhou.min", PASSWORD);
    let township = format!("/coverage?area={VILLAGE_TOWNSHIP}");
    let dots = |c: &Console| {
        let page = c.get(&township).body;
        ["not_inspected", "passed", "failed", "finding", "overdue"]
            .into_iter()
            .filter(|s| page.contains(&format!("class=\"dot {s}\"")))
            .collect::<Vec<_>>()
    };
    assert_eq!(dots(&office), ["not_inspected"]);
    assert!(
        office.get(&township).body.contains(">竹园村</text>"),
        "the village named"
    );
    let (sup, _) = Console::login(url, "wang.fang", PASSWORD);
    assert_eq!(sup.step(&ins, "approve", "").status, 303);
    assert_eq!(dots(&office), ["passed"]);
    let csrf = Console::csrf_of(&sup.get(&format!("/inspections/{ins}")).body);
    let r = sup.post_form(
        &format!("/inspections/{ins}/finding"),
        &[
            ("csrf", &csrf),
            ("title", "渗漏"),
            ("deadline", "2020-01-01"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(dots(&office), ["overdue"]);
    let anon = Console::new(url);
    for path in ["/coverage", "/console/exports/coverage?format=csv"] {
        assert_eq!(anon.get(path).location(), "/login", "{path}");
    }
    // (user, may read coverage and download)
    for (user, may) in [
        ("zhou.min", true),
        ("root", true),
        ("wang.fang", false),
        ("li.wei", false),
    ] {
        let (c, _) = Console::login(url, user, PASSWORD);
        let page = c.get("/coverage");
        assert_eq!(page.status, if may { 200 } else { 403 }, "{user}");
        if user == "zhou.min" {
            assert_eq!(
                c.get("/").location(),
                "/coverage",
                "{user} lands on coverage"
            );
        }
        for path in [
            format!("/console/exports/coverage?format=csv&area={COUNTY}"),
            format!("/console/exports/coverage?format=geojson&area={COUNTY}"),
            format!("/console/exports/records?format=csv&area={COUNTY}"),
            format!("/console/exports/findings?format=xlsx&area={COUNTY}"),
        ] {
            let (status, body) = c.get_bytes(&path);
            assert_eq!(status, if may { 200 } else { 403 }, "{user} {path}");
            if may {
                assert!(!body.is_empty(), "{user} {path}");
            }
        }
        if may {
            assert!(page.body.contains("农村生活污水治理率"), "{user}");
            assert!(
                page.body
                    .contains(&format!("/coverage?area={VILLAGE_TOWNSHIP}"))
            );
            // Outside the user's areas, and not a code: refused.
            assert_eq!(c.get(&format!("/coverage?area={OTHER_COUNTY}")).status, 403);
            assert_eq!(c.get("/coverage?area=41x").status, 400);
            assert_eq!(c.get("/coverage?year=1900").status, 400);
            assert_eq!(c.get("/coverage?as_of=2026-02-30").status, 400);
            let r = c.get(&format!("/coverage?area={COUNTY}&as_of=2026-06-30"));
            assert!(r.body.contains("截至 2026-06-30"), "as-of period shown");
            let (status, _) = c.get_bytes(&format!(
                "/console/exports/records?format=csv&area={OTHER_COUNTY}"
            ));
            assert_eq!(status, 403);
        }
    }
}

#[test]
fn a_finding_raised_in_the_console_is_followed_to_closure_with_the_phone() {
    use fieldbook_core::model::{EventKind, FindingStatus};
    use fieldbook_core::store::FindingAction;
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (ins, _) = submitted(&mut li, "张家户厕", "化粪池渗漏");
    let (c, _) = Console::login(&server.url, "wang.fang", PASSWORD);
    let page = c.get(&format!("/inspections/{ins}"));
    assert!(page.body.contains(&format!("/inspections/{ins}/finding")));
    let csrf = Console::csrf_of(&page.body);
    // A title is required; a deadline must be a date.
    let before = server_state(&server);
    for (title, deadline) in [("  ", ""), ("渗漏", "next week")] {
        let r = c.post_form(
            &format!("/inspections/{ins}/finding"),
            &[("csrf", &csrf), ("title", title), ("deadline", deadline)],
        );
        assert_eq!(r.status, 400, "{title:?} {deadline:?}");
    }
    assert_eq!(server_state(&server), before);
    let r = c.post_form(
        &format!("/inspections/{ins}/finding"),
        &[
            ("csrf", &csrf),
            ("title", "化粪池渗漏"),
            ("description", "盖板破损，粪液外渗"),
            ("responsible", "赤土店镇竹园村村委会"),
            ("deadline", "2020-01-31"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location().trim_start_matches("/findings/").to_owned();
    li.sync().unwrap();
    let v = li.store.finding_view(&id).unwrap();
    assert_eq!(
        (v.status, v.inspection_id.as_deref()),
        (FindingStatus::Found, Some(&*ins))
    );
    assert!(
        v.overdue,
        "a deadline in the past is overdue on the phone too"
    );

    // The findings export carries the responsible unit, escalation and
    // the days overdue.
    let (office, _) = Console::login(&server.url, "zhou.min", PASSWORD);
    let (status, csv) = office.get_bytes(&format!(
        "/console/exports/findings?format=csv&area={COUNTY}"
    ));
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    let mut rdr = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let head = rdr.headers().unwrap().clone();
    let row = rdr.records().next().unwrap().unwrap();
    let col = |name: &str| &row[head.iter().position(|h| h == name).unwrap()];
    assert_eq!(col("responsible"), "赤土店镇竹园村村委会");
    assert_eq!(col("escalated"), "false");
    assert!(
        col("days_overdue").parse::<i64>().unwrap() > 2000,
        "since 2020-01-31"
    );
    // The board lists it as overdue; a supervisor of another county and
    // the county office (read-only) get no steps.
    let board = c.get("/findings?overdue=1");
    assert!(board.body.contains(&id) && board.body.contains("逾期"));
    let (other, _) = Console::login(&server.url, "zhao.lei", PASSWORD);
    assert_eq!(other.get(&format!("/findings/{id}")).status, 403);
    assert!(!other.get("/findings").body.contains(&id));
    let office_page = office.get(&format!("/findings/{id}"));
    assert_eq!(office_page.status, 200);
    assert!(!office_page.body.contains(&format!("/findings/{id}/close")));
    let before = server_state(&server);
    let r = office.post_form(
        &format!("/findings/{id}/assign"),
        &[
            ("csrf", &Console::csrf_of(&office_page.body)),
            ("responsible", "x"),
            ("deadline", "2030-01-01"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(server_state(&server), before);

    // Assign (交办) and escalate (督办) in the console.
    let step = |step: &str, fields: &[(&str, &str)]| {
        let csrf = Console::csrf_of(&c.get(&format!("/findings/{id}")).body);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        c.post_form(&format!("/findings/{id}/{step}"), &all)
    };
    assert_eq!(step("assign", &[("responsible", "村委会")]).status, 400);
    let r = step(
        "assign",
        &[("responsible", "竹园村村委会"), ("deadline", "2030-06-30")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(step("escalate", &[("comment", "督办")]).status, 303);
    assert_eq!(
        step("close", &[]).status,
        403,
        "not before closure is requested"
    );
    li.sync().unwrap();
    let v = li.store.finding_view(&id).unwrap();
    assert_eq!(v.status, FindingStatus::Assigned);
    assert!(v.escalated && !v.overdue);
    assert_eq!(v.responsible.as_deref(), Some("竹园村村委会"));

    // The inspector rectifies and asks for closure on the phone.
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
    assert!(c.get(&format!("/findings/{id}")).body.contains("申请销号"));
    let r = step("close", &[("comment", "已核查")]);
    assert_eq!(r.status, 303, "{}", r.body);
    li.sync().unwrap();
    assert_eq!(
        li.store.finding_view(&id).unwrap().status,
        FindingStatus::Closed
    );
    assert!(!c.get("/findings?overdue=1").body.contains(&id));
    assert!(server.storage.verify_projections().unwrap().is_empty());
}

#[test]
fn administrators_manage_users_devices_the_registry_and_read_the_audit_log() {
    let server = server();
    server.add_user("luanchuan.admin", Role::Admin, &[COUNTY]);
    let url = &server.url;
    // Other roles have none of it.
    for user in ["wang.fang", "zhou.min", "li.wei"] {
        let (c, _) = Console::login(url, user, PASSWORD);
        for path in [
            "/admin/users",
            "/admin/devices",
            "/admin/registry",
            "/admin/audit",
        ] {
            assert_eq!(c.get(path).status, 403, "{user} {path}");
        }
        let csrf = Console::csrf_of(&c.get("/queue").body);
        let r = c.post_form(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("name", "x.y"),
                ("role", "admin"),
                ("areas", "*"),
                ("password", "long enough pw"),
            ],
        );
        assert_eq!(r.status, 403, "{user}");
    }
    let (a, _) = Console::login(url, "luanchuan.admin", PASSWORD);
    let page = a.get("/admin/users");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("wang.fang") && !page.body.contains("zhao.lei"),
        "only users inside the admin's areas"
    );
    let csrf = Console::csrf_of(&page.body);
    let post = |path: &str, fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        a.post_form(path, &all)
    };
    // Add a supervisor; outside the admin's areas is refused.
    let r = post(
        "/admin/users",
        &[
            ("name", "sun.li"),
            ("role", "supervisor"),
            ("areas", OTHER_COUNTY),
            ("password", "sun li password"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = post(
        "/admin/users",
        &[
            ("name", "sun.li"),
            ("role", "supervisor"),
            ("areas", "410324101"),
            ("password", "sun li password"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let (sun, r) = Console::login(url, "sun.li", "sun li password");
    assert_eq!(r.status, 303);
    assert_eq!(sun.get("/queue").status, 200);
    // Role and areas change at once; a password reset ends the sessions.
    assert_eq!(
        post(
            "/admin/users/sun.li/role",
            &[("role", "county_office"), ("areas", COUNTY)]
        )
        .status,
        303
    );
    assert_eq!(sun.get("/coverage").status, 200, "now a county office");
    assert_eq!(
        post("/admin/users/sun.li/password", &[("password", "short")]).status,
        400
    );
    assert_eq!(
        post(
            "/admin/users/sun.li/password",
            &[("password", "a new password")]
        )
        .status,
        303
    );
    assert_eq!(sun.get("/queue").location(), "/login");
    assert_eq!(
        Console::login(url, "sun.li", "sun li password").1.status,
        401
    );
    // Disabled: cannot log in; enabled again: can.
    assert_eq!(post("/admin/users/sun.li/disable", &[]).status, 303);
    assert_eq!(
        Console::login(url, "sun.li", "a new password").1.status,
        403
    );
    assert_eq!(post("/admin/users/sun.li/enable", &[]).status, 303);
    let (sun, _) = Console::login(url, "sun.li", "a new password");
    // Devices: the web login is listed and can be revoked.
    let devices = a.get("/admin/devices").body;
    let web_device = devices
        .split("/admin/devices/")
        .skip(1)
        .map(|s| s.split('/').next().unwrap_or(""))
        .find(|d| d.starts_with("web-"))
        .unwrap()
        .to_owned();
    assert!(devices.contains("sun.li"));
    assert_eq!(
        post(&format!("/admin/devices/{web_device}/revoke"), &[]).status,
        303
    );
    let _ = sun;

    // A registry with one bad row: every problem by line, nothing written.
    let before = server_state(&server);
    let bad = format!(
        "kind,name,village_code\nhousehold_toilet,王家户厕,{VILLAGE}\ncastle,城堡,{VILLAGE}\nhousehold_toilet,李家户厕,99\n"
    );
    let upload = |csv: &str| {
        let token = Console::csrf_of(&a.get("/admin/registry").body);
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!("{url}/admin/registry"))
            .header("cookie", a.cookie.as_deref().unwrap())
            .header("content-type", "text/csv")
            .header("x-csrf-token", &token)
            .send(csv.as_bytes())
            .unwrap()
    };
    let r = upload(&bad);
    assert_eq!(r.status().as_u16(), 400);
    let body = r.into_body().read_to_string().unwrap();
    assert!(body.contains("line 3") && body.contains("line 4"), "{body}");
    assert!(body.contains("未写入任何内容"));
    assert_eq!(server_state(&server), before, "nothing written");
    let good = format!("kind,name,village_code\nhousehold_toilet,王家户厕,{VILLAGE}\n");
    let r = upload(&good);
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.into_body().read_to_string().unwrap().contains("导入完成"));
    assert_ne!(server_state(&server), before);

    // The audit log, filtered by user and action and date.
    let log = a
        .get("/admin/audit?user=luanchuan.admin&action=user_created")
        .body;
    assert!(log.contains("sun.li (supervisor)"), "{log}");
    assert!(!log.contains("<td>sites_imported</td>"));
    let log = a.get("/admin/audit?action=sites_imported").body;
    assert!(log.contains("1 rows, 1 written"));
    assert!(
        !a.get("/admin/audit?to=2001-01-01")
            .body
            .contains("<td>sites_imported</td>")
    );
    assert_eq!(a.get("/admin/audit?from=someday").status, 400);
}

#[test]
fn maps_draw_on_a_configured_tile_server_and_only_then_allow_its_origin() {
    // Without tiles: no image, no other origin.
    let plain = server();
    let mut li = Phone::login(&plain, "li.wei", "phone-li");
    let (ins, _) = submitted(&mut li, "张家户厕", "盖板完好");
    let (c, _) = Console::login(&plain.url, "wang.fang", PASSWORD);
    let page = c.get(&format!("/inspections/{ins}"));
    assert!(!page.body.contains("<image"));
    assert!(page.headers["content-security-policy"].contains("img-src 'self';"));

    let tiled = TestServer::start_tuned(Default::default(), |st| {
        st.tiles = Some(std::sync::Arc::new(
            fieldbook_server::http::console::map::TileSource::parse(
                "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png",
            )
            .unwrap(),
        ));
    });
    tiled.add_user("li.wei", Role::Inspector, &[COUNTY]);
    tiled.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    tiled.add_user("zhou.min", Role::CountyOffice, &[COUNTY]);
    let mut li = Phone::login(&tiled, "li.wei", "phone-li");
    let (ins, _) = submitted(&mut li, "张家户厕", "盖板完好");
    let (c, _) = Console::login(&tiled.url, "wang.fang", PASSWORD);
    let page = c.get(&format!("/inspections/{ins}"));
    assert!(
        page.body
            .contains("<image href=\"http://127.0.0.1:9/tiles/"),
        "tiles under the inspection's map"
    );
    assert!(page.headers["content-security-policy"].contains("img-src 'self' http://127.0.0.1:9;"));
    let (office, _) = Console::login(&tiled.url, "zhou.min", PASSWORD);
    let cov = office.get(&format!("/coverage?area={VILLAGE_TOWNSHIP}"));
    assert!(
        cov.body.contains("<image href=\"http://127.0.0.1:9/tiles/"),
        "and under the sites map"
    );
}
