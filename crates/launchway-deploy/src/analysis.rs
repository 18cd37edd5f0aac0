//! Analysis during a rollout: one template (`analysis_templates.<name>`)
//! measured every `interval`, each measurement Successful, Failed, Error
//! or Inconclusive; the run fails once failures exceed `failure_limit`
//! or errors in a row (the provider could not be asked) exceed
//! `consecutive_error_limit`, is inconclusive once inconclusive
//! measurements exceed `inconclusive_limit`, and succeeds once `count`
//! conclusive measurements were taken within those limits — a measurement
//! that could not decide never counts towards a pass (fail closed).
//!
//! Providers: `builtin` reads the data plane's own per-revision counters
//! (the difference between two snapshots one interval apart), `prometheus`
//! runs an instant query, `web` reads a JSON path from an HTTP answer,
//! `command` is a shell command's exit status. The verdict logic
//! ([`Tally`], [`builtin_value`]) is pure.

use crate::config::strategy::{AnalysisTemplate, Provider};
use launchway_proxy::LATENCY_BUCKETS;
use launchway_proxy::plane::BackendStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Successful,
    Failed,
    Error,
    Inconclusive,
}

/// One measurement, for status and history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    pub template: String,
    pub outcome: Outcome,
    /// The measured value (or why there is none).
    pub value: String,
    /// Unix milliseconds.
    pub at: u64,
}

/// Where a run of measurements stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Running,
    Successful,
    Failed,
    Inconclusive,
}

/// Counts measurements against a template's limits. Pure.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub taken: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub errors_in_a_row: u32,
}

impl Tally {
    pub fn add(&mut self, o: Outcome, t: &AnalysisTemplate) -> Verdict {
        match o {
            Outcome::Error => self.errors_in_a_row += 1,
            Outcome::Failed => {
                self.errors_in_a_row = 0;
                self.failed += 1;
                self.taken += 1;
            }
            Outcome::Inconclusive => {
                self.errors_in_a_row = 0;
                self.inconclusive += 1;
            }
            Outcome::Successful => {
                self.errors_in_a_row = 0;
                self.taken += 1;
            }
        }
        if self.failed > t.failure_limit || self.errors_in_a_row > t.consecutive_error_limit {
            Verdict::Failed
        } else if self.inconclusive > t.inconclusive_limit {
            Verdict::Inconclusive
        } else if self.taken >= t.count {
            Verdict::Successful
        } else {
            Verdict::Running
        }
    }
}

/// What one revision's backends did between two snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    pub requests: u64,
    pub errors: u64,
    /// Answers per latency bucket (not cumulative; last is `+Inf`).
    pub latency: Vec<u64>,
    pub seconds: f64,
}

/// The difference of `revision`'s counters between `before` and `after`.
pub fn window(
    before: &[BackendStatus],
    after: &[BackendStatus],
    revision: &str,
    seconds: f64,
) -> Window {
    let mut w = Window {
        latency: vec![0; LATENCY_BUCKETS.len() + 1],
        seconds,
        ..Window::default()
    };
    for a in after.iter().filter(|b| b.revision == revision) {
        let b = before
            .iter()
            .find(|b| b.addr == a.addr && b.revision == a.revision);
        w.requests += a.requests - b.map_or(0, |b| b.requests.min(a.requests));
        w.errors += a.errors - b.map_or(0, |b| b.errors.min(a.errors));
        for (i, c) in a.latency.iter().enumerate() {
            let prev = b.and_then(|b| b.latency.get(i)).copied().unwrap_or(0);
            if let Some(slot) = w.latency.get_mut(i) {
                *slot += c - prev.min(*c);
            }
        }
    }
    w
}

/// What each revision's replicas have answered so far (cumulative): for
/// `launchway rollout status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RevisionTraffic {
    pub revision: String,
    pub replicas: usize,
    pub weight: u32,
    pub requests: u64,
    pub errors: u64,
    pub latency_p50: Option<f64>,
    pub latency_p99: Option<f64>,
}

/// Per revision, from a data plane's backend counters.
pub fn traffic(backends: &[BackendStatus]) -> Vec<RevisionTraffic> {
    let mut out: Vec<RevisionTraffic> = Vec::new();
    let mut hist: Vec<Vec<u64>> = Vec::new();
    for b in backends {
        let i = match out.iter().position(|t| t.revision == b.revision) {
            Some(i) => i,
            None => {
                out.push(RevisionTraffic {
                    revision: b.revision.clone(),
                    replicas: 0,
                    weight: 0,
                    requests: 0,
                    errors: 0,
                    latency_p50: None,
                    latency_p99: None,
                });
                hist.push(vec![0; LATENCY_BUCKETS.len() + 1]);
                out.len() - 1
            }
        };
        let t = &mut out[i];
        t.replicas += 1;
        t.weight += b.weight;
        t.requests += b.requests;
        t.errors += b.errors;
        for (slot, c) in hist[i].iter_mut().zip(&b.latency) {
            *slot += c;
        }
    }
    let total: u32 = out.iter().map(|t| t.weight).sum();
    for (t, h) in out.iter_mut().zip(&hist) {
        t.latency_p50 = quantile(0.5, h);
        t.latency_p99 = quantile(0.99, h);
        // As a percentage of requests.
        t.weight = (t.weight * 100).checked_div(total).unwrap_or(0);
    }
    out
}

