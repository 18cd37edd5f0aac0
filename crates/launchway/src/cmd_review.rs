//! `launchway approve` and `launchway reject`: a review of a run waiting at
//! an environment's gate, or of an environment change waiting for one.

use crate::client::{ServerOpts, done};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct ReviewArgs {
    /// Run number on the server.
    #[arg(required_unless_present = "change")]
    run: Option<i64>,
    /// The environment whose deployment is pending.
    #[arg(long = "env", required_unless_present = "change")]
    environment: Option<String>,
    /// A waiting environment change (`launchway changes`) instead of a run.
    #[arg(long, conflicts_with_all = ["run", "environment"])]
    change: Option<i64>,
    #[arg(long)]
    comment: Option<String>,
}

/// `approve` (or `reject`) a pending deployment.
pub fn review(args: &ReviewArgs, server: &ServerOpts, approve: bool) -> u8 {
    done((|| {
        let c = server.require(if approve {
            "launchway approve"
        } else {
            "launchway reject"
        })?;
        let verb = if approve { "approve" } else { "reject" };
        let mut body = json!({});
        if let Some(m) = &args.comment {
            body["comment"] = json!(m);
        }
        if let Some(id) = args.change {
            let v = c.post(&format!("/api/changes/{id}/{verb}"), &body)?;
            println!(
                "change {id}: {}{}",
                v["status"].as_str().unwrap_or(""),
                v["commit"]
                    .as_str()
                    .map_or_else(String::new, |c| format!(" as {}", &c[..c.len().min(12)]))
            );
            return Ok(());
        }
        let (Some(run), Some(env)) = (args.run, &args.environment) else {
            return Err("give a run and --env, or --change".into());
        };
        body["environment"] = json!(env);
        let v = c.post(&format!("/api/runs/{run}/{verb}"), &body)?;
        println!(
            "run {run}: deployment to '{env}' {}",
            v["decision"].as_str().unwrap_or("")
        );
        Ok(())
    })())
}
