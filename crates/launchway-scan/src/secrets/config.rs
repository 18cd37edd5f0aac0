//! gitleaks TOML configs, loaded unchanged: `[[rules]]` with `regex`,
//! `keywords`, `secretGroup`, `entropy`, `path`, `tags` and allowlists
//! (`[rules.allowlist]` and `[[rules.allowlists]]`), global `[allowlist]` /
//! `[[allowlists]]`, and `[extend]` with `useDefault`, `path` and
//! `disabledRules`.

use super::rules::{Allowlist, Rule, Target, defaults};
use regex::bytes::Regex;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}:{}", .column.unwrap_or(1))).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rules: Vec<Rule>,
    pub allowlists: Vec<Allowlist>,
}

impl Config {
    /// The built-in rules, with a global allowlist for installed
    /// dependencies, lockfiles and generated files (as gitleaks has one).
    pub fn defaults() -> Config {
        let paths = [
            r"(?:^|/)node_modules/",
            r"(?:^|/)(?:site|dist)-packages/",
            r"(?:^|/)vendor/",
            r"(?:^|/)\.venv/",
            r"(?:^|/)__pycache__/",
            r"(?:^|/)(?:Cargo\.lock|package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|uv\.lock|Pipfile\.lock|go\.sum)$",
            r"\.(?:min\.js|js\.map|css\.map)$",
        ];
        let allow = Allowlist {
            description: "installed dependencies, lockfiles and generated files".into(),
            paths: paths.iter().filter_map(|p| Regex::new(p).ok()).collect(),
            ..Allowlist::default()
        };
        Config {
            rules: defaults(),
            allowlists: vec![allow],
        }
    }

    /// Loads a config file (following `[extend] path`, at most 4 deep).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load_depth(path, 0)
    }

    /// Parses config text; `base` resolves `[extend] path`.
    pub fn parse(file: &str, text: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        parse_depth(file, text, base, 0)
    }
}

fn load_depth(path: &Path, depth: usize) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    parse_depth(&file, &text, path.parent(), depth)
}

