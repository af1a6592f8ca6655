//! Photo pipeline benchmark against `vipsthumbnail`, on real photographs.
//!
//! Run through `bench/photo.sh`, which fetches the photos from Debian
//! packages and builds the binaries. For every JPEG in `--photos` (and a
//! lossless twin with the other scan mode, so baseline and progressive are
//! both measured on the same pictures), in one run:
//!
//! - our pipeline in-process (median of `--runs`), and as the whole command
//!   `fieldbook photo compress IN OUT`;
//! - `vipsthumbnail IN -s EDGE -o OUT[Q=QUALITY,strip]` as a whole command
//!   (libvips shrinks on load where it can), and its in-process time per
//!   photo estimated as (T(k photos in one call) − T(1)) / (k − 1);
//! - peak resident memory of both commands (`/usr/bin/time -f %M`);
//! - output bytes, and DSSIM (`dssim-core`) of both outputs against a
//!   Lanczos3 downscale of the fully decoded original;
//! - perceptual-hash distances: our output vs vips' output of the same photo
//!   (same picture, other resampler and encoder), and between different
//!   photos.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A tool: fail loudly.

use fieldbook_core::photo::{self, PhotoInput, PhotoOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use turbojpeg::{Decompressor, Image, PixelFormat, Transform, TransformOp, Transformer};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    photos: PathBuf,
    work: PathBuf,
    fieldbook: PathBuf,
    runs: usize,
    edge: u32,
    quality: u8,
    batch: usize,
}

fn args() -> Res<Args> {
    let mut a = Args {
        photos: PathBuf::new(),
        work: std::env::temp_dir().join("fieldbook-photo-bench"),
        fieldbook: PathBuf::from("target/release/fieldbook"),
        runs: 5,
        edge: 1600,
        quality: 80,
        batch: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--photos" => a.photos = val()?.into(),
            "--work" => a.work = val()?.into(),
            "--fieldbook" => a.fieldbook = val()?.into(),
            "--runs" => a.runs = val()?.parse()?,
            "--edge" => a.edge = val()?.parse()?,
            "--quality" => a.quality = val()?.parse()?,
            "--batch" => a.batch = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.photos.as_os_str().is_empty() {
        return Err("usage: photo_bench --photos DIR [--work DIR] [--fieldbook BIN] [--runs N] [--edge PX] [--quality Q] [--batch K]".into());
    }
    Ok(a)
}

struct Photo {
    path: PathBuf,
    label: String,
    progressive: bool,
    megapixels: f64,
}

struct Row {
    label: String,
    progressive: bool,
    megapixels: f64,
    scale: u32,
    ours_inproc_ms: f64,
    ours_cmd_ms: f64,
    vips_cmd_ms: f64,
    vips_inproc_ms: f64,
    ours_rss_mb: f64,
    vips_rss_mb: f64,
    ours_bytes: u64,
    vips_bytes: u64,
    ours_dssim: f64,
    vips_dssim: f64,
    /// DSSIM of the Lanczos reference itself through the JPEG encoder at
    /// the same quality: what JPEG alone costs.
    floor_dssim: f64,
    phash_vs_vips: u32,
    phash: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1000.0
}

fn run_quiet(cmd: &mut Command) -> Res<()> {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

/// Peak resident memory of a command, in MB, from GNU time.
fn peak_rss_mb(program: &Path, args: &[&std::ffi::OsStr], work: &Path) -> Res<f64> {
    let out = work.join("time.txt");
    run_quiet(
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&out)
            .arg(program)
            .args(args),
    )?;
    let kb: f64 = std::fs::read_to_string(&out)?.trim().parse()?;
    Ok(kb / 1024.0)
}

fn decode_full(jpeg: &[u8]) -> Res<(Vec<u8>, u32, u32)> {
    let mut d = Decompressor::new()?;
    let h = d.read_header(jpeg)?;
    let mut px = vec![0u8; h.width * h.height * 3];
    let img = Image {
        pixels: px.as_mut_slice(),
        width: h.width,
        pitch: h.width * 3,
        height: h.height,
        format: PixelFormat::RGB,
    };
    d.decompress(jpeg, img)?;
    Ok((px, h.width as u32, h.height as u32))
}

fn lanczos(rgb: &[u8], w: u32, h: u32, dw: u32, dh: u32) -> Res<Vec<u8>> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{PixelType, Resizer};
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3)?;
    let mut dst = Image::new(dw, dh, PixelType::U8x3);
    Resizer::new().resize(&src, &mut dst, None)?;
    Ok(dst.into_vec())
}

