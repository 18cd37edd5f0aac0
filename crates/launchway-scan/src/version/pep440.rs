//! PEP 440 versions: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the
//! normalisations the spec allows (alpha/beta/c/pre/preview/rev/r spellings,
//! `-`/`_`/`.` separators, implicit numbers, `1.0-1` as a post release, a
//! leading `v`, any case).

use super::{VersionError, err};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalPart {
    Num(u64),
    Str(String),
}

#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u64,
    pub release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pub pre: Option<(u8, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    local: Vec<LocalPart>,
}

fn number(s: &str, at: &mut usize) -> Option<u64> {
    let b = s.as_bytes();
    let start = *at;
    while *at < b.len() && b[*at].is_ascii_digit() {
        *at += 1;
    }
    if *at == start {
        return None;
    }
    // Very long numbers saturate rather than fail.
    Some(s[start..*at].parse().unwrap_or(u64::MAX))
}

fn skip_sep(s: &str, at: &mut usize) -> bool {
    if matches!(s.as_bytes().get(*at), Some(b'.' | b'-' | b'_')) {
        *at += 1;
        true
    } else {
        false
    }
}

fn word(s: &str, at: usize, words: &[&str]) -> Option<usize> {
    let rest = &s[at..];
    words
        .iter()
        .filter(|w| rest.starts_with(*w))
        .map(|w| w.len())
        .max()
}

impl Version {
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        let e = |r: &str| err("PEP 440", input, r);
        let lower = input.trim().to_ascii_lowercase();
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        let (main, local) = match s.split_once('+') {
            Some((m, l)) => (m, Some(l)),
            None => (s, None),
        };
        let mut at = 0;
        let mut epoch = 0;
        if let Some(bang) = main.find('!') {
            epoch = main[..bang].parse().map_err(|_| e("bad epoch"))?;
            at = bang + 1;
        }
        let mut release =
            vec![number(main, &mut at).ok_or_else(|| e("expected a release number"))?];
        while main.as_bytes().get(at) == Some(&b'.')
            && main.as_bytes().get(at + 1).is_some_and(u8::is_ascii_digit)
        {
            at += 1;
            release.push(number(main, &mut at).ok_or_else(|| e("expected a number after '.'"))?);
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        // Pre-release.
        {
            let mut p = at;
            skip_sep(main, &mut p);
            let kinds: [(&[&str], u8); 3] = [
                (&["alpha", "a"], 0),
                (&["beta", "b"], 1),
                (&["preview", "pre", "rc", "c"], 2),
            ];
            let found = kinds
                .iter()
                .find_map(|(ws, k)| word(main, p, ws).map(|len| (len, *k)));
            if let Some((len, kind)) = found {
                p += len;
                let mut q = p;
                skip_sep(main, &mut q);
                let n = number(main, &mut q);
                p = if n.is_some() { q } else { p };
                pre = Some((kind, n.unwrap_or(0)));
                at = p;
            }
        }
        // Post-release: `.post1`, `-1`, `.rev`, `.r2`.
        {
            let mut p = at;
            if main.as_bytes().get(p) == Some(&b'-')
                && main.as_bytes().get(p + 1).is_some_and(u8::is_ascii_digit)
            {
                p += 1;
                post = number(main, &mut p);
                at = p;
            } else {
                skip_sep(main, &mut p);
                if let Some(len) = word(main, p, &["post", "rev", "r"]) {
                    p += len;
                    let mut q = p;
                    skip_sep(main, &mut q);
                    let n = number(main, &mut q);
                    p = if n.is_some() { q } else { p };
                    post = Some(n.unwrap_or(0));
                    at = p;
                }
            }
        }
        // Dev release.
        {
            let mut p = at;
            skip_sep(main, &mut p);
            if let Some(len) = word(main, p, &["dev"]) {
                p += len;
                let mut q = p;
                skip_sep(main, &mut q);
                let n = number(main, &mut q);
                p = if n.is_some() { q } else { p };
                dev = Some(n.unwrap_or(0));
                at = p;
            }
        }
        if at != main.len() {
            return Err(e(&format!("unexpected '{}'", &main[at..])));
        }
        let local = match local {
            None => Vec::new(),
            Some(l) => {
                if l.is_empty() {
                    return Err(e("empty local version"));
                }
                l.split(['.', '-', '_'])
                    .map(|p| {
                        if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
                            return Err(e("bad local version segment"));
                        }
                        Ok(match p.parse::<u64>() {
                            Ok(n) => LocalPart::Num(n),
                            Err(_) => LocalPart::Str(p.to_string()),
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The release without trailing zeros, so `1.0` equals `1.0.0`.
    fn trimmed(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 1 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }
}

/// Sort keys as in `packaging`: a dev release of a final sorts before its
/// pre-releases; a missing pre-release sorts after every pre-release; a
/// missing post sorts first; a missing dev sorts last.
fn pre_key(v: &Version) -> (i8, u8, u64) {
    match (v.pre, v.post, v.dev) {
        (None, None, Some(_)) => (-1, 0, 0),
        (None, _, _) => (1, 0, 0),
        (Some((k, n)), _, _) => (0, k, n),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.trimmed().cmp(other.trimmed()))
            .then_with(|| pre_key(self).cmp(&pre_key(other)))
            .then_with(|| match (self.post, other.post) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(&b),
            })
            .then_with(|| match (self.dev, other.dev) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(&b),
            })
            .then_with(|| {
                // No local < any local; numeric segments beat strings.
                let key = |p: &LocalPart| match p {
                    LocalPart::Num(n) => (1, *n, String::new()),
                    LocalPart::Str(s) => (0, 0, s.clone()),
                };
                self.local.iter().map(key).cmp(other.local.iter().map(key))
            })
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
    fn ordering_from_pep440() {
        // The example ordering in PEP 440's "Summary of permitted suffixes and relative ordering".
        let ordered = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn normalisation_and_epochs() {
        assert_eq!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0a"), v("1.0a0"));
        assert_eq!(v("1.0-alpha.1"), v("1.0a1"));
        assert_eq!(v("1.0C1"), v("1.0rc1"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("1.0.rev2"), v("1.0.post2"));
        assert_eq!(v("v2.0"), v("2.0"));
        assert_eq!(v("1.0.dev"), v("1.0.dev0"));
        assert!(v("1!0.1") > v("2.0"));
        assert!(v("2.0") > v("1.9.9.9"));
        assert!(v("1.0+local.1") > v("1.0"));
        assert!(v("1.0a1").is_prerelease());
        for bad in ["", "abc", "1.0+", "1.0+a..b", "1..0", "1.0 foo", "!1"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }
}
