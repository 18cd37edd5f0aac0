//! `strategy:` (canary or blue-green) and `analysis_templates:` — how a new
//! release takes traffic, and what decides whether it may go on. Argo
//! Rollouts' camelCase spellings are accepted next to ours. A strategy is
//! taken whole from the most specific file that has one; templates merge
//! by name across `_base.yaml` and the environment's file.

use super::{Layers, Node, NodeKind};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a new release replaces the one that serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Strategy {
    /// Every replica of the new release healthy, then all traffic at once.
    #[default]
    AllAtOnce,
    Canary(Canary),
    BlueGreen(BlueGreen),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub steps: Vec<Step>,
    /// Runs from `start_at_step` until the rollout ends.
    pub background: Option<(Vec<String>, usize)>,
    pub on_failure: OnFailure,
    pub canary_replicas: u32,
    /// The stable replicas kept while the canary runs (the rest stop once
    /// the canary serves, and start again on an abort); all by default.
    pub stable_replicas: Option<u32>,
    pub traffic: Traffic,
}

/// How requests pick a side beyond the weights.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traffic {
    /// A user stays on one side: the side follows this request header's
    /// or cookie's value (hashed against the weight).
    pub sticky: Option<Sticky>,
    /// The header testers use to pick a side (`always`/`never`).
    pub header: Option<String>,
    /// Percent of the stable side's requests also sent to the canary,
    /// whose answers are discarded (shadow traffic).
    pub mirror: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    Header(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Percent of requests to the new release.
    SetWeight(u32),
    /// `None`: until `launchway rollout promote`.
    Pause(Option<Duration>),
    /// Analysis templates that must pass before the next step.
    Analysis(Vec<String>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Traffic back to stable and a revert commit on the tracked branch.
    #[default]
    Revert,
    /// Traffic back to stable; Degraded until a new commit.
    Hold,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    pub auto_promote: bool,
    pub auto_promote_after: Option<Duration>,
    pub scale_down_delay: Duration,
    pub pre_promotion: Vec<String>,
    pub post_promotion: Vec<String>,
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// From the data plane's own per-revision counters.
    Builtin,
    Prometheus,
    /// An HTTP answer, a value at a JSON path.
    Web,
    /// A command's exit code.
    Command,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisTemplate {
    pub provider: Provider,
    /// Builtin: error_rate, success_rate, request_rate, latency_p50/p95/p99,
    /// prediction_drift (how far the canary answers' numbers at
    /// `json_path` are from the stable's, by `statistic`).
    pub metric: Option<String>,
    /// prediction_drift's measure of distance.
    pub statistic: DriftStatistic,
    pub interval: Duration,
    pub count: u32,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    /// Measurement errors in a row (the provider could not be asked)
    /// tolerated before the analysis fails; 4 by default, as Argo's.
    pub consecutive_error_limit: u32,
    pub success_condition: Option<Condition>,
    pub address: Option<String>,
    pub query: Option<String>,
    pub url: Option<String>,
    pub json_path: Option<String>,
    pub command: Option<String>,
}

/// How prediction_drift compares two sets of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftStatistic {
    /// Population stability index over ten bins (0.1 moderate, 0.25 large).
    #[default]
    Psi,
    /// Kolmogorov–Smirnov distance: the largest gap between the two
    /// cumulative distributions, 0 to 1.
    Ks,
}

/// `result < 0.05`, `result == "ok"`, clauses joined by `and`/`&&` or
/// `or`/`||` (not both).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub text: String,
    clauses: Vec<(Op, Literal)>,
    any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let t = text.trim();
        let (parts, any): (Vec<&str>, bool) = if t.contains(" or ") || t.contains("||") {
            if t.contains(" and ") || t.contains("&&") {
                return Err("mixing 'and' and 'or' is not supported; use one".into());
            }
            (t.split(" or ").flat_map(|p| p.split("||")).collect(), true)
        } else {
            (
                t.split(" and ").flat_map(|p| p.split("&&")).collect(),
                false,
            )
        };
        let mut clauses = Vec::new();
        for part in parts {
            let p = part.trim();
            let rest = p.strip_prefix("result").ok_or_else(|| {
                format!("'{p}': a condition compares `result`, e.g. result < 0.05")
            })?;
            let rest = rest.trim_start();
            let (op, lit) = [
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<", Op::Lt),
                (">", Op::Gt),
            ]
            .iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|l| (*op, l.trim())))
            .ok_or_else(|| format!("'{p}': expected one of < <= > >= == != after `result`"))?;
            let lit = if let Some(s) = lit
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .or_else(|| lit.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')))
            {
                Literal::Text(s.to_string())
            } else if lit == "true" || lit == "false" {
                Literal::Bool(lit == "true")
            } else {
                Literal::Number(lit.parse::<f64>().map_err(|_| {
                    format!("'{lit}' is not a number, a quoted string, true or false")
                })?)
            };
            if matches!(lit, Literal::Text(_) | Literal::Bool(_)) && !matches!(op, Op::Eq | Op::Ne)
            {
                return Err(format!("'{p}': only == and != compare text"));
            }
            clauses.push((op, lit));
        }
        Ok(Condition {
            text: t.to_string(),
            clauses,
            any,
        })
    }

    /// Whether `result` meets the condition; `None` when it cannot be
    /// compared (a measurement error).
    pub fn holds(&self, result: &serde_json::Value) -> Option<bool> {
        let mut out = Vec::new();
        for (op, lit) in &self.clauses {
            let ok = match (lit, result) {
                (Literal::Number(n), v) => {
                    let x = v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
                    match op {
                        Op::Lt => x < *n,
                        Op::Le => x <= *n,
                        Op::Gt => x > *n,
                        Op::Ge => x >= *n,
                        Op::Eq => (x - n).abs() < f64::EPSILON,
                        Op::Ne => (x - n).abs() >= f64::EPSILON,
                    }
                }
                (Literal::Text(s), v) => {
                    let x = v.as_str()?;
                    (x == s) == (*op == Op::Eq)
                }
                (Literal::Bool(b), v) => {
                    let x = v.as_bool()?;
                    (x == *b) == (*op == Op::Eq)
                }
            };
            out.push(ok);
        }
        Some(if self.any {
            out.iter().any(|b| *b)
        } else {
            out.iter().all(|b| *b)
        })
    }
}

