//! Python: requirements files (pins, extras, markers, hashes), Pipfile.lock,
//! poetry.lock, uv.lock, pdm.lock, and installed distributions
//! (`*.dist-info/METADATA`, so a virtualenv or a root file system counts,
//! and `RECORD` for the files each one owns).

use super::{Parsed, base64_decode, err, hash, json_doc, toml_doc};
use crate::sbom::{CollectError, Component, Hash, PackageFile};
use crate::version::Ecosystem;
use std::collections::HashMap;

const ECO: Ecosystem = Ecosystem::PyPI;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `requirements*.txt`: only exact pins (`==`, `===`) name a version.
pub fn requirements(file: &str, text: &str) -> Result<Parsed, CollectError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // A UTF-8 byte-order mark (Windows editors write one) is not text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Join continuation lines, remembering where each logical line starts.
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        let line = raw.trim_end();
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        logical.push((start, std::mem::take(&mut cur)));
    }
    if !cur.is_empty() {
        logical.push((start, cur));
    }
    for (line_no, line) in logical {
        // A comment is a whole line starting with `#`, or the rest of a
        // line after whitespace and `#` (pip's rule) — a `#` inside a
        // full-line comment (`# see issue #42`) is part of it.
        if line.trim_start().starts_with('#') {
            continue;
        }
        let line = match line.find([' ', '\t']).and_then(|_| {
            line.char_indices()
                .find(|(i, c)| *c == '#' && line[..*i].ends_with([' ', '\t']))
                .map(|(i, _)| i)
        }) {
            Some(i) => &line[..i],
            None => &line[..],
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('-') {
            continue;
        }
        let mut hashes = Vec::new();
        let mut spec_part = line;
        if let Some(i) = line.find("--") {
            spec_part = line[..i].trim();
            for opt in line[i..].split_whitespace() {
                if let Some(h) = opt.strip_prefix("--hash=").and_then(hash) {
                    hashes.push(h);
                }
            }
        }
        let spec = spec_part.split(';').next().unwrap_or("").trim();
        if spec.contains("://")
            || spec.contains(" @ ")
            || spec.starts_with('.')
            || spec.starts_with('/')
        {
            continue; // URL, path or VCS requirement: no registry version.
        }
        let name_end = spec
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(spec.len());
        let name = &spec[..name_end];
        if !valid_name(name) {
            // This line is lost, not the file.
            errors.push(err(
                file,
                Some(line_no),
                format!("expected a requirement like 'name==1.0', found '{spec}'"),
            ));
            continue;
        }
        let mut rest = spec[name_end..].trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(close) => rest = rest[close + 1..].trim_start(),
                None => {
                    errors.push(err(file, Some(line_no), "unclosed '[' in extras"));
                    continue;
                }
            }
        }
        let version = rest
            .strip_prefix("===")
            .or_else(|| rest.strip_prefix("=="))
            .map(|v| v.split(',').next().unwrap_or("").trim())
            .filter(|v| !v.is_empty() && !v.contains('*'));
        if let Some(v) = version {
            let mut c = Component::new(ECO, name, v, file);
            c.hashes = hashes;
            out.push(c);
        }
    }
    Ok(Parsed {
        components: out,
        errors,
    })
}

pub fn pipfile_lock(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let doc = json_doc(file, text)?;
    let mut out = Vec::new();
    for (section, dev) in [("default", false), ("develop", true)] {
        let Some(map) = doc.get(section).and_then(|v| v.as_object()) else {
            continue;
        };
        for (name, info) in map {
            let Some(v) = info
                .get("version")
                .and_then(|v| v.as_str())
                .and_then(|v| v.strip_prefix("=="))
            else {
                continue;
            };
            let mut c = Component::new(ECO, name, v, file);
            c.dev = dev;
            c.hashes = info
                .get("hashes")
                .and_then(|h| h.as_array())
                .map(|a| a.iter().filter_map(|h| h.as_str().and_then(hash)).collect())
                .unwrap_or_default();
            out.push(c);
        }
    }
    Ok(out)
}

fn packages<'a>(file: &str, doc: &'a toml::Table) -> Result<&'a Vec<toml::Value>, CollectError> {
    doc.get("package")
        .and_then(|p| p.as_array())
        .ok_or_else(|| err(file, None, "expected [[package]] entries"))
}

fn str_field<'a>(file: &str, t: &'a toml::Value, key: &str) -> Result<&'a str, CollectError> {
    t.get(key).and_then(|v| v.as_str()).ok_or_else(|| {
        err(
            file,
            None,
            format!("a [[package]] entry has no string '{key}'"),
        )
    })
}

