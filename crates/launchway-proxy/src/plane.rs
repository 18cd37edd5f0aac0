//! The data plane: every environment's stable address, held by a small
//! process of its own so traffic does not depend on the reconciler.
//!
//! The reconciler (the control plane) starts it once per data directory
//! (`launchway dataplane --data DIR`) and configures it over a Unix socket
//! in that directory (`dataplane.sock`, mode 0600: only the same user).
//! The protocol is one JSON request and one JSON reply per line. The
//! reconciler may die, restart or be replaced at any time: the listeners,
//! routes and connections here are untouched, and a successor attaches to
//! the same process. While a controller is attached the data plane lives;
//! with none attached and no backend left that accepts connections for a
//! while, it exits on its own (nothing to serve and nobody to configure
//! it), so it never outlives what it fronts.

use crate::{Backend, Proxy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The control socket's file name in the data directory.
pub const SOCKET: &str = "dataplane.sock";
/// Where the data plane writes its process id.
pub const PID_FILE: &str = "dataplane.pid";

/// Requests and replies are one line each; a longer one is refused.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("no data plane answers at {path}: {source}")]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the data plane refused: {0}")]
    Refused(String),
    #[error("the data plane's answer is not understood: {0}")]
    Protocol(String),
    #[error("a data plane already serves {0}")]
    AlreadyRunning(PathBuf),
    #[error("the data plane did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One backend as the control plane describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    pub weight: u32,
    pub revision: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who is there (process id).
    Ping,
    /// Held open by a controller for as long as it lives.
    Attach,
    /// The environment's stable address: bound on `listen` the first
    /// time, the same address afterwards.
    Open {
        environment: String,
        listen: String,
    },
    /// Replaces the environment's backends atomically; `canary` names the
    /// revision a canary header selects.
    Route {
        environment: String,
        backends: Vec<BackendSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canary: Option<String>,
        /// Sticky sides, the testers' header, mirroring.
        #[serde(default)]
        policy: crate::Policy,
    },
    /// Waits until backends taken out of the route finished their
    /// requests (or the timeout): `drained` says which.
    Drain {
        environment: String,
        timeout_ms: u64,
    },
    /// Closes the environment's address.
    Close {
        environment: String,
    },
    Status,
    /// Prometheus text for one environment.
    Metrics {
        environment: String,
    },
    /// The numbers sampled from each revision's answers.
    Samples {
        environment: String,
    },
    /// Serves every environment's metrics over HTTP at `listen`
    /// (`GET /metrics`) for Prometheus to scrape; once (a second call
    /// answers the same address).
    ServeMetrics {
        listen: String,
    },
    Shutdown,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Sampled numbers by revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub samples: BTreeMap<String, Vec<f64>>,
}

/// One environment's address and what it routes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteStatus {
    pub environment: String,
    pub address: SocketAddr,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendStatus {
    pub addr: SocketAddr,
    pub weight: u32,
    pub revision: String,
    pub in_flight: usize,
    pub requests: u64,
    pub errors: u64,
    /// Answers by duration: a count per bucket of
    /// [`crate::LATENCY_BUCKETS`] then `+Inf` (not cumulative).
    #[serde(default)]
    pub latency: Vec<u64>,
    /// The answers' total duration, in seconds.
    #[serde(default)]
    pub latency_sum: f64,
}

fn error(e: impl std::fmt::Display) -> Reply {
    Reply {
        ok: false,
        error: Some(e.to_string()),
        ..Reply::default()
    }
}

/// A listener on `listen` and the address it got, or the error reply.
async fn bind(listen: &str) -> Result<(tokio::net::TcpListener, SocketAddr), Reply> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| error(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr().map_err(error)?;
    Ok((listener, address))
}

fn ok() -> Reply {
    Reply {
        ok: true,
        ..Reply::default()
    }
}

struct Site {
    proxy: Arc<Proxy>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// Taken out of the route, maybe still finishing requests.
    retired: Vec<Arc<Backend>>,
}

#[derive(Default)]
struct Plane {
    sites: Mutex<BTreeMap<String, Site>>,
    attached: AtomicUsize,
    stop: tokio::sync::Notify,
    /// The metrics endpoint, once asked for.
    metrics: Mutex<Option<SocketAddr>>,
}

