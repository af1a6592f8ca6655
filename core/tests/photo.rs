//! The photo pipeline end to end, on images generated here: every EXIF
//! orientation, PNG with alpha, progressive JPEG, truncated, corrupt, bomb
//! and unsupported inputs, metadata, the perceptual hash's spread, and the
//! store writing files by hash. Real photographs are exercised by
//! `bench/photo.sh`, which fetches them at run time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod common;

use common::*;
use fieldbook_core::model::Role;
use fieldbook_core::photo::{
    self, Compressed, Limits, PhotoError, PhotoInput, PhotoOptions, phash_distance,
};
use fieldbook_core::store::{NewFinding, StoreError};
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

// ---- generated images -----------------------------------------------------

/// A small deterministic PRNG (xorshift64*), so scenes are the same on every
/// run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// A photo-like RGB scene: a sky-to-ground gradient, a few dozen filled
/// discs and boxes of random colours, and fine sensor-like noise. Seeded,
/// asymmetric in both directions.
fn scene(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let top = [rng.below(256), rng.below(256), rng.below(256)];
    let bottom = [rng.below(256), rng.below(256), rng.below(256)];
    let mut img = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let t = (y * 256 / h) as i64;
                let v = (i64::from(top[c]) * (256 - t) + i64::from(bottom[c]) * t) / 256
                    + (x * 40 / w) as i64;
                img.push(v.clamp(0, 255) as u8);
            }
        }
    }
    let shapes = 25 + rng.below(15);
    for _ in 0..shapes {
        let (cx, cy) = (rng.below(w) as i64, rng.below(h) as i64);
        let r = (w.min(h) / 30 + rng.below(w.min(h) / 5)) as i64;
        let colour = [
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ];
        let disc = rng.below(2) == 0;
        for y in (cy - r).max(0)..(cy + r).min(i64::from(h)) {
            for x in (cx - r).max(0)..(cx + r).min(i64::from(w)) {
                if disc && (x - cx).pow(2) + (y - cy).pow(2) > r * r {
                    continue;
                }
                let i = ((y * i64::from(w) + x) * 3) as usize;
                img[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
    for v in img.iter_mut() {
        let n = (rng.next() % 9) as i16 - 4;
        *v = (i16::from(*v) + n).clamp(0, 255) as u8;
    }
    img
}

fn encode_jpeg(rgb: &[u8], w: u32, h: u32, quality: i32, progressive: bool) -> Vec<u8> {
    let mut c = Compressor::new().unwrap();
    c.set_quality(quality).unwrap();
    c.set_subsamp(Subsamp::Sub2x2).unwrap();
    c.set_progressive(progressive).unwrap();
    c.compress_to_vec(Image {
        pixels: rgb,
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: PixelFormat::RGB,
    })
    .unwrap()
}

fn decode_jpeg(jpeg: &[u8]) -> (Vec<u8>, u32, u32) {
    let mut d = Decompressor::new().unwrap();
    let h = d.read_header(jpeg).unwrap();
    let mut px = vec![0u8; h.width * h.height * 3];
    d.decompress(
        jpeg,
        Image {
            pixels: px.as_mut_slice(),
            width: h.width,
            pitch: h.width * 3,
            height: h.height,
            format: PixelFormat::RGB,
        },
    )
    .unwrap();
    (px, h.width as u32, h.height as u32)
}

fn encode_png(pixels: &[u8], w: u32, h: u32, colour: image::ExtendedColorType) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, w, h, colour)
        .unwrap();
    out
}

/// Lanczos3 resize of a reference image, as the pipeline's own step would
/// do it from full resolution.
fn lanczos(rgb: &[u8], w: u32, h: u32, dw: u32, dh: u32) -> Vec<u8> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{PixelType, Resizer};
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3).unwrap();
    let mut dst = Image::new(dw, dh, PixelType::U8x3);
    Resizer::new().resize(&src, &mut dst, None).unwrap();
    dst.into_vec()
}

/// Mean absolute difference per channel value, 0–255.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len() as f64
}

// ---- EXIF, written by hand -------------------------------------------------

/// One TIFF directory entry: tag, type, count, and the value bytes
/// (big-endian).
struct Entry(u16, u16, u32, Vec<u8>);

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

