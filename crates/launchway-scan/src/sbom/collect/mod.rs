//! Finding components: walk a tree (honouring `.gitignore`, never following
//! symlinks), recognise lockfiles and installed-package metadata by name,
//! and parse each with its collector. A broken file is reported with its
//! position and skipped; the walk goes on.

mod alpine;
mod debian;
pub mod elf;
mod go;
mod node;
mod python;
mod rpm;
mod rust;

use super::{CollectError, Component, Inventory};

/// The files a Python distribution's `RECORD` lists (for `--files`).
pub use python::record as python_record;
use std::path::Path;

/// Files larger than this are not lockfiles.
const MAX_FILE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requirements,
    PipfileLock,
    PoetryLock,
    UvLock,
    PdmLock,
    PythonMetadata,
    PythonRecord,
    CargoLock,
    PackageLock,
    YarnLock,
    PnpmLock,
    GoMod,
    GoSum,
    DpkgStatus,
    /// One package per file, without a `Status:` field (distroless images).
    DpkgStatusD,
    ApkInstalled,
    /// Binary (SQLite): read from its path with [`rpm_database`].
    RpmSqlite,
    NodePackage,
}

/// Whether a file name could be one a collector reads (or a program).
fn interesting(name: &str) -> bool {
    matches!(
        name,
        "Pipfile.lock"
            | "poetry.lock"
            | "uv.lock"
            | "pdm.lock"
            | "Cargo.lock"
            | "package-lock.json"
            | "npm-shrinkwrap.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "go.mod"
            | "go.sum"
            | "METADATA"
            | "PKG-INFO"
            | "status"
            | "installed"
            | "rpmdb.sqlite"
            | "package.json"
    ) || (name.ends_with(".txt") && name.contains("requirements"))
        || name.ends_with(".txt")
        || !name.contains('.')
}

/// Which collector reads this path (relative to the root, `/`-separated).
pub fn detect(rel: &str) -> Option<Kind> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    Some(match name {
        "Pipfile.lock" => Kind::PipfileLock,
        "poetry.lock" => Kind::PoetryLock,
        "uv.lock" => Kind::UvLock,
        "pdm.lock" => Kind::PdmLock,
        "Cargo.lock" => Kind::CargoLock,
        "package-lock.json" | "npm-shrinkwrap.json" => Kind::PackageLock,
        "yarn.lock" => Kind::YarnLock,
        "pnpm-lock.yaml" => Kind::PnpmLock,
        "go.mod" => Kind::GoMod,
        "go.sum" => Kind::GoSum,
        "METADATA" | "PKG-INFO"
            if rel
                .split('/')
                .rev()
                .nth(1)
                .is_some_and(|d| d.ends_with(".dist-info") || d.ends_with(".egg-info")) =>
        {
            Kind::PythonMetadata
        }
        "RECORD"
            if rel
                .split('/')
                .rev()
                .nth(1)
                .is_some_and(|d| d.ends_with(".dist-info")) =>
        {
            Kind::PythonRecord
        }
        "status" if rel.ends_with("var/lib/dpkg/status") => Kind::DpkgStatus,
        "installed" if rel.ends_with("lib/apk/db/installed") => Kind::ApkInstalled,
        "rpmdb.sqlite" => Kind::RpmSqlite,
        n if rel.split('/').rev().nth(1) == Some("status.d")
            && rel.contains("var/lib/dpkg/status.d/")
            && !n.ends_with(".md5sums") =>
        {
            Kind::DpkgStatusD
        }
        "package.json" if is_installed_node_package(rel) => Kind::NodePackage,
        n if n.ends_with(".txt") && n.contains("requirements") => Kind::Requirements,
        n if n.ends_with(".txt") && rel.split('/').rev().nth(1) == Some("requirements") => {
            Kind::Requirements
        }
        _ => return None,
    })
}

