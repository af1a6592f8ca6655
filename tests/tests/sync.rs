//! Phones and supervisors syncing through a real server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::{GpsFix, InspectionStatus, Role, SiteKind};
use fieldbook_core::store::{InspectionFilter, NewSite, Store};
use fieldbook_server::storage::prelude::*;
use fieldbook_tests::{Phone, TestServer, photo_ref, toilet_answers};

const COUNTY: &str = "410324";
const VILLAGE: &str = "410324101201";

fn new_toilet(store: &mut Store, village: &str) -> (String, String) {
    let site = store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: "李家户厕".into(),
            village_code: village.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    let id = store.start_inspection(&site).unwrap();
    store.set_answers(&id, &toilet_answers(true)).unwrap();
    store.add_photo_ref(&id, photo_ref(1, "photos")).unwrap();
    store.add_photo_ref(&id, photo_ref(2, "photos")).unwrap();
    store
        .set_location(
            &id,
            GpsFix {
                lat: 33.8,
                lon: 111.6,
                accuracy_m: 6.0,
                at: 0,
                mock: false,
            },
        )
        .unwrap();
    (site, id)
}

#[test]
fn a_returned_record_reaches_the_phone_is_fixed_and_resubmitted() {
    let server = TestServer::start();
    server.add_user("li.wei", Role::Inspector, &[COUNTY]);
    server.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    let mut phone = Phone::login(&server, "li.wei", "phone-1");
    let mut desk = Phone::login(&server, "wang.fang", "desk-1");

    let (_, id) = new_toilet(&mut phone.store, VILLAGE);
    phone.store.submit(&id).unwrap();
    let up = phone.sync().unwrap();
    assert!(up.rejected.is_empty(), "{:?}", up.rejected);
    assert_eq!(phone.store.pending_counts().unwrap().changes, 0);

    desk.sync().unwrap();
    assert_eq!(
        desk.store.inspection_view(&id).unwrap().status,
        InspectionStatus::Submitted
    );
    desk.store.return_inspection(&id, "请补拍化粪池").unwrap();
    desk.sync().unwrap();

    phone.sync().unwrap();
    let v = phone.store.inspection_view(&id).unwrap();
    assert_eq!(v.status, InspectionStatus::Returned);
    assert_eq!(
        v.timeline.last().unwrap().comment.as_deref(),
        Some("请补拍化粪池")
    );
    phone
        .store
        .add_photo_ref(&id, photo_ref(3, "tank_condition"))
        .unwrap();
    phone.store.submit(&id).unwrap();
    phone.sync().unwrap();

    desk.sync().unwrap();
    desk.store.approve(&id, None).unwrap();
    desk.sync().unwrap();
    phone.sync().unwrap();
    for p in [&mut phone, &mut desk] {
        let v = p.store.inspection_view(&id).unwrap();
        assert_eq!(
            (v.status, v.revision, v.photos.len()),
            (InspectionStatus::Approved, 2, 3)
        );
    }
    assert_eq!(
        server.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn offline_edits_on_two_phones_and_a_supervisor_merge() {
    let server = TestServer::start();
    server.add_user("li.wei", Role::Inspector, &[COUNTY]);
    server.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    let mut a = Phone::login(&server, "li.wei", "phone-a");
    let mut b = Phone::login(&server, "li.wei", "phone-b");
    let mut desk = Phone::login(&server, "wang.fang", "desk");
    let (_, id) = new_toilet(&mut a.store, VILLAGE);
    a.sync().unwrap();
    b.sync().unwrap();
    desk.sync().unwrap();
    // All three work offline.
    a.store
        .set_answer(&id, "satisfaction", "mostly_satisfied".into())
        .unwrap();
    a.store.add_note(&id, "户主外出").unwrap();
    b.store
        .set_answer(&id, "satisfaction", "dissatisfied".into())
        .unwrap();
    b.store
        .set_answer(&id, "old_toilet_removed", false.into())
        .unwrap();
    desk.store.comment(&id, "注意旧厕拆除").unwrap();
    for p in [&mut a, &mut b, &mut desk] {
        p.sync().unwrap();
    }
    for p in [&mut a, &mut b, &mut desk] {
        p.sync().unwrap();
    }
    let views: Vec<_> = [&mut a, &mut b, &mut desk]
        .into_iter()
        .map(|p| {
            let mut v = p.store.inspection_view(&id).unwrap();
            v.editable = false;
            v
        })
        .collect();
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    let sat = views[0]
        .fields
        .iter()
        .find(|f| f.key == "satisfaction")
        .unwrap();
    assert_eq!(
        sat.conflicts.len(),
        2,
        "both concurrent values are visible: {sat:?}"
    );
    assert_eq!(views[0].notes.len(), 1);
    assert_eq!(views[0].timeline.len(), 1);
    let removed = views[0]
        .fields
        .iter()
        .find(|f| f.key == "old_toilet_removed")
        .unwrap();
    assert_eq!(removed.value, Some(false.into()));
    let rows = desk
        .store
        .list_inspections(&InspectionFilter::default())
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[test]
fn a_lossy_connection_loses_and_duplicates_nothing() {
    use fieldbook_core::sync::faults::LossyTransport;
    let server = TestServer::start();
    server.add_user("li.wei", Role::Inspector, &[COUNTY]);
    server.add_user("wang.fang", Role::Supervisor, &[COUNTY]);
    let mut phone = Phone::login(&server, "li.wei", "phone-1");
    let mut created = Vec::new();
    for _ in 0..40 {
        let (_, id) = new_toilet(&mut phone.store, VILLAGE);
        phone.store.submit(&id).unwrap();
        created.push(id);
    }
    // Half of all exchanges are dropped or cut, both ways. Small batches
    // make many exchanges.
    let opts = fieldbook_core::sync::SyncOptions {
        batch_items_max: 7,
        attempts_max: 4,
        ..fieldbook_tests::fast_retries()
    };
    let logged_in = std::mem::replace(
        &mut phone.transport,
        fieldbook_core::sync::http::HttpTransport::new(&server.url, None),
    );
    let mut lossy = LossyTransport::new(logged_in, 0.5, 77);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100, "sync never finished");
        let never = std::sync::atomic::AtomicBool::new(false);
        if fieldbook_core::sync::run(&mut phone.store, &mut lossy, &opts, &mut |_| {}, &never)
            .is_ok()
        {
            break;
        }
    }
    assert!(
        lossy.counts.requests_dropped + lossy.counts.responses_dropped + lossy.counts.responses_cut
            > 5,
        "{:?}",
        lossy.counts
    );
    assert_eq!(phone.store.pending_counts().unwrap().changes, 0);
    let mut desk = Phone::login(&server, "wang.fang", "desk");
    desk.sync().unwrap();
    let rows = desk
        .store
        .list_inspections(&InspectionFilter::default())
        .unwrap();
    assert_eq!(rows.len(), created.len());
    for id in &created {
        assert_eq!(
            desk.store.inspection_view(id).unwrap().status,
            InspectionStatus::Submitted
        );
    }
    assert_eq!(
        server.storage.verify_projections().unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_cancelled_sync_keeps_what_it_did_and_resumes() {
    let server = TestServer::start();
    server.add_user("li.wei", Role::Inspector, &[COUNTY]);
    let mut phone = Phone::login(&server, "li.wei", "phone-1");
    for _ in 0..12 {
        new_toilet(&mut phone.store, VILLAGE);
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let opts = fieldbook_core::sync::SyncOptions {
        batch_items_max: 4,
        ..fieldbook_tests::fast_retries()
    };
    let mut reports = Vec::new();
    let r = fieldbook_core::sync::run(
        &mut phone.store,
        &mut phone.transport,
        &opts,
        &mut |p| {
            reports.push(*p);
            // The user taps "stop" after the first exchange.
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        },
        &cancel,
    );
    assert!(
        matches!(r, Err(fieldbook_core::sync::SyncError::Cancelled)),
        "{r:?}"
    );
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].records_up, 4,
        "the first batch landed: {:?}",
        reports[0]
    );
    let left = phone.store.pending_counts().unwrap();
    assert!(left.records > 0 && left.records < 24, "{left:?}");
    // Progress is monotonic and the next run finishes the rest.
    let done = phone.sync().unwrap();
    assert!(done.progress.records_up > 0);
    assert_eq!(phone.store.pending_counts().unwrap().changes, 0);
    assert_eq!(server.storage.counts().unwrap().documents, 24);
}