fn ascii(tag: u16, s: &str) -> Entry {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    Entry(tag, ASCII, b.len() as u32, b)
}

fn rationals(tag: u16, v: &[(u32, u32)]) -> Entry {
    let b = v
        .iter()
        .flat_map(|(n, d)| n.to_be_bytes().into_iter().chain(d.to_be_bytes()))
        .collect();
    Entry(tag, RATIONAL, v.len() as u32, b)
}

fn ifd_size(entries: &[Entry]) -> u32 {
    let outside: usize = entries
        .iter()
        .map(|e| {
            if e.3.len() > 4 {
                e.3.len() + e.3.len() % 2
            } else {
                0
            }
        })
        .sum();
    (2 + 12 * entries.len() + 4 + outside) as u32
}

/// Appends a directory at `buf.len()` (its offset from the TIFF start) with
/// its out-of-line values right after it.
fn write_ifd(buf: &mut Vec<u8>, entries: &[Entry]) {
    let start = buf.len() as u32;
    let mut data_at = start + 2 + 12 * entries.len() as u32 + 4;
    let mut data = Vec::new();
    buf.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for Entry(tag, typ, count, value) in entries {
        buf.extend_from_slice(&tag.to_be_bytes());
        buf.extend_from_slice(&typ.to_be_bytes());
        buf.extend_from_slice(&count.to_be_bytes());
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            buf.extend_from_slice(&v);
        } else {
            buf.extend_from_slice(&data_at.to_be_bytes());
            data.extend_from_slice(value);
            if value.len() % 2 == 1 {
                data.push(0);
            }
            data_at += (value.len() + value.len() % 2) as u32;
        }
    }
    buf.extend_from_slice(&0u32.to_be_bytes());
    buf.extend_from_slice(&data);
}

/// Degrees, minutes and hundredths of seconds.
type Dms = (u32, u32, u32);

/// What to put in the EXIF block.
#[derive(Default)]
struct ExifSpec<'a> {
    orientation: Option<u16>,
    date_time_original: Option<&'a str>,
    offset_time_original: Option<&'a str>,
    /// Latitude and 'N'/'S', longitude and 'E'/'W'.
    gps: Option<(Dms, &'a str, Dms, &'a str)>,
}

/// A big-endian TIFF block ("MM", 42) with IFD0, an Exif IFD and a GPS IFD
/// as asked.
fn exif_tiff(spec: &ExifSpec<'_>) -> Vec<u8> {
    let mut exif_ifd = Vec::new();
    if let Some(dt) = spec.date_time_original {
        exif_ifd.push(ascii(0x9003, dt));
    }
    if let Some(off) = spec.offset_time_original {
        exif_ifd.push(ascii(0x9011, off));
    }
    let mut gps_ifd = Vec::new();
    if let Some(((ld, lm, ls), lr, (od, om, os), or)) = spec.gps {
        gps_ifd.push(ascii(0x0001, lr));
        gps_ifd.push(rationals(0x0002, &[(ld, 1), (lm, 1), (ls, 100)]));
        gps_ifd.push(ascii(0x0003, or));
        gps_ifd.push(rationals(0x0004, &[(od, 1), (om, 1), (os, 100)]));
    }
    // IFD0's size does not depend on the pointer values, so lay out first.
    let pointer_count = usize::from(!exif_ifd.is_empty()) + usize::from(!gps_ifd.is_empty());
    let ifd0_len = 2 + 12 * (usize::from(spec.orientation.is_some()) + pointer_count) + 4;
    let exif_at = 8 + ifd0_len as u32;
    let gps_at = exif_at
        + if exif_ifd.is_empty() {
            0
        } else {
            ifd_size(&exif_ifd)
        };
    let mut ifd0 = Vec::new();
    if let Some(o) = spec.orientation {
        ifd0.push(Entry(0x0112, SHORT, 1, o.to_be_bytes().to_vec()));
    }
    if !exif_ifd.is_empty() {
        ifd0.push(Entry(0x8769, LONG, 1, exif_at.to_be_bytes().to_vec()));
    }
    if !gps_ifd.is_empty() {
        ifd0.push(Entry(0x8825, LONG, 1, gps_at.to_be_bytes().to_vec()));
    }
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    write_ifd(&mut tiff, &ifd0);
    if !exif_ifd.is_empty() {
        write_ifd(&mut tiff, &exif_ifd);
    }
    if !gps_ifd.is_empty() {
        write_ifd(&mut tiff, &gps_ifd);
    }
    tiff
}

