//! Importing hand-written OSV advisories (JSON, YAML, a zip export) and
//! matching a project against them.

#![allow(clippy::unwrap_used)]

use launchway_scan::osv::db::{Db, read_sources};
use launchway_scan::osv::severity::Level;
use launchway_scan::sbom::collect;
use launchway_scan::vuln::{IgnoreList, Options, scan};
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn imported(home: &Path) -> Db {
    let db = Db::open(home);
    let (advisories, errors) =
        read_sources(&[fixtures().join("osv/json"), fixtures().join("osv/yaml")]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("broken.json"), "{errors:?}");
    let stats = db.import(advisories, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!((stats.added, stats.updated, stats.unchanged), (5, 0, 0));
    db
}

#[test]
fn findings_with_aliases_merged_withdrawn_skipped_and_fixes() {
    let home = tempfile::tempdir().unwrap();
    let db = imported(home.path());
    let inv = collect::inventory(&fixtures().join("vulnproject"));
    let opts = Options {
        today: "2026-01-01".into(),
        ..Options::default()
    };
    let (findings, stats) = scan(&inv.components, &db, None, &opts).unwrap();
    let got: Vec<(String, String, String, Level, Vec<String>)> = findings
        .iter()
        .map(|f| {
            (
                f.package.clone(),
                f.version.clone(),
                f.id.clone(),
                f.severity.level,
                f.fixed.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // One finding for the two records sharing CVE-2025-0001; 2.0.3 is fixed.
            (
                "demo-parser".into(),
                "1.1.0".into(),
                "CVE-2025-0001".into(),
                Level::Critical,
                vec!["1.2.0".into(), "2.0.3".into()]
            ),
            (
                "@demo/merge".into(),
                "3.1.4".into(),
                "GHSA-lw00-0004-dddd".into(),
                Level::Medium,
                vec![]
            ),
            // The YAML record: `fixed: 1.10` stays the version 1.10, name normalised.
            (
                "demo-web".into(),
                "1.9.2".into(),
                "GHSA-lw00-0003-cccc".into(),
                Level::Medium,
                vec!["1.10".into()]
            ),
        ]
    );
    let parser = &findings[0];
    assert_eq!(parser.aliases, ["GHSA-lw00-0001-aaaa", "RUSTSEC-2025-9999"]);
    assert_eq!(parser.severity.score, Some(9.8));
    assert_eq!(stats.withdrawn, 2);

    // The ignore file and --ignore-unfixed.
    let ignore = IgnoreList::parse(
        &std::fs::read_to_string(fixtures().join("vulnproject/trivyignore.txt")).unwrap(),
    )
    .unwrap();
    let (f, s) = scan(
        &inv.components,
        &db,
        None,
        &Options {
            ignore,
            today: "2026-01-01".into(),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!((f.len(), s.ignored), (2, 1));
    let (f, _) = scan(
        &inv.components,
        &db,
        None,
        &Options {
            ignore_unfixed: true,
            today: "2026-01-01".into(),
            ..Options::default()
        },
    )
    .unwrap();
    assert!(f.iter().all(|x| !x.fixed.is_empty()));
}

#[test]
fn imports_are_incremental_and_read_zip_exports() {
    let home = tempfile::tempdir().unwrap();
    let db = imported(home.path());
    // The same data again changes nothing.
    let (again, _) = read_sources(&[fixtures().join("osv/json"), fixtures().join("osv/yaml")]);
    let s = db.import(again, "2026-01-02T00:00:00Z").unwrap();
    assert_eq!((s.added, s.updated, s.unchanged), (0, 0, 5));
    // A zip export with one modified and one new record.
    let zip_path = home.path().join("all.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("GHSA-lw00-0001-aaaa.json", opts).unwrap();
    let mut rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("osv/json/LW-2025-0001.json")).unwrap(),
    )
    .unwrap();
    rec["modified"] = "2025-06-01T00:00:00Z".into();
    z.write_all(rec.to_string().as_bytes()).unwrap();
    z.start_file("NEW-1.json", opts).unwrap();
    z.write_all(br#"{"id": "NEW-1", "modified": "2025-06-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}"#).unwrap();
    z.finish().unwrap();
    let (from_zip, errors) = read_sources(&[zip_path]);
    assert!(errors.is_empty());
    let s = db.import(from_zip, "2026-01-03T00:00:00Z").unwrap();
    assert_eq!((s.added, s.updated, s.unchanged), (1, 1, 0));
    let meta = db.meta();
    assert_eq!(meta.ecosystems["crates.io"].advisories, 3);
    assert_eq!(meta.ecosystems["Go"].advisories, 1);
}
