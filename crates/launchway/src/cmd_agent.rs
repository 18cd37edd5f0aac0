//! `launchway agent`: run jobs for a server.

use crate::agent::{self, http::Channel, sandbox};
use launchway_runner::cancel::Cancel;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The server to take jobs from, e.g. https://ci.example:8080.
    #[arg(long)]
    server: String,
    /// A registration token (`lwr_…`, from `launchway agents token`) or this
    /// agent's own credential (`lwa_…`); also LAUNCHWAY_AGENT_TOKEN.
    #[arg(long, env = "LAUNCHWAY_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from standard input instead (nothing on a command line).
    #[arg(long, conflicts_with = "token")]
    token_stdin: bool,
    /// The labels jobs can ask for in `runs-on` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "linux,x64")]
    labels: Vec<String>,
    /// The agent's name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Where jobs run and the agent keeps its credential.
    #[arg(long)]
    work_dir: PathBuf,
    /// Jobs at the same time.
    #[arg(long, default_value_t = 1)]
    max_jobs: usize,
    /// Keep the credential in memory only (never in the work dir).
    #[arg(long)]
    ephemeral: bool,
    /// Take over a registered agent of the same name (it gets a new
    /// credential; the old one stops working).
    #[arg(long)]
    replace: bool,
    /// When started as root: run as this unprivileged user instead.
    #[arg(long)]
    user: Option<String>,
    /// Paths jobs must never open (repeatable): the agent restricts itself
    /// with Landlock and fails to start where the kernel cannot.
    #[arg(long = "deny", value_name = "PATH")]
    deny: Vec<PathBuf>,
    /// Run steps without their per-job Landlock sandbox (then jobs running
    /// at the same time on this agent can read each other's files).
    #[arg(long)]
    no_step_sandbox: bool,
    /// Trust this certificate (PEM) for an https:// server: a private CA,
    /// or the server's self-signed certificate.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Stop (cancelling running jobs) when the process that started this
    /// one dies — what a server's local agent does.
    #[arg(long, hide = true)]
    exit_with_parent: bool,
}

/// `launchway sandbox-exec` without clap: `--deny PATH`… (`--job-dir
/// PATH` | `--standby`) [`--cgroup DIR`] [`--track ID`] [`--no-landlock`],
/// the one shape an agent writes: the launcher of one job, or a spare one
/// that learns its job later (see [`agent::launcher`]).
pub fn sandbox_exec_fast(args: &[std::ffi::OsString]) -> u8 {
    const USAGE: &str = "sandbox-exec: usage: --deny PATH… (--job-dir PATH | --standby) [--cgroup DIR] [--track ID] [--no-landlock]";
    let mut deny = Vec::new();
    let mut job = sandbox::StepJob::default();
    let mut job_dir = None;
    let mut standby = false;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].to_str(), value) {
            (Some("--deny"), Some(v)) => deny.push(PathBuf::from(v)),
            (Some("--job-dir"), Some(v)) => job_dir = Some(PathBuf::from(v)),
            (Some("--cgroup"), Some(v)) => job.cgroup = Some(PathBuf::from(v)),
            (Some("--track"), Some(v)) => job.tracking_id = v.to_string_lossy().into_owned(),
            (Some("--no-landlock"), _) => {
                job.landlock = false;
                i += 1;
                continue;
            }
            (Some("--standby"), _) => {
                standby = true;
                i += 1;
                continue;
            }
            _ => {
                eprintln!("{USAGE}");
                return 2;
            }
        }
        i += 2;
    }
    if job_dir.is_some() == standby {
        eprintln!("sandbox-exec: one of --job-dir and --standby is required\n{USAGE}");
        return 2;
    }
    if standby && !job.tracking_id.is_empty() {
        // A spare learns its job's tracking id with its job.
        eprintln!("sandbox-exec: --track goes with --job-dir, not --standby\n{USAGE}");
        return 2;
    }
    match agent::launcher::serve(&deny, job_dir.as_deref(), &job) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            127
        }
    }
}

pub fn main(args: &AgentArgs) -> u8 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn credential_file(work: &std::path::Path) -> PathBuf {
    work.join("agent.json")
}

