//! A whole scan as one call — what `launchway scan` and the native security
//! actions in the runner both run: components (tree, lockfile or SBOM),
//! vulnerabilities from the local database, secrets from the tree or its
//! history, filtered by severity, ignore files and baselines.

use crate::osv::db::Db;
use crate::osv::severity::Level;
use crate::osv::snapshot;
use crate::report::{self, Report};
use crate::sbom::{Inventory, collect, cyclonedx, read as sbom_read, spdx};
use crate::secrets::config::Config;
use crate::secrets::{Engine, source};
use crate::vuln::{self, IgnoreList};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The tree or file scanned; for an image, where ignore files are
    /// looked for.
    pub path: PathBuf,
    /// A container image's inventory, scanned instead of `path`.
    pub image: Option<(Inventory, crate::image::ImageInfo)>,
    pub vuln: bool,
    pub secret: bool,
    pub severity: Vec<Level>,
    pub ignorefiles: Vec<PathBuf>,
    pub ignore_unfixed: bool,
    pub config: Option<PathBuf>,
    pub git: bool,
    pub no_redact: bool,
    pub baseline: Option<PathBuf>,
    /// Directories (relative to `path`) to leave out.
    pub skip_dirs: Vec<String>,
    /// The data directory holding the advisory database.
    pub data_dir: PathBuf,
    /// `YYYY-MM-DD`, for ignore-file expiry and the advisories' age.
    pub today: String,
    /// Only what the index stages (the pre-commit check): the lines it
    /// adds for secrets, the staged lockfiles (their staged content) for
    /// vulnerabilities.
    pub staged: bool,
    /// Scan even when an ecosystem in the target has no advisories at all
    /// (its packages are listed as not checked in the report).
    pub skip_db: bool,
}

/// Advisories older than this many days are a warning with their date.
pub const STALE_AFTER_DAYS: i64 = 30;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (the civil calendar).
fn day_number(date: &str) -> Option<i64> {
    let mut it = date.get(..10)?.split('-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// How many days `date` is before `today`.
pub fn age_in_days(date: &str, today: &str) -> Option<i64> {
    Some(day_number(today)? - day_number(date)?)
}

impl Options {
    pub fn new(path: PathBuf, data_dir: PathBuf, today: String) -> Options {
        Options {
            path,
            image: None,
            vuln: true,
            secret: true,
            severity: Level::ALL.to_vec(),
            ignorefiles: Vec::new(),
            ignore_unfixed: false,
            config: None,
            git: false,
            no_redact: false,
            baseline: None,
            skip_dirs: Vec::new(),
            data_dir,
            today,
            staged: false,
            skip_db: false,
        }
    }
}

pub struct Outcome {
    pub report: Report,
    pub warnings: Vec<String>,
    pub packages: usize,
    pub ignored: usize,
    /// Lockfiles and manifests that could not be read: their packages
    /// were not checked, so a gate on this outcome fails (fail closed)
    /// unless told to skip them.
    pub unreadable: Vec<String>,
}

impl Outcome {
    /// Whether a gate (`--exit-code`) fails: findings remain, or a file
    /// could not be checked and `skip_unreadable` is not set.
    pub fn fails(&self, skip_unreadable: bool) -> bool {
        !self.report.vulnerabilities.is_empty()
            || !self.report.secrets.is_empty()
            || (!skip_unreadable && !self.unreadable.is_empty())
    }
}

/// Components of the lockfiles and manifests the index of the repository
/// at `repo` stages (added, copied, modified or renamed), read from the
/// index — what would be committed, not the working tree.
pub fn staged_components(repo: &Path) -> Result<Inventory, String> {
    let git = |args: &[&str]| -> Result<Vec<u8>, String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    };
    let names = git(&[
        "diff",
        "--cached",
        "--name-only",
        "-z",
        "--no-renames",
        "--diff-filter=ACMR",
    ])?;
    let mut inv = Inventory::default();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let rel = String::from_utf8_lossy(name).into_owned();
        let Some(kind) = collect::detect(&rel) else {
            continue;
        };
        let text = String::from_utf8_lossy(&git(&["show", &format!(":{rel}")])?).into_owned();
        inv.files.push(rel.clone());
        match collect::parse(kind, &rel, &text) {
            Ok(p) => {
                inv.components.extend(p.components);
                inv.errors.extend(p.errors);
            }
            Err(e) => inv.errors.push(e),
        }
    }
    inv.finish();
    Ok(inv)
}

