//! Builds the advisory snapshot that is compiled into Launchway
//! (`crates/launchway-scan/snapshot/osv.jsonl.gz`) from OSV sources.
//!
//! ```text
//! cargo run -p launchway-scan --example make_snapshot -- OUT \
//!   --source 'NAME|URL|REVISION|YYYY-MM-DD|LICENCE|ECOSYSTEM[,ECOSYSTEM]|PATH' ...
//! ```
//! Each source's PATH is read like `launchway db import` reads it (OSV
//! JSON, YAML, directories, zip exports); only advisories of the listed
//! ecosystems are kept. The same sources always give the same bytes (a
//! test rebuilds the built-in snapshot from `../shared/data/osv`).

use launchway_scan::osv::snapshot::{Source, build};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, rest)) = args.split_first() else {
        eprintln!(
            "usage: make_snapshot OUT --source 'NAME|URL|REVISION|DATE|LICENCE|ECOSYSTEMS|PATH' ..."
        );
        return ExitCode::from(2);
    };
    let mut sources = Vec::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let spec = match (flag.as_str(), it.next()) {
            ("--source", Some(spec)) => spec,
            _ => {
                eprintln!("expected --source SPEC, got '{flag}'");
                return ExitCode::from(2);
            }
        };
        let parts: Vec<&str> = spec.split('|').collect();
        let [name, url, revision, date, licence, ecosystems, path] = parts[..] else {
            eprintln!("a source has 7 fields separated by '|': {spec}");
            return ExitCode::from(2);
        };
        sources.push((
            Source {
                name: name.into(),
                url: url.into(),
                revision: revision.into(),
                date: date.into(),
                licence: licence.into(),
                ecosystems: ecosystems.split(',').map(str::to_string).collect(),
            },
            PathBuf::from(path),
        ));
    }
    let (bytes, errors) = build(sources);
    for e in &errors {
        eprintln!("warning: {e} (skipped)");
    }
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("{out}: {e}");
        return ExitCode::from(1);
    }
    eprintln!("{out}: {} bytes", bytes.len());
    ExitCode::SUCCESS
}
