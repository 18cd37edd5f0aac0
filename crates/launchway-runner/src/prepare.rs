//! Preparing a run, once for every caller: `launchway run`, the server's
//! triggers and dispatch API, and its workers all go through these
//! functions, so refs, workflow loading, inputs, the action map and debug
//! flags mean the same wherever a run starts.

use crate::source::Source;
use indexmap::IndexMap;
use launchway_expr::Value;
use launchway_workflow::{Diagnostic, Event, InputType, Severity, Workflow};

/// Where workflow files live in a repository.
pub const WORKFLOWS_DIR: &str = ".github/workflows";
/// Where `owner/repo@ref` → local path mappings live.
pub const ACTION_MAP_FILE: &str = ".launchway/actions.yaml";

/// Why a run cannot be prepared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrepareError {
    #[error("input '{name}' must be {expected}, got '{got}'")]
    InputType {
        name: String,
        expected: String,
        got: String,
    },
    #[error("input '{0}' is required: pass --input {0}=VALUE")]
    InputRequired(String),
    #[error("unknown input '{name}'{declared}")]
    InputUnknown { name: String, declared: String },
    #[error("{ACTION_MAP_FILE}:{0}")]
    ActionMap(String),
    #[error("{0} has no 'workflow_dispatch' trigger")]
    NotDispatchable(String),
    #[error("{path} has errors (launchway lint shows them)")]
    Invalid { path: String },
    #[error("{path} is not in {git_ref} ({sha})")]
    Missing {
        path: String,
        git_ref: String,
        sha: String,
    },
    #[error(
        "the tracked environments branch '{0}' is missing: no protection rules can be read, so nothing enters an environment"
    )]
    RulesBranchMissing(String),
}

/// A ref as the user wrote it (`main`, `v1`, `refs/tags/v1`) made full: a
/// short name is a tag when the repository has such a tag and no branch of
/// that name, as git itself resolves it; otherwise a branch.
pub fn full_ref(r: &str, git_root: Option<&std::path::Path>) -> String {
    if r.starts_with("refs/") {
        return r.to_string();
    }
    if let Some(root) = git_root {
        let has =
            |full: &str| crate::source::git(root, &["rev-parse", "--verify", "-q", full]).is_ok();
        if has(&format!("refs/tags/{r}")) && !has(&format!("refs/heads/{r}")) {
            return format!("refs/tags/{r}");
        }
    }
    format!("refs/heads/{r}")
}

/// The event a run is for, with the files the commit changed since
/// `changed_since` (a base branch or the push's `before`; none: since the
/// commit's parent).
pub fn event(
    source: &Source,
    name: &str,
    git_ref: &str,
    base_ref: Option<&str>,
    action: Option<&str>,
    changed_since: Option<&str>,
) -> Event {
    Event {
        name: name.to_string(),
        git_ref: git_ref.to_string(),
        base_ref: base_ref.map(str::to_string),
        action: action.map(str::to_string),
        changed_files: source.changed_files(changed_since),
    }
}

