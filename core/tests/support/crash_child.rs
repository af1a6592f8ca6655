//! Child process of the durability test: saves records in a loop and prints
//! one line per save *after* the API returned, until it is killed.
//!
//! Usage: `fieldbook-store-crash-child DIR SEED`. Each line is
//! `saved <inspection id> <answers stored> <submitted 0|1>`; the parent
//! kills the process with SIGKILL at a random moment and checks that every
//! printed save is in the store.

use fieldbook_core::model::{PhotoRef, Role, SiteKind, Value};
use fieldbook_core::store::{Identity, NewSite, Store};
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: DIR SEED")?;
    let seed: u64 = args.next().ok_or("usage: DIR SEED")?.parse()?;
    let identity = Identity {
        user: "li.wei".into(),
        role: Role::Inspector,
        areas: vec!["410324".into()],
        device: "phone-1".into(),
    };
    let mut store = Store::open(std::path::Path::new(&dir), identity)?;
    let site = store.add_site(NewSite {
        kind: SiteKind::HouseholdToilet,
        name: format!("户厕 {seed}"),
        village_code: "410324100201".into(),
        location: None,
        attributes: Default::default(),
    })?;
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
