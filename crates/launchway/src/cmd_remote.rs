//! Commands that talk to a server: repositories, dispatch, cancel, re-run,
//! and the git hook that notifies the server of new commits.

use crate::client::{Client, ServerOpts, encode};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct RepoArgs {
    #[command(subcommand)]
    cmd: RepoCmd,
}

#[derive(Subcommand)]
enum RepoCmd {
    /// Register a git repository on the server's machine.
    Add {
        name: String,
        /// A path on the server's machine (made absolute here), or a URL
        /// the server clones and polls.
        location: String,
    },
    /// List registered repositories.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a repository with its runs, settings and changes (admins).
    Delete { name: String },
    /// A new webhook secret for a repository, shown once (admins).
    RotateWebhookSecret { name: String },
}

#[derive(Args)]
pub struct DispatchArgs {
    /// Registered repository name.
    repo: String,
    /// Workflow file, e.g. .github/workflows/ci.yml.
    workflow: String,
    /// Branch or ref (default: the repository's current branch).
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// An input as KEY=VALUE (repeatable).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
}

#[derive(Args)]
pub struct RunIdArgs {
    /// Run number on the server.
    run: i64,
}

#[derive(Args)]
pub struct RerunArgs {
    /// Run number on the server.
    run: i64,
    /// Only the jobs that did not succeed (and what needs them); the
    /// others' results and outputs are reused.
    #[arg(long)]
    failed: bool,
}

#[derive(Args)]
pub struct ReviewArgs {
    /// Run number on the server.
    #[arg(required_unless_present = "change")]
    run: Option<i64>,
    /// The environment whose deployment is pending.
    #[arg(long = "env", required_unless_present = "change")]
    environment: Option<String>,
    /// A waiting environment change (`launchway changes`) instead of a run.
    #[arg(long, conflicts_with_all = ["run", "environment"])]
    change: Option<i64>,
    #[arg(long)]
    comment: Option<String>,
}

#[derive(Args)]
pub struct ChangesArgs {
    /// Only changes in this state (waiting, committed, rejected, failed).
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DeploymentsArgs {
    #[arg(long)]
    repo: Option<String>,
    #[arg(long = "env")]
    environment: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    cmd: SettingCmd,
}

#[derive(Args)]
pub struct VarArgs {
    #[command(subcommand)]
    cmd: SettingCmd,
}

#[derive(Subcommand)]
enum SettingCmd {
    /// Create or replace one. A secret's value is read from standard input
    /// (never from the command line, where `ps` and shell history see it).
    Set {
        repo: String,
        name: String,
        /// A variable's value (secrets: standard input).
        value: Option<String>,
        /// For this environment only (default: the whole repository).
        #[arg(long = "env")]
        environment: Option<String>,
    },
    /// List them (secrets: names only).
    List {
        repo: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        repo: String,
        name: String,
        #[arg(long = "env")]
        environment: Option<String>,
    },
}

#[derive(Args)]
pub struct ArtifactsArgs {
    /// Run number on the server.
    run: i64,
    /// Download this artifact (every file, checked against its digest).
    #[arg(long)]
    download: Option<String>,
    /// Where downloads go (default: ./NAME).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn done(r: Result<(), String>) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

pub fn repo(args: &RepoArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway repo")?;
        match &args.cmd {
            RepoCmd::Add { name, location } => {
                let location = if launchway_server::triggers::is_url(location) {
                    location.clone()
                } else {
                    Path::new(location)
                        .canonicalize()
                        .map_err(|e| format!("{location}: {e}"))?
                        .to_string_lossy()
                        .to_string()
                };
                let v = c.post("/api/repos", &json!({"name": name, "location": location}))?;
                println!("registered '{name}' ({location})");
                println!(
                    "webhook secret (shown only now; give it to `launchway hook install --secret-file` or your forge):"
                );
                println!("  {}", v["webhook_secret"].as_str().unwrap_or(""));
                Ok(())
            }
            RepoCmd::Delete { name } => {
                c.delete(&format!("/api/repos/{name}"))?;
                println!("removed repository '{name}' with its runs, settings and changes");
                Ok(())
            }
            RepoCmd::RotateWebhookSecret { name } => {
                let v = c.post(&format!("/api/repos/{name}/webhook-secret"), &json!({}))?;
                eprintln!(
                    "new webhook secret for '{name}' (shown only now; the old one no longer verifies):"
                );
                println!("  {}", v["webhook_secret"].as_str().unwrap_or(""));
                Ok(())
            }
            RepoCmd::List { json } => {
                let v = c.get("/api/repos")?;
                if *json {
                    print_json(&v);
                } else {
                    for r in v.as_array().into_iter().flatten() {
                        println!(
                            "{:<24} {}",
                            r["name"].as_str().unwrap_or(""),
                            r["location"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(())
            }
        }
    })())
}

pub fn dispatch(args: &DispatchArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway dispatch")?;
        let mut inputs = serde_json::Map::new();
        for kv in &args.inputs {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--input {kv}: expected KEY=VALUE"))?;
            inputs.insert(k.to_string(), Value::String(v.to_string()));
        }
        let mut body = json!({"workflow": args.workflow, "inputs": inputs});
        if let Some(r) = &args.git_ref {
            body["ref"] = json!(r);
        }
        let run = c.post(
            &format!("/api/repos/{}/dispatch", encode(&args.repo)),
            &body,
        )?;
        println!(
            "queued run {} ({} on {} @ {})",
            run["id"],
            run["workflow"].as_str().unwrap_or(""),
            run["git_ref"].as_str().unwrap_or(""),
            &run["sha"].as_str().unwrap_or("")[..7.min(run["sha"].as_str().unwrap_or("").len())]
        );
        println!("follow it: launchway logs {} -f", run["id"]);
        Ok(())
    })())
}

