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
    /// What differs between two environments (exit 1 when they differ, as
    /// `diff` does).
    Diff { left: String, right: String },
    /// The logs of an environment's replicas on this machine
    /// (`launchway sync`), oldest line first.
    Logs {
        name: String,
        /// Only this replica (0, 1, …).
        #[arg(long)]
        replica: Option<usize>,
    },
    /// What runs where: sync status, health, revision and address of each
    /// environment the reconciler (`launchway sync`) runs on this machine.
    Status {
        /// A repository on the server (--server) instead of this machine.
        #[arg(long)]
        repo: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// An environment's deployments, newest last, with the commit that
    /// caused each.
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The manifests a target would apply.
    Render {
        name: String,
        #[arg(long, value_enum, default_value = "kubernetes")]
        target: RenderTarget,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Render as if the file said this too (nothing is committed),
        /// e.g. --set image=ghcr.io/acme/churn:1.5.0.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
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

/// `KEY=VALUE` pairs of `--set`.
fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>, String> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("--set {s}: expected KEY=VALUE"))
        })
        .collect()
}

/// An environment as its file would be with `sets` applied (in memory).
fn load_with_sets(
    args: &EnvArgs,
    name: &str,
    sets: &[(String, String)],
    color: bool,
) -> Result<Environment, String> {
    let d = dir(args);
    let (_, file) = repo::environments(&d)?
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| format!("no environment '{name}' in {}", d.display()))?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (text, _) = launchway_deploy::gitops::apply_sets(&text, sets)?;
    let shown = |p: &Path| {
        p.strip_prefix(&args.root)
            .unwrap_or(p)
            .to_string_lossy()
            .to_string()
    };
    let own = launchway_deploy::config::Source {
        path: shown(&file),
        text,
    };
    let base_file = d.join(launchway_deploy::repo::BASE_FILE);
    let base =
        std::fs::read_to_string(&base_file)
            .ok()
            .map(|text| launchway_deploy::config::Source {
                path: shown(&base_file),
                text,
            });
    let loaded = launchway_deploy::config::load(name, &own, base.as_ref());
    report(&args.root, &loaded, color);
    if loaded.has_errors() {
        return Err(format!(
            "environment '{name}' has errors with those --set values"
        ));
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

pub fn main(
    args: &EnvArgs,
    store: &launchway_runner::store::Store,
    server: &crate::client::ServerOpts,
) -> u8 {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let r = (|| -> Result<u8, String> {
        match &args.cmd {
            EnvCmd::List { json } => {
                let mut rows = Vec::new();
                for (name, _) in repo::environments(&dir(args))? {
                    let loaded = repo::load_environment(&dir(args), &name, &args.root)?;
                    let errors = loaded.has_errors();
                    let Some(e) = loaded.environment else {
                        // Listed all the same (`env validate` says why).
                        rows.push(
                            serde_json::json!({"name": name, "replicas": null, "valid": false}),
                        );
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
                        r["replicas"]
                            .as_u64()
                            .map_or_else(|| "-".to_string(), |n| n.to_string()),
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
                    // The pinned model must exist where it will be served.
                    let registry = launchway_deploy::models::Registry::new(
                        &crate::deployer::registry_dir(store),
                    );
                    let model = loaded
                        .environment
                        .as_ref()
                        .filter(|e| e.release.is_some())
                        .map(|e| launchway_deploy::models::check_pinned(Some(&registry), e));
                    if let Some(Err(why)) = &model {
                        eprintln!("error: {name}: {why}");
                    }
                    if loaded.has_errors() || matches!(model, Some(Err(_))) {
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
                Ok(1)
            }
            EnvCmd::Status { repo, json } => {
                let data = crate::cmd_sync::data_dir(store, &args.root);
                let list = match repo {
                    Some(r) => {
                        let c = server.require("launchway env status --repo")?;
                        let v = c.get(&format!("/api/repos/{r}/environments"))?;
                        serde_json::from_value(v["environments"].clone())
                            .map_err(|e| format!("unexpected answer: {e}"))?
                    }
                    None => launchway_deploy::reconcile::observe(&data),
                };
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                    );
                    return Ok(0);
                }
                if list.is_empty() {
                    println!("no environment runs here yet (launchway sync --detach)");
                    return Ok(0);
                }
                let running = launchway_deploy::reconcile::running(&data);
                println!(
                    "{:<12} {:<10} {:<12} {:<13} {:<26} {:<18} MESSAGE",
                    "ENVIRONMENT", "SYNC", "HEALTH", "REVISION", "ADDRESS", "MODEL"
                );
                for s in list {
                    println!(
                        "{:<12} {:<10} {:<12} {:<13} {:<26} {:<18} {}",
                        s.environment,
                        format!("{:?}", s.sync),
                        s.health,
                        s.deployed_revision
                            .as_deref()
                            .map_or("-", |r| &r[..r.len().min(12)]),
                        s.address.as_deref().unwrap_or("-"),
                        s.model.as_deref().unwrap_or("-"),
                        s.message
                    );
                }
                if running.is_none() && repo.is_none() {
                    println!(
                        "(no reconciler runs now: health is what answers right now; `launchway sync --detach` starts one)"
                    );
                }
                Ok(0)
            }
            EnvCmd::History { name, json } => {
                let data = crate::cmd_sync::data_dir(store, &args.root);
                let list = launchway_deploy::reconcile::history(&data, name);
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                    );
                    return Ok(0);
                }
                println!(
                    "{:<20} {:<14} {:<13} {:<13} {:<18} {:<24} SUBJECT",
                    "FINISHED (UTC)", "RESULT", "REVISION", "RELEASE", "MODEL", "AUTHOR"
                );
                for h in list {
                    let short = |r: &Option<String>| {
                        r.as_deref()
                            .map_or("-".to_string(), |r| r[..r.len().min(12)].to_string())
                    };
                    println!(
                        "{:<20} {:<14} {:<13} {:<13} {:<18} {:<24} {}{}",
                        launchway_runner::store::rfc3339(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.finished_at)
                        ),
                        h.result,
                        short(&h.revision),
                        short(&h.release),
                        h.model.as_deref().unwrap_or("-"),
                        h.author,
                        h.subject,
                        if h.result == "succeeded" {
                            String::new()
                        } else {
                            format!(" — {}", h.message)
                        }
                    );
                }
                Ok(0)
            }
            EnvCmd::Logs { name, replica } => {
                let dir = crate::cmd_sync::data_dir(store, &args.root)
                    .join("logs")
                    .join(name);
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
                sets,
            } => {
                let e = if sets.is_empty() {
                    load(args, name, color)?
                } else {
                    load_with_sets(args, name, &parse_sets(sets)?, color)?
                };
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
