//! The phone store end to end: a real SQLite file in a temporary folder,
//! real Automerge documents, the public API only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod common;

use common::*;
use fieldbook_core::model::{
    EventKind, FindingStatus, GpsFix, InspectionStatus, ProblemCode, Role, Value,
};
use fieldbook_core::store::{
    FindingAction, FindingFilter, IncomingRecord, InspectionFilter, NewFinding, NewSite,
    SiteFilter, Store, StoreError,
};

fn inspector(dir: &std::path::Path) -> Store {
    open(dir, "li.wei", Role::Inspector, "phone-1")
}

fn supervisor(dir: &std::path::Path) -> Store {
    open(dir, "wang.fang", Role::Supervisor, "web-1")
}

/// Everything observable about the store's data, for "nothing changed" checks.
fn fingerprint(s: &mut Store) -> String {
    let sites = s.list_sites(&SiteFilter::default()).unwrap();
    let ins = s.list_inspections(&InspectionFilter::default()).unwrap();
    let fnd = s.list_findings(&FindingFilter::default()).unwrap();
    let mut views = Vec::new();
    for i in &ins {
        views.push(format!("{:?}", s.inspection_view(&i.id).unwrap()));
    }
    format!(
        "{sites:?}\n{ins:?}\n{fnd:?}\n{views:?}\n{:?}",
        s.pending_counts().unwrap()
    )
}

