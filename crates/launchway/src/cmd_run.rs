//! `launchway run`: pick the workflows an event triggers and run them.

use crate::diagnostics;
use crate::reporter::{Mode, Reporter};
use clap::Args;
use indexmap::IndexMap;
use launchway_runner::actions::{self, Resolution};
use launchway_runner::cancel::Cancel;
use launchway_runner::prepare;
use launchway_runner::record::RunStatus;
use launchway_runner::source::Source;
use launchway_runner::store::Store;
use launchway_runner::{RunConfig, run_workflow};
use launchway_workflow::Workflow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct RunArgs {
    /// Run this directory as the repository (default: current directory).
    #[arg(short = 'C', long = "directory", default_value = ".")]
    dir: PathBuf,
    /// Run only this workflow file (relative to the repository).
    #[arg(short = 'W', long = "workflow")]
    workflow: Option<String>,
    /// The event to simulate.
    #[arg(short, long, default_value = "push")]
    event: String,
    /// The git ref the event is for (e.g. main, refs/tags/v1); default: the current branch.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// For pull_request: the base branch (default: the payload's, else main).
    #[arg(long)]
    base: Option<String>,
    /// The activity type, e.g. `opened` for pull_request.
    #[arg(long)]
    action: Option<String>,
    /// A JSON file with the event payload (`github.event`). It also gives
    /// the ref, base and head branches, activity type and dispatch inputs
    /// the flags do not.
    #[arg(long)]
    event_file: Option<PathBuf>,
    /// workflow_dispatch inputs.
    #[arg(short, long = "input", value_name = "K=V")]
    inputs: Vec<String>,
    /// Secrets (masked everywhere).
    #[arg(short, long = "secret", value_name = "K=V")]
    secrets: Vec<String>,
    /// A .env-style file of secrets.
    #[arg(long)]
    secrets_file: Option<PathBuf>,
    /// Configuration variables (`vars`).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// A .env-style file of variables.
    #[arg(long)]
    vars_file: Option<PathBuf>,
    /// Run only this job and the jobs it needs.
    #[arg(long)]
    job: Option<String>,
    /// The most jobs at once (default 64): past the number of cores, a job
    /// starts only while the CPUs are not all busy.
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Approve deployments to this environment up front.
    #[arg(long, value_name = "ENV")]
    approve: Vec<String>,
    /// Use the working tree, uncommitted changes included, instead of the commit.
    #[arg(long)]
    dirty: bool,
    /// Stream step logs.
    #[arg(short, long)]
    verbose: bool,
    /// Print the run records as JSON at the end.
    #[arg(long)]
    json: bool,
    /// Show `::debug::` messages.
    #[arg(long)]
    debug: bool,
    /// Plan the run: evaluate triggers, `if:`, matrices and environment gates
    /// without executing any step.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Seconds between SIGINT and SIGTERM when a step is cancelled.
    #[arg(long, default_value_t = 7.5, hide = true)]
    kill_grace: f64,
}

