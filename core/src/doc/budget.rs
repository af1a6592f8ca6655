//! What bytes from outside would cost to load, read off Automerge's binary
//! format before Automerge sees them.
//!
//! Automerge stores operations in run-length-encoded columns: a run of a
//! million identical operations costs a few bytes on the wire and a million
//! operations in memory once loaded. A 380-byte document can therefore hold
//! sixteen million operations and take gigabytes and seconds to load, and
//! deflated chunks and columns inflate without limit. So every record that
//! arrives from another device or the network is scanned here first, and
//! refused unless it stays inside [`Budget`]:
//!
//! - its chunks parse (document, change or deflated change; bundles are not
//!   something Fieldbook writes and are refused);
//! - what deflated chunks and columns inflate to stays under a byte bound,
//!   inflated through a reader that stops at the bound;
//! - no column decodes to more entries than the operation or change bound,
//!   counted from the run lengths without expanding them (Automerge reads as
//!   many operations as its columns hold, so the longest column bounds the
//!   operations, and with them the keys and the depth of nesting);
//! - every value is at most [`VALUE_BYTES_MAX`] and every key or string
//!   column entry at most [`KEY_BYTES_MAX`] — history included, so a huge
//!   text cannot hide in an overwritten value or a conflict;
//! - actor, head and dependency lists are short.
//!
//! The scan reads each byte once and allocates only for inflated data, so a
//! refusal costs microseconds. Format reference: the Automerge binary
//! format's chunk and column specifications.

use std::io::Read;

/// Largest value (text, bytes) anywhere in a record's history, bytes: the
/// longest text the layout allows (4,000 characters) in UTF-8, with room.
pub const VALUE_BYTES_MAX: u64 = 16 << 10;
/// Largest map key or other string-column entry, bytes.
pub const KEY_BYTES_MAX: u64 = 256;

/// The bounds one item (a change or a document) must stay inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Operations in all chunks together.
    pub ops_max: u64,
    /// Changes a document chunk may describe.
    pub changes_max: u64,
    /// Bytes that deflated chunks and columns may inflate to, together.
    pub inflated_bytes_max: u64,
    /// Chunks one item may concatenate.
    pub chunks_max: usize,
}

impl Budget {
    /// The bound for one record as it travels: far above any record the
    /// layout allows (a few thousand operations for an inspection with its
    /// whole history), far below what hurts a phone.
    pub const RECORD: Budget = Budget {
        ops_max: 50_000,
        changes_max: 10_000,
        inflated_bytes_max: 8 << 20,
        chunks_max: 64,
    };
}

/// What a scan found: the work loading the bytes will take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub chunks: usize,
    /// Upper bound of the operations (the longest op column of each chunk).
    pub ops: u64,
    pub changes: u64,
    pub inflated_bytes: u64,
    /// Every actor the chunks name (authors and the actors their
    /// operations refer to), each once: a server can tell before loading
    /// whether a record holds changes by anyone but the pushing device.
    pub actors: Vec<Vec<u8>>,
}

impl Cost {
    fn actor(&mut self, a: &[u8]) {
        if !self.actors.iter().any(|x| x == a) {
            self.actors.push(a.to_vec());
        }
    }
}

/// Why bytes were refused before loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// Not Automerge's format, or cut short.
    #[error("not an Automerge record: {0}")]
    Malformed(String),
    /// Valid format, but over a bound.
    #[error("record is too large: {what} is {n}; the limit is {max}")]
    OverLimit { what: String, n: u64, max: u64 },
}

fn malformed(s: impl Into<String>) -> BudgetError {
    BudgetError::Malformed(s.into())
}