fn dssim(reference: &[u8], other: &[u8], w: u32, h: u32) -> f64 {
    let to_rgb = |v: &[u8]| -> Vec<rgb::RGB8> {
        v.chunks_exact(3)
            .map(|p| rgb::RGB8::new(p[0], p[1], p[2]))
            .collect()
    };
    let d = dssim_core::Dssim::new();
    let a = d
        .create_image_rgb(&to_rgb(reference), w as usize, h as usize)
        .expect("reference image");
    let b = d
        .create_image_rgb(&to_rgb(other), w as usize, h as usize)
        .expect("compared image");
    f64::from(d.compare(&a, b).0)
}

/// The upright Lanczos3 reference at `dw` × `dh` (upright dimensions).
fn reference(
    full: &(Vec<u8>, u32, u32),
    orientation: photo::Orientation,
    dw: u32,
    dh: u32,
) -> Res<Vec<u8>> {
    let (sw, sh) = if orientation.swaps_dimensions() {
        (dh, dw)
    } else {
        (dw, dh)
    };
    let small = lanczos(&full.0, full.1, full.2, sw, sh)?;
    let mut img = image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(sw, sh, small).ok_or("buffer size")?,
    );
    let o = image::metadata::Orientation::from_exif(orientation.exif_value() as u8)
        .ok_or("orientation")?;
    img.apply_orientation(o);
    Ok(img.into_rgb8().into_raw())
}

/// Every photo, plus a lossless twin in the other scan mode (EXIF kept).
fn collect(a: &Args) -> Res<Vec<Photo>> {
    let twins = a.work.join("twins");
    std::fs::create_dir_all(&twins)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&a.photos)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    let mut tx = Transformer::new()?;
    for p in names {
        let bytes = std::fs::read(&p)?;
        let Ok(h) = photo::decode::read_header(&bytes, &photo::Limits::default()) else {
            eprintln!("skipping {} (not a usable JPEG)", p.display());
            continue;
        };
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
        let mp = f64::from(h.width) * f64::from(h.height) / 1e6;
        out.push(Photo {
            path: p.clone(),
            label: stem.to_owned(),
            progressive: h.progressive,
            megapixels: mp,
        });
        let mut t = Transform::op(TransformOp::None);
        t.progressive = !h.progressive;
        t.optimize = true;
        let twin = tx.transform_to_vec(&t, &bytes)?;
        let twin_path = twins.join(format!("{stem}.twin.jpg"));
        std::fs::write(&twin_path, twin)?;
        out.push(Photo {
            path: twin_path,
            label: format!("{stem} (twin)"),
            progressive: !h.progressive,
            megapixels: mp,
        });
    }
    Ok(out)
}

