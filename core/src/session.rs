//! A phone's signed-in session: its store, the server it syncs with, and
//! the saved login that lets the app work offline after one sign-in.
//!
//! The app holds one [`Session`] and shares it between its UI thread and its
//! background sync: the store sits behind a mutex that each operation holds
//! for one transaction, and the sync engine takes it only between network
//! calls, so a slow connection never freezes a screen. At most one sync runs
//! at a time; a second caller is told so at once instead of queueing.
//!
//! The login is kept in `account.json` beside the database (written
//! atomically): server URL, user, role, areas, device id and the device
//! token with its expiry. After one successful login the app reopens the
//! session from that file with no network, for as long as it likes. When
//! the server refuses the token (expired or revoked) the token is dropped
//! and the app is asked to log in again; nothing stored is touched, and the
//! same user logging in again carries on where they were.

use crate::model::Role;
use crate::store::{Identity, Store, StoreError};
use crate::sync::http::{HttpTransport, LoginRequest};
use crate::sync::{Progress, SyncError, SyncOptions, SyncSummary, TransportError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Name of the saved-login file inside a store folder.
pub const ACCOUNT_FILE: &str = "account.json";
/// Store setting: when the last sync finished, Unix milliseconds. Kept in
/// the store so a background job in a fresh process paces itself by it.
pub const LAST_SYNC_KEY: &str = "sync.last_success_ms";
/// Name of the file holding this installation's device id.
pub const DEVICE_FILE: &str = "device.id";

/// The saved login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Base URL of the server, e.g. `https://fieldbook.example.cn`.
    pub server: String,
    pub user: String,
    pub role: Role,
    pub areas: Vec<String>,
    pub device: String,
    /// The device token; `None` after the server refused it or after
    /// logging out.
    pub token: Option<String>,
    /// When the token expires, Unix milliseconds.
    pub expires_at: i64,
    /// The device's Automerge actor the server registered at login (hex),
    /// so a store rebuilt after damage keeps it even when the damaged file
    /// no longer says it. Absent in accounts saved before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No one has logged in on this phone yet.
    #[error("no one is logged in on this phone; log in first")]
    NotLoggedIn,
    /// The token expired or was revoked: log in again; nothing is lost.
    #[error("the login has expired or was revoked; log in again (nothing stored is lost)")]
    LoginRequired,
    /// The server refused the user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Another sync is running; this one was not started.
    #[error("a sync is already running")]
    SyncRunning,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(SyncError),
    #[error(transparent)]
    Transport(TransportError),
    /// The saved login could not be read or written.
    #[error("the saved login in {path} is unreadable: {reason}")]
    Account { path: String, reason: String },
}

impl From<SyncError> for SessionError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Transport(TransportError::Unauthorized) => SessionError::LoginRequired,
            SyncError::Transport(t) => SessionError::Transport(t),
            SyncError::Store(s) => SessionError::Store(s),
            other => SessionError::Sync(other),
        }
    }
}

impl From<TransportError> for SessionError {
    fn from(e: TransportError) -> Self {
        SessionError::Transport(e)
    }
}

pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// A signed-in phone: store, saved login, sync.
pub struct Session {
    dir: PathBuf,
    store: Mutex<Store>,
    account: Mutex<Account>,
    syncing: Mutex<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every store write is one SQLite transaction, and the account is
    // replaced whole, so a panic elsewhere cannot leave either half done.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    (crate::store::system_clock())()
}

impl Session {
    /// Logs in to `server` as `username` and opens this phone's store in
    /// `dir`. The store belongs to the first user who logs in on it; another
    /// user is refused ([`StoreError::WrongUser`]) before anything is sent.
    pub fn login(dir: &Path, server: &str, username: &str, password: &str) -> Result<Session> {
        if let Some(saved) = read_account(dir)?
            && saved.user != username
        {
            return Err(StoreError::WrongUser.into());
        }
        let device = device_id(dir)?;
        let account = login_account(dir, server, username, &device, password)?;
        let store = Store::open(dir, identity(&account))?;
        write_account(dir, &account)?;
        Ok(Session {
            dir: dir.to_owned(),
            store: Mutex::new(store),
            account: Mutex::new(account),
            syncing: Mutex::new(()),
        })
    }

