//! Matching an inventory against the advisory database: one finding per
//! vulnerability per package (aliases merged), severity, fixed versions,
//! an ignore file and `--ignore-unfixed`.

use crate::osv::db::{Db, Stored};
use crate::osv::severity::{Level, Severity};
use crate::osv::{fixed_versions, is_affected};
use crate::sbom::Component;
use crate::version::Ecosystem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The preferred id: a CVE when there is one, else a GHSA, else the first.
    pub id: String,
    pub aliases: Vec<String>,
    pub package: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    pub locations: Vec<String>,
    /// Where the package is pinned in its first location (1-based), when
    /// it could be found there: SARIF points at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub severity: Severity,
    pub fixed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub references: Vec<String>,
    /// In an image: the layer that added the package.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub layer: Option<String>,
    /// An OS package's source package, when advisories name that.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_package: Option<String>,
}

/// `.trivyignore`: one id per line, optional `exp:YYYY-MM-DD`, `#` comments.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    entries: Vec<(String, Option<String>)>,
}

impl IgnoreList {
    pub fn parse(text: &str) -> Result<IgnoreList, String> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let id = parts.next().unwrap_or("").to_string();
            let mut exp = None;
            for p in parts {
                match p.strip_prefix("exp:") {
                    Some(d) if is_date(d) => exp = Some(d.to_string()),
                    // A date that does not exist would never (or always)
                    // expire by string comparison: refused, not ignored.
                    Some(d) => {
                        return Err(format!(
                            "line {}: '{d}' is not a date (expected exp:YYYY-MM-DD, e.g. exp:2026-12-31)",
                            i + 1
                        ));
                    }
                    None => {
                        return Err(format!(
                            "line {}: unexpected '{p}' (expected 'exp:YYYY-MM-DD')",
                            i + 1
                        ));
                    }
                }
            }
            entries.push((id, exp));
        }
        Ok(IgnoreList { entries })
    }

    /// Whether any of these ids is ignored on `today` (`YYYY-MM-DD`).
    pub fn ignores<'a>(&self, mut ids: impl Iterator<Item = &'a str>, today: &str) -> bool {
        ids.any(|id| {
            self.entries.iter().any(|(e, exp)| {
                e.eq_ignore_ascii_case(id) && exp.as_deref().is_none_or(|d| d >= today)
            })
        })
    }
}