fn measure(a: &Args, p: &Photo, options: &PhotoOptions) -> Res<Row> {
    let work = &a.work;
    let ours_out = work.join("ours.jpg");
    let vips_out = work.join("vips.jpg");
    let vips_spec = format!("{}[Q={},strip]", vips_out.display(), a.quality);
    let edge = a.edge.to_string();
    let quality = a.quality.to_string();

    // In-process: read + compress, as the store does.
    let mut compressed = None;
    let mut inproc = Vec::new();
    for _ in 0..a.runs {
        inproc.push(ms(|| {
            compressed = Some(photo::compress_input(PhotoInput::Path(&p.path), options).unwrap());
        }));
    }
    let ours = compressed.ok_or("no runs")?;

    // Whole commands, alternating so neither gets a warmer cache.
    let fb_args: Vec<&std::ffi::OsStr> = vec![
        "photo".as_ref(),
        "compress".as_ref(),
        p.path.as_os_str(),
        ours_out.as_os_str(),
        "--max-edge".as_ref(),
        edge.as_ref(),
        "--quality".as_ref(),
        quality.as_ref(),
    ];
    let vips_args: Vec<&std::ffi::OsStr> = vec![
        p.path.as_os_str(),
        "-s".as_ref(),
        edge.as_ref(),
        "-o".as_ref(),
        vips_spec.as_ref(),
    ];
    let vips = Path::new("vipsthumbnail");
    // One untimed warm-up each (page cache, dynamic linking).
    run_quiet(Command::new(&a.fieldbook).args(&fb_args))?;
    run_quiet(Command::new(vips).args(&vips_args))?;
    let (mut ours_cmd, mut vips_cmd) = (Vec::new(), Vec::new());
    for _ in 0..a.runs {
        let mut err = None;
        ours_cmd.push(ms(|| {
            err = run_quiet(Command::new(&a.fieldbook).args(&fb_args)).err();
        }));
        vips_cmd.push(ms(|| {
            if let Err(e) = run_quiet(Command::new(vips).args(&vips_args)) {
                err = Some(e);
            }
        }));
        if let Some(e) = err {
            return Err(e);
        }
    }

    // vips in-process: k hard links (distinct names defeat its cache) in one
    // call, minus one photo in one call.
    let batch_dir = work.join("batch");
    let _ = std::fs::remove_dir_all(&batch_dir);
    std::fs::create_dir_all(&batch_dir)?;
    let mut links = Vec::new();
    for i in 0..a.batch.max(2) {
        let l = batch_dir.join(format!("in{i}.jpg"));
        if std::fs::hard_link(&p.path, &l).is_err() {
            std::fs::copy(&p.path, &l)?;
        }
        links.push(l);
    }
    let batch_spec = format!("{}/%s_out.jpg[Q={},strip]", batch_dir.display(), a.quality);
    let vips_batch = |files: &[PathBuf]| -> Res<f64> {
        let mut err = None;
        let t = ms(|| {
            err = run_quiet(
                Command::new(vips)
                    .args(files)
                    .args(["-s", &edge, "-o", &batch_spec]),
            )
            .err();
        });
        err.map_or(Ok(t), Err)
    };
    let mut per_photo = Vec::new();
    for _ in 0..a.runs.div_ceil(2) {
        let one = vips_batch(&links[..1])?;
        let many = vips_batch(&links)?;
        per_photo.push((many - one) / (links.len() - 1) as f64);
    }

    let ours_rss = peak_rss_mb(&a.fieldbook, &fb_args, work)?;
    let vips_rss = peak_rss_mb(vips, &vips_args, work)?;

    // Quality against a Lanczos3 downscale of the full original.
    let original = std::fs::read(&p.path)?;
    let full = decode_full(&original)?;
    let ours_px = decode_full(&std::fs::read(&ours_out)?)?;
    let vips_px = decode_full(&std::fs::read(&vips_out)?)?;
    let o = ours.source.orientation;
    let ref_ours = reference(&full, o, ours_px.1, ours_px.2)?;
    let ours_dssim = dssim(&ref_ours, &ours_px.0, ours_px.1, ours_px.2);
    let floor_dssim = {
        let mut c = turbojpeg::Compressor::new()?;
        c.set_quality(i32::from(a.quality))?;
        c.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
        let (w, h) = (ours_px.1 as usize, ours_px.2 as usize);
        let jpeg = c.compress_to_vec(Image {
            pixels: ref_ours.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        })?;
        let back = decode_full(&jpeg)?;
        dssim(&ref_ours, &back.0, ours_px.1, ours_px.2)
    };
    let ref_vips = if (vips_px.1, vips_px.2) == (ours_px.1, ours_px.2) {
        ref_ours
    } else {
        reference(&full, o, vips_px.1, vips_px.2)?
    };
    let vips_dssim = dssim(&ref_vips, &vips_px.0, vips_px.1, vips_px.2);
    let vips_phash = photo::phash_hex(photo::hash::perceptual_hash(
        &vips_px.0, vips_px.1, vips_px.2,
    ));

    Ok(Row {
        label: p.label.clone(),
        progressive: p.progressive,
        megapixels: p.megapixels,
        scale: ours.source.scale_denom,
        ours_inproc_ms: median(inproc),
        ours_cmd_ms: median(ours_cmd),
        vips_cmd_ms: median(vips_cmd),
        vips_inproc_ms: median(per_photo),
        ours_rss_mb: ours_rss,
        vips_rss_mb: vips_rss,
        ours_bytes: std::fs::metadata(&ours_out)?.len(),
        vips_bytes: std::fs::metadata(&vips_out)?.len(),
        ours_dssim,
        vips_dssim,
        floor_dssim,
        phash_vs_vips: photo::phash_distance(&ours.phash, &vips_phash).unwrap_or(64),
        phash: ours.phash,
    })
}

