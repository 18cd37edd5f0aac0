//! The local advisory database: one record file and one index per
//! ecosystem under `<data dir>/db/osv/`. Records are compact JSON lines
//! (only the ecosystem's `affected` entries, severity precomputed); the
//! index maps normalised package names to byte ranges, so a scan reads
//! only the advisories of the packages it has.

use super::model::{Advisory, ParseError};
use super::severity::{Severity, assess};
use crate::version::Ecosystem;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// An advisory as stored: trimmed to one ecosystem, severity computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub advisory: Advisory,
    pub severity: Severity,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Per ecosystem: advisory count and when it was last imported.
    pub ecosystems: BTreeMap<String, EcosystemMeta>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EcosystemMeta {
    pub advisories: usize,
    pub withdrawn: usize,
    pub imported_at: String,
    /// The newest `modified` of any advisory.
    pub newest: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped_ecosystem: usize,
    /// Identifiers whose CVSS score the scores table gained (from any
    /// record with a score, NVD's feeds included).
    pub scores: usize,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub struct Db {
    dir: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

impl Db {
    pub fn open(data_dir: &Path) -> Db {
        Db {
            dir: data_dir.join("db").join("osv"),
        }
    }

    /// A database kept in `dir` itself (the built-in snapshot's copy).
    pub fn at(dir: PathBuf) -> Db {
        Db { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn records_path(&self, eco: Ecosystem) -> PathBuf {
        self.dir.join(format!("{}.records", eco.purl_type()))
    }

    fn index_path(&self, eco: Ecosystem) -> PathBuf {
        self.dir.join(format!("{}.index", eco.purl_type()))
    }

    pub fn meta(&self) -> Meta {
        std::fs::read(self.dir.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Every stored advisory of an ecosystem.
    pub fn all(&self, eco: Ecosystem) -> Result<Vec<Stored>, String> {
        let path = self.records_path(eco);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path, e)),
        };
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| format!("{}: corrupt record: {e}", path.display()))
            })
            .collect()
    }

    /// Merges advisories into the database: new ids are added, ids with a
    /// newer `modified` replace the stored one, the rest stay as they are.
    pub fn import(&self, advisories: Vec<Advisory>, now: &str) -> Result<ImportStats, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let mut stats = ImportStats {
            scores: self.add_scores(&advisories)?,
            ..ImportStats::default()
        };
        let mut by_eco: BTreeMap<Ecosystem, Vec<Advisory>> = BTreeMap::new();
        for a in advisories {
            let ecos: Vec<Ecosystem> = {
                let mut v: Vec<Ecosystem> = a
                    .affected
                    .iter()
                    .filter_map(|af| {
                        af.package
                            .as_ref()
                            .and_then(|p| Ecosystem::from_osv(&p.ecosystem))
                    })
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            if ecos.is_empty() {
                // NVD's CVEs name no package: their scores are kept above.
                if !a.affected.is_empty() || a.severity.is_empty() {
                    stats.skipped_ecosystem += 1;
                }
                continue;
            }
            for eco in ecos {
                let mut trimmed = a.clone();
                trimmed.affected.retain(|af| {
                    af.package
                        .as_ref()
                        .and_then(|p| Ecosystem::from_osv(&p.ecosystem))
                        == Some(eco)
                });
                // Details are long and not needed for matching or reports.
                trimmed.details = None;
                by_eco.entry(eco).or_default().push(trimmed);
            }
        }
        let mut meta = self.meta();
        for (eco, incoming) in by_eco {
            let mut current: BTreeMap<String, Stored> = self
                .all(eco)?
                .into_iter()
                .map(|s| (s.advisory.id.clone(), s))
                .collect();
            for a in incoming {
                match current.get(&a.id) {
                    Some(old) if old.advisory.modified >= a.modified => stats.unchanged += 1,
                    existing => {
                        if existing.is_some() {
                            stats.updated += 1;
                        } else {
                            stats.added += 1;
                        }
                        let severity = assess(&a);
                        current.insert(
                            a.id.clone(),
                            Stored {
                                advisory: a,
                                severity,
                            },
                        );
                    }
                }
            }
            self.write(eco, &current)?;
            let m = meta
                .ecosystems
                .entry(eco.osv_name().to_string())
                .or_default();
            m.advisories = current.len();
            m.withdrawn = current
                .values()
                .filter(|s| s.advisory.withdrawn.is_some())
                .count();
            m.imported_at = now.to_string();
            m.newest = current
                .values()
                .map(|s| s.advisory.modified.clone())
                .max()
                .unwrap_or_default();
        }
        let meta_path = self.dir.join("meta.json");
        std::fs::write(
            &meta_path,
            serde_json::to_vec_pretty(&meta).unwrap_or_default(),
        )
        .map_err(|e| io(&meta_path, e))?;
        Ok(stats)
    }

    fn scores_path(&self) -> PathBuf {
        self.dir.join("scores.tsv")
    }

    /// The scores table: every identifier (id or alias) of a record that
    /// had a CVSS score or a severity label, across ecosystems. An
    /// advisory with no score of its own takes one from here.
    pub fn scores(&self) -> Result<HashMap<String, Severity>, String> {
        let path = self.scores_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(io(&path, e)),
        };
        let mut out = HashMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (id, json) = line
                .split_once('\t')
                .ok_or_else(|| format!("{}: corrupt line '{line}'", path.display()))?;
            let s: Severity = serde_json::from_str(json)
                .map_err(|e| format!("{}: corrupt line '{line}': {e}", path.display()))?;
            out.insert(id.to_string(), s);
        }
        Ok(out)
    }

    /// Adds the scored identifiers of `advisories` to the scores table;
    /// returns how many were new or changed.
    fn add_scores(&self, advisories: &[Advisory]) -> Result<usize, String> {
        let mut table = self.scores()?;
        let mut changed = 0;
        for a in advisories {
            let s = assess(a);
            if s.level == super::severity::Level::Unknown {
                continue;
            }
            for id in a.ids() {
                if table.get(id) != Some(&s) {
                    table.insert(id.to_string(), s.clone());
                    changed += 1;
                }
            }
        }
        if changed == 0 {
            return Ok(0);
        }
        let mut lines: Vec<String> = table
            .iter()
            .map(|(id, s)| format!("{id}\t{}", serde_json::to_string(s).unwrap_or_default()))
            .collect();
        lines.sort();
        let path = self.scores_path();
        let tmp = path.with_extension("tsv.tmp");
        std::fs::write(&tmp, lines.join("\n") + "\n").map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(changed)
    }

    fn write(&self, eco: Ecosystem, records: &BTreeMap<String, Stored>) -> Result<(), String> {
        let mut data = Vec::new();
        let mut index: Vec<(String, u64, u64)> = Vec::new();
        for s in records.values() {
            let line = serde_json::to_vec(s).map_err(|e| e.to_string())?;
            let start = data.len() as u64;
            data.extend_from_slice(&line);
            data.push(b'\n');
            let mut names: Vec<String> = s
                .advisory
                .affected
                .iter()
                .filter_map(|af| af.package.as_ref().map(|p| eco.normalize_name(&p.name)))
                .collect();
            names.sort();
            names.dedup();
            for n in names {
                index.push((n, start, line.len() as u64));
            }
        }
        index.sort();
        let idx: String = index
            .iter()
            .map(|(n, o, l)| format!("{n}\t{o}\t{l}\n"))
            .collect();
        // Write both, then rename: readers never see half a database.
        let (rp, ip) = (self.records_path(eco), self.index_path(eco));
        let (rt, it) = (
            rp.with_extension("records.tmp"),
            ip.with_extension("index.tmp"),
        );
        std::fs::write(&rt, &data).map_err(|e| io(&rt, e))?;
        std::fs::write(&it, idx).map_err(|e| io(&it, e))?;
        std::fs::rename(&rt, &rp).map_err(|e| io(&rp, e))?;
        std::fs::rename(&it, &ip).map_err(|e| io(&ip, e))?;
        Ok(())
    }

    /// A reader for lookups in one ecosystem; `None` when nothing is imported.
    pub fn reader(&self, eco: Ecosystem) -> Result<Option<Reader>, String> {
        let ip = self.index_path(eco);
        let text = match std::fs::read_to_string(&ip) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&ip, e)),
        };
        let mut index: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for line in text.lines() {
            let mut parts = line.split('\t');
            let (Some(n), Some(o), Some(l)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("{}: corrupt index line '{line}'", ip.display()));
            };
            let (Ok(o), Ok(l)) = (o.parse(), l.parse()) else {
                return Err(format!("{}: corrupt index line '{line}'", ip.display()));
            };
            index.entry(n.to_string()).or_default().push((o, l));
        }
        let rp = self.records_path(eco);
        let file = std::fs::File::open(&rp).map_err(|e| io(&rp, e))?;
        Ok(Some(Reader {
            eco,
            index,
            file,
            path: rp,
        }))
    }
}

