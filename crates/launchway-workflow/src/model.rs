//! The typed workflow model. Values that may hold `${{ }}` expressions are
//! kept as strings with their spans and evaluated when the run reaches them.

use crate::triggers::Triggers;
use crate::yaml::{Node, Span};
use indexmap::IndexMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

pub type Env = IndexMap<String, Spanned<String>>;

#[derive(Debug, Clone, Default)]
pub struct RunDefaults {
    pub shell: Option<Spanned<String>>,
    pub working_directory: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Concurrency {
    pub group: Spanned<String>,
    /// `true`, `false` or an expression.
    pub cancel_in_progress: Option<Spanned<String>>,
    /// `queue: max`: every pending run waits its turn (the default,
    /// `single`, keeps one pending run and cancels an older one).
    pub queue_all: bool,
}

#[derive(Debug, Clone)]
pub struct Workflow {
    /// Path as given to the loader, used in diagnostics and run records.
    pub path: String,
    pub name: Option<String>,
    pub run_name: Option<Spanned<String>>,
    pub on: Triggers,
    pub env: Env,
    pub defaults: RunDefaults,
    pub concurrency: Option<Concurrency>,
    pub jobs: IndexMap<String, Job>,
}

impl Workflow {
    /// The display name: `name:` or the file path, as GitHub shows it.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone)]
pub struct EnvironmentRef {
    pub name: Spanned<String>,
    pub url: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub enum MatrixSpec {
    /// `matrix: ${{ fromJSON(...) }}`, evaluated at plan time.
    Expr(Spanned<String>),
    /// The mapping as written; it may contain expressions.
    Map(Node),
}

#[derive(Debug, Clone, Default)]
pub struct Strategy {
    pub matrix: Option<MatrixSpec>,
    pub fail_fast: Option<Spanned<String>>,
    pub max_parallel: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub enum JobSecrets {
    Inherit,
    Map(IndexMap<String, Spanned<String>>),
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// Span of the job's key.
    pub span: Span,
    pub name: Option<Spanned<String>>,
    pub needs: Vec<Spanned<String>>,
    pub if_: Option<Spanned<String>>,
    pub runs_on: Option<Node>,
    pub environment: Option<EnvironmentRef>,
    pub concurrency: Option<Concurrency>,
    pub outputs: IndexMap<String, Spanned<String>>,
    pub env: Env,
    pub defaults: RunDefaults,
    pub steps: Vec<Step>,
    /// `cancel-timeout-minutes`: how long a cancelled job's steps get to
    /// stop before they are killed.
    pub cancel_timeout_minutes: Option<Spanned<String>>,
    pub timeout_minutes: Option<Spanned<String>>,
    pub strategy: Option<Strategy>,
    pub continue_on_error: Option<Spanned<String>>,
    pub container: Option<Container>,
    pub services: IndexMap<String, Container>,
    /// A reusable workflow call: `uses: ./.github/workflows/x.yml`.
    pub uses: Option<Spanned<String>>,
    pub with: IndexMap<String, Spanned<String>>,
    pub secrets: Option<JobSecrets>,
}

/// `container:` or one of `services:` — an image and how to start it.
#[derive(Debug, Clone)]
pub struct Container {
    pub span: Span,
    pub image: Spanned<String>,
    /// (username, password)
    pub credentials: Option<(Spanned<String>, Spanned<String>)>,
    pub env: Env,
    pub ports: Vec<Spanned<String>>,
    pub volumes: Vec<Spanned<String>>,
    /// Extra `docker create` options, as one string.
    pub options: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub index: usize,
    pub span: Span,
    pub id: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub if_: Option<Spanned<String>>,
    pub uses: Option<Spanned<String>>,
    pub run: Option<Spanned<String>>,
    pub shell: Option<Spanned<String>>,
    pub with: IndexMap<String, Spanned<String>>,
    pub env: Env,
    pub continue_on_error: Option<Spanned<String>>,
    pub timeout_minutes: Option<Spanned<String>>,
    pub working_directory: Option<Spanned<String>>,
    /// `background: true`: the job goes on to the next step while this one
    /// runs (GitHub's parallel steps).
    pub background: bool,
    /// A step that waits for or cancels background steps, or runs a group of
    /// steps together, instead of running a command or an action.
    pub control: Option<Control>,
}

/// The step kinds that coordinate background steps.
#[derive(Debug, Clone)]
pub enum Control {
    /// `wait: id` or `wait: [ids]`: until those background steps end.
    Wait(Vec<Spanned<String>>),
    /// `wait-all:`: until every earlier background step ends.
    WaitAll,
    /// `cancel: id`: stop a background step.
    Cancel(Spanned<String>),
    /// `parallel: [steps]`: start them all in the background, then wait for
    /// every one of them.
    Parallel(Vec<Step>),
}

/// Every step of a list in order, a `parallel` block's steps included.
pub fn flat_steps(steps: &[Step]) -> Vec<&Step> {
    let mut out = Vec::new();
    for s in steps {
        out.push(s);
        if let Some(Control::Parallel(inner)) = &s.control {
            out.extend(flat_steps(inner));
        }
    }
    out
}

impl Step {
    /// The name GitHub shows for a step without `name:`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.value.clone();
        }
        if let Some(u) = &self.uses {
            return format!("Run {}", u.value);
        }
        if let Some(r) = &self.run {
            let first = r.value.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return format!("Run {}", first.trim());
        }
        match &self.control {
            Some(Control::Wait(ids)) => format!(
                "Wait for {}",
                ids.iter()
                    .map(|i| i.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(Control::WaitAll) => "Wait for all background steps".into(),
            Some(Control::Cancel(id)) => format!("Cancel {}", id.value),
            Some(Control::Parallel(_)) | None => format!("Step {}", self.index + 1),
        }
    }
}
