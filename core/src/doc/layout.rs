//! The closed layout: every key a record may hold, the type of every
//! value, and how long and how many each may be.
//!
//! The readers in this module's siblings read the keys they know and would
//! ignore the rest; a record from another device could then carry anything
//! beside a valid inspection (a megabyte of text under an extra key, a
//! thousand nested maps) and every phone of its area would pull it. So a
//! record that arrives from outside is walked here first: a key outside the
//! layout, a value of the wrong type, a text over its length or a list over
//! its count refuses the whole record. Concurrent values of one key (an
//! Automerge conflict) are checked too, not only the winner. The record's
//! own `id` must be the id it travels under, so a record can never be
//! stored, projected or pulled as another one.
//!
//! Bounds are those of `model::limits`; the shapes follow the layouts drawn
//! in `site.rs`, `inspection.rs` and `finding.rs`.

use super::{DocError, RecordKind, read_header, short};
use crate::model::limits::*;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

/// What a value must be.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Text of at most this many characters.
    Text(usize),
    /// An integer, a timestamp or a finite float.
    Number,
    Bool,
    /// An answer or attribute: yes/no, a number, or text of at most this
    /// many characters.
    Answer(usize),
    /// A map with exactly these keys allowed (each optional here; the
    /// readers decide what is required).
    Map(&'static [(&'static str, Shape)]),
    /// A map of free keys (field keys, photo hashes).
    MapOf {
        key_chars_max: usize,
        entries_max: usize,
        value: &'static Shape,
    },
    /// A list of items of one shape.
    ListOf {
        items_max: usize,
        item: &'static Shape,
    },
}

use Shape::*;

const POINT: Shape = Map(&[("lat", Number), ("lon", Number)]);

const FIX: Shape = Map(&[
    ("lat", Number),
    ("lon", Number),
    ("accuracy_m", Number),
    ("at", Number),
    ("mock", Bool),
]);

const PHOTO: Shape = Map(&[
    ("field", Text(KEY_CHARS_MAX)),
    ("bytes", Number),
    ("width", Number),
    ("height", Number),
    ("phash", Text(16)),
    ("taken_at", Number),
    ("gps", POINT),
    ("added_at", Number),
]);

const PHOTOS: Shape = MapOf {
    key_chars_max: 64,
    entries_max: PHOTOS_PER_RECORD_MAX,
    value: &PHOTO,
};

const EVENT: Shape = Map(&[
    ("id", Text(ID_CHARS_MAX)),
    ("kind", Text(WORD_CHARS_MAX)),
    ("author", Text(USER_CHARS_MAX)),
    ("role", Text(WORD_CHARS_MAX)),
    ("at", Number),
    ("revision", Number),
    ("comment", Text(TEXT_CHARS_MAX)),
    ("responsible", Text(NAME_CHARS_MAX)),
    ("deadline", Text(WORD_CHARS_MAX)),
]);

const EVENTS: Shape = ListOf {
    items_max: EVENTS_PER_RECORD_MAX,
    item: &EVENT,
};

const NOTE: Shape = Map(&[
    ("id", Text(ID_CHARS_MAX)),
    ("text", Text(TEXT_CHARS_MAX)),
    ("author", Text(USER_CHARS_MAX)),
    ("at", Number),
]);

const SITE: Shape = Map(&[
    ("schema", Number),
    ("type", Text(WORD_CHARS_MAX)),
    ("id", Text(ID_CHARS_MAX)),
    ("site_kind", Text(WORD_CHARS_MAX)),
    ("name", Text(NAME_CHARS_MAX)),
    ("village_code", Text(WORD_CHARS_MAX)),
    ("source", Text(WORD_CHARS_MAX)),
    ("location", POINT),
    (
        "attributes",
        MapOf {
            key_chars_max: KEY_CHARS_MAX,
            entries_max: ATTRIBUTES_PER_SITE_MAX,
            value: &Answer(NAME_CHARS_MAX),
        },
    ),
    ("created_by", Text(USER_CHARS_MAX)),
    ("created_at", Number),
]);

const INSPECTION: Shape = Map(&[
    ("schema", Number),
    ("type", Text(WORD_CHARS_MAX)),
    ("id", Text(ID_CHARS_MAX)),
    ("site_id", Text(ID_CHARS_MAX)),
    ("site_kind", Text(WORD_CHARS_MAX)),
    ("village_code", Text(WORD_CHARS_MAX)),
    ("template_version", Number),
    ("inspector", Text(USER_CHARS_MAX)),
    ("device", Text(DEVICE_CHARS_MAX)),
    ("started_at", Number),
    ("location", FIX),
    (
        "answers",
        MapOf {
            key_chars_max: KEY_CHARS_MAX,
            entries_max: ANSWERS_PER_RECORD_MAX,
            value: &Answer(TEXT_CHARS_MAX),
        },
    ),
    ("photos", PHOTOS),
    (
        "notes",
        ListOf {
            items_max: NOTES_PER_RECORD_MAX,
            item: &NOTE,
        },
    ),
    ("events", EVENTS),
]);

