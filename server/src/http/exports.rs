//! Exports over HTTP for county offices: the same coverage, records and
//! findings files as `fieldbook export`, streamed as they are written.
//!
//! `GET /v1/exports/coverage?format=csv|xlsx|geojson&area=CODE&year=Y|as_of=DATE`,
//! `GET /v1/exports/records?area=CODE&format=csv|xlsx` and
//! `GET /v1/exports/findings?area=CODE&format=csv|xlsx`. County-office users and admins
//! only, and only inside their areas: without `area` a user with exactly
//! one area gets that one. The file is produced on a blocking thread that
//! writes into a bounded channel the response body drains, so a million
//! rows cost a few chunks of memory, and a client that goes away stops the
//! export at the next chunk.

use crate::error::AppError;
use crate::export::TableFormat;
use crate::http::bearer::Auth;
use crate::http::state::AppState;
use crate::storage::Storage;
use crate::{coverage, export};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fieldbook_core::model::indicator::{Indicators, Period};
use fieldbook_core::model::workflow::china_date;
use fieldbook_core::model::{Divisions, Role};
use serde::Deserialize;
use std::io::Write;
use std::sync::Arc;

/// Bytes per chunk sent to the client.
const CHUNK_BYTES: usize = 64 << 10;
/// Chunks buffered between the writer thread and the connection.
const CHUNKS_QUEUED: usize = 8;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/exports/coverage", get(coverage_export))
        .route("/v1/exports/records", get(records_export))
        .route("/v1/exports/findings", get(findings_export))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    pub format: String,
    pub area: Option<String>,
    pub year: Option<i32>,
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    pub area: Option<String>,
    /// csv (default) or xlsx.
    pub format: Option<String>,
}

fn table_format(asked: Option<&str>, what: &str) -> Result<TableFormat, AppError> {
    let key = asked.unwrap_or("csv");
    TableFormat::from_key(key).ok_or_else(|| {
        AppError::BadRequest(format!("format {key:?}: the {what} export is csv or xlsx"))
    })
}

/// The area to export: the asked one if the user covers it, else the
/// user's only area.
pub(crate) fn area_for(
    s: &crate::storage::Session,
    asked: Option<String>,
) -> Result<String, AppError> {
    match asked {
        Some(a) => {
            if !fieldbook_core::model::area::is_code(&a) {
                return Err(AppError::BadRequest(format!(
                    "area {a:?} is not a division code"
                )));
            }
            if !s.pusher.covers(&a) {
                return Err(AppError::Forbidden(format!(
                    "area {a} is outside this user's areas"
                )));
            }
            Ok(a)
        }
        None => match s.pusher.areas.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(AppError::BadRequest(
                "this user has several areas: name one with area=CODE".into(),
            )),
        },
    }
}

pub(crate) fn period(q: &CoverageQuery, now: i64) -> Result<Period, AppError> {
    match (q.year, q.as_of.as_deref()) {
        (Some(_), Some(_)) => Err(AppError::BadRequest("give year or as_of, not both".into())),
        (Some(y), None) if (2000..=2100).contains(&y) => Ok(Period::year(y)),
        (Some(y), None) => Err(AppError::BadRequest(format!("year {y} is out of range"))),
        (None, Some(d)) if fieldbook_core::model::value::is_iso_date(d) => Ok(Period::as_of(d)),
        (None, Some(d)) => Err(AppError::BadRequest(format!(
            "as_of {d:?} is not a date written YYYY-MM-DD"
        ))),
        (None, None) => {
            let y = china_date(now)
                .get(..4)
                .and_then(|y| y.parse().ok())
                .unwrap_or(2025);
            Ok(Period::year(y))
        }
    }
}

/// [`area_for`], with a refusal written to the audit log.
async fn scoped_area(
    st: &AppState,
    s: &crate::storage::Session,
    asked: Option<String>,
) -> Result<String, AppError> {
    match area_for(s, asked) {
        Err(AppError::Forbidden(m)) => Err(st.forbid(s, m).await),
        other => other,
    }
}