/// Inserts an APP1 "Exif" segment right after SOI, where cameras put it.
fn with_exif(jpeg: &[u8], spec: &ExifSpec<'_>) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_tiff(spec));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn opts(edge: u32) -> PhotoOptions {
    PhotoOptions {
        edge_px_max: edge,
        ..PhotoOptions::default()
    }
}

/// The marker codes of a JPEG's segments up to the start of scan.
fn markers(jpeg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let m = jpeg[i + 1];
        out.push(m);
        if m == 0xDA {
            break;
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    out
}

// ---- orientation -----------------------------------------------------------

/// For each EXIF orientation 1–8, the stored frame is made from an upright
/// reference with the `image` crate's own orientation code (the inverse
/// turn), so the pipeline is checked against an independent
/// implementation. The output must match the upright reference and be far
/// from its mirror image.
#[test]
fn every_exif_orientation_comes_out_upright() {
    use image::metadata::Orientation as O;
    let (w, h) = (480, 320);
    let upright = scene(w, h, 7);
    let upright_img = image::RgbImage::from_raw(w, h, upright.clone()).unwrap();
    // Two output sizes: 240 px is exactly the 1/2 DCT scale, 200 px needs
    // the Lanczos step after it.
    for edge in [240u32, 200] {
        let (ow, oh) = photo::resize::fit(w, h, edge);
        let reference = lanczos(&upright, w, h, ow, oh);
        let mirrored = {
            let mut m = image::DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(ow, oh, reference.clone()).unwrap(),
            );
            m.apply_orientation(O::FlipHorizontal);
            m.into_rgb8().into_raw()
        };
        for value in 1u8..=8 {
            // The inverse of each turn: 90° and 270° swap, the rest undo
            // themselves.
            let inverse = match value {
                6 => 8,
                8 => 6,
                v => v,
            };
            let mut stored = image::DynamicImage::ImageRgb8(upright_img.clone());
            stored.apply_orientation(O::from_exif(inverse).unwrap());
            let stored = stored.into_rgb8();
            let (sw, sh) = stored.dimensions();
            let jpeg = encode_jpeg(stored.as_raw(), sw, sh, 95, false);
            let jpeg = with_exif(
                &jpeg,
                &ExifSpec {
                    orientation: Some(u16::from(value)),
                    ..Default::default()
                },
            );
            let out = photo::compress(&jpeg, &opts(edge)).unwrap();
            assert_eq!(
                (out.width, out.height),
                (ow, oh),
                "orientation {value}, edge {edge}"
            );
            assert_eq!(
                u8::try_from(out.source.orientation.exif_value()).unwrap(),
                value
            );
            let (px, _, _) = decode_jpeg(&out.jpeg);
            let (good, bad) = (mad(&px, &reference), mad(&px, &mirrored));
            assert!(
                good < 6.0 && bad > 4.0 * good,
                "orientation {value}, edge {edge}: {good:.2} from upright, {bad:.2} from mirrored"
            );
        }
    }
}

// ---- formats ---------------------------------------------------------------

#[test]
fn large_baseline_jpeg_is_scaled_on_decode_and_resized_to_the_edge() {
    let (w, h) = (4000, 3000);
    let jpeg = encode_jpeg(&scene(w, h, 1), w, h, 90, false);
    let out = photo::compress(&jpeg, &PhotoOptions::default()).unwrap();
    assert_eq!((out.width, out.height), (1600, 1200));
    assert_eq!(out.source.scale_denom, 2);
    assert!(!out.source.header.progressive);
    assert!(out.bytes() < 350_000, "{} bytes", out.bytes());
    // 4:2:0, and nothing but the JFIF header before the image data.
    let header = turbojpeg::read_header(&out.jpeg).unwrap();
    assert_eq!(header.subsamp, Subsamp::Sub2x2);
    assert!(!header.is_progressive);
    let app_or_com: Vec<u8> = markers(&out.jpeg)
        .into_iter()
        .filter(|m| (0xE1..=0xEF).contains(m) || *m == 0xFE)
        .collect();
    assert!(app_or_com.is_empty(), "metadata markers {app_or_com:x?}");
    assert_eq!(out.hash, photo::hash::content_hash(&out.jpeg));
    assert_eq!(out.hash.len(), 64);
    assert_eq!(out.phash.len(), 16);
    assert!(out.photo_ref(None, 0).is_well_formed());
}

