//! The OSV schema (the parts matching needs), read from JSON or YAML.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub modified: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub database_specific: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeverityEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Affected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub database_specific: serde_json::Value,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub ecosystem_specific: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{file}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
    #[error("{file}: not an OSV record: {message}")]
    Schema { file: String, message: String },
}

impl Advisory {
    pub fn from_json(file: &str, bytes: &[u8]) -> Result<Advisory, ParseError> {
        serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                ParseError::Schema {
                    file: file.to_string(),
                    message: e.to_string(),
                }
            } else {
                ParseError::Json {
                    file: file.to_string(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                }
            }
        })
    }

    /// OSV as YAML (the PyPA advisory database's format). Every scalar is
    /// read as written, so `1.10` stays the version `1.10`.
    pub fn from_yaml(file: &str, text: &str) -> Result<Advisory, ParseError> {
        let node = launchway_yaml::parse(text).map_err(|e| ParseError::Yaml {
            file: file.to_string(),
            line: e.pos.line,
            column: e.pos.col,
            message: e.message,
        })?;
        serde_json::from_value(scalars_as_written(&node)).map_err(|e| ParseError::Schema {
            file: file.to_string(),
            message: e.to_string(),
        })
    }

    /// Every identifier this vulnerability is known by, its own id first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

fn scalars_as_written(node: &launchway_yaml::Node) -> serde_json::Value {
    use launchway_yaml::NodeKind;
    match &node.kind {
        NodeKind::Null => serde_json::Value::Null,
        NodeKind::Bool(b) => serde_json::Value::Bool(*b),
        NodeKind::Number(_) => serde_json::Value::String(node.raw.clone().unwrap_or_default()),
        NodeKind::String(s) => serde_json::Value::String(s.clone()),
        NodeKind::Seq(items) => {
            serde_json::Value::Array(items.iter().map(scalars_as_written).collect())
        }
        NodeKind::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_string().unwrap_or_default(), scalars_as_written(v)))
                .collect(),
        ),
    }
}
