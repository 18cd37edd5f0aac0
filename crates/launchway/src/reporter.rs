//! Terminal output while a run goes: a live line per job on a TTY, plain
//! lines otherwise, step logs with `-v`; and the summary at the end.

use launchway_runner::commands::Level;
use launchway_runner::record::{JobResult, RunEvent, RunRecord, RunStatus, StepResult};
use launchway_runner::store::Store;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Live,
    Plain { verbose: bool },
    Quiet,
}

pub struct Reporter {
    mode: Mode,
    color: bool,
}

struct JobLine {
    name: String,
    status: String,
    /// The step running now (the live view's line).
    step: String,
    /// Every step's name by its index: a finish names its own step (a
    /// composite action's ends after its inner steps).
    steps: std::collections::HashMap<usize, String>,
    started: Instant,
    done: Option<(JobResult, u64)>,
}

fn icon(r: JobResult) -> &'static str {
    match r {
        JobResult::Running => "◐",
        JobResult::Success => "✓",
        JobResult::Failure => "✗",
        JobResult::Cancelled => "⊘",
        JobResult::Skipped => "-",
        JobResult::Waiting => "⏸",
    }
}

fn paint(color: bool, r: JobResult, s: &str) -> String {
    if !color {
        return s.to_string();
    }
    let c = match r {
        JobResult::Success => "32",
        JobResult::Running => "36",
        JobResult::Failure => "31",
        JobResult::Cancelled | JobResult::Waiting => "33",
        JobResult::Skipped => "90",
    };
    format!("\x1b[{c}m{s}\x1b[0m")
}

impl Reporter {
    pub fn new(mode: Mode, color: bool) -> Self {
        Reporter { mode, color }
    }

    pub fn spawn(self, rx: UnboundedReceiver<RunEvent>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.follow(rx))
    }

    async fn follow(self, mut rx: UnboundedReceiver<RunEvent>) {
        let mut jobs: BTreeMap<String, JobLine> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut drawn = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut err = std::io::stderr();
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => match ev { Some(e) => Some(e), None => break },
                _ = tick.tick() => None,
            };
            let mut print: Vec<String> = Vec::new();
            if let Some(ev) = ev {
                match ev {
                    RunEvent::RunStarted { run, workflow } => {
                        print.push(format!("Run #{run}: {workflow}"))
                    }
                    RunEvent::JobStarted { key, name } => {
                        if !order.contains(&key) {
                            order.push(key.clone());
                        }
                        jobs.insert(
                            key.clone(),
                            JobLine {
                                name: name.clone(),
                                status: "running".into(),
                                step: String::new(),
                                steps: std::collections::HashMap::new(),
                                started: Instant::now(),
                                done: None,
                            },
                        );
                        if matches!(self.mode, Mode::Plain { .. }) {
                            print.push(format!("[{key}] ▶ started"));
                        }
                    }
                    RunEvent::StepStarted { key, name, index } => {
                        if let Some(j) = jobs.get_mut(&key) {
                            j.step.clone_from(&name);
                            j.steps.insert(index, name.clone());
                        }
                        if matches!(self.mode, Mode::Plain { verbose: true }) {
                            print.push(format!("[{key}] ● {name}"));
                        }
                    }
                    RunEvent::Log { key, line } => {
                        if let Mode::Plain { verbose: true } = self.mode {
                            let d = depth.entry(key.clone()).or_default();
                            if let Some(title) = line.strip_prefix("##[group]") {
                                print.push(format!("[{key}] {}▼ {title}", "  ".repeat(*d)));
                                *d += 1;
                            } else if line.starts_with("##[endgroup]") {
                                *d = d.saturating_sub(1);
                            } else if !line.starts_with("##[command]") {
                                print.push(format!("[{key}] {}  {line}", "  ".repeat(*d)));
                            }
                        }
                    }
                    RunEvent::StepFinished {
                        key,
                        index,
                        conclusion,
                        outcome,
                        duration_ms,
                    } => {
                        if let Mode::Plain { .. } = self.mode {
                            let step = jobs
                                .get(&key)
                                .and_then(|j| j.steps.get(&index).or(Some(&j.step)).cloned())
                                .unwrap_or_default();
                            // A step that failed but let the job go on
                            // (continue-on-error) shows as failed, as on GitHub.
                            let shown = outcome.unwrap_or(conclusion);
                            let mark = match shown {
                                StepResult::Success => "✓",
                                StepResult::Failure => "✗",
                                StepResult::Cancelled => "⊘",
                                StepResult::Skipped => "-",
                            };
                            let note = if shown != conclusion {
                                " (continue-on-error)"
                            } else {
                                ""
                            };
                            print.push(format!(
                                "[{key}]   {mark} {step}{note} ({:.1}s)",
                                duration_ms as f64 / 1000.0
                            ));
                        }
                    }
                    RunEvent::JobFinished {
                        key,
                        name,
                        result,
                        duration_ms,
                    } => {
                        if !order.contains(&key) {
                            order.push(key.clone());
                        }
                        let line = jobs.entry(key.clone()).or_insert_with(|| JobLine {
                            name: name.clone(),
                            status: String::new(),
                            step: String::new(),
                            steps: std::collections::HashMap::new(),
                            started: Instant::now(),
                            done: None,
                        });
                        line.done = Some((result, duration_ms));
                        line.status = result.as_str().into();
                        if let Mode::Plain { .. } = self.mode {
                            print.push(paint(
                                self.color,
                                result,
                                &format!(
                                    "[{key}] {} {} ({:.1}s)",
                                    icon(result),
                                    result.as_str(),
                                    duration_ms as f64 / 1000.0
                                ),
                            ));
                        }
                    }
                    RunEvent::Waiting { key, environment } => {
                        jobs.entry(key.clone())
                            .or_insert_with(|| JobLine {
                                name: key.clone(),
                                status: String::new(),
                                step: String::new(),
                                steps: std::collections::HashMap::new(),
                                started: Instant::now(),
                                done: None,
                            })
                            .done = Some((JobResult::Waiting, 0));
                        if !order.contains(&key) {
                            order.push(key.clone());
                        }
                        if let Mode::Plain { .. } = self.mode {
                            print.push(format!(
                                "[{key}] ⏸ waiting for approval to deploy to '{environment}'"
                            ));
                        }
                    }
                    RunEvent::RunFinished { .. } => {}
                    RunEvent::Notice { message } => {
                        // Notices matter to scripts too; they go to stderr in every mode.
                        if let Mode::Quiet = self.mode {
                            let _ = writeln!(err, "{message}");
                        }
                        print.push(message);
                    }
                }
            }
            match self.mode {
                Mode::Quiet => {}
                Mode::Plain { .. } => {
                    for p in print {
                        let _ = writeln!(err, "{p}");
                    }
                }
                Mode::Live => {
                    if drawn > 0 {
                        let _ = write!(err, "\x1b[{drawn}A\x1b[J");
                    }
                    for p in print {
                        let _ = writeln!(err, "{p}");
                    }
                    drawn = 0;
                    for key in &order {
                        let Some(j) = jobs.get(key) else { continue };
                        let line = match j.done {
                            Some((r, ms)) => paint(
                                self.color,
                                r,
                                &format!(
                                    "{} {:<40} {:<10} {:>7.1}s",
                                    icon(r),
                                    truncate(&j.name, 40),
                                    r.as_str(),
                                    ms as f64 / 1000.0
                                ),
                            ),
                            None => format!(
                                "{} {:<40} {:<10} {:>7.1}s  {}",
                                spinner(j.started),
                                truncate(&j.name, 40),
                                j.status,
                                j.started.elapsed().as_secs_f64(),
                                truncate(&j.step, 50)
                            ),
                        };
                        let _ = writeln!(err, "{line}");
                        drawn += 1;
                    }
                }
            }
        }
        // The summary repeats the final table; the live block goes away.
        if let Mode::Live = self.mode
            && drawn > 0
        {
            let _ = write!(err, "\x1b[{drawn}A\x1b[J");
        }
        let _ = err.flush();
    }
}