#[test]
fn progressive_jpeg_decodes_like_baseline() {
    let (w, h) = (1200, 900);
    let rgb = scene(w, h, 2);
    let base = photo::compress(&encode_jpeg(&rgb, w, h, 92, false), &opts(500)).unwrap();
    let prog = photo::compress(&encode_jpeg(&rgb, w, h, 92, true), &opts(500)).unwrap();
    assert!(prog.source.header.progressive);
    assert_eq!(prog.source.scale_denom, 2);
    assert_eq!((prog.width, prog.height), (500, 375));
    // Same coefficients, same decoder: the same pixels and the same file.
    assert_eq!(base.hash, prog.hash);
}

#[test]
fn small_photos_are_not_enlarged() {
    let jpeg = encode_jpeg(&scene(640, 480, 3), 640, 480, 90, false);
    let out = photo::compress(&jpeg, &PhotoOptions::default()).unwrap();
    assert_eq!(
        (out.width, out.height, out.source.scale_denom),
        (640, 480, 1)
    );
}

#[test]
fn png_with_alpha_is_flattened_onto_white() {
    let (w, h) = (64, 32);
    let mut rgba = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            let px = match x * 4 / w {
                0 => [200, 30, 30, 255], // opaque red
                1 => [0, 0, 0, 0],       // transparent
                2 => [0, 0, 0, 128],     // half-transparent black: grey
                _ => [30, 30, 200, 255], // opaque blue
            };
            rgba.extend_from_slice(&px);
        }
    }
    let png = encode_png(&rgba, w, h, image::ExtendedColorType::Rgba8);
    let out = photo::compress(&png, &PhotoOptions::default()).unwrap();
    assert_eq!(out.source.header.format, photo::Format::Png);
    assert_eq!((out.width, out.height), (w, h));
    let (px, _, _) = decode_jpeg(&out.jpeg);
    let at = |x: u32| &px[((h / 2 * w + x) * 3) as usize..((h / 2 * w + x) * 3 + 3) as usize];
    let near = |p: &[u8], q: [u8; 3]| p.iter().zip(q).all(|(&a, b)| a.abs_diff(b) <= 12);
    assert!(near(at(8), [200, 30, 30]), "{:?}", at(8));
    assert!(near(at(24), [255, 255, 255]), "{:?}", at(24));
    assert!(near(at(40), [127, 127, 127]), "{:?}", at(40));
    assert!(near(at(56), [30, 30, 200]), "{:?}", at(56));
}

#[test]
fn grey_and_16_bit_pngs_are_accepted() {
    let grey: Vec<u8> = (0..40 * 30).map(|i| (i % 256) as u8).collect();
    let png = encode_png(&grey, 40, 30, image::ExtendedColorType::L8);
    assert_eq!(photo::compress(&png, &opts(20)).unwrap().width, 20);
    let deep: Vec<u8> = (0..40 * 30 * 6).map(|i| (i * 7 % 256) as u8).collect();
    let png = encode_png(&deep, 40, 30, image::ExtendedColorType::Rgb16);
    assert_eq!(photo::compress(&png, &opts(1600)).unwrap().height, 30);
}

// ---- refusals --------------------------------------------------------------