fn compile(file: &str, what: &str, re: &str) -> Result<Regex, ConfigError> {
    Regex::new(re).map_err(|e| ConfigError {
        file: file.to_string(),
        line: None,
        column: None,
        message: format!(
            "{what}: invalid regex: {}",
            e.to_string().lines().last().unwrap_or("")
        ),
    })
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn allowlist(file: &str, what: &str, t: &toml::Value) -> Result<Allowlist, ConfigError> {
    let target = match t.get("regexTarget").and_then(|v| v.as_str()) {
        None | Some("secret") => Target::Secret,
        Some("match") => Target::Match,
        Some("line") => Target::Line,
        Some(other) => {
            return Err(ConfigError {
                file: file.into(),
                line: None,
                column: None,
                message: format!(
                    "{what}: regexTarget must be secret, match or line, not '{other}'"
                ),
            });
        }
    };
    let and = match t.get("condition").and_then(|v| v.as_str()) {
        None | Some("OR") | Some("or") => false,
        Some("AND") | Some("and") => true,
        Some(other) => {
            return Err(ConfigError {
                file: file.into(),
                line: None,
                column: None,
                message: format!("{what}: condition must be AND or OR, not '{other}'"),
            });
        }
    };
    Ok(Allowlist {
        description: t
            .get("description")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        and,
        target,
        regexes: strings(t.get("regexes"))
            .iter()
            .map(|r| compile(file, &format!("{what}.regexes"), r))
            .collect::<Result<_, _>>()?,
        paths: strings(t.get("paths"))
            .iter()
            .map(|r| compile(file, &format!("{what}.paths"), r))
            .collect::<Result<_, _>>()?,
        stopwords: strings(t.get("stopwords")),
        commits: strings(t.get("commits")),
        identifiers: false,
    })
}

fn allowlists_of(
    file: &str,
    what: &str,
    t: &toml::Value,
    single: &str,
    many: &str,
) -> Result<Vec<Allowlist>, ConfigError> {
    let mut out = Vec::new();
    if let Some(a) = t.get(single) {
        out.push(allowlist(file, &format!("{what}.{single}"), a)?);
    }
    if let Some(list) = t.get(many).and_then(|v| v.as_array()) {
        for (i, a) in list.iter().enumerate() {
            out.push(allowlist(file, &format!("{what}.{many}[{i}]"), a)?);
        }
    }
    Ok(out)
}

fn parse_depth(
    file: &str,
    text: &str,
    base: Option<&Path>,
    depth: usize,
) -> Result<Config, ConfigError> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e.span().map_or((None, None), |s| {
            let (l, c) = crate::sbom::collect::position_of(text, s.start);
            (Some(l), Some(c))
        });
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message: format!("invalid TOML: {}", e.message()),
        }
    })?;
    let root = toml::Value::Table(doc);
    let mut cfg = Config {
        rules: Vec::new(),
        allowlists: Vec::new(),
    };
    let mut disabled: Vec<String> = Vec::new();
    if let Some(ext) = root.get("extend") {
        if ext.get("useDefault").and_then(|v| v.as_bool()) == Some(true) {
            cfg = Config::defaults();
        }
        if let Some(p) = ext.get("path").and_then(|v| v.as_str()) {
            if depth >= 4 {
                return Err(ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: "[extend] path nested more than 4 deep".into(),
                });
            }
            let path = base.map_or_else(|| Path::new(p).to_path_buf(), |b| b.join(p));
            let parent = load_depth(&path, depth + 1)?;
            merge(&mut cfg, parent);
        }
        disabled = strings(ext.get("disabledRules"));
    }
    let mut own = Config {
        rules: Vec::new(),
        allowlists: allowlists_of(file, "allowlist", &root, "allowlist", "allowlists")?,
    };
    if let Some(rules) = root.get("rules").and_then(|v| v.as_array()) {
        for (i, r) in rules.iter().enumerate() {
            let what = format!("rules[{i}]");
            let id = r
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: format!("{what}: a rule needs an 'id'"),
                })?;
            let what = format!("rules[{i}] ({id})");
            let regex = r
                .get("regex")
                .and_then(|v| v.as_str())
                .map(|re| compile(file, &what, re))
                .transpose()?;
            let path = r
                .get("path")
                .and_then(|v| v.as_str())
                .map(|re| compile(file, &format!("{what}.path"), re))
                .transpose()?;
            if regex.is_none() && path.is_none() {
                return Err(ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: format!("{what}: a rule needs a 'regex' or a 'path'"),
                });
            }
            let secret_group = r
                .get("secretGroup")
                .and_then(|v| v.as_integer())
                .unwrap_or(0);
            own.rules.push(Rule {
                window: None,
                id: id.to_string(),
                description: r
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or(id)
                    .to_string(),
                regex,
                secret_group: usize::try_from(secret_group).unwrap_or(0),
                entropy: r
                    .get("entropy")
                    .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))),
                keywords: strings(r.get("keywords"))
                    .iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect(),
                path,
                tags: strings(r.get("tags")),
                allowlists: allowlists_of(file, &what, r, "allowlist", "allowlists")?,
            });
        }
    }
    merge(&mut cfg, own);
    cfg.rules.retain(|r| !disabled.contains(&r.id));
    Ok(cfg)
}

/// Rules of `other` replace rules with the same id; allowlists add up.
fn merge(into: &mut Config, other: Config) {
    for r in other.rules {
        match into.rules.iter_mut().find(|x| x.id == r.id) {
            Some(slot) => *slot = r,
            None => into.rules.push(r),
        }
    }
    into.allowlists.extend(other.allowlists);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitleaks_config() {
        let text = r#"
title = "custom"
[extend]
useDefault = true
disabledRules = ["jwt"]

[[rules]]
id = "internal-token"
description = "Internal service token"
regex = '''itk_([a-z0-9]{32})'''
secretGroup = 1
entropy = 3.0
keywords = ["itk_"]
tags = ["internal"]
  [rules.allowlist]
  regexTarget = "line"
  regexes = ['''EXAMPLE''']

[allowlist]
paths = ['''(^|/)testdata/''']
stopwords = ["dummy"]
"#;
        let cfg = Config::parse("gl.toml", text, None).unwrap();
        assert!(
            cfg.rules.iter().any(|r| r.id == "github-pat"),
            "defaults kept"
        );
        assert!(!cfg.rules.iter().any(|r| r.id == "jwt"), "disabled");
        let r = cfg.rules.iter().find(|r| r.id == "internal-token").unwrap();
        assert_eq!(
            (r.secret_group, r.entropy, r.allowlists[0].target),
            (1, Some(3.0), Target::Line)
        );
        assert_eq!(cfg.allowlists.len(), 2, "the defaults' and the file's");
        let e = Config::parse(
            "gl.toml",
            "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("invalid regex"), "{e}");
        let e = Config::parse("gl.toml", "[[rules]\n", None).unwrap_err();
        assert_eq!(e.line, Some(1));
        // Without useDefault only the file's rules apply.
        let only = Config::parse("gl.toml", "[[rules]]\nid = \"a\"\nregex = 'x'\n", None).unwrap();
        assert_eq!(only.rules.len(), 1);
    }
}
