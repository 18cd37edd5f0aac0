//! Debian version ordering as dpkg implements it:
//! `[epoch:]upstream_version[-debian_revision]`, with `~` sorting before
//! everything (even the end of the string) and letters before other symbols.

use super::{VersionError, err};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u64,
    pub upstream: String,
    pub revision: String,
}

impl Version {
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        let e = |r: &str| err("Debian", input, r);
        let s = input.trim();
        if s.is_empty() {
            return Err(e("empty version"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((ep, rest)) => (ep.parse().map_err(|_| e("epoch must be a number"))?, rest),
            None => (0, s),
        };
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if upstream.is_empty() || !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(e("the upstream version must start with a digit"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-' | ':');
        if !upstream.chars().all(ok) || !revision.chars().all(|c| ok(c) && c != ':') {
            return Err(e("invalid character"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

/// dpkg's character weight for the non-digit parts.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, compared numerically (leading zeros ignored).
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

super::order_by_cmp!(Version);

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        let (x, y) = (Version::parse(a).unwrap(), Version::parse(b).unwrap());
        assert!(x < y, "{a} < {b}");
    }

    #[test]
    fn dpkg_ordering() {
        // From the Debian policy manual's description of the ordering.
        lt("1.0~rc1", "1.0");
        lt("1.0~~", "1.0~");
        lt("1.0~", "1.0");
        lt("1.0", "1.0a");
        lt("1.0a", "1.0+");
        lt("1.0", "1.0.1");
        lt("1.9", "1.10");
        lt("2.30-1", "2.30-1.1");
        lt("2.30-1", "2.30-2");
        lt("9.9", "1:0.1");
        lt("1:2.3-4", "2:1.0");
        lt("1.2.3-1~deb12u1", "1.2.3-1");
        lt("1.2.3-1", "1.2.3-1+deb12u1");
        assert_eq!(
            Version::parse("1.01").unwrap(),
            Version::parse("1.1").unwrap()
        );
        assert_eq!(
            Version::parse("0:1.0").unwrap(),
            Version::parse("1.0").unwrap()
        );
        assert!(Version::parse("a1.0").is_err());
        assert!(Version::parse("x:1.0").is_err());
        assert!(Version::parse("").is_err());
    }
}