/// Replaces the dimensions in a JPEG's SOF segment.
fn with_jpeg_dimensions(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let mut i = 2;
    loop {
        let m = out[i + 1];
        if (0xC0..=0xC2).contains(&m) {
            out[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
            out[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
            return out;
        }
        i += 2 + usize::from(u16::from_be_bytes([out[i + 2], out[i + 3]]));
    }
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let small = scene(64, 48, 4);
    for progressive in [false, true] {
        let jpeg = encode_jpeg(&small, 64, 48, 80, progressive);
        // 20,000² at 1/8 scale still allocates 1.2 GB in libjpeg-turbo.
        for (w, h) in [(20_000, 20_000), (65_000, 65_000), (10_000, 5001)] {
            let bomb = with_jpeg_dimensions(&jpeg, w, h);
            let started = std::time::Instant::now();
            let err = photo::compress(&bomb, &PhotoOptions::default()).unwrap_err();
            assert!(
                matches!(err, PhotoError::TooManyPixels { .. }),
                "{w}×{h}: {err}"
            );
            assert!(started.elapsed().as_millis() < 500);
        }
        // Just under the limit passes the header check (and then fails on
        // the missing data, not on memory).
        let ok = with_jpeg_dimensions(&jpeg, 10_000, 5000);
        let err = photo::compress(&ok, &PhotoOptions::default()).unwrap_err();
        assert!(
            !matches!(err, PhotoError::TooManyPixels { .. }),
            "50 MP exactly is allowed: {err}"
        );
    }
    // PNG: the IHDR is read before the decoder sees the file.
    let mut png = encode_png(&small, 64, 48, image::ExtendedColorType::Rgb8);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let err = photo::compress(&png, &PhotoOptions::default()).unwrap_err();
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err}");
    // A caller's tighter limit applies too.
    let tight = PhotoOptions {
        limits: Limits {
            pixels_max: 64 * 47,
            ..Limits::default()
        },
        ..PhotoOptions::default()
    };
    let jpeg = encode_jpeg(&small, 64, 48, 80, false);
    assert!(matches!(
        photo::compress(&jpeg, &tight),
        Err(PhotoError::TooManyPixels {
            width: 64,
            height: 48,
            ..
        })
    ));
    assert!(err.to_string().contains("decompression bomb"));
}

#[test]
fn oversized_input_is_refused_before_reading() {
    let jpeg = encode_jpeg(&scene(64, 48, 5), 64, 48, 80, false);
    let tiny = PhotoOptions {
        limits: Limits {
            bytes_max: 100,
            ..Limits::default()
        },
        ..PhotoOptions::default()
    };
    assert!(matches!(
        photo::compress(&jpeg, &tiny),
        Err(PhotoError::TooLarge { max: 100, .. })
    ));
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("big.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    assert!(matches!(
        photo::compress_input(PhotoInput::Path(&path), &tiny),
        Err(PhotoError::TooLarge { .. })
    ));
    assert!(photo::compress_input(PhotoInput::Path(&path), &PhotoOptions::default()).is_ok());
    assert!(matches!(
        photo::compress_input(PhotoInput::Path(&d.path().join("missing.jpg")), &tiny),
        Err(PhotoError::Io(_))
    ));
}

#[test]
fn truncated_files_are_refused_as_truncated() {
    let (w, h) = (320, 240);
    let rgb = scene(w, h, 6);
    for progressive in [false, true] {
        let jpeg = encode_jpeg(&rgb, w, h, 90, progressive);
        for cut in [jpeg.len() * 6 / 10, jpeg.len() - 2] {
            let err = photo::compress(&jpeg[..cut], &PhotoOptions::default()).unwrap_err();
            assert!(
                matches!(err, PhotoError::Truncated { format: "JPEG" }),
                "progressive {progressive}, {cut} of {} bytes: {err}",
                jpeg.len()
            );
        }
        // Cut inside the headers: no frame at all.
        let err = photo::compress(&jpeg[..200], &PhotoOptions::default()).unwrap_err();
        assert!(
            matches!(err, PhotoError::Truncated { .. }),
            "cut in header: {err}"
        );
    }
    let png = encode_png(&rgb, w, h, image::ExtendedColorType::Rgb8);
    for cut in [png.len() / 2, 30] {
        let err = photo::compress(&png[..cut], &PhotoOptions::default()).unwrap_err();
        assert!(
            matches!(err, PhotoError::Truncated { format: "PNG" }),
            "{cut}: {err}"
        );
    }
}

