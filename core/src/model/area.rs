//! Administrative areas: the national 12-digit statistical division codes.
//!
//! A code is cut at each level: province 2, city 4, county 6, township 9,
//! village 12 digits. Users are scoped to code prefixes; sites live in
//! villages. Classification follows the NBS number ranges (see
//! `docs/domain.md`): township-level 001–099 sub-district, 100–199
//! town, 200–399 township, 400–599 township-like; village-level 001–199
//! residents' committee, 200–399 village committee, 400–499
//! residents'-committee-like, 500–599 village-committee-like.
//!
//! The Luoyang 2023 division list ships inside the crate as the default data
//! set; [`Divisions::from_csv`] loads any other file of the same shape.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// The level of a division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Province,
    City,
    County,
    Township,
    Village,
}

impl Level {
    /// Digits of a code at this level.
    pub fn code_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    /// The level whose codes have `len` digits.
    pub fn from_code_len(len: usize) -> Option<Level> {
        match len {
            2 => Some(Level::Province),
            4 => Some(Level::City),
            6 => Some(Level::County),
            9 => Some(Level::Township),
            12 => Some(Level::Village),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }

    pub fn from_key(s: &str) -> Option<Level> {
        [
            Level::Province,
            Level::City,
            Level::County,
            Level::Township,
            Level::Village,
        ]
        .into_iter()
        .find(|l| l.key() == s)
    }
}

/// Kind of a township-level unit, from digits 7–9 of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TownshipKind {
    /// 街道, 001–099.
    Subdistrict,
    /// 镇, 100–199.
    Town,
    /// 乡, 200–399.
    Township,
    /// 类似乡级单位, 400–599.
    TownshipLike,
    /// Outside every published range.
    Other,
}

/// Kind of a village-level unit, from digits 10–12 of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VillageKind {
    /// 居委会, 001–199 (urban).
    ResidentsCommittee,
    /// 村委会, 200–399 (rural).
    VillageCommittee,
    /// 类似居委会, 400–499 (urban).
    ResidentsLike,
    /// 类似村委会, 500–599 (rural).
    VillageLike,
    /// Outside every published range.
    Other,
}

fn range_number(code: &str, from: usize) -> Option<u32> {
    code.get(from..from + 3)?.parse().ok()
}

/// The township-level kind of a 9- or 12-digit code.
pub fn township_kind(code: &str) -> Option<TownshipKind> {
    if code.len() < 9 || !is_code(code) {
        return None;
    }
    Some(match range_number(code, 6)? {
        1..=99 => TownshipKind::Subdistrict,
        100..=199 => TownshipKind::Town,
        200..=399 => TownshipKind::Township,
        400..=599 => TownshipKind::TownshipLike,
        _ => TownshipKind::Other,
    })
}

/// The village-level kind of a 12-digit code.
pub fn village_kind(code: &str) -> Option<VillageKind> {
    if code.len() != 12 || !is_code(code) {
        return None;
    }
    Some(match range_number(code, 9)? {
        1..=199 => VillageKind::ResidentsCommittee,
        200..=399 => VillageKind::VillageCommittee,
        400..=499 => VillageKind::ResidentsLike,
        500..=599 => VillageKind::VillageLike,
        _ => VillageKind::Other,
    })
}

/// Whether a 12-digit village code is rural: a village committee or a
/// village-committee-like unit. Rural coverage rates count only these.
pub fn is_rural_village(code: &str) -> bool {
    matches!(
        village_kind(code),
        Some(VillageKind::VillageCommittee | VillageKind::VillageLike)
    )
}

/// Whether a township-level code has a township government seat (乡镇政府驻地):
/// towns and townships, 100–399.
pub fn has_township_seat(code: &str) -> bool {
    code.len() == 9
        && matches!(
            township_kind(code),
            Some(TownshipKind::Town | TownshipKind::Township)
        )
}

/// Whether `s` is a division code at some level: ASCII digits of a known width.
pub fn is_code(s: &str) -> bool {
    Level::from_code_len(s.len()).is_some() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `code` lies inside the area `prefix` (a code of any level).
pub fn within(code: &str, prefix: &str) -> bool {
    code.starts_with(prefix)
}

/// The exclusive upper bound of the codes that start with `prefix`, for SQL
/// range scans (`code >= prefix AND code < upper`). `:` sorts right after `9`.
pub fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}:")
}

/// The code of the ancestor at `level`, if `code` is at or below it.
pub fn ancestor(code: &str, level: Level) -> Option<&str> {
    code.get(..level.code_len())
}

/// One division.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    pub code: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
}