/// A real calendar date written `YYYY-MM-DD`.
fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u32>().ok());
    let (Some(y), Some(m), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if !d[..4]
        .bytes()
        .chain(d[5..7].bytes())
        .chain(d[8..].bytes())
        .all(|c| c.is_ascii_digit())
    {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ignore: IgnoreList,
    pub ignore_unfixed: bool,
    /// `YYYY-MM-DD`, for ignore-file expiry.
    pub today: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub packages: usize,
    pub ignored: usize,
    pub withdrawn: usize,
    /// Ecosystems with packages but no advisories at all (neither
    /// imported nor built in): their packages were not checked.
    pub missing_ecosystems: Vec<String>,
    /// OS packages of distributions whose advisories Launchway cannot
    /// match (e.g. `ubuntu-22.04`), with how many packages: not checked.
    pub unsupported_distros: BTreeMap<String, usize>,
    /// Per ecosystem checked: where its advisories came from.
    pub sources: BTreeMap<String, Origin>,
    /// RustSec's informational advisories (unmaintained, unsound,
    /// notice) that match: warnings, as cargo-audit gives them, never
    /// vulnerabilities.
    pub notices: Vec<Notice>,
}

/// An informational advisory about a package in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    /// `unmaintained`, `unsound`, `notice`…
    pub kind: String,
    pub package: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// RustSec's `informational` label of an advisory, if it has one.
fn informational(a: &crate::osv::Advisory) -> Option<String> {
    a.affected.iter().find_map(|af| {
        af.database_specific
            .get("informational")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

/// Where an ecosystem's advisories came from, and how old they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `local database` or `built-in snapshot`.
    pub source: String,
    /// `YYYY-MM-DD`: the newest advisory's date (local), or the
    /// snapshot's source revision date.
    pub date: String,
}

fn primary(ids: &[String]) -> String {
    ids.iter()
        .find(|i| i.starts_with("CVE-"))
        .or_else(|| ids.iter().find(|i| i.starts_with("GHSA-")))
        .or_else(|| ids.first())
        .cloned()
        .unwrap_or_default()
}

/// Merges advisories that share any id into one group each.
fn merge(hits: Vec<&Stored>) -> Vec<Vec<&Stored>> {
    let mut groups: Vec<(Vec<String>, Vec<&Stored>)> = Vec::new();
    for s in hits {
        let ids: Vec<String> = s.advisory.ids().map(str::to_string).collect();
        let mut matching: Vec<usize> = groups
            .iter()
            .enumerate()
            .filter(|(_, (gids, _))| gids.iter().any(|g| ids.contains(g)))
            .map(|(i, _)| i)
            .collect();
        let mut merged_ids = ids;
        let mut merged = vec![s];
        // Fold every group this one bridges into one.
        while let Some(i) = matching.pop() {
            let (gids, members) = groups.remove(i);
            merged_ids.extend(gids);
            merged.extend(members);
        }
        merged_ids.sort();
        merged_ids.dedup();
        groups.push((merged_ids, merged));
    }
    groups.into_iter().map(|(_, m)| m).collect()
}

/// The release of a distribution an OS package's advisories carry
/// (`12` of `Debian:12`, `v3.19` of `Alpine:v3.19`): `Some(None)` when the
/// package says no distribution (every release's advisories apply, which
/// errs towards reporting), `None` when its distribution is one whose
/// advisories are not Debian's or Alpine's (Ubuntu's packages are not
/// Debian's).
fn osv_release(c: &Component) -> Option<Option<String>> {
    let Some(distro) = &c.distro else {
        return Some(None);
    };
    let (id, release) = distro.split_once('-')?;
    match (c.ecosystem, id) {
        (Ecosystem::Debian, "debian") => Some(Some(release.to_string())),
        (Ecosystem::Alpine, "alpine") => Some(Some(format!("v{release}"))),
        _ => None,
    }
}

/// Matches `components` against `db`, or for an ecosystem `db` has
/// nothing for, against `snapshot` (the built-in one).
pub fn scan(
    components: &[Component],
    db: &Db,
    snapshot: Option<&(Db, crate::osv::snapshot::Header)>,
    opts: &Options,
) -> Result<(Vec<Finding>, Stats), String> {
    let mut stats = Stats {
        packages: components.len(),
        ..Stats::default()
    };
    let mut by_eco: BTreeMap<Ecosystem, Vec<&Component>> = BTreeMap::new();
    // The project's own packages are listed, not matched.
    for c in components.iter().filter(|c| !c.local) {
        by_eco.entry(c.ecosystem).or_default().push(c);
    }
    // Scores by identifier, for advisories that carry none (PyPA's): the
    // local table first, then the snapshot's.
    let mut scores = match snapshot {
        Some((sdb, _)) => sdb.scores()?,
        None => std::collections::HashMap::new(),
    };
    scores.extend(db.scores()?);
    let mut findings = Vec::new();
    for (eco, comps) in by_eco {
        let name = eco.osv_name().to_string();
        let mut reader = match db.reader(eco)? {
            Some(r) => {
                let newest = db
                    .meta()
                    .ecosystems
                    .get(&name)
                    .map(|m| m.newest.chars().take(10).collect())
                    .unwrap_or_default();
                stats.sources.insert(
                    name.clone(),
                    Origin {
                        source: "local database".into(),
                        date: newest,
                    },
                );
                r
            }
            None => match snapshot.and_then(|(sdb, h)| Some((sdb, h.date_of(&name)?))) {
                Some((sdb, date)) => match sdb.reader(eco)? {
                    Some(r) => {
                        stats.sources.insert(
                            name.clone(),
                            Origin {
                                source: "built-in snapshot".into(),
                                date: date.to_string(),
                            },
                        );
                        r
                    }
                    None => {
                        stats.missing_ecosystems.push(name);
                        continue;
                    }
                },
                None => {
                    stats.missing_ecosystems.push(name);
                    continue;
                }
            },
        };
        for c in comps {
            let Some(release) = osv_release(c) else {
                if let Some(d) = &c.distro {
                    *stats.unsupported_distros.entry(d.clone()).or_default() += 1;
                }
                continue;
            };
            // OS advisories name the source package, at its version.
            let (key, version) = c.advisory_key();
            let stored = reader.for_package(key)?;
            let mut hits: Vec<&Stored> = Vec::new();
            for s in &stored {
                if s.advisory.withdrawn.is_some() {
                    stats.withdrawn += 1;
                    continue;
                }
                let affected = s.advisory.affected.iter().any(|af| {
                    af.package.as_ref().is_some_and(|p| {
                        eco.normalize_name(&p.name) == eco.normalize_name(key)
                            && release.as_deref().is_none_or(|r| {
                                // `Debian:12` applies to Debian 12 only;
                                // a bare `Debian` to every release.
                                p.ecosystem.split_once(':').is_none_or(|(_, pr)| pr == r)
                            })
                    }) && is_affected(eco, version, af)
                });
                if affected {
                    if let Some(kind) = informational(&s.advisory) {
                        stats.notices.push(Notice {
                            id: s.advisory.id.clone(),
                            kind,
                            package: c.name.clone(),
                            version: c.version.clone(),
                            summary: s.advisory.summary.clone(),
                        });
                        continue;
                    }
                    hits.push(s);
                }
            }
            for group in merge(hits) {
                let mut ids: Vec<String> = group
                    .iter()
                    .flat_map(|s| s.advisory.ids().map(str::to_string))
                    .collect();
                ids.sort();
                ids.dedup();
                let id = primary(&ids);
                let aliases: Vec<String> = ids.iter().filter(|i| **i != id).cloned().collect();
                let severity = group
                    .iter()
                    .map(|s| s.severity.clone())
                    .max_by(|a, b| {
                        a.level
                            .cmp(&b.level)
                            .then(a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)))
                    })
                    .filter(|s| s.level != Level::Unknown)
                    .or_else(|| {
                        // No record of the group has a score: any other
                        // record sharing an identifier (NVD's CVE, a GHSA
                        // of another ecosystem) gives it.
                        ids.iter()
                            .filter_map(|i| scores.get(i))
                            .max_by(|a, b| {
                                a.level
                                    .cmp(&b.level)
                                    .then(a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)))
                            })
                            .cloned()
                    })
                    .unwrap_or(Severity {
                        level: Level::Unknown,
                        score: None,
                        vector: None,
                    });
                let mut fixed: Vec<String> = group
                    .iter()
                    .flat_map(|s| s.advisory.affected.iter().flat_map(fixed_versions))
                    .collect();
                fixed.sort_by(|a, b| eco.compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
                fixed.dedup();
                // Fixes on older branches do not help this version.
                let upgrades: Vec<String> = fixed
                    .iter()
                    .filter(|f| eco.compare(f, version) == Some(std::cmp::Ordering::Greater))
                    .cloned()
                    .collect();
                if !upgrades.is_empty() {
                    fixed = upgrades;
                }
                if opts
                    .ignore
                    .ignores(ids.iter().map(String::as_str), &opts.today)
                    || (opts.ignore_unfixed && fixed.is_empty())
                {
                    stats.ignored += 1;
                    continue;
                }
                let summary = group.iter().find_map(|s| {
                    let t = s.advisory.summary.as_deref()?.trim();
                    (!t.is_empty()).then(|| t.to_string())
                });
                let mut references: Vec<String> = group
                    .iter()
                    .flat_map(|s| s.advisory.references.iter().map(|r| r.url.clone()))
                    .collect();
                references.dedup();
                references.truncate(5);
                findings.push(Finding {
                    id,
                    aliases,
                    package: c.name.clone(),
                    version: c.version.clone(),
                    ecosystem: eco,
                    purl: c.purl.clone(),
                    locations: c.locations.clone(),
                    line: None,
                    severity,
                    fixed,
                    summary,
                    references,
                    layer: c.layer.clone(),
                    source_package: c.source.as_ref().map(|s| s.name.clone()),
                });
            }
        }
    }
    findings.sort_by(|a, b| {
        a.locations
            .first()
            .cmp(&b.locations.first())
            .then(b.severity.level.cmp(&a.severity.level))
            .then(a.package.cmp(&b.package))
            .then(a.id.cmp(&b.id))
    });
    Ok((findings, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_files() {
        let l = IgnoreList::parse("# accepted risk\nCVE-2023-1 exp:2026-12-31\nGHSA-xxxx  # forever\nCVE-2020-9 exp:2020-01-01\n").unwrap();
        assert!(l.ignores(["CVE-2023-1"].into_iter(), "2026-11-27"));
        assert!(!l.ignores(["CVE-2023-1"].into_iter(), "2027-01-01"));
        assert!(l.ignores(["PYSEC-1", "GHSA-xxxx"].into_iter(), "2030-01-01"));
        assert!(
            !l.ignores(["CVE-2020-9"].into_iter(), "2026-11-27"),
            "expired"
        );
        assert!(
            IgnoreList::parse("CVE-1 until:tomorrow\n")
                .unwrap_err()
                .contains("line 1")
        );
        // Issue 17.10: an expiry that is no date is an error, not ignored.
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-1-011",
            "2026-00-10",
        ] {
            let e = IgnoreList::parse(&format!("# x\nCVE-1 exp:{bad}\n")).unwrap_err();
            assert!(
                e.contains("line 2") && e.contains("not a date"),
                "{bad}: {e}"
            );
        }
        assert!(
            IgnoreList::parse("CVE-1 exp:2024-02-29\n").is_ok(),
            "leap day"
        );
    }
}
