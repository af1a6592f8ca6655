//! A seeded, deterministic fault simulation of Fieldbook: two or three
//! inspector phones and one or two supervisor desks, each a real core
//! store in its own folder, and one real server (the axum router over
//! SQLite in a folder), connected by an in-process network that the seed
//! controls.
//!
//! One seed decides everything: how many devices, each one's clock skew
//! (up to two days either way), what the users do and when they sync, and
//! every fault — requests lost, held back and delivered late (reordered,
//! stale duplicates), delivered twice, or reaching the server cut at any
//! byte; replies lost or cut at any byte; photo uploads cut after any chunk
//! the server sees, or with the server dying mid-write ([`net`]); the
//! server process dying before or after any storage call and restarting
//! from its files; a phone dying before any store access of a sync and
//! reopening its store ([`crash`]); the server's clock jumping past every
//! token's lifetime in the middle of syncs, after which phones log in again
//! through the same faulty network. Users also keep working while a sync is
//! on the wire (the engine holds the store only between exchanges).
//! Everything runs on one thread, one request at a time, so a seed replays
//! the same run; [`Trace`] records it and its hash tells two runs apart.
//!
//! Record ids and actor ids are random (UUIDv7) in the core, so the bytes
//! on the wire differ between two runs of a seed. Nothing the simulation
//! decides depends on them: a cut consumes the same draws whatever the
//! length and any cut fails the same way, page and batch limits are chosen
//! so that they never fall between byte counts, and the trace holds no ids
//! or sizes.
//!
//! After the fault phase the network heals: faults stop, held requests
//! arrive, every device logs in if it must and syncs until a full round
//! moves nothing. Then [`check`] verifies the invariants of `docs/ARCHITECTURE.md`
//! against what the simulation did: every replica holds the same documents
//! with the same heads, views and statuses as the server; every change any
//! phone's store ever queued is on the server and on every phone (nothing
//! acknowledged is lost) and no other change is (nothing invented); no
//! record, list row, log row or workflow event is duplicated; the server's
//! projections equal a recomputation from its documents, and each phone's
//! lists agree with its documents; every photo an inspection references is
//! on the server with the right BLAKE3 hash.
//!
//! Users act only as their local view allows (an inspector edits and
//! submits their inspections while drafts or returned, from any of their
//! devices; a supervisor reviews what their desk sees submitted; anyone
//! comments and raises or advances findings), so every change is one the
//! server must accept: a rejection is a failure. While every action was
//! taken on a view that agreed with the users' history, the expected status
//! and revision of an inspection are known and checked; once two devices
//! acted concurrently on one (two desks reviewing it, two devices of an
//! inspector submitting it), only convergence is.

pub mod check;
pub mod crash;
pub mod net;

use crate::toilet_answers;
use crash::{CrashingAccess, PhoneCrash};
use fieldbook_core::model::{EventKind, InspectionStatus, Role, SiteKind, Value};
use fieldbook_core::photo::{self, Compressed, PhotoInput, PhotoOptions};
use fieldbook_core::store::{
    FindingAction, FindingFilter, Identity, InspectionFilter, NewFinding, NewSite, Store,
};
use fieldbook_core::sync::http::LoginRequest;
use fieldbook_core::sync::{SyncError, SyncOptions, TransportError};
use fieldbook_server::storage::UserRecord;
use fieldbook_server::storage::prelude::*;
use net::{Link, Net, Server};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The county every user works in; all records lie in its villages.
pub const COUNTY: &str = "410324";
const VILLAGES: [&str; 2] = ["410324101201", "410324101202"];
/// Password of every simulated user (hashed once per process).
const PASSWORD: &str = "simulated password";
/// Start of simulated time, Unix milliseconds (2026-06-01).
const EPOCH_MS: i64 = 1_780_272_000_000;

/// splitmix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_F42D_4C95_7F2D)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What happened, line by line, and a hash of it (FNV-1a).
#[derive(Debug, Clone)]
pub struct Trace {
    pub lines: Vec<String>,
    pub hash: u64,
    /// Print lines as they happen (a single seed being reproduced).
    pub echo: bool,
}

impl Trace {
    pub fn new(echo: bool) -> Trace {
        Trace {
            lines: Vec::new(),
            hash: 0xcbf2_9ce4_8422_2325,
            echo,
        }
    }

    pub fn push(&mut self, line: String) {
        for b in line.bytes().chain([b'\n']) {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        if self.echo {
            println!("{line}");
        }
        self.lines.push(line);
    }
}

/// What one seed did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub trace_lines: usize,
    pub phones: usize,
    pub inspections: usize,
    pub syncs: u64,
    pub phone_crashes: u64,
    pub relogins: u64,
    pub net: net::NetStats,
    pub server_restarts: u32,
}

