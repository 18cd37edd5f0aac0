//! The control plane (`launchway serve`) — its pure core first.
//!
//! Everything here is logic without I/O so it can be tested without a server:
//! [`auth`] decides who may do what, [`webhook`] decides whether a push
//! notification is genuine, [`audit`] makes the record of state changes
//! tamper-evident. The HTTP API and the store are built on top of these.

pub mod agents;
pub mod api;
pub mod approval;
pub mod audit;
pub mod auth;
pub mod engine;
pub mod environments;
pub mod sealed;
pub mod store;
pub mod triggers;
pub mod web;
pub mod webhook;

/// Lower-case hex, for digests shown to people and stored in text columns.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The SHA-256 of `data` in lower-case hex (artifact digests).
pub fn hex_sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(data))
}

/// Bytes from hex digits (either case); `None` for anything else.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// Names of users, repositories, agents, groups and environments: they
/// appear in URLs, logs and the audit chain, so they stay plain. One rule,
/// checked by the store whoever asks (API or CLI).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The store's refusal of a name.
pub(crate) fn name_refused(what: &str, name: &str) -> store::StoreError {
    store::StoreError::Invalid(format!(
        "{what} '{name}': names are 1-64 characters of letters, digits, '.', '_' and '-'"
    ))
}

/// The wall clock in milliseconds since the Unix epoch, for audit entries.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
