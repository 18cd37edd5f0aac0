//! Launchway's security gates: what is inside (SBOM), what of it is known
//! to be vulnerable (OSV advisories, offline), and whether a secret leaked.

pub mod osv;
pub mod sbom;
pub mod secrets;
pub mod version;
pub mod vuln;
