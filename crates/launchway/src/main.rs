//! The `launchway` command line: a thin shell over the library crates.

mod agent;
mod client;
mod cmd_admin;
mod cmd_agent;
mod cmd_agents;
mod cmd_artifacts;
mod cmd_audit;
mod cmd_cancel;
mod cmd_changes;
mod cmd_dataplane;
mod cmd_deploy;
mod cmd_deployments;
mod cmd_dispatch;
mod cmd_env;
mod cmd_hook;
mod cmd_lint;
mod cmd_model;
mod cmd_proxy;
mod cmd_repo;
mod cmd_rerun;
mod cmd_review;
mod cmd_rollout;
mod cmd_run;
mod cmd_runs;
mod cmd_sbom;
mod cmd_scan;
mod cmd_serve;
mod cmd_settings;
mod cmd_sync;
mod deployer;
mod diagnostics;
mod image_target;
mod local_agent;
mod reporter;

use clap::{Parser, Subcommand};

/// Scans allocate many small strings (lockfile parsing, paths); mimalloc
/// makes that markedly cheaper than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "launchway",
    version,
    about = "From commit to production, safely: GitHub Actions workflows run locally, without Docker."
)]
struct Cli {
    /// Data directory for runs, logs, artifacts and cache.
    #[arg(long, global = true, env = "LAUNCHWAY_HOME")]
    home: Option<PathBuf>,
    #[command(flatten)]
    server: client::ServerOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workflows of a repository that match an event.
    Run(Box<cmd_run::RunArgs>),
    /// Check workflow files for errors.
    Lint(cmd_lint::LintArgs),
    /// List recorded runs.
    Runs(cmd_runs::RunsArgs),
    /// Print the logs of a run, or of one of its jobs.
    Logs(cmd_runs::LogsArgs),
    /// Write the software bill of materials (SPDX or CycloneDX) of a tree.
    Sbom(cmd_sbom::SbomArgs),
    /// Manage the offline advisory database.
    Db(cmd_scan::DbArgs),
    /// Scan for known vulnerabilities and leaked secrets.
    Scan(cmd_scan::ScanArgs),
    /// Run the control plane: the HTTP API, the run queue and its workers.
    Serve(cmd_serve::ServeArgs),
    /// Run jobs for a server (a runner: claims jobs whose labels it has).
    Agent(cmd_agent::AgentArgs),
    /// A server's agents: list, registration tokens, disable, enable.
    Agents(cmd_agents::AgentsArgs),
    /// Manage the server's users and API tokens.
    Admin(cmd_admin::AdminArgs),
    /// Show or verify the server's hash-chained audit log.
    Audit(cmd_audit::AuditArgs),
    /// Register repositories with a server.
    Repo(cmd_repo::RepoArgs),
    /// Queue a workflow_dispatch run on a server.
    Dispatch(cmd_dispatch::DispatchArgs),
    /// Cancel a server's run.
    Cancel(cmd_cancel::RunIdArgs),
    /// Queue a server's run again (same workflow, commit and inputs).
    Rerun(cmd_rerun::RerunArgs),
    /// Approve a run's pending deployment to an environment.
    Approve(cmd_review::ReviewArgs),
    /// Reject a run's pending deployment to an environment.
    Reject(cmd_review::ReviewArgs),
    /// Deployment records: what went to which environment, approved by whom.
    Deployments(cmd_deployments::DeploymentsArgs),
    /// A server's secrets, per repository or environment (sealed at rest).
    Secret(cmd_settings::SecretArgs),
    /// A server's variables, per repository or environment.
    Var(cmd_settings::VarArgs),
    /// List or download a server run's artifacts (digests checked).
    Artifacts(cmd_artifacts::ArtifactsArgs),
    /// Deployment environments: list, show, validate, diff, render.
    Env(cmd_env::EnvArgs),
    /// Environment changes asked for through the server (deploy, rollback,
    /// promote), waiting for a reviewer or done.
    Changes(cmd_changes::ChangesArgs),
    /// The built-in model registry: versions and aliases (stages).
    Model(cmd_model::ModelArgs),
    /// Change what an environment runs, as a commit of its file.
    Deploy(cmd_deploy::DeployArgs),
    /// Put an environment's file back as it was, as a commit.
    Rollback(cmd_deploy::RollbackArgs),
    /// Copy what runs in one environment to another, as a commit.
    Promote(cmd_deploy::PromoteArgs),
    /// Run the built-in reverse proxy in front of fixed backends.
    Proxy(cmd_proxy::ProxyArgs),
    /// Run the environments on this machine as committed in git, and keep
    /// them so (the GitOps reconciler without a server).
    Sync(cmd_sync::SyncArgs),
    /// A progressive rollout (canary) here: status, promote, abort.
    Rollout(cmd_rollout::RolloutArgs),
    /// Git hooks: a pre-commit check, or hooks that tell a server about new commits.
    Hook(cmd_hook::HookArgs),
    /// The data plane of a reconciler's environments (started by it).
    #[command(hide = true)]
    Dataplane(cmd_dataplane::DataplaneArgs),
}

