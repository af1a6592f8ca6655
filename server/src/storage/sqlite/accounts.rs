//! Users, devices, tokens and the audit log in SQLite.

use super::{SqliteStorage, role_of, split_areas};
use crate::storage::{
    AUDIT_FIELD_CHARS_MAX, AUDIT_REPEAT_MS, Accounts, AuditEntry, AuditLine, AuditQuery,
    DeviceRecord, Identity, Result, Session, StorageError, UserRecord,
};
use fieldbook_core::model::Role;
use rusqlite::{OptionalExtension, params};

const USER_COLUMNS: &str = "name, password_hash, role, areas, created_at, disabled";

fn user_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, i64, bool)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn user_record(row: (String, String, String, String, i64, bool)) -> Result<UserRecord> {
    let (name, password_hash, role, areas, created_at, disabled) = row;
    Ok(UserRecord {
        name,
        password_hash,
        role: role_of(&role)?,
        areas: split_areas(&areas),
        created_at,
        disabled,
    })
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: r.get(0)?,
        user: r.get(1)?,
        actor: r.get(2)?,
        registered_at: r.get(3)?,
        last_seen: r.get(4)?,
        revoked: r.get(5)?,
    })
}

/// `s` cut to at most `max` characters.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Accounts for SqliteStorage {
    fn create_user(&self, u: &UserRecord) -> Result<()> {
        let conn = self.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO users(name, password_hash, role, areas, created_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![u.name, u.password_hash, u.role.key(), u.areas.join(","), u.created_at, u.disabled],
        )?;
        if n == 0 {
            return Err(StorageError::Conflict(format!(
                "user {} already exists",
                u.name
            )));
        }
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let conn = self.reader();
        conn.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
            [name],
            user_row,
        )
        .optional()?
        .map(user_record)
        .transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
        let rows = st.query_map([], user_row)?;
        rows.map(|r| user_record(r?)).collect()
    }

    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE users SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        if disabled {
            tx.execute(
                "DELETE FROM tokens WHERE device IN (SELECT id FROM devices WHERE user = ?1)",
                [name],
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![name, password_hash],
        )?;
        tx.execute(
            "DELETE FROM tokens WHERE device IN (SELECT id FROM devices WHERE user = ?1)",
            [name],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn register_device(
        &self,
        user: &str,
        device: &str,
        actor: &str,
        token_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let owner: Option<String> = tx
            .query_row("SELECT id FROM devices WHERE actor = ?1", [actor], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(old) = owner.as_deref().filter(|o| *o != device) {
            let old_user: String =
                tx.query_row("SELECT user FROM devices WHERE id = ?1", [old], |r| {
                    r.get(0)
                })?;
            if old_user != user {
                return Err(StorageError::Conflict(
                    "this actor id belongs to another device".into(),
                ));
            }
            // The same user brings the actor to a new device id: a store
            // rebuilt after its database was damaged, which must pull back
            // the records its old self pushed. The actor moves and the old
            // device is revoked, so two devices never write as one actor.
            tx.execute(
                "UPDATE devices SET revoked = 1, actor = 'moved:' || actor || ':' || id WHERE id = ?1",
                [old],
            )?;
            tx.execute("DELETE FROM tokens WHERE device = ?1", [old])?;
        }
        let existing: Option<(String, bool)> = tx
            .query_row(
                "SELECT user, revoked FROM devices WHERE id = ?1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            Some((u, _)) if u != user => {
                return Err(StorageError::Conflict(
                    "this device is registered to another user".into(),
                ));
            }
            Some((_, true)) => {
                return Err(StorageError::Conflict(
                    "this device was revoked; ask an administrator".into(),
                ));
            }
            Some(_) => {
                tx.execute(
                    "UPDATE devices SET actor = ?2, last_seen = ?3 WHERE id = ?1",
                    params![device, actor, now],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO devices(id, user, actor, registered_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![device, user, actor, now],
                )?;
            }
        }
        // A new login replaces the device's earlier tokens: a token copied
        // off the phone before stops working when its owner logs in again.
        tx.execute("DELETE FROM tokens WHERE device = ?1", [device])?;
        tx.execute(
            "INSERT INTO tokens(hash, device, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, device, expires_at, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let conn = self.reader();
        let row: Option<(String, String, String, String, String, i64)> = conn
            .prepare_cached(
                "SELECT u.name, u.role, u.areas, d.id, d.actor, t.expires_at
                 FROM tokens t JOIN devices d ON d.id = t.device JOIN users u ON u.name = d.user
                 WHERE t.hash = ?1 AND t.expires_at > ?2 AND d.revoked = 0 AND u.disabled = 0",
            )?
            .query_row(params![token_hash, now], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()?;
        row.map(|(user, role, areas, device, actor, expires_at)| {
            Ok(Session {
                pusher: Identity {
                    user,
                    role: role_of(&role)?,
                    areas: split_areas(&areas),
                    device,
                },
                actor,
                expires_at,
            })
        })
        .transpose()
    }

    fn set_role_areas(&self, name: &str, role: Role, areas: &[String]) -> Result<bool> {
        let n = self
            .lock()
            .prepare_cached("UPDATE users SET role = ?2, areas = ?3 WHERE name = ?1")?
            .execute(params![name, role.key(), areas.join(",")])?;
        Ok(n > 0)
    }

    fn extend_token(&self, token_hash: &str, until: i64, lifetime_ms: i64) -> Result<()> {
        self.lock()
            .prepare_cached(
                "UPDATE tokens SET expires_at = min(?2, created_at + ?3)
                 WHERE hash = ?1 AND expires_at < ?2",
            )?
            .execute(params![token_hash, until, lifetime_ms])?;
        Ok(())
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        let conn = self.reader();
        let mut st = conn.prepare(
            "SELECT id, user, actor, registered_at, last_seen, revoked FROM devices ORDER BY user, id",
        )?;
        let rows = st.query_map([], device_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT id, user, actor, registered_at, last_seen, revoked FROM devices WHERE id = ?1",
                [id],
                device_row,
            )
            .optional()?)
    }

    fn revoke_device(&self, device: &str) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device])?;
        tx.execute("DELETE FROM tokens WHERE device = ?1", [device])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn audit(&self, e: &AuditEntry) -> Result<()> {
        let [u, d, a, t] = AUDIT_FIELD_CHARS_MAX;
        let (user, action, detail) = (cut(&e.user, u), cut(&e.action, a), cut(&e.detail, t));
        let device = e.device.as_deref().map(|x| cut(x, d));
        let conn = self.lock();
        // The same line again soon after (a login failing over and over)
        // is counted, not stored again: a flood cannot push real lines out.
        let latest: Option<(i64, i64, Option<String>, String, String)> = conn
            .prepare_cached(
                "SELECT id, coalesce(last_at, at), device, action, detail FROM audit
                 WHERE user = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([user], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        if let Some((id, last, ldevice, laction, ldetail)) = latest
            && e.at - last < AUDIT_REPEAT_MS
            && ldevice.as_deref() == device
            && laction == action
            && ldetail == detail
        {
            conn.prepare_cached("UPDATE audit SET count = count + 1, last_at = ?2 WHERE id = ?1")?
                .execute(params![id, e.at])?;
            return Ok(());
        }
        conn.prepare_cached(
            "INSERT INTO audit(at, user, device, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![e.at, user, device, action, detail])?;
        Ok(())
    }

    fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditLine>> {
        let conn = self.reader();
        let users = q
            .users
            .as_ref()
            .map(|u| serde_json::to_string(u).unwrap_or_else(|_| "[]".into()));
        let mut st = conn.prepare_cached(
            "SELECT id, at, user, device, action, detail, count, coalesce(last_at, at) FROM audit
             WHERE (?1 IS NULL OR id < ?1)
               AND (?2 IS NULL OR user IN (SELECT value FROM json_each(?2)))
               AND (?4 IS NULL OR action = ?4)
               AND (?5 IS NULL OR at >= ?5)
               AND (?6 IS NULL OR at < ?6)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = st.query_map(
            params![q.before, users, q.limit, q.action, q.from, q.until],
            |r| {
                Ok(AuditLine {
                    id: r.get(0)?,
                    entry: AuditEntry {
                        at: r.get(1)?,
                        user: r.get(2)?,
                        device: r.get(3)?,
                        action: r.get(4)?,
                        detail: r.get(5)?,
                    },
                    count: r.get::<_, i64>(6)? as u64,
                    last_at: r.get(7)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