/// A seed that broke an invariant (or the harness).
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub message: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "SIMULATION FAILED seed={}: {}", self.seed, self.message)?;
        if self.seed >= UPLOAD_CUT_SEEDS {
            writeln!(
                f,
                "  reproduce: cargo test -p fieldbook-tests --test simulation a_photo_upload_cut -- --nocapture"
            )?;
        } else {
            writeln!(
                f,
                "  reproduce: FIELDBOOK_SIM_SEED={} cargo test -p fieldbook-tests --test simulation -- --nocapture",
                self.seed
            )?;
        }
        let skip = self.trace.len().saturating_sub(60);
        writeln!(f, "  last {} trace lines:", self.trace.len() - skip)?;
        for l in &self.trace[skip..] {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// Photos attached by simulated inspectors: small real JPEGs from the
/// core's pipeline, made once per process.
fn photo_pool() -> &'static [Compressed] {
    static POOL: OnceLock<Vec<Compressed>> = OnceLock::new();
    POOL.get_or_init(|| {
        (1..=6u64)
            .map(|i| {
                let png = fieldbook_server::devtools::sim::generated_photo(i * 0x1_0000_0001 + 7);
                photo::compress_input(PhotoInput::Bytes(&png), &PhotoOptions::default())
                    .unwrap_or_else(|e| panic!("test photo {i} does not compress: {e}"))
            })
            .collect()
    })
}

/// The argon2 hash of [`PASSWORD`], made once per process: hashing is
/// deliberately slow.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        fieldbook_server::auth::hash_password(PASSWORD)
            .unwrap_or_else(|e| panic!("password hash: {e}"))
    })
}

/// One simulated device.
pub struct Phone {
    pub user: String,
    pub role: Role,
    pub device: String,
    pub dir: PathBuf,
    /// Behind a mutex because the user keeps working while a sync is on
    /// the wire, as the app does.
    pub store: Mutex<Store>,
    pub token: Option<String>,
    pub skew_ms: i64,
    clock: fieldbook_core::store::Clock,
}

impl Phone {
    fn identity(&self) -> Identity {
        Identity {
            user: self.user.clone(),
            role: self.role,
            areas: vec![COUNTY.into()],
            device: self.device.clone(),
        }
    }

    pub fn db(&mut self) -> &mut Store {
        self.store
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The process died: drop the store and open it again from its folder.
    fn reopen(&mut self) -> Result<(), String> {
        // The old handle holds no open transaction (unwinding rolled back
        // any), so a second connection sees what a restarted process would.
        let fresh = Store::open_with_clock(&self.dir, self.identity(), self.clock.clone())
            .map_err(|e| format!("store of {} does not reopen: {e}", self.device))?;
        drop(std::mem::replace(self.db(), fresh));
        Ok(())
    }
}

/// What the users did to one inspection, in the order they did it.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub id: String,
    pub site: String,
    /// Index of the phone that started it.
    pub owner: usize,
    /// The inspector (any of their devices may edit it).
    pub inspector: String,
    /// Status and revision the users' actions imply, while every action
    /// was taken on a view that agreed with them; once two devices acted
    /// concurrently (`concurrent`), only convergence is checked.
    pub status: InspectionStatus,
    pub revision: u32,
    pub concurrent: bool,
    /// Workflow events written (submit, review, comment).
    pub events: usize,
    pub photos: Vec<String>,
    /// Phones that acted on it: only a record more than one device worked
    /// on can have a change the server refuses.
    pub devices: BTreeSet<usize>,
}

/// A finding the users raised.
#[derive(Debug, Clone)]
pub struct FindingModel {
    pub id: String,
    /// Workflow events written (found, then each step), while no step of
    /// it was refused as concurrent (`concurrent`).
    pub events: usize,
    pub concurrent: bool,
    pub devices: BTreeSet<usize>,
}

/// The simulation of one seed.
pub struct Sim {
    pub seed: u64,
    pub rng: Rng,
    pub net: Net,
    pub phones: Vec<Phone>,
    /// Simulated time, Unix milliseconds (phones add their skew).
    pub now: Arc<AtomicI64>,
    pub sites: Vec<String>,
    pub inspections: Vec<Inspection>,
    index: HashMap<String, usize>,
    pub findings: Vec<FindingModel>,
    finding_index: HashMap<String, usize>,
    /// Every change hash any phone's outbox ever held, by record id, but
    /// those the server refused.
    pub ledger: BTreeMap<String, BTreeSet<String>>,
    /// Changes the server refused because another device acted on the
    /// record first (two desks reviewing one submission, an edit arriving
    /// after the approval); the refusing phone dropped them.
    pub refused: BTreeSet<String>,
    pub syncs: u64,
    pub phone_crashes: u64,
    pub relogins: u64,
    server_crashes_planned: u32,
}

