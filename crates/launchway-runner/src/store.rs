//! The data directory: run records, logs, per-job workspaces, artifacts
//! and the cache. Plain files, so a run survives the process that made it.

use crate::record::RunRecord;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Store {
    pub home: PathBuf,
}

impl Store {
    /// `$LAUNCHWAY_HOME`, else `$XDG_DATA_HOME/launchway`, else
    /// `~/.local/share/launchway`.
    pub fn default_home() -> PathBuf {
        if let Some(h) = std::env::var_os("LAUNCHWAY_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(h);
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(x).join("launchway");
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".local/share/launchway")
    }

    pub fn new(home: impl Into<PathBuf>) -> Self {
        Store { home: home.into() }
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.home.join("runs")
    }

    pub fn run_dir(&self, id: u64) -> PathBuf {
        self.runs_dir().join(id.to_string())
    }

    /// A job instance's directory in its run (workspace, temp, tools).
    pub fn job_dir(&self, run: u64, key: &str) -> PathBuf {
        job_dir(&self.run_dir(run), key)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// Claims the next run number; creating the directory is the lock, so
    /// concurrent `launchway run`s never share one.
    pub fn allocate_run(&self) -> std::io::Result<u64> {
        crate::private::dir(&self.runs_dir())?;
        let mut next = self.list_ids()?.last().copied().unwrap_or(0) + 1;
        loop {
            match crate::private::dir_new(&self.run_dir(next)) {
                Ok(()) => return Ok(next),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn list_ids(&self) -> std::io::Result<Vec<u64>> {
        let mut ids: Vec<u64> = match std::fs::read_dir(self.runs_dir()) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        ids.sort_unstable();
        Ok(ids)
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a record.
    pub fn save(&self, rec: &RunRecord) -> std::io::Result<()> {
        let dir = self.run_dir(rec.id);
        crate::private::dir(&dir)?;
        let tmp = dir.join("run.json.tmp");
        crate::private::write(
            &tmp,
            serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join("run.json"))
    }

    pub fn load(&self, id: u64) -> std::io::Result<RunRecord> {
        let bytes = std::fs::read(self.run_dir(id).join("run.json"))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// A file-name-safe form of a job key or step name.
/// A job instance's directory in the run directory `run_dir`.
pub fn job_dir(run_dir: &Path, key: &str) -> PathBuf {
    run_dir.join("jobs").join(slug(key))
}

/// A job instance's log file, relative to its run directory.
pub fn job_log(key: &str) -> String {
    format!("logs/{}.log", slug(key))
}

pub fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(80);
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Copies a directory tree (files and symlinks), creating `to`.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(target, &dest)?;
        } else {
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::copy(entry.path(), &dest)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("test (3.11, ubuntu)"), "test__3.11__ubuntu_");
        assert_eq!(slug("../x"), "_.._x");
    }

    #[test]
    fn allocation_is_unique() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let a = s.allocate_run().unwrap();
        let b = s.allocate_run().unwrap();
        assert_eq!((a, b), (1, 2));
    }
}
