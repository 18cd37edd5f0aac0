//! Roles and API tokens.
//!
//! Tokens are random, shown once, and stored only as SHA-256 digests: a
//! leaked database does not leak credentials. Roles are ordered, so "needs
//! deployer" is a single comparison at every endpoint.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// What a user may do; each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads runs, logs and deployments.
    Viewer,
    /// Also triggers, cancels and re-runs pipelines.
    Developer,
    /// Also approves deployments to protected environments.
    Deployer,
    /// Also manages users, tokens, repositories and secrets.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Developer, Role::Deployer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role '{0}': expected viewer, developer, deployer or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Why a request is refused: 401 (who are you?) or 403 (not allowed).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("missing or malformed credentials: send 'Authorization: Bearer <token>'")]
    NoCredentials,
    #[error("invalid or revoked token")]
    InvalidToken,
    #[error("this needs the {needed} role; you have {have}")]
    Forbidden { needed: Role, have: Role },
}

impl Denied {
    pub fn status(&self) -> u16 {
        match self {
            Denied::NoCredentials | Denied::InvalidToken => 401,
            Denied::Forbidden { .. } => 403,
        }
    }
}

/// Allows the request when `have` includes `needed`.
pub fn authorize(needed: Role, have: Role) -> Result<(), Denied> {
    if have >= needed {
        Ok(())
    } else {
        Err(Denied::Forbidden { needed, have })
    }
}

/// Prefix that makes Launchway tokens recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "lwt_";

/// A new random token (256 bits): `lwt_` and 64 hex digits.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{TOKEN_PREFIX}{}", crate::hex(&bytes)))
}

/// What the store keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    crate::hex(&Sha256::digest(token.as_bytes()))
}

/// The token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, Denied> {
    let value = header.ok_or(Denied::NoCredentials)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Denied::NoCredentials)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Denied::NoCredentials);
    }
    // Anything else cannot be ours (a user's API token, an agent
    // registration token or an agent's credential); refuse before touching
    // the store.
    let well_formed = ["lwt_", "lwr_", "lwa_"].iter().any(|p| {
        token.len() == p.len() + 64
            && token.starts_with(p)
            && token[p.len()..].bytes().all(|b| b.is_ascii_hexdigit())
    });
    if well_formed {
        Ok(token)
    } else {
        Err(Denied::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Developer && Role::Deployer < Role::Admin);
        assert_eq!("Deployer".parse(), Ok(Role::Deployer));
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".into())));
        assert_eq!(authorize(Role::Viewer, Role::Admin), Ok(()));
        let denied = authorize(Role::Deployer, Role::Developer).unwrap_err();
        assert_eq!(denied.status(), 403);
        assert_eq!(
            denied.to_string(),
            "this needs the deployer role; you have developer"
        );
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(bearer(Some(&format!("Bearer {a}"))), Ok(a.as_str()));
        let digest = token_digest(&a);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for (header, want) in [
            (None, Denied::NoCredentials),
            (Some(""), Denied::NoCredentials),
            (Some("Basic dXNlcjpwYXNz"), Denied::NoCredentials),
            (Some("Bearer "), Denied::NoCredentials),
            (Some("Bearer lwt_123"), Denied::InvalidToken),
            (
                Some("Bearer ghp_4fR9kL2mN7pQ1sT6vW8xY3zA5bC0dE2gH4jK"), // gitleaks:allow (fake)
                Denied::InvalidToken,
            ),
        ] {
            assert_eq!(bearer(header), Err(want.clone()), "{header:?}");
            assert_eq!(want.status(), 401);
        }
    }

    proptest::proptest! {
        #[test]
        fn bearer_never_panics(s in "\\PC*") {
            let _ = bearer(Some(&s));
        }
    }
}
