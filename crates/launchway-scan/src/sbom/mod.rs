//! The software bill of materials: components found by collectors (one
//! module per file format under `collect/`), package URLs, and the SPDX and
//! CycloneDX writers.

pub mod collect;
pub mod cyclonedx;
pub mod license;
pub mod purl;
pub mod read;
pub mod spdx;

use crate::version::Ecosystem;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hash {
    /// `SHA-256`, `SHA-512`, `SHA-1`, `MD5` (CycloneDX spelling).
    pub alg: String,
    /// Lowercase hex.
    pub value: String,
}

impl Hash {
    /// Hex digits a digest of `alg` has (`None`: an algorithm not known).
    pub fn hex_len(alg: &str) -> Option<usize> {
        Some(match alg {
            "MD5" => 32,
            "SHA-1" => 40,
            "SHA-256" | "SHA3-256" | "BLAKE2b-256" | "BLAKE3" => 64,
            "SHA-384" | "SHA3-384" | "BLAKE2b-384" => 96,
            "SHA-512" | "SHA3-512" | "BLAKE2b-512" => 128,
            _ => return None,
        })
    }

    /// Lowercase hex of the length its algorithm gives.
    pub fn well_formed(&self) -> bool {
        Self::hex_len(&self.alg) == Some(self.value.len())
            && self
                .value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// A file an installed package owns (from a Python distribution's `RECORD`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageFile {
    /// Relative to the scanned root.
    pub path: String,
    /// As recorded by the installer; after [`collect::digest_files`] the
    /// SHA-1 and SHA-256 of what is on disk.
    pub digests: Vec<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    /// Files it was found in, relative to the scanned root.
    pub locations: Vec<String>,
    /// SPDX license expressions or names, as the source states them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// purls of direct dependencies, where the source records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// A development-only dependency (when the lockfile says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dev: bool,
    /// The project itself or a workspace member, not a registry package:
    /// listed in the SBOM, never matched against advisories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Files the package owns, when asked for (`--files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PackageFile>,
    /// An operating-system package's source package, which OS advisories
    /// (Debian's, Alpine's) name instead of the binary package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    /// The distribution release it was installed in (`debian-12`,
    /// `alpine-3.19`), from the image's `os-release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// In an image: the digest of the layer that added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

impl Component {
    pub fn new(ecosystem: Ecosystem, name: &str, version: &str, location: &str) -> Component {
        Component {
            purl: purl::purl(ecosystem, name, version),
            name: name.to_string(),
            version: version.to_string(),
            ecosystem,
            locations: vec![location.to_string()],
            licenses: Vec::new(),
            hashes: Vec::new(),
            dependencies: Vec::new(),
            dev: false,
            local: false,
            files: Vec::new(),
            source: None,
            distro: None,
            layer: None,
        }
    }

    /// The name and version advisories know it by: the source package's
    /// for an OS package that has one.
    pub fn advisory_key(&self) -> (&str, &str) {
        match &self.source {
            Some(s) => (&s.name, &s.version),
            None => (&self.name, &self.version),
        }
    }
}

/// A file that could not be read as what its name promises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a scan of a tree found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub components: Vec<Component>,
    pub errors: Vec<CollectError>,
    /// Files recognised and read.
    pub files: Vec<String>,
    /// Things found that are not parse failures: installed files whose
    /// content no longer matches the installer's record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<CollectError>,
    /// Owned-file lists by the installed package's location (its
    /// `.dist-info` directory), joined to components by `finish`.
    #[serde(skip)]
    pub owned: Vec<(String, Vec<PackageFile>)>,
}

impl Inventory {
    /// Merges components found more than once (same purl) and sorts
    /// everything, so output is deterministic.
    pub fn finish(&mut self) {
        self.components
            .sort_by(|a, b| a.purl.cmp(&b.purl).then(a.locations.cmp(&b.locations)));
        let mut merged: Vec<Component> = Vec::with_capacity(self.components.len());
        for c in std::mem::take(&mut self.components) {
            match merged.last_mut() {
                Some(last) if last.purl == c.purl => {
                    for l in c.locations {
                        if !last.locations.contains(&l) {
                            last.locations.push(l);
                        }
                    }
                    for x in c.licenses {
                        if !last.licenses.contains(&x) {
                            last.licenses.push(x);
                        }
                    }
                    for h in c.hashes {
                        if !last.hashes.contains(&h) {
                            last.hashes.push(h);
                        }
                    }
                    for d in c.dependencies {
                        if !last.dependencies.contains(&d) {
                            last.dependencies.push(d);
                        }
                    }
                    for f in c.files {
                        if !last.files.contains(&f) {
                            last.files.push(f);
                        }
                    }
                    last.dev &= c.dev;
                    last.local &= c.local;
                    if last.layer.is_none() {
                        last.layer = c.layer;
                    }
                }
                _ => merged.push(c),
            }
        }
        // go.sum lists every module of the module graph, most never built;
        // where a go.mod sits next to it (Go ≥ 1.17 lists every module the
        // build needs there), go.sum only adds hashes, as syft and trivy
        // read it.
        let with_mod: std::collections::HashSet<String> = self
            .files
            .iter()
            .filter_map(|f| {
                let dir = f.strip_suffix("go.mod")?;
                (dir.is_empty() || dir.ends_with('/')).then(|| format!("{dir}go.sum"))
            })
            .collect();
        merged.retain(|c| {
            c.locations.is_empty() || !c.locations.iter().all(|l| with_mod.contains(l))
        });
        for (location, files) in std::mem::take(&mut self.owned) {
            if let Some(c) = merged.iter_mut().find(|c| c.locations.contains(&location)) {
                c.files.extend(files);
            }
        }
        for c in &mut merged {
            c.files.sort();
            c.files.dedup_by(|a, b| a.path == b.path);
            c.locations.sort();
            c.hashes.sort();
            c.dependencies.sort();
            c.dependencies.dedup();
            // A digest of the wrong length (a malformed SRI value in a
            // lockfile) would make the SBOM fail its schema: dropped, said.
            let (good, bad): (Vec<Hash>, Vec<Hash>) = std::mem::take(&mut c.hashes)
                .into_iter()
                .partition(Hash::well_formed);
            c.hashes = good;
            for h in &bad {
                self.notices.push(CollectError {
                    file: c.locations.first().cloned().unwrap_or_default(),
                    line: None,
                    column: None,
                    message: format!(
                        "{}@{}: a {} digest of {} hex digits is malformed (expected {}) and was left out",
                        c.name,
                        c.version,
                        h.alg,
                        h.value.len(),
                        Hash::hex_len(&h.alg).map_or_else(|| "a known algorithm".into(), |n| n.to_string())
                    ),
                });
            }
        }
        self.components = merged;
        self.errors
            .sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        self.files.sort();
        self.files.dedup();
    }
}