#[test]
fn corrupt_files_are_refused_as_corrupt() {
    let (w, h) = (320, 240);
    let rgb = scene(w, h, 8);
    let jpeg = encode_jpeg(&rgb, w, h, 90, false);
    // Garbage in the middle of the entropy-coded data.
    let mut damaged = jpeg.clone();
    let mut rng = Rng(42);
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 400] {
        *b = rng.next() as u8;
    }
    let err = photo::compress(&damaged, &PhotoOptions::default()).unwrap_err();
    assert!(matches!(err, PhotoError::Corrupt { .. }), "{err}");
    // A destroyed quantisation table marker.
    let mut no_dqt = jpeg.clone();
    let dqt = no_dqt.windows(2).position(|p| p == [0xFF, 0xDB]).unwrap();
    no_dqt[dqt + 1] = 0xEE;
    let err = photo::compress(&no_dqt, &PhotoOptions::default()).unwrap_err();
    assert!(matches!(err, PhotoError::Corrupt { .. }), "{err}");
    // Random bytes after a JPEG signature.
    let mut noise = vec![0xFF, 0xD8, 0xFF];
    noise.extend((0..5000).map(|_| rng.next() as u8));
    let err = photo::compress(&noise, &PhotoOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PhotoError::Corrupt { .. } | PhotoError::Truncated { .. }
        ),
        "{err}"
    );
    // A PNG whose image data fails its checksum.
    let mut png = encode_png(&rgb, w, h, image::ExtendedColorType::Rgb8);
    let idat = png.windows(4).position(|p| p == b"IDAT").unwrap();
    png[idat + 20] ^= 0xFF;
    let err = photo::compress(&png, &PhotoOptions::default()).unwrap_err();
    assert!(
        matches!(err, PhotoError::Corrupt { format: "PNG", .. }),
        "{err}"
    );
}