impl Plane {
    async fn handle(self: &Arc<Self>, req: Request) -> Reply {
        match req {
            Request::Ping => Reply {
                pid: Some(std::process::id()),
                ..ok()
            },
            Request::Attach => ok(),
            Request::Open {
                environment,
                listen,
            } => self.open(&environment, &listen).await,
            Request::Route {
                environment,
                backends,
                canary,
                policy,
            } => self.route(&environment, backends, canary, policy),
            Request::Drain {
                environment,
                timeout_ms,
            } => {
                let retired = self
                    .sites
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&environment).map(|s| s.retired.clone()))
                    .unwrap_or_default();
                let drained = Proxy::drain(&retired, Duration::from_millis(timeout_ms)).await;
                if drained
                    && let Ok(mut sites) = self.sites.lock()
                    && let Some(site) = sites.get_mut(&environment)
                {
                    site.retired
                        .retain(|b| !retired.iter().any(|r| Arc::ptr_eq(b, r)));
                }
                Reply {
                    drained: Some(drained),
                    ..ok()
                }
            }
            Request::Close { environment } => {
                if let Some(site) = self
                    .sites
                    .lock()
                    .ok()
                    .and_then(|mut s| s.remove(&environment))
                {
                    site.task.abort();
                }
                ok()
            }
            Request::Status => Reply {
                sites: self.status(),
                ..ok()
            },
            Request::Metrics { environment } => {
                match self
                    .sites
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&environment).map(|s| s.proxy.clone()))
                {
                    Some(p) => Reply {
                        text: Some(p.metrics_text(&environment)),
                        ..ok()
                    },
                    None => error(format!("no environment '{environment}' here")),
                }
            }
            Request::ServeMetrics { listen } => self.serve_metrics(&listen).await,
            Request::Samples { environment } => {
                let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                if let Some(p) = self
                    .sites
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&environment).map(|s| s.proxy.clone()))
                {
                    for b in p.backends() {
                        samples
                            .entry(b.revision.clone())
                            .or_default()
                            .extend(b.samples());
                    }
                }
                Reply { samples, ..ok() }
            }
            Request::Shutdown => {
                self.stop.notify_one();
                ok()
            }
        }
    }

    /// Every environment's metrics, each family once.
    fn all_metrics(&self) -> String {
        let sites: Vec<(String, Vec<Arc<Backend>>)> = self
            .sites
            .lock()
            .map(|s| {
                s.iter()
                    .map(|(name, site)| (name.clone(), site.proxy.backends()))
                    .collect()
            })
            .unwrap_or_default();
        crate::metrics_text(&sites)
    }

    async fn serve_metrics(self: &Arc<Self>, listen: &str) -> Reply {
        if let Some(a) = self.metrics.lock().ok().and_then(|m| *m) {
            return Reply {
                address: Some(a),
                ..ok()
            };
        }
        let (listener, address) = match bind(listen).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        if let Ok(mut m) = self.metrics.lock() {
            *m = Some(address);
        }
        let plane = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let plane = plane.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let plane = plane.clone();
                            async move {
                                let mut r = if req.uri().path() == "/metrics" {
                                    let mut r = hyper::Response::new(http_body_util::Full::new(
                                        bytes::Bytes::from(plane.all_metrics()),
                                    ));
                                    r.headers_mut().insert(
                                        hyper::header::CONTENT_TYPE,
                                        hyper::header::HeaderValue::from_static(
                                            "text/plain; version=0.0.4",
                                        ),
                                    );
                                    r
                                } else {
                                    hyper::Response::new(http_body_util::Full::new(
                                        bytes::Bytes::from_static(b"GET /metrics\n"),
                                    ))
                                };
                                if req.uri().path() != "/metrics" {
                                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                }
                                Ok::<_, std::convert::Infallible>(r)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Reply {
            address: Some(address),
            ..ok()
        }
    }

    async fn open(&self, environment: &str, listen: &str) -> Reply {
        if let Some(a) = self
            .sites
            .lock()
            .ok()
            .and_then(|s| s.get(environment).map(|s| s.address))
        {
            return Reply {
                address: Some(a),
                ..ok()
            };
        }
        let (listener, address) = match bind(listen).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let proxy = Proxy::new();
        let task = tokio::spawn(proxy.clone().serve(listener));
        if let Ok(mut s) = self.sites.lock() {
            s.insert(
                environment.to_string(),
                Site {
                    proxy,
                    address,
                    task,
                    retired: Vec::new(),
                },
            );
        }
        Reply {
            address: Some(address),
            ..ok()
        }
    }

    fn route(
        &self,
        environment: &str,
        specs: Vec<BackendSpec>,
        canary: Option<String>,
        policy: crate::Policy,
    ) -> Reply {
        let Ok(mut sites) = self.sites.lock() else {
            return error("state unavailable");
        };
        let Some(site) = sites.get_mut(environment) else {
            return error(format!(
                "no environment '{environment}' here (open it first)"
            ));
        };
        let current = site.proxy.backends();
        // The same replica keeps its counters across routes.
        let backends = specs
            .iter()
            .map(|s| {
                current
                    .iter()
                    .find(|b| b.addr == s.addr && b.weight == s.weight && b.revision == s.revision)
                    .cloned()
                    .unwrap_or_else(|| Backend::new(s.addr, s.weight, &s.revision))
            })
            .collect();
        let out = site.proxy.set_route_with(backends, canary, policy);
        site.retired.extend(out);
        ok()
    }

    fn status(&self) -> Vec<SiteStatus> {
        let Ok(sites) = self.sites.lock() else {
            return Vec::new();
        };
        sites
            .iter()
            .map(|(name, s)| SiteStatus {
                environment: name.clone(),
                address: s.address,
                backends: s.proxy.backends().iter().map(|b| b.snapshot()).collect(),
            })
            .collect()
    }

    /// Whether any routed backend accepts a connection.
    async fn anything_to_serve(&self) -> bool {
        let addrs: Vec<SocketAddr> = self
            .sites
            .lock()
            .map(|s| {
                s.values()
                    .flat_map(|s| {
                        s.proxy
                            .backends()
                            .iter()
                            .map(|b| b.addr)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        for a in addrs {
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(a),
            )
            .await
            {
                return true;
            }
        }
        false
    }
}

/// Runs the data plane of `dir` until told to stop, or until nobody is
/// attached and nothing accepts connections for `idle_exit`.
pub async fn run(dir: &Path, idle_exit: Duration) -> Result<(), PlaneError> {
    let path = dir.join(SOCKET);
    if tokio::net::UnixStream::connect(&path).await.is_ok() {
        return Err(PlaneError::AlreadyRunning(dir.to_path_buf()));
    }
    // A socket file a dead data plane left.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).map_err(|source| PlaneError::Io {
        path: path.clone(),
        source,
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| PlaneError::Io {
                path: path.clone(),
                source,
            },
        )?;
    }
    std::fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id())).map_err(|source| {
        PlaneError::Io {
            path: dir.join(PID_FILE),
            source,
        }
    })?;
    let plane = Arc::new(Plane::default());
    let idle = {
        let plane = plane.clone();
        async move {
            let mut idle_since: Option<Instant> = None;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let busy =
                    plane.attached.load(Ordering::SeqCst) > 0 || plane.anything_to_serve().await;
                if busy {
                    idle_since = None;
                } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= idle_exit {
                    return;
                }
            }
        }
    };
    let accept = {
        let plane = plane.clone();
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let plane = plane.clone();
                tokio::spawn(async move { connection(plane, stream).await });
            }
        }
    };
    tokio::select! {
        () = idle => {}
        () = accept => {}
        () = plane.stop.notified() => {}
    }
    // Only our own socket: a successor may have bound a new one already.
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    Ok(())
}