pub fn cancel(args: &RunIdArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway cancel")?;
        c.post(&format!("/api/runs/{}/cancel", args.run), &json!({}))?;
        println!("cancelling run {}", args.run);
        Ok(())
    })())
}

pub fn rerun(args: &RerunArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway rerun")?;
        let q = if args.failed { "?failed=true" } else { "" };
        let run = c.post(&format!("/api/runs/{}/rerun{q}", args.run), &json!({}))?;
        println!("queued run {} (a re-run of {})", run["id"], args.run);
        Ok(())
    })())
}

pub fn artifacts(args: &ArtifactsArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway artifacts")?;
        let list = c.get(&format!("/api/runs/{}/artifacts", args.run))?;
        let Some(name) = &args.download else {
            for a in list.as_array().into_iter().flatten() {
                println!(
                    "{:<28} {:>4} file(s) {:>10} bytes  sha256:{}",
                    a["name"].as_str().unwrap_or(""),
                    a["files"].as_array().map_or(0, Vec::len),
                    a["bytes"].as_u64().unwrap_or(0),
                    a["sha256"].as_str().unwrap_or("")
                );
            }
            return Ok(());
        };
        let a = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == name.as_str())
            .ok_or_else(|| format!("run {} has no artifact '{name}'", args.run))?;
        let dest = args.output.clone().unwrap_or_else(|| PathBuf::from(name));
        for f in a["files"].as_array().into_iter().flatten() {
            let rel = f["path"].as_str().unwrap_or("");
            // Never write outside the destination, whatever the server says.
            if rel.is_empty()
                || Path::new(rel).is_absolute()
                || rel.split('/').any(|p| p == ".." || p.is_empty())
            {
                return Err(format!("refusing the artifact path '{rel}'"));
            }
            let url = format!(
                "/api/runs/{}/artifacts/{}/{}",
                args.run,
                encode(name),
                rel.split('/').map(encode).collect::<Vec<_>>().join("/")
            );
            let data = c.get_bytes(&url)?;
            let sum = launchway_server::hex_sha256(&data);
            if Some(sum.as_str()) != f["sha256"].as_str() {
                return Err(format!("{rel}: the content does not match its digest"));
            }
            let target = dest.join(rel);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            std::fs::write(&target, &data).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        println!(
            "downloaded '{name}' to {} (sha256 verified)",
            dest.display()
        );
        Ok(())
    })())
}

