//! Jobs in containers (`container:`) and service containers (`services:`),
//! through docker or podman on this machine.
//!
//! Per job instance: one network; services started first (named by their
//! id on that network, ports published to the host) and waited for when
//! they declare a health check; then the job container, kept alive with
//! `tail -f /dev/null`, into which every `run:` step is `exec`ed. The job's
//! directory is mounted at the same path inside, so the workspace, the
//! runner temp directory and the `GITHUB_*` command files have the same
//! paths in and out of the container. Everything is removed when the job
//! ends, whatever its result.

use indexmap::IndexMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// A container to start, with expressions already evaluated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    pub image: String,
    pub env: IndexMap<String, String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub options: Vec<String>,
    pub credentials: Option<(String, String)>,
}

/// A started container and what the `job` context says about it.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub name: String,
    pub id: String,
    /// Container port → host port.
    pub ports: IndexMap<String, String>,
}

/// The job container steps run in.
#[derive(Debug, Clone)]
pub(crate) struct InContainer {
    pub engine: &'static str,
    pub name: String,
    pub has_bash: bool,
    /// The image's own `PATH`, for `GITHUB_PATH` additions.
    pub path: String,
}

/// Everything one job instance started, for the `job` context and cleanup.
#[derive(Debug, Default)]
pub(crate) struct JobContainers {
    pub engine: &'static str,
    pub network: Option<String>,
    pub job: Option<Started>,
    pub services: Vec<(String, Started)>,
}

/// Splits `options:` the way a shell would (quotes, backslashes), as the
/// runner hands them to `docker create`.
pub(crate) fn split_options(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unterminated quote in options: {s}"));
    }
    if started {
        out.push(cur);
    }
    Ok(out)
}

/// Options Launchway sets itself and a workflow must not override.
pub(crate) fn check_options(options: &[String]) -> Result<(), String> {
    for o in options {
        let name = o.split('=').next().unwrap_or(o);
        if matches!(name, "--network" | "--net" | "--name" | "--entrypoint") {
            return Err(format!(
                "'{name}' cannot be set in options: Launchway sets it for the job"
            ));
        }
    }
    Ok(())
}

/// The registry an image is pulled from (for `credentials`).
pub(crate) fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => host,
        _ => "docker.io",
    }
}

/// A name containers and networks accept: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn object_name(parts: &[&str]) -> String {
    let mut s: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(120);
    format!("lw-{s}")
}

/// `8080/tcp -> 0.0.0.0:41234` lines (from `port NAME`) as container →
/// host ports.
pub(crate) fn parse_ports(text: &str) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    for line in text.lines() {
        let Some((inside, outside)) = line.split_once("->") else {
            continue;
        };
        let port = inside.trim().split('/').next().unwrap_or("").to_string();
        let host = outside.trim().rsplit(':').next().unwrap_or("").to_string();
        if !port.is_empty() && !host.is_empty() {
            out.entry(port).or_insert(host);
        }
    }
    out
}

/// The outcome of one engine command.
pub(crate) struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `engine args…`; `env` gives the values of `-e NAME` options (so
/// they never appear on a command line), `stdin` is written to its input.
pub(crate) async fn engine(
    program: &str,
    args: &[String],
    env: &IndexMap<String, String>,
    stdin: Option<&str>,
    timeout: Duration,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot start {program}: {e}"),
            };
        }
    };
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        let _ = input.write_all(text.as_bytes()).await;
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(o)) => Output {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Ok(Err(e)) => Output {
            ok: false,
            stdout: String::new(),
            stderr: e.to_string(),
        },
        Err(_) => Output {
            ok: false,
            stdout: String::new(),
            stderr: format!("{program} {} did not finish in {timeout:?}", args.join(" ")),
        },
    }
}

/// The first container engine whose daemon answers, if any. Probed once
/// per process (`info` takes a while); a miss is probed again next time.
pub(crate) async fn working_engine() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    if let Some(e) = FOUND.get() {
        return Some(e);
    }
    for program in ["docker", "podman"] {
        if crate::job::which(program).is_none() {
            continue;
        }
        let probe = engine(
            program,
            &["info".to_string()],
            &IndexMap::new(),
            None,
            Duration::from_secs(10),
        )
        .await;
        if probe.ok {
            return Some(FOUND.get_or_init(|| program));
        }
    }
    None
}

