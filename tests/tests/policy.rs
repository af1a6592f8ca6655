//! One policy, two places: what the phone's store accepts the server
//! accepts, and what the phone refuses the server refuses, for the same
//! reason class.
//!
//! The first test walks every lawful step of the workflow through the
//! phone API, by every role, and syncs after each: the server refuses
//! none. The second takes each step the phone API refuses, writes the same
//! change straight into the document with the device's own actor, pushes
//! it, and expects the server's refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, ROOT, ReadDoc};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{Event, EventKind, GpsFix, Role, SiteKind, SiteSource};
use fieldbook_core::store::{FindingAction, NewFinding, NewSite, Store, StoreError};
use fieldbook_core::sync::Transport;
use fieldbook_core::sync::wire::{
    Item, ItemKind, RejectCode, SyncRequest, SyncResponse, doc_id_bytes,
};
use fieldbook_tests::{Phone, TestServer, photo_ref, toilet_answers};

const COUNTY: &str = "410324";
const VILLAGE: &str = "410324101201";
const OTHER_COUNTY_VILLAGE: &str = "410325101201";

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &[COUNTY]);
    s.add_user("chen.jie", Role::Inspector, &[COUNTY]);
    s.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    s.add_user("zhou.min", Role::CountyOffice, &[COUNTY]);
    s.add_user("root", Role::Admin, &[COUNTY]);
    s
}

/// Syncs and fails on any refusal.
fn sync_clean(p: &mut Phone) {
    let s = p.sync().unwrap();
    assert!(
        s.rejected.is_empty(),
        "the server refused what the phone accepted: {:?}",
        s.rejected
    );
}

