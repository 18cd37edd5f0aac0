//! The built-in reverse proxy that gives each environment a stable
//! address. Backends (replicas, each tagged with the revision it runs)
//! carry weights and are replaced atomically: a request is routed by the
//! set current when it arrives, so new replicas take traffic the moment
//! they are swapped in and old ones only finish what they have (`drain`).
//! Weighted selection is exact over each cycle of the total weight, which
//! is what canary steps need.
//!
//! A request that never reached a backend (it refused the connection) is
//! retried once on another, whatever its method: nothing was sent, so
//! nothing can happen twice. One that failed after it was sent is retried
//! only when idempotent (GET, HEAD, OPTIONS). Responses are buffered (the
//! services it fronts answer with small JSON), which is what makes the
//! retry possible.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Request and response bodies above this are refused (413 / 502).
pub const MAX_BODY: usize = 16 << 20;

/// How long a backend that refused a connection is skipped.
const EJECTION: Duration = Duration::from_secs(2);

/// The latency histogram's bucket bounds, in seconds (Prometheus'
/// `le` labels); a last, implicit bucket is `+Inf`.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The request header that pins a request to one side of a canary:
/// `always` (the canary) or `never` (the stable revision) — for testers.
pub const CANARY_HEADER: &str = "x-launchway-canary";

pub mod plane;

/// One replica: where it listens, its share of traffic, what it runs.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
    pub revision: String,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Idle HTTP/1 connections, reused.
    pool: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    /// Refused a connection recently: skipped while others can serve
    /// (passive ejection — a dead replica leaves rotation at once, with
    /// or without a control plane to tell).
    ejected_until: Mutex<Option<Instant>>,
    /// Answered requests by duration (cumulative counts per bucket of
    /// [`LATENCY_BUCKETS`], then `+Inf`), and their total in microseconds.
    latency: [AtomicU64; 13],
    latency_sum_us: AtomicU64,
    /// The latest numbers sampled from its answers (see [`Policy::sample_path`]).
    samples: Mutex<std::collections::VecDeque<f64>>,
}

