//! Sites: the things that get inspected, each in one village.
//!
//! To add a site kind: add a variant to [`SiteKind`] with its key, labels and
//! attribute specs here, then a template file `templates/<key>.v1.toml`.

use crate::model::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The seven kinds of site the Luoyang plan names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// 农村生活污水处理设施 — a village sewage facility or household treatment.
    RuralSewage,
    /// 乡镇政府驻地污水处理设施 — the sewage plant of a township seat.
    TownshipSewagePlant,
    /// 户厕 — a household toilet (renovation check).
    HouseholdToilet,
    /// 垃圾收集点 — a garbage collection point / village cleaning.
    GarbagePoint,
    /// 尾矿库 — a tailings pond.
    TailingsPond,
    /// 入河排污口 — a river sewage outfall.
    SewageOutfall,
    /// 农村黑臭水体 — a rural black-odorous water body.
    BlackOdorousWater,
}

impl SiteKind {
    /// Every kind, in the order of `checklists.md`.
    pub const ALL: [SiteKind; 7] = [
        SiteKind::RuralSewage,
        SiteKind::TownshipSewagePlant,
        SiteKind::HouseholdToilet,
        SiteKind::GarbagePoint,
        SiteKind::TailingsPond,
        SiteKind::SewageOutfall,
        SiteKind::BlackOdorousWater,
    ];

    /// The stable key used in documents, SQL and template file names.
    pub fn key(self) -> &'static str {
        match self {
            SiteKind::RuralSewage => "rural_sewage",
            SiteKind::TownshipSewagePlant => "township_sewage_plant",
            SiteKind::HouseholdToilet => "household_toilet",
            SiteKind::GarbagePoint => "garbage_point",
            SiteKind::TailingsPond => "tailings_pond",
            SiteKind::SewageOutfall => "sewage_outfall",
            SiteKind::BlackOdorousWater => "black_odorous_water",
        }
    }

    /// Parses a key written by [`SiteKind::key`].
    pub fn from_key(key: &str) -> Option<SiteKind> {
        SiteKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Chinese name.
    pub fn label_zh(self) -> &'static str {
        match self {
            SiteKind::RuralSewage => "农村生活污水处理设施",
            SiteKind::TownshipSewagePlant => "乡镇政府驻地污水处理设施",
            SiteKind::HouseholdToilet => "户厕",
            SiteKind::GarbagePoint => "垃圾收集点",
            SiteKind::TailingsPond => "尾矿库",
            SiteKind::SewageOutfall => "入河排污口",
            SiteKind::BlackOdorousWater => "农村黑臭水体",
        }
    }

    /// English name.
    pub fn label_en(self) -> &'static str {
        match self {
            SiteKind::RuralSewage => "Rural domestic sewage facility",
            SiteKind::TownshipSewagePlant => "Township-seat sewage plant",
            SiteKind::HouseholdToilet => "Household toilet",
            SiteKind::GarbagePoint => "Garbage collection point",
            SiteKind::TailingsPond => "Tailings pond",
            SiteKind::SewageOutfall => "River sewage outfall",
            SiteKind::BlackOdorousWater => "Rural black-odorous water body",
        }
    }

    /// The registry attributes a site of this kind may carry.
    pub fn attributes(self) -> &'static [AttributeSpec] {
        use AttrType::*;
        const fn a(
            key: &'static str,
            ty: AttrType,
            zh: &'static str,
            en: &'static str,
        ) -> AttributeSpec {
            AttributeSpec {
                key,
                ty,
                label_zh: zh,
                label_en: en,
            }
        }
        match self {
            SiteKind::RuralSewage => {
                const A: &[AttributeSpec] = &[
                    a("households_served", Count, "受益户数", "Households served"),
                    a(
                        "village_households",
                        Count,
                        "村总户数",
                        "Households in the village",
                    ),
                    a(
                        "capacity_m3_per_day",
                        Number,
                        "设计规模(m³/d)",
                        "Design capacity (m³/d)",
                    ),
                    a("mode", Text, "治理模式", "Treatment mode"),
                ];
                A
            }
            SiteKind::TownshipSewagePlant => {
                const A: &[AttributeSpec] = &[
                    a(
                        "capacity_m3_per_day",
                        Number,
                        "设计规模(m³/d)",
                        "Design capacity (m³/d)",
                    ),
                    a("households_served", Count, "受益户数", "Households served"),
                ];
                A
            }
            SiteKind::HouseholdToilet => {
                const A: &[AttributeSpec] = &[
                    a("household", Text, "户主", "Household"),
                    a("toilet_type", Text, "户厕类型", "Toilet type"),
                    a("renovated_year", Count, "改造年份", "Year renovated"),
                ];
                A
            }
            SiteKind::GarbagePoint => {
                const A: &[AttributeSpec] = &[
                    a("facility_type", Text, "设施类型", "Facility"),
                    a("containers", Count, "容器数量", "Containers"),
                ];
                A
            }
            SiteKind::TailingsPond => {
                const A: &[AttributeSpec] = &[
                    a(
                        "supervision_level",
                        Level,
                        "环境监管等级",
                        "Supervision level",
                    ),
                    a("status", Text, "状态", "Status"),
                    a(
                        "on_closure_list",
                        Flag,
                        "列入闭库治理清单",
                        "On the closure list",
                    ),
                    a("operator", Text, "运营单位", "Operator"),
                ];
                A
            }
            SiteKind::SewageOutfall => {
                const A: &[AttributeSpec] = &[
                    a("outfall_code", Text, "排污口编码", "Outfall code"),
                    a("outfall_type", Text, "类型", "Type"),
                    a("receiving_water", Text, "受纳水体", "Receiving water"),
                ];
                A
            }
            SiteKind::BlackOdorousWater => {
                const A: &[AttributeSpec] = &[
                    a("water_type", Text, "类型", "Type"),
                    a("area_m2", Number, "面积(m²)", "Area (m²)"),
                ];
                A
            }
        }
    }
}

