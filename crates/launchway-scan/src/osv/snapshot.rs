//! The advisory snapshot built into the binary: OSV records Launchway may
//! carry under their licences (PyPA's advisory-database, CC-BY 4.0;
//! RustSec's OSV export, CC0), gzip-compressed JSON lines after one header
//! line that names each source, its revision, date and licence.
//!
//! A scan uses it for an ecosystem the local database has nothing for, so
//! a fresh machine gates from its first run; `db import` and `db update`
//! replace it ecosystem by ecosystem. It is imported once per data
//! directory (under `db/snapshot-<date>/`), then read like the local
//! database.

use super::db::Db;
use super::model::Advisory;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// The snapshot in the binary.
static DATA: &[u8] = include_bytes!("../../snapshot/osv.jsonl.gz");

/// Where one part of the snapshot comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub url: String,
    pub revision: String,
    /// `YYYY-MM-DD` of that revision.
    pub date: String,
    pub licence: String,
    /// OSV ecosystem names it covers.
    pub ecosystems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: u32,
    pub sources: Vec<Source>,
}

impl Header {
    /// The date of the source covering `ecosystem` (its data is that old).
    pub fn date_of(&self, ecosystem: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|s| s.ecosystems.iter().any(|e| e == ecosystem))
            .map(|s| s.date.as_str())
    }

    /// The newest source date: the snapshot's name.
    pub fn date(&self) -> &str {
        self.sources
            .iter()
            .map(|s| s.date.as_str())
            .max()
            .unwrap_or("unknown")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the built-in advisory snapshot is unreadable: {0}")]
    Corrupt(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("importing the built-in advisory snapshot: {0}")]
    Import(String),
}

fn corrupt(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Corrupt(e.to_string())
}

fn lines(data: &[u8]) -> impl Iterator<Item = std::io::Result<String>> + '_ {
    BufReader::new(flate2::read::GzDecoder::new(data)).lines()
}

/// The built-in snapshot's header (what it holds, from when).
pub fn header() -> Result<Header, SnapshotError> {
    read_header(DATA)
}

fn read_header(data: &[u8]) -> Result<Header, SnapshotError> {
    let first = lines(data)
        .next()
        .ok_or_else(|| corrupt("empty"))?
        .map_err(corrupt)?;
    serde_json::from_str(&first).map_err(corrupt)
}

/// Every advisory of a snapshot.
pub fn read(data: &[u8]) -> Result<(Header, Vec<Advisory>), SnapshotError> {
    let mut it = lines(data);
    let header: Header = serde_json::from_str(
        &it.next()
            .ok_or_else(|| corrupt("empty"))?
            .map_err(corrupt)?,
    )
    .map_err(corrupt)?;
    let mut out = Vec::new();
    for l in it {
        out.push(serde_json::from_str(&l.map_err(corrupt)?).map_err(corrupt)?);
    }
    Ok((header, out))
}

/// Only `keys` of a `database_specific` object, and only those set.
fn keep(v: &serde_json::Value, keys: &[&str]) -> serde_json::Value {
    let kept: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .filter_map(|k| {
            let x = v.get(*k).filter(|x| !x.is_null())?;
            Some(((*k).to_string(), x.clone()))
        })
        .collect();
    if kept.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Object(kept)
    }
}

/// An advisory with only what matching and reports read: no details, no
/// ecosystem-specific data; severity labels and RustSec's `informational`
/// kept (notices are not vulnerabilities); at most three references.
pub fn trim(mut a: Advisory) -> Advisory {
    a.details = None;
    a.database_specific = keep(&a.database_specific, &["severity"]);
    for af in &mut a.affected {
        af.ecosystem_specific = serde_json::Value::Null;
        af.database_specific = keep(&af.database_specific, &["informational", "severity"]);
        if let Some(p) = af.package.as_mut() {
            p.purl = None;
        }
    }
    a.references.truncate(3);
    a
}

/// Writes a snapshot: the header line, then each advisory trimmed, sorted
/// by id so the same sources always give the same bytes.
pub fn write(
    out: impl Write,
    header: &Header,
    mut advisories: Vec<Advisory>,
) -> std::io::Result<()> {
    advisories.sort_by(|a, b| a.id.cmp(&b.id));
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    serde_json::to_writer(&mut gz, header)?;
    gz.write_all(b"\n")?;
    for a in advisories {
        serde_json::to_writer(&mut gz, &trim(a))?;
        gz.write_all(b"\n")?;
    }
    gz.finish()?.flush()
}

