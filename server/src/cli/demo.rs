//! `fieldbook demo`: the newcomer's first command.
//!
//! One run shows the whole system on real Luoyang divisions: a generated
//! site registry, a real server on 127.0.0.1 with embedded SQLite in a fresh
//! folder, simulated inspectors (each a real phone store) filling in
//! checklists of every kind offline and syncing through a connection that
//! drops requests, a supervisor approving and returning, and the coverage
//! table county offices report, written as CSV and XLSX. The server is left
//! running with its address and logins printed (`--exit` stops instead).
//! Seeded: the same seed gives the same registry, visits and answers.

use anyhow::{Context, Result, bail};
use fieldbook_core::model::indicator::{Indicators, Period};
use fieldbook_core::model::{Divisions, GpsFix, InspectionStatus, Level, SiteKind, Value, area};
use fieldbook_core::photo::PhotoInput;
use fieldbook_core::store::{InspectionFilter, SiteFilter, Store};
use fieldbook_core::sync::faults::LossyTransport;
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::devtools::sim;
use fieldbook_server::http::{AppState, NewUser, app, create_user_record};
use fieldbook_server::storage::Records;
use fieldbook_server::{coverage, export};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Data folder (default: a new temporary folder, removed on exit).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Simulated inspectors, one per township.
    #[arg(long, default_value_t = 12)]
    phones: usize,
    /// Inspections per inspector.
    #[arg(long, default_value_t = 40)]
    inspections: usize,
    /// Share of requests and responses the network drops or cuts.
    #[arg(long, default_value_t = 0.2)]
    loss: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Stop the server at the end instead of leaving it running.
    #[arg(long)]
    exit: bool,
}

/// xorshift: enough for demo choices, the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn step(started: Instant, text: impl std::fmt::Display) {
    println!("[{:5.1}s] {text}", started.elapsed().as_secs_f64());
}

/// Fills in inspection `id` from its template the way an inspector would:
/// answers for the visible fields, the photos they ask for, the position.
fn fill(
    store: &mut Store,
    id: &str,
    kind: SiteKind,
    at: Option<fieldbook_core::model::GeoPoint>,
    rng: &mut Rng,
) -> Result<()> {
    let t = store
        .templates()
        .latest(kind)
        .context("no template for the site kind")?
        .clone();
    let good = rng.unit() < 0.8;
    let answers = fieldbook_server::devtools::answers::plausible(&t, good, rng.next());
    let list: Vec<(String, Value)> = answers.clone().into_iter().collect();
    store.set_answers(id, &list)?;
    for f in &t.fields {
        for _ in 0..t.photos_needed(&f.key, &answers) {
            let png = sim::generated_photo(rng.next());
            store.add_photo(id, PhotoInput::Bytes(&png), Some(&f.key))?;
        }
    }
    let p = at.unwrap_or(fieldbook_core::model::GeoPoint {
        lat: 34.6,
        lon: 112.4,
    });
    store.set_location(
        id,
        GpsFix {
            lat: p.lat + (rng.unit() - 0.5) * 0.0004,
            lon: p.lon + (rng.unit() - 0.5) * 0.0004,
            accuracy_m: 4.0 + 20.0 * rng.unit(),
            at: (fieldbook_core::store::system_clock())(),
            mock: false,
        },
    )?;
    Ok(())
}

