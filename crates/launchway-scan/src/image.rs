//! What is inside a container image: its layers merged (with whiteouts),
//! then the same collectors as for a directory — OS package databases
//! (dpkg, apk), Python distributions, Node packages, lockfiles, Go and
//! Rust binaries. Each component records the layer that added it; OS
//! packages record the distribution release from `os-release`, which
//! decides which advisories apply (Debian 12's, not Debian 11's).

use crate::sbom::collect::{self, Kind, elf};
use crate::sbom::{CollectError, Component, Inventory};
use crate::version::Ecosystem;
use launchway_oci::{Header, Image, OciError};
use std::collections::BTreeMap;

/// The image a scan looked at.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    /// The target as given.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The configuration's digest (the image id).
    pub config_digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Layer digests, bottom first.
    pub layers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
}

impl ImageInfo {
    /// A short name for documents: the first tag, else the target.
    pub fn name(&self) -> String {
        self.tags.first().cloned().unwrap_or_else(|| {
            self.target
                .split_once(':')
                .map_or(self.target.clone(), |(_, r)| r.to_string())
        })
    }
}

/// `/etc/os-release` (or `/usr/lib/os-release`): `ID` and `VERSION_ID`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OsRelease {
    pub id: String,
    #[serde(default)]
    pub version_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

impl OsRelease {
    pub fn parse(text: &str) -> Option<OsRelease> {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                fields.insert(k.trim().to_string(), v.to_string());
            }
        }
        Some(OsRelease {
            id: fields.get("ID")?.to_ascii_lowercase(),
            version_id: fields.get("VERSION_ID").cloned().unwrap_or_default(),
            pretty_name: fields.get("PRETTY_NAME").cloned(),
        })
    }

    /// The release as OSV's ecosystem names it (`12` for `Debian:12`,
    /// `v3.19` for `Alpine:v3.19`).
    pub fn osv_release(&self) -> String {
        match self.id.as_str() {
            "alpine" => {
                let mut parts = self.version_id.split('.');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) => format!("v{a}.{b}"),
                    _ => format!("v{}", self.version_id),
                }
            }
            // Debian's releases are their major version (`12`, not `12.5`).
            "debian" => self
                .version_id
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            _ => self.version_id.clone(),
        }
    }

    /// `debian-12`, `alpine-3.19` (the purl `distro` qualifier).
    pub fn distro(&self) -> String {
        let release = self.osv_release();
        format!("{}-{}", self.id, release.trim_start_matches('v'))
    }
}

/// What is kept of a file while the layers are merged.
#[derive(Clone)]
enum Kept {
    Text(Kind, String),
    Modules(Vec<Component>),
    OsRelease(String),
}

fn os_release_path(p: &str) -> bool {
    p == "etc/os-release" || p == "usr/lib/os-release"
}

/// Whether a file is read: something a collector knows, an `os-release`,
/// or a program (which may carry Go or Rust build information).
fn wanted(h: &Header) -> bool {
    if os_release_path(h.path) {
        return true;
    }
    match collect::detect(h.path) {
        // Owned-file lists are for `--files` on a tree only.
        Some(Kind::PythonRecord) => false,
        Some(_) => true,
        None => {
            let name = h.path.rsplit('/').next().unwrap_or(h.path);
            h.mode & 0o111 != 0 && h.size >= 64 && !name.contains('.')
        }
    }
}

