//! The embedded default target: an environment's release as supervised
//! local processes behind the built-in proxy.
//!
//! A release is a commit of the repository, exported once under the data
//! dir (its `run.setup` runs once per release). Replicas are started on
//! free ports with the environment's configuration as variables, checked
//! over HTTP, and only then put behind the environment's stable address;
//! the previous replicas drain and stop. A replica that exits is restarted
//! with backoff; too many restarts in a row mark the environment Degraded.
//! A release whose replicas never become healthy is not switched to: the
//! old one keeps serving and the reason is reported.

use crate::config::Environment;
use crate::dataplane::DataPlane;
use launchway_proxy::plane::{BackendSpec, Request};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

mod rollout;
pub use rollout::{
    Command as RolloutCommand, RolloutStatus, is_live as rollout_is_live,
    read_status as read_rollout,
};

/// What the data plane should route to: the serving replicas of what
/// runs and, during a canary, the canary's at its weight — exact over
/// each cycle whatever the replica counts (stable replicas weigh
/// `(100 - w) × canaries`, canaries `w × stables`).
fn routes_of(s: &State) -> (Vec<BackendSpec>, Option<String>, launchway_proxy::Policy) {
    let spec = |r: &Replica, weight: u32, label: &str| BackendSpec {
        addr: SocketAddr::from(([127, 0, 0, 1], r.port)),
        weight,
        revision: label.to_string(),
    };
    let stable_label = s.desired.as_ref().map(label).unwrap_or_default();
    let stable: Vec<&Replica> = s.replicas.iter().filter(|r| r.serving).collect();
    let Some(c) = &s.canary else {
        return (
            stable.iter().map(|r| spec(r, 1, &stable_label)).collect(),
            None,
            launchway_proxy::Policy::default(),
        );
    };
    let canary_label = label(&c.desired);
    let canaries: Vec<&Replica> = c.replicas.iter().filter(|r| r.serving).collect();
    let (n, m) = (
        u32::try_from(stable.len()).unwrap_or(u32::MAX),
        u32::try_from(canaries.len()).unwrap_or(u32::MAX),
    );
    let specs = if m == 0 || c.weight == 0 {
        stable.iter().map(|r| spec(r, 1, &stable_label)).collect()
    } else if n == 0 || c.weight >= 100 {
        canaries.iter().map(|r| spec(r, 1, &canary_label)).collect()
    } else {
        stable
            .iter()
            .map(|r| spec(r, (100 - c.weight) * m, &stable_label))
            .chain(
                canaries
                    .iter()
                    .map(|r| spec(r, c.weight * n, &canary_label)),
            )
            .collect()
    };
    (specs, Some(canary_label), c.policy.clone())
}

/// A revision's label in routes and metrics: its release and a digest of
/// everything else it runs with (a configuration change is a revision too).
fn label(d: &Desired) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(d).unwrap_or_default());
    format!(
        "{}-{:02x}{:02x}{:02x}",
        &d.release[..d.release.len().min(12)],
        digest[0],
        digest[1],
        digest[2]
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Progressing,
    Healthy,
    Degraded,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Progressing => "Progressing",
            Health::Healthy => "Healthy",
            Health::Degraded => "Degraded",
        }
    }
}

/// What an environment runs and how it is doing.
#[derive(Debug, Clone)]
pub struct Status {
    pub health: Health,
    pub release: Option<String>,
    pub replicas: usize,
    pub message: String,
}

/// The inputs that make two deployments the same. Saved with the state
/// (secrets only as a digest) so a restarted server knows whether the
/// processes it finds still match git.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Desired {
    release: String,
    /// With an image: the command run in the container (empty: the
    /// image's own).
    command: String,
    /// A container image to run instead of the release's files (a
    /// digest-pinned reference as deploy commits write it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    /// The port the service listens on inside the container.
    #[serde(default)]
    container_port: u16,
    setup: Option<String>,
    replicas: u32,
    health_path: String,
    env: BTreeMap<String, String>,
    secrets_digest: String,
}

struct Replica {
    port: u16,
    child: Option<Child>,
    /// The process group it leads (kept after the child is reaped).
    pgid: Option<u32>,
    /// For a process adopted from an earlier server (not our child): its
    /// start time, which tells it apart from a recycled process id.
    adopted: Option<u64>,
    restarts: Vec<Instant>,
    /// In the data plane's route (running and answered its check).
    serving: bool,
}

impl Replica {
    fn running(&mut self) -> bool {
        match (&mut self.child, self.pgid, self.adopted) {
            (Some(c), _, _) => matches!(c.try_wait(), Ok(None)),
            (None, Some(pid), Some(start)) => start_time(pid) == Some(start),
            _ => false,
        }
    }
}