impl Backend {
    pub fn new(addr: SocketAddr, weight: u32, revision: &str) -> Arc<Backend> {
        Arc::new(Backend {
            addr,
            weight,
            revision: revision.to_string(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
            ejected_until: Mutex::new(None),
            latency: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            samples: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// The numbers sampled from its answers, oldest first.
    pub fn samples(&self) -> Vec<f64> {
        self.samples
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    fn sample(&self, body: &[u8], path: &str) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        if let Ok(mut s) = self.samples.lock() {
            for x in numbers_at(&v, path) {
                if s.len() >= SAMPLES {
                    s.pop_front();
                }
                s.push_back(x);
            }
        }
    }

    /// The latency histogram: count per bucket (not cumulative; the last
    /// is `+Inf`) and the sum in seconds.
    pub fn latency(&self) -> (Vec<u64>, f64) {
        (
            self.latency
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    fn observe(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Its counters as the data plane reports them.
    pub fn snapshot(&self) -> plane::BackendStatus {
        let (requests, errors) = self.counts();
        let (latency, latency_sum) = self.latency();
        plane::BackendStatus {
            addr: self.addr,
            weight: self.weight,
            revision: self.revision.clone(),
            in_flight: self.in_flight(),
            requests,
            errors,
            latency,
            latency_sum,
        }
    }

    /// Requests routed to it and how many failed (5xx or unreachable).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    fn ejected(&self) -> bool {
        self.ejected_until
            .lock()
            .ok()
            .and_then(|e| *e)
            .is_some_and(|t| Instant::now() < t)
    }

    fn eject(&self, d: Duration) {
        if let Ok(mut e) = self.ejected_until.lock() {
            *e = Some(Instant::now() + d);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        loop {
            let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
            match idle {
                Some(s) if s.is_ready() => return Ok(s),
                Some(_) => continue,
                None => break,
            }
        }
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// Why forwarding failed: before anything reached the backend (safe to
/// send elsewhere, whatever the method), or after.
#[derive(Debug)]
enum Failure {
    Unsent(String),
    Sent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unsent(e) | Failure::Sent(e) => f.write_str(e),
        }
    }
}

/// Counts a request as in flight at a backend while it lives.
struct InFlight(Arc<Backend>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Default)]
struct Route {
    backends: Vec<Arc<Backend>>,
    total: u64,
    /// The canary's revision, for [`CANARY_HEADER`].
    canary: Option<String>,
    policy: Policy,
}

/// How requests pick a side of a canary beyond the weights.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// A user stays on one side: the side follows this header's value …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    /// … or this cookie's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_cookie: Option<String>,
    /// The testers' header (default [`CANARY_HEADER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Percent of the stable side's requests copied to the canary, its
    /// answers discarded.
    #[serde(default)]
    pub mirror: u32,
    /// Keep the numbers at this JSON path of answers (e.g.
    /// `$.predictions[*].churn_probability`), per replica, for comparing
    /// what the revisions predict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_path: Option<String>,
}

/// How many sampled numbers each replica keeps (the latest).
pub const SAMPLES: usize = 2000;

/// The numbers at `path` in a JSON document: `$.a.b`, `$.a[0]`, `$.a[*].b`.
pub fn numbers_at(v: &serde_json::Value, path: &str) -> Vec<f64> {
    let mut cur = vec![v];
    for part in path
        .strip_prefix('$')
        .unwrap_or(path)
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let (name, idx) = match part.find('[') {
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (part, None),
        };
        let mut next = Vec::new();
        for c in cur {
            let c = if name.is_empty() {
                Some(c)
            } else {
                c.get(name)
            };
            let Some(c) = c else { continue };
            match idx {
                None => next.push(c),
                Some("[*]") => next.extend(c.as_array().into_iter().flatten()),
                Some(i) => {
                    if let Some(x) = i
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| c.get(n))
                    {
                        next.push(x);
                    }
                }
            }
        }
        cur = next;
    }
    cur.into_iter()
        .filter_map(serde_json::Value::as_f64)
        .collect()
}

/// The value of `name` in a `Cookie` header.
fn cookie<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// A stable 0..100 bucket for a sticky key.
fn bucket(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish() % 100
}

#[derive(Debug, Default)]
pub struct Proxy {
    route: RwLock<Arc<Route>>,
    counter: AtomicU64,
}

impl Proxy {
    pub fn new() -> Arc<Proxy> {
        Arc::new(Proxy::default())
    }

    /// Replaces the backends; returns the ones taken out (to `drain`).
    pub fn set_backends(&self, backends: Vec<Arc<Backend>>) -> Vec<Arc<Backend>> {
        self.set_route(backends, None)
    }

    /// Replaces the backends and names the canary's revision (requests
    /// with [`CANARY_HEADER`] go to it, or away from it, whatever the
    /// weights); returns the backends taken out (to `drain`).
    pub fn set_route(
        &self,
        backends: Vec<Arc<Backend>>,
        canary: Option<String>,
    ) -> Vec<Arc<Backend>> {
        self.set_route_with(backends, canary, Policy::default())
    }

    /// [`Proxy::set_route`] with a traffic policy (sticky sides, the
    /// testers' header, mirroring).
    pub fn set_route_with(
        &self,
        backends: Vec<Arc<Backend>>,
        canary: Option<String>,
        policy: Policy,
    ) -> Vec<Arc<Backend>> {
        let total = backends.iter().map(|b| u64::from(b.weight)).sum();
        let new = Arc::new(Route {
            backends,
            total,
            canary,
            policy,
        });
        let old = match self.route.write() {
            Ok(mut r) => std::mem::replace(&mut *r, new),
            Err(_) => return Vec::new(),
        };
        let current = self.backends();
        old.backends
            .iter()
            .filter(|b| !current.iter().any(|c| Arc::ptr_eq(b, c)))
            .cloned()
            .collect()
    }

    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.route
            .read()
            .map(|r| r.backends.clone())
            .unwrap_or_default()
    }

    /// Waits until `old` backends have no request in flight (or `timeout`).
    pub async fn drain(old: &[Arc<Backend>], timeout: Duration) -> bool {
        let start = Instant::now();
        while old.iter().any(|b| b.in_flight() > 0) {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The next backend for a request that asks for one side of the
    /// canary (`always`: the canary, `never`: anything else).
    fn pick_side(&self, canary: bool, avoid: Option<&Arc<Backend>>) -> Option<Arc<Backend>> {
        let route = self.route.read().ok()?.clone();
        let want = route.canary.as_deref()?;
        let side: Vec<&Arc<Backend>> = route
            .backends
            .iter()
            .filter(|b| (b.revision == want) == canary)
            .filter(|b| !avoid.is_some_and(|a| Arc::ptr_eq(a, b)))
            .collect();
        let n = u64::try_from(side.len()).ok().filter(|n| *n > 0)?;
        let i = self.counter.fetch_add(1, Ordering::Relaxed) % n;
        side.get(usize::try_from(i).ok()?).map(|b| (*b).clone())
    }

    /// The next backend by weight, skipping `avoid` and, while another
    /// can serve, backends ejected for refusing connections.
    fn pick(&self, avoid: Option<&Arc<Backend>>) -> Option<Arc<Backend>> {
        let route = self.route.read().ok()?.clone();
        if route.total == 0 {
            return None;
        }
        let mut fallback = None;
        for _ in 0..route.backends.len().max(1) {
            let mut n = self.counter.fetch_add(1, Ordering::Relaxed) % route.total;
            for b in &route.backends {
                let w = u64::from(b.weight);
                if n < w {
                    if avoid.is_some_and(|a| Arc::ptr_eq(a, b)) {
                        break;
                    }
                    if b.ejected() {
                        fallback.get_or_insert_with(|| b.clone());
                        break;
                    }
                    return Some(b.clone());
                }
                n -= w;
            }
        }
        // Every other one is ejected: try one anyway (it may be back).
        route
            .backends
            .iter()
            .find(|b| !avoid.is_some_and(|a| Arc::ptr_eq(a, b)) && !b.ejected())
            .cloned()
            .or(fallback)
    }

    fn has_canary(&self) -> bool {
        self.route.read().is_ok_and(|r| r.canary.is_some())
    }

    /// Prometheus text: requests, errors and latency per revision and
    /// replica.
    pub fn metrics_text(&self, environment: &str) -> String {
        metrics_text(&[(environment.to_string(), self.backends())])
    }

    async fn forward(
        b: &Arc<Backend>,
        parts: &hyper::http::request::Parts,
        body: &Bytes,
        sample: Option<&str>,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        b.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(b.clone());
        b.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut sender = b.connection().await.map_err(|e| {
            b.errors.fetch_add(1, Ordering::Relaxed);
            b.eject(EJECTION);
            Failure::Unsent(e)
        })?;
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()))
            .version(hyper::Version::HTTP_11);
        for (k, v) in &parts.headers {
            if k != hyper::header::CONNECTION {
                req = req.header(k, v);
            }
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| Failure::Unsent(e.to_string()))?;
        let res = sender.send_request(req).await.map_err(|e| {
            b.errors.fetch_add(1, Ordering::Relaxed);
            Failure::Sent(format!("{}: {e}", b.addr))
        })?;
        let (mut rparts, rbody) = res.into_parts();
        // The client talks to the proxy, whatever the replica spoke.
        rparts.version = hyper::Version::HTTP_11;
        let bytes = http_body_util::Limited::new(rbody, MAX_BODY)
            .collect()
            .await
            .map_err(|e| Failure::Sent(format!("{}: {e}", b.addr)))?
            .to_bytes();
        if rparts.status.is_server_error() {
            b.errors.fetch_add(1, Ordering::Relaxed);
        }
        b.observe(started.elapsed());
        if let Some(path) = sample
            && rparts.status.is_success()
        {
            b.sample(&bytes, path);
        }
        if let Ok(mut p) = b.pool.lock() {
            p.push(sender);
        }
        Ok(Response::from_parts(rparts, Full::new(bytes)))
    }

    /// Proxies one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        };
        let route = self.route.read().map(|r| r.clone()).unwrap_or_default();
        let tester = route.policy.header.as_deref().unwrap_or(CANARY_HEADER);
        let side = parts
            .headers
            .get(tester)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| match v.trim() {
                "always" => Some(true),
                "never" => Some(false),
                _ => None,
            })
            .or_else(|| {
                // Sticky: the same key, the same side, for as long as the
                // canary's share does not shrink.
                let canary = route.canary.as_deref()?;
                let key = match (&route.policy.sticky_header, &route.policy.sticky_cookie) {
                    (Some(h), _) => parts.headers.get(h.as_str())?.to_str().ok()?,
                    (None, Some(c)) => cookie(&parts.headers, c)?,
                    _ => return None,
                };
                let on_canary: u64 = route
                    .backends
                    .iter()
                    .filter(|b| b.revision == canary)
                    .map(|b| u64::from(b.weight))
                    .sum();
                let share = (on_canary * 100).checked_div(route.total)?;
                Some(bucket(key) < share)
            });
        let choose = |avoid: Option<&Arc<Backend>>| match side {
            // Only while a canary runs; otherwise the header means nothing.
            Some(canary) if self.has_canary() => self.pick_side(canary, avoid),
            _ => self.pick(avoid),
        };
        let Some(first) = choose(None) else {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "no replica is serving");
        };
        // Shadow traffic: a copy to the canary, its answer discarded.
        if route.policy.mirror > 0
            && route.canary.as_deref().is_some_and(|c| first.revision != c)
            && self.counter.load(Ordering::Relaxed) % 100 < u64::from(route.policy.mirror)
            && let Some(shadow) = self.pick_side(true, None)
        {
            let mut copy = Request::builder()
                .method(parts.method.clone())
                .uri(parts.uri.clone())
                .body(())
                .map(|r| r.into_parts().0);
            if let Ok(c) = copy.as_mut() {
                c.headers = parts.headers.clone();
            }
            let body = body.clone();
            let sample = route.policy.sample_path.clone();
            if let Ok(copy) = copy {
                tokio::spawn(async move {
                    let _ = Self::forward(&shadow, &copy, &body, sample.as_deref()).await;
                });
            }
        }
        let sample = route.policy.sample_path.as_deref();
        match Self::forward(&first, &parts, &body, sample).await {
            Ok(r) => r,
            Err(e) => {
                let idempotent = matches!(
                    parts.method,
                    hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
                );
                let unsent = matches!(e, Failure::Unsent(_));
                if (unsent || idempotent)
                    && let Some(second) = choose(Some(&first))
                    && let Ok(r) = Self::forward(&second, &parts, &body, sample).await
                {
                    return r;
                }
                plain(StatusCode::BAD_GATEWAY, &format!("upstream failed: {e}"))
            }
        }
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Proxy>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, std::convert::Infallible>(proxy.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }
}

