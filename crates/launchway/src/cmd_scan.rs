//! `launchway db …` and `launchway scan`: the advisory database and the
//! security scan with its reports.

use clap::{Args, Subcommand, ValueEnum};
use launchway_runner::store::Store;
use launchway_scan::osv::db::{Db, read_sources};
use launchway_scan::osv::severity::Level;
use launchway_scan::sbom::{Inventory, collect, read as sbom_read};
use launchway_scan::vuln::{self, Finding, IgnoreList};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DbCommand {
    /// Import OSV advisories (JSON, YAML, directories, all.zip exports).
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Fetch the per-ecosystem exports from a mirror and import them.
    Update {
        /// Base URL; `<URL>/<Ecosystem>/all.zip` is fetched per ecosystem.
        #[arg(long)]
        mirror: String,
        /// Ecosystems to fetch (default: all Launchway knows).
        #[arg(long = "ecosystem")]
        ecosystems: Vec<String>,
    },
    /// Advisories per ecosystem and their age.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

fn today() -> String {
    launchway_runner::store::now_rfc3339()[..10].to_string()
}

pub fn db(args: DbArgs, store: &Store) -> u8 {
    let db = Db::open(&store.home);
    match args.command {
        DbCommand::Import { paths } => import(&db, &paths),
        DbCommand::Update { mirror, ecosystems } => update(&db, &mirror, &ecosystems),
        DbCommand::Status { json } => {
            let meta = db.meta();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&meta).unwrap_or_default()
                );
                return 0;
            }
            if meta.ecosystems.is_empty() {
                println!(
                    "no advisories imported yet (launchway db import PATH or launchway db update --mirror URL)"
                );
                return 0;
            }
            println!(
                "{:<12} {:>10} {:>10}  {:<22} {}",
                "ECOSYSTEM", "ADVISORIES", "WITHDRAWN", "IMPORTED", "NEWEST ADVISORY"
            );
            for (eco, m) in &meta.ecosystems {
                println!(
                    "{:<12} {:>10} {:>10}  {:<22} {}",
                    eco, m.advisories, m.withdrawn, m.imported_at, m.newest
                );
            }
            println!("database: {}", db.dir().display());
            0
        }
    }
}

fn import(db: &Db, paths: &[PathBuf]) -> u8 {
    for p in paths {
        if !p.exists() {
            eprintln!("error: {} does not exist", p.display());
            return 2;
        }
    }
    let started = std::time::Instant::now();
    let (advisories, errors) = read_sources(paths);
    for e in &errors {
        eprintln!("warning: {e} (skipped)");
    }
    let read = advisories.len();
    match db.import(advisories, &launchway_runner::store::now_rfc3339()) {
        Ok(s) => {
            eprintln!(
                "read {read} advisories in {:.1}s: {} added, {} updated, {} unchanged{}{}",
                started.elapsed().as_secs_f64(),
                s.added,
                s.updated,
                s.unchanged,
                if s.skipped_ecosystem > 0 {
                    format!(", {} for other ecosystems skipped", s.skipped_ecosystem)
                } else {
                    String::new()
                },
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} unreadable", errors.len())
                }
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn update(db: &Db, mirror: &str, ecosystems: &[String]) -> u8 {
    use launchway_scan::version::Ecosystem;
    let ecos: Vec<Ecosystem> = if ecosystems.is_empty() {
        Ecosystem::ALL.to_vec()
    } else {
        let mut v = Vec::new();
        for e in ecosystems {
            match Ecosystem::from_osv(e) {
                Some(x) => v.push(x),
                None => {
                    eprintln!("error: unknown ecosystem '{e}' (PyPI, crates.io, npm, Go, Debian)");
                    return 2;
                }
            }
        }
        v
    };
    let tmp = db.dir().join("download");
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        eprintln!("error: {}: {e}", tmp.display());
        return 1;
    }
    let mut failed = false;
    let mut files = Vec::new();
    for eco in ecos {
        let url = format!(
            "{}/{}/all.zip",
            mirror.trim_end_matches('/'),
            eco.osv_name()
        );
        eprintln!("fetching {url}");
        let dest = tmp.join(format!("{}.zip", eco.purl_type()));
        match fetch(&url, &dest) {
            Ok(bytes) => {
                eprintln!("  {bytes} bytes");
                files.push(dest);
            }
            Err(e) => {
                eprintln!("warning: {url}: {e}");
                failed = true;
            }
        }
    }
    let code = if files.is_empty() {
        1
    } else {
        import(db, &files)
    };
    let _ = std::fs::remove_dir_all(&tmp);
    if failed && code == 0 { 1 } else { code }
}

fn fetch(url: &str, dest: &Path) -> Result<u64, String> {
    let resp = ureq::get(url).call().map_err(|e| e.to_string())?;
    let mut body = resp.into_body();
    let mut reader = body.with_config().limit(2 << 30).reader();
    let mut f = std::fs::File::create(dest).map_err(|e| e.to_string())?;
    std::io::copy(&mut reader, &mut f).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Sarif,
}

#[derive(Args)]
pub struct ScanArgs {
    /// A directory, a lockfile, or an SPDX/CycloneDX JSON SBOM.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Which scanners to run.
    #[arg(long, value_delimiter = ',', default_value = "vuln,secret")]
    scanners: Vec<String>,
    /// Severities to report (and to fail on with --exit-code).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"
    )]
    severity: Vec<Level>,
    /// Exit with this code when findings at the selected severities remain.
    #[arg(long, default_value_t = 0)]
    exit_code: u8,
    #[arg(short, long, value_enum, default_value = "table")]
    format: ReportFormat,
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// `.trivyignore`-style file (default: .trivyignore in PATH if present).
    #[arg(long)]
    ignorefile: Option<PathBuf>,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    ignore_unfixed: bool,
}

