//! Node: `package-lock.json` (v1–v3), `yarn.lock` (v1 and berry) and
//! `pnpm-lock.yaml` (v5, v6, v9).

use super::{Parsed, err, integrity, json_doc};
use crate::sbom::purl::purl;
use crate::sbom::{CollectError, Component, Hash};
use crate::version::Ecosystem;
use std::collections::HashMap;

const ECO: Ecosystem = Ecosystem::Npm;

/// The package name in a `node_modules/…` path.
fn name_from_path(path: &str) -> &str {
    match path.rfind("node_modules/") {
        Some(i) => &path[i + "node_modules/".len()..],
        None => path,
    }
}

pub fn package_lock(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let doc = json_doc(file, text)?;
    if let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) {
        // v2/v3: a flat map of install paths.
        let mut out = Vec::new();
        let mut at_path: HashMap<&str, String> = HashMap::new();
        let mut root: Option<Component> = None;
        for (path, info) in packages {
            if path.is_empty() {
                // The project itself, when it has a name and version.
                if let (Some(n), Some(v)) = (
                    info.get("name").and_then(|n| n.as_str()),
                    info.get("version").and_then(|v| v.as_str()),
                ) {
                    let mut c = Component::new(ECO, n, v, file);
                    c.local = true;
                    root = Some(c);
                }
                continue;
            }
            if info.get("link").and_then(|l| l.as_bool()) == Some(true)
                || !path.contains("node_modules/")
            {
                continue;
            }
            let Some(version) = info.get("version").and_then(|v| v.as_str()) else {
                continue;
            };
            let name = info
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_else(|| name_from_path(path));
            let mut c = Component::new(ECO, name, version, file);
            c.hashes.extend(
                info.get("integrity")
                    .and_then(|i| i.as_str())
                    .and_then(integrity),
            );
            if let Some(l) = info.get("license").and_then(|l| l.as_str()) {
                c.licenses.push(l.to_string());
            }
            c.dev = info.get("dev").and_then(|d| d.as_bool()).unwrap_or(false);
            at_path.insert(path, c.purl.clone());
            out.push((path.as_str(), info, c));
        }
        // Node's resolution: the nearest node_modules up the tree.
        let resolve = |from: &str, dep: &str| -> Option<String> {
            let mut base = from.to_string();
            loop {
                let candidate = if base.is_empty() {
                    format!("node_modules/{dep}")
                } else {
                    format!("{base}/node_modules/{dep}")
                };
                if let Some(p) = at_path.get(candidate.as_str()) {
                    return Some(p.clone());
                }
                if base.is_empty() {
                    return None;
                }
                base = match base.rfind("/node_modules/") {
                    Some(i) => base[..i].to_string(),
                    None => String::new(),
                };
            }
        };
        let deps_of = |path: &str, info: &serde_json::Value| -> Vec<String> {
            [
                "dependencies",
                "optionalDependencies",
                "peerDependencies",
                "devDependencies",
            ]
            .iter()
            // devDependencies are installed for the project only.
            .filter(|k| {
                if path.is_empty() {
                    **k != "peerDependencies"
                } else {
                    **k != "devDependencies"
                }
            })
            .filter_map(|k| info.get(*k).and_then(|d| d.as_object()))
            .flat_map(|d| d.keys().filter_map(|name| resolve(path, name)))
            .collect()
        };
        let root = root.map(|mut r| {
            r.dependencies = packages.get("").map(|i| deps_of("", i)).unwrap_or_default();
            r
        });
        return Ok(root
            .into_iter()
            .chain(out.into_iter().map(|(path, info, mut c)| {
                c.dependencies = deps_of(path, info);
                c
            }))
            .collect());
    }
    // v1: a nested tree of `dependencies`.
    let mut out = Vec::new();
    fn walk(
        file: &str,
        deps: &serde_json::Map<String, serde_json::Value>,
        out: &mut Vec<Component>,
    ) {
        for (name, info) in deps {
            if let Some(version) = info.get("version").and_then(|v| v.as_str())
                && !version.starts_with("file:")
                && !version.starts_with("link:")
            {
                let mut c = Component::new(ECO, name, version, file);
                c.hashes.extend(
                    info.get("integrity")
                        .and_then(|i| i.as_str())
                        .and_then(integrity),
                );
                c.dev = info.get("dev").and_then(|d| d.as_bool()).unwrap_or(false);
                out.push(c);
            }
            if let Some(nested) = info.get("dependencies").and_then(|d| d.as_object()) {
                walk(file, nested, out);
            }
        }
    }
    match doc.get("dependencies").and_then(|d| d.as_object()) {
        Some(deps) => walk(file, deps, &mut out),
        None if doc.get("lockfileVersion").is_none() => {
            return Err(err(
                file,
                None,
                "not a package-lock: no 'lockfileVersion', 'packages' or 'dependencies'",
            ));
        }
        None => {}
    }
    Ok(out)
}

