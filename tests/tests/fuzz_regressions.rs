//! Replays the fuzz corpus under plain `cargo test`: every seed in
//! `fuzz/seeds/<target>/` and every crash the fuzzer ever found, kept in
//! `tests/fuzz-fixtures/<target>/`, goes through the same entry function
//! the fuzz target calls (`fieldbook_tests::fuzz_entry`). A fixture that
//! panics again fails the test, named.
//!
//! `write_seeds` (ignored) regenerates the seed corpus from real records:
//! `cargo test -p fieldbook-tests --test fuzz_regressions -- --ignored write_seeds`.

// A broken corpus folder or seed generator should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fieldbook_tests::fuzz_entry::{self, TARGETS, join_items};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn seeds_and_fixtures_do_not_panic() {
    let root = root();
    let mut failures = Vec::new();
    let mut ran = 0;
    // The entries' panics are caught and reported together below; the
    // default hook would print each one's backtrace in between.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for target in TARGETS {
        let seeds = files(&root.join("fuzz/seeds").join(target));
        if seeds.is_empty() {
            failures.push(format!("{target}: no seeds in fuzz/seeds/{target}"));
        }
        let fixtures = files(&root.join("tests/fuzz-fixtures").join(target));
        for path in seeds.iter().chain(&fixtures) {
            let data = std::fs::read(path).expect("read fixture");
            ran += 1;
            if let Err(e) = std::panic::catch_unwind(|| fuzz_entry::run(target, &data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{target}: {}: {msg}", path.display()));
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
    assert!(ran >= TARGETS.len());
}

/// Writes `fuzz/seeds/<target>/*`: small valid inputs made by the real code
/// (a phone's records and changes, sync messages, a photo, the shipped
/// templates and indicators, a registry file, tus headers).
#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seeds() {
    use fieldbook_core::model::{Role, SiteKind};
    use fieldbook_core::store::{Identity, NewFinding, NewSite, Store};
    use fieldbook_core::sync::wire::{
        Item, ItemKind, PageItem, RejectCode, Rejection, SyncRequest, SyncResponse, doc_id_bytes,
    };

    let root = root();
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = root.join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // A phone's records: a site, an inspection of it and a finding.
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        tmp.path(),
        Identity {
            user: "li.wei".into(),
            role: Role::Inspector,
            areas: vec!["410324".into()],
            device: "phone-li".into(),
        },
    )
    .unwrap();
    let site = store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: "王家户厕".into(),
            village_code: "410324101201".into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    let insp = store.start_inspection(&site).unwrap();
    store
        .set_answers(&insp, &fieldbook_tests::toilet_answers(false))
        .unwrap();
    for n in 1..=2 {
        store
            .add_photo_ref(&insp, fieldbook_tests::photo_ref(n, "photos"))
            .unwrap();
    }
    store.add_note(&insp, "盖板破损").unwrap();
    store.submit(&insp).unwrap();
    let finding = store
        .raise_finding(NewFinding {
            inspection_id: Some(insp.clone()),
            site_id: site.clone(),
            title: "盖板未密封".into(),
            description: "三格化粪池盖板破损".into(),
            deadline: Some("2026-12-31".into()),
        })
        .unwrap();
    // Records map to the framing's record slots 0, 1, 2.
    let ids = fuzz_entry_ids();
    let slot = |id: &str| {
        let n = [&site, &insp, &finding]
            .iter()
            .position(|x| x.as_str() == id)
            .unwrap();
        doc_id_bytes(ids[n]).unwrap()
    };
    let mut wholes = Vec::new();
    for id in [&site, &insp, &finding] {
        let (kind, data) = store.export_document(id).unwrap();
        write("automerge_doc", &format!("{}.save", kind.key()), &data);
        wholes.push(Item {
            kind: ItemKind::Document,
            record: kind,
            doc_id: slot(id),
            data,
        });
    }
    let outbox = store.outbox_batch(1000, usize::MAX).unwrap();
    let changes: Vec<Item> = outbox
        .iter()
        .map(|e| Item {
            kind: ItemKind::Change,
            record: e.kind,
            doc_id: slot(&e.doc_id),
            data: e.bytes.clone(),
        })
        .collect();
    for (n, c) in changes.iter().take(3).enumerate() {
        write("automerge_doc", &format!("change-{n}"), &c.data);
    }

    write("store_apply", "whole-records", &join_items(&wholes));
    write("store_apply", "changes", &join_items(&changes));
    // The inspector pushing everything, change by change and whole; a
    // supervisor pushing the same records whole (refused: not theirs).
    let mut inspector = vec![0u8];
    inspector.extend(join_items(&changes));
    write("server_ingest", "inspector-changes", &inspector);
    let mut whole = vec![0u8];
    whole.extend(join_items(&wholes));
    write("server_ingest", "inspector-whole", &whole);
    let mut sup = vec![1u8];
    sup.extend(join_items(&wholes));
    write("server_ingest", "supervisor-whole", &sup);

    let req = SyncRequest {
        cursor: 3,
        page_bytes: 0,
        items: wholes.clone(),
    };
    write("wire_request", "whole-records", &req.encode());
    let small = SyncRequest {
        cursor: 1,
        page_bytes: 65536,
        items: changes.iter().take(1).cloned().collect(),
    };
    write("wire_request", "one-change", &small.encode());
    let resp = SyncResponse {
        acked: vec![0, 2],
        rejected: vec![Rejection {
            index: 1,
            code: RejectCode::OutOfScope,
            message: "区域 410322 不在范围内".into(),
        }],
        page: wholes
            .iter()
            .enumerate()
            .map(|(i, it)| PageItem {
                seq: i as u64 + 10,
                item: it.clone(),
            })
            .collect(),
        cursor: 12,
        more: true,
    };
    write("wire_response", "page", &resp.encode());
    let short = SyncResponse {
        acked: vec![0],
        cursor: 5,
        ..Default::default()
    };
    write("wire_response", "ack-only", &short.encode());

    let png = fieldbook_tests::test_png(40, 30, 3);
    write("photo", "small.png", &png);
    let jpeg = fieldbook_core::photo::compress(&png, &Default::default()).unwrap();
    write("photo", "small.jpg", &jpeg.jpeg);

    for entry in std::fs::read_dir(root.join("core/templates")).unwrap() {
        let p = entry.unwrap().path();
        write(
            "template",
            p.file_name().unwrap().to_str().unwrap(),
            &std::fs::read(&p).unwrap(),
        );
    }
    write(
        "indicator",
        "indicators.v1.toml",
        &std::fs::read(root.join("core/indicators/indicators.v1.toml")).unwrap(),
    );
    write(
        "registry_csv",
        "sites.csv",
        "kind,name,village_code,id,lat,lon,households_served\n\
         garbage_point,村口垃圾房,410324101201,,34.6,112.4,\n\
         rural_sewage,\"东村,污水站\",410324101202,0190a000-0000-7000-8000-000000000009,,,120\n"
            .as_bytes(),
    );
    write(
        "tus_headers",
        "create-and-patch",
        format!(
            "upload-length: 1000\nupload-metadata: blake3 {}\ntus-resumable: 1.0.0\n\
             upload-offset: 256\nupload-checksum: sha1 {}\nstate: 256 1000 512\n",
            fieldbook_core::sync::tus::base64_encode(&"ab".repeat(32).into_bytes()),
            fieldbook_core::sync::tus::checksum_header(b"chunk").trim_start_matches("sha1 ")
        )
        .as_bytes(),
    );
    write_tus_client_seeds(&write);
}

/// Seeds of the scripted tus server (each script repeats): honest, and
/// one that drops every fifth call.
fn write_tus_client_seeds(write: &dyn Fn(&str, &str, &[u8])) {
    write("tus_client", "honest", b"");
    write("tus_client", "flaky", &[0, 0, 0, 0, 160]);
}

/// The record ids of the framing, in slot order (as `split_items` maps
/// them).
fn fuzz_entry_ids() -> Vec<&'static str> {
    fuzz_entry::DOC_IDS.to_vec()
}
