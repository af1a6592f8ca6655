//! A logged-in client (or a stranger) that breaks the server's own rules
//! on purpose: administrators outside their areas, password guessing,
//! formula text in exports, photo uploads, disabled accounts, wire limits,
//! the audit log, idle connections and the byte budgets. Each is refused
//! with a clear error, stores nothing, and leaves the server serving
//! everyone else. The record-level attacks are in `hostile.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::Role;
use fieldbook_core::store::{NewFinding, Store};
use fieldbook_core::sync::TransportError;
use fieldbook_core::sync::http::{LoginRequest, SYNC_CONTENT_TYPE};
use fieldbook_core::sync::wire::SyncRequest;
use fieldbook_server::storage::AuditQuery;
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{PASSWORD, Phone, TestServer, raw_get, raw_post, test_png, token};

use fieldbook_tests::hostile::*;

/// An administrator of county A stays inside county A.
#[test]
fn a_scoped_admin_stays_inside_its_areas() {
    let server = server();
    let b = county_b(&server);
    let a = token(&server, "admin.a", "admin-a");
    let user = |areas: &str, role: &str| {
        format!(
            r#"{{"name":"n{}","password":"a long password","role":"{role}","areas":{areas}}}"#,
            new_id().replace('-', "")
        )
    };
    for (body, want) in [
        (user(r#"["4"]"#, "county_office"), 403),
        (user(r#"["41"]"#, "admin"), 403),
        (user(r#"["410325"]"#, "inspector"), 403),
        (user(r#"["*"]"#, "admin"), 403),
        (user(r#"["410324101"]"#, "inspector"), 201),
    ] {
        let (s, text) = raw_post(
            &server.url,
            "/v1/admin/users",
            Some(&a),
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(s, want, "{body}: {}", String::from_utf8_lossy(&text));
    }
    // Importing into B, or moving B's site into A, is refused whole.
    let before = state(&server);
    for csv in [
        format!("kind,name,village_code\ngarbage_point,村口,{VILLAGE_B}\n"),
        format!(
            "id,kind,name,village_code\n{},household_toilet,张家户厕,{VILLAGE_A}\n",
            b.site
        ),
    ] {
        let (s, text) = raw_post(
            &server.url,
            "/v1/admin/sites",
            Some(&a),
            "text/csv",
            csv.as_bytes(),
        );
        assert_eq!(s, 403, "{}", String::from_utf8_lossy(&text));
    }
    assert_eq!(state(&server), before);
    // It sees and manages its own users only.
    let (_, body) = raw_get(&server.url, "/v1/admin/users", Some(&a));
    let users: Vec<fieldbook_server::http::UserInfo> = serde_json::from_slice(&body).unwrap();
    assert!(
        users
            .iter()
            .all(|u| u.areas.iter().all(|x| x.starts_with(COUNTY_A))),
        "{users:?}"
    );
    assert!(users.iter().any(|u| u.name == "li.wei"));
    let (_, body) = raw_get(&server.url, "/v1/admin/devices", Some(&a));
    let devices: Vec<fieldbook_server::http::DeviceInfo> = serde_json::from_slice(&body).unwrap();
    assert!(
        !devices
            .iter()
            .any(|d| d.user == "zhao.lei" || d.user == "root"),
        "{devices:?}"
    );
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/devices/phone-zhao/revoke",
        Some(&a),
        "application/json",
        b"",
    );
    assert_eq!(s, 403);
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/users/zhao.lei/disable",
        Some(&a),
        "application/json",
        b"",
    );
    assert_eq!(s, 403);
    let (_, body) = raw_get(&server.url, "/v1/admin/audit?limit=1000", Some(&a));
    let page: fieldbook_server::http::AuditPage = serde_json::from_slice(&body).unwrap();
    assert!(
        !page
            .entries
            .iter()
            .any(|e| e.user == "zhao.lei" || e.user == "root")
    );
    // Every refusal is on record, for the whole deployment's admin.
    let root = token(&server, "root", "root-laptop");
    let (_, body) = raw_get(&server.url, "/v1/admin/audit?limit=1000", Some(&root));
    let page: fieldbook_server::http::AuditPage = serde_json::from_slice(&body).unwrap();
    let refusals: u64 = page
        .entries
        .iter()
        .filter(|e| e.user == "admin.a" && e.action == "refused")
        .map(|e| e.count)
        .sum();
    assert!(refusals >= 8, "{refusals} refusals audited");
}

/// Failed logins: bounded fields, backoff, one audit line however many.
#[test]
fn failed_logins_are_bounded_slowed_and_counted_once() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let actor = Store::prepare(dir.path()).unwrap();
    let body = |user: &str, password: &str, device: &str| {
        serde_json::to_vec(&LoginRequest {
            username: user.into(),
            password: password.into(),
            device: device.into(),
            actor: actor.clone(),
        })
        .unwrap()
    };
    let audit_lines = || {
        let root = server.storage.audit_log(&AuditQuery {
            before: None,
            limit: 100_000,
            ..Default::default()
        });
        root.unwrap()
    };
    let lines_before = audit_lines().len();
    // A 60 KB user name is refused before anything is stored (a larger
    // body is over the JSON limit: 413).
    let (s, text) = raw_post(
        &server.url,
        "/v1/login",
        None,
        "application/json",
        &body(&"x".repeat(60_000), "pw", "d"),
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&text));
    assert_eq!(audit_lines().len(), lines_before);
    // Known and unknown names alike: five free tries, then 429.
    for name in ["li.wei", "nobody.here"] {
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let (s, _) = raw_post(
                &server.url,
                "/v1/login",
                None,
                "application/json",
                &body(name, "wrong password", "d"),
            );
            statuses.push(s);
        }
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429], "{name}");
        let failed: Vec<_> = audit_lines()
            .into_iter()
            .filter(|l| l.entry.user == name && l.entry.action == "login_failed")
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].count, 5);
    }
    // Even the right password waits out the backoff…
    let (s, _) = raw_post(
        &server.url,
        "/v1/login",
        None,
        "application/json",
        &body("li.wei", PASSWORD, "d"),
    );
    assert_eq!(s, 429);
    // …then works, and clears it.
    server
        .clock_offset
        .store(20 * 60_000, std::sync::atomic::Ordering::SeqCst);
    let (s, _) = raw_post(
        &server.url,
        "/v1/login",
        None,
        "application/json",
        &body("li.wei", PASSWORD, "d"),
    );
    assert_eq!(s, 200);
    // The audit API pages.
    let root = token(&server, "root", "root-laptop");
    let (_, body1) = raw_get(&server.url, "/v1/admin/audit?limit=2", Some(&root));
    let p1: fieldbook_server::http::AuditPage = serde_json::from_slice(&body1).unwrap();
    assert_eq!(p1.entries.len(), 2);
    let next = p1.next_before.unwrap();
    let (_, body2) = raw_get(
        &server.url,
        &format!("/v1/admin/audit?limit=2&before={next}"),
        Some(&root),
    );
    let p2: fieldbook_server::http::AuditPage = serde_json::from_slice(&body2).unwrap();
    assert!(p2.entries.iter().all(|e| e.id < next));
}

// ---- medium and low --------------------------------------------------------------

/// Text that a spreadsheet would run is written as text.
#[test]
fn formula_text_in_exports_is_neutralised() {
    let server = server();
    let root = token(&server, "root", "root-laptop");
    let csv = format!(
        "kind,name,village_code\nhousehold_toilet,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",{VILLAGE_A}\n"
    );
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/sites",
        Some(&root),
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(s, 200);
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    li.sync().unwrap();
    let site = li.store.list_sites(&Default::default()).unwrap()[0]
        .id
        .clone();
    let id = submitted(&mut li.store, &site, 5);
    li.store
        .raise_finding(NewFinding {
            inspection_id: Some(id),
            site_id: site,
            title: "+cmd|' /C calc'!A0".into(),
            description: String::new(),
            deadline: None,
        })
        .unwrap();
    li.sync().unwrap();
    let (_, records) = raw_get(
        &server.url,
        &format!("/v1/exports/records?format=csv&area={COUNTY_A}"),
        Some(&root),
    );
    let records = String::from_utf8(records).unwrap();
    assert!(records.contains("'=HYPERLINK"), "{records}");
    assert!(!records.contains(",=HYPERLINK") && !records.contains(",\"=HYPERLINK"));
    let (_, findings) = raw_get(
        &server.url,
        &format!("/v1/exports/findings?format=csv&area={COUNTY_A}"),
        Some(&root),
    );
    let findings = String::from_utf8(findings).unwrap();
    assert!(findings.contains("'+cmd"), "{findings}");
}

/// Knowing a photo's hash grants nothing.
#[test]
fn a_photo_hash_is_not_a_key() {
    let server = server();
    let mut zhao = Phone::login(&server, "zhao.lei", "phone-zhao");
    let site = field_site(&mut zhao.store, VILLAGE_B);
    let id = zhao.store.start_inspection(&site).unwrap();
    let photo = zhao
        .store
        .add_photo(
            &id,
            fieldbook_core::photo::PhotoInput::Bytes(&test_png(320, 240, 9)),
            Some("photos"),
        )
        .unwrap();
    zhao.sync().unwrap();
    // An inspector of A puts B's photo hash into their own draft.
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mine = field_site(&mut li.store, VILLAGE_A);
    let draft = li.store.start_inspection(&mine).unwrap();
    li.store.add_photo_ref(&draft, photo.clone()).unwrap();
    // The upload cannot pretend: the phone has no such file.
    li.sync().unwrap();
    assert!(
        li.download(&photo.hash).is_err(),
        "A reads B's photo by its hash"
    );
    let mut wang = Phone::login(&server, "wang.fang", "desk");
    wang.sync().unwrap();
    assert!(wang.download(&photo.hash).is_err());
    // B's own supervisor reads it, served as a JPEG that is not sniffed.
    let mut sun = Phone::login(&server, "sun.li", "desk-sun");
    sun.sync().unwrap();
    assert!(sun.download(&photo.hash).is_ok());
    let tok = token(&server, "sun.li", "desk-sun-raw");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{}/v1/photos/{}", server.url, photo.hash))
        .header("authorization", format!("Bearer {tok}"))
        .call()
        .unwrap();
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
}

fn tus(
    server: &TestServer,
    tok: &str,
    method: &str,
    hash: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = if method == "POST" {
        format!("{}/v1/photos", server.url)
    } else {
        format!("{}/v1/photos/{hash}", server.url)
    };
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {tok}"))
        .header("tus-resumable", "1.0.0");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = agent.run(req.body(body.to_vec()).unwrap()).unwrap();
    resp.status().as_u16()
}

fn create_upload(server: &TestServer, tok: &str, hash: &str, len: usize) -> u16 {
    let meta = format!(
        "blake3 {}",
        fieldbook_core::sync::tus::base64_encode(hash.as_bytes())
    );
    tus(
        server,
        tok,
        "POST",
        hash,
        &[
            ("upload-length", len.to_string()),
            ("upload-metadata", meta),
        ],
        b"",
    )
}

/// Uploads: only the roles that attach photos, only JPEGs, a quota per
/// user, and unfinished uploads expire.
#[test]
fn uploads_are_checked_bounded_and_expire() {
    let server = server();
    let office = token(&server, "zhou.min", "office");
    let li = token(&server, "li.wei", "phone-li");
    let hash = |n: u32| blake3::hash(&n.to_le_bytes()).to_hex().to_string();
    assert_eq!(create_upload(&server, &office, &hash(1), 100), 403);
    // Not a JPEG: refused at the first chunk, and nothing kept.
    let text = b"<html><script>alert(1)</script></html>".to_vec();
    let h = blake3::hash(&text).to_hex().to_string();
    assert_eq!(create_upload(&server, &li, &h, text.len()), 201);
    let s = tus(
        &server,
        &li,
        "PATCH",
        &h,
        &[
            ("content-type", "application/offset+octet-stream".into()),
            ("upload-offset", "0".into()),
        ],
        &text,
    );
    assert_eq!(s, 415);
    assert!(!server.state.photos.has(&h));
    // A quota of unfinished uploads.
    for n in 0..fieldbook_server::photo_store::UPLOADS_PER_USER_MAX as u32 {
        assert_eq!(create_upload(&server, &li, &hash(100 + n), 1000), 201);
    }
    assert_eq!(create_upload(&server, &li, &hash(99), 1000), 413);
    // Old unfinished uploads are swept when a new one is made.
    let dir = server.dir().unwrap().join("photos").join("partial");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 24 * 3600);
    for user_dir in std::fs::read_dir(&dir).unwrap() {
        for f in std::fs::read_dir(user_dir.unwrap().path()).unwrap() {
            std::fs::File::options()
                .write(true)
                .open(f.unwrap().path())
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
    assert_eq!(create_upload(&server, &li, &hash(99), 1000), 201);
}

/// Disabling a user or resetting a password revokes every token; a new
/// login replaces a device's earlier token.
#[test]
fn disabled_users_and_reset_passwords_lose_their_tokens() {
    let server = server();
    let root = token(&server, "root", "root-laptop");
    let old = token(&server, "li.wei", "phone-li");
    let new = token(&server, "li.wei", "phone-li");
    let sync = |tok: &str| {
        raw_post(
            &server.url,
            "/v1/sync",
            Some(tok),
            SYNC_CONTENT_TYPE,
            &SyncRequest {
                cursor: 0,
                page_bytes: 0,
                items: vec![],
            }
            .encode(),
        )
        .0
    };
    assert_eq!(sync(&old), 401, "a new login replaces the device's token");
    assert_eq!(sync(&new), 200);
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/users/li.wei/disable",
        Some(&root),
        "application/json",
        b"",
    );
    assert_eq!(s, 204);
    assert_eq!(sync(&new), 401);
    let dir = tempfile::tempdir().unwrap();
    let mut t = fieldbook_core::sync::http::HttpTransport::new(&server.url, None);
    let again = t.login(&LoginRequest {
        username: "li.wei".into(),
        password: PASSWORD.into(),
        device: "another-phone".into(),
        actor: Store::prepare(dir.path()).unwrap(),
    });
    assert!(
        matches!(again, Err(TransportError::Refused { status: 403, .. })),
        "{again:?}"
    );
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/users/li.wei/enable",
        Some(&root),
        "application/json",
        b"",
    );
    assert_eq!(s, 204);
    let tok = token(&server, "li.wei", "phone-li");
    let (s, _) = raw_post(
        &server.url,
        "/v1/admin/users/li.wei/password",
        Some(&root),
        "application/json",
        br#"{"password":"a brand new password"}"#,
    );
    assert_eq!(s, 204);
    assert_eq!(sync(&tok), 401);
}

/// The wire's limits answer 413 as documented; malformed envelopes 400.
#[test]
fn wire_limits_answer_as_documented() {
    let server = server();
    let tok = token(&server, "li.wei", "phone-li");
    let post = |body: &[u8]| {
        let (s, text) = raw_post(&server.url, "/v1/sync", Some(&tok), SYNC_CONTENT_TYPE, body);
        (s, String::from_utf8_lossy(&text).into_owned())
    };
    // Item count over the limit.
    let mut body = vec![0u8, 0];
    let mut n = fieldbook_core::sync::wire::REQUEST_ITEMS_MAX as u64 + 1;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            body.push(b);
            break;
        }
        body.push(b | 0x80);
    }
    let mut msg = b"FBSY\x01\x01\x00\x00".to_vec();
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&body);
    let (s, text) = post(&msg);
    assert_eq!(s, 413, "{text}");
    // A reserved byte that is not 0.
    let mut msg = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![],
    }
    .encode();
    msg[7] = 1;
    let (s, text) = post(&msg);
    assert_eq!(s, 400);
    assert!(text.contains("reserved"), "{text}");
    // A deflated body that inflates past its declared length.
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &[0u8; 4096]).unwrap();
    let deflated = enc.finish().unwrap();
    let mut msg = b"FBSY\x01\x01\x01\x00".to_vec();
    msg.extend_from_slice(&10u32.to_le_bytes());
    msg.extend_from_slice(&deflated);
    let (s, text) = post(&msg);
    assert_eq!(s, 400);
    assert!(
        text.contains("inflates to more than its declared 10 bytes"),
        "{text}"
    );
    // A message over the limit by its declared length.
    let (s, text) = fieldbook_tests::post_declaring_length(
        &server.url,
        "/v1/sync",
        Some(&tok),
        SYNC_CONTENT_TYPE,
        fieldbook_core::sync::wire::MESSAGE_BYTES_MAX + 1,
    );
    assert_eq!(s, 413, "{text}");
}

