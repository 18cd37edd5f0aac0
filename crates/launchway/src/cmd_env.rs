//! `launchway env`: the deployment environments of a repository — list,
//! show, validate, diff, and render them for a target.

use clap::{Args, Subcommand, ValueEnum};
use launchway_deploy::config::{Environment, Loaded};
use launchway_deploy::render::{kubernetes, yaml};
use launchway_deploy::{diff, repo};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EnvArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', global = true, default_value = ".")]
    root: PathBuf,
    /// Where the environment files are, relative to the repository.
    #[arg(long, global = true, default_value = repo::DEFAULT_DIR)]
    dir: PathBuf,
    #[command(subcommand)]
    cmd: EnvCmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum RenderTarget {
    Kubernetes,
}

#[derive(Subcommand)]
enum EnvCmd {
    /// The environments, one line each.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One environment, merged over the base, and what its service gets.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Check every environment (or the named ones); exit 1 on errors.
    Validate { names: Vec<String> },
    /// What differs between two environments.
    Diff { left: String, right: String },
    /// The logs of an environment's replicas on this machine
    /// (`launchway sync`), oldest line first.
    Logs {
        name: String,
        /// Only this replica (0, 1, …).
        #[arg(long)]
        replica: Option<usize>,
    },
    /// The manifests a target would apply.
    Render {
        name: String,
        #[arg(long, value_enum, default_value = "kubernetes")]
        target: RenderTarget,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn dir(args: &EnvArgs) -> PathBuf {
    args.root.join(&args.dir)
}

/// Prints a load's diagnostics like `launchway lint` does.
fn report(root: &Path, loaded: &Loaded, color: bool) {
    for d in &loaded.diagnostics {
        let text = std::fs::read_to_string(root.join(&d.file)).unwrap_or_default();
        eprint!(
            "{}",
            crate::diagnostics::render(&d.file, &text, &d.diagnostic, color)
        );
    }
}

/// Loads one environment; errors are printed and end the command.
fn load(args: &EnvArgs, name: &str, color: bool) -> Result<Environment, String> {
    let loaded = repo::load_environment(&dir(args), name, &args.root)?;
    report(&args.root, &loaded, color);
    if loaded.has_errors() {
        return Err(format!("environment '{name}' has errors"));
    }
    loaded
        .environment
        .ok_or_else(|| format!("environment '{name}' did not load"))
}

fn service_name(root: &Path) -> String {
    root.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "app".into())
}

pub fn main(args: &EnvArgs, store: &launchway_runner::store::Store) -> u8 {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let r = (|| -> Result<u8, String> {
        match &args.cmd {
            EnvCmd::List { json } => {
                let mut rows = Vec::new();
                for (name, _) in repo::environments(&dir(args))? {
                    let loaded = repo::load_environment(&dir(args), &name, &args.root)?;
                    let errors = loaded.has_errors();
                    let Some(e) = loaded.environment else {
                        continue;
                    };
                    rows.push(serde_json::json!({
                        "name": e.name,
                        "display_name": e.display_name,
                        "target": e.target.as_str(),
                        "replicas": e.replicas,
                        "release": e.release,
                        "valid": !errors,
                    }));
                }
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).unwrap_or_default()
                    );
                    return Ok(0);
                }
                println!(
                    "{:<14} {:<16} {:<11} {:>8}  RELEASE",
                    "NAME", "ENVIRONMENT", "TARGET", "REPLICAS"
                );
                for r in rows {
                    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                    println!(
                        "{:<14} {:<16} {:<11} {:>8}  {:<12} {}",
                        s("name"),
                        s("display_name"),
                        s("target"),
                        r["replicas"].as_u64().unwrap_or(0),
                        s("release"),
                        if r["valid"] == true {
                            ""
                        } else {
                            "(has errors: launchway env validate)"
                        }
                    );
                }
                Ok(0)
            }
            EnvCmd::Show { name, json } => {
                let e = load(args, name, color)?;
                if *json {
                    let v = serde_json::json!({"name": e.name, "merged": e.merged, "service_environment": e.config});
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    return Ok(0);
                }
                print!("{}", yaml::documents(std::slice::from_ref(&e.merged)));
                println!("# the service's environment variables:");
                for (k, v) in &e.config {
                    println!("#   {k}={v}");
                }
                Ok(0)
            }
            EnvCmd::Validate { names } => {
                let all: Vec<String> = if names.is_empty() {
                    repo::environments(&dir(args))?
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect()
                } else {
                    names.clone()
                };
                if all.is_empty() {
                    return Err(format!("no environments in {}", dir(args).display()));
                }
                let mut bad = 0;
                for name in &all {
                    let loaded = repo::load_environment(&dir(args), name, &args.root)?;
                    report(&args.root, &loaded, color);
                    if loaded.has_errors() {
                        bad += 1;
                    }
                }
                if bad > 0 {
                    eprintln!("{bad} of {} environment(s) have errors", all.len());
                    return Ok(1);
                }
                eprintln!("{} environment(s) valid", all.len());
                Ok(0)
            }
            EnvCmd::Diff { left, right } => {
                let (a, b) = (load(args, left, color)?, load(args, right, color)?);
                let d = diff::diff(&a.merged, &b.merged);
                if d.is_empty() {
                    println!("'{left}' and '{right}' are the same");
                    return Ok(0);
                }
                let w = d.iter().map(|x| x.path.len()).max().unwrap_or(4).max(4);
                println!("{:<w$}  {:<28} {}", "KEY", left, right);
                for x in d {
                    println!(
                        "{:<w$}  {:<28} {}",
                        x.path,
                        x.left.as_deref().unwrap_or("(unset)"),
                        x.right.as_deref().unwrap_or("(unset)")
                    );
                }
                Ok(0)
            }
            EnvCmd::Logs { name, replica } => {
                let dir = store.home.join("environments/logs").join(name);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|_| {
                        format!(
                            "no logs for '{name}' in {} (is it running with launchway sync?)",
                            dir.display()
                        )
                    })?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| match replica {
                                Some(i) => n == format!("replica-{i}.log"),
                                None => n.ends_with(".log"),
                            })
                    })
                    .collect();
                files.sort();
                for f in files {
                    let label = f
                        .file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().to_string());
                    for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
                        println!("{label} | {line}");
                    }
                }
                Ok(0)
            }
            EnvCmd::Render {
                name,
                target,
                output,
            } => {
                let e = load(args, name, color)?;
                let docs = match target {
                    RenderTarget::Kubernetes => kubernetes::manifests(
                        &e,
                        &kubernetes::Names {
                            default_service: service_name(&args.root),
                        },
                    )?,
                };
                let text = yaml::documents(&docs);
                match output {
                    Some(p) => {
                        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))?
                    }
                    None => print!("{text}"),
                }
                Ok(0)
            }
        }
    })();
    r.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        1
    })
}

