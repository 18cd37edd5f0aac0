//! `launchway serve`: the control plane's HTTP API.

use launchway_server::api::{self, AppState};
use launchway_server::engine::{Engine, EngineConfig};
use launchway_server::sealed::MasterKey;
use launchway_server::store::Store;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); with
    /// --tls-key. The server's own agent then talks to it on a loopback
    /// port of its own.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    db: DbOptions,
    /// Runs executed at the same time.
    #[arg(long, default_value_t = 2)]
    parallel_runs: usize,
    /// Jobs at the same time within one run (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Look for new commits in every registered repository this often
    /// (seconds; 0 turns polling off; git hooks and webhooks need none).
    #[arg(long, default_value_t = 60)]
    poll_seconds: u64,
    /// Keep finished runs' logs and artifacts this many days (0: forever);
    /// the runs' records are always kept.
    #[arg(long, default_value_t = 90)]
    retention_days: u64,
    /// Compare every repository's environments (configs/environments at
    /// the tracked branch) with what runs at least this often (seconds);
    /// new commits are seen within a quarter of a second.
    #[arg(long, default_value_t = 10)]
    reconcile_seconds: u64,
    /// Let a deleted environment file stop a protected environment, or
    /// every environment at once (off: refused and shown in its status).
    #[arg(long)]
    prune_environments: bool,
    /// Seconds a run stays this server's without it renewing the lease
    /// (every third of it); past it, any server on the same database ends
    /// the run as failed.
    #[arg(long, default_value_t = 30)]
    run_lease_seconds: u64,
    /// Failed authentications a client address may have per minute before
    /// it gets 429 for the rest of it (0: no limit).
    #[arg(long, default_value_t = launchway_server::api::limit::MAX_FAILURES)]
    auth_failures_per_minute: u32,
    /// Seconds a run may wait for a deployment review before it ends as
    /// failed (default: 30 days, as on GitHub).
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    approval_timeout_seconds: u64,
    #[command(flatten)]
    agents: AgentOptions,
}

/// Where jobs run. The server never runs a workflow step itself: it starts
/// a local agent (a separate, sandboxed process) unless told not to, and
/// agents on other machines join with a registration token.
#[derive(clap::Args)]
#[command(next_help_heading = "Agents")]
pub struct AgentOptions {
    /// Jobs the local agent runs at the same time (0: no local agent; jobs
    /// wait for agents that join with `launchway agent`). Default: the
    /// parallel runs times the jobs per run.
    #[arg(long)]
    local_agent_jobs: Option<usize>,
    /// The local agent's work dir (default: beside the data dir; under
    /// /var/lib/launchway-agent when the server runs as root).
    #[arg(long)]
    agent_work_dir: Option<PathBuf>,
    /// When the server runs as root, the unprivileged user the local agent
    /// runs as (created as a system user when missing) [default: launchway-agent].
    #[arg(long)]
    agent_user: Option<String>,
    /// The local agent's labels [default: linux,x64,local].
    #[arg(long, value_delimiter = ',')]
    agent_labels: Option<Vec<String>>,
    /// A variable of the server's environment to pass to the local agent
    /// (repeatable; only PATH, the locale and proxies pass otherwise).
    #[arg(long = "agent-env", value_name = "NAME")]
    agent_env: Vec<String>,
    /// `runs-on` labels of hosted runners mapped to agent labels, e.g.
    /// `ubuntu-latest=linux,x64` (repeatable; `LABEL=` matches any agent).
    /// By default ubuntu-*, linux and self-hosted match any agent.
    #[arg(long = "runs-on-alias", value_name = "LABEL=LABELS")]
    runs_on_alias: Vec<String>,
    /// Seconds an agent may go silent before its job fails.
    #[arg(long, default_value_t = 30)]
    agent_lease_seconds: u64,
}

impl AgentOptions {
    /// Options for the local agent are refused when there is none, and
    /// `--agent-user` when there is no root to drop.
    fn check(&self, local_jobs: usize, as_root: bool) -> Result<(), String> {
        if local_jobs == 0 {
            for (given, name) in [
                (self.agent_work_dir.is_some(), "--agent-work-dir"),
                (self.agent_user.is_some(), "--agent-user"),
                (self.agent_labels.is_some(), "--agent-labels"),
                (!self.agent_env.is_empty(), "--agent-env"),
            ] {
                if given {
                    return Err(format!(
                        "{name} is for the local agent, and --local-agent-jobs 0 starts none"
                    ));
                }
            }
        }
        if self.agent_user.is_some() && !as_root {
            return Err("--agent-user needs the server to run as root (otherwise the local agent runs as this user, under Landlock)".into());
        }
        Ok(())
    }