/// An installed package: `node_modules/<name>/package.json` (or a scoped
/// `node_modules/@scope/name/package.json`).
pub fn installed_package(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let doc = json_doc(file, text)?;
    let (Some(name), Some(version)) = (
        doc.get("name").and_then(|n| n.as_str()),
        doc.get("version").and_then(|v| v.as_str()),
    ) else {
        // Not every package.json under node_modules is a package's manifest.
        return Ok(Vec::new());
    };
    let dir = file.rsplit_once('/').map_or(file, |(d, _)| d);
    let mut c = Component::new(ECO, name, version, dir);
    match doc.get("license") {
        Some(serde_json::Value::String(l)) => c.licenses.push(l.clone()),
        Some(serde_json::Value::Object(o)) => c
            .licenses
            .extend(o.get("type").and_then(|t| t.as_str()).map(str::to_string)),
        _ => {}
    }
    Ok(vec![c])
}

/// The name in a yarn/pnpm specifier like `@scope/name@^1.0.0` or `name@npm:^1`.
fn spec_name(spec: &str) -> &str {
    let s = spec.trim().trim_matches('"');
    let from = usize::from(s.starts_with('@'));
    match s[from..].find('@') {
        Some(i) => &s[..from + i],
        None => s,
    }
}

pub fn yarn_lock(file: &str, text: &str) -> Result<Parsed, CollectError> {
    if text.contains("__metadata:") {
        return yarn_berry(file, text);
    }
    struct Entry {
        specs: Vec<String>,
        version: Option<String>,
        integrity: Option<Hash>,
        deps: Vec<String>,
        line: usize,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut in_deps = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        match indent {
            0 => {
                let Some(head) = body.strip_suffix(':') else {
                    return Err(err(
                        file,
                        Some(i + 1),
                        format!("expected an entry header ending in ':', found '{body}'"),
                    ));
                };
                entries.push(Entry {
                    specs: head
                        .split(", ")
                        .map(|s| s.trim_matches('"').to_string())
                        .collect(),
                    version: None,
                    integrity: None,
                    deps: Vec::new(),
                    line: i + 1,
                });
                in_deps = false;
            }
            _ => {
                let Some(e) = entries.last_mut() else {
                    return Err(err(file, Some(i + 1), "an indented line before any entry"));
                };
                if indent <= 2 {
                    in_deps = body == "dependencies:" || body == "optionalDependencies:";
                    let (k, v) = body.split_once(' ').unwrap_or((body, ""));
                    let v = v.trim().trim_matches('"');
                    match k {
                        "version" => e.version = Some(v.to_string()),
                        "integrity" => e.integrity = integrity(v),
                        _ => {}
                    }
                } else if in_deps {
                    let (k, v) = body.split_once(' ').unwrap_or((body, ""));
                    e.deps.push(format!(
                        "{}@{}",
                        k.trim_matches('"'),
                        v.trim().trim_matches('"')
                    ));
                }
            }
        }
    }
    let mut by_spec: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // An entry without a version loses itself, not the file.
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| {
            if e.version.is_none() {
                errors.push(err(file, Some(e.line), "an entry without a version"));
            }
            e.version.is_some()
        })
        .collect();
    for e in &entries {
        let Some(v) = &e.version else {
            continue;
        };
        let name = spec_name(&e.specs[0]);
        let p = purl(ECO, name, v);
        for s in &e.specs {
            by_spec.insert(s.clone(), p.clone());
        }
        let mut c = Component::new(ECO, name, v, file);
        c.hashes.extend(e.integrity.clone());
        out.push(c);
    }
    for (c, e) in out.iter_mut().zip(&entries) {
        c.dependencies = e
            .deps
            .iter()
            .filter_map(|d| by_spec.get(d).cloned())
            .collect();
    }
    Ok(Parsed {
        components: out,
        errors,
    })
}

fn yaml_doc(file: &str, text: &str) -> Result<launchway_yaml::Node, CollectError> {
    launchway_yaml::parse(text).map_err(|e| CollectError {
        file: file.to_string(),
        line: Some(e.pos.line as usize),
        column: Some(e.pos.col as usize),
        message: format!("invalid YAML: {}", e.message),
    })
}

