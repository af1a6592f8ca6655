//! What the server refuses: other areas, other roles' parts, revoked and
//! expired tokens, forged actors, malformed, truncated, oversized and
//! replayed payloads. Every refusal is a clear error and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use automerge::transaction::Transactable;
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{Role, SiteKind};
use fieldbook_core::store::{NewSite, Store};
use fieldbook_core::sync::http::{LoginRequest, SYNC_CONTENT_TYPE};
use fieldbook_core::sync::wire::{
    Item, ItemKind, RejectCode, SyncRequest, SyncResponse, doc_id_bytes,
};
use fieldbook_core::sync::{SyncError, Transport, TransportError};
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{PASSWORD, Phone, TestServer, raw_get, raw_post, token};

const LUANCHUAN: &str = "410324";
const SONGXIAN_VILLAGE: &str = "410325101201";
const VILLAGE: &str = "410324101201";

fn server_with_users() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &[LUANCHUAN]);
    s.add_user("zhao.lei", Role::Inspector, &["410325"]);
    s.add_user("wang.fang", Role::Supervisor, &[LUANCHUAN]);
    s.add_user("root", Role::Admin, &["4103"]);
    s
}

use fieldbook_tests::server_state;

fn site(store: &mut Store, village: &str) -> String {
    store
        .add_site(NewSite {
            kind: SiteKind::GarbagePoint,
            name: "村口垃圾房".into(),
            village_code: village.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap()
}

#[test]
fn login_errors_are_clear() {
    let server = server_with_users();
    let dir = tempfile::tempdir().unwrap();
    let actor = Store::prepare(dir.path()).unwrap();
    let mut t = fieldbook_core::sync::http::HttpTransport::new(&server.url, None);
    let bad = t.login(&LoginRequest {
        username: "li.wei".into(),
        password: "wrong password".into(),
        device: "d".into(),
        actor: actor.clone(),
    });
    assert_eq!(bad.unwrap_err(), TransportError::Unauthorized);
    let nobody = t.login(&LoginRequest {
        username: "nobody".into(),
        password: PASSWORD.into(),
        device: "d".into(),
        actor: actor.clone(),
    });
    assert_eq!(nobody.unwrap_err(), TransportError::Unauthorized);
    let (status, body) = raw_post(
        &server.url,
        "/v1/login",
        None,
        "application/json",
        b"{\"username\": 5",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("malformed JSON"));
    let bad_actor = t.login(&LoginRequest {
        username: "li.wei".into(),
        password: PASSWORD.into(),
        device: "d".into(),
        actor: "zz".into(),
    });
    assert!(
        matches!(bad_actor, Err(TransportError::Refused { status: 400, .. })),
        "{bad_actor:?}"
    );
    // An actor id already registered to another device cannot be claimed.
    t.login(&LoginRequest {
        username: "li.wei".into(),
        password: PASSWORD.into(),
        device: "d1".into(),
        actor: actor.clone(),
    })
    .unwrap();
    let stolen = t.login(&LoginRequest {
        username: "wang.fang".into(),
        password: PASSWORD.into(),
        device: "d2".into(),
        actor,
    });
    assert!(
        matches!(stolen, Err(TransportError::Refused { status: 409, .. })),
        "{stolen:?}"
    );
}

#[test]
fn inspectors_see_and_write_only_their_areas() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mut zhao = Phone::login(&server, "zhao.lei", "phone-zhao");
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let mine = site(&mut li.store, VILLAGE);
    let theirs = site(&mut zhao.store, SONGXIAN_VILLAGE);
    li.sync().unwrap();
    zhao.sync().unwrap();
    sup.sync().unwrap();
    // Pulls carry only in-scope records.
    assert!(li.store.site(&mine).is_ok());
    assert!(li.store.record_kind(&theirs).is_err());
    assert!(sup.store.record_kind(&mine).is_ok());
    assert!(sup.store.record_kind(&theirs).is_err());

    // A phone that pushes a record outside its user's areas is refused,
    // whatever its local store believed.
    let before = server_state(&server);
    let (code, message) = push_site_as(&mut li, "li.wei", SONGXIAN_VILLAGE, 7).unwrap_err();
    assert_eq!(code, RejectCode::OutOfScope);
    assert!(message.contains("410325101201"), "{message}");
    assert_eq!(server_state(&server), before);
}

fn uuid_text(n: u8) -> String {
    format!("0190f000-0000-7000-8000-0000000000{n:02x}")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_forged_actor_is_refused() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    // A document written by an actor the server never registered for this
    // device (say, copied from another phone).
    let mut d = automerge::Automerge::new();
    let mut tx = d.transaction();
    tx.put(automerge::ROOT, "schema", 1u64).unwrap();
    tx.commit();
    let before = server_state(&server);
    let req = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![Item {
            kind: ItemKind::Document,
            record: RecordKind::Site,
            doc_id: [9; 16],
            data: d.save(),
        }],
    };
    let resp = SyncResponse::decode(&li.transport.sync(&req.encode()).unwrap()).unwrap();
    assert_eq!(
        resp.rejected[0].code,
        RejectCode::ForeignActor,
        "{:?}",
        resp.rejected
    );
    assert_eq!(server_state(&server), before);
}

