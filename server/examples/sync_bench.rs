//! Sync benchmark: bytes on the wire, requests, and server ingest rate.
//! Run through `bench/sync.sh`, which starts a release server and reads its
//! peak memory; by hand: `FIELDBOOK_ADMIN_PASSWORD=… cargo run --release -p
//! fieldbook-server --example sync_bench -- URL [PHONES INSPECTIONS]`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool.

use fieldbook_core::model::{Role, SiteKind, Value};
use fieldbook_core::store::{Identity, NewSite, Store};
use fieldbook_core::sync::Transport;
use fieldbook_core::sync::wire::{SyncRequest, SyncResponse};
use fieldbook_server::devtools::sim;
use std::time::{Duration, Instant};

/// 30 answers of a rural sewage facility inspection, all valid.
fn sewage_answers(i: usize) -> Vec<(String, Value)> {
    let v: Vec<(&str, Value)> = vec![
        ("mode", "centralised".into()),
        ("capacity_m3_per_day", Value::Number(40.0 + i as f64)),
        ("households_served", Value::Number(120.0)),
        ("running_status", "normal".into()),
        ("inflow", "normal".into()),
        ("effluent_look", "clear".into()),
        ("lab_cod_mg_l", Value::Number(35.5)),
        ("lab_nh3n_mg_l", Value::Number(4.2)),
        ("lab_tp_mg_l", Value::Number(0.6)),
        ("lab_ss_mg_l", Value::Number(12.0)),
        ("equipment_ok", true.into()),
        ("network", "intact".into()),
        ("operator_and_log", true.into()),
        ("sludge_disposed", true.into()),
        ("signboard", true.into()),
    ];
    v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn request_bytes(store: &mut Store) -> usize {
    let items = store.outgoing_items(10_000, usize::MAX).unwrap();
    let n = SyncRequest {
        cursor: 123_456,
        page_bytes: 0,
        items: items.iter().map(|o| o.item.clone()).collect(),
    }
    .encode()
    .len();
    let hashes: Vec<String> = items.into_iter().flat_map(|o| o.covers).collect();
    store.acknowledge_items(&hashes).unwrap();
    n
}

fn wire_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(
        dir.path(),
        Identity {
            user: "bench".into(),
            role: Role::Inspector,
            areas: vec!["4103".into()],
            device: "d".into(),
        },
    )
    .unwrap();
    let site = s
        .add_site(NewSite {
            kind: SiteKind::RuralSewage,
            name: "污水站".into(),
            village_code: "410324101201".into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    request_bytes(&mut s);
    let t = s.templates().latest(SiteKind::RuralSewage).unwrap();
    let id = s.start_inspection(&site).unwrap();
    let answers = sewage_answers(1);
    let valid: Vec<_> = answers
        .into_iter()
        .filter(|(k, v)| t.check_value(k, v).is_ok())
        .collect();
    s.set_answers(&id, &valid).unwrap();
    s.set_location(
        &id,
        fieldbook_core::model::GpsFix {
            lat: 34.1,
            lon: 112.2,
            accuracy_m: 6.0,
            at: 0,
            mock: false,
        },
    )
    .unwrap();
    // Photos are out of this measure, so the template's photo requirement
    // keeps it a draft; submission is one more small event.
    let submitted = s.submit(&id).is_ok();
    let new = request_bytes(&mut s);
    s.set_answers(
        &id,
        &[
            ("households_served".into(), Value::Number(130.0)),
            ("lab_cod_mg_l".into(), Value::Number(30.0)),
            ("signboard".into(), false.into()),
        ],
    )
    .ok();
    // If submitted, edits are closed: measure on a fresh draft instead.
    let id2 = s.start_inspection(&site).unwrap();
    s.set_answers(&id2, &valid).unwrap();
    request_bytes(&mut s);
    s.set_answers(
        &id2,
        &[
            ("households_served".into(), Value::Number(130.0)),
            ("lab_cod_mg_l".into(), Value::Number(30.0)),
            ("signboard".into(), false.into()),
        ],
    )
    .unwrap();
    let edit = request_bytes(&mut s);
    println!(
        "wire: new inspection ({} answers, location{}), one request, envelope included: {new} B (goal <= 900)",
        valid.len(),
        if submitted { ", submitted" } else { ", draft" }
    );
    println!(
        "wire: 3-field edit of a synced inspection, one request, envelope included: {edit} B (goal <= 250)"
    );
}

/// VmRSS of a process, KiB.
fn rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of a process, seconds.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    wire_bytes();
    let Some(server) = args.first().cloned() else {
        println!("(no server URL given: skipping the server benchmarks)");
        return;
    };
    let phones: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let inspections: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);

    // One phone with 500 pending inspections: how many requests?
    let one = sim::Args {
        server: server.clone(),
        phones: 1,
        inspections: 500,
        photos: 0,
        loss: 0.0,
        seed: 9001,
        admin: "admin".into(),
        patience: 60,
        admin_password: None,
    };
    let plan = sim::provision(&one).unwrap();
    let mut phone = sim::prepare_phone(&plan, &one, 0).unwrap();
    let before = phone.summary.progress.requests;
    sim::push(&mut phone, plan.patience).unwrap();
    println!(
        "requests: a phone with 500 pending inspections synced in {} requests, {} B up, {} B down (goal <= 5)",
        phone.summary.progress.requests - before,
        phone.summary.progress.bytes_up,
        phone.summary.progress.bytes_down
    );

    // Many phones fill offline, then push at once.
    let many = sim::Args {
        server,
        phones,
        inspections,
        photos: 0,
        loss: 0.0,
        seed: 9002,
        admin: "admin".into(),
        patience: 120,
        admin_password: None,
    };
    let t0 = Instant::now();
    let plan = sim::provision(&many).unwrap();
    let mut prepared: Vec<sim::SimPhone> = std::thread::scope(|s| {
        let chunks: Vec<Vec<usize>> = (0..phones)
            .collect::<Vec<_>>()
            .chunks(phones.div_ceil(8))
            .map(|c| c.to_vec())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                let (plan, many) = (&plan, &many);
                s.spawn(move || {
                    c.into_iter()
                        .map(|p| sim::prepare_phone(plan, many, p).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "prepared {phones} phones x {inspections} inspections offline in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    // The server's resident memory, sampled while the phones push.
    let server_pid = std::env::var("FIELDBOOK_SERVER_PID").ok();
    let sampling = std::sync::atomic::AtomicBool::new(true);
    let cpu_before = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    let start = Instant::now();
    let peak_rss_kb = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0u64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = server_pid.as_deref().and_then(rss_kb) {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        let pushers: Vec<_> = prepared
            .iter_mut()
            .map(|p| {
                let patience = plan.patience;
                s.spawn(move || sim::push(p, patience).unwrap())
            })
            .collect();
        for h in pushers {
            h.join().unwrap();
        }
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap()
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    if peak_rss_kb > 0 {
        println!(
            "server memory during ingest: peak VmRSS {:.1} MB (goal <= 200 MB)",
            peak_rss_kb as f64 / 1024.0
        );
    }
    let total = phones * inspections;
    let requests: u32 = prepared.iter().map(|p| p.summary.progress.requests).sum();
    println!(
        "ingest: {total} inspections from {phones} phones in {secs:.2} s = {:.0} inspections/s ({requests} requests) (goal >= 2000)",
        total as f64 / secs
    );
    if let ((Some(s0), Some(c0)), (Some(s1), Some(c1))) = (cpu_before, cpu_after) {
        println!(
            "cpu during ingest: server {:.2} s, phones {:.2} s",
            s1 - s0,
            c1 - c0
        );
    }

    // The server alone: the same kind of pushes, encoded before the clock
    // starts, so the phones' own work (building saves, applying pages)
    // does not share the two cores with the server being measured. The
    // cursor is past the end of the log, so replies carry acks, no pages.
    let fresh = sim::Args { seed: 9003, ..many };
    let plan = sim::provision(&fresh).unwrap();
    let mut prepared: Vec<(sim::SimPhone, Vec<u8>)> = (0..phones)
        .map(|p| {
            let mut phone = sim::prepare_phone(&plan, &fresh, p).unwrap();
            let items = phone.store.outgoing_items(10_000, usize::MAX).unwrap();
            let body = SyncRequest {
                cursor: i64::MAX as u64,
                page_bytes: 0,
                items: items.iter().map(|o| o.item.clone()).collect(),
            }
            .encode();
            (phone, body)
        })
        .collect();
    let cpu_before = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    let start = Instant::now();
    let acked: usize = std::thread::scope(|s| {
        let handles: Vec<_> = prepared
            .iter_mut()
            .map(|(phone, body)| {
                s.spawn(move || {
                    let reply = Transport::sync(phone.transport.inner_mut(), body).unwrap();
                    SyncResponse::decode(&reply).unwrap().acked.len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    println!(
        "server ingest, requests encoded beforehand: {acked} inspections acknowledged from {phones} phones in {secs:.2} s = {:.0} inspections/s (goal >= 2000)",
        acked as f64 / secs
    );
    if let ((Some(s0), Some(c0)), (Some(s1), Some(c1))) = (cpu_before, cpu_after) {
        println!(
            "cpu during that ingest: server {:.2} s, client {:.2} s",
            s1 - s0,
            c1 - c0
        );
    }
    std::thread::sleep(Duration::from_millis(100));
}