/// Refusals are in the audit log, with their reasons; so are the command
/// line's revocations and imports.
#[test]
fn refusals_and_the_command_line_are_audited() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let site = field_site(&mut li.store, VILLAGE_A);
    li.sync().unwrap();
    let changed = forge(&mut li, &site, RecordKind::Site, |tx| {
        tx.put(ROOT, "name", "改名").unwrap();
    });
    assert!(verdict(&mut li, changed).is_err());
    let (s, _) = raw_get(
        &server.url,
        "/v1/admin/users",
        Some(&token(&server, "li.wei", "p2")),
    );
    assert_eq!(s, 403);
    let lines = server
        .storage
        .audit_log(&AuditQuery {
            before: None,
            limit: 1000,
            users: Some(vec!["li.wei".into()]),
            ..Default::default()
        })
        .unwrap();
    assert!(
        lines.iter().any(
            |l| l.entry.action == "sync_rejected" && l.entry.detail.contains("registry import")
        ),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.entry.action == "refused" && l.entry.detail.contains("list users"))
    );
}

/// Connections are capped and an idle one is closed; a slow body times out.
#[test]
fn idle_connections_are_closed_and_capped() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let server = TestServer::start_tuned(
        fieldbook_server::http::listen::Limits {
            connections: 4,
            header_timeout: Duration::from_secs(2),
        },
        |st| st.body_idle_timeout = Duration::from_secs(1),
    );
    server.add_user("root", Role::Admin, &["*"]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    // An idle connection is closed after the header timeout.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server answered an idle connection");
    // Four idle connections take every slot: a fifth client waits.
    let holders: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut fifth = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        fifth,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(
        fifth.read(&mut buf).is_err(),
        "served past the connection cap"
    );
    // When the idle ones are closed (by their timeout), it is served.
    drop(holders);
    fifth
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    fifth.read_to_end(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("200 OK"));
    // A body that stops arriving: 408.
    let tok = token(&server, "root", "root");
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(slow, "POST /v1/sync HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {tok}\r\ncontent-type: {SYNC_CONTENT_TYPE}\r\ncontent-length: 1000\r\nconnection: close\r\n\r\nFBSY").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let _ = slow.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// Bodies wait for room in a byte budget; a request that cannot get room
/// is told to retry, and exports queue apart from sync: with every export
/// slot taken, an export waits while a sync is answered at once.
#[test]
fn body_bytes_and_exports_are_budgeted() {
    use std::io::Write;
    use std::time::Duration;
    let server = TestServer::start_tuned(fieldbook_server::http::listen::Limits::default(), |st| {
        st.body_budget = fieldbook_server::http::ByteBudget::new(64 << 10);
        st.body_budget_wait = Duration::from_millis(500);
    });
    server.add_user("li.wei", Role::Inspector, &[COUNTY_A]);
    server.add_user("root", Role::Admin, &["*"]);
    let tok = token(&server, "li.wei", "phone-li");
    // A client that declares 60 KiB and sends it slowly holds the budget.
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut hog = std::net::TcpStream::connect(&addr).unwrap();
    write!(hog, "POST /v1/sync HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {tok}\r\ncontent-type: {SYNC_CONTENT_TYPE}\r\ncontent-length: 61440\r\n\r\nFB").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let empty = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![],
    }
    .encode();
    let big = vec![b'x'; 8 << 10];
    let (s, text) = raw_post(&server.url, "/v1/sync", Some(&tok), SYNC_CONTENT_TYPE, &big);
    assert_eq!(s, 503, "{}", String::from_utf8_lossy(&text));
    drop(hog);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        raw_post(
            &server.url,
            "/v1/sync",
            Some(&tok),
            SYNC_CONTENT_TYPE,
            &empty
        )
        .0,
        200
    );
    // Every export slot taken: an export waits, a sync does not.
    let held = server
        .state
        .export_slots
        .clone()
        .try_acquire_many_owned(fieldbook_server::http::EXPORTS_AT_ONCE as u32)
        .unwrap();
    let root = token(&server, "root", "root-laptop");
    let url = server.url.clone();
    let export = std::thread::spawn(move || {
        raw_get(
            &url,
            "/v1/exports/records?format=csv&area=4103",
            Some(&root),
        )
        .0
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!export.is_finished(), "the export did not wait for a slot");
    assert_eq!(
        raw_post(
            &server.url,
            "/v1/sync",
            Some(&tok),
            SYNC_CONTENT_TYPE,
            &empty
        )
        .0,
        200
    );
    drop(held);
    assert_eq!(export.join().unwrap(), 200);
}

