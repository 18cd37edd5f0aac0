//! One environment's configuration: `configs/environments/<name>.yaml`,
//! laid over the shared `_base.yaml` when there is one (mappings merge key
//! by key, the environment's file wins; anything else is replaced).
//!
//! The keys teams already write are accepted as they are; Launchway adds
//! its own (release, image, run, target, protection…). The service's
//! environment variables come from the model and logging keys, the `env:`
//! map, and (for compatibility) UPPER_CASE top-level keys; any other key
//! Launchway does not know is a warning with the closest known key, never
//! silently passed on (a typo must not override `PATH` or `log_level`).
//! YAML merge keys (`<<: *defaults`) are merged. Every problem is
//! reported at the file, line and column of the value that causes it.
//! Pure: texts in, values and diagnostics out.

pub mod quantity;
pub mod strategy;

use indexmap::IndexMap;
use launchway_workflow::Diagnostic;
use launchway_yaml::{Node, NodeKind, Span};

/// The keys with a meaning; everything else is passed to the service.
pub const KNOWN_KEYS: &[&str] = &[
    "environment",
    "service",
    "replicas",
    "resources",
    "autoscaling",
    "model_name",
    "model_stage",
    "model_version",
    "mlflow_uri",
    "log_level",
    "release",
    "image",
    "run",
    "target",
    "namespace",
    "protection",
    "self_heal",
    "env",
    "strategy",
    "analysis_templates",
];

/// Variables Launchway sets for every replica itself: `env:` cannot.
const RESERVED_VARS: &[&str] = &["PORT", "MODEL_PATH"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// Supervised processes on this machine behind the built-in proxy.
    #[default]
    Local,
    Kubernetes,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Kubernetes => "kubernetes",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Amounts {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub requests: Amounts,
    pub limits: Amounts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    pub enabled: bool,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu_percent: u32,
}

/// How the service runs (Launchway's keys).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub command: Option<String>,
    /// Run once per release before the replicas start (e.g. a virtualenv).
    pub setup: Option<String>,
    pub port: u16,
    pub health_path: String,
}

impl Default for RunSpec {
    fn default() -> RunSpec {
        RunSpec {
            command: None,
            setup: None,
            port: 8080,
            health_path: "/health".into(),
        }
    }
}

/// Who may deploy to an environment (`protection:`), read by the
/// deployment gates of runs and of the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protection {
    pub required_reviewers: Vec<String>,
    pub prevent_self_review: bool,
    pub wait_timer_minutes: u64,
    /// Branch patterns allowed to deploy; empty means any.
    pub branches: Vec<String>,
}

impl Protection {
    pub fn needs_approval(&self) -> bool {
        !self.required_reviewers.is_empty()
    }

    /// Whether a ref may deploy here.
    pub fn allows_ref(&self, git_ref: &str) -> Result<bool, String> {
        if self.branches.is_empty() {
            return Ok(true);
        }
        let list =
            launchway_workflow::glob::PatternList::new(self.branches.iter().map(String::as_str))?;
        let name = git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(git_ref);
        Ok(list.matches(name))
    }

    /// The rules in a merged environment document (base and overlay).
    fn of(merged: &serde_json::Value) -> Protection {
        let p = &merged["protection"];
        let list = |k: &str| -> Vec<String> {
            p[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| match v {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Null => None,
                            other => Some(other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Protection {
            required_reviewers: list("required_reviewers"),
            prevent_self_review: p["prevent_self_review"].as_bool().unwrap_or(false),
            wait_timer_minutes: p["wait_timer"].as_u64().unwrap_or(0),
            branches: list("branches"),
        }
    }
}

/// A validated environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The file stem: `prod` for `prod.yaml`.
    pub name: String,
    /// `environment:` — the name teams use (`production`).
    pub display_name: Option<String>,
    pub service: Option<String>,
    pub replicas: u32,
    pub resources: Resources,
    pub autoscaling: Option<Autoscaling>,
    pub release: Option<String>,
    pub image: Option<String>,
    pub run: RunSpec,
    pub target: Target,
    pub namespace: Option<String>,
    pub self_heal: bool,
    /// Environment variables for the service: the model and logging keys
    /// and every key Launchway does not know, upper-cased (maps and lists
    /// as JSON).
    pub config: IndexMap<String, String>,
    pub protection: Protection,
    /// How a new release takes traffic (canary, blue-green, all at once).
    pub strategy: strategy::Strategy,
    /// What analysis steps measure, by name.
    pub analysis_templates: std::collections::BTreeMap<String, strategy::AnalysisTemplate>,
    /// The merged document, for `env show` and `env diff`.
    pub merged: serde_json::Value,
}

/// A problem in one of the files.
#[derive(Debug, Clone)]
pub struct FileDiagnostic {
    pub file: String,
    pub diagnostic: Diagnostic,
}

/// A parsed file: its path, text and root node (if it parsed).
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub environment: Option<Environment>,
    pub diagnostics: Vec<FileDiagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.diagnostic.severity == launchway_workflow::Severity::Error)
    }
}

