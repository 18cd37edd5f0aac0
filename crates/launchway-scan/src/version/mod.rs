//! Version ordering, one scheme per ecosystem: PEP 440 (PyPI), SemVer
//! (crates.io, npm), Go module versions, Debian's dpkg ordering, Alpine's
//! apk ordering.
//! Pure: parsing and comparison only.

/// Equality and partial order from a type's `Ord` (versions equal by
/// precedence, e.g. `1.0` and `1.0.0`, are equal), for each scheme.
macro_rules! order_by_cmp {
    ($t:ty) => {
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }
        impl Eq for $t {}
    };
}
use order_by_cmp;

pub mod alpine;
pub mod debian;
pub mod pep440;
pub mod rpm;
pub mod semver;

use std::cmp::Ordering;

/// The ecosystems Launchway knows, named as OSV names them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Ecosystem {
    #[serde(rename = "PyPI")]
    PyPI,
    #[serde(rename = "crates.io")]
    Crates,
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "Go")]
    Go,
    #[serde(rename = "Debian")]
    Debian,
    #[serde(rename = "Alpine")]
    Alpine,
    /// RPM-based distributions (Red Hat, Fedora, Rocky, Alma, SUSE…):
    /// inventoried; their advisories are not matched yet.
    #[serde(rename = "RPM")]
    Rpm,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 7] = [
        Ecosystem::PyPI,
        Ecosystem::Crates,
        Ecosystem::Npm,
        Ecosystem::Go,
        Ecosystem::Debian,
        Ecosystem::Alpine,
        Ecosystem::Rpm,
    ];

    /// The OSV ecosystem name (`Debian:12` counts as Debian).
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        let base = name.split(':').next().unwrap_or(name);
        Some(match base {
            "PyPI" => Ecosystem::PyPI,
            "crates.io" => Ecosystem::Crates,
            "npm" => Ecosystem::Npm,
            "Go" => Ecosystem::Go,
            "Debian" => Ecosystem::Debian,
            "Alpine" => Ecosystem::Alpine,
            _ => return None,
        })
    }

    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Crates => "crates.io",
            Ecosystem::Npm => "npm",
            Ecosystem::Go => "Go",
            Ecosystem::Debian => "Debian",
            Ecosystem::Alpine => "Alpine",
            Ecosystem::Rpm => "RPM",
        }
    }

    /// The package-url type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::PyPI => "pypi",
            Ecosystem::Crates => "cargo",
            Ecosystem::Npm => "npm",
            Ecosystem::Go => "golang",
            Ecosystem::Debian => "deb",
            Ecosystem::Alpine => "apk",
            Ecosystem::Rpm => "rpm",
        }
    }

    /// Compares two versions with this ecosystem's rules; `None` when either
    /// does not parse.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::PyPI => Some(
                pep440::Version::parse(a)
                    .ok()?
                    .cmp(&pep440::Version::parse(b).ok()?),
            ),
            Ecosystem::Crates | Ecosystem::Npm => Some(
                semver::Version::parse(a)
                    .ok()?
                    .cmp(&semver::Version::parse(b).ok()?),
            ),
            Ecosystem::Go => Some(
                semver::Version::parse_go(a)
                    .ok()?
                    .cmp(&semver::Version::parse_go(b).ok()?),
            ),
            Ecosystem::Debian => Some(
                debian::Version::parse(a)
                    .ok()?
                    .cmp(&debian::Version::parse(b).ok()?),
            ),
            Ecosystem::Alpine => Some(
                alpine::Version::parse(a)
                    .ok()?
                    .cmp(&alpine::Version::parse(b).ok()?),
            ),
            Ecosystem::Rpm => Some(rpm::compare(a, b)),
        }
    }

    /// Whether two version strings name the same version (`1.0` == `1.0.0` in PEP 440).
    pub fn same(self, a: &str, b: &str) -> bool {
        a == b || self.compare(a, b) == Some(Ordering::Equal)
    }

    /// The canonical package name (PEP 503 normalisation for PyPI).
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => {
                let mut out = String::with_capacity(name.len());
                let mut sep = false;
                for c in name.trim().chars() {
                    if matches!(c, '-' | '_' | '.') {
                        sep = true;
                    } else {
                        if sep && !out.is_empty() {
                            out.push('-');
                        }
                        sep = false;
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            Ecosystem::Crates
            | Ecosystem::Npm
            | Ecosystem::Go
            | Ecosystem::Debian
            | Ecosystem::Alpine
            | Ecosystem::Rpm => name.trim().to_string(),
        }
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.osv_name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version '{input}': {reason}")]
pub struct VersionError {
    pub scheme: &'static str,
    pub input: String,
    pub reason: String,
}

pub(crate) fn err(scheme: &'static str, input: &str, reason: impl Into<String>) -> VersionError {
    VersionError {
        scheme,
        input: input.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypi_names() {
        assert_eq!(
            Ecosystem::PyPI.normalize_name("Django_REST.framework"),
            "django-rest-framework"
        );
        assert_eq!(Ecosystem::PyPI.normalize_name("a--b"), "a-b");
        assert_eq!(Ecosystem::from_osv("Debian:12"), Some(Ecosystem::Debian));
        assert!(Ecosystem::PyPI.same("1.0", "1.0.0"));
        assert!(!Ecosystem::Npm.same("1.0.0", "1.0.1"));
    }
}
