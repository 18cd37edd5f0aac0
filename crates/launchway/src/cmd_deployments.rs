//! `launchway deployments`: what a server deployed to each environment.

use crate::client::{ServerOpts, done, encode, print_json};
use clap::Args;

#[derive(Args)]
pub struct DeploymentsArgs {
    #[arg(long)]
    repo: Option<String>,
    #[arg(long = "env")]
    environment: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn deployments(args: &DeploymentsArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway deployments")?;
        let mut q = format!("/api/deployments?limit={}", args.limit);
        if let Some(r) = &args.repo {
            q.push_str(&format!("&repo={}", encode(r)));
        }
        if let Some(e) = &args.environment {
            q.push_str(&format!("&environment={}", encode(e)));
        }
        let v = c.get(&q)?;
        if args.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "{:<6} {:<12} {:<14} {:<9} {:<9} {:<12} {:<12}",
            "RUN", "REPO", "ENVIRONMENT", "SHA", "RESULT", "TRIGGERED", "APPROVED"
        );
        for d in v.as_array().into_iter().flatten() {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            let sha = s("sha");
            println!(
                "{:<6} {:<12} {:<14} {:<9} {:<9} {:<12} {:<12}",
                d["run_id"].as_i64().unwrap_or(0),
                s("repo"),
                s("environment"),
                &sha[..sha.len().min(7)],
                s("result"),
                s("triggered_by"),
                if s("approved_by").is_empty() {
                    "-".to_string()
                } else {
                    s("approved_by")
                }
            );
        }
        Ok(())
    })())
}