fn summary(name: &str, rows: &[&Row]) {
    if rows.is_empty() {
        println!("\n{name}: no photos");
        return;
    }
    let col = |f: &dyn Fn(&Row) -> f64| -> Vec<f64> { rows.iter().map(|r| f(r)).collect() };
    let max = |v: Vec<f64>| v.into_iter().fold(f64::NAN, f64::max);
    let ratio_cmd = col(&|r| r.ours_cmd_ms / r.vips_cmd_ms);
    let ratio_in = col(&|r| r.ours_inproc_ms / r.vips_inproc_ms);
    println!("\n{name}: {} photos", rows.len());
    println!(
        "  time per photo, median   ours in-process {:7.1} ms | ours command {:7.1} ms | vipsthumbnail command {:7.1} ms | vips in-process (est.) {:7.1} ms",
        median(col(&|r| r.ours_inproc_ms)),
        median(col(&|r| r.ours_cmd_ms)),
        median(col(&|r| r.vips_cmd_ms)),
        median(col(&|r| r.vips_inproc_ms)),
    );
    println!(
        "  ratio ours/vips, median  command {:.2}× (max {:.2}×) | in-process {:.2}× (max {:.2}×)",
        median(ratio_cmd.clone()),
        max(ratio_cmd),
        median(ratio_in.clone()),
        max(ratio_in),
    );
    println!(
        "  peak memory (RSS)        ours median {:.1} MB, max {:.1} MB | vips median {:.1} MB, max {:.1} MB",
        median(col(&|r| r.ours_rss_mb)),
        max(col(&|r| r.ours_rss_mb)),
        median(col(&|r| r.vips_rss_mb)),
        max(col(&|r| r.vips_rss_mb)),
    );
    println!(
        "  output bytes             ours median {:.0} KB, max {:.0} KB | vips median {:.0} KB, max {:.0} KB",
        median(col(&|r| r.ours_bytes as f64 / 1000.0)),
        max(col(&|r| r.ours_bytes as f64 / 1000.0)),
        median(col(&|r| r.vips_bytes as f64 / 1000.0)),
        max(col(&|r| r.vips_bytes as f64 / 1000.0)),
    );
    println!(
        "  DSSIM vs Lanczos3        ours median {:.5}, max {:.5} | vips median {:.5}, max {:.5} | JPEG-only floor median {:.5}, max {:.5}",
        median(col(&|r| r.ours_dssim)),
        max(col(&|r| r.ours_dssim)),
        median(col(&|r| r.vips_dssim)),
        max(col(&|r| r.vips_dssim)),
        median(col(&|r| r.floor_dssim)),
        max(col(&|r| r.floor_dssim)),
    );
    let within = rows
        .iter()
        .filter(|r| r.ours_bytes <= 350_000 && r.ours_dssim <= 0.0015)
        .count();
    println!(
        "  goals ≤ 350 KB and DSSIM ≤ 0.0015: {within} of {} photos (ours)",
        rows.len()
    );
}