/// `run -d` arguments shared by services and the job container.
pub(crate) fn run_args(
    name: &str,
    network: &str,
    alias: &str,
    spec: &Spec,
    labels: &[(&str, &str)],
) -> Vec<String> {
    let mut a: Vec<String> = ["run", "-d", "--name", name, "--network", network]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push("--network-alias".into());
    a.push(alias.to_string());
    for (k, v) in labels {
        a.push("--label".into());
        a.push(format!("{k}={v}"));
    }
    for k in spec.env.keys() {
        a.push("-e".into());
        a.push(k.clone());
    }
    for p in &spec.ports {
        a.push("-p".into());
        a.push(p.clone());
    }
    for v in &spec.volumes {
        a.push("-v".into());
        a.push(v.clone());
    }
    a.extend(spec.options.iter().cloned());
    a
}

/// A command line as a user would type it, for the log.
pub(crate) fn display(program: &str, args: &[String]) -> String {
    let mut out = program.to_string();
    for a in args {
        out.push(' ');
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
        {
            out.push_str(a);
        } else {
            out.push('\'');
            out.push_str(&a.replace('\'', r"'\''"));
            out.push('\'');
        }
    }
    out
}

/// The value of `--name VALUE` or `--name=VALUE` in options.
fn option_value<'a>(options: &'a [String], name: &str) -> Option<&'a str> {
    let mut it = options.iter();
    while let Some(o) = it.next() {
        if o == name {
            return it.next().map(String::as_str);
        }
        if let Some(v) = o.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
    }
    None
}

/// A Go duration (`10s`, `1m30s`, `500ms`), as docker's options take them.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * factor;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// How long to wait for a service: its start period, then `retries`
/// failed checks in a row at `interval` (docker's defaults: 0s, 3, 30s;
/// checks here run at least every 2 seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Health {
    pub start_period: Duration,
    pub retries: u32,
    pub interval: Duration,
}

pub(crate) fn health(options: &[String]) -> Health {
    let d = |name: &str, default: Duration| {
        option_value(options, name)
            .and_then(parse_duration)
            .unwrap_or(default)
    };
    Health {
        start_period: d("--health-start-period", Duration::ZERO),
        retries: option_value(options, "--health-retries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3),
        interval: d("--health-interval", Duration::from_secs(30)).min(Duration::from_secs(2)),
    }
}

/// Whether `options` ask for a health check.
pub(crate) fn has_health_check(options: &[String]) -> bool {
    options
        .iter()
        .any(|o| o == "--health-cmd" || o.starts_with("--health-cmd="))
}

/// Waits until a service with a health check reports healthy. Podman runs
/// health checks from systemd timers, which a plain machine may not have,
/// so with podman the check is run here on each poll and failures after
/// the start period are counted against `--health-retries`.
pub(crate) async fn wait_healthy(
    program: &'static str,
    name: &str,
    h: Health,
    cancel: &crate::cancel::Cancel,
) -> Result<(), String> {
    let start = Instant::now();
    let none = IndexMap::new();
    let mut failures = 0u32;
    // A bound for engines whose daemon never settles the status.
    let deadline = h.start_period + h.interval * (h.retries + 1) + Duration::from_secs(300);
    loop {
        if cancel.is_cancelled() {
            return Err("cancelled while waiting for the service to be healthy".into());
        }
        let status = if program == "podman" {
            let o = engine(
                program,
                &["healthcheck".into(), "run".into(), name.into()],
                &none,
                None,
                Duration::from_secs(60),
            )
            .await;
            if o.ok {
                "healthy".to_string()
            } else if start.elapsed() < h.start_period {
                "starting".to_string()
            } else {
                failures += 1;
                if failures >= h.retries.max(1) {
                    "unhealthy".to_string()
                } else {
                    "starting".to_string()
                }
            }
        } else {
            engine(
                program,
                &[
                    "inspect".into(),
                    "--format".into(),
                    "{{if .State.Health}}{{.State.Health.Status}}{{end}}".into(),
                    name.into(),
                ],
                &none,
                None,
                Duration::from_secs(30),
            )
            .await
            .stdout
            .trim()
            .to_string()
        };
        match status.as_str() {
            "healthy" | "" => return Ok(()),
            "unhealthy" => return Err("its health check reports unhealthy".into()),
            _ => {}
        }
        let running = engine(
            program,
            &[
                "inspect".into(),
                "--format".into(),
                "{{.State.Running}}".into(),
                name.into(),
            ],
            &none,
            None,
            Duration::from_secs(30),
        )
        .await;
        if running.stdout.trim() == "false" {
            return Err("it exited before it was healthy".into());
        }
        if start.elapsed() > deadline {
            return Err(format!("it was not healthy after {}s", deadline.as_secs()));
        }
        tokio::time::sleep(h.interval.max(Duration::from_millis(200))).await;
    }
}

/// Removes what a job started: containers first, then its network.
pub(crate) async fn remove(c: &JobContainers) -> Vec<String> {
    let mut problems = Vec::new();
    let none = IndexMap::new();
    let mut names: Vec<String> = c.services.iter().map(|(_, s)| s.name.clone()).collect();
    if let Some(j) = &c.job {
        names.push(j.name.clone());
    }
    if !names.is_empty() {
        let mut args = vec!["rm".to_string(), "-f".to_string()];
        if c.engine == "podman" {
            // No grace period: the job is over.
            args.push("-t".into());
            args.push("0".into());
        }
        args.extend(names);
        let o = engine(c.engine, &args, &none, None, Duration::from_secs(120)).await;
        if !o.ok {
            problems.push(o.stderr.trim().to_string());
        }
    }
    if let Some(n) = &c.network {
        let o = engine(
            c.engine,
            &["network".into(), "rm".into(), n.clone()],
            &none,
            None,
            Duration::from_secs(60),
        )
        .await;
        if !o.ok {
            problems.push(o.stderr.trim().to_string());
        }
    }
    problems
}

/// When the engine failed to fetch an image: how to provide it offline.
fn pull_hint(stderr: &str) -> &'static str {
    let s = stderr.to_ascii_lowercase();
    if s.contains("pull") || s.contains("registry") || s.contains("manifest unknown") {
        "\nhint: the image is not on this machine and its registry cannot be reached; \
         load it first (`docker load` / `podman load` from a saved archive, or a pull where a \
         registry is reachable)"
    } else {
        ""
    }
}