#[test]
fn inspect_submit_return_fix_and_approve() {
    let (pd, sd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut phone = inspector(pd.path());
    let mut sup = supervisor(sd.path());

    let site = toilet_site(&mut phone);
    let id = complete_inspection(&mut phone, &site);
    phone
        .set_location(
            &id,
            GpsFix {
                lat: 33.7901,
                lon: 111.6002,
                accuracy_m: 8.0,
                at: T0,
                mock: false,
            },
        )
        .unwrap();
    phone.add_note(&id, "户主不在家，邻居陪同").unwrap();
    phone.submit(&id).unwrap();
    assert_eq!(
        phone.inspection_view(&id).unwrap().status,
        InspectionStatus::Submitted
    );
    // Submitted answers are frozen until a supervisor returns the record.
    let err = phone
        .set_answer(&id, "satisfaction", "dissatisfied".into())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IllegalTransition {
                status: "submitted",
                ..
            }
        ),
        "{err}"
    );

    relay(&mut phone, &mut sup);
    let queue = sup
        .list_inspections(&InspectionFilter {
            status: Some(InspectionStatus::Submitted),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(queue.len(), 1);
    sup.return_inspection(&id, "化粪池照片不清楚，请重拍")
        .unwrap();

    relay(&mut sup, &mut phone);
    let v = phone.inspection_view(&id).unwrap();
    assert_eq!(v.status, InspectionStatus::Returned);
    assert!(v.editable);
    let last = v.timeline.last().unwrap();
    assert_eq!(
        (last.kind, last.comment.as_deref()),
        (EventKind::Returned, Some("化粪池照片不清楚，请重拍"))
    );

    phone
        .add_photo_ref(&id, photo(3, Some("tank_condition")))
        .unwrap();
    phone.submit(&id).unwrap();
    assert_eq!(phone.inspection_view(&id).unwrap().revision, 2);
    relay(&mut phone, &mut sup);
    sup.approve(&id, Some("合格")).unwrap();
    relay(&mut sup, &mut phone);

    for s in [&mut phone, &mut sup] {
        let v = s.inspection_view(&id).unwrap();
        assert_eq!((v.status, v.revision), (InspectionStatus::Approved, 2));
        assert_eq!(v.photos.len(), 3);
        assert_eq!(v.notes.len(), 1);
        assert!(
            v.outcomes.contains(&("sanitary".to_owned(), true)),
            "{:?}",
            v.outcomes
        );
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }
    assert_eq!(
        fingerprint(&mut phone)
            .split('\n')
            .take(4)
            .collect::<Vec<_>>(),
        fingerprint(&mut sup)
            .split('\n')
            .take(4)
            .collect::<Vec<_>>()
    );
    assert_eq!(phone.pending_counts().unwrap().changes, 0);
}

#[test]
fn submit_lists_every_problem_and_stores_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = s.start_inspection(&site).unwrap();
    s.set_answer(&id, "usage", "unusable".into()).unwrap();
    let before = fingerprint(&mut s);
    let StoreError::Invalid { problems } = s.submit(&id).unwrap_err() else {
        panic!("expected Invalid")
    };
    // Every missing required field and the missing photos, not just the first.
    assert!(problems.len() >= 10, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.field == "toilet_type" && p.code == ProblemCode::Required)
    );
    assert!(
        problems
            .iter()
            .any(|p| p.field == "photos" && p.code == ProblemCode::PhotoMissing)
    );
    assert!(
        problems
            .iter()
            .all(|p| !p.zh.is_empty() && !p.en.is_empty())
    );
    assert_eq!(fingerprint(&mut s), before);
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = s.start_inspection(&site).unwrap();
    s.set_answer(&id, "toilet_type", "double_urn".into())
        .unwrap();
    let before = fingerprint(&mut s);

    let check = |r: Result<(), StoreError>, want: &str| {
        let e = r.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{msg:?} should mention {want:?}");
    };
    check(
        s.set_answer(&id, "colour_of_door", "red".into()),
        "colour_of_door",
    );
    check(
        s.set_answer(&id, "enclosure_ok", Value::Number(1.0)),
        "invalid input",
    );
    check(
        s.set_answer(&id, "toilet_type", "golden".into()),
        "invalid input",
    );
    // One bad answer among good ones: none of them is stored.
    check(
        s.set_answers(
            &id,
            &[
                ("usage".into(), "in_use".into()),
                ("lid_sealed".into(), "maybe".into()),
            ],
        ),
        "invalid input",
    );
    check(
        s.set_location(
            &id,
            GpsFix {
                lat: 91.0,
                lon: 0.0,
                accuracy_m: 5.0,
                at: T0,
                mock: false,
            },
        ),
        "off the globe",
    );
    check(s.add_note(&id, "   "), "must not be empty");
    check(s.add_note(&id, &"字".repeat(5000)), "limit is 4000");
    check(s.approve(&id, None), "may not approve");
    check(
        s.set_answer("no-such-id", "usage", "idle".into()),
        "no inspection with id no-such-id",
    );
    check(s.start_inspection("no-such-site").map(drop), "no site");
    check(
        s.add_site(NewSite {
            kind: fieldbook_core::model::SiteKind::GarbagePoint,
            name: "x".into(),
            village_code: OTHER_COUNTY_VILLAGE.into(),
            location: None,
            attributes: Default::default(),
        })
        .map(drop),
        "outside this user's areas",
    );
    check(
        s.add_site(NewSite {
            kind: fieldbook_core::model::SiteKind::GarbagePoint,
            name: "x".into(),
            village_code: "4103".into(),
            location: None,
            attributes: Default::default(),
        })
        .map(drop),
        "12-digit village code",
    );
    check(
        s.add_site(NewSite {
            kind: fieldbook_core::model::SiteKind::TailingsPond,
            name: "x".into(),
            village_code: VILLAGE.into(),
            location: None,
            attributes: [
                ("supervision_level".to_owned(), Value::Number(4.0)),
                ("colour".to_owned(), Value::Bool(true)),
            ]
            .into(),
        })
        .map(drop),
        "colour is not an attribute",
    );
    let mut bad_photo = photo(9, None);
    bad_photo.hash = "not-hex".into();
    check(s.add_photo_ref(&id, bad_photo), "malformed");
    check(s.add_photo_ref(&id, photo(9, Some("no_field"))), "no_field");
    assert_eq!(fingerprint(&mut s), before);
    assert_eq!(
        s.inspection_view(&id).unwrap().fields[0].value,
        Some("double_urn".into())
    );
}