/// A password nobody can derive from the seed: the demo's server may be
/// left running on a network.
fn random_password() -> Result<String> {
    let mut raw = [0u8; 12];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Columns `s` takes on a terminal: CJK characters take two.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

pub fn run(args: Args) -> Result<()> {
    if !(0.0..=0.9).contains(&args.loss) {
        bail!("--loss must be between 0 and 0.9");
    }
    let started = Instant::now();
    let (dir, temp) = match &args.data {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("fieldbook-demo-")
                .tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    step(started, format_args!("data folder {}", dir.display()));
    let divisions = Divisions::luoyang();
    let villages = divisions.within("4103", Level::Village);
    step(
        started,
        format_args!(
            "Luoyang divisions: {} counties, {} townships, {} villages ({} rural)",
            divisions.within("4103", Level::County).len(),
            divisions.within("4103", Level::Township).len(),
            villages.len(),
            villages
                .iter()
                .filter(|v| area::is_rural_village(&v.code))
                .count()
        ),
    );

    let storage = super::serve::open_storage(&dir)?;
    let now = (fieldbook_core::store::system_clock())();
    let registry = generate(
        divisions,
        &RegistryOptions {
            seed: args.seed,
            ..RegistryOptions::default()
        },
        now,
    );
    let operator = fieldbook_server::storage::Identity {
        user: "demo".into(),
        role: fieldbook_core::model::Role::Admin,
        areas: vec![fieldbook_core::policy::WHOLE_DEPLOYMENT.into()],
        device: "demo".into(),
    };
    let added = storage.import_sites(&registry, &operator, now)?;
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &registry {
        *by_kind.entry(s.kind.label_zh()).or_default() += 1;
    }
    step(
        started,
        format_args!(
            "generated registry: {} sites ({added} new): {}",
            registry.len(),
            by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // Users: an admin, a county office, a supervisor, one inspector per
    // township with a seat (chosen by the seed).
    let mut rng = Rng::new(args.seed);
    let password = random_password()?;
    let mut townships: Vec<String> = divisions
        .within("4103", Level::Township)
        .into_iter()
        .filter(|t| area::has_township_seat(&t.code))
        .map(|t| t.code.clone())
        .collect();
    for i in (1..townships.len()).rev() {
        townships.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    townships.truncate(args.phones.max(1));
    let add_user = |name: &str, role: &str, areas: Vec<String>| {
        create_user_record(
            storage.as_ref(),
            &NewUser {
                name: name.into(),
                password: password.clone(),
                role: role.into(),
                areas,
            },
            None,
            now,
        )
        .or_else(|e| match e {
            // A kept data folder already has the users.
            fieldbook_server::error::AppError::Conflict(_) => Ok(()),
            e => Err(e),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
    };
    add_user("admin", "admin", vec!["4103".into()])?;
    add_user("county", "county_office", vec!["4103".into()])?;
    add_user("supervisor", "supervisor", townships.clone())?;
    for t in &townships {
        add_user(&format!("inspector-{t}"), "inspector", vec![t.clone()])?;
    }

    // The server, on its own runtime thread.
    let state = AppState::new(storage.clone(), dir.join("photos"))?;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listen = args.listen.clone();
    let server = std::thread::spawn(move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let _ = addr_tx.send(listener.local_addr()?);
            fieldbook_server::http::listen::serve_default(listener, app(state), async {
                let _ = stop_rx.await;
            })
            .await?;
            Ok(())
        })
    });
    let addr = addr_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the server did not start"))?;
    let url = format!("http://{addr}");
    step(started, format_args!("server listening on {url}"));

    // Inspectors, offline, then syncing through a lossy connection.
    let patience = Duration::from_secs(120);
    let work = dir.join("phones");
    let results: Vec<Result<(usize, usize, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = townships
            .iter()
            .enumerate()
            .map(|(p, township)| {
                let (url, work, password) = (&url, &work, &password);
                let args = &args;
                scope.spawn(move || -> Result<(usize, usize, u64)> {
                    let user = format!("inspector-{township}");
                    let (mut store, t) = sim::login(
                        url,
                        &work.join(&user),
                        &user,
                        password,
                        &format!("{user}-phone"),
                    )?;
                    let seed = args.seed.wrapping_mul(1000).wrapping_add(p as u64);
                    let mut t = LossyTransport::new(t, args.loss, seed);
                    sim::sync_patiently(&mut store, &mut t, seed, patience)?;
                    let mut sites = store.list_sites(&SiteFilter {
                        limit: Some(10_000),
                        ..SiteFilter::default()
                    })?;
                    let mut rng = Rng::new(seed);
                    for i in (1..sites.len()).rev() {
                        sites.swap(i, (rng.next() % (i as u64 + 1)) as usize);
                    }
                    // Facilities first, as a township's inspection round
                    // goes; household toilets fill the rest of the day.
                    sites.sort_by_key(|s| s.kind == SiteKind::HouseholdToilet);
                    let (mut submitted, mut drafts) = (0, 0);
                    for s in sites.iter().take(args.inspections) {
                        let id = store.start_inspection(&s.id)?;
                        fill(&mut store, &id, s.kind, s.location, &mut rng)?;
                        if store.submit(&id).is_ok() {
                            submitted += 1;
                        } else {
                            drafts += 1;
                        }
                    }
                    let summary = sim::sync_patiently(&mut store, &mut t, seed ^ 1, patience)?;
                    Ok((submitted, drafts, u64::from(summary.retries)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an inspector thread panicked")))
            })
            .collect()
    });
    let (mut submitted, mut drafts, mut retries) = (0, 0, 0);
    for r in results {
        let (s, d, re) = r?;
        submitted += s;
        drafts += d;
        retries += re;
    }
    step(
        started,
        format_args!(
            "{} inspectors synced {submitted} submitted inspections and {drafts} drafts through a connection losing {:.0}% of messages ({retries} retries)",
            townships.len(),
            args.loss * 100.0
        ),
    );

    // The supervisor reviews on a good connection.
    let (mut desk, mut dt) = sim::login(
        &url,
        &work.join("supervisor"),
        "supervisor",
        &password,
        "supervisor-desk",
    )?;
    sim::sync_patiently(&mut desk, &mut dt, args.seed, patience)?;
    let queue = desk.list_inspections(&InspectionFilter {
        status: Some(InspectionStatus::Submitted),
        limit: Some(10_000),
        ..InspectionFilter::default()
    })?;
    // One in ten is left waiting, so the console opens on work to do.
    let (mut approved, mut returned, mut waiting) = (0, 0, 0);
    for row in &queue {
        match rng.next() % 10 {
            0 | 1 => {
                desk.return_inspection(&row.id, "请补拍现场照片 / retake the site photos")?;
                returned += 1;
            }
            2 => waiting += 1,
            _ => {
                desk.approve(&row.id, None)?;
                approved += 1;
            }
        }
    }
    sim::sync_patiently(&mut desk, &mut dt, args.seed ^ 2, patience)?;
    step(
        started,
        format_args!(
            "supervisor approved {approved} and returned {returned}; {waiting} wait for review"
        ),
    );

    // Coverage, as the county office reports it.
    let year: i32 = fieldbook_core::model::workflow::china_date(now)
        .get(..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(2026);
    let defs = Indicators::builtin();
    let rows = coverage::coverage_rows(
        storage.as_ref(),
        defs,
        divisions,
        "4103",
        Period::year(year),
        &mut |_| {},
    )?;
    let shown = [
        ("sanitary_toilet_rate", "卫生厕所"),
        ("rural_sewage_rate", "污水治理"),
        ("township_seat_sewage", "驻地污水"),
        ("garbage_coverage", "垃圾收运"),
        ("outfall_rectified", "排污口整治"),
    ];
    // The table: the city and its counties, then the townships visited.
    let visited: std::collections::HashSet<&str> = townships.iter().map(String::as_str).collect();
    let mut areas: Vec<(String, String)> = rows
        .iter()
        .filter(|r| {
            r.level == Level::County
                || r.level == Level::City
                || visited.contains(r.area_code.as_str())
        })
        .map(|r| (r.area_code.clone(), r.area_name.clone()))
        .collect();
    areas.sort_by_key(|(code, _)| (code.len() > 6, code.clone()));
    areas.dedup();
    println!();
    println!(
        "Coverage {year}: rate / target, from approved inspections only; counties, then the {} townships visited",
        visited.len()
    );
    let mut line = pad_right("区划 area", 22);
    for (_, h) in shown {
        line.push_str(&pad_left(h, 14));
    }
    println!("{line}");
    for (code, name) in areas {
        let mut line = pad_right(&name, 22);
        for (id, _) in shown {
            let cell = rows
                .iter()
                .find(|r| r.indicator == id && r.area_code == code)
                .map_or_else(String::new, |r| {
                    let target = r
                        .target
                        .map_or_else(String::new, |t| format!("/{:.0}%", t * 100.0));
                    format!("{}{target}", percent(r.rate))
                });
            line.push_str(&pad_left(&cell, 14));
        }
        println!("{line}");
    }
    let csv_path = dir.join(format!("coverage-{year}.csv"));
    let xlsx_path = dir.join(format!("coverage-{year}.xlsx"));
    export::write_coverage_csv(
        rows.clone().into_iter(),
        defs,
        std::fs::File::create(&csv_path)?,
        &mut |_| {},
    )?;
    export::write_coverage_xlsx(
        rows.into_iter(),
        defs,
        std::fs::File::create(&xlsx_path)?,
        &mut |_| {},
    )?;
    println!();
    step(
        started,
        format_args!("wrote {} and {}", csv_path.display(), xlsx_path.display()),
    );

    if args.exit {
        let _ = stop_tx.send(());
        server
            .join()
            .map_err(|_| anyhow::anyhow!("the server thread panicked"))??;
        drop(temp);
        return Ok(());
    }
    println!();
    println!("The server keeps running at {url}");
    println!("  review console: open {url}/ in a browser and log in as");
    println!("    supervisor     (审核员: the review queue)   password {password}");
    println!("    county         (县级办公室: coverage, map, downloads) password {password}");
    println!("    admin          (管理员: users, devices, registry)    password {password}");
    if let Some(t) = townships.first() {
        println!("    inspector-{t} (巡查员, the phone's user) password {password}");
    }
    println!("  e.g. curl -H 'authorization: Bearer …' '{url}/v1/exports/coverage?format=csv'");
    println!(
        "  data in {} (removed when stopped unless --data was given)",
        dir.display()
    );
    println!("Press Ctrl-C to stop.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let _ = stop_tx.send(());
    server
        .join()
        .map_err(|_| anyhow::anyhow!("the server thread panicked"))??;
    drop(temp);
    Ok(())
}