    fn settings(&self) -> Result<launchway_server::agents::AgentSettings, String> {
        let mut s = launchway_server::agents::AgentSettings {
            lease: std::time::Duration::from_secs(self.agent_lease_seconds.max(2)),
            ..Default::default()
        };
        for a in &self.runs_on_alias {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("--runs-on-alias {a}: expected LABEL=LABELS"))?;
            let labels = v
                .split(',')
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect();
            s.aliases.insert(k.trim().to_ascii_lowercase(), labels);
        }
        Ok(s)
    }
}

/// Where the server's state lives; shared by `serve` and `admin`.
#[derive(clap::Args)]
pub struct DbOptions {
    /// Where the server keeps its database and files (default: the data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `postgres://USER:PASSWORD@HOST/DB` for a team server; SQLite in the
    /// data dir when absent.
    #[arg(long, env = "LAUNCHWAY_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// A file holding the master key (64 hex digits) that seals secrets at
    /// rest and signs the audit log; also LAUNCHWAY_MASTER_KEY. Without
    /// either, `serve` generates one at first start in the data dir
    /// (master.key, owner-only), where the other commands find it.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
}

impl DbOptions {
    /// Whether a database (or its key) was named at all.
    pub fn named(&self) -> bool {
        self.data_dir.is_some() || self.database.is_some() || self.master_key_file.is_some()
    }

    pub fn dir(&self, store: &launchway_runner::store::Store) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| store.home.clone())
    }

    pub async fn open(&self, store: &launchway_runner::store::Store) -> Result<Store, String> {
        let dir = self.dir(store);
        // Whatever this process creates from here on is its own only.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        if dir.exists() {
            let n = tighten(&dir);
            if n > 0 {
                eprintln!(
                    "{}: {n} file(s) or folder(s) others could read are now the owner's only (0600/0700)",
                    dir.display()
                );
            }
        } else {
            // Token digests and sealed secrets live here: owner only.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let url = match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", dir.join("server.db").display()),
        };
        let db = Store::open(&url)
            .await
            .map_err(|e| format!("{e} (database: {})", redact_password(&url)))?;
        // The audit log is signed with a key outside the database, when
        // there is one (serve makes it at first start).
        if let Some(key) = existing_master_key(self.master_key_file.as_deref(), &dir)? {
            anchor(&db, &key, &dir);
        }
        if self.database.is_none() {
            // SQLite gives its WAL and shared-memory files the database's mode.
            use std::os::unix::fs::PermissionsExt;
            let file = dir.join("server.db");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot restrict {}: {e}", file.display()))?;
        }
        Ok(db)
    }
}

/// Makes every folder under `dir` (itself included) 0700 and every file
/// 0600 where they were looser: token digests, sealed secrets, logs and
/// artifacts live there. Symbolic links are left alone. Returns how many
/// changed.
pub fn tighten(dir: &std::path::Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let mut changed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let want = if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
            0o700
        } else if meta.is_file() {
            0o600
        } else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0
            && std::fs::set_permissions(&p, std::fs::Permissions::from_mode(want)).is_ok()
        {
            changed += 1;
        }
    }
    changed
}

/// Runs `f` on a fresh runtime; errors are printed and become exit code 1.
pub fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(f) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

pub fn main(args: &ServeArgs, store: &launchway_runner::store::Store) -> u8 {
    block_on(run(args, store))
}

