//! Finding documents.
//!
//! ```text
//! ROOT { schema: 1, type: "finding", id,
//!        inspection_id?, site_id, site_kind, village_code,
//!        title, description, raised_by, raised_at: timestamp,
//!        photos: { <blake3 hex>: {…as in inspections…} },
//!        events: [ { id, kind, author, role, at, comment?, responsible?, deadline? } ] }
//! ```

use super::*;
use crate::model::{Finding, SiteKind};

pub fn create(tx: &mut impl Transactable, f: &Finding) -> AmResult<()> {
    write_header(tx, RecordKind::Finding, &f.id)?;
    if let Some(i) = &f.inspection_id {
        tx.put(ROOT, "inspection_id", i.as_str())?;
    }
    tx.put(ROOT, "site_id", f.site_id.as_str())?;
    tx.put(ROOT, "site_kind", f.site_kind.key())?;
    tx.put(ROOT, "village_code", f.village_code.as_str())?;
    tx.put(ROOT, "title", f.title.as_str())?;
    tx.put(ROOT, "description", f.description.as_str())?;
    tx.put(ROOT, "raised_by", f.raised_by.as_str())?;
    tx.put(ROOT, "raised_at", ScalarValue::Timestamp(f.raised_at))?;
    let photos = tx.put_object(ROOT, "photos", ObjType::Map)?;
    for p in &f.photos {
        put_photo(tx, &photos, p)?;
    }
    let events = tx.put_object(ROOT, "events", ObjType::List)?;
    for e in &f.events {
        append_event(tx, &events, e)?;
    }
    Ok(())
}

pub fn add_event(tx: &mut impl Transactable, e: &Event) -> AmResult<()> {
    match tx.get(ROOT, "events")? {
        Some((automerge::Value::Object(ObjType::List), events)) => append_event(tx, &events, e),
        _ => Err(automerge::AutomergeError::InvalidObjId("events".into())),
    }
}

pub fn add_photo(tx: &mut impl Transactable, p: &PhotoRef) -> AmResult<()> {
    match tx.get(ROOT, "photos")? {
        Some((automerge::Value::Object(ObjType::Map), photos)) => put_photo(tx, &photos, p),
        _ => Err(automerge::AutomergeError::InvalidObjId("photos".into())),
    }
}

pub fn read(doc: &impl ReadDoc) -> Result<Finding, DocError> {
    let id = expect_type(doc, RecordKind::Finding)?;
    let r = &ROOT;
    let kind = req_str(doc, r, "site_kind", "site_kind")?;
    Ok(Finding {
        id,
        inspection_id: opt_str(doc, r, "inspection_id", "inspection_id")?,
        site_id: req_str(doc, r, "site_id", "site_id")?,
        site_kind: SiteKind::from_key(&kind).ok_or_else(|| DocError::Malformed {
            path: "site_kind".into(),
            reason: format!("unknown site kind {kind:?}"),
        })?,
        village_code: req_str(doc, r, "village_code", "village_code")?,
        title: req_str(doc, r, "title", "title")?,
        description: opt_str(doc, r, "description", "description")?.unwrap_or_default(),
        raised_by: req_str(doc, r, "raised_by", "raised_by")?,
        raised_at: req_i64(doc, r, "raised_at", "raised_at")?,
        photos: read_photos(
            doc,
            &req_obj(doc, r, "photos", ObjType::Map, "photos")?,
            "photos",
        )?,
        events: read_events(
            doc,
            &req_obj(doc, r, "events", ObjType::List, "events")?,
            "events",
        )?,
    })
}
