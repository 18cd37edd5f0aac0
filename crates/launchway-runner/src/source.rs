//! The repository a run comes from: which commit, which files changed, and
//! how a job's workspace gets its own checkout of it. A folder inside a
//! larger git repository is run as its own repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct Source {
    /// The directory the user pointed at (`-C`).
    pub dir: PathBuf,
    /// The enclosing git work tree, when there is one.
    pub git_root: Option<PathBuf>,
    /// `dir` relative to `git_root` ("" when they are the same).
    pub prefix: String,
    pub sha: String,
    /// The current branch (`refs/heads/x`) or `None` when detached.
    pub head_ref: Option<String>,
    /// Copy the working tree (with uncommitted changes) instead of the commit.
    pub dirty: bool,
    pub repository: String,
    pub actor: String,
    pub commit_message: String,
    pub commit_author: (String, String),
    pub commit_timestamp: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0} does not exist or is not a directory")]
    NoDir(PathBuf),
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    // Never a credential prompt: there is no one to answer it.
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SourceError::Git {
            args: args.join(" "),
            message: format!("could not run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// `owner/repo` from a remote URL (`git@host:o/r.git`, `https://host/o/r`).
pub fn repository_from_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let path = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1
    } else if let Some((_, rest)) = url.split_once(':') {
        rest
    } else {
        url
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (parts.len() >= 2).then(|| format!("{}/{}", parts[parts.len() - 2], parts[parts.len() - 1]))
}

impl Source {
    /// The repository's name without its owner (`octo/hello` → `hello`),
    /// as `github.event.repository.name` and workspace paths use it.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    pub fn open(dir: &Path, git_ref: Option<&str>, dirty: bool) -> Result<Source, SourceError> {
        let dir = dir
            .canonicalize()
            .map_err(|_| SourceError::NoDir(dir.to_path_buf()))?;
        if !dir.is_dir() {
            return Err(SourceError::NoDir(dir));
        }
        let name = dir
            .file_name()
            .map_or("repo".into(), |n| n.to_string_lossy().to_string());
        let user = std::env::var("USER").unwrap_or_else(|_| "local".into());
        let git_root = git(&dir, &["rev-parse", "--show-toplevel"])
            .ok()
            .map(PathBuf::from);
        let Some(root) = git_root
            .clone()
            .filter(|_| git(&dir, &["rev-parse", "HEAD"]).is_ok())
        else {
            return Ok(Source {
                dir,
                git_root: None,
                prefix: String::new(),
                sha: "0".repeat(40),
                head_ref: None,
                dirty: true,
                repository: format!("local/{name}"),
                actor: user,
                commit_message: String::new(),
                commit_author: (String::new(), String::new()),
                commit_timestamp: crate::store::now_rfc3339(),
            });
        };
        let root = root.canonicalize()?;
        let prefix = dir
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        let rev = git_ref.unwrap_or("HEAD");
        let sha = git(
            &dir,
            &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        )?;
        let head_ref = git(&dir, &["symbolic-ref", "-q", "HEAD"])
            .ok()
            .filter(|s| !s.is_empty());
        let repository = if prefix.is_empty() {
            git(&dir, &["config", "--get", "remote.origin.url"])
                .ok()
                .and_then(|u| repository_from_url(&u))
                .unwrap_or_else(|| format!("local/{name}"))
        } else {
            format!("local/{name}")
        };
        let actor = git(&dir, &["config", "user.name"])
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or(user);
        let log = git(
            &dir,
            &["log", "-1", "--format=%an%x00%ae%x00%cI%x00%B", &sha],
        )?;
        let mut parts = log.splitn(4, '\0');
        let author = parts.next().unwrap_or("").to_string();
        let email = parts.next().unwrap_or("").to_string();
        let ts = parts.next().unwrap_or("").to_string();
        let message = parts.next().unwrap_or("").trim().to_string();
        Ok(Source {
            dir,
            git_root: Some(root),
            prefix,
            sha,
            head_ref,
            dirty,
            repository,
            actor,
            commit_message: message,
            commit_author: (author, email),
            commit_timestamp: ts,
        })
    }

    /// Files changed by the commit (relative to `dir`), for path filters;
    /// `None` when unknown.
    pub fn changed_files(&self, base: Option<&str>) -> Option<Vec<String>> {
        let root = self.git_root.as_ref()?;
        let out = match base {
            Some(b) => git(
                root,
                &["diff", "--name-only", &format!("{b}...{}", self.sha)],
            )
            .ok()?,
            None => git(
                root,
                &[
                    "diff-tree",
                    "--no-commit-id",
                    "--name-only",
                    "-r",
                    "--root",
                    &self.sha,
                ],
            )
            .ok()?,
        };
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Some(
            out.lines()
                .filter_map(|l| l.strip_prefix(prefix.as_str()))
                .map(str::to_string)
                .collect(),
        )
    }

    /// Reads a file of the run's commit (the working tree when dirty).
    pub fn read_file(&self, rel: &str) -> Option<String> {
        if self.dirty || self.git_root.is_none() {
            return std::fs::read_to_string(self.dir.join(rel)).ok();
        }
        let root = self.git_root.as_ref()?;
        let path = if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        git(root, &["show", &format!("{}:{path}", self.sha)]).ok()
    }

    /// Lists files under a directory of the run's commit.
    pub fn list_dir(&self, rel: &str) -> Vec<String> {
        if self.dirty || self.git_root.is_none() {
            let Ok(rd) = std::fs::read_dir(self.dir.join(rel)) else {
                return Vec::new();
            };
            let mut v: Vec<String> = rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| format!("{rel}/{}", e.file_name().to_string_lossy()))
                .collect();
            v.sort();
            return v;
        }
        let Some(root) = &self.git_root else {
            return Vec::new();
        };
        let path = if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        let Ok(out) = git(
            root,
            &["ls-tree", "--name-only", &self.sha, &format!("{path}/")],
        ) else {
            return Vec::new();
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        out.lines()
            .filter_map(|l| l.strip_prefix(strip.as_str()).map(str::to_string))
            .collect()
    }

    /// Puts the run's files into `dest` (what `actions/checkout` does).
    pub fn checkout(&self, dest: &Path) -> Result<(), SourceError> {
        std::fs::create_dir_all(dest)?;
        let Some(root) = &self.git_root else {
            copy_filtered(&self.dir, dest, None)?;
            return Ok(());
        };
        if self.dirty {
            let files = git(
                &self.dir,
                &["ls-files", "-z", "-c", "-o", "--exclude-standard", "."],
            )?;
            let list: Vec<String> = files
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            copy_filtered(&self.dir, dest, Some(&list))?;
            init_repo(dest, self)?;
            return Ok(());
        }
        if self.prefix.is_empty() {
            // A local clone shares objects by hard links: cheap and isolated.
            let d = dest.to_string_lossy().to_string();
            let r = root.to_string_lossy().to_string();
            // Clone into an empty directory only.
            if std::fs::read_dir(dest)?.next().is_some() {
                std::fs::remove_dir_all(dest)?;
            }
            git(
                Path::new("."),
                &["clone", "--quiet", "--no-checkout", &r, &d],
            )?;
            git(dest, &["checkout", "--quiet", "--detach", &self.sha])?;
            return Ok(());
        }
        // A folder of a larger repository: export that subtree of the commit.
        let mut archive = Command::new("git")
            .arg("-C")
            .arg(root)
            .args([
                "archive",
                "--format=tar",
                &format!("{}:{}", self.sha, self.prefix),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = archive
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dest)
            .stdin(stdout)
            .output()?;
        let status = archive.wait()?;
        if !status.success() || !tar.status.success() {
            return Err(SourceError::Git {
                args: "archive".into(),
                message: format!(
                    "could not export {} at {}: {}",
                    self.prefix,
                    self.sha,
                    String::from_utf8_lossy(&tar.stderr)
                ),
            });
        }
        init_repo(dest, self)?;
        Ok(())
    }
}

/// Makes an exported tree a git repository with one commit, so `git`
/// commands in steps work.
fn init_repo(dest: &Path, src: &Source) -> Result<(), SourceError> {
    let run = |args: &[&str]| -> Result<(), SourceError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dest)
            .args(args)
            .env(
                "GIT_AUTHOR_NAME",
                if src.commit_author.0.is_empty() {
                    "launchway"
                } else {
                    &src.commit_author.0
                },
            )
            .env(
                "GIT_AUTHOR_EMAIL",
                if src.commit_author.1.is_empty() {
                    "launchway@localhost"
                } else {
                    &src.commit_author.1
                },
            )
            .env("GIT_COMMITTER_NAME", "launchway")
            .env("GIT_COMMITTER_EMAIL", "launchway@localhost")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(SourceError::Git {
                args: args.join(" "),
                message: String::from_utf8_lossy(&out.stderr).to_string(),
            });
        }
        Ok(())
    };
    run(&["init", "--quiet"])?;
    run(&["add", "-A"])?;
    let msg = if src.commit_message.is_empty() {
        "launchway checkout"
    } else {
        &src.commit_message
    };
    run(&[
        "commit",
        "--quiet",
        "--allow-empty",
        "--no-verify",
        "-m",
        msg,
    ])
}

