//! The review console on a large data folder: server time of the review
//! queue and of the inspection page, against a reference in the same run.
//!
//! `populate DIR N` builds a data folder the way phones would: the
//! generated Luoyang registry, and N inspections (default 100,000) pushed
//! through the real ingest path as whole documents, most submitted and
//! waiting, with template-complete answers, photo references and a fix.
//! `run DIR` then serves the folder on loopback with the real router,
//! logs in to the console as a supervisor of the whole city and times:
//!
//! - the reference: the queue's own first-page SQL on a reader connection
//!   (what the page cannot do without);
//! - the queue's first page, a filtered page (a township and a kind), a
//!   page 200 deep (by key), and the all-status view with its counts;
//! - the inspection page of random inspections.
//!
//! ```text
//! cargo build --release -p fieldbook-server --example console_bench
//! target/release/examples/console_bench populate /tmp/console-bench 100000
//! target/release/examples/console_bench run /tmp/console-bench
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool.

use automerge::{ActorId, Automerge};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{
    Divisions, Event, EventKind, GpsFix, Inspection, PhotoRef, Role, Templates,
};
use fieldbook_core::sync::wire::{Item, ItemKind, doc_id_bytes};
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::http::{AppState, NewUser, app, create_user_record};
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use fieldbook_server::storage::{Identity, Outcome, Session};
use std::sync::Arc;
use std::time::Instant;

const PASSWORD: &str = "bench password 1";
const AREA: &str = "4103";

fn session(user: &str, role: Role, actor: &ActorId) -> Session {
    Session {
        pusher: Identity {
            user: user.into(),
            role,
            areas: vec![AREA.into()],
            device: format!("{user}-device"),
        },
        actor: actor.to_hex_string(),
        expires_at: i64::MAX,
    }
}

