//! The pure model: areas, sites, templates, inspections, findings and the
//! workflow fold. Nothing here does I/O or touches Automerge or SQL; the
//! `doc` and `store` modules translate to and from these types.

pub mod area;
pub mod indicator;
pub mod inspection;
pub mod limits;
pub mod site;
pub mod template;
pub mod value;
pub mod workflow;

pub use area::{Area, Divisions, Level};
pub use inspection::{Finding, GpsFix, Inspection, Note, PhotoRef};
pub use site::{GeoPoint, Site, SiteKind, SiteSource};
pub use template::{Label, Problem, ProblemCode, Template, Templates};
pub use value::Value;
pub use workflow::{
    Event, EventKind, FindingState, FindingStatus, InspectionState, InspectionStatus, Role,
};