pub struct Reader {
    eco: Ecosystem,
    index: HashMap<String, Vec<(u64, u64)>>,
    file: std::fs::File,
    path: PathBuf,
}

impl Reader {
    /// The advisories that name this package (any version).
    pub fn for_package(&mut self, name: &str) -> Result<Vec<Stored>, String> {
        let Some(ranges) = self.index.get(&self.eco.normalize_name(name)) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
            self.file
                .seek(SeekFrom::Start(offset))
                .map_err(|e| io(&self.path, e))?;
            self.file
                .read_exact(&mut buf)
                .map_err(|e| io(&self.path, e))?;
            out.push(
                serde_json::from_slice(&buf)
                    .map_err(|e| format!("{}: corrupt record: {e}", self.path.display()))?,
            );
        }
        Ok(out)
    }
}

/// Reads advisories from files: OSV JSON, OSV YAML, directories of them
/// and zip archives of JSON (the per-ecosystem `all.zip` exports).
/// Unreadable records are reported and skipped.
pub fn read_sources(paths: &[PathBuf]) -> (Vec<Advisory>, Vec<String>) {
    let mut results: Vec<Result<Advisory, ParseError>> = Vec::new();
    let mut errors = Vec::new();
    for root in paths {
        let files: Vec<PathBuf> = if root.is_dir() {
            walkdir(root)
        } else {
            vec![root.clone()]
        };
        for f in files {
            let name = f.to_string_lossy().to_string();
            let ext = f
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            match ext.as_str() {
                "json" => match std::fs::read(&f) {
                    Ok(b) => results.extend(read_json(&name, &b)),
                    Err(e) => errors.push(format!("{name}: {e}")),
                },
                // NVD publishes its feeds gzip-compressed.
                "gz" if name.ends_with(".json.gz") => match read_gz(&f) {
                    Ok(b) => results.extend(read_json(&name, &b)),
                    Err(e) => errors.push(format!("{name}: {e}")),
                },
                "yaml" | "yml" => match std::fs::read_to_string(&f) {
                    Ok(t) => results.push(Advisory::from_yaml(&name, &t)),
                    Err(e) => errors.push(format!("{name}: {e}")),
                },
                "zip" => match read_zip(&f) {
                    Ok(list) => results.extend(list),
                    Err(e) => errors.push(e),
                },
                _ if root.is_file() => errors.push(format!(
                    "{name}: expected .json, .json.gz (NVD feeds), .yaml or .zip"
                )),
                _ => {}
            }
        }
    }
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(a) => out.push(a),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (out, errors)
}