/// Evaluates a `container:`/`services:` entry with the job's contexts.
fn evaluate(exec: &crate::job::JobExec, c: &launchway_workflow::Container) -> Result<Spec, String> {
    use launchway_expr::interpolate;
    let ctx = &exec.ctx;
    let mut spec = Spec {
        image: interpolate(&c.image.value, ctx).map_err(|e| format!("image: {e}"))?,
        env: exec.eval_map(&c.env, ctx)?,
        ..Spec::default()
    };
    for p in &c.ports {
        spec.ports
            .push(interpolate(&p.value, ctx).map_err(|e| format!("ports: {e}"))?);
    }
    for v in &c.volumes {
        spec.volumes
            .push(interpolate(&v.value, ctx).map_err(|e| format!("volumes: {e}"))?);
    }
    if let Some(o) = &c.options {
        spec.options =
            split_options(&interpolate(&o.value, ctx).map_err(|e| format!("options: {e}"))?)?;
        check_options(&spec.options)?;
    }
    if let Some((u, p)) = &c.credentials {
        spec.credentials = Some((
            interpolate(&u.value, ctx).map_err(|e| format!("credentials: {e}"))?,
            interpolate(&p.value, ctx).map_err(|e| format!("credentials: {e}"))?,
        ));
    }
    Ok(spec)
}

/// Logs in to an image's registry when the workflow gives credentials.
async fn login(
    exec: &mut crate::job::JobExec,
    program: &'static str,
    spec: &Spec,
) -> Result<(), String> {
    let Some((user, pass)) = &spec.credentials else {
        return Ok(());
    };
    exec.shared.masker.add(pass);
    let registry = registry_of(&spec.image).to_string();
    exec.log(&format!(
        "##[command]{program} login --username {user} --password-stdin {registry}"
    ));
    let o = engine(
        program,
        &[
            "login".into(),
            "--username".into(),
            user.clone(),
            "--password-stdin".into(),
            registry.clone(),
        ],
        &IndexMap::new(),
        Some(pass),
        Duration::from_secs(120),
    )
    .await;
    if o.ok {
        Ok(())
    } else {
        Err(format!("login to {registry} failed: {}", o.stderr.trim()))
    }
}