fn spinner(t: Instant) -> char {
    const FRAMES: [char; 4] = ['◐', '◓', '◑', '◒'];
    FRAMES[(t.elapsed().as_millis() / 200 % 4) as usize]
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

/// The end-of-run summary: jobs, annotations, step summaries, what next.
pub fn print_summary(r: &RunRecord, store: &Store, dir: &Path, color: bool) {
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\n{} — run #{} ({} on {} @ {})",
        r.workflow,
        r.id,
        r.event,
        r.git_ref,
        &r.sha[..r.sha.len().min(7)]
    );
    for j in &r.jobs {
        let _ = writeln!(
            out,
            "  {}",
            paint(
                color,
                j.result,
                &format!(
                    "{} {:<44} {:<10} {:>7.1}s",
                    icon(j.result),
                    j.key,
                    j.result.as_str(),
                    j.duration_ms as f64 / 1000.0
                )
            )
        );
        if let Some(m) = &j.message
            && j.result != JobResult::Success
        {
            let _ = writeln!(out, "      {m}");
        }
    }
    if !r.annotations.is_empty() {
        let _ = writeln!(out, "\nAnnotations");
        for a in &r.annotations {
            let level = match a.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Notice => "notice",
            };
            let loc = match (&a.file, a.line) {
                (Some(f), Some(l)) => format!(" {f}:{l}"),
                (Some(f), None) => format!(" {f}"),
                _ => String::new(),
            };
            let title = a
                .title
                .as_ref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {level} [{}]{loc}: {title}{}",
                a.job,
                a.message.lines().next().unwrap_or("")
            );
        }
    }
    for j in r.jobs.iter().filter(|j| !j.summary.is_empty()) {
        let _ = writeln!(out, "\nSummary — {}\n{}", j.key, j.summary.trim_end());
    }
    let waiting: Vec<_> = r
        .jobs
        .iter()
        .filter(|j| j.result == JobResult::Waiting && j.environment.is_some())
        .collect();
    for j in &waiting {
        let env = j.environment.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "\n⏸ {} is waiting for approval to deploy to '{env}'.\n  Approve and run it: launchway run -C {} --job {} --approve {env}",
            j.key,
            dir.display(),
            j.id
        );
    }
    let status = match r.status {
        RunStatus::Success => paint(color, JobResult::Success, "succeeded"),
        RunStatus::Failure => paint(color, JobResult::Failure, "failed"),
        RunStatus::Cancelled => paint(color, JobResult::Cancelled, "was cancelled"),
        RunStatus::Waiting => paint(color, JobResult::Waiting, "is waiting for approval"),
        RunStatus::Running => "is running".into(),
    };
    let _ = writeln!(
        out,
        "\nRun #{} {status} in {:.1}s. Logs: launchway logs {}  (stored in {})",
        r.id,
        r.duration_ms as f64 / 1000.0,
        r.id,
        store.run_dir(r.id).display()
    );
    eprint!("{out}");
}