/// Components from a tree, a lockfile, or an SPDX/CycloneDX document.
pub fn components(path: &Path) -> Result<Inventory, String> {
    if path.is_file() && path.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
            && sbom_read::is_sbom(&doc)
        {
            return sbom_read::read(&path.to_string_lossy(), &doc).map_err(|e| e.to_string());
        }
    }
    Ok(collect::inventory(path))
}

fn skipped(skip: &[String], file: &str) -> bool {
    skip.iter().any(|d| {
        let d = d.trim_matches('/');
        !d.is_empty() && (file == d || file.starts_with(&format!("{d}/")))
    })
}

/// The line (1-based) where `name` is pinned at `version` in `text`: the
/// first line naming both, else the first naming the package.
pub fn pinned_at(text: &str, name: &str, version: &str) -> Option<usize> {
    let forms: Vec<String> = {
        let lower = name.to_ascii_lowercase();
        let mut v = vec![
            lower.clone(),
            lower.replace('-', "_"),
            lower.replace('_', "-"),
        ];
        v.dedup();
        v
    };
    let names = |l: &str| {
        let l = l.to_ascii_lowercase();
        forms.iter().any(|f| l.contains(f.as_str()))
    };
    let lines: Vec<&str> = text.lines().collect();
    let both = lines
        .iter()
        .position(|l| names(l) && !version.is_empty() && l.contains(version));
    both.or_else(|| lines.iter().position(|l| names(l)))
        .map(|i| i + 1)
}

/// Sets each finding's line in its first location (files read once).
fn locate(root: &Path, findings: &mut [vuln::Finding]) {
    let mut texts: std::collections::HashMap<String, Option<String>> =
        std::collections::HashMap::new();
    for f in findings {
        let Some(loc) = f.locations.first() else {
            continue;
        };
        let text = texts.entry(loc.clone()).or_insert_with(|| {
            let path = if root.is_dir() {
                root.join(loc)
            } else {
                root.to_path_buf()
            };
            std::fs::read_to_string(path).ok()
        });
        f.line = text
            .as_deref()
            .and_then(|t| pinned_at(t, &f.package, &f.version));
    }
}