/// Modules an executable at `path` was built from (Go build info,
/// cargo-auditable): only its sections are read.
fn executable_modules(path: &Path, rel: &str) -> Option<Vec<super::Component>> {
    use std::os::unix::fs::PermissionsExt;
    // Programs have no extension; everything else is skipped without a stat.
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if name.contains('.') {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o111 == 0 || meta.len() < 64 {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    let cs = elf::modules(&f, rel);
    (!cs.is_empty()).then_some(cs)
}

/// `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`.
fn is_installed_node_package(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let n = parts.len();
    (n >= 3 && parts[n - 3] == "node_modules" && !parts[n - 2].starts_with('@'))
        || (n >= 4 && parts[n - 4] == "node_modules" && parts[n - 3].starts_with('@'))
}

/// What one file gave: its components, and the entries that could not be
/// read — each an error of its own, so one bad entry loses only itself
/// (and still fails a gate: those packages were not checked).
#[derive(Debug, Default)]
pub struct Parsed {
    pub components: Vec<Component>,
    pub errors: Vec<CollectError>,
}

impl From<Vec<Component>> for Parsed {
    fn from(components: Vec<Component>) -> Parsed {
        Parsed {
            components,
            errors: Vec::new(),
        }
    }
}

/// Parses one recognised file.
/// An RPM database (`rpmdb.sqlite`) at `path`, located as `rel`.
pub fn rpm_database(path: &Path, rel: &str) -> Result<Parsed, CollectError> {
    rpm::rpmdb_sqlite(path, rel).map(Parsed::from)
}

pub fn parse(kind: Kind, rel: &str, text: &str) -> Result<Parsed, CollectError> {
    match kind {
        Kind::Requirements => python::requirements(rel, text),
        Kind::PipfileLock => python::pipfile_lock(rel, text).map(Parsed::from),
        Kind::PoetryLock => python::poetry_lock(rel, text),
        Kind::UvLock => python::uv_lock(rel, text),
        Kind::PdmLock => python::pdm_lock(rel, text),
        Kind::PythonMetadata => python::metadata(rel, text).map(Parsed::from),
        // Owned files, not packages: see `inventory_opts`.
        Kind::PythonRecord => Ok(Parsed::default()),
        Kind::CargoLock => rust::cargo_lock(rel, text).map(Parsed::from),
        Kind::PackageLock => node::package_lock(rel, text).map(Parsed::from),
        Kind::YarnLock => node::yarn_lock(rel, text),
        Kind::PnpmLock => node::pnpm_lock(rel, text),
        Kind::GoMod => go::go_mod(rel, text).map(Parsed::from),
        Kind::GoSum => go::go_sum(rel, text).map(Parsed::from),
        Kind::DpkgStatus => debian::dpkg_status(rel, text).map(Parsed::from),
        Kind::DpkgStatusD => debian::status_d(rel, text).map(Parsed::from),
        Kind::ApkInstalled => alpine::apk_installed(rel, text).map(Parsed::from),
        Kind::RpmSqlite => Err(err(rel, None, "an RPM database is read from its file")),
        Kind::NodePackage => node::installed_package(rel, text).map(Parsed::from),
    }
}

/// Collects every component under `root` (a directory or one file),
/// honouring `.gitignore`.
pub fn inventory(root: &Path) -> Inventory {
    inventory_with(root, true)
}

/// As [`inventory`]; `respect_ignore: false` also reads ignored files
/// (vendored trees, crate sources whose `.gitignore` lists `Cargo.lock`).
pub fn inventory_with(root: &Path, respect_ignore: bool) -> Inventory {
    inventory_opts(
        root,
        &Options {
            respect_ignore,
            files: false,
        },
    )
}

/// What a collection reads beyond lockfiles and package metadata.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `false` also reads files `.gitignore` excludes.
    pub respect_ignore: bool,
    /// List the files installed packages own (Python `RECORD`), with
    /// digests of what is on disk; see [`digest_files`].
    pub files: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            respect_ignore: true,
            files: false,
        }
    }
}

