//! The trust boundary: what the server checks of every pushed record before
//! anything is stored, the same for every storage backend.
//!
//! A logged-in phone is still untrusted. Each item passes, cheapest first:
//!
//! 1. the record is not quarantined, and is of the kind it was before;
//! 2. its bytes stay inside [`Budget::RECORD`] (operations, inflated bytes,
//!    value and key lengths), read off the binary format without loading;
//! 3. its authors: a change must be by the device's registered actor, and
//!    a record new to the server may hold no other actor's work — both read
//!    before loading too;
//! 4. it decodes and applies (under `untrusted`: Automerge panics on some
//!    damaged input), and the record stays inside its total budget;
//! 5. the record after it has the closed layout under the id it was sent
//!    with, and reads as a valid record;
//! 6. the shared policy (`fieldbook_core::policy`) allows the change for
//!    this user, role, status and area, with its references (the site of an
//!    inspection or finding, the inspection of a finding) checked against
//!    what the server holds and what this batch accepted before it.
//!
//! Nothing here writes: a backend reads records through [`Source`] inside
//! one read transaction, gets back what to store, and stores it.

use crate::storage::{Outcome, Result, Session, StorageError};
use automerge::{ActorId, Automerge, Change, ReadDoc};
use fieldbook_core::doc::budget::{self, Budget};
use fieldbook_core::doc::{self, Record, RecordKind};
use fieldbook_core::model::Event;
use fieldbook_core::policy::{self, RefusalCode, SiteFacts};
use fieldbook_core::store::untrusted;
use fieldbook_core::sync::wire::{Item, ItemKind, RejectCode};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

/// Operations one record may gather over its life: as much as one item may
/// carry, so a record can always be sent whole.
pub const RECORD_OPS_MAX: i64 = Budget::RECORD.ops_max as i64;

/// A stored record as loaded.
pub struct Loaded {
    pub kind: RecordKind,
    pub doc: Automerge,
    /// Version of the row: every write to a record appends to the log.
    pub last_seq: i64,
    pub snapshot_bytes: i64,
    pub chunk_bytes: i64,
    /// Operations the record holds (sum over its accepted items).
    pub ops: i64,
}

/// What checking reads from storage.
pub trait Source {
    fn load(&self, id: &str) -> Result<Option<Loaded>>;
    fn site(&self, id: &str) -> Result<Option<SiteFacts>>;
    fn inspection_site(&self, id: &str) -> Result<Option<String>>;
    fn quarantined(&self, id: &str) -> Result<bool>;
}

/// What a checked item writes to the `documents` row.
pub enum DocWrite<'a> {
    /// A record new to the server, with its first snapshot.
    Insert { snapshot: Cow<'a, [u8]> },
    /// A stored record gains log rows; `compact` is its new snapshot when
    /// the log since the old one outgrew it.
    Update { compact: Option<Vec<u8>> },
}

/// Log rows of an accepted item.
pub type Rows<'a> = Vec<(ItemKind, Cow<'a, [u8]>)>;

/// One record's accepted change, ready to store.
pub struct Accepted<'a> {
    pub id: String,
    pub kind: RecordKind,
    pub record: Record,
    pub rows: Rows<'a>,
    pub doc: DocWrite<'a>,
    /// Workflow events the change adds, for the audit log.
    pub events: Vec<Event>,
    /// Photos the change references for the first time: the pushing user
    /// attached them.
    pub new_photos: Vec<String>,
    /// Operations the change adds.
    pub ops: i64,
}

pub enum Step<'a> {
    /// Refused or already stored: nothing to write.
    Done(Outcome),
    Store(Box<Accepted<'a>>),
}

/// A checked batch: what to do per item, and the version of every record
/// the checks read (`None`: absent), to confirm before storing.
pub struct Checked<'a> {
    pub steps: Vec<Step<'a>>,
    pub read: Vec<(String, Option<i64>)>,
}

/// A record as the batch has it so far.
struct Held {
    kind: RecordKind,
    doc: Automerge,
    record: Record,
    /// Whether storage has it (before this batch or from an earlier item).
    stored: bool,
    snapshot_bytes: i64,
    chunk_bytes: i64,
    ops: i64,
}

/// The policy's view of other records: those accepted earlier in this
/// batch first, then storage. A storage failure is kept and reported after
/// the policy returns (the policy's questions cannot fail).
struct BatchContext<'s> {
    src: &'s dyn Source,
    sites: &'s HashMap<String, SiteFacts>,
    inspections: &'s HashMap<String, String>,
    failed: RefCell<Option<StorageError>>,
}

impl BatchContext<'_> {
    fn keep<T>(&self, r: Result<Option<T>>) -> Option<T> {
        r.unwrap_or_else(|e| {
            self.failed.borrow_mut().get_or_insert(e);
            None
        })
    }
}

