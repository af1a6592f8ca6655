//! The Automerge layout of each record kind, and model ↔ document conversion.
//!
//! Only this module knows how records sit inside Automerge documents. Every
//! document's root carries `schema` (layout version, currently 1), `type`
//! (`site`, `inspection` or `finding`) and `id`; the rest is per kind and is
//! drawn in `docs/ARCHITECTURE.md`. Field values are keys in maps so that
//! concurrent edits of different fields merge; two edits of the same field
//! stay visible as a conflict. Workflow events live in an append-only list.
//!
//! Readers never trust a document: one written by a buggy or hostile peer
//! gives a [`DocError`] naming the path, never a panic.

pub mod budget;
pub mod finding;
pub mod inspection;
pub mod layout;
pub mod site;

use crate::model::workflow::{Event, EventKind, Role};
use crate::model::{GeoPoint, PhotoRef, Value};
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use std::borrow::Cow;

/// Layout version written into every document.
pub const SCHEMA_VERSION: u64 = 1;

/// The three kinds of synced record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Site,
    Inspection,
    Finding,
}

impl RecordKind {
    pub fn key(self) -> &'static str {
        match self {
            RecordKind::Site => "site",
            RecordKind::Inspection => "inspection",
            RecordKind::Finding => "finding",
        }
    }

    pub fn from_key(s: &str) -> Option<RecordKind> {
        [
            RecordKind::Site,
            RecordKind::Inspection,
            RecordKind::Finding,
        ]
        .into_iter()
        .find(|k| k.key() == s)
    }
}

/// A record read from its document, once, for checks and projections.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Site(crate::model::Site),
    Inspection(crate::model::Inspection),
    Finding(crate::model::Finding),
}

impl Record {
    /// Reads the record of `kind` from `doc`.
    pub fn read(kind: RecordKind, doc: &impl ReadDoc) -> Result<Record, DocError> {
        Ok(match kind {
            RecordKind::Site => Record::Site(site::read(doc)?),
            RecordKind::Inspection => Record::Inspection(inspection::read(doc)?),
            RecordKind::Finding => Record::Finding(finding::read(doc)?),
        })
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Site(_) => RecordKind::Site,
            Record::Inspection(_) => RecordKind::Inspection,
            Record::Finding(_) => RecordKind::Finding,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Record::Site(s) => &s.id,
            Record::Inspection(i) => &i.id,
            Record::Finding(f) => &f.id,
        }
    }

    pub fn village_code(&self) -> &str {
        match self {
            Record::Site(s) => &s.village_code,
            Record::Inspection(i) => &i.village_code,
            Record::Finding(f) => &f.village_code,
        }
    }
}

/// A document that does not have the layout this module writes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocError {
    /// A key the layout requires is absent.
    #[error("document field {0} is missing")]
    Missing(String),
    /// A key holds a value of the wrong type or shape.
    #[error("document field {path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
    /// The document was written with a newer layout than this build knows.
    #[error("document layout version {0} is newer than this app understands; update the app")]
    NewerSchema(u64),
    /// The document is of another kind than expected.
    #[error("document is a {found}, expected a {expected}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
}

