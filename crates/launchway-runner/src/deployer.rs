//! How a run deploys (`uses: launchway/deploy`): the runner knows the
//! request; whoever runs it (`launchway run`, the server) knows where the
//! reconciler is. A trait keeps the runner free of deployment targets.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// One deployment asked for by a workflow step.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The repository folder the run comes from.
    pub root: PathBuf,
    /// The environment files' directory, relative to `root`.
    pub dir: PathBuf,
    /// The environment (its file's name).
    pub environment: String,
    /// What to run (a commit, pinned to its full hash).
    pub release: Option<String>,
    /// Other keys to set (`replicas=3`, `model_version=4`).
    pub sets: Vec<(String, String)>,
    /// The branch that tracks the environments (default: the checked-out one).
    pub branch: Option<String>,
    /// Where that branch starts when it does not exist yet: the run's commit.
    pub create_from: Option<String>,
    /// Who asked (the commit's author).
    pub actor: String,
    /// Wait until the release serves (or failed) before the step ends.
    pub wait: bool,
    /// With `wait`: return once a progressive rollout of it has started
    /// (its canary or preview answers) instead of waiting for promotion.
    pub wait_started: bool,
    pub timeout: Duration,
}

/// What a deployment did.
#[derive(Debug, Clone, Default)]
pub struct DeployOutcome {
    /// The commit of the environment file (`None`: it already had this).
    pub commit: Option<String>,
    /// The revision that now runs.
    pub revision: Option<String>,
    /// The environment's stable address.
    pub url: Option<String>,
    /// Lines for the step's log.
    pub log: Vec<String>,
}

/// How a deployer's log line about a progressive rollout starts; the
/// `launchway/deploy` step also puts such lines in the job summary.
pub const ROLLOUT_LINE: &str = "rollout: ";

pub type DeployFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DeployOutcome, String>> + Send + 'a>>;

/// A model version to register (`launchway/register-model`).
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub name: String,
    /// The file to register as a new version (or `version` to alias an existing one).
    pub file: Option<PathBuf>,
    pub version: Option<u64>,
    /// Aliases (stages) to point at the version.
    pub aliases: Vec<String>,
    /// Where it came from (the run).
    pub source: String,
}

pub trait Deployer: Send + Sync {
    fn deploy(&self, request: DeployRequest) -> DeployFuture<'_>;
    /// Registers a model version in the built-in registry; returns the version.
    fn register_model(&self, request: ModelRequest) -> Result<u64, String>;
}
