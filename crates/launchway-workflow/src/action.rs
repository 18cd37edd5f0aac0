//! `action.yml` metadata for local actions: inputs, outputs and how it runs.

use crate::diag::Diagnostic;
use crate::model::{Spanned, Step};
use crate::yaml::NodeKind;
use indexmap::IndexMap;

#[derive(Debug, Clone)]
pub struct ActionInput {
    pub default: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub enum Runs {
    Composite(Vec<Step>),
    Node {
        using: String,
        main: String,
        pre: Option<String>,
        post: Option<String>,
        pre_if: Option<String>,
        post_if: Option<String>,
    },
    Docker,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub inputs: IndexMap<String, ActionInput>,
    /// Output name → value expression (composite) or `None` (node).
    pub outputs: IndexMap<String, Option<Spanned<String>>>,
    pub runs: Runs,
}

pub(crate) fn load_action(
    loader: &mut crate::load::Loader<'_>,
    root: &crate::yaml::Node,
) -> Option<Action> {
    let map = loader.map(root, "action.yml")?;
    let entries = loader.entries(
        map,
        &[
            "name",
            "author",
            "description",
            "inputs",
            "outputs",
            "runs",
            "branding",
        ],
        "action.yml",
    );
    let mut action = Action {
        name: String::new(),
        inputs: IndexMap::new(),
        outputs: IndexMap::new(),
        runs: Runs::Docker,
    };
    let mut runs = None;
    for (key, _, v) in entries {
        match key {
            "name" => action.name = v.scalar_string().unwrap_or_default(),
            "inputs" => {
                let Some(m) = loader.map(v, "inputs") else {
                    continue;
                };
                for (name, _, iv) in loader.entries(m, &[], "inputs") {
                    let default = iv.get("default").and_then(|d| d.scalar_string());
                    let required = iv
                        .get("required")
                        .is_some_and(|r| r.kind == NodeKind::Bool(true));
                    action
                        .inputs
                        .insert(name.to_string(), ActionInput { default, required });
                }
            }
            "outputs" => {
                let Some(m) = loader.map(v, "outputs") else {
                    continue;
                };
                for (name, _, ov) in loader.entries(m, &[], "outputs") {
                    let value = ov
                        .get("value")
                        .and_then(|n| n.scalar_string().map(|s| Spanned::new(s, n.span)));
                    action.outputs.insert(name.to_string(), value);
                }
            }
            "runs" => runs = Some(v),
            _ => {}
        }
    }
    let Some(runs) = runs else {
        loader.error_at(root.span, "missing-key", "action.yml has no 'runs'");
        return None;
    };
    let using = runs
        .get("using")
        .and_then(|u| u.scalar_string())
        .unwrap_or_default();
    action.runs = match using.as_str() {
        "composite" => {
            let steps = runs
                .get("steps")
                .map(|s| loader.composite_steps(s))
                .unwrap_or_default();
            Runs::Composite(steps)
        }
        u if u.starts_with("node") => {
            let s = |k: &str| runs.get(k).and_then(|n| n.scalar_string());
            let Some(main) = s("main") else {
                loader.error_at(runs.span, "missing-key", "a node action needs 'runs.main'");
                return None;
            };
            Runs::Node {
                using: u.to_string(),
                main,
                pre: s("pre"),
                post: s("post"),
                pre_if: s("pre-if"),
                post_if: s("post-if"),
            }
        }
        "docker" => Runs::Docker,
        other => {
            loader.error_at(
                runs.span,
                "wrong-type",
                &format!("unknown 'runs.using: {other}'"),
            );
            return None;
        }
    };
    Some(action)
}

/// Loads an action's metadata; diagnostics carry positions in `src`.
pub fn load(src: &str) -> (Option<Action>, Vec<Diagnostic>) {
    crate::load::load_action_src(src)
}