fn site(store: &mut Store, kind: SiteKind) -> String {
    store
        .add_site(NewSite {
            kind,
            name: "张家户厕".into(),
            village_code: VILLAGE.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap()
}

fn step(kind: EventKind, comment: Option<&str>) -> FindingAction {
    FindingAction {
        kind,
        comment: comment.map(str::to_owned),
        responsible: (kind == EventKind::Assigned).then(|| "村委会".to_owned()),
        deadline: (kind == EventKind::Assigned).then(|| "2026-12-31".to_owned()),
    }
}

#[test]
fn every_write_the_phone_accepts_the_server_accepts() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mut li2 = Phone::login(&server, "li.wei", "tablet-li");
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let mut office = Phone::login(&server, "zhou.min", "office");

    // The inspector's part, with every kind of body edit.
    let s = site(&mut li.store, SiteKind::HouseholdToilet);
    let id = li.store.start_inspection(&s).unwrap();
    li.store.set_answers(&id, &toilet_answers(true)).unwrap();
    li.store.clear_answer(&id, "satisfaction").unwrap();
    li.store
        .set_answer(&id, "satisfaction", "satisfied".into())
        .unwrap();
    li.store.add_photo_ref(&id, photo_ref(1, "photos")).unwrap();
    li.store.add_photo_ref(&id, photo_ref(2, "photos")).unwrap();
    li.store.add_note(&id, "盖板完好").unwrap();
    li.store
        .set_location(
            &id,
            GpsFix {
                lat: 33.8,
                lon: 111.6,
                accuracy_m: 8.0,
                at: 1_780_000_000_000,
                mock: false,
            },
        )
        .unwrap();
    li.store.submit(&id).unwrap();
    sync_clean(&mut li);

    // Review: comment, return with a reason; the inspector fixes it from
    // another device and resubmits; approval.
    sync_clean(&mut sup);
    sup.store.comment(&id, "请补拍").unwrap();
    sup.store.return_inspection(&id, "缺少化粪池照片").unwrap();
    sync_clean(&mut sup);
    sync_clean(&mut li2);
    li2.store
        .add_photo_ref(&id, photo_ref(3, "photos"))
        .unwrap();
    li2.store.submit(&id).unwrap();
    sync_clean(&mut li2);
    sync_clean(&mut sup);
    sup.store.approve(&id, Some("合格")).unwrap();
    sync_clean(&mut sup);

    // The county office comments; a supervisor adds a site found in the field.
    sync_clean(&mut office);
    office.store.comment(&id, "已阅").unwrap();
    sync_clean(&mut office);
    let sup_site = site(&mut sup.store, SiteKind::GarbagePoint);
    sync_clean(&mut sup);

    // A finding through its whole life, sent back once.
    sync_clean(&mut li);
    let f = li
        .store
        .raise_finding(NewFinding {
            inspection_id: Some(id.clone()),
            site_id: s.clone(),
            title: "化粪池渗漏".into(),
            description: "盖板破损".into(),
            deadline: Some("2026-12-31".into()),
        })
        .unwrap();
    li.store
        .add_finding_photo(&f, photo_ref(4, "photos"))
        .unwrap();
    sync_clean(&mut li);
    sync_clean(&mut sup);
    sup.store
        .advance_finding(&f, step(EventKind::Assigned, None))
        .unwrap();
    sup.store
        .advance_finding(&f, step(EventKind::Escalated, Some("逾期")))
        .unwrap();
    sync_clean(&mut sup);
    sync_clean(&mut li);
    li.store
        .advance_finding(&f, step(EventKind::Rectifying, None))
        .unwrap();
    li.store
        .advance_finding(&f, step(EventKind::ClosureRequested, Some("已修复")))
        .unwrap();
    sync_clean(&mut li);
    sync_clean(&mut sup);
    sup.store
        .advance_finding(&f, step(EventKind::SentBack, Some("照片不清")))
        .unwrap();
    sync_clean(&mut sup);
    sync_clean(&mut li);
    li.store
        .add_finding_photo(&f, photo_ref(5, "photos"))
        .unwrap();
    li.store
        .advance_finding(&f, step(EventKind::ClosureRequested, Some("重拍")))
        .unwrap();
    sync_clean(&mut li);
    sync_clean(&mut sup);
    sup.store
        .advance_finding(&f, step(EventKind::Closed, None))
        .unwrap();
    // A supervisor raises a finding on the site they added.
    sup.store
        .raise_finding(NewFinding {
            inspection_id: None,
            site_id: sup_site,
            title: "垃圾满溢".into(),
            description: String::new(),
            deadline: None,
        })
        .unwrap();
    sync_clean(&mut sup);
    assert_eq!(
        server.state.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
}

fn actor(p: &Phone) -> ActorId {
    let hex = Store::prepare(&p.dir).unwrap();
    ActorId::from(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

/// Writes `edit` into record `id` as the phone holds it, with its actor,
/// pushes it, and returns the server's verdict.
fn forced(
    p: &mut Phone,
    id: &str,
    kind: RecordKind,
    edit: impl FnOnce(&mut Transaction<'_>),
) -> Option<RejectCode> {
    let data = match p.store.export_document(id) {
        Ok((_, saved)) => {
            let mut d = Automerge::load(&saved).unwrap().with_actor(actor(p));
            let mut tx = d.transaction();
            edit(&mut tx);
            tx.commit();
            (
                ItemKind::Change,
                d.get_last_local_change().unwrap().raw_bytes().to_vec(),
            )
        }
        Err(_) => {
            let mut d = Automerge::new().with_actor(actor(p));
            let mut tx = d.transaction();
            edit(&mut tx);
            tx.commit();
            (ItemKind::Document, d.save())
        }
    };
    let req = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items: vec![Item {
            kind: data.0,
            record: kind,
            doc_id: doc_id_bytes(id).unwrap(),
            data: data.1,
        }],
    };
    let resp = SyncResponse::decode(&p.transport.sync(&req.encode()).unwrap()).unwrap();
    resp.rejected.first().map(|r| r.code)
}

fn event(p: &Phone, kind: EventKind, revision: Option<u32>, comment: Option<&str>) -> Event {
    let id = p.store.identity();
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        kind,
        author: id.user.clone(),
        role: id.role,
        at: 1_780_000_000_000,
        revision,
        comment: comment.map(str::to_owned),
        responsible: None,
        deadline: None,
    }
}

fn is_forbidden(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Forbidden { .. }
            | StoreError::IllegalTransition { .. }
            | StoreError::Refused(fieldbook_core::policy::Refusal {
                code: fieldbook_core::policy::RefusalCode::Forbidden,
                ..
            })
    )
}

#[test]
fn what_the_phone_refuses_the_server_refuses() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let mut chen = Phone::login(&server, "chen.jie", "phone-chen");
    let mut sup = Phone::login(&server, "wang.fang", "desk");
    let mut office = Phone::login(&server, "zhou.min", "office");
    let mut root = Phone::login(&server, "root", "laptop");
    let s = site(&mut li.store, SiteKind::HouseholdToilet);
    let draft = li.store.start_inspection(&s).unwrap();
    li.store.set_answers(&draft, &toilet_answers(true)).unwrap();
    sync_clean(&mut li);
    for p in [&mut chen, &mut sup, &mut office, &mut root] {
        sync_clean(p);
    }

    // A supervisor rewrites an answer.
    assert!(is_forbidden(
        &sup.store
            .set_answer(&draft, "usage", "idle".into())
            .unwrap_err()
    ));
    let v = forced(&mut sup, &draft, RecordKind::Inspection, |tx| {
        let a = tx.get(ROOT, "answers").unwrap().unwrap().1;
        tx.put(&a, "usage", "idle").unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));

    // Another inspector edits li's inspection.
    assert!(is_forbidden(
        &chen
            .store
            .set_answer(&draft, "usage", "idle".into())
            .unwrap_err()
    ));
    let v = forced(&mut chen, &draft, RecordKind::Inspection, |tx| {
        let a = tx.get(ROOT, "answers").unwrap().unwrap().1;
        tx.put(&a, "usage", "idle").unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));

    // A supervisor approves a draft; an inspector approves.
    assert!(is_forbidden(&sup.store.approve(&draft, None).unwrap_err()));
    let e = event(&sup, EventKind::Approved, Some(0), None);
    let v = forced(&mut sup, &draft, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));
    assert!(is_forbidden(&li.store.approve(&draft, None).unwrap_err()));
    let e = event(&li, EventKind::Approved, Some(1), None);
    let v = forced(&mut li, &draft, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));

    // An incomplete submission (no photos).
    assert!(matches!(
        li.store.submit(&draft).unwrap_err(),
        StoreError::Invalid { .. }
    ));
    let e = event(&li, EventKind::Submitted, Some(1), None);
    let v = forced(&mut li, &draft, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Invalid));

    // A return without a reason, of a submitted inspection.
    li.store
        .add_photo_ref(&draft, photo_ref(1, "photos"))
        .unwrap();
    li.store
        .add_photo_ref(&draft, photo_ref(2, "photos"))
        .unwrap();
    li.store.submit(&draft).unwrap();
    sync_clean(&mut li);
    sync_clean(&mut sup);
    assert!(matches!(
        sup.store.return_inspection(&draft, " ").unwrap_err(),
        StoreError::BadInput(_)
    ));
    let e = event(&sup, EventKind::Returned, Some(1), None);
    let v = forced(&mut sup, &draft, RecordKind::Inspection, |tx| {
        fieldbook_core::doc::inspection::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Invalid));

    // Sites: a county office or an administrator adds one; an inspector
    // adds one in another county or in a village that does not exist.
    let new_site = |who: &Phone, village: &str| {
        let id = uuid::Uuid::now_v7().to_string();
        let s = fieldbook_core::model::Site {
            id: id.clone(),
            kind: SiteKind::GarbagePoint,
            name: "垃圾房".into(),
            village_code: village.into(),
            location: None,
            attributes: Default::default(),
            source: SiteSource::Field,
            created_by: who.store.identity().user.clone(),
            created_at: 0,
        };
        (id, s)
    };
    for (p, village, want) in [
        (&mut office, VILLAGE, RejectCode::Forbidden),
        (&mut root, VILLAGE, RejectCode::Forbidden),
        (&mut li, OTHER_COUNTY_VILLAGE, RejectCode::OutOfScope),
        (&mut chen, "410324101999", RejectCode::Invalid),
    ] {
        let api = p.store.add_site(NewSite {
            kind: SiteKind::GarbagePoint,
            name: "垃圾房".into(),
            village_code: village.into(),
            location: None,
            attributes: Default::default(),
        });
        let err = api.unwrap_err();
        match want {
            RejectCode::Forbidden => assert!(is_forbidden(&err), "{err}"),
            RejectCode::OutOfScope => {
                assert!(matches!(err, StoreError::OutOfScope { .. }), "{err}")
            }
            _ => assert!(matches!(err, StoreError::Refused(_)), "{err}"),
        }
        let (id, s) = new_site(p, village);
        let v = forced(p, &id, RecordKind::Site, |tx| {
            fieldbook_core::doc::site::create(tx, &s).unwrap();
        });
        assert_eq!(v, Some(want), "{village}");
    }

    // Findings: an inspector assigns; a supervisor closes one never
    // asked to close.
    let f = li
        .store
        .raise_finding(NewFinding {
            inspection_id: Some(draft.clone()),
            site_id: s.clone(),
            title: "化粪池渗漏".into(),
            description: String::new(),
            deadline: None,
        })
        .unwrap();
    sync_clean(&mut li);
    sync_clean(&mut sup);
    assert!(is_forbidden(
        &li.store
            .advance_finding(&f, step(EventKind::Assigned, None))
            .unwrap_err()
    ));
    let mut e = event(&li, EventKind::Assigned, None, None);
    e.responsible = Some("村委会".into());
    e.deadline = Some("2026-12-31".into());
    let v = forced(&mut li, &f, RecordKind::Finding, |tx| {
        fieldbook_core::doc::finding::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));
    assert!(is_forbidden(
        &sup.store
            .advance_finding(&f, step(EventKind::Closed, None))
            .unwrap_err()
    ));
    let e = event(&sup, EventKind::Closed, None, None);
    let v = forced(&mut sup, &f, RecordKind::Finding, |tx| {
        fieldbook_core::doc::finding::add_event(tx, &e).unwrap();
    });
    assert_eq!(v, Some(RejectCode::Forbidden));
    // Nothing the server refused is in its records.
    assert_eq!(
        server.state.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
    let d = {
        let (_, saved) = sup.store.export_document(&draft).unwrap();
        Automerge::load(&saved).unwrap()
    };
    assert!(d.get(ROOT, "answers").unwrap().is_some());
}