/// The agent's life; an error ends it (the sandbox's typed, the rest said
/// as they are).
fn run(args: &AgentArgs) -> Result<(), Box<dyn std::error::Error>> {
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(format!(
            "--server {}: expected an http:// or https:// URL",
            args.server
        )
        .into());
    }
    let token = if args.token_stdin {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .map_err(|e| format!("reading the token from standard input: {e}"))?;
        t.trim().to_string()
    } else {
        args.token.clone().unwrap_or_default()
    };
    // What a killed predecessor left running goes first, and the job
    // cgroups are set up while the agent may still create them.
    let owner = match &args.user {
        Some(u) => Some(sandbox::lookup(u)?),
        None => None,
    };
    let tracker = agent::procs::Tracker::setup(
        &args.work_dir,
        owner,
        std::env::var_os("LAUNCHWAY_AGENT_NO_CGROUP").is_none(),
    );
    // Privileges go before anything else happens, and before any thread.
    let mut user = None;
    if let Some(u) = &args.user {
        sandbox::drop_to(u)?;
        user = Some(u.clone());
    }
    sandbox::not_dumpable()?;
    // After the user change, which clears it.
    let parent = args
        .exit_with_parent
        .then(sandbox::exit_with_parent)
        .transpose()?;
    launchway_runner::private::dir(&args.work_dir)
        .map_err(|e| format!("{}: {e}", args.work_dir.display()))?;
    let work = args
        .work_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.work_dir.display()))?;
    let landlock = if args.deny.is_empty() {
        "none (no --deny paths)"
    } else {
        let mut writable = vec![work.clone(), PathBuf::from("/dev"), PathBuf::from("/tmp")];
        // Its jobs' cgroups are created and removed under its own.
        writable.extend(tracker.writable());
        writable.retain(|w| w.exists());
        sandbox::landlock(&args.deny, &writable, &[], false)?
    };
    if !args.no_step_sandbox && !sandbox::landlock_available() {
        return Err("this kernel does not enforce Landlock, so jobs cannot be kept apart from each other and from the agent; run on Linux 5.13+ with Landlock enabled, or pass --no-step-sandbox to run them unsandboxed".into());
    }
    let applied = sandbox::Applied { user, landlock };
    let name = args.name.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "agent".into())
    });
    let channel = Channel::trusting(&args.server, "", args.ca_file.as_deref())?;
    let credential = credential(args, &channel, &work, &name, &token)?;
    let channel = channel.with_token(&credential);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    eprintln!(
        "launchway agent '{name}' taking jobs from {} (labels: {}; up to {} at a time; user: {}; sandbox: {}; job processes: {})",
        args.server,
        args.labels.join(","),
        args.max_jobs.max(1),
        applied.user.as_deref().unwrap_or("unchanged"),
        applied.landlock,
        tracker.describe()
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let session: String = {
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness for the session: {e}"))?;
        b.iter().map(|x| format!("{x:02x}")).collect()
    };
    let stop = Cancel::new();
    rt.block_on(async {
        let s = stop.clone();
        tokio::spawn(async move {
            crate::cmd_serve::shutdown_signal().await;
            eprintln!("agent: stopping; running jobs are cancelled and reported");
            s.cancel();
        });
        if let Some(ppid) = parent {
            // The death signal can race with the start: look now and then.
            let s = stop.clone();
            tokio::spawn(async move {
                while nix::unistd::getppid() == ppid {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                eprintln!("agent: the server that started this agent is gone; stopping");
                s.cancel();
            });
        }
        agent::run(
            agent::Config {
                channel,
                work: work.clone(),
                labels: args.labels.clone(),
                max_jobs: args.max_jobs,
                sandbox_steps: !args.no_step_sandbox,
                tracker,
                session,
                exe,
                name: name.clone(),
            },
            stop,
        )
        .await;
    });
    // A claim still waiting on the server does not hold the exit up.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// This agent's credential: given, saved from an earlier registration with
/// the same server and name, or obtained now with a registration token.
fn credential(
    args: &AgentArgs,
    channel: &Channel,
    work: &std::path::Path,
    name: &str,
    token: &str,
) -> Result<String, String> {
    if token.starts_with("lwa_") {
        // Registering is what these are for; a credential is registered.
        if args.replace {
            return Err("--replace is for registering with a registration token (lwr_…); this is an agent's credential".into());
        }
        return Ok(token.to_string());
    }
    let file = credential_file(work);
    if !args.ephemeral
        && let Some(saved) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        && saved["server"] == args.server.as_str()
        && saved["name"] == name
        && let Some(t) = saved["token"].as_str()
    {
        return Ok(t.to_string());
    }
    if !token.starts_with("lwr_") {
        return Err("the agent needs a registration token (lwr_…, from `launchway agents token`) or its credential (lwa_…): --token, --token-stdin or LAUNCHWAY_AGENT_TOKEN".into());
    }
    let answer: Value = channel
        .with_token(token)
        .post(
            "/api/agents/register",
            &json!({
                "name": name,
                "labels": args.labels,
                "version": env!("CARGO_PKG_VERSION"),
                "replace": args.replace,
            }),
        )
        .map_err(|e| format!("registering with {}: {e}", args.server))?
        .unwrap_or_default();
    let credential = answer["token"]
        .as_str()
        .ok_or("the server did not return a credential")?
        .to_string();
    if !args.ephemeral {
        launchway_runner::private::write(
            &file,
            serde_json::to_vec_pretty(&json!({
                "server": args.server, "name": name, "token": credential,
            }))
            .unwrap_or_default(),
        )
        .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(credential)
}
