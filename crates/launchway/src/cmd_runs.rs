//! `launchway runs` and `launchway logs`: reading run records back.

use crate::client::{Client, encode, print_json};
use clap::Args;
use launchway_runner::record::RunRecord;
use launchway_runner::store::Store;
use serde_json::Value;

#[derive(Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    cmd: Option<RunsCmd>,
    /// How many of the most recent runs to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Only this repository's runs (with a server).
    #[arg(long)]
    repo: Option<String>,
    /// Only runs in this status: queued, running, success, failure,
    /// cancelled, waiting.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    json: bool,
    /// This machine's runs (from `launchway run`), whatever --server or
    /// LAUNCHWAY_SERVER say.
    #[arg(long, global = true)]
    local: bool,
}

#[derive(clap::Subcommand)]
enum RunsCmd {
    /// One run with its jobs.
    Show {
        run: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct LogsArgs {
    /// Run number.
    run: u64,
    /// A job id or key (default: every job).
    job: Option<String>,
    /// Follow a server's run live until it ends (Server-Sent Events).
    #[arg(short, long)]
    follow: bool,
    /// A run of this machine (from `launchway run`), whatever --server or
    /// LAUNCHWAY_SERVER say.
    #[arg(long)]
    local: bool,
}

/// `runs` and `runs show` against a server, when one is named.
pub fn remote_runs(args: &RunsArgs, server: &crate::client::ServerOpts) -> Option<u8> {
    if args.local {
        return None;
    }
    let client = match server.client() {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            eprintln!("error: {e}");
            return Some(2);
        }
    };
    let r = match &args.cmd {
        Some(RunsCmd::Show { run, json }) => server_show(&client, *run, *json),
        None => server_runs(
            &client,
            args.repo.as_deref(),
            args.status.as_deref(),
            args.limit,
            args.json,
        )
        .map(|()| 0),
    };
    Some(r.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        1
    }))
}

/// `logs` against a server, when one is named.
pub fn remote_logs(args: &LogsArgs, server: &crate::client::ServerOpts) -> Option<u8> {
    if args.local {
        return None;
    }
    let client = match server.client() {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            eprintln!("error: {e}");
            return Some(2);
        }
    };
    Some(
        server_logs(&client, args.run, args.job.as_deref(), args.follow).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            1
        }),
    )
}

fn load_all(store: &Store, limit: usize) -> Vec<RunRecord> {
    let ids = store.list_ids().unwrap_or_default();
    ids.iter()
        .rev()
        .take(limit)
        .filter_map(|id| store.load(*id).ok())
        .collect()
}

pub fn runs(args: &RunsArgs, store: &Store) -> u8 {
    if args.repo.is_some() {
        eprintln!("error: --repo lists a server's runs: add --server URL (or LAUNCHWAY_SERVER)");
        return 2;
    }
    if let Some(RunsCmd::Show { run, json }) = &args.cmd {
        let logs = LogsArgs {
            run: *run,
            job: None,
            follow: false,
            local: true,
        };
        if *json {
            return match store.load(*run) {
                Ok(r) => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    0
                }
                Err(e) => {
                    eprintln!("error: run {run}: {e}");
                    1
                }
            };
        }
        return show_local(&logs, store);
    }
    let mut runs = load_all(store, usize::MAX);
    if let Some(s) = &args.status {
        runs.retain(|r| r.status.as_str() == s);
    }
    runs.truncate(args.limit);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return 0;
    }
    if runs.is_empty() {
        println!("no runs yet in {}", store.home.display());
        return 0;
    }
    println!(
        "{:<5} {:<10} {:<28} {:<18} {:<22} {:<8} {:>9}",
        "RUN", "STATUS", "WORKFLOW", "EVENT", "REF", "SHA", "DURATION"
    );
    for r in runs {
        println!(
            "{:<5} {:<10} {:<28} {:<18} {:<22} {:<8} {:>8.1}s",
            r.id,
            r.status.as_str(),
            truncate(&r.workflow, 28),
            truncate(&r.event, 18),
            truncate(&r.git_ref, 22),
            &r.sha[..r.sha.len().min(7)],
            r.duration_ms as f64 / 1000.0
        );
    }
    0
}

/// A local run's jobs and their results.
fn show_local(args: &LogsArgs, store: &Store) -> u8 {
    let rec = match store.load(args.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: run {}: {e}", args.run);
            return 1;
        }
    };
    println!(
        "run {}: {} — {} ({} on {} @ {})",
        rec.id,
        rec.status.as_str(),
        rec.workflow,
        rec.event,
        rec.git_ref,
        &rec.sha[..rec.sha.len().min(7)]
    );
    for j in &rec.jobs {
        #[allow(clippy::cast_precision_loss)]
        let secs = j.duration_ms as f64 / 1000.0;
        println!("  {:<10} {:<32} {:>7.1}s", j.result.as_str(), j.key, secs);
    }
    0
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub fn logs(args: &LogsArgs, store: &Store) -> u8 {
    if args.follow {
        eprintln!("error: --follow follows a server's run: add --server URL (or LAUNCHWAY_SERVER)");
        return 2;
    }
    let rec = match store.load(args.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: run {} not found in {}: {e}",
                args.run,
                store.home.display()
            );
            return 1;
        }
    };
    let jobs: Vec<_> = rec
        .jobs
        .iter()
        .filter(|j| {
            args.job.as_ref().is_none_or(|want| {
                j.key == *want || j.id == *want || j.key.starts_with(&format!("{want} "))
            })
        })
        .collect();
    if jobs.is_empty() {
        eprintln!(
            "error: run {} has no job '{}'; jobs: {}",
            rec.id,
            args.job.clone().unwrap_or_default(),
            rec.jobs
                .iter()
                .map(|j| j.key.clone())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return 1;
    }
    let dir = store.run_dir(rec.id);
    for j in jobs {
        println!("=== {} ({}) ===", j.key, j.result.as_str());
        if let Some(m) = &j.message {
            println!("{m}");
        }
        for s in &j.steps {
            println!("--- {} [{}]", s.name, s.conclusion.as_str());
            if let Some(text) = s.read_log(&dir) {
                print!("{text}");
            }
        }
    }
    0
}

/// The runs table, from the server.
fn server_runs(
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
fn server_show(c: &Client, run: u64, json: bool) -> Result<u8, String> {
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
fn server_logs(c: &Client, run: u64, job: Option<&str>, follow: bool) -> Result<u8, String> {
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