fn over(what: impl Into<String>, n: u64, max: u64) -> BudgetError {
    BudgetError::OverLimit {
        what: what.into(),
        n,
        max,
    }
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// Entries of an actor, head or dependency list.
const LIST_MAX: u64 = 1024;
/// Bytes of one actor id.
const ACTOR_BYTES_MAX: u64 = 64;
/// Columns of one column set.
const COLUMNS_MAX: u64 = 64;

/// Scans `bytes` (one or more chunks) and returns their cost, or why they
/// must not be loaded.
pub fn check(bytes: &[u8], budget: &Budget) -> Result<Cost, BudgetError> {
    let mut cost = Cost::default();
    let mut r = Cursor::new(bytes);
    if r.is_empty() {
        return Err(malformed("no bytes"));
    }
    while !r.is_empty() {
        cost.chunks += 1;
        if cost.chunks > budget.chunks_max {
            return Err(over(
                "chunk count",
                cost.chunks as u64,
                budget.chunks_max as u64,
            ));
        }
        if r.take(4)? != MAGIC {
            return Err(malformed("bad magic bytes"));
        }
        r.take(4)?; // checksum: Automerge verifies it on load
        let ty = r.byte()?;
        let len = r.uleb()?;
        let data = r.take_u64(len)?;
        match ty {
            CHUNK_DOCUMENT => scan_document(data, budget, &mut cost)?,
            CHUNK_CHANGE => scan_change(data, budget, &mut cost)?,
            CHUNK_COMPRESSED => {
                let room = budget.inflated_bytes_max - cost.inflated_bytes;
                let inflated = inflate(data, room, "deflated change")?;
                cost.inflated_bytes += inflated.len() as u64;
                scan_change(&inflated, budget, &mut cost)?;
            }
            other => return Err(malformed(format!("chunk type {other} is not accepted"))),
        }
    }
    Ok(cost)
}

/// Inflates raw deflate `data`, refusing output beyond `room` bytes
/// without ever holding more than `room + 1` of it.
fn inflate(data: &[u8], room: u64, what: &str) -> Result<Vec<u8>, BudgetError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(room + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(format!("{what} does not inflate: {e}")))?;
    if out.len() as u64 > room {
        return Err(over(
            format!("{what} inflated (bytes)"),
            out.len() as u64,
            room,
        ));
    }
    Ok(out)
}

fn scan_change(data: &[u8], budget: &Budget, cost: &mut Cost) -> Result<(), BudgetError> {
    let mut r = Cursor::new(data);
    let deps = r.list_len("dependencies")?;
    r.take_u64(deps * 32)?;
    let author = r.actor()?;
    cost.actor(author);
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    let message = r.uleb()?;
    if message > VALUE_BYTES_MAX {
        return Err(over("change message (bytes)", message, VALUE_BYTES_MAX));
    }
    r.take_u64(message)?;
    let others = r.list_len("other actors")?;
    for _ in 0..others {
        let a = r.actor()?;
        cost.actor(a);
    }
    let columns = r.columns()?;
    let ops = scan_columns(&mut r, &columns, budget, cost, false)?;
    cost.changes += 1;
    add_ops(cost, ops, budget)
    // The rest is extra bytes Automerge keeps but never interprets.
}

fn scan_document(data: &[u8], budget: &Budget, cost: &mut Cost) -> Result<(), BudgetError> {
    let mut r = Cursor::new(data);
    let actors = r.list_len("actors")?;
    for _ in 0..actors {
        let a = r.actor()?;
        cost.actor(a);
    }
    let heads = r.list_len("heads")?;
    r.take_u64(heads * 32)?;
    let change_columns = r.columns()?;
    let op_columns = r.columns()?;
    let changes = scan_columns(&mut r, &change_columns, budget, cost, true)?;
    if changes > budget.changes_max {
        return Err(over("change count", changes, budget.changes_max));
    }
    cost.changes += changes;
    let ops = scan_columns(&mut r, &op_columns, budget, cost, false)?;
    add_ops(cost, ops, budget)
    // Head indices follow; a varint per head, read by Automerge.
}

fn add_ops(cost: &mut Cost, ops: u64, budget: &Budget) -> Result<(), BudgetError> {
    cost.ops = cost.ops.saturating_add(ops);
    if cost.ops > budget.ops_max {
        return Err(over("operation count", cost.ops, budget.ops_max));
    }
    Ok(())
}

/// Column type, the low three bits of a column specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Group,
    Actor,
    Integer,
    Delta,
    Boolean,
    String,
    ValueMeta,
    Value,
}

impl ColumnType {
    fn of(spec: u64) -> ColumnType {
        match spec & 7 {
            0 => ColumnType::Group,
            1 => ColumnType::Actor,
            2 => ColumnType::Integer,
            3 => ColumnType::Delta,
            4 => ColumnType::Boolean,
            5 => ColumnType::String,
            6 => ColumnType::ValueMeta,
            _ => ColumnType::Value,
        }
    }
}

const DEFLATE_BIT: u64 = 8;

/// What `column_entries` calls a count over its bound, renamed by the
/// caller to what the column counts.
const COLUMN_ENTRIES: &str = "column entries";