/// `fieldbook sim` gives its users fresh random passwords each run, and
/// the visits it records have a real time.
#[test]
fn sim_passwords_are_random_and_fixes_have_a_time() {
    let server = server();
    let args = fieldbook_server::devtools::sim::Args {
        server: server.url.clone(),
        phones: 1,
        inspections: 1,
        photos: 2,
        loss: 0.0,
        seed: 3,
        admin: "root".into(),
        patience: 30,
        admin_password: Some(PASSWORD.into()),
    };
    let hash = || {
        server
            .storage
            .user("sim3-sup")
            .unwrap()
            .unwrap()
            .password_hash
    };
    let r1 = fieldbook_server::devtools::sim::simulate(&args).unwrap();
    let h1 = hash();
    let r2 = fieldbook_server::devtools::sim::simulate(&args).unwrap();
    let h2 = hash();
    assert_ne!(h1, h2, "a rerun must not reuse the password");
    assert_eq!(
        (r1.lost, r2.lost, r1.photos_missing, r1.photos_unverified),
        (0, 0, 0, 0)
    );
    // Every visit's GPS fix has a time after the year 2000.
    let observer = fieldbook_server::storage::Session {
        pusher: fieldbook_server::storage::Identity {
            user: "observer".into(),
            role: Role::Admin,
            areas: vec!["*".into()],
            device: "observer".into(),
        },
        actor: String::new(),
        expires_at: i64::MAX,
    };
    let page = server.storage.pull(&observer, 0, usize::MAX).unwrap();
    let mut fixes = 0;
    for p in page
        .items
        .iter()
        .filter(|p| p.item.record == RecordKind::Inspection)
    {
        let d = Automerge::load(&p.item.data).unwrap();
        let i = fieldbook_core::doc::inspection::read(&d).unwrap();
        let at = i.location.unwrap().at;
        assert!(at > 946_684_800_000, "fix at {at}");
        fixes += 1;
    }
    assert_eq!(fixes, 2);
}
