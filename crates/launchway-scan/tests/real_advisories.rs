//! Range evaluation checked against real data: PyPA advisories carry an
//! explicit `versions` list computed from PyPI's release history next to
//! their ranges, and the two must agree. Skips when `../shared` is absent.

#![allow(clippy::unwrap_used)]

use launchway_scan::osv::{Advisory, is_affected};
use launchway_scan::version::Ecosystem;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn shared() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/osv");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// Checked by hand: the list, not the range, is off.
const KNOWN: &[(&str, &str)] = &[
    // Lists pre-releases of 3.2 and 4.2 although the range starts at the finals.
    ("PYSEC-2023-61", "3.2a1"),
    ("PYSEC-2023-61", "3.2b1"),
    ("PYSEC-2023-61", "3.2rc1"),
    ("PYSEC-2023-61", "4.2a1"),
    ("PYSEC-2023-61", "4.2b1"),
    ("PYSEC-2023-61", "4.2rc1"),
    // Backport releases published after the list was computed, inside `introduced 0, fixed …`.
    ("PYSEC-2022-180", "5.7.14"),
    ("PYSEC-2022-180", "5.7.15"),
    ("PYSEC-2020-215", "5.7.14"),
    ("PYSEC-2020-215", "5.7.15"),
    ("PYSEC-2020-220", "6.7.0"),
    ("PYSEC-2022-257", "2.0.19"),
    ("PYSEC-2022-159", "1.8.3"),
];

#[test]
fn pypa_ranges_agree_with_explicit_versions() {
    let Some(root) = shared() else { return };
    let mut advisories: Vec<Advisory> = Vec::new();
    for pkg in std::fs::read_dir(root.join("pypa/vulns")).unwrap() {
        let dir = pkg.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            advisories.push(Advisory::from_yaml(&p.to_string_lossy(), &text).unwrap());
        }
    }
    assert!(advisories.len() > 2000, "{}", advisories.len());
    // Every version any advisory lists for a package is a real release.
    let mut universe: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &advisories {
        for af in &a.affected {
            let name = Ecosystem::PyPI.normalize_name(&af.package.as_ref().unwrap().name);
            universe
                .entry(name)
                .or_default()
                .extend(af.versions.iter().cloned());
        }
    }
    let parse = |v: &str| launchway_scan::version::pep440::Version::parse(v).ok();
    let (mut checked, mut disagree, mut explained) = (0usize, Vec::new(), 0usize);
    for a in &advisories {
        for af in &a.affected {
            if af.versions.is_empty() || !af.ranges.iter().any(|r| r.kind == "ECOSYSTEM") {
                continue;
            }
            let name = Ecosystem::PyPI.normalize_name(&af.package.as_ref().unwrap().name);
            let mut ranges_only = af.clone();
            ranges_only.versions.clear();
            let has_git = af.ranges.iter().any(|r| r.kind == "GIT");
            let newest_listed = af.versions.iter().filter_map(|v| parse(v)).max();
            for v in &universe[&name] {
                // Legacy (non-PEP 440) versions cannot be placed in a range.
                let Some(pv) = parse(v) else { continue };
                checked += 1;
                let listed = af.versions.iter().any(|x| x == v);
                if is_affected(Ecosystem::PyPI, v, &ranges_only) == listed {
                    continue;
                }
                // Known ways the lists and ranges of this database differ:
                // lists derived from a GIT range, lists that omit
                // pre-releases, and lists older than later releases.
                let stale = newest_listed.as_ref().is_some_and(|n| &pv > n);
                if (listed && has_git)
                    || (!listed && (pv.is_prerelease() || stale))
                    || KNOWN.contains(&(a.id.as_str(), v.as_str()))
                {
                    explained += 1;
                } else {
                    disagree.push(format!("{} {name} {v}: listed={listed}", a.id));
                }
            }
        }
    }
    eprintln!(
        "checked {checked} (advisory, version) pairs; {explained} differ in known ways; {} unexplained",
        disagree.len()
    );
    assert!(checked > 100_000, "{checked}");
    assert!(
        disagree.is_empty(),
        "{} disagreements, e.g. {:?}",
        disagree.len(),
        &disagree[..disagree.len().min(20)]
    );
}

#[test]
fn rustsec_records_load_and_their_vectors_score() {
    let Some(root) = shared() else { return };
    let (mut n, mut scored, mut v4) = (0, 0, 0);
    for f in std::fs::read_dir(root.join("rustsec/crates")).unwrap() {
        let p = f.unwrap().path();
        let a = Advisory::from_json(&p.to_string_lossy(), &std::fs::read(&p).unwrap()).unwrap();
        n += 1;
        for s in &a.severity {
            let score = launchway_scan::osv::severity::cvss_score(&s.score);
            assert!(score.is_some(), "{}: cannot score {}", a.id, s.score);
            scored += 1;
            v4 += usize::from(s.kind == "CVSS_V4");
        }
        for af in &a.affected {
            let name = &af.package.as_ref().unwrap().name;
            assert!(!name.is_empty());
            assert!(af.ranges.iter().all(|r| r.kind == "SEMVER"), "{}", a.id);
        }
    }
    eprintln!("{n} RustSec advisories, {scored} vectors scored ({v4} CVSS v4)");
    assert!(n > 1000 && v4 > 0);
}

/// The snapshot compiled into Launchway is exactly what its generator
/// makes from the sources its header names (no hand edits, nothing lost).
#[test]
fn the_built_in_snapshot_is_rebuilt_from_its_sources() {
    use launchway_scan::osv::snapshot::{build, built_in, header};
    let Some(root) = shared() else { return };
    let h = header().unwrap();
    let sources = h
        .sources
        .iter()
        .map(|s| {
            let dir = match s.ecosystems.first().map(String::as_str) {
                Some("PyPI") => root.join("pypa/vulns"),
                Some("crates.io") => root.join("rustsec/crates"),
                other => panic!("no shared copy of {other:?}"),
            };
            (s.clone(), dir)
        })
        .collect();
    let (bytes, errors) = build(sources);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        bytes == built_in(),
        "crates/launchway-scan/snapshot/osv.jsonl.gz differs from what make_snapshot builds; rebuild it (see the example's docs)"
    );
}