/// Collects every component under `root` as `opts` say.
pub fn inventory_opts(root: &Path, opts: &Options) -> Inventory {
    let respect_ignore = opts.respect_ignore;
    let want_files = opts.files;
    let inv = std::sync::Mutex::new(Inventory::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // A parallel walk; each thread reads and parses what it recognises.
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .ignore(respect_ignore)
        .git_ignore(respect_ignore)
        .git_global(false)
        .git_exclude(respect_ignore)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel();
    walker.run(|| {
        let inv = &inv;
        Box::new(move |entry| {
            let record = |e: CollectError| {
                if let Ok(mut i) = inv.lock() {
                    i.errors.push(e);
                }
            };
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    record(CollectError {
                        file: root.display().to_string(),
                        line: None,
                        column: None,
                        message: e.to_string(),
                    });
                    return ignore::WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            // Most files cannot be anything we read: decide by name first,
            // before building paths.
            if !entry.file_name().to_str().is_some_and(interesting) {
                return ignore::WalkState::Continue;
            }
            let rel = match entry.path().strip_prefix(root) {
                Ok(r) if !r.as_os_str().is_empty() => r.to_string_lossy().replace('\\', "/"),
                _ => entry
                    .path()
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().to_string()),
            };
            let kind = detect(&rel);
            if kind == Some(Kind::PythonRecord) && !want_files {
                return ignore::WalkState::Continue;
            }
            let Some(kind) = kind else {
                // Executables may carry the modules they were built from (Go).
                if let Some(cs) = executable_modules(entry.path(), &rel)
                    && let Ok(mut i) = inv.lock()
                {
                    i.files.push(rel);
                    i.components.extend(cs);
                }
                return ignore::WalkState::Continue;
            };
            if kind == Kind::RpmSqlite {
                let parsed = rpm_database(entry.path(), &rel);
                if let Ok(mut i) = inv.lock() {
                    i.files.push(rel);
                    match parsed {
                        Ok(p) => i.components.extend(p.components),
                        Err(e) => i.errors.push(e),
                    }
                }
                return ignore::WalkState::Continue;
            }
            if entry.metadata().is_ok_and(|m| m.len() > MAX_FILE) {
                record(CollectError {
                    file: rel,
                    line: None,
                    column: None,
                    message: "larger than 64 MiB; skipped".into(),
                });
                return ignore::WalkState::Continue;
            }
            let text = match std::fs::read(entry.path()) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    record(CollectError {
                        file: rel,
                        line: None,
                        column: None,
                        message: e.to_string(),
                    });
                    return ignore::WalkState::Continue;
                }
            };
            if kind == Kind::PythonRecord {
                let parsed = python::record(&rel, &text);
                if let Ok(mut i) = inv.lock() {
                    match parsed {
                        Ok(files) => {
                            let dist = rel.rsplit_once('/').map_or("", |(d, _)| d).to_string();
                            i.owned.push((dist, files));
                            i.files.push(rel);
                        }
                        Err(e) => i.errors.push(e),
                    }
                }
                return ignore::WalkState::Continue;
            }
            let parsed = parse(kind, &rel, &text);
            if let Ok(mut i) = inv.lock() {
                i.files.push(rel);
                match parsed {
                    Ok(p) => {
                        i.components.extend(p.components);
                        i.errors.extend(p.errors);
                    }
                    Err(e) => i.errors.push(e),
                }
            }
            ignore::WalkState::Continue
        })
    });
    let mut inv = inv.into_inner().unwrap_or_default();
    inv.finish();
    if want_files {
        digest_files(root, &mut inv);
    }
    inv
}

/// Reads every owned file listed in the inventory and replaces its
/// recorded digests with the SHA-1 and SHA-256 of its content (SPDX
/// requires SHA-1 for files). A file whose content no longer matches its
/// `RECORD` entry was changed after installation and is reported; files
/// that are gone, or are not regular files, are dropped from the list.
pub fn digest_files(root: &Path, inv: &mut Inventory) {
    use sha1::Sha1;
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let base = if root.is_file() {
        root.parent().unwrap_or(root)
    } else {
        root
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let digest = |rel: &str| -> Option<(String, String, u64)> {
        let path = base.join(rel);
        // Never follow a symlink out of the tree.
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        let mut f = std::fs::File::open(&path).ok()?;
        let (mut s1, mut s256) = (Sha1::new(), Sha256::new());
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            size += n as u64;
            s1.update(&buf[..n]);
            s256.update(&buf[..n]);
        }
        Some((hex(&s1.finalize()), hex(&s256.finalize()), size))
    };
    let jobs: Vec<(usize, usize)> = inv
        .components
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| (0..c.files.len()).map(move |fi| (ci, fi)))
        .collect();
    if jobs.is_empty() {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = jobs.len().div_ceil(threads);
    let comps = &inv.components;
    let results: Vec<Option<(String, String, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(ci, fi)| digest(&comps[ci].files[fi].path))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut modified = Vec::new();
    for (&(ci, fi), r) in jobs.iter().zip(results).rev() {
        let c = &mut inv.components[ci];
        let Some((sha1, sha256, size)) = r else {
            c.files.remove(fi);
            continue;
        };
        let f = &mut c.files[fi];
        if let Some(rec) = python::recorded_sha256(f)
            && rec.value != sha256
        {
            modified.push(CollectError {
                file: f.path.clone(),
                line: None,
                column: None,
                message: format!(
                    "content differs from the RECORD of {} {} (sha256 {} recorded, {} on disk): changed after installation",
                    c.name, c.version, rec.value, sha256
                ),
            });
        }
        f.digests = vec![
            super::Hash {
                alg: "SHA-1".into(),
                value: sha1,
            },
            super::Hash {
                alg: "SHA-256".into(),
                value: sha256,
            },
        ];
        f.size = Some(size);
    }
    modified.sort_by(|a, b| a.file.cmp(&b.file));
    inv.notices = modified;
}