impl policy::Context for BatchContext<'_> {
    fn site(&self, id: &str) -> Option<SiteFacts> {
        match self.sites.get(id) {
            Some(f) => Some(f.clone()),
            None => self.keep(self.src.site(id)),
        }
    }

    fn inspection_site(&self, id: &str) -> Option<String> {
        match self.inspections.get(id) {
            Some(s) => Some(s.clone()),
            None => self.keep(self.src.inspection_site(id)),
        }
    }
}

fn corrupt(id: &str, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        id: id.into(),
        reason: reason.to_string(),
    }
}

/// Checks every item of a batch against the records `src` holds, in order,
/// as if each accepted item were already stored. Nothing is written.
pub fn check_batch<'a>(
    src: &dyn Source,
    s: &Session,
    actor: &ActorId,
    items: &'a [Item],
) -> Result<Checked<'a>> {
    // Items left per record: a record's document is kept only while a
    // later item of the batch needs it.
    let mut left: HashMap<[u8; 16], usize> = HashMap::new();
    for item in items {
        *left.entry(item.doc_id).or_default() += 1;
    }
    let mut held: HashMap<[u8; 16], Held> = HashMap::new();
    let mut seen: HashMap<[u8; 16], bool> = HashMap::new();
    let mut sites: HashMap<String, SiteFacts> = HashMap::new();
    let mut inspections: HashMap<String, String> = HashMap::new();
    let mut checked = Checked {
        steps: Vec::with_capacity(items.len()),
        read: Vec::new(),
    };
    for item in items {
        let key = item.doc_id;
        let id = item.doc_id_text();
        let last_use = left.get_mut(&key).is_some_and(|n| {
            *n -= 1;
            *n == 0
        });
        if let std::collections::hash_map::Entry::Vacant(v) = seen.entry(key) {
            let quarantined = src.quarantined(&id)?;
            v.insert(quarantined);
            if !quarantined {
                let loaded = src.load(&id)?;
                checked
                    .read
                    .push((id.clone(), loaded.as_ref().map(|l| l.last_seq)));
                if let Some(l) = loaded {
                    let record = Record::read(l.kind, &l.doc).map_err(|e| corrupt(&id, e))?;
                    held.insert(
                        key,
                        Held {
                            kind: l.kind,
                            doc: l.doc,
                            record,
                            stored: true,
                            snapshot_bytes: l.snapshot_bytes,
                            chunk_bytes: l.chunk_bytes,
                            ops: l.ops,
                        },
                    );
                }
            }
        }
        if seen.get(&key).copied().unwrap_or(false) {
            checked.steps.push(Step::Done(Outcome::Rejected(
                RejectCode::Forbidden,
                format!("record {id} is quarantined by the operator; it takes no changes"),
            )));
            continue;
        }
        let ctx = BatchContext {
            src,
            sites: &sites,
            inspections: &inspections,
            failed: RefCell::new(None),
        };
        let verdict = check_item(held.get(&key), s, actor, item, &id, &ctx);
        if let Some(e) = ctx.failed.into_inner() {
            return Err(e);
        }
        let step = match verdict? {
            ItemCheck::Done(o) => Step::Done(o),
            ItemCheck::Accept(accept) => {
                let Accept {
                    after,
                    record,
                    rows,
                    whole,
                    events,
                    new_photos,
                    ops,
                } = *accept;
                match &record {
                    Record::Site(site) => {
                        sites.insert(
                            id.clone(),
                            SiteFacts {
                                kind: site.kind,
                                village_code: site.village_code.clone(),
                            },
                        );
                    }
                    Record::Inspection(i) => {
                        inspections.insert(id.clone(), i.site_id.clone());
                    }
                    Record::Finding(_) => {}
                }
                let bytes: i64 = rows.iter().map(|(_, b)| b.len() as i64).sum();
                let prior = held.remove(&key);
                let total_ops = prior.as_ref().map_or(0, |h| h.ops) + ops;
                let (doc, snapshot_bytes, chunk_bytes) = match prior {
                    Some(h) if h.stored => {
                        // As on the phone: a floor keeps small records from
                        // being re-encoded on every change.
                        let chunks = h.chunk_bytes + bytes;
                        let floor = h
                            .snapshot_bytes
                            .max(fieldbook_core::store::COMPACT_FLOOR_BYTES);
                        if chunks > floor {
                            let snapshot = after.save();
                            let n = snapshot.len() as i64;
                            (
                                DocWrite::Update {
                                    compact: Some(snapshot),
                                },
                                n,
                                0,
                            )
                        } else {
                            (DocWrite::Update { compact: None }, h.snapshot_bytes, chunks)
                        }
                    }
                    _ => {
                        let snapshot = match whole {
                            Some(save) => Cow::Borrowed(save),
                            None => Cow::Owned(after.save()),
                        };
                        let n = snapshot.len() as i64;
                        (DocWrite::Insert { snapshot }, n, 0)
                    }
                };
                if !last_use {
                    held.insert(
                        key,
                        Held {
                            kind: item.record,
                            doc: after,
                            record: record.clone(),
                            stored: true,
                            snapshot_bytes,
                            chunk_bytes,
                            ops: total_ops,
                        },
                    );
                }
                Step::Store(Box::new(Accepted {
                    id,
                    kind: item.record,
                    record,
                    rows,
                    doc,
                    events,
                    new_photos,
                    ops,
                }))
            }
        };
        checked.steps.push(step);
        if last_use {
            held.remove(&key);
        }
    }
    Ok(checked)
}