fn parse_kv(items: &[String], what: &str) -> Result<IndexMap<String, String>, String> {
    let mut out = IndexMap::new();
    for i in items {
        let (k, v) = i
            .split_once('=')
            .ok_or_else(|| format!("{what} '{i}' must be written KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{what} '{i}' has an empty name"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `.env` files: `KEY=VALUE`, `export KEY=VALUE`, comments, quotes.
pub fn parse_env_file(path: &PathBuf) -> Result<IndexMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = IndexMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected KEY=VALUE", path.display(), n + 1))?;
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            let inner = &v[1..v.len() - 1];
            if v.starts_with('"') {
                inner.replace("\\n", "\n").replace("\\\"", "\"")
            } else {
                inner.to_string()
            }
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    Ok(out)
}

pub fn main(args: RunArgs, store: Store) -> u8 {
    match run(args, store) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The default most jobs at once: beyond the number of cores, a job starts
/// only while the CPUs are not all busy.
const DEFAULT_JOBS: usize = 64;

struct Candidate {
    path: String,
    wf: Workflow,
}

fn run(args: RunArgs, store: Store) -> Result<u8, String> {
    let source = Source::open(&args.dir, None, args.dirty).map_err(|e| e.to_string())?;
    let json_payload = match &args.event_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| format!("{}: invalid JSON: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let is_pr = args.event.starts_with("pull_request");
    // What the payload says, where a flag does not (flags win).
    let from_payload = |path: &[&str]| -> Option<String> {
        let mut v = json_payload.as_ref()?;
        for k in path {
            v = v.get(*k)?;
        }
        v.as_str().map(str::to_string)
    };
    let payload_ref = if is_pr {
        from_payload(&["pull_request", "head", "ref"])
    } else {
        from_payload(&["ref"])
    };
    let git_ref = match args.git_ref.as_ref().or(payload_ref.as_ref()) {
        Some(r) => prepare::full_ref(r, source.git_root.as_deref()),
        None => source
            .head_ref
            .clone()
            .unwrap_or_else(|| "refs/heads/main".into()),
    };
    let base = args
        .base
        .clone()
        .or_else(|| from_payload(&["pull_request", "base", "ref"]))
        .unwrap_or_else(|| "main".into());
    let action = args
        .action
        .clone()
        .or_else(|| from_payload(&["action"]))
        .or_else(|| is_pr.then(|| "opened".to_string()));
    let event = prepare::event(
        &source,
        &args.event,
        &git_ref,
        is_pr.then_some(base.as_str()),
        action.as_deref(),
        None,
    );
    let payload = json_payload.as_ref().map(launchway_expr::Value::from_json);
    let mut secrets = IndexMap::new();
    if let Some(f) = &args.secrets_file {
        secrets.extend(parse_env_file(f)?);
    }
    secrets.extend(parse_kv(&args.secrets, "secret")?);
    secrets
        .entry("GITHUB_TOKEN".to_string())
        .or_insert_with(String::new);
    let mut vars = IndexMap::new();
    if let Some(f) = &args.vars_file {
        vars.extend(parse_env_file(f)?);
    }
    vars.extend(parse_kv(&args.vars, "var")?);
    // A workflow_dispatch payload's inputs, then the flags.
    let mut inputs: IndexMap<String, String> = json_payload
        .as_ref()
        .and_then(|p| p.get("inputs"))
        .and_then(|i| i.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    inputs.extend(parse_kv(&args.inputs, "input")?);
    let action_map = prepare::action_map(&source).map_err(|e| e.to_string())?;

    // Load the workflows of the commit. A file with errors is reported and
    // does not run; the others do (as GitHub runs the valid workflows of a
    // push), and the run then exits non-zero.
    let files: Vec<String> = match &args.workflow {
        Some(w) => vec![w.trim_start_matches("./").to_string()],
        None => source
            .list_dir(prepare::WORKFLOWS_DIR)
            .into_iter()
            .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
            .collect(),
    };
    if files.is_empty() {
        return Err(format!(
            "no workflows in {}/.github/workflows",
            source.dir.display()
        ));
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut candidates = Vec::new();
    let mut invalid: Vec<(String, usize)> = Vec::new();
    for f in &files {
        let Some(text) = source.read_file(f) else {
            return Err(format!(
                "workflow {f} not found{}",
                if args.dirty {
                    ""
                } else {
                    " in the commit (use --dirty for uncommitted files)"
                }
            ));
        };
        match prepare::load_one(f, &text) {
            Ok(wf) => candidates.push(Candidate {
                path: f.clone(),
                wf,
            }),
            Err(b) => {
                for d in &b.errors {
                    eprint!("{}", diagnostics::render(f, &text, d, color));
                }
                invalid.push((f.clone(), b.errors.len()));
            }
        }
    }
    if args.workflow.is_some() && !invalid.is_empty() {
        return Err("fix the workflow errors above (launchway lint shows them all)".into());
    }
    for (f, n) in &invalid {
        eprintln!(
            "skipped {f}: invalid ({n} error{}; launchway lint {f})",
            if *n == 1 { "" } else { "s" }
        );
    }
    let mut selected = Vec::new();
    for c in candidates {
        match c.wf.on.why_not(&event) {
            None => selected.push(c),
            Some(why) => eprintln!("skipped {}: {why}", c.path),
        }
    }
    if selected.is_empty() && !invalid.is_empty() {
        return Err(format!(
            "no valid workflow runs for {} ({} invalid)",
            event.name,
            invalid.len()
        ));
    }
    if selected.is_empty() {
        eprintln!(
            "no workflow runs for {} on {git_ref}{}",
            event.name,
            args.workflow
                .as_ref()
                .map(|w| format!(" ({w} is not triggered by it)"))
                .unwrap_or_default()
        );
        return Ok(0);
    }
    if let Some(j) = &args.job
        && !selected.iter().any(|c| c.wf.jobs.contains_key(j))
    {
        return Err(format!("no job '{j}' in the selected workflows"));
    }

    // Report actions that cannot run before starting anything.
    for c in &selected {
        for job in c.wf.jobs.values() {
            for step in launchway_workflow::flat_steps(&job.steps) {
                if let Some(u) = &step.uses
                    && let Resolution::Unsupported(msg) =
                        actions::resolve(&u.value, &action_map, &source.dir)
                {
                    eprintln!(
                        "warning: {}:{}:{}: job '{}': {}",
                        c.path,
                        u.span.start.line,
                        u.span.start.col,
                        job.id,
                        msg.lines().next().unwrap_or("")
                    );
                }
            }
        }
    }

    let parallel = args
        .jobs
        // Past the cores, jobs start only while CPUs are free (see
        // `launchway_runner::run::admit`): waiting jobs do not queue.
        .unwrap_or(DEFAULT_JOBS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let cancel = Cancel::new();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let approver: Option<launchway_runner::Approver> = interactive.then(|| {
        let f: launchway_runner::Approver = Arc::new(|env: &str, job: &str| {
            tokio::task::block_in_place(|| {
                eprint!("\nJob '{job}' deploys to protected environment '{env}'. Approve? [y/N] ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                matches!(line.trim(), "y" | "Y" | "yes")
            })
        });
        f
    });
    let mode = if args.json {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() && !args.verbose {
        Mode::Live
    } else {
        Mode::Plain {
            verbose: args.verbose,
        }
    };
    // Protection rules come from the default branch, as on a server.
    let rules = launchway_runner::prepare::rules_source(&source.dir, None, &source)
        .map_err(|e| e.to_string())?;
    let records = rt.block_on(async {
        // Ctrl-C: first cancels the run (always() steps still run), second exits.
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nCancelling the run (Ctrl-C again to exit now)…");
                c.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let mut records = Vec::new();
        for c in selected {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let reporter = Reporter::new(mode, color).spawn(rx);
            let cfg = RunConfig {
                store: store.clone(),
                source: source.clone(),
                event: event.clone(),
                payload: payload.clone(),
                inputs: inputs.clone(),
                secrets: secrets.clone(),
                vars: vars.clone(),
                job_filter: args.job.clone().filter(|j| c.wf.jobs.contains_key(j)),
                parallel,
                cpu_aware: args.jobs.is_none(),
                approve: args.approve.clone(),
                approver: approver.clone(),
                grace: launchway_runner::process::Grace {
                    interrupt: std::time::Duration::from_secs_f64(args.kill_grace.max(0.0)),
                    ..Default::default()
                },
                events: Some(tx),
                cancel: cancel.clone(),
                debug: prepare::step_debug(args.debug, &secrets, &vars),
                action_map: action_map.clone(),
                dry_run: args.dry_run,
                reuse: Default::default(),
                environment_secrets: Default::default(),
                environment_vars: Default::default(),
                deployer: Some(std::sync::Arc::new(crate::deployer::LocalDeployer {
                    store: store.clone(),
                })),
                executor: None,
                continue_run: None,
                rules: Some(rules.clone()),
            };
            let _ = c.path;
            let rec = run_workflow(cfg, c.wf).await;
            let _ = reporter.await;
            match rec {
                Ok(r) => records.push(r),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(e);
                }
            }
        }
        Ok(records)
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
    } else {
        for r in &records {
            crate::reporter::print_summary(r, &store, &args.dir, color);
        }
    }
    let failed = records
        .iter()
        .any(|r| matches!(r.status, RunStatus::Failure | RunStatus::Cancelled));
    if !invalid.is_empty() {
        // Not a green run: GitHub shows an invalid workflow as failed too.
        eprintln!(
            "{} workflow file(s) were invalid and did not run: {}",
            invalid.len(),
            invalid
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(1);
    }
    Ok(u8::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".env");
        std::fs::write(
            &p,
            "# comment\nexport A=1\nB = two words \nC=\"quoted\\nline\"\nD='single $x'\n\nE=\n",
        )
        .unwrap();
        let m = parse_env_file(&p).unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "quoted\nline");
        assert_eq!(m["D"], "single $x");
        assert_eq!(m["E"], "");
        std::fs::write(&p, "A=1\nnot a pair\n").unwrap();
        assert!(parse_env_file(&p).unwrap_err().contains(".env:2"));
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_kv(&["a=b=c".into()], "input").unwrap()["a"], "b=c");
        assert!(parse_kv(&["novalue".into()], "input").is_err());
        assert!(parse_kv(&["=x".into()], "input").is_err());
    }
}
