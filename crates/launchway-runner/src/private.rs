//! Files the runner writes for a job — step scripts with secrets already
//! substituted, runner command files, logs, records — are readable by their
//! owner only: directories 0700, files 0600, whatever the umask says.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` and its missing parents with mode 0700 (existing
/// directories keep theirs).
pub fn dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Creates one directory with mode 0700; fails if it exists.
pub fn dir_new(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Opens `path` for writing, truncated, with mode 0600 (an existing file is
/// switched to 0600 too).
pub fn create(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let perms = f.metadata()?.permissions();
    if perms.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Opens `path` for appending, created with mode 0600 if missing (a log
/// that a restarted server carries on with).
pub fn append(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let perms = f.metadata()?.permissions();
    if perms.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Writes `bytes` to `path` (mode 0600).
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    create(path)?.write_all(bytes.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_private_whatever_existed() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        dir(&sub).unwrap();
        for p in [d.path().join("a"), sub.clone()] {
            let m = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o700, "{}", p.display());
        }
        let f = sub.join("f");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&f, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        let m = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o600);
        assert!(dir_new(&sub).is_err());
    }
}
