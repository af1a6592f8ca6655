//! `fieldbook export`: coverage (CSV, XLSX, GeoJSON), the raw records and
//! the findings (CSV, XLSX) from a server's data folder or database URL,
//! with a progress line on a terminal.

use anyhow::{Context, Result, bail};
use fieldbook_core::model::Divisions;
use fieldbook_core::model::indicator::{Indicators, Period};
use fieldbook_core::model::workflow::china_date;
use fieldbook_server::coverage;
use fieldbook_server::export::{self, TableFormat};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Data folder of the server.
    #[arg(long, default_value = "fieldbook-data", conflicts_with = "database")]
    data: PathBuf,
    /// The server's database as a URL instead of a data folder:
    /// `sqlite:PATH` or `sqlite:///ABSOLUTE/PATH`.
    #[arg(long)]
    database: Option<String>,
    /// Only this division-code prefix (county, township or village code).
    #[arg(long, default_value = "")]
    area: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Subcommand)]
enum What {
    /// Coverage rates by city, county, township and village, with targets
    /// (csv, xlsx), or one map feature per site (geojson).
    Coverage {
        #[command(flatten)]
        common: Common,
        /// Calendar year of the period (default: this year).
        #[arg(long, conflicts_with = "as_of")]
        year: Option<i32>,
        /// Everything approved up to this date, YYYY-MM-DD.
        #[arg(long)]
        as_of: Option<String>,
        /// csv, xlsx or geojson.
        #[arg(long)]
        format: String,
    },
    /// Every inspection with answers, rule outcomes, GPS, distance to the
    /// site and photo links (csv).
    Records {
        #[command(flatten)]
        common: Common,
        /// Base URL photo links start with.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        photo_base: String,
        /// csv or xlsx.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Every finding (rectification order) with its site, status, deadline,
    /// and when it was raised and closed (csv, xlsx).
    Findings {
        #[command(flatten)]
        common: Common,
        /// csv or xlsx.
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

/// The path a `--database` URL names.
pub fn database_path(url: &str) -> Result<PathBuf> {
    let Some((scheme, rest)) = url.split_once(':') else {
        bail!("--database {url:?} is not a URL; write sqlite:PATH");
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            // sqlite:///abs/path and sqlite://rel/path as other tools write
            // them, and the short sqlite:path.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                bail!("--database {url:?} names no file");
            }
            Ok(PathBuf::from(path))
        }
        "postgres" | "postgresql" => bail!(
            "--database {url:?}: this build stores in SQLite only; \
             export from the server's data folder (--data) or its sqlite: database"
        ),
        other => bail!("--database {url:?}: unknown database kind {other:?}; write sqlite:PATH"),
    }
}

/// The server storage an export reads. An export never creates a database:
/// a mistyped path is an error, not an empty report.
fn open(
    common: &Common,
) -> Result<std::sync::Arc<fieldbook_server::storage::sqlite::SqliteStorage>> {
    let db = match &common.database {
        Some(url) => database_path(url)?,
        None => common.data.join("server.db"),
    };
    if !db.is_file() {
        bail!(
            "no server database at {} (start the server with --data, or name it with --database sqlite:PATH)",
            db.display()
        );
    }
    Ok(std::sync::Arc::new(
        fieldbook_server::storage::sqlite::SqliteStorage::open(&db)
            .with_context(|| format!("cannot open {}", db.display()))?,
    ))
}

fn table_format(format: &str, what: &str) -> Result<TableFormat> {
    TableFormat::from_key(format)
        .ok_or_else(|| anyhow::anyhow!("--format {format:?}: the {what} export is csv or xlsx"))
}

/// Parses `--year` / `--as-of` into a period; this year by default.
pub fn period(year: Option<i32>, as_of: Option<&str>) -> Result<Period> {
    match (year, as_of) {
        (Some(y), _) if !(2000..=2100).contains(&y) => bail!("--year {y} is out of range"),
        (Some(y), _) => Ok(Period::year(y)),
        (None, Some(d)) if fieldbook_core::model::value::is_iso_date(d) => Ok(Period::as_of(d)),
        (None, Some(d)) => bail!("--as-of {d:?} is not a date written YYYY-MM-DD"),
        (None, None) => {
            let today = china_date((fieldbook_core::store::system_clock())());
            let y = today.get(..4).and_then(|y| y.parse().ok()).unwrap_or(2025);
            Ok(Period::year(y))
        }
    }
}

/// A progress line on standard error when it is a terminal; silent when
/// the output goes to a log.
pub struct ProgressLine {
    what: &'static str,
    on: bool,
}

impl ProgressLine {
    pub fn new(what: &'static str) -> ProgressLine {
        ProgressLine {
            what,
            on: std::io::stderr().is_terminal(),
        }
    }

