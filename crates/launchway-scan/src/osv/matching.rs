//! Whether a package version is affected by an OSV `affected` entry, with
//! the ecosystem's own version ordering. Follows the OSV specification's
//! evaluation: explicit `versions` lists, and `ECOSYSTEM`/`SEMVER` ranges
//! whose sorted events switch a version in (`introduced`) and out (`fixed`,
//! after `last_affected`), bounded by `limit`.

use super::model::{Affected, Event};
use crate::version::Ecosystem;
use std::cmp::Ordering;

/// The version an event names, and how it sorts: `introduced: "0"` is
/// before everything.
fn event_version(e: &Event) -> &str {
    match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
    }
}

fn cmp(eco: Ecosystem, a: &str, b: &str) -> Option<Ordering> {
    if a == "0" {
        return Some(if b == "0" {
            Ordering::Equal
        } else {
            Ordering::Less
        });
    }
    if b == "0" {
        return Some(Ordering::Greater);
    }
    eco.compare(a, b)
}

/// Whether `version` is affected. Unparseable versions are never matched by
/// ranges (only by an exact entry in `versions`).
pub fn is_affected(eco: Ecosystem, version: &str, affected: &Affected) -> bool {
    if affected.versions.iter().any(|v| eco.same(v, version)) {
        return true;
    }
    affected
        .ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .any(|r| in_range(eco, version, &r.events))
}

/// A version is in a range when the sorted walk of the specification puts
/// it there, or when an `introduced` and the next `fixed`/`last_affected`
/// written after it enclose it. The two agree on well-formed ranges; real
/// records also merge overlapping ranges into one list of events (e.g.
/// `introduced 2.11, fixed 2.11.7, introduced 0, fixed 2.11.6`), which only
/// the pairwise reading gets right. A scanner errs towards reporting.
fn in_range(eco: Ecosystem, version: &str, events: &[Event]) -> bool {
    let limited = events
        .iter()
        .any(|e| matches!(e, Event::Limit(l) if cmp(eco, version, l) != Some(Ordering::Less)));
    !limited && (sorted_walk(eco, version, events) || pairwise(eco, version, events))
}

fn pairwise(eco: Ecosystem, version: &str, events: &[Event]) -> bool {
    let mut open: Option<&str> = None;
    let within = |lo: &str| cmp(eco, version, lo).is_some_and(|o| o != Ordering::Less);
    for e in events {
        match e {
            Event::Introduced(v) => {
                if open.is_some_and(within) {
                    return true;
                }
                open = Some(v);
            }
            Event::Fixed(f) => {
                if let Some(lo) = open.take()
                    && within(lo)
                    && cmp(eco, version, f) == Some(Ordering::Less)
                {
                    return true;
                }
            }
            Event::LastAffected(l) => {
                if let Some(lo) = open.take()
                    && within(lo)
                    && cmp(eco, version, l).is_some_and(|o| o != Ordering::Greater)
                {
                    return true;
                }
            }
            Event::Limit(_) => {}
        }
    }
    open.is_some_and(within)
}

fn sorted_walk(eco: Ecosystem, version: &str, events: &[Event]) -> bool {
    let mut sorted: Vec<&Event> = events.iter().collect();
    // Events whose versions do not parse cannot be placed; drop them.
    sorted.retain(|e| {
        event_version(e) == "0" || cmp(eco, event_version(e), event_version(e)).is_some()
    });
    sorted.sort_by(|a, b| cmp(eco, event_version(a), event_version(b)).unwrap_or(Ordering::Equal));
    let mut affected = false;
    for e in &sorted {
        let Some(o) = cmp(eco, version, event_version(e)) else {
            return false;
        };
        match e {
            Event::Introduced(_) if o != Ordering::Less => affected = true,
            Event::Fixed(_) if o != Ordering::Less => affected = false,
            Event::LastAffected(_) if o == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected
}

/// The versions that fix this entry, for reporting.
pub fn fixed_versions(affected: &Affected) -> Vec<String> {
    let mut out: Vec<String> = affected
        .ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .flat_map(|r| r.events.iter())
        .filter_map(|e| match e {
            Event::Fixed(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::model::Range;

    fn aff(events: Vec<Event>, versions: &[&str]) -> Affected {
        Affected {
            package: None,
            ranges: vec![Range {
                kind: "ECOSYSTEM".into(),
                repo: None,
                events,
            }],
            versions: versions.iter().map(|s| s.to_string()).collect(),
            severity: vec![],
            database_specific: serde_json::Value::Null,
            ecosystem_specific: serde_json::Value::Null,
        }
    }

    #[test]
    fn introduced_fixed() {
        let a = aff(
            vec![Event::Introduced("0".into()), Event::Fixed("3.7.4".into())],
            &[],
        );
        assert!(is_affected(Ecosystem::PyPI, "3.7.3", &a));
        assert!(is_affected(Ecosystem::PyPI, "3.7.4rc1", &a));
        assert!(!is_affected(Ecosystem::PyPI, "3.7.4", &a));
        assert!(!is_affected(Ecosystem::PyPI, "3.8", &a));
        assert_eq!(fixed_versions(&a), ["3.7.4"]);
    }

    #[test]
    fn multiple_intervals_last_affected_and_limit() {
        let a = aff(
            vec![
                Event::Introduced("1.0.0".into()),
                Event::Fixed("1.2.0".into()),
                Event::Introduced("2.0.0".into()),
                Event::LastAffected("2.3.0".into()),
            ],
            &[],
        );
        let e = Ecosystem::Crates;
        assert!(!is_affected(e, "0.9.0", &a));
        assert!(is_affected(e, "1.1.9", &a));
        assert!(!is_affected(e, "1.5.0", &a));
        assert!(is_affected(e, "2.3.0", &a));
        assert!(!is_affected(e, "2.3.1", &a));
        let l = aff(
            vec![Event::Introduced("0".into()), Event::Limit("2.0.0".into())],
            &[],
        );
        assert!(is_affected(e, "1.9.9", &l));
        assert!(!is_affected(e, "2.0.0", &l));
    }

    #[test]
    fn overlapping_ranges_merged_into_one_list() {
        // PYSEC-2021-114's shape: two ranges written as one event list.
        let a = aff(
            vec![
                Event::Introduced("2.11".into()),
                Event::Fixed("2.11.7".into()),
                Event::Introduced("0".into()),
                Event::Fixed("2.11.6".into()),
            ],
            &[],
        );
        assert!(is_affected(Ecosystem::PyPI, "2.11.6", &a));
        assert!(is_affected(Ecosystem::PyPI, "2.10", &a));
        assert!(!is_affected(Ecosystem::PyPI, "2.11.7", &a));
    }

    #[test]
    fn explicit_versions() {
        let a = aff(vec![], &["1.0", "1.1"]);
        assert!(is_affected(Ecosystem::PyPI, "1.0.0", &a));
        assert!(!is_affected(Ecosystem::PyPI, "1.2", &a));
    }
}