#[test]
fn roles_are_enforced_on_pushed_changes() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let s = site(&mut li.store, VILLAGE);
    let id = li.store.start_inspection(&s).unwrap();
    li.store
        .set_answer(&id, "facility_type", "bins".into())
        .unwrap();
    li.sync().unwrap();
    sup.sync().unwrap();
    // The supervisor's phone is tampered with to rewrite an answer: the
    // core API refuses, so write the change into the document directly.
    let before = server_state(&server);
    let (_, saved) = sup.store.export_document(&id).unwrap();
    let sup_actor = Store::prepare(&sup.dir).unwrap();
    let mut d = automerge::Automerge::load(&saved)
        .unwrap()
        .with_actor(automerge::ActorId::from(hex(&sup_actor)));
    let answers = match automerge::ReadDoc::get(&d, automerge::ROOT, "answers").unwrap() {
        Some((_, o)) => o,
        None => panic!("no answers"),
    };
    let mut tx = d.transaction();
    tx.put(&answers, "facility_type", "containers").unwrap();
    tx.commit();
    let change = d.get_last_local_change().unwrap();
    let req = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![Item {
            kind: ItemKind::Change,
            record: RecordKind::Inspection,
            doc_id: doc_id_bytes(&id).unwrap(),
            data: change.raw_bytes().to_vec(),
        }],
    };
    let resp = SyncResponse::decode(&sup.transport.sync(&req.encode()).unwrap()).unwrap();
    assert_eq!(resp.rejected.len(), 1);
    assert_eq!(resp.rejected[0].code, RejectCode::Forbidden);
    assert!(
        resp.rejected[0].message.contains("only inspector li.wei"),
        "{}",
        resp.rejected[0].message
    );
    assert_eq!(server_state(&server), before);
}

#[test]
fn revoked_and_unknown_tokens_are_refused() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    site(&mut li.store, VILLAGE);
    li.sync().unwrap();
    let admin = token(&server, "root", "admin-laptop");
    let (status, _) = raw_post(
        &server.url,
        "/v1/admin/devices/phone-li/revoke",
        Some(&admin),
        "application/json",
        b"",
    );
    assert_eq!(status, 204);
    site(&mut li.store, VILLAGE);
    let err = li.sync().unwrap_err();
    assert!(
        matches!(err, SyncError::Transport(TransportError::Unauthorized)),
        "{err}"
    );
    // Nothing was lost: the unsent change waits in the outbox.
    assert_eq!(li.store.pending_counts().unwrap().records, 1);
    let (status, body) = raw_post(
        &server.url,
        "/v1/sync",
        Some("0000"),
        SYNC_CONTENT_TYPE,
        &SyncRequest {
            cursor: 0,
            page_bytes: 0,
            items: vec![],
        }
        .encode(),
    );
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("log in again"));
    let (status, _) = raw_post(&server.url, "/v1/sync", None, SYNC_CONTENT_TYPE, b"");
    assert_eq!(status, 401);
}

#[test]
fn an_expired_token_asks_for_login_and_loses_nothing() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    site(&mut li.store, VILLAGE);
    li.sync().unwrap();
    // Offline for longer than a token lives, still working.
    site(&mut li.store, VILLAGE);
    server.clock_offset.store(
        fieldbook_server::auth::TOKEN_TTL_MS + 60_000,
        std::sync::atomic::Ordering::SeqCst,
    );
    let err = li.sync().unwrap_err();
    assert!(
        matches!(err, SyncError::Transport(TransportError::Unauthorized)),
        "{err}"
    );
    assert_eq!(
        li.store.pending_counts().unwrap().records,
        1,
        "the unsent record waits"
    );
    // Logging in again on the same store sends what waited.
    let mut li = li.relogin(&server.url, "li.wei", "phone-li").unwrap();
    li.sync().unwrap();
    assert_eq!(li.store.pending_counts().unwrap().changes, 0);
    assert_eq!(server.storage.counts().unwrap().documents, 2);
}

