//! Reading the header and decoding JPEG and PNG to packed RGB.
//!
//! JPEG goes through libjpeg-turbo, which can decode straight to 1/2, 1/4
//! or 1/8 size inside the inverse DCT: for a 12 MP photo and a 1600 px
//! output, decoding at 1/2 does a quarter of the colour conversion and
//! upsampling work and needs a quarter of the pixel memory. The smallest
//! such scale that keeps the long edge at or above the target is chosen, so
//! the final Lanczos step always downsamples. PNG (screenshots, edited
//! images) goes through the `image` crate at full size.
//!
//! The DCT scale is a block-wise filter, not Lanczos: when it does nearly
//! all the shrinking (an 8 MP 3264 px photo decodes at 1/2 to 1632 px for a
//! 1600 px target) the result measured up to 0.0006 DSSIM further from a
//! Lanczos downscale than a full decode does. Decoding at full size there
//! costs about 1.7× the time and 45–50 MB, so the brief's rule stands; see
//! `bench/photo.sh` for the figures.
//!
//! Colour profiles are not applied: camera JPEGs are sRGB, and a
//! wide-gamut photo comes out slightly desaturated.
//!
//! Every path reads the declared dimensions first and checks them against
//! the [`Limits`] before a decoder allocates anything.

use super::error::{PhotoError, Result};
use super::limits::{Limits, PHOTO_JPEG_SCANS_MAX};
use std::io::Cursor;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

/// The input formats the pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
        }
    }
}

/// What the header declares, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: Format,
    /// Stored width, before orientation.
    pub width: u32,
    /// Stored height, before orientation.
    pub height: u32,
    /// A progressive JPEG: decoding it buffers every DCT coefficient of
    /// the full frame, so scaled decoding saves less time and no memory.
    pub progressive: bool,
}

/// Pixels as decoded, before resizing.
pub(crate) struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The DCT scale used: 1, 2, 4 or 8 for 1/1 … 1/8.
    pub scale_denom: u32,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Tells JPEG and PNG apart by their first bytes; anything else is named
/// (when recognisable) and refused.
pub fn sniff(b: &[u8]) -> Result<Format> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if b.starts_with(PNG_SIGNATURE) {
        return Ok(Format::Png);
    }
    let ftyp = |brands: &[&[u8]]| {
        b.get(4..8) == Some(b"ftyp") && brands.iter().any(|x| b.get(8..12) == Some(*x))
    };
    let format = if b.is_empty() {
        return Err(PhotoError::Corrupt {
            format: "unknown",
            reason: "the file is empty".into(),
        });
    } else if ftyp(&[
        b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1",
    ]) {
        "HEIF/HEIC"
    } else if ftyp(&[b"avif", b"avis"]) {
        "AVIF"
    } else if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        "WebP"
    } else if b.starts_with(b"GIF8") {
        "GIF"
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        "TIFF"
    } else if b.starts_with(b"BM") {
        "BMP"
    } else if b.starts_with(b"%PDF") {
        "PDF"
    } else {
        "unknown"
    };
    Err(PhotoError::Unsupported {
        format: format.into(),
    })
}

/// Reads the declared dimensions and refuses what the limits do not allow.
pub fn read_header(b: &[u8], limits: &Limits) -> Result<Header> {
    let header = match sniff(b)? {
        Format::Jpeg => jpeg_header(b)?,
        Format::Png => png_header(b)?,
    };
    limits.check_dimensions(
        u64::from(header.width),
        u64::from(header.height),
        header.format.name(),
    )?;
    Ok(header)
}

fn jpeg_header(b: &[u8]) -> Result<Header> {
    let mut d = Decompressor::new().map_err(internal)?;
    let h = match d.read_header(b) {
        Ok(h) if h.width > 0 && h.height > 0 => h,
        // libjpeg-turbo treats a stream that ends inside its headers as a
        // "tables-only" stream and reports no error, or trips over the
        // bytes it invents at the end: tell truncation apart ourselves.
        _ if ends_early(b) => return Err(PhotoError::Truncated { format: "JPEG" }),
        Ok(_) => {
            return Err(PhotoError::Corrupt {
                format: "JPEG",
                reason: "no frame header".into(),
            });
        }
        Err(e) => return Err(jpeg_error(&e)),
    };
    if matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        return Err(PhotoError::Unsupported {
            format: "CMYK JPEG".into(),
        });
    }
    if h.is_lossless {
        return Err(PhotoError::Unsupported {
            format: "lossless JPEG".into(),
        });
    }
    let dim = |v: usize| {
        u32::try_from(v).map_err(|_| PhotoError::Corrupt {
            format: "JPEG",
            reason: "dimension out of range".into(),
        })
    };
    Ok(Header {
        format: Format::Jpeg,
        width: dim(h.width)?,
        height: dim(h.height)?,
        progressive: h.is_progressive,
    })
}

