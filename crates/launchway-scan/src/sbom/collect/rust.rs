//! Rust: `Cargo.lock` (v1–v4). Workspace members (no `source`) are the
//! project itself and are left out.

use crate::sbom::{CollectError, Component, Hash};
use crate::version::Ecosystem;

/// One `[[package]]` as written.
struct Locked {
    name: String,
    version: String,
    /// From a registry or git (not a workspace member).
    external: bool,
    checksum: Option<String>,
    deps: Vec<String>,
}

#[derive(serde::Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockedPackage>,
    #[serde(default)]
    metadata: Option<toml::Table>,
}

#[derive(serde::Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

/// Cargo writes lockfiles in one regular shape; reading that shape line by
/// line is several times faster than a TOML parser. Anything else (hand
/// edits, v1 `[metadata]`) returns `None` and goes through the parser.
fn fast_parse(text: &str) -> Option<LockFile> {
    let mut package: Vec<LockedPackage> = Vec::new();
    let mut in_deps = false;
    let unquote = |v: &str| -> Option<String> {
        let v = v.trim();
        (v.len() >= 2
            && v.starts_with('"')
            && v.ends_with('"')
            && !v[1..v.len() - 1].contains(['"', '\\']))
        .then(|| v[1..v.len() - 1].to_string())
    };
    for raw in text.lines() {
        let line = raw.trim_end();
        if in_deps {
            if line == "]" {
                in_deps = false;
            } else {
                let d = unquote(line.trim().trim_end_matches(','))?;
                package.last_mut()?.dependencies.push(d);
            }
            continue;
        }
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("version = ") && package.is_empty()
        {
            continue;
        }
        if line == "[[package]]" {
            package.push(LockedPackage {
                name: String::new(),
                version: String::new(),
                source: None,
                checksum: None,
                dependencies: Vec::new(),
            });
            continue;
        }
        let (k, v) = line.split_once(" = ")?;
        let p = package.last_mut()?;
        match k {
            "name" => p.name = unquote(v)?,
            "version" => p.version = unquote(v)?,
            "source" => p.source = Some(unquote(v)?),
            "checksum" => p.checksum = Some(unquote(v)?),
            "dependencies" if v == "[" => in_deps = true,
            "dependencies" if v == "[]" => {}
            _ => return None,
        }
    }
    if in_deps
        || package
            .iter()
            .any(|p| p.name.is_empty() || p.version.is_empty())
    {
        return None;
    }
    Some(LockFile {
        package,
        metadata: None,
    })
}

pub fn cargo_lock(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    // Typed parsing allocates far less than a generic TOML table.
    let parsed = match fast_parse(text) {
        Some(doc) => Ok(doc),
        None => toml::from_str::<LockFile>(text),
    };
    let doc: LockFile = parsed.map_err(|e| {
        let (line, column) = e.span().map_or((None, None), |sp| {
            let (l, c) = super::position(text, sp.start);
            (Some(l), Some(c))
        });
        let what = if e.message().contains("missing field") {
            format!("a [[package]] entry is incomplete: {}", e.message())
        } else {
            format!("invalid TOML: {}", e.message())
        };
        CollectError {
            file: file.to_string(),
            line,
            column,
            message: what,
        }
    })?;
    // v1 lockfiles keep checksums in [metadata]: "checksum NAME VERSION (SOURCE)" = "hash".
    let legacy = doc.metadata.as_ref();
    let entries: Vec<Locked> = doc
        .package
        .into_iter()
        .map(|p| {
            let checksum = p.checksum.or_else(|| {
                let src = p.source.as_ref()?;
                legacy?
                    .get(&format!("checksum {} {} ({src})", p.name, p.version))?
                    .as_str()
                    .map(str::to_string)
            });
            Locked {
                external: p.source.is_some(),
                name: p.name,
                version: p.version,
                checksum,
                deps: p.dependencies,
            }
        })
        .collect();
    // name → (version, purl) for resolving `dependencies` entries.
    let mut by_name: std::collections::HashMap<&str, Vec<(&str, String)>> =
        std::collections::HashMap::new();
    for e in &entries {
        by_name.entry(e.name.as_str()).or_default().push((
            e.version.as_str(),
            crate::sbom::purl::purl(Ecosystem::Crates, &e.name, &e.version),
        ));
    }
    let purl_of = |dep: &str| -> Option<String> {
        let mut parts = dep.split_whitespace();
        let name = parts.next()?;
        let version = parts.next();
        by_name
            .get(name)?
            .iter()
            .find(|(v, _)| version.is_none_or(|want| want == *v))
            .map(|(_, p)| p.clone())
    };
    let mut out = Vec::new();
    for Locked {
        name,
        version,
        external,
        checksum,
        deps,
    } in &entries
    {
        let mut c = Component::new(Ecosystem::Crates, name, version, file);
        c.local = !external;
        if let Some(h) = checksum
            .as_ref()
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            c.hashes.push(Hash {
                alg: "SHA-256".into(),
                value: h.to_ascii_lowercase(),
            });
        }
        c.dependencies = deps.iter().filter_map(|d| purl_of(d)).collect();
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfile() {
        let text = r#"
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde", "itoa 1.0.9"]

[[package]]
name = "serde"
version = "1.0.190"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "91d3c334ca1ee894a2c6f6ad698fe8c435b76d504b13d436f0685d648d6d96f7"
dependencies = ["itoa 1.0.9 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "itoa"
version = "1.0.9"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        let cs = cargo_lock("Cargo.lock", text).unwrap();
        assert_eq!(cs.len(), 3);
        assert!(cs[0].local, "the workspace member is the project itself");
        assert_eq!(
            cs[0].dependencies,
            ["pkg:cargo/serde@1.0.190", "pkg:cargo/itoa@1.0.9"]
        );
        assert_eq!(cs[1].purl, "pkg:cargo/serde@1.0.190");
        assert_eq!(cs[1].hashes[0].alg, "SHA-256");
        assert_eq!(cs[1].dependencies, ["pkg:cargo/itoa@1.0.9"]);
        let e = cargo_lock("Cargo.lock", "[[package]]\nname = \"x\"\n").unwrap_err();
        assert!(e.message.contains("incomplete"), "{}", e.message);
        assert!(
            cargo_lock("Cargo.lock", "[[package]\n")
                .unwrap_err()
                .line
                .is_some()
        );
    }

    #[test]
    fn fast_path_agrees_with_the_toml_parser() {
        // This workspace's own lockfile, written by Cargo.
        let text = include_str!("../../../../../Cargo.lock");
        let fast = fast_parse(text).expect("Cargo's own output takes the fast path");
        let slow: LockFile = toml::from_str(text).unwrap();
        assert_eq!(fast.package.len(), slow.package.len());
        for (a, b) in fast.package.iter().zip(&slow.package) {
            assert_eq!(
                (&a.name, &a.version, &a.source, &a.checksum, &a.dependencies),
                (&b.name, &b.version, &b.source, &b.checksum, &b.dependencies)
            );
        }
        // Anything unusual falls back to the parser.
        assert!(fast_parse("[[package]]\nname = 'single quoted'\n").is_none());
        assert!(fast_parse("[metadata]\n").is_none());
    }
}