/// A builtin metric over a window; `None` when there was no traffic to
/// measure (inconclusive, not a pass).
pub fn builtin_value(metric: &str, w: &Window) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let (req, err) = (w.requests as f64, w.errors as f64);
    match metric {
        "request_rate" => Some(req / w.seconds.max(1e-9)),
        _ if w.requests == 0 => None,
        "error_rate" => Some(err / req),
        "success_rate" => Some(1.0 - err / req),
        "latency_p50" => quantile(0.5, &w.latency),
        "latency_p95" => quantile(0.95, &w.latency),
        "latency_p99" => quantile(0.99, &w.latency),
        _ => None,
    }
}

/// Prometheus' `histogram_quantile`: linear within the bucket.
fn quantile(q: f64, counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, c) in counts.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        if (seen + c) as f64 >= rank && *c > 0 {
            let lo = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
            let Some(hi) = LATENCY_BUCKETS.get(i).copied() else {
                // +Inf: the highest finite bound, as Prometheus answers.
                return LATENCY_BUCKETS.last().copied();
            };
            #[allow(clippy::cast_precision_loss)]
            let within = (rank - seen as f64) / *c as f64;
            return Some(lo + (hi - lo) * within);
        }
        seen += c;
    }
    LATENCY_BUCKETS.last().copied()
}

/// The population stability index of `actual` against `expected`: ten
/// bins at `expected`'s deciles, a small floor for empty bins. 0 is the
/// same distribution; above 0.1 is a moderate shift, above 0.25 a large
/// one. `None` with fewer than 20 numbers on a side (inconclusive).
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.len() < 20 || actual.len() < 20 {
        return None;
    }
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    let edges: Vec<f64> = (1..10)
        .map(|i| sorted[(i * sorted.len() / 10).min(sorted.len() - 1)])
        .collect();
    let share = |xs: &[f64]| {
        let mut counts = [0usize; 10];
        for x in xs {
            counts[edges.iter().filter(|e| x > *e).count()] += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        counts.map(|c| (c as f64 / xs.len() as f64).max(1e-4))
    };
    let (e, a) = (share(expected), share(actual));
    Some(e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum())
}

/// The Kolmogorov–Smirnov distance between two samples: the largest gap
/// between their cumulative distributions (0 the same, 1 disjoint).
/// `None` with fewer than 20 numbers on a side (inconclusive).
pub fn ks(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 20 || b.len() < 20 {
        return None;
    }
    let sorted = |xs: &[f64]| {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut gap) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value on both sides, then
        // compare the two cumulative shares there.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let d = (i as f64 / na - j as f64 / nb).abs();
        gap = gap.max(d);
    }
    Some(gap)
}

/// What a template's placeholders stand for: `{{canary}}`, `{{stable}}`
/// (revisions), `{{preview_url}}` and `{{stable_url}}`.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub canary: String,
    pub stable: String,
    pub preview_url: String,
    pub stable_url: String,
    /// Where a `command` runs: the new release's files.
    pub workdir: Option<std::path::PathBuf>,
}

impl Vars {
    fn fill(&self, s: &str) -> String {
        s.replace("{{canary}}", &self.canary)
            .replace("{{stable}}", &self.stable)
            .replace("{{preview_url}}", &self.preview_url)
            .replace("{{stable_url}}", &self.stable_url)
    }
}

/// A measured `value` against the template's success condition; `shown`
/// is how the measurement reads in status. A value that cannot be
/// compared is an Error, never a pass.
pub fn judge(t: &AnalysisTemplate, value: serde_json::Value, shown: String) -> (Outcome, String) {
    match t.success_condition.as_ref().map(|c| c.holds(&value)) {
        Some(Some(true)) => (Outcome::Successful, shown),
        Some(Some(false)) => (Outcome::Failed, shown),
        Some(None) => (Outcome::Error, format!("{shown} cannot be compared")),
        None => (Outcome::Error, "no success_condition".into()),
    }
}

