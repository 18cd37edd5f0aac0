//! OSV advisories: the schema, matching, severity.

pub mod db;
pub mod matching;
pub mod model;
pub mod nvd;
pub mod severity;
pub mod snapshot;

pub use matching::{fixed_versions, is_affected};
pub use model::{Advisory, Affected, Event, ParseError};