/// A problem in a divisions file.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The CSV could not be read (bad quoting, wrong column count, bad UTF-8).
    #[error("divisions file, line {line}: {source}")]
    Csv {
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// The header is not `code,name,level,parent_code`.
    #[error("divisions file: expected header code,name,level,parent_code, found {found}")]
    Header { found: String },
    /// A row breaks a rule of the format.
    #[error("divisions file, line {line}: {reason}")]
    Row { line: u64, reason: String },
}

/// The division hierarchy, indexed by code.
#[derive(Debug, Clone, Default)]
pub struct Divisions {
    by_code: HashMap<String, Area>,
    children: HashMap<String, Vec<String>>,
    /// Codes in sorted order, for prefix scans.
    sorted: BTreeMap<String, ()>,
}

const LUOYANG_CSV: &str = include_str!("../../data/luoyang_divisions.csv");

impl Divisions {
    /// Luoyang's 2023 divisions, shipped with the crate.
    pub fn luoyang() -> &'static Divisions {
        static CELL: OnceLock<Divisions> = OnceLock::new();
        CELL.get_or_init(|| {
            #[allow(clippy::expect_used)] // The embedded file is checked by a unit test.
            Divisions::from_csv(LUOYANG_CSV.as_bytes()).expect("embedded Luoyang divisions parse")
        })
    }

    /// Loads a CSV with columns `code,name,level,parent_code`. Every problem is
    /// an error naming the line; a parent must appear before its children.
    pub fn from_csv(input: impl std::io::Read) -> Result<Divisions, AreaError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|source| AreaError::Csv { line: 1, source })?
            .clone();
        let expected = ["code", "name", "level", "parent_code"];
        if headers.len() != 4
            || headers
                .iter()
                .zip(expected)
                .any(|(h, e)| h.trim_start_matches('\u{feff}') != e)
        {
            return Err(AreaError::Header {
                found: headers.iter().collect::<Vec<_>>().join(","),
            });
        }
        let mut d = Divisions::default();
        for rec in rdr.records() {
            let rec = rec.map_err(|source| AreaError::Csv {
                line: source.position().map_or(0, |p| p.line()),
                source,
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let bad = |reason: String| AreaError::Row { line, reason };
            let (code, name, level, parent) = (&rec[0], &rec[1], &rec[2], &rec[3]);
            let level =
                Level::from_key(level).ok_or_else(|| bad(format!("unknown level {level:?}")))?;
            if !is_code(code) || code.len() != level.code_len() {
                return Err(bad(format!(
                    "code {code:?} is not a {}-digit {} code",
                    level.code_len(),
                    level.key()
                )));
            }
            if name.trim().is_empty() {
                return Err(bad(format!("code {code} has no name")));
            }
            if d.by_code.contains_key(code) {
                return Err(bad(format!("code {code} appears twice")));
            }
            let parent = if parent.is_empty() {
                None
            } else {
                if !code.starts_with(parent) || parent.len() >= code.len() {
                    return Err(bad(format!("parent {parent} is not a prefix of {code}")));
                }
                Some(parent.to_owned())
            };
            if let Some(p) = &parent {
                // The file's top row names a parent (the province) that is not
                // itself listed; any other missing parent is an error.
                if d.by_code.contains_key(p) {
                    d.children
                        .entry(p.clone())
                        .or_default()
                        .push(code.to_owned());
                } else if !d.by_code.is_empty() {
                    return Err(bad(format!("parent {p} of {code} is not listed before it")));
                }
            }
            d.sorted.insert(code.to_owned(), ());
            d.by_code.insert(
                code.to_owned(),
                Area {
                    code: code.to_owned(),
                    name: name.to_owned(),
                    level,
                    parent,
                },
            );
        }
        Ok(d)
    }

    /// The area with this code.
    pub fn get(&self, code: &str) -> Option<&Area> {
        self.by_code.get(code)
    }

    /// Whether `code` is a village of this list: what a site's village
    /// must be, from the registry or from the field.
    pub fn is_village(&self, code: &str) -> bool {
        self.get(code).is_some_and(|a| a.level == Level::Village)
    }

    /// Number of areas.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Direct children of an area, in code order.
    pub fn children(&self, code: &str) -> Vec<&Area> {
        let mut v: Vec<&Area> = self
            .children
            .get(code)
            .into_iter()
            .flatten()
            .filter_map(|c| self.by_code.get(c))
            .collect();
        v.sort_by(|a, b| a.code.cmp(&b.code));
        v
    }

    /// Every area whose code starts with `prefix`, at `level`, in code order.
    pub fn within(&self, prefix: &str, level: Level) -> Vec<&Area> {
        let upper = prefix_upper_bound(prefix);
        self.sorted
            .range(prefix.to_owned()..upper)
            .filter_map(|(c, _)| self.by_code.get(c))
            .filter(|a| a.level == level)
            .collect()
    }

    /// The chain of names from the top area down to `code`, e.g.
    /// `洛阳市 / 栾川县 / 陶湾镇 / 协心村`.
    pub fn path_name(&self, code: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut cur = self.by_code.get(code);
        while let Some(a) = cur {
            names.push(a.name.as_str());
            cur = a.parent.as_deref().and_then(|p| self.by_code.get(p));
        }
        if names.is_empty() {
            return None;
        }
        names.reverse();
        Some(names.join(" / "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luoyang_counts_match_the_published_figures() {
        let d = Divisions::luoyang();
        assert_eq!(d.within("4103", Level::County).len(), 15);
        assert_eq!(d.within("4103", Level::Township).len(), 194);
        let villages = d.within("4103", Level::Village);
        assert_eq!(villages.len(), 3244);
        let rural = villages
            .iter()
            .filter(|v| is_rural_village(&v.code))
            .count();
        assert_eq!(rural, 2386 + 3);
        let seats = d
            .within("4103", Level::Township)
            .iter()
            .filter(|t| has_township_seat(&t.code))
            .count();
        assert_eq!(seats, 122);
    }

    #[test]
    fn counts_per_county_match_the_shared_table() {
        let table = include_str!("../../data/luoyang_counts_by_county.csv");
        let d = Divisions::luoyang();
        for row in table.lines().skip(1) {
            let c: Vec<&str> = row.split(',').collect();
            let county = c[0];
            let townships: usize = c[2].parse().unwrap();
            let villages: usize = c[7].parse().unwrap();
            let committees: usize = c[8].parse().unwrap();
            let like_committees: usize = c[11].parse().unwrap();
            assert_eq!(
                d.within(county, Level::Township).len(),
                townships,
                "{county}"
            );
            let vs = d.within(county, Level::Village);
            assert_eq!(vs.len(), villages, "{county}");
            let rural = vs.iter().filter(|v| is_rural_village(&v.code)).count();
            assert_eq!(rural, committees + like_committees, "{county}");
        }
    }

    #[test]
    fn classification_by_range() {
        let check = |code: &str, t: Option<TownshipKind>, v: Option<VillageKind>| {
            assert_eq!(township_kind(code), t, "{code}");
            assert_eq!(village_kind(code), v, "{code}");
        };
        check("410324001", Some(TownshipKind::Subdistrict), None);
        check("410324100", Some(TownshipKind::Town), None);
        check("410324203", Some(TownshipKind::Township), None);
        check("410324400", Some(TownshipKind::TownshipLike), None);
        check(
            "410324100201",
            Some(TownshipKind::Town),
            Some(VillageKind::VillageCommittee),
        );
        check(
            "410324100001",
            Some(TownshipKind::Town),
            Some(VillageKind::ResidentsCommittee),
        );
        check(
            "410324100450",
            Some(TownshipKind::Town),
            Some(VillageKind::ResidentsLike),
        );
        check(
            "410324100501",
            Some(TownshipKind::Town),
            Some(VillageKind::VillageLike),
        );
        check("41032410x501", None, None);
        assert!(has_township_seat("410324203"));
        assert!(!has_township_seat("410324003"));
    }

    #[test]
    fn lookups_and_paths() {
        let d = Divisions::luoyang();
        let county = d.get("410324").unwrap();
        assert_eq!(county.level, Level::County);
        assert!(!d.children("410324").is_empty());
        let village = &d.within("410324", Level::Village)[0];
        let path = d.path_name(&village.code).unwrap();
        assert!(path.starts_with("洛阳市 / "), "{path}");
        assert_eq!(path.matches(" / ").count(), 3);
        assert_eq!(ancestor(&village.code, Level::County), Some("410324"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases = [
            ("code,name\n4103,x\n", "expected header"),
            (
                "code,name,level,parent_code\n4103,洛阳市,city,41\n410302,老城区,hamlet,4103\n",
                "line 3: unknown level",
            ),
            (
                "code,name,level,parent_code\n4103,洛阳市,city,41\n41030,老城区,county,4103\n",
                "line 3: code \"41030\"",
            ),
            (
                "code,name,level,parent_code\n4103,洛阳市,city,41\n410302,老城区,county,4104\n",
                "not a prefix",
            ),
            (
                "code,name,level,parent_code\n4103,洛阳市,city,41\n410302001,x,township,410302\n",
                "not listed before",
            ),
            (
                "code,name,level,parent_code\n4103,洛阳市,city,41\n4103,洛阳市,city,41\n",
                "appears twice",
            ),
            ("code,name,level,parent_code\n4103,\"unterminated\n", "line"),
        ];
        for (input, want) in cases {
            let err = Divisions::from_csv(input.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }
}
