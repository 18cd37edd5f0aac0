//! Reports for a scan: a readable table grouped by target, JSON, and SARIF
//! 2.1.0 that GitHub code scanning accepts.

use crate::osv::severity::Level;
use crate::secrets::Finding as Secret;
use crate::vuln::Finding as Vuln;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write as _;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub target: String,
    /// The image scanned (digest, tags, layers, distribution), when the
    /// target is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::image::ImageInfo>,
    pub vulnerabilities: Vec<Vuln>,
    pub secrets: Vec<Secret>,
    /// Where each ecosystem's advisories came from, and their date.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<AdvisorySource>,
    /// What the scan could not check (files, ecosystems), so an empty
    /// report never hides it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
    /// Vulnerabilities with no severity score that the severity
    /// selection left out: found, but not gated.
    #[serde(skip_serializing_if = "is_zero")]
    pub unscored_not_gated: usize,
    /// Informational advisories (RustSec: unmaintained, unsound): shown,
    /// never gated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<crate::vuln::Notice>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The sentence every report format uses for unscored findings left out.
pub fn unscored_note(n: usize) -> String {
    format!(
        "{n} vulnerabilit{} with no severity score (UNKNOWN) left out by the severity selection: add UNKNOWN to gate on {}, or import NVD's CVE feeds (`launchway db import nvdcve-*.json.gz`) for scores",
        if n == 1 { "y" } else { "ies" },
        if n == 1 { "it" } else { "them" }
    )
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdvisorySource {
    pub ecosystem: String,
    pub source: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for f in &r.vulnerabilities {
        let target = f.locations.first().map_or("", String::as_str);
        if current != Some(target) {
            let n = r
                .vulnerabilities
                .iter()
                .filter(|x| x.locations.first().map(String::as_str) == Some(target))
                .count();
            let _ = writeln!(
                out,
                "\n{target} ({}) — {n} vulnerabilit{}",
                f.ecosystem,
                if n == 1 { "y" } else { "ies" }
            );
            let _ = writeln!(
                out,
                "  {:<24} {:<20} {:<9} {:<16} {:<16} TITLE",
                "LIBRARY", "VULNERABILITY", "SEVERITY", "INSTALLED", "FIXED IN"
            );
            current = Some(target);
        }
        let fixed = if f.fixed.is_empty() {
            "-".to_string()
        } else {
            f.fixed.join(", ")
        };
        let title: String = f
            .summary
            .clone()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect();
        let _ = writeln!(
            out,
            "  {:<24} {:<20} {:<9} {:<16} {:<16} {title}",
            f.package,
            f.id,
            f.severity.level.as_str(),
            f.version,
            fixed
        );
    }
    let mut current: Option<&str> = None;
    for s in &r.secrets {
        if current != Some(s.file.as_str()) {
            let n = r.secrets.iter().filter(|x| x.file == s.file).count();
            let _ = writeln!(
                out,
                "\n{} (secrets) — {n} finding{}",
                s.file,
                if n == 1 { "" } else { "s" }
            );
            current = Some(s.file.as_str());
        }
        let commit = s
            .commit
            .as_ref()
            .map(|c| {
                format!(
                    "  commit {} by {}",
                    &c[..c.len().min(10)],
                    s.author.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}:{} {:<28} {}{commit}",
            s.line,
            s.column,
            s.rule_id,
            s.matched.lines().next().unwrap_or("")
        );
    }
    if r.vulnerabilities.is_empty() && r.secrets.is_empty() {
        out.push_str("No findings.\n");
    }
    for n in &r.notices {
        let _ = writeln!(
            out,
            "Notice: {} {} is {} ({}){}",
            n.package,
            n.version,
            n.kind,
            n.id,
            n.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        );
    }
    for n in &r.not_checked {
        let _ = writeln!(out, "Not checked: {n}");
    }
    if r.unscored_not_gated > 0 {
        let _ = writeln!(out, "Not gated: {}", unscored_note(r.unscored_not_gated));
    }
    if !r.advisories.is_empty() {
        let sources: Vec<String> = r
            .advisories
            .iter()
            .map(|a| format!("{} from the {} of {}", a.ecosystem, a.source, a.date))
            .collect();
        let _ = writeln!(out, "Advisories: {}", sources.join("; "));
    }
    out
}

fn level_of(l: Level) -> &'static str {
    match l {
        Level::Critical | Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Unknown => "note",
    }
}

/// A numeric severity GitHub code scanning ranks by.
fn security_severity(l: Level, score: Option<f64>) -> String {
    let s = score.unwrap_or(match l {
        Level::Critical => 9.5,
        Level::High => 8.0,
        Level::Medium => 5.5,
        Level::Low => 2.0,
        Level::Unknown => 0.0,
    });
    format!("{s:.1}")
}

pub fn sarif(r: &Report, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index = |id: &str, make: &dyn Fn() -> Value| -> usize {
        match rules.iter().position(|x| x["id"] == id) {
            Some(i) => i,
            None => {
                rules.push(make());
                rules.len() - 1
            }
        }
    };
    let mut results = Vec::new();
    for f in &r.vulnerabilities {
        let rule_id = format!("{}/{}", f.id, f.package);
        let idx = rule_index(&rule_id, &|| {
            json!({
                "id": rule_id,
                "name": "VulnerablePackage",
                "shortDescription": {"text": format!("{} in {}", f.id, f.package)},
                "fullDescription": {"text": f.summary.clone().unwrap_or_else(|| format!("{} is affected by {}", f.package, f.id))},
                "helpUri": f.references.first().cloned().unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", f.id)),
                "help": {"text": format!("Upgrade {} to {}", f.package, if f.fixed.is_empty() { "a fixed version when one exists".into() } else { f.fixed.join(" or ") })},
                "properties": {
                    "tags": ["security", "vulnerability", f.ecosystem.osv_name()],
                    "security-severity": security_severity(f.severity.level, f.severity.score),
                },
            })
        });
        let uri = f.locations.first().cloned().unwrap_or_default();
        results.push(json!({
            "ruleId": format!("{}/{}", f.id, f.package),
            "ruleIndex": idx,
            "level": level_of(f.severity.level),
            "message": {"text": format!(
                "{} {} is affected by {} ({}). Fixed in: {}",
                f.package, f.version, f.id, f.severity.level.as_str(),
                if f.fixed.is_empty() { "no fixed version".to_string() } else { f.fixed.join(", ") }
            )},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": f.line.unwrap_or(1)}}}],
            "partialFingerprints": {"launchway/v1": format!("{}:{}:{}", f.purl, f.id, uri)},
        }));
    }
    for s in &r.secrets {
        let idx = rule_index(&s.rule_id, &|| {
            json!({
                "id": s.rule_id,
                "name": "LeakedSecret",
                "shortDescription": {"text": s.description},
                "fullDescription": {"text": format!("{}: a credential committed to the repository", s.description)},
                "help": {"text": "Revoke the credential, rotate it, and remove it from the code and its history."},
                "properties": {"tags": ["security", "secret"], "security-severity": "8.0"},
            })
        });
        results.push(json!({
            "ruleId": s.rule_id,
            "ruleIndex": idx,
            "level": "error",
            "message": {"text": format!("{} found: {}", s.description, s.matched.lines().next().unwrap_or(""))},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": s.file},
                "region": {"startLine": s.line, "startColumn": s.column, "endLine": s.end_line, "endColumn": s.end_column + 1},
            }}],
            "partialFingerprints": {"launchway/v1": s.fingerprint},
        }));
    }
    // What could not be checked, and where the advisories came from: an
    // empty result list never hides either.
    let notifications: Vec<Value> = r
        .not_checked
        .iter()
        .map(|n| json!({"level": "error", "message": {"text": format!("not checked: {n}")}}))
        .chain(r.notices.iter().map(|n| {
            json!({"level": "warning", "message": {"text": format!("{} {} is {} ({})", n.package, n.version, n.kind, n.id)}})
        }))
        .chain((r.unscored_not_gated > 0).then(|| {
            json!({"level": "warning", "message": {"text": format!("not gated: {}", unscored_note(r.unscored_not_gated))}})
        }))
        .chain(r.advisories.iter().map(|a| {
            json!({"level": "note", "message": {"text": format!("{} advisories: {} of {}", a.ecosystem, a.source, a.date)}})
        }))
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": "launchway",
            "informationUri": "https://github.com/launchway/launchway",
            "version": tool_version,
            "rules": rules,
        }},
        "results": results,
    });
    if !notifications.is_empty() {
        run["invocations"] = json!([{
            "executionSuccessful": true,
            "toolExecutionNotifications": notifications,
        }]);
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    })
}
