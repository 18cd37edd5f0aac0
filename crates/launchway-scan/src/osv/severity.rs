//! Severity of an advisory: the base score of its CVSS v3 or v4 vectors
//! (computed, not trusted from elsewhere), else the database's own label.

use super::model::Advisory;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Unknown,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "UNKNOWN",
            Level::Low => "LOW",
            Level::Medium => "MEDIUM",
            Level::High => "HIGH",
            Level::Critical => "CRITICAL",
        }
    }

    /// From a CVSS base score (v3 and v4 share the bands).
    pub fn from_score(score: f64) -> Level {
        match score {
            s if s >= 9.0 => Level::Critical,
            s if s >= 7.0 => Level::High,
            s if s >= 4.0 => Level::Medium,
            s if s > 0.0 => Level::Low,
            _ => Level::Unknown,
        }
    }

    /// A database label: `CRITICAL`, `HIGH`, `MODERATE`/`MEDIUM`, `LOW`.
    pub fn from_label(label: &str) -> Option<Level> {
        Some(match label.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Level::Critical,
            "HIGH" | "IMPORTANT" => Level::High,
            "MODERATE" | "MEDIUM" => Level::Medium,
            "LOW" => Level::Low,
            "UNKNOWN" => Level::Unknown,
            _ => return None,
        })
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::from_label(s).ok_or_else(|| {
            format!("unknown severity '{s}' (expected UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL)")
        })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

/// The base score of a CVSS v3.x or v4.0 vector string.
pub fn cvss_score(vector: &str) -> Option<f64> {
    cvss::Cvss::from_str(vector.trim()).ok().map(|c| c.score())
}

/// The advisory's severity: the highest computed CVSS base score among its
/// vectors, else its database label (`database_specific.severity`).
pub fn assess(a: &Advisory) -> Severity {
    let entries = a
        .severity
        .iter()
        .chain(a.affected.iter().flat_map(|af| af.severity.iter()));
    let best = entries
        .filter(|e| e.kind.starts_with("CVSS_V3") || e.kind.starts_with("CVSS_V4"))
        .filter_map(|e| cvss_score(&e.score).map(|s| (s, e.score.clone())))
        .max_by(|x, y| x.0.total_cmp(&y.0));
    if let Some((score, vector)) = best {
        return Severity {
            level: Level::from_score(score),
            score: Some(score),
            vector: Some(vector),
        };
    }
    let label = a
        .database_specific
        .get("severity")
        .and_then(|v| v.as_str())
        .or_else(|| {
            a.affected.iter().find_map(|af| {
                af.database_specific
                    .get("severity")
                    .and_then(|v| v.as_str())
            })
        })
        .and_then(Level::from_label);
    Severity {
        level: label.unwrap_or(Level::Unknown),
        score: None,
        vector: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        // CVSS v3.1 examples with well-known scores.
        assert_eq!(
            cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
            Some(6.1)
        );
        assert_eq!(
            cvss_score("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"),
            Some(5.5)
        );
        // CVSS v4.0 (FIRST's calculator).
        assert_eq!(
            cvss_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            Some(9.3)
        );
        assert_eq!(
            cvss_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N"),
            Some(6.9)
        );
        assert_eq!(cvss_score("not a vector"), None);
        assert_eq!(Level::from_score(9.8), Level::Critical);
        assert_eq!(Level::from_score(6.1), Level::Medium);
        assert_eq!(Level::from_label("moderate"), Some(Level::Medium));
        assert!(Level::Critical > Level::High && Level::Low > Level::Unknown);
    }
}