/// Where the repository and its environments are, and who commits.
#[derive(Args)]
pub struct GitOpsArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', default_value = ".")]
    root: PathBuf,
    /// Where the environment files are, relative to the repository.
    #[arg(long, default_value = repo::DEFAULT_DIR)]
    dir: PathBuf,
    /// The commit's author as "Name <email>" (default: git's user).
    #[arg(long)]
    author: Option<String>,
}

impl GitOpsArgs {
    fn author(&self) -> Result<launchway_deploy::gitops::Author, String> {
        let Some(a) = &self.author else {
            return Ok(Default::default());
        };
        let (name, email) = a
            .split_once('<')
            .and_then(|(n, e)| Some((n.trim(), e.strip_suffix('>')?.trim())))
            .ok_or_else(|| format!("--author '{a}': expected \"Name <email>\""))?;
        Ok(launchway_deploy::gitops::Author {
            name: Some(name.to_string()),
            email: Some(email.to_string()),
        })
    }
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    /// The environment (its file's name).
    env: String,
    /// What to run: a commit of this repository (pinned to its full
    /// hash) or a bundle digest.
    #[arg(long)]
    release: Option<String>,
    /// Any other key, e.g. --set replicas=3 --set resources.limits.cpu=2.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    env: String,
    /// The revision whose version of the file to restore (default: the
    /// one before the file's last change).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    from: String,
    to: String,
}

