//! Debian: `var/lib/dpkg/status` in a root file system.

use super::err;
use crate::sbom::{CollectError, Component, SourcePackage};
use crate::version::Ecosystem;
use std::collections::HashMap;

/// `Source: name` or `Source: name (version)` — the source package Debian's
/// advisories name; its version is the binary's unless given.
fn source_package(field: &str, binary_version: &str) -> Option<SourcePackage> {
    let (name, version) = match field.split_once('(') {
        Some((n, v)) => (n.trim(), v.trim_end_matches(')').trim()),
        None => (field.trim(), binary_version),
    };
    (!name.is_empty()).then(|| SourcePackage {
        name: name.to_string(),
        version: version.to_string(),
    })
}

pub fn dpkg_status(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    read(file, text, true)
}

/// A file of `var/lib/dpkg/status.d/` (distroless images): paragraphs
/// without `Status:`, every one installed.
pub fn status_d(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    read(file, text, false)
}

fn read(file: &str, text: &str, need_status: bool) -> Result<Vec<Component>, CollectError> {
    let mut out: Vec<Component> = Vec::new();
    let mut depends: Vec<Vec<String>> = Vec::new();
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut last_key: Option<String> = None;
    let mut start_line = 1;
    let lines: Vec<&str> = text.lines().chain(std::iter::once("")).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            if !fields.is_empty() {
                let installed = !need_status
                    || fields
                        .get("Status")
                        .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
                if installed {
                    let (Some(name), Some(version)) =
                        (fields.get("Package"), fields.get("Version"))
                    else {
                        return Err(err(
                            file,
                            Some(start_line),
                            "a package paragraph without 'Package' and 'Version'",
                        ));
                    };
                    let mut c = Component::new(Ecosystem::Debian, name, version, file);
                    if let Some(arch) = fields.get("Architecture") {
                        c.purl = format!("{}?arch={arch}", c.purl);
                    }
                    c.source = fields
                        .get("Source")
                        .and_then(|src| source_package(src, version));
                    depends.push(
                        fields
                            .get("Depends")
                            .map(|d| {
                                d.split(',')
                                    .filter_map(|alt| alt.split('|').next())
                                    .map(|p| {
                                        p.split(['(', ':']).next().unwrap_or("").trim().to_string()
                                    })
                                    .filter(|p| !p.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    );
                    out.push(c);
                }
                fields.clear();
            }
            last_key = None;
            start_line = i + 2;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation of the previous field (descriptions, conffiles).
            if last_key.is_none() {
                return Err(err(
                    file,
                    Some(i + 1),
                    "a continuation line outside a field",
                ));
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(err(
                file,
                Some(i + 1),
                format!("expected 'Field: value', found '{line}'"),
            ));
        };
        fields.insert(k.to_string(), v.trim().to_string());
        last_key = Some(k.to_string());
    }
    let by_name: HashMap<String, String> = out
        .iter()
        .map(|c| (c.name.clone(), c.purl.clone()))
        .collect();
    for (c, deps) in out.iter_mut().zip(depends) {
        c.dependencies = deps
            .iter()
            .filter_map(|d| by_name.get(d).cloned())
            .collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n shared libraries\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nDepends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1), libc6 | libc6.1\n";
        let cs = dpkg_status("var/lib/dpkg/status", text).unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(
            cs[0].purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
        );
        assert_eq!(cs[1].dependencies, [cs[0].purl.clone()]);
        assert_eq!(
            dpkg_status("s", "Package libc\n").unwrap_err().line,
            Some(1)
        );
    }
}
