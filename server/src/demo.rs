//! `fieldbook demo`: the newcomer's first command.
//!
//! Until the sync server lands, the demo runs the phone core on its own: an
//! inspector's store and a supervisor's store for one Luoyang township, a
//! generated site registry, inspections filled offline, changes carried
//! between the two stores the way sync will carry them, a review, and a
//! table of what each side holds. Seeded and reproducible.

use anyhow::{Context, Result};
use fieldbook_core::model::{Divisions, GpsFix, Level, Role, SiteKind, Value, area};
use fieldbook_core::store::{Identity, IncomingRecord, InspectionFilter, NewSite, Store};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the demo's stores (default: a new temporary folder).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Township-level division code to work in (default: 三川镇, Luanchuan).
    #[arg(long, default_value = "410324104")]
    township: String,
    /// Household toilets to inspect.
    #[arg(long, default_value_t = 40)]
    inspections: usize,
    /// Seed for the generated answers.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// A small deterministic generator (xorshift), enough for demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub fn run(args: Args) -> Result<()> {
    let divisions = Divisions::luoyang();
    let township = divisions
        .get(&args.township)
        .filter(|a| a.level == Level::Township)
        .with_context(|| format!("{} is not a Luoyang township code", args.township))?;
    let villages: Vec<_> = divisions
        .within(&township.code, Level::Village)
        .into_iter()
        .filter(|v| area::is_rural_village(&v.code))
        .collect();
    anyhow::ensure!(
        !villages.is_empty(),
        "{} has no rural villages",
        township.name
    );

    let tmp;
    let root = match &args.data {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let scope = vec![township.code.clone()];
    let mut phone = Store::open(
        &root.join("phone"),
        Identity {
            user: "demo.inspector".into(),
            role: Role::Inspector,
            areas: scope.clone(),
            device: "demo-phone".into(),
        },
    )?;
    let mut desk = Store::open(
        &root.join("supervisor"),
        Identity {
            user: "demo.supervisor".into(),
            role: Role::Supervisor,
            areas: scope,
            device: "demo-desk".into(),
        },
    )?;
    println!(
        "Fieldbook demo — {} ({} rural villages)",
        divisions.path_name(&township.code).unwrap_or_default(),
        villages.len()
    );
    println!("stores in {}", root.display());

    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut inspections = Vec::new();
    for n in 0..args.inspections {
        let village = villages[n % villages.len()];
        let site = phone.add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: format!("{}第{}户厕 (generated)", village.name, n + 1),
            village_code: village.code.clone(),
            location: None,
            attributes: Default::default(),
        })?;
        let id = phone.start_inspection(&site)?;
        let sanitary = rng.chance(80);
        let answers: Vec<(String, Value)> = [
            ("toilet_type", Value::from("three_chamber")),
            (
                "usage",
                Value::from(if sanitary { "in_use" } else { "idle" }),
            ),
            ("enclosure_ok", Value::Bool(true)),
            ("clean_no_odor", Value::Bool(sanitary || rng.chance(50))),
            (
                "tank_condition",
                Value::from(if sanitary { "intact" } else { "seeping" }),
            ),
            ("pipe_condition", Value::from("normal")),
            ("lid_sealed", Value::Bool(true)),
            ("emptying", Value::from("on_time")),
            ("effluent_to", Value::from("field_reuse")),
            ("old_toilet_removed", Value::Bool(rng.chance(90))),
            ("aftercare_arranged", Value::Bool(rng.chance(85))),
            (
                "satisfaction",
                Value::from(if sanitary {
                    "satisfied"
                } else {
                    "dissatisfied"
                }),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        phone.set_answers(&id, &answers)?;
        for p in 0..3u64 {
            let h = rng.next();
            phone.add_photo_ref(
                &id,
                fieldbook_core::model::PhotoRef {
                    hash: format!(
                        "{h:016x}{:016x}{:016x}{p:016x}",
                        h.rotate_left(7),
                        h.rotate_left(19)
                    ),
                    field: Some(if p == 2 { "tank_condition" } else { "photos" }.into()),
                    bytes: 180_000 + rng.next() % 120_000,
                    width: 1600,
                    height: 1200,
                    phash: format!("{:016x}", rng.next()),
                    taken_at: None,
                    gps: None,
                    added_at: 0,
                },
            )?;
        }
        phone.set_location(
            &id,
            GpsFix {
                lat: 33.8 + (rng.next() % 1000) as f64 / 1e4,
                lon: 111.5 + (rng.next() % 1000) as f64 / 1e4,
                accuracy_m: 5.0 + (rng.next() % 20) as f64,
                at: 0,
                mock: false,
            },
        )?;
        phone.submit(&id)?;
        inspections.push(id);
    }
    let up = carry(&mut phone, &mut desk)?;
    println!(
        "\ninspector: {} inspections filled offline, {up} changes carried to the supervisor",
        inspections.len()
    );

    let (mut approved, mut returned) = (0, 0);
    for id in &inspections {
        let view = desk.inspection_view(id)?;
        if view.outcomes.iter().any(|(r, ok)| r == "problem" && *ok) {
            desk.return_inspection(
                id,
                "发现问题厕所，请补充整改情况 / problem toilet: add the rectification plan",
            )?;
            returned += 1;
        } else {
            desk.approve(id, None)?;
            approved += 1;
        }
    }
    let down = carry(&mut desk, &mut phone)?;
    println!("supervisor: {approved} approved, {returned} returned; {down} changes carried back");

    println!(
        "\n{} {:>9} {:>9} {:>9} {:>9}",
        pad("village", 30),
        "draft",
        "submitted",
        "returned",
        "approved"
    );
    for v in &villages {
        let rows = phone.list_inspections(&InspectionFilter {
            area: Some(v.code.clone()),
            ..Default::default()
        })?;
        if rows.is_empty() {
            continue;
        }
        let count = |s: &str| rows.iter().filter(|r| r.status.key() == s).count();
        // NBS village names repeat the county and township names.
        let county = township
            .parent
            .as_deref()
            .and_then(|c| divisions.get(c))
            .map_or("", |c| c.name.as_str());
        let name = v
            .name
            .trim_start_matches(county)
            .trim_start_matches(township.name.as_str());
        println!(
            "{} {:>9} {:>9} {:>9} {:>9}",
            pad(name, 30),
            count("draft"),
            count("submitted"),
            count("returned"),
            count("approved")
        );
    }
    let pending = phone.pending_counts()?;
    println!(
        "\nphone outbox: {} changes; photos waiting for upload: {}",
        pending.changes, pending.photos
    );
    Ok(())
}

/// Pads to `cols` terminal columns, counting CJK characters as two.
fn pad(s: &str, cols: usize) -> String {
    let width: usize = s
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(cols.saturating_sub(width)))
}

/// Carries every pending change of `from` into `to` and acknowledges it, as
/// the sync server will.
fn carry(from: &mut Store, to: &mut Store) -> Result<usize> {
    let mut total = 0;
    loop {
        let batch = from.outbox_batch(500, 1 << 20)?;
        if batch.is_empty() {
            return Ok(total);
        }
        let records: Vec<IncomingRecord> = batch
            .iter()
            .map(|e| IncomingRecord {
                doc_id: e.doc_id.clone(),
                kind: e.kind,
                data: e.bytes.clone(),
            })
            .collect();
        let report = to.apply_remote(&records, &[])?;
        anyhow::ensure!(
            report.rejected.is_empty(),
            "changes refused: {:?}",
            report.rejected
        );
        total += batch.len();
        from.acknowledge(&batch.into_iter().map(|e| e.hash).collect::<Vec<_>>())?;
    }
}
