//! Turning a YAML tree into the typed model, collecting every problem on the
//! way instead of stopping at the first one.

use crate::contexts::{self, Place};
use crate::cron::Cron;
use crate::diag::{Diagnostic, suggest};
use crate::glob::PatternList;
use crate::graph;
use crate::model::*;
use crate::triggers::{EventTrigger, Input, InputType, Triggers};
use crate::yaml::{self, Node, NodeKind, Span, Style};
use indexmap::IndexMap;
use launchway_expr::template;

/// The result of loading one file: the model when the file was usable,
/// and every diagnostic found.
#[derive(Debug)]
pub struct Loaded {
    pub workflow: Option<Workflow>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == crate::diag::Severity::Error)
    }
}

// The key lists follow GitHub's workflow schema (actions/languageservices,
// `workflow-parser/src/workflow-v1.0.json`, 2026-08).
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "run-name",
    "on",
    "permissions",
    "env",
    "defaults",
    "concurrency",
    "jobs",
];
const JOB_KEYS: &[&str] = &[
    "name",
    "permissions",
    "needs",
    "if",
    "runs-on",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "defaults",
    "steps",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
    "uses",
    "with",
    "secrets",
    "snapshot",
    "cancel-timeout-minutes",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "if",
    "name",
    "uses",
    "run",
    "shell",
    "with",
    "env",
    "continue-on-error",
    "timeout-minutes",
    "working-directory",
    "background",
    "wait",
    "wait-all",
    "cancel",
    "parallel",
];
/// A composite action's steps: the same keys without the parallel-step
/// ones, which GitHub's action schema does not have (they come last above).
const COMPOSITE_STEP_KEYS: &[&str] = STEP_KEYS.split_at(STEP_KEYS.len() - 5).0;
/// The keys each step kind takes besides its own (GitHub's schema).
const CONTROL_STEP_KEYS: &[&str] = &["id", "name", "continue-on-error"];
const EVENTS: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "gollum",
    "image_version",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "milestone",
    "page_build",
    "project",
    "project_card",
    "project_column",
    "public",
    "pull_request",
    "pull_request_comment",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_target",
    "push",
    "registry_package",
    "release",
    "repository_dispatch",
    "schedule",
    "status",
    "watch",
    "workflow_call",
    "workflow_dispatch",
    "workflow_run",
];

/// Loads and validates a workflow from its source text. Never panics.
pub fn load(path: &str, src: &str) -> Loaded {
    let root = match yaml::parse(src) {
        Ok(n) => n,
        Err(e) => {
            let span = Span {
                start: e.pos,
                end: e.pos,
            };
            return Loaded {
                workflow: None,
                diagnostics: vec![
                    Diagnostic::error("yaml", span, format!("invalid YAML: {}", e.message))
                        .with_hint("check indentation and quoting around this position"),
                ],
            };
        }
    };
    let mut l = Loader {
        src,
        diags: Vec::new(),
    };
    // GitHub's workflow reader refuses explicit tags.
    for (at, tag) in yaml::explicit_tags(src) {
        let end = yaml::Pos {
            line: at.line,
            col: at.col + u32::try_from(tag.chars().count()).unwrap_or(0),
        };
        l.err(
            "yaml-tag",
            Span { start: at, end },
            format!("explicit YAML tag '{tag}' is not allowed in a workflow"),
        )
        .hint = Some(
            "remove the tag: GitHub reads every value without tags (quote a value to keep it a string)".into(),
        );
    }
    let wf = l.workflow(path, &root);
    if let Some(wf) = &wf {
        graph::check(wf, &mut l.diags);
        crate::lint::check_references(wf, &mut l.diags);
    }
    l.diags.sort_by_key(|d| (d.span.start, d.severity));
    Loaded {
        workflow: wf,
        diagnostics: l.diags,
    }
}