/// Starts a job's services and container. On failure the error says what
/// failed; whatever did start is in `out`, to be removed.
pub(crate) async fn start(
    exec: &mut crate::job::JobExec,
    job: &launchway_workflow::Job,
    out: &mut JobContainers,
) -> Result<(), String> {
    use launchway_expr::Value;
    let job_spec = match &job.container {
        Some(c) => {
            let s = evaluate(exec, c).map_err(|e| format!("container: {e}"))?;
            // An empty image (e.g. from a matrix) means: run on the host.
            (!s.image.trim().is_empty()).then_some(s)
        }
        None => None,
    };
    let mut services = Vec::new();
    for (id, c) in &job.services {
        let s = evaluate(exec, c).map_err(|e| format!("services.{id}: {e}"))?;
        if !s.image.trim().is_empty() {
            services.push((id.clone(), s));
        }
    }
    if job_spec.is_none() && services.is_empty() {
        return Ok(());
    }
    let Some(program) = working_engine().await else {
        return Err(format!(
            "job '{}' uses {}, which needs a container engine (docker or podman) that answers on this machine; none was found",
            job.id,
            if job_spec.is_some() {
                "'container:'"
            } else {
                "'services:'"
            }
        ));
    };
    out.engine = program;
    let run = exec.shared.run_id.to_string();
    let pid = std::process::id().to_string();
    let key = exec.key.clone();
    let network = object_name(&[&pid, &run, &key]);
    exec.log(&format!("##[command]{program} network create {network}"));
    let o = engine(
        program,
        &["network".into(), "create".into(), network.clone()],
        &IndexMap::new(),
        None,
        Duration::from_secs(60),
    )
    .await;
    if !o.ok {
        return Err(format!(
            "cannot create network {network}: {}",
            o.stderr.trim()
        ));
    }
    out.network = Some(network.clone());
    let labels = [
        ("launchway.run", run.as_str()),
        ("launchway.job", key.as_str()),
    ];
    let mut services_ctx = Value::object();
    for (id, spec) in &services {
        login(exec, program, spec).await?;
        let name = object_name(&[&pid, &run, &key, id]);
        let mut args = run_args(&name, &network, id, spec, &labels);
        args.push(spec.image.clone());
        exec.log(&format!("##[command]{}", display(program, &args)));
        let o = engine(program, &args, &spec.env, None, Duration::from_secs(600)).await;
        if !o.ok {
            return Err(format!(
                "service '{id}' ({}) did not start: {}{}",
                spec.image,
                o.stderr.trim(),
                pull_hint(&o.stderr)
            ));
        }
        let started = Started {
            id: o.stdout.trim().to_string(),
            ports: IndexMap::new(),
            name: name.clone(),
        };
        out.services.push((id.clone(), started));
        if has_health_check(&spec.options) {
            exec.log(&format!("Waiting for service '{id}' to be healthy…"));
            let cancel = exec.cancel.clone();
            if let Err(e) = wait_healthy(program, &name, health(&spec.options), &cancel).await {
                let logs = engine(
                    program,
                    &["logs".into(), "--tail".into(), "50".into(), name.clone()],
                    &IndexMap::new(),
                    None,
                    Duration::from_secs(30),
                )
                .await;
                for line in logs.stdout.lines().chain(logs.stderr.lines()) {
                    exec.log(&format!("[{id}] {line}"));
                }
                return Err(format!("service '{id}': {e}"));
            }
            exec.log(&format!("Service '{id}' is healthy."));
        }
        let ports = engine(
            program,
            &["port".into(), name.clone()],
            &IndexMap::new(),
            None,
            Duration::from_secs(30),
        )
        .await;
        let ports = parse_ports(&ports.stdout);
        let mut entry = Value::object();
        entry.insert(
            "id",
            Value::str(out.services.last().map_or("", |s| s.1.id.as_str())),
        );
        entry.insert("network", Value::str(&network));
        let mut pv = Value::object();
        for (k, v) in &ports {
            pv.insert(k, Value::str(v));
        }
        entry.insert("ports", pv);
        services_ctx.insert(id, entry);
        if let Some(s) = out.services.last_mut() {
            s.1.ports = ports;
        }
    }
    let mut container_ctx = Value::object();
    if let Some(spec) = &job_spec {
        login(exec, program, spec).await?;
        let name = object_name(&[&pid, &run, &key, "job"]);
        let mut args = run_args(&name, &network, &job.id, spec, &labels);
        // The job's directory at the same path inside: workspace, temp
        // files and GITHUB_* command files need no translation.
        let dir = exec.job_dir.to_string_lossy().to_string();
        args.extend([
            "-v".into(),
            format!("{dir}:{dir}"),
            "-w".into(),
            exec.workspace.to_string_lossy().to_string(),
            "--entrypoint".into(),
            "tail".into(),
            spec.image.clone(),
            "-f".into(),
            "/dev/null".into(),
        ]);
        exec.log(&format!("##[command]{}", display(program, &args)));
        let o = engine(program, &args, &spec.env, None, Duration::from_secs(600)).await;
        if !o.ok {
            return Err(format!(
                "the job container ({}) did not start: {}{}",
                spec.image,
                o.stderr.trim(),
                pull_hint(&o.stderr)
            ));
        }
        let id = o.stdout.trim().to_string();
        out.job = Some(Started {
            name: name.clone(),
            id: id.clone(),
            ports: IndexMap::new(),
        });
        let probe = engine(
            program,
            &[
                "exec".into(),
                name.clone(),
                "sh".into(),
                "-c".into(),
                "command -v bash >/dev/null 2>&1 && echo bash; echo \"PATH=$PATH\"".into(),
            ],
            &IndexMap::new(),
            None,
            Duration::from_secs(60),
        )
        .await;
        let has_bash = probe.stdout.lines().any(|l| l == "bash");
        let path = probe
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("PATH="))
            .filter(|p| !p.is_empty())
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        exec.container = Some(InContainer {
            engine: program,
            name,
            has_bash,
            path,
        });
        container_ctx.insert("id", Value::str(&id));
        container_ctx.insert("network", Value::str(&network));
    }
    if let Some(j) = exec
        .ctx
        .contexts
        .as_object_mut()
        .and_then(|c| c.get_mut("job"))
    {
        j.insert("container", container_ctx);
        j.insert("services", services_ctx);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_like_a_shell() {
        assert_eq!(
            split_options(
                r#"--health-cmd "pg_isready -U postgres" --health-interval 10s -e A='x y' --cpus=1"#
            )
            .unwrap(),
            [
                "--health-cmd",
                "pg_isready -U postgres",
                "--health-interval",
                "10s",
                "-e",
                "A=x y",
                "--cpus=1"
            ]
        );
        assert_eq!(split_options("  ").unwrap(), Vec::<String>::new());
        assert_eq!(
            split_options(r#"a\ b "c\"d" ''"#).unwrap(),
            ["a b", "c\"d", ""]
        );
        assert!(split_options("--x 'open").is_err());
        assert!(check_options(&["--network=host".into()]).is_err());
        assert!(check_options(&["--cpus".into(), "1".into()]).is_ok());
    }

    #[test]
    fn durations_and_health_options() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
        let h = health(&split_options("--health-cmd true --health-retries=5 --health-start-period 3s --health-interval 1s").unwrap());
        assert_eq!(
            h,
            Health {
                start_period: Duration::from_secs(3),
                retries: 5,
                interval: Duration::from_secs(1)
            }
        );
        assert_eq!(health(&[]).retries, 3);
        assert_eq!(health(&[]).interval, Duration::from_secs(2));
        assert_eq!(
            display(
                "podman",
                &[
                    "run".into(),
                    "--health-cmd".into(),
                    "pg_isready -U x".into(),
                    "it's".into()
                ]
            ),
            r"podman run --health-cmd 'pg_isready -U x' 'it'\''s'"
        );
    }

    #[test]
    fn ports_registries_and_names() {
        let p = parse_ports(
            "8080/tcp -> 0.0.0.0:41234\n8080/tcp -> [::]:41234\n53/udp -> 0.0.0.0:5353\n",
        );
        assert_eq!(p.get("8080").map(String::as_str), Some("41234"));
        assert_eq!(p.get("53").map(String::as_str), Some("5353"));
        assert_eq!(registry_of("ghcr.io/org/img:1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/img"), "localhost:5000");
        assert_eq!(registry_of("postgres:16"), "docker.io");
        assert_eq!(registry_of("library/postgres"), "docker.io");
        assert_eq!(object_name(&["7", "build (a, b)"]), "lw-7-build__a__b_");
        assert!(has_health_check(&["--health-cmd=true".into()]));
    }
}
