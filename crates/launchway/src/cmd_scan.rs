//! `launchway db …` and `launchway scan`: the advisory database and the
//! security scan with its reports.

use clap::{Args, Subcommand, ValueEnum};
use launchway_runner::store::Store;
use launchway_scan::gate;
use launchway_scan::osv::db::{Db, read_sources};
use launchway_scan::osv::severity::Level;
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
            let snapshot = launchway_scan::osv::snapshot::header();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ecosystems": meta.ecosystems,
                        "database": db.dir(),
                        "built_in": snapshot.as_ref().ok(),
                    }))
                    .unwrap_or_default()
                );
                return 0;
            }
            if meta.ecosystems.is_empty() {
                println!(
                    "no advisories imported (launchway db import PATH or launchway db update --mirror URL)"
                );
            } else {
                println!(
                    "{:<12} {:>10} {:>10}  {:<22} NEWEST ADVISORY",
                    "ECOSYSTEM", "ADVISORIES", "WITHDRAWN", "IMPORTED"
                );
                for (eco, m) in &meta.ecosystems {
                    println!(
                        "{:<12} {:>10} {:>10}  {:<22} {}",
                        eco, m.advisories, m.withdrawn, m.imported_at, m.newest
                    );
                }
                println!("database: {}", db.dir().display());
            }
            match snapshot {
                Ok(h) => {
                    println!(
                        "built in (used for an ecosystem with nothing imported; an import replaces it):"
                    );
                    for s in &h.sources {
                        let replaced = s.ecosystems.iter().all(|e| meta.ecosystems.contains_key(e));
                        println!(
                            "  {:<10} {} at {} ({}), {}{}",
                            s.ecosystems.join(","),
                            s.name,
                            &s.revision[..s.revision.len().min(12)],
                            s.date,
                            s.licence,
                            if replaced {
                                " — replaced by the import"
                            } else {
                                ""
                            }
                        );
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            }
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
    /// A directory, a lockfile, or an SPDX/CycloneDX JSON SBOM; or an
    /// image: oci-archive:FILE, docker-archive:FILE, oci-dir:DIR,
    /// registry:REF, containers-storage:REF.
    #[arg(default_value = ".")]
    pub path: String,
    /// For an image that lists several platforms: which (os/arch[/variant];
    /// default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Which scanners to run [default: vuln,secret; vuln for an image].
    #[arg(long, value_delimiter = ',')]
    pub scanners: Vec<String>,
    /// Severities to report (and to fail on with --exit-code). Secrets count as HIGH.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"
    )]
    pub severity: Vec<Level>,
    /// Exit with this code when findings at the selected severities remain
    /// — or when a lockfile could not be read (its packages were not checked).
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
    /// Let unreadable lockfiles pass the gate (they are still reported).
    #[arg(long)]
    pub skip_unreadable: bool,
    /// Scan even when an ecosystem in the target has no advisories (neither
    /// imported nor built in); its packages are reported as not checked.
    #[arg(long)]
    pub skip_db: bool,
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// `.trivyignore`-style file (default: .trivyignore in PATH if present).
    #[arg(long)]
    pub ignorefile: Option<PathBuf>,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// A gitleaks TOML config (default: $GITLEAKS_CONFIG, then .gitleaks.toml in PATH).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Scan every commit's added lines instead of the files in the tree.
    #[arg(long, conflicts_with = "staged")]
    pub git: bool,
    /// Scan only what the index stages (a pre-commit check): the lines it
    /// adds for secrets, the staged lockfiles for vulnerabilities.
    #[arg(long)]
    pub staged: bool,
    /// Show secrets in reports instead of REDACTED.
    #[arg(long)]
    pub no_redact: bool,
    /// A previous report (gitleaks or Launchway JSON) whose findings are known and not reported again.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

impl From<ReportFormat> for gate::Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Table => gate::Format::Table,
            ReportFormat::Json => gate::Format::Json,
            ReportFormat::Sarif => gate::Format::Sarif,
        }
    }
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
    let image = match crate::image_target::inventory(&args.path, args.platform.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let scanners: Vec<String> = match (&image, args.scanners.is_empty()) {
        (Some(_), true) => vec!["vuln".into()],
        (None, true) => vec!["vuln".into(), "secret".into()],
        (_, false) => args.scanners.clone(),
    };
    if image.is_some() {
        let refused = [
            (scanners.iter().any(|s| s == "secret"), "--scanners secret"),
            (args.git, "--git"),
            (args.staged, "--staged"),
            (args.baseline.is_some(), "--baseline"),
            (args.config.is_some(), "--config"),
        ];
        if let Some((_, what)) = refused.iter().find(|(on, _)| *on) {
            eprintln!(
                "error: {what} applies to a directory; an image is scanned for vulnerabilities (--scanners vuln)"
            );
            return 2;
        }
    }
    let path = if image.is_some() {
        PathBuf::from(".")
    } else {
        PathBuf::from(&args.path)
    };
    let mut o = gate::Options::new(path, store.home.clone(), today());
    o.image = image;
    o.vuln = scanners.iter().any(|s| s == "vuln");
    o.secret = scanners.iter().any(|s| s == "secret");
    o.severity.clone_from(&args.severity);
    o.ignorefiles = args.ignorefile.iter().cloned().collect();
    o.ignore_unfixed = args.ignore_unfixed;
    o.config.clone_from(&args.config);
    o.git = args.git;
    o.no_redact = args.no_redact;
    o.baseline.clone_from(&args.baseline);
    o.skip_db = args.skip_db;
    o.staged = args.staged;
    if args.skip_db && !o.vuln {
        eprintln!("error: --skip-db applies to the vuln scanner, which is not selected");
        return 2;
    }
    let out = match gate::run(&o) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    let text = gate::render(&out.report, args.format.into(), env!("CARGO_PKG_VERSION"));
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("error: {}: {e}", p.display());
                return 1;
            }
        }
        None => print!("{text}"),
    }
    let (v, s) = (out.report.vulnerabilities.len(), out.report.secrets.len());
    eprintln!(
        "{} packages, {v} vulnerabilit{} ({} ignored), {s} secret{}",
        out.packages,
        if v == 1 { "y" } else { "ies" },
        out.ignored,
        if s == 1 { "" } else { "s" }
    );
    for u in &out.unreadable {
        eprintln!(
            "{}: {u}: not checked{}",
            if args.skip_unreadable {
                "warning"
            } else {
                "error"
            },
            if args.skip_unreadable || args.exit_code == 0 {
                ""
            } else {
                " — the gate fails (--skip-unreadable lets it pass)"
            }
        );
    }
    if out.fails(args.skip_unreadable) {
        args.exit_code
    } else {
        0
    }
}
