//! Numbered schema migrations.
//!
//! Each file `migrations/NNN_name.sql` moves the schema from version NNN-1 to
//! NNN; `PRAGMA user_version` records the version reached. To change the
//! schema: add the next file to [`MIGRATIONS`], never edit a shipped one, and
//! the test below upgrades every earlier version to it.

use rusqlite::Connection;

/// Every migration in order; index + 1 is the version it produces.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_initial", include_str!("migrations/001_initial.sql")),
    (
        "002_sync_rejections",
        include_str!("migrations/002_sync_rejections.sql"),
    ),
    (
        "003_inspection_date_index",
        include_str!("migrations/003_inspection_date_index.sql"),
    ),
    (
        "004_sync_send_changes",
        include_str!("migrations/004_sync_send_changes.sql"),
    ),
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer build.
    #[error(
        "the database has schema version {found}, newer than this app's {LATEST}; update the app"
    )]
    TooNew { found: u32 },
    /// A migration failed; the transaction was rolled back.
    #[error("schema migration {name} failed: {source}")]
    Failed {
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The version could not be read.
    #[error("could not read the schema version: {0}")]
    Version(#[source] rusqlite::Error),
}

/// Current schema version of `conn`.
pub fn version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every migration above the current version, each in its own
/// transaction with the version bump, so a crash leaves a whole version.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrationError> {
    migrate_to(conn, LATEST)
}

/// Applies migrations up to `target` (tests build old schemas with this).
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, MigrationError> {
    let current = version(conn).map_err(MigrationError::Version)?;
    if current > LATEST {
        return Err(MigrationError::TooNew { found: current });
    }
    for (i, (name, sql)) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(current as usize)
        .take(target.saturating_sub(current) as usize)
    {
        let failed = |source| MigrationError::Failed { name, source };
        let tx = conn.transaction().map_err(failed)?;
        tx.execute_batch(sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    version(conn).map_err(MigrationError::Version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_dump(conn: &Connection) -> Vec<String> {
        let mut st = conn.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").unwrap();
        st.query_map([], |r| {
            Ok(format!(
                "{} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default()
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }

    #[test]
    fn every_earlier_version_upgrades_to_the_same_schema() {
        let mut fresh = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut fresh).unwrap(), LATEST);
        let want = schema_dump(&fresh);
        for start in 0..LATEST {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("old.db");
            {
                let mut old = Connection::open(&path).unwrap();
                assert_eq!(migrate_to(&mut old, start).unwrap(), start);
                // A row in every table that exists at `start`, so the upgrade
                // runs over data, not an empty file.
                if start >= 1 {
                    old.execute("INSERT INTO kv(key, value) VALUES ('sync.cursor', '7')", [])
                        .unwrap();
                }
            }
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(migrate(&mut conn).unwrap(), LATEST, "from {start}");
            assert_eq!(schema_dump(&conn), want, "from {start}");
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            if start >= 1 {
                let v: String = conn
                    .query_row("SELECT value FROM kv WHERE key = 'sync.cursor'", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                assert_eq!(v, "7");
            }
        }
    }

    /// A migration file left out of the list is never applied (schema 3
    /// once shipped unapplied): the list must name every file, in order.
    #[test]
    fn the_list_names_every_migration_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(listed, files);
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(name.starts_with(&format!("{:03}_", i + 1)), "{name}");
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.sql"))).unwrap();
            assert_eq!(*sql, on_disk, "{name}");
        }
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, MigrationError::TooNew { .. }), "{err}");
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let before = schema_dump(&conn);
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
        assert_eq!(schema_dump(&conn), before);
    }
}
