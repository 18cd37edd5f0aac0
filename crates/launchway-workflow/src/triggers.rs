//! `on:` — which events start a workflow, with GitHub's filter rules.

use crate::cron::Cron;
use crate::glob::PatternList;
use crate::model::Spanned;
use crate::yaml::Span;
use indexmap::IndexMap;
use launchway_expr::Value;

#[derive(Debug, Clone, Default)]
pub struct Triggers {
    pub events: IndexMap<String, EventTrigger>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputType {
    String,
    Boolean,
    Number,
    Choice(Vec<String>),
    Environment,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<Value>,
    pub kind: InputType,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct EventTrigger {
    pub name: String,
    pub span: Span,
    pub types: Vec<String>,
    pub branches: Option<PatternList>,
    pub branches_ignore: Option<PatternList>,
    pub tags: Option<PatternList>,
    pub tags_ignore: Option<PatternList>,
    pub paths: Option<PatternList>,
    pub paths_ignore: Option<PatternList>,
    /// `workflow_dispatch` and `workflow_call` inputs.
    pub inputs: IndexMap<String, Input>,
    /// `workflow_call` outputs: name → value expression.
    pub outputs: IndexMap<String, Spanned<String>>,
    /// `workflow_call` secrets: name → required.
    pub secrets: IndexMap<String, bool>,
    pub crons: Vec<Spanned<Cron>>,
    pub workflows: Vec<String>,
}

/// The event a run is asked to handle.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub name: String,
    /// `refs/heads/x` or `refs/tags/x` (for `pull_request`: the head ref).
    pub git_ref: String,
    /// For pull requests: the base branch name the filters apply to.
    pub base_ref: Option<String>,
    /// The activity type, e.g. `opened` for `pull_request`.
    pub action: Option<String>,
    /// Files changed by the push or pull request; `None` when unknown, in
    /// which case path filters pass (GitHub does the same when the diff is too large).
    pub changed_files: Option<Vec<String>>,
}

/// Default activity types GitHub uses when `types:` is absent.
fn default_types(event: &str) -> &'static [&'static str] {
    match event {
        "pull_request" | "pull_request_target" => &["opened", "synchronize", "reopened"],
        _ => &[],
    }
}

impl EventTrigger {
    /// Whether this trigger fires for the event, applying types, branch,
    /// tag and path filters with GitHub's rules.
    pub fn matches(&self, ev: &Event) -> bool {
        self.why_not(ev).is_none()
    }

    /// Why this trigger does not run for `ev` (`None`: it runs) — what
    /// `launchway run` says about a workflow it skips.
    pub fn why_not(&self, ev: &Event) -> Option<String> {
        if let Some(action) = &ev.action {
            let types: Vec<&str> = if self.types.is_empty() {
                default_types(&self.name).to_vec()
            } else {
                self.types.iter().map(String::as_str).collect()
            };
            if !types.is_empty() && !types.contains(&action.as_str()) {
                return Some(format!(
                    "{} activity '{action}' is not in its types ({})",
                    self.name,
                    types.join(", ")
                ));
            }
        }
        match self.name.as_str() {
            "push" => self.why_not_push(ev),
            "pull_request" | "pull_request_target" => {
                let base = ev.base_ref.as_deref().unwrap_or_else(|| {
                    ev.git_ref
                        .strip_prefix("refs/heads/")
                        .unwrap_or(&ev.git_ref)
                });
                if !self.branch_filter(base) {
                    return Some(format!("base branch '{base}' is filtered out (branches)"));
                }
                (!self.path_filter(ev)).then(|| "no changed file matches its paths filter".into())
            }
            "workflow_run" => {
                let branch = ev
                    .git_ref
                    .strip_prefix("refs/heads/")
                    .unwrap_or(&ev.git_ref);
                (!self.branch_filter(branch))
                    .then(|| format!("branch '{branch}' is filtered out (branches)"))
            }
            _ => None,
        }
    }

    fn why_not_push(&self, ev: &Event) -> Option<String> {
        let has_branch = self.branches.is_some() || self.branches_ignore.is_some();
        let has_tag = self.tags.is_some() || self.tags_ignore.is_some();
        if let Some(tag) = ev.git_ref.strip_prefix("refs/tags/") {
            // Only branch filters: tag pushes do not run. Paths are not
            // evaluated for tags.
            if has_branch && !has_tag {
                return Some(format!("tag '{tag}': it filters branches only"));
            }
            return (!filter(self.tags.as_ref(), self.tags_ignore.as_ref(), tag))
                .then(|| format!("tag '{tag}' is filtered out (tags)"));
        }
        let branch = ev
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&ev.git_ref);
        if has_tag && !has_branch {
            return Some(format!("branch '{branch}': it filters tags only"));
        }
        if !self.branch_filter(branch) {
            return Some(format!("branch '{branch}' is filtered out (branches)"));
        }
        (!self.path_filter(ev)).then(|| "no changed file matches its paths filter".into())
    }

    fn branch_filter(&self, branch: &str) -> bool {
        filter(
            self.branches.as_ref(),
            self.branches_ignore.as_ref(),
            branch,
        )
    }

    fn path_filter(&self, ev: &Event) -> bool {
        let Some(files) = &ev.changed_files else {
            return true;
        };
        if let Some(paths) = &self.paths {
            return files.iter().any(|f| paths.matches(f));
        }
        if let Some(ignore) = &self.paths_ignore {
            return !files.iter().all(|f| ignore.matches(f));
        }
        true
    }
}

fn filter(include: Option<&PatternList>, ignore: Option<&PatternList>, s: &str) -> bool {
    if let Some(inc) = include {
        return inc.matches(s);
    }
    if let Some(ign) = ignore {
        return !ign.matches(s);
    }
    true
}

impl Triggers {
    pub fn get(&self, event: &str) -> Option<&EventTrigger> {
        self.events.get(event)
    }

    /// Whether the workflow runs for this event.
    pub fn matches(&self, ev: &Event) -> bool {
        self.why_not(ev).is_none()
    }

    /// Why the workflow does not run for this event (`None`: it runs).
    pub fn why_not(&self, ev: &Event) -> Option<String> {
        match self.events.get(&ev.name) {
            None => Some(format!("not triggered by {}", ev.name)),
            Some(t) => t.why_not(ev),
        }
    }
}
