//! A logged-in client that breaks the rules on purpose. Each test is one
//! finding of an outside review, replayed against a real server on
//! loopback: the server must refuse it with a clear error, store nothing of
//! it, and keep serving everyone else.
//!
//! Hostile writes are made the way an outside client would make them:
//! Automerge changes and documents written directly with the device's own
//! actor (so the actor check passes), pushed through the real sync
//! endpoint, bypassing every check of the phone's own API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{EventKind, Role, SiteKind};
use fieldbook_core::sync::wire::RejectCode;
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{Phone, TestServer, raw_get, raw_post, toilet_answers, token};

use fieldbook_tests::hostile::*;

// ---- critical ----------------------------------------------------------------

/// An operation bomb: a few hundred bytes that decode to hundreds of
/// thousands of operations. Refused from its run lengths, before loading.
#[test]
fn an_operation_bomb_is_refused_before_it_is_loaded() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let before = state(&server);
    let id = new_id();
    let bomb = forge_doc(&li, &id, RecordKind::Site, |tx| {
        let s = fieldbook_core::model::Site {
            id: id.clone(),
            kind: SiteKind::HouseholdToilet,
            name: "x".into(),
            village_code: VILLAGE_A.into(),
            location: None,
            attributes: Default::default(),
            source: fieldbook_core::model::SiteSource::Field,
            created_by: "li.wei".into(),
            created_at: 0,
        };
        fieldbook_core::doc::site::create(tx, &s).unwrap();
        for i in 0..200_000 {
            tx.put(ROOT, "k", i % 2 == 0).unwrap();
        }
    });
    assert!(bomb.data.len() < 4_000, "{} bytes", bomb.data.len());
    // Four at once, as in the review: each refused, nothing stored.
    let resp = push(
        &mut li,
        vec![bomb.clone(), bomb.clone(), bomb.clone(), bomb],
    );
    assert_eq!(resp.rejected.len(), 4);
    for r in &resp.rejected {
        assert_eq!(r.code, RejectCode::Invalid);
        assert!(r.message.contains("operation count"), "{}", r.message);
    }
    assert_eq!(state(&server), before);
    // Everyone else syncs on.
    let s = field_site(&mut li.store, VILLAGE_A);
    li.sync().unwrap();
    assert!(server.storage.counts().unwrap().documents >= 1, "{s}");
}

/// A poison record: a valid inspection carrying more under a key outside
/// the layout, or a text longer than its field allows.
#[test]
fn a_record_outside_its_layout_is_refused_and_never_reaches_phones() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let site = field_site(&mut li.store, VILLAGE_A);
    let id = li.store.start_inspection(&site).unwrap();
    li.sync().unwrap();
    let before = state(&server);
    type Edit = Box<dyn FnOnce(&mut Transaction<'_>)>;
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            "field poison ",
            "is not part of the record layout",
            Box::new(|tx| {
                tx.put(ROOT, "poison", "长".repeat(4000)).unwrap();
            }),
        ),
        (
            "too large",
            "a value (bytes)",
            Box::new(|tx| {
                tx.put(ROOT, "poison", "x".repeat(1 << 20)).unwrap();
            }),
        ),
        (
            "field notes[0].text ",
            "is 4001 characters long",
            Box::new(|tx| {
                let notes = match tx.get(ROOT, "notes").unwrap() {
                    Some((_, o)) => o,
                    None => panic!("no notes"),
                };
                let n = tx.insert_object(&notes, 0, ObjType::Map).unwrap();
                tx.put(&n, "id", "n1").unwrap();
                tx.put(&n, "text", "长".repeat(4001)).unwrap();
                tx.put(&n, "author", "li.wei").unwrap();
                tx.put(&n, "at", 0).unwrap();
            }),
        ),
        (
            "field answers.x ",
            "expected a value, found a map",
            Box::new(|tx| {
                let a = answers_obj(tx);
                let o = tx.put_object(&a, "x", ObjType::Map).unwrap();
                tx.put(&o, "y", 1).unwrap();
            }),
        ),
    ];
    for (path, reason, edit) in cases {
        let bad = forge(&mut li, &id, RecordKind::Inspection, edit);
        match verdict(&mut li, bad) {
            Err((RejectCode::Invalid, m)) => {
                assert!(
                    m.contains(path) && m.contains(reason),
                    "{m:?}: {path} {reason}"
                );
            }
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(state(&server), before, "{path}");
    }
    // A phone of the same area pulls nothing of it.
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    sup.sync().unwrap();
    let (_, saved) = sup.store.export_document(&id).unwrap();
    let d = Automerge::load(&saved).unwrap();
    assert!(d.get(ROOT, "poison").unwrap().is_none());
}

