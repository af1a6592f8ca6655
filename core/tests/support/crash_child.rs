//! Child process of the durability tests: works on a store in a loop and
//! prints one line per step *after* the API returned, until it is killed.
//!
//! Usage: `fieldbook-store-crash-child DIR SEED [MODE]`. The parent kills
//! the process with SIGKILL at a random moment and checks that every
//! printed step is in the store. Modes:
//!
//! - `save` (default): answers, batched answers, repeated edits (which
//!   compact documents), photo references, submit. Lines are
//!   `saved <inspection id> <answers stored> <submitted 0|1>`.
//! - `photos`: real photos compressed and attached (the JPEG written to the
//!   photo folder, then referenced). Lines are `photo <inspection id> <hash>`.
//! - `apply`: pages of records from another device applied with a new
//!   cursor, as a sync does. Lines are `applied <record id> <answers> <cursor>`.

use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{PhotoRef, Role, SiteKind, Value};
use fieldbook_core::photo::PhotoInput;
use fieldbook_core::store::{Identity, IncomingRecord, NewSite, Store};
use std::io::Write;

const ANSWERS: [(&str, &str); 6] = [
    ("toilet_type", "three_chamber"),
    ("usage", "in_use"),
    ("tank_condition", "intact"),
    ("pipe_condition", "normal"),
    ("emptying", "on_time"),
    ("effluent_to", "field_reuse"),
];
const FLAGS: [&str; 4] = [
    "enclosure_ok",
    "clean_no_odor",
    "lid_sealed",
    "old_toilet_removed",
];

type Fallible = Result<(), Box<dyn std::error::Error>>;

fn identity(device: &str) -> Identity {
    Identity {
        user: "li.wei".into(),
        role: Role::Inspector,
        areas: vec!["410324".into()],
        device: device.into(),
    }
}

fn new_site(store: &mut Store, seed: u64) -> Result<String, Box<dyn std::error::Error>> {
    Ok(store.add_site(NewSite {
        kind: SiteKind::HouseholdToilet,
        name: format!("户厕 {seed}"),
        village_code: "410324101201".into(),
        location: None,
        attributes: Default::default(),
    })?)
}

fn main() -> Fallible {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: DIR SEED [MODE]")?;
    let seed: u64 = args.next().ok_or("usage: DIR SEED [MODE]")?.parse()?;
    let mode = args.next().unwrap_or_else(|| "save".into());
    let mut store = Store::open(std::path::Path::new(&dir), identity("phone-1"))?;
    match mode.as_str() {
        "save" => save(&mut store, seed),
        "photos" => photos(&mut store, seed),
        "apply" => apply(&mut store, std::path::Path::new(&dir), seed),
        other => Err(format!("unknown mode {other}").into()),
    }
}

/// A camera-like image (a gradient with a seed-dependent pattern), PNG.
fn picture(seed: u64) -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let s = seed % 251;
        let v = (u64::from(x) * 7 + u64::from(y) * 13 + s * 31) % 256;
        image::Rgb([v as u8, (x % 256) as u8, ((u64::from(y) + s) % 256) as u8])
    });
    let mut png = Vec::new();
    let _ = img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
    png
}

fn photos(store: &mut Store, seed: u64) -> Fallible {
    let site = new_site(store, seed)?;
    let out = std::io::stdout();
    let mut n = seed;
    loop {
        let id = store.start_inspection(&site)?;
        for _ in 0..3 {
            n += 1;
            let png = picture(n);
            let photo = store.add_photo(&id, PhotoInput::Bytes(&png), Some("photos"))?;
            writeln!(out.lock(), "photo {id} {}", photo.hash)?;
        }
    }
}

/// Another device of the same user makes records; this store applies them
/// as pages with a cursor, the way a sync applies the server's pages.
fn apply(store: &mut Store, dir: &std::path::Path, seed: u64) -> Fallible {
    let other = dir.join(format!("other-device-{seed}"));
    let mut remote = Store::open(&other, identity("phone-2"))?;
    let site = new_site(&mut remote, seed)?;
    let out = std::io::stdout();
    let mut cursor: u64 = store
        .setting("crash_cursor")?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    loop {
        let mut page = Vec::new();
        let mut lines = Vec::new();
        for _ in 0..4 {
            let id = remote.start_inspection(&site)?;
            let answered = 1 + (cursor as usize % ANSWERS.len());
            for (k, v) in ANSWERS.iter().take(answered) {
                remote.set_answer(&id, k, Value::from(*v))?;
            }
            let (kind, data) = remote.export_document(&id)?;
            page.push(IncomingRecord {
                doc_id: id.clone(),
                kind,
                data,
            });
            lines.push((id, answered));
        }
        let (_, site_doc) = remote.export_document(&site)?;
        page.push(IncomingRecord {
            doc_id: site.clone(),
            kind: RecordKind::Site,
            data: site_doc,
        });
        cursor += 1;
        let c = cursor.to_string();
        store.apply_remote(&page, &[("crash_cursor", c.as_str())])?;
        for (id, answered) in lines {
            writeln!(out.lock(), "applied {id} {answered} {cursor}")?;
        }
    }
}

fn save(store: &mut Store, seed: u64) -> Fallible {
    let site = new_site(store, seed)?;
    let out = std::io::stdout();
    let mut n: u64 = seed;
    loop {
        let id = store.start_inspection(&site)?;
        let mut answered = 0;
        writeln!(out.lock(), "saved {id} {answered} 0")?;
        for (k, v) in ANSWERS {
            store.set_answer(&id, k, Value::from(v))?;
            answered += 1;
            writeln!(out.lock(), "saved {id} {answered} 0")?;
        }
        // Batched answers and repeated edits exercise compaction too.
        let flags: Vec<(String, Value)> = FLAGS
            .iter()
            .map(|k| ((*k).to_owned(), Value::Bool(true)))
            .collect();
        store.set_answers(&id, &flags)?;
        answered += FLAGS.len();
        writeln!(out.lock(), "saved {id} {answered} 0")?;
        for i in 0..8 {
            let v = if i % 2 == 0 {
                "satisfied"
            } else {
                "mostly_satisfied"
            };
            store.set_answer(&id, "satisfaction", Value::from(v))?;
        }
        store.set_answer(&id, "aftercare_arranged", Value::Bool(true))?;
        answered += 2;
        for p in 0..2u64 {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            store.add_photo_ref(
                &id,
                PhotoRef {
                    hash: format!("{:016x}{:016x}{:016x}{:016x}", n, n ^ 1, n ^ 2, p),
                    field: Some("photos".into()),
                    bytes: 150_000,
                    width: 1600,
                    height: 1200,
                    phash: format!("{n:016x}"),
                    taken_at: None,
                    gps: None,
                    added_at: 0,
                },
            )?;
        }
        writeln!(out.lock(), "saved {id} {answered} 0")?;
        store.submit(&id)?;
        writeln!(out.lock(), "saved {id} {answered} 1")?;
    }
}
