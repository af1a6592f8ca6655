//! Site registry import from CSV.
//!
//! Columns, in any order, header required: `kind`, `name`, `village_code`,
//! optional `id` (a UUID; when absent the id is derived from kind, village
//! and name, so importing the same file twice adds nothing), optional `lat`
//! and `lon` (WGS-84 degrees), and any number of attribute columns named
//! after the kind's attributes (`households_served`, `supervision_level`, …;
//! see `SiteKind::attributes`). Empty cells are absent values. A file with
//! any bad row is refused whole, with every problem listed by line.

use fieldbook_core::model::site::AttrType;
use fieldbook_core::model::{GeoPoint, Site, SiteKind, SiteSource, Value, area};
use std::collections::BTreeMap;

/// Most rows in one import.
pub const IMPORT_ROWS_MAX: usize = 2_000_000;
/// Most problems reported for one file.
const PROBLEMS_MAX: usize = 50;

/// Parses a registry CSV into sites, or every problem found.
pub fn parse(input: &[u8], created_by: &str, now: i64) -> Result<Vec<Site>, Vec<String>> {
    let input = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => return Err(vec![format!("line 1: {e}")]),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(c_kind), Some(c_name), Some(c_village)) =
        (col("kind"), col("name"), col("village_code"))
    else {
        return Err(vec![
            "line 1: the header must name the columns kind, name and village_code".into(),
        ]);
    };
    let (c_id, c_lat, c_lon) = (col("id"), col("lat"), col("lon"));
    let fixed = ["id", "kind", "name", "village_code", "lat", "lon"];
    let mut problems = Vec::new();
    let mut sites = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        if problems.len() >= PROBLEMS_MAX {
            problems.push("… more problems not listed".into());
            break;
        }
        if n >= IMPORT_ROWS_MAX {
            problems.push(format!("more than {IMPORT_ROWS_MAX} rows"));
            break;
        }
        let line = n + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let mut bad = |m: String| problems.push(format!("line {line}: {m}"));
        let Some(kind) = SiteKind::from_key(cell(c_kind)) else {
            bad(format!("unknown site kind {:?}", cell(c_kind)));
            continue;
        };
        let name = cell(c_name);
        let village = cell(c_village);
        if name.is_empty() {
            bad("name is empty".into());
            continue;
        }
        if !(area::is_code(village) && village.len() == 12) {
            bad(format!("{village:?} is not a 12-digit village code"));
        } else if !fieldbook_core::model::Divisions::luoyang().is_village(village) {
            bad(format!("{village} is not a village of the division list"));
            continue;
        }
        let location = match (
            c_lat.map(cell).filter(|s| !s.is_empty()),
            c_lon.map(cell).filter(|s| !s.is_empty()),
        ) {
            (None, None) => None,
            (Some(la), Some(lo)) => match (la.parse::<f64>(), lo.parse::<f64>()) {
                (Ok(lat), Ok(lon)) if (GeoPoint { lat, lon }).is_valid() => {
                    Some(GeoPoint { lat, lon })
                }
                _ => {
                    bad(format!("lat/lon {la},{lo} are not coordinates"));
                    continue;
                }
            },
            _ => {
                bad("give both lat and lon, or neither".into());
                continue;
            }
        };
        let mut attributes = BTreeMap::new();
        let mut row_ok = true;
        for (i, h) in headers.iter().enumerate() {
            if fixed.contains(&h.as_str()) || cell(i).is_empty() {
                continue;
            }
            let Some(spec) = kind.attributes().iter().find(|a| a.key == h) else {
                bad(format!("{h} is not an attribute of a {}", kind.key()));
                row_ok = false;
                continue;
            };
            let raw = cell(i);
            let v = match spec.ty {
                AttrType::Text => Some(Value::Text(raw.to_owned())),
                AttrType::Flag => match raw {
                    "1" | "true" | "yes" | "是" => Some(Value::Bool(true)),
                    "0" | "false" | "no" | "否" => Some(Value::Bool(false)),
                    _ => None,
                },
                AttrType::Count | AttrType::Number | AttrType::Level => {
                    raw.parse::<f64>().ok().map(Value::Number)
                }
            };
            match v.filter(|v| spec.accepts(v)) {
                Some(v) => {
                    attributes.insert(h.clone(), v);
                }
                None => {
                    bad(format!("{h} cannot be {raw:?}"));
                    row_ok = false;
                }
            }
        }
        let id = match c_id.map(cell).filter(|s| !s.is_empty()) {
            Some(id) => match uuid::Uuid::parse_str(id) {
                Ok(u) => u.to_string(),
                Err(_) => {
                    bad(format!("id {id:?} is not a UUID"));
                    continue;
                }
            },
            None => derived_id(kind, village, name),
        };
        if row_ok {
            sites.push(Site {
                id,
                kind,
                name: name.to_owned(),
                village_code: village.to_owned(),
                location,
                attributes,
                source: SiteSource::Registry,
                created_by: created_by.to_owned(),
                created_at: now,
            });
        }
    }
    if problems.is_empty() {
        Ok(sites)
    } else {
        Err(problems)
    }
}

/// A stable id for a registry row without one.
pub fn derived_id(kind: SiteKind, village: &str, name: &str) -> String {
    let h = blake3::hash(format!("fieldbook-site\0{}\0{village}\0{name}", kind.key()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    uuid::Uuid::new_v8(b).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_registry() {
        let csv = "\u{feff}kind,name,village_code,lat,lon,supervision_level,on_closure_list\n\
                   tailings_pond,铁炉沟尾矿库,410324101201,33.8,111.6,2,否\n\
                   household_toilet,\"张, 家户厕\",410324101202,,,,\n";
        let sites = parse(csv.as_bytes(), "admin", 1).unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(
            sites[0].attributes.get("supervision_level"),
            Some(&Value::Number(2.0))
        );
        assert_eq!(
            sites[0].attributes.get("on_closure_list"),
            Some(&Value::Bool(false))
        );
        assert_eq!(sites[1].name, "张, 家户厕");
        assert_eq!(sites[1].location, None);
        // Stable ids: the same file gives the same ids.
        assert_eq!(
            parse(csv.as_bytes(), "admin", 2).unwrap()[0].id,
            sites[0].id
        );
    }

    #[test]
    fn every_bad_row_is_listed() {
        let csv = "kind,name,village_code,lat,lon,supervision_level\n\
                   volcano,x,410324101201,,,\n\
                   tailings_pond,,410324101201,,,\n\
                   tailings_pond,x,4103,,,\n\
                   tailings_pond,x,410324101201,95,1,\n\
                   tailings_pond,x,410324101201,,,7\n\
                   garbage_point,x,410324101201,,,1\n";
        let problems = parse(csv.as_bytes(), "admin", 1).unwrap_err();
        let want = [
            "line 2: unknown site kind",
            "line 3: name is empty",
            "line 4: \"4103\" is not",
            "line 5: lat/lon",
            "line 6: supervision_level cannot be",
            "line 7: supervision_level is not an attribute",
        ];
        assert_eq!(problems.len(), want.len(), "{problems:?}");
        for (p, w) in problems.iter().zip(want) {
            assert!(p.starts_with(w), "{p:?} should start with {w:?}");
        }
        assert!(
            parse(b"name,kind\nx,y\n", "a", 1).unwrap_err()[0]
                .contains("kind, name and village_code")
        );
    }
}