/// `30s`, `5m`, `1h`, `250ms`, or a number of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 30s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (ms, s, m, h)")),
    };
    if !(0.0..=86_400.0 * 30.0).contains(&secs) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The first of `names` a mapping has.
fn field<'a>(map: &'a Node, names: &[&str]) -> Option<&'a Node> {
    names.iter().find_map(|n| map.get(n))
}

struct Ctx<'l, 'a> {
    layers: &'l mut Layers<'a>,
    file: String,
    /// Template names the strategy refers to, where.
    refs: Vec<(String, super::Span)>,
}

impl Ctx<'_, '_> {
    fn err(&mut self, n: &Node, msg: String) {
        let file = self.file.clone();
        self.layers.err(&file, n.span, "strategy", msg, None);
    }

    fn known(&mut self, map: &Node, what: &str, allowed: &[&str]) {
        for (k, _) in map.as_map().unwrap_or_default() {
            let key = k.scalar_string().unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                let file = self.file.clone();
                self.layers.err(
                    &file,
                    k.span,
                    "unknown-key",
                    format!("unknown key '{key}' in {what}"),
                    Some(format!("expected one of: {}", allowed.join(", "))),
                );
            }
        }
    }

    fn uint(&mut self, n: &Node, what: &str, max: u64) -> Option<u64> {
        match n.kind {
            NodeKind::Number(x) if x.fract() == 0.0 && x >= 0.0 && x <= max as f64 =>
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(x as u64)
            }
            _ => {
                self.err(n, format!("{what} must be a whole number from 0 to {max}"));
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let text = match &n.kind {
            NodeKind::Number(x) => format!("{x}"),
            _ => n.scalar_string().unwrap_or_default(),
        };
        match duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n, format!("{what}: {e}"));
                None
            }
        }
    }

    fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        match n.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.err(n, format!("{what} must be true or false"));
                None
            }
        }
    }

    /// `[a, b]`, or Argo's `[{templateName: a}]`.
    fn templates(&mut self, n: &Node, what: &str) -> Vec<String> {
        let Some(items) = n.as_seq() else {
            self.err(n, format!("{what} must be a list of template names"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for it in items {
            let name = it.as_str().map(str::to_string).or_else(|| {
                field(it, &["templateName", "template_name"]).and_then(Node::scalar_string)
            });
            match name {
                Some(s) => {
                    self.refs.push((s.clone(), it.span));
                    out.push(s);
                }
                None => self.err(it, format!("{what}: expected a template name")),
            }
        }
        out
    }

    fn on_failure(&mut self, map: &Node) -> OnFailure {
        match field(map, &["on_failure", "onFailure"]) {
            None => OnFailure::Revert,
            Some(n) => match n.as_str() {
                Some("revert") => OnFailure::Revert,
                Some("hold") => OnFailure::Hold,
                _ => {
                    self.err(n, "on_failure must be revert or hold".into());
                    OnFailure::Revert
                }
            },
        }
    }

    fn canary(&mut self, c: &Node) -> Canary {
        self.known(
            c,
            "strategy.canary",
            &[
                "steps",
                "analysis",
                "on_failure",
                "onFailure",
                "stable_replicas",
                "stableReplicas",
                "canary_replicas",
                "canaryReplicas",
                "traffic",
            ],
        );
        let mut steps = Vec::new();
        if let Some(list) = field(c, &["steps"]) {
            match list.as_seq() {
                Some(items) => {
                    for s in items {
                        if let Some(step) = self.step(s) {
                            steps.push(step);
                        }
                    }
                }
                None => self.err(list, "strategy.canary.steps must be a list".into()),
            }
        }
        let background = field(c, &["analysis"]).map(|a| {
            self.known(
                a,
                "strategy.canary.analysis",
                &["templates", "start_at_step", "startingStep"],
            );
            let t = field(a, &["templates"])
                .map(|t| self.templates(t, "analysis.templates"))
                .unwrap_or_default();
            let start = field(a, &["start_at_step", "startingStep"])
                .and_then(|n| self.uint(n, "analysis.start_at_step", 1000))
                .unwrap_or(0);
            (t, usize::try_from(start).unwrap_or(0))
        });
        let canary_replicas = field(c, &["canary_replicas", "canaryReplicas"])
            .and_then(|n| self.uint(n, "canary_replicas", 1000))
            .map_or(1, |n| u32::try_from(n).unwrap_or(1))
            .max(1);
        let traffic = field(c, &["traffic"])
            .map(|t| self.traffic(t))
            .unwrap_or_default();
        let stable_replicas = field(c, &["stable_replicas", "stableReplicas"])
            .and_then(|n| self.uint(n, "stable_replicas", 1000))
            .map(|n| u32::try_from(n).unwrap_or(1).max(1));
        Canary {
            steps,
            background,
            on_failure: self.on_failure(c),
            canary_replicas,
            stable_replicas,
            traffic,
        }
    }

    fn traffic(&mut self, t: &Node) -> Traffic {
        self.known(
            t,
            "strategy.canary.traffic",
            &["sticky", "header", "mirror"],
        );
        let header_name = |ctx: &mut Self, n: &Node, what: &str| {
            let v = n.scalar_string().unwrap_or_default();
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Some(v)
            } else {
                ctx.err(n, format!("{what} must be a header or cookie name"));
                None
            }
        };
        let sticky = field(t, &["sticky"]).and_then(|s| {
            self.known(s, "traffic.sticky", &["header", "cookie"]);
            match (field(s, &["header"]), field(s, &["cookie"])) {
                (Some(h), None) => header_name(self, h, "sticky.header").map(Sticky::Header),
                (None, Some(c)) => header_name(self, c, "sticky.cookie").map(Sticky::Cookie),
                _ => {
                    self.err(s, "sticky takes one of: header: NAME, cookie: NAME".into());
                    None
                }
            }
        });
        let header = field(t, &["header"]).and_then(|h| header_name(self, h, "traffic.header"));
        let mirror = field(t, &["mirror"])
            .and_then(|m| self.uint(m, "traffic.mirror (percent)", 100))
            .map_or(0, |m| u32::try_from(m).unwrap_or(0));
        Traffic {
            sticky,
            header,
            mirror,
        }
    }

    fn step(&mut self, s: &Node) -> Option<Step> {
        let map = s.as_map().filter(|m| m.len() == 1);
        let Some([(k, v)]) = map else {
            self.err(
                s,
                "a step is one of: set_weight: N, pause: {duration: 30s}, analysis: {templates: [...]}".into(),
            );
            return None;
        };
        match k.scalar_string().unwrap_or_default().as_str() {
            "set_weight" | "setWeight" => {
                let w = self.uint(v, "set_weight", 100)?;
                Some(Step::SetWeight(u32::try_from(w).unwrap_or(100)))
            }
            "pause" => {
                if matches!(v.kind, NodeKind::Null) {
                    return Some(Step::Pause(None));
                }
                self.known(v, "pause", &["duration"]);
                Some(Step::Pause(match field(v, &["duration"]) {
                    Some(d) => Some(self.duration(d, "pause.duration")?),
                    None => None,
                }))
            }
            "analysis" => {
                self.known(v, "analysis step", &["templates"]);
                let t = field(v, &["templates"])
                    .map(|t| self.templates(t, "analysis.templates"))
                    .unwrap_or_default();
                Some(Step::Analysis(t))
            }
            other => {
                self.err(
                    k,
                    format!("unknown step '{other}' (set_weight, pause, analysis)"),
                );
                None
            }
        }
    }

    fn blue_green(&mut self, b: &Node) -> BlueGreen {
        self.known(
            b,
            "strategy.blue_green",
            &[
                "auto_promote",
                "autoPromotionEnabled",
                "auto_promote_after",
                "autoPromotionSeconds",
                "scale_down_delay",
                "scaleDownDelaySeconds",
                "pre_promotion_analysis",
                "prePromotionAnalysis",
                "post_promotion_analysis",
                "postPromotionAnalysis",
                "on_failure",
                "onFailure",
            ],
        );
        let auto_promote = field(b, &["auto_promote", "autoPromotionEnabled"])
            .and_then(|n| self.boolean(n, "auto_promote"))
            .unwrap_or(true);
        let auto_promote_after = field(b, &["auto_promote_after", "autoPromotionSeconds"])
            .and_then(|n| self.duration(n, "auto_promote_after"));
        let scale_down_delay = field(b, &["scale_down_delay", "scaleDownDelaySeconds"])
            .and_then(|n| self.duration(n, "scale_down_delay"))
            .unwrap_or(Duration::from_secs(30));
        let mut analysis = |keys: &[&str], what: &str| {
            field(b, keys)
                .map(|a| {
                    field(a, &["templates"])
                        .map(|t| self.templates(t, what))
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        };
        let pre_promotion = analysis(
            &["pre_promotion_analysis", "prePromotionAnalysis"],
            "pre_promotion_analysis",
        );
        let post_promotion = analysis(
            &["post_promotion_analysis", "postPromotionAnalysis"],
            "post_promotion_analysis",
        );
        BlueGreen {
            auto_promote,
            auto_promote_after,
            scale_down_delay,
            pre_promotion,
            post_promotion,
            on_failure: self.on_failure(b),
        }
    }

    fn template(&mut self, t: &Node, name: &str) -> Option<AnalysisTemplate> {
        self.known(
            t,
            &format!("analysis_templates.{name}"),
            &[
                "provider",
                "metric",
                "statistic",
                "interval",
                "count",
                "failure_limit",
                "failureLimit",
                "inconclusive_limit",
                "inconclusiveLimit",
                "consecutive_error_limit",
                "consecutiveErrorLimit",
                "success_condition",
                "successCondition",
                "address",
                "query",
                "url",
                "json_path",
                "jsonPath",
                "command",
            ],
        );
        let provider = match field(t, &["provider"]).and_then(Node::as_str) {
            None | Some("builtin") => Provider::Builtin,
            Some("prometheus") => Provider::Prometheus,
            Some("web") => Provider::Web,
            Some("command") => Provider::Command,
            Some(other) => {
                if let Some(n) = field(t, &["provider"]) {
                    self.err(
                        n,
                        format!("unknown provider '{other}' (builtin, prometheus, web, command)"),
                    );
                }
                return None;
            }
        };
        let s = |keys: &[&str]| field(t, keys).and_then(Node::scalar_string);
        let metric = s(&["metric"]);
        let builtin = [
            "error_rate",
            "success_rate",
            "request_rate",
            "latency_p50",
            "latency_p95",
            "latency_p99",
            "prediction_drift",
        ];
        if metric.as_deref() == Some("prediction_drift")
            && field(t, &["json_path", "jsonPath"]).is_none()
        {
            self.err(
                t,
                format!("template '{name}': prediction_drift compares the numbers at a json_path of the answers (e.g. $.predictions[*].churn_probability)"),
            );
        }
        let statistic = match field(t, &["statistic"]) {
            None => DriftStatistic::Psi,
            Some(n) => match n.scalar_string().as_deref() {
                Some("psi") => DriftStatistic::Psi,
                Some("ks") => DriftStatistic::Ks,
                other => {
                    self.err(
                        n,
                        format!(
                            "unknown statistic '{}' (psi: population stability index, ks: Kolmogorov–Smirnov distance)",
                            other.unwrap_or_default()
                        ),
                    );
                    DriftStatistic::Psi
                }
            },
        };
        if let Some(n) = field(t, &["statistic"])
            && metric.as_deref() != Some("prediction_drift")
        {
            self.err(
                n,
                format!("template '{name}': statistic applies to metric: prediction_drift only"),
            );
        }
        if provider == Provider::Builtin {
            match (&metric, field(t, &["metric"])) {
                (Some(m), Some(n)) if !builtin.contains(&m.as_str()) => {
                    self.err(
                        n,
                        format!("unknown builtin metric '{m}' ({})", builtin.join(", ")),
                    );
                }
                (None, _) => self.err(t, format!("template '{name}' needs a metric")),
                _ => {}
            }
        }
        let needs = |k: &str| match provider {
            Provider::Prometheus => k == "query" || k == "address",
            Provider::Web => k == "url",
            Provider::Command => k == "command",
            Provider::Builtin => false,
        };
        for k in ["query", "address", "url", "command"] {
            if needs(k) && field(t, &[k]).is_none() {
                self.err(t, format!("template '{name}' needs '{k}' for its provider"));
            }
        }
        let condition = match field(t, &["success_condition", "successCondition"]) {
            Some(n) => match Condition::parse(&n.scalar_string().unwrap_or_default()) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.err(n, format!("success_condition: {e}"));
                    None
                }
            },
            None if provider == Provider::Command => None,
            None => {
                self.err(t, format!("template '{name}' needs a success_condition"));
                None
            }
        };
        let count = |ctx: &mut Self, keys: &[&str], what: &str, default: u32| {
            field(t, keys)
                .and_then(|n| ctx.uint(n, what, 10_000))
                .map_or(default, |v| u32::try_from(v).unwrap_or(default))
        };
        Some(AnalysisTemplate {
            provider,
            metric,
            statistic,
            interval: field(t, &["interval"])
                .and_then(|n| self.duration(n, "interval"))
                .unwrap_or(Duration::from_secs(10)),
            count: count(self, &["count"], "count", 1).max(1),
            failure_limit: count(self, &["failure_limit", "failureLimit"], "failure_limit", 0),
            inconclusive_limit: count(
                self,
                &["inconclusive_limit", "inconclusiveLimit"],
                "inconclusive_limit",
                0,
            ),
            consecutive_error_limit: count(
                self,
                &["consecutive_error_limit", "consecutiveErrorLimit"],
                "consecutive_error_limit",
                4,
            ),
            success_condition: condition,
            address: s(&["address"]),
            query: s(&["query"]),
            url: s(&["url"]),
            json_path: s(&["json_path", "jsonPath"]),
            command: s(&["command"]),
        })
    }
}

/// Reads `strategy` and `analysis_templates`; problems go to `layers`.
pub(crate) fn read(layers: &mut Layers<'_>) -> (Strategy, BTreeMap<String, AnalysisTemplate>) {
    // Templates: by name, the most specific file wins.
    let mut templates = BTreeMap::new();
    let sources: Vec<(String, Node)> = layers
        .layers
        .iter()
        .rev()
        .filter_map(|(f, root)| Some((f.to_string(), root.get("analysis_templates")?.clone())))
        .collect();
    for (file, node) in sources {
        let mut ctx = Ctx {
            layers: &mut *layers,
            file,
            refs: Vec::new(),
        };
        let Some(map) = node.as_map() else {
            ctx.err(
                &node,
                "analysis_templates must be a mapping of name: template".into(),
            );
            continue;
        };
        for (k, v) in map {
            let name = k.scalar_string().unwrap_or_default();
            if let Some(t) = ctx.template(v, &name) {
                templates.insert(name, t);
            }
        }
    }
    let Some((file, node)) = layers
        .get(&["strategy"])
        .map(|(f, n)| (f.to_string(), n.clone()))
    else {
        return (Strategy::AllAtOnce, templates);
    };
    let mut ctx = Ctx {
        layers: &mut *layers,
        file,
        refs: Vec::new(),
    };
    if matches!(node.kind, NodeKind::Null) {
        return (Strategy::AllAtOnce, templates);
    }
    ctx.known(&node, "strategy", &["canary", "blue_green", "blueGreen"]);
    let canary = field(&node, &["canary"]);
    let blue_green = field(&node, &["blue_green", "blueGreen"]);
    let strategy = match (canary, blue_green) {
        (Some(_), Some(_)) => {
            ctx.err(&node, "strategy is canary or blue_green, not both".into());
            Strategy::AllAtOnce
        }
        (Some(c), None) => Strategy::Canary(ctx.canary(c)),
        (None, Some(b)) => Strategy::BlueGreen(ctx.blue_green(b)),
        (None, None) => Strategy::AllAtOnce,
    };
    // Every template the strategy names must exist.
    for (n, span) in std::mem::take(&mut ctx.refs) {
        if !templates.contains_key(&n) {
            let file = ctx.file.clone();
            ctx.layers.err(
                &file,
                span,
                "strategy",
                format!("analysis template '{n}' is not defined in analysis_templates"),
                Some(match templates.keys().next() {
                    Some(_) => format!(
                        "defined: {}",
                        templates.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    None => "define it under analysis_templates".into(),
                }),
            );
        }
    }
    (strategy, templates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: a condition or an error, never a panic; a parsed
        /// condition judges any value without panicking.
        #[test]
        fn conditions_and_durations_never_panic(text in ".{0,40}", x in any::<f64>()) {
            if let Ok(c) = Condition::parse(&text) {
                let _ = c.holds(&serde_json::json!(x));
                let _ = c.holds(&serde_json::json!(text));
            }
            let _ = duration(&text);
        }

        /// `result < N` holds exactly for the numbers below N.
        #[test]
        fn a_threshold_means_what_it_says(n in -1e6f64..1e6, x in -1e6f64..1e6) {
            let c = Condition::parse(&format!("result < {n}")).unwrap();
            prop_assert_eq!(c.holds(&serde_json::json!(x)), Some(x < n));
        }
    }

    #[test]
    fn conditions_and_durations() {
        let c = Condition::parse("result < 0.05").unwrap();
        assert_eq!(c.holds(&serde_json::json!(0.01)), Some(true));
        assert_eq!(c.holds(&serde_json::json!(0.2)), Some(false));
        assert_eq!(c.holds(&serde_json::json!("x")), None);
        let c = Condition::parse("result == \"ok\"").unwrap();
        assert_eq!(c.holds(&serde_json::json!("ok")), Some(true));
        let c = Condition::parse("result >= 0.9 and result <= 1").unwrap();
        assert_eq!(c.holds(&serde_json::json!(0.95)), Some(true));
        assert_eq!(c.holds(&serde_json::json!(1.5)), Some(false));
        assert!(Condition::parse("x < 1").is_err());
        assert!(Condition::parse("result ~ 1").is_err());
        assert!(Condition::parse("result < \"a\"").is_err());
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("12").unwrap(), Duration::from_secs(12));
        assert!(duration("soon").is_err());
        assert!(duration("3d").is_err());
    }
}
