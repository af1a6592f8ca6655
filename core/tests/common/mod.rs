//! Shared set-up for the store tests: real stores in temporary folders.
#![allow(dead_code)] // Each test binary uses a different part.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::{PhotoRef, Role, SiteKind, Value};
use fieldbook_core::store::{Identity, NewSite, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A village committee in Luanchuan county (栾川县).
pub const VILLAGE: &str = "410324101201";
pub const OTHER_COUNTY_VILLAGE: &str = "410325101201";

pub fn identity(user: &str, role: Role, device: &str) -> Identity {
    Identity {
        user: user.into(),
        role,
        areas: vec!["410324".into()],
        device: device.into(),
    }
}

/// A clock that advances one second per reading, from a fixed start, so
/// tests are deterministic and event order is well defined.
pub fn test_clock(start: i64) -> fieldbook_core::store::Clock {
    let t = Arc::new(AtomicI64::new(start));
    Arc::new(move || t.fetch_add(1000, Ordering::SeqCst))
}

/// 2025-06-01T00:00:00Z.
pub const T0: i64 = 1_748_736_000_000;

pub fn open(dir: &Path, user: &str, role: Role, device: &str) -> Store {
    Store::open_with_clock(dir, identity(user, role, device), test_clock(T0)).unwrap()
}

pub fn toilet_site(store: &mut Store) -> String {
    store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: "张家户厕".into(),
            village_code: VILLAGE.into(),
            location: Some(fieldbook_core::model::GeoPoint {
                lat: 33.79,
                lon: 111.60,
            }),
            attributes: Default::default(),
        })
        .unwrap()
}

pub fn photo(n: u8, field: Option<&str>) -> PhotoRef {
    PhotoRef {
        hash: format!("{:064x}", u64::from(n) * 0x1234_5678_9abc + 1),
        field: field.map(str::to_owned),
        bytes: 200_000 + u64::from(n),
        width: 1600,
        height: 1200,
        phash: format!("{:016x}", u64::from(n) * 0x0101_0101 + 7),
        taken_at: Some(T0 + 1000),
        gps: None,
        added_at: T0 + 2000,
    }
}

/// Answers that make a household toilet sanitary and complete.
pub fn sanitary_answers() -> Vec<(String, Value)> {
    [
        ("toilet_type", Value::from("three_chamber")),
        ("usage", "in_use".into()),
        ("enclosure_ok", true.into()),
        ("clean_no_odor", true.into()),
        ("tank_condition", "intact".into()),
        ("pipe_condition", "normal".into()),
        ("lid_sealed", true.into()),
        ("emptying", "on_time".into()),
        ("effluent_to", "field_reuse".into()),
        ("old_toilet_removed", true.into()),
        ("aftercare_arranged", true.into()),
        ("satisfaction", "satisfied".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts and completes a toilet inspection, ready to submit.
pub fn complete_inspection(store: &mut Store, site: &str) -> String {
    let id = store.start_inspection(site).unwrap();
    store.set_answers(&id, &sanitary_answers()).unwrap();
    store.add_photo_ref(&id, photo(1, Some("photos"))).unwrap();
    store.add_photo_ref(&id, photo(2, Some("photos"))).unwrap();
    id
}

/// Moves every unacknowledged change of `from` into `to`, as a server would
/// relay them, and acknowledges them at `from`.
pub fn relay(from: &mut Store, to: &mut Store) {
    use fieldbook_core::store::IncomingRecord;
    let batch = from.outbox_batch(100_000, usize::MAX).unwrap();
    let records: Vec<IncomingRecord> = batch
        .iter()
        .map(|e| IncomingRecord {
            doc_id: e.doc_id.clone(),
            kind: e.kind,
            data: e.bytes.clone(),
        })
        .collect();
    let report = to.apply_remote(&records, &[]).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let hashes: Vec<String> = batch.into_iter().map(|e| e.hash).collect();
    from.acknowledge(&hashes).unwrap();
}

/// Copies whole documents of `from` into `to` (what a pull page with
/// snapshots does), without touching `from`'s outbox.
pub fn copy_docs(from: &mut Store, to: &mut Store, ids: &[String]) {
    use fieldbook_core::store::IncomingRecord;
    let records: Vec<IncomingRecord> = ids
        .iter()
        .map(|id| {
            let (kind, data) = from.export_document(id).unwrap();
            IncomingRecord {
                doc_id: id.clone(),
                kind,
                data,
            }
        })
        .collect();
    let report = to.apply_remote(&records, &[]).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}