fn populate(dir: &str, n: usize) {
    let dir = std::path::Path::new(dir);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let storage = SqliteStorage::open(&dir.join("server.db")).unwrap();
    let now = fieldbook_core::store::system_clock()();
    for (name, role) in [("inspector", "inspector"), ("supervisor", "supervisor")] {
        create_user_record(
            &storage,
            &NewUser {
                name: name.into(),
                password: PASSWORD.into(),
                role: role.into(),
                areas: vec![AREA.into()],
            },
            None,
            now,
        )
        .unwrap();
    }
    let actor = ActorId::random();
    let s = session("inspector", Role::Inspector, &actor);
    storage
        .register_device(
            "inspector",
            &s.pusher.device,
            &s.actor,
            "bench-token",
            i64::MAX,
            now,
        )
        .unwrap();
    let registry = generate(Divisions::luoyang(), &RegistryOptions::default(), now);
    let operator = Identity {
        user: "bench".into(),
        role: Role::Admin,
        areas: vec!["*".into()],
        device: "bench".into(),
    };
    storage.import_sites(&registry, &operator, now).unwrap();
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..n {
        let site = &registry[(i * 7919) % registry.len()];
        let t = Templates::builtin().latest(site.kind).unwrap();
        let answers = fieldbook_server::devtools::answers::plausible(t, i % 5 != 0, i as u64);
        let at = now - ((n - i) as i64) * 60_000;
        let mut photos = Vec::new();
        for f in &t.fields {
            for k in 0..t.photos_needed(&f.key, &answers) {
                let h = blake3::hash(format!("{i}-{}-{k}", f.key).as_bytes());
                photos.push(PhotoRef {
                    hash: h.to_hex().to_string(),
                    field: Some(f.key.clone()),
                    bytes: 180_000,
                    width: 1600,
                    height: 1200,
                    phash: format!("{:016x}", i as u64 * 31 + k as u64),
                    taken_at: Some(at - 120_000),
                    gps: None,
                    added_at: at - 60_000,
                });
            }
        }
        photos.sort_by(|a, b| a.hash.cmp(&b.hash));
        let id = uuid::Uuid::now_v7().to_string();
        let p = site.location.unwrap_or(fieldbook_core::model::GeoPoint {
            lat: 34.6,
            lon: 112.4,
        });
        let ins = Inspection {
            id: id.clone(),
            site_id: site.id.clone(),
            site_kind: site.kind,
            village_code: site.village_code.clone(),
            template_version: t.version,
            inspector: "inspector".into(),
            device: s.pusher.device.clone(),
            started_at: at - 600_000,
            location: Some(GpsFix {
                lat: p.lat + 0.0002,
                lon: p.lon - 0.0001,
                accuracy_m: 8.0,
                at: at - 300_000,
                mock: false,
            }),
            answers,
            conflicts: Default::default(),
            photos,
            notes: Vec::new(),
            // One in ten stays a draft; the rest wait for review.
            events: if i % 10 == 9 {
                Vec::new()
            } else {
                vec![Event {
                    id: uuid::Uuid::now_v7().to_string(),
                    kind: EventKind::Submitted,
                    author: "inspector".into(),
                    role: Role::Inspector,
                    at,
                    revision: Some(1),
                    comment: None,
                    responsible: None,
                    deadline: None,
                }]
            },
        };
        let mut d = Automerge::new().with_actor(actor.clone());
        let mut tx = d.transaction();
        fieldbook_core::doc::inspection::create(&mut tx, &ins).unwrap();
        tx.commit();
        batch.push(Item {
            kind: ItemKind::Document,
            record: RecordKind::Inspection,
            doc_id: doc_id_bytes(&id).unwrap(),
            data: d.save(),
        });
        if batch.len() == 500 || i + 1 == n {
            for o in storage.ingest(&s, &batch, now).unwrap() {
                assert!(matches!(o, Outcome::Stored { .. }), "{o:?}");
            }
            batch.clear();
            eprint!("\r{} inspections", i + 1);
        }
    }
    eprintln!(
        "\rpopulated {n} inspections on {} sites in {:.0} s",
        registry.len(),
        started.elapsed().as_secs_f64()
    );
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn run(dir: &str) {
    let dir = std::path::Path::new(dir);
    let storage = Arc::new(SqliteStorage::open(&dir.join("server.db")).unwrap());
    let state = AppState::new(storage.clone(), dir.join("photos")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(fieldbook_server::http::listen::serve_default(
        listener,
        app(state),
        std::future::pending(),
    ));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let login = agent
        .post(format!("{url}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(
            format!(
                "username=supervisor&password={}",
                PASSWORD.replace(' ', "+")
            )
            .as_bytes(),
        )
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let get = |path: &str| -> (f64, usize) {
        let t = Instant::now();
        let r = agent
            .get(format!("{url}{path}"))
            .header("cookie", &cookie)
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let n = r.into_body().read_to_vec().unwrap().len();
        (t.elapsed().as_secs_f64() * 1e3, n)
    };
    let counts = storage.counts().unwrap();
    println!("data: {} records", counts.documents);

    // Reference: the first page's query alone.
    let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
    let mut refs = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let mut st = conn
            .prepare_cached(
                "SELECT i.id, s.name FROM inspections i LEFT JOIN sites s ON s.id = i.site_id
                 WHERE i.submitted_at IS NOT NULL AND i.status = 'submitted'
                 ORDER BY i.submitted_at, i.id LIMIT 51",
            )
            .unwrap();
        let n = st.query_map([], |_| Ok(())).unwrap().count();
        assert_eq!(n, 51);
        refs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (ref_med, ref_p99) = stats(refs);
    println!("reference, first-page SQL: median {ref_med:.2} ms, p99 {ref_p99:.2} ms");

    // A key 200 pages deep.
    let deep: (i64, String) = conn
        .query_row(
            "SELECT submitted_at, id FROM inspections WHERE status = 'submitted'
             ORDER BY submitted_at, id LIMIT 1 OFFSET 10000",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let township: String = conn
        .query_row(
            "SELECT substr(village_code, 1, 9) FROM inspections GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM inspections ORDER BY random() LIMIT 200")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pages = [
        ("queue, first page", "/queue".to_owned()),
        (
            "queue, township + kind",
            format!("/queue?area={township}&kind=household_toilet"),
        ),
        (
            "queue, 200 pages deep",
            format!("/queue?after={}.{}", deep.0, deep.1),
        ),
        ("queue, all statuses", "/queue?status=all".to_owned()),
    ];
    for (name, path) in &pages {
        get(path);
        let mut ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let (t, n) = get(path);
            ms.push(t);
            bytes = n;
        }
        let (med, p99) = stats(ms);
        println!(
            "{name}: median {med:.2} ms, p99 {p99:.2} ms ({bytes} bytes); median / reference {:.1}",
            med / ref_med
        );
    }
    let mut ms = Vec::new();
    let mut bytes = 0;
    for id in &ids {
        let (t, n) = get(&format!("/inspections/{id}"));
        ms.push(t);
        bytes = bytes.max(n);
    }
    let (med, p99) = stats(ms);
    println!(
        "inspection page, 200 random: median {med:.2} ms, p99 {p99:.2} ms (largest {bytes} bytes); median / reference {:.1}",
        med / ref_med
    );
    println!("goals: median <= 50 ms, p99 <= 150 ms");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("populate"), Some(dir)) => populate(
            dir,
            args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000),
        ),
        (Some("run"), Some(dir)) => run(dir),
        _ => eprintln!("usage: console_bench populate DIR [N] | run DIR"),
    }
}
