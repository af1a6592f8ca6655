//! The record operations: what an inspector or supervisor does on the phone.
//! Each operation checks its input first, so the user gets a precise error
//! (every template problem at once, in Chinese and English); then the write
//! itself passes the shared `policy`, the rules the server applies too. A
//! refused operation stores nothing.

use super::{Result, Store, StoreError};
use crate::doc::{self, RecordKind};
use crate::model::template::{Problem, Template};
use crate::model::workflow::{Event, EventKind, fold_finding, fold_inspection};
use crate::model::{
    Finding, GeoPoint, GpsFix, Inspection, Note, PhotoRef, Role, Site, SiteKind, SiteSource, Value,
    area,
};
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;

use crate::model::limits::{NAME_CHARS_MAX, TEXT_CHARS_MAX};
/// Most answers in one `set_answers` call (a template has well under 100 fields).
pub const ANSWERS_PER_CALL_MAX: usize = 500;

/// A site an inspector found in the field.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSite {
    pub kind: SiteKind,
    pub name: String,
    pub village_code: String,
    pub location: Option<GeoPoint>,
    pub attributes: BTreeMap<String, Value>,
}

/// A finding to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    /// The inspection that found it; `None` for a finding raised on a site
    /// directly.
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub title: String,
    pub description: String,
    /// Rectification deadline `YYYY-MM-DD`, if already known.
    pub deadline: Option<String>,
}

/// A step in a finding's lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingAction {
    /// One of assigned, rectifying, closure_requested, closed, sent_back,
    /// escalated.
    pub kind: EventKind,
    pub comment: Option<String>,
    /// Required for `assigned`.
    pub responsible: Option<String>,
    /// Required for `assigned`.
    pub deadline: Option<String>,
}

fn check_text(what: &str, s: &str, max: usize, required: bool) -> Result<()> {
    if required && s.trim().is_empty() {
        return Err(StoreError::BadInput(format!("{what} must not be empty")));
    }
    let n = s.chars().count();
    if n > max {
        return Err(StoreError::BadInput(format!(
            "{what} is {n} characters long; the limit is {max}"
        )));
    }
    Ok(())
}

fn check_date(what: &str, d: &str) -> Result<()> {
    if crate::model::value::is_iso_date(d) {
        Ok(())
    } else {
        Err(StoreError::BadInput(format!(
            "{what} {d:?} is not a date written YYYY-MM-DD"
        )))
    }
}

impl Store {
    fn require_role(&self, allowed: &[Role], action: &'static str) -> Result<()> {
        if allowed.contains(&self.identity.role) {
            Ok(())
        } else {
            Err(StoreError::Forbidden {
                role: self.identity.role,
                action,
            })
        }
    }

    fn require_scope(&self, code: &str) -> Result<()> {
        if self.identity.covers(code) {
            Ok(())
        } else {
            Err(StoreError::OutOfScope { code: code.into() })
        }
    }

    fn event(&self, kind: EventKind) -> Event {
        Event {
            id: Store::new_id(),
            kind,
            author: self.identity.user.clone(),
            role: self.identity.role,
            at: self.now(),
            revision: None,
            comment: None,
            responsible: None,
            deadline: None,
        }
    }

    /// Reads a record's model, keeping its document cached for the write
    /// that usually follows.
    pub(crate) fn read_inspection(&mut self, id: &str) -> Result<Inspection> {
        let doc = self.load(id, RecordKind::Inspection)?;
        let res = doc::inspection::read(&doc).map_err(|source| StoreError::MalformedDocument {
            id: id.into(),
            source,
        });
        self.put_back(id, RecordKind::Inspection, doc);
        res
    }

    pub(crate) fn read_finding(&mut self, id: &str) -> Result<Finding> {
        let doc = self.load(id, RecordKind::Finding)?;
        let res = doc::finding::read(&doc).map_err(|source| StoreError::MalformedDocument {
            id: id.into(),
            source,
        });
        self.put_back(id, RecordKind::Finding, doc);
        res
    }

    pub(crate) fn read_site(&mut self, id: &str) -> Result<Site> {
        let doc = self.load(id, RecordKind::Site)?;
        let res = doc::site::read(&doc).map_err(|source| StoreError::MalformedDocument {
            id: id.into(),
            source,
        });
        self.put_back(id, RecordKind::Site, doc);
        res
    }

