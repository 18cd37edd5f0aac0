//! Licence strings as sources state them, turned into SPDX expressions
//! where they are ones, and into `LicenseRef-` identifiers where not.

/// Identifiers from the SPDX licence list that packages commonly declare.
const KNOWN: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-2.0",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "GPL-1.0-or-later",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-1.1",
    "MPL-2.0",
    "MPL-2.0-no-copyleft-exception",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Python-2.0.1",
    "Ruby",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];
const EXCEPTIONS: &[&str] = &[
    "LLVM-exception",
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "Autoconf-exception-3.0",
];

fn known(id: &str) -> bool {
    let id = id.strip_suffix('+').unwrap_or(id);
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(id))
}

fn canonical(id: &str) -> String {
    let (base, plus) = match id.strip_suffix('+') {
        Some(b) => (b, "+"),
        None => (id, ""),
    };
    let k = KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(base))
        .copied()
        .unwrap_or(base);
    format!("{k}{plus}")
}

/// An SPDX expression for a licence string, if it is one made of known
/// identifiers (`MIT`, `MIT OR Apache-2.0`, Cargo's old `MIT/Apache-2.0`).
pub fn expression(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let s = if s.contains('/') && !s.contains(' ') {
        s.replace('/', " OR ")
    } else {
        s.to_string()
    };
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0i32;
    let mut expect_term = true;
    let mut after_with = false;
    for tok in spaced.split_whitespace() {
        match tok {
            "(" if expect_term => {
                depth += 1;
                out.push(tok.into());
            }
            ")" if !expect_term && depth > 0 => {
                depth -= 1;
                out.push(tok.into());
            }
            t if !expect_term && ["AND", "OR", "and", "or"].contains(&t) => {
                out.push(t.to_ascii_uppercase());
                expect_term = true;
            }
            t if !expect_term && (t == "WITH" || t == "with") => {
                out.push("WITH".into());
                expect_term = true;
                after_with = true;
            }
            t if expect_term && after_with => {
                let e = EXCEPTIONS.iter().find(|e| e.eq_ignore_ascii_case(t))?;
                out.push((*e).to_string());
                expect_term = false;
                after_with = false;
            }
            t if expect_term && known(t) => {
                out.push(canonical(t));
                expect_term = false;
            }
            _ => return None,
        }
    }
    if expect_term || depth != 0 {
        return None;
    }
    Some(out.join(" ").replace("( ", "(").replace(" )", ")"))
}

/// A `LicenseRef-` identifier for free text (idstring: letters, digits, `.` and `-`).
pub fn license_ref(s: &str) -> String {
    let mut id: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while id.contains("--") {
        id = id.replace("--", "-");
    }
    format!("LicenseRef-{}", id.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        assert_eq!(expression("MIT").as_deref(), Some("MIT"));
        assert_eq!(
            expression("mit or apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            expression("MIT/Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            expression("(MIT OR Apache-2.0) AND BSD-3-Clause").as_deref(),
            Some("(MIT OR Apache-2.0) AND BSD-3-Clause")
        );
        assert_eq!(
            expression("Apache-2.0 WITH LLVM-exception").as_deref(),
            Some("Apache-2.0 WITH LLVM-exception")
        );
        assert_eq!(expression("GPL-2.0+").as_deref(), Some("GPL-2.0+"));
        for bad in ["MIT License", "BSD", "MIT OR", "(MIT", "", "Proprietary"] {
            assert_eq!(expression(bad), None, "{bad}");
        }
        assert_eq!(
            license_ref("BSD License (3 clause)"),
            "LicenseRef-BSD-License-3-clause"
        );
    }
}