/// One measurement of a template that is not builtin (blocking: run it on
/// a blocking thread).
pub fn measure_external(t: &AnalysisTemplate, vars: &Vars) -> (Outcome, String) {
    let judged = |v: serde_json::Value| {
        let shown = v.to_string();
        judge(t, v, shown)
    };
    let agent = crate::http_agent();
    match t.provider {
        Provider::Builtin => (Outcome::Error, "builtin is measured by the rollout".into()),
        Provider::Command => {
            let cmd = vars.fill(t.command.as_deref().unwrap_or("false"));
            let mut c = std::process::Command::new("sh");
            if let Some(d) = &vars.workdir {
                c.current_dir(d);
            }
            match c
                .arg("-c")
                .arg(&cmd)
                .env_clear()
                .envs(crate::local::inherited_env())
                .env("CANARY", &vars.canary)
                .env("STABLE", &vars.stable)
                .env("PREVIEW_URL", &vars.preview_url)
                .env("STABLE_URL", &vars.stable_url)
                .stdin(std::process::Stdio::null())
                .output()
            {
                Ok(o) if o.status.success() => (Outcome::Successful, "exit 0".into()),
                Ok(o) => (Outcome::Failed, format!("{}", o.status)),
                Err(e) => (Outcome::Error, e.to_string()),
            }
        }
        Provider::Web => {
            let url = vars.fill(t.url.as_deref().unwrap_or_default());
            let body = agent
                .get(&url)
                .call()
                .map_err(|e| e.to_string())
                .and_then(|mut r| {
                    let status = r.status().as_u16();
                    let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
                    if status >= 400 {
                        return Err(format!("{url} answered {status}"));
                    }
                    Ok(text)
                });
            match body {
                Err(e) => (Outcome::Error, e),
                Ok(text) => {
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or(serde_json::Value::String(text.trim().to_string()));
                    match t.json_path.as_deref() {
                        None => judged(v),
                        Some(p) => match json_path(&v, p) {
                            Some(x) => judged(x.clone()),
                            None => (Outcome::Error, format!("nothing at {p}")),
                        },
                    }
                }
            }
        }
        Provider::Prometheus => {
            let base = t
                .address
                .as_deref()
                .unwrap_or_default()
                .trim_end_matches('/');
            let query = vars.fill(t.query.as_deref().unwrap_or_default());
            let answer = agent
                .get(&format!("{base}/api/v1/query"))
                .query("query", &query)
                .call()
                .map_err(|e| e.to_string())
                .and_then(|mut r| r.body_mut().read_to_string().map_err(|e| e.to_string()));
            match answer {
                Err(e) => (Outcome::Error, format!("Prometheus at {base}: {e}")),
                Ok(text) => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    // A vector's first sample, or a scalar: [time, "value"].
                    let value = v["data"]["result"]
                        .get(0)
                        .map(|s| &s["value"][1])
                        .or_else(|| Some(&v["data"]["result"][1]).filter(|x| !x.is_null()))
                        .and_then(|x| x.as_str())
                        .and_then(|x| x.parse::<f64>().ok());
                    match value {
                        Some(x) if x.is_nan() => (Outcome::Inconclusive, "NaN".into()),
                        Some(x) => judged(serde_json::json!(x)),
                        None if v["status"] == "success" => {
                            (Outcome::Inconclusive, "no samples".into())
                        }
                        None => (
                            Outcome::Error,
                            v["error"].as_str().unwrap_or("no answer").to_string(),
                        ),
                    }
                }
            }
        }
    }
}

