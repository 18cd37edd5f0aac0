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

/// A package URL; a component with no known version (a project whose
/// version is computed at build time) gets none (`pkg:pypi/app`).
pub fn purl(eco: Ecosystem, name: &str, version: &str) -> String {
    let unversioned = purl_with(eco, name, "");
    if version.is_empty() {
        return unversioned.trim_end_matches('@').to_string();
    }
    purl_with(eco, name, version)
}

fn purl_with(eco: Ecosystem, name: &str, version: &str) -> String {
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
        Ecosystem::Alpine => format!("pkg:apk/alpine/{}@{v}", encode(name, false)),
        // The namespace (the distribution) is set from os-release in images.
        Ecosystem::Rpm => format!("pkg:rpm/{}@{v}", encode(name, false)),
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

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a purl back into ecosystem, name and version, for the types
/// Launchway knows; `None` otherwise.
pub fn parse(purl: &str) -> Option<(Ecosystem, String, String)> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split('#').next()?;
    let rest = rest.split('?').next()?;
    let (path, version) = rest.rsplit_once('@').unwrap_or((rest, ""));
    let (ty, name_path) = path.split_once('/')?;
    let eco = match ty.to_ascii_lowercase().as_str() {
        "pypi" => Ecosystem::PyPI,
        "cargo" => Ecosystem::Crates,
        "npm" => Ecosystem::Npm,
        "golang" => Ecosystem::Go,
        "deb" => Ecosystem::Debian,
        "apk" => Ecosystem::Alpine,
        "rpm" => Ecosystem::Rpm,
        _ => return None,
    };
    let segs: Vec<String> = name_path.split('/').map(decode).collect();
    let name = match eco {
        Ecosystem::Npm | Ecosystem::Go => segs.join("/"),
        // deb: namespace is the distribution.
        _ => segs.last()?.clone(),
    };
    Some((eco, name, decode(version)))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn roundtrip() {
        for (eco, n, v) in [
            (Ecosystem::Npm, "@babel/core", "7.0.0"),
            (Ecosystem::PyPI, "requests", "2.31.0"),
            (Ecosystem::Go, "github.com/gorilla/mux", "v1.8.0"),
            (Ecosystem::Debian, "zlib1g", "1:1.2.13.dfsg-1"),
            (Ecosystem::Crates, "serde", "1.0.0+build"),
            (Ecosystem::Alpine, "musl", "1.2.4_git20230717-r4"),
        ] {
            assert_eq!(
                parse(&purl(eco, n, v)),
                Some((eco, n.to_string(), v.to_string()))
            );
        }
        assert_eq!(
            parse("pkg:deb/debian/zlib1g@1%3A1.2?arch=amd64").unwrap().2,
            "1:1.2"
        );
        assert_eq!(parse("pkg:maven/a/b@1"), None);
        assert_eq!(parse("nonsense"), None);
    }
}
