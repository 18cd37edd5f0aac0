//! `launchway runs` and `launchway logs`: reading run records back.

use clap::Args;
use launchway_runner::record::RunRecord;
use launchway_runner::store::Store;

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
        Some(RunsCmd::Show { run, json }) => crate::cmd_remote::show(&client, *run, *json),
        None => crate::cmd_remote::runs(
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
        crate::cmd_remote::logs(&client, args.run, args.job.as_deref(), args.follow)
            .unwrap_or_else(|e| {
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
