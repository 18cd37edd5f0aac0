//! SPDX 2.3 JSON, deterministic: packages sorted by purl, identifiers
//! derived from content, the timestamp from `SOURCE_DATE_EPOCH` when set.

use super::license::{expression, license_ref};
use super::{Component, Inventory};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// 16 hex digits of a SHA-256: identifiers that depend only on content.
fn short_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SPDX 2.3 §7.9: the SHA-1 of the package's file SHA-1s, sorted and
/// concatenated.
fn verification_code(mut sha1s: Vec<&str>) -> String {
    use sha1::Sha1;
    sha1s.sort_unstable();
    let mut h = Sha1::new();
    for s in sha1s {
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn spdx_id(purl: &str) -> String {
    format!("SPDXRef-Package-{}", short_hash(purl))
}

fn checksum_alg(alg: &str) -> Option<&'static str> {
    Some(match alg {
        "SHA-256" => "SHA256",
        "SHA-512" => "SHA512",
        "SHA-384" => "SHA384",
        "SHA-1" => "SHA1",
        "MD5" => "MD5",
        _ => return None,
    })
}

fn declared(c: &Component, refs: &mut Vec<(String, String)>) -> String {
    if c.licenses.is_empty() {
        return "NOASSERTION".into();
    }
    let parts: Vec<String> = c
        .licenses
        .iter()
        .map(|l| match expression(l) {
            Some(e) => e,
            None => {
                let id = license_ref(l);
                if !refs.iter().any(|(i, _)| *i == id) {
                    refs.push((id.clone(), l.clone()));
                }
                id
            }
        })
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// Writes the inventory as an SPDX 2.3 document named `name`.
pub fn write(inv: &Inventory, name: &str, created: &str, tool_version: &str) -> Value {
    let mut license_refs: Vec<(String, String)> = Vec::new();
    let root_id = "SPDXRef-Package-root";
    let mut packages = vec![json!({
        "SPDXID": root_id,
        "name": name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "SOURCE",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root_id,
    })];
    let all: std::collections::HashSet<&str> =
        inv.components.iter().map(|c| c.purl.as_str()).collect();
    let depended: std::collections::HashSet<&str> = inv
        .components
        .iter()
        .flat_map(|c| c.dependencies.iter().map(String::as_str))
        .collect();
    let mut files: Vec<Value> = Vec::new();
    for c in &inv.components {
        let id = spdx_id(&c.purl);
        let mut p = json!({
            "SPDXID": id,
            "name": c.name,
            "versionInfo": c.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared(c, &mut license_refs),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "sourceInfo": format!("{} package found in: {}", c.ecosystem, c.locations.join(", ")),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": c.purl,
            }],
        });
        // Unknown (computed at build time): no version at all.
        if c.version.is_empty()
            && let Some(o) = p.as_object_mut()
        {
            o.remove("versionInfo");
        }
        let checksums: Vec<Value> = c
            .hashes
            .iter()
            .filter_map(|h| {
                Some(json!({"algorithm": checksum_alg(&h.alg)?, "checksumValue": h.value}))
            })
            .collect();
        if !checksums.is_empty() {
            p["checksums"] = Value::Array(checksums);
        }
        // Owned files (`--files`): SPDX 2.3 requires a SHA-1 for each, and a
        // package that contains files is one whose files were analysed.
        let sha1s: Vec<&str> = c
            .files
            .iter()
            .filter_map(|f| f.digests.iter().find(|h| h.alg == "SHA-1"))
            .map(|h| h.value.as_str())
            .collect();
        if !sha1s.is_empty() {
            p["filesAnalyzed"] = json!(true);
            p["packageVerificationCode"] =
                json!({"packageVerificationCodeValue": verification_code(sha1s)});
        }
        packages.push(p);
        for f in &c.files {
            let checksums: Vec<Value> = f
                .digests
                .iter()
                .filter_map(|h| {
                    Some(json!({"algorithm": checksum_alg(&h.alg)?, "checksumValue": h.value}))
                })
                .collect();
            if !f.digests.iter().any(|h| h.alg == "SHA-1") {
                continue;
            }
            let file_id = format!(
                "SPDXRef-File-{}",
                short_hash(&format!("{}\n{}", c.purl, f.path))
            );
            files.push(json!({
                "SPDXID": file_id,
                "fileName": format!("./{}", f.path),
                "checksums": checksums,
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }));
            relationships.push(json!({"spdxElementId": id, "relationshipType": "CONTAINS", "relatedSpdxElement": file_id}));
        }
        // The root contains every component; direct dependency edges where known.
        if !depended.contains(c.purl.as_str()) {
            relationships.push(json!({"spdxElementId": root_id, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id}));
        }
        for d in &c.dependencies {
            if all.contains(d.as_str()) && *d != c.purl {
                relationships.push(json!({"spdxElementId": id, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": spdx_id(d)}));
            }
        }
    }
    let mut ns_hash = Sha256::new();
    ns_hash.update(name.as_bytes());
    for c in &inv.components {
        ns_hash.update(c.purl.as_bytes());
    }
    let ns: String = ns_hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://launchway.dev/spdx/{}-{ns}", super::purl::encode(name, false)),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: launchway-{tool_version}")],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !files.is_empty() {
        doc["files"] = Value::Array(files);
    }
    if !license_refs.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(
            license_refs
                .iter()
                .map(|(id, text)| json!({"licenseId": id, "extractedText": text, "name": text}))
                .collect(),
        );
    }
    doc
}
