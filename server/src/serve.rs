//! `fieldbook serve`: the sync server on SQLite and a local folder.

use anyhow::{Context, Result};
use fieldbook_server::storage::sqlite::SqliteStorage;
use fieldbook_server::{AppState, app};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Data folder (database and photos); created if missing.
    #[arg(long, default_value = "fieldbook-data")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// Opens the storage of a data folder.
pub fn open_storage(data: &std::path::Path) -> Result<Arc<SqliteStorage>> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let db = data.join("server.db");
    Ok(Arc::new(SqliteStorage::open(&db).with_context(|| {
        format!("cannot open {}", db.display())
    })?))
}

pub fn run(args: Args) -> Result<()> {
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
        let state = AppState::new(storage, args.data.join("photos"))
            .context("cannot create the photo folder")?;
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let ctrl_c = tokio::signal::ctrl_c();
                #[cfg(unix)]
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
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
            })
            .await?;
        Ok(())
    })
}
