//! Deployment environments: their configuration files (validated, with
//! positions, base and overlays), how two of them differ, and the
//! Kubernetes manifests they describe, and the local runtime that runs
//! them. The config, diff, edit and render modules are pure; [`repo`],
//! [`gitops`] and [`local`] are the I/O edges.

pub use launchway_config as config;
pub use launchway_config::quantity;
pub mod analysis;
pub mod dataplane;
pub mod diff;
pub mod edit;
pub mod gitops;
pub mod local;
pub mod models;
pub mod reconcile;
pub mod render;
pub mod repo;
pub mod served;
pub mod tree;

/// The HTTP client for MLflow and analysis providers: statuses are
/// answers, not errors; nothing waits longer than 10 s.
pub(crate) fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}