    pub(crate) fn template_for(&self, kind: SiteKind, version: u32) -> Result<&'static Template> {
        self.templates.get(kind, version).ok_or_else(|| {
            StoreError::BadInput(format!(
                "template {}@{version} is not known to this app; update the app",
                kind.key()
            ))
        })
    }

    // ---- sites ---------------------------------------------------------------

    /// Adds a site found in the field. Returns its id.
    pub fn add_site(&mut self, s: NewSite) -> Result<String> {
        self.require_role(crate::policy::FIELD_SITE_ROLES, "add a site")?;
        check_text("site name", &s.name, NAME_CHARS_MAX, true)?;
        if !area::is_code(&s.village_code) || s.village_code.len() != 12 {
            return Err(StoreError::BadInput(format!(
                "{:?} is not a 12-digit village code",
                s.village_code
            )));
        }
        self.require_scope(&s.village_code)?;
        if let Some(p) = &s.location
            && !p.is_valid()
        {
            return Err(StoreError::BadInput(
                "site location is off the globe".into(),
            ));
        }
        let specs = s.kind.attributes();
        let mut problems = Vec::new();
        for (k, v) in &s.attributes {
            match specs.iter().find(|a| a.key == k) {
                None => problems.push(Problem::simple(
                    k,
                    crate::model::ProblemCode::UnknownField,
                    format!("「{k}」不是{}的属性", s.kind.label_zh()),
                    format!("{k} is not an attribute of a {}", s.kind.label_en()),
                )),
                Some(spec) if !spec.accepts(v) => problems.push(Problem::simple(
                    k,
                    crate::model::ProblemCode::WrongType,
                    format!("「{}」的值 {v} 无效", spec.label_zh),
                    format!("{} cannot be {v}", spec.label_en),
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(StoreError::Invalid { problems });
        }
        let site = Site {
            id: Store::new_id(),
            kind: s.kind,
            name: s.name.trim().to_owned(),
            village_code: s.village_code,
            location: s.location,
            attributes: s.attributes,
            source: SiteSource::Field,
            created_by: self.identity.user.clone(),
            created_at: self.now(),
        };
        let id = site.id.clone();
        self.create_doc(&id, RecordKind::Site, |tx| doc::site::create(tx, &site))?;
        Ok(id)
    }

    // ---- inspections ---------------------------------------------------------

    /// Starts an inspection of a site from the latest template of its kind.
    pub fn start_inspection(&mut self, site_id: &str) -> Result<String> {
        self.require_role(crate::policy::INSPECTION_ROLES, "start an inspection")?;
        let site = self.read_site(site_id)?;
        self.require_scope(&site.village_code)?;
        let template = self
            .templates
            .latest(site.kind)
            .ok_or_else(|| StoreError::BadInput(format!("no template for {}", site.kind.key())))?;
        let now = self.now();
        let ins = Inspection {
            id: Store::new_id(),
            site_id: site.id.clone(),
            site_kind: site.kind,
            village_code: site.village_code.clone(),
            template_version: template.version,
            inspector: self.identity.user.clone(),
            device: self.identity.device.clone(),
            started_at: now,
            location: None,
            answers: BTreeMap::new(),
            conflicts: BTreeMap::new(),
            photos: Vec::new(),
            notes: Vec::new(),
            events: Vec::new(),
        };
        let id = ins.id.clone();
        self.create_doc(&id, RecordKind::Inspection, |tx| {
            doc::inspection::create(tx, &ins)
        })?;
        Ok(id)
    }

    /// Loads an inspection the current user may edit now.
    /// The head of an inspection the current user may edit now.
    fn editable_head(&mut self, id: &str, action: &'static str) -> Result<doc::inspection::Head> {
        self.require_role(&[Role::Inspector], action)?;
        let doc = self.load(id, RecordKind::Inspection)?;
        let head =
            doc::inspection::read_head(&doc).map_err(|source| StoreError::MalformedDocument {
                id: id.into(),
                source,
            });
        self.put_back(id, RecordKind::Inspection, doc);
        let ins = head?;
        self.require_scope(&ins.village_code)?;
        if ins.inspector != self.identity.user {
            return Err(StoreError::Forbidden {
                role: self.identity.role,
                action,
            });
        }
        let st = fold_inspection(&ins.events);
        if !st.status.editable() {
            return Err(StoreError::IllegalTransition {
                action,
                status: st.status.key(),
            });
        }
        Ok(ins)
    }

    /// The whole inspection, for the edits that need its answers or photos;
    /// the checks are [`Store::editable_head`]'s.
    fn editable_inspection(&mut self, id: &str, action: &'static str) -> Result<Inspection> {
        self.editable_head(id, action)?;
        self.read_inspection(id)
    }

    /// Sets one answer.
    pub fn set_answer(&mut self, id: &str, key: &str, value: Value) -> Result<()> {
        self.set_answers(id, &[(key.to_owned(), value)])
    }

    /// Sets several answers as one change: all are stored or none. Every
    /// problem among them is reported at once.
    pub fn set_answers(&mut self, id: &str, answers: &[(String, Value)]) -> Result<()> {
        if answers.len() > ANSWERS_PER_CALL_MAX {
            return Err(StoreError::BadInput(format!(
                "{} answers in one call; the limit is {ANSWERS_PER_CALL_MAX}",
                answers.len()
            )));
        }
        let ins = self.editable_head(id, "edit answers of")?;
        let t = self.template_for(ins.site_kind, ins.template_version)?;
        let problems: Vec<Problem> = answers
            .iter()
            .filter_map(|(k, v)| t.check_value(k, v).err())
            .collect();
        if !problems.is_empty() {
            return Err(StoreError::Invalid { problems });
        }
        self.change_doc(id, RecordKind::Inspection, |tx| {
            for (k, v) in answers {
                doc::inspection::set_answer(tx, k, v).map_err(am_err(id))?;
            }
            Ok(())
        })
    }

    /// Clears an answer. Clearing an unanswered field changes nothing.
    pub fn clear_answer(&mut self, id: &str, key: &str) -> Result<()> {
        let ins = self.editable_inspection(id, "edit answers of")?;
        let t = self.template_for(ins.site_kind, ins.template_version)?;
        if t.field(key).is_none() {
            return Err(StoreError::invalid(Problem::simple(
                key,
                crate::model::ProblemCode::UnknownField,
                format!("模板中没有字段「{key}」"),
                format!("the template has no field {key:?}"),
            )));
        }
        if !ins.answers.contains_key(key) {
            return Ok(());
        }
        self.change_doc(id, RecordKind::Inspection, |tx| {
            doc::inspection::clear_answer(tx, key).map_err(am_err(id))
        })
    }

    /// Records the GPS fix of the visit.
    pub fn set_location(&mut self, id: &str, fix: GpsFix) -> Result<()> {
        if !fix.is_valid() {
            return Err(StoreError::BadInput(
                "GPS fix is off the globe or has a negative accuracy".into(),
            ));
        }
        self.editable_head(id, "set the location of")?;
        self.change_doc(id, RecordKind::Inspection, |tx| {
            doc::inspection::set_location(tx, &fix).map_err(am_err(id))
        })
    }

    /// Attaches a photo reference. The same photo twice is stored once.
    pub fn add_photo_ref(&mut self, id: &str, photo: PhotoRef) -> Result<()> {
        if !photo.is_well_formed() {
            return Err(StoreError::BadInput(
                "photo reference has malformed hashes or GPS".into(),
            ));
        }
        let ins = self.editable_inspection(id, "add photos to")?;
        if let Some(f) = &photo.field {
            let t = self.template_for(ins.site_kind, ins.template_version)?;
            if t.field(f).is_none() {
                return Err(StoreError::invalid(Problem::simple(
                    f,
                    crate::model::ProblemCode::UnknownField,
                    format!("模板中没有字段「{f}」"),
                    format!("the template has no field {f:?}"),
                )));
            }
        }
        if ins
            .photos
            .iter()
            .any(|p| p.hash == photo.hash && p.field == photo.field)
        {
            return Ok(());
        }
        let now = self.now();
        self.change_doc_with(
            id,
            RecordKind::Inspection,
            |tx| doc::inspection::add_photo(tx, &photo).map_err(am_err(id)),
            |sql| register_photo(sql, &photo, now),
        )
    }

    /// Adds a free note.
    pub fn add_note(&mut self, id: &str, text: &str) -> Result<()> {
        check_text("note", text, TEXT_CHARS_MAX, true)?;
        self.editable_head(id, "add notes to")?;
        let note = Note {
            id: Store::new_id(),
            text: text.to_owned(),
            author: self.identity.user.clone(),
            at: self.now(),
        };
        self.change_doc(id, RecordKind::Inspection, |tx| {
            doc::inspection::add_note(tx, &note).map_err(am_err(id))
        })
    }

    /// Submits the inspection for review. Refused with every problem listed
    /// when the answers do not satisfy the template.
    pub fn submit(&mut self, id: &str) -> Result<()> {
        let ins = self.editable_inspection(id, "submit")?;
        let t = self.template_for(ins.site_kind, ins.template_version)?;
        let problems = t.validate(&ins.answers, &ins.photo_counts());
        if !problems.is_empty() {
            return Err(StoreError::Invalid { problems });
        }
        let st = fold_inspection(&ins.events);
        let mut e = self.event(EventKind::Submitted);
        e.revision = Some(st.revision + 1);
        self.change_doc(id, RecordKind::Inspection, |tx| {
            doc::inspection::add_event(tx, &e).map_err(am_err(id))
        })
    }

    /// Returns a submitted inspection to its inspector with a comment.
    pub fn return_inspection(&mut self, id: &str, comment: &str) -> Result<()> {
        check_text("comment", comment, TEXT_CHARS_MAX, true)?;
        self.review(id, EventKind::Returned, Some(comment), "return")
    }

    /// Approves a submitted inspection.
    pub fn approve(&mut self, id: &str, comment: Option<&str>) -> Result<()> {
        if let Some(c) = comment {
            check_text("comment", c, TEXT_CHARS_MAX, false)?;
        }
        self.review(id, EventKind::Approved, comment, "approve")
    }

    fn review(
        &mut self,
        id: &str,
        kind: EventKind,
        comment: Option<&str>,
        action: &'static str,
    ) -> Result<()> {
        self.require_role(kind.allowed_roles(), action)?;
        let ins = self.read_inspection(id)?;
        self.require_scope(&ins.village_code)?;
        let st = fold_inspection(&ins.events);
        if st.status != crate::model::InspectionStatus::Submitted {
            return Err(StoreError::IllegalTransition {
                action,
                status: st.status.key(),
            });
        }
        let mut e = self.event(kind);
        e.revision = Some(st.revision);
        e.comment = comment.filter(|c| !c.trim().is_empty()).map(str::to_owned);
        self.change_doc(id, RecordKind::Inspection, |tx| {
            doc::inspection::add_event(tx, &e).map_err(am_err(id))
        })
    }

    /// Comments on an inspection or a finding; any role in scope may.
    pub fn comment(&mut self, record_id: &str, text: &str) -> Result<()> {
        check_text("comment", text, TEXT_CHARS_MAX, true)?;
        let mut e = self.event(EventKind::Commented);
        e.comment = Some(text.to_owned());
        let kind = self.record_kind(record_id)?;
        match kind {
            RecordKind::Inspection => {
                let ins = self.read_inspection(record_id)?;
                self.require_scope(&ins.village_code)?;
                self.change_doc(record_id, kind, |tx| {
                    doc::inspection::add_event(tx, &e).map_err(am_err(record_id))
                })
            }
            RecordKind::Finding => {
                let f = self.read_finding(record_id)?;
                self.require_scope(&f.village_code)?;
                self.change_doc(record_id, kind, |tx| {
                    doc::finding::add_event(tx, &e).map_err(am_err(record_id))
                })
            }
            RecordKind::Site => Err(StoreError::BadInput("sites take no comments".into())),
        }
    }

    /// The kind of a stored record.
    pub fn record_kind(&self, id: &str) -> Result<RecordKind> {
        let k: Option<String> = self
            .conn()
            .query_row("SELECT kind FROM documents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        k.and_then(|k| RecordKind::from_key(&k))
            .ok_or_else(|| StoreError::NotFound {
                kind: "record",
                id: id.into(),
            })
    }

    // ---- findings -------------------------------------------------------------

    /// Raises a finding on a site (usually from an inspection). Returns its id.
    pub fn raise_finding(&mut self, f: NewFinding) -> Result<String> {
        self.require_role(EventKind::Found.allowed_roles(), "raise a finding")?;
        check_text("finding title", &f.title, NAME_CHARS_MAX, true)?;
        check_text("finding description", &f.description, TEXT_CHARS_MAX, false)?;
        if let Some(d) = &f.deadline {
            check_date("deadline", d)?;
        }
        let site = self.read_site(&f.site_id)?;
        self.require_scope(&site.village_code)?;
        if let Some(iid) = &f.inspection_id {
            let ins = self.read_inspection(iid)?;
            if ins.site_id != site.id {
                return Err(StoreError::BadInput(format!(
                    "inspection {iid} is not of site {}",
                    site.id
                )));
            }
        }
        let mut found = self.event(EventKind::Found);
        found.deadline.clone_from(&f.deadline);
        let finding = Finding {
            id: Store::new_id(),
            inspection_id: f.inspection_id,
            site_id: site.id,
            site_kind: site.kind,
            village_code: site.village_code,
            title: f.title.trim().to_owned(),
            description: f.description,
            raised_by: self.identity.user.clone(),
            raised_at: found.at,
            photos: Vec::new(),
            events: vec![found],
        };
        let id = finding.id.clone();
        self.create_doc(&id, RecordKind::Finding, |tx| {
            doc::finding::create(tx, &finding)
        })?;
        Ok(id)
    }

    /// Moves a finding along its lifecycle.
    pub fn advance_finding(&mut self, id: &str, a: FindingAction) -> Result<()> {
        let action = a.kind.label_en();
        if !EventKind::FINDING_STEPS.contains(&a.kind) {
            return Err(StoreError::BadInput(format!(
                "{} is not a finding step",
                a.kind.key()
            )));
        }
        self.require_role(a.kind.allowed_roles(), action)?;
        if let Some(c) = &a.comment {
            check_text("comment", c, TEXT_CHARS_MAX, false)?;
        }
        if a.kind == EventKind::Assigned {
            let r = a.responsible.as_deref().unwrap_or("");
            check_text("responsible party", r, NAME_CHARS_MAX, true)?;
            check_date("deadline", a.deadline.as_deref().unwrap_or(""))?;
        }
        if a.kind == EventKind::SentBack && a.comment.as_deref().is_none_or(|c| c.trim().is_empty())
        {
            return Err(StoreError::BadInput(
                "sending a finding back needs a comment saying why".into(),
            ));
        }
        let f = self.read_finding(id)?;
        self.require_scope(&f.village_code)?;
        let st = fold_finding(&f.events);
        if !st.status.allows(a.kind) {
            return Err(StoreError::IllegalTransition {
                action,
                status: st.status.key(),
            });
        }
        let mut e = self.event(a.kind);
        e.comment = a.comment;
        e.responsible = a.responsible;
        e.deadline = a.deadline;
        self.change_doc(id, RecordKind::Finding, |tx| {
            doc::finding::add_event(tx, &e).map_err(am_err(id))
        })
    }

    /// Attaches evidence to a finding (the problem, or its rectification).
    pub fn add_finding_photo(&mut self, id: &str, photo: PhotoRef) -> Result<()> {
        self.require_role(
            crate::policy::FINDING_PHOTO_ROLES,
            "add photos to a finding",
        )?;
        if !photo.is_well_formed() {
            return Err(StoreError::BadInput(
                "photo reference has malformed hashes or GPS".into(),
            ));
        }
        let f = self.read_finding(id)?;
        self.require_scope(&f.village_code)?;
        if f.photos.iter().any(|p| p.hash == photo.hash) {
            return Ok(());
        }
        let now = self.now();
        self.change_doc_with(
            id,
            RecordKind::Finding,
            |tx| doc::finding::add_photo(tx, &photo).map_err(am_err(id)),
            |sql| register_photo(sql, &photo, now),
        )
    }
}

/// Records a photo in the photo table (upload pending) once, in the same
/// transaction as the document change that references it.
fn register_photo(sql: &rusqlite::Transaction<'_>, p: &PhotoRef, now: i64) -> Result<()> {
    let path = format!("{}/{}.jpg", super::PHOTO_DIR, p.hash);
    sql.execute(
        "INSERT OR IGNORE INTO photos(hash, path, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![p.hash, path, p.bytes as i64, now],
    )?;
    Ok(())
}

/// Maps an Automerge write error on our own document to a store error.
fn am_err(id: &str) -> impl Fn(automerge::AutomergeError) -> StoreError + '_ {
    move |e| StoreError::CorruptDocument {
        id: id.into(),
        reason: e.to_string(),
    }
}
