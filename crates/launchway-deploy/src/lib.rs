//! Deployment environments: their configuration files (validated, with
//! positions, base and overlays), how two of them differ, and the
//! Kubernetes manifests they describe. Pure; reading the files is the
//! caller's business (see [`repo`]).

pub mod config;
pub mod diff;
pub mod edit;
pub mod gitops;
pub mod quantity;
pub mod render;
pub mod repo;