const FINDING: Shape = Map(&[
    ("schema", Number),
    ("type", Text(WORD_CHARS_MAX)),
    ("id", Text(ID_CHARS_MAX)),
    ("inspection_id", Text(ID_CHARS_MAX)),
    ("site_id", Text(ID_CHARS_MAX)),
    ("site_kind", Text(WORD_CHARS_MAX)),
    ("village_code", Text(WORD_CHARS_MAX)),
    ("title", Text(NAME_CHARS_MAX)),
    ("description", Text(TEXT_CHARS_MAX)),
    ("raised_by", Text(USER_CHARS_MAX)),
    ("raised_at", Number),
    ("photos", PHOTOS),
    ("events", EVENTS),
]);

/// Checks that `doc` is a `kind` record with id `id` and holds nothing
/// outside its layout. Cost: one visit per key and list item.
pub fn check(doc: &impl ReadDoc, kind: RecordKind, id: &str) -> Result<(), DocError> {
    let (found, own_id) = read_header(doc)?;
    if found != kind {
        return Err(DocError::WrongType {
            expected: kind.key(),
            found: found.key().to_owned(),
        });
    }
    if own_id != id {
        return Err(DocError::malformed(
            "id",
            format!(
                "the record names itself {}, but travels as {id}",
                short(&own_id)
            ),
        ));
    }
    let shape = match kind {
        RecordKind::Site => &SITE,
        RecordKind::Inspection => &INSPECTION,
        RecordKind::Finding => &FINDING,
    };
    walk(doc, &ROOT, shape, "")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        short(key).into_owned()
    } else {
        format!("{path}.{}", short(key))
    }
}

/// Checks the object `obj`, which has already been found to be of the
/// object type `shape` asks for.
fn walk(doc: &impl ReadDoc, obj: &ObjId, shape: &Shape, path: &str) -> Result<(), DocError> {
    match shape {
        Map(fields) => {
            for key in doc.keys(obj) {
                let p = join(path, &key);
                let Some((_, field)) = fields.iter().find(|(k, _)| *k == key) else {
                    return Err(DocError::malformed(p, "is not part of the record layout"));
                };
                values_at(doc, obj, automerge::Prop::Map(key), field, &p)?;
            }
        }
        MapOf {
            key_chars_max,
            entries_max,
            value,
        } => {
            let n = doc.length(obj);
            if n > *entries_max {
                return Err(DocError::malformed(
                    path,
                    format!("holds {n} entries; the limit is {entries_max}"),
                ));
            }
            for key in doc.keys(obj) {
                let p = join(path, &key);
                if key.is_empty() || !fits(&key, *key_chars_max) {
                    return Err(DocError::malformed(
                        p,
                        format!("a key must be 1 to {key_chars_max} characters"),
                    ));
                }
                values_at(doc, obj, automerge::Prop::Map(key), value, &p)?;
            }
        }
        ListOf { items_max, item } => {
            let n = doc.length(obj);
            if n > *items_max {
                return Err(DocError::malformed(
                    path,
                    format!("holds {n} items; the limit is {items_max}"),
                ));
            }
            for i in 0..n {
                values_at(
                    doc,
                    obj,
                    automerge::Prop::Seq(i),
                    item,
                    &format!("{path}[{i}]"),
                )?;
            }
        }
        // Scalars are checked by `values_at`.
        Text(_) | Number | Bool | Answer(_) => {}
    }
    Ok(())
}

/// Checks every value at one key or index, conflicting ones included.
fn values_at(
    doc: &impl ReadDoc,
    obj: &ObjId,
    prop: automerge::Prop,
    shape: &Shape,
    path: &str,
) -> Result<(), DocError> {
    let all = doc
        .get_all(obj, prop)
        .map_err(|e| DocError::malformed(path, e.to_string()))?;
    for (value, id) in all {
        match value {
            automerge::Value::Object(ty) => {
                let wanted = match shape {
                    Map(_) | MapOf { .. } => ObjType::Map,
                    ListOf { .. } => ObjType::List,
                    _ => {
                        return Err(DocError::malformed(
                            path,
                            format!("expected a value, found a {ty}"),
                        ));
                    }
                };
                if ty != wanted {
                    return Err(DocError::malformed(
                        path,
                        format!("expected a {wanted}, found a {ty}"),
                    ));
                }
                walk(doc, &id, shape, path)?;
            }
            automerge::Value::Scalar(s) => scalar(&s, shape, path)?,
        }
    }
    Ok(())
}