#[test]
fn malformed_truncated_oversized_and_replayed_payloads() {
    let server = server_with_users();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let tok = token(&server, "li.wei", "phone-li-2");
    let s = site(&mut li.store, VILLAGE);
    let id = li.store.start_inspection(&s).unwrap();
    let items: Vec<Item> = li
        .store
        .outgoing_items(100, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|o| o.item)
        .collect();
    let good = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items,
    }
    .encode();
    let before = server_state(&server);
    let post = |body: &[u8], ct: &str| raw_post(&server.url, "/v1/sync", Some(&tok), ct, body);
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"hello".to_vec(), SYNC_CONTENT_TYPE, 400, "bad magic"),
        (
            good[..good.len() / 2].to_vec(),
            SYNC_CONTENT_TYPE,
            400,
            "truncated",
        ),
        (good.clone(), "application/json", 415, SYNC_CONTENT_TYPE),
    ];
    for (body, ct, status, want) in cases {
        let (got, text) = post(&body, ct);
        let text = String::from_utf8_lossy(&text);
        assert_eq!(got, status, "{text}");
        assert!(text.contains(want), "{text:?} should mention {want:?}");
        assert_eq!(server_state(&server), before);
    }
    let (status, text) = fieldbook_tests::post_declaring_length(
        &server.url,
        "/v1/sync",
        Some(&tok),
        SYNC_CONTENT_TYPE,
        fieldbook_core::sync::wire::MESSAGE_BYTES_MAX + 1,
    );
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("the limit is"), "{text}");
    assert_eq!(server_state(&server), before);
    // A body whose item bytes are garbage: refused per item, rest lands.
    let garbage = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![Item {
            kind: ItemKind::Change,
            record: RecordKind::Site,
            doc_id: [1; 16],
            data: b"not a change".to_vec(),
        }],
    };
    let (status, body) = post(&garbage.encode(), SYNC_CONTENT_TYPE);
    assert_eq!(status, 200);
    let resp = SyncResponse::decode(&body).unwrap();
    assert_eq!(resp.rejected[0].code, RejectCode::Undecodable);
    assert_eq!(server_state(&server), before);
    // The real phone syncs; then the same request replayed changes nothing.
    li.sync().unwrap();
    let after = server_state(&server);
    let (status, body) = raw_post(
        &server.url,
        "/v1/sync",
        Some(&tok),
        SYNC_CONTENT_TYPE,
        &good,
    );
    assert_eq!(status, 200);
    let resp = SyncResponse::decode(&body).unwrap();
    assert!(resp.rejected.is_empty(), "{:?}", resp.rejected);
    assert_eq!(resp.acked.len(), 2, "a replay is acknowledged again");
    assert_eq!(server_state(&server), after);
    let _ = id;
}

#[test]
fn admin_endpoints_need_the_admin_role() {
    let server = server_with_users();
    let inspector = token(&server, "li.wei", "p");
    let supervisor = token(&server, "wang.fang", "d");
    let admin = token(&server, "root", "a");
    let user_json =
        br#"{"name":"new.one","password":"a long password","role":"inspector","areas":["410324"]}"#;
    let csv = "kind,name,village_code\ngarbage_point,村口,410324101201\n";
    for (tok, ok) in [(&inspector, false), (&supervisor, false), (&admin, true)] {
        let (s, _) = raw_get(&server.url, "/v1/admin/users", Some(tok));
        assert_eq!(s == 200, ok);
        let (s, _) = raw_get(&server.url, "/v1/admin/devices", Some(tok));
        assert_eq!(s == 200, ok);
        let (s, _) = raw_get(&server.url, "/v1/admin/audit", Some(tok));
        assert_eq!(s == 200, ok);
        let (s, _) = raw_post(
            &server.url,
            "/v1/admin/sites",
            Some(tok),
            "text/csv",
            csv.as_bytes(),
        );
        assert_eq!(s == 200, ok, "{s}");
        let (s, _) = raw_post(
            &server.url,
            "/v1/admin/users",
            Some(tok),
            "application/json",
            user_json,
        );
        assert_eq!(s == 201, ok, "{s}");
        if !ok {
            assert_eq!(s, 403);
        }
    }
    let (s, body) = raw_post(
        &server.url,
        "/v1/admin/users",
        Some(&admin),
        "application/json",
        user_json,
    );
    assert_eq!(s, 409, "{}", String::from_utf8_lossy(&body));
    let (s, body) = raw_post(
        &server.url,
        "/v1/admin/sites",
        Some(&admin),
        "text/csv",
        b"kind,name,village_code\nvolcano,x,1\n",
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("line 2"));
    // The imported site reaches an inspector of that area, not another.
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    li.sync().unwrap();
    assert_eq!(li.store.list_sites(&Default::default()).unwrap().len(), 1);
    let mut zhao = Phone::login(&server, "zhao.lei", "phone-zhao");
    zhao.sync().unwrap();
    assert_eq!(zhao.store.list_sites(&Default::default()).unwrap().len(), 0);
    let (s, body) = raw_get(&server.url, "/v1/admin/audit", Some(&admin));
    assert_eq!(s, 200);
    let text = String::from_utf8_lossy(&body);
    for action in ["login", "sites_imported", "user_created", "sync"] {
        assert!(text.contains(action), "audit lacks {action}");
    }
    // The metrics are the whole deployment's: no answer without a login,
    // none for an administrator of one city, one for an administrator of `*`.
    assert_eq!(raw_get(&server.url, "/metrics", None).0, 401);
    assert_eq!(raw_get(&server.url, "/metrics", Some(&admin)).0, 403);
    server.add_user("ops", Role::Admin, &["*"]);
    let ops = token(&server, "ops", "ops-laptop");
    let (s, body) = raw_get(&server.url, "/metrics", Some(&ops));
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&body).contains("fieldbook_sync_batches_total"));
    assert_eq!(raw_get(&server.url, "/healthz", None).0, 200);
}

