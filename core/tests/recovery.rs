//! A damaged database gives a clear error, never a crash, and
//! `Store::recover` gets back every record and unsent change that still
//! reads: the damaged file is kept aside, the device keeps its identity,
//! unsent changes go back into the outbox and photo files are queued again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod common;

use common::*;
use fieldbook_core::model::Role;
use fieldbook_core::store::{InspectionFilter, Store, StoreError};
use std::path::Path;

const RECORDS: usize = 40;

/// A store with a site, `RECORDS` inspections never synced and one photo
/// file; returns the inspection ids and the device's actor.
fn build(dir: &Path) -> (Vec<String>, String) {
    let mut store = open(dir, "li.wei", Role::Inspector, "phone-1");
    let site = toilet_site(&mut store);
    let ids: Vec<String> = (0..RECORDS)
        .map(|_| complete_inspection(&mut store, &site))
        .collect();
    let jpeg = b"\xff\xd8 a photo file as the camera left it \xff\xd9".to_vec();
    let hash = fieldbook_core::photo::hash::content_hash(&jpeg);
    std::fs::write(store.photo_path(&hash), &jpeg).unwrap();
    let actor = store.actor_hex();
    (ids, actor)
}

/// Every way of reaching the records: open, list, check.
fn use_store(dir: &Path) -> Result<usize, StoreError> {
    let store = Store::open(dir, identity("li.wei", Role::Inspector, "phone-1"))?;
    let listed = store.list_inspections(&InspectionFilter {
        limit: Some(10_000),
        ..Default::default()
    })?;
    let check = store.integrity_check()?;
    if check != "ok" {
        return Err(StoreError::CorruptDatabase {
            path: dir.display().to_string(),
            reason: check,
        });
    }
    Ok(listed.len())
}

fn damage(db: &Path, how: &str) {
    let mut bytes = std::fs::read(db).unwrap();
    match how {
        // The tail cut off, as a copy or restore that stopped early leaves it.
        "truncated" => bytes.truncate(bytes.len() * 9 / 10),
        "empty-header" => bytes[..100].fill(0),
        "garbage-pages" => {
            // Four pages in the middle overwritten, as a failing flash
            // block would leave them.
            let page = 4096;
            let start = (bytes.len() / 2 / page) * page;
            for (i, b) in bytes[start..start + 4 * page].iter_mut().enumerate() {
                *b = (i * 131 % 251) as u8;
            }
        }
        other => panic!("no damage {other}"),
    }
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn a_damaged_database_is_reported_and_recovered_without_losing_what_reads() {
    for how in ["garbage-pages", "truncated", "empty-header"] {
        let dir = tempfile::tempdir().unwrap();
        let (ids, actor) = build(dir.path());
        let db = dir.path().join(fieldbook_core::store::DB_FILE);
        // Fold the WAL in, so the damage hits the records themselves.
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        }
        assert_eq!(use_store(dir.path()).unwrap(), RECORDS);
        damage(&db, how);

        let err = use_store(dir.path()).expect_err(how);
        assert!(
            matches!(err, StoreError::CorruptDatabase { .. }),
            "{how}: {err:?}"
        );
        assert!(
            err.to_string().contains("move it aside"),
            "{how}: the message says what to do: {err}"
        );

        let (mut store, report) =
            Store::recover(dir.path(), identity("li.wei", Role::Inspector, "phone-1")).unwrap();
        assert!(report.moved_to.exists(), "{how}: the damaged file is kept");
        assert_eq!(store.integrity_check().unwrap(), "ok", "{how}");
        assert_eq!(report.photos, 1, "{how}: the photo file is queued again");
        let listed = store
            .list_inspections(&InspectionFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .unwrap();
        eprintln!("{how}: {report:?}, {} inspections back", listed.len());
        // Every inspection back is whole, and its unsent changes wait.
        for i in &listed {
            assert!(ids.contains(&i.id), "{how}: {} was never made", i.id);
            let view = store.inspection_view(&i.id).unwrap();
            assert!(view.fields.iter().any(|f| f.value.is_some()), "{how}");
        }
        if how != "empty-header" {
            // Damage to a few pages costs the rows on them, not the file.
            assert!(
                listed.len() >= RECORDS / 2,
                "{how}: only {} of {RECORDS} back",
                listed.len()
            );
            assert!(report.unsent_changes > 0, "{how}: {report:?}");
            assert_eq!(
                store.actor_hex(),
                actor,
                "{how}: the device keeps its actor"
            );
        }
        if report.unsent_changes > 0 {
            assert!(store.pending_counts().unwrap().changes > 0, "{how}");
        }
        // The recovered store takes new work.
        let site = toilet_site(&mut store);
        complete_inspection(&mut store, &site);
        drop(store);
        assert!(use_store(dir.path()).unwrap() > listed.len(), "{how}");
    }
}
