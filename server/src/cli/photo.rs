//! `fieldbook photo compress IN OUT`: the phone's photo pipeline as a
//! command, for checking a photo by hand, for scripts, and for timing the
//! pipeline as a whole command against `vipsthumbnail` (`bench/photo.sh`).
//!
//! Prints one JSON line with what the record would hold, keys in this order:
//! `{"width":…,"height":…,"bytes":…,"blake3":"…","phash":"…","taken_at":…,"gps":…}`
//! (`taken_at` in Unix milliseconds or `null`, `gps` as `{"lat":…,"lon":…}`
//! or `null`).

use anyhow::Context;
use clap::Subcommand;
use fieldbook_core::photo::{
    self, Compressed, PHOTO_EDGE_PX_DEFAULT, PHOTO_QUALITY_DEFAULT, PhotoOptions,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Compress a JPEG or PNG as the phone does and print its record.
    Compress(CompressArgs),
}

#[derive(clap::Args)]
struct CompressArgs {
    /// The photo to compress (JPEG or PNG).
    input: PathBuf,
    /// Where to write the compressed JPEG.
    output: PathBuf,
    /// Long edge of the output at most, in pixels.
    #[arg(long, default_value_t = PHOTO_EDGE_PX_DEFAULT)]
    max_edge: u32,
    /// JPEG quality, 1–100.
    #[arg(long, default_value_t = PHOTO_QUALITY_DEFAULT)]
    quality: u8,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Compress(a) => compress(a),
    }
}

fn compress(a: CompressArgs) -> anyhow::Result<()> {
    let options = PhotoOptions {
        edge_px_max: a.max_edge,
        quality: a.quality,
        ..PhotoOptions::default()
    };
    let out = photo::compress_input(photo::PhotoInput::Path(&a.input), &options)
        .with_context(|| format!("compressing {}", a.input.display()))?;
    write_replacing(&a.output, &out.jpeg)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!("{}", json_line(&out));
    Ok(())
}

/// Writes beside the target and renames, so OUT is never half-written.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The record as one JSON object, keys in the documented order.
fn json_line(c: &Compressed) -> String {
    let gps = c
        .gps
        .map_or(Value::Null, |g| json!({ "lat": g.lat, "lon": g.lon }));
    format!(
        "{{\"width\":{},\"height\":{},\"bytes\":{},\"blake3\":{},\"phash\":{},\"taken_at\":{},\"gps\":{}}}",
        c.width,
        c.height,
        c.bytes(),
        Value::from(c.hash.as_str()),
        Value::from(c.phash.as_str()),
        c.taken_at.map_or(Value::Null, Value::from),
        gps,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldbook_core::model::GeoPoint;
    use fieldbook_core::photo::{Format, Header, Orientation, Source};

    #[test]
    fn json_line_has_the_documented_keys_in_order() {
        let mut c = Compressed {
            jpeg: vec![0; 1234],
            hash: "ab".repeat(32),
            width: 1600,
            height: 1200,
            phash: "0123456789abcdef".into(),
            taken_at: Some(1_714_530_600_000),
            gps: Some(GeoPoint {
                lat: 33.79,
                lon: 111.6,
            }),
            source: Source {
                header: Header {
                    format: Format::Jpeg,
                    width: 4000,
                    height: 3000,
                    progressive: false,
                },
                orientation: Orientation::Normal,
                scale_denom: 2,
            },
        };
        assert_eq!(
            json_line(&c),
            format!(
                r#"{{"width":1600,"height":1200,"bytes":1234,"blake3":"{}","phash":"0123456789abcdef","taken_at":1714530600000,"gps":{{"lat":33.79,"lon":111.6}}}}"#,
                "ab".repeat(32)
            )
        );
        c.taken_at = None;
        c.gps = None;
        assert!(json_line(&c).ends_with(r#""taken_at":null,"gps":null}"#));
        let v: Value = serde_json::from_str(&json_line(&c)).unwrap();
        assert_eq!(v["bytes"], 1234);
    }
}