/// Pushes a field-site record written by hand with the phone's own actor
/// (bypassing the phone's own role checks) and returns the server's verdict.
fn push_site_as(
    p: &mut Phone,
    user: &str,
    village: &str,
    n: u8,
) -> Result<(), (RejectCode, String)> {
    let actor = Store::prepare(&p.dir).unwrap();
    let mut d = automerge::Automerge::new().with_actor(automerge::ActorId::from(hex(&actor)));
    let mut tx = d.transaction();
    let s = fieldbook_core::model::Site {
        id: uuid_text(n),
        kind: SiteKind::GarbagePoint,
        name: format!("site {n}"),
        village_code: village.into(),
        location: None,
        attributes: Default::default(),
        source: fieldbook_core::model::SiteSource::Field,
        created_by: user.into(),
        created_at: 0,
    };
    fieldbook_core::doc::site::create(&mut tx, &s).unwrap();
    tx.commit();
    let req = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![Item {
            kind: ItemKind::Document,
            record: RecordKind::Site,
            doc_id: doc_id_bytes(&s.id).unwrap(),
            data: d.save(),
        }],
    };
    let resp = SyncResponse::decode(&p.transport.sync(&req.encode()).unwrap()).unwrap();
    match resp.rejected.first() {
        None => Ok(()),
        Some(r) => Err((r.code, r.message.clone())),
    }
}

#[test]
fn every_endpoint_by_role_and_area() {
    let server = server_with_users();
    server.add_user("zhou.min", Role::CountyOffice, &[LUANCHUAN]);
    // A photo referenced by an inspection in Luanchuan.
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let s = site(&mut li.store, VILLAGE);
    let id = li.store.start_inspection(&s).unwrap();
    let photo = li
        .store
        .add_photo(
            &id,
            fieldbook_core::photo::PhotoInput::Bytes(&fieldbook_tests::test_png(320, 240, 5)),
            Some("overflowing"),
        )
        .unwrap();
    li.sync().unwrap();

    // (user, device, may push a field site in Luanchuan, may read the photo, is admin)
    let cases = [
        ("li.wei", "m-li", Ok(()), true, false),
        (
            "zhao.lei",
            "m-zhao",
            Err(RejectCode::OutOfScope),
            false,
            false,
        ),
        ("wang.fang", "m-wang", Ok(()), true, false),
        (
            "zhou.min",
            "m-zhou",
            Err(RejectCode::Forbidden),
            true,
            false,
        ),
        // Administrators manage the registry by import; over sync only
        // inspectors and supervisors add sites found in the field.
        ("root", "m-root", Err(RejectCode::Forbidden), true, true),
    ];
    for (n, (user, device, push, read, admin)) in cases.into_iter().enumerate() {
        let mut p = Phone::login(&server, user, device);
        assert_eq!(
            push_site_as(&mut p, user, VILLAGE, 40 + n as u8).map_err(|(code, _)| code),
            push,
            "{user} pushing a site"
        );
        // Pulls never carry records outside the user's areas.
        p.sync().unwrap();
        let outside = p
            .store
            .list_sites(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|s| !p.store.identity().covers(&s.village_code))
            .count();
        assert_eq!(outside, 0, "{user}");
        let got = p.download(&photo.hash);
        assert_eq!(got.is_ok(), read, "{user} reading the photo: {got:?}");
        let tok = token(&server, user, &format!("{device}-raw"));
        for path in ["/v1/admin/users", "/v1/admin/devices", "/v1/admin/audit"] {
            let (status, _) = raw_get(&server.url, path, Some(&tok));
            assert_eq!(status, if admin { 200 } else { 403 }, "{user} GET {path}");
        }
        let (status, _) = raw_post(
            &server.url,
            "/v1/admin/devices/nope/revoke",
            Some(&tok),
            "application/json",
            b"",
        );
        assert_eq!(status, if admin { 404 } else { 403 }, "{user} revoke");
    }
}
