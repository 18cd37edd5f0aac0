//! RPM: the package database as an SQLite file (`rpmdb.sqlite`, RPM 4.16+:
//! Fedora 33+, RHEL 9, Rocky, Alma, openSUSE), table `Packages`, one RPM
//! header per row. A header is `il` index entries and `dl` bytes of data
//! (big-endian); read here: name, version, release, epoch, arch, license
//! and the source RPM (what advisories name). Opened read-only.

use super::err;
use crate::sbom::{CollectError, Component, SourcePackage};
use crate::version::Ecosystem;
use std::path::Path;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;

/// The fields of one header blob; `None` when it is not one.
fn header(blob: &[u8]) -> Option<std::collections::HashMap<u32, String>> {
    let be = |o: usize| -> Option<u32> {
        Some(u32::from_be_bytes(blob.get(o..o + 4)?.try_into().ok()?))
    };
    let il = usize::try_from(be(0)?).ok()?;
    let dl = usize::try_from(be(4)?).ok()?;
    let store = 8usize.checked_add(il.checked_mul(16)?)?;
    if il > 100_000 || store.checked_add(dl)? > blob.len() {
        return None;
    }
    let data = &blob[store..store + dl];
    let mut out = std::collections::HashMap::new();
    for k in 0..il {
        let e = 8 + k * 16;
        let (tag, ty, off) = (be(e)?, be(e + 4)?, usize::try_from(be(e + 8)?).ok()?);
        if ![NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM].contains(&tag) {
            continue;
        }
        let value = match ty {
            // STRING, I18NSTRING: NUL-terminated in the store.
            6 | 9 => {
                let s = data.get(off..)?;
                let end = s.iter().position(|b| *b == 0)?;
                String::from_utf8_lossy(&s[..end]).into_owned()
            }
            // INT32
            4 => u32::from_be_bytes(data.get(off..off + 4)?.try_into().ok()?).to_string(),
            _ => continue,
        };
        out.insert(tag, value);
    }
    Some(out)
}

/// `name-version-release.src.rpm` → (name, version-release).
fn source_rpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

/// The packages of the database at `path`, located as `rel`.
pub fn rpmdb_sqlite(path: &Path, rel: &str) -> Result<Vec<Component>, CollectError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(rel, None, format!("not an RPM database: {e}")))?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages")
        .map_err(|e| err(rel, None, format!("not an RPM database: {e}")))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| err(rel, None, e.to_string()))?;
    let mut out = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| err(rel, None, e.to_string()))?;
        let Some(h) = header(&blob) else {
            return Err(err(rel, None, "a package header that cannot be read"));
        };
        let (Some(name), Some(version)) = (h.get(&NAME), h.get(&VERSION)) else {
            continue; // gpg-pubkey pseudo-packages and the like
        };
        if name == "gpg-pubkey" {
            continue;
        }
        let mut full = match h.get(&RELEASE) {
            Some(r) => format!("{version}-{r}"),
            None => version.clone(),
        };
        if let Some(e) = h.get(&EPOCH).filter(|e| *e != "0") {
            full = format!("{e}:{full}");
        }
        let mut c = Component::new(Ecosystem::Rpm, name, &full, rel);
        if let Some(arch) = h.get(&ARCH) {
            c.purl = format!("{}?arch={arch}", c.purl);
        }
        if let Some(l) = h.get(&LICENSE).filter(|l| !l.is_empty()) {
            c.licenses.push(l.clone());
        }
        c.source = h
            .get(&SOURCERPM)
            .and_then(|s| source_rpm(s))
            .map(|(name, version)| SourcePackage { name, version });
        out.push(c);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with the given (tag, type, value) entries.
    fn blob(entries: &[(u32, u32, &str)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, ty, v) in entries {
            let off = data.len() as u32;
            if *ty == 4 {
                data.extend_from_slice(&v.parse::<u32>().unwrap_or(0).to_be_bytes());
            } else {
                data.extend_from_slice(v.as_bytes());
                data.push(0);
            }
            for x in [*tag, *ty, off, 1] {
                index.extend_from_slice(&x.to_be_bytes());
            }
        }
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    #[test]
    fn headers_and_source_rpms() {
        let h = header(&blob(&[
            (NAME, 6, "openssl-libs"),
            (VERSION, 6, "3.0.7"),
            (RELEASE, 6, "24.el9"),
            (EPOCH, 4, "1"),
            (SOURCERPM, 6, "openssl-3.0.7-24.el9.src.rpm"),
        ]))
        .unwrap_or_default();
        assert_eq!(h.get(&NAME).map(String::as_str), Some("openssl-libs"));
        assert_eq!(h.get(&EPOCH).map(String::as_str), Some("1"));
        assert_eq!(
            source_rpm("openssl-3.0.7-24.el9.src.rpm"),
            Some(("openssl".into(), "3.0.7-24.el9".into()))
        );
        // Truncated or absurd: not a header, no panic.
        assert!(header(&[0, 0, 0, 9]).is_none());
        assert!(header(&[0xff; 16]).is_none());
    }

    #[test]
    fn a_database_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for b in [
            blob(&[
                (NAME, 6, "bash"),
                (VERSION, 6, "5.1.8"),
                (RELEASE, 6, "6.el9"),
                (ARCH, 6, "x86_64"),
                (LICENSE, 6, "GPLv3+"),
                (SOURCERPM, 6, "bash-5.1.8-6.el9.src.rpm"),
            ]),
            blob(&[
                (NAME, 6, "gpg-pubkey"),
                (VERSION, 6, "fd431d51"),
                (RELEASE, 6, "4ae0493b"),
            ]),
        ] {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        drop(conn);
        let cs = rpmdb_sqlite(&path, "/var/lib/rpm/rpmdb.sqlite").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].purl, "pkg:rpm/bash@5.1.8-6.el9?arch=x86_64");
        assert_eq!(cs[0].advisory_key(), ("bash", "5.1.8-6.el9"));
        assert!(rpmdb_sqlite(&dir.path().join("nope"), "x").is_err());
    }
}
