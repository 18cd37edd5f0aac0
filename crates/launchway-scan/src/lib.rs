//! Launchway's security gates: what is inside (SBOM), what of it is known
//! to be vulnerable (OSV advisories, offline), and whether a secret leaked
//! — in a tree, a lockfile, or a container image.

pub mod gate;
pub mod image;
pub mod osv;
pub mod report;
pub mod sbom;
pub mod secrets;
pub mod version;
pub mod vuln;
