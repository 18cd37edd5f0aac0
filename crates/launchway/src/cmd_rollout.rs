//! `launchway rollout`: a progressive rollout (canary) of this machine's
//! reconciler — where it stands, and the decisions a person makes
//! (promote past a pause, promote fully, abort).

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct RolloutArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', default_value = ".", global = true)]
    root: PathBuf,
    /// A server's repository instead of this machine's reconciler.
    #[arg(long, global = true)]
    repo: Option<String>,
    #[command(subcommand)]
    cmd: RolloutCmd,
}

#[derive(Subcommand)]
enum RolloutCmd {
    /// The step, the weights and each analysis measurement.
    Status {
        env: String,
        /// Print it again whenever it changes, until the rollout ends.
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
    /// Go on past the current pause (or an inconclusive analysis).
    Promote {
        env: String,
        /// Skip what is left: all traffic to the new release now.
        #[arg(long)]
        full: bool,
    },
    /// Back to the stable release at once; the canary stops (and, with
    /// `on_failure: revert`, git is reverted).
    Abort { env: String },
    /// Blue-green, while the previous release is still warm: switch back
    /// to it at once (and revert git, with `on_failure: revert`).
    Undo { env: String },
    /// Run an aborted rollout of what git says again (after `on_failure:
    /// hold`; with `revert`, git already says the previous release).
    Retry { env: String },
}

fn request(data: &std::path::Path, env: &str, what: &str) -> u8 {
    if launchway_deploy::reconcile::running(data).is_none() {
        eprintln!("error: no reconciler runs for this repository (launchway sync --detach)");
        return 1;
    }
    if env.contains('/') || env.contains("..") || env.is_empty() {
        eprintln!("error: '{env}' is not an environment name");
        return 2;
    }
    match launchway_deploy::local::read_rollout(data, env) {
        Some(r) if launchway_deploy::local::rollout_is_live(&r.phase) => {}
        _ => {
            eprintln!("error: no rollout is in progress in '{env}'");
            return 1;
        }
    }
    let dir = data.join("requests");
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{env}.{what}")), ""))
    {
        eprintln!("error: {}: {e}", dir.display());
        return 1;
    }
    println!("{what} requested for {env}");
    0
}

/// A manual sync of `env`: a held, aborted revision is rolled out again.
fn retry(data: &std::path::Path, env: &str) -> u8 {
    if launchway_deploy::reconcile::running(data).is_none() {
        eprintln!("error: no reconciler runs for this repository (launchway sync --detach)");
        return 1;
    }
    match launchway_deploy::local::read_rollout(data, env) {
        Some(r) if r.phase == "Aborted" => {}
        _ => {
            eprintln!("error: '{env}' has no aborted rollout to retry");
            return 1;
        }
    }
    let dir = data.join("requests");
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{env}.sync")), ""))
    {
        eprintln!("error: {}: {e}", dir.display());
        return 1;
    }
    println!("retry requested for {env}");
    0
}

/// What each revision answered so far, from this machine's data plane.
fn traffic(data: &std::path::Path, env: &str) -> Vec<launchway_deploy::analysis::RevisionTraffic> {
    launchway_deploy::dataplane::status_blocking(data)
        .and_then(|r| r.sites.into_iter().find(|s| s.environment == env))
        .map(|s| launchway_deploy::analysis::traffic(&s.backends))
        .unwrap_or_default()
}

fn show_traffic(t: &[launchway_deploy::analysis::RevisionTraffic]) {
    for r in t {
        #[allow(clippy::cast_precision_loss)]
        let err = if r.requests == 0 {
            0.0
        } else {
            r.errors as f64 * 100.0 / r.requests as f64
        };
        let ms =
            |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{:.1} ms", x * 1000.0));
        println!(
            "  {:<20} {:>3}%  {} replica(s)  {} requests, {:.2}% errors, p50 {}, p99 {}",
            r.revision,
            r.weight,
            r.replicas,
            r.requests,
            err,
            ms(r.latency_p50),
            ms(r.latency_p99)
        );
    }
}

fn show(r: &launchway_deploy::local::RolloutStatus) {
    println!(
        "{} ({}): {} — step {}/{}, {}% to {} (stable {})",
        r.environment,
        r.strategy,
        r.phase,
        (r.step + 1).min(r.steps),
        r.steps,
        r.weight,
        &r.canary[..r.canary.len().min(12)],
        &r.stable[..r.stable.len().min(12)],
    );
    println!("  {}", r.message);
    if let Some(p) = &r.preview {
        println!("  preview: {p}");
    }
    for m in r.measurements.iter().rev().take(10).rev() {
        println!(
            "  {:<16} {:<13} {}",
            m.template,
            format!("{:?}", m.outcome),
            m.value
        );
    }
}

/// The same through a server's API.
fn remote(
    args: &RolloutArgs,
    repo: &str,
    server: &crate::client::ServerOpts,
) -> Result<u8, String> {
    let c = server.require("launchway rollout --repo")?;
    let base = format!("/api/repos/{repo}/environments");
    let (env, action) = match &args.cmd {
        RolloutCmd::Status { env, watch, json } => {
            let mut last = None;
            loop {
                let v = c.get(&format!("{base}/{env}/rollout"))?;
                let r: launchway_deploy::local::RolloutStatus =
                    serde_json::from_value(v.clone())
                        .map_err(|e| format!("unexpected answer: {e}"))?;
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                if last.as_ref() != Some(&text) {
                    if *json {
                        println!("{text}");
                    } else {
                        show(&r);
                    }
                    last = Some(text);
                }
                if !*watch || !launchway_deploy::local::rollout_is_live(&r.phase) {
                    return Ok(0);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        RolloutCmd::Promote { env, full } => (env, if *full { "promote-full" } else { "promote" }),
        RolloutCmd::Abort { env } => (env, "abort"),
        RolloutCmd::Undo { env } => (env, "undo"),
        RolloutCmd::Retry { env } => (env, "retry"),
    };
    c.post(
        &format!("{base}/{env}/rollout/{action}"),
        &serde_json::json!({}),
    )?;
    println!("{action} requested for {env} in {repo}");
    Ok(0)
}

pub fn main(
    args: &RolloutArgs,
    store: &launchway_runner::store::Store,
    server: &crate::client::ServerOpts,
) -> u8 {
    if let Some(repo) = &args.repo {
        // A server's repository is named by --repo; a folder here would be ignored.
        if args.root != std::path::Path::new(".") {
            eprintln!(
                "error: -C names this machine's repository; with --repo the server's is used — give one of them"
            );
            return 2;
        }
        return match remote(args, repo, server) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    }
    let root = match args.root.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", args.root.display());
            return 1;
        }
    };
    let data = crate::cmd_sync::data_dir(store, &root);
    match &args.cmd {
        RolloutCmd::Promote { env, full } => {
            request(&data, env, if *full { "promote-full" } else { "promote" })
        }
        RolloutCmd::Abort { env } => request(&data, env, "abort"),
        RolloutCmd::Undo { env } => request(&data, env, "undo"),
        RolloutCmd::Retry { env } => retry(&data, env),
        RolloutCmd::Status { env, watch, json } => {
            let mut last = None;
            loop {
                let Some(r) = launchway_deploy::local::read_rollout(&data, env) else {
                    eprintln!("error: '{env}' has had no progressive rollout here");
                    return 1;
                };
                let flows = traffic(&data, env);
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["traffic"] = serde_json::to_value(&flows).unwrap_or_default();
                // Printed again when the rollout moves (not on every request).
                let key = serde_json::to_string(&r).unwrap_or_default();
                if last.as_ref() != Some(&key) {
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    } else {
                        show(&r);
                        show_traffic(&flows);
                    }
                    last = Some(key);
                }
                let live = launchway_deploy::local::rollout_is_live(&r.phase);
                if !*watch || !live {
                    return 0;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}