/// A process's start time (clock ticks since boot), from `/proc`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after ')'; field 22 (starttime) the 20th.
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A process's environment, from `/proc` (only our own user's processes).
fn process_env(pid: u32) -> BTreeMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Signals a replica's whole process group (directly: the `kill`
/// program reads a small group id such as `-19` as a signal number).
fn signal_group(pgid: Option<u32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pgid.filter(|p| *p > 1).and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

struct State {
    desired: Option<Desired>,
    replicas: Vec<Replica>,
    status: Status,
    /// Where the release in service was exported.
    release_dir: Option<PathBuf>,
    /// Replicas of the previous release being drained (process id, start
    /// time): saved so a successor stops them if we die meanwhile.
    retiring: Vec<(u32, u64)>,
    /// Replicas of a release being started and not yet proven healthy:
    /// saved before they run so a successor stops them if we die.
    starting: Vec<(u32, u64)>,
    /// A canary of the next release, taking `weight` percent.
    canary: Option<rollout::CanarySet>,
    /// After a blue-green switch: the previous release, kept warm.
    warm: Option<rollout::Warm>,
}

/// One environment on this machine.
pub struct LocalEnvironment {
    name: String,
    repo: PathBuf,
    data: PathBuf,
    /// Holds the stable address and routes (another process).
    plane: Arc<DataPlane>,
    address: Mutex<SocketAddr>,
    /// What the data plane was last told to route, and to which of its
    /// processes (a new one is told again).
    routed: Mutex<(
        u64,
        Vec<BackendSpec>,
        Option<String>,
        launchway_proxy::Policy,
    )>,
    /// Held while a route is computed and sent: the later sender always
    /// sends the later state (a rollout's switch is never undone by a
    /// supervision tick that read the state before it).
    routing: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    secrets: Mutex<BTreeMap<String, String>>,
    /// Restart replicas that exit (self-heal); off, an exit is drift
    /// that waits for the next sync.
    heal: std::sync::atomic::AtomicBool,
    /// The built-in model registry: a pinned model version found there
    /// reaches the service as `MODEL_PATH`.
    registry: Mutex<Option<PathBuf>>,
    /// Set once this process lets go of the environment: supervision ends.
    closed: std::sync::atomic::AtomicBool,
    /// Its file has `protection:` rules (saved, for the prune guard of a
    /// successor that finds the file gone).
    protected: std::sync::atomic::AtomicBool,
    /// The progressive rollout in progress or last finished.
    rollout: Mutex<Option<rollout::RolloutStatus>>,
    /// `rollout promote|abort` waiting for the rollout to read them.
    control: Mutex<Vec<rollout::Command>>,
    /// Why the last rollout was aborted and what its strategy asks for
    /// next (for the reconciler: a revert commit, or hold).
    last_abort: Mutex<Option<(String, crate::config::strategy::OnFailure)>>,
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// GET `path` on a local port; `true` on a 2xx.
pub async fn healthy(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
        Ok(Ok(n)) if n >= 12 && buf.starts_with(b"HTTP/1.") && buf[9] == b'2'
    )
}

impl LocalEnvironment {
    /// An environment whose stable address is `listen` (port 0: any),
    /// held by the data plane `plane` (the same address when the data
    /// plane already holds one for it).
    pub async fn start(
        name: &str,
        repo: &Path,
        data: &Path,
        listen: &str,
        secrets: BTreeMap<String, String>,
        plane: Arc<DataPlane>,
    ) -> Result<Arc<LocalEnvironment>, String> {
        let address = open(&plane, name, listen).await?;
        let env = Arc::new(LocalEnvironment {
            name: name.to_string(),
            repo: repo.to_path_buf(),
            data: data.to_path_buf(),
            routed: Mutex::new((
                plane.generation(),
                Vec::new(),
                None,
                launchway_proxy::Policy::default(),
            )),
            rollout: Mutex::new(None),
            control: Mutex::new(Vec::new()),
            last_abort: Mutex::new(None),
            routing: tokio::sync::Mutex::new(()),
            plane,
            address: Mutex::new(address),
            secrets: Mutex::new(secrets),
            heal: std::sync::atomic::AtomicBool::new(true),
            registry: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
            protected: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                desired: None,
                replicas: Vec::new(),
                status: Status {
                    health: Health::Progressing,
                    release: None,
                    replicas: 0,
                    message: "nothing deployed yet".into(),
                },
                release_dir: None,
                retiring: Vec::new(),
                starting: Vec::new(),
                canary: None,
                warm: None,
            }),
        });
        let watch = env.clone();
        tokio::spawn(async move { watch.supervise().await });
        Ok(env)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
            .lock()
            .map(|a| *a)
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// `name@version` of the model the deployed release serves.
    pub fn deployed_model(&self) -> Option<String> {
        let s = self.state.lock().ok()?;
        let d = s.desired.as_ref()?;
        Some(format!(
            "{}@{}",
            d.env.get("MODEL_NAME")?,
            d.env.get("MODEL_VERSION")?
        ))
    }

    /// How many replicas the data plane was told to route to.
    pub fn in_rotation(&self) -> usize {
        self.routed.lock().map(|r| r.1.len()).unwrap_or(0)
    }

    /// Tells the data plane to route to the serving replicas (when that
    /// differs from what it was told, or it is a new data plane).
    async fn route(&self) -> Result<(), String> {
        let _one_at_a_time = self.routing.lock().await;
        let (specs, canary_label, policy) = match self.state.lock() {
            Ok(s) => routes_of(&s),
            Err(_) => return Err("state unavailable".into()),
        };
        self.plane.ensure().await?;
        let generation = self.plane.generation();
        let same = self
            .routed
            .lock()
            .map(|r| r.0 == generation && r.1 == specs && r.2 == canary_label && r.3 == policy)
            .unwrap_or(false);
        if same {
            return Ok(());
        }
        let known = self.routed.lock().map(|r| r.0).unwrap_or(0);
        if known != generation {
            // A new data plane: the address first (the same one if free).
            let a = match open(&self.plane, &self.name, &self.address().to_string()).await {
                Ok(a) => a,
                Err(_) => open(&self.plane, &self.name, "127.0.0.1:0").await?,
            };
            if let Ok(mut addr) = self.address.lock() {
                *addr = a;
            }
        }
        self.plane
            .call(&Request::Route {
                environment: self.name.clone(),
                backends: specs.clone(),
                canary: canary_label.clone(),
                policy: policy.clone(),
            })
            .await?;
        if let Ok(mut r) = self.routed.lock() {
            *r = (generation, specs, canary_label, policy);
        }
        Ok(())
    }

    pub fn status(&self) -> Status {
        self.state
            .lock()
            .map(|s| s.status.clone())
            .unwrap_or(Status {
                health: Health::Degraded,
                release: None,
                replicas: 0,
                message: "state unavailable".into(),
            })
    }

    fn log_dir(&self) -> PathBuf {
        self.data.join("logs").join(&self.name)
    }

    /// The release's files, exported once; its setup run once.
    async fn prepare(&self, d: &Desired) -> Result<PathBuf, String> {
        let sha = crate::gitops::git(
            &self.repo,
            &[
                "rev-parse",
                "--verify",
                &format!("{}^{{commit}}", d.release),
            ],
            &Default::default(),
        )
        .map_err(|_| {
            format!(
                "release '{}' is not a commit of {}",
                d.release,
                self.repo.display()
            )
        })?;
        let dir = self.data.join("releases").join(&sha);
        if !dir.join(".launchway-exported").exists() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let archive = std::process::Command::new("sh")
                .arg("-c")
                .arg("git -C \"$0\" archive \"$1\" | tar -x -C \"$2\"")
                .arg(&self.repo)
                .arg(&sha)
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?;
            if !archive.success() {
                return Err(format!("cannot export release {sha}"));
            }
            std::fs::write(dir.join(".launchway-exported"), "").map_err(|e| e.to_string())?;
        }
        if let Some(setup) = &d.setup {
            let marker = dir.join(".launchway-setup-done");
            if !marker.exists() {
                std::fs::create_dir_all(self.log_dir()).map_err(|e| e.to_string())?;
                let log = std::fs::File::create(self.log_dir().join("setup.log"))
                    .map_err(|e| e.to_string())?;
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(setup)
                    .current_dir(&dir)
                    .env_clear()
                    .envs(inherited_env())
                    .envs(&d.env)
                    .stdout(log.try_clone().map_err(|e| e.to_string())?)
                    .stderr(log)
                    .status()
                    .await
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!(
                        "the release's setup failed ({status}); see {}",
                        self.log_dir().join("setup.log").display()
                    ));
                }
                std::fs::write(&marker, "").map_err(|e| e.to_string())?;
            }
        }
        Ok(dir)
    }

    fn spawn(&self, d: &Desired, dir: &Path, port: u16, index: usize) -> Result<Child, String> {
        std::fs::create_dir_all(self.log_dir()).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir().join(format!("replica-{index}.log")))
            .map_err(|e| e.to_string())?;
        let mut cmd = match &d.image {
            Some(image) => self.container(d, image, port)?,
            None => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&d.command);
                c
            }
        };
        cmd.current_dir(dir)
            .env_clear()
            .envs(inherited_env())
            .envs(&d.env)
            .envs(self.secrets.lock().map(|s| s.clone()).unwrap_or_default())
            .env(
                "PORT",
                if d.image.is_some() {
                    d.container_port
                } else {
                    port
                }
                .to_string(),
            )
            .env("LAUNCHWAY_ENVIRONMENT", &self.name)
            .env("LAUNCHWAY_RELEASE", &d.release)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match &d.image {
                Some(i) => format!("cannot start a container of {i}: {e}"),
                None => format!("cannot start '{}': {e}", d.command),
            })
    }

    /// A replica as a container in the foreground: the engine's client is
    /// the replica's process (signals reach the container through it;
    /// `--rm` removes it when it stops). The service's port is published
    /// on loopback at `port`; variables are passed by name, so their values
    /// (secrets) never appear on a command line.
    fn container(&self, d: &Desired, image: &str, port: u16) -> Result<Command, String> {
        let engine = container_engine()
            .ok_or("running an image needs podman (Debian package 'podman') or docker")?;
        let mut c = Command::new(engine);
        c.args(["run", "--rm", "--stop-timeout", "4"]);
        // A container its killed client left under this name goes first.
        if engine == "podman" {
            c.arg("--replace");
        }
        c.arg("--name")
            .arg(format!("launchway-{}-{port}", self.name))
            .arg("-p")
            .arg(format!("127.0.0.1:{port}:{}", d.container_port));
        let mut names: Vec<String> = d.env.keys().cloned().collect();
        names.extend(
            self.secrets
                .lock()
                .map(|s| s.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        names.extend(["PORT", "LAUNCHWAY_ENVIRONMENT", "LAUNCHWAY_RELEASE"].map(String::from));
        names.sort();
        names.dedup();
        for n in names {
            c.arg("--env").arg(n);
        }
        // Mirrors of .launchway/registries.yaml apply to pulls here too.
        if let Ok(regs) = launchway_oci::mirrors::Registries::load(&self.repo)
            && !regs.mirrors.is_empty()
        {
            let conf = self.data.join("registries.conf");
            std::fs::write(&conf, regs.registries_conf())
                .map_err(|e| format!("{}: {e}", conf.display()))?;
            c.env("CONTAINERS_REGISTRIES_CONF", conf);
        }
        c.arg(image);
        if !d.command.is_empty() {
            c.args(["sh", "-c", &d.command]);
        }
        Ok(c)
    }

    /// Brings the environment to `env`'s desired state. Returns once the
    /// new replicas serve (or the attempt failed, the old still serving).
    pub async fn apply(
        self: &Arc<Self>,
        env: &Environment,
        timeout: Duration,
    ) -> Result<Status, String> {
        let desired = self.desired_of(env)?;
        let (same, serving) = self
            .state
            .lock()
            .map(|s| {
                (
                    s.desired.as_ref() == Some(&desired),
                    s.desired.is_some() && s.replicas.iter().any(|r| r.serving),
                )
            })
            .unwrap_or((false, false));
        if same {
            self.settle();
            return Ok(self.status());
        }
        // A new rollout closes a warm window still open (the reconciler
        // runs a resumed one to its end first; this is the backstop).
        if self.has_warm_window() {
            self.end_warm_window().await;
        }
        match &env.strategy {
            // A canary needs something stable to compare with; the first
            // release (or one after an outage) goes all at once.
            crate::config::strategy::Strategy::Canary(c) if serving && desired.replicas > 0 => {
                self.roll_out_canary(desired, c, &env.analysis_templates, timeout)
                    .await
            }
            crate::config::strategy::Strategy::BlueGreen(b) if serving && desired.replicas > 0 => {
                self.roll_out_blue_green(desired, b, &env.analysis_templates, timeout)
                    .await
            }
            _ => self.roll_out(desired, timeout).await,
        }
    }

    /// Git asks for what already runs: a failure reported earlier is
    /// history now.
    pub fn settle(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.status.message.starts_with("last deployment failed")
            && let Some(release) = s.desired.as_ref().map(|d| d.release.clone())
        {
            s.status.message = format!("serving {release}");
            if s.replicas.iter().all(|r| r.serving) {
                s.status.health = Health::Healthy;
            }
        }
    }

    /// What `env` asks this machine to run.
    fn desired_of(&self, env: &Environment) -> Result<Desired, String> {
        // An image runs its own command unless run.command says another.
        let command = match (&env.image, env.run.command.clone()) {
            (_, Some(c)) => c,
            (Some(_), None) => String::new(),
            (None, None) => {
                return Err(format!(
                    "environment '{}' has no run.command and no image: nothing to start",
                    env.name
                ));
            }
        };
        if env.image.is_some() && container_engine().is_none() {
            return Err(format!(
                "environment '{}' runs an image: install podman (Debian package 'podman') or docker",
                env.name
            ));
        }
        let release = env.release.clone().ok_or_else(|| {
            format!(
                "environment '{}' has no release (launchway deploy {} --release REV)",
                env.name, env.name
            )
        })?;
        // What runs is a commit: a tag or branch written by hand is
        // resolved now, so one that moves is a change (and is redeployed).
        let release = crate::gitops::git(
            &self.repo,
            &[
                "rev-parse",
                "--verify",
                "--end-of-options",
                &format!("{release}^{{commit}}"),
            ],
            &Default::default(),
        )
        .map_err(|_| {
            format!(
                "release '{release}' is not a commit of {}",
                self.repo.display()
            )
        })?;
        // The pinned model must be the one that serves: a version the
        // registry lacks would leave MODEL_PATH unset.
        let registry = self.registry.lock().ok().and_then(|r| r.clone());
        crate::models::check_pinned(
            registry
                .as_deref()
                .map(crate::models::Registry::new)
                .as_ref(),
            env,
        )?;
        let desired = Desired {
            release,
            command,
            image: env.image.clone(),
            container_port: env.run.port,
            // An image is built beforehand: nothing to set up here.
            setup: env.run.setup.clone().filter(|_| env.image.is_none()),
            replicas: env.replicas,
            health_path: env.run.health_path.clone(),
            env: self.service_env(env),
            secrets_digest: self.secrets_digest(),
        };
        Ok(desired)
    }

    /// The configuration variables, plus `MODEL_PATH` when the pinned
    /// model version is in the built-in registry.
    fn service_env(&self, env: &Environment) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = env
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let registry = self.registry.lock().ok().and_then(|r| r.clone());
        if let (Some(dir), Some(name), Some(version)) = (
            registry,
            env.config.get("MODEL_NAME"),
            env.config
                .get("MODEL_VERSION")
                .and_then(|v| v.parse::<u64>().ok()),
        ) && let Some(path) = crate::models::Registry::new(&dir).file(name, version)
        {
            out.insert("MODEL_PATH".into(), path.to_string_lossy().into_owned());
        }
        out
    }

    /// Where the built-in model registry is.
    pub fn set_registry(&self, dir: Option<PathBuf>) {
        if let Ok(mut r) = self.registry.lock() {
            *r = dir;
        }
    }

    fn secrets_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        if let Ok(s) = self.secrets.lock() {
            for (k, v) in s.iter() {
                h.update(k.as_bytes());
                h.update([0]);
                h.update(v.as_bytes());
                h.update([0]);
            }
        }
        format!("{:x}", h.finalize())
    }

    /// The environment's secrets (a change redeploys at the next apply).
    pub fn set_secrets(&self, secrets: BTreeMap<String, String>) {
        if let Ok(mut s) = self.secrets.lock() {
            *s = secrets;
        }
    }

    /// Whether the environment is protected (kept in the state file).
    pub fn set_protected(&self, on: bool) {
        let was = self
            .protected
            .swap(on, std::sync::atomic::Ordering::Relaxed);
        if was != on {
            self.save_state();
        }
    }

    /// Self-heal on or off.
    pub fn set_self_heal(&self, on: bool) {
        self.heal.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts replicas `indexes` of `desired` (saved as `starting` while
    /// unproven) and waits until every one answers its health check;
    /// stops them all if one exits first or the time runs out.
    async fn start_healthy(
        &self,
        desired: &Desired,
        dir: &Path,
        indexes: std::ops::Range<usize>,
        timeout: Duration,
    ) -> Result<Vec<Replica>, String> {
        let mut fresh = Vec::new();
        for i in indexes {
            let started = free_port().and_then(|port| {
                let child = self.spawn(desired, dir, port, i)?;
                Ok((port, child))
            });
            let (port, child) = match started {
                Ok(p) => p,
                Err(e) => {
                    stop(&mut fresh).await;
                    self.set_starting(&[]);
                    return Err(e);
                }
            };
            let pgid = child.id();
            fresh.push(Replica {
                port,
                child: Some(child),
                pgid,
                adopted: None,
                restarts: Vec::new(),
                serving: true,
            });
            self.set_starting(&fresh);
        }
        let start = Instant::now();
        loop {
            let mut all = true;
            for r in &mut fresh {
                if let Some(c) = &mut r.child
                    && let Ok(Some(code)) = c.try_wait()
                {
                    stop(&mut fresh).await;
                    self.set_starting(&[]);
                    return Err(format!(
                        "a replica of {} exited ({code}) before it was healthy; see {}",
                        desired.release,
                        self.log_dir().display()
                    ));
                }
                if !healthy(r.port, &desired.health_path).await {
                    all = false;
                }
            }
            if all {
                return Ok(fresh);
            }
            if start.elapsed() > timeout {
                stop(&mut fresh).await;
                self.set_starting(&[]);
                return Err(format!(
                    "{} did not answer {} within {}s",
                    desired.release,
                    desired.health_path,
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts `desired`'s replicas, switches traffic once all are healthy,
    /// drains and stops the previous ones. At every point a crash can
    /// leave, the state file says which processes serve (`replicas`),
    /// which are unproven (`starting`) and which are on their way out
    /// (`retiring`), so a successor never stops what serves before
    /// something new is healthy, and adopts or stops everything else.
    async fn roll_out(&self, desired: Desired, timeout: Duration) -> Result<Status, String> {
        self.set_status(
            Health::Progressing,
            None,
            &format!("deploying {}", desired.release),
        );
        let dir = match self.prepare(&desired).await {
            Ok(d) => d,
            Err(e) => return Err(self.failed(&e)),
        };
        let fresh = match self
            .start_healthy(&desired, &dir, 0..desired.replicas as usize, timeout)
            .await
        {
            Ok(f) => f,
            Err(e) => return Err(self.failed(&e)),
        };
        // The new replicas become what serves (saved first), then traffic
        // switches; the old ones finish their requests and stop.
        let mut old = self.make_serving(&desired, &dir, fresh);
        if let Err(e) = self.route().await {
            // The new replicas run and are saved as serving: the next
            // supervision tick routes them; the old ones stay until then.
            return Err(self.failed(&format!("cannot switch traffic: {e}")));
        }
        self.drain().await;
        stop(&mut old).await;
        if let Ok(mut s) = self.state.lock() {
            s.retiring.clear();
        }
        let message = if desired.replicas == 0 {
            format!("{} scaled to zero replicas", desired.release)
        } else {
            format!("serving {}", desired.release)
        };
        self.set_status(Health::Healthy, Some(&desired.release), &message);
        self.save_state();
        Ok(self.status())
    }

    /// Makes `new` what serves `desired` (saved before anyone routes to
    /// it), the replicas it replaces saved as retiring; returns those.
    fn make_serving(&self, desired: &Desired, dir: &Path, new: Vec<Replica>) -> Vec<Replica> {
        let old = match self.state.lock() {
            Ok(mut s) => {
                s.desired = Some(desired.clone());
                s.release_dir = Some(dir.to_path_buf());
                s.starting.clear();
                let old = std::mem::replace(&mut s.replicas, new);
                s.retiring = old
                    .iter()
                    .filter_map(|r| {
                        let pid = r.pgid?;
                        Some((pid, start_time(pid)?))
                    })
                    .collect();
                old
            }
            Err(_) => Vec::new(),
        };
        self.save_state();
        old
    }

    /// Waits until replicas taken out of the route finished their
    /// requests (at most 30 s).
    async fn drain(&self) {
        let _ = self
            .plane
            .call(&Request::Drain {
                environment: self.name.clone(),
                timeout_ms: 30_000,
            })
            .await;
    }

    /// Records the replicas being started (and saves it).
    fn set_starting(&self, fresh: &[Replica]) {
        if let Ok(mut s) = self.state.lock() {
            s.starting = fresh
                .iter()
                .filter_map(|r| {
                    let pid = r.pgid?;
                    Some((pid, start_time(pid)?))
                })
                .collect();
        }
        self.save_state();
    }

    /// Writes where the replicas are (`<data>/state/<env>.json`): what
    /// they run, and each replica's port, process id and start time — what
    /// a restarted server needs to adopt them.
    fn save_state(&self) {
        let Ok(s) = self.state.lock() else { return };
        let v = serde_json::json!({
            "environment": self.name,
            "address": self.address().to_string(),
            "protected": self.protected.load(std::sync::atomic::Ordering::Relaxed),
            "release": s.desired.as_ref().map(|d| d.release.clone()),
            "desired": s.desired,
            "release_dir": s.release_dir,
            "health": s.status.health.as_str(),
            "message": s.status.message,
            "retiring": s.retiring.iter().map(|(pid, start)| serde_json::json!({
                "pid": pid,
                "start_time": start,
            })).collect::<Vec<_>>(),
            "starting": s.starting.iter().map(|(pid, start)| serde_json::json!({
                "pid": pid,
                "start_time": start,
            })).collect::<Vec<_>>(),
            "canary": s.canary.iter().flat_map(|c| c.replicas.iter()).filter_map(|r| {
                let pid = r.pgid?;
                Some(serde_json::json!({"port": r.port, "pid": pid, "start_time": start_time(pid)?}))
            }).collect::<Vec<_>>(),
            "canary_desired": s.canary.as_ref().map(|c| &c.desired),
            "canary_weight": s.canary.as_ref().map(|c| c.weight),
            "canary_policy": s.canary.as_ref().map(|c| &c.policy),
            "warm": s.warm.as_ref().map(|w| serde_json::json!({
                "desired": w.desired,
                "release_dir": w.dir,
                "until_ms": w.until_ms,
                "replicas": w.replicas.iter().filter_map(|r| {
                    let pid = r.pgid?;
                    Some(serde_json::json!({"port": r.port, "pid": pid, "start_time": start_time(pid)?}))
                }).collect::<Vec<_>>(),
            })),
            "replicas": s.replicas.iter().map(|r| serde_json::json!({
                "port": r.port,
                "pid": r.pgid,
                "start_time": r.pgid.and_then(start_time),
            })).collect::<Vec<_>>(),
        });
        drop(s);
        let dir = self.data.join("state");
        if std::fs::create_dir_all(&dir).is_ok() {
            let tmp = dir.join(format!(".{}.json", self.name));
            if std::fs::write(&tmp, serde_json::to_vec_pretty(&v).unwrap_or_default()).is_ok() {
                let _ = std::fs::rename(tmp, dir.join(format!("{}.json", self.name)));
            }
        }
    }

    /// The state an earlier process left (`None` when there is none).
    pub fn saved_state(data: &Path, name: &str) -> Option<serde_json::Value> {
        let text = std::fs::read(data.join("state").join(format!("{name}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Takes over what an earlier reconciler left: the replicas it
    /// saved as serving are adopted (routed, supervised) whatever they
    /// run — if that is not what `env` asks for, the next apply rolls out
    /// the difference and only then retires them, so a successor never
    /// stops what serves first. Replicas it was starting (unproven) or
    /// retiring are stopped. Returns whether what runs is what `env`
    /// asks for.
    pub async fn adopt(&self, env: Option<&Environment>) -> bool {
        let Some(saved) = Self::saved_state(&self.data, &self.name) else {
            return false;
        };
        let mut leftovers = Vec::new();
        for key in ["retiring", "starting"] {
            for r in saved[key].as_array().into_iter().flatten() {
                if let Some(r) = self.verified(r, 0) {
                    leftovers.push(r);
                }
            }
        }
        // A canary in progress is taken over at its weight (the rollout
        // resumes at its step) when all its replicas still answer;
        // otherwise it stops and the rollout starts over.
        let canary_desired: Option<Desired> =
            serde_json::from_value(saved["canary_desired"].clone()).ok();
        let mut canary_replicas = Vec::new();
        for r in saved["canary"].as_array().into_iter().flatten() {
            let port = r["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            if let Some(mut r) = self.verified(r, port) {
                r.serving = true;
                canary_replicas.push(r);
            }
        }
        let saved_canary = saved["canary"].as_array().map_or(0, Vec::len);
        let mut canary = None;
        if let Some(cd) = canary_desired
            && !canary_replicas.is_empty()
            && canary_replicas.len() == saved_canary
        {
            let mut all = true;
            for r in &canary_replicas {
                all &= r.port != 0 && healthy(r.port, &cd.health_path).await;
            }
            if all {
                canary = Some(rollout::CanarySet {
                    desired: cd,
                    replicas: std::mem::take(&mut canary_replicas),
                    weight: saved["canary_weight"]
                        .as_u64()
                        .and_then(|w| u32::try_from(w).ok())
                        .unwrap_or(0),
                    policy: serde_json::from_value(saved["canary_policy"].clone())
                        .unwrap_or_default(),
                });
            }
        }
        leftovers.append(&mut canary_replicas);
        let warm = self.adopt_warm(&saved["warm"], &mut leftovers).await;
        let saved_desired: Option<Desired> = serde_json::from_value(saved["desired"].clone()).ok();
        let dir: Option<PathBuf> = saved["release_dir"].as_str().map(PathBuf::from);
        let mut found = Vec::new();
        for r in saved["replicas"].as_array().into_iter().flatten() {
            let Some(port) = r["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            if let Some(r) = self.verified(r, port) {
                found.push(r);
            }
        }
        let (Some(d), Some(dir)) = (saved_desired, dir.filter(|d| d.is_dir())) else {
            leftovers.append(&mut found);
            leftovers.extend(canary.take().map(|c| c.replicas).unwrap_or_default());
            leftovers.extend(warm.map(|w| w.replicas).unwrap_or_default());
            if !leftovers.is_empty() {
                eprintln!(
                    "{}: stopping {} process(es) a previous reconciler left (no usable state)",
                    self.name,
                    leftovers.len()
                );
            }
            stop(&mut leftovers).await;
            return false;
        };
        for r in &mut found {
            r.serving = healthy(r.port, &d.health_path).await;
        }
        let serving = found.iter().filter(|r| r.serving).count();
        let count = found.len();
        let matches = env.and_then(|e| self.desired_of(e).ok()).as_ref() == Some(&d)
            && count == d.replicas as usize
            && serving == count;
        if let Ok(mut s) = self.state.lock() {
            s.desired = Some(d.clone());
            s.release_dir = Some(dir);
            s.replicas = found;
            s.starting.clear();
            s.retiring.clear();
            s.canary = canary;
            s.warm = warm;
        }
        if let Some(r) = rollout::read_status(&self.data, &self.name)
            && let Ok(mut slot) = self.rollout.lock()
        {
            *slot = Some(r);
        }
        // A blue-green switch whose warm window was running: kept when the
        // previous release still answers and its time is not up (the
        // reconciler runs the window on, `rollout undo` still switches
        // back); otherwise the rollout is over — say so rather than offer
        // an undo nobody would carry out.
        if self.rollout_status().is_some_and(|r| r.phase == "Switched") {
            if self.has_warm_window() {
                self.publish_resumed_window();
            } else {
                self.finish_interrupted_switch().await;
            }
        }
        // Traffic to the adopted replicas before anything unproven stops
        // (the data plane may still point at a half-finished switch).
        let _ = self.route().await;
        stop(&mut leftovers).await;
        let health = if serving > 0 || d.replicas == 0 {
            Health::Healthy
        } else {
            Health::Degraded
        };
        self.set_status(
            health,
            Some(&d.release),
            &format!(
                "serving {} (adopted {serving} of {count} running replica(s))",
                d.release
            ),
        );
        self.save_state();
        matches
    }

    /// The warm previous release of a blue-green switch an earlier
    /// reconciler saved, if every replica of it still runs and answers
    /// and its window is still open; otherwise what runs of it joins
    /// `leftovers` (stopped).
    async fn adopt_warm(
        &self,
        saved: &serde_json::Value,
        leftovers: &mut Vec<Replica>,
    ) -> Option<rollout::Warm> {
        let listed = saved["replicas"].as_array()?;
        let mut replicas = Vec::new();
        for r in listed {
            let port = r["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            if let Some(r) = self.verified(r, port) {
                replicas.push(r);
            }
        }
        let desired: Option<Desired> = serde_json::from_value(saved["desired"].clone()).ok();
        let dir = saved["release_dir"].as_str().map(PathBuf::from);
        let until_ms = saved["until_ms"].as_u64();
        let open = until_ms.is_none_or(|u| u > rollout::now_ms());
        let (Some(desired), Some(dir)) = (desired, dir) else {
            leftovers.append(&mut replicas);
            return None;
        };
        let mut all = open && !replicas.is_empty() && replicas.len() == listed.len();
        for r in &replicas {
            all = all && r.port != 0 && healthy(r.port, &desired.health_path).await;
        }
        if !all {
            leftovers.append(&mut replicas);
            return None;
        }
        Some(rollout::Warm {
            desired,
            dir,
            replicas,
            until_ms,
        })
    }

    /// The process a saved `{pid, start_time}` names, if it still runs
    /// and says it is this environment's.
    fn verified(&self, saved: &serde_json::Value, port: u16) -> Option<Replica> {
        let pid = saved["pid"].as_u64().and_then(|p| u32::try_from(p).ok())?;
        let start = saved["start_time"].as_u64()?;
        (start_time(pid) == Some(start)
            && process_env(pid).get("LAUNCHWAY_ENVIRONMENT") == Some(&self.name))
        .then_some(Replica {
            port,
            child: None,
            pgid: Some(pid),
            adopted: Some(start),
            restarts: Vec::new(),
            serving: false,
        })
    }

    /// How the live processes differ from what was deployed: replicas
    /// not running (empty when in sync).
    pub fn drift(&self) -> Vec<String> {
        let Ok(mut s) = self.state.lock() else {
            return vec!["state unavailable".into()];
        };
        if s.desired.is_none() {
            return Vec::new();
        }
        s.replicas
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| {
                (!r.running()).then(|| format!("replica {i} (port {}) is not running", r.port))
            })
            .collect()
    }

    /// The release being served, when there is one.
    pub fn deployed_release(&self) -> Option<String> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.desired.as_ref().map(|d| d.release.clone()))
    }

    /// Whether `env` is what runs now (same release, command, replicas,
    /// configuration and secrets).
    pub fn runs(&self, env: &Environment) -> bool {
        let Ok(want) = self.desired_of(env) else {
            return false;
        };
        self.state
            .lock()
            .map(|s| s.desired.as_ref() == Some(&want))
            .unwrap_or(false)
    }

    /// Starts the deployment over (new replicas, then the switch): how a
    /// sync heals drift when self-heal is off.
    pub async fn redeploy(&self, env: &Environment, timeout: Duration) -> Result<Status, String> {
        let desired = self.desired_of(env)?;
        self.roll_out(desired, timeout).await
    }

    /// Each replica's port and process id.
    pub fn replicas(&self) -> Vec<(u16, Option<u32>)> {
        self.state
            .lock()
            .map(|s| s.replicas.iter().map(|r| (r.port, r.pgid)).collect())
            .unwrap_or_default()
    }

    /// Records a failed rollout; the message says what serves meanwhile.
    fn failed(&self, why: &str) -> String {
        if let Ok(mut s) = self.state.lock() {
            let serving = s.replicas.iter().filter(|r| r.serving).count();
            let (health, after) = match (&s.desired, serving) {
                (Some(d), n) if n > 0 => (
                    Health::Healthy,
                    format!("; {} keeps serving ({n} replica(s))", d.release),
                ),
                (Some(d), _) if d.replicas == 0 => (Health::Healthy, String::new()),
                _ => (Health::Degraded, "; nothing serves".to_string()),
            };
            s.status.health = health;
            s.status.replicas = serving;
            s.status.message = format!("last deployment failed: {why}{after}");
        }
        why.to_string()
    }

    fn set_status(&self, health: Health, release: Option<&str>, message: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.status.health = health;
            if let Some(r) = release {
                s.status.release = Some(r.to_string());
            }
            s.status.replicas = s.replicas.len();
            s.status.message = message.to_string();
        }
    }

    /// Every 200 ms: a replica that exited leaves the data plane's route
    /// at once (whatever self-heal says); with self-heal on it is
    /// restarted with backoff and routed again once it answers. A crash
    /// loop (5 exits within a minute) marks the environment Degraded. A
    /// data plane that had to be started again gets the routes again.
    async fn supervise(self: Arc<Self>) {
        let mut tick: u64 = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            tick += 1;
            if tick.is_multiple_of(50) {
                // Every 10 s: replica logs stay bounded.
                for e in std::fs::read_dir(self.log_dir())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if e.file_name().to_string_lossy().ends_with(".log") {
                        rotate_log(&e.path(), LOG_LIMIT, LOG_KEEP);
                    }
                }
            }
            let current = self
                .state
                .lock()
                .ok()
                .and_then(|s| Some((s.desired.clone()?, s.release_dir.clone()?)));
            let Some((d, dir)) = current else {
                continue;
            };
            let mut restart = Vec::new();
            // Written only when a replica came or went (not every tick).
            let mut changed = false;
            let heal = self.heal.load(std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut s) = self.state.lock() {
                for (i, r) in s.replicas.iter_mut().enumerate() {
                    if r.running() {
                        continue;
                    }
                    // Gone: its process id may be recycled, never signal it again.
                    changed |= r.pgid.is_some() || r.serving;
                    r.pgid = None;
                    r.child = None;
                    r.adopted = None;
                    r.serving = false;
                    if !heal {
                        // Drift, left for the next sync to report and heal.
                        continue;
                    }
                    let now = Instant::now();
                    r.restarts
                        .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                    let backoff = Duration::from_millis(250 << r.restarts.len().min(7));
                    if r.restarts
                        .last()
                        .is_none_or(|t| now.duration_since(*t) >= backoff)
                    {
                        restart.push(i);
                    }
                }
            }
            changed |= !restart.is_empty();
            for i in restart {
                let spawned = self
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.replicas.get(i).map(|r| r.port));
                let Some(port) = spawned else { continue };
                let child = self.spawn(&d, &dir, port, i).ok();
                if let Ok(mut s) = self.state.lock() {
                    if let Some(r) = s.replicas.get_mut(i) {
                        r.pgid = child.as_ref().and_then(Child::id);
                        r.child = child;
                        r.restarts.push(Instant::now());
                    }
                    let looping = s.replicas.iter().any(|r| r.restarts.len() >= 5);
                    s.status.health = if looping {
                        Health::Degraded
                    } else {
                        Health::Progressing
                    };
                    s.status.message = if looping {
                        format!(
                            "replica {i} keeps crashing (crash loop); see {}",
                            self.log_dir().display()
                        )
                    } else {
                        format!("replica {i} exited and was restarted")
                    };
                }
            }
            // Running but out of the route (restarted, or adopted before
            // it answered): back in once it answers.
            let waiting: Vec<(usize, u16)> = self
                .state
                .lock()
                .map(|s| {
                    s.replicas
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| !r.serving && r.pgid.is_some())
                        .map(|(i, r)| (i, r.port))
                        .collect()
                })
                .unwrap_or_default();
            for (i, port) in waiting {
                if healthy(port, &d.health_path).await
                    && let Ok(mut s) = self.state.lock()
                    && let Some(r) = s.replicas.get_mut(i)
                    && r.port == port
                    && r.pgid.is_some()
                {
                    r.serving = true;
                    changed = true;
                }
            }
            if let Err(e) = self.route().await {
                eprintln!("{}: cannot update the data plane: {e}", self.name);
            }
            if changed {
                self.save_state();
            }
            // Back to Healthy once every replica serves again.
            if let Ok(mut s) = self.state.lock()
                && s.status.health != Health::Healthy
                && s.replicas.iter().all(|r| r.serving)
                && s.replicas.iter().all(|r| r.restarts.len() < 5)
                && !s.status.message.starts_with("last deployment failed")
                && !s.status.message.starts_with("deploying")
            {
                s.status.health = Health::Healthy;
                s.status.replicas = s.replicas.len();
                s.status.message = format!("serving {}", d.release);
            }
        }
    }

    /// Lets go of the environment without stopping it: supervision ends;
    /// the replicas keep running and the data plane keeps routing to them
    /// (the state file says where), for the next reconciler to adopt.
    pub fn release(&self) {
        self.save_state();
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops every replica and closes the stable address.
    pub async fn shutdown(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self
            .plane
            .call(&Request::Close {
                environment: self.name.clone(),
            })
            .await;
        let mut rs = self
            .state
            .lock()
            .map(|mut s| {
                s.starting.clear();
                s.retiring.clear();
                let mut all = std::mem::take(&mut s.replicas);
                all.extend(s.canary.take().map(|c| c.replicas).unwrap_or_default());
                all.extend(s.warm.take().map(|w| w.replicas).unwrap_or_default());
                all
            })
            .unwrap_or_default();
        stop(&mut rs).await;
        self.save_state();
    }
}

/// Opens `name`'s stable address in the data plane.
async fn open(plane: &DataPlane, name: &str, listen: &str) -> Result<SocketAddr, String> {
    plane
        .call(&Request::Open {
            environment: name.to_string(),
            listen: listen.to_string(),
        })
        .await?
        .address
        .ok_or_else(|| "the data plane gave no address".to_string())
}

/// Stops what an earlier reconciler of `data` left in every environment
/// it saved state for.
pub async fn stop_all_left(data: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(data.join("state"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let file = e.file_name().to_string_lossy().to_string();
        if let Some(name) = file.strip_suffix(".json").filter(|n| !n.starts_with('.')) {
            n += stop_left(data, name).await;
        }
    }
    n
}

/// Stops what an earlier reconciler of `data` left for `name` (its
/// serving, starting and retiring replicas), when no reconciler is there
/// to do it. Returns how many processes were stopped.
pub async fn stop_left(data: &Path, name: &str) -> usize {
    let Some(saved) = LocalEnvironment::saved_state(data, name) else {
        return 0;
    };
    let mut rs = Vec::new();
    let lists = ["replicas", "starting", "retiring", "canary"]
        .into_iter()
        .map(|k| &saved[k])
        .chain([&saved["warm"]["replicas"]]);
    for list in lists {
        for r in list.as_array().into_iter().flatten() {
            let (Some(pid), Some(start)) = (
                r["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
                r["start_time"].as_u64(),
            ) else {
                continue;
            };
            if start_time(pid) == Some(start)
                && process_env(pid)
                    .get("LAUNCHWAY_ENVIRONMENT")
                    .map(String::as_str)
                    == Some(name)
            {
                rs.push(Replica {
                    port: 0,
                    child: None,
                    pgid: Some(pid),
                    adopted: Some(start),
                    restarts: Vec::new(),
                    serving: false,
                });
            }
        }
    }
    let n = rs.len();
    stop(&mut rs).await;
    n
}

/// A replica log is rotated past this size …
const LOG_LIMIT: u64 = 16 << 20;
/// … keeping this many older generations (`replica-0.log.1` …).
const LOG_KEEP: usize = 3;

/// Rotates `path` when it holds `limit` bytes or more: older generations
/// shift (`.1` → `.2` …, the oldest dropped), the current text is copied
/// to `.1` and the file truncated in place. The replica keeps writing to
/// its open descriptor (opened for appending, so it continues at the new
/// end): no restart, no lost descriptor; lines written between the copy
/// and the truncation can be lost (logrotate's `copytruncate`).
fn rotate_log(path: &Path, limit: u64, keep: usize) {
    if std::fs::metadata(path).map_or(true, |m| m.len() < limit) {
        return;
    }
    let generation = |i: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    for i in (1..keep).rev() {
        let _ = std::fs::rename(generation(i), generation(i + 1));
    }
    if std::fs::copy(path, generation(1)).is_ok()
        && let Ok(f) = std::fs::OpenOptions::new().write(true).open(path)
    {
        let _ = f.set_len(0);
    }
}

/// The container engine on this machine: podman, else docker.
fn container_engine() -> Option<&'static str> {
    ["podman", "docker"]
        .into_iter()
        .find(|e| launchway_oci::auth::on_path(e))
}

/// SIGTERM to each replica's process group, a grace period, then SIGKILL.
/// A group is signalled only while its leader is verifiably the process we
/// started (not reaped, or the same start time), so a process id the
/// system has recycled is never hit.
async fn stop(rs: &mut Vec<Replica>) {
    // A container replica is stopped by its engine (its main process may
    // ignore SIGTERM as PID 1; the engine kills it after the timeout), and
    // its client then exits.
    let mut containers = Vec::new();
    for r in rs.iter_mut() {
        if r.running() {
            match r.pgid.and_then(container_of) {
                Some((engine, name)) => {
                    let _ = Command::new(&engine)
                        .args(["stop", "-t", "3", &name])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn();
                    containers.push((engine, name));
                }
                None => signal_group(r.pgid, nix::sys::signal::Signal::SIGTERM),
            }
        } else {
            r.pgid = None;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for r in rs.iter_mut() {
        while Instant::now() < deadline && r.running() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if r.running() {
            signal_group(r.pgid, nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(c) = &mut r.child {
            let _ = c.kill().await;
        }
    }
    // Whatever a killed client left behind goes too.
    for (engine, name) in containers {
        let _ = Command::new(&engine)
            .args(["rm", "-f", "-t", "0", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
    rs.clear();
}

/// The engine and container name of a container replica's client (from
/// its command line: `podman run … --name launchway-…`).
fn container_of(pid: u32) -> Option<(String, String)> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let engine = args.first()?;
    let base = engine.rsplit('/').next().unwrap_or(engine);
    if !matches!(base, "podman" | "docker") || args.get(1).map(String::as_str) != Some("run") {
        return None;
    }
    let i = args.iter().position(|a| a == "--name")?;
    let name = args.get(i + 1)?;
    name.starts_with("launchway-")
        .then(|| (engine.clone(), name.clone()))
}

/// What a replica (and its release's setup) inherits from the process that
/// starts it: only these. Everything else it gets is the environment
/// file's variables, its secrets, `PORT`, `MODEL_PATH` and the
/// `LAUNCHWAY_*` names of its environment and release — never the
/// starter's tokens, database URL, master key or cloud credentials.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

pub(crate) fn inherited_env() -> Vec<(String, String)> {
    INHERITED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_string(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn replica(port: u16) -> Replica {
        Replica {
            port,
            child: None,
            pgid: None,
            adopted: None,
            restarts: Vec::new(),
            serving: true,
        }
    }

    fn desired(release: &str) -> Desired {
        Desired {
            release: release.into(),
            command: "serve".into(),
            image: None,
            container_port: 0,
            setup: None,
            replicas: 3,
            health_path: "/health".into(),
            env: BTreeMap::new(),
            secrets_digest: String::new(),
        }
    }

    /// Every step's share is exact over a cycle of the total weight,
    /// whatever the replica counts on each side.
    #[test]
    fn canary_weights_are_exact_whatever_the_replica_counts() {
        for (stables, canaries) in [(1usize, 1usize), (3, 1), (2, 3), (5, 2)] {
            for w in [0u32, 1, 5, 25, 50, 99, 100] {
                let s = State {
                    desired: Some(desired("aaaa")),
                    replicas: (0..stables).map(|i| replica(1000 + i as u16)).collect(),
                    status: Status {
                        health: Health::Healthy,
                        release: None,
                        replicas: 0,
                        message: String::new(),
                    },
                    release_dir: None,
                    retiring: Vec::new(),
                    starting: Vec::new(),
                    canary: Some(rollout::CanarySet {
                        desired: desired("bbbb"),
                        replicas: (0..canaries).map(|i| replica(2000 + i as u16)).collect(),
                        weight: w,
                        policy: launchway_proxy::Policy::default(),
                    }),
                    warm: None,
                };
                let (specs, label_of_canary, _) = routes_of(&s);
                let canary_label = label_of_canary.unwrap();
                let total: u64 = specs.iter().map(|b| u64::from(b.weight)).sum();
                let to_canary: u64 = specs
                    .iter()
                    .filter(|b| b.revision == canary_label)
                    .map(|b| u64::from(b.weight))
                    .sum();
                assert_eq!(
                    to_canary * 100,
                    total * u64::from(w),
                    "{stables} stable, {canaries} canary, {w}%: {specs:?}"
                );
            }
        }
    }

    #[test]
    fn logs_rotate_while_the_writer_keeps_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("replica-0.log");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        for generation in 1..=5 {
            writeln!(w, "{}", format!("gen{generation} ").repeat(40)).unwrap();
            rotate_log(&log, 100, 3);
        }
        writeln!(w, "after").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "after\n");
        let g1 = std::fs::read_to_string(dir.path().join("replica-0.log.1")).unwrap();
        assert!(g1.starts_with("gen5"), "{g1}");
        let g3 = std::fs::read_to_string(dir.path().join("replica-0.log.3")).unwrap();
        assert!(g3.starts_with("gen3"), "{g3}");
        assert!(!dir.path().join("replica-0.log.4").exists());
        // Under the limit: untouched.
        rotate_log(&log, 100, 3);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "after\n");
    }
}
