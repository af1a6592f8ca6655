//! fieldbook-ffi: the core exposed to Kotlin, Swift and Python through
//! uniffi (proc-macros, library mode).
//!
//! Only this crate knows uniffi. [`Fieldbook`] wraps a core
//! [`Session`](fieldbook_core::session::Session) and each method delegates
//! to one core call, then converts the result into the flat records of
//! [`types`]; no business rule lives here or in the apps. Errors are one
//! [`ApiError`] whose variant tells the app what to do next.
//!
//! Threads: quick calls (lists, views, answers, submit) hold the store for
//! one SQLite transaction, a few milliseconds, and may run on any thread.
//! Calls that wait on the network or compress photos (login, relogin, sync,
//! add photo, download photo) are `async`: they run on a thread of their own
//! and the app awaits them from its coroutine, task or event loop. A sync
//! takes the store only between network calls, so the form stays editable
//! while it runs.

mod background;
mod error;
pub mod types;

pub use error::ApiError;
pub use types::*;

use fieldbook_core::model::{self, GeoPoint};
use fieldbook_core::photo::{self, PhotoInput, PhotoOptions};
use fieldbook_core::session::{Session, SessionError};
use fieldbook_core::store::{self, Store, StoreError};
use fieldbook_core::sync::SyncOptions;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

uniffi::setup_scaffolding!();

/// Receives sync progress; called on the sync's own thread after every
/// exchange with the server.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Cancels a running sync from another thread. The sync stops at its next
/// step; everything applied so far is kept.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken {
    flag: AtomicBool,
}

#[uniffi::export]
impl CancelToken {
    #[uniffi::constructor]
    pub fn new() -> Arc<CancelToken> {
        Arc::new(CancelToken::default())
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// The user saved on this phone, for a login screen to prefill.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SavedUser {
    pub server: String,
    pub user: String,
}

/// The user last logged in on this phone, if any. Reads one small file.
/// After `Damaged`: moves the damaged database aside, brings back every
/// record and unsent change that still reads, and queues the photos again.
/// Then `Fieldbook.resume` and a sync restore the rest from the server.
#[uniffi::export]
pub fn recover_store(data_dir: String, language: Language) -> Result<RecoveryInfo, ApiError> {
    let (session, r) =
        Session::recover(Path::new(&data_dir)).map_err(|e| ApiError::from_session(e, language))?;
    drop(session);
    Ok(RecoveryInfo {
        kept_at: r.moved_to.display().to_string(),
        records: r.records,
        unsent_changes: r.unsent_changes,
        unreadable: r.unreadable,
        photos: r.photos,
    })
}

#[uniffi::export]
pub fn saved_user(data_dir: String) -> Result<Option<SavedUser>, ApiError> {
    Session::saved_account(Path::new(&data_dir))
        .map(|a| {
            a.map(|a| SavedUser {
                server: a.server,
                user: a.user,
            })
        })
        .map_err(|e| ApiError::from_session(e, Language::En))
}

/// Logs in to `server` and opens the phone's store in `data_dir`. Needs
/// the network once; afterwards [`Fieldbook::resume`] opens the session
/// offline.
#[uniffi::export]
pub async fn login(
    data_dir: String,
    server: String,
    username: String,
    password: String,
    language: Language,
) -> Result<Arc<Fieldbook>, ApiError> {
    background::run(
        move || {
            Session::login(Path::new(&data_dir), &server, &username, &password)
                .map(|s| Fieldbook::wrap(s, language))
                .map_err(|e| ApiError::from_session(e, language))
        },
        failed,
    )
    .await
}

fn failed<T>() -> Result<T, ApiError> {
    Err(ApiError::Other {
        reason: "the operation failed unexpectedly; nothing was changed".into(),
    })
}

/// A signed-in phone. One per app; share it between screens and the
/// background sync.
#[derive(uniffi::Object)]
pub struct Fieldbook {
    session: Session,
    language: Mutex<Language>,
}

impl std::fmt::Debug for Fieldbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fieldbook")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Fieldbook {
    fn wrap(session: Session, language: Language) -> Arc<Fieldbook> {
        Arc::new(Fieldbook {
            session,
            language: Mutex::new(language),
        })
    }

    fn lang(&self) -> Language {
        *self.language.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One store operation, its error mapped for the app.
    fn store<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, StoreError>) -> Result<R, ApiError> {
        self.session.with_store(f).map_err(|e| self.err(e))
    }

    fn err(&self, e: SessionError) -> ApiError {
        ApiError::from_session(e, self.lang())
    }

    fn photo_dir(&self) -> std::path::PathBuf {
        self.session.dir().join(store::PHOTO_DIR)
    }

