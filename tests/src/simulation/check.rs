//! The invariants, checked once the network has healed and every phone has
//! synced to a standstill.
//!
//! The server's documents are read through the real storage: a pull from
//! cursor 0 as a device that created nothing returns every record whole,
//! exactly as stored. Phones are read through their stores' public API.

use super::{COUNTY, Sim};
use automerge::{Automerge, Change, ChangeHash};
use fieldbook_core::model::Role;
use fieldbook_core::policy::Identity as Pusher;
use fieldbook_core::store::{FindingFilter, FindingView, InspectionFilter, InspectionView};
use fieldbook_core::sync::wire::ItemKind;
use fieldbook_server::storage::Session;
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::reports::Reports;
use std::collections::{BTreeMap, BTreeSet};

/// Every record the server holds, rebuilt from a full pull.
fn server_documents(sim: &Sim) -> Result<BTreeMap<String, Automerge>, String> {
    let storage = sim.net.server.storage()?.inner();
    let observer = Session {
        pusher: Pusher {
            user: "observer".into(),
            role: Role::Admin,
            areas: vec![COUNTY.into()],
            device: "observer".into(),
        },
        actor: String::new(),
        expires_at: i64::MAX,
    };
    let mut docs: BTreeMap<String, Automerge> = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let page = storage
            .pull(&observer, cursor, usize::MAX)
            .map_err(|e| format!("server pull: {e}"))?;
        for p in &page.items {
            let id = p.item.doc_id_text();
            let doc = docs.entry(id.clone()).or_default();
            match p.item.kind {
                ItemKind::Document => {
                    let mut other = Automerge::load(&p.item.data)
                        .map_err(|e| format!("server record {id} does not load: {e}"))?;
                    doc.merge(&mut other)
                        .map_err(|e| format!("server record {id} does not merge: {e}"))?;
                }
                ItemKind::Change => {
                    let c = Change::try_from(p.item.data.as_slice())
                        .map_err(|e| format!("server change of {id} does not decode: {e}"))?;
                    doc.apply_changes([c])
                        .map_err(|e| format!("server change of {id} does not apply: {e}"))?;
                }
            }
        }
        if !page.more || page.cursor == cursor {
            break;
        }
        cursor = page.cursor;
    }
    Ok(docs)
}

fn sorted_heads(d: &Automerge) -> Vec<ChangeHash> {
    let mut h = d.get_heads();
    h.sort();
    h
}

fn change_hashes(d: &Automerge) -> BTreeSet<String> {
    d.get_changes(&[])
        .iter()
        .map(|c| c.hash().to_string())
        .collect()
}