/// `$.a.b[0]`, `$.predictions[0].churn_probability`: a small subset of
/// JSONPath (fields and indexes).
pub fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    let rest = path.strip_prefix('$').unwrap_or(path);
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.strip_suffix(']')?.parse().ok()?;
            cur = cur.get(n)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::strategy::Condition;
    use std::time::Duration;

    fn template(count: u32, failure_limit: u32) -> AnalysisTemplate {
        AnalysisTemplate {
            provider: Provider::Builtin,
            metric: Some("error_rate".into()),
            statistic: crate::config::strategy::DriftStatistic::Psi,
            interval: Duration::from_secs(1),
            count,
            failure_limit,
            inconclusive_limit: 1,
            consecutive_error_limit: 2,
            success_condition: Some(Condition::parse("result < 0.05").unwrap()),
            address: None,
            query: None,
            url: None,
            json_path: None,
            command: None,
        }
    }

    #[test]
    fn limits_decide_the_verdict() {
        let t = template(3, 1);
        let mut tally = Tally::default();
        assert_eq!(tally.add(Outcome::Failed, &t), Verdict::Running);
        assert_eq!(tally.add(Outcome::Successful, &t), Verdict::Running);
        assert_eq!(tally.add(Outcome::Successful, &t), Verdict::Successful);
        let mut tally = Tally::default();
        tally.add(Outcome::Failed, &t);
        assert_eq!(tally.add(Outcome::Failed, &t), Verdict::Failed);
        // A provider that cannot be asked: tolerated a few times in a row,
        // then the analysis fails (it never passes without measuring).
        let mut tally = Tally::default();
        for _ in 0..t.consecutive_error_limit {
            assert_eq!(tally.add(Outcome::Error, &t), Verdict::Running);
        }
        assert_eq!(tally.add(Outcome::Error, &t), Verdict::Failed);
        let mut tally = Tally::default();
        tally.add(Outcome::Inconclusive, &t);
        assert_eq!(tally.add(Outcome::Inconclusive, &t), Verdict::Inconclusive);
        // Inconclusive measurements never make up the count of a pass.
        let t = AnalysisTemplate {
            inconclusive_limit: 5,
            ..template(2, 0)
        };
        let mut tally = Tally::default();
        assert_eq!(tally.add(Outcome::Inconclusive, &t), Verdict::Running);
        assert_eq!(tally.add(Outcome::Inconclusive, &t), Verdict::Running);
        assert_eq!(tally.add(Outcome::Successful, &t), Verdict::Running);
        assert_eq!(tally.add(Outcome::Successful, &t), Verdict::Successful);
    }

    fn status(revision: &str, requests: u64, errors: u64, latency: Vec<u64>) -> BackendStatus {
        BackendStatus {
            addr: "127.0.0.1:1".parse().unwrap(),
            weight: 1,
            revision: revision.into(),
            in_flight: 0,
            requests,
            errors,
            latency,
            latency_sum: 0.0,
        }
    }

    #[test]
    fn builtin_metrics_come_from_counter_differences() {
        let mut lat0 = vec![0; 13];
        lat0[3] = 10;
        let mut lat1 = lat0.clone();
        lat1[3] += 90; // ≤ 10 ms
        lat1[6] += 10; // ≤ 100 ms
        let before = vec![status("v2", 100, 1, lat0), status("v1", 5000, 0, vec![])];
        let after = vec![status("v2", 300, 21, lat1), status("v1", 9000, 0, vec![])];
        let w = window(&before, &after, "v2", 10.0);
        assert_eq!((w.requests, w.errors), (200, 20));
        assert_eq!(builtin_value("error_rate", &w), Some(0.1));
        assert_eq!(builtin_value("request_rate", &w), Some(20.0));
        let p50 = builtin_value("latency_p50", &w).unwrap();
        assert!(p50 > 0.005 && p50 <= 0.01, "{p50}");
        let p99 = builtin_value("latency_p99", &w).unwrap();
        assert!(p99 > 0.05 && p99 <= 0.1, "{p99}");
        let idle = window(&after, &after, "v2", 10.0);
        assert_eq!(
            builtin_value("error_rate", &idle),
            None,
            "no traffic: inconclusive"
        );
    }

    #[test]
    fn psi_sees_a_shift_and_not_noise() {
        let base: Vec<f64> = (0..1000).map(|i| f64::from(i % 100) / 100.0).collect();
        let same: Vec<f64> = (0..500).map(|i| f64::from((i * 7) % 100) / 100.0).collect();
        let shifted: Vec<f64> = base.iter().map(|x| (x + 0.3).min(1.0)).collect();
        assert!(psi(&base, &same).unwrap() < 0.05, "{:?}", psi(&base, &same));
        assert!(
            psi(&base, &shifted).unwrap() > 0.25,
            "{:?}",
            psi(&base, &shifted)
        );
        assert_eq!(psi(&base, &[0.5; 5]), None, "too few to say");
    }

    #[test]
    fn ks_is_the_largest_gap_between_the_distributions() {
        let base: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
        assert!(ks(&base, &base).unwrap() < 1e-9);
        let shifted: Vec<f64> = base.iter().map(|x| x + 0.5).collect();
        // Half of one lies below everything of the other.
        let d = ks(&base, &shifted).unwrap();
        assert!((d - 0.5).abs() < 0.01, "{d}");
        let apart: Vec<f64> = base.iter().map(|x| x + 10.0).collect();
        assert!((ks(&base, &apart).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(ks(&base, &[0.5; 5]), None, "too few to say");
    }

    #[test]
    fn json_paths() {
        let v = serde_json::json!({"status": "ok", "predictions": [{"p": 0.3}]});
        assert_eq!(json_path(&v, "$.status"), Some(&serde_json::json!("ok")));
        assert_eq!(
            json_path(&v, "$.predictions[0].p"),
            Some(&serde_json::json!(0.3))
        );
        assert_eq!(json_path(&v, "$.nope"), None);
    }
}