#[test]
fn unsupported_formats_are_named() {
    let cases: [(&[u8], &str); 5] = [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "GIF"),
        (b"RIFF\x10\0\0\0WEBPVP8 \0\0\0\0", "WebP"),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "HEIF/HEIC"),
        (b"%PDF-1.7\n", "PDF"),
        (b"just some text", "unknown"),
    ];
    for (bytes, name) in cases {
        match photo::compress(bytes, &PhotoOptions::default()) {
            Err(PhotoError::Unsupported { format }) => assert_eq!(format, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let err = photo::compress(b"GIF89a", &PhotoOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported photo format: GIF; use JPEG or PNG"
    );
}

#[test]
fn impossible_options_are_refused() {
    let jpeg = encode_jpeg(&scene(64, 48, 9), 64, 48, 80, false);
    for o in [
        PhotoOptions {
            edge_px_max: 0,
            ..PhotoOptions::default()
        },
        PhotoOptions {
            quality: 0,
            ..PhotoOptions::default()
        },
        PhotoOptions {
            quality: 101,
            ..PhotoOptions::default()
        },
    ] {
        assert!(matches!(
            photo::compress(&jpeg, &o),
            Err(PhotoError::BadOptions(_))
        ));
    }
}

// ---- metadata ----------------------------------------------------------------

#[test]
fn capture_time_and_gps_come_from_exif() {
    let jpeg = encode_jpeg(&scene(320, 240, 10), 320, 240, 85, false);
    // 栾川县, 2024-05-01 10:30:00 Beijing time = 02:30:00 UTC.
    let utc = 1_714_530_600_000;
    let spec = ExifSpec {
        orientation: Some(1),
        date_time_original: Some("2024:05:01 10:30:00"),
        offset_time_original: None,
        gps: Some(((33, 47, 2400), "N", (111, 36, 0), "E")),
    };
    let out = photo::compress(&with_exif(&jpeg, &spec), &PhotoOptions::default()).unwrap();
    assert_eq!(out.taken_at, Some(utc));
    let gps = out.gps.unwrap();
    assert!((gps.lat - (33.0 + 47.0 / 60.0 + 24.0 / 3600.0)).abs() < 1e-9);
    assert!((gps.lon - 111.6).abs() < 1e-9);
    // The metadata went into the record, not the file.
    assert!(!out.jpeg.windows(4).any(|w| w == b"Exif"));
    let r = out.photo_ref(Some("photos"), 5);
    assert_eq!((r.taken_at, r.gps), (Some(utc), Some(gps)));

    // An explicit offset wins over the China-time default.
    let spec = ExifSpec {
        date_time_original: Some("2024:05:01 04:30:00"),
        offset_time_original: Some("+02:00"),
        gps: Some(((33, 0, 0), "S", (70, 30, 0), "W")),
        ..Default::default()
    };
    let out = photo::compress(&with_exif(&jpeg, &spec), &PhotoOptions::default()).unwrap();
    assert_eq!(out.taken_at, Some(utc));
    let gps = out.gps.unwrap();
    assert!(gps.lat < 0.0 && (gps.lon + 70.5).abs() < 1e-9);

    // No EXIF: no time, no position.
    let out = photo::compress(&jpeg, &PhotoOptions::default()).unwrap();
    assert_eq!((out.taken_at, out.gps), (None, None));
    // Broken EXIF loses the metadata, not the photo.
    let mut broken = with_exif(&jpeg, &spec);
    broken[12..16].copy_from_slice(b"XXXX");
    let out = photo::compress(&broken, &PhotoOptions::default()).unwrap();
    assert_eq!(out.taken_at, None);
}

// ---- perceptual hash ---------------------------------------------------------

fn sorted_summary(mut v: Vec<u32>) -> String {
    v.sort_unstable();
    format!(
        "n={} min={} median={} max={}",
        v.len(),
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

/// The same scene through other qualities and sizes stays within a few
/// bits; different scenes are far apart. Prints both distributions
/// (`cargo test -- --nocapture`).
#[test]
fn perceptual_hash_is_robust_to_reencoding_and_separates_scenes() {
    let (w, h) = (1024, 768);
    let scenes = 12u64;
    let mut same = Vec::new();
    let mut firsts: Vec<Compressed> = Vec::new();
    for seed in 0..scenes {
        let original = encode_jpeg(&scene(w, h, 100 + seed), w, h, 92, false);
        let a = photo::compress(&original, &opts(1600)).unwrap();
        let variants = [
            photo::compress(
                &original,
                &PhotoOptions {
                    quality: 40,
                    ..opts(1600)
                },
            )
            .unwrap(),
            photo::compress(&original, &opts(400)).unwrap(),
            photo::compress(
                &a.jpeg,
                &PhotoOptions {
                    quality: 60,
                    ..opts(700)
                },
            )
            .unwrap(),
        ];
        for v in &variants {
            same.push(phash_distance(&a.phash, &v.phash).unwrap());
        }
        firsts.push(a);
    }
    let mut different = Vec::new();
    for i in 0..firsts.len() {
        for j in i + 1..firsts.len() {
            different.push(phash_distance(&firsts[i].phash, &firsts[j].phash).unwrap());
        }
    }
    eprintln!(
        "phash same scene re-encoded: {}",
        sorted_summary(same.clone())
    );
    eprintln!(
        "phash different scenes:      {}",
        sorted_summary(different.clone())
    );
    assert!(same.iter().all(|&d| d <= 6), "same: {same:?}");
    assert!(
        different.iter().all(|&d| d >= 14),
        "different: {different:?}"
    );
}

// ---- store -------------------------------------------------------------------

fn inspector(dir: &std::path::Path) -> fieldbook_core::store::Store {
    open(dir, "li.wei", Role::Inspector, "phone-1")
}

fn photo_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(fieldbook_core::store::PHOTO_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn adding_a_photo_writes_it_by_hash_once_and_records_it() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = s.start_inspection(&site).unwrap();
    let jpeg = encode_jpeg(&scene(2000, 1500, 11), 2000, 1500, 90, false);
    let jpeg = with_exif(
        &jpeg,
        &ExifSpec {
            orientation: Some(6),
            date_time_original: Some("2025:06:01 08:00:00"),
            ..Default::default()
        },
    );
    let r = s
        .add_photo(&id, PhotoInput::Bytes(&jpeg), Some("photos"))
        .unwrap();
    assert_eq!((r.width, r.height), (1200, 1600));
    assert_eq!(r.taken_at, Some(T0));
    let path = s.photo_path(&r.hash);
    let stored = std::fs::read(&path).unwrap();
    assert_eq!(photo::hash::content_hash(&stored), r.hash);
    assert_eq!(stored.len() as u64, r.bytes);

    // The same photo again, from a file this time: one file, one reference,
    // one pending upload.
    let file = d.path().join("camera.jpg");
    std::fs::write(&file, &jpeg).unwrap();
    let again = s
        .add_photo(&id, PhotoInput::Path(&file), Some("photos"))
        .unwrap();
    assert_eq!(again.hash, r.hash);
    assert_eq!(photo_files(d.path()), vec![format!("{}.jpg", r.hash)]);
    let v = s.inspection_view(&id).unwrap();
    assert_eq!(v.photos.len(), 1);
    assert_eq!(v.photos[0].hash, r.hash);
    assert_eq!(s.pending_counts().unwrap().photos, 1);

    // A damaged copy on disk is replaced by the next add of the photo.
    std::fs::write(&path, b"damaged").unwrap();
    s.add_photo(&id, PhotoInput::Bytes(&jpeg), None).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), stored);
    assert_eq!(photo_files(d.path()), vec![format!("{}.jpg", r.hash)]);
}

#[test]
fn a_refused_photo_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let id = s.start_inspection(&site).unwrap();
    let before = s.inspection_view(&id).unwrap().photos.len();
    let jpeg = encode_jpeg(&scene(320, 240, 12), 320, 240, 90, false);

    // Bad photos: a typed error through the store, no file.
    let err = s
        .add_photo(&id, PhotoInput::Bytes(&jpeg[..jpeg.len() / 2]), None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Photo(PhotoError::Truncated { .. })),
        "{err}"
    );
    let bomb = with_jpeg_dimensions(&jpeg, 30_000, 30_000);
    let err = s
        .add_photo(&id, PhotoInput::Bytes(&bomb), None)
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Photo(PhotoError::TooManyPixels { .. })
    ));
    let err = s
        .add_photo(&id, PhotoInput::Bytes(b"GIF89a"), None)
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Photo(PhotoError::Unsupported { .. })
    ));

    // A good photo the record refuses (unknown field): the file it wrote is
    // removed again.
    let err = s
        .add_photo(&id, PhotoInput::Bytes(&jpeg), Some("no_such_field"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(
        photo_files(d.path()).is_empty(),
        "{:?}",
        photo_files(d.path())
    );
    assert_eq!(s.inspection_view(&id).unwrap().photos.len(), before);
    assert_eq!(s.pending_counts().unwrap().photos, 0);
}

#[test]
fn findings_take_photo_files_as_evidence() {
    let d = tempfile::tempdir().unwrap();
    let mut s = inspector(d.path());
    let site = toilet_site(&mut s);
    let ins = s.start_inspection(&site).unwrap();
    let f = s
        .raise_finding(NewFinding {
            inspection_id: Some(ins),
            site_id: site,
            title: "化粪池渗漏".into(),
            description: "池体东侧有渗漏痕迹".into(),
            deadline: None,
        })
        .unwrap();
    let png = encode_png(
        &scene(800, 600, 13),
        800,
        600,
        image::ExtendedColorType::Rgb8,
    );
    let r = s
        .add_finding_photo_file(&f, PhotoInput::Bytes(&png))
        .unwrap();
    assert!(s.photo_path(&r.hash).exists());
    let v = s.finding_view(&f).unwrap();
    assert_eq!(v.photos.len(), 1);
    assert_eq!(v.photos[0].hash, r.hash);
    assert!(photo_files(d.path()).iter().all(|n| !n.ends_with(".tmp")));
}

/// A cheap stand-in for fuzzing: randomly damaged and cut JPEGs (baseline
/// and progressive) and PNGs must give a photo or a typed error, never a
/// panic or a crash in the C decoder. Seeded, so a failure reproduces.
#[test]
fn damaged_inputs_never_panic() {
    let (w, h) = (160, 120);
    let rgb = scene(w, h, 14);
    let originals = [
        encode_jpeg(&rgb, w, h, 85, false),
        encode_jpeg(&rgb, w, h, 85, true),
        encode_png(&rgb, w, h, image::ExtendedColorType::Rgb8),
    ];
    let mut rng = Rng(2024);
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for round in 0..300 {
        let mut b = originals[round % originals.len()].clone();
        match rng.below(3) {
            0 => b.truncate(rng.below(b.len() as u32) as usize),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(b.len() as u32) as usize;
                    b[i] = rng.next() as u8;
                }
            }
            _ => {
                let i = rng.below(b.len() as u32) as usize;
                let n = (rng.below(64) as usize).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
        let kind = match photo::compress(&b, &opts(100)) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_owned(),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    eprintln!("damaged inputs: {outcomes:?}");
    assert!(outcomes.keys().all(|k| {
        ["ok", "Truncated", "Corrupt", "Unsupported", "TooManyPixels"].contains(&k.as_str())
    }));
}