async fn run(args: &ServeArgs, store: &launchway_runner::store::Store) -> Result<(), String> {
    // Requests and runs, one line each, on standard error (LAUNCHWAY_LOG:
    // a filter such as `warn` or `launchway::request=off`; default info).
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAUNCHWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let jobs_per_run = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let local_jobs = args
        .agents
        .local_agent_jobs
        .unwrap_or(args.parallel_runs.max(1) * jobs_per_run.max(1));
    let as_root = nix::unistd::Uid::effective().is_root();
    args.agents.check(local_jobs, as_root)?;
    if let Some(url) = &args.db.database
        && std::env::var("LAUNCHWAY_DATABASE").ok().as_ref() != Some(url)
        && redact_password(url) != *url
    {
        eprintln!(
            "warning: --database holds a password, which every process on this machine can read in the server's command line; pass it in LAUNCHWAY_DATABASE instead"
        );
    }
    let db = args.db.open(store).await?;
    let dir = args.db.dir(store);
    let key = master_key(args.db.master_key_file.as_deref(), &dir)?;
    // Every audit entry from the first one on is signed.
    anchor(&db, &key, &dir);
    if let Some(token) = db.bootstrap_admin().await.map_err(|e| e.to_string())? {
        // A file only the server's user reads; a terminal sees the token,
        // a journal only where it is.
        let file = dir.join("admin-token");
        launchway_runner::private::write(&file, format!("{token}\n"))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("first start: created user 'admin' with this API token (shown only now):");
            eprintln!("  {token}");
        }
        eprintln!(
            "first start: created user 'admin'; its API token is in {} (0600; store it elsewhere and delete the file)",
            file.display()
        );
    }
    // The log's head in the server's log now and hourly: an operator (or
    // the journal) has a copy the database cannot rewrite.
    {
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(Some(e)) = db.audit_head().await {
                    eprintln!("audit head: entry {}, hash {}", e.seq, e.hash);
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
    if as_root {
        eprintln!(
            "warning: running as root; workflow steps still run as '{}' on the local agent, but the server itself needs no privileges: prefer a dedicated user",
            args.agents
                .agent_user
                .as_deref()
                .unwrap_or(crate::local_agent::DEFAULT_USER)
        );
    }
    // Every server of a database seals with the same key: refuse to start
    // with another one rather than fail on every secret later.
    let probe = key
        .seal("meta/key-check", b"launchway")
        .map_err(|e| e.to_string())?;
    let held = db
        .meta_init("key_check", &probe)
        .await
        .map_err(|e| e.to_string())?;
    if key.open("meta/key-check", &held).is_err() {
        return Err("this database's secrets are sealed with another master key: give every server of one database the same key (--master-key-file or LAUNCHWAY_MASTER_KEY)".into());
    }
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            data_dir: dir.join("server"),
            parallel_runs: args.parallel_runs.max(1),
            jobs_per_run,
            agents: args.agents.settings()?,
            run_lease: std::time::Duration::from_secs(args.run_lease_seconds.max(1)),
            instance: server_id(&dir)?,
            approval_timeout: std::time::Duration::from_secs(args.approval_timeout_seconds.max(1)),
        },
        key,
    );
    engine.start().await.map_err(|e| e.to_string())?;
    let data = engine.data_dir().to_path_buf();
    if args.poll_seconds > 0 {
        tokio::spawn(launchway_server::triggers::poll_loop(
            engine.clone(),
            db.clone(),
            data.clone(),
            std::time::Duration::from_secs(args.poll_seconds),
        ));
    }
    if args.retention_days > 0 {
        tokio::spawn(launchway_server::engine::retention_loop(
            db.clone(),
            args.retention_days,
        ));
    }
    tokio::spawn(launchway_server::triggers::schedule_loop(
        engine.clone(),
        db.clone(),
        data,
    ));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => {
            Some(launchway_server::api::tls::server_config(c, k).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("launchway server listening on {scheme}://{addr}");
    // With TLS, the local agent (whose certificate names the public host,
    // not 127.0.0.1) reaches the same API on a loopback port of its own.
    let (agent_listener, agent_addr) = if tls.is_some() && local_jobs > 0 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let a = l.local_addr().map_err(|e| e.to_string())?;
        (Some(l), a)
    } else {
        (None, addr)
    };
    // GitOps: one reconciler per repository with environments; replicas a
    // previous server left are adopted, and keep serving after shutdown.
    let envs = launchway_server::environments::Environments::new(
        engine.clone(),
        db.clone(),
        std::time::Duration::from_secs(args.reconcile_seconds.max(1)),
        std::env::current_exe().map_err(|e| format!("cannot find launchway itself: {e}"))?,
        args.prune_environments,
    );
    engine.set_deployer(std::sync::Arc::new(
        launchway_server::environments::ServerDeployer(envs.clone()),
    ));
    tokio::spawn(envs.clone().watch());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(db.clone(), engine.clone())
        .with_environments(envs)
        .with_auth_failure_limit(args.auth_failures_per_minute);
    let (stop_inner, inner_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(l) = agent_listener {
        tokio::spawn(api::serve(l, state.clone(), None, async {
            let _ = inner_stopped.await;
        }));
    }
    let http = tokio::spawn(api::serve(listener, state, tls, async move {
        let _ = http_stopped.await;
        let _ = stop_inner.send(());
    }));
    let local = if local_jobs > 0 {
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut deny = vec![abs(&dir)];
        if let Some(f) = &args.db.master_key_file {
            deny.push(abs(f));
        }
        let cfg = crate::local_agent::Config {
            server: format!("http://{agent_addr}"),
            // One name per server (its data dir), the same across restarts.
            name: crate::local_agent::name_for(&abs(&dir)),
            work_dir: args
                .agents
                .agent_work_dir
                .clone()
                .map(|p| abs(&p))
                .unwrap_or_else(|| crate::local_agent::default_work_dir(&abs(&dir), as_root)),
            max_jobs: local_jobs,
            labels: args
                .agents
                .agent_labels
                .clone()
                .unwrap_or_else(|| vec!["linux".into(), "x64".into(), "local".into()]),
            deny,
            user: as_root.then(|| {
                args.agents
                    .agent_user
                    .clone()
                    .unwrap_or_else(|| crate::local_agent::DEFAULT_USER.into())
            }),
            pass_env: args.agents.agent_env.clone(),
        };
        if cfg.deny.iter().any(|d| cfg.work_dir.starts_with(d)) {
            return Err(format!(
                "--agent-work-dir {} is inside the data dir, which the agent must not reach",
                cfg.work_dir.display()
            ));
        }
        Some(crate::local_agent::start(db.clone(), cfg, std::time::Duration::from_secs(60)).await?)
    } else {
        eprintln!(
            "no local agent: jobs wait for agents (`launchway agents token`, then `launchway agent`)"
        );
        None
    };
    shutdown().await;
    // Running jobs are cancelled as Ctrl-C would (their always() steps
    // run) while the API still answers their agents; then the agent goes,
    // then the API, whatever followers are attached.
    let left = engine.shutdown(std::time::Duration::from_secs(60)).await;
    if left > 0 {
        eprintln!("{left} run(s) did not end in time; they end as failed at the next start");
    }
    if let Some(l) = local {
        l.stop(std::time::Duration::from_secs(10)).await;
    }
    let _ = stop_http.send(());
    match tokio::time::timeout(std::time::Duration::from_secs(5), http).await {
        Ok(Ok(r)) => r.map_err(|e| e.to_string())?,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => eprintln!("closing the connections still open"),
    }
    eprintln!(
        "environments keep serving on their replicas; the next `launchway serve` adopts them"
    );
    Ok(())
}

/// This server's identity across restarts: `server.id` in the data dir,
/// created at first start.
fn server_id(dir: &std::path::Path) -> Result<String, String> {
    let path = dir.join("server.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id);
        }
    }
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    launchway_runner::private::write(&path, &id).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(id)
}