/// `.launchway/actions.yaml` of the commit (empty when there is none).
/// Where a run's environment protection rules are read from: the tracked
/// environments branch when there is one, else the repository's default
/// branch (`origin/HEAD`, `main`, `master`, then `HEAD`) — never the
/// commit being run. `fallback` (that commit) only when `dir` has no
/// commit at all, and then it says so. A tracked branch that is missing
/// is an error (fails closed): another branch's files are not its rules.
pub fn rules_source(
    dir: &std::path::Path,
    tracked: Option<&str>,
    fallback: &Source,
) -> Result<crate::environments::RulesSource, PrepareError> {
    let candidates: Vec<String> = match tracked {
        Some(b) => vec![format!("refs/heads/{b}")],
        None => [
            "refs/remotes/origin/HEAD",
            "refs/heads/main",
            "refs/heads/master",
            "HEAD",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    for c in candidates {
        if let Ok(source) = Source::open(dir, Some(&c), false)
            && source.git_root.is_some()
        {
            let short = &source.sha[..source.sha.len().min(7)];
            return Ok(crate::environments::RulesSource {
                from: format!("{c} at {short}"),
                source,
            });
        }
    }
    if let Some(b) = tracked {
        return Err(PrepareError::RulesBranchMissing(b.to_string()));
    }
    Ok(crate::environments::RulesSource {
        source: fallback.clone(),
        from: "the working tree (the repository has no commit)".into(),
    })
}

pub fn action_map(source: &Source) -> Result<IndexMap<String, String>, PrepareError> {
    match source.read_file(ACTION_MAP_FILE) {
        Some(t) => crate::actions::load_action_map(&t).map_err(PrepareError::ActionMap),
        None => Ok(IndexMap::new()),
    }
}

/// A workflow file of the commit that did not load, with its text so the
/// caller can render the diagnostics in place.
#[derive(Debug, Clone)]
pub struct Broken {
    pub path: String,
    pub text: String,
    pub errors: Vec<Diagnostic>,
}

impl Broken {
    /// `path:line:col: message` of the first error.
    pub fn first_line(&self) -> String {
        self.errors.first().map_or_else(
            || self.path.clone(),
            |d| {
                format!(
                    "{}:{}:{}: {}",
                    self.path, d.span.start.line, d.span.start.col, d.message
                )
            },
        )
    }
}

/// The workflow files of a commit: those that load, and those that do not.
#[derive(Debug, Default)]
pub struct Workflows {
    pub ok: Vec<(String, Workflow)>,
    pub broken: Vec<Broken>,
}

impl Workflows {
    /// The loaded ones an event triggers.
    pub fn triggered(self, event: &Event) -> Vec<(String, Workflow)> {
        self.ok
            .into_iter()
            .filter(|(_, wf)| wf.on.matches(event))
            .collect()
    }
}

/// Loads one workflow file.
pub fn load_one(path: &str, text: &str) -> Result<Workflow, Broken> {
    let loaded = launchway_workflow::load(path, text);
    let errors: Vec<Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    match loaded.workflow {
        Some(wf) if errors.is_empty() => Ok(wf),
        _ => Err(Broken {
            path: path.to_string(),
            text: text.to_string(),
            errors,
        }),
    }
}

/// Every workflow file of the commit (`*.yml`, `*.yaml` under
/// `.github/workflows`).
pub fn workflows(source: &Source) -> Workflows {
    let mut out = Workflows::default();
    for f in source
        .list_dir(WORKFLOWS_DIR)
        .into_iter()
        .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
    {
        let Some(text) = source.read_file(&f) else {
            continue;
        };
        match load_one(&f, &text) {
            Ok(wf) => out.ok.push((f, wf)),
            Err(b) => out.broken.push(b),
        }
    }
    out
}

/// One workflow file of the commit, ready to run.
pub fn workflow(source: &Source, path: &str, git_ref: &str) -> Result<Workflow, PrepareError> {
    let path = path.trim_start_matches("./");
    let text = source
        .read_file(path)
        .ok_or_else(|| PrepareError::Missing {
            path: path.to_string(),
            git_ref: git_ref.to_string(),
            sha: source.sha.clone(),
        })?;
    load_one(path, &text).map_err(|b| PrepareError::Invalid { path: b.path })
}

/// The `inputs` context for an event: declared inputs typed and checked
/// (`boolean`, `number`, `choice`, `required`), defaults filled in. For
/// `workflow_dispatch` (and any event with declared inputs) an undeclared
/// input is refused.
pub fn inputs(
    wf: &Workflow,
    event: &str,
    given: &IndexMap<String, String>,
) -> Result<Value, PrepareError> {
    let mut out = Value::object();
    let declared = wf
        .on
        .get(event)
        .map(|t| t.inputs.clone())
        .unwrap_or_default();
    let bad = |name: &str, expected: String, got: &str| PrepareError::InputType {
        name: name.to_string(),
        expected,
        got: got.to_string(),
    };
    for (name, input) in &declared {
        let value = given
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone());
        let v = match (value, &input.default) {
            (Some(s), _) => match &input.kind {
                InputType::Boolean => match s.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(bad(name, "true or false".into(), &s)),
                },
                InputType::Number => Value::Number(
                    launchway_expr::parse_number(&s)
                        .ok_or_else(|| bad(name, "a number".into(), &s))?,
                ),
                InputType::Choice(opts) => {
                    if !opts.contains(&s) {
                        return Err(bad(name, format!("one of {}", opts.join(", ")), &s));
                    }
                    Value::String(s)
                }
                _ => Value::String(s),
            },
            (None, Some(d)) => match (&input.kind, d) {
                (InputType::Boolean, Value::String(s)) => Value::Bool(s == "true"),
                (_, d) => d.clone(),
            },
            (None, None) if input.required => {
                return Err(PrepareError::InputRequired(name.clone()));
            }
            (None, None) => match input.kind {
                InputType::Boolean => Value::Bool(false),
                _ => Value::str(""),
            },
        };
        out.insert(name.clone(), v);
    }
    for (k, v) in given {
        if out.get(k).is_none() {
            if !declared.is_empty() || event == "workflow_dispatch" {
                return Err(PrepareError::InputUnknown {
                    name: k.clone(),
                    declared: if declared.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (declared: {})",
                            declared.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    },
                });
            }
            out.insert(k.clone(), Value::str(v));
        }
    }
    Ok(out)
}

/// A `workflow_dispatch` of `path`: the workflow must have the trigger and
/// the inputs must check out, before anything is queued.
pub fn check_dispatch(
    wf: &Workflow,
    path: &str,
    given: &IndexMap<String, String>,
) -> Result<(), PrepareError> {
    if wf.on.get("workflow_dispatch").is_none() {
        return Err(PrepareError::NotDispatchable(path.to_string()));
    }
    inputs(wf, "workflow_dispatch", given).map(|_| ())
}

