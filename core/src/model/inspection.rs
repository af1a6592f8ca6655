//! Inspections and findings as the model sees them.

use crate::model::site::{GeoPoint, SiteKind};
use crate::model::value::Value;
use crate::model::workflow::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A GPS fix as the phone reported it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy (one standard deviation) in metres.
    pub accuracy_m: f64,
    /// Fix time, Unix milliseconds.
    pub at: i64,
    /// The platform flagged the fix as coming from a mock-location provider.
    pub mock: bool,
}

impl GpsFix {
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }

    /// Coordinates on the globe and a finite, non-negative accuracy.
    pub fn is_valid(&self) -> bool {
        self.point().is_valid() && self.accuracy_m.is_finite() && self.accuracy_m >= 0.0
    }
}

/// A reference to a compressed photo. The file lives beside the database,
/// named by `hash`; documents only hold this reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// BLAKE3 of the compressed JPEG, lowercase hex: the photo's identity.
    pub hash: String,
    /// The template field this photo documents, if any.
    pub field: Option<String>,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    /// 64-bit perceptual hash, 16 lowercase hex digits.
    pub phash: String,
    /// Capture time from the original's EXIF, Unix milliseconds.
    pub taken_at: Option<i64>,
    /// Capture position from the original's EXIF.
    pub gps: Option<GeoPoint>,
    /// When it was attached, Unix milliseconds.
    pub added_at: i64,
}

impl PhotoRef {
    /// Whether the hashes have the documented shape.
    pub fn is_well_formed(&self) -> bool {
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        hex(&self.hash, 64) && hex(&self.phash, 16) && self.gps.is_none_or(|g| g.is_valid())
    }
}

/// A free note written by the inspector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: String,
    pub text: String,
    pub author: String,
    pub at: i64,
}

/// One visit to one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: String,
    pub site_id: String,
    pub site_kind: SiteKind,
    /// Copied from the site when the inspection starts, so lists and scope
    /// checks never need the site document.
    pub village_code: String,
    pub template_version: u32,
    pub inspector: String,
    pub device: String,
    pub started_at: i64,
    pub location: Option<GpsFix>,
    /// The winning value of each answered field.
    pub answers: BTreeMap<String, Value>,
    /// Fields edited concurrently on several replicas: every value, the
    /// winning one included. Empty for a record written on one replica.
    pub conflicts: BTreeMap<String, Vec<Value>>,
    /// Sorted by hash.
    pub photos: Vec<PhotoRef>,
    pub notes: Vec<Note>,
    pub events: Vec<Event>,
}

impl Inspection {
    /// Photos tagged per field, for template validation.
    pub fn photo_counts(&self) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for p in &self.photos {
            if let Some(f) = &p.field {
                *m.entry(f.clone()).or_insert(0) += 1;
            }
        }
        m
    }
}

/// A problem found on an inspection (问题), followed to closure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    /// The inspection that raised it, if any.
    pub inspection_id: Option<String>,
    pub site_id: String,
    pub site_kind: SiteKind,
    pub village_code: String,
    pub title: String,
    pub description: String,
    pub raised_by: String,
    pub raised_at: i64,
    /// Evidence photos (of the problem and of the rectification), by hash.
    pub photos: Vec<PhotoRef>,
    pub events: Vec<Event>,
}