/// Checks every invariant; the first broken one is the error.
pub fn all(sim: &mut Sim) -> Result<(), String> {
    // Nothing waits and nothing was refused.
    for (p, phone) in sim.phones.iter_mut().enumerate() {
        let pending = phone.db().pending_counts().map_err(|e| e.to_string())?;
        if pending.changes != 0 || pending.photos != 0 {
            return Err(format!("p{p} still has {pending:?} waiting"));
        }
        let rejected = phone.db().sync_rejections().map_err(|e| e.to_string())?;
        if let Some(r) = rejected.iter().find(|r| !sim.refused.contains(&r.hash)) {
            return Err(format!(
                "p{p} has a rejected change the run did not expect: {r:?}"
            ));
        }
    }

    // The server's projections equal a recomputation from its documents.
    let storage = sim.net.server.storage()?.inner();
    let diffs = storage
        .verify_projections()
        .map_err(|e| format!("verify_projections: {e}"))?;
    if !diffs.is_empty() {
        return Err(format!(
            "server projections differ from documents: {diffs:?}"
        ));
    }

    // The server holds exactly the records and changes the phones made:
    // nothing acknowledged lost, nothing duplicated or invented.
    let docs = server_documents(sim)?;
    let on_server: BTreeSet<&String> = docs.keys().collect();
    let made: BTreeSet<&String> = sim.ledger.keys().collect();
    if on_server != made {
        return Err(format!(
            "server records differ from those made: missing {:?}, extra {:?}",
            made.difference(&on_server).collect::<Vec<_>>(),
            on_server.difference(&made).collect::<Vec<_>>()
        ));
    }
    let counts = storage.counts().map_err(|e| e.to_string())?;
    if counts.documents != docs.len() as u64 {
        return Err(format!(
            "server counts {} documents, a full pull gives {}",
            counts.documents,
            docs.len()
        ));
    }
    for (id, doc) in &docs {
        let have = change_hashes(doc);
        let want = &sim.ledger[id];
        if &have != want {
            return Err(format!(
                "record {id}: server lacks {:?} and has unknown {:?}",
                want.difference(&have).collect::<Vec<_>>(),
                have.difference(want).collect::<Vec<_>>()
            ));
        }
    }

    // No change is stored twice in the server's log: a retried or
    // replayed request must add nothing. The log is read from the
    // database file itself, as an independent witness.
    log_holds_each_change_once(&sim.net.server.database())?;

    // Every replica converged on the server's documents.
    for (p, phone) in sim.phones.iter_mut().enumerate() {
        let n = phone.db().document_count().map_err(|e| e.to_string())?;
        if n != docs.len() as u64 {
            return Err(format!("p{p} holds {n} records, the server {}", docs.len()));
        }
        for (id, doc) in &docs {
            let (_, bytes) = phone
                .db()
                .export_document(id)
                .map_err(|e| format!("p{p} lacks record {id}: {e}"))?;
            let mine = Automerge::load(&bytes).map_err(|e| format!("p{p} record {id}: {e}"))?;
            if sorted_heads(&mine) != sorted_heads(doc) {
                return Err(format!(
                    "p{p} record {id}: heads differ from the server's (missing {:?})",
                    change_hashes(doc)
                        .difference(&change_hashes(&mine))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }

    // Same views and statuses everywhere, as the users made them, each
    // record listed once.
    let mut want_ids: Vec<&str> = sim.inspections.iter().map(|i| i.id.as_str()).collect();
    want_ids.sort_unstable();
    for (p, phone) in sim.phones.iter_mut().enumerate() {
        let mut listed: Vec<String> = phone
            .db()
            .list_inspections(&InspectionFilter::default())
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| s.id)
            .collect();
        listed.sort_unstable();
        if listed != want_ids {
            return Err(format!(
                "p{p} lists {listed:?}, the users made {want_ids:?}"
            ));
        }
    }
    for (i, ins) in sim.inspections.iter().enumerate() {
        let mut first: Option<InspectionView> = None;
        for (p, phone) in sim.phones.iter_mut().enumerate() {
            let mut v = phone
                .db()
                .inspection_view(&ins.id)
                .map_err(|e| format!("p{p} r{i}: {e}"))?;
            v.editable = false;
            // The phone's list (a projection) agrees with its document.
            let row = phone
                .db()
                .list_inspections(&InspectionFilter::default())
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|s| s.id == ins.id)
                .ok_or_else(|| format!("p{p} does not list r{i}"))?;
            if (row.status, row.revision, row.photos as usize)
                != (v.status, v.revision, v.photos.len())
            {
                return Err(format!(
                    "p{p} lists r{i} as {:?} rev {} with {} photos; its document says {:?} rev {} with {}",
                    row.status,
                    row.revision,
                    row.photos,
                    v.status,
                    v.revision,
                    v.photos.len()
                ));
            }
            let (status, revision) = if ins.concurrent {
                (v.status, v.revision)
            } else {
                (ins.status, ins.revision)
            };
            // A refused change takes its events with it: a concurrent
            // record's timeline is checked for agreement only.
            let events = if ins.concurrent {
                v.timeline.len()
            } else {
                ins.events
            };
            if (v.status, v.revision, v.timeline.len()) != (status, revision, events) {
                return Err(format!(
                    "p{p} r{i}: status {:?} rev {} with {} events; the users left {:?} rev {} with {}",
                    v.status,
                    v.revision,
                    v.timeline.len(),
                    ins.status,
                    ins.revision,
                    ins.events
                ));
            }
            // The view orders photos its own way; the set must match.
            let photos: BTreeSet<&str> = v.photos.iter().map(|r| r.hash.as_str()).collect();
            if v.photos.len() != ins.photos.len()
                || photos != ins.photos.iter().map(String::as_str).collect()
            {
                return Err(format!(
                    "p{p} r{i}: photos {photos:?}, attached {:?}",
                    ins.photos
                ));
            }
            match &first {
                None => first = Some(v),
                Some(f) if *f != v => {
                    return Err(format!("r{i}: p0 sees {f:?}\nbut p{p} sees {v:?}"));
                }
                Some(_) => {}
            }
        }
    }
    for (n, site) in sim.sites.iter().enumerate() {
        let mut first = None;
        for (p, phone) in sim.phones.iter_mut().enumerate() {
            let s = phone
                .db()
                .site(site)
                .map_err(|e| format!("p{p} s{n}: {e}"))?;
            match &first {
                None => first = Some(s),
                Some(f) if *f != s => return Err(format!("s{n}: p0 sees {f:?}, p{p} sees {s:?}")),
                Some(_) => {}
            }
        }
    }

    // Findings likewise. `overdue` is judged by each phone's own clock,
    // which the simulation skews, so it is not part of the record.
    let mut want_findings: Vec<&str> = sim.findings.iter().map(|f| f.id.as_str()).collect();
    want_findings.sort_unstable();
    let mut finding_status = BTreeMap::new();
    for (p, phone) in sim.phones.iter_mut().enumerate() {
        let mut listed: Vec<String> = phone
            .db()
            .list_findings(&FindingFilter::default())
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| s.id)
            .collect();
        listed.sort_unstable();
        if listed != want_findings {
            return Err(format!(
                "p{p} lists findings {listed:?}, the users raised {want_findings:?}"
            ));
        }
    }
    for (n, f) in sim.findings.iter().enumerate() {
        let mut first: Option<FindingView> = None;
        for (p, phone) in sim.phones.iter_mut().enumerate() {
            let mut v = phone
                .db()
                .finding_view(&f.id)
                .map_err(|e| format!("p{p} f{n}: {e}"))?;
            v.overdue = false;
            if !f.concurrent && v.timeline.len() != f.events {
                return Err(format!(
                    "p{p} f{n}: {} events; the users wrote {}",
                    v.timeline.len(),
                    f.events
                ));
            }
            match &first {
                None => {
                    finding_status.insert(f.id.clone(), v.status.key());
                    first = Some(v);
                }
                Some(x) if *x != v => {
                    return Err(format!("f{n}: p0 sees {x:?}\nbut p{p} sees {v:?}"));
                }
                Some(_) => {}
            }
        }
    }
    let mut projected = BTreeMap::new();
    storage
        .scan_findings(COUNTY, &mut |f| {
            projected.insert(f.id.clone(), f.status);
            Ok(())
        })
        .map_err(|e| format!("scan_findings: {e}"))?;
    let phones_say: BTreeMap<String, String> = finding_status
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    if projected != phones_say {
        return Err(format!(
            "server projects findings {projected:?}; the phones show {phones_say:?}"
        ));
    }

    // The server's projections agree with the phones.
    let mut rows = BTreeMap::new();
    let mut sites = 0usize;
    storage
        .scan_sites(COUNTY, true, &mut |s| {
            sites += 1;
            for i in s.inspections {
                rows.insert(i.id.clone(), i);
            }
            Ok(())
        })
        .map_err(|e| format!("scan_sites: {e}"))?;
    if sites != sim.sites.len() || rows.len() != sim.inspections.len() {
        return Err(format!(
            "server projects {sites} sites and {} inspections; the users made {} and {}",
            rows.len(),
            sim.sites.len(),
            sim.inspections.len()
        ));
    }
    for (i, ins) in sim.inspections.iter_mut().enumerate() {
        if ins.concurrent {
            // The phones agree (checked above); the server must too.
            let v = sim.phones[0]
                .db()
                .inspection_view(&ins.id)
                .map_err(|e| e.to_string())?;
            ins.status = v.status;
            ins.revision = v.revision;
        }
        let r = rows
            .get(&ins.id)
            .ok_or_else(|| format!("r{i} is not in the server's projections"))?;
        let mut projected = r.photos_hashes.clone();
        projected.sort();
        let mut attached = ins.photos.clone();
        attached.sort();
        if (r.status.as_str(), r.revision, projected) != (ins.status.key(), ins.revision, attached)
        {
            return Err(format!(
                "server projects r{i} as {} rev {} photos {:?}; the users left {} rev {} photos {:?}",
                r.status,
                r.revision,
                r.photos_hashes,
                ins.status.key(),
                ins.revision,
                ins.photos
            ));
        }
    }

    // Every photo of every record is on the server, whole. A server that a
    // crash left down is brought back first: only what it holds counts,
    // never whether it happened to be up.
    if sim.net.server.state().is_err() {
        sim.net.server.restart()?;
    }
    let photos = &sim.net.server.state()?.photos;
    for (i, ins) in sim.inspections.iter().enumerate() {
        for h in &ins.photos {
            let bytes = photos
                .read(h)
                .ok_or_else(|| format!("r{i}: photo {h} is not on the server"))?;
            let got = blake3::hash(&bytes).to_hex().to_string();
            if &got != h {
                return Err(format!("r{i}: the server's photo {h} hashes to {got}"));
            }
        }
    }
    Ok(())
}

/// Reads every row of the server's log and fails if a change appears in
/// two rows, or a row brings no change its record did not have.
fn log_holds_each_change_once(db: &std::path::Path) -> Result<(), String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("server database: {e}"))?;
    let mut st = conn
        .prepare("SELECT seq, doc_id, item_kind, data FROM log ORDER BY seq")
        .map_err(|e| e.to_string())?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut seen: BTreeMap<String, BTreeSet<ChangeHash>> = BTreeMap::new();
    for row in rows {
        let (seq, doc, kind, data) = row.map_err(|e| e.to_string())?;
        let hashes: Vec<ChangeHash> = if kind == ItemKind::Change as i64 {
            vec![
                Change::try_from(data.as_slice())
                    .map_err(|e| format!("log row {seq}: {e}"))?
                    .hash(),
            ]
        } else {
            Automerge::load(&data)
                .map_err(|e| format!("log row {seq}: {e}"))?
                .get_changes(&[])
                .iter()
                .map(|c| c.hash())
                .collect()
        };
        let held = seen.entry(doc.clone()).or_default();
        let mut new = 0;
        for h in hashes {
            if held.insert(h) {
                new += 1;
            } else if kind == ItemKind::Change as i64 {
                return Err(format!("log row {seq} of {doc} repeats change {h}"));
            }
        }
        if new == 0 {
            return Err(format!("log row {seq} of {doc} brings nothing new"));
        }
    }
    Ok(())
}
