//! Package URLs (purl), per the purl specification's type rules.

use crate::version::Ecosystem;

/// Percent-encodes everything but unreserved characters (and `/` when
/// `keep_slash`), as purl requires for names and versions.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | '~')
            || (keep_slash && c == '/')
        {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn purl(eco: Ecosystem, name: &str, version: &str) -> String {
    let v = encode(version, false);
    match eco {
        // PyPI names are lowercased with `_` as `-`.
        Ecosystem::PyPI => format!("pkg:pypi/{}@{v}", encode(&eco.normalize_name(name), false)),
        Ecosystem::Crates => format!("pkg:cargo/{}@{v}", encode(name, false)),
        Ecosystem::Npm => match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, n)) => format!(
                "pkg:npm/%40{}/{}@{v}",
                encode(scope, false),
                encode(n, false)
            ),
            None => format!("pkg:npm/{}@{v}", encode(name, false)),
        },
        // Go module paths keep their slashes as namespace separators.
        Ecosystem::Go => format!(
            "pkg:golang/{}@{v}",
            encode(&name.to_ascii_lowercase(), true)
        ),
        Ecosystem::Debian => format!("pkg:deb/debian/{}@{v}", encode(name, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            purl(Ecosystem::PyPI, "Django_REST", "3.0"),
            "pkg:pypi/django-rest@3.0"
        );
        assert_eq!(
            purl(Ecosystem::Npm, "@babel/core", "7.0.0"),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl(Ecosystem::Go, "github.com/gorilla/mux", "v1.8.0"),
            "pkg:golang/github.com/gorilla/mux@v1.8.0"
        );
        assert_eq!(
            purl(Ecosystem::Debian, "libc6", "2.36-9+deb12u4"),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4"
        );
        assert_eq!(
            purl(Ecosystem::Crates, "serde", "1.0.0"),
            "pkg:cargo/serde@1.0.0"
        );
    }
}