/// `secret …` and `var …`.
fn setting(cmd: &SettingCmd, server: &ServerOpts, secret: bool) -> u8 {
    let kind = if secret { "secrets" } else { "variables" };
    done((|| {
        let c = server.require(if secret {
            "launchway secret"
        } else {
            "launchway var"
        })?;
        match cmd {
            SettingCmd::Set {
                repo,
                name,
                value,
                environment,
            } => {
                let value = match (secret, value) {
                    (true, Some(_)) => {
                        return Err("a secret's value is read from standard input, not the command line (e.g. `launchway secret set repo NAME < file`)".into());
                    }
                    (true, None) => {
                        use std::io::{IsTerminal, Read};
                        if std::io::stdin().is_terminal() {
                            eprint!("value for {name} (end with Ctrl-D): ");
                        }
                        let mut v = String::new();
                        std::io::stdin()
                            .read_to_string(&mut v)
                            .map_err(|e| e.to_string())?;
                        // One trailing newline is the terminal's, not the secret's.
                        v.strip_suffix('\n').map(str::to_string).unwrap_or(v)
                    }
                    (false, Some(v)) => v.clone(),
                    (false, None) => return Err("give the variable's value".into()),
                };
                let body =
                    json!({"value": value, "environment": environment.clone().unwrap_or_default()});
                c.put(
                    &format!("/api/repos/{}/{kind}/{}", encode(repo), encode(name)),
                    &body,
                )?;
                println!(
                    "set {name}{}",
                    environment
                        .as_ref()
                        .map(|e| format!(" for environment '{e}'"))
                        .unwrap_or_default()
                );
                Ok(())
            }
            SettingCmd::List { repo, json } => {
                let v = c.get(&format!("/api/repos/{}/{kind}", encode(repo)))?;
                if *json {
                    print_json(&v);
                    return Ok(());
                }
                for s in v.as_array().into_iter().flatten() {
                    let env = s["environment"].as_str().unwrap_or("");
                    println!(
                        "{:<14} {:<32} {}",
                        if env.is_empty() { "(repository)" } else { env },
                        s["name"].as_str().unwrap_or(""),
                        s["value"].as_str().unwrap_or("")
                    );
                }
                Ok(())
            }
            SettingCmd::Delete {
                repo,
                name,
                environment,
            } => {
                let mut path = format!("/api/repos/{}/{kind}/{}", encode(repo), encode(name));
                if let Some(e) = environment {
                    path.push_str(&format!("?environment={}", encode(e)));
                }
                c.delete(&path)?;
                println!("deleted {name}");
                Ok(())
            }
        }
    })())
}

pub fn secret(args: &SecretArgs, server: &ServerOpts) -> u8 {
    setting(&args.cmd, server, true)
}

pub fn var(args: &VarArgs, server: &ServerOpts) -> u8 {
    setting(&args.cmd, server, false)
}

/// `approve` (or `reject`) a pending deployment.
pub fn review(args: &ReviewArgs, server: &ServerOpts, approve: bool) -> u8 {
    done((|| {
        let c = server.require(if approve {
            "launchway approve"
        } else {
            "launchway reject"
        })?;
        let verb = if approve { "approve" } else { "reject" };
        let mut body = json!({});
        if let Some(m) = &args.comment {
            body["comment"] = json!(m);
        }
        if let Some(id) = args.change {
            let v = c.post(&format!("/api/changes/{id}/{verb}"), &body)?;
            println!(
                "change {id}: {}{}",
                v["status"].as_str().unwrap_or(""),
                v["commit"]
                    .as_str()
                    .map_or_else(String::new, |c| format!(" as {}", &c[..c.len().min(12)]))
            );
            return Ok(());
        }
        let (Some(run), Some(env)) = (args.run, &args.environment) else {
            return Err("give a run and --env, or --change".into());
        };
        body["environment"] = json!(env);
        let v = c.post(&format!("/api/runs/{run}/{verb}"), &body)?;
        println!(
            "run {run}: deployment to '{env}' {}",
            v["decision"].as_str().unwrap_or("")
        );
        Ok(())
    })())
}

/// `launchway changes`: environment changes asked for through the server.
pub fn changes(args: &ChangesArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway changes")?;
        let q = match &args.status {
            Some(s) => format!("/api/changes?status={}", encode(s)),
            None => "/api/changes".into(),
        };
        let v = c.get(&q)?;
        if args.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "{:<5} {:<12} {:<12} {:<9} {:<10} {:<12} {:<12} RESULT",
            "ID", "REPO", "ENVIRONMENT", "KIND", "STATUS", "REQUESTED", "REVIEWED"
        );
        for ch in v["changes"].as_array().into_iter().flatten() {
            let s = |k: &str| ch[k].as_str().unwrap_or("").to_string();
            println!(
                "{:<5} {:<12} {:<12} {:<9} {:<10} {:<12} {:<12} {}",
                ch["id"],
                s("repo"),
                s("environment"),
                s("kind"),
                s("status"),
                s("requested_by"),
                s("reviewed_by"),
                s("result")
            );
        }
        Ok(())
    })())
}

