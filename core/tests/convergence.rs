//! Property: replicas that receive the same changes, in any order, show the
//! same records, statuses and projection rows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod common;

use common::*;
use fieldbook_core::model::{EventKind, Role, Value};
use fieldbook_core::store::{
    FindingAction, FindingFilter, IncomingRecord, InspectionFilter, NewFinding, OutboxEntry,
    SiteFilter, Store,
};
use proptest::prelude::*;

/// One thing a replica does offline.
#[derive(Debug, Clone)]
enum Op {
    Answer(usize, usize),
    Clear(usize),
    Note(u8),
    Photo(u8),
    Submit,
    Review(bool),
    Comment(u8),
    FindingStep(usize),
}

const FIELDS: [(&str, &[&str]); 4] = [
    (
        "satisfaction",
        &["satisfied", "mostly_satisfied", "dissatisfied"],
    ),
    ("usage", &["in_use", "idle", "unusable"]),
    ("pipe_condition", &["normal", "reversed", "blocked"]),
    ("emptying", &["on_time", "overflowing", "dumped"]),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..FIELDS.len(), 0..3usize).prop_map(|(f, v)| Op::Answer(f, v)),
        1 => (0..FIELDS.len()).prop_map(Op::Clear),
        1 => any::<u8>().prop_map(Op::Note),
        1 => (0..4u8).prop_map(Op::Photo),
        1 => Just(Op::Submit),
        1 => any::<bool>().prop_map(Op::Review),
        1 => any::<u8>().prop_map(Op::Comment),
        1 => (0..4usize).prop_map(Op::FindingStep),
    ]
}

/// Applies `op` if the replica's role and the record's state allow it;
/// refusals are expected and change nothing.
fn apply(s: &mut Store, ins: &str, finding: &str, op: &Op) {
    let _ = match op {
        Op::Answer(f, v) => s.set_answer(ins, FIELDS[*f].0, Value::from(FIELDS[*f].1[*v])),
        Op::Clear(f) => s.clear_answer(ins, FIELDS[*f].0),
        Op::Note(n) => s.add_note(ins, &format!("note {n}")),
        Op::Photo(n) => s.add_photo_ref(ins, photo(*n, Some("photos"))),
        Op::Submit => s.submit(ins),
        Op::Review(true) => s.approve(ins, None),
        Op::Review(false) => s.return_inspection(ins, "redo"),
        Op::Comment(n) => s.comment(if n % 2 == 0 { ins } else { finding }, &format!("c{n}")),
        Op::FindingStep(k) => {
            let kind = [
                EventKind::Assigned,
                EventKind::ClosureRequested,
                EventKind::Closed,
                EventKind::SentBack,
            ][*k];
            s.advance_finding(
                finding,
                FindingAction {
                    kind,
                    comment: Some("why".into()),
                    responsible: Some("村委会".into()),
                    deadline: Some("2025-07-01".into()),
                },
            )
        }
    };
}

fn observable(s: &mut Store, ids: &[String]) -> String {
    let mut out = format!(
        "{:?}\n{:?}\n{:?}\n",
        s.list_sites(&SiteFilter::default()).unwrap(),
        s.list_inspections(&InspectionFilter::default()).unwrap(),
        s.list_findings(&FindingFilter::default()).unwrap()
    );
    for id in ids {
        match s.inspection_view(id) {
            Ok(mut v) => {
                v.editable = false;
                out += &format!("{v:?}\n");
            }
            Err(_) => out += &format!("{:?}\n", s.finding_view(id).unwrap()),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_converges(
        ops_a in prop::collection::vec(op(), 0..8),
        ops_b in prop::collection::vec(op(), 0..8),
        ops_s in prop::collection::vec(op(), 0..8),
        orders in prop::collection::vec(any::<prop::sample::Index>(), 3),
        seeds in prop::collection::vec(any::<u64>(), 3),
    ) {
        // Two phones of one inspector and a supervisor start from the same
        // records, work offline, then every change reaches three fresh
        // replicas in a different order each.
        let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut a = open(dirs[0].path(), "li.wei", Role::Inspector, "phone-a");
        let mut b = open(dirs[1].path(), "li.wei", Role::Inspector, "phone-b");
        let mut sup = open(dirs[2].path(), "wang.fang", Role::Supervisor, "web");
        let site = toilet_site(&mut a);
        let ins = complete_inspection(&mut a, &site);
        let finding = a.raise_finding(NewFinding { inspection_id: Some(ins.clone()), site_id: site.clone(), title: "渗漏".into(), description: String::new(), deadline: None }).unwrap();
        let base: Vec<String> = vec![site.clone(), ins.clone(), finding.clone()];
        let mut targets: Vec<Store> = (3..6).map(|i| open(dirs[i].path(), "zhou.min", Role::CountyOffice, &format!("r{i}"))).collect();
        for other in [&mut b, &mut sup] {
            copy_docs(&mut a, other, &base);
        }
        for t in targets.iter_mut() {
            copy_docs(&mut a, t, &base);
        }
        let drain = |s: &mut Store| -> Vec<OutboxEntry> {
            let v = s.outbox_batch(10_000, usize::MAX).unwrap();
            s.acknowledge(&v.iter().map(|e| e.hash.clone()).collect::<Vec<_>>()).unwrap();
            v
        };
        drain(&mut a);
        drain(&mut b);
        drain(&mut sup);
        // Interleave: a few ops each, with one exchange in the middle so
        // reviews can see submissions.
        let half = |v: &Vec<Op>| v.len() / 2;
        for op in &ops_a[..half(&ops_a)] { apply(&mut a, &ins, &finding, op); }
        let mid = drain(&mut a);
        let recs: Vec<IncomingRecord> = mid.iter().map(|e| IncomingRecord { doc_id: e.doc_id.clone(), kind: e.kind, data: e.bytes.clone() }).collect();
        sup.apply_remote(&recs, &[]).unwrap();
        b.apply_remote(&recs, &[]).unwrap();
        for op in &ops_s { apply(&mut sup, &ins, &finding, op); }
        for op in &ops_b { apply(&mut b, &ins, &finding, op); }
        for op in &ops_a[half(&ops_a)..] { apply(&mut a, &ins, &finding, op); }
        let mut all = mid;
        all.extend(drain(&mut a));
        all.extend(drain(&mut b));
        all.extend(drain(&mut sup));

        let mut views = Vec::new();
        for (i, t) in targets.iter_mut().enumerate() {
            let mut order = all.clone();
            // Fisher–Yates with a per-replica seed.
            let mut x = seeds[i] | 1;
            for j in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(j, (x % (j as u64 + 1)) as usize);
            }
            let rot = orders[i].index(order.len().max(1));
            let n = order.len();
            order.rotate_left(rot.min(n));
            for e in &order {
                let r = t.apply_remote(&[IncomingRecord { doc_id: e.doc_id.clone(), kind: e.kind, data: e.bytes.clone() }], &[]).unwrap();
                prop_assert!(r.rejected.is_empty(), "{:?}", r.rejected);
            }
            views.push(observable(t, &base[1..]));
        }
        prop_assert_eq!(&views[0], &views[1]);
        prop_assert_eq!(&views[1], &views[2]);
        // And after a reopen (everything came from SQLite, not memory).
        drop(targets);
        let mut reopened = open(dirs[3].path(), "zhou.min", Role::CountyOffice, "r3");
        prop_assert_eq!(&observable(&mut reopened, &base[1..]), &views[0]);
    }
}