fn file_hashes(v: Option<&toml::Value>) -> Vec<crate::sbom::Hash> {
    v.and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|f| f.get("hash").and_then(|h| h.as_str()).and_then(hash))
                .collect()
        })
        .unwrap_or_default()
}

/// A dependency as a lockfile names it: the package, and the version
/// when the lockfile says which (uv does when a package is locked at
/// several versions, one per environment marker).
type Dep = (String, Option<String>);

/// Resolves dependencies to the purls of the locked packages: the named
/// version, or every locked version of the name when none is named.
fn link(out: &mut [Component], deps: Vec<Vec<Dep>>) {
    let mut by_name: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for c in out.iter() {
        by_name
            .entry(ECO.normalize_name(&c.name))
            .or_default()
            .push((c.version.clone(), c.purl.clone()));
    }
    for (c, named) in out.iter_mut().zip(deps) {
        let mut purls: Vec<String> = Vec::new();
        for (n, version) in &named {
            let Some(locked) = by_name.get(&ECO.normalize_name(n)) else {
                continue;
            };
            purls.extend(
                locked
                    .iter()
                    .filter(|(v, _)| version.as_ref().is_none_or(|want| want == v))
                    .map(|(_, p)| p.clone()),
            );
        }
        purls.sort();
        purls.dedup();
        c.dependencies = purls;
    }
}

/// Each `[[package]]` of a TOML lockfile as a component; `fill` adds what
/// the format records and returns the names of the package's dependencies,
/// which are then linked to the locked packages.
fn each_package(
    file: &str,
    doc: &toml::Table,
    mut fill: impl FnMut(&toml::Value, &mut Component) -> Vec<Dep>,
) -> Result<Parsed, CollectError> {
    let mut out = Vec::new();
    let mut deps = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in packages(file, doc)?.iter().enumerate() {
        // One bad entry loses itself, not the file.
        let entry = |e: CollectError| CollectError {
            message: format!("[[package]] #{}: {}", i + 1, e.message),
            ..e
        };
        // The project itself may have a version computed at build time
        // (`dynamic = ["version"]`): uv writes none. It is still listed.
        let local = p.get("source").is_some_and(|s| {
            s.get("editable").is_some()
                || s.get("virtual").is_some()
                || s.get("directory").is_some()
        });
        let version = match str_field(file, p, "version") {
            Ok(v) => v,
            Err(_) if local => "",
            Err(e) => {
                errors.push(entry(e));
                continue;
            }
        };
        let name = match str_field(file, p, "name") {
            Ok(n) => n,
            Err(e) => {
                errors.push(entry(e));
                continue;
            }
        };
        let mut c = Component::new(ECO, name, version, file);
        deps.push(fill(p, &mut c));
        out.push(c);
    }
    link(&mut out, deps);
    Ok(Parsed {
        components: out,
        errors,
    })
}

pub fn poetry_lock(file: &str, text: &str) -> Result<Parsed, CollectError> {
    let doc = toml_doc(file, text)?;
    // Older lockfiles keep hashes in [metadata.files].
    let legacy_files = doc.get("metadata").and_then(|m| m.get("files"));
    each_package(file, &doc, |p, c| {
        c.hashes = file_hashes(p.get("files"));
        if c.hashes.is_empty() {
            c.hashes = file_hashes(legacy_files.and_then(|f| f.get(&c.name)));
        }
        c.dev = p.get("category").and_then(|v| v.as_str()) == Some("dev");
        p.get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| t.keys().map(|k| (k.clone(), None)).collect())
            .unwrap_or_default()
    })
}