    pub fn tick(&self, n: u64) {
        if self.on {
            eprint!("\r{}: {n}", self.what);
        }
    }

    pub fn done(&self, n: u64) {
        if self.on {
            eprintln!("\r{}: {n}, done", self.what);
        }
    }
}

fn check_area(area: &str) -> Result<()> {
    if !area.is_empty() && !fieldbook_core::model::area::is_code(area) {
        bail!("--area {area:?} is not a division code (4, 6, 9 or 12 digits)");
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Coverage {
            common,
            year,
            as_of,
            format,
        } => {
            check_area(&common.area)?;
            let period = period(year, as_of.as_deref())?;
            let storage = open(&common)?;
            let file = std::fs::File::create(&common.out)
                .with_context(|| format!("cannot create {}", common.out.display()))?;
            let defs = Indicators::builtin();
            let divisions = Divisions::luoyang();
            let written = match format.as_str() {
                "csv" | "xlsx" => {
                    let reading = ProgressLine::new("sites and findings read");
                    let rows = coverage::coverage_rows(
                        storage.as_ref(),
                        defs,
                        divisions,
                        &common.area,
                        period,
                        &mut |n| reading.tick(n),
                    )?;
                    let writing = ProgressLine::new("rows written");
                    let n = if format == "csv" {
                        export::write_coverage_csv(rows.into_iter(), defs, file, &mut |n| {
                            writing.tick(n)
                        })?
                    } else {
                        export::write_coverage_xlsx(rows.into_iter(), defs, file, &mut |n| {
                            writing.tick(n)
                        })?
                    };
                    writing.done(n);
                    n
                }
                "geojson" => {
                    let writing = ProgressLine::new("sites written");
                    // The scan pushes features; the writer pulls them. A
                    // bounded channel between the two keeps memory flat.
                    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
                    let area = common.area.clone();
                    let scan_storage = storage.clone();
                    let scan = std::thread::spawn(move || {
                        coverage::site_features(scan_storage.as_ref(), &area, &period, &mut |f| {
                            tx.send(f).map_err(|_| {
                                fieldbook_server::storage::StorageError::Conflict(
                                    "the export stopped".into(),
                                )
                            })
                        })
                    });
                    let n = export::write_sites_geojson(rx.into_iter(), file, &mut |n| {
                        writing.tick(n)
                    })?;
                    scan.join()
                        .map_err(|_| anyhow::anyhow!("the site scan failed"))??;
                    writing.done(n);
                    n
                }
                other => bail!("--format {other:?}: coverage exports are csv, xlsx or geojson"),
            };
            eprintln!("wrote {written} rows to {}", common.out.display());
        }
        What::Records {
            common,
            photo_base,
            format,
        } => {
            check_area(&common.area)?;
            let format = table_format(&format, "records")?;
            let storage = open(&common)?;
            let file = std::fs::File::create(&common.out)
                .with_context(|| format!("cannot create {}", common.out.display()))?;
            let writing = ProgressLine::new("inspections written");
            let n = coverage::write_records(
                storage.as_ref(),
                Divisions::luoyang(),
                &common.area,
                photo_base.trim_end_matches('/'),
                format,
                file,
                &mut |n| writing.tick(n),
            )?;
            writing.done(n);
            eprintln!("wrote {n} inspections to {}", common.out.display());
        }
        What::Findings { common, format } => {
            check_area(&common.area)?;
            let format = table_format(&format, "findings")?;
            let storage = open(&common)?;
            let file = std::fs::File::create(&common.out)
                .with_context(|| format!("cannot create {}", common.out.display()))?;
            let writing = ProgressLine::new("findings written");
            let today = fieldbook_core::model::workflow::china_date(
                fieldbook_core::store::system_clock()(),
            );
            let n = coverage::write_findings(
                storage.as_ref(),
                Divisions::luoyang(),
                &common.area,
                &today,
                format,
                file,
                &mut |n| writing.tick(n),
            )?;
            writing.done(n);
            eprintln!("wrote {n} findings to {}", common.out.display());
        }
    }
    Ok(())
}