fn copy_filtered(from: &Path, to: &Path, only: Option<&[String]>) -> std::io::Result<()> {
    match only {
        Some(files) => {
            for f in files {
                let src = from.join(f);
                let dst = to.join(f);
                if let Some(p) = dst.parent() {
                    std::fs::create_dir_all(p)?;
                }
                let meta = std::fs::symlink_metadata(&src);
                match meta {
                    Ok(m) if m.file_type().is_symlink() => {
                        std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
                    }
                    Ok(m) if m.is_file() => {
                        std::fs::copy(&src, &dst)?;
                    }
                    _ => {} // deleted in the working tree
                }
            }
            Ok(())
        }
        None => {
            for entry in walkdir::WalkDir::new(from)
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| e.file_name() != ".git")
            {
                let entry = entry.map_err(std::io::Error::other)?;
                let rel = entry
                    .path()
                    .strip_prefix(from)
                    .map_err(std::io::Error::other)?;
                let dest = to.join(rel);
                if entry.file_type().is_dir() {
                    std::fs::create_dir_all(&dest)?;
                } else if entry.file_type().is_file() {
                    std::fs::copy(entry.path(), &dest)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        assert_eq!(
            repository_from_url("git@github.com:octo/hello.git").as_deref(),
            Some("octo/hello")
        );
        assert_eq!(
            repository_from_url("https://github.com/octo/hello").as_deref(),
            Some("octo/hello")
        );
        assert_eq!(
            repository_from_url("/srv/git/team/app.git").as_deref(),
            Some("team/app")
        );
        assert_eq!(repository_from_url("x"), None);
    }
}