/// The built-in snapshot's bytes.
pub fn built_in() -> &'static [u8] {
    DATA
}

/// Builds a snapshot from each source's files (read as `db import` reads
/// them), keeping the advisories of its ecosystems; returns the bytes and
/// the files that could not be read.
pub fn build(sources: Vec<(Source, std::path::PathBuf)>) -> (Vec<u8>, Vec<String>) {
    let mut advisories = Vec::new();
    let mut errors = Vec::new();
    let mut header = Header {
        format: 1,
        sources: Vec::new(),
    };
    for (source, path) in sources {
        let (read, errs) = super::db::read_sources(&[path]);
        errors.extend(errs);
        advisories.extend(read.into_iter().filter(|a| {
            a.affected.iter().any(|af| {
                af.package
                    .as_ref()
                    .is_some_and(|p| source.ecosystems.contains(&p.ecosystem))
            })
        }));
        header.sources.push(source);
    }
    let mut out = Vec::new();
    if let Err(e) = write(&mut out, &header, advisories) {
        errors.push(e.to_string());
    }
    (out, errors)
}

/// The built-in snapshot as a database under `data_dir`, imported on first
/// use (atomically: a half-imported copy is never read).
pub fn database(data_dir: &Path) -> Result<(Db, Header), SnapshotError> {
    let header = header()?;
    let root = data_dir
        .join("db")
        .join(format!("snapshot-{}", header.date()));
    let done = root.join("complete");
    if done.is_file() {
        return Ok((Db::at(root.join("osv")), header));
    }
    let io = |path: &Path, source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = data_dir.join("db").join(format!(
        ".snapshot-{}-{}",
        header.date(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let (_, advisories) = read(DATA)?;
    Db::at(tmp.join("osv"))
        .import(advisories, &format!("{}T00:00:00Z", header.date()))
        .map_err(SnapshotError::Import)?;
    std::fs::write(tmp.join("complete"), header.date()).map_err(|e| io(&tmp, e))?;
    match std::fs::rename(&tmp, &root) {
        Ok(()) => {}
        // Another scan imported it meanwhile: theirs is as good.
        Err(_) if done.is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(io(&root, e)),
    }
    Ok((Db::at(root.join("osv")), header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_what_was_written_trimmed() {
        let a: Advisory = serde_json::from_value(serde_json::json!({
            "id": "PYSEC-1", "modified": "2024-01-01T00:00:00Z", "details": "long",
            "aliases": ["CVE-1"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": "x", "purl": "pkg:pypi/x"},
                          "versions": ["1.0"],
                          "ecosystem_specific": {"affects": {}},
                          "database_specific": {"informational": "unmaintained", "cvss": null}}],
            "references": [{"type": "WEB", "url": "a"}, {"type": "WEB", "url": "b"},
                           {"type": "WEB", "url": "c"}, {"type": "WEB", "url": "d"}]
        }))
        .unwrap();
        let header = Header {
            format: 1,
            sources: vec![Source {
                name: "t".into(),
                url: "u".into(),
                revision: "r".into(),
                date: "2024-01-02".into(),
                licence: "CC0-1.0".into(),
                ecosystems: vec!["PyPI".into()],
            }],
        };
        let mut buf = Vec::new();
        write(&mut buf, &header, vec![a]).unwrap();
        let (h, list) = read(&buf).unwrap();
        assert_eq!(h, header);
        assert_eq!(
            read_header(&buf).unwrap().date_of("PyPI"),
            Some("2024-01-02")
        );
        let b = &list[0];
        assert_eq!(b.details, None);
        assert_eq!(b.references.len(), 3);
        assert_eq!(
            b.affected[0].database_specific,
            serde_json::json!({"informational": "unmaintained"})
        );
        assert!(read(b"not gzip").is_err());
    }

    #[test]
    fn the_built_in_snapshot_loads() {
        let (h, list) = read(DATA).unwrap();
        assert!(h.date_of("PyPI").is_some() && h.date_of("crates.io").is_some());
        assert!(list.len() > 1000, "{}", list.len());
    }
}
