//! What a run leaves behind: the record `launchway runs` and `launchway logs`
//! read back, and the events a live display follows.

use crate::commands::Annotation;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A job's conclusion, as in `needs.<id>.result`, plus Launchway's own
/// `waiting` for a job held at a protected environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    /// Still in progress (only seen while a run goes).
    Running,
    Success,
    Failure,
    Cancelled,
    Skipped,
    Waiting,
}

impl JobResult {
    /// The result of several instances taken together (a matrix, or the jobs
    /// of a called workflow): any failure fails, then cancelled, then
    /// waiting; all skipped is skipped; otherwise success.
    pub fn combine(results: impl IntoIterator<Item = JobResult>) -> JobResult {
        let all: Vec<JobResult> = results.into_iter().collect();
        for r in [JobResult::Failure, JobResult::Cancelled, JobResult::Waiting] {
            if all.contains(&r) {
                return r;
            }
        }
        if !all.is_empty() && all.iter().all(|r| *r == JobResult::Skipped) {
            JobResult::Skipped
        } else {
            JobResult::Success
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Running => "running",
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Cancelled => "cancelled",
            JobResult::Skipped => "skipped",
            JobResult::Waiting => "waiting",
        }
    }
}

/// A step's outcome (before `continue-on-error`) or conclusion (after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl StepResult {
    pub fn as_str(self) -> &'static str {
        match self {
            StepResult::Success => "success",
            StepResult::Failure => "failure",
            StepResult::Cancelled => "cancelled",
            StepResult::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Success,
    Failure,
    Cancelled,
    Waiting,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Waiting => "waiting",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    pub outcome: StepResult,
    pub conclusion: StepResult,
    pub duration_ms: u64,
    /// The job's log file, relative to the run directory; the step's lines
    /// are bytes `log_start..log_end` of it.
    pub log: Option<String>,
    #[serde(default)]
    pub log_start: u64,
    #[serde(default)]
    pub log_end: u64,
}

impl StepRecord {
    /// The step's part of its job log.
    pub fn read_log(&self, run_dir: &std::path::Path) -> Option<String> {
        let bytes = std::fs::read(run_dir.join(self.log.as_ref()?)).ok()?;
        let start = usize::try_from(self.log_start).ok()?.min(bytes.len());
        let end = usize::try_from(self.log_end)
            .ok()?
            .clamp(start, bytes.len());
        Some(String::from_utf8_lossy(&bytes[start..end]).into_owned())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Unique within the run: the job id plus the matrix suffix.
    pub key: String,
    pub id: String,
    pub name: String,
    /// Sort key: position of the job in its workflow, then the matrix index
    /// (prefixed by the caller's ordinal for reusable workflows).
    #[serde(default)]
    pub ordinal: Vec<usize>,
    /// The jobs this one needs, as job keys without a matrix suffix (the
    /// edges of the run's graph).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    pub result: JobResult,
    pub started_at: Option<String>,
    pub duration_ms: u64,
    pub steps: Vec<StepRecord>,
    pub outputs: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<serde_json::Value>,
    /// Why the job ended the way it did, when that is not obvious from its steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Markdown written to `GITHUB_STEP_SUMMARY`, masked.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub workflow: String,
    pub workflow_path: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub repository: String,
    pub status: RunStatus,
    pub started_at: String,
    pub duration_ms: u64,
    /// `run-name`, evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub jobs: Vec<JobRecord>,
    pub annotations: Vec<Annotation>,
}

/// What a live display follows (and what an agent streams to the server).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run: u64,
        workflow: String,
    },
    JobStarted {
        key: String,
        name: String,
    },
    StepStarted {
        key: String,
        index: usize,
        name: String,
    },
    Log {
        key: String,
        line: String,
    },
    StepFinished {
        key: String,
        index: usize,
        conclusion: StepResult,
        /// Before `continue-on-error`: a failed step that let the job go on
        /// has outcome failure and conclusion success (shown failed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<StepResult>,
        duration_ms: u64,
    },
    JobFinished {
        key: String,
        name: String,
        result: JobResult,
        duration_ms: u64,
    },
    Waiting {
        key: String,
        environment: String,
    },
    RunFinished {
        run: u64,
        status: RunStatus,
    },
    /// Something the user should know while the run goes.
    Notice {
        message: String,
    },
}
