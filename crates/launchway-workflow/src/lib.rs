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
pub use launchway_yaml as yaml;

/// A YAML node as an expression value.
pub fn node_value(node: &yaml::Node) -> launchway_expr::Value {
    use launchway_expr::Value;
    use yaml::NodeKind;
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Number(n) => Value::Number(*n),
        NodeKind::String(s) => Value::String(s.clone()),
        NodeKind::Seq(items) => Value::Array(items.iter().map(node_value).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_string().unwrap_or_default(), node_value(v)))
                .collect(),
        ),
    }
}

pub use diag::{Diagnostic, Severity};
pub use load::{Loaded, load, valid_id};
pub use model::*;
pub use triggers::{Event, EventTrigger, Input, InputType, Triggers};