/// The layer each package of a database first appeared in and stayed:
/// the database file is rewritten by every layer that installs packages,
/// so a package belongs to the earliest layer from which every later
/// version of the file lists it.
fn attribute(versions: &[(usize, Vec<Component>)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Some((_, last)) = versions.last() else {
        return out;
    };
    for c in last {
        let mut layer = versions.last().map_or(0, |v| v.0);
        for (l, comps) in versions.iter().rev() {
            if comps.iter().any(|x| x.purl == c.purl) {
                layer = *l;
            } else {
                break;
            }
        }
        out.insert(c.purl.clone(), layer);
    }
    out
}

/// Inventories an image.
pub fn inventory(image: &Image) -> Result<(Inventory, ImageInfo), OciError> {
    // Every version of each package database, in layer order.
    let mut history: BTreeMap<String, Vec<(usize, Vec<Component>)>> = BTreeMap::new();
    let mut rpm_errors: Vec<CollectError> = Vec::new();
    let merged = launchway_oci::merge(image, wanted, |h, bytes| {
        if os_release_path(h.path) {
            return Some(Kept::OsRelease(
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        match collect::detect(h.path) {
            Some(Kind::RpmSqlite) => {
                // SQLite reads files: a private copy, removed at once.
                let rel = format!("/{}", h.path);
                let cs = rpm_from_bytes(&rel, &bytes).unwrap_or_else(|e| {
                    rpm_errors.push(e);
                    Vec::new()
                });
                history
                    .entry(h.path.to_string())
                    .or_default()
                    .push((h.layer, cs.clone()));
                Some(Kept::Modules(cs))
            }
            Some(kind) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if matches!(kind, Kind::DpkgStatus | Kind::ApkInstalled)
                    && let Ok(p) = collect::parse(kind, &format!("/{}", h.path), &text)
                {
                    history
                        .entry(h.path.to_string())
                        .or_default()
                        .push((h.layer, p.components));
                }
                Some(Kept::Text(kind, text))
            }
            None => {
                let cs = elf::modules(bytes.as_slice(), &format!("/{}", h.path));
                (!cs.is_empty()).then_some(Kept::Modules(cs))
            }
        }
    })?;
    let os = merged
        .resolve("etc/os-release")
        .or_else(|| merged.resolve("usr/lib/os-release"))
        .and_then(|(_, e)| match &e.value {
            Kept::OsRelease(t) => OsRelease::parse(t),
            _ => None,
        });
    let layer_digest = |i: usize| image.layers.get(i).map(|l| l.digest.clone());
    let mut inv = Inventory {
        errors: rpm_errors,
        ..Inventory::default()
    };
    for (path, entry) in &merged.files {
        let rel = format!("/{path}");
        let found = match &entry.value {
            Kept::OsRelease(_) => continue,
            Kept::Modules(cs) => cs.clone(),
            Kept::Text(kind, text) => match collect::parse(*kind, &rel, text) {
                Ok(p) => {
                    inv.errors.extend(p.errors);
                    p.components
                }
                Err(e) => {
                    inv.errors.push(e);
                    inv.files.push(rel);
                    continue;
                }
            },
        };
        let by_layer = history.get(path).map(|h| attribute(h)).unwrap_or_default();
        inv.files.push(rel);
        for mut c in found {
            c.layer = layer_digest(by_layer.get(&c.purl).copied().unwrap_or(entry.layer));
            if matches!(
                c.ecosystem,
                Ecosystem::Debian | Ecosystem::Alpine | Ecosystem::Rpm
            ) {
                qualify(&mut c, os.as_ref());
            }
            inv.components.push(c);
        }
    }
    // What could not be read fails closed: a package database or lockfile
    // too large to read, or a foreign layer, leaves packages unchecked
    // (errors, which fail the gate); a program too large to read for its
    // build information is said.
    let at = |file: String, message: String| CollectError {
        file,
        line: None,
        column: None,
        message,
    };
    for (path, size, layer) in &merged.too_large {
        let message = format!(
            "{size} bytes (layer {}), larger than {} MiB: not read",
            layer + 1,
            launchway_oci::layers::MAX_FILE >> 20
        );
        if collect::detect(path).is_some() || os_release_path(path) {
            inv.errors.push(at(
                format!("/{path}"),
                format!("{message}; its packages were not checked"),
            ));
        } else {
            inv.notices.push(at(format!("/{path}"), message));
        }
    }
    for i in &merged.foreign {
        inv.errors.push(at(
            image.target.clone(),
            format!(
                "layer {} ({}) is a foreign layer (fetched from elsewhere at run time) and was not read: its packages were not checked",
                i + 1,
                image.layers[*i].digest
            ),
        ));
    }
    if os.is_none()
        && inv
            .components
            .iter()
            .any(|c| matches!(c.ecosystem, Ecosystem::Debian | Ecosystem::Alpine))
    {
        inv.notices.push(CollectError {
            file: image.target.clone(),
            line: None,
            column: None,
            message: "no os-release: OS packages are matched against every release's advisories"
                .into(),
        });
    }
    inv.finish();
    let platform = image.platform();
    let info = ImageInfo {
        target: image.target.clone(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        tags: image.tags.clone(),
        platform: platform.to_string(),
        layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
        os,
    };
    Ok((inv, info))
}

/// An RPM database's packages from its bytes (SQLite opens files: a
/// private temporary copy, removed when read).
fn rpm_from_bytes(rel: &str, bytes: &[u8]) -> Result<Vec<Component>, CollectError> {
    let fail = |m: String| CollectError {
        file: rel.to_string(),
        line: None,
        column: None,
        message: m,
    };
    let scratch =
        launchway_oci::source::Scratch::new("launchway-rpmdb").map_err(|e| fail(e.to_string()))?;
    let path = scratch.0.join("rpmdb.sqlite");
    std::fs::write(&path, bytes).map_err(|e| fail(e.to_string()))?;
    collect::rpm_database(&path, rel).map(|p| p.components)
}

/// The distribution in the purl (`pkg:deb/ubuntu/…`, `distro=` qualifier)
/// and on the component, for matching.
fn qualify(c: &mut Component, os: Option<&OsRelease>) {
    let Some(os) = os else { return };
    let distro = os.distro();
    let (ns, own) = match c.ecosystem {
        Ecosystem::Debian => ("deb/debian/", format!("deb/{}/", os.id)),
        Ecosystem::Rpm => ("rpm/", format!("rpm/{}/", os.id)),
        _ => ("apk/alpine/", format!("apk/{}/", os.id)),
    };
    c.purl = c.purl.replacen(ns, &own, 1);
    let sep = if c.purl.contains('?') { '&' } else { '?' };
    c.purl = format!("{}{sep}distro={distro}", c.purl);
    c.distro = Some(distro);
}

/// The inventory of the image a target names (`oci-archive:FILE`,
/// `docker-archive:FILE`, `oci-dir:DIR`, `registry:REF`,
/// `containers-storage:REF`); `None` when it names no image (a path).
pub fn open_target(
    target: &str,
    platform: Option<&str>,
    registries: &launchway_oci::mirrors::Registries,
) -> Result<Option<(Inventory, ImageInfo)>, OciError> {
    let Some(parsed) = launchway_oci::Target::parse(target) else {
        return match platform {
            Some(_) => Err(OciError::PlatformForPath(target.to_string())),
            None => Ok(None),
        };
    };
    let opts = launchway_oci::source::Options {
        platform: platform.map(launchway_oci::Platform::parse).transpose()?,
        registries: registries.clone(),
    };
    let img = launchway_oci::source::open(&parsed?, &opts)?;
    inventory(&img).map(Some)
}

/// The SBOM document of an image: the tree writers, describing the
/// container.
pub fn document(
    inv: &Inventory,
    info: &ImageInfo,
    format: crate::gate::SbomFormat,
    timestamp: &str,
    tool_version: &str,
) -> serde_json::Value {
    match format {
        crate::gate::SbomFormat::Spdx => {
            let mut d = crate::sbom::spdx::write(inv, &info.name(), timestamp, tool_version);
            describe_spdx(&mut d, inv, info);
            d
        }
        crate::gate::SbomFormat::CycloneDx(v) => {
            let mut d =
                crate::sbom::cyclonedx::write(inv, &info.name(), timestamp, tool_version, v);
            describe_cyclonedx(&mut d, inv, info);
            d
        }
    }
}

/// The image's package URL: `pkg:oci/<name>@<digest>?repository_url=…&tag=…`.
pub fn oci_purl(info: &ImageInfo) -> String {
    let digest = info
        .manifest_digest
        .clone()
        .unwrap_or_else(|| info.config_digest.clone());
    let tag = info.tags.first();
    // `registry/repository:tag` → repository URL and tag.
    let (repo, tag) = match tag.and_then(|t| {
        let slash = t.rfind('/').map_or(0, |i| i + 1);
        t[slash..]
            .rfind(':')
            .map(|i| (&t[..slash + i], &t[slash + i + 1..]))
    }) {
        Some((r, t)) => (Some(r.to_string()), Some(t.to_string())),
        None => (tag.cloned(), None),
    };
    let name = repo
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("image")
        .to_ascii_lowercase();
    let mut purl = format!(
        "pkg:oci/{}@{}",
        crate::sbom::purl::encode(&name, false),
        crate::sbom::purl::encode(&digest, false)
    );
    let mut q = Vec::new();
    if let Some(r) = repo {
        q.push(format!(
            "repository_url={}",
            crate::sbom::purl::encode(&r, true)
        ));
    }
    if let Some(t) = tag {
        q.push(format!("tag={}", crate::sbom::purl::encode(&t, false)));
    }
    if !q.is_empty() {
        purl = format!("{purl}?{}", q.join("&"));
    }
    purl
}

fn digest_hex(info: &ImageInfo) -> String {
    info.manifest_digest
        .as_deref()
        .unwrap_or(&info.config_digest)
        .trim_start_matches("sha256:")
        .to_string()
}

/// Makes a CycloneDX document describe the image: a `container` subject
/// (digest, tags, platform, layers), and each component's layer and
/// distribution as properties.
pub fn describe_cyclonedx(doc: &mut serde_json::Value, inv: &Inventory, info: &ImageInfo) {
    use serde_json::json;
    let mut props = vec![
        json!({"name": "launchway:image:config-digest", "value": info.config_digest}),
        json!({"name": "launchway:image:platform", "value": info.platform}),
    ];
    props.extend(
        info.tags
            .iter()
            .map(|t| json!({"name": "launchway:image:tag", "value": t})),
    );
    props.extend(
        info.layers
            .iter()
            .map(|l| json!({"name": "launchway:image:layer", "value": l})),
    );
    if let Some(os) = &info.os {
        props.push(json!({"name": "launchway:image:distro", "value": os.distro()}));
    }
    doc["metadata"]["component"] = json!({
        "type": "container",
        "bom-ref": "root",
        "name": info.name(),
        "version": info.manifest_digest.clone().unwrap_or_else(|| info.config_digest.clone()),
        "purl": oci_purl(info),
        "hashes": [{"alg": "SHA-256", "content": digest_hex(info)}],
        "properties": props,
    });
    // The distribution itself, as syft and trivy list it.
    if let Some(os) = &info.os
        && let Some(list) = doc["components"].as_array_mut()
    {
        let mut c = json!({
            "type": "operating-system",
            "bom-ref": format!("os:{}", os.distro()),
            "name": os.id,
            "version": os.version_id,
        });
        if let Some(p) = &os.pretty_name {
            c["description"] = json!(p);
        }
        list.insert(0, c);
    }
    let by_ref: BTreeMap<&str, &Component> = inv
        .components
        .iter()
        .map(|c| (c.purl.as_str(), c))
        .collect();
    if let Some(list) = doc["components"].as_array_mut() {
        for v in list {
            let Some(c) = v["bom-ref"].as_str().and_then(|r| by_ref.get(r)) else {
                continue;
            };
            let mut extra = Vec::new();
            if let Some(l) = &c.layer {
                extra.push(json!({"name": "launchway:layer", "value": l}));
            }
            if let Some(s) = &c.source {
                extra.push(json!({"name": "launchway:source-package", "value": s.name}));
            }
            if let Some(props) = v["properties"].as_array_mut() {
                props.extend(extra);
            }
        }
    }
}

/// Makes an SPDX document describe the image: the root package is the
/// container (its digest as checksum and version, an OCI purl), and each
/// package says which layer added it.
pub fn describe_spdx(doc: &mut serde_json::Value, inv: &Inventory, info: &ImageInfo) {
    use serde_json::json;
    // The distribution itself, contained in the image.
    if let Some(os) = &info.os
        && let Some(list) = doc["packages"].as_array_mut()
    {
        let id = format!(
            "SPDXRef-OperatingSystem-{}",
            os.distro()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        );
        list.push(json!({
            "SPDXID": id,
            "name": os.id,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }));
        if let Some(rels) = doc["relationships"].as_array_mut() {
            rels.push(json!({"spdxElementId": "SPDXRef-Package-root", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        }
    }
    let by_purl: BTreeMap<&str, &Component> = inv
        .components
        .iter()
        .map(|c| (c.purl.as_str(), c))
        .collect();
    if let Some(list) = doc["packages"].as_array_mut() {
        for p in list {
            if p["SPDXID"] == "SPDXRef-Package-root" {
                p["name"] = json!(info.name());
                p["versionInfo"] = json!(
                    info.manifest_digest
                        .clone()
                        .unwrap_or_else(|| info.config_digest.clone())
                );
                p["primaryPackagePurpose"] = json!("CONTAINER");
                p["checksums"] =
                    json!([{"algorithm": "SHA256", "checksumValue": digest_hex(info)}]);
                p["externalRefs"] = json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": oci_purl(info),
                }]);
                let mut comment = format!(
                    "platform {}; layers: {}",
                    info.platform,
                    info.layers.join(", ")
                );
                if let Some(os) = &info.os {
                    comment.push_str(&format!("; distribution {}", os.distro()));
                }
                p["comment"] = json!(comment);
                continue;
            }
            let purl = p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap_or("");
            if let Some(c) = by_purl.get(purl)
                && let Some(l) = &c.layer
            {
                p["comment"] = json!(format!("added by layer {l}"));
                if let Some(s) = &c.source {
                    p["sourceInfo"] = json!(format!(
                        "{}; built from source package {} {}",
                        p["sourceInfo"].as_str().unwrap_or(""),
                        s.name,
                        s.version
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_releases() {
        let d = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(
            d.as_ref().map(OsRelease::osv_release).as_deref(),
            Some("12")
        );
        assert_eq!(
            d.as_ref().map(OsRelease::distro).as_deref(),
            Some("debian-12")
        );
        let a = OsRelease::parse("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(
            a.as_ref().map(OsRelease::osv_release).as_deref(),
            Some("v3.19")
        );
        assert_eq!(
            a.as_ref().map(OsRelease::distro).as_deref(),
            Some("alpine-3.19")
        );
        assert_eq!(OsRelease::parse("NAME=x\n"), None);
    }

    #[test]
    fn a_package_belongs_to_the_layer_that_installed_it() {
        let c = |n: &str, v: &str| Component::new(Ecosystem::Debian, n, v, "s");
        let versions = vec![
            (0, vec![c("libc6", "2.36")]),
            (2, vec![c("libc6", "2.36"), c("curl", "7.88")]),
            // Layer 4 upgrades curl: the new version is layer 4's.
            (4, vec![c("libc6", "2.36"), c("curl", "7.89")]),
        ];
        let by = attribute(&versions);
        assert_eq!(by.get("pkg:deb/debian/libc6@2.36"), Some(&0));
        assert_eq!(by.get("pkg:deb/debian/curl@7.89"), Some(&4));
    }
}