/// If a bad record lands anyway, the operator quarantines it: phones stop
/// pulling it, reports skip it, pushes to it are refused; released, it is
/// back.
#[test]
fn a_quarantined_record_leaves_circulation_until_released() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let site = field_site(&mut li.store, VILLAGE_A);
    let id = submitted(&mut li.store, &site, 1);
    li.sync().unwrap();
    assert!(
        server
            .storage
            .quarantine(&id, "poisoned", "root", 1)
            .unwrap()
    );
    assert!(
        !server
            .storage
            .quarantine(&new_id(), "unknown", "root", 1)
            .unwrap()
    );
    // A new phone of the area does not get it; reports do not count it.
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    sup.sync().unwrap();
    assert!(sup.store.record_kind(&id).is_err());
    assert!(sup.store.record_kind(&site).is_ok());
    let mut seen = Vec::new();
    server
        .storage
        .scan_sites(COUNTY_A, false, &mut |s| {
            seen.extend(s.inspections.into_iter().map(|i| i.id));
            Ok(())
        })
        .unwrap();
    assert!(!seen.contains(&id));
    assert_eq!(
        server.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
    // Pushes to it are refused.
    li.store.comment(&id, "还在吗").unwrap();
    let err = li.sync().unwrap();
    assert_eq!(err.rejected.len(), 1, "{:?}", err.rejected);
    assert!(
        err.rejected[0].2.contains("quarantined"),
        "{:?}",
        err.rejected
    );
    // Released: back in reports and pulls.
    assert!(server.storage.release(&id).unwrap());
    let mut again = Phone::login(&server, "wang.fang", "desk-2");
    again.sync().unwrap();
    assert!(again.store.record_kind(&id).is_ok());
    assert_eq!(
        server.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
}

/// Projection hijack: documents carrying another county's ids.
#[test]
fn another_countys_records_cannot_be_rewritten_through_borrowed_ids() {
    let server = server();
    let b = county_b(&server);
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let findings_before = findings_export(&server);
    let before = state(&server);
    let fresh = new_id();
    // A new record whose root names B's site: the id it travels under is
    // not the id it claims.
    let hijack = forge_doc(&li, &fresh, RecordKind::Site, |tx| {
        fieldbook_core::doc::site::create(
            tx,
            &fieldbook_core::model::Site {
                id: b.site.clone(),
                kind: SiteKind::HouseholdToilet,
                name: "改名".into(),
                village_code: VILLAGE_A.into(),
                location: None,
                attributes: Default::default(),
                source: fieldbook_core::model::SiteSource::Field,
                created_by: "li.wei".into(),
                created_at: 0,
            },
        )
        .unwrap();
    });
    refused(verdict(&mut li, hijack), RejectCode::Invalid, "travels as");
    // The same for B's inspection and finding.
    let hijack = forge_doc(&li, &fresh, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::create(tx, &li_inspection(&b.inspection, &b.site))
            .unwrap();
    });
    refused(verdict(&mut li, hijack), RejectCode::Invalid, "travels as");
    // Under B's own ids: a site moved over sync, an inspection of A
    // written over B's, a finding's events cleared.
    let moved = forge_doc(&li, &b.site, RecordKind::Site, |tx| {
        tx.put(ROOT, "village_code", VILLAGE_A).unwrap();
    });
    assert!(verdict(&mut li, moved).is_err());
    // An inspection in A tied to B's site.
    let id = new_id();
    let tied = forge_doc(&li, &id, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::create(tx, &li_inspection(&id, &b.site)).unwrap();
    });
    refused(
        verdict(&mut li, tied),
        RejectCode::OutOfScope,
        "outside user li.wei's areas",
    );
    // A site that does not exist.
    let id = new_id();
    let ghost = forge_doc(&li, &id, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::create(tx, &li_inspection(&id, &new_id())).unwrap();
    });
    refused(
        verdict(&mut li, ghost),
        RejectCode::Invalid,
        "does not exist",
    );
    assert_eq!(state(&server), before);
    assert_eq!(findings_export(&server), findings_before);
    // B's records read as B left them.
    let mut sun = Phone::login(&server, "sun.li", "desk-sun-2");
    sun.sync().unwrap();
    assert_eq!(sun.store.site(&b.site).unwrap().village_code, VILLAGE_B);
    assert_eq!(
        sun.store.inspection_view(&b.inspection).unwrap().status,
        fieldbook_core::model::InspectionStatus::Approved
    );
    assert!(sun.store.finding_view(&b.finding).is_ok());
}