impl Sim {
    /// Sets up the server and the phones in `dir`.
    pub fn new(seed: u64, dir: &Path, echo: bool) -> Result<Sim, String> {
        let mut rng = Rng::new(seed);
        let now = Arc::new(AtomicI64::new(EPOCH_MS));
        let server_clock = Arc::new(AtomicI64::new(EPOCH_MS));
        let server_dir = dir.join("server");
        std::fs::create_dir_all(&server_dir).map_err(|e| e.to_string())?;
        let server = Server::open(&server_dir, server_clock)?;
        let net_rng = Rng::new(rng.next_u64());
        let mut net = Net::new(server, net_rng, Trace::new(echo))?;

        let inspectors = 2 + rng.below(2) as usize;
        let mut users: Vec<(String, Role)> = vec![("wang.fang".into(), Role::Supervisor)];
        let mut phones_of: Vec<(String, Role, String)> = Vec::new();
        for i in 0..inspectors {
            // Two devices of one inspector when the seed says so.
            let user = if i == 1 && rng.chance(500) {
                "insp0".to_owned()
            } else {
                format!("insp{i}")
            };
            if !users.iter().any(|(u, _)| *u == user) {
                users.push((user.clone(), Role::Inspector));
            }
            phones_of.push((user, Role::Inspector, format!("phone-{i}")));
        }
        phones_of.push(("wang.fang".into(), Role::Supervisor, "desk".into()));
        if rng.chance(300) {
            // A second desk of the same supervisor: concurrent reviews.
            phones_of.push(("wang.fang".into(), Role::Supervisor, "desk-2".into()));
        }
        let storage = net.server.storage()?;
        for (name, role) in &users {
            storage
                .create_user(&UserRecord {
                    name: name.clone(),
                    password_hash: password_hash().to_owned(),
                    role: *role,
                    areas: vec![COUNTY.into()],
                    created_at: EPOCH_MS,
                    disabled: false,
                })
                .map_err(|e| format!("user {name}: {e}"))?;
        }
        let mut phones = Vec::new();
        for (i, (user, role, device)) in phones_of.into_iter().enumerate() {
            let pdir = dir.join(format!("phone{i}"));
            let actor = Store::prepare(&pdir).map_err(|e| e.to_string())?;
            let (token, hash) = fieldbook_server::auth::new_token()?;
            storage
                .register_device(
                    &user,
                    &device,
                    &actor,
                    &hash,
                    EPOCH_MS + fieldbook_server::auth::TOKEN_TTL_MS,
                    EPOCH_MS,
                )
                .map_err(|e| format!("device {device}: {e}"))?;
            // Up to two days either way.
            let skew_ms = rng.below(4 * 86_400_000) as i64 - 2 * 86_400_000;
            let t = now.clone();
            let clock: fieldbook_core::store::Clock =
                Arc::new(move || t.load(Ordering::SeqCst) + skew_ms);
            let identity = Identity {
                user: user.clone(),
                role,
                areas: vec![COUNTY.into()],
                device: device.clone(),
            };
            let store = Store::open_with_clock(&pdir, identity, clock.clone())
                .map_err(|e| format!("store {device}: {e}"))?;
            net.trace.push(format!(
                "p{i}: {device} of {user} ({}), clock {:+} min",
                role.key(),
                skew_ms / 60_000
            ));
            phones.push(Phone {
                user,
                role,
                device,
                dir: pdir,
                store: Mutex::new(store),
                token: Some(token),
                skew_ms,
                clock,
            });
        }
        Ok(Sim {
            seed,
            rng,
            net,
            phones,
            now,
            sites: Vec::new(),
            inspections: Vec::new(),
            index: HashMap::new(),
            findings: Vec::new(),
            finding_index: HashMap::new(),
            ledger: BTreeMap::new(),
            refused: BTreeSet::new(),
            syncs: 0,
            phone_crashes: 0,
            relogins: 0,
            server_crashes_planned: 0,
        })
    }

    fn trace(&mut self, line: String) {
        self.net.trace.push(line);
    }

