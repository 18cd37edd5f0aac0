//! NVD's CVE JSON feeds (the 1.1 `CVE_Items` feeds and the 2.0
//! `vulnerabilities` format), read for one thing: the CVSS scores of CVEs.
//! Package databases such as PyPA's carry no scores; an NVD record that
//! shares an alias with an advisory gives it its severity.

use super::model::{Advisory, SeverityEntry};
use serde_json::Value;

/// Whether a JSON document is an NVD feed.
pub fn is_feed(doc: &Value) -> bool {
    doc.get("CVE_Items").is_some_and(Value::is_array)
        || (doc.get("vulnerabilities").is_some_and(Value::is_array)
            && doc
                .get("format")
                .and_then(Value::as_str)
                .is_none_or(|f| f == "NVD_CVE"))
}

/// The CVEs of a feed as advisories with no affected packages: an id, a
/// date and the CVSS vectors (v4, v3.1, v3.0; NVD's own before others').
pub fn advisories(doc: &Value) -> Vec<Advisory> {
    let mut out = Vec::new();
    for item in doc["CVE_Items"].as_array().into_iter().flatten() {
        let Some(id) = item["cve"]["CVE_data_meta"]["ID"].as_str() else {
            continue;
        };
        let mut severity = Vec::new();
        if let Some(v) = item["impact"]["baseMetricV3"]["cvssV3"]["vectorString"].as_str() {
            severity.push(entry("CVSS_V3", v));
        }
        out.push(advisory(
            id,
            item["lastModifiedDate"].as_str(),
            item["publishedDate"].as_str(),
            severity,
        ));
    }
    for v in doc["vulnerabilities"].as_array().into_iter().flatten() {
        let cve = &v["cve"];
        let Some(id) = cve["id"].as_str() else {
            continue;
        };
        let mut severity = Vec::new();
        for (key, kind) in [
            ("cvssMetricV40", "CVSS_V4"),
            ("cvssMetricV31", "CVSS_V3"),
            ("cvssMetricV30", "CVSS_V3"),
        ] {
            let mut metrics: Vec<&Value> = cve["metrics"][key]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            // NVD's own assessment ("Primary") first.
            metrics.sort_by_key(|m| m["type"].as_str() != Some("Primary"));
            if let Some(vector) = metrics
                .iter()
                .find_map(|m| m["cvssData"]["vectorString"].as_str())
            {
                severity.push(entry(kind, vector));
            }
        }
        out.push(advisory(
            id,
            cve["lastModified"].as_str(),
            cve["published"].as_str(),
            severity,
        ));
    }
    out
}

fn entry(kind: &str, vector: &str) -> SeverityEntry {
    SeverityEntry {
        kind: kind.to_string(),
        score: vector.to_string(),
    }
}

fn advisory(
    id: &str,
    modified: Option<&str>,
    published: Option<&str>,
    severity: Vec<SeverityEntry>,
) -> Advisory {
    Advisory {
        id: id.to_string(),
        modified: modified.unwrap_or_default().to_string(),
        published: published.map(str::to_string),
        withdrawn: None,
        aliases: Vec::new(),
        summary: None,
        details: None,
        severity,
        affected: Vec::new(),
        references: Vec::new(),
        database_specific: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::severity::{Level, assess};

    #[test]
    fn both_feed_formats_give_scores() {
        let v11 = serde_json::json!({"CVE_data_type": "CVE", "CVE_Items": [{
            "cve": {"CVE_data_meta": {"ID": "CVE-2020-14343"}},
            "impact": {"baseMetricV3": {"cvssV3": {"vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8}}},
            "lastModifiedDate": "2021-02-09T16:15Z"
        }]});
        assert!(is_feed(&v11));
        let a = advisories(&v11);
        assert_eq!(a[0].id, "CVE-2020-14343");
        assert_eq!(assess(&a[0]).level, Level::Critical);
        let v20 = serde_json::json!({"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": {
            "id": "CVE-2019-14234", "lastModified": "2024-11-21T04:26:15.813",
            "metrics": {"cvssMetricV31": [
                {"source": "other", "type": "Secondary", "cvssData": {"vectorString": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}},
                {"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}
            ]}
        }}, {"cve": {"id": "CVE-2000-1", "metrics": {}}}]});
        assert!(is_feed(&v20));
        let a = advisories(&v20);
        assert_eq!(assess(&a[0]).level, Level::Critical, "NVD's primary score");
        assert_eq!(assess(&a[1]).level, Level::Unknown);
        assert!(!is_feed(
            &serde_json::json!({"id": "GHSA-x", "affected": []})
        ));
    }
}