fn main() -> Res<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.work)?;
    let options = PhotoOptions {
        edge_px_max: a.edge,
        quality: a.quality,
        ..PhotoOptions::default()
    };
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load().trim());
    let photos = collect(&a)?;
    println!(
        "{} photos (with lossless twins), edge {} px, quality {}, {} runs each; times are medians",
        photos.len(),
        a.edge,
        a.quality,
        a.runs
    );
    println!(
        "{:<44} {:>4} {:>5} {:>3} | {:>7} {:>7} {:>7} {:>7} {:>5} | {:>6} {:>6} | {:>6} {:>6} | {:>7} {:>7} {:>7} | {:>3}",
        "photo",
        "scan",
        "MP",
        "1/s",
        "ours ms",
        "cmd ms",
        "vips ms",
        "vips in",
        "ratio",
        "oursMB",
        "vipsMB",
        "oursKB",
        "vipsKB",
        "dssim",
        "vips",
        "q floor",
        "Δph"
    );
    let mut rows = Vec::new();
    for p in &photos {
        let r = match measure(&a, p, &options) {
            Ok(r) => r,
            Err(e) => {
                println!("{:<44} error: {e}", p.label);
                continue;
            }
        };
        println!(
            "{:<44} {:>4} {:>5.1} {:>3} | {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>5.2} | {:>6.1} {:>6.1} | {:>6.0} {:>6.0} | {:>7.5} {:>7.5} {:>7.5} | {:>3}",
            r.label.chars().take(44).collect::<String>(),
            if r.progressive { "prog" } else { "base" },
            r.megapixels,
            r.scale,
            r.ours_inproc_ms,
            r.ours_cmd_ms,
            r.vips_cmd_ms,
            r.vips_inproc_ms,
            r.ours_cmd_ms / r.vips_cmd_ms,
            r.ours_rss_mb,
            r.vips_rss_mb,
            r.ours_bytes as f64 / 1000.0,
            r.vips_bytes as f64 / 1000.0,
            r.ours_dssim,
            r.vips_dssim,
            r.floor_dssim,
            r.phash_vs_vips,
        );
        rows.push(r);
    }
    let base: Vec<&Row> = rows.iter().filter(|r| !r.progressive).collect();
    let prog: Vec<&Row> = rows.iter().filter(|r| r.progressive).collect();
    let twelve: Vec<&Row> = base
        .iter()
        .copied()
        .filter(|r| (10.0..=14.0).contains(&r.megapixels))
        .collect();
    summary("Baseline JPEGs", &base);
    summary(
        "Baseline JPEGs of 10–14 MP (the 12 MP camera case)",
        &twelve,
    );
    summary("Progressive JPEGs", &prog);

    // Perceptual hash: same picture through another resampler and encoder,
    // and different pictures (one output per original, not its twin, which
    // is pixel-identical).
    let same: Vec<f64> = rows.iter().map(|r| f64::from(r.phash_vs_vips)).collect();
    let originals: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.label.ends_with("(twin)"))
        .collect();
    let mut different = Vec::new();
    for i in 0..originals.len() {
        for j in i + 1..originals.len() {
            different.push(f64::from(
                photo::phash_distance(&originals[i].phash, &originals[j].phash).unwrap_or(64),
            ));
        }
    }
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::NAN, f64::min),
            median(v.to_vec()),
            v.iter().copied().fold(f64::NAN, f64::max),
        )
    };
    let (a1, b1, c1) = range(&same);
    let (a2, b2, c2) = range(&different);
    println!("\nload average at end: {}", load().trim());
    println!("\nPerceptual hash (Hamming distance of 64 bits)");
    println!(
        "  same photo, ours vs vipsthumbnail: min {a1} median {b1} max {c1} (n={})",
        same.len()
    );
    println!(
        "  different photos:                  min {a2} median {b2} max {c2} (n={})",
        different.len()
    );
    Ok(())
}
