//! The reconciler's side of the data plane: finds the data plane process
//! of its data directory or starts one, stays attached to it, and starts
//! it again if it dies (each new process is a new generation, and every
//! environment sends its address and routes again).
//!
//! The invariant (ARCHITECTURE.md): traffic never flows through the
//! reconciler. Its death, restart or replacement leaves the stable
//! addresses, the routes and the replicas as they were.

use launchway_proxy::plane::{Client, Reply, Request};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a data plane with nobody attached and nothing answering
/// behind it waits before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

pub struct DataPlane {
    dir: PathBuf,
    /// The `launchway` executable (`launchway dataplane --data DIR`).
    program: PathBuf,
    client: Client,
    attached: tokio::sync::Mutex<Option<tokio::net::UnixStream>>,
    generation: AtomicU64,
    /// Where the data plane serves `/metrics` (asked again of a new one).
    metrics: std::sync::Mutex<Option<String>>,
}

impl DataPlane {
    pub fn new(dir: &Path, program: &Path) -> DataPlane {
        DataPlane {
            dir: dir.to_path_buf(),
            program: program.to_path_buf(),
            client: Client::new(dir),
            attached: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            metrics: std::sync::Mutex::new(None),
        }
    }

    /// Which data plane process this is attached to (changes when one
    /// had to be started again: routes are then sent again).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Attached to a live data plane, starting one if none answers.
    pub async fn ensure(&self) -> Result<(), String> {
        let mut held = self.attached.lock().await;
        if let Some(s) = held.as_ref() {
            // The plane never writes on this connection: readable means closed.
            let mut buf = [0u8; 1];
            match s.try_read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                _ => *held = None,
            }
        }
        if self.client.call(&Request::Ping).await.is_err() {
            self.start()?;
            let begin = Instant::now();
            while self.client.call(&Request::Ping).await.is_err() {
                if begin.elapsed() > Duration::from_secs(10) {
                    return Err(format!(
                        "the data plane did not start; see {}",
                        self.dir.join("dataplane.log").display()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let stream = self.client.attach().await.map_err(|e| e.to_string())?;
        *held = Some(stream);
        self.generation.fetch_add(1, Ordering::SeqCst);
        let listen = self.metrics.lock().ok().and_then(|m| m.clone());
        if let Some(listen) = listen {
            match self
                .client
                .call(&Request::ServeMetrics {
                    listen: listen.clone(),
                })
                .await
            {
                Ok(r) => {
                    if let Some(a) = r.address {
                        eprintln!("metrics at http://{a}/metrics");
                    }
                }
                Err(e) => eprintln!("metrics endpoint on {listen}: {e}"),
            }
        }
        Ok(())
    }

    /// Serve every environment's metrics at `listen` (`GET /metrics`).
    pub fn set_metrics(&self, listen: Option<String>) {
        if let Ok(mut m) = self.metrics.lock() {
            *m = listen;
        }
    }

    fn start(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dataplane.log"))
            .map_err(|e| format!("{}: {e}", self.dir.join("dataplane.log").display()))?;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("dataplane")
            .arg("--data")
            .arg(&self.dir)
            .env_clear()
            .envs(crate::local::inherited_env())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            // Its own group: a signal to the reconciler's group (Ctrl-C,
            // a service manager) does not reach traffic.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the data plane: {e}"))?;
        // Reaped when it exits (while this process lives).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// One request to the data plane (attached first).
    pub async fn call(&self, req: &Request) -> Result<Reply, String> {
        self.ensure().await?;
        self.client.call(req).await.map_err(|e| e.to_string())
    }

    /// Lets go without stopping it: it keeps serving for a successor.
    pub async fn detach(&self) {
        *self.attached.lock().await = None;
    }

    /// Stops the data plane (every address closes).
    pub async fn shutdown(&self) {
        *self.attached.lock().await = None;
        let _ = self.client.call(&Request::Shutdown).await;
    }
}

/// Stops the data plane of `dir` if one runs (for `sync --stop` when no
/// reconciler is left to do it).
pub fn shutdown_blocking(dir: &Path) -> bool {
    Client::new(dir).call_blocking(&Request::Shutdown).is_ok()
}

/// What the data plane of `dir` serves, when one runs.
pub fn status_blocking(dir: &Path) -> Option<Reply> {
    Client::new(dir).call_blocking(&Request::Status).ok()
}