fn yarn_berry(file: &str, text: &str) -> Result<Parsed, CollectError> {
    let doc = yaml_doc(file, text)?;
    let Some(map) = doc.as_map() else {
        return Err(err(file, None, "expected a mapping of entries"));
    };
    let mut by_spec: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut deps = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        if key == "__metadata" {
            continue;
        }
        let resolution = v
            .get("resolution")
            .and_then(|r| r.scalar_string())
            .unwrap_or_default();
        if resolution.contains("@workspace:") || resolution.contains("@link:") {
            continue;
        }
        let Some(version) = v.get("version").and_then(|r| r.scalar_string()) else {
            errors.push(err(
                file,
                Some(k.span.start.line as usize),
                format!("entry '{key}' has no version"),
            ));
            continue;
        };
        let name = spec_name(&resolution).to_string();
        let name = if name.is_empty() {
            spec_name(key.split(", ").next().unwrap_or(key)).to_string()
        } else {
            name
        };
        let mut c = Component::new(ECO, &name, &version, file);
        if let Some(sum) = v.get("checksum").and_then(|s| s.scalar_string()) {
            // Yarn 4 prefixes the cache key: `10c0/<sha512 hex>`.
            let hex = sum.rsplit('/').next().unwrap_or(&sum).to_ascii_lowercase();
            if hex.len() == 128 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                c.hashes.push(Hash {
                    alg: "SHA-512".into(),
                    value: hex,
                });
            }
        }
        for spec in key.split(", ") {
            by_spec.insert(spec.trim().to_string(), c.purl.clone());
        }
        deps.push(
            v.get("dependencies")
                .and_then(|d| d.as_map())
                .map(|m| {
                    m.iter()
                        .filter_map(|(dk, dv)| {
                            Some(format!("{}@{}", dk.as_str()?, dv.scalar_string()?))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        out.push(c);
    }
    for (c, d) in out.iter_mut().zip(deps) {
        c.dependencies = d.iter().filter_map(|s| by_spec.get(s).cloned()).collect();
    }
    Ok(Parsed {
        components: out,
        errors,
    })
}

/// Splits a pnpm package key into name and version:
/// v5 `/name/1.0.0_peer@2`, v6 `/name@1.0.0(peer@2)`, v9 `name@1.0.0`.
fn pnpm_key(key: &str) -> Option<(String, String)> {
    let k = key.trim_start_matches('/');
    let k = k.split('(').next().unwrap_or(k);
    // Past a `@scope/`, a remaining `/` means the v5 `name/version` form.
    let after_scope = if k.starts_with('@') {
        k.find('/').map_or(k.len(), |i| i + 1)
    } else {
        0
    };
    if k[after_scope..].contains('/') {
        let (n, v) = k.rsplit_once('/')?;
        return Some((n.to_string(), v.split('_').next().unwrap_or(v).to_string()));
    }
    let i = k[after_scope..].find('@')? + after_scope;
    Some((k[..i].to_string(), k[i + 1..].to_string()))
}

pub fn pnpm_lock(file: &str, text: &str) -> Result<Parsed, CollectError> {
    let doc = yaml_doc(file, text)?;
    let Some(packages) = doc.get("packages").and_then(|p| p.as_map()) else {
        return Ok(Parsed::default());
    };
    let snapshots = doc.get("snapshots");
    let mut out = Vec::new();
    let mut deps = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in packages {
        let Some(key) = k.as_str() else { continue };
        let Some((name, version)) = pnpm_key(key) else {
            errors.push(err(
                file,
                Some(k.span.start.line as usize),
                format!("cannot read package key '{key}'"),
            ));
            continue;
        };
        if version.starts_with("link:") || version.starts_with("file:") {
            continue;
        }
        let mut c = Component::new(ECO, &name, &version, file);
        c.hashes.extend(
            v.get("resolution")
                .and_then(|r| r.get("integrity"))
                .and_then(|i| i.scalar_string())
                .and_then(|i| integrity(&i)),
        );
        c.dev = v
            .get("dev")
            .is_some_and(|d| d.kind == launchway_yaml::NodeKind::Bool(true));
        let dep_source = snapshots.and_then(|s| s.get(key)).unwrap_or(v);
        deps.push(
            dep_source
                .get("dependencies")
                .and_then(|d| d.as_map())
                .map(|m| {
                    m.iter()
                        .filter_map(|(dk, dv)| {
                            let n = dk.as_str()?;
                            let ver = dv.scalar_string()?;
                            let ver = ver
                                .split('(')
                                .next()
                                .unwrap_or(&ver)
                                .split('_')
                                .next()
                                .unwrap_or("")
                                .to_string();
                            Some(purl(ECO, n, &ver))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        out.push(c);
    }
    for (c, d) in out.iter_mut().zip(deps) {
        c.dependencies = d;
    }
    Ok(Parsed {
        components: out,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_lock_v3_with_nesting() {
        let text = r#"{"name": "app", "lockfileVersion": 3, "packages": {
            "": {"name": "app", "dependencies": {"a": "^1"}},
            "node_modules/a": {"version": "1.0.0", "integrity": "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==", "license": "MIT", "dependencies": {"b": "^2"}},
            "node_modules/a/node_modules/b": {"version": "2.0.0"},
            "node_modules/b": {"version": "1.0.0", "dev": true},
            "node_modules/@s/c": {"version": "3.0.0"},
            "node_modules/linked": {"link": true, "resolved": "../x"}
        }}"#;
        let cs = package_lock("package-lock.json", text).unwrap();
        assert_eq!(cs.len(), 4);
        let a = cs.iter().find(|c| c.name == "a").unwrap();
        assert_eq!(a.dependencies, ["pkg:npm/b@2.0.0"], "the nested b wins");
        assert_eq!(a.licenses, ["MIT"]);
        assert!(cs.iter().any(|c| c.purl == "pkg:npm/%40s/c@3.0.0"));
        assert!(cs.iter().find(|c| c.purl == "pkg:npm/b@1.0.0").unwrap().dev);
        assert!(package_lock("p.json", "{\"x\": 1}").is_err());
        assert_eq!(
            package_lock("p.json", "{\n  \"a\": ,\n}").unwrap_err().line,
            Some(2)
        );
    }

    #[test]
    fn package_lock_v1() {
        let text = r#"{"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}}, "loc": {"version": "file:../loc"}}}"#;
        let cs = package_lock("package-lock.json", text).unwrap();
        assert_eq!(cs.len(), 2);
    }

    #[test]
    fn yarn_v1() {
        let text = "# yarn lockfile v1\n\n\n\"@babel/code-frame@^7.0.0\", \"@babel/code-frame@^7.10.4\":\n  version \"7.12.13\"\n  resolved \"https://registry.yarnpkg.com/x.tgz\"\n  integrity sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==\n  dependencies:\n    js-tokens \"^4.0.0\"\n\njs-tokens@^4.0.0:\n  version \"4.0.0\"\n";
        let cs = yarn_lock("yarn.lock", text).unwrap().components;
        assert_eq!(cs[0].purl, "pkg:npm/%40babel/code-frame@7.12.13");
        assert_eq!(cs[0].dependencies, ["pkg:npm/js-tokens@4.0.0"]);
        assert_eq!(cs[0].hashes.len(), 1);
        assert_eq!(
            yarn_lock("yarn.lock", "foo@1\n  version \"1\"\n")
                .unwrap_err()
                .line,
            Some(1)
        );
    }

    #[test]
    fn yarn_berry_and_pnpm() {
        let berry = "__metadata:\n  version: 8\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"app@workspace:.\"\n\n\"lodash@npm:^4.17.0\":\n  version: 4.17.21\n  resolution: \"lodash@npm:4.17.21\"\n  checksum: 10c0/eb835a2e51d381e561e508ce932ea50a8e5a68f4ebdd771ea240d3048244a8d13658acbd502cd4829768c56f2e16bdd4340b9ea141297d472517b83868e677f7\n  languageName: node\n  linkType: hard\n";
        let cs = yarn_lock("yarn.lock", berry).unwrap().components;
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].purl, "pkg:npm/lodash@4.17.21");
        assert_eq!(cs[0].hashes[0].alg, "SHA-512");
        let v9 = "lockfileVersion: '9.0'\npackages:\n  '@types/node@20.1.0':\n    resolution: {integrity: sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==}\n  react-dom@18.2.0:\n    resolution: {integrity: sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==}\nsnapshots:\n  react-dom@18.2.0(react@18.2.0):\n    dependencies:\n      loose-envify: 1.4.0\n";
        let cs = pnpm_lock("pnpm-lock.yaml", v9).unwrap().components;
        assert_eq!(cs[0].purl, "pkg:npm/%40types/node@20.1.0");
        assert_eq!(cs[1].purl, "pkg:npm/react-dom@18.2.0");
        let v5 = "lockfileVersion: 5.4\npackages:\n  /@babel/core/7.20.0_supports-color@5.5.0:\n    resolution: {integrity: sha512-x}\n    dev: true\n    dependencies:\n      debug: 4.3.4_supports-color@5.5.0\n";
        let cs = pnpm_lock("pnpm-lock.yaml", v5).unwrap().components;
        assert_eq!(cs[0].purl, "pkg:npm/%40babel/core@7.20.0");
        assert!(cs[0].dev);
        assert_eq!(cs[0].dependencies, ["pkg:npm/debug@4.3.4"]);
        assert_eq!(
            pnpm_key("/lodash@4.17.21(x@1)"),
            Some(("lodash".into(), "4.17.21".into()))
        );
    }
}
