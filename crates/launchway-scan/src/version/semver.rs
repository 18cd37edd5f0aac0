//! Semantic Versioning 2.0 (crates.io, npm) and Go module versions
//! (`v`-prefixed SemVer; pseudo-versions are pre-releases and sort as such;
//! `+incompatible` is build metadata and does not affect ordering).

use super::{VersionError, err};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<Ident>,
    pub build: String,
}

impl Version {
    /// SemVer, leniently: a leading `v` or `=` is ignored and missing minor
    /// or patch numbers are zero (OSV uses `0` for "every version").
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        Self::parse_with(input, "SemVer")
    }

    /// A Go module version (`v1.2.3`, `v0.0.0-20191109021931-daa7c04131f5`,
    /// `v2.0.0+incompatible`).
    pub fn parse_go(input: &str) -> Result<Version, VersionError> {
        Self::parse_with(input, "Go")
    }

    fn parse_with(input: &str, scheme: &'static str) -> Result<Version, VersionError> {
        let e = |r: &str| err(scheme, input, r);
        let s = input.trim();
        let s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('='))
            .unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            Some((a, b)) => (a, b.to_string()),
            None => (s, String::new()),
        };
        let (core, pre) = match s.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let mut nums = core.split('.');
        let mut next = |required: bool| -> Result<u64, VersionError> {
            match nums.next() {
                Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                    n.parse().map_err(|_| e("number too large"))
                }
                Some(_) => Err(e("expected a number")),
                None if required => Err(e("expected MAJOR.MINOR.PATCH")),
                None => Ok(0),
            }
        };
        let major = next(true)?;
        let minor = next(false)?;
        let patch = next(false)?;
        if nums.next().is_some() {
            return Err(e("more than three version numbers"));
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err(e("bad pre-release identifier"));
                    }
                    Ok(if id.chars().all(|c| c.is_ascii_digit()) {
                        Ident::Num(id.parse().unwrap_or(u64::MAX))
                    } else {
                        Ident::Alpha(id.to_string())
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a, b) {
                            (Ident::Num(x), Ident::Num(y)) => x.cmp(y),
                            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
                            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
                            (Ident::Alpha(x), Ident::Alpha(y)) => x.cmp(y),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

super::order_by_cmp!(Version);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_precedence_from_the_spec() {
        // SemVer 2.0 §11's example chain.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for w in chain.windows(2) {
            assert!(
                Version::parse(w[0]).unwrap() < Version::parse(w[1]).unwrap(),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert_eq!(
            Version::parse("1.0.0+build.1").unwrap(),
            Version::parse("1.0.0+other").unwrap()
        );
        assert_eq!(
            Version::parse("0").unwrap(),
            Version::parse("0.0.0").unwrap()
        );
        for bad in ["", "a.b.c", "1.2.3.4", "1.2.3-", "1.2.3-a..b", "1.x"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_versions() {
        let g = |s| Version::parse_go(s).unwrap();
        assert!(g("v0.0.0-20191109021931-daa7c04131f5") < g("v0.0.1"));
        assert!(g("v1.2.4-0.20191109021931-daa7c04131f5") > g("v1.2.3"));
        assert!(g("v1.2.4-0.20191109021931-daa7c04131f5") < g("v1.2.4"));
        assert!(g("v0.0.0-20190101000000-aaaaaaaaaaaa") < g("v0.0.0-20200101000000-aaaaaaaaaaaa"));
        assert_eq!(g("v2.0.0+incompatible"), g("v2.0.0"));
        assert!(g("v2.0.0+incompatible") > g("v1.9.9"));
    }
}
