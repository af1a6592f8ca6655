//! `fieldbook sim`: simulated phones, each a real core store, against a
//! running server, through a lossy connection.
//!
//! It provisions its users and sites through the admin HTTP API (as
//! `--admin`, password from `FIELDBOOK_ADMIN_PASSWORD`), runs `--phones`
//! inspectors in parallel who each fill `--inspections` inspections offline
//! and sync through a connection that drops or cuts `--loss` of the
//! exchanges, has a supervisor approve or return what arrives, and prints
//! one JSON line. Everything is derived from `--seed`, so a run is
//! reproducible; re-running a seed reuses its users and sites.
//!
//! A tool, so it reports with `anyhow`; the phases are public for the sync
//! benchmark (`server/examples/sync_bench.rs`).

use anyhow::{Context, Result, bail};
use fieldbook_core::model::{Divisions, GpsFix, Level, Role, Value, area};
use fieldbook_core::photo::PhotoInput;
use fieldbook_core::store::{Identity, InspectionFilter, SiteFilter, Store};
use fieldbook_core::sync::faults::LossyTransport;
use fieldbook_core::sync::http::{HttpTransport, LoginRequest};
use fieldbook_core::sync::{self, SyncOptions, SyncSummary};
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Server URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    #[arg(long, default_value_t = 10)]
    pub phones: usize,
    /// Inspections per phone.
    #[arg(long, default_value_t = 20)]
    pub inspections: usize,
    /// Photos per inspection.
    #[arg(long, default_value_t = 2)]
    pub photos: usize,
    /// Probability that an exchange is dropped or cut, 0–1.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Admin user that provisions users and sites.
    #[arg(long, default_value = "admin")]
    pub admin: String,
    /// Give up on a phone whose server stays unreachable this long, seconds.
    #[arg(long, default_value_t = 120)]
    pub patience: u64,
    /// The `--admin` user's password; read from `FIELDBOOK_ADMIN_PASSWORD`
    /// on the command line, so it never shows in a process list.
    #[arg(skip)]
    pub admin_password: Option<String>,
}

/// The JSON line printed at the end.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Report {
    pub phones: usize,
    pub inspections_created: usize,
    pub inspections_on_server: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub approved: usize,
    pub returned: usize,
    pub rejected: usize,
    pub photos_created: usize,
    /// Photos the phones hold as uploaded: the server acknowledged all
    /// their bytes.
    pub photos_uploaded: u64,
    /// Photos of created inspections the server answered it does not have
    /// (or served with other bytes).
    pub photos_missing: usize,
    /// Photos the server could not be asked about within `--patience`
    /// (unreachable, restarting, failing): not known to be there.
    pub photos_unverified: usize,
    pub requests: u64,
    pub retries: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub seconds: f64,
}

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
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Logs in a user from a new store folder; returns the store and transport.
pub fn login(
    server: &str,
    dir: &std::path::Path,
    user: &str,
    password: &str,
    device: &str,
) -> Result<(Store, HttpTransport)> {
    let actor = Store::prepare(dir)?;
    let mut t = HttpTransport::new(server, None);
    let l = t
        .login(&LoginRequest {
            username: user.into(),
            password: password.into(),
            device: device.into(),
            actor,
        })
        .with_context(|| format!("login as {user}"))?;
    let role = Role::from_key(&l.role).context("unknown role from server")?;
    let store = Store::open(
        dir,
        Identity {
            user: l.user,
            role,
            areas: l.areas,
            device: device.into(),
        },
    )?;
    Ok((store, t))
}

