//! `fieldbook serve`: the sync server on SQLite and a local folder.

use anyhow::{Context, Result};
use fieldbook_server::http::listen::{self, Limits};
use fieldbook_server::http::{AppState, app};
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Data folder (database and photos); created if missing, readable by
    /// this account only.
    #[arg(long, default_value = "fieldbook-data")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Also serve `/metrics`, without login, on this address (keep it for
    /// the monitoring system). Without it, `/metrics` on the main address
    /// needs a whole-deployment administrator's token.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = Limits::default().connections)]
    pub max_connections: usize,
    /// A map tile server for the console's maps, as a URL template with
    /// {z}, {x} and {y} (for example a 天地图 WMTS tile URL with your key).
    /// Without it the maps draw on a plain background and the console
    /// needs nothing outside this server.
    #[arg(long)]
    pub tile_url: Option<String>,
}

/// Creates `dir` if missing and makes it private to this account: the
/// database holds password hashes and every record, the photos are
/// evidence.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// Opens the storage of a data folder.
pub fn open_storage(data: &Path) -> Result<Arc<SqliteStorage>> {
    private_dir(data)?;
    let db = data.join("server.db");
    // Created here with mode 0600 so SQLite (which gives its journal files
    // the database's mode) never makes a readable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&db)
            .with_context(|| format!("cannot create {}", db.display()))?;
    }
    Ok(Arc::new(SqliteStorage::open(&db).with_context(|| {
        format!("cannot open {}", db.display())
    })?))
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    println!("fieldbook server: shutting down");
}

pub fn run(args: Args) -> Result<()> {
    let tiles = args
        .tile_url
        .as_deref()
        .map(fieldbook_server::http::console::map::TileSource::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let storage = open_storage(&args.data)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "fieldbook server listening on http://{addr} (data in {})",
            args.data.display()
        );
        let mut state = AppState::new(storage, args.data.join("photos"))
            .context("cannot create the photo folder")?;
        state.tiles = tiles.map(std::sync::Arc::new);
        if let Some(m) = &args.metrics_listen {
            let ml = tokio::net::TcpListener::bind(m)
                .await
                .with_context(|| format!("cannot listen on {m}"))?;
            println!("metrics on http://{}/metrics", ml.local_addr()?);
            let router = fieldbook_server::http::metrics_app(state.metrics.clone());
            tokio::spawn(listen::serve_default(ml, router, std::future::pending()));
        }
        let limits = Limits {
            connections: args.max_connections.max(1),
            ..Limits::default()
        };
        listen::serve(listener, app(state), limits, stop_signal()).await?;
        Ok(())
    })
}