enum ItemCheck<'a> {
    Done(Outcome),
    Accept(Box<Accept<'a>>),
}

/// An item that passed its checks, with the record after it.
struct Accept<'a> {
    after: Automerge,
    record: Record,
    rows: Rows<'a>,
    /// The pushed save of a record new to the server, kept as it came.
    whole: Option<&'a [u8]>,
    events: Vec<Event>,
    new_photos: Vec<String>,
    ops: i64,
}

fn refused<'a>(code: RejectCode, m: impl Into<String>) -> Result<ItemCheck<'a>> {
    Ok(ItemCheck::Done(Outcome::Rejected(code, m.into())))
}

/// Checks one item against the record as the batch has it (`before`).
fn check_item<'a>(
    before: Option<&Held>,
    s: &Session,
    actor: &ActorId,
    item: &'a Item,
    id: &str,
    ctx: &BatchContext<'_>,
) -> Result<ItemCheck<'a>> {
    if let Some(h) = before
        && h.kind != item.record
    {
        return refused(
            RejectCode::Invalid,
            format!(
                "record {id} is of kind {}; the item says {}",
                h.kind.key(),
                item.record.key()
            ),
        );
    }
    // Before anything is decoded: what loading would cost, and who wrote it.
    let cost = match budget::check(&item.data, &Budget::RECORD) {
        Ok(c) => c,
        Err(e @ budget::BudgetError::OverLimit { .. }) => {
            return refused(RejectCode::Invalid, e.to_string());
        }
        Err(e) => return refused(RejectCode::Undecodable, e.to_string()),
    };
    if item.kind == ItemKind::Change && cost.chunks != 1 {
        return refused(
            RejectCode::Undecodable,
            format!(
                "a change item holds one change; this one holds {} chunks",
                cost.chunks
            ),
        );
    }
    let mine = actor.to_bytes();
    let foreign = cost.actors.iter().find(|a| a.as_slice() != mine);
    match (item.kind, before, foreign) {
        // A change names its author first; others are actors its
        // operations refer to, which a document it applies to must know.
        (ItemKind::Change, _, _) if cost.actors.first().map(Vec::as_slice) != Some(mine) => {
            return refused(
                RejectCode::ForeignActor,
                format!(
                    "change by actor {} pushed by device {}",
                    hex(cost.actors.first().map_or(&[][..], Vec::as_slice)),
                    s.pusher.device
                ),
            );
        }
        (ItemKind::Document, None, Some(a)) => {
            return refused(
                RejectCode::ForeignActor,
                format!(
                    "document holds changes by actor {} unknown to the server",
                    hex(a)
                ),
            );
        }
        _ => {}
    }
    let before_ops = before.map_or(0, |h| h.ops);
    let mut whole: Option<&[u8]> = None;
    let (after, rows, ops): (Automerge, Rows<'a>, i64) = match item.kind {
        ItemKind::Change => {
            // `untrusted`: the change parser panics on some damaged columns.
            let decoded = untrusted(|| Change::try_from(item.data.as_slice()))
                .and_then(|r| r.map_err(|e| e.to_string()));
            let change = match decoded {
                // Phones refuse such a change (see `change_checksum_valid`):
                // storing it would send them bytes they cannot take.
                Ok(c) if !fieldbook_core::store::change_checksum_valid(&item.data, &c) => {
                    return refused(
                        RejectCode::Undecodable,
                        "not an Automerge change: bad checksum",
                    );
                }
                Ok(c) => c,
                Err(e) => {
                    return refused(
                        RejectCode::Undecodable,
                        format!("not an Automerge change: {e}"),
                    );
                }
            };
            let hash = change.hash();
            let ops = change.len() as i64;
            let mut after = match before {
                Some(h) if h.doc.get_change_by_hash(&hash).is_some() => {
                    return Ok(ItemCheck::Done(Outcome::Stored { new: false }));
                }
                Some(h) => h.doc.clone(),
                None if !change.deps().is_empty() => {
                    return refused(
                        RejectCode::NeedDocument,
                        format!("the server has no record {id}; send it whole"),
                    );
                }
                None => Automerge::new(),
            };
            if before_ops + ops > RECORD_OPS_MAX {
                return refused(
                    RejectCode::Invalid,
                    format!("record {id} would hold over {RECORD_OPS_MAX} operations"),
                );
            }
            // `untrusted`: Automerge panics on some changes it decodes.
            let applied = untrusted(|| after.apply_changes([change]))
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = applied {
                return refused(
                    RejectCode::Undecodable,
                    format!("change does not apply: {e}"),
                );
            }
            if after.get_change_by_hash(&hash).is_none() {
                return refused(
                    RejectCode::NeedDocument,
                    format!("the server lacks history of record {id}; send it whole"),
                );
            }
            (
                after,
                vec![(ItemKind::Change, Cow::Borrowed(item.data.as_slice()))],
                ops,
            )
        }
        ItemKind::Document => {
            let loaded = match untrusted(|| Automerge::load(&item.data))
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(d) => d,
                Err(e) => {
                    return refused(
                        RejectCode::Undecodable,
                        format!("not an Automerge document: {e}"),
                    );
                }
            };
            match before {
                // New to the server: the save is kept as it came, one log
                // row and the snapshot.
                None => {
                    whole = Some(item.data.as_slice());
                    (
                        loaded,
                        vec![(ItemKind::Document, Cow::Borrowed(item.data.as_slice()))],
                        cost.ops as i64,
                    )
                }
                // Known: store only what is new, change by change.
                Some(h) => {
                    let new: Vec<Change> = loaded
                        .get_changes(&[])
                        .into_iter()
                        .filter(|c| h.doc.get_change_by_hash(&c.hash()).is_none())
                        .collect();
                    if new.is_empty() {
                        return Ok(ItemCheck::Done(Outcome::Stored { new: false }));
                    }
                    if let Some(c) = new.iter().find(|c| c.actor_id() != actor) {
                        return refused(
                            RejectCode::ForeignActor,
                            format!(
                                "document holds changes by actor {} unknown to the server",
                                c.actor_id()
                            ),
                        );
                    }
                    let ops: i64 = new.iter().map(|c| c.len() as i64).sum();
                    if before_ops + ops > RECORD_OPS_MAX {
                        return refused(
                            RejectCode::Invalid,
                            format!("record {id} would hold over {RECORD_OPS_MAX} operations"),
                        );
                    }
                    let mut after = h.doc.clone();
                    let rows = new
                        .iter()
                        .map(|c| (ItemKind::Change, Cow::Owned(c.raw_bytes().to_vec())))
                        .collect();
                    let applied = untrusted(|| after.apply_changes(new))
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    if let Err(e) = applied {
                        return refused(
                            RejectCode::Undecodable,
                            format!("changes do not apply: {e}"),
                        );
                    }
                    (after, rows, ops)
                }
            }
        }
    };
    if let Err(e) = doc::layout::check(&after, item.record, id) {
        return refused(RejectCode::Invalid, format!("record {id}: {e}"));
    }
    let record = match Record::read(item.record, &after) {
        Ok(r) => r,
        Err(e) => return refused(RejectCode::Invalid, format!("record does not read: {e}")),
    };
    let events = match policy::check_write(&s.pusher, before.map(|h| &h.record), &record, ctx) {
        Ok(events) => events,
        Err(r) => {
            let code = match r.code {
                RefusalCode::Forbidden => RejectCode::Forbidden,
                RefusalCode::OutOfScope => RejectCode::OutOfScope,
                RefusalCode::Invalid => RejectCode::Invalid,
            };
            return refused(code, r.message);
        }
    };
    let new_photos = new_photo_hashes(before.map(|h| &h.record), &record);
    Ok(ItemCheck::Accept(Box::new(Accept {
        after,
        record,
        rows,
        whole,
        events,
        new_photos,
        ops,
    })))
}

fn photo_hashes(r: &Record) -> Vec<&str> {
    match r {
        Record::Inspection(i) => i.photos.iter().map(|p| p.hash.as_str()).collect(),
        Record::Finding(f) => f.photos.iter().map(|p| p.hash.as_str()).collect(),
        Record::Site(_) => Vec::new(),
    }
}

fn new_photo_hashes(before: Option<&Record>, after: &Record) -> Vec<String> {
    let old = before.map(photo_hashes).unwrap_or_default();
    photo_hashes(after)
        .into_iter()
        .filter(|h| !old.contains(h))
        .map(str::to_owned)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
