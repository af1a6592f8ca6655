//! The photo pipeline: a camera photo in, upload-ready evidence out
//! (`docs/ARCHITECTURE.md`).
//!
//! Inspectors take several photos per visit on mid-range phones with little
//! storage and often no network, so each photo is turned at once into a
//! small JPEG plus the hashes the server needs:
//!
//! 1. [`limits`]: input bytes and declared pixels checked before decoding.
//! 2. [`decode`]: JPEG with libjpeg-turbo at the smallest DCT scale that
//!    keeps the long edge ≥ the target; PNG with the `image` crate.
//! 3. [`resize`]: Lanczos3 down to the long edge (1600 px by default).
//! 4. [`orientation`]: the EXIF orientation turned into the pixels, on the
//!    small image.
//! 5. [`encode`]: baseline JPEG, 4:2:0, quality 80, no metadata.
//! 6. [`hash`]: BLAKE3 of the file (its identity) and a 64-bit perceptual
//!    hash of its pixels; [`exif`]: capture time and GPS for the record.
//!
//! [`compress`] runs it all in memory; the store's `Store::add_photo` adds
//! writing the file by its hash and recording it. Nothing here touches the
//! file system except [`PhotoInput::Path`], which only reads.

pub mod decode;
mod encode;
mod error;
pub mod exif;
pub mod hash;
pub mod limits;
pub mod orientation;
pub mod resize;

pub use decode::{Format, Header};
pub use error::{PhotoError, Result};
pub use hash::{phash_distance, phash_hex};
pub use limits::{
    Limits, PHOTO_BYTES_MAX, PHOTO_EDGE_PX_DEFAULT, PHOTO_EDGE_PX_MAX, PHOTO_PIXELS_MAX,
    PHOTO_QUALITY_DEFAULT,
};
pub use orientation::Orientation;

use crate::model::{GeoPoint, PhotoRef};
use std::io::Read;
use std::path::Path;

/// Where the photo comes from: bytes in memory (the camera callback) or a
/// file (the gallery).
#[derive(Debug, Clone, Copy)]
pub enum PhotoInput<'a> {
    Bytes(&'a [u8]),
    Path(&'a Path),
}

impl<'a> From<&'a [u8]> for PhotoInput<'a> {
    fn from(b: &'a [u8]) -> Self {
        PhotoInput::Bytes(b)
    }
}

impl<'a> From<&'a Path> for PhotoInput<'a> {
    fn from(p: &'a Path) -> Self {
        PhotoInput::Path(p)
    }
}

/// What to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoOptions {
    /// Long edge of the output at most, in pixels (smaller photos are not
    /// enlarged).
    pub edge_px_max: u32,
    /// JPEG quality, 1–100.
    pub quality: u8,
    pub limits: Limits,
}

impl Default for PhotoOptions {
    fn default() -> Self {
        PhotoOptions {
            edge_px_max: PHOTO_EDGE_PX_DEFAULT,
            quality: PHOTO_QUALITY_DEFAULT,
            limits: Limits::default(),
        }
    }
}

impl PhotoOptions {
    fn validate(&self) -> Result<()> {
        if !(1..=PHOTO_EDGE_PX_MAX).contains(&self.edge_px_max) {
            return Err(PhotoError::BadOptions(format!(
                "long edge must be 1–{PHOTO_EDGE_PX_MAX} px, not {}",
                self.edge_px_max
            )));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(PhotoError::BadOptions(format!(
                "quality must be 1–100, not {}",
                self.quality
            )));
        }
        Ok(())
    }
}

/// Facts about the original, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub header: Header,
    pub orientation: Orientation,
    /// The DCT scale the JPEG was decoded at: 1, 2, 4 or 8 for 1/1 … 1/8.
    pub scale_denom: u32,
}

/// A compressed photo and everything the record needs about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// The output file.
    pub jpeg: Vec<u8>,
    /// BLAKE3 of `jpeg`, 64 lowercase hex digits.
    pub hash: String,
    pub width: u32,
    pub height: u32,
    /// Perceptual hash of the output pixels, 16 lowercase hex digits (see
    /// [`hash`]).
    pub phash: String,
    /// Capture time from the original's EXIF, Unix milliseconds.
    pub taken_at: Option<i64>,
    /// Capture position from the original's EXIF.
    pub gps: Option<GeoPoint>,
    pub source: Source,
}

impl Compressed {
    /// Size of the output file in bytes.
    pub fn bytes(&self) -> u64 {
        self.jpeg.len() as u64
    }

    /// The reference a record stores.
    pub fn photo_ref(&self, field: Option<&str>, added_at: i64) -> PhotoRef {
        PhotoRef {
            hash: self.hash.clone(),
            field: field.map(str::to_owned),
            bytes: self.bytes(),
            width: self.width,
            height: self.height,
            phash: self.phash.clone(),
            taken_at: self.taken_at,
            gps: self.gps,
            added_at,
        }
    }
}

/// Compresses a photo given as bytes or as a file path.
pub fn compress_input(input: PhotoInput<'_>, options: &PhotoOptions) -> Result<Compressed> {
    match input {
        PhotoInput::Bytes(b) => compress(b, options),
        PhotoInput::Path(p) => compress(&read_limited(p, &options.limits)?, options),
    }
}

/// Reads a photo file, refusing one over the byte limit before reading it.
pub fn read_limited(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    limits.check_bytes(len)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow between the check and the read.
    file.take(limits.bytes_max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    limits.check_bytes(bytes.len() as u64)?;
    Ok(bytes)
}

/// Runs the pipeline on a photo in memory.
pub fn compress(bytes: &[u8], options: &PhotoOptions) -> Result<Compressed> {
    options.validate()?;
    options.limits.check_bytes(bytes.len() as u64)?;
    let header = decode::read_header(bytes, &options.limits)?;
    let meta = exif::read(bytes, header.format == Format::Jpeg);
    let decoded = match header.format {
        Format::Jpeg => decode::jpeg(bytes, &header, options.edge_px_max)?,
        Format::Png => decode::png(bytes, &header, &options.limits)?,
    };
    // The target follows the declared size, not the DCT-scaled one, whose
    // edges are rounded up to whole pixels.
    let (w, h) = resize::fit(header.width, header.height, options.edge_px_max);
    let rgb = resize::lanczos3(decoded.rgb, decoded.width, decoded.height, w, h)?;
    let (rgb, width, height) = orientation::apply(rgb, w, h, meta.orientation);
    let jpeg = encode::jpeg(&rgb, width, height, options.quality)?;
    let phash = hash::perceptual_hash(&rgb, width, height);
    drop(rgb);
    Ok(Compressed {
        hash: hash::content_hash(&jpeg),
        jpeg,
        width,
        height,
        phash: phash_hex(phash),
        taken_at: meta.taken_at,
        gps: meta.gps,
        source: Source {
            header,
            orientation: meta.orientation,
            scale_denom: decoded.scale_denom,
        },
    })
}
