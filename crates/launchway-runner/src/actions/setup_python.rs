//! `actions/setup-python`: a matching Python from this machine, in a fresh
//! virtual environment per job so installs never leak between jobs.

use super::Inputs;
use crate::job::{JobExec, StepRun};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Python interpreters on this machine: PATH entries and pyenv versions.
fn candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let is_py = name == "python3"
                    || name == "python"
                    || (name.starts_with("python3.")
                        && name[8..].chars().all(|c| c.is_ascii_digit()));
                if is_py {
                    out.push(e.path());
                }
            }
        }
    }
    for root in [
        std::env::var_os("PYENV_ROOT").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(rd) = std::fs::read_dir(root.join("versions")) {
            for e in rd.flatten() {
                let p = e.path().join("bin/python3");
                if p.is_file() {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn version_of(py: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(py)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Whether a version satisfies a setup-python spec: `3`, `3.x`, `3.11`,
/// `3.11.7`, `>=3.9`, `>=3.9 <3.12`.
pub(crate) fn matches(spec: &str, v: (u32, u32, u32)) -> bool {
    let spec = spec.trim().trim_start_matches('v');
    if spec.is_empty() {
        return true;
    }
    spec.split_whitespace().all(|part| {
        let (op, ver) = [">=", "<=", ">", "<", "==", "="]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("", part));
        let nums: Vec<Option<u32>> = ver
            .split('.')
            .map(|p| {
                if p == "x" || p == "*" {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect();
        let want = (
            nums.first().copied().flatten(),
            nums.get(1).copied().flatten(),
            nums.get(2).copied().flatten(),
        );
        let cmp = |v: (u32, u32, u32)| -> std::cmp::Ordering {
            let w = (
                want.0.unwrap_or(0),
                want.1.unwrap_or(0),
                want.2.unwrap_or(0),
            );
            v.cmp(&w)
        };
        match op {
            ">=" => cmp(v).is_ge(),
            ">" => cmp(v).is_gt(),
            "<=" => cmp(v).is_le(),
            "<" => cmp(v).is_lt(),
            _ => {
                want.0.is_none_or(|m| m == v.0)
                    && want.1.is_none_or(|m| m == v.1)
                    && want.2.is_none_or(|m| m == v.2)
            }
        }
    })
}

pub(crate) async fn run(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let spec = match (with.get("python-version"), with.get("python-version-file")) {
        (Some(v), _) => v.to_string(),
        (None, Some(f)) => match std::fs::read_to_string(exec.workspace.join(f)) {
            Ok(s) => s.lines().next().unwrap_or("").trim().to_string(),
            Err(e) => {
                exec.error(&format!("python-version-file '{f}': {e}"));
                return StepRun::failed();
            }
        },
        (None, None) => match std::fs::read_to_string(exec.workspace.join(".python-version")) {
            Ok(s) => s.lines().next().unwrap_or("").trim().to_string(),
            Err(_) => String::new(),
        },
    };
    if let Some(c) = with.get("cache") {
        exec.log(&format!("cache: '{c}' — dependency caching is done with actions/cache in Launchway; continuing without it"));
    }
    let found = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut best: Option<(PathBuf, (u32, u32, u32))> = None;
        for c in candidates() {
            let real = c.canonicalize().unwrap_or(c.clone());
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
            if let Some(v) = version_of(&c)
                && best.as_ref().is_none_or(|(_, b)| v > *b)
                && matches(&spec, v)
            {
                best = Some((c, v));
            }
        }
        (best, spec)
    })
    .await;
    let Ok((best, spec)) = found else {
        exec.error("internal error while looking for Python");
        return StepRun::failed();
    };
    let Some((python, v)) = best else {
        exec.error(&format!(
            "no Python matching '{spec}' on this machine. Launchway uses the host's interpreters (PATH and ~/.pyenv/versions); install one, e.g. `apt-get install python3` or `pyenv install {spec}`"
        ));
        return StepRun::failed();
    };
    let version = format!("{}.{}.{}", v.0, v.1, v.2);
    let venv = exec.job_dir.join("tool/Python").join(&version).join("x64");
    exec.log(&format!("Using Python {version} from {}", python.display()));
    if !venv.join("bin/python").exists() {
        let out = tokio::process::Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .await;
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                exec.error(&format!(
                    "creating a virtual environment failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return StepRun::failed();
            }
            Err(e) => {
                exec.error(&format!("creating a virtual environment failed: {e}"));
                return StepRun::failed();
            }
        }
    }
    let bin = venv.join("bin");
    exec.path_prepend.push(bin.to_string_lossy().to_string());
    let loc = venv.to_string_lossy().to_string();
    for k in [
        "pythonLocation",
        "Python_ROOT_DIR",
        "Python2_ROOT_DIR",
        "Python3_ROOT_DIR",
    ] {
        exec.env.insert(k.to_string(), loc.clone());
    }
    exec.env
        .insert("PKG_CONFIG_PATH".into(), format!("{loc}/lib/pkgconfig"));
    exec.env.insert("VIRTUAL_ENV".into(), loc.clone());
    let mut out = IndexMap::new();
    out.insert("python-version".to_string(), version);
    out.insert(
        "python-path".to_string(),
        bin.join("python").to_string_lossy().to_string(),
    );
    out.insert("cache-hit".to_string(), "false".to_string());
    StepRun::ok(out)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn version_specs() {
        assert!(matches("3.11", (3, 11, 7)));
        assert!(!matches("3.11", (3, 12, 0)));
        assert!(matches("3.x", (3, 9, 1)));
        assert!(matches("3", (3, 13, 0)));
        assert!(matches("3.11.7", (3, 11, 7)));
        assert!(!matches("3.11.6", (3, 11, 7)));
        assert!(matches(">=3.9 <3.12", (3, 11, 0)));
        assert!(!matches(">=3.9 <3.12", (3, 12, 0)));
        assert!(matches("", (3, 1, 0)));
    }
}