    fn advance(&mut self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
        self.net.server.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// Notes every change waiting in phone `p`'s outbox: the store said it
    /// saved them, so they must reach every replica.
    fn note_outbox(&mut self, p: usize) -> Result<(), String> {
        let entries = self.phones[p]
            .db()
            .outbox_batch(1_000_000, usize::MAX)
            .map_err(|e| format!("p{p} outbox: {e}"))?;
        for e in entries {
            self.ledger.entry(e.doc_id).or_default().insert(e.hash);
        }
        Ok(())
    }

    /// The fault phase: users work and sync through the faulty network.
    pub fn run(&mut self, steps: usize) -> Result<(), String> {
        self.net.faults = true;
        self.net.fault_per_mille = [100, 200, 350][self.rng.below(3) as usize];
        let expiries = [0, 0, 1, 2][self.rng.below(4) as usize];
        let mut at = 0;
        for _ in 0..expiries {
            at += 5 + self.rng.below(80);
            self.net.expire_at.push(at);
        }
        self.net
            .server
            .plan
            .lock()
            .map_err(|e| e.to_string())?
            .armed = true;
        let f = self.net.fault_per_mille;
        self.trace(format!(
            "faults {f}‰, token expiries after exchanges {:?}",
            self.net.expire_at
        ));
        for step in 0..steps {
            let dt = self.rng.below(20 * 60_000) as i64;
            self.advance(dt);
            let p = self.rng.below(self.phones.len() as u64) as usize;
            if self.rng.chance(350) {
                self.sync(p, true)?;
            } else {
                self.act(p, step)?;
            }
        }
        Ok(())
    }

    /// One thing a user does on phone `p`.
    fn act(&mut self, p: usize, step: usize) -> Result<(), String> {
        let local = self.phones[p]
            .db()
            .list_inspections(&InspectionFilter::default())
            .map_err(|e| format!("p{p} list: {e}"))?;
        if self.rng.chance(200) {
            self.finding_step(p, &local)?;
            return self.note_outbox(p);
        }
        let roll = self.rng.below(100);
        if self.phones[p].role == Role::Supervisor {
            let submitted: Vec<_> = local
                .iter()
                .filter(|s| s.status == InspectionStatus::Submitted)
                .collect();
            if roll < 85 && !submitted.is_empty() {
                let pick = submitted[self.rng.below(submitted.len() as u64) as usize];
                let (id, rev) = (pick.id.clone(), pick.revision);
                let i = self.known(&id)?;
                let ins = &mut self.inspections[i];
                ins.devices.insert(p);
                if (ins.status, ins.revision) != (InspectionStatus::Submitted, rev) {
                    // Another desk reviewed it, or the inspector moved on.
                    ins.concurrent = true;
                }
                if self.rng.chance(600) {
                    self.phones[p]
                        .db()
                        .approve(&id, Some("符合要求"))
                        .map_err(|e| format!("p{p} approve r{i}: {e}"))?;
                    self.inspections[i].status = InspectionStatus::Approved;
                    self.trace(format!("p{p} approves r{i} rev {rev}"));
                } else {
                    self.phones[p]
                        .db()
                        .return_inspection(&id, &format!("请补充 {step}"))
                        .map_err(|e| format!("p{p} return r{i}: {e}"))?;
                    self.inspections[i].status = InspectionStatus::Returned;
                    self.trace(format!("p{p} returns r{i} rev {rev}"));
                }
                self.inspections[i].events += 1;
            } else {
                self.comment(p, &local, step)?;
            }
            return self.note_outbox(p);
        }
        // Any device of the inspector edits: two devices of one user may
        // work on one record concurrently.
        let user = &self.phones[p].user;
        let own_editable: Vec<(String, InspectionStatus, u32)> = local
            .iter()
            .filter(|s| s.status.editable() && s.inspector == *user)
            .map(|s| (s.id.clone(), s.status, s.revision))
            .collect();
        let owned = self.inspections.iter().filter(|i| i.owner == p).count();
        if roll < 25 && owned < 4 {
            self.create(p)?;
        } else if roll < 45 && !own_editable.is_empty() {
            let (id, _, _) =
                own_editable[self.rng.below(own_editable.len() as u64) as usize].clone();
            let i = self.known(&id)?;
            self.inspections[i].devices.insert(p);
            let v = ["satisfied", "mostly_satisfied", "dissatisfied"][self.rng.below(3) as usize];
            self.phones[p]
                .db()
                .set_answer(&id, "satisfaction", Value::from(v))
                .map_err(|e| format!("p{p} edit r{i}: {e}"))?;
            self.trace(format!("p{p} edits r{i}"));
        } else if roll < 90 && !own_editable.is_empty() {
            let (id, status, rev) =
                own_editable[self.rng.below(own_editable.len() as u64) as usize].clone();
            let i = self.known(&id)?;
            self.phones[p]
                .db()
                .submit(&id)
                .map_err(|e| format!("p{p} submit r{i}: {e}"))?;
            let ins = &mut self.inspections[i];
            ins.devices.insert(p);
            if (ins.status, ins.revision) != (status, rev) {
                ins.concurrent = true;
            }
            ins.status = InspectionStatus::Submitted;
            ins.revision = rev + 1;
            ins.events += 1;
            let rev = ins.revision;
            self.trace(format!("p{p} submits r{i} rev {rev}"));
        } else {
            self.comment(p, &local, step)?;
        }
        self.note_outbox(p)
    }

    /// Raises a finding on an inspection's site, or takes a step of a
    /// finding's lifecycle that this user's role and the local status allow.
    fn finding_step(
        &mut self,
        p: usize,
        local: &[fieldbook_core::store::InspectionSummary],
    ) -> Result<(), String> {
        let role = self.phones[p].role;
        let findings = self.phones[p]
            .db()
            .list_findings(&FindingFilter::default())
            .map_err(|e| format!("p{p} findings: {e}"))?;
        let options: Vec<(String, EventKind)> = findings
            .iter()
            .flat_map(|f| {
                f.status
                    .steps_for(role)
                    .into_iter()
                    .map(|k| (f.id.clone(), k))
            })
            .collect();
        if !options.is_empty() && self.rng.chance(650) {
            let (id, kind) = options[self.rng.below(options.len() as u64) as usize].clone();
            let n = self
                .finding_index
                .get(&id)
                .copied()
                .ok_or_else(|| format!("p{p} lists finding {id} that nobody raised"))?;
            let action = FindingAction {
                kind,
                comment: Some("整改情况".into()),
                responsible: (kind == EventKind::Assigned).then(|| "村委会".to_owned()),
                deadline: (kind == EventKind::Assigned).then(|| "2026-07-01".to_owned()),
            };
            self.phones[p]
                .db()
                .advance_finding(&id, action)
                .map_err(|e| format!("p{p} {} f{n}: {e}", kind.key()))?;
            self.findings[n].events += 1;
            self.findings[n].devices.insert(p);
            self.trace(format!("p{p} {} f{n}", kind.key()));
            return Ok(());
        }
        if local.is_empty() || !EventKind::Found.allowed_roles().contains(&role) {
            return Ok(());
        }
        let pick = &local[self.rng.below(local.len() as u64) as usize];
        let i = self.known(&pick.id)?;
        let id = self.phones[p]
            .db()
            .raise_finding(NewFinding {
                inspection_id: Some(pick.id.clone()),
                site_id: pick.site_id.clone(),
                title: "化粪池渗漏".into(),
                description: "盖板破损".into(),
                deadline: None,
            })
            .map_err(|e| format!("p{p} raise a finding on r{i}: {e}"))?;
        let n = self.findings.len();
        self.finding_index.insert(id.clone(), n);
        self.findings.push(FindingModel {
            id,
            events: 1,
            concurrent: false,
            devices: BTreeSet::from([p]),
        });
        self.trace(format!("p{p} raises f{n} on r{i}"));
        Ok(())
    }

    fn known(&self, id: &str) -> Result<usize, String> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| format!("a phone lists inspection {id} that nobody created"))
    }

    fn comment(
        &mut self,
        p: usize,
        local: &[fieldbook_core::store::InspectionSummary],
        step: usize,
    ) -> Result<(), String> {
        if local.is_empty() {
            return Ok(());
        }
        let id = local[self.rng.below(local.len() as u64) as usize]
            .id
            .clone();
        let i = self.known(&id)?;
        self.inspections[i].devices.insert(p);
        self.phones[p]
            .db()
            .comment(&id, &format!("备注 {step}"))
            .map_err(|e| format!("p{p} comment r{i}: {e}"))?;
        self.inspections[i].events += 1;
        self.trace(format!("p{p} comments on r{i}"));
        Ok(())
    }

    /// An inspector adds a site found in the field and inspects it: full
    /// answers and two photos, ready to submit.
    fn create(&mut self, p: usize) -> Result<(), String> {
        let n = self.sites.len();
        let village = VILLAGES[self.rng.below(2) as usize];
        let pool = photo_pool();
        let a = self.rng.below(pool.len() as u64) as usize;
        let b = (a + 1 + self.rng.below(pool.len() as u64 - 1) as usize) % pool.len();
        let store = self.phones[p].db();
        let err = |what: &str, e: fieldbook_core::store::StoreError| format!("p{p} {what}: {e}");
        let site = store
            .add_site(NewSite {
                kind: SiteKind::HouseholdToilet,
                name: format!("户厕 {n}"),
                village_code: village.into(),
                location: None,
                attributes: Default::default(),
            })
            .map_err(|e| err("add site", e))?;
        let id = store
            .start_inspection(&site)
            .map_err(|e| err("start inspection", e))?;
        store
            .set_answers(&id, &toilet_answers(true))
            .map_err(|e| err("answers", e))?;
        let mut photos = Vec::new();
        for k in [a, b] {
            let r = store
                .attach_compressed_photo(&id, pool[k].clone(), Some("photos"))
                .map_err(|e| err("photo", e))?;
            photos.push(r.hash);
        }
        let i = self.inspections.len();
        self.sites.push(site);
        self.index.insert(id.clone(), i);
        self.inspections.push(Inspection {
            id,
            site: self.sites[n].clone(),
            owner: p,
            inspector: self.phones[p].user.clone(),
            status: InspectionStatus::Draft,
            revision: 0,
            concurrent: false,
            events: 0,
            photos,
            devices: BTreeSet::from([p]),
        });
        self.trace(format!(
            "p{p} inspects new site s{n} as r{i} (photos {a}, {b})"
        ));
        Ok(())
    }

    /// Takes in the changes the server refused phone `p`: each must be a
    /// workflow conflict on a record more than one device worked on. The
    /// record is then known to be concurrent, and the refused changes (which
    /// the phone dropped) leave the ledger.
    fn absorb_refusals(&mut self, p: usize) -> Result<(), String> {
        let rejections = self.phones[p]
            .db()
            .sync_rejections()
            .map_err(|e| e.to_string())?;
        for r in rejections {
            if self.refused.contains(&r.hash) {
                continue;
            }
            let conflict = matches!(r.code.as_str(), "forbidden" | "invalid" | "need_document");
            let devices = if let Some(&i) = self.index.get(&r.doc_id) {
                self.inspections[i].concurrent = true;
                self.inspections[i].devices.len()
            } else if let Some(&n) = self.finding_index.get(&r.doc_id) {
                self.findings[n].concurrent = true;
                self.findings[n].devices.len()
            } else {
                0
            };
            if !conflict || devices < 2 {
                return Err(format!(
                    "p{p}: the server refused a change no other device competed with: {r:?}"
                ));
            }
            if let Some(l) = self.ledger.get_mut(&r.doc_id) {
                l.remove(&r.hash);
            }
            self.trace(format!(
                "p{p}: the server refused {} of {}: {}",
                &r.hash[..8],
                r.doc_id,
                r.message
            ));
            self.refused.insert(r.hash);
        }
        Ok(())
    }

    /// Logs phone `p` in through the network.
    fn login(&mut self, p: usize) -> Result<bool, String> {
        let phone = &mut self.phones[p];
        let req = LoginRequest {
            username: phone.user.clone(),
            password: PASSWORD.into(),
            device: phone.device.clone(),
            actor: phone.db().actor_hex(),
        };
        let mut link = Link {
            net: &mut self.net,
            phone: p,
            name: phone.user.clone(),
            token: None,
            broken: None,
            user: None,
            edits: Vec::new(),
        };
        let r = link.login(&req);
        if let Some(b) = link.broken {
            return Err(b);
        }
        match r {
            Ok(login) => {
                phone.token = Some(login.token);
                self.relogins += 1;
                self.net.trace.push(format!("p{p} logged in again"));
                Ok(true)
            }
            Err(e) => {
                self.net
                    .trace
                    .push(format!("p{p} login failed: {}", kind(&e)));
                Ok(false)
            }
        }
    }

    /// One sync run of phone `p`; with `faults`, the phone may die in it.
    /// `None`: the run did not finish (the network, a crash, the token).
    fn sync(&mut self, p: usize, faults: bool) -> Result<Option<Movement>, String> {
        self.syncs += 1;
        if self.phones[p].token.is_none() && !self.login(p)? {
            return Ok(None);
        }
        if faults && self.server_crashes_planned < 3 {
            let mut plan = self.net.server.plan.lock().map_err(|e| e.to_string())?;
            if plan.crash_at.is_none() && self.rng.chance(250) {
                let at = plan.ops + 1 + self.rng.below(40);
                let after = self.rng.chance(500);
                plan.crash_at = Some((at, after));
                drop(plan);
                self.server_crashes_planned += 1;
                self.trace(format!(
                    "server will crash {} storage call {at}",
                    if after { "after" } else { "before" }
                ));
            }
        }
        let crash_at = if faults && self.rng.chance(150) {
            Some(self.rng.below(14) as u32)
        } else {
            None
        };
        let opts = SyncOptions {
            batch_items_max: 1 + self.rng.below(4) as usize,
            // One item per page, or everything at once: never a limit that
            // falls between byte counts (see the module doc).
            page_bytes: if self.rng.chance(500) { 1 } else { 0 },
            attempts_max: 3,
            backoff_base: std::time::Duration::ZERO,
            backoff_max: std::time::Duration::ZERO,
            jitter_seed: self.seed,
            ..SyncOptions::default()
        };
        let phone = &self.phones[p];
        let mut access = CrashingAccess {
            store: &phone.store,
            left: crash_at,
            made: 0,
        };
        let mut link = Link {
            net: &mut self.net,
            phone: p,
            name: phone.user.clone(),
            token: phone.token.clone(),
            broken: None,
            user: faults.then_some((&phone.store, phone.user.as_str())),
            edits: Vec::new(),
        };
        let never = AtomicBool::new(false);
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            fieldbook_core::sync::run_all(&mut access, &mut link, &opts, &mut |_| {}, &never)
        }));
        let made = access.made;
        if let Some(b) = link.broken.take() {
            return Err(b);
        }
        let edits = std::mem::take(&mut link.edits);
        drop(link);
        for e in edits {
            let i = self.known(&e.inspection)?;
            self.inspections[i].devices.insert(p);
            if e.comment {
                self.inspections[i].events += 1;
            }
            for (doc, hash) in e.queued {
                self.ledger.entry(doc).or_default().insert(hash);
            }
            self.trace(format!(
                "p{p} {} r{i} while the sync was on the wire",
                if e.comment { "commented on" } else { "edited" }
            ));
        }
        // Refusals are on the phone's record whatever became of the run.
        self.absorb_refusals(p)?;
        match r {
            Err(payload) if payload.is::<PhoneCrash>() => {
                self.phone_crashes += 1;
                self.trace(format!(
                    "p{p} crashed before store access {made} of a sync; reopened"
                ));
                self.phones[p].reopen()?;
                Ok(None)
            }
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(Ok(s)) => {
                let m = Movement {
                    up: s.progress.records_up,
                    down: s.progress.records_down,
                    photos: u64::from(s.photos.uploaded),
                };
                self.trace(format!(
                    "p{p} synced: up {} down {} photos {}+{} retries {}",
                    m.up, m.down, s.photos.uploaded, s.photos.already_there, s.retries
                ));
                if s.photos.missing_files > 0 {
                    return Err(format!(
                        "p{p}: {} photo files missing",
                        s.photos.missing_files
                    ));
                }
                Ok(Some(m))
            }
            Ok(Err(SyncError::Transport(TransportError::Unauthorized))) => {
                self.trace(format!("p{p} sync: token refused, will log in"));
                self.phones[p].token = None;
                Ok(None)
            }
            Ok(Err(SyncError::Transport(e))) => {
                self.trace(format!("p{p} sync gave up: {}", kind(&e)));
                Ok(None)
            }
            Ok(Err(SyncError::Wire(_))) => {
                self.trace(format!("p{p} sync gave up: malformed replies"));
                Ok(None)
            }
            Ok(Err(e)) => Err(format!("p{p} sync failed: {e}")),
        }
    }

    /// The network heals and every phone syncs until a full round moves
    /// nothing.
    pub fn heal(&mut self) -> Result<(), String> {
        self.net.faults = false;
        self.net.expire_at.clear();
        {
            let mut plan = self.net.server.plan.lock().map_err(|e| e.to_string())?;
            plan.armed = false;
            plan.crash_at = None;
        }
        self.trace("network heals".into());
        self.net.release_held(true)?;
        for round in 0..6 {
            let mut moved = false;
            for p in 0..self.phones.len() {
                if self.phones[p].token.is_none() && !self.login(p)? {
                    return Err(format!("p{p} cannot log in on a healed network"));
                }
                let mut m = self.sync(p, false)?;
                if m.is_none() && self.phones[p].token.is_none() {
                    // The token expired in the fault phase and this phone
                    // has not heard yet.
                    if !self.login(p)? {
                        return Err(format!("p{p} cannot log in on a healed network"));
                    }
                    m = self.sync(p, false)?;
                }
                let Some(m) = m else {
                    return Err(format!("p{p} did not finish a sync on a healed network"));
                };
                let pending = self.phones[p]
                    .db()
                    .pending_counts()
                    .map_err(|e| e.to_string())?;
                if pending.changes > 0 || pending.photos > 0 {
                    return Err(format!(
                        "p{p} still has {pending:?} after a sync on a healed network"
                    ));
                }
                moved |= m != Movement::default();
            }
            if !moved && round >= 1 {
                return Ok(());
            }
        }
        Err("the phones never stopped exchanging on a healed network".into())
    }

    pub fn report(&self) -> SeedReport {
        SeedReport {
            seed: self.seed,
            trace_hash: self.net.trace.hash,
            trace_lines: self.net.trace.lines.len(),
            phones: self.phones.len(),
            inspections: self.inspections.len(),
            syncs: self.syncs,
            phone_crashes: self.phone_crashes,
            relogins: self.relogins,
            net: self.net.stats,
            server_restarts: self.net.server.restarts,
        }
    }
}

