//! Property: model → Automerge document → save → load → model is the
//! identity, for every record kind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use automerge::Automerge;
use fieldbook_core::doc;
use fieldbook_core::model::{
    Event, EventKind, Finding, GeoPoint, GpsFix, Inspection, Note, PhotoRef, Role, Site, SiteKind,
    SiteSource, Value,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,12}", "\\PC{0,20}", Just("化粪池渗漏".to_owned())]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-1e9f64..1e9).prop_map(Value::Number),
        text().prop_map(Value::Text),
    ]
}

fn point() -> impl Strategy<Value = GeoPoint> {
    (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
}

fn kind() -> impl Strategy<Value = SiteKind> {
    prop::sample::select(SiteKind::ALL.to_vec())
}

fn photo() -> impl Strategy<Value = PhotoRef> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        prop::option::of("[a-z_]{1,8}"),
        any::<u32>(),
        any::<u32>(),
        0u64..1 << 40,
        prop::option::of(any::<i64>()),
        prop::option::of(point()),
        any::<i64>(),
    )
        .prop_map(
            |(h, ph, field, width, height, bytes, taken_at, gps, added_at)| PhotoRef {
                hash: h.iter().map(|b| format!("{b:02x}")).collect(),
                phash: format!("{ph:016x}"),
                field,
                width,
                height,
                bytes,
                taken_at,
                gps,
                added_at,
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    (
        "[0-9a-f]{8}",
        prop::sample::select(EventKind::ALL.to_vec()),
        text(),
        prop::sample::select(Role::ALL.to_vec()),
        any::<i64>(),
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(Just("2025-06-30".to_owned())),
    )
        .prop_map(
            |(id, kind, author, role, at, revision, comment, responsible, deadline)| Event {
                id,
                kind,
                author,
                role,
                at,
                revision,
                comment,
                responsible,
                deadline,
            },
        )
}

fn inspection() -> impl Strategy<Value = Inspection> {
    (
        (
            "[0-9a-f-]{36}",
            "[0-9a-f-]{36}",
            kind(),
            "[0-9]{12}",
            any::<u32>(),
            text(),
            text(),
            any::<i64>(),
        ),
        prop::option::of((point(), 0.0f64..5000.0, any::<i64>(), any::<bool>())),
        prop::collection::btree_map("[a-z_]{1,16}", value(), 0..40),
        prop::collection::vec(photo(), 0..4),
        prop::collection::vec((text(), text(), any::<i64>()), 0..3),
        prop::collection::vec(event(), 0..5),
    )
        .prop_map(
            |(
                (
                    id,
                    site_id,
                    site_kind,
                    village_code,
                    template_version,
                    inspector,
                    device,
                    started_at,
                ),
                loc,
                answers,
                mut photos,
                notes,
                events,
            )| {
                photos.sort_by(|a, b| a.hash.cmp(&b.hash));
                photos.dedup_by(|a, b| a.hash == b.hash);
                Inspection {
                    id,
                    site_id,
                    site_kind,
                    village_code,
                    template_version,
                    inspector,
                    device,
                    started_at,
                    location: loc.map(|(p, accuracy_m, at, mock)| GpsFix {
                        lat: p.lat,
                        lon: p.lon,
                        accuracy_m,
                        at,
                        mock,
                    }),
                    answers,
                    conflicts: BTreeMap::new(),
                    photos,
                    notes: notes
                        .into_iter()
                        .enumerate()
                        .map(|(i, (text, author, at))| Note {
                            id: format!("n{i}"),
                            text,
                            author,
                            at,
                        })
                        .collect(),
                    events,
                }
            },
        )
}

fn save_load(write: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Automerge {
    let mut d = Automerge::new();
    let mut tx = d.transaction();
    write(&mut tx);
    tx.commit();
    Automerge::load(&d.save()).unwrap()
}

proptest! {
    #[test]
    fn inspection_round_trips(i in inspection()) {
        let d = save_load(|tx| doc::inspection::create(tx, &i).unwrap());
        prop_assert_eq!(doc::inspection::read(&d).unwrap(), i);
    }

    #[test]
    fn site_round_trips(
        id in "[0-9a-f-]{36}", kind in kind(), name in text(), village in "[0-9]{12}",
        location in prop::option::of(point()), attributes in prop::collection::btree_map("[a-z_]{1,16}", value(), 0..6),
        field in any::<bool>(), created_by in text(), created_at in any::<i64>(),
    ) {
        let s = Site { id, kind, name, village_code: village, location, attributes, source: if field { SiteSource::Field } else { SiteSource::Registry }, created_by, created_at };
        let d = save_load(|tx| doc::site::create(tx, &s).unwrap());
        prop_assert_eq!(doc::site::read(&d).unwrap(), s);
    }

    #[test]
    fn finding_round_trips(
        id in "[0-9a-f-]{36}", inspection_id in prop::option::of("[0-9a-f-]{36}"), kind in kind(), village in "[0-9]{12}",
        title in text(), description in text(), raised_by in text(), raised_at in any::<i64>(),
        mut photos in prop::collection::vec(photo(), 0..3), events in prop::collection::vec(event(), 0..6),
    ) {
        photos.sort_by(|a, b| a.hash.cmp(&b.hash));
        photos.dedup_by(|a, b| a.hash == b.hash);
        let f = Finding { id, inspection_id, site_id: "s".into(), site_kind: kind, village_code: village, title, description, raised_by, raised_at, photos, events };
        let d = save_load(|tx| doc::finding::create(tx, &f).unwrap());
        prop_assert_eq!(doc::finding::read(&d).unwrap(), f);
    }
}

#[test]
fn documents_of_another_layout_are_errors_not_panics() {
    type Write = Box<dyn Fn(&mut automerge::transaction::Transaction<'_>)>;
    let cases: Vec<(Write, &str)> = vec![
        (Box::new(|_tx| {}), "schema is missing"),
        (
            Box::new(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "schema", 99u64).unwrap();
            }),
            "newer than this app",
        ),
        (
            Box::new(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "schema", 1u64).unwrap();
                tx.put(automerge::ROOT, "type", "site").unwrap();
                tx.put(automerge::ROOT, "id", "x").unwrap();
            }),
            "is a site, expected a inspection",
        ),
        (
            Box::new(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "schema", 1u64).unwrap();
                tx.put(automerge::ROOT, "type", "inspection").unwrap();
                tx.put(automerge::ROOT, "id", 7i64).unwrap();
            }),
            "id is malformed",
        ),
    ];
    for (write, want) in cases {
        let d = save_load(|tx| write(tx));
        let err = doc::inspection::read(&d).unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}
