//! Inspection documents.
//!
//! ```text
//! ROOT { schema: 1, type: "inspection", id,
//!        site_id, site_kind, village_code, template_version: uint,
//!        inspector, device, started_at: timestamp,
//!        location?: { lat, lon, accuracy_m, at: timestamp, mock: bool },
//!        answers: { <field key>: bool | f64 | str },
//!        photos:  { <blake3 hex>: { field?, bytes, width, height, phash,
//!                                   taken_at?, gps?: {lat, lon}, added_at } },
//!        notes:   [ { id, text, author, at } ],
//!        events:  [ { id, kind, author, role, at, revision?, comment? } ] }
//! ```

use super::*;
use crate::model::{GpsFix, Inspection, Note, SiteKind};

/// Writes a whole inspection into an empty document (creation, or tests).
pub fn create(tx: &mut impl Transactable, i: &Inspection) -> AmResult<()> {
    write_header(tx, RecordKind::Inspection, &i.id)?;
    tx.put(ROOT, "site_id", i.site_id.as_str())?;
    tx.put(ROOT, "site_kind", i.site_kind.key())?;
    tx.put(ROOT, "village_code", i.village_code.as_str())?;
    tx.put(ROOT, "template_version", u64::from(i.template_version))?;
    tx.put(ROOT, "inspector", i.inspector.as_str())?;
    tx.put(ROOT, "device", i.device.as_str())?;
    tx.put(ROOT, "started_at", ScalarValue::Timestamp(i.started_at))?;
    let answers = tx.put_object(ROOT, "answers", ObjType::Map)?;
    for (k, v) in &i.answers {
        tx.put(&answers, k.as_str(), value_to_scalar(v))?;
    }
    let photos = tx.put_object(ROOT, "photos", ObjType::Map)?;
    for p in &i.photos {
        put_photo(tx, &photos, p)?;
    }
    let notes = tx.put_object(ROOT, "notes", ObjType::List)?;
    for n in &i.notes {
        insert_note(tx, &notes, n)?;
    }
    let events = tx.put_object(ROOT, "events", ObjType::List)?;
    for e in &i.events {
        append_event(tx, &events, e)?;
    }
    if let Some(fix) = &i.location {
        set_location(tx, fix)?;
    }
    Ok(())
}

fn root_obj(tx: &impl ReadDoc, key: &str, ty: ObjType) -> AmResult<ObjId> {
    match tx.get(ROOT, key)? {
        Some((automerge::Value::Object(t), id)) if t == ty => Ok(id),
        _ => Err(automerge::AutomergeError::InvalidObjId(key.to_owned())),
    }
}

pub fn set_answer(tx: &mut impl Transactable, key: &str, v: &crate::model::Value) -> AmResult<()> {
    let answers = root_obj(tx, "answers", ObjType::Map)?;
    tx.put(&answers, key, value_to_scalar(v))
}

pub fn clear_answer(tx: &mut impl Transactable, key: &str) -> AmResult<()> {
    let answers = root_obj(tx, "answers", ObjType::Map)?;
    tx.delete(&answers, key)
}

pub fn set_location(tx: &mut impl Transactable, fix: &GpsFix) -> AmResult<()> {
    let o = tx.put_object(ROOT, "location", ObjType::Map)?;
    tx.put(&o, "lat", fix.lat)?;
    tx.put(&o, "lon", fix.lon)?;
    tx.put(&o, "accuracy_m", fix.accuracy_m)?;
    tx.put(&o, "at", ScalarValue::Timestamp(fix.at))?;
    tx.put(&o, "mock", fix.mock)?;
    Ok(())
}

pub fn add_photo(tx: &mut impl Transactable, p: &PhotoRef) -> AmResult<()> {
    let photos = root_obj(tx, "photos", ObjType::Map)?;
    put_photo(tx, &photos, p)
}

fn insert_note(tx: &mut impl Transactable, notes: &ObjId, n: &Note) -> AmResult<()> {
    let len = tx.length(notes);
    let o = tx.insert_object(notes, len, ObjType::Map)?;
    tx.put(&o, "id", n.id.as_str())?;
    tx.put(&o, "text", n.text.as_str())?;
    tx.put(&o, "author", n.author.as_str())?;
    tx.put(&o, "at", ScalarValue::Timestamp(n.at))?;
    Ok(())
}

pub fn add_note(tx: &mut impl Transactable, n: &Note) -> AmResult<()> {
    let notes = root_obj(tx, "notes", ObjType::List)?;
    insert_note(tx, &notes, n)
}

pub fn add_event(tx: &mut impl Transactable, e: &Event) -> AmResult<()> {
    let events = root_obj(tx, "events", ObjType::List)?;
    append_event(tx, &events, e)
}