pub fn deployments(args: &DeploymentsArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway deployments")?;
        let mut q = format!("/api/deployments?limit={}", args.limit);
        if let Some(r) = &args.repo {
            q.push_str(&format!("&repo={}", encode(r)));
        }
        if let Some(e) = &args.environment {
            q.push_str(&format!("&environment={}", encode(e)));
        }
        let v = c.get(&q)?;
        if args.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "{:<6} {:<12} {:<14} {:<9} {:<9} {:<12} {:<12}",
            "RUN", "REPO", "ENVIRONMENT", "SHA", "RESULT", "TRIGGERED", "APPROVED"
        );
        for d in v.as_array().into_iter().flatten() {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            let sha = s("sha");
            println!(
                "{:<6} {:<12} {:<14} {:<9} {:<9} {:<12} {:<12}",
                d["run_id"].as_i64().unwrap_or(0),
                s("repo"),
                s("environment"),
                &sha[..sha.len().min(7)],
                s("result"),
                s("triggered_by"),
                if s("approved_by").is_empty() {
                    "-".to_string()
                } else {
                    s("approved_by")
                }
            );
        }
        Ok(())
    })())
}

/// The runs table, from the server.
pub fn runs(
    c: &Client,
    repo: Option<&str>,
    status: Option<&str>,
    limit: usize,
    json: bool,
) -> Result<(), String> {
    let mut q = format!("/api/runs?limit={limit}");
    if let Some(r) = repo {
        q.push_str(&format!("&repo={}", encode(r)));
    }
    if let Some(s) = status {
        q.push_str(&format!("&status={}", encode(s)));
    }
    let v = c.get(&q)?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let runs = v.as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        println!("no runs");
        return Ok(());
    }
    println!(
        "{:<6} {:<10} {:<14} {:<28} {:<18} {:<20} {:<8}",
        "RUN", "STATUS", "REPO", "WORKFLOW", "EVENT", "REF", "SHA"
    );
    for r in runs {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let sha = s("sha");
        println!(
            "{:<6} {:<10} {:<14} {:<28} {:<18} {:<20} {:<8}",
            r["id"].as_i64().unwrap_or(0),
            s("status"),
            s("repo"),
            s("workflow").trim_start_matches(".github/workflows/"),
            s("event"),
            s("git_ref"),
            &sha[..sha.len().min(7)]
        );
    }
    Ok(())
}

/// One run with its jobs, from the server.
pub fn show(c: &Client, run: u64, json: bool) -> Result<u8, String> {
    let v = c.get(&format!("/api/runs/{run}"))?;
    if json {
        print_json(&v);
    } else {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        println!(
            "run {run}: {} — {} on {} @ {} ({}, by {})",
            s("status"),
            s("workflow"),
            s("git_ref"),
            &s("sha")[..s("sha").len().min(7)],
            s("event"),
            s("actor")
        );
        if !s("message").is_empty() {
            println!("  {}", s("message"));
        }
        for j in v["jobs"].as_array().into_iter().flatten() {
            println!(
                "  {:<10} {:<32} {:>7.1}s",
                j["result"].as_str().unwrap_or(""),
                j["key"].as_str().unwrap_or(""),
                j["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
            );
        }
    }
    Ok(match v["status"].as_str() {
        Some("failure" | "cancelled") => 1,
        _ => 0,
    })
}

/// A run's logs from the server; with `follow`, live until the run ends.
/// The exit status is the run's (1 when it failed or was cancelled).
pub fn logs(c: &Client, run: u64, job: Option<&str>, follow: bool) -> Result<u8, String> {
    let mut q = format!("/api/runs/{run}/logs");
    let mut sep = '?';
    if let Some(j) = job {
        q.push_str(&format!("{sep}job={}", encode(j)));
        sep = '&';
    }
    if !follow {
        print!("{}", c.get_text(&q)?);
        return Ok(0);
    }
    q.push_str(&format!("{sep}follow=true"));
    let mut code = 0;
    c.events(&q, |event, data| {
        let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        match event {
            "log" => {
                println!(
                    "{} | {}",
                    v["job"].as_str().unwrap_or(""),
                    v["line"].as_str().unwrap_or("")
                );
                true
            }
            "end" => {
                let status = v["status"].as_str().unwrap_or("");
                eprintln!("run {run} {status}");
                if matches!(status, "failure" | "cancelled") {
                    code = 1;
                }
                false
            }
            _ => true,
        }
    })?;
    Ok(code)
}
