//! Protection rules for deployment environments, read from the repository's
//! environment configs (`configs/environments/<name>.yaml`, key `protection`).
//! An environment is found by its file stem or by its `environment:` name.

use crate::source::Source;
use launchway_workflow::glob::PatternList;
use launchway_workflow::yaml::{self, NodeKind};

pub const CONFIG_DIR: &str = "configs/environments";

#[derive(Debug, Clone, Default)]
pub struct Protection {
    pub required_reviewers: Vec<String>,
    pub prevent_self_review: bool,
    pub wait_timer_minutes: u64,
    /// Branch patterns allowed to deploy; empty means any.
    pub branches: Vec<String>,
}

impl Protection {
    pub fn needs_approval(&self) -> bool {
        !self.required_reviewers.is_empty()
    }

    /// Whether a ref may deploy here.
    pub fn allows_ref(&self, git_ref: &str) -> Result<bool, String> {
        if self.branches.is_empty() {
            return Ok(true);
        }
        let list = PatternList::new(self.branches.iter().map(String::as_str))?;
        let name = git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(git_ref);
        Ok(list.matches(name))
    }
}

/// Finds the protection rules for an environment; `Ok(None)` when no config
/// names it (an unprotected environment, as on GitHub).
pub fn protection(source: &Source, name: &str) -> Result<Option<Protection>, String> {
    for file in source.list_dir(CONFIG_DIR) {
        if !(file.ends_with(".yaml") || file.ends_with(".yml")) {
            continue;
        }
        let Some(text) = source.read_file(&file) else {
            continue;
        };
        let stem = file
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".yaml")
            .trim_end_matches(".yml");
        let root = yaml::parse(&text)
            .map_err(|e| format!("{file}:{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
        let display = root.get("environment").and_then(|n| n.as_str());
        if !(stem.eq_ignore_ascii_case(name)
            || display.is_some_and(|d| d.eq_ignore_ascii_case(name)))
        {
            continue;
        }
        let mut p = Protection::default();
        if let Some(prot) = root.get("protection") {
            if let Some(r) = prot.get("required_reviewers").and_then(|n| n.as_seq()) {
                p.required_reviewers = r.iter().filter_map(|n| n.scalar_string()).collect();
            }
            if let Some(n) = prot.get("prevent_self_review") {
                p.prevent_self_review = n.kind == NodeKind::Bool(true);
            }
            if let Some(NodeKind::Number(n)) = prot.get("wait_timer").map(|n| &n.kind) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    p.wait_timer_minutes = n.max(0.0) as u64;
                }
            }
            if let Some(b) = prot.get("branches").and_then(|n| n.as_seq()) {
                p.branches = b.iter().filter_map(|n| n.scalar_string()).collect();
            }
        }
        return Ok(Some(p));
    }
    Ok(None)
}
