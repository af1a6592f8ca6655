//! `fieldbook admin`: users, devices and the site registry, on a data
//! folder directly (no server needed).

use anyhow::{Context, Result, bail};
use fieldbook_server::app::{NewUser, create_user_record};
use fieldbook_server::storage::Storage;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Data folder of the server.
    #[arg(long, default_value = "fieldbook-data", global = true)]
    data: PathBuf,
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Users and their roles and areas.
    #[command(subcommand)]
    User(UserCmd),
    /// Registered devices.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// The site registry.
    #[command(subcommand)]
    Sites(SitesCmd),
}

#[derive(clap::Subcommand)]
enum UserCmd {
    /// Adds a user; the password is read from standard input.
    Add {
        name: String,
        /// inspector, supervisor, county_office or admin.
        #[arg(long)]
        role: String,
        /// Division-code prefix the user works in (repeatable).
        #[arg(long = "area", required = true)]
        areas: Vec<String>,
    },
    /// Lists users.
    List,
}

#[derive(clap::Subcommand)]
enum DeviceCmd {
    /// Lists devices.
    List,
    /// Revokes a device and its tokens.
    Revoke { id: String },
}

#[derive(clap::Subcommand)]
enum SitesCmd {
    /// Imports a registry CSV (columns: kind, name, village_code, optional
    /// id, lat, lon and attribute columns).
    Import { file: PathBuf },
}

fn now() -> i64 {
    (fieldbook_core::store::system_clock())()
}

pub fn run(args: Args) -> Result<()> {
    let storage = crate::serve::open_storage(&args.data)?;
    match args.what {
        What::User(UserCmd::Add { name, role, areas }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            create_user_record(
                storage.as_ref(),
                &NewUser {
                    name: name.clone(),
                    password,
                    role: role.clone(),
                    areas,
                },
                now(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            storage.audit(&fieldbook_server::storage::AuditEntry {
                at: now(),
                user: "cli".into(),
                device: None,
                action: "user_created".into(),
                detail: format!("{name} ({role})"),
            })?;
            println!("user {name} added");
        }
        What::User(UserCmd::List) => {
            for u in storage.users()? {
                println!("{}\t{}\t{}", u.name, u.role, u.areas.join(","));
            }
        }
        What::Device(DeviceCmd::List) => {
            for d in storage.devices()? {
                println!(
                    "{}\t{}\t{}",
                    d.id,
                    d.user,
                    if d.revoked { "revoked" } else { "active" }
                );
            }
        }
        What::Device(DeviceCmd::Revoke { id }) => {
            if !storage.revoke_device(&id)? {
                bail!("no device {id}");
            }
            println!("device {id} revoked");
        }
        What::Sites(SitesCmd::Import { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let sites = fieldbook_server::registry::parse(&bytes, "cli", now())
                .map_err(|p| anyhow::anyhow!("{}:\n{}", file.display(), p.join("\n")))?;
            let written = storage.import_sites(&sites, "cli", now())?;
            println!("{} rows, {written} sites new or changed", sites.len());
        }
    }
    Ok(())
}
