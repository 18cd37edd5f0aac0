//! Secrets at rest are sealed with XChaCha20-Poly1305 under a master key the
//! server reads from a file or an environment variable, never from its database.
//!
//! The secret's scope and name are bound in as associated data, so a sealed
//! value copied onto another secret's row (or another repository's) fails
//! to open instead of leaking into the wrong job.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the master key must be 32 bytes written as 64 hex digits (generate one with `python3 -c 'import secrets; print(secrets.token_hex(32))'`)"
    )]
    BadKey,
    #[error("no randomness available from the operating system")]
    Random,
    #[error("sealed value is malformed (expected 'v1:' and hex)")]
    Malformed,
    #[error(
        "sealed value does not open with this key for this secret (wrong master key, or the value was moved or altered)"
    )]
    Rejected,
}

/// The master key, parsed once: it seals secrets, and a key derived from
/// it signs the audit log's entries ([`MasterKey::audit_key`]).
pub struct MasterKey(XChaCha20Poly1305, [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// From 64 hex digits (surrounding whitespace, e.g. a file's newline, is ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, SealError> {
        let bytes = crate::unhex(text.trim()).ok_or(SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"launchway-audit-mac-v1");
        h.update(key);
        Ok(MasterKey(
            XChaCha20Poly1305::new(&key.into()),
            h.finalize().into(),
        ))
    }

    /// The key that signs audit entries: derived, so knowing it reveals
    /// nothing of the sealing key.
    pub fn audit_key(&self) -> [u8; 32] {
        self.1
    }

    /// A fresh key, as hex, for a first start without one.
    pub fn generate_hex() -> Result<String, SealError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| SealError::Random)?;
        Ok(crate::hex(&key))
    }

    /// Encrypts `plaintext` for the secret identified by `scope` (e.g.
    /// `repo/churn/env/production/DB_PASSWORD`).
    pub fn seal(&self, scope: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let ct = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: scope.as_bytes(),
                },
            )
            .map_err(|_| SealError::Rejected)?;
        Ok(format!(
            "{VERSION}{}{}",
            crate::hex(&nonce),
            crate::hex(&ct)
        ))
    }

    pub fn open(&self, scope: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(VERSION).ok_or(SealError::Malformed)?;
        let bytes = crate::unhex(body).ok_or(SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: scope.as_bytes(),
                },
            )
            .map_err(|_| SealError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_hex(&MasterKey::generate_hex().unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let k = key();
        let a = k.seal("repo/churn/DB_PASSWORD", b"hunter2").unwrap();
        let b = k.seal("repo/churn/DB_PASSWORD", b"hunter2").unwrap();
        assert_ne!(a, b, "a new nonce every time");
        assert!(!a.contains("hunter2") && !a.contains(&crate::hex(b"hunter2")));
        assert_eq!(k.open("repo/churn/DB_PASSWORD", &a).unwrap(), b"hunter2");
    }

    #[test]
    fn moved_altered_or_foreign_values_do_not_open() {
        let k = key();
        let sealed = k
            .seal("repo/churn/env/production/TOKEN", b"prod-only")
            .unwrap();
        assert_eq!(
            k.open("repo/churn/env/dev/TOKEN", &sealed),
            Err(SealError::Rejected)
        );
        assert_eq!(
            key().open("repo/churn/env/production/TOKEN", &sealed),
            Err(SealError::Rejected)
        );
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            k.open("repo/churn/env/production/TOKEN", &flipped),
            Err(SealError::Rejected)
        );
        assert_eq!(k.open("x", "v1:abc"), Err(SealError::Malformed));
        assert_eq!(k.open("x", "hunter2"), Err(SealError::Malformed));
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex() {
        assert!(MasterKey::from_hex(&format!("{}\n", "ab".repeat(32))).is_ok());
        for bad in [
            "",
            "abc",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert_eq!(
                MasterKey::from_hex(bad).unwrap_err(),
                SealError::BadKey,
                "{bad}"
            );
        }
        assert_eq!(format!("{:?}", key()), "MasterKey(***)");
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(s in "\\PC*") {
            let _ = key().open("scope", &s);
        }
    }
}