    /// Compresses off the store's lock, then attaches in one transaction.
    fn add_photo_with(
        self: Arc<Self>,
        input: OwnedPhoto,
        attach: impl FnOnce(&mut Store, photo::Compressed) -> Result<model::PhotoRef, StoreError>
        + Send
        + 'static,
    ) -> background::Background<Result<PhotoItem, ApiError>> {
        background::run(
            move || {
                let lang = self.lang();
                let input = match &input {
                    OwnedPhoto::Bytes(b) => PhotoInput::Bytes(b),
                    OwnedPhoto::Path(p) => PhotoInput::Path(Path::new(p)),
                };
                let compressed = photo::compress_input(input, &PhotoOptions::default())
                    .map_err(|e| ApiError::from_store(e.into(), lang))?;
                let photo = self.store(|s| attach(s, compressed))?;
                Ok(PhotoItem::from_core(photo, &self.photo_dir()))
            },
            failed,
        )
    }
}

enum OwnedPhoto {
    Bytes(Vec<u8>),
    Path(String),
}

#[uniffi::export]
impl Fieldbook {
    /// Reopens the session saved in `data_dir`, with no network. Fails with
    /// `LoginRequired` when no one has logged in on this phone.
    #[uniffi::constructor]
    pub fn resume(data_dir: String, language: Language) -> Result<Arc<Fieldbook>, ApiError> {
        Session::resume(Path::new(&data_dir))
            .map(|s| Fieldbook::wrap(s, language))
            .map_err(|e| ApiError::from_session(e, language))
    }

    pub fn set_language(&self, language: Language) {
        *self.language.lock().unwrap_or_else(PoisonError::into_inner) = language;
    }

    pub fn account(&self) -> AccountInfo {
        let a = self.session.account();
        AccountInfo {
            login_required: self.session.login_required(),
            server: a.server,
            user: a.user,
            role: a.role.into(),
            areas: a.areas,
            device: a.device,
        }
    }

    /// Logs the same user in again after `LoginRequired`; the store and
    /// everything waiting to sync are kept.
    pub async fn relogin(self: Arc<Self>, password: String) -> Result<(), ApiError> {
        background::run(
            move || self.session.relogin(&password).map_err(|e| self.err(e)),
            failed,
        )
        .await
    }

    /// Forgets the token; records stay and sync after the next login.
    pub fn logout(&self) -> Result<(), ApiError> {
        self.session.logout().map_err(|e| self.err(e))
    }

    // ---- sites and templates ------------------------------------------