async fn connection(plane: Arc<Plane>, stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_LINE as u64 * 64));
    let mut attached = false;
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(n) if n > MAX_LINE => {
                let _ = write_reply(&mut write, &error("request too long")).await;
                break;
            }
            Ok(_) => {}
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Attach) if !attached => {
                attached = true;
                plane.attached.fetch_add(1, Ordering::SeqCst);
                ok()
            }
            Ok(req) => plane.handle(req).await,
            Err(e) => error(format!("bad request: {e}")),
        };
        if write_reply(&mut write, &reply).await.is_err() {
            break;
        }
    }
    if attached {
        plane.attached.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn write_reply(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    line.push(b'\n');
    w.write_all(&line).await
}

/// Talks to the data plane of one directory.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(dir: &Path) -> Client {
        Client {
            socket: dir.join(SOCKET),
        }
    }

    async fn connect(&self) -> Result<tokio::net::UnixStream, PlaneError> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| PlaneError::Unreachable {
                path: self.socket.clone(),
                source,
            })
    }

    /// One request; a reply that is not `ok` is an error.
    pub async fn call(&self, req: &Request) -> Result<Reply, PlaneError> {
        let limit = match req {
            Request::Drain { timeout_ms, .. } => Duration::from_millis(*timeout_ms + 10_000),
            _ => Duration::from_secs(10),
        };
        let stream = self.connect().await?;
        tokio::time::timeout(limit, exchange(stream, req))
            .await
            .map_err(|_| PlaneError::Timeout(limit))?
            .map(|(reply, _)| reply)
    }

    /// Attaches as the controller: the plane stays while the returned
    /// connection is open (it closes when this process dies).
    pub async fn attach(&self) -> Result<tokio::net::UnixStream, PlaneError> {
        let stream = self.connect().await?;
        let limit = Duration::from_secs(10);
        let (_, stream) = tokio::time::timeout(limit, exchange(stream, &Request::Attach))
            .await
            .map_err(|_| PlaneError::Timeout(limit))??;
        Ok(stream)
    }

    /// One request without a runtime (for the CLI).
    pub fn call_blocking(&self, req: &Request) -> Result<Reply, PlaneError> {
        use std::io::{BufRead, Read, Write};
        let unreachable = |source| PlaneError::Unreachable {
            path: self.socket.clone(),
            source,
        };
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).map_err(unreachable)?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut line = serde_json::to_vec(req).map_err(|e| PlaneError::Protocol(e.to_string()))?;
        line.push(b'\n');
        s.write_all(&line).map_err(unreachable)?;
        let mut answer = String::new();
        std::io::BufReader::new(s)
            .take(MAX_LINE as u64)
            .read_line(&mut answer)
            .map_err(unreachable)?;
        parse(&answer)
    }
}

