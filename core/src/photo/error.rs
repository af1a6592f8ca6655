//! The one error type of the photo pipeline.
//!
//! Photos come from outside (the camera, the gallery, another app), so every
//! way a file can be bad is an expected outcome with its own variant: the
//! app tells "this file is too big" apart from "this is not a photo" and
//! from "the copy was cut short". No variant carries the photo's content,
//! and when any of them is returned nothing has been written.

/// Why a photo was refused or could not be compressed.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The input file is larger than the byte limit; it was not read.
    #[error("the photo is {bytes} bytes, more than the {max} bytes allowed")]
    TooLarge { bytes: u64, max: u64 },
    /// The header declares more pixels than the pixel limit: a camera photo
    /// never has that many, a decompression bomb does. Refused before any
    /// pixel buffer was allocated.
    #[error(
        "the photo declares {width}×{height} pixels, more than the {max} pixels allowed (decompression bomb?)"
    )]
    TooManyPixels { width: u64, height: u64, max: u64 },
    /// The file ends before the image data does: an interrupted copy or
    /// download.
    #[error("the photo file is truncated ({format} data ends early)")]
    Truncated { format: &'static str },
    /// The bytes claim to be a JPEG or PNG but do not decode as one.
    #[error("the photo file is damaged: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    /// Not a JPEG or PNG (HEIC, WebP, GIF, a PDF, …), or a JPEG/PNG flavour
    /// the pipeline does not handle (CMYK, lossless, 1-bit).
    #[error("unsupported photo format: {format}; use JPEG or PNG")]
    Unsupported { format: String },
    /// The caller asked for an impossible output (zero edge, quality out of
    /// 1–100). A bug in the caller, not in the photo.
    #[error("invalid photo options: {0}")]
    BadOptions(String),
    /// A step that should not fail on valid pixels did (resize, encode):
    /// a bug or memory exhaustion, reported rather than panicking.
    #[error("photo processing failed in {stage}: {reason}")]
    Internal { stage: &'static str, reason: String },
    /// The input file could not be read (the cause is the source).
    #[error("could not read the photo file")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = PhotoError> = std::result::Result<T, E>;