#[test]
fn roles_keep_to_their_part() {
    let (pd, sd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut phone = inspector(pd.path());
    let mut sup = supervisor(sd.path());
    let site = toilet_site(&mut phone);
    let id = complete_inspection(&mut phone, &site);
    relay(&mut phone, &mut sup);
    // A supervisor never rewrites the inspector's answers.
    assert!(matches!(
        sup.set_answer(&id, "usage", "idle".into()),
        Err(StoreError::Forbidden {
            role: Role::Supervisor,
            ..
        })
    ));
    assert!(matches!(
        sup.start_inspection(&site),
        Err(StoreError::Forbidden { .. })
    ));
    // Nothing to review before submission.
    assert!(matches!(
        sup.approve(&id, None),
        Err(StoreError::IllegalTransition {
            status: "draft",
            ..
        })
    ));
    // An inspector never writes review events.
    phone.submit(&id).unwrap();
    assert!(matches!(
        phone.approve(&id, None),
        Err(StoreError::Forbidden {
            role: Role::Inspector,
            ..
        })
    ));
    assert!(matches!(
        phone.return_inspection(&id, "x"),
        Err(StoreError::Forbidden { .. })
    ));
    // Anyone may comment.
    phone.comment(&id, "已按要求整改").unwrap();
    // Another inspector cannot edit this inspector's record.
    let od = tempfile::tempdir().unwrap();
    let mut other = open(od.path(), "zhao.lei", Role::Inspector, "phone-9");
    copy_docs(&mut phone, &mut other, std::slice::from_ref(&site));
    let mine = complete_inspection(&mut phone, &site);
    copy_docs(&mut phone, &mut other, std::slice::from_ref(&mine));
    assert!(matches!(
        other.set_answer(&mine, "usage", "idle".into()),
        Err(StoreError::Forbidden { .. })
    ));
}

#[test]
fn findings_follow_their_lifecycle() {
    let (pd, sd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut phone = inspector(pd.path());
    let mut sup = supervisor(sd.path());
    let site = toilet_site(&mut phone);
    let ins = phone.start_inspection(&site).unwrap();
    let f = phone
        .raise_finding(NewFinding {
            inspection_id: Some(ins.clone()),
            site_id: site.clone(),
            title: "化粪池渗漏".into(),
            description: "池体东侧有渗漏痕迹".into(),
            deadline: None,
        })
        .unwrap();
    phone.add_finding_photo(&f, photo(5, None)).unwrap();
    // The inspector cannot assign or close.
    let assign = FindingAction {
        kind: EventKind::Assigned,
        comment: None,
        responsible: Some("村委会".into()),
        deadline: Some("2025-06-10".into()),
    };
    assert!(matches!(
        phone.advance_finding(&f, assign.clone()),
        Err(StoreError::Forbidden { .. })
    ));
    relay(&mut phone, &mut sup);
    // Assigning needs a real date.
    let mut bad = assign.clone();
    bad.deadline = Some("2025-06-31".into());
    assert!(matches!(
        sup.advance_finding(&f, bad),
        Err(StoreError::BadInput(_))
    ));
    // Closing before a closure request is illegal.
    let close = FindingAction {
        kind: EventKind::Closed,
        comment: None,
        responsible: None,
        deadline: None,
    };
    assert!(matches!(
        sup.advance_finding(&f, close.clone()),
        Err(StoreError::IllegalTransition {
            status: "found",
            ..
        })
    ));
    sup.advance_finding(&f, assign).unwrap();
    sup.advance_finding(
        &f,
        FindingAction {
            kind: EventKind::Escalated,
            comment: Some("督办".into()),
            responsible: None,
            deadline: None,
        },
    )
    .unwrap();
    relay(&mut sup, &mut phone);
    phone
        .advance_finding(
            &f,
            FindingAction {
                kind: EventKind::ClosureRequested,
                comment: Some("已修补".into()),
                responsible: None,
                deadline: None,
            },
        )
        .unwrap();
    relay(&mut phone, &mut sup);
    let sent_back = FindingAction {
        kind: EventKind::SentBack,
        comment: None,
        responsible: None,
        deadline: None,
    };
    assert!(matches!(
        sup.advance_finding(&f, sent_back),
        Err(StoreError::BadInput(_))
    ));
    sup.advance_finding(&f, close).unwrap();
    relay(&mut sup, &mut phone);
    let v = phone.finding_view(&f).unwrap();
    assert_eq!(v.status, FindingStatus::Closed);
    assert_eq!(v.responsible.as_deref(), Some("村委会"));
    assert!(v.escalated);
    assert!(!v.overdue);
    assert_eq!(v.photos.len(), 1);
    assert_eq!(
        v.timeline.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![
            EventKind::Found,
            EventKind::Assigned,
            EventKind::Escalated,
            EventKind::ClosureRequested,
            EventKind::Closed
        ]
    );
}

#[test]
fn overdue_findings_are_listed_by_deadline() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    for (title, deadline) in [
        ("b", "2025-05-20"),
        ("a", "2025-05-10"),
        ("c", "2025-07-01"),
    ] {
        s.raise_finding(NewFinding {
            inspection_id: None,
            site_id: site.clone(),
            title: title.into(),
            description: String::new(),
            deadline: Some(deadline.into()),
        })
        .unwrap();
    }
    let overdue = s
        .list_findings(&FindingFilter {
            due_before: Some("2025-06-01".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        overdue.iter().map(|f| f.title.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(overdue.iter().all(|f| f.overdue));
    let all = s.list_findings(&FindingFilter::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(!all[2].overdue);
}

#[test]
fn lists_filter_by_area_kind_status_and_scope() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let other_village = "410324101202";
    let garbage = s
        .add_site(NewSite {
            kind: fieldbook_core::model::SiteKind::GarbagePoint,
            name: "村口垃圾房".into(),
            village_code: other_village.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    let a = complete_inspection(&mut s, &site);
    s.submit(&a).unwrap();
    let b = s.start_inspection(&garbage).unwrap();
    let sites = |f: SiteFilter| {
        s.list_sites(&f)
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sites(SiteFilter {
            area: Some(VILLAGE.into()),
            ..Default::default()
        }),
        std::slice::from_ref(&site)
    );
    assert_eq!(
        sites(SiteFilter {
            kind: Some(fieldbook_core::model::SiteKind::GarbagePoint),
            ..Default::default()
        }),
        std::slice::from_ref(&garbage)
    );
    assert_eq!(
        sites(SiteFilter {
            area: Some("410324101".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    let ins = |f: InspectionFilter| {
        s.list_inspections(&f)
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ins(InspectionFilter {
            status: Some(InspectionStatus::Draft),
            ..Default::default()
        }),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        ins(InspectionFilter {
            site_id: Some(site.clone()),
            ..Default::default()
        }),
        std::slice::from_ref(&a)
    );
    assert_eq!(ins(InspectionFilter::default()), [b, a]);
    assert!(matches!(
        s.list_sites(&SiteFilter {
            area: Some("410322".into()),
            ..Default::default()
        }),
        Err(StoreError::OutOfScope { .. })
    ));
    let counts = s.inspection_counts().unwrap();
    assert!(
        counts.contains(&(InspectionStatus::Submitted, 1))
            && counts.contains(&(InspectionStatus::Draft, 1))
    );
}

#[test]
fn the_store_is_the_same_after_reopening() {
    let d = tempfile::tempdir().unwrap();
    let before;
    {
        let mut s = inspector(d.path());
        let site = toilet_site(&mut s);
        let id = complete_inspection(&mut s, &site);
        // Enough edits to force compaction several times.
        for i in 0..200 {
            s.set_answer(
                &id,
                "satisfaction",
                if i % 2 == 0 {
                    "satisfied".into()
                } else {
                    "dissatisfied".into()
                },
            )
            .unwrap();
        }
        s.submit(&id).unwrap();
        before = fingerprint(&mut s);
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }
    let mut s = inspector(d.path());
    assert_eq!(fingerprint(&mut s), before);
    // Another user cannot open this user's store.
    let err = Store::open(d.path(), identity("zhao.lei", Role::Inspector, "phone-1")).unwrap_err();
    assert!(matches!(err, StoreError::WrongUser), "{err}");
}

#[test]
fn a_damaged_database_file_gives_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("fieldbook.db"),
        b"this is not a database, just some bytes that fill a page".repeat(100),
    )
    .unwrap();
    let err = Store::open(d.path(), identity("li.wei", Role::Inspector, "phone-1")).unwrap_err();
    assert!(matches!(err, StoreError::CorruptDatabase { .. }), "{err}");
    assert!(err.to_string().contains("move it aside"), "{err}");
}

#[test]
fn corrupt_or_foreign_remote_records_are_rejected_alone() {
    let (pd, sd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut phone = inspector(pd.path());
    let mut sup = supervisor(sd.path());
    let site = toilet_site(&mut phone);
    let id = complete_inspection(&mut phone, &site);
    relay(&mut phone, &mut sup);
    let before = fingerprint(&mut sup);
    let (_, good) = phone.export_document(&id).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut not_fieldbook = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(
        &mut not_fieldbook,
        automerge::ROOT,
        "hello",
        "world",
    )
    .unwrap();
    let page = vec![
        IncomingRecord {
            doc_id: "x1".into(),
            kind: fieldbook_core::doc::RecordKind::Inspection,
            data: b"garbage".to_vec(),
        },
        IncomingRecord {
            doc_id: id.clone(),
            kind: fieldbook_core::doc::RecordKind::Inspection,
            data: flipped,
        },
        IncomingRecord {
            doc_id: site.clone(),
            kind: fieldbook_core::doc::RecordKind::Finding,
            data: good.clone(),
        },
        IncomingRecord {
            doc_id: "x2".into(),
            kind: fieldbook_core::doc::RecordKind::Site,
            data: not_fieldbook.save(),
        },
        IncomingRecord {
            doc_id: id.clone(),
            kind: fieldbook_core::doc::RecordKind::Inspection,
            data: good,
        },
    ];
    let report = sup.apply_remote(&page, &[("sync.cursor", "42")]).unwrap();
    assert_eq!(report.rejected.len(), 4, "{report:?}");
    assert_eq!(report.unchanged, vec![id.clone()]);
    assert_eq!(fingerprint(&mut sup), before);
    // The valid part of the page, the cursor, landed.
    assert_eq!(sup.setting("sync.cursor").unwrap().as_deref(), Some("42"));
}

#[test]
fn concurrent_edits_of_one_answer_show_both_values() {
    let (ad, bd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = inspector(ad.path());
    // The same inspector on a second phone.
    let mut b = open(bd.path(), "li.wei", Role::Inspector, "phone-2");
    let site = toilet_site(&mut a);
    let id = complete_inspection(&mut a, &site);
    relay(&mut a, &mut b);
    a.set_answer(&id, "satisfaction", "mostly_satisfied".into())
        .unwrap();
    a.set_answer(&id, "lid_sealed", false.into()).unwrap();
    b.set_answer(&id, "satisfaction", "dissatisfied".into())
        .unwrap();
    b.set_answer(&id, "old_toilet_removed", false.into())
        .unwrap();
    relay(&mut a, &mut b);
    relay(&mut b, &mut a);
    let (va, vb) = (
        a.inspection_view(&id).unwrap(),
        b.inspection_view(&id).unwrap(),
    );
    assert_eq!(va, vb.clone().with_editable(va.editable));
    let field = |k: &str| va.fields.iter().find(|f| f.key == k).unwrap().clone();
    // Different fields merge; the same field keeps both values.
    assert_eq!(field("lid_sealed").value, Some(false.into()));
    assert_eq!(field("old_toilet_removed").value, Some(false.into()));
    let sat = field("satisfaction");
    assert_eq!(sat.conflicts.len(), 2, "{sat:?}");
    assert!(
        sat.conflicts.contains(&"mostly_satisfied".into())
            && sat.conflicts.contains(&"dissatisfied".into())
    );
    assert_eq!(Some(sat.conflicts[0].clone()), sat.value);
    let row = a.list_inspections(&InspectionFilter::default()).unwrap();
    assert_eq!(row[0].conflicts, 1);
    // Writing the field again resolves the conflict.
    a.set_answer(&id, "satisfaction", "satisfied".into())
        .unwrap();
    assert!(
        a.inspection_view(&id)
            .unwrap()
            .fields
            .iter()
            .all(|f| f.conflicts.is_empty())
    );
}

trait WithEditable {
    fn with_editable(self, e: bool) -> Self;
}

impl WithEditable for fieldbook_core::store::InspectionView {
    fn with_editable(mut self, e: bool) -> Self {
        self.editable = e;
        self
    }
}

#[test]
fn photos_are_stored_once_and_queued_for_upload() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = s.start_inspection(&site).unwrap();
    s.add_photo_ref(&id, photo(1, Some("photos"))).unwrap();
    s.add_photo_ref(&id, photo(1, Some("photos"))).unwrap();
    let v = s.inspection_view(&id).unwrap();
    assert_eq!(v.photos.len(), 1);
    assert_eq!(s.pending_counts().unwrap().photos, 1);
}

#[test]
fn outbox_is_cleared_only_by_acknowledgement() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = complete_inspection(&mut s, &site);
    let pending = s.pending_counts().unwrap();
    assert_eq!(pending.records, 2);
    let first = s.outbox_batch(2, usize::MAX).unwrap();
    assert_eq!(first.len(), 2);
    // Reading a batch does not remove it.
    assert_eq!(s.outbox_batch(2, usize::MAX).unwrap(), first);
    // A byte limit still lets one change through.
    assert_eq!(s.outbox_batch(10, 1).unwrap().len(), 1);
    assert_eq!(
        s.acknowledge(&[first[0].hash.clone(), "feed".into()])
            .unwrap(),
        1
    );
    assert_eq!(s.acknowledge(&[first[0].hash.clone()]).unwrap(), 0);
    assert_eq!(s.pending_counts().unwrap().changes, pending.changes - 1);
    assert_eq!(s.outbox_batch(1, usize::MAX).unwrap()[0], first[1]);
    let _ = id;
}