/// Prometheus text for several environments' backends, each metric
/// family once (its `# HELP`/`# TYPE` lines, then every sample).
pub fn metrics_text(sites: &[(String, Vec<Arc<Backend>>)]) -> String {
    let snapshot: Vec<(String, Vec<plane::BackendStatus>)> = sites
        .iter()
        .map(|(env, bs)| (env.clone(), bs.iter().map(|b| b.snapshot()).collect()))
        .collect();
    metrics_of(&snapshot)
}

/// Prometheus text from backend snapshots (what a data plane's status
/// reports), each metric family once.
pub fn metrics_of(sites: &[(String, Vec<plane::BackendStatus>)]) -> String {
    let mut out = String::new();
    let labels = |env: &str, b: &plane::BackendStatus| {
        format!(
            "environment=\"{}\",revision=\"{}\",replica=\"{}\"",
            escape(env),
            escape(&b.revision),
            b.addr
        )
    };
    let mut counter = |name: &str, help: &str, value: &dyn Fn(&plane::BackendStatus) -> u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for (env, bs) in sites {
            for b in bs {
                out.push_str(&format!("{name}{{{}}} {}\n", labels(env, b), value(b)));
            }
        }
    };
    counter(
        "launchway_proxy_requests",
        "Requests routed, by revision and replica.",
        &|b| b.requests,
    );
    counter(
        "launchway_proxy_errors",
        "Requests a replica failed (5xx or unreachable).",
        &|b| b.errors,
    );
    out.push_str("# HELP launchway_request_duration_seconds Time to a replica's answer, by revision and replica.\n# TYPE launchway_request_duration_seconds histogram\n");
    for (env, bs) in sites {
        for b in bs {
            let l = labels(env, b);
            let (counts, sum) = (&b.latency, b.latency_sum);
            let mut cumulative = 0;
            for (i, c) in counts.iter().enumerate() {
                cumulative += c;
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                out.push_str(&format!(
                    "launchway_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "launchway_request_duration_seconds_sum{{{l}}} {sum}\nlaunchway_request_duration_seconds_count{{{l}}} {cumulative}\n"
            ));
        }
    }
    out
}

