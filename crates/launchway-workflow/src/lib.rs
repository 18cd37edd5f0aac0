//! GitHub Actions workflows: a typed model with source positions,
//! validation diagnostics, triggers and filters, matrix expansion and the
//! job graph. No I/O: callers hand in file contents.

pub mod action;
pub mod contexts;
pub mod cron;
pub mod diag;
pub mod glob;
pub mod graph;
mod lint;
mod load;
pub mod matrix;
pub mod model;
pub mod triggers;
pub mod yaml;

pub use diag::{Diagnostic, Severity};
pub use load::{Loaded, load, valid_id};
pub use model::*;
pub use triggers::{Event, EventTrigger, Input, InputType, Triggers};