/// The files of one environment, most specific first.
struct Layers<'a> {
    layers: Vec<(&'a str, Node)>,
    diags: Vec<FileDiagnostic>,
}

impl Layers<'_> {
    /// The value at `path` after merging, and the file it comes from.
    fn get(&self, path: &[&str]) -> Option<(&str, &Node)> {
        for (file, root) in &self.layers {
            let mut node = root;
            let mut found = true;
            for (i, key) in path.iter().enumerate() {
                match node.get(key) {
                    Some(n) => node = n,
                    None => {
                        found = false;
                        break;
                    }
                }
                // A non-mapping here replaces whatever the base has below it.
                if i + 1 < path.len() && node.as_map().is_none() {
                    return None;
                }
            }
            if found {
                return Some((file, node));
            }
        }
        None
    }

    fn warn(
        &mut self,
        file: &str,
        span: Span,
        code: &'static str,
        msg: String,
        hint: Option<String>,
    ) {
        self.push(file, Diagnostic::warning(code, span, msg), hint);
    }

    fn err(
        &mut self,
        file: &str,
        span: Span,
        code: &'static str,
        msg: String,
        hint: Option<String>,
    ) {
        self.push(file, Diagnostic::error(code, span, msg), hint);
    }

    fn push(&mut self, file: &str, mut d: Diagnostic, hint: Option<String>) {
        d.hint = hint;
        self.diags.push(FileDiagnostic {
            file: file.to_string(),
            diagnostic: d,
        });
    }

    fn string(&mut self, path: &[&str]) -> Option<String> {
        let (file, n) = self.get(path)?;
        match &n.kind {
            NodeKind::Null => None,
            NodeKind::String(_) | NodeKind::Number(_) | NodeKind::Bool(_) => n.scalar_string(),
            _ => {
                let (file, span, t) = (file.to_string(), n.span, n.type_name());
                self.err(
                    &file,
                    span,
                    "wrong-type",
                    format!("{} must be a string, found {t}", path.join(".")),
                    None,
                );
                None
            }
        }
    }

    fn uint(&mut self, path: &[&str], min: u64, max: u64) -> Option<(u64, String, Span)> {
        let (file, n) = self.get(path)?;
        let (file, span) = (file.to_string(), n.span);
        match n.kind {
            NodeKind::Number(x) if x.fract() == 0.0 && x >= min as f64 && x <= max as f64 =>
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some((x as u64, file, span))
            }
            NodeKind::Number(x) => {
                self.err(
                    &file,
                    span,
                    "out-of-range",
                    format!(
                        "{} must be a whole number from {min} to {max}, found {x}",
                        path.join(".")
                    ),
                    None,
                );
                None
            }
            _ => {
                let t = n.type_name();
                self.err(
                    &file,
                    span,
                    "wrong-type",
                    format!("{} must be a number, found {t}", path.join(".")),
                    None,
                );
                None
            }
        }
    }

    fn boolean(&mut self, path: &[&str]) -> Option<bool> {
        let (file, n) = self.get(path)?;
        match n.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                let (file, span, t) = (file.to_string(), n.span, n.type_name());
                self.err(
                    &file,
                    span,
                    "wrong-type",
                    format!("{} must be true or false, found {t}", path.join(".")),
                    None,
                );
                None
            }
        }
    }

    /// Checks a mapping's keys at `path` in every layer that has it.
    fn keys(&mut self, path: &[&str], allowed: &[&str]) {
        let mut problems = Vec::new();
        for (file, root) in &self.layers {
            let mut node = Some(root);
            for k in path {
                node = node.and_then(|n| n.get(k));
            }
            let Some(node) = node else { continue };
            let Some(map) = node.as_map() else {
                if !matches!(node.kind, NodeKind::Null) {
                    problems.push((
                        file.to_string(),
                        node.span,
                        "wrong-type",
                        format!(
                            "{} must be a mapping, found {}",
                            path.join("."),
                            node.type_name()
                        ),
                        None,
                    ));
                }
                continue;
            };
            for (k, _) in map {
                let key = k.scalar_string().unwrap_or_default();
                if !allowed.contains(&key.as_str()) {
                    problems.push((
                        file.to_string(),
                        k.span,
                        "unknown-key",
                        format!("unknown key '{key}' in {}", path.join(".")),
                        Some(format!("expected one of: {}", allowed.join(", "))),
                    ));
                }
            }
        }
        for (file, span, code, msg, hint) in problems {
            self.err(&file, span, code, msg, hint);
        }
    }

    fn quantity(&mut self, path: &[&str], cpu: bool) -> Option<(String, f64)> {
        let (file, n) = self.get(path)?;
        let (file, span) = (file.to_string(), n.span);
        let s = self.string(path)?;
        let parsed = if cpu {
            quantity::cpu(&s)
        } else {
            quantity::memory(&s)
        };
        match parsed {
            Ok(q) => Some((s, q.0)),
            Err(e) => {
                self.err(
                    &file,
                    span,
                    "quantity",
                    format!("{}: {e}", path.join(".")),
                    None,
                );
                None
            }
        }
    }

    /// Deep-merged JSON of all layers (most specific wins).
    fn merged(&self) -> serde_json::Value {
        fn merge(into: &mut serde_json::Value, over: serde_json::Value) {
            match (into, over) {
                (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                    for (k, v) in b {
                        match a.get_mut(&k) {
                            Some(slot) => merge(slot, v),
                            None => {
                                a.insert(k, v);
                            }
                        }
                    }
                }
                (slot, v) => *slot = v,
            }
        }
        let mut out = serde_json::Value::Object(Default::default());
        for (_, root) in self.layers.iter().rev() {
            merge(&mut out, root.to_json());
        }
        out
    }
}

