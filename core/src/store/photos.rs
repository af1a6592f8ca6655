//! Adding a photo to a record: compress it, keep the file by its hash,
//! reference it.
//!
//! The file is written before the record: a temporary file in the photo
//! folder, flushed to disk, then renamed to `<blake3>.jpg`, and the folder
//! flushed, so a crash leaves either no file or the whole file under its
//! final name — never a torn photo that a record points at. Then one SQLite
//! transaction records the photo row and the document change together
//! (`add_photo_ref`). A crash between the two leaves an unreferenced file,
//! which is harmless: the next add of the same photo reuses it. Because
//! files are named by content, the same photo added twice is stored once.
//!
//! When the record refuses the photo (closed inspection, unknown field,
//! another user's area), a file this call created is removed again.

use super::{PHOTO_DIR, Result, Store};
use crate::model::PhotoRef;
use crate::photo::{self, PhotoInput, PhotoOptions};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

impl Store {
    /// Compresses a photo and attaches it to inspection `inspection_id`,
    /// tagged with template field `field` if given. Returns the reference
    /// stored. On error nothing is stored.
    pub fn add_photo(
        &mut self,
        inspection_id: &str,
        input: PhotoInput<'_>,
        field: Option<&str>,
    ) -> Result<PhotoRef> {
        self.add_photo_with(input, &PhotoOptions::default(), field, |store, photo| {
            store.add_photo_ref(inspection_id, photo)
        })
    }

    /// Compresses a photo and attaches it to finding `finding_id` as
    /// evidence (of the problem or of its rectification).
    pub fn add_finding_photo_file(
        &mut self,
        finding_id: &str,
        input: PhotoInput<'_>,
    ) -> Result<PhotoRef> {
        self.add_photo_with(input, &PhotoOptions::default(), None, |store, photo| {
            store.add_finding_photo(finding_id, photo)
        })
    }

    /// Where the photo with content hash `hash` lives (or would live).
    pub fn photo_path(&self, hash: &str) -> PathBuf {
        photo_file(&self.photo_dir(), hash)
    }

    /// The folder holding this store's compressed photos.
    pub fn photo_dir(&self) -> PathBuf {
        self.dir().join(PHOTO_DIR)
    }

    fn add_photo_with(
        &mut self,
        input: PhotoInput<'_>,
        options: &PhotoOptions,
        field: Option<&str>,
        attach: impl FnOnce(&mut Store, PhotoRef) -> Result<()>,
    ) -> Result<PhotoRef> {
        let compressed = photo::compress_input(input, options)?;
        self.attach_with(compressed, field, attach)
    }

    /// Attaches a photo compressed earlier with [`photo::compress_input`],
    /// off this store's lock, to inspection `inspection_id`. Compressing
    /// takes a few hundred milliseconds; attaching takes one transaction.
    pub fn attach_compressed_photo(
        &mut self,
        inspection_id: &str,
        compressed: photo::Compressed,
        field: Option<&str>,
    ) -> Result<PhotoRef> {
        self.attach_with(compressed, field, |store, photo| {
            store.add_photo_ref(inspection_id, photo)
        })
    }

    /// As [`Store::attach_compressed_photo`], for finding `finding_id`.
    pub fn attach_compressed_finding_photo(
        &mut self,
        finding_id: &str,
        compressed: photo::Compressed,
    ) -> Result<PhotoRef> {
        self.attach_with(compressed, None, |store, photo| {
            store.add_finding_photo(finding_id, photo)
        })
    }

    fn attach_with(
        &mut self,
        compressed: photo::Compressed,
        field: Option<&str>,
        attach: impl FnOnce(&mut Store, PhotoRef) -> Result<()>,
    ) -> Result<PhotoRef> {
        let photo = compressed.photo_ref(field, self.now());
        let path = self.photo_path(&photo.hash);
        let created = write_photo_file(&path, &compressed.jpeg, &photo.hash)?;
        drop(compressed);
        match attach(self, photo.clone()) {
            Ok(()) => Ok(photo),
            Err(e) => {
                if created && !self.photo_is_registered(&photo.hash)? {
                    // Best effort: a leftover file is unreferenced, not wrong.
                    let _ = fs::remove_file(&path);
                }
                Err(e)
            }
        }
    }

    fn photo_is_registered(&self, hash: &str) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM photos WHERE hash = ?1)",
            [hash],
            |r| r.get(0),
        )?)
    }
}

/// Writes `jpeg` to `path` atomically unless a file with the same content
/// is already there. Returns whether it created the file.
fn write_photo_file(path: &Path, jpeg: &[u8], hash: &str) -> Result<bool> {
    // A damaged copy (disk error, manual edit) is replaced below.
    if let Ok(existing) = fs::read(path)
        && photo::hash::content_hash(&existing) == hash
    {
        return Ok(false);
    }
    let dir = path
        .parent()
        .ok_or_else(|| super::StoreError::BadInput("photo path has no folder".into()))?;
    let tmp = dir.join(format!(".{hash}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(jpeg)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(storage_error(e));
    }
    Ok(true)
}

/// Removes the temporary files of photo writes a crash cut short. A store
/// is open in one process at a time, so at open no write is in flight and
/// every temporary file is garbage: the photo it was to become was never
/// referenced (the reference is stored after the rename). Best effort: a
/// file that cannot be removed now is tried again at the next open.
pub(crate) fn clear_partial_writes(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(std::result::Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A full disk is its own store error, so the app can say so.
fn storage_error(e: std::io::Error) -> super::StoreError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        super::StoreError::StorageFull
    } else {
        super::StoreError::Io(e)
    }
}

/// The file of the photo with content hash `hash` inside photo folder `dir`.
pub fn photo_file(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.jpg"))
}
