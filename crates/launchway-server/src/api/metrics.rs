//! `/metrics` in Prometheus' text format: runs by status, queue depth, job
//! durations and API latency (histograms kept with atomics, no locks on
//! the request path).

use super::{AppState, Caller};
use crate::auth::Role;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A cumulative histogram with fixed upper bounds (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {n}");
    }
}

#[derive(Debug)]
pub struct Metrics {
    pub api: Histogram,
    pub jobs: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            api: Histogram::new(&[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]),
            jobs: Histogram::new(&[1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
        }
    }
}

/// Times every request.
/// Times every request, and logs it: one line at info (method, path
/// without its query, status, milliseconds, client address).
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let from = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let res = next.run(req).await;
    let took = start.elapsed();
    state.metrics.api.observe(took);
    tracing::info!(
        target: "launchway::request",
        "{method} {path} {} {:.1}ms{}",
        res.status().as_u16(),
        took.as_secs_f64() * 1000.0,
        from.map(|f| format!(" from {f}")).unwrap_or_default()
    );
    res
}

pub async fn scrape(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, super::ApiError> {
    caller.require(Role::Viewer)?;
    let counts = state.store.run_counts().await?;
    let mut out = String::new();
    out.push_str("# HELP launchway_runs Runs by status.\n# TYPE launchway_runs gauge\n");
    for (status, n) in &counts {
        let _ = writeln!(out, "launchway_runs{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP launchway_queue_depth Runs waiting for a worker.\n# TYPE launchway_queue_depth gauge\nlaunchway_queue_depth {}",
        counts.get("queued").copied().unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "# HELP launchway_runs_in_progress Runs this server is executing.\n# TYPE launchway_runs_in_progress gauge\nlaunchway_runs_in_progress {}",
        state.engine.in_progress()
    );
    state.metrics.jobs.render(
        &mut out,
        "launchway_job_duration_seconds",
        "Durations of finished jobs.",
    );
    state.metrics.api.render(
        &mut out,
        "launchway_api_request_duration_seconds",
        "Time to answer API requests.",
    );
    // The environments' traffic, per revision and replica (what canary
    // analyses and dashboards read); `environment` is `repository/env`.
    let mut sites = Vec::new();
    if let Some(envs) = &state.environments {
        for (repo, rec) in envs.all().await {
            for s in rec.plane_status().await {
                sites.push((format!("{repo}/{}", s.environment), s.backends));
            }
        }
    }
    out.push_str(&launchway_proxy::metrics_of(&sites));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(2));
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"0.01\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.1\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_sum 2.055\n"), "{s}");
        assert!(s.contains("x_count 3\n"), "{s}");
    }
}