pub(crate) struct Loader<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn err(&mut self, code: &'static str, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, span, msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn warn(&mut self, code: &'static str, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, span, msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub(crate) fn error_at(&mut self, span: Span, code: &'static str, msg: &str) {
        self.err(code, span, msg.to_string());
    }

    fn hint(&mut self, hint: impl Into<String>) {
        if let Some(d) = self.diags.last_mut() {
            d.hint = Some(hint.into());
        }
    }

    pub(crate) fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(m) => Some(m),
            NodeKind::Null => Some(&[]),
            _ => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// Checks a mapping's keys against the allowed list; returns entries with string keys.
    pub(crate) fn entries<'n>(
        &mut self,
        map: &'n [(Node, Node)],
        allowed: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node, &'n Node)> {
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                self.err(
                    "wrong-type",
                    k.span,
                    format!("keys of {what} must be strings, found {}", k.type_name()),
                );
                continue;
            };
            if !allowed.is_empty() && !allowed.contains(&key) {
                let d = self.err(
                    "unknown-key",
                    k.span,
                    format!("unknown key '{key}' in {what}"),
                );
                let hint = match suggest(key, allowed.iter().copied()) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                d.hint = Some(hint);
                continue;
            }
            out.push((key, k, v));
        }
        out
    }

    fn scalar(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match node.scalar_string() {
            Some(s) => {
                if let (NodeKind::Number(_), Some(raw)) = (&node.kind, &node.raw)
                    && raw != &s
                    && !raw.starts_with("0x")
                {
                    self.diags.push(
                        Diagnostic::warning(
                            "number-as-string",
                            node.span,
                            format!("{what}: `{raw}` is read as the number {s}"),
                        )
                        .with_hint(format!("quote it to keep it as written: '{raw}'")),
                    );
                }
                Some(Spanned::new(s, node.span))
            }
            None => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!("{what} must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A string with expressions, checked against the contexts allowed there.
    fn expr_string(&mut self, node: &Node, what: &str, place: Place) -> Option<Spanned<String>> {
        let s = self.scalar(node, what)?;
        self.check_template(&s.value, node, place, false);
        Some(s)
    }

    fn check_template(&mut self, value: &str, node: &Node, place: Place, is_condition: bool) {
        let parsed = if is_condition {
            launchway_expr::Condition::parse(value).map(|c| vec![c.expr])
        } else {
            template::parse_template(value)
        };
        match parsed {
            Err(e) => {
                let span = self.offset_span(node, value, e.offset);
                self.err(
                    "expression",
                    span,
                    format!("invalid expression: {}", e.message),
                );
            }
            Ok(exprs) => {
                for e in &exprs {
                    for problem in contexts::check(e, place) {
                        let at = value
                            .find(&problem.needle)
                            .map_or(node.span, |o| self.offset_span(node, value, o));
                        self.diags.push(
                            Diagnostic::error("context", at, problem.message)
                                .with_hint(problem.hint),
                        );
                    }
                }
            }
        }
    }

    /// Maps a byte offset inside a scalar's value to a source position.
    fn offset_span(&self, node: &Node, value: &str, offset: usize) -> Span {
        let offset = offset.min(value.len());
        let before = &value[..value.floor_char_boundary(offset)];
        let line_idx = before.matches('\n').count();
        let col_in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        let mut start = node.span.start;
        match node.style {
            Style::Block => {
                // saphyr starts a block scalar's span on its first content line.
                let line_no = start.line as usize + line_idx;
                let indent = self
                    .src
                    .lines()
                    .nth(line_no.saturating_sub(1))
                    .map_or(0, |l| l.len() - l.trim_start().len());
                start.line = u32::try_from(line_no).unwrap_or(start.line);
                start.col = u32::try_from(indent + col_in_line + 1).unwrap_or(start.col);
            }
            _ if line_idx == 0 => {
                let quote = u32::from(node.style == Style::Quoted);
                start.col += quote + u32::try_from(col_in_line).unwrap_or(0);
            }
            _ => {}
        }
        Span { start, end: start }
    }

    fn bool_or_expr(&mut self, node: &Node, what: &str, place: Place) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Bool(b) => Some(Spanned::new(b.to_string(), node.span)),
            NodeKind::String(s) if template::has_expressions(s) => {
                self.expr_string(node, what, place)
            }
            _ => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!(
                        "{what} must be true, false or an expression, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    fn number_or_expr(&mut self, node: &Node, what: &str, place: Place) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Number(n) if *n >= 0.0 => self.scalar(node, what),
            NodeKind::String(s) if template::has_expressions(s) => {
                self.expr_string(node, what, place)
            }
            _ => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!(
                        "{what} must be a positive number or an expression, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    fn string_map(
        &mut self,
        node: &Node,
        what: &str,
        place: Place,
    ) -> IndexMap<String, Spanned<String>> {
        let mut out = IndexMap::new();
        if let NodeKind::String(s) = &node.kind
            && template::has_expressions(s)
        {
            // `env: ${{ fromJSON(...) }}` is allowed; evaluated at run time.
            self.check_template(s, node, place, false);
            out.insert(String::new(), Spanned::new(s.clone(), node.span));
            return out;
        }
        let Some(map) = self.map(node, what) else {
            return out;
        };
        for (key, _, v) in self.entries(map, &[], what) {
            if let Some(s) = self.expr_string(v, &format!("{what}.{key}"), place) {
                out.insert(key.to_string(), s);
            }
        }
        out
    }

    fn string_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.scalar(i, what)).collect(),
            _ if node.is_scalar() => self.scalar(node, what).into_iter().collect(),
            _ => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!(
                        "{what} must be a string or a list of strings, found {}",
                        node.type_name()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn defaults(&mut self, node: &Node, place: Place) -> RunDefaults {
        let mut d = RunDefaults::default();
        let Some(map) = self.map(node, "defaults") else {
            return d;
        };
        for (key, _, v) in self.entries(map, &["run"], "defaults") {
            if key == "run"
                && let Some(run) = self.map(v, "defaults.run")
            {
                for (k, _, v) in self.entries(run, &["shell", "working-directory"], "defaults.run")
                {
                    let s = self.expr_string(v, k, place);
                    match k {
                        "shell" => d.shell = s,
                        _ => d.working_directory = s,
                    }
                }
            }
        }
        d
    }

    fn concurrency(&mut self, node: &Node, place: Place) -> Option<Concurrency> {
        if node.is_scalar() {
            let group = self.expr_string(node, "concurrency", place)?;
            return Some(Concurrency {
                group,
                cancel_in_progress: None,
                queue_all: false,
            });
        }
        let map = self.map(node, "concurrency")?;
        let mut group = None;
        let mut cancel = None;
        let mut queue_all = false;
        for (k, _, v) in self.entries(
            map,
            &["group", "cancel-in-progress", "queue"],
            "concurrency",
        ) {
            match k {
                "group" => group = self.expr_string(v, "concurrency.group", place),
                // `single` (the default): one pending run, a newer one
                // replaces it; `max`: every pending run waits its turn.
                "queue" => match v.as_str() {
                    Some("single") => {}
                    Some("max") => queue_all = true,
                    _ => {
                        self.err(
                            "wrong-value",
                            v.span,
                            "concurrency.queue must be 'single' or 'max'",
                        );
                    }
                },
                _ => cancel = self.bool_or_expr(v, "concurrency.cancel-in-progress", place),
            }
        }
        match group {
            Some(group) => Some(Concurrency {
                group,
                cancel_in_progress: cancel,
                queue_all,
            }),
            None => {
                self.err("missing-key", node.span, "concurrency needs a 'group'");
                None
            }
        }
    }

    fn workflow(&mut self, path: &str, root: &Node) -> Option<Workflow> {
        let map = match &root.kind {
            NodeKind::Map(m) => m,
            _ => {
                self.err(
                    "wrong-type",
                    root.span,
                    format!("a workflow must be a mapping, found {}", root.type_name()),
                );
                self.hint("a workflow starts with keys such as 'name:', 'on:' and 'jobs:'");
                return None;
            }
        };
        let mut wf = Workflow {
            path: path.to_string(),
            name: None,
            run_name: None,
            on: Triggers::default(),
            env: Env::new(),
            defaults: RunDefaults::default(),
            concurrency: None,
            jobs: IndexMap::new(),
        };
        let mut seen_on = false;
        let mut seen_jobs = false;
        for (key, _, v) in self.entries(map, TOP_KEYS, "the workflow") {
            match key {
                "name" => wf.name = self.scalar(v, "name").map(|s| s.value),
                // Documentation for people (GitHub shows it for reusable workflows).
                "description" => {
                    self.scalar(v, "description");
                }
                "run-name" => wf.run_name = self.expr_string(v, "run-name", Place::RunName),
                "on" => {
                    seen_on = true;
                    wf.on = self.triggers(v);
                }
                "env" => wf.env = self.string_map(v, "env", Place::WorkflowEnv),
                "defaults" => wf.defaults = self.defaults(v, Place::WorkflowDefaults),
                "concurrency" => wf.concurrency = self.concurrency(v, Place::WorkflowConcurrency),
                "jobs" => {
                    seen_jobs = true;
                    if let Some(jobs) = self.map(v, "jobs") {
                        if jobs.is_empty() {
                            self.err("missing-key", v.span, "'jobs' is empty");
                        }
                        for (id, k, job) in self.entries(jobs, &[], "jobs") {
                            if !valid_id(id) {
                                self.err("invalid-id", k.span, format!("invalid job id '{id}'"));
                                self.hint("job ids start with a letter or '_' and contain only letters, digits, '-' and '_'");
                            }
                            // GitHub's job ids are case-insensitive.
                            if let Some(other) = wf
                                .jobs
                                .keys()
                                .find(|o| o.eq_ignore_ascii_case(id) && *o != id)
                            {
                                let other = other.clone();
                                self.err(
                                    "duplicate-id",
                                    k.span,
                                    format!("job id '{id}' differs from '{other}' only in case; GitHub reads them as the same job"),
                                );
                            }
                            if let Some(job) = self.job(id, k.span, job) {
                                wf.jobs.insert(id.to_string(), job);
                            }
                        }
                    }
                }
                // Local runs have no token to scope, but a value GitHub
                // refuses is refused here too.
                "permissions" => self.permissions(v),
                _ => {}
            }
        }
        if !seen_on {
            self.err("missing-key", root.span, "the workflow has no 'on:' key");
            self.hint("add e.g. 'on: push' to say which events run it");
        }
        if !seen_jobs {
            self.err("missing-key", root.span, "the workflow has no 'jobs:' key");
        }
        Some(wf)
    }

    fn triggers(&mut self, node: &Node) -> Triggers {
        let mut t = Triggers {
            events: IndexMap::new(),
            span: node.span,
        };
        let mut add = |this: &mut Self, name: &str, span: Span, cfg: Option<&Node>| {
            if !EVENTS.contains(&name) {
                let d = this.err("unknown-event", span, format!("unknown event '{name}'"));
                d.hint =
                    suggest(name, EVENTS.iter().copied()).map(|s| format!("did you mean '{s}'?"));
                return;
            }
            let ev = this.event(name, span, cfg);
            t.events.insert(name.to_string(), ev);
        };
        match &node.kind {
            NodeKind::String(s) => add(self, s, node.span, None),
            NodeKind::Seq(items) => {
                for i in items {
                    match i.as_str() {
                        Some(s) => add(self, s, i.span, None),
                        None => {
                            self.err("wrong-type", i.span, "event names must be strings");
                        }
                    }
                }
            }
            NodeKind::Map(m) => {
                for (k, v) in m {
                    match k.as_str() {
                        Some(s) => add(self, s, k.span, Some(v)),
                        None => {
                            self.err("wrong-type", k.span, "event names must be strings");
                        }
                    }
                }
            }
            _ => {
                self.err(
                    "wrong-type",
                    node.span,
                    format!(
                        "'on' must be an event name, a list or a mapping, found {}",
                        node.type_name()
                    ),
                );
            }
        }
        t
    }

    fn patterns(&mut self, node: &Node, what: &str) -> Option<PatternList> {
        let items = self.string_list(node, what);
        let mut list = PatternList::default();
        for i in items {
            match crate::glob::Pattern::new(&i.value) {
                Ok(p) => list.patterns.push(p),
                Err(e) => {
                    self.err(
                        "glob",
                        i.span,
                        format!("bad pattern '{}' in {what}: {e}", i.value),
                    );
                    self.hint("see GitHub's filter pattern cheat sheet: *, **, ?, +, [], ! and \\");
                }
            }
        }
        Some(list)
    }

    fn event(&mut self, name: &str, span: Span, cfg: Option<&Node>) -> EventTrigger {
        let mut ev = EventTrigger {
            name: name.to_string(),
            span,
            ..EventTrigger::default()
        };
        let Some(cfg) = cfg else { return ev };
        if name == "schedule" {
            let Some(items) = cfg.as_seq() else {
                self.err(
                    "wrong-type",
                    cfg.span,
                    "'schedule' must be a list of '- cron: ...' entries",
                );
                return ev;
            };
            for item in items {
                let Some(m) = self.map(item, "a schedule entry") else {
                    continue;
                };
                for (_, _, v) in self.entries(m, &["cron"], "a schedule entry") {
                    if let Some(s) = self.scalar(v, "cron") {
                        match Cron::parse(&s.value) {
                            Ok(c) => ev.crons.push(Spanned::new(c, s.span)),
                            Err(e) => {
                                self.err(
                                    "cron",
                                    s.span,
                                    format!("invalid cron '{}': {e}", s.value),
                                );
                                self.hint("five fields: minute hour day-of-month month day-of-week, e.g. '30 5 * * 1-5'");
                            }
                        }
                    }
                }
            }
            return ev;
        }
        let allowed: &[&str] = match name {
            "push" => &[
                "branches",
                "branches-ignore",
                "tags",
                "tags-ignore",
                "paths",
                "paths-ignore",
            ],
            "pull_request" | "pull_request_target" => &[
                "types",
                "branches",
                "branches-ignore",
                "paths",
                "paths-ignore",
            ],
            // GitHub ignores other keys here: warned below, not refused.
            "workflow_dispatch" => &[],
            "workflow_call" => &["inputs", "outputs", "secrets"],
            "workflow_run" => &["types", "workflows", "branches", "branches-ignore"],
            "merge_group" => &["types", "branches", "branches-ignore"],
            "image_version" => &["types", "names", "versions"],
            _ => &["types"],
        };
        let Some(map) = self.map(cfg, &format!("on.{name}")) else {
            return ev;
        };
        for (key, k, v) in self.entries(map, allowed, &format!("on.{name}")) {
            let what = format!("on.{name}.{key}");
            match key {
                "types" => {
                    ev.types = self
                        .string_list(v, &what)
                        .into_iter()
                        .map(|s| s.value)
                        .collect()
                }
                "workflows" => {
                    ev.workflows = self
                        .string_list(v, &what)
                        .into_iter()
                        .map(|s| s.value)
                        .collect()
                }
                "branches" => ev.branches = self.patterns(v, &what),
                "branches-ignore" => ev.branches_ignore = self.patterns(v, &what),
                "tags" => ev.tags = self.patterns(v, &what),
                "tags-ignore" => ev.tags_ignore = self.patterns(v, &what),
                "paths" => ev.paths = self.patterns(v, &what),
                "paths-ignore" => ev.paths_ignore = self.patterns(v, &what),
                "inputs" => ev.inputs = self.inputs(v, name),
                "outputs" => {
                    if let Some(outs) = self.map(v, &what) {
                        for (oname, _, o) in self.entries(outs, &[], &what) {
                            let Some(om) = self.map(o, &format!("{what}.{oname}")) else {
                                continue;
                            };
                            let mut has_value = false;
                            for (ok, _, ov) in self.entries(
                                om,
                                &["description", "value"],
                                &format!("{what}.{oname}"),
                            ) {
                                has_value |= ok == "value";
                                if ok == "value"
                                    && let Some(s) =
                                        self.expr_string(ov, "value", Place::WorkflowCallOutput)
                                {
                                    ev.outputs.insert(oname.to_string(), s);
                                }
                            }
                            if !has_value {
                                self.err(
                                    "missing-key",
                                    o.span,
                                    format!("workflow_call output '{oname}' has no 'value'"),
                                );
                                self.hint("e.g. value: ${{ jobs.build.outputs.version }}");
                            }
                        }
                    }
                }
                "secrets" => {
                    if let Some(secrets) = self.map(v, &what) {
                        for (sname, _, s) in self.entries(secrets, &[], &what) {
                            let mut required = false;
                            if let Some(sm) = self.map(s, &format!("{what}.{sname}")) {
                                for (sk, _, sv) in self.entries(
                                    sm,
                                    &["description", "required"],
                                    &format!("{what}.{sname}"),
                                ) {
                                    if sk == "required" {
                                        required = sv.kind == NodeKind::Bool(true);
                                    }
                                }
                            }
                            ev.secrets.insert(sname.to_string(), required);
                        }
                    }
                }
                // image_version's name and version filters: strings.
                "names" | "versions" => {
                    self.string_list(v, &what);
                }
                _ if name == "workflow_dispatch" => {
                    self.warn(
                        "unknown-key",
                        k.span,
                        format!("unknown key '{key}' in on.workflow_dispatch (GitHub ignores it; only 'inputs' means something)"),
                    );
                }
                _ => {}
            }
        }
        for (a, b, both) in [
            (
                "branches",
                "branches-ignore",
                ev.branches.is_some() && ev.branches_ignore.is_some(),
            ),
            (
                "tags",
                "tags-ignore",
                ev.tags.is_some() && ev.tags_ignore.is_some(),
            ),
            (
                "paths",
                "paths-ignore",
                ev.paths.is_some() && ev.paths_ignore.is_some(),
            ),
        ] {
            if both {
                self.err(
                    "filter",
                    span,
                    format!("on.{name} uses both '{a}' and '{b}'"),
                );
                self.hint(format!(
                    "GitHub does not allow both; use '{a}' with '!' patterns to exclude"
                ));
            }
        }
        ev
    }

    fn inputs(&mut self, node: &Node, event: &str) -> IndexMap<String, Input> {
        let mut out = IndexMap::new();
        let what = format!("on.{event}.inputs");
        let Some(map) = self.map(node, &what) else {
            return out;
        };
        for (name, k, v) in self.entries(map, &[], &what) {
            let mut input = Input {
                name: name.to_string(),
                description: None,
                required: false,
                default: None,
                kind: InputType::String,
                span: k.span,
            };
            let iw = format!("{what}.{name}");
            let Some(m) = self.map(v, &iw) else { continue };
            let mut options = Vec::new();
            let mut type_name = None;
            for (key, _, val) in self.entries(
                m,
                &[
                    "description",
                    "required",
                    "default",
                    "type",
                    "options",
                    "deprecationMessage",
                ],
                &iw,
            ) {
                match key {
                    "description" => input.description = val.scalar_string(),
                    "required" => match val.kind {
                        NodeKind::Bool(b) => input.required = b,
                        _ => {
                            self.err(
                                "wrong-type",
                                val.span,
                                format!("{iw}.required must be true or false"),
                            );
                        }
                    },
                    "default" => {
                        if let NodeKind::String(s) = &val.kind
                            && template::has_expressions(s)
                        {
                            self.check_template(s, val, Place::WorkflowCallInputDefault, false);
                        }
                        input.default = Some(crate::node_value(val));
                    }
                    "type" => type_name = self.scalar(val, "type").map(|s| (s.value, val.span)),
                    "options" => {
                        options = self
                            .string_list(val, "options")
                            .into_iter()
                            .map(|s| s.value)
                            .collect()
                    }
                    _ => {}
                }
            }
            if let Some((t, span)) = type_name {
                input.kind = match t.as_str() {
                    "string" => InputType::String,
                    "boolean" => InputType::Boolean,
                    "number" => InputType::Number,
                    "choice" if event == "workflow_dispatch" => InputType::Choice(options.clone()),
                    "environment" if event == "workflow_dispatch" => InputType::Environment,
                    other => {
                        let d =
                            self.err("wrong-type", span, format!("unknown input type '{other}'"));
                        d.hint = Some(if event == "workflow_call" {
                            "workflow_call inputs are boolean, number or string".into()
                        } else {
                            "workflow_dispatch inputs are boolean, choice, number, environment or string".into()
                        });
                        InputType::String
                    }
                };
                if let InputType::Choice(opts) = &input.kind {
                    if opts.is_empty() {
                        self.err(
                            "missing-key",
                            span,
                            format!("choice input '{name}' has no options"),
                        );
                    } else if let Some(d) = &input.default
                        && !opts.contains(&d.to_display_string())
                    {
                        self.err(
                            "wrong-type",
                            span,
                            format!("default '{d}' of input '{name}' is not one of its options"),
                        );
                    }
                }
            } else if event == "workflow_call" {
                self.err(
                    "missing-key",
                    k.span,
                    format!("workflow_call input '{name}' needs a 'type'"),
                );
            }
            out.insert(name.to_string(), input);
        }
        out
    }

    fn job(&mut self, id: &str, span: Span, node: &Node) -> Option<Job> {
        let map = self.map(node, &format!("job '{id}'"))?;
        let mut job = Job {
            id: id.to_string(),
            span,
            name: None,
            needs: Vec::new(),
            if_: None,
            runs_on: None,
            environment: None,
            concurrency: None,
            outputs: IndexMap::new(),
            env: Env::new(),
            defaults: RunDefaults::default(),
            steps: Vec::new(),
            timeout_minutes: None,
            cancel_timeout_minutes: None,
            strategy: None,
            continue_on_error: None,
            container: None,
            services: IndexMap::new(),
            uses: None,
            with: IndexMap::new(),
            secrets: None,
        };
        let what = format!("job '{id}'");
        let mut has_steps = false;
        for (key, _, v) in self.entries(map, JOB_KEYS, &what) {
            match key {
                "name" => job.name = self.expr_string(v, "name", Place::JobName),
                "needs" => job.needs = self.string_list(v, "needs"),
                "if" => {
                    if let Some(s) = self.scalar(v, "if") {
                        self.check_template(&s.value, v, Place::JobIf, true);
                        job.if_ = Some(s);
                    }
                }
                "runs-on" => {
                    self.check_node_exprs(v, Place::JobRunsOn);
                    job.runs_on = Some(v.clone());
                }
                "environment" => {
                    if v.is_scalar() {
                        job.environment = self
                            .expr_string(v, "environment", Place::JobEnvironment)
                            .map(|name| EnvironmentRef { name, url: None });
                    } else if let Some(m) = self.map(v, "environment") {
                        let mut name = None;
                        let mut url = None;
                        for (k, _, ev) in
                            self.entries(m, &["name", "url", "deployment"], "environment")
                        {
                            match k {
                                "name" => {
                                    name = self.expr_string(
                                        ev,
                                        "environment.name",
                                        Place::JobEnvironment,
                                    )
                                }
                                "url" => {
                                    url = self.expr_string(
                                        ev,
                                        "environment.url",
                                        Place::JobEnvironmentUrl,
                                    )
                                }
                                _ => {}
                            }
                        }
                        match name {
                            Some(name) => job.environment = Some(EnvironmentRef { name, url }),
                            None => {
                                self.err("missing-key", v.span, "environment needs a 'name'");
                            }
                        }
                    }
                }
                "concurrency" => job.concurrency = self.concurrency(v, Place::JobConcurrency),
                "outputs" => job.outputs = self.string_map(v, "outputs", Place::JobOutputs),
                "env" => job.env = self.string_map(v, "env", Place::JobEnv),
                "defaults" => job.defaults = self.defaults(v, Place::JobDefaults),
                "steps" => {
                    has_steps = true;
                    job.steps = self.steps(id, v);
                }
                "timeout-minutes" => {
                    job.timeout_minutes =
                        self.number_or_expr(v, "timeout-minutes", Place::JobTimeout)
                }
                // How long a cancelled job's steps get to stop before they
                // are killed (GitHub: 5 minutes by default).
                "cancel-timeout-minutes" => {
                    job.cancel_timeout_minutes =
                        self.number_or_expr(v, "cancel-timeout-minutes", Place::JobTimeout)
                }
                "strategy" => job.strategy = self.strategy(v),
                "continue-on-error" => {
                    job.continue_on_error =
                        self.bool_or_expr(v, "continue-on-error", Place::JobContinueOnError)
                }
                "container" => job.container = self.container(v, "container"),
                "services" => {
                    if let Some(m) = self.map(v, "services") {
                        for (sid, k, sv) in self.entries(m, &[], "services") {
                            if !valid_id(sid) {
                                self.err(
                                    "invalid-id",
                                    k.span,
                                    format!("service id '{sid}' is not valid"),
                                );
                                self.hint("ids start with a letter or '_' and contain only letters, digits, '-' and '_'");
                                continue;
                            }
                            if let Some(c) = self.container(sv, &format!("services.{sid}")) {
                                job.services.insert(sid.to_string(), c);
                            }
                        }
                    }
                }
                "uses" => job.uses = self.scalar(v, "uses"),
                "with" => job.with = self.string_map(v, "with", Place::JobWith),
                "secrets" => {
                    job.secrets = if v.as_str() == Some("inherit") {
                        Some(JobSecrets::Inherit)
                    } else {
                        Some(JobSecrets::Map(self.string_map(
                            v,
                            "secrets",
                            Place::JobSecrets,
                        )))
                    }
                }
                "permissions" => self.permissions(v),
                _ => {}
            }
        }
        if job.uses.is_some() {
            if job.runs_on.is_some() {
                self.err(
                    "conflict",
                    span,
                    format!("job '{id}' has both 'uses' and 'runs-on'"),
                );
                self.hint(
                    "a job that calls a reusable workflow runs where that workflow's jobs say",
                );
            }
            if has_steps {
                self.err(
                    "conflict",
                    span,
                    format!("job '{id}' has both 'uses' and 'steps'"),
                );
                self.hint("a job either calls a reusable workflow or runs steps");
            }
        } else {
            if !has_steps {
                self.err("missing-key", span, format!("job '{id}' has no 'steps'"));
            }
            if job.runs_on.is_none() {
                self.err("missing-key", span, format!("job '{id}' has no 'runs-on'"));
                self.hint("add e.g. 'runs-on: ubuntu-latest'; Launchway runs it on this machine");
            }
        }
        Some(job)
    }

    /// `permissions:` — `read-all`, `write-all`, `{}` or scope: level.
    fn permissions(&mut self, node: &Node) {
        const SCOPES: &[&str] = &[
            "actions",
            "artifact-metadata",
            "attestations",
            "checks",
            "contents",
            "deployments",
            "discussions",
            "id-token",
            "issues",
            "models",
            "packages",
            "pages",
            "pull-requests",
            "repository-projects",
            "security-events",
            "statuses",
        ];
        if let Some(s) = node.as_str() {
            if !matches!(s, "read-all" | "write-all") && !s.contains("${{") {
                self.err(
                    "wrong-value",
                    node.span,
                    format!("permissions must be 'read-all', 'write-all' or a mapping of scopes, not '{s}'"),
                );
            }
            return;
        }
        let Some(map) = self.map(node, "permissions") else {
            return;
        };
        for (scope, k, v) in self.entries(map, SCOPES, "permissions") {
            let level = v.as_str().unwrap_or("");
            let ok = match scope {
                // id-token and models have no 'read'-only write split the same way.
                "id-token" => matches!(level, "write" | "none"),
                "models" => matches!(level, "read" | "none"),
                _ => matches!(level, "read" | "write" | "none"),
            };
            if !ok {
                self.err(
                    "wrong-value",
                    v.span,
                    format!("permission '{scope}' cannot be '{level}'"),
                );
                self.hint(match scope {
                    "id-token" => "id-token is 'write' or 'none'",
                    "models" => "models is 'read' or 'none'",
                    _ => "a scope is 'read', 'write' or 'none'",
                });
            }
            let _ = k;
        }
    }

    /// `container:` / `services.<id>:` — an image name or a mapping.
    fn container(&mut self, node: &Node, what: &str) -> Option<Container> {
        if node.is_scalar() {
            let image = self.expr_string(node, what, Place::JobContainer)?;
            return Some(Container {
                span: node.span,
                image,
                credentials: None,
                env: Env::new(),
                ports: Vec::new(),
                volumes: Vec::new(),
                options: None,
            });
        }
        let map = self.map(node, what)?;
        let mut image = None;
        let mut c = Container {
            span: node.span,
            image: Spanned::new(String::new(), node.span),
            credentials: None,
            env: Env::new(),
            ports: Vec::new(),
            volumes: Vec::new(),
            options: None,
        };
        for (k, _, v) in self.entries(
            map,
            &["image", "credentials", "env", "ports", "volumes", "options"],
            what,
        ) {
            match k {
                "image" => {
                    image = self.expr_string(v, &format!("{what}.image"), Place::JobContainer)
                }
                "env" => c.env = self.string_map(v, &format!("{what}.env"), Place::JobContainerEnv),
                "ports" | "volumes" => {
                    let list = self.string_list(v, &format!("{what}.{k}"));
                    for item in &list {
                        self.check_template(&item.value, v, Place::JobContainer, false);
                    }
                    if k == "ports" {
                        c.ports = list;
                    } else {
                        c.volumes = list;
                    }
                }
                "options" => {
                    c.options = self.expr_string(v, &format!("{what}.options"), Place::JobContainer)
                }
                _ => {
                    let Some(m) = self.map(v, &format!("{what}.credentials")) else {
                        continue;
                    };
                    let (mut user, mut pass) = (None, None);
                    for (ck, _, cv) in
                        self.entries(m, &["username", "password"], &format!("{what}.credentials"))
                    {
                        let s = self.expr_string(
                            cv,
                            &format!("{what}.credentials.{ck}"),
                            Place::JobContainerCredentials,
                        );
                        if ck == "username" {
                            user = s;
                        } else {
                            pass = s;
                        }
                    }
                    match (user, pass) {
                        (Some(u), Some(p)) => c.credentials = Some((u, p)),
                        _ => {
                            self.err(
                                "missing-key",
                                v.span,
                                format!("{what}.credentials needs 'username' and 'password'"),
                            );
                        }
                    }
                }
            }
        }
        match image {
            Some(i) => c.image = i,
            None => {
                self.err("missing-key", node.span, format!("{what} needs an 'image'"));
                return None;
            }
        }
        Some(c)
    }

    /// Checks expressions anywhere inside a node (for values kept as trees).
    fn check_node_exprs(&mut self, node: &Node, place: Place) {
        match &node.kind {
            NodeKind::String(s) if template::has_expressions(s) => {
                self.check_template(s, node, place, false)
            }
            NodeKind::Seq(items) => items.iter().for_each(|i| self.check_node_exprs(i, place)),
            NodeKind::Map(m) => m.iter().for_each(|(_, v)| self.check_node_exprs(v, place)),
            _ => {}
        }
    }

    fn strategy(&mut self, node: &Node) -> Option<Strategy> {
        let map = self.map(node, "strategy")?;
        let mut s = Strategy::default();
        for (k, _, v) in self.entries(map, &["matrix", "fail-fast", "max-parallel"], "strategy") {
            match k {
                "matrix" => {
                    s.matrix = match &v.kind {
                        NodeKind::String(_) => self
                            .expr_string(v, "matrix", Place::JobStrategy)
                            .map(MatrixSpec::Expr),
                        NodeKind::Map(m) => {
                            self.check_node_exprs(v, Place::JobStrategy);
                            for (mk, mv) in m {
                                let key = mk.as_str().unwrap_or("");
                                let ok = match key {
                                    "include" | "exclude" => {
                                        matches!(mv.kind, NodeKind::Seq(_))
                                            || mv.as_str().is_some_and(template::has_expressions)
                                    }
                                    _ => {
                                        matches!(mv.kind, NodeKind::Seq(_))
                                            || mv.as_str().is_some_and(template::has_expressions)
                                    }
                                };
                                if !ok {
                                    self.err(
                                        "wrong-type",
                                        mv.span,
                                        format!(
                                            "matrix '{key}' must be a list, found {}",
                                            mv.type_name()
                                        ),
                                    );
                                } else if !matches!(key, "include" | "exclude")
                                    && mv.as_seq().is_some_and(<[Node]>::is_empty)
                                {
                                    // GitHub: "Matrix vector does not contain any values".
                                    self.err(
                                        "wrong-value",
                                        mv.span,
                                        format!("matrix vector '{key}' has no values"),
                                    );
                                }
                            }
                            Some(MatrixSpec::Map(v.clone()))
                        }
                        _ => {
                            self.err(
                                "wrong-type",
                                v.span,
                                format!(
                                    "matrix must be a mapping or an expression, found {}",
                                    v.type_name()
                                ),
                            );
                            None
                        }
                    }
                }
                "fail-fast" => s.fail_fast = self.bool_or_expr(v, "fail-fast", Place::JobStrategy),
                _ => s.max_parallel = self.number_or_expr(v, "max-parallel", Place::JobStrategy),
            }
        }
        Some(s)
    }

    /// A job's steps.
    pub(crate) fn steps(&mut self, job: &str, node: &Node) -> Vec<Step> {
        let mut seen = StepIds::default();
        let steps = self.step_list(job, node, STEP_KEYS, &mut seen, false);
        self.check_controls(job, &steps, &mut Vec::new());
        steps
    }

    /// A composite action's steps.
    pub(crate) fn composite_steps(&mut self, node: &Node) -> Vec<Step> {
        let mut seen = StepIds::default();
        self.step_list("composite", node, COMPOSITE_STEP_KEYS, &mut seen, false)
    }

    fn step_list(
        &mut self,
        job: &str,
        node: &Node,
        keys: &[&str],
        ids: &mut StepIds,
        in_parallel: bool,
    ) -> Vec<Step> {
        let Some(items) = node.as_seq() else {
            self.err(
                "wrong-type",
                node.span,
                format!("steps must be a list, found {}", node.type_name()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(step) = self.step(job, index, item, keys, ids, in_parallel) {
                out.push(step);
            }
        }
        out
    }

    fn step(
        &mut self,
        job: &str,
        index: usize,
        item: &Node,
        keys: &[&str],
        ids: &mut StepIds,
        in_parallel: bool,
    ) -> Option<Step> {
        let map = self.map(item, "a step")?;
        let mut step = Step {
            index,
            span: item.span,
            id: None,
            name: None,
            if_: None,
            uses: None,
            run: None,
            shell: None,
            with: IndexMap::new(),
            env: Env::new(),
            continue_on_error: None,
            timeout_minutes: None,
            working_directory: None,
            background: false,
            control: None,
        };
        // The key that says what kind of step this is, and where.
        let mut kinds: Vec<(&str, Span)> = Vec::new();
        let mut others: Vec<(&str, Span)> = Vec::new();
        for (k, kn, v) in self.entries(map, keys, "a step") {
            match k {
                "run" | "uses" | "wait" | "wait-all" | "cancel" | "parallel" => {
                    kinds.push((k, kn.span));
                }
                _ => others.push((k, kn.span)),
            }
            match k {
                "id" => {
                    step.id = self.scalar(v, "id");
                    if let Some(id) = &step.id {
                        if !valid_id(&id.value) {
                            self.err(
                                "invalid-id",
                                id.span,
                                format!("invalid step id '{}'", id.value),
                            );
                            self.hint("step ids start with a letter or '_' and contain only letters, digits, '-' and '_'");
                        }
                        if let Some((_, first)) = ids
                            .all
                            .iter()
                            .find(|(i, _)| i.eq_ignore_ascii_case(&id.value))
                        {
                            let line = first.start.line;
                            self.err(
                                "duplicate-id",
                                id.span,
                                format!(
                                    "step id '{}' is already used in job '{job}' (line {line})",
                                    id.value
                                ),
                            );
                            self.hint("step ids must be unique within a job");
                        }
                        ids.all.push((id.value.clone(), id.span));
                    }
                }
                "if" => {
                    if let Some(s) = self.scalar(v, "if") {
                        self.check_template(&s.value, v, Place::StepIf, true);
                        step.if_ = Some(s);
                    }
                }
                "name" => step.name = self.expr_string(v, "name", Place::Step),
                "uses" => step.uses = self.scalar(v, "uses"),
                "run" => step.run = self.expr_string(v, "run", Place::Step),
                "shell" => step.shell = self.scalar(v, "shell"),
                "with" => step.with = self.string_map(v, "with", Place::Step),
                "env" => step.env = self.string_map(v, "env", Place::Step),
                "continue-on-error" => {
                    step.continue_on_error = self.bool_or_expr(v, "continue-on-error", Place::Step)
                }
                "timeout-minutes" => {
                    step.timeout_minutes = self.number_or_expr(v, "timeout-minutes", Place::Step)
                }
                "working-directory" => {
                    step.working_directory = self.expr_string(v, "working-directory", Place::Step)
                }
                "background" => match v.kind {
                    NodeKind::Bool(b) => step.background = b,
                    _ => {
                        self.err(
                            "wrong-type",
                            v.span,
                            format!("background must be true or false, found {}", v.type_name()),
                        );
                    }
                },
                "wait" => {
                    let targets = match &v.kind {
                        NodeKind::Seq(_) => self.string_list(v, "wait"),
                        _ => self.scalar(v, "wait").into_iter().collect(),
                    };
                    if targets.is_empty() || targets.iter().any(|t| t.value.is_empty()) {
                        self.err("wrong-type", v.span, "wait names no step");
                        self.hint("give the id of a background step, or a list of them");
                    }
                    step.control = Some(Control::Wait(targets));
                }
                "wait-all" => match v.kind {
                    NodeKind::Null | NodeKind::Bool(true) => step.control = Some(Control::WaitAll),
                    // `wait-all: false` waits for nothing.
                    NodeKind::Bool(false) => step.control = Some(Control::Wait(Vec::new())),
                    _ => {
                        self.err(
                            "wrong-type",
                            v.span,
                            format!(
                                "wait-all takes no value or a boolean, found {}",
                                v.type_name()
                            ),
                        );
                    }
                },
                "cancel" => {
                    if let Some(t) = self.scalar(v, "cancel") {
                        if t.value.is_empty() {
                            self.err("wrong-type", v.span, "cancel names no step");
                        }
                        step.control = Some(Control::Cancel(t));
                    }
                }
                "parallel" => {
                    if in_parallel {
                        self.err(
                            "conflict",
                            v.span,
                            "a parallel block cannot hold another parallel block",
                        );
                        self.hint("list the steps in the outer block");
                    } else {
                        let inner = self.step_list(job, v, keys, ids, true);
                        if inner.is_empty() && v.as_seq().is_some() {
                            self.err("missing-key", v.span, "a parallel block has no steps");
                        }
                        step.control = Some(Control::Parallel(inner));
                    }
                }
                _ => {}
            }
        }
        match kinds.as_slice() {
            [] => {
                self.err("missing-key", item.span, "a step needs 'run' or 'uses'");
                if keys.contains(&"wait") {
                    self.hint("or, to coordinate background steps, 'wait', 'wait-all', 'cancel' or 'parallel'");
                }
            }
            [(first, _), (second, at), ..] => {
                self.err(
                    "conflict",
                    *at,
                    format!("a step has both '{first}' and '{second}'"),
                );
                self.hint("split it into two steps");
            }
            [(kind, _)] => {
                let kind = *kind;
                // What each kind takes besides its own key.
                let allowed: &[&str] = match kind {
                    "run" => &[
                        "id",
                        "if",
                        "name",
                        "shell",
                        "env",
                        "continue-on-error",
                        "timeout-minutes",
                        "working-directory",
                        "background",
                    ],
                    "uses" => &[
                        "id",
                        "if",
                        "name",
                        "with",
                        "env",
                        "continue-on-error",
                        "timeout-minutes",
                        "background",
                    ],
                    "parallel" => &[],
                    _ => CONTROL_STEP_KEYS,
                };
                for (k, at) in &others {
                    if !allowed.contains(k) {
                        let msg = match kind {
                            "run" | "uses" => format!(
                                "'{k}' only applies to {} steps",
                                if kind == "run" { "'uses'" } else { "'run'" }
                            ),
                            "parallel" => format!("'{k}' is not allowed on a parallel block"),
                            _ => format!("'{k}' is not allowed in a '{kind}' step"),
                        };
                        self.err("conflict", *at, msg);
                        if kind == "parallel" {
                            self.hint("set it on the steps inside the block");
                        } else if !matches!(kind, "run" | "uses") {
                            self.hint(format!(
                                "a '{kind}' step takes only: {}",
                                CONTROL_STEP_KEYS.join(", ")
                            ));
                        }
                    }
                }
                if in_parallel && !matches!(kind, "run" | "uses") {
                    self.err(
                        "conflict",
                        item.span,
                        format!("a parallel block holds 'run' and 'uses' steps, not '{kind}'"),
                    );
                }
            }
        }
        if let Some(u) = &step.uses
            && !u.value.starts_with("./")
            && !u.value.starts_with("docker://")
            && !u.value.contains('@')
        {
            self.err("uses", u.span, format!("'{}' names no version", u.value));
            self.hint("remote actions are written owner/repo@ref; local ones start with './'");
        }
        Some(step)
    }

    /// `wait` and `cancel` name background steps started earlier in the
    /// job (`started` collects them in order).
    fn check_controls(&mut self, job: &str, steps: &[Step], started: &mut Vec<String>) {
        for step in steps {
            match &step.control {
                Some(Control::Wait(targets)) => {
                    for t in targets {
                        self.check_target(job, t, started, "wait");
                    }
                }
                Some(Control::Cancel(t)) => self.check_target(job, t, started, "cancel"),
                Some(Control::Parallel(inner)) => {
                    // Its steps are waited for at the end of the block.
                    let mut own = Vec::new();
                    self.check_controls(job, inner, &mut own);
                }
                Some(Control::WaitAll) | None => {}
            }
            if step.background
                && let Some(id) = &step.id
            {
                started.push(id.value.clone());
            }
        }
    }

    fn check_target(&mut self, job: &str, t: &Spanned<String>, started: &[String], what: &str) {
        if t.value.is_empty() || started.iter().any(|s| s.eq_ignore_ascii_case(&t.value)) {
            return;
        }
        self.err(
            "steps",
            t.span,
            format!(
                "{what}: '{}' names no background step started earlier in job '{job}'",
                t.value
            ),
        );
        self.hint("give a step with 'background: true' an 'id:' and name it here");
    }
}

/// Step ids seen so far in a job (a `parallel` block's included).
#[derive(Default)]
struct StepIds {
    all: Vec<(String, Span)>,
}

/// GitHub's rule for job and step ids.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(crate) fn load_action_src(src: &str) -> (Option<crate::action::Action>, Vec<Diagnostic>) {
    let root = match yaml::parse(src) {
        Ok(n) => n,
        Err(e) => {
            let span = Span {
                start: e.pos,
                end: e.pos,
            };
            return (
                None,
                vec![Diagnostic::error(
                    "yaml",
                    span,
                    format!("invalid YAML: {}", e.message),
                )],
            );
        }
    };
    let mut l = Loader {
        src,
        diags: Vec::new(),
    };
    let a = crate::action::load_action(&mut l, &root);
    (a, l.diags)
}