    /// Sites in the user's areas, optionally within one area and of one
    /// kind, by village then name. `limit` 0 means the default page (1,000).
    pub fn list_sites(
        &self,
        area: Option<String>,
        kind: Option<SiteKind>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<SiteItem>, ApiError> {
        let lang = self.lang();
        let filter = store::SiteFilter {
            area,
            kind: kind.map(Into::into),
            limit: (limit > 0).then_some(limit),
            offset,
        };
        let sites = self.store(|s| s.list_sites(&filter))?;
        Ok(sites
            .into_iter()
            .map(|s| SiteItem::from_core(s, lang))
            .collect())
    }

    /// Records a site found in the field; returns its id.
    pub fn add_site(
        &self,
        kind: SiteKind,
        name: String,
        village_code: String,
        position: Option<Position>,
    ) -> Result<String, ApiError> {
        self.store(|s| {
            s.add_site(store::NewSite {
                kind: kind.into(),
                name,
                village_code,
                location: position.map(|p| GeoPoint {
                    lat: p.lat,
                    lon: p.lon,
                }),
                attributes: Default::default(),
            })
        })
    }

    /// The checklist a new inspection of this site is filled in with.
    pub fn site_template(&self, site_id: String) -> Result<TemplateInfo, ApiError> {
        let kind = self.store(|s| s.site(&site_id).map(|site| site.kind))?;
        self.template(kind.into())
    }

    /// The current checklist for a kind of site.
    pub fn template(&self, kind: SiteKind) -> Result<TemplateInfo, ApiError> {
        let lang = self.lang();
        let kind: model::SiteKind = kind.into();
        self.store(|s| {
            s.templates()
                .latest(kind)
                .map(|t| TemplateInfo::from_core(t, lang))
                .ok_or_else(|| StoreError::BadInput(format!("no template for {kind}")))
        })
    }

    // ---- inspections --------------------------------------------------

    /// Starts an inspection of `site_id`; returns its id.
    pub fn start_inspection(&self, site_id: String) -> Result<String, ApiError> {
        self.store(|s| s.start_inspection(&site_id))
    }

    /// Saves one answer durably. A refused answer changes nothing and the
    /// error lists the field's problem.
    pub fn set_answer(
        &self,
        inspection_id: String,
        key: String,
        value: FieldValue,
    ) -> Result<(), ApiError> {
        self.store(|s| s.set_answer(&inspection_id, &key, value.into()))
    }

    pub fn clear_answer(&self, inspection_id: String, key: String) -> Result<(), ApiError> {
        self.store(|s| s.clear_answer(&inspection_id, &key))
    }

    /// Records where the inspection was done.
    pub fn set_location(&self, inspection_id: String, fix: Location) -> Result<(), ApiError> {
        self.store(|s| s.set_location(&inspection_id, fix.into()))
    }

    pub fn add_note(&self, inspection_id: String, text: String) -> Result<(), ApiError> {
        self.store(|s| s.add_note(&inspection_id, &text))
    }

    /// Compresses a camera photo (JPEG or PNG bytes) and attaches it,
    /// tagged with template field `field` if given.
    pub async fn add_photo(
        self: Arc<Self>,
        inspection_id: String,
        bytes: Vec<u8>,
        field: Option<String>,
    ) -> Result<PhotoItem, ApiError> {
        self.add_photo_with(OwnedPhoto::Bytes(bytes), move |s, c| {
            s.attach_compressed_photo(&inspection_id, c, field.as_deref())
        })
        .await
    }

    /// As `add_photo`, reading the photo from a file (the camera's output
    /// file); the file is not changed or removed.
    pub async fn add_photo_file(
        self: Arc<Self>,
        inspection_id: String,
        path: String,
        field: Option<String>,
    ) -> Result<PhotoItem, ApiError> {
        self.add_photo_with(OwnedPhoto::Path(path), move |s, c| {
            s.attach_compressed_photo(&inspection_id, c, field.as_deref())
        })
        .await
    }

    /// Submits the inspection for review. Refused, with every problem
    /// listed, while required answers or photos are missing.
    pub fn submit(&self, inspection_id: String) -> Result<(), ApiError> {
        self.store(|s| s.submit(&inspection_id))
    }

    /// The inspection as its screen shows it.
    pub fn inspection(&self, inspection_id: String) -> Result<InspectionDetail, ApiError> {
        let lang = self.lang();
        let view = self.store(|s| s.inspection_view(&inspection_id))?;
        Ok(InspectionDetail::from_core(view, lang, &self.photo_dir()))
    }

    /// Inspections, newest first, optionally of one site or in one status.
    /// `limit` 0 means the default page (1,000).
    pub fn list_inspections(
        &self,
        site_id: Option<String>,
        status: Option<InspectionStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<InspectionItem>, ApiError> {
        let lang = self.lang();
        let filter = store::InspectionFilter {
            site_id,
            status: status.map(Into::into),
            limit: (limit > 0).then_some(limit),
            offset,
            ..Default::default()
        };
        let list = self.store(|s| s.list_inspections(&filter))?;
        Ok(list
            .into_iter()
            .map(|i| InspectionItem::from_core(i, lang))
            .collect())
    }

    /// Comments on an inspection or a finding.
    pub fn comment(&self, record_id: String, text: String) -> Result<(), ApiError> {
        self.store(|s| s.comment(&record_id, &text))
    }

    /// Supervisor: returns a submitted inspection with what to fix.
    pub fn return_inspection(
        &self,
        inspection_id: String,
        comment: String,
    ) -> Result<(), ApiError> {
        self.store(|s| s.return_inspection(&inspection_id, &comment))
    }

    /// Supervisor: approves a submitted inspection.
    pub fn approve(&self, inspection_id: String, comment: Option<String>) -> Result<(), ApiError> {
        self.store(|s| s.approve(&inspection_id, comment.as_deref()))
    }

    // ---- findings ------------------------------------------------------

    /// Raises a finding; returns its id.
    pub fn raise_finding(&self, finding: NewFindingInput) -> Result<String, ApiError> {
        self.store(|s| {
            s.raise_finding(store::NewFinding {
                inspection_id: finding.inspection_id,
                site_id: finding.site_id,
                title: finding.title,
                description: finding.description,
                deadline: finding.deadline,
            })
        })
    }

    /// Moves a finding along its lifecycle. `responsible` and `deadline`
    /// are required for `Assigned`.
    pub fn advance_finding(
        &self,
        finding_id: String,
        step: FindingStep,
        comment: Option<String>,
        responsible: Option<String>,
        deadline: Option<String>,
    ) -> Result<(), ApiError> {
        self.store(|s| {
            s.advance_finding(
                &finding_id,
                store::FindingAction {
                    kind: step.into(),
                    comment,
                    responsible,
                    deadline,
                },
            )
        })
    }

    /// Compresses a photo and attaches it to a finding as evidence.
    pub async fn add_finding_photo(
        self: Arc<Self>,
        finding_id: String,
        bytes: Vec<u8>,
    ) -> Result<PhotoItem, ApiError> {
        self.add_photo_with(OwnedPhoto::Bytes(bytes), move |s, c| {
            s.attach_compressed_finding_photo(&finding_id, c)
        })
        .await
    }

    /// As `add_finding_photo`, reading the photo from the camera's file.
    pub async fn add_finding_photo_file(
        self: Arc<Self>,
        finding_id: String,
        path: String,
    ) -> Result<PhotoItem, ApiError> {
        self.add_photo_with(OwnedPhoto::Path(path), move |s, c| {
            s.attach_compressed_finding_photo(&finding_id, c)
        })
        .await
    }

    /// Findings, optionally of one site, optionally only open ones.
    /// `limit` 0 means the default page (1,000).
    pub fn list_findings(
        &self,
        site_id: Option<String>,
        open_only: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<FindingItem>, ApiError> {
        let lang = self.lang();
        let filter = store::FindingFilter {
            site_id,
            open_only,
            limit: (limit > 0).then_some(limit),
            offset,
            ..Default::default()
        };
        let (list, role) = self.store(|s| Ok((s.list_findings(&filter)?, s.identity().role)))?;
        Ok(list
            .into_iter()
            .map(|f| FindingItem::from_summary(f, lang, role))
            .collect())
    }

    /// A finding with its photos and history.
    pub fn finding(&self, finding_id: String) -> Result<FindingItem, ApiError> {
        let lang = self.lang();
        let (view, role) = self.store(|s| Ok((s.finding_view(&finding_id)?, s.identity().role)))?;
        Ok(FindingItem::from_view(view, lang, role, &self.photo_dir()))
    }

    // ---- coverage --------------------------------------------------------

    /// Where the user's own areas stand against the plan: every indicator
    /// for the user's township (or wider area) and each area below it,
    /// computed on the phone from the records it holds, so it works offline
    /// and is as fresh as the last sync. `year` counts approvals in that
    /// calendar year; without it, everything approved up to today.
    pub fn coverage(&self, year: Option<i32>) -> Result<Vec<CoverageItem>, ApiError> {
        let lang = self.lang();
        let period = match year {
            Some(y) if !(2000..=2100).contains(&y) => {
                return Err(ApiError::InvalidInput {
                    reason: lang.pick_text(
                        &format!("年份 {y} 超出范围"),
                        &format!("year {y} is out of range"),
                    ),
                    problems: Vec::new(),
                });
            }
            Some(y) => model::indicator::Period::year(y),
            None => model::indicator::Period::as_of(&model::workflow::china_date(
                fieldbook_core::store::system_clock()(),
            )),
        };
        let rows = self.store(|s| s.coverage(period))?;
        Ok(rows
            .into_iter()
            .map(|r| CoverageItem::from_core(r, lang))
            .collect())
    }

    // ---- sync ------------------------------------------------------------

    /// What waits to go up, for a badge and for the sync policy.
    pub fn pending(&self) -> Result<PendingInfo, ApiError> {
        let last_synced_ms = self.session.last_sync().map_err(|e| self.err(e))?;
        let syncing = self.session.is_syncing();
        self.store(|s| {
            let p = s.pending_counts()?;
            Ok(PendingInfo {
                records: p.records,
                changes: p.changes,
                photos: p.photos,
                rejections: s.sync_rejections()?.len() as u64,
                last_synced_ms,
                syncing,
            })
        })
    }

    /// Local changes the server refused, newest first, with its reasons.
    pub fn rejections(&self) -> Result<Vec<RejectedRecord>, ApiError> {
        let list = self.store(|s| s.sync_rejections())?;
        Ok(list
            .into_iter()
            .map(|r| RejectedRecord {
                record_id: r.doc_id,
                code: r.code,
                message: r.message,
            })
            .collect())
    }

    /// Syncs records both ways until nothing is left, then uploads pending
    /// photos. Reports progress after every exchange; `cancel` stops it at
    /// the next step (then the error is `Other` and everything applied is
    /// kept). A second sync while one runs fails at once with `RetryLater`.
    pub async fn sync(
        self: Arc<Self>,
        listener: Option<Arc<dyn SyncListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<SyncReport, ApiError> {
        background::run(
            move || {
                let cancel = cancel.unwrap_or_default();
                let mut report = |p: &fieldbook_core::sync::Progress| {
                    if let Some(l) = &listener {
                        l.on_progress(p.into());
                    }
                };
                self.session
                    .sync(&SyncOptions::default(), &mut report, &cancel.flag)
                    .map(Into::into)
                    .map_err(|e| self.err(e))
            },
            failed,
        )
        .await
    }

    /// Downloads a photo taken on another phone (a supervisor reviewing
    /// evidence) and returns its JPEG bytes.
    pub async fn download_photo(self: Arc<Self>, hash: String) -> Result<Vec<u8>, ApiError> {
        background::run(
            move || self.session.download_photo(&hash).map_err(|e| self.err(e)),
            failed,
        )
        .await
    }
}
