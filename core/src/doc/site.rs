//! Site documents.
//!
//! ```text
//! ROOT { schema: 1, type: "site", id,
//!        site_kind, name, village_code, source: "registry" | "field",
//!        location?: { lat, lon }, attributes: { <key>: bool | f64 | str },
//!        created_by, created_at: timestamp }
//! ```

use super::*;
use crate::model::{Site, SiteKind, SiteSource};

pub fn create(tx: &mut impl Transactable, s: &Site) -> AmResult<()> {
    write_header(tx, RecordKind::Site, &s.id)?;
    tx.put(ROOT, "site_kind", s.kind.key())?;
    tx.put(ROOT, "name", s.name.as_str())?;
    tx.put(ROOT, "village_code", s.village_code.as_str())?;
    tx.put(ROOT, "source", s.source.key())?;
    if let Some(p) = &s.location {
        write_point(tx, &ROOT, "location", p)?;
    }
    let attrs = tx.put_object(ROOT, "attributes", ObjType::Map)?;
    for (k, v) in &s.attributes {
        tx.put(&attrs, k.as_str(), value_to_scalar(v))?;
    }
    tx.put(ROOT, "created_by", s.created_by.as_str())?;
    tx.put(ROOT, "created_at", ScalarValue::Timestamp(s.created_at))?;
    Ok(())
}

/// Brings a site's registry fields (name, village, location, attributes)
/// to `s`, writing only what differs, so an unchanged re-import makes no
/// change and a moved site makes a small one. Creation fields stay.
/// Returns whether anything was written.
pub fn update(tx: &mut impl Transactable, current: &Site, s: &Site) -> AmResult<bool> {
    let mut changed = false;
    if current.name != s.name {
        tx.put(ROOT, "name", s.name.as_str())?;
        changed = true;
    }
    if current.village_code != s.village_code {
        tx.put(ROOT, "village_code", s.village_code.as_str())?;
        changed = true;
    }
    if current.location != s.location {
        match &s.location {
            Some(p) => write_point(tx, &ROOT, "location", p)?,
            None => tx.delete(ROOT, "location")?,
        }
        changed = true;
    }
    if current.attributes != s.attributes {
        let attrs = match tx.get(ROOT, "attributes")? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => tx.put_object(ROOT, "attributes", ObjType::Map)?,
        };
        for k in current.attributes.keys() {
            if !s.attributes.contains_key(k) {
                tx.delete(&attrs, k.as_str())?;
            }
        }
        for (k, v) in &s.attributes {
            if current.attributes.get(k) != Some(v) {
                tx.put(&attrs, k.as_str(), value_to_scalar(v))?;
            }
        }
        changed = true;
    }
    Ok(changed)
}

pub fn read(doc: &impl ReadDoc) -> Result<Site, DocError> {
    let id = expect_type(doc, RecordKind::Site)?;
    let r = &ROOT;
    let kind = req_str(doc, r, "site_kind", "site_kind")?;
    let source = req_str(doc, r, "source", "source")?;
    let location = match get_obj(doc, r, "location", ObjType::Map, "location")? {
        Some(o) => Some(read_point(doc, &o, "location")?),
        None => None,
    };
    let attrs_obj = req_obj(doc, r, "attributes", ObjType::Map, "attributes")?;
    let (attributes, _) = read_value_map(doc, &attrs_obj, "attributes")?;
    Ok(Site {
        id,
        kind: SiteKind::from_key(&kind).ok_or_else(|| DocError::Malformed {
            path: "site_kind".into(),
            reason: format!("unknown site kind {kind:?}"),
        })?,
        name: req_str(doc, r, "name", "name")?,
        village_code: req_str(doc, r, "village_code", "village_code")?,
        location,
        attributes,
        source: SiteSource::from_key(&source).ok_or_else(|| DocError::Malformed {
            path: "source".into(),
            reason: format!("unknown source {source:?}"),
        })?,
        created_by: req_str(doc, r, "created_by", "created_by")?,
        created_at: req_i64(doc, r, "created_at", "created_at")?,
    })
}
