//! `fieldbook`: one binary for the server and its tools.
//!
//! Each verb lives in its own module; `main` only parses arguments and
//! reports errors. `anyhow` is used here and in the verbs, never in the
//! libraries.

mod cli;

use cli::{admin, demo, export, photo, serve};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Offline-first field inspections for rural environmental work.
#[derive(Parser)]
#[command(name = "fieldbook", version, about)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Walk through Fieldbook on the Luoyang data set: a phone store,
    /// inspections, a supervisor's review, and what was stored.
    Demo(demo::Args),
    /// Photo tools: `photo compress IN OUT` runs the phone's pipeline.
    Photo(photo::Args),
    /// Run the sync server.
    Serve(serve::Args),
    /// Manage users, devices and the site registry of a data folder.
    Admin(admin::Args),
    /// Coverage rates (CSV, XLSX, GeoJSON) and raw records (CSV) from a
    /// data folder.
    Export(export::Args),
    /// Simulated phones against a running server, for load and fault tests.
    Sim(fieldbook_server::devtools::sim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.verb {
        Verb::Demo(args) => demo::run(args),
        Verb::Serve(args) => serve::run(args),
        Verb::Admin(args) => admin::run(args),
        Verb::Export(args) => export::run(args),
        Verb::Sim(args) => fieldbook_server::devtools::sim::run(args),
        Verb::Photo(args) => photo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fieldbook: {e:#}");
            ExitCode::FAILURE
        }
    }
}
