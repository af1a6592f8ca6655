//! `fieldbook admin`: users, devices, the site registry and quarantined
//! records, on a data folder directly (no server needed). The operator at
//! the command line holds the whole deployment; every change is written to
//! the audit log as by `cli`.

use anyhow::{Context, Result, bail};
use fieldbook_core::model::Role;
use fieldbook_core::policy::WHOLE_DEPLOYMENT;
use fieldbook_server::http::{NewUser, create_user_record};
use fieldbook_server::storage::{Accounts, AuditEntry, Identity, Records};
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
    /// Records taken out of circulation (a bad record that landed).
    #[command(subcommand)]
    Records(RecordsCmd),
}

#[derive(clap::Subcommand)]
enum UserCmd {
    /// Adds a user; the password is read from standard input.
    Add {
        name: String,
        /// inspector, supervisor, county_office or admin.
        #[arg(long)]
        role: String,
        /// Division-code prefix the user works in (repeatable); `*` is the
        /// whole deployment (administrators only).
        #[arg(long = "area", required = true)]
        areas: Vec<String>,
    },
    /// Lists users.
    List,
    /// Disables a user: no login, every token revoked.
    Disable { name: String },
    /// Enables a disabled user again.
    Enable { name: String },
    /// Sets a new password, read from standard input; every token of the
    /// user is revoked.
    ResetPassword { name: String },
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

#[derive(clap::Subcommand)]
enum RecordsCmd {
    /// Quarantines a record: phones stop pulling it, reports and exports
    /// skip it, pushes to it are refused. The record itself is kept.
    Quarantine {
        id: String,
        /// Why, for the audit log and the next operator.
        #[arg(long)]
        reason: String,
    },
    /// Puts a quarantined record back into circulation.
    Release { id: String },
    /// Lists quarantined records.
    Quarantined,
}

fn now() -> i64 {
    (fieldbook_core::store::system_clock())()
}

/// The operator at the server's command line holds the whole deployment.
fn operator() -> Identity {
    Identity {
        user: "cli".into(),
        role: Role::Admin,
        areas: vec![WHOLE_DEPLOYMENT.into()],
        device: "cli".into(),
    }
}

fn read_password() -> Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

pub fn run(args: Args) -> Result<()> {
    let storage = super::serve::open_storage(&args.data)?;
    let audit = |action: &str, detail: String| {
        storage.audit(&AuditEntry {
            at: now(),
            user: "cli".into(),
            device: None,
            action: action.into(),
            detail,
        })
    };
    match args.what {
        What::User(UserCmd::Add { name, role, areas }) => {
            let password = read_password()?;
            create_user_record(
                storage.as_ref(),
                &NewUser {
                    name: name.clone(),
                    password,
                    role: role.clone(),
                    areas: areas.clone(),
                },
                None,
                now(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            audit(
                "user_created",
                format!("{name} ({role}) in {}", areas.join(",")),
            )?;
            println!("user {name} added");
        }
        What::User(UserCmd::List) => {
            for u in storage.users()? {
                let state = if u.disabled { "\tdisabled" } else { "" };
                println!("{}\t{}\t{}{state}", u.name, u.role, u.areas.join(","));
            }
        }
        What::User(UserCmd::Disable { name }) | What::User(UserCmd::Enable { name })
            if storage.user(&name)?.is_none() =>
        {
            bail!("no user {name}");
        }
        What::User(UserCmd::Disable { name }) => {
            storage.set_user_disabled(&name, true)?;
            audit("user_disabled", name.clone())?;
            println!("user {name} disabled; their tokens are revoked");
        }
        What::User(UserCmd::Enable { name }) => {
            storage.set_user_disabled(&name, false)?;
            audit("user_enabled", name.clone())?;
            println!("user {name} enabled");
        }
        What::User(UserCmd::ResetPassword { name }) => {
            let password = read_password()?;
            let hash = fieldbook_server::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !storage.set_password(&name, &hash)? {
                bail!("no user {name}");
            }
            audit("password_reset", name.clone())?;
            println!("password of {name} replaced; their tokens are revoked");
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
            audit("device_revoked", id.clone())?;
            println!("device {id} revoked");
        }
        What::Sites(SitesCmd::Import { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let sites = fieldbook_server::registry::parse(&bytes, "cli", now())
                .map_err(|p| anyhow::anyhow!("{}:\n{}", file.display(), p.join("\n")))?;
            let written = storage.import_sites(&sites, &operator(), now())?;
            audit(
                "sites_imported",
                format!(
                    "{}: {} rows, {written} written",
                    file.display(),
                    sites.len()
                ),
            )?;
            println!("{} rows, {written} sites new or changed", sites.len());
        }
        What::Records(RecordsCmd::Quarantine { id, reason }) => {
            if reason.trim().is_empty() {
                bail!("give the reason with --reason");
            }
            if !storage.quarantine(&id, &reason, "cli", now())? {
                bail!("no record {id}");
            }
            audit("record_quarantined", format!("{id}: {reason}"))?;
            println!("record {id} quarantined: phones no longer pull it, reports skip it");
        }
        What::Records(RecordsCmd::Release { id }) => {
            if !storage.release(&id)? {
                bail!("record {id} is not quarantined");
            }
            audit("record_released", id.clone())?;
            println!("record {id} released");
        }
        What::Records(RecordsCmd::Quarantined) => {
            for q in storage.quarantined()? {
                println!("{}\t{}\t{}\t{}", q.id, q.at, q.by, q.reason);
            }
        }
    }
    Ok(())
}
