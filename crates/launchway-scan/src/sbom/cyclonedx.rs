//! CycloneDX 1.6 JSON (1.5 on request), deterministic like the SPDX writer.

use super::Inventory;
use super::license::expression;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    V1_5,
    V1_6,
}

impl SpecVersion {
    pub fn parse(s: &str) -> Option<SpecVersion> {
        match s {
            "1.5" => Some(SpecVersion::V1_5),
            "1.6" => Some(SpecVersion::V1_6),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V1_5 => "1.5",
            SpecVersion::V1_6 => "1.6",
        }
    }
}

/// A UUID (version 5 layout) from a hash, so the serial number is stable.
fn uuid_from(h: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

fn licenses(ls: &[String]) -> Option<Value> {
    if ls.is_empty() {
        return None;
    }
    // A single compound expression goes as `expression`; otherwise one
    // licence choice each, by SPDX id when it is one.
    if ls.len() == 1
        && let Some(e) = expression(&ls[0])
        && (e.contains(' '))
    {
        return Some(json!([{"expression": e}]));
    }
    Some(Value::Array(
        ls.iter()
            .map(|l| match expression(l) {
                Some(id) if !id.contains(' ') && !id.ends_with('+') => {
                    json!({"license": {"id": id}})
                }
                _ => json!({"license": {"name": l}}),
            })
            .collect(),
    ))
}

pub fn write(
    inv: &Inventory,
    name: &str,
    timestamp: &str,
    tool_version: &str,
    spec: SpecVersion,
) -> Value {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    for c in &inv.components {
        h.update(c.purl.as_bytes());
    }
    let serial = format!("urn:uuid:{}", uuid_from(&h.finalize()));
    let all: std::collections::HashSet<&str> =
        inv.components.iter().map(|c| c.purl.as_str()).collect();
    let mut components = Vec::new();
    let mut deps = Vec::new();
    let mut roots = Vec::new();
    let depended: std::collections::HashSet<&str> = inv
        .components
        .iter()
        .flat_map(|c| c.dependencies.iter().map(String::as_str))
        .collect();
    for c in &inv.components {
        let mut v = json!({
            "type": "library",
            "bom-ref": c.purl,
            "name": c.name,
            "version": c.version,
            "purl": c.purl,
        });
        // Unknown (computed at build time): no version at all.
        if c.version.is_empty()
            && let Some(o) = v.as_object_mut()
        {
            o.remove("version");
        }
        if c.dev {
            v["scope"] = json!("optional");
        }
        if !c.hashes.is_empty() {
            v["hashes"] = Value::Array(
                c.hashes
                    .iter()
                    .map(|x| json!({"alg": x.alg, "content": x.value}))
                    .collect(),
            );
        }
        if let Some(l) = licenses(&c.licenses) {
            v["licenses"] = l;
        }
        let mut props =
            vec![json!({"name": "launchway:ecosystem", "value": c.ecosystem.osv_name()})];
        props.extend(
            c.locations
                .iter()
                .map(|l| json!({"name": "launchway:location", "value": l})),
        );
        v["properties"] = Value::Array(props);
        // Owned files (`--files`) as the package's own file components.
        if !c.files.is_empty() {
            v["components"] = Value::Array(
                c.files
                    .iter()
                    .map(|f| {
                        json!({
                            "type": "file",
                            "bom-ref": format!("{}#{}", c.purl, f.path),
                            "name": f.path,
                            "hashes": f.digests.iter().map(|x| json!({"alg": x.alg, "content": x.value})).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            );
        }
        components.push(v);
        // Each edge once (the schema requires unique items).
        let on: std::collections::BTreeSet<&String> = c
            .dependencies
            .iter()
            .filter(|d| all.contains(d.as_str()) && **d != c.purl)
            .collect();
        deps.push(json!({"ref": c.purl, "dependsOn": on}));
        if !depended.contains(c.purl.as_str()) {
            roots.push(c.purl.clone());
        }
    }
    deps.insert(0, json!({"ref": "root", "dependsOn": roots}));
    json!({
        "$schema": format!("http://cyclonedx.org/schema/bom-{}.schema.json", spec.as_str()),
        "bomFormat": "CycloneDX",
        "specVersion": spec.as_str(),
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "launchway", "version": tool_version}]},
            "component": {"type": "application", "bom-ref": "root", "name": name},
        },
        "components": components,
        "dependencies": deps,
    })
}