async fn exchange(
    stream: tokio::net::UnixStream,
    req: &Request,
) -> Result<(Reply, tokio::net::UnixStream), PlaneError> {
    let io = |source| PlaneError::Io {
        path: PathBuf::from(SOCKET),
        source,
    };
    let mut line = serde_json::to_vec(req).map_err(|e| PlaneError::Protocol(e.to_string()))?;
    line.push(b'\n');
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(&line).await.map_err(io)?;
    let mut answer = String::new();
    (&mut stream)
        .take(MAX_LINE as u64)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    Ok((parse(&answer)?, stream.into_inner()))
}

fn parse(answer: &str) -> Result<Reply, PlaneError> {
    if answer.is_empty() {
        return Err(PlaneError::Protocol("the connection closed".into()));
    }
    let reply: Reply =
        serde_json::from_str(answer).map_err(|e| PlaneError::Protocol(e.to_string()))?;
    if reply.ok {
        Ok(reply)
    } else {
        Err(PlaneError::Refused(reply.error.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_survive_the_controller_and_idle_planes_exit() {
        let dir = tempfile::tempdir().unwrap();
        let plane = tokio::spawn({
            let d = dir.path().to_path_buf();
            async move { run(&d, Duration::from_secs(2)).await }
        });
        let c = Client::new(dir.path());
        let start = Instant::now();
        while c.call(&Request::Ping).await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A second one refuses to start on the same directory.
        assert!(matches!(
            run(dir.path(), Duration::from_secs(1)).await,
            Err(PlaneError::AlreadyRunning(_))
        ));
        let held = c.attach().await.unwrap();
        let a = c
            .call(&Request::Open {
                environment: "dev".into(),
                listen: "127.0.0.1:0".into(),
            })
            .await
            .unwrap()
            .address
            .unwrap();
        // Opening again gives the same address.
        let again = c
            .call(&Request::Open {
                environment: "dev".into(),
                listen: "127.0.0.1:0".into(),
            })
            .await
            .unwrap()
            .address
            .unwrap();
        assert_eq!(a, again);
        let spec = BackendSpec {
            addr: "127.0.0.1:9".parse().unwrap(),
            weight: 1,
            revision: "v1".into(),
        };
        c.call(&Request::Route {
            environment: "dev".into(),
            backends: vec![spec.clone()],
            canary: None,
            policy: crate::Policy::default(),
        })
        .await
        .unwrap();
        let st = c.call(&Request::Status).await.unwrap();
        assert_eq!(st.sites.len(), 1);
        assert_eq!(st.sites[0].backends[0].addr, spec.addr);
        assert!(matches!(
            c.call(&Request::Route {
                environment: "nope".into(),
                backends: vec![],
                canary: None,
                policy: crate::Policy::default(),
            })
            .await,
            Err(PlaneError::Refused(_))
        ));
        // The controller goes away: with nothing that accepts connections
        // behind it, the plane exits by itself.
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), plane)
            .await
            .expect("an idle data plane exits")
            .unwrap()
            .unwrap();
        assert!(!dir.path().join(SOCKET).exists());
    }

    #[tokio::test]
    async fn garbage_gets_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        tokio::spawn({
            let d = dir.path().to_path_buf();
            async move { run(&d, Duration::from_secs(60)).await }
        });
        let path = dir.path().join(SOCKET);
        let start = Instant::now();
        let mut s = loop {
            if let Ok(s) = tokio::net::UnixStream::connect(&path).await {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        s.write_all(b"{\"op\":\"explode\"}\n").await.unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert!(matches!(parse(&line), Err(PlaneError::Refused(e)) if e.contains("bad request")));
        let c = Client::new(dir.path());
        c.call(&Request::Shutdown).await.unwrap();
    }
}