    /// Reopens the session saved in `dir` without any network. Works with
    /// an expired token too: the app stays usable offline and is asked to
    /// log in again only when it syncs.
    pub fn resume(dir: &Path) -> Result<Session> {
        let account = read_account(dir)?.ok_or(SessionError::NotLoggedIn)?;
        let store = Store::open(dir, identity(&account))?;
        Ok(Session {
            dir: dir.to_owned(),
            store: Mutex::new(store),
            account: Mutex::new(account),
            syncing: Mutex::new(()),
        })
    }

    /// Recovers the saved session's store after its database was found
    /// damaged ([`StoreError::CorruptDatabase`]); see [`Store::recover`].
    ///
    /// The server never sends a device the changes it pushed itself, so the
    /// rebuilt store comes back as a new device id with the same actor, and
    /// the user logs in again: the server moves the actor to the new id
    /// (revoking the old one), and the next sync brings back every record
    /// of the user's areas, the old device's own included, while the
    /// salvaged unsent changes go up under the actor that made them.
    pub fn recover(dir: &Path) -> Result<(Session, crate::store::Recovery)> {
        let mut account = read_account(dir)?.ok_or(SessionError::NotLoggedIn)?;
        let base = account
            .device
            .split_once("~r")
            .map_or(account.device.as_str(), |(b, _)| b)
            .to_owned();
        let stamp = uuid::Uuid::now_v7().simple().to_string();
        account.device = format!("{base}~r{}", &stamp[stamp.len() - 8..]);
        account.token = None;
        let (store, report) =
            Store::recover_keeping(dir, identity(&account), account.actor.as_deref())?;
        // Saved only once the store is rebuilt: a recovery that failed
        // leaves the account as it was.
        write_account(dir, &account)?;
        Ok((
            Session {
                dir: dir.to_owned(),
                store: Mutex::new(store),
                account: Mutex::new(account),
                syncing: Mutex::new(()),
            },
            report,
        ))
    }

    /// The user saved in `dir`, if any, for a login screen to prefill.
    pub fn saved_account(dir: &Path) -> Result<Option<Account>> {
        Ok(read_account(dir)?.map(|mut a| {
            a.token = None;
            a
        }))
    }

    /// Logs the same user in again (after [`SessionError::LoginRequired`]),
    /// refreshing the token, role and areas. The store is kept.
    pub fn relogin(&self, password: &str) -> Result<()> {
        let saved = self.account();
        let fresh = login_account(
            &self.dir,
            &saved.server,
            &saved.user,
            &saved.device,
            password,
        )?;
        let mut store = lock(&self.store);
        store.set_identity(identity(&fresh))?;
        write_account(&self.dir, &fresh)?;
        *lock(&self.account) = fresh;
        Ok(())
    }

    /// Forgets the token. Records stay on the phone and keep syncing after
    /// the same user logs in again.
    pub fn logout(&self) -> Result<()> {
        self.drop_token()
    }

    fn drop_token(&self) -> Result<()> {
        let mut account = lock(&self.account);
        let mut next = account.clone();
        next.token = None;
        write_account(&self.dir, &next)?;
        *account = next;
        Ok(())
    }

    /// The saved login, token included.
    pub fn account(&self) -> Account {
        lock(&self.account).clone()
    }

    /// Whether a sync would need a fresh login first.
    pub fn login_required(&self) -> bool {
        let a = lock(&self.account);
        a.token.is_none() || a.expires_at <= now_ms()
    }