fn findings_export(server: &TestServer) -> String {
    let tok = token(server, "root", &format!("root-{}", new_id()));
    let (s, body) = raw_get(
        &server.url,
        &format!("/v1/exports/findings?format=csv&area={COUNTY_B}"),
        Some(&tok),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

// ---- high ----------------------------------------------------------------------

/// Answers and notes change only while an inspection is a draft or
/// returned: on the server as on the phone.
#[test]
fn an_approved_inspection_cannot_be_edited() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let site = field_site(&mut li.store, VILLAGE_A);
    let id = submitted(&mut li.store, &site, 1);
    li.sync().unwrap();
    sup.sync().unwrap();
    sup.store.approve(&id, None).unwrap();
    sup.sync().unwrap();
    li.sync().unwrap();
    // The phone refuses.
    assert!(li.store.set_answer(&id, "usage", "idle".into()).is_err());
    assert!(li.store.add_note(&id, "后补").is_err());
    let before = state(&server);
    let edit = forge(&mut li, &id, RecordKind::Inspection, |tx| {
        let a = answers_obj(tx);
        tx.put(&a, "usage", "idle").unwrap();
    });
    refused(verdict(&mut li, edit), RejectCode::Forbidden, "is approved");
    let note = forge(&mut li, &id, RecordKind::Inspection, |tx| {
        let notes = match tx.get(ROOT, "notes").unwrap() {
            Some((_, o)) => o,
            None => panic!(),
        };
        let n = tx.insert_object(&notes, 0, ObjType::Map).unwrap();
        tx.put(&n, "id", "n1").unwrap();
        tx.put(&n, "text", "后补").unwrap();
        tx.put(&n, "author", "li.wei").unwrap();
        tx.put(&n, "at", 0).unwrap();
    });
    refused(verdict(&mut li, note), RejectCode::Forbidden, "is approved");
    // A resubmission that would reopen it.
    let resubmit = forge(&mut li, &id, RecordKind::Inspection, |tx| {
        let events = match tx.get(ROOT, "events").unwrap() {
            Some((_, o)) => o,
            None => panic!(),
        };
        let n = tx.length(&events);
        let e = tx.insert_object(&events, n, ObjType::Map).unwrap();
        tx.put(&e, "id", "e9").unwrap();
        tx.put(&e, "kind", "submitted").unwrap();
        tx.put(&e, "author", "li.wei").unwrap();
        tx.put(&e, "role", "inspector").unwrap();
        tx.put(&e, "at", automerge::ScalarValue::Timestamp(0))
            .unwrap();
        tx.put(&e, "revision", 2u64).unwrap();
    });
    refused(
        verdict(&mut li, resubmit),
        RejectCode::Forbidden,
        "is approved",
    );
    assert_eq!(state(&server), before);
}

/// A submission must meet the template, photos included.
#[test]
fn a_submission_without_its_photos_is_refused() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let site = field_site(&mut li.store, VILLAGE_A);
    let id = li.store.start_inspection(&site).unwrap();
    li.store.set_answers(&id, &toilet_answers(true)).unwrap();
    li.sync().unwrap();
    assert!(li.store.submit(&id).is_err(), "the phone refuses too");
    let before = state(&server);
    let submit = forge(&mut li, &id, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::add_event(
            tx,
            &fieldbook_core::model::Event {
                id: "e1".into(),
                kind: EventKind::Submitted,
                author: "li.wei".into(),
                role: Role::Inspector,
                at: 0,
                revision: Some(1),
                comment: None,
                responsible: None,
                deadline: None,
            },
        )
        .unwrap();
    });
    refused(verdict(&mut li, submit), RejectCode::Invalid, "incomplete");
    assert_eq!(state(&server), before);
}

/// Sites come from the registry: a supervisor cannot create a registry
/// site over sync, nobody moves one over sync, and an import names only
/// villages that exist.
#[test]
fn registry_sites_come_only_from_the_registry() {
    let server = server();
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let id = new_id();
    let registry = forge_doc(&sup, &id, RecordKind::Site, |tx| {
        fieldbook_core::doc::site::create(
            tx,
            &fieldbook_core::model::Site {
                id: id.clone(),
                kind: SiteKind::GarbagePoint,
                name: "垃圾房".into(),
                village_code: VILLAGE_A.into(),
                location: None,
                attributes: Default::default(),
                source: fieldbook_core::model::SiteSource::Registry,
                created_by: "wang.fang".into(),
                created_at: 0,
            },
        )
        .unwrap();
    });
    refused(
        verdict(&mut sup, registry),
        RejectCode::Forbidden,
        "registry import",
    );
    let root = token(&server, "root", "root-laptop");
    let (s, body) = raw_post(
        &server.url,
        "/v1/admin/sites",
        Some(&root),
        "text/csv",
        "kind,name,village_code\ngarbage_point,村口,410324100201\n".as_bytes(),
    );
    assert_eq!(s, 400);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("line 2") && text.contains("not a village"),
        "{text}"
    );
}