/// What a sync moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Movement {
    up: u64,
    down: u64,
    photos: u64,
}

fn kind(e: &TransportError) -> &'static str {
    match e {
        TransportError::Unreachable(_) => "unreachable",
        TransportError::Unauthorized => "unauthorized",
        TransportError::Refused { .. } => "refused",
        TransportError::Server { .. } => "server error",
    }
}

/// A folder for one run: memory-backed when the system has one, since
/// every commit of the server's and each phone's SQLite file is flushed
/// (`FIELDBOOK_SIM_TMP` chooses another place).
fn temp_dir() -> std::io::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("fieldbook-sim-");
    if let Some(d) = std::env::var_os("FIELDBOOK_SIM_TMP") {
        return b.tempdir_in(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(t) = b.tempdir_in(shm)
    {
        return Ok(t);
    }
    b.tempdir()
}

/// Steps of user activity per seed.
pub const STEPS: usize = 60;

/// Runs one seed end to end: set-up, fault phase, healing, checks.
pub fn run_seed(seed: u64, echo: bool) -> Result<SeedReport, Failure> {
    crash::quiet_simulated_crashes();
    let fail = |message: String, trace: Vec<String>| Failure {
        seed,
        message,
        trace,
    };
    let tmp = temp_dir().map_err(|e| fail(format!("temp dir: {e}"), Vec::new()))?;
    let mut sim = Sim::new(seed, tmp.path(), echo).map_err(|m| fail(m, Vec::new()))?;
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        sim.run(STEPS)?;
        sim.heal()?;
        check::all(&mut sim)
    }));
    let message = match r {
        Ok(Ok(())) => return Ok(sim.report()),
        Ok(Err(m)) => m,
        Err(p) => format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ),
    };
    Err(fail(message, sim.net.trace.lines.clone()))
}