/// A label value as Prometheus' text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn plain(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_exact_over_a_cycle_and_avoid_skips() {
        let p = Proxy::default();
        let a = Backend::new("127.0.0.1:1".parse().unwrap(), 9, "v1");
        let b = Backend::new("127.0.0.1:2".parse().unwrap(), 1, "v2");
        p.set_backends(vec![a.clone(), b.clone()]);
        let mut to_b = 0;
        for _ in 0..1000 {
            if Arc::ptr_eq(&p.pick(None).unwrap(), &b) {
                to_b += 1;
            }
        }
        assert_eq!(to_b, 100);
        for _ in 0..20 {
            assert!(Arc::ptr_eq(&p.pick(Some(&b)).unwrap(), &a));
        }
        let removed = p.set_backends(vec![b.clone()]);
        assert_eq!(removed.len(), 1);
        assert!(Arc::ptr_eq(&removed[0], &a));
        assert!(p.pick(Some(&b)).is_none(), "nothing else to pick");
        p.set_backends(Vec::new());
        assert!(p.pick(None).is_none());
    }

    #[test]
    fn numbers_at_json_paths() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"predictions": [{"p": 0.1}, {"p": 0.7}], "model": {"version": 3}}"#,
        )
        .unwrap();
        assert_eq!(numbers_at(&v, "$.predictions[*].p"), vec![0.1, 0.7]);
        assert_eq!(numbers_at(&v, "$.predictions[1].p"), vec![0.7]);
        assert_eq!(numbers_at(&v, "$.model.version"), vec![3.0]);
        assert!(numbers_at(&v, "$.nope[*]").is_empty());
    }

    #[test]
    fn the_canary_header_picks_a_side_and_latency_is_bucketed() {
        let p = Proxy::default();
        let stable = Backend::new("127.0.0.1:1".parse().unwrap(), 95, "v1");
        let canary = Backend::new("127.0.0.1:2".parse().unwrap(), 5, "v2");
        p.set_route(vec![stable.clone(), canary.clone()], Some("v2".into()));
        for _ in 0..20 {
            assert!(Arc::ptr_eq(&p.pick_side(true, None).unwrap(), &canary));
            assert!(Arc::ptr_eq(&p.pick_side(false, None).unwrap(), &stable));
        }
        assert!(
            p.pick_side(true, Some(&canary)).is_none(),
            "no other canary"
        );
        p.set_backends(vec![stable.clone()]);
        assert!(!p.has_canary());
        stable.observe(Duration::from_millis(3));
        stable.observe(Duration::from_millis(3));
        stable.observe(Duration::from_secs(20));
        let (counts, sum) = stable.latency();
        assert_eq!(counts[2], 2, "3 ms is in the 5 ms bucket: {counts:?}");
        assert_eq!(counts[12], 1, "20 s is +Inf");
        assert!((sum - 20.006).abs() < 1e-3, "{sum}");
        let text = p.metrics_text("dev");
        assert!(
            text.contains("launchway_request_duration_seconds_bucket{environment=\"dev\",revision=\"v1\",replica=\"127.0.0.1:1\",le=\"0.005\"} 2"),
            "{text}"
        );
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
    }

    /// A POST to a replica that refuses connections goes to another one
    /// (nothing was sent); with no other, it is a 502.
    #[tokio::test]
    async fn a_refused_post_goes_to_another_replica() {
        // A port nothing listens on: bind, note, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = live.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let proxy = Arc::new(Proxy::default());
        proxy.set_backends(vec![
            Backend::new(dead, 1, "v1"),
            Backend::new(live_addr, 1, "v1"),
        ]);
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        tokio::spawn(proxy.clone().serve(front));
        for i in 0..20 {
            let stream = tokio::net::TcpStream::connect(front_addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::builder()
                .method("POST")
                .uri("/orders")
                .header("host", "x")
                .body(Full::new(Bytes::from(format!("order {i}"))))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "request {i}");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, Bytes::from(format!("order {i}")));
        }
    }
}