impl DocError {
    pub(crate) fn malformed(path: impl Into<String>, reason: impl Into<String>) -> DocError {
        DocError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Automerge API errors while writing are bugs in our own layout code (we
/// only write objects we created), but they are surfaced, not unwrapped.
pub type AmResult<T> = Result<T, automerge::AutomergeError>;

/// Reads `type`, `schema` and `id` from a document's root.
pub fn read_header(doc: &impl ReadDoc) -> Result<(RecordKind, String), DocError> {
    let schema = get_scalar(doc, &ROOT, "schema", "schema")?
        .and_then(|s| scalar_u64(&s))
        .ok_or_else(|| DocError::Missing("schema".into()))?;
    if schema > SCHEMA_VERSION {
        return Err(DocError::NewerSchema(schema));
    }
    let ty = req_str(doc, &ROOT, "type", "type")?;
    let kind = RecordKind::from_key(&ty)
        .ok_or_else(|| DocError::malformed("type", format!("unknown record type {ty:?}")))?;
    let id = req_str(doc, &ROOT, "id", "id")?;
    Ok((kind, id))
}

pub(crate) fn expect_type(doc: &impl ReadDoc, expected: RecordKind) -> Result<String, DocError> {
    let (kind, id) = read_header(doc)?;
    if kind != expected {
        return Err(DocError::WrongType {
            expected: expected.key(),
            found: kind.key().to_owned(),
        });
    }
    Ok(id)
}

pub(crate) fn write_header(tx: &mut impl Transactable, kind: RecordKind, id: &str) -> AmResult<()> {
    tx.put(ROOT, "schema", SCHEMA_VERSION)?;
    tx.put(ROOT, "type", kind.key())?;
    tx.put(ROOT, "id", id)?;
    Ok(())
}

// ---- reading helpers -------------------------------------------------------

pub(crate) fn get_scalar(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<ScalarValue>, DocError> {
    match doc.get(obj, key) {
        Ok(Some((automerge::Value::Scalar(s), _))) => Ok(Some(s.into_owned())),
        Ok(Some((automerge::Value::Object(t), _))) => Err(DocError::malformed(
            path,
            format!("expected a value, found a {t}"),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(DocError::malformed(path, e.to_string())),
    }
}

pub(crate) fn get_obj(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    ty: ObjType,
    path: &str,
) -> Result<Option<ObjId>, DocError> {
    match doc.get(obj, key) {
        Ok(Some((automerge::Value::Object(t), id))) if t == ty => Ok(Some(id)),
        Ok(Some((v, _))) => Err(DocError::malformed(
            path,
            format!("expected a {ty}, found {v}"),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(DocError::malformed(path, e.to_string())),
    }
}

pub(crate) fn req_obj(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    ty: ObjType,
    path: &str,
) -> Result<ObjId, DocError> {
    get_obj(doc, obj, key, ty, path)?.ok_or_else(|| DocError::Missing(path.to_owned()))
}

pub(crate) fn opt_str(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<String>, DocError> {
    match get_scalar(doc, obj, key, path)? {
        None | Some(ScalarValue::Null) => Ok(None),
        Some(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
        Some(other) => Err(DocError::malformed(
            path,
            format!("expected text, found {other}"),
        )),
    }
}

pub(crate) fn req_str(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<String, DocError> {
    opt_str(doc, obj, key, path)?.ok_or_else(|| DocError::Missing(path.to_owned()))
}

pub(crate) fn scalar_i64(s: &ScalarValue) -> Option<i64> {
    match s {
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Some(*i),
        ScalarValue::Uint(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

pub(crate) fn scalar_u64(s: &ScalarValue) -> Option<u64> {
    match s {
        ScalarValue::Uint(u) => Some(*u),
        ScalarValue::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

pub(crate) fn scalar_f64(s: &ScalarValue) -> Option<f64> {
    match s {
        ScalarValue::F64(f) => Some(*f),
        ScalarValue::Int(i) => Some(*i as f64),
        ScalarValue::Uint(u) => Some(*u as f64),
        _ => None,
    }
}

pub(crate) fn opt_i64(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<i64>, DocError> {
    match get_scalar(doc, obj, key, path)? {
        None | Some(ScalarValue::Null) => Ok(None),
        Some(s) => scalar_i64(&s)
            .map(Some)
            .ok_or_else(|| DocError::malformed(path, format!("expected an integer, found {s}"))),
    }
}

pub(crate) fn req_i64(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<i64, DocError> {
    opt_i64(doc, obj, key, path)?.ok_or_else(|| DocError::Missing(path.to_owned()))
}

pub(crate) fn req_u32(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<u32, DocError> {
    let v = req_i64(doc, obj, key, path)?;
    u32::try_from(v).map_err(|_| DocError::malformed(path, format!("{v} is out of range")))
}

pub(crate) fn opt_f64(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<f64>, DocError> {
    match get_scalar(doc, obj, key, path)? {
        None | Some(ScalarValue::Null) => Ok(None),
        Some(s) => match scalar_f64(&s) {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => Err(DocError::malformed(
                path,
                format!("expected a finite number, found {s}"),
            )),
        },
    }
}

pub(crate) fn req_f64(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<f64, DocError> {
    opt_f64(doc, obj, key, path)?.ok_or_else(|| DocError::Missing(path.to_owned()))
}

pub(crate) fn opt_bool(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<bool>, DocError> {
    match get_scalar(doc, obj, key, path)? {
        None | Some(ScalarValue::Null) => Ok(None),
        Some(ScalarValue::Boolean(b)) => Ok(Some(b)),
        Some(other) => Err(DocError::malformed(
            path,
            format!("expected yes/no, found {other}"),
        )),
    }
}

/// An answer or attribute value from a scalar.
pub(crate) fn value_from_scalar(s: &ScalarValue, path: &str) -> Result<Value, DocError> {
    match s {
        ScalarValue::Boolean(b) => Ok(Value::Bool(*b)),
        ScalarValue::Str(t) => Ok(Value::Text(t.to_string())),
        other => match scalar_f64(other) {
            Some(f) if f.is_finite() => Ok(Value::Number(f)),
            _ => Err(DocError::malformed(
                path,
                format!("unsupported value {other}"),
            )),
        },
    }
}

pub(crate) fn value_to_scalar(v: &Value) -> ScalarValue {
    match v {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => ScalarValue::F64(*n),
        Value::Text(t) => ScalarValue::Str(t.as_str().into()),
    }
}

/// Every value of a map key, winner first. Automerge orders conflicting
/// values deterministically (by op id), so every replica lists them alike.
pub(crate) fn all_values(
    doc: &impl ReadDoc,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Vec<Value>, DocError> {
    let all = doc
        .get_all(obj, key)
        .map_err(|e| DocError::malformed(path, e.to_string()))?;
    let mut out = Vec::with_capacity(all.len());
    for (v, _) in all {
        match v {
            automerge::Value::Scalar(s) => out.push(value_from_scalar(&s, path)?),
            automerge::Value::Object(t) => {
                return Err(DocError::malformed(
                    path,
                    format!("expected a value, found a {t}"),
                ));
            }
        }
    }
    // `get` returns the last of `get_all`; keep the winner first.
    out.reverse();
    Ok(out)
}

/// Reads a map of values in one pass: the winning value of every key, and
/// all values of the keys edited concurrently (winner first). Looking up
/// keys one by one costs a search each; a range scan visits each once.
pub(crate) type ValueMaps = (
    std::collections::BTreeMap<String, Value>,
    std::collections::BTreeMap<String, Vec<Value>>,
);

pub(crate) fn read_value_map(
    doc: &impl ReadDoc,
    obj: &ObjId,
    path: &str,
) -> Result<ValueMaps, DocError> {
    let mut winners = std::collections::BTreeMap::new();
    let mut conflicts = std::collections::BTreeMap::new();
    for item in doc.map_range(obj, ..) {
        let key = item.key.into_owned();
        let p = || format!("{path}.{}", short(&key));
        if item.conflict {
            let all = all_values(doc, obj, &key, &p())?;
            if let Some(w) = all.first() {
                winners.insert(key.clone(), w.clone());
            }
            conflicts.insert(key, all);
            continue;
        }
        match item.value.into_value() {
            automerge::Value::Scalar(s) => {
                let v = value_from_scalar(&s, &p())?;
                winners.insert(key, v);
            }
            automerge::Value::Object(t) => {
                return Err(DocError::malformed(
                    p(),
                    format!("expected a value, found a {t}"),
                ));
            }
        }
    }
    Ok((winners, conflicts))
}

/// Reads a `{lat, lon}` map.
pub(crate) fn read_point(
    doc: &impl ReadDoc,
    obj: &ObjId,
    path: &str,
) -> Result<GeoPoint, DocError> {
    let p = GeoPoint {
        lat: req_f64(doc, obj, "lat", &format!("{path}.lat"))?,
        lon: req_f64(doc, obj, "lon", &format!("{path}.lon"))?,
    };
    if !p.is_valid() {
        return Err(DocError::malformed(path, "coordinates off the globe"));
    }
    Ok(p)
}

pub(crate) fn write_point(
    tx: &mut impl Transactable,
    parent: &ObjId,
    key: &str,
    p: &GeoPoint,
) -> AmResult<()> {
    let o = tx.put_object(parent, key, ObjType::Map)?;
    tx.put(&o, "lat", p.lat)?;
    tx.put(&o, "lon", p.lon)?;
    Ok(())
}

// ---- events ------------------------------------------------------------------

pub(crate) fn append_event(tx: &mut impl Transactable, list: &ObjId, e: &Event) -> AmResult<()> {
    let len = tx.length(list);
    let o = tx.insert_object(list, len, ObjType::Map)?;
    tx.put(&o, "id", e.id.as_str())?;
    tx.put(&o, "kind", e.kind.key())?;
    tx.put(&o, "author", e.author.as_str())?;
    tx.put(&o, "role", e.role.key())?;
    tx.put(&o, "at", ScalarValue::Timestamp(e.at))?;
    if let Some(r) = e.revision {
        tx.put(&o, "revision", u64::from(r))?;
    }
    for (key, val) in [
        ("comment", &e.comment),
        ("responsible", &e.responsible),
        ("deadline", &e.deadline),
    ] {
        if let Some(v) = val {
            tx.put(&o, key, v.as_str())?;
        }
    }
    Ok(())
}

pub(crate) fn read_events(
    doc: &impl ReadDoc,
    list: &ObjId,
    path: &str,
) -> Result<Vec<Event>, DocError> {
    let n = doc.length(list);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = format!("{path}[{i}]");
        let o = match doc.get(list, i) {
            Ok(Some((automerge::Value::Object(ObjType::Map), id))) => id,
            _ => return Err(DocError::malformed(&p, "expected an event map")),
        };
        let kind = req_str(doc, &o, "kind", &format!("{p}.kind"))?;
        let role = req_str(doc, &o, "role", &format!("{p}.role"))?;
        let revision = match opt_i64(doc, &o, "revision", &format!("{p}.revision"))? {
            None => None,
            Some(r) => Some(
                u32::try_from(r)
                    .map_err(|_| DocError::malformed(format!("{p}.revision"), "out of range"))?,
            ),
        };
        out.push(Event {
            id: req_str(doc, &o, "id", &format!("{p}.id"))?,
            kind: EventKind::from_key(&kind).ok_or_else(|| {
                DocError::malformed(format!("{p}.kind"), format!("unknown event {kind:?}"))
            })?,
            author: req_str(doc, &o, "author", &format!("{p}.author"))?,
            role: Role::from_key(&role).ok_or_else(|| {
                DocError::malformed(format!("{p}.role"), format!("unknown role {role:?}"))
            })?,
            at: req_i64(doc, &o, "at", &format!("{p}.at"))?,
            revision,
            comment: opt_str(doc, &o, "comment", &format!("{p}.comment"))?,
            responsible: opt_str(doc, &o, "responsible", &format!("{p}.responsible"))?,
            deadline: opt_str(doc, &o, "deadline", &format!("{p}.deadline"))?,
        });
    }
    Ok(out)
}

// ---- photos ------------------------------------------------------------------

/// Photos are a map keyed by content hash, so adding the same photo twice —
/// on one replica or on two — leaves one entry.
pub(crate) fn put_photo(tx: &mut impl Transactable, photos: &ObjId, p: &PhotoRef) -> AmResult<()> {
    let o = tx.put_object(photos, p.hash.as_str(), ObjType::Map)?;
    if let Some(f) = &p.field {
        tx.put(&o, "field", f.as_str())?;
    }
    tx.put(&o, "bytes", p.bytes)?;
    tx.put(&o, "width", u64::from(p.width))?;
    tx.put(&o, "height", u64::from(p.height))?;
    tx.put(&o, "phash", p.phash.as_str())?;
    if let Some(t) = p.taken_at {
        tx.put(&o, "taken_at", ScalarValue::Timestamp(t))?;
    }
    if let Some(g) = &p.gps {
        write_point(tx, &o, "gps", g)?;
    }
    tx.put(&o, "added_at", ScalarValue::Timestamp(p.added_at))?;
    Ok(())
}

pub(crate) fn read_photos(
    doc: &impl ReadDoc,
    photos: &ObjId,
    path: &str,
) -> Result<Vec<PhotoRef>, DocError> {
    let mut out = Vec::new();
    let entries: Vec<(String, Option<ObjId>)> = doc
        .map_range(photos, ..)
        .map(|item| {
            let is_map = matches!(item.value, automerge::ValueRef::Object(ObjType::Map));
            let id = if is_map { Some(item.id()) } else { None };
            (item.key.into_owned(), id)
        })
        .collect();
    for (hash, o) in entries {
        let p = format!("{path}.{hash}");
        let o = o.ok_or_else(|| DocError::malformed(&p, "expected a photo map"))?;
        let u32_of =
            |key: &str| -> Result<u32, DocError> { req_u32(doc, &o, key, &format!("{p}.{key}")) };
        let bytes = req_i64(doc, &o, "bytes", &format!("{p}.bytes"))?;
        let gps = match get_obj(doc, &o, "gps", ObjType::Map, &format!("{p}.gps"))? {
            Some(g) => Some(read_point(doc, &g, &format!("{p}.gps"))?),
            None => None,
        };
        let photo = PhotoRef {
            field: opt_str(doc, &o, "field", &format!("{p}.field"))?,
            bytes: u64::try_from(bytes)
                .map_err(|_| DocError::malformed(format!("{p}.bytes"), "negative"))?,
            width: u32_of("width")?,
            height: u32_of("height")?,
            phash: req_str(doc, &o, "phash", &format!("{p}.phash"))?,
            taken_at: opt_i64(doc, &o, "taken_at", &format!("{p}.taken_at"))?,
            gps,
            added_at: req_i64(doc, &o, "added_at", &format!("{p}.added_at"))?,
            hash,
        };
        if !photo.is_well_formed() {
            return Err(DocError::malformed(
                p,
                "photo hashes are not hex of the right length",
            ));
        }
        out.push(photo);
    }
    out.sort_by(|a, b| a.hash.cmp(&b.hash));
    Ok(out)
}

/// Text for error paths; keeps messages short for long keys.
pub(crate) fn short(s: &str) -> Cow<'_, str> {
    if s.chars().count() > 40 {
        Cow::Owned(s.chars().take(40).collect::<String>() + "…")
    } else {
        Cow::Borrowed(s)
    }
}
