//! `launchway dispatch`: starts a workflow on a server (`workflow_dispatch`).

use crate::client::{ServerOpts, done, encode};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct DispatchArgs {
    /// Registered repository name.
    repo: String,
    /// Workflow file, e.g. .github/workflows/ci.yml.
    workflow: String,
    /// Branch or ref (default: the repository's current branch).
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// An input as KEY=VALUE (repeatable).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
}

pub fn dispatch(args: &DispatchArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway dispatch")?;
        let mut inputs = serde_json::Map::new();
        for kv in &args.inputs {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--input {kv}: expected KEY=VALUE"))?;
            inputs.insert(k.to_string(), Value::String(v.to_string()));
        }
        let mut body = json!({"workflow": args.workflow, "inputs": inputs});
        if let Some(r) = &args.git_ref {
            body["ref"] = json!(r);
        }
        let run = c.post(
            &format!("/api/repos/{}/dispatch", encode(&args.repo)),
            &body,
        )?;
        println!(
            "queued run {} ({} on {} @ {})",
            run["id"],
            run["workflow"].as_str().unwrap_or(""),
            run["git_ref"].as_str().unwrap_or(""),
            &run["sha"].as_str().unwrap_or("")[..7.min(run["sha"].as_str().unwrap_or("").len())]
        );
        println!("follow it: launchway logs {} -f", run["id"]);
        Ok(())
    })())
}