/// The master key: from `--master-key-file`, `LAUNCHWAY_MASTER_KEY`, or
/// the data dir's `master.key` (created owner-only at first start).
/// Signs `db`'s audit entries with `key` and keeps the checkpoint in `dir`.
pub fn anchor(db: &Store, key: &MasterKey, dir: &std::path::Path) {
    db.anchor_audit(launchway_server::audit::Anchor {
        key: key.audit_key(),
        checkpoint: Some(dir.join("audit.head")),
    });
}

/// The master key if one is given or kept in the data dir (never made).
fn existing_master_key(
    file: Option<&std::path::Path>,
    dir: &std::path::Path,
) -> Result<Option<MasterKey>, String> {
    if file.is_some()
        || std::env::var_os("LAUNCHWAY_MASTER_KEY").is_some()
        || dir.join("master.key").exists()
    {
        return master_key(file, dir).map(Some);
    }
    Ok(None)
}

fn master_key(file: Option<&std::path::Path>, dir: &std::path::Path) -> Result<MasterKey, String> {
    let bad = |what: &str, e: launchway_server::sealed::SealError| format!("{what}: {e}");
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        return MasterKey::from_hex(&text).map_err(|e| bad(&f.display().to_string(), e));
    }
    if let Ok(text) = std::env::var("LAUNCHWAY_MASTER_KEY") {
        return MasterKey::from_hex(&text).map_err(|e| bad("LAUNCHWAY_MASTER_KEY", e));
    }
    let path = dir.join("master.key");
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let hex = MasterKey::generate_hex().map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        writeln!(f, "{hex}").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!(
            "first start: generated the master key in {} (back it up; sealed secrets need it)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    MasterKey::from_hex(&text).map_err(|e| bad(&path.display().to_string(), e))
}

async fn shutdown() {
    shutdown_signal().await;
    eprintln!("shutting down");
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            super::redact_password("postgres://lw:s3cret@db:5432/lw"),
            "postgres://lw:***@db:5432/lw"
        );
        assert_eq!(super::redact_password("sqlite:///x.db"), "sqlite:///x.db");
    }
}