pub fn run(o: &Options) -> Result<Outcome, String> {
    if o.image.is_none() && !o.path.exists() {
        return Err(format!("{} does not exist", o.path.display()));
    }
    let target = match &o.image {
        Some((_, info)) => info.target.clone(),
        None => o.path.display().to_string(),
    };
    let mut out = Outcome {
        report: Report {
            target: target.clone(),
            image: o.image.as_ref().map(|(_, info)| info.clone()),
            ..Report::default()
        },
        warnings: Vec::new(),
        packages: 0,
        ignored: 0,
        unreadable: Vec::new(),
    };
    if o.staged && !o.path.is_dir() {
        return Err(format!(
            "--staged scans a repository's index; {} is not a directory",
            o.path.display()
        ));
    }
    if o.vuln {
        let mut inventory = if let Some((inv, _)) = &o.image {
            inv.clone()
        } else if o.staged {
            staged_components(&o.path)?
        } else {
            components(&o.path)?
        };
        inventory
            .components
            .retain(|c| !c.locations.iter().all(|l| skipped(&o.skip_dirs, l)));
        let mut ignore_files = o.ignorefiles.clone();
        if ignore_files.is_empty() {
            let p = if o.path.is_dir() || o.image.is_some() {
                o.path.join(".trivyignore")
            } else {
                o.path.with_file_name(".trivyignore")
            };
            if p.is_file() {
                ignore_files.push(p);
            }
        }
        let mut text = String::new();
        for p in &ignore_files {
            let one = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            // Each file checked on its own, so an error names its file and line.
            IgnoreList::parse(&one).map_err(|e| format!("{}: {e}", p.display()))?;
            text.push_str(&one);
            text.push('\n');
        }
        let ignore = IgnoreList::parse(&text).map_err(|e| format!("ignore file: {e}"))?;
        let db = Db::open(&o.data_dir);
        let opts = vuln::Options {
            ignore,
            ignore_unfixed: o.ignore_unfixed,
            today: o.today.clone(),
        };
        // The built-in snapshot stands in for an ecosystem the local
        // database has nothing for (imported on first use).
        // Each ecosystem once: opening a reader reads its whole index.
        let mut ecosystems: Vec<_> = inventory
            .components
            .iter()
            .filter(|c| !c.local)
            .map(|c| c.ecosystem)
            .collect();
        ecosystems.sort();
        ecosystems.dedup();
        let mut without_local = false;
        for eco in ecosystems {
            if db.reader(eco)?.is_none() {
                without_local = true;
                break;
            }
        }
        let snapshot = if without_local {
            Some(snapshot::database(&o.data_dir).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let (mut findings, stats) =
            vuln::scan(&inventory.components, &db, snapshot.as_ref(), &opts)?;
        out.unreadable
            .extend(inventory.errors.iter().map(ToString::to_string));
        out.report
            .not_checked
            .extend(inventory.errors.iter().map(|e| format!("{e}")));
        if !stats.missing_ecosystems.is_empty() {
            // Fail closed: packages nobody could check are not "no findings".
            let missing = stats.missing_ecosystems.join(", ");
            let count = inventory
                .components
                .iter()
                .filter(|c| {
                    !c.local
                        && stats
                            .missing_ecosystems
                            .iter()
                            .any(|e| e == c.ecosystem.osv_name())
                })
                .count();
            if !o.skip_db {
                let how = if stats.missing_ecosystems.iter().all(|e| e == "RPM") {
                    "Launchway does not match RPM distributions' advisories yet"
                } else {
                    "import them (`launchway db import PATH` or `launchway db update --mirror URL`)"
                };
                return Err(format!(
                    "no advisories for {missing} ({count} package(s) in {target}): {how}, or pass --skip-db to scan the rest and list them as not checked"
                ));
            }
            out.report.not_checked.push(format!(
                "vulnerabilities of {count} {missing} package(s): no advisories (--skip-db)"
            ));
        }
        for (distro, count) in &stats.unsupported_distros {
            // Fail closed here too: Debian's advisories are not Ubuntu's.
            if !o.skip_db {
                return Err(format!(
                    "{count} package(s) of {distro} in {target}: Launchway matches OS packages against Debian's and Alpine's advisories only; pass --skip-db to scan the rest and list them as not checked"
                ));
            }
            out.report.not_checked.push(format!(
                "vulnerabilities of {count} {distro} package(s): no advisories for that distribution (--skip-db)"
            ));
        }
        for (eco, origin) in &stats.sources {
            if let Some(days) = age_in_days(&origin.date, &o.today)
                && days > STALE_AFTER_DAYS
            {
                out.warnings.push(format!(
                    "the {eco} advisories ({}) are from {}, {days} days old: run `launchway db update --mirror URL` or `launchway db import PATH`",
                    origin.source, origin.date
                ));
            }
            out.report.advisories.push(report::AdvisorySource {
                ecosystem: eco.clone(),
                source: origin.source.clone(),
                date: origin.date.clone(),
            });
        }
        if !o.severity.contains(&Level::Unknown) {
            out.report.unscored_not_gated = findings
                .iter()
                .filter(|f| f.severity.level == Level::Unknown)
                .count();
        }
        findings.retain(|f| o.severity.contains(&f.severity.level));
        out.report.notices.clone_from(&stats.notices);
        if o.image.is_none() {
            locate(&o.path, &mut findings);
        }
        out.packages = stats.packages;
        out.ignored = stats.ignored;
        out.report.vulnerabilities = findings;
    }
    if o.secret && o.image.is_none() {
        let root = if o.path.is_dir() {
            o.path.clone()
        } else {
            o.path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        let config_path = o
            .config
            .clone()
            .or_else(|| {
                std::env::var_os("GITLEAKS_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(root.join(".gitleaks.toml")).filter(|p| p.is_file()));
        let cfg = match &config_path {
            Some(p) => Config::load(p).map_err(|e| e.to_string())?,
            None => Config::defaults(),
        };
        let engine = Engine::new(cfg.rules, cfg.allowlists);
        let mut findings = if o.staged {
            source::scan_staged(&root, &engine)?
        } else if o.git {
            source::scan_git(&root, &engine)?
        } else {
            let scan = source::scan_dir(&o.path, &engine, &source::DirOptions::default());
            out.warnings
                .extend(scan.skipped.iter().map(|s| format!("{s} (skipped)")));
            scan.findings
        };
        findings.retain(|f| !skipped(&o.skip_dirs, &f.file));
        if let Some(b) = &o.baseline {
            let text = std::fs::read_to_string(b).map_err(|e| format!("{}: {e}", b.display()))?;
            let known = source::baseline(&text).map_err(|e| format!("{}: {e}", b.display()))?;
            findings.retain(|f| !known.contains(&f.fingerprint));
        }
        if !o.no_redact {
            findings
                .iter_mut()
                .for_each(crate::secrets::Finding::redact);
        }
        // Secrets count as HIGH for severity selection.
        if !o.severity.contains(&Level::High) {
            findings.clear();
        }
        out.report.secrets = findings;
    }
    Ok(out)
}

pub fn render(report: &Report, format: Format, tool_version: &str) -> String {
    match format {
        Format::Table => report::table(report),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&report::sarif(report, tool_version)).unwrap_or_default()
                + "\n"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    Spdx,
    CycloneDx(cyclonedx::SpecVersion),
}

/// The SBOM document of a path, named after it.
pub fn sbom(
    path: &Path,
    format: SbomFormat,
    timestamp: &str,
    tool_version: &str,
    opts: &collect::Options,
) -> Result<(serde_json::Value, Inventory), String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let inv = collect::inventory_opts(path, opts);
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "project".into());
    let doc = match format {
        SbomFormat::Spdx => spdx::write(&inv, &name, timestamp, tool_version),
        SbomFormat::CycloneDx(spec) => cyclonedx::write(&inv, &name, timestamp, tool_version, spec),
    };
    Ok((doc, inv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_found_at_its_line() {
        let reqs = "# tools\nblack==26.1.0\nPyYAML==5.3  # old\npyyaml-include==1.0\n";
        assert_eq!(pinned_at(reqs, "pyyaml", "5.3"), Some(3));
        let lock = "[[package]]\nname = \"typing_extensions\"\nversion = \"4.1.0\"\n";
        assert_eq!(pinned_at(lock, "typing-extensions", "4.1.0"), Some(2));
        assert_eq!(pinned_at("a==1\n", "b", "1"), None);
    }

    #[test]
    fn ages_in_days() {
        assert_eq!(age_in_days("2024-10-10", "2024-10-10"), Some(0));
        assert_eq!(
            age_in_days("2024-02-28", "2024-03-01"),
            Some(2),
            "leap year"
        );
        assert_eq!(age_in_days("2023-12-31", "2024-12-31"), Some(366));
        assert_eq!(age_in_days("not a date", "2024-12-31"), None);
        assert_eq!(age_in_days("2024-13-01", "2024-12-31"), None);
    }
}
