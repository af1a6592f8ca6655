//! Sites as a GeoJSON FeatureCollection (RFC 7946).

use super::{ExportError, tick};
use fieldbook_core::model::SiteKind;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

/// One site on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFeature {
    pub id: String,
    pub kind: SiteKind,
    pub name: String,
    pub village_code: String,
    /// WGS 84 degrees. A site without both, or with a value that is not a
    /// finite coordinate in range, is written with `"geometry": null`.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// `approved`, `submitted`, `returned`, `draft` or `not_inspected`.
    pub latest_status: String,
    /// China date (`YYYY-MM-DD`) of the latest approval.
    pub latest_approved_at: Option<String>,
    /// Indicator or rule id to whether it holds for this site.
    pub outcomes: BTreeMap<String, bool>,
}

/// Property names every feature carries; an outcome with one of these ids
/// is written as `outcome.<id>` so no key appears twice in an object.
const FIXED: [&str; 6] = [
    "id",
    "kind",
    "name",
    "village_code",
    "latest_status",
    "latest_approved_at",
];

impl SiteFeature {
    /// `[lon, lat]` (GeoJSON's order) when both are usable. JSON has no NaN
    /// and GIS tools reject out-of-range points, so those become no point.
    fn position(&self) -> Option<[f64; 2]> {
        let (lat, lon) = (self.lat?, self.lon?);
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some([lon, lat])
    }
}

#[derive(Serialize)]
struct Point {
    #[serde(rename = "type")]
    ty: &'static str,
    coordinates: [f64; 2],
}

struct Properties<'a>(&'a SiteFeature);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(Some(FIXED.len() + f.outcomes.len()))?;
        m.serialize_entry("id", &f.id)?;
        m.serialize_entry("kind", f.kind.key())?;
        m.serialize_entry("name", &f.name)?;
        m.serialize_entry("village_code", &f.village_code)?;
        m.serialize_entry("latest_status", &f.latest_status)?;
        m.serialize_entry("latest_approved_at", &f.latest_approved_at)?;
        // Flat rather than nested: GIS tools show flat properties as
        // attribute-table columns, nested objects only as opaque text.
        for (k, v) in &f.outcomes {
            if FIXED.contains(&k.as_str()) {
                m.serialize_entry(&format!("outcome.{k}"), v)?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Feature<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    id: &'a str,
    geometry: Option<Point>,
    properties: Properties<'a>,
}

/// Writes sites as a GeoJSON FeatureCollection, one Point feature per site,
/// one feature per line. Each feature is serialized and written on its own,
/// so memory does not grow with the number of sites. Returns the number of
/// features.
pub fn write_sites_geojson(
    features: impl Iterator<Item = SiteFeature>,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let mut w = BufWriter::new(out);
    w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut n = 0u64;
    for site in features {
        w.write_all(if n == 0 { b"\n" } else { b",\n" })?;
        let feature = Feature {
            ty: "Feature",
            id: &site.id,
            geometry: site.position().map(|coordinates| Point {
                ty: "Point",
                coordinates,
            }),
            properties: Properties(&site),
        };
        serde_json::to_writer(&mut w, &feature)?;
        n += 1;
        tick(n, progress);
    }
    w.write_all(b"\n]}\n")?;
    w.flush()?;
    progress(n);
    Ok(n)
}
