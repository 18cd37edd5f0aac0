//! Leaked secrets: built-in rules, gitleaks-compatible configs, the
//! matcher, and the two sources it reads — a directory tree and git history.

pub mod config;
pub mod engine;
pub mod rules;
pub mod source;

pub use engine::{Commit, Engine, Finding};