/// How long an export waits for a free slot before the server answers 503.
const EXPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// One of the few export slots (`AppState::export_slots`): exports read
/// whole areas, and a queue of them must never delay phones' syncs.
pub(crate) async fn export_slot(
    st: &AppState,
) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
    tokio::time::timeout(EXPORT_WAIT, st.export_slots.clone().acquire_owned())
        .await
        .map_err(|_| AppError::Busy("every export slot is busy; try again shortly".into()))?
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// A `Write` that hands full chunks to the response body.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams what `produce` writes as the response body. A failure after
/// the first byte can only cut the body short: the client sees a
/// truncated transfer rather than a file that looks whole.
fn stream(
    slot: tokio::sync::OwnedSemaphorePermit,
    content_type: &'static str,
    file_name: String,
    produce: impl FnOnce(&mut ChunkWriter) -> Result<(), String> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_QUEUED);
    let error_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        // The slot is held until the file is written (or the client left).
        let _slot = slot;
        let mut w = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        let done = produce(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = done {
            let _ = error_tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = Body::from_stream(ChunkStream(rx));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The response body: the chunks the writer thread sends.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn coverage_export(
    State(st): State<AppState>,
    Auth(s): Auth,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, AppError> {
    coverage_file(&st, &s, q).await
}

/// The coverage file for `s`: the phone API's and the console's download.
pub(crate) async fn coverage_file(
    st: &AppState,
    s: &crate::storage::Session,
    q: CoverageQuery,
) -> Result<Response, AppError> {
    let st = st.clone();
    st.require(s, &[Role::CountyOffice, Role::Admin], "export coverage")
        .await?;
    let area = scoped_area(&st, s, q.area.clone()).await?;
    let period = period(&q, st.now())?;
    let storage: Arc<dyn Storage> = st.storage.clone();
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "export",
        format!("coverage {} {area}", q.format),
    )
    .await?;
    let slot = export_slot(&st).await?;
    let name = format!("coverage-{area}-{}", period.to);
    Ok(match q.format.as_str() {
        "csv" | "xlsx" => {
            let xlsx = q.format == "xlsx";
            stream(
                slot,
                if xlsx {
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                } else {
                    "text/csv; charset=utf-8"
                },
                format!("{name}.{}", q.format),
                move |w| {
                    let defs = Indicators::builtin();
                    let rows = coverage::coverage_rows(
                        storage.as_ref() as &dyn crate::storage::reports::Reports,
                        defs,
                        Divisions::luoyang(),
                        &area,
                        period,
                        &mut |_| {},
                    )
                    .map_err(|e| e.to_string())?;
                    let written = if xlsx {
                        export::write_coverage_xlsx(rows.into_iter(), defs, w, &mut |_| {})
                    } else {
                        export::write_coverage_csv(rows.into_iter(), defs, w, &mut |_| {})
                    };
                    written.map(|_| ()).map_err(|e| e.to_string())
                },
            )
        }
        "geojson" => stream(
            slot,
            "application/geo+json",
            format!("{name}.geojson"),
            move |w| {
                let (tx, rx) = std::sync::mpsc::sync_channel(1024);
                let scan = std::thread::spawn(move || {
                    coverage::site_features(
                        storage.as_ref() as &dyn crate::storage::reports::Reports,
                        &area,
                        &period,
                        &mut |f| {
                            tx.send(f).map_err(|_| {
                                crate::storage::StorageError::Conflict("the export stopped".into())
                            })
                        },
                    )
                });
                let written = export::write_sites_geojson(rx.into_iter(), w, &mut |_| {});
                let scanned = scan.join().map_err(|_| "the site scan failed".to_owned())?;
                scanned.map_err(|e| e.to_string())?;
                written.map(|_| ()).map_err(|e| e.to_string())
            },
        ),
        other => {
            return Err(AppError::BadRequest(format!(
                "format {other:?}: coverage exports are csv, xlsx or geojson"
            )));
        }
    })
}

async fn records_export(
    State(st): State<AppState>,
    Auth(s): Auth,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, AppError> {
    records_file(&st, &s, q).await
}

/// The records file for `s`.
pub(crate) async fn records_file(
    st: &AppState,
    s: &crate::storage::Session,
    q: RecordsQuery,
) -> Result<Response, AppError> {
    let st = st.clone();
    st.require(s, &[Role::CountyOffice, Role::Admin], "export records")
        .await?;
    let area = scoped_area(&st, s, q.area).await?;
    let format = table_format(q.format.as_deref(), "records")?;
    let storage: Arc<dyn Storage> = st.storage.clone();
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "export",
        format!("records {area}"),
    )
    .await?;
    let slot = export_slot(&st).await?;
    Ok(stream(
        slot,
        format.content_type(),
        format!("records-{area}.{}", format.extension()),
        move |w| {
            coverage::write_records(
                storage.as_ref() as &dyn crate::storage::reports::Reports,
                Divisions::luoyang(),
                &area,
                "",
                format,
                w,
                &mut |_| {},
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        },
    ))
}

async fn findings_export(
    State(st): State<AppState>,
    Auth(s): Auth,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, AppError> {
    findings_file(&st, &s, q).await
}

/// The findings file for `s`.
pub(crate) async fn findings_file(
    st: &AppState,
    s: &crate::storage::Session,
    q: RecordsQuery,
) -> Result<Response, AppError> {
    let st = st.clone();
    st.require(s, &[Role::CountyOffice, Role::Admin], "export findings")
        .await?;
    let area = scoped_area(&st, s, q.area).await?;
    let format = table_format(q.format.as_deref(), "findings")?;
    let storage: Arc<dyn Storage> = st.storage.clone();
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "export",
        format!("findings {area}"),
    )
    .await?;
    let slot = export_slot(&st).await?;
    let today = china_date(st.now());
    Ok(stream(
        slot,
        format.content_type(),
        format!("findings-{area}-{today}.{}", format.extension()),
        move |w| {
            coverage::write_findings(
                storage.as_ref() as &dyn crate::storage::reports::Reports,
                Divisions::luoyang(),
                &area,
                &today,
                format,
                w,
                &mut |_| {},
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        },
    ))
}