/// `launchway … | head`: when whoever reads our output stops reading, we
/// stop too, quietly, with the status a shell expects (128 + SIGPIPE), not
/// with a panic message (Rust's printing macros panic on a closed pipe).
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

impl Command {
    /// Whether the command uses `--server`/`--token`/`--ca-file` (the
    /// agent has its own, for the server it takes jobs from).
    fn talks_to_a_server(&self) -> bool {
        !matches!(
            self,
            Command::Run(_)
                | Command::Lint(_)
                | Command::Model(_)
                | Command::Proxy(_)
                | Command::Sync(_)
                | Command::Dataplane(_)
                | Command::Sbom(_)
                | Command::Db(_)
                | Command::Scan(_)
                | Command::Serve(_)
        )
    }
}

fn main() -> ExitCode {
    // `sandbox-exec` (internal, not in the help) is how an agent starts
    // every step: parsed here, without building the whole CLI.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "sandbox-exec") {
        return ExitCode::from(cmd_agent::sandbox_exec_fast(&raw[2..]));
    }
    quiet_on_closed_pipe();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // The server options are global (one place in the help), but a command
    // that never talks to a server refuses them rather than ignore them.
    if !cli.command.talks_to_a_server() {
        for (id, flag) in [
            ("server", "--server"),
            ("token", "--token"),
            ("ca_file", "--ca-file"),
        ] {
            if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                eprintln!(
                    "error: {flag} has no meaning for `launchway {}`: it does not talk to a server",
                    matches.subcommand_name().unwrap_or("")
                );
                return ExitCode::from(2);
            }
        }
    }
    let store = launchway_runner::store::Store::new(
        cli.home
            .unwrap_or_else(launchway_runner::store::Store::default_home),
    );
    let code = match cli.command {
        Command::Run(args) => cmd_run::main(*args, store),
        Command::Lint(args) => cmd_lint::main(&args),
        Command::Runs(args) => cmd_runs::remote_runs(&args, &cli.server)
            .unwrap_or_else(|| cmd_runs::runs(&args, &store)),
        Command::Logs(args) => cmd_runs::remote_logs(&args, &cli.server)
            .unwrap_or_else(|| cmd_runs::logs(&args, &store)),
        Command::Repo(args) => cmd_repo::repo(&args, &cli.server),
        Command::Dispatch(args) => cmd_dispatch::dispatch(&args, &cli.server),
        Command::Cancel(args) => cmd_cancel::cancel(&args, &cli.server),
        Command::Rerun(args) => cmd_rerun::rerun(&args, &cli.server),
        Command::Hook(args) => cmd_hook::hook(&args, &cli.server),
        Command::Approve(args) => cmd_review::review(&args, &cli.server, true),
        Command::Reject(args) => cmd_review::review(&args, &cli.server, false),
        Command::Deployments(args) => cmd_deployments::deployments(&args, &cli.server),
        Command::Secret(args) => cmd_settings::secret(&args, &cli.server),
        Command::Var(args) => cmd_settings::var(&args, &cli.server),
        Command::Artifacts(args) => cmd_artifacts::artifacts(&args, &cli.server),
        Command::Env(args) => cmd_env::main(&args, &store, &cli.server),
        Command::Changes(args) => cmd_changes::changes(&args, &cli.server),
        Command::Model(args) => cmd_model::main(&args, &store),
        Command::Deploy(args) => cmd_deploy::deploy(&args, &cli.server, &store),
        Command::Rollback(args) => cmd_deploy::rollback(&args, &cli.server, &store),
        Command::Promote(args) => cmd_deploy::promote(&args, &cli.server, &store),
        Command::Proxy(args) => cmd_proxy::main(&args),
        Command::Sync(args) => cmd_sync::main(&args, &store),
        Command::Rollout(args) => cmd_rollout::main(&args, &store, &cli.server),
        Command::Dataplane(args) => cmd_dataplane::main(&args),
        Command::Sbom(args) => cmd_sbom::main(&args),
        Command::Db(args) => cmd_scan::db(args, &store),
        Command::Scan(args) => cmd_scan::scan(&args, &store),
        Command::Serve(args) => cmd_serve::main(&args, &store),
        Command::Agent(args) => cmd_agent::main(&args),
        Command::Agents(args) => cmd_agents::main(&args, &cli.server),
        Command::Admin(args) => cmd_admin::main(&args, &cli.server, &store),
        Command::Audit(args) => cmd_audit::audit(&args, &cli.server, &store),
    };
    ExitCode::from(code)
}
