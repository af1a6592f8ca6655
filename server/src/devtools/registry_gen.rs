//! A generated site registry for the demo and for benchmarks: plausible
//! sites of all seven kinds over the real Luoyang division list, seeded and
//! reproducible. Every generated site says so: `created_by` is
//! [`GENERATED_BY`] and `source` is the registry.
//!
//! What is plausible, by kind:
//! - household toilets: a sample of households in every rural village;
//! - village sewage facilities: in a share of rural villages, each serving
//!   part of the village's households (stated on the site);
//! - township-seat sewage plants: one per town and township (122);
//! - garbage points: one or two per rural village;
//! - tailings ponds: concentrated in the mining counties (栾川, 嵩县,
//!   洛宁, 新安, 宜阳, 汝阳), with supervision levels 1–3 and some on the
//!   closure list;
//! - river outfalls and black-odorous water bodies: along the rivers of
//!   each county, fewer.
//!
//! Positions: around each county's approximate centre, spread by township
//! and village so nearby villages lie near each other. They are not survey
//! data and are only for maps that look sensible.

use fieldbook_core::model::area::{self, Divisions, Level};
use fieldbook_core::model::{GeoPoint, Site, SiteKind, SiteSource, Value};
use std::collections::BTreeMap;

/// `created_by` of every generated site.
pub const GENERATED_BY: &str = "generated-registry";

/// How much to generate.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub seed: u64,
    /// Household toilets per rural village.
    pub toilets_per_village: u32,
    /// Share of rural villages with a sewage facility.
    pub sewage_share: f64,
    /// Only villages inside this code prefix ("" for all of Luoyang).
    pub area: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            seed: 2023,
            toilets_per_village: 4,
            sewage_share: 0.45,
            area: String::new(),
        }
    }
}

/// Approximate county centres (lat, lon), for positions only.
const COUNTY_CENTRES: &[(&str, f64, f64)] = &[
    ("410302", 34.684, 112.477),
    ("410303", 34.666, 112.431),
    ("410304", 34.697, 112.500),
    ("410305", 34.656, 112.395),
    ("410307", 34.727, 112.790),
    ("410308", 34.826, 112.445),
    ("410311", 34.619, 112.464),
    ("410323", 34.728, 112.132),
    ("410324", 33.785, 111.615),
    ("410325", 34.134, 112.086),
    ("410326", 34.154, 112.473),
    ("410327", 34.515, 112.179),
    ("410328", 34.389, 111.653),
    ("410329", 34.421, 112.426),
    ("410371", 34.632, 112.335),
];

/// Mining counties and how many tailings ponds each has, roughly.
const MINING_COUNTIES: &[(&str, u32)] = &[
    ("410324", 40),
    ("410325", 18),
    ("410328", 12),
    ("410323", 8),
    ("410327", 6),
    ("410326", 5),
];

/// Rivers by county, for outfall and water-body names.
const RIVERS: &[(&str, &str)] = &[
    ("410302", "洛河"),
    ("410303", "涧河"),
    ("410304", "瀍河"),
    ("410305", "涧河"),
    ("410307", "伊洛河"),
    ("410308", "黄河"),
    ("410311", "伊河"),
    ("410323", "涧河"),
    ("410324", "伊河"),
    ("410325", "伊河"),
    ("410326", "汝河"),
    ("410327", "洛河"),
    ("410328", "洛河"),
    ("410329", "伊河"),
    ("410371", "涧河"),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
];

/// splitmix64: small, seeded, the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, salt: &str) -> Rng {
        let h = blake3::hash(format!("{seed}\0{salt}").as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        Rng(u64::from_le_bytes(b))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A position for `code`: the county's centre, moved by a stable offset for
/// the township and another for the village, then jittered by `rng`.
fn position(code: &str, rng: &mut Rng) -> Option<GeoPoint> {
    let county = area::ancestor(code, Level::County)?;
    let &(_, lat, lon) = COUNTY_CENTRES.iter().find(|(c, _, _)| *c == county)?;
    let offset = |level: Level, spread: f64| {
        let key = area::ancestor(code, level).unwrap_or(code);
        let mut r = Rng::new(0, key);
        ((r.unit() - 0.5) * spread, (r.unit() - 0.5) * spread)
    };
    let (tla, tlo) = offset(Level::Township, 0.30);
    let (vla, vlo) = offset(Level::Village, 0.06);
    Some(GeoPoint {
        lat: lat + tla + vla + (rng.unit() - 0.5) * 0.006,
        lon: lon + tlo + vlo + (rng.unit() - 0.5) * 0.006,
    })
}

/// A village's short name: 东沟村村民委员会 → 东沟村.
fn short_name(name: &str) -> &str {
    for suffix in ["村民委员会", "居民委员会", "社区居委会", "委员会"] {
        if let Some(s) = name.strip_suffix(suffix) {
            return s;
        }
    }
    name
}

struct Builder<'o> {
    opts: &'o RegistryOptions,
    now: i64,
    out: Vec<Site>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        kind: SiteKind,
        name: String,
        village: &str,
        rng: &mut Rng,
        attributes: BTreeMap<String, Value>,
    ) {
        self.out.push(Site {
            id: crate::registry::derived_id(kind, village, &name),
            kind,
            location: position(village, rng),
            name,
            village_code: village.to_owned(),
            attributes,
            source: SiteSource::Registry,
            created_by: GENERATED_BY.into(),
            created_at: self.now,
        });
    }
}