/// Reads the data of `columns` and returns the entry count of the longest
/// one, refusing as soon as any count passes the bound.
fn scan_columns(
    r: &mut Cursor<'_>,
    columns: &[(u64, u64)],
    budget: &Budget,
    cost: &mut Cost,
    change_meta: bool,
) -> Result<u64, BudgetError> {
    let (what, max) = if change_meta {
        ("change count", budget.changes_max)
    } else {
        ("operation count", budget.ops_max.saturating_sub(cost.ops))
    };
    let mut longest = 0;
    for &(spec, len) in columns {
        let raw = r.take_u64(len)?;
        let inflated;
        let data = if spec & DEFLATE_BIT != 0 {
            let room = budget.inflated_bytes_max - cost.inflated_bytes;
            inflated = inflate(raw, room, "deflated column")?;
            cost.inflated_bytes += inflated.len() as u64;
            &inflated[..]
        } else {
            raw
        };
        let n = column_entries(ColumnType::of(spec), data, max).map_err(|e| match e {
            BudgetError::OverLimit { what: w, n, max } if w == COLUMN_ENTRIES => over(what, n, max),
            other => other,
        })?;
        longest = longest.max(n);
    }
    Ok(longest)
}

/// The number of entries a column decodes to, counted without expanding
/// runs; refuses past `max`, and refuses values and strings over their
/// byte bounds.
fn column_entries(ty: ColumnType, data: &[u8], max: u64) -> Result<u64, BudgetError> {
    let mut r = Cursor::new(data);
    let mut n: u64 = 0;
    let mut add = |k: u64| -> Result<(), BudgetError> {
        n = n.saturating_add(k);
        if n > max {
            Err(over(COLUMN_ENTRIES, n, max))
        } else {
            Ok(())
        }
    };
    match ty {
        // Raw bytes, described by the value-metadata column beside it.
        ColumnType::Value => return Ok(0),
        // Run lengths, alternating false and true.
        ColumnType::Boolean => {
            while !r.is_empty() {
                add(r.uleb()?)?;
            }
        }
        // Run-length encoding: a positive count repeats one value, a
        // negative one announces that many literal values, zero a run of
        // nulls whose length follows.
        _ => {
            while !r.is_empty() {
                let count = r.sleb()?;
                if count > 0 {
                    rle_value(ty, &mut r)?;
                    add(count as u64)?;
                } else if count < 0 {
                    let literal = count.unsigned_abs();
                    add(literal)?;
                    for _ in 0..literal {
                        rle_value(ty, &mut r)?;
                    }
                } else {
                    add(r.uleb()?)?;
                }
            }
        }
    }
    Ok(n)
}

fn rle_value(ty: ColumnType, r: &mut Cursor<'_>) -> Result<(), BudgetError> {
    match ty {
        ColumnType::Delta => {
            r.sleb()?;
        }
        ColumnType::String => {
            let len = r.uleb()?;
            if len > KEY_BYTES_MAX {
                return Err(over("a key or string (bytes)", len, KEY_BYTES_MAX));
            }
            r.take_u64(len)?;
        }
        ColumnType::ValueMeta => {
            // Length in the high bits, value type in the low four.
            let len = r.uleb()? >> 4;
            if len > VALUE_BYTES_MAX {
                return Err(over("a value (bytes)", len, VALUE_BYTES_MAX));
            }
        }
        _ => {
            r.uleb()?;
        }
    }
    Ok(())
}

