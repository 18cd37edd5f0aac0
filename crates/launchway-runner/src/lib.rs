//! Executing workflow runs on this machine: a DAG scheduler over jobs and
//! matrix instances, steps in shells as GitHub runs them, runner files and
//! workflow commands, masking, logs and run records, built-in equivalents
//! of popular actions, local actions and reusable workflows.

pub mod actions;
mod background;
pub mod cancel;
pub mod commands;
pub mod concurrency;
mod container;
pub mod context;
pub mod deployer;
pub mod environments;
pub mod files;
mod github;
pub mod job;
pub mod mask;
pub mod prepare;
pub mod private;
pub mod process;
pub mod record;
mod reusable;
mod run;
pub mod shell;
pub mod source;
pub mod spec;
pub mod store;

pub use run::{Approver, Continuation, ReusedJob, RunConfig, run_workflow};
