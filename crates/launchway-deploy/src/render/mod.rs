//! Manifests for targets that take them, and a YAML writer for them.

pub mod kubernetes;
pub mod yaml;
