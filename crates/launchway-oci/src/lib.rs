//! Container images without a daemon. An image comes from one of the
//! sources a target names (`oci-archive:`, `docker-archive:`, `oci-dir:`,
//! `registry:`, `containers-storage:`); whatever the source, it is a
//! configuration, an ordered list of layers and a store to read their
//! blobs from, each checked against its digest as it is read. [`layers`]
//! applies the layers in order with their whiteouts and keeps only the
//! files a caller asks for — nothing is written to disk.
//!
//! Layers of this crate: [`reference`] and [`manifest`] are pure;
//! [`source`] reads archives and directories; [`registry`] speaks the
//! distribution API over HTTPS (plain HTTP on loopback or when a mirror
//! says so); [`mirrors`] reads `.launchway/registries.yaml`.

pub mod auth;
pub mod layers;
pub mod layout;
pub mod manifest;
pub mod mirrors;
pub mod reference;
pub mod registry;
pub mod source;

pub use layers::{Header, Merged, merge};
pub use manifest::Platform;
pub use reference::Reference;
pub use source::{Image, Target};

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid image reference '{input}': {reason}")]
    Reference { input: String, reason: String },
    #[error(
        "unknown image target '{0}' (expected oci-archive:FILE, docker-archive:FILE, oci-dir:DIR, registry:REF or containers-storage:REF)"
    )]
    Target(String),
    #[error(
        "--platform applies to an image target (oci-archive:, docker-archive:, oci-dir:, registry:, containers-storage:), not to the path '{0}'"
    )]
    PlatformForPath(String),
    #[error("invalid platform '{0}' (expected os/arch[/variant], e.g. linux/amd64)")]
    Platform(String),
    #[error("the image has no manifest for {wanted} (it has: {available}); pass --platform")]
    NoPlatform { wanted: String, available: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },
    #[error("blob {digest} does not match its digest (got {actual}): refusing it")]
    Digest { digest: String, actual: String },
    #[error("{0} is not in the image")]
    Missing(String),
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("{0}")]
    Tool(String),
}

impl OciError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> OciError {
        OciError::Io {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl std::fmt::Display) -> OciError {
        OciError::Format {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}