/// A reader over bytes that never reads past the end.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b }
    }

    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    fn byte(&mut self) -> Result<u8, BudgetError> {
        let (&first, rest) = self.b.split_first().ok_or_else(|| malformed("cut short"))?;
        self.b = rest;
        Ok(first)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BudgetError> {
        if n > self.b.len() {
            return Err(malformed("cut short"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn take_u64(&mut self, n: u64) -> Result<&'a [u8], BudgetError> {
        self.take(usize::try_from(n).map_err(|_| malformed("cut short"))?)
    }

    fn uleb(&mut self) -> Result<u64, BudgetError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(malformed("varint overflows"));
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("varint overflows"))
    }

    fn sleb(&mut self) -> Result<i64, BudgetError> {
        let mut v: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift >= 64 {
                return Err(malformed("varint overflows"));
            }
            v |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    v |= -1i64 << shift;
                }
                return Ok(v);
            }
        }
    }

    fn list_len(&mut self, what: &str) -> Result<u64, BudgetError> {
        let n = self.uleb()?;
        if n > LIST_MAX {
            return Err(over(format!("{what} count"), n, LIST_MAX));
        }
        Ok(n)
    }

    fn actor(&mut self) -> Result<&'a [u8], BudgetError> {
        let len = self.uleb()?;
        if len > ACTOR_BYTES_MAX {
            return Err(over("actor id (bytes)", len, ACTOR_BYTES_MAX));
        }
        self.take_u64(len)
    }

    /// A column set's specifications and data lengths.
    fn columns(&mut self) -> Result<Vec<(u64, u64)>, BudgetError> {
        let n = self.uleb()?;
        if n > COLUMNS_MAX {
            return Err(over("column count", n, COLUMNS_MAX));
        }
        (0..n).map(|_| Ok((self.uleb()?, self.uleb()?))).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    fn doc_with_puts(n: usize) -> Automerge {
        let mut d = Automerge::new();
        let mut tx = d.transaction();
        for i in 0..n {
            tx.put(ROOT, "k", i % 2 == 0).unwrap();
        }
        tx.commit();
        d
    }

    #[test]
    fn real_records_pass_with_their_operation_count() {
        let d = doc_with_puts(300);
        let save = d.save();
        let cost = check(&save, &Budget::RECORD).unwrap();
        assert_eq!(cost.chunks, 1);
        assert_eq!(cost.changes, 1);
        // Automerge keeps every overwritten value in history.
        assert!((300..=301).contains(&cost.ops), "{cost:?}");
        let change = d.get_last_local_change().unwrap();
        let cost = check(change.raw_bytes(), &Budget::RECORD).unwrap();
        assert_eq!(cost.ops, 300);
        assert_eq!(cost.actors, vec![d.get_actor().to_bytes().to_vec()]);
        // A save followed by changes (as `load` accepts) adds up.
        let mut both = save.clone();
        both.extend_from_slice(change.raw_bytes());
        assert_eq!(check(&both, &Budget::RECORD).unwrap().chunks, 2);
    }

    #[test]
    fn an_operation_bomb_is_refused_from_its_run_lengths() {
        // 200,000 operations that compress to a few hundred bytes.
        let save = doc_with_puts(200_000).save();
        assert!(save.len() < 2_000, "{} bytes", save.len());
        let err = check(&save, &Budget::RECORD).unwrap_err();
        assert!(
            matches!(&err, BudgetError::OverLimit { what, .. } if what == "operation count"),
            "{err}"
        );
        // A compressed change of the same: deflate is bounded as well.
        let mut d = doc_with_puts(200_000);
        let mut c = d.get_last_local_change().unwrap().clone();
        let compressed = c.bytes().into_owned();
        assert!(compressed.len() < c.raw_bytes().len());
        assert!(check(&compressed, &Budget::RECORD).is_err());
        let _ = &mut d;
    }

    #[test]
    fn huge_values_and_keys_are_refused_even_in_history() {
        let mut d = Automerge::new();
        let mut tx = d.transaction();
        tx.put(ROOT, "note", "x".repeat(VALUE_BYTES_MAX as usize + 1))
            .unwrap();
        tx.put(ROOT, "note", "short").unwrap();
        tx.commit();
        let err = check(&d.save(), &Budget::RECORD).unwrap_err();
        assert!(err.to_string().contains("a value (bytes)"), "{err}");
        let mut d = Automerge::new();
        let mut tx = d.transaction();
        tx.put(ROOT, "k".repeat(KEY_BYTES_MAX as usize + 1), true)
            .unwrap();
        tx.commit();
        let err = check(&d.save(), &Budget::RECORD).unwrap_err();
        assert!(err.to_string().contains("a key or string"), "{err}");
    }

    #[test]
    fn deflate_is_inflated_only_up_to_the_bound() {
        // A deflated change chunk claiming to be a change: 64 MiB of zeros.
        let zeros = vec![0u8; 64 << 20];
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let deflated = enc.finish().unwrap();
        let mut chunk = MAGIC.to_vec();
        chunk.extend_from_slice(&[0, 0, 0, 0, CHUNK_COMPRESSED]);
        let mut len = deflated.len() as u64;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                chunk.push(b);
                break;
            }
            chunk.push(b | 0x80);
        }
        chunk.extend_from_slice(&deflated);
        let err = check(&chunk, &Budget::RECORD).unwrap_err();
        assert!(err.to_string().contains("inflated"), "{err}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in [
            &b""[..],
            b"hello",
            &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 0],
            &[
                0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(check(bad, &Budget::RECORD), Err(BudgetError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