/// Whether the JPEG stops early: its headers run past the end of the data,
/// or no end-of-image marker (FF D9) follows the first start of scan. The
/// compressed data can never contain FF D9 (an FF byte there is followed by
/// 00 or a restart code), so this holds even when damage has scrambled the
/// segments in between. libjpeg-turbo pads a short stream with an invented
/// end marker, so a cut file surfaces as "premature end", as a "tables-only"
/// stream, or as nonsense in whatever segment the cut fell in; this tells
/// those apart from real damage. Only run on the error path.
fn ends_early(b: &[u8]) -> bool {
    let mut i = 2;
    loop {
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (b.get(i), b.get(i + 1)) else {
            // Out of data, or out of step (damage, not truncation).
            return i + 1 >= b.len();
        };
        match marker {
            0xD9 => return false,
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            0xDA => return !b[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (b.get(i + 2), b.get(i + 3)) else {
            return true;
        };
        i += 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if i > b.len() {
            return true;
        }
    }
}

/// The IHDR chunk must come first: signature, length 13, "IHDR", width,
/// height (big-endian).
fn png_header(b: &[u8]) -> Result<Header> {
    let Some(ihdr) = b.get(8..24) else {
        return Err(PhotoError::Truncated { format: "PNG" });
    };
    if &ihdr[0..8] != b"\0\0\0\x0dIHDR" {
        return Err(PhotoError::Corrupt {
            format: "PNG",
            reason: "the first chunk is not IHDR".into(),
        });
    }
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    Ok(Header {
        format: Format::Png,
        width: be(&ihdr[8..12]),
        height: be(&ihdr[12..16]),
        progressive: false,
    })
}

/// The largest DCT scale denominator (8, 4, 2, else 1) whose output keeps
/// the long edge at or above `target`.
pub fn dct_scale_denom(width: u32, height: u32, target: u32) -> u32 {
    let long = width.max(height);
    [8, 4, 2]
        .into_iter()
        .find(|&d| long.div_ceil(d) >= target)
        .unwrap_or(1)
}

/// Decodes a JPEG whose header was checked, at the DCT scale that suits a
/// long edge of `target` px.
pub(crate) fn jpeg(b: &[u8], header: &Header, target: u32) -> Result<Decoded> {
    let denom = dct_scale_denom(header.width, header.height, target);
    let factor = ScalingFactor::new(1, denom as usize);
    let mut d = Decompressor::new().map_err(internal)?;
    d.set_scan_limit(PHOTO_JPEG_SCANS_MAX).map_err(internal)?;
    d.set_scaling_factor(factor).map_err(internal)?;
    let width = factor.scale(header.width as usize);
    let height = factor.scale(header.height as usize);
    let mut rgb = vec![0u8; width * height * 3];
    let out = Image {
        pixels: rgb.as_mut_slice(),
        width,
        pitch: width * 3,
        height,
        format: PixelFormat::RGB,
    };
    if let Err(e) = d.decompress(b, out) {
        // libjpeg reports recoverable damage as a warning after writing
        // every pixel; only the harmless kinds are let through.
        match jpeg_error(&e) {
            PhotoError::Corrupt { .. } if is_harmless_warning(&e.to_string()) => {}
            PhotoError::Corrupt { .. } if ends_early(b) => {
                return Err(PhotoError::Truncated { format: "JPEG" });
            }
            err => return Err(err),
        }
    }
    Ok(Decoded {
        rgb,
        width: width as u32,
        height: height as u32,
        scale_denom: denom,
    })
}

/// libjpeg warnings that leave the image intact: stray bytes between
/// segments (common in camera files), an odd JFIF version, a damaged ICC
/// marker. Damage to the compressed pixel data ("bad Huffman code",
/// "premature end of data segment", …) is not among them: such a photo
/// would be stored with grey or smeared blocks.
fn is_harmless_warning(msg: &str) -> bool {
    [
        "extraneous bytes before marker",
        "unknown JFIF revision",
        "Unknown Adobe color transform",
        "bad ICC marker",
    ]
    .iter()
    .any(|w| msg.contains(w))
}

/// Classifies a libjpeg-turbo message.
fn jpeg_error(e: &turbojpeg::Error) -> PhotoError {
    let msg = e.to_string();
    if msg.contains("Premature end of JPEG file")
        || msg.contains("JPEG datastream contains no image")
    {
        PhotoError::Truncated { format: "JPEG" }
    } else if msg.contains("Unsupported color conversion")
        || msg.contains("Unsupported JPEG data precision")
    {
        PhotoError::Unsupported {
            format: "JPEG with an unsupported colour format or precision".into(),
        }
    } else {
        PhotoError::Corrupt {
            format: "JPEG",
            reason: msg.trim_start_matches("TurboJPEG error: ").to_owned(),
        }
    }
}

fn internal(e: turbojpeg::Error) -> PhotoError {
    PhotoError::Internal {
        stage: "decode",
        reason: e.to_string(),
    }
}

/// Decodes a PNG whose header was checked, at full size, flattening any
/// transparency onto white.
pub(crate) fn png(b: &[u8], header: &Header, limits: &Limits) -> Result<Decoded> {
    use image::ImageDecoder;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(header.width);
    image_limits.max_image_height = Some(header.height);
    // 16-bit RGBA is the widest PNG pixel: 8 bytes.
    image_limits.max_alloc = Some(limits.pixels_max.saturating_mul(8));
    let decoder = image::codecs::png::PngDecoder::with_limits(Cursor::new(b), image_limits)
        .map_err(|e| png_error(e, header, limits))?;
    let (w, h) = decoder.dimensions();
    if (w, h) != (header.width, header.height) {
        return Err(PhotoError::Corrupt {
            format: "PNG",
            reason: "inconsistent dimensions".into(),
        });
    }
    let img =
        image::DynamicImage::from_decoder(decoder).map_err(|e| png_error(e, header, limits))?;
    let rgb = if img.color().has_alpha() {
        let rgba = img.into_rgba8().into_raw();
        let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
        for p in rgba.chunks_exact(4) {
            let a = u32::from(p[3]);
            for &c in &p[..3] {
                // Over white: c·a + 255·(255 − a), rounded.
                rgb.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
            }
        }
        rgb
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Decoded {
        rgb,
        width: w,
        height: h,
        scale_denom: 1,
    })
}

fn png_error(e: image::ImageError, header: &Header, limits: &Limits) -> PhotoError {
    use image::ImageError as E;
    match e {
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            PhotoError::Truncated { format: "PNG" }
        }
        E::Limits(_) => PhotoError::TooManyPixels {
            width: u64::from(header.width),
            height: u64::from(header.height),
            max: limits.pixels_max,
        },
        E::Unsupported(u) => PhotoError::Unsupported {
            format: format!("PNG ({u})"),
        },
        other => {
            let reason = other.to_string();
            if reason.contains("unexpected end") || reason.contains("UnexpectedEof") {
                PhotoError::Truncated { format: "PNG" }
            } else {
                PhotoError::Corrupt {
                    format: "PNG",
                    reason,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_scale_keeps_the_long_edge_at_or_above_the_target() {
        assert_eq!(dct_scale_denom(4000, 3000, 1600), 2);
        assert_eq!(dct_scale_denom(3000, 4000, 1600), 2);
        assert_eq!(dct_scale_denom(12_800, 9600, 1600), 8);
        assert_eq!(dct_scale_denom(12_801, 9600, 1600), 8);
        // libjpeg rounds scaled sizes up: ⌈12,793 / 8⌉ = 1600.
        assert_eq!(dct_scale_denom(12_793, 9600, 1600), 8);
        assert_eq!(dct_scale_denom(12_792, 9600, 1600), 4);
        assert_eq!(dct_scale_denom(6400, 4800, 1600), 4);
        assert_eq!(dct_scale_denom(3199, 2400, 1600), 2);
        assert_eq!(dct_scale_denom(3198, 2400, 1600), 1);
        assert_eq!(dct_scale_denom(3200, 2400, 1600), 2);
        assert_eq!(dct_scale_denom(800, 600, 1600), 1);
    }

    #[test]
    fn sniff_names_what_it_refuses() {
        let name = |b: &[u8]| match sniff(b) {
            Err(PhotoError::Unsupported { format }) => format,
            other => format!("{other:?}"),
        };
        assert_eq!(name(b"GIF89a...."), "GIF");
        assert_eq!(name(b"RIFF\0\0\0\0WEBPVP8 "), "WebP");
        assert_eq!(name(b"\0\0\0\x18ftypheic\0\0\0\0"), "HEIF/HEIC");
        assert_eq!(name(b"%PDF-1.7"), "PDF");
        assert_eq!(name(b"hello world"), "unknown");
        assert!(matches!(sniff(b""), Err(PhotoError::Corrupt { .. })));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0").ok(), Some(Format::Jpeg));
    }

    #[test]
    fn ends_early_walks_segments_and_scans() {
        // SOI, a 4-byte APP0, SOS with 2 bytes of header, data with a
        // stuffed 0xFF00 and a restart marker, EOI.
        let whole: &[u8] = &[
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF,
            0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert!(!ends_early(whole));
        for cut in 3..whole.len() - 1 {
            assert!(ends_early(&whole[..cut]), "cut at {cut}");
        }
        // Trailing bytes after the end marker are not truncation.
        let mut trailing = whole.to_vec();
        trailing.extend_from_slice(b"trailer");
        assert!(!ends_early(&trailing));
    }

    #[test]
    fn png_header_is_read_without_decoding() {
        let mut b = PNG_SIGNATURE.to_vec();
        b.extend_from_slice(b"\0\0\0\x0dIHDR");
        b.extend_from_slice(&100_000u32.to_be_bytes());
        b.extend_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(
            read_header(&b, &Limits::default()),
            Err(PhotoError::TooManyPixels { .. })
        ));
        assert!(matches!(
            read_header(&b[..20], &Limits::default()),
            Err(PhotoError::Truncated { .. })
        ));
    }
}
