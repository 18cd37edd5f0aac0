//! The commits an agent runs: one git repository per server repository
//! under the work dir holds every object fetched so far (a pack of what is
//! new, asked for with the commits already here), and one checked-out
//! copy per commit is what jobs read and clone from.

use super::http::Channel;
use launchway_runner::source::{Source, git};
use launchway_runner::spec::SourceInfo;
use launchway_runner::store::slug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Makes the job's commit readable here; returns it as a [`Source`].
pub fn prepare(
    channel: &Channel,
    work: &Path,
    job: i64,
    info: &SourceInfo,
) -> Result<Source, String> {
    let name = slug(&info.repository);
    let mirror = work.join("repos").join(&name);
    if !mirror.join(".git").exists() {
        launchway_runner::private::dir(&mirror)
            .map_err(|e| format!("{}: {e}", mirror.display()))?;
        git(&mirror, &["init", "-q"]).map_err(|e| e.to_string())?;
    }
    let has = |sha: &str| git(&mirror, &["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_ok();
    if !has(&info.sha) {
        let have = git(
            &mirror,
            &[
                "for-each-ref",
                "--sort=-committerdate",
                "--count=32",
                "--format=%(objectname)",
                "refs/launchway/",
            ],
        )
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
        .join(",");
        let pack = channel
            .get_bytes(&format!("/api/agent/jobs/{job}/source?have={have}"))
            .map_err(|e| format!("fetching the commit: {e}"))?;
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&mirror)
            .args(["index-pack", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("git index-pack: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&pack)
                .map_err(|e| format!("git index-pack: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("git index-pack: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git index-pack: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if !has(&info.sha) {
            return Err(format!(
                "the server's pack does not hold commit {}",
                info.sha
            ));
        }
        git(
            &mirror,
            &[
                "update-ref",
                &format!("refs/launchway/{}", info.sha),
                &info.sha,
            ],
        )
        .map_err(|e| e.to_string())?;
    }
    let tree = work.join("src").join(&name).join(&info.sha);
    if !tree.join(".git").exists() {
        let tmp: PathBuf =
            work.join("src")
                .join(&name)
                .join(format!(".{}.{}", info.sha, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        launchway_runner::private::dir(tmp.parent().unwrap_or(work)).map_err(|e| e.to_string())?;
        let t = tmp.to_string_lossy().to_string();
        let m = mirror.to_string_lossy().to_string();
        git(Path::new("."), &["clone", "-q", "--no-checkout", &m, &t])
            .map_err(|e| e.to_string())?;
        git(&tmp, &["checkout", "-q", "--detach", &info.sha]).map_err(|e| e.to_string())?;
        if let Err(e) = std::fs::rename(&tmp, &tree) {
            let _ = std::fs::remove_dir_all(&tmp);
            if !tree.join(".git").exists() {
                return Err(format!("{}: {e}", tree.display()));
            }
        }
    }
    Ok(info.at(&tree))
}
