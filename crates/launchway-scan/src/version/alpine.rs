//! Alpine version ordering as apk-tools implements it:
//! `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`. Numbers compare
//! as numbers, except a later component with a leading zero, which compares
//! as a decimal fraction (`1.01` < `1.1`); a letter sorts after none;
//! `_alpha`, `_beta`, `_pre`, `_rc` sort before the release and `_cvs`,
//! `_svn`, `_git`, `_hg`, `_p` after it; the `-r` revision decides last.

use super::{VersionError, err};
use std::cmp::Ordering;

/// The suffixes apk knows, in their order; the release itself sits
/// between `rc` and `cvs`.
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Where "no suffix" ranks among [`SUFFIXES`].
const RELEASE: usize = 4;

#[derive(Debug, Clone)]
pub struct Version {
    /// The dotted components, as written (the first compares as a number).
    numbers: Vec<String>,
    letter: Option<u8>,
    /// (rank in [`SUFFIXES`], its number).
    suffixes: Vec<(usize, u64)>,
    revision: u64,
}

impl Version {
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        let e = |r: &str| err("Alpine", input, r);
        let s = input.trim();
        let b = s.as_bytes();
        let mut i = 0;
        let digits = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            &s[start..*i]
        };
        let mut numbers = vec![digits(&mut i).to_string()];
        if numbers[0].is_empty() {
            return Err(e("a version starts with a digit"));
        }
        while i < b.len() && b[i] == b'.' {
            i += 1;
            let n = digits(&mut i);
            if n.is_empty() {
                return Err(e("a '.' must be followed by digits"));
            }
            numbers.push(n.to_string());
        }
        let letter = (i < b.len() && b[i].is_ascii_lowercase()).then(|| {
            i += 1;
            b[i - 1]
        });
        let mut suffixes = Vec::new();
        while i < b.len() && b[i] == b'_' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_lowercase() {
                i += 1;
            }
            let rank = SUFFIXES
                .iter()
                .position(|x| *x == &s[start..i])
                .ok_or_else(|| e("unknown suffix (alpha, beta, pre, rc, cvs, svn, git, hg, p)"))?;
            let n = digits(&mut i);
            let n = if n.is_empty() {
                0
            } else {
                n.parse().map_err(|_| e("suffix number too large"))?
            };
            suffixes.push((rank, n));
        }
        if i < b.len() && b[i] == b'~' {
            // A commit hash: informational, not ordered by apk.
            i += 1;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
        }
        let mut revision = 0;
        if s[i..].starts_with("-r") {
            i += 2;
            let n = digits(&mut i);
            revision = n
                .parse()
                .map_err(|_| e("'-r' must be followed by a number"))?;
        }
        if i != b.len() {
            return Err(e("unexpected characters"));
        }
        Ok(Version {
            numbers,
            letter,
            suffixes,
            revision,
        })
    }
}

/// A later dotted component: numbers compare as numbers unless one starts
/// with `0`, then as the fraction digits they are.
fn cmp_component(a: &str, b: &str, first: bool) -> Ordering {
    if !first && (a.starts_with('0') || b.starts_with('0')) {
        return a.cmp(b);
    }
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            let o = cmp_component(a, b, i == 0);
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = self.numbers.len().cmp(&other.numbers.len());
        if o != Ordering::Equal {
            return o;
        }
        let o = self.letter.cmp(&other.letter);
        if o != Ordering::Equal {
            return o;
        }
        let n = self.suffixes.len().max(other.suffixes.len());
        for i in 0..n {
            let a = self.suffixes.get(i).copied().unwrap_or((RELEASE, 0));
            let b = other.suffixes.get(i).copied().unwrap_or((RELEASE, 0));
            // No suffix ranks as the release: after `_rc`, before `_cvs`.
            let rank = |(r, _): (usize, u64)| if r >= RELEASE { r + 1 } else { r };
            let (ra, rb) = (
                if i < self.suffixes.len() {
                    rank(a)
                } else {
                    RELEASE
                },
                if i < other.suffixes.len() {
                    rank(b)
                } else {
                    RELEASE
                },
            );
            let o = ra.cmp(&rb).then(a.1.cmp(&b.1));
            if o != Ordering::Equal {
                return o;
            }
        }
        self.revision.cmp(&other.revision)
    }
}

super::order_by_cmp!(Version);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn orders_as_apk_does() {
        // Each is less than the next (cases from apk-tools' behaviour).
        let chain = [
            "1.0_alpha",
            "1.0_alpha2",
            "1.0_beta",
            "1.0_pre1",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_git20240101",
            "1.0_p1",
            "1.0a",
            "1.0.1",
            "1.01.0",
            "1.1",
            "1.2.3-r0",
            "1.2.3-r10",
            "1.10",
            "3.0.13-r0",
            "3.3.2-r0",
            "10.0",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
            assert!(v(w[1]) > v(w[0]), "{} > {}", w[1], w[0]);
        }
        assert_eq!(v("1.2-r0"), v("1.2"));
        assert_eq!(v("1.2~abc123-r1"), v("1.2-r1"));
        assert!(v("1.001") < v("1.01"));
    }

    #[test]
    fn refuses_what_apk_refuses() {
        for bad in ["", "a1", "1.", "1.2_foo", "1.2-x", "1.2 3", "1.2-r"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