/// Step debug logging: asked for on the command line, or
/// `ACTIONS_STEP_DEBUG=true` as a secret or a variable (GitHub's switch).
pub fn step_debug(
    asked: bool,
    secrets: &IndexMap<String, String>,
    vars: &IndexMap<String, String>,
) -> bool {
    asked
        || [secrets, vars].iter().any(|m| {
            m.get("ACTIONS_STEP_DEBUG")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(text: &str) -> Workflow {
        load_one("w.yml", text).unwrap()
    }

    const DISPATCH: &str = "on:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [info, debug]\n        default: info\n      dry:\n        type: boolean\n      n:\n        type: number\n      who:\n        required: true\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n";

    fn given(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inputs_are_typed_and_checked() {
        let w = wf(DISPATCH);
        let v = inputs(
            &w,
            "workflow_dispatch",
            &given(&[("who", "me"), ("n", "3")]),
        )
        .unwrap();
        assert_eq!(v.get("level"), Some(&Value::str("info")));
        assert_eq!(v.get("dry"), Some(&Value::Bool(false)));
        assert_eq!(v.get("n"), Some(&Value::Number(3.0)));
        let e = inputs(
            &w,
            "workflow_dispatch",
            &given(&[("who", "me"), ("level", "loud")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'level' must be one of info, debug, got 'loud'"
        );
        assert!(matches!(
            inputs(&w, "workflow_dispatch", &given(&[])),
            Err(PrepareError::InputRequired(n)) if n == "who"
        ));
        assert!(matches!(
            inputs(
                &w,
                "workflow_dispatch",
                &given(&[("who", "me"), ("dry", "yes")])
            ),
            Err(PrepareError::InputType { .. })
        ));
        assert!(matches!(
            inputs(
                &w,
                "workflow_dispatch",
                &given(&[("who", "me"), ("extra", "1")])
            ),
            Err(PrepareError::InputUnknown { .. })
        ));
        assert!(check_dispatch(&w, "w.yml", &given(&[("who", "x")])).is_ok());
        let push = wf("on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n");
        assert_eq!(
            check_dispatch(&push, "w.yml", &given(&[])),
            Err(PrepareError::NotDispatchable("w.yml".into()))
        );
    }

    #[test]
    fn debug_from_flag_secret_or_variable() {
        let none = IndexMap::new();
        let on = given(&[("ACTIONS_STEP_DEBUG", "TRUE")]);
        assert!(!step_debug(false, &none, &none));
        assert!(step_debug(true, &none, &none));
        assert!(step_debug(false, &on, &none));
        assert!(step_debug(false, &none, &on));
    }

    #[test]
    fn short_refs_resolve_to_tags_only_when_unambiguous() {
        let d = tempfile::tempdir().unwrap();
        let g = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(d.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "a")
                .env("GIT_AUTHOR_EMAIL", "a@b")
                .env("GIT_COMMITTER_NAME", "a")
                .env("GIT_COMMITTER_EMAIL", "a@b")
                .status()
                .unwrap()
                .success();
            assert!(ok);
        };
        g(&["init", "-q", "-b", "main"]);
        g(&["commit", "-q", "--allow-empty", "-m", "x"]);
        g(&["tag", "v1"]);
        g(&["tag", "both"]);
        g(&["branch", "both"]);
        assert_eq!(full_ref("v1", Some(d.path())), "refs/tags/v1");
        assert_eq!(full_ref("both", Some(d.path())), "refs/heads/both");
        assert_eq!(full_ref("main", Some(d.path())), "refs/heads/main");
        assert_eq!(full_ref("refs/tags/x", None), "refs/tags/x");
        assert_eq!(full_ref("v1", None), "refs/heads/v1");
    }
}

#[cfg(test)]
mod rules_source_tests {
    use super::*;

    fn git(dir: &std::path::Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    /// A tracked branch that is gone is an error, never the run's own
    /// commit (whose author controls it) nor another branch.
    #[test]
    fn a_missing_tracked_branch_fails_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "x"]);
        git(dir, &["checkout", "-q", "-b", "feature"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "mine"]);
        let run = Source::open(dir, Some("HEAD"), false).unwrap();
        assert_eq!(
            rules_source(dir, Some("environments"), &run).unwrap_err(),
            PrepareError::RulesBranchMissing("environments".into())
        );
        git(dir, &["branch", "environments", "main"]);
        let r = rules_source(dir, Some("environments"), &run).unwrap();
        assert!(r.from.starts_with("refs/heads/environments"), "{}", r.from);
        // Untracked: the default branch, not the checked-out feature branch.
        let r = rules_source(dir, None, &run).unwrap();
        assert!(r.from.starts_with("refs/heads/main"), "{}", r.from);
    }
}