    /// The folder of this session's store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the store, holding it for that one operation.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, StoreError>) -> Result<R> {
        Ok(f(&mut lock(&self.store))?)
    }

    /// Syncs records both ways, then uploads pending photos. Holds the
    /// store only between network calls. Refuses at once while another
    /// sync runs, and without touching the network when the login is
    /// known to have expired.
    pub fn sync(
        &self,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
        cancel: &AtomicBool,
    ) -> Result<SyncSummary> {
        let _running = match self.syncing.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(SessionError::SyncRunning),
        };
        let account = self.account();
        let token = match account.token {
            Some(t) if account.expires_at > now_ms() => t,
            _ => return Err(SessionError::LoginRequired),
        };
        let mut transport = HttpTransport::new(&account.server, Some(token));
        let mut store = &self.store;
        match crate::sync::run_all(&mut store, &mut transport, opts, progress, cancel) {
            Ok(s) => {
                lock(&self.store).set_setting(LAST_SYNC_KEY, &now_ms().to_string())?;
                Ok(s)
            }
            Err(SyncError::Transport(TransportError::Unauthorized)) => {
                self.drop_token()?;
                Err(SessionError::LoginRequired)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a sync is running now (a manual "sync" tap can say so
    /// instead of starting a second one).
    pub fn is_syncing(&self) -> bool {
        matches!(
            self.syncing.try_lock(),
            Err(std::sync::TryLockError::WouldBlock)
        )
    }

    /// When the last sync finished, if one ever did.
    pub fn last_sync(&self) -> Result<Option<i64>> {
        Ok(lock(&self.store)
            .setting(LAST_SYNC_KEY)?
            .and_then(|v| v.parse().ok()))
    }

    /// Downloads the photo with content hash `hash` from the server (a
    /// supervisor looking at evidence taken on another phone).
    pub fn download_photo(&self, hash: &str) -> Result<Vec<u8>> {
        let account = self.account();
        let token = account.token.ok_or(SessionError::LoginRequired)?;
        let transport = HttpTransport::new(&account.server, Some(token));
        match transport.get_photo(hash) {
            Ok(b) => Ok(b),
            Err(TransportError::Unauthorized) => {
                self.drop_token()?;
                Err(SessionError::LoginRequired)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Logs in at the server and returns the account to save.
fn login_account(
    dir: &Path,
    server: &str,
    user: &str,
    device: &str,
    password: &str,
) -> Result<Account> {
    let actor = Store::prepare(dir)?;
    let actor_hex = actor.clone();
    let mut transport = HttpTransport::new(server, None);
    let login = transport
        .login(&LoginRequest {
            username: user.into(),
            password: password.into(),
            device: device.into(),
            actor,
        })
        .map_err(|e| match e {
            TransportError::Unauthorized => SessionError::BadCredentials,
            other => SessionError::Transport(other),
        })?;
    let role = Role::from_key(&login.role).ok_or_else(|| {
        SessionError::Transport(TransportError::Refused {
            status: 200,
            message: format!("the server sent an unknown role {:?}", login.role),
        })
    })?;
    Ok(Account {
        server: transport.base().to_owned(),
        user: login.user,
        role,
        areas: login.areas,
        device: device.into(),
        token: Some(login.token),
        expires_at: login.expires_at,
        actor: Some(actor_hex),
    })
}

fn identity(a: &Account) -> Identity {
    Identity {
        user: a.user.clone(),
        role: a.role,
        areas: a.areas.clone(),
        device: a.device.clone(),
    }
}

fn account_error(path: &Path, reason: impl std::fmt::Display) -> SessionError {
    SessionError::Account {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_account(dir: &Path) -> Result<Option<Account>> {
    let path = dir.join(ACCOUNT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| account_error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(account_error(&path, e)),
    }
}

/// Replaces the account file atomically: a crash leaves the old login or
/// the new one, never half of each.
fn write_account(dir: &Path, a: &Account) -> Result<()> {
    let path = dir.join(ACCOUNT_FILE);
    let bytes = serde_json::to_vec_pretty(a).map_err(|e| account_error(&path, e))?;
    write_atomically(&path, &bytes).map_err(|e| account_error(&path, e))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// This installation's device id, created on first use and kept for good:
/// the server ties the device's Automerge actor to it.
fn device_id(dir: &Path) -> Result<String> {
    let path = dir.join(DEVICE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(account_error(&path, e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| account_error(dir, e))?;
    let id = format!("phone-{}", uuid::Uuid::now_v7().simple());
    write_atomically(&path, id.as_bytes()).map_err(|e| account_error(&path, e))?;
    Ok(id)
}
