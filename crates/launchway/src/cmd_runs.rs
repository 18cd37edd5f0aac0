//! `launchway runs` and `launchway logs`: reading run records back.

use clap::Args;
use launchway_runner::record::RunRecord;
use launchway_runner::store::Store;

#[derive(Args)]
pub struct RunsArgs {
    /// How many of the most recent runs to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Run number.
    run: u64,
    /// A job id or key (default: every job).
    job: Option<String>,
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
    let runs = load_all(store, args.limit);
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub fn logs(args: &LogsArgs, store: &Store) -> u8 {
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
