//! Reading an existing SPDX or CycloneDX JSON SBOM back into components,
//! so a vulnerability scan can start from it.

use super::purl;
use super::{CollectError, Component, Inventory};

/// Whether a JSON document looks like an SBOM we read.
pub fn is_sbom(doc: &serde_json::Value) -> bool {
    doc.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX")
        || doc.get("spdxVersion").is_some()
}

pub fn read(file: &str, doc: &serde_json::Value) -> Result<Inventory, CollectError> {
    let mut inv = Inventory {
        files: vec![file.to_string()],
        ..Inventory::default()
    };
    let purls: Vec<String> = if doc.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX") {
        fn walk(cs: &[serde_json::Value], out: &mut Vec<String>) {
            for c in cs {
                if let Some(p) = c.get("purl").and_then(|p| p.as_str()) {
                    out.push(p.to_string());
                }
                if let Some(nested) = c.get("components").and_then(|n| n.as_array()) {
                    walk(nested, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(
            doc.get("components")
                .and_then(|c| c.as_array())
                .map_or(&[][..], |v| v),
            &mut out,
        );
        out
    } else if doc.get("spdxVersion").is_some() {
        doc.get("packages")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .flat_map(|p| {
                p.get("externalRefs")
                    .and_then(|r| r.as_array())
                    .into_iter()
                    .flatten()
            })
            .filter(|r| r.get("referenceType").and_then(|t| t.as_str()) == Some("purl"))
            .filter_map(|r| {
                r.get("referenceLocator")
                    .and_then(|l| l.as_str())
                    .map(str::to_string)
            })
            .collect()
    } else {
        return Err(CollectError {
            file: file.to_string(),
            line: None,
            column: None,
            message: "neither a CycloneDX nor an SPDX document".into(),
        });
    };
    for p in purls {
        if let Some((eco, name, version)) = purl::parse(&p) {
            let mut c = Component::new(eco, &name, &version, file);
            c.purl = p;
            inv.components.push(c);
        }
    }
    inv.finish();
    Ok(inv)
}
