//! The photo folder of a data folder: complete photos named by their
//! BLAKE3 hash (`photos/<hash>.jpg`), each user's unfinished tus uploads
//! (`photos/partial/<user key>/<hash>.part` and `.len`), and console
//! thumbnails made once (`photos/thumbs/<hash>.jpg`). No HTTP here: the
//! tus handlers (`http::photos`) and the console use it.

use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

/// Unfinished uploads one user may hold.
pub const UPLOADS_PER_USER_MAX: usize = 64;
/// Bytes one user's unfinished uploads may declare together.
pub const UPLOAD_BYTES_PER_USER_MAX: u64 = 256 << 20;
/// Unfinished uploads untouched this long are removed.
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The photo folder of a data folder, with a lock that serialises writes.
pub struct PhotoStore {
    dir: PathBuf,
    pub(crate) lock: tokio::sync::Mutex<()>,
}

pub(crate) fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A file only this account can read.
pub(crate) fn private_file(path: &FsPath, append: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Whether `data` is a JPEG the photo pipeline could have written: a JPEG
/// header within the photo limits, and the end-of-image marker.
pub(crate) fn is_photo_jpeg(data: &[u8]) -> bool {
    let limits = fieldbook_core::photo::limits::Limits::default();
    matches!(
        fieldbook_core::photo::decode::read_header(data, &limits),
        Ok(h) if h.format == fieldbook_core::photo::Format::Jpeg
    ) && data.ends_with(&[0xff, 0xd9])
}

/// What happened to an upload whose bytes have all arrived.
pub(crate) enum Finish {
    /// Kept (or already kept from another owner): the user owns it now.
    Kept,
    /// The bytes are not the photo named, or not a JPEG: discarded.
    Discarded(&'static str),
}

impl PhotoStore {
    pub fn new(dir: PathBuf) -> std::io::Result<PhotoStore> {
        std::fs::create_dir_all(dir.join("partial"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let store = PhotoStore {
            dir,
            lock: tokio::sync::Mutex::new(()),
        };
        store.expire_all();
        Ok(store)
    }

    pub(crate) fn final_path(&self, h: &str) -> PathBuf {
        self.dir.join(format!("{h}.jpg"))
    }

    /// The folder of one user's unfinished uploads: named by a hash of the
    /// user name, so any name makes a safe path.
    pub(crate) fn user_dir(&self, user: &str) -> PathBuf {
        let key = blake3::hash(user.as_bytes()).to_hex();
        self.dir.join("partial").join(&key.as_str()[..16])
    }

    /// Where `user`'s unfinished upload of `h` keeps its bytes.
    pub fn part_path(&self, user: &str, h: &str) -> PathBuf {
        self.user_dir(user).join(format!("{h}.part"))
    }

    pub(crate) fn len_path(&self, user: &str, h: &str) -> PathBuf {
        self.user_dir(user).join(format!("{h}.len"))
    }

    /// Removes unfinished uploads older than [`UPLOAD_EXPIRY`] in `dir`.
    pub(crate) fn expire(dir: &FsPath) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UPLOAD_EXPIRY);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    pub(crate) fn expire_all(&self) {
        if let Ok(users) = std::fs::read_dir(self.dir.join("partial")) {
            for u in users.flatten() {
                Self::expire(&u.path());
            }
        }
    }

    /// (count, declared bytes) of a user's unfinished uploads.
    pub(crate) fn usage(&self, user: &str) -> (usize, u64) {
        let mut n = 0;
        let mut bytes = 0;
        if let Ok(entries) = std::fs::read_dir(self.user_dir(user)) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "len") {
                    n += 1;
                    bytes += std::fs::read_to_string(e.path())
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        (n, bytes)
    }

    /// (offset, length) of `user`'s upload of `h`, if there is one.
    /// Callers hold `lock`.
    pub(crate) fn partial(&self, user: &str, h: &str) -> Option<(u64, u64)> {
        let length = std::fs::read_to_string(self.len_path(user, h))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()?;
        let offset = std::fs::metadata(self.part_path(user, h))
            .map(|m| m.len())
            .unwrap_or(0);
        Some((offset, length))
    }

    pub(crate) fn discard(&self, user: &str, h: &str) {
        let _ = std::fs::remove_file(self.part_path(user, h));
        let _ = std::fs::remove_file(self.len_path(user, h));
    }

    /// Keeps a fully uploaded photo under its final name if its bytes hash
    /// to that name and are a photo JPEG; otherwise discards the upload,
    /// which then starts over. Callers hold `lock`.
    pub(crate) fn finish(&self, user: &str, h: &str, length: u64) -> std::io::Result<Finish> {
        let part = self.part_path(user, h);
        let data = std::fs::read(&part)?;
        if data.len() as u64 != length || blake3::hash(&data).to_hex().as_str() != h {
            self.discard(user, h);
            return Ok(Finish::Discarded(
                "the uploaded bytes do not match the photo's hash; upload discarded",
            ));
        }
        if !is_photo_jpeg(&data) {
            self.discard(user, h);
            return Ok(Finish::Discarded(
                "the uploaded bytes are not a JPEG photo; upload discarded",
            ));
        }
        if self.final_path(h).exists() {
            // Already kept from another owner: this user proved they hold it.
            self.discard(user, h);
        } else {
            std::fs::rename(&part, self.final_path(h))?;
            sync_dir(&self.dir);
            let _ = std::fs::remove_file(self.len_path(user, h));
        }
        Ok(Finish::Kept)
    }

    /// The bytes of a complete photo.
    pub fn read(&self, h: &str) -> Option<Vec<u8>> {
        if !valid_hash(h) {
            return None;
        }
        std::fs::read(self.final_path(h)).ok()
    }

    /// A small copy of a stored photo for lists and review pages, made on
    /// first use with the phone's own pipeline and kept beside the photos.
    /// Blocking: call it off the async workers.
    pub fn thumbnail(&self, h: &str) -> Option<Vec<u8>> {
        if !valid_hash(h) {
            return None;
        }
        let dir = self.dir.join("thumbs");
        let path = dir.join(format!("{h}.jpg"));
        if let Ok(b) = std::fs::read(&path) {
            return Some(b);
        }
        let original = self.read(h)?;
        let options = fieldbook_core::photo::PhotoOptions {
            edge_px_max: THUMB_EDGE_PX,
            quality: 70,
            ..Default::default()
        };
        let small = fieldbook_core::photo::compress(&original, &options).ok()?;
        // Each maker writes its own file and renames it into place, so two
        // requests making the same thumbnail at once never let a reader see
        // a half-written one.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::create_dir_all(&dir);
        let tmp = dir.join(format!("{h}.{}.{n}.tmp", std::process::id()));
        if std::fs::write(&tmp, &small.jpeg).is_err() || std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Some(small.jpeg)
    }

    /// Whether a complete photo is stored.
    pub fn has(&self, h: &str) -> bool {
        valid_hash(h) && self.final_path(h).exists()
    }
}

pub(crate) fn sync_dir(dir: &FsPath) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Long edge of console thumbnails, pixels.
pub const THUMB_EDGE_PX: u32 = 320;