fn committed(r: Result<String, String>, what: &str) -> u8 {
    match r {
        Ok(sha) => {
            println!("{what}: committed {}", &sha[..sha.len().min(12)]);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

pub fn deploy(args: &DeployArgs) -> u8 {
    let r = (|| {
        let mut sets = Vec::new();
        for s in &args.sets {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| format!("--set {s}: expected KEY=VALUE"))?;
            sets.push((k.trim().to_string(), v.to_string()));
        }
        launchway_deploy::gitops::deploy(
            &args.at.root,
            &args.at.dir,
            &args.env,
            args.release.as_deref(),
            &sets,
            &args.at.author()?,
        )
    })();
    committed(r, &format!("deploy {}", args.env))
}

pub fn rollback(args: &RollbackArgs) -> u8 {
    let r = args.at.author().and_then(|a| {
        launchway_deploy::gitops::rollback(
            &args.at.root,
            &args.at.dir,
            &args.env,
            args.to.as_deref(),
            &a,
        )
    });
    committed(r, &format!("rollback {}", args.env))
}

pub fn promote(args: &PromoteArgs) -> u8 {
    let r = args.at.author().and_then(|a| {
        launchway_deploy::gitops::promote(&args.at.root, &args.at.dir, &args.from, &args.to, &a)
    });
    committed(r, &format!("promote {} to {}", args.from, args.to))
}

#[derive(Args)]
pub struct SyncArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', default_value = ".")]
    root: PathBuf,
    /// Where the environment files are, relative to the repository.
    #[arg(long, default_value = repo::DEFAULT_DIR)]
    dir: PathBuf,
    /// The environment to run on this machine.
    env: String,
    /// The environment's stable address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// How long new replicas have to answer their health check.
    #[arg(long, default_value_t = 60)]
    health_timeout: u64,
    /// How often to look for a new commit of the environment's file.
    #[arg(long, default_value_t = 2)]
    interval: u64,
}

/// The environment's config as committed at HEAD (git is the truth; an
/// uncommitted edit deploys nothing).
fn committed_environment(args: &SyncArgs) -> Result<Environment, String> {
    let rel = args.dir.join(format!("{}.yaml", args.env));
    let show = |p: &Path| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&args.root)
            .args(["show", &format!("HEAD:{}", p.to_string_lossy())])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let own = show(&rel).ok_or_else(|| format!("{} is not committed at HEAD", rel.display()))?;
    let base = show(&args.dir.join(repo::BASE_FILE));
    let loaded = launchway_deploy::config::load(
        &args.env,
        &launchway_deploy::config::Source {
            path: rel.to_string_lossy().to_string(),
            text: own,
        },
        base.map(|t| launchway_deploy::config::Source {
            path: repo::BASE_FILE.into(),
            text: t,
        })
        .as_ref(),
    );
    if let Some(d) = loaded.diagnostics.first() {
        return Err(format!(
            "{}:{}:{}: {}",
            d.file, d.diagnostic.span.start.line, d.diagnostic.span.start.col, d.diagnostic.message
        ));
    }
    loaded
        .environment
        .ok_or_else(|| "the environment did not load".into())
}

/// `launchway sync ENV`: runs the environment here as committed, and keeps
/// it so (new commits deploy, crashed replicas restart) until Ctrl-C.
pub fn sync(args: &SyncArgs, store: &launchway_runner::store::Store) -> u8 {
    crate::cmd_serve::block_on(async move {
        let root = args
            .root
            .canonicalize()
            .map_err(|e| format!("{}: {e}", args.root.display()))?;
        let data = store.home.join("environments");
        let env = launchway_deploy::local::LocalEnvironment::start(
            &args.env,
            &root,
            &data,
            &args.listen,
            Default::default(),
        )
        .await?;
        eprintln!("environment '{}' at http://{}", args.env, env.address());
        let timeout = std::time::Duration::from_secs(args.health_timeout);
        let mut last: Option<String> = None;
        loop {
            let head = std::process::Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(["rev-parse", "HEAD"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            if head != last {
                last = head.clone();
                match committed_environment(args) {
                    Ok(desired) => match env.apply(&desired, timeout).await {
                        Ok(s) => eprintln!(
                            "{}: {} ({} replica(s), release {})",
                            args.env,
                            s.health.as_str(),
                            s.replicas,
                            s.release.as_deref().unwrap_or("-")
                        ),
                        Err(e) => eprintln!("{}: deployment failed: {e}", args.env),
                    },
                    Err(e) => eprintln!("{}: {e}", args.env),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(args.interval)) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        env.shutdown().await;
        eprintln!("{}: stopped", args.env);
        Ok(())
    })
}