/// Runs sync until it succeeds, retrying with backoff while the server is
/// unreachable or restarting, up to `patience`.
pub fn sync_patiently<T: sync::Transport + fieldbook_core::sync::tus::PhotoTransport>(
    store: &mut Store,
    t: &mut T,
    seed: u64,
    patience: Duration,
) -> Result<SyncSummary> {
    let start = Instant::now();
    let opts = SyncOptions {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        jitter_seed: seed,
        ..SyncOptions::default()
    };
    let mut total = SyncSummary::default();
    let mut wait = Duration::from_millis(100);
    loop {
        match sync::run_all(store, t, &opts, &mut |_| {}, &AtomicBool::new(false)) {
            Ok(s) => {
                total.progress.requests += s.progress.requests;
                total.progress.bytes_up += s.progress.bytes_up;
                total.progress.bytes_down += s.progress.bytes_down;
                total.retries += s.retries;
                total.rejected.extend(s.rejected);
                total.photos.uploaded += s.photos.uploaded;
                total.photos.already_there += s.photos.already_there;
                total.photos.missing_files += s.photos.missing_files;
                total.photos.damaged_files += s.photos.damaged_files;
                total.photos.damaged_files += s.photos.damaged_files;
                total.photos.bytes_sent += s.photos.bytes_sent;
                return Ok(total);
            }
            Err(e @ (sync::SyncError::Transport(_) | sync::SyncError::Wire(_))) => {
                if start.elapsed() > patience {
                    return Err(anyhow::anyhow!(e).context("server unreachable for too long"));
                }
                total.retries += 1;
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A small generated photograph: gradients and noise, different per seed.
pub fn generated_photo(seed: u64) -> Vec<u8> {
    let (w, h) = (480u32, 360u32);
    let mut x = (seed as u32) | 1;
    let tint = (seed >> 32) as u8;
    let img = image::RgbImage::from_fn(w, h, |i, j| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x % 40) as u8;
        image::Rgb([
            ((i * 255 / w) as u8).wrapping_add(n),
            ((j * 255 / h) as u8).wrapping_add(tint),
            tint.wrapping_add(n),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding into memory cannot fail for an RGB image.
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

fn answers(rng: &mut Rng, allow_damage: bool) -> Vec<(String, Value)> {
    let good = !allow_damage || !rng.next().is_multiple_of(5);
    [
        ("toilet_type", Value::from("three_chamber")),
        ("usage", Value::from(if good { "in_use" } else { "idle" })),
        ("enclosure_ok", Value::Bool(true)),
        ("clean_no_odor", Value::Bool(good)),
        (
            "tank_condition",
            Value::from(if good { "intact" } else { "seeping" }),
        ),
        ("pipe_condition", Value::from("normal")),
        ("lid_sealed", Value::Bool(true)),
        ("emptying", Value::from("on_time")),
        ("effluent_to", Value::from("field_reuse")),
        (
            "old_toilet_removed",
            Value::Bool(!rng.next().is_multiple_of(10)),
        ),
        ("aftercare_arranged", Value::Bool(true)),
        (
            "satisfaction",
            Value::from(if good { "satisfied" } else { "dissatisfied" }),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `fieldbook sim`.
pub fn run(args: Args) -> Result<()> {
    let report = simulate(&args)?;
    println!("{}", serde_json::to_string(&report)?);
    if report.lost > 0
        || report.duplicated > 0
        || report.photos_missing > 0
        || report.photos_unverified > 0
    {
        bail!(
            "{} inspections lost, {} duplicated, {} photos missing, {} photos unverified (the server could not be asked within --patience)",
            report.lost,
            report.duplicated,
            report.photos_missing,
            report.photos_unverified
        );
    }
    Ok(())
}

/// What provisioning set up: who the simulated users are and where.
pub struct Plan {
    pub server: String,
    pub tag: String,
    pub password: String,
    /// Township of each phone.
    pub townships: Vec<String>,
    pub patience: Duration,
    pub work: tempfile::TempDir,
}

/// One simulated phone after it filled its inspections offline.
pub struct SimPhone {
    pub store: Store,
    pub transport: LossyTransport<HttpTransport>,
    pub created: Vec<String>,
    pub seed: u64,
    pub summary: SyncSummary,
}

/// Creates the run's users and sites through the admin API (idempotent
/// for a seed).
pub fn provision(args: &Args) -> Result<Plan> {
    if !(0.0..=1.0).contains(&args.loss) {
        bail!("--loss must be between 0 and 1");
    }
    let admin_password = match &args.admin_password {
        Some(p) => p.clone(),
        None => std::env::var("FIELDBOOK_ADMIN_PASSWORD")
            .context("set FIELDBOOK_ADMIN_PASSWORD to the --admin user's password")?,
    };
    let work = tempfile::tempdir()?;
    let patience = Duration::from_secs(args.patience);
    let server = args.server.trim_end_matches('/').to_owned();

    // Townships with a seat, one per phone, chosen by the seed.
    let d = Divisions::luoyang();
    let mut townships: Vec<_> = d
        .within("4103", Level::Township)
        .into_iter()
        .filter(|t| area::has_township_seat(&t.code))
        .collect();
    let mut rng = Rng::new(args.seed);
    for i in (1..townships.len()).rev() {
        townships.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let tag = format!("sim{}", args.seed);
    // Random, never derived from the seed: the run's users stay on the
    // server afterwards. A rerun of a seed sets its users' passwords anew.
    let password = {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };

    let admin_dir = work.path().join("admin");
    let actor = Store::prepare(&admin_dir)?;
    let mut at = HttpTransport::new(&server, None);
    let token = with_patience(patience, || {
        at.login(&LoginRequest {
            username: args.admin.clone(),
            password: admin_password.clone(),
            device: format!("{tag}-admin"),
            actor: actor.clone(),
        })
        .map_err(|e| anyhow::anyhow!("admin login: {e}"))
    })?
    .token;
    let http = agent();
    let post = |path: &str, ct: &str, body: &[u8]| -> Result<u16> {
        with_patience(patience, || {
            let r = http
                .post(format!("{server}{path}"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", ct)
                .send(body)
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let status = r.status().as_u16();
            if status >= 500 {
                bail!("{path}: server error {status}");
            }
            Ok(status)
        })
    };
    let mut chosen = Vec::new();
    let mut csv = String::from("kind,name,village_code,lat,lon\n");
    for p in 0..args.phones {
        let t = townships[p % townships.len()];
        chosen.push(t.code.clone());
        let villages: Vec<_> = d
            .within(&t.code, Level::Village)
            .into_iter()
            .filter(|v| area::is_rural_village(&v.code))
            .collect();
        let villages = if villages.is_empty() {
            d.within(&t.code, Level::Village)
        } else {
            villages
        };
        for j in 0..args.inspections {
            let v = villages[j % villages.len()];
            let lat = 33.6 + (rng.next() % 15_000) as f64 / 10_000.0;
            let lon = 111.1 + (rng.next() % 17_000) as f64 / 10_000.0;
            csv += &format!(
                "household_toilet,{tag} p{p} 户厕 {j} (generated),{},{lat:.5},{lon:.5}\n",
                v.code
            );
        }
    }
    let new_password = serde_json::json!({ "password": password }).to_string();
    let add_user = |name: String, body: serde_json::Value| -> Result<()> {
        match post(
            "/v1/admin/users",
            "application/json",
            body.to_string().as_bytes(),
        )? {
            201 => Ok(()),
            // From an earlier run of this seed: give it this run's password.
            409 => match post(
                &format!("/v1/admin/users/{name}/password"),
                "application/json",
                new_password.as_bytes(),
            )? {
                204 => Ok(()),
                s => bail!("setting the password of {name}: HTTP {s}"),
            },
            s => bail!("creating user {name}: HTTP {s}"),
        }
    };
    for (p, township) in chosen.iter().enumerate() {
        let name = format!("{tag}-p{p}");
        let body = serde_json::json!({"name": name, "password": password, "role": "inspector", "areas": [township]});
        add_user(name, body)?;
    }
    let mut sup_areas = chosen.clone();
    sup_areas.sort();
    sup_areas.dedup();
    let name = format!("{tag}-sup");
    let body = serde_json::json!({"name": name, "password": password, "role": "supervisor", "areas": sup_areas});
    add_user(name, body)?;
    match post("/v1/admin/sites", "text/csv", csv.as_bytes())? {
        200 => {}
        s => bail!("importing sites: HTTP {s}"),
    }
    Ok(Plan {
        server,
        tag,
        password,
        townships: chosen,
        patience,
        work,
    })
}

/// Logs phone `p` in, pulls its sites and fills its inspections offline.
pub fn prepare_phone(plan: &Plan, args: &Args, p: usize) -> Result<SimPhone> {
    let tag = &plan.tag;
    let dir = plan.work.path().join(format!("phone-{p}"));
    let user = format!("{tag}-p{p}");
    let (mut store, t) = with_patience(plan.patience, || {
        login(
            &plan.server,
            &dir,
            &user,
            &plan.password,
            &format!("{tag}-phone-{p}"),
        )
    })?;
    let seed = args.seed.wrapping_mul(1000).wrapping_add(p as u64);
    let mut transport = LossyTransport::new(t, args.loss, seed);
    let summary = sync_patiently(&mut store, &mut transport, seed, plan.patience)?;
    let sites = store.list_sites(&SiteFilter {
        limit: Some(10_000),
        ..Default::default()
    })?;
    let mine: Vec<_> = sites
        .into_iter()
        .filter(|s| s.name.starts_with(&format!("{tag} p{p} ")))
        .collect();
    let mut rng = Rng::new(seed);
    let mut created = Vec::new();
    for s in mine.iter().take(args.inspections) {
        let id = store.start_inspection(&s.id)?;
        // A damaged tank needs a photo of its own, so damage is only
        // simulated when there are photos enough to document it.
        let ans = answers(&mut rng, args.photos >= 3);
        store.set_answers(&id, &ans)?;
        for k in 0..args.photos {
            let field = if k < 2 { "photos" } else { "tank_condition" };
            let png = generated_photo(rng.next());
            store.add_photo(&id, PhotoInput::Bytes(&png), Some(field))?;
        }
        let loc = s.location.unwrap_or(fieldbook_core::model::GeoPoint {
            lat: 34.0,
            lon: 112.0,
        });
        store.set_location(
            &id,
            GpsFix {
                lat: loc.lat,
                lon: loc.lon,
                accuracy_m: 5.0 + (rng.next() % 30) as f64,
                at: (fieldbook_core::store::system_clock())(),
                mock: false,
            },
        )?;
        // With fewer photos than the template needs, inspections stay drafts.
        if args.photos >= 2 {
            store.submit(&id)?;
        }
        created.push(id);
    }
    Ok(SimPhone {
        store,
        transport,
        created,
        seed,
        summary,
    })
}

/// Pushes everything the phone holds, patiently.
pub fn push(phone: &mut SimPhone, patience: Duration) -> Result<()> {
    let s = sync_patiently(
        &mut phone.store,
        &mut phone.transport,
        phone.seed ^ 1,
        patience,
    )?;
    add(&mut phone.summary, &s);
    Ok(())
}

fn add(total: &mut SyncSummary, s: &SyncSummary) {
    total.progress.requests += s.progress.requests;
    total.progress.bytes_up += s.progress.bytes_up;
    total.progress.bytes_down += s.progress.bytes_down;
    total.retries += s.retries;
    total.rejected.extend(s.rejected.iter().cloned());
    total.photos.uploaded += s.photos.uploaded;
    total.photos.already_there += s.photos.already_there;
    total.photos.missing_files += s.photos.missing_files;
    total.photos.damaged_files += s.photos.damaged_files;
    total.photos.bytes_sent += s.photos.bytes_sent;
}

/// Runs the simulation and returns its report.
pub fn simulate(args: &Args) -> Result<Report> {
    let started = Instant::now();
    let plan = provision(args)?;
    let results: Vec<Result<SimPhone>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.phones)
            .map(|p| {
                let plan = &plan;
                scope.spawn(move || -> Result<SimPhone> {
                    let mut phone = prepare_phone(plan, args, p)?;
                    push(&mut phone, plan.patience)?;
                    Ok(phone)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a phone thread panicked")))
            })
            .collect()
    });
    let mut created = Vec::new();
    let mut totals = SyncSummary::default();
    let mut uploaded = 0u32;
    for r in results {
        let mut phone = r?;
        // What each phone holds as uploaded, whatever became of the runs
        // that uploaded it (a run cut by a server kill reports nothing).
        let mut attached = 0;
        for id in &phone.created {
            attached += phone.store.inspection_view(id)?.photos.len() as u32;
        }
        let pending = phone.store.pending_counts()?.photos as u32;
        uploaded += attached.saturating_sub(pending);
        created.extend(phone.created);
        add(&mut totals, &phone.summary);
    }
    totals.photos.uploaded = uploaded;
    totals.photos.already_there = 0;
    review_and_count(&plan, args, &created, &totals, started)
}

/// A supervisor on a good connection approves or returns what arrived, and
/// witnesses what the server holds.
pub fn review_and_count(
    plan: &Plan,
    args: &Args,
    created: &[String],
    totals: &SyncSummary,
    started: Instant,
) -> Result<Report> {
    let tag = &plan.tag;
    let (mut desk, mut dt) = with_patience(plan.patience, || {
        login(
            &plan.server,
            &plan.work.path().join("desk"),
            &format!("{tag}-sup"),
            &plan.password,
            &format!("{tag}-desk"),
        )
    })?;
    sync_patiently(&mut desk, &mut dt, args.seed, plan.patience)?;
    let on_server = desk.list_inspections(&InspectionFilter {
        limit: Some(10_000),
        ..Default::default()
    })?;
    let created_set: HashSet<&String> = created.iter().collect();
    let mut approved = 0;
    let mut returned = 0;
    let mut rng = Rng::new(args.seed ^ 0x5e5);
    for row in &on_server {
        if row.status != fieldbook_core::model::InspectionStatus::Submitted
            || !created_set.contains(&row.id)
        {
            continue;
        }
        if rng.next().is_multiple_of(3) {
            desk.return_inspection(&row.id, "请补充照片 / add a photo")?;
            returned += 1;
        } else {
            desk.approve(&row.id, None)?;
            approved += 1;
        }
    }
    sync_patiently(&mut desk, &mut dt, args.seed ^ 2, plan.patience)?;

    let ids: HashSet<&String> = on_server.iter().map(|r| &r.id).collect();
    let lost = created_set.difference(&ids).count();
    // Every photo of every arrived inspection must be on the server, whole.
    // A server restarting is waited for: only its answer counts.
    let mut photos_created = 0;
    let mut photos_missing = 0;
    let mut photos_unverified = 0;
    for id in created.iter().filter(|id| ids.contains(id)) {
        for p in desk.inspection_view(id)?.photos {
            photos_created += 1;
            match verify_photo(&mut dt, &p.hash, plan.patience) {
                PhotoCheck::Whole => {}
                PhotoCheck::Missing(why) => {
                    eprintln!("photo {} missing: {why}", p.hash);
                    photos_missing += 1;
                }
                PhotoCheck::Unverified(why) => {
                    eprintln!("photo {} unverified: {why}", p.hash);
                    photos_unverified += 1;
                }
            }
        }
    }
    // The same visit stored under two ids would show as two rows of one
    // site by one inspector at one start time.
    let mut seen = HashSet::new();
    let duplicated = on_server
        .iter()
        .filter(|r| !seen.insert((r.site_id.clone(), r.inspector.clone(), r.started_at)))
        .count();
    Ok(Report {
        phones: args.phones,
        inspections_created: created.len(),
        inspections_on_server: on_server
            .iter()
            .filter(|r| created_set.contains(&r.id))
            .count(),
        lost,
        duplicated,
        approved,
        returned,
        rejected: totals.rejected.len(),
        photos_created,
        photos_uploaded: u64::from(totals.photos.uploaded + totals.photos.already_there),
        photos_missing,
        photos_unverified,
        requests: u64::from(totals.progress.requests),
        retries: u64::from(totals.retries),
        bytes_up: totals.progress.bytes_up,
        bytes_down: totals.progress.bytes_down,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the server said of one photo.
enum PhotoCheck {
    /// Served, and its bytes hash to its name.
    Whole,
    /// The server answered that it does not have it (or served other bytes).
    Missing(String),
    /// The server could not be asked within the patience.
    Unverified(String),
}

/// Asks the server for a photo, waiting through restarts and outages up to
/// `patience`: only an answer from the server decides.
fn verify_photo(t: &mut HttpTransport, hash: &str, patience: Duration) -> PhotoCheck {
    use fieldbook_core::sync::TransportError;
    let start = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let why = match t.get_photo(hash) {
            Ok(bytes) if blake3::hash(&bytes).to_hex().as_str() == hash => {
                return PhotoCheck::Whole;
            }
            Ok(bytes) => {
                return PhotoCheck::Missing(format!(
                    "the server sent {} bytes that hash to something else",
                    bytes.len()
                ));
            }
            Err(TransportError::Refused { status: 404, .. }) => {
                return PhotoCheck::Missing("the server has no such photo".into());
            }
            Err(e) => e.to_string(),
        };
        if start.elapsed() > patience {
            return PhotoCheck::Unverified(why);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Retries `f` with backoff while it fails, up to `patience`.
fn with_patience<T>(patience: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() < patience && is_transient(&e) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &anyhow::Error) -> bool {
    let s = format!("{e:#}");
    s.contains("unreachable")
        || s.contains("Connection refused")
        || s.contains("connection")
        || s.contains("server error")
        || s.contains("io:")
}