pub fn uv_lock(file: &str, text: &str) -> Result<Parsed, CollectError> {
    each_package(file, &toml_doc(file, text)?, |p, c| {
        // The project itself (editable, virtual or a path) is local.
        c.local = p.get("source").is_some_and(|s| {
            s.get("editable").is_some()
                || s.get("virtual").is_some()
                || s.get("directory").is_some()
        });
        c.hashes.extend(
            p.get("sdist")
                .and_then(|s| s.get("hash"))
                .and_then(|h| h.as_str())
                .and_then(hash),
        );
        c.hashes.extend(file_hashes(p.get("wheels")));
        // `{ name = "numpy", version = "2.0.2", marker = "python_version < '3.10'" }`:
        // a package locked at two versions links to the one named.
        p.get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| {
                        let name = d.get("name")?.as_str()?.to_string();
                        let version = d
                            .get("version")
                            .and_then(|v| v.as_str())
                            .map(str::to_string);
                        Some((name, version))
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

pub fn pdm_lock(file: &str, text: &str) -> Result<Parsed, CollectError> {
    each_package(file, &toml_doc(file, text)?, |p, c| {
        c.hashes = file_hashes(p.get("files"));
        c.dev = p
            .get("groups")
            .and_then(|g| g.as_array())
            .is_some_and(|g| !g.is_empty() && g.iter().all(|x| x.as_str() != Some("default")));
        // Requirement strings: the name is what precedes the first specifier.
        p.get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str())
                    .map(|d| {
                        let name = d
                            .split(|ch: char| {
                                !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
                            })
                            .next()
                            .unwrap_or("")
                            .to_string();
                        (name, None)
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Licence classifiers people use, as SPDX identifiers.
fn classifier_license(c: &str) -> Option<&'static str> {
    Some(match c.rsplit("::").next()?.trim() {
        "MIT License" => "MIT",
        "BSD License" => "BSD-3-Clause",
        "Apache Software License" => "Apache-2.0",
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "GNU Lesser General Public License v2 or later (LGPLv2+)" => "LGPL-2.1-or-later",
        "Python Software Foundation License" => "PSF-2.0",
        "The Unlicense (Unlicense)" => "Unlicense",
        _ => return None,
    })
}

/// `*.dist-info/METADATA` (core metadata, RFC 822 headers).
pub fn metadata(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let (mut name, mut version) = (None, None);
    let mut licenses = Vec::new();
    let mut license_text = None;
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (description) follows the headers
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => name = Some(v.to_string()),
            "Version" => version = Some(v.to_string()),
            "License-Expression" => licenses.insert(0, v.to_string()),
            "License" if !v.is_empty() && v.len() < 80 && !v.eq_ignore_ascii_case("UNKNOWN") => {
                license_text = Some(v.to_string())
            }
            "Classifier" => {
                if let Some(l) = classifier_license(v) {
                    licenses.push(l.to_string());
                }
            }
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(err(
            file,
            None,
            "core metadata without 'Name' and 'Version' headers",
        ));
    };
    // Where the distribution is: its .dist-info directory.
    let dir = file.rsplit_once('/').map_or(file, |(d, _)| d);
    let mut c = Component::new(ECO, &name, &version, dir);
    if licenses.is_empty()
        && let Some(t) = license_text
    {
        licenses.push(t);
    }
    licenses.dedup();
    c.licenses = licenses;
    Ok(vec![c])
}

/// One CSV record of a `RECORD` line (RFC 4180 quoting, as `csv.writer`
/// writes it), or `None` when a quote is left open.
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(cur);
    Some(fields)
}

/// `base/rel` with `.` and `..` resolved; `None` when it climbs above the
/// scanned root or is absolute (such a file cannot be read from this tree).
fn join_inside(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `*.dist-info/RECORD`: the files a distribution installed, as paths
/// relative to the scanned root, with the SHA-256 digests and sizes the
/// installer wrote. Paths are relative to `site-packages` (the directory
/// holding the `.dist-info`); entries leaving the tree are dropped.
pub fn record(file: &str, text: &str) -> Result<Vec<PackageFile>, CollectError> {
    let dist = file.rsplit_once('/').map_or("", |(d, _)| d);
    let site = dist.rsplit_once('/').map_or("", |(s, _)| s);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some(f) = csv_fields(line) else {
            return Err(err(file, Some(i + 1), "unterminated quoted field"));
        };
        if f.len() != 3 {
            return Err(err(
                file,
                Some(i + 1),
                format!(
                    "expected 3 comma-separated fields (path,hash,size), found {}",
                    f.len()
                ),
            ));
        }
        let Some(path) = join_inside(site, &f[0]) else {
            continue;
        };
        let mut digests = Vec::new();
        if !f[1].is_empty() {
            let Some((alg, b64)) = f[1].split_once('=') else {
                return Err(err(
                    file,
                    Some(i + 1),
                    format!("hash '{}' is not of the form ALGORITHM=DIGEST", f[1]),
                ));
            };
            // PEP 376 / the wheel spec: urlsafe base64 without padding.
            let bytes = base64_decode(b64).filter(|b| !b.is_empty());
            if let Some(value) =
                bytes.map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                && let Some(h) = hash(&format!("{alg}={value}"))
            {
                digests.push(h);
            }
        }
        let size = f[2].trim().parse::<u64>().ok();
        out.push(PackageFile {
            path,
            digests,
            size,
        });
    }
    Ok(out)
}

/// The digest `record` keeps for a file, to compare with what is on disk.
pub fn recorded_sha256(f: &PackageFile) -> Option<&Hash> {
    f.digests.iter().find(|h| h.alg == "SHA-256")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_paths_and_digests() {
        let text = "six.py,sha256=i4B6R2V5W6Q0KQkPXQf1W9-MXoV9DwTyeE2Fbc0wRAc,34549\n\
                    six-1.16.0.dist-info/RECORD,,\n\
                    ../../../bin/six-tool,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
                    \"odd,name.py\",,\n\
                    ../../../../../etc/passwd,,\n";
        let files = record(
            "venv/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
            text,
        )
        .unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "venv/lib/python3.11/site-packages/six.py",
                "venv/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
                "venv/bin/six-tool",
                "venv/lib/python3.11/site-packages/odd,name.py",
            ]
        );
        assert_eq!(files[0].size, Some(34549));
        assert_eq!(
            recorded_sha256(&files[2]).unwrap().value,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(files[1].digests.is_empty());
    }

    #[test]
    fn record_errors_have_lines() {
        let e = record("a.dist-info/RECORD", "x.py,,1\n\"open,,\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = record("a.dist-info/RECORD", "x.py,sha256\n").unwrap_err();
        assert!(e.message.contains("3 comma-separated"), "{}", e.message);
        let e = record("a.dist-info/RECORD", "x.py,sha256,1\n").unwrap_err();
        assert!(e.message.contains("ALGORITHM=DIGEST"), "{}", e.message);
    }

    /// Issue 17.1: feast's requirement files — a full-line comment with a
    /// ` #` in it, a byte-order mark — were dropped whole ("No findings").
    #[test]
    fn requirements_with_hashes_in_comments_and_a_bom_are_read() {
        let text = "\u{feff}# This file was autogenerated by uv\n# see issue #42 for why\npyyaml==5.3 # pinned, see #7\n\tdjango==2.2.0\t# old\n  # indented comment # with hash\n";
        let cs = requirements("requirements/py3.9-requirements.txt", text)
            .unwrap()
            .components;
        let pins: Vec<(&str, &str)> = cs
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str()))
            .collect();
        assert_eq!(pins, vec![("pyyaml", "5.3"), ("django", "2.2.0")]);
    }

    /// Issue 17.2: prefect's uv.lock — the project's own version is
    /// dynamic, uv writes none — lost every package.
    #[test]
    fn a_uv_lock_whose_project_version_is_dynamic_is_read() {
        let text = r#"version = 1
requires-python = ">=3.9"

[[package]]
name = "prefect"
source = { editable = "." }
dependencies = [{ name = "anyio" }]

[[package]]
name = "anyio"
version = "4.4.0"
source = { registry = "https://pypi.org/simple" }
"#;
        let cs = uv_lock("uv.lock", text).unwrap().components;
        assert_eq!(cs.len(), 2);
        let project = cs.iter().find(|c| c.name == "prefect").unwrap();
        assert!(project.local && project.version.is_empty());
        assert_eq!(project.purl, "pkg:pypi/prefect");
        let anyio = cs.iter().find(|c| c.name == "anyio").unwrap();
        assert_eq!(anyio.version, "4.4.0");
        // Without a local source a missing version is an error — of that
        // entry only (issue 17.3): the other packages are kept.
        let bad = text.replace("source = { editable = \".\" }\n", "");
        let p = uv_lock("uv.lock", &bad).unwrap();
        assert_eq!(p.components.len(), 1);
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].message.starts_with("[[package]] #1: "),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn requirements_pins_extras_markers_hashes() {
        let text = "# comment\nrequests[socks]==2.31.0 ; python_version >= \"3.8\" \\\n    --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f\nDjango===4.2.1  # pinned\nflask>=2\n-r other.txt\n--index-url https://example.com\n-e .\nlocal @ file:///x\nnumpy==1.*\n";
        let cs = requirements("requirements.txt", text).unwrap().components;
        let names: Vec<(&str, &str)> = cs
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str()))
            .collect();
        assert_eq!(names, [("requests", "2.31.0"), ("Django", "4.2.1")]);
        assert_eq!(cs[0].hashes.len(), 1);
        assert_eq!(cs[0].purl, "pkg:pypi/requests@2.31.0");
        // A bad line is an error of its own; the other pins are kept.
        let p = requirements("r.txt", "ok==1\n<bad>==2\nalso==3\n").unwrap();
        assert_eq!(p.components.len(), 2);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, Some(2));
    }

    #[test]
    fn metadata_headers() {
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nLicense: not a header\n";
        let c = &metadata("site-packages/PyYAML-6.0.1.dist-info/METADATA", text).unwrap()[0];
        assert_eq!(c.purl, "pkg:pypi/pyyaml@6.0.1");
        assert_eq!(c.licenses, ["MIT"]);
        assert_eq!(c.locations, ["site-packages/PyYAML-6.0.1.dist-info"]);
        assert!(metadata("x/METADATA", "Foo: bar\n").is_err());
    }
}