pub struct VulnReport {
    pub findings: Vec<Finding>,
    pub stats: vuln::Stats,
    pub inventory: Inventory,
}

/// Reads components from a path: a tree, a lockfile, or an SBOM document.
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

pub fn vuln_scan(
    path: &Path,
    store: &Store,
    ignorefile: Option<&Path>,
    ignore_unfixed: bool,
) -> Result<VulnReport, String> {
    let inventory = components(path)?;
    let ignore_path = ignorefile.map(Path::to_path_buf).or_else(|| {
        let p = if path.is_dir() {
            path.join(".trivyignore")
        } else {
            path.with_file_name(".trivyignore")
        };
        p.is_file().then_some(p)
    });
    let ignore = match &ignore_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            IgnoreList::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => IgnoreList::default(),
    };
    let db = Db::open(&store.home);
    let opts = vuln::Options {
        ignore,
        ignore_unfixed,
        today: today(),
    };
    let (findings, stats) = vuln::scan(&inventory.components, &db, &opts)?;
    Ok(VulnReport {
        findings,
        stats,
        inventory,
    })
}

fn table(r: &VulnReport) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for f in &r.findings {
        let target = f.locations.first().map_or("", String::as_str);
        if current != Some(target) {
            let n = r
                .findings
                .iter()
                .filter(|x| x.locations.first().map(String::as_str) == Some(target))
                .count();
            let _ = writeln!(
                out,
                "\n{target} ({}): {n} vulnerabilit{}",
                f.ecosystem,
                if n == 1 { "y" } else { "ies" }
            );
            let _ = writeln!(
                out,
                "  {:<24} {:<20} {:<9} {:<14} {:<18} TITLE",
                "LIBRARY", "VULNERABILITY", "SEVERITY", "INSTALLED", "FIXED IN"
            );
            current = Some(target);
        }
        let fixed = if f.fixed.is_empty() {
            "-".to_string()
        } else {
            f.fixed.join(", ")
        };
        let title: String = f
            .summary
            .clone()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect();
        let _ = writeln!(
            out,
            "  {:<24} {:<20} {:<9} {:<14} {:<18} {title}",
            f.package,
            f.id,
            f.severity.level.as_str(),
            f.version,
            fixed
        );
    }
    out
}

pub fn scan(args: &ScanArgs, store: &Store) -> u8 {
    let unknown: Vec<&String> = args
        .scanners
        .iter()
        .filter(|s| !["vuln", "secret"].contains(&s.as_str()))
        .collect();
    if !unknown.is_empty() {
        eprintln!("error: unknown scanner(s) {unknown:?}; use vuln and/or secret");
        return 2;
    }
    if !args.path.exists() {
        eprintln!("error: {} does not exist", args.path.display());
        return 2;
    }
    let mut report = None;
    if args.scanners.iter().any(|s| s == "vuln") {
        match vuln_scan(
            &args.path,
            store,
            args.ignorefile.as_deref(),
            args.ignore_unfixed,
        ) {
            Ok(mut r) => {
                r.findings
                    .retain(|f| args.severity.contains(&f.severity.level));
                for e in &r.inventory.errors {
                    eprintln!("warning: {e} (skipped)");
                }
                if !r.stats.missing_ecosystems.is_empty() {
                    eprintln!(
                        "warning: no advisories imported for {}; run `launchway db import` or `launchway db update`",
                        r.stats.missing_ecosystems.join(", ")
                    );
                }
                report = Some(r);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    }
    let findings = report.as_ref().map_or(0, |r| r.findings.len());
    let text = match args.format {
        ReportFormat::Table => report.as_ref().map(table).unwrap_or_default(),
        ReportFormat::Json | ReportFormat::Sarif => {
            serde_json::to_string_pretty(&serde_json::json!({
                "vulnerabilities": report.as_ref().map(|r| &r.findings),
                "packages": report.as_ref().map_or(0, |r| r.stats.packages),
            }))
            .unwrap_or_default()
        }
    };
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("error: {}: {e}", p.display());
                return 1;
            }
        }
        None => println!("{text}"),
    }
    if let Some(r) = &report {
        eprintln!(
            "{} packages scanned, {findings} vulnerabilit{} found, {} ignored",
            r.stats.packages,
            if findings == 1 { "y" } else { "ies" },
            r.stats.ignored
        );
    }
    if findings > 0 { args.exit_code } else { 0 }
}