/// An OSV record, a list of them (a JSON array, or the API's
/// `{"vulns": […]}`), or every CVE of an NVD feed.
fn read_json(name: &str, bytes: &[u8]) -> Vec<Result<Advisory, ParseError>> {
    // NVD feeds are large documents with a recognisable top level; an
    // OSV record is anything else.
    if bytes.len() > 2
        && let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes)
    {
        if super::nvd::is_feed(&doc) {
            return super::nvd::advisories(&doc).into_iter().map(Ok).collect();
        }
        let list = match &doc {
            serde_json::Value::Array(items) => Some(items),
            serde_json::Value::Object(o) if o.len() == 1 => {
                o.get("vulns").and_then(|v| v.as_array())
            }
            _ => None,
        };
        if let Some(items) = list {
            return items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let one = serde_json::to_vec(item).unwrap_or_default();
                    Advisory::from_json(&format!("{name}[{i}]"), &one)
                })
                .collect();
        }
    }
    vec![Advisory::from_json(name, bytes)]
}

/// A gzip file's contents, bounded (NVD's yearly feeds are tens of MB).
fn read_gz(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .take(1 << 30)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip data: {e}"))?;
    Ok(out)
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn read_zip(path: &Path) -> Result<Vec<Result<Advisory, ParseError>>, String> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut z = zip::ZipArchive::new(f)
        .map_err(|e| format!("{}: not a zip archive: {e}", path.display()))?;
    let mut out = Vec::with_capacity(z.len());
    for i in 0..z.len() {
        let mut entry = z
            .by_index(i)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let member = entry.name().map(|n| n.to_string()).unwrap_or_default();
        if !member.ends_with(".json") {
            continue;
        }
        let name = format!("{}!{member}", path.display());
        let mut buf = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 24));
        // Bound each member: an advisory is kilobytes, not gigabytes.
        (&mut entry)
            .take(16 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        out.push(Advisory::from_json(&name, &buf));
    }
    Ok(out)
}