fn num(n: f64) -> Value {
    Value::Number(n)
}

/// Generates the registry for the villages of `divisions` inside
/// `opts.area`. The same options give the same sites, ids included.
pub fn generate(divisions: &Divisions, opts: &RegistryOptions, now: i64) -> Vec<Site> {
    let mut b = Builder {
        opts,
        now,
        out: Vec::new(),
    };
    let prefix = opts.area.as_str();
    for village in divisions.within(prefix, Level::Village) {
        if !area::is_rural_village(&village.code) {
            continue;
        }
        let v = village.code.as_str();
        let short = short_name(&village.name).to_owned();
        let mut rng = Rng::new(b.opts.seed, v);
        let households = 120 + rng.below(480);
        for n in 0..b.opts.toilets_per_village {
            let surname = *rng.pick(SURNAMES);
            let given = [
                "建国", "秀英", "桂兰", "德胜", "玉梅", "志强", "国庆", "春花",
            ];
            let household = format!("{surname}{}", rng.pick(&given));
            let attrs = BTreeMap::from([
                ("household".to_owned(), Value::Text(household.clone())),
                (
                    "renovated_year".to_owned(),
                    num((2016 + rng.below(8)) as f64),
                ),
            ]);
            // The villager group (组) keeps names unique within a village.
            let name = format!("{short}{}组{household}户厕", n + 1);
            b.push(SiteKind::HouseholdToilet, name, v, &mut rng, attrs);
        }
        if rng.unit() < b.opts.sewage_share {
            // One or two facilities serving 30–90% of the village.
            let n = 1 + rng.below(2);
            for i in 0..n {
                let served = (households as f64 * (0.3 + rng.unit() * 0.6) / n as f64).round();
                let mode = *rng.pick(&["集中处理", "分散处理", "纳入城镇管网"]);
                let attrs = BTreeMap::from([
                    ("households_served".to_owned(), num(served)),
                    ("village_households".to_owned(), num(households as f64)),
                    (
                        "capacity_m3_per_day".to_owned(),
                        num((served * 0.25).max(5.0).round()),
                    ),
                    ("mode".to_owned(), Value::Text(mode.into())),
                ]);
                let name = format!("{short}污水处理设施{}号", i + 1);
                b.push(SiteKind::RuralSewage, name, v, &mut rng, attrs);
            }
        }
        for i in 0..(1 + rng.below(2)) {
            let attrs = BTreeMap::from([
                (
                    "facility_type".to_owned(),
                    Value::Text((*rng.pick(&["垃圾收集点", "垃圾中转站", "分类投放点"])).into()),
                ),
                ("containers".to_owned(), num((2 + rng.below(6)) as f64)),
            ]);
            b.push(
                SiteKind::GarbagePoint,
                format!("{short}垃圾收集点{}", i + 1),
                v,
                &mut rng,
                attrs,
            );
        }
        let county = area::ancestor(v, Level::County).unwrap_or("");
        let river = RIVERS
            .iter()
            .find(|(c, _)| *c == county)
            .map_or("河道", |(_, r)| *r);
        if rng.unit() < 0.03 {
            let attrs = BTreeMap::from([(
                "outfall_type".to_owned(),
                Value::Text((*rng.pick(&["农村生活污水", "工业废水", "混合"])).into()),
            )]);
            let mut a = attrs;
            a.insert("receiving_water".into(), Value::Text(river.into()));
            b.push(
                SiteKind::SewageOutfall,
                format!("{river}{short}段排污口"),
                v,
                &mut rng,
                a,
            );
        }
        if rng.unit() < 0.012 {
            let attrs = BTreeMap::from([
                (
                    "water_type".to_owned(),
                    Value::Text((*rng.pick(&["坑塘", "沟渠", "河段"])).into()),
                ),
                ("area_m2".to_owned(), num((300 + rng.below(5000)) as f64)),
            ]);
            b.push(
                SiteKind::BlackOdorousWater,
                format!("{short}黑臭水体"),
                v,
                &mut rng,
                attrs,
            );
        }
    }
    for township in divisions.within(prefix, Level::Township) {
        if !area::has_township_seat(&township.code) {
            continue;
        }
        // The plant sits in the township's first village (its seat).
        let Some(seat) = divisions
            .children(&township.code)
            .first()
            .map(|a| a.code.clone())
        else {
            continue;
        };
        let mut rng = Rng::new(b.opts.seed, &township.code);
        let attrs = BTreeMap::from([
            (
                "capacity_m3_per_day".to_owned(),
                num((500 + rng.below(2500)) as f64),
            ),
            (
                "households_served".to_owned(),
                num((800 + rng.below(4000)) as f64),
            ),
        ]);
        b.push(
            SiteKind::TownshipSewagePlant,
            format!("{}政府驻地污水处理厂", township.name),
            &seat,
            &mut rng,
            attrs,
        );
    }
    for &(county, ponds) in MINING_COUNTIES {
        if !(county.starts_with(prefix) || prefix.starts_with(county)) {
            continue;
        }
        let villages: Vec<_> = divisions
            .within(county, Level::Village)
            .into_iter()
            .filter(|a| a.code.starts_with(prefix) && area::is_rural_village(&a.code))
            .collect();
        if villages.is_empty() {
            continue;
        }
        let mut rng = Rng::new(b.opts.seed, county);
        for i in 0..ponds {
            let village = *rng.pick(&villages);
            let level = 1 + rng.below(3);
            let closure = rng.unit() < 0.2;
            let status = if closure {
                *rng.pick(&["abandoned", "closed"])
            } else {
                *rng.pick(&["in_use", "in_use", "idle"])
            };
            let attrs = BTreeMap::from([
                ("supervision_level".to_owned(), num(level as f64)),
                ("status".to_owned(), Value::Text(status.into())),
                ("on_closure_list".to_owned(), Value::Bool(closure)),
                (
                    "operator".to_owned(),
                    Value::Text(format!("洛阳{}矿业有限公司", short_name(&village.name))),
                ),
            ]);
            b.push(
                SiteKind::TailingsPond,
                format!("{}{}号尾矿库", short_name(&village.name), i + 1),
                &village.code,
                &mut rng,
                attrs,
            );
        }
    }
    b.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luoyang_registry_is_plausible_and_reproducible() {
        let d = Divisions::luoyang();
        let opts = RegistryOptions::default();
        let sites = generate(d, &opts, 0);
        let count = |k: SiteKind| sites.iter().filter(|s| s.kind == k).count();
        assert_eq!(count(SiteKind::TownshipSewagePlant), 122);
        assert_eq!(count(SiteKind::HouseholdToilet), 2389 * 4);
        assert_eq!(count(SiteKind::TailingsPond), 89);
        assert!(count(SiteKind::GarbagePoint) >= 2389);
        // 45% of villages, one or two facilities each.
        assert!((1400..1850).contains(&count(SiteKind::RuralSewage)));
        assert!(count(SiteKind::SewageOutfall) > 30);
        assert!(count(SiteKind::BlackOdorousWater) > 10);
        // Registry attributes must pass the import rules of each kind.
        for s in &sites {
            assert!(s.created_by == GENERATED_BY && s.source == SiteSource::Registry);
            let allowed: Vec<&str> = s.kind.attributes().iter().map(|a| a.key).collect();
            for k in s.attributes.keys() {
                assert!(allowed.contains(&k.as_str()), "{} has {k}", s.kind);
            }
            let p = s.location.expect("every generated site has a position");
            assert!(
                (33.0..35.5).contains(&p.lat) && (111.0..113.5).contains(&p.lon),
                "{p:?}"
            );
        }
        // Ids are unique and the same on every run.
        let ids: std::collections::HashSet<&str> = sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), sites.len());
        assert_eq!(generate(d, &opts, 0), sites);
        // Tailings ponds lie in the mining counties only.
        assert!(
            sites
                .iter()
                .filter(|s| s.kind == SiteKind::TailingsPond)
                .all(|s| MINING_COUNTIES
                    .iter()
                    .any(|(c, _)| s.village_code.starts_with(c)))
        );
    }

    #[test]
    fn an_area_limits_the_registry() {
        let opts = RegistryOptions {
            area: "410324".into(),
            ..RegistryOptions::default()
        };
        let sites = generate(Divisions::luoyang(), &opts, 0);
        assert!(!sites.is_empty());
        assert!(sites.iter().all(|s| s.village_code.starts_with("410324")));
        assert_eq!(
            sites
                .iter()
                .filter(|s| s.kind == SiteKind::TailingsPond)
                .count(),
            40
        );
    }
}