impl fmt::Display for SiteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The shape of a site attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A whole number ≥ 0.
    Count,
    /// Any finite number ≥ 0.
    Number,
    /// Free text.
    Text,
    /// Yes/no.
    Flag,
    /// A supervision level: 1, 2 or 3.
    Level,
}

/// One attribute a site kind may carry in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeSpec {
    pub key: &'static str,
    pub ty: AttrType,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

impl AttributeSpec {
    /// Whether `v` fits this attribute.
    pub fn accepts(&self, v: &Value) -> bool {
        match (self.ty, v) {
            (AttrType::Count, Value::Number(n)) => n.is_finite() && *n >= 0.0 && n.fract() == 0.0,
            (AttrType::Number, Value::Number(n)) => n.is_finite() && *n >= 0.0,
            (AttrType::Text, Value::Text(_)) => true,
            (AttrType::Flag, Value::Bool(_)) => true,
            (AttrType::Level, Value::Number(n)) => [1.0, 2.0, 3.0].contains(n),
            _ => false,
        }
    }
}

/// A position in WGS-84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Whether the coordinates are finite and on the globe.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }

    /// Great-circle distance in metres (haversine, mean Earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let r = 6_371_008.8_f64;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * r * h.sqrt().min(1.0).asin()
    }
}

/// Where a site record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteSource {
    /// Imported from the county's registry.
    Registry,
    /// Added by an inspector in the field.
    Field,
}

impl SiteSource {
    pub fn key(self) -> &'static str {
        match self {
            SiteSource::Registry => "registry",
            SiteSource::Field => "field",
        }
    }

    pub fn from_key(key: &str) -> Option<SiteSource> {
        match key {
            "registry" => Some(SiteSource::Registry),
            "field" => Some(SiteSource::Field),
            _ => None,
        }
    }
}

/// A site as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub kind: SiteKind,
    pub name: String,
    /// The 12-digit code of the village the site is in.
    pub village_code: String,
    pub location: Option<GeoPoint>,
    pub attributes: BTreeMap<String, Value>,
    pub source: SiteSource,
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_keys_round_trip() {
        for k in SiteKind::ALL {
            assert_eq!(SiteKind::from_key(k.key()), Some(k));
        }
        assert_eq!(SiteKind::from_key("volcano"), None);
    }

    #[test]
    fn distance_is_plausible() {
        // Luoyang railway station to Longmen Grottoes: about 14.5 km.
        let a = GeoPoint {
            lat: 34.6839,
            lon: 112.4420,
        };
        let b = GeoPoint {
            lat: 34.5579,
            lon: 112.4716,
        };
        let d = a.distance_m(&b);
        assert!((13_500.0..15_500.0).contains(&d), "{d}");
    }
}