/// Seeds of the upload-cut scenarios, apart from the random ones.
const UPLOAD_CUT_SEEDS: u64 = 1 << 40;

/// Pieces the largest simulated photo takes on the wire.
pub fn photo_pieces_max() -> usize {
    photo_pool()
        .iter()
        .map(|c| c.jpeg.len().div_ceil(net::PIECE_BYTES))
        .max()
        .unwrap_or(0)
}

/// How the server dies during the first photo upload of
/// [`upload_crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadCrash {
    /// The upload is cut after this many pieces reached the server (0:
    /// before any; the photo's piece count: after all of them, the
    /// acknowledgement lost).
    CutAfter(usize),
    /// The server dies after writing all of the last piece, before it
    /// checked the photo and kept it under its name.
    FinishingLastPiece,
    /// The server dies creating the upload: the declared length is on
    /// disk, the file of its bytes is not.
    Creating,
}

/// An inspector's first photo upload is cut after `piece` pieces reached
/// the server; the same sync must resume it from the server's offset, and
/// every invariant must hold afterwards.
pub fn upload_cut_after(piece: usize) -> Result<SeedReport, Failure> {
    upload_crash(UploadCrash::CutAfter(piece))
}

/// An inspector syncs one inspection with photos while the server dies as
/// `how` says during the first upload; the photos must all end up on the
/// server, whole, and every invariant must hold.
pub fn upload_crash(how: UploadCrash) -> Result<SeedReport, Failure> {
    let piece = match how {
        UploadCrash::CutAfter(k) => k,
        UploadCrash::FinishingLastPiece => usize::MAX,
        UploadCrash::Creating => 0,
    };
    crash::quiet_simulated_crashes();
    let seed = UPLOAD_CUT_SEEDS
        + match how {
            UploadCrash::CutAfter(k) => k as u64 % 1000,
            UploadCrash::FinishingLastPiece => 1000,
            UploadCrash::Creating => 1001,
        };
    let fail = |message: String, trace: Vec<String>| Failure {
        seed,
        message,
        trace,
    };
    let tmp = temp_dir().map_err(|e| fail(format!("temp dir: {e}"), Vec::new()))?;
    let mut sim = Sim::new(seed, tmp.path(), false).map_err(|m| fail(m, Vec::new()))?;
    let r = (|| -> Result<(), String> {
        sim.create(0)?;
        sim.note_outbox(0)?;
        match how {
            UploadCrash::Creating => sim.net.forced_create_crash = true,
            UploadCrash::FinishingLastPiece => {
                sim.net.forced_cut = Some(piece);
                sim.net.forced_torn_whole = true;
            }
            UploadCrash::CutAfter(_) => sim.net.forced_cut = Some(piece),
        }
        sim.sync(0, false)?;
        if how == UploadCrash::Creating {
            if sim.net.stats.server_crashes != 1 {
                return Err("the server did not die creating the upload".into());
            }
        } else if sim.net.stats.uploads_cut != 1 {
            return Err("the upload was not cut".into());
        }
        sim.heal()?;
        check::all(&mut sim)
    })();
    match r {
        Ok(()) => Ok(sim.report()),
        Err(m) => Err(fail(m, sim.net.trace.lines.clone())),
    }
}