/// 1-based line and column of a byte offset.
pub fn position_of(text: &str, offset: usize) -> (usize, usize) {
    position(text, offset)
}

pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub(crate) fn err(file: &str, line: Option<usize>, message: impl Into<String>) -> CollectError {
    CollectError {
        file: file.to_string(),
        line,
        column: None,
        message: message.into(),
    }
}

/// TOML into a value, with positioned errors.
pub(crate) fn toml_doc(file: &str, text: &str) -> Result<toml::Table, CollectError> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e.span().map_or((None, None), |s| {
            let (l, c) = position(text, s.start);
            (Some(l), Some(c))
        });
        CollectError {
            file: file.to_string(),
            line,
            column,
            message: format!("invalid TOML: {}", e.message()),
        }
    })
}

/// JSON into a value, with positioned errors.
pub(crate) fn json_doc(file: &str, text: &str) -> Result<serde_json::Value, CollectError> {
    serde_json::from_str(text).map_err(|e| CollectError {
        file: file.to_string(),
        line: Some(e.line()),
        column: Some(e.column()),
        message: format!("invalid JSON: {e}"),
    })
}

/// `sha256:abc…` / `sha256=abc…` into a hash.
pub(crate) fn hash(spec: &str) -> Option<super::Hash> {
    let (alg, value) = spec.split_once([':', '='])?;
    let alg = match alg.to_ascii_lowercase().as_str() {
        "sha256" => "SHA-256",
        "sha512" => "SHA-512",
        "sha384" => "SHA-384",
        "sha1" => "SHA-1",
        "md5" => "MD5",
        _ => return None,
    };
    let value = value.trim().to_ascii_lowercase();
    (!value.is_empty() && value.chars().all(|c| c.is_ascii_hexdigit())).then(|| super::Hash {
        alg: alg.to_string(),
        value,
    })
}

/// npm-style SRI integrity (`sha512-<base64>`) into a hex hash.
pub(crate) fn integrity(sri: &str) -> Option<super::Hash> {
    let (alg, b64) = sri.split_whitespace().next()?.split_once('-')?;
    let alg = match alg {
        "sha512" => "SHA-512",
        "sha384" => "SHA-384",
        "sha256" => "SHA-256",
        "sha1" => "SHA-1",
        _ => return None,
    };
    let bytes = base64_decode(b64)?;
    Some(super::Hash {
        alg: alg.to_string(),
        value: bytes.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    };
    let clean: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect("requirements.txt"), Some(Kind::Requirements));
        assert_eq!(
            detect("sub/py3.11-requirements.txt"),
            Some(Kind::Requirements)
        );
        assert_eq!(detect("requirements/base.txt"), Some(Kind::Requirements));
        assert_eq!(detect("dev-requirements.txt"), Some(Kind::Requirements));
        assert_eq!(
            detect(".venv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA"),
            Some(Kind::PythonMetadata)
        );
        assert_eq!(detect("rootfs/var/lib/dpkg/status"), Some(Kind::DpkgStatus));
        assert_eq!(detect("notes.txt"), None);
        assert_eq!(detect("METADATA"), None);
    }

    #[test]
    fn hashes() {
        let h = integrity("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==").unwrap();
        assert_eq!(h.alg, "SHA-512");
        assert_eq!(h.value.len(), 128);
        assert!(h.value.starts_with("cf83e135"));
        assert_eq!(hash("sha256:ABCDEF").unwrap().value, "abcdef");
        assert!(hash("sha256:xyz").is_none());
    }
}