/// The innermost `{` or `[` still open at `before` (outside quotes and
/// comments), with its position.
fn unclosed_bracket(
    text: &str,
    before: launchway_yaml::Pos,
) -> Option<(launchway_yaml::Pos, char)> {
    let mut open: Vec<(launchway_yaml::Pos, char)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).ok()?;
        if line_no > before.line {
            break;
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (j, c) in line.chars().enumerate() {
            let col = u32::try_from(j + 1).ok()?;
            if line_no == before.line && col >= before.col {
                break;
            }
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if prev == ' ' || j == 0 => break,
                (None, '{' | '[') => open.push((launchway_yaml::Pos { line: line_no, col }, c)),
                (None, '}' | ']') => {
                    open.pop();
                }
                _ => {}
            }
            prev = c;
        }
    }
    open.pop()
}

/// Where environment configs live unless told otherwise.
pub const DEFAULT_DIR: &str = "configs/environments";
/// The shared file every environment is laid over.
pub const BASE_FILE: &str = "_base.yaml";

/// Whether `s` is a DNS-1123 label (what Kubernetes names must be).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_var_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// An upper-cased environment variable name for a config key.
pub fn env_var_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Loads environment `name` from its own file laid over `base`.
pub fn load(name: &str, own: &Source, base: Option<&Source>) -> Loaded {
    let mut layers = Layers {
        layers: Vec::new(),
        diags: Vec::new(),
    };
    for src in std::iter::once(own).chain(base) {
        match launchway_yaml::parse(&src.text).and_then(launchway_yaml::merge_keys) {
            Ok(root) => match root.kind {
                NodeKind::Map(_) => layers.layers.push((src.path.as_str(), root)),
                NodeKind::Null => {}
                _ => {
                    let t = root.type_name();
                    layers.err(
                        &src.path,
                        root.span,
                        "wrong-type",
                        format!("an environment file must be a mapping, found {t}"),
                        Some("write keys such as 'replicas: 2' at the top level".into()),
                    );
                }
            },
            Err(e) => {
                // The parser notices an unclosed bracket only where the
                // text goes on without it: point at the bracket itself.
                let (pos, hint) = match unclosed_bracket(&src.text, e.pos) {
                    Some((p, c)) if e.message.contains("flow") => (
                        p,
                        Some(format!(
                            "this '{c}' is not closed (the parser noticed at line {}, column {})",
                            e.pos.line, e.pos.col
                        )),
                    ),
                    _ => (e.pos, None),
                };
                let span = Span {
                    start: pos,
                    end: pos,
                };
                layers.err(
                    &src.path,
                    span,
                    "yaml",
                    format!("invalid YAML: {}", e.message),
                    hint,
                );
            }
        }
    }
    let mut env = Environment {
        name: name.to_string(),
        display_name: layers.string(&["environment"]),
        service: layers.string(&["service"]),
        replicas: 1,
        resources: Resources::default(),
        autoscaling: None,
        release: layers.string(&["release"]),
        image: layers.string(&["image"]),
        run: RunSpec::default(),
        target: Target::Local,
        namespace: layers.string(&["namespace"]),
        self_heal: layers.boolean(&["self_heal"]).unwrap_or(true),
        config: IndexMap::new(),
        protection: Protection::default(),
        strategy: strategy::Strategy::default(),
        analysis_templates: std::collections::BTreeMap::new(),
        merged: layers.merged(),
    };
    env.protection = Protection::of(&env.merged);
    let replicas = layers.uint(&["replicas"], 0, 10_000);
    if let Some((r, ..)) = replicas {
        env.replicas = u32::try_from(r).unwrap_or(u32::MAX);
    }

    // resources
    layers.keys(&["resources"], &["requests", "limits"]);
    let mut amounts = [(0.0f64, 0.0f64); 2];
    for (i, kind) in ["requests", "limits"].into_iter().enumerate() {
        layers.keys(&["resources", kind], &["cpu", "memory"]);
        let cpu = layers.quantity(&["resources", kind, "cpu"], true);
        let mem = layers.quantity(&["resources", kind, "memory"], false);
        amounts[i] = (
            cpu.as_ref().map_or(-1.0, |c| c.1),
            mem.as_ref().map_or(-1.0, |m| m.1),
        );
        let a = Amounts {
            cpu: cpu.map(|c| c.0),
            memory: mem.map(|m| m.0),
        };
        if i == 0 {
            env.resources.requests = a;
        } else {
            env.resources.limits = a;
        }
    }
    for (which, (req, lim)) in [
        ("cpu", (amounts[0].0, amounts[1].0)),
        ("memory", (amounts[0].1, amounts[1].1)),
    ] {
        if req >= 0.0
            && lim >= 0.0
            && req > lim
            && let Some((file, n)) = layers.get(&["resources", "requests", which])
        {
            let (file, span) = (file.to_string(), n.span);
            layers.err(
                &file,
                span,
                "requests-over-limits",
                format!("resources.requests.{which} is more than resources.limits.{which}"),
                Some("a container cannot be guaranteed more than it may use".into()),
            );
        }
    }

    // autoscaling
    layers.keys(
        &["autoscaling"],
        &[
            "enabled",
            "min_replicas",
            "max_replicas",
            "target_cpu_percent",
        ],
    );
    if layers
        .get(&["autoscaling"])
        .is_some_and(|(_, n)| n.as_map().is_some())
    {
        let enabled = layers.boolean(&["autoscaling", "enabled"]).unwrap_or(true);
        let min = layers.uint(&["autoscaling", "min_replicas"], 1, 10_000);
        let max = layers.uint(&["autoscaling", "max_replicas"], 1, 10_000);
        let target = layers.uint(&["autoscaling", "target_cpu_percent"], 1, 100);
        let (min_v, max_v) = (
            min.as_ref().map_or(1, |m| m.0),
            max.as_ref().map_or(0, |m| m.0),
        );
        if let (Some((lo, ..)), Some((hi, file, span))) = (&min, &max)
            && hi < lo
        {
            let (file, span) = (file.clone(), *span);
            layers.err(
                &file,
                span,
                "autoscaling-bounds",
                format!("autoscaling.max_replicas ({hi}) is below min_replicas ({lo})"),
                None,
            );
        }
        if enabled {
            if max.is_none() {
                if let Some((file, n)) = layers.get(&["autoscaling"]) {
                    let (file, span) = (file.to_string(), n.span);
                    layers.err(
                        &file,
                        span,
                        "missing-key",
                        "autoscaling needs 'max_replicas'".into(),
                        None,
                    );
                }
            } else if let Some((r, file, span)) = &replicas
                && (*r < min_v || *r > max_v)
            {
                let (file, span, r) = (file.clone(), *span, *r);
                layers.err(
                    &file,
                    span,
                    "replicas-out-of-bounds",
                    format!("replicas ({r}) is outside autoscaling's {min_v}..={max_v}"),
                    Some(
                        "set replicas within the autoscaling bounds, or disable autoscaling".into(),
                    ),
                );
            }
            #[allow(clippy::cast_possible_truncation)]
            if max.is_some() {
                env.autoscaling = Some(Autoscaling {
                    enabled,
                    min_replicas: min_v as u32,
                    max_replicas: max_v as u32,
                    target_cpu_percent: target.map_or(80, |t| t.0 as u32),
                });
            }
        }
    }

    // run
    layers.keys(&["run"], &["command", "setup", "port", "health_path"]);
    env.run.command = layers.string(&["run", "command"]);
    env.run.setup = layers.string(&["run", "setup"]);
    if let Some((p, ..)) = layers.uint(&["run", "port"], 1, 65_535) {
        env.run.port = u16::try_from(p).unwrap_or(8080);
    }
    if let Some(h) = layers.string(&["run", "health_path"]) {
        if h.starts_with('/') {
            env.run.health_path = h;
        } else if let Some((file, n)) = layers.get(&["run", "health_path"]) {
            let (file, span) = (file.to_string(), n.span);
            layers.err(
                &file,
                span,
                "health-path",
                format!("run.health_path '{h}' must start with '/'"),
                None,
            );
        }
    }

    // namespace: a Kubernetes name as written (never rewritten)
    if let Some(ns) = env.namespace.clone()
        && !is_label(&ns)
        && let Some((file, n)) = layers.get(&["namespace"])
    {
        let (file, span) = (file.to_string(), n.span);
        layers.err(
            &file,
            span,
            "invalid-name",
            format!("namespace '{ns}' is not a valid Kubernetes name"),
            Some("lower case letters, digits and '-', at most 63 (e.g. ml-prod)".into()),
        );
    }

    // target
    if let Some(t) = layers.string(&["target"]) {
        match t.as_str() {
            "local" => env.target = Target::Local,
            "kubernetes" => env.target = Target::Kubernetes,
            other => {
                if let Some((file, n)) = layers.get(&["target"]) {
                    let (file, span) = (file.to_string(), n.span);
                    layers.err(
                        &file,
                        span,
                        "unknown-target",
                        format!("unknown target '{other}'"),
                        Some("targets: local, kubernetes".into()),
                    );
                }
            }
        }
    }

    // protection (read by the approval gates)
    layers.keys(
        &["protection"],
        &[
            "required_reviewers",
            "prevent_self_review",
            "wait_timer",
            "branches",
        ],
    );
    for list in ["required_reviewers", "branches"] {
        if let Some((file, n)) = layers.get(&["protection", list])
            && !matches!(n.kind, NodeKind::Seq(_) | NodeKind::Null)
        {
            let (file, span, t) = (file.to_string(), n.span, n.type_name());
            layers.err(
                &file,
                span,
                "wrong-type",
                format!("protection.{list} must be a list, found {t}"),
                None,
            );
        }
    }
    layers.boolean(&["protection", "prevent_self_review"]);
    layers.uint(&["protection", "wait_timer"], 0, 43_200);

    // log level
    if let Some(l) = layers.string(&["log_level"]) {
        let known = [
            "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "TRACE",
        ];
        if !known.contains(&l.to_ascii_uppercase().as_str())
            && let Some((file, n)) = layers.get(&["log_level"])
        {
            let (file, span) = (file.to_string(), n.span);
            layers.err(
                &file,
                span,
                "log-level",
                format!("unknown log_level '{l}'"),
                Some(format!("one of: {}", known.join(", "))),
            );
        }
    }

    // The model: a version is a whole number; a stage alone is pinned to
    // one by deploy and promote (a hand edit that leaves it unpinned would
    // serve whatever the stage means at start time).
    if let Some((file, n)) = layers.get(&["model_version"]) {
        let whole = match &n.kind {
            NodeKind::Number(x) => x.fract() == 0.0 && *x >= 1.0,
            NodeKind::String(s) => s.parse::<u64>().is_ok_and(|v| v >= 1),
            _ => false,
        };
        if !whole {
            let (file, span) = (file.to_string(), n.span);
            layers.err(
                &file,
                span,
                "wrong-type",
                "model_version must be a version number (1, 2, …)".into(),
                None,
            );
        }
    }
    if env.release.is_some()
        && layers.get(&["model_version"]).is_none()
        && let Some((file, n)) = layers.get(&["model_stage"])
    {
        let (file, span) = (file.to_string(), n.span);
        layers.err(
            &file,
            span,
            "unpinned-model",
            "model_stage is not pinned to a model_version: what would serve could change without a commit".into(),
            Some(format!(
                "`launchway deploy {name} --set model_stage=<stage>` pins it (or write model_version)"
            )),
        );
    }

    // strategy and the analysis it runs
    let (strategy, templates) = strategy::read(&mut layers);
    env.strategy = strategy;
    env.analysis_templates = templates;

    // What the service gets as configuration.
    for key in [
        "model_name",
        "model_stage",
        "model_version",
        "mlflow_uri",
        "log_level",
    ] {
        if let Some(v) = layers.string(&[key]) {
            env.config.insert(env_var_name(key), v);
        }
    }
    let derived: Vec<String> = env.config.keys().cloned().collect();
    let mut extra: Vec<(String, String, String, Span)> = Vec::new();
    // UPPER_CASE top-level keys (compatibility) and the `env:` map, most
    // specific layer first.
    let own_keys: Vec<(String, Span, String)> = layers
        .layers
        .iter()
        .flat_map(|(file, root)| {
            root.as_map()
                .unwrap_or_default()
                .iter()
                .map(|(k, _)| {
                    (
                        k.scalar_string().unwrap_or_default(),
                        k.span,
                        file.to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (key, span, file) in own_keys {
        if KNOWN_KEYS.contains(&key.as_str()) || key == "<<" {
            continue;
        }
        if is_var_name(&key) && key.bytes().all(|b| !b.is_ascii_lowercase()) {
            extra.push((key, file, String::new(), span));
            continue;
        }
        let hint = launchway_workflow::diag::suggest(&key, KNOWN_KEYS.iter().copied())
            .map(|k| format!("did you mean '{k}'?"))
            .unwrap_or_else(|| {
                "service variables go in `env: {NAME: value}` (or an UPPER_CASE key)".into()
            });
        layers.warn(
            &file,
            span,
            "unknown-key",
            format!("unknown key '{key}': ignored (not passed to the service)"),
            Some(hint),
        );
    }
    let mut env_vars: Vec<(String, String, Span)> = Vec::new();
    let mut not_maps: Vec<(String, Span, &'static str)> = Vec::new();
    for (file, root) in &layers.layers {
        match root.get("env") {
            Some(Node {
                kind: NodeKind::Map(entries),
                ..
            }) => {
                for (k, _) in entries {
                    env_vars.push((
                        k.scalar_string().unwrap_or_default(),
                        file.to_string(),
                        k.span,
                    ));
                }
            }
            Some(Node {
                kind: NodeKind::Null,
                ..
            })
            | None => {}
            Some(n) => not_maps.push((file.to_string(), n.span, n.type_name())),
        }
    }
    for (f, span, t) in not_maps {
        layers.err(
            &f,
            span,
            "wrong-type",
            format!("env must be a mapping of NAME: value, found {t}"),
            None,
        );
    }
    for (name, file, span) in env_vars {
        if !is_var_name(&name) {
            layers.err(
                &file,
                span,
                "env-name",
                format!("'{name}' is not an environment variable name"),
                Some("letters, digits and '_', not starting with a digit".into()),
            );
        } else if RESERVED_VARS.contains(&name.as_str()) || name.starts_with("LAUNCHWAY_") {
            layers.err(
                &file,
                span,
                "env-reserved",
                format!("{name} is set by Launchway for every replica"),
                None,
            );
        } else {
            extra.push((name, file, "env".into(), span));
        }
    }
    let merged = env.merged.clone();
    let mut seen = std::collections::BTreeSet::new();
    for (name, file, under, span) in extra {
        if derived.contains(&name) {
            layers.err(
                &file,
                span,
                "env-collision",
                format!("{name} comes from '{}' already", name.to_ascii_lowercase()),
                Some(format!("set {} instead", name.to_ascii_lowercase())),
            );
            continue;
        }
        if !seen.insert(name.clone()) {
            // A less specific layer: the more specific one already won.
            continue;
        }
        let value = if under.is_empty() {
            &merged[&name]
        } else {
            &merged["env"][&name]
        };
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        env.config.insert(name, text);
    }
    let diagnostics = layers.diags;
    Loaded {
        environment: Some(env),
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &str, text: &str) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    fn errors(l: &Loaded) -> Vec<(String, &'static str, u32, u32)> {
        l.diagnostics
            .iter()
            .map(|d| {
                (
                    d.file.clone(),
                    d.diagnostic.code,
                    d.diagnostic.span.start.line,
                    d.diagnostic.span.start.col,
                )
            })
            .collect()
    }

    const PROD: &str = "environment: production
replicas: 3
resources: {requests: {cpu: \"500m\", memory: \"1Gi\"}, limits: {cpu: \"2\", memory: \"4Gi\"}}
mlflow_uri: http://mlflow.mlops-prod.svc.cluster.local:5000
model_name: ChurnPredictor
model_stage: Production
log_level: INFO
autoscaling: {enabled: true, min_replicas: 3, max_replicas: 10, target_cpu_percent: 70}
";

    #[test]
    fn protection_rules_merge_over_the_base_like_every_other_key() {
        let base = src(
            "_base.yaml",
            "protection: {required_reviewers: [release-managers], wait_timer: 5}\n",
        );
        let l = load(
            "prod",
            &src(
                "prod.yaml",
                "protection: {prevent_self_review: true, branches: [main, 'release/*']}\n",
            ),
            Some(&base),
        );
        let p = l.environment.expect("loads").protection;
        assert_eq!(
            p,
            Protection {
                required_reviewers: vec!["release-managers".into()],
                prevent_self_review: true,
                wait_timer_minutes: 5,
                branches: vec!["main".into(), "release/*".into()],
            }
        );
        assert!(p.needs_approval());
        assert_eq!(p.allows_ref("refs/heads/release/2.1"), Ok(true));
        assert_eq!(p.allows_ref("refs/heads/feature"), Ok(false));
        let open = load("dev", &src("dev.yaml", "replicas: 1\n"), None);
        assert!(!open.environment.expect("loads").protection.needs_approval());
    }

    #[test]
    fn the_keys_teams_write_load_as_they_are() {
        let l = load("prod", &src("prod.yaml", PROD), None);
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let e = l.environment.unwrap();
        assert_eq!(e.display_name.as_deref(), Some("production"));
        assert_eq!(e.replicas, 3);
        assert_eq!(e.resources.limits.memory.as_deref(), Some("4Gi"));
        let a = e.autoscaling.unwrap();
        assert_eq!(
            (a.min_replicas, a.max_replicas, a.target_cpu_percent),
            (3, 10, 70)
        );
        assert_eq!(e.config["MODEL_NAME"], "ChurnPredictor");
        assert_eq!(
            e.config["MLFLOW_URI"],
            "http://mlflow.mlops-prod.svc.cluster.local:5000"
        );
        assert_eq!(e.target, Target::Local);
    }

    #[test]
    fn overlays_win_over_the_base_and_service_variables_come_from_env() {
        let base = src(
            "_base.yaml",
            "replicas: 1\nrun: {command: python app.py, port: 9000}\nFEATURE_FLAGS: {beta: true}\nenv: {TEAM: ml, REGION: eu}\n",
        );
        let own = src(
            "dev.yaml",
            "replicas: 2\nrun: {port: 9100}\nenv: {TEAM: ml-dev}\n",
        );
        let l = load("dev", &own, Some(&base));
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let e = l.environment.unwrap();
        assert_eq!(e.replicas, 2);
        assert_eq!(e.run.port, 9100);
        assert_eq!(
            e.run.command.as_deref(),
            Some("python app.py"),
            "kept from the base"
        );
        assert_eq!(e.config["TEAM"], "ml-dev");
        assert_eq!(e.config["REGION"], "eu");
        assert_eq!(e.config["FEATURE_FLAGS"], r#"{"beta":true}"#);
    }

    /// A typo or a lower-case key never reaches the service (it could
    /// override PATH or the validated log_level): a warning with the
    /// closest key. Collisions and reserved names are errors.
    #[test]
    fn unknown_keys_are_warnings_and_never_variables() {
        let own = src(
            "dev.yaml",
            "path: /tmp/evil\nlog-level: TRACE\nlog_level: INFO\nreplcas: 3\nLOG_LEVEL: DEBUG\nenv: {PORT: 1, 9x: a, LAUNCHWAY_RELEASE: x, OK_VAR: fine}\nstrategy: {canary: {steps: []}}\n",
        );
        let l = load("dev", &own, None);
        let e = l.environment.as_ref().unwrap();
        assert!(!e.config.contains_key("PATH"), "{:?}", e.config);
        assert_eq!(e.config["LOG_LEVEL"], "INFO");
        assert!(!e.config.contains_key("STRATEGY"));
        assert_eq!(e.config["OK_VAR"], "fine");
        let warnings: Vec<(String, Option<String>)> = l
            .diagnostics
            .iter()
            .filter(|d| d.diagnostic.severity == launchway_workflow::Severity::Warning)
            .map(|d| (d.diagnostic.message.clone(), d.diagnostic.hint.clone()))
            .collect();
        assert!(
            warnings.iter().any(|(m, h)| m.contains("'log-level'")
                && h.as_deref() == Some("did you mean 'log_level'?")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|(m, h)| m.contains("'replcas'")
                && h.as_deref() == Some("did you mean 'replicas'?")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|(m, _)| m.contains("'path'")),
            "{warnings:?}"
        );
        let codes: Vec<&str> = l
            .diagnostics
            .iter()
            .filter(|d| d.diagnostic.severity == launchway_workflow::Severity::Error)
            .map(|d| d.diagnostic.code)
            .collect();
        assert_eq!(
            codes,
            vec!["env-reserved", "env-name", "env-reserved", "env-collision"],
            "{:?}",
            l.diagnostics
        );
    }

    #[test]
    fn an_unclosed_bracket_is_reported_where_it_opens() {
        let l = load(
            "dev",
            &src(
                "dev.yaml",
                "replicas: 2\nresources: {requests: {cpu: 1}\nlog_level: INFO\n",
            ),
            None,
        );
        let e = errors(&l);
        assert_eq!(
            (e[0].1, e[0].2, e[0].3),
            ("yaml", 2, 12),
            "{:?}",
            l.diagnostics
        );
    }

    /// The issue's own example, both spellings, and the mistakes a user
    /// makes, each at its place.
    #[test]
    fn canary_and_blue_green_strategies_with_their_templates() {
        use strategy::{OnFailure, Provider, Step, Strategy};
        let text = "strategy:
  canary:
    steps:
      - set_weight: 5
      - pause: {duration: 30s}
      - analysis: {templates: [error-rate]}
      - setWeight: 25
      - pause: {}
      - set_weight: 100
    analysis: {templates: [error-rate], start_at_step: 1}
    on_failure: hold
    canary_replicas: 2
analysis_templates:
  error-rate:
    provider: builtin
    metric: error_rate
    interval: 10s
    count: 6
    failure_limit: 1
    success_condition: result < 0.05
";
        let l = load("prod", &src("prod.yaml", text), None);
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let e = l.environment.unwrap();
        let Strategy::Canary(c) = &e.strategy else {
            panic!("{:?}", e.strategy)
        };
        assert_eq!(
            c.steps,
            vec![
                Step::SetWeight(5),
                Step::Pause(Some(std::time::Duration::from_secs(30))),
                Step::Analysis(vec!["error-rate".into()]),
                Step::SetWeight(25),
                Step::Pause(None),
                Step::SetWeight(100),
            ]
        );
        assert_eq!(c.on_failure, OnFailure::Hold);
        assert_eq!(c.canary_replicas, 2);
        assert_eq!(c.background, Some((vec!["error-rate".into()], 1)));
        let t = &e.analysis_templates["error-rate"];
        assert_eq!(
            (t.provider, t.count, t.failure_limit),
            (Provider::Builtin, 6, 1)
        );
        assert!(!e.config.contains_key("STRATEGY"));

        let bg = load(
            "prod",
            &src(
                "prod.yaml",
                "strategy: {blueGreen: {autoPromotionEnabled: false, scaleDownDelaySeconds: 45}}\n",
            ),
            None,
        );
        assert!(bg.diagnostics.is_empty(), "{:?}", bg.diagnostics);
        let Strategy::BlueGreen(b) = bg.environment.unwrap().strategy else {
            panic!()
        };
        assert!(!b.auto_promote);
        assert_eq!(b.scale_down_delay, std::time::Duration::from_secs(45));

        let bad = load(
            "prod",
            &src(
                "prod.yaml",
                "strategy:\n  canary:\n    steps:\n      - set_weight: 150\n      - wait: 3\n      - analysis: {templates: [nope]}\n      - pause: {duration: soon}\nanalysis_templates:\n  x: {metric: error_rate, success_condition: result ~ 1}\n",
            ),
            None,
        );
        let e = errors(&bad);
        let at: Vec<(u32, u32)> = e.iter().map(|d| (d.2, d.3)).collect();
        for want in [(4, 21), (5, 9), (6, 32), (7, 27), (9, 46)] {
            assert!(at.contains(&want), "{want:?} not in {:?}", bad.diagnostics);
        }
    }

    #[test]
    fn prediction_drift_statistic() {
        use strategy::DriftStatistic;
        let tpl = |extra: &str| {
            format!(
                "analysis_templates:\n  drift: {{metric: prediction_drift, json_path: $.p, success_condition: result < 0.1{extra}}}\n"
            )
        };
        let l = load("prod", &src("prod.yaml", &tpl(", statistic: ks")), None);
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let e = l.environment.unwrap();
        assert_eq!(e.analysis_templates["drift"].statistic, DriftStatistic::Ks);
        let l = load("prod", &src("prod.yaml", &tpl("")), None);
        let e = l.environment.unwrap();
        assert_eq!(e.analysis_templates["drift"].statistic, DriftStatistic::Psi);
        let bad = load("prod", &src("prod.yaml", &tpl(", statistic: chi")), None);
        assert_eq!(errors(&bad).len(), 1, "{:?}", bad.diagnostics);
        assert!(
            bad.diagnostics[0]
                .diagnostic
                .message
                .contains("unknown statistic 'chi'"),
            "{:?}",
            bad.diagnostics
        );
        let bad = load(
            "prod",
            &src(
                "prod.yaml",
                "analysis_templates:\n  e: {metric: error_rate, statistic: ks, success_condition: result < 0.1}\n",
            ),
            None,
        );
        assert_eq!(errors(&bad).len(), 1, "{:?}", bad.diagnostics);
    }

    #[test]
    fn canary_traffic_settings() {
        use strategy::{Sticky, Strategy};
        let l = load(
            "prod",
            &src(
                "prod.yaml",
                "strategy: {canary: {steps: [{set_weight: 10}], traffic: {sticky: {cookie: sid}, header: X-Side, mirror: 20}}}\n",
            ),
            None,
        );
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let Strategy::Canary(c) = l.environment.unwrap().strategy else {
            panic!()
        };
        assert_eq!(c.traffic.sticky, Some(Sticky::Cookie("sid".into())));
        assert_eq!(c.traffic.header.as_deref(), Some("X-Side"));
        assert_eq!(c.traffic.mirror, 20);
        let bad = load(
            "prod",
            &src(
                "prod.yaml",
                "strategy: {canary: {traffic: {sticky: {header: a, cookie: b}, mirror: 101}}}\n",
            ),
            None,
        );
        assert_eq!(errors(&bad).len(), 2, "{:?}", bad.diagnostics);
    }

    #[test]
    fn merge_keys_are_merged() {
        let own = src(
            "dev.yaml",
            "x-defaults: &d {replicas: 3, log_level: WARNING}\n<<: *d\nreplicas: 2\n",
        );
        let l = load("dev", &own, None);
        let e = l.environment.as_ref().unwrap();
        assert_eq!(e.replicas, 2, "its own key wins");
        assert_eq!(e.config["LOG_LEVEL"], "WARNING", "merged in");
    }

    /// The model that runs is the one the file pins: a stage alone is
    /// an error once there is a release; a version is a number.
    #[test]
    fn an_unpinned_model_stage_is_an_error_once_released() {
        let l = load(
            "prod",
            &src("prod.yaml", "model_name: m\nmodel_stage: Production\n"),
            None,
        );
        assert!(!l.has_errors(), "nothing released yet: deploy pins it");
        let l = load(
            "prod",
            &src(
                "prod.yaml",
                "release: abc\nmodel_name: m\nmodel_stage: Production\n",
            ),
            None,
        );
        assert_eq!(errors(&l)[0].1, "unpinned-model");
        let l = load(
            "prod",
            &src(
                "prod.yaml",
                "release: abc\nmodel_name: m\nmodel_version: latest\n",
            ),
            None,
        );
        assert_eq!(errors(&l)[0].1, "wrong-type");
    }

    #[test]
    fn problems_are_reported_where_they_are() {
        let own = src(
            "prod.yaml",
            "replicas: 12
resources:
  requests: {cpu: \"abc\", memory: 1Gi}
  limits: {cpu: \"1\", memory: 512Mi, gpu: 1}
autoscaling: {min_replicas: 3, max_replicas: 10}
target: mars
run: {port: 70000, health_path: health}
log_level: LOUD
",
        );
        let l = load("prod", &own, None);
        let e = errors(&l);
        for want in [
            ("prod.yaml".to_string(), "quantity", 3, 19),
            ("prod.yaml".to_string(), "unknown-key", 4, 37),
            ("prod.yaml".to_string(), "requests-over-limits", 3, 34),
            ("prod.yaml".to_string(), "replicas-out-of-bounds", 1, 11),
            ("prod.yaml".to_string(), "unknown-target", 6, 9),
            ("prod.yaml".to_string(), "out-of-range", 7, 13),
            ("prod.yaml".to_string(), "health-path", 7, 33),
            ("prod.yaml".to_string(), "log-level", 8, 12),
        ] {
            assert!(e.contains(&want), "missing {want:?} in {e:#?}");
        }
        // A problem in the base is reported in the base.
        let base = src("_base.yaml", "replicas: many\n");
        let l = load("dev", &src("dev.yaml", "log_level: INFO\n"), Some(&base));
        assert_eq!(
            errors(&l),
            [("_base.yaml".to_string(), "wrong-type", 1, 11)]
        );
        // Broken YAML says where.
        let l = load("x", &src("x.yaml", "replicas: [1\n"), None);
        assert_eq!(errors(&l)[0].1, "yaml");
    }
}