fn scalar(s: &ScalarValue, shape: &Shape, path: &str) -> Result<(), DocError> {
    let text = |t: &str, max: usize| {
        if fits(t, max) {
            Ok(())
        } else {
            Err(DocError::malformed(
                path,
                format!(
                    "is {} characters long; the limit is {max}",
                    t.chars().count()
                ),
            ))
        }
    };
    let number = |s: &ScalarValue| match s {
        ScalarValue::Int(_) | ScalarValue::Uint(_) | ScalarValue::Timestamp(_) => true,
        ScalarValue::F64(f) => f.is_finite(),
        _ => false,
    };
    let ok = match (shape, s) {
        // An absent optional value; the readers refuse a null they need.
        (_, ScalarValue::Null) => true,
        (Text(max), ScalarValue::Str(t)) => return text(t, *max),
        (Answer(max), ScalarValue::Str(t)) => return text(t, *max),
        (Answer(_), ScalarValue::Boolean(_)) | (Bool, ScalarValue::Boolean(_)) => true,
        (Number | Answer(_), v) => number(v),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DocError::malformed(
            path,
            format!("holds {s}, which is not a {}", describe(shape)),
        ))
    }
}

fn describe(shape: &Shape) -> &'static str {
    match shape {
        Text(_) => "text",
        Number => "number",
        Bool => "yes/no value",
        Answer(_) => "yes/no, number or text",
        Map(_) | MapOf { .. } => "map",
        ListOf { .. } => "list",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{Site, SiteKind, SiteSource};
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    const ID: &str = "0190f000-0000-7000-8000-000000000001";

    fn site() -> Automerge {
        let mut d = Automerge::new();
        let mut tx = d.transaction();
        super::super::site::create(
            &mut tx,
            &Site {
                id: ID.into(),
                kind: SiteKind::GarbagePoint,
                name: "村口垃圾房".into(),
                village_code: "410324101201".into(),
                location: None,
                attributes: Default::default(),
                source: SiteSource::Field,
                created_by: "li.wei".into(),
                created_at: 0,
            },
        )
        .unwrap();
        tx.commit();
        d
    }

    fn edit(d: &mut Automerge, f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) {
        let mut tx = d.transaction();
        f(&mut tx);
        tx.commit();
    }

    #[test]
    fn a_record_as_written_passes() {
        check(&site(), RecordKind::Site, ID).unwrap();
    }

    #[test]
    fn what_lies_outside_the_layout_is_refused_with_its_path() {
        type Edit = Box<dyn Fn(&mut automerge::transaction::Transaction<'_>)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "poison: is not part of the record layout",
                Box::new(|tx| {
                    tx.put(ROOT, "poison", "x").unwrap();
                }),
            ),
            (
                "name: is 201 characters long",
                Box::new(|tx| {
                    tx.put(ROOT, "name", "长".repeat(201)).unwrap();
                }),
            ),
            (
                "name: expected a value, found a map",
                Box::new(|tx| {
                    tx.put_object(ROOT, "name", ObjType::Map).unwrap();
                }),
            ),
            (
                "location.alt: is not part of the record layout",
                Box::new(|tx| {
                    let o = tx.put_object(ROOT, "location", ObjType::Map).unwrap();
                    tx.put(&o, "alt", 3.0).unwrap();
                }),
            ),
            (
                "attributes: holds 33 entries",
                Box::new(|tx| {
                    let a = tx.put_object(ROOT, "attributes", ObjType::Map).unwrap();
                    for i in 0..33 {
                        tx.put(&a, format!("a{i}"), 1).unwrap();
                    }
                }),
            ),
            (
                "created_at: holds true, which is not a number",
                Box::new(|tx| {
                    tx.put(ROOT, "created_at", true).unwrap();
                }),
            ),
        ];
        for (want, f) in cases {
            let mut d = site();
            edit(&mut d, f);
            let err = check(&d, RecordKind::Site, ID).unwrap_err().to_string();
            let (path, reason) = want.split_once(": ").unwrap();
            assert!(
                err.contains(&format!("field {path} ")) && err.contains(reason),
                "{want}: {err}"
            );
        }
    }

    #[test]
    fn conflicting_values_are_checked_too() {
        let mut a = site();
        let mut b = a.fork();
        edit(&mut a, |tx| {
            tx.put(ROOT, "name", "甲").unwrap();
        });
        edit(&mut b, |tx| {
            tx.put(ROOT, "name", "长".repeat(300)).unwrap();
        });
        a.merge(&mut b).unwrap();
        assert!(check(&a, RecordKind::Site, ID).is_err());
    }

    #[test]
    fn the_id_must_be_the_one_it_travels_under() {
        let err = check(
            &site(),
            RecordKind::Site,
            "0190f000-0000-7000-8000-000000000002",
        )
        .unwrap_err();
        assert!(err.to_string().contains("travels as"), "{err}");
        let err = check(&site(), RecordKind::Inspection, ID).unwrap_err();
        assert!(matches!(err, DocError::WrongType { .. }), "{err}");
    }
}