/// The parts of an inspection that decide who may do what to it, and its
/// projection counts: cheaper to read than the whole record, which matters
/// because every write reads it twice (before, to check; after, to project).
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub id: String,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub template_version: u32,
    pub inspector: String,
    pub started_at: i64,
    pub events: Vec<Event>,
    /// Answered fields.
    pub answered: usize,
    /// Fields with concurrent values.
    pub conflicts: usize,
    pub photos: usize,
}

/// Reads the [`Head`] of an inspection.
pub fn read_head(doc: &impl ReadDoc) -> Result<Head, DocError> {
    let id = expect_type(doc, RecordKind::Inspection)?;
    let r = &ROOT;
    let kind = req_str(doc, r, "site_kind", "site_kind")?;
    let answers = req_obj(doc, r, "answers", ObjType::Map, "answers")?;
    let (mut answered, mut conflicts) = (0, 0);
    for item in doc.map_range(&answers, ..) {
        answered += 1;
        conflicts += usize::from(item.conflict);
    }
    Ok(Head {
        id,
        site_id: req_str(doc, r, "site_id", "site_id")?,
        site_kind: SiteKind::from_key(&kind).ok_or_else(|| DocError::Malformed {
            path: "site_kind".into(),
            reason: format!("unknown site kind {kind:?}"),
        })?,
        village_code: req_str(doc, r, "village_code", "village_code")?,
        template_version: req_u32(doc, r, "template_version", "template_version")?,
        inspector: req_str(doc, r, "inspector", "inspector")?,
        started_at: req_i64(doc, r, "started_at", "started_at")?,
        events: read_events(
            doc,
            &req_obj(doc, r, "events", ObjType::List, "events")?,
            "events",
        )?,
        answered,
        conflicts,
        photos: doc.length(req_obj(doc, r, "photos", ObjType::Map, "photos")?),
    })
}

/// Reads an inspection; every malformed part is an error naming its path.
pub fn read(doc: &impl ReadDoc) -> Result<Inspection, DocError> {
    let id = expect_type(doc, RecordKind::Inspection)?;
    let r = &ROOT;
    let kind = req_str(doc, r, "site_kind", "site_kind")?;
    let location = match get_obj(doc, r, "location", ObjType::Map, "location")? {
        None => None,
        Some(o) => {
            let fix = GpsFix {
                lat: req_f64(doc, &o, "lat", "location.lat")?,
                lon: req_f64(doc, &o, "lon", "location.lon")?,
                accuracy_m: req_f64(doc, &o, "accuracy_m", "location.accuracy_m")?,
                at: req_i64(doc, &o, "at", "location.at")?,
                mock: opt_bool(doc, &o, "mock", "location.mock")?.unwrap_or(false),
            };
            if !fix.is_valid() {
                return Err(DocError::Malformed {
                    path: "location".into(),
                    reason: "coordinates or accuracy out of range".into(),
                });
            }
            Some(fix)
        }
    };
    let answers_obj = req_obj(doc, r, "answers", ObjType::Map, "answers")?;
    let (answers, conflicts) = read_value_map(doc, &answers_obj, "answers")?;
    let notes_obj = req_obj(doc, r, "notes", ObjType::List, "notes")?;
    let mut notes = Vec::new();
    for i in 0..doc.length(&notes_obj) {
        let p = format!("notes[{i}]");
        let o = match doc.get(&notes_obj, i) {
            Ok(Some((automerge::Value::Object(ObjType::Map), o))) => o,
            _ => {
                return Err(DocError::Malformed {
                    path: p,
                    reason: "expected a note map".into(),
                });
            }
        };
        notes.push(Note {
            id: req_str(doc, &o, "id", &format!("{p}.id"))?,
            text: req_str(doc, &o, "text", &format!("{p}.text"))?,
            author: req_str(doc, &o, "author", &format!("{p}.author"))?,
            at: req_i64(doc, &o, "at", &format!("{p}.at"))?,
        });
    }
    Ok(Inspection {
        id,
        site_id: req_str(doc, r, "site_id", "site_id")?,
        site_kind: SiteKind::from_key(&kind).ok_or_else(|| DocError::Malformed {
            path: "site_kind".into(),
            reason: format!("unknown site kind {kind:?}"),
        })?,
        village_code: req_str(doc, r, "village_code", "village_code")?,
        template_version: req_u32(doc, r, "template_version", "template_version")?,
        inspector: req_str(doc, r, "inspector", "inspector")?,
        device: req_str(doc, r, "device", "device")?,
        started_at: req_i64(doc, r, "started_at", "started_at")?,
        location,
        answers,
        conflicts,
        photos: read_photos(
            doc,
            &req_obj(doc, r, "photos", ObjType::Map, "photos")?,
            "photos",
        )?,
        notes,
        events: read_events(
            doc,
            &req_obj(doc, r, "events", ObjType::List, "events")?,
            "events",
        )?,
    })
}
