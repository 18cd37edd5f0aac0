//! `launchway changes`: environment changes asked for through a server
//! (deploy, rollback, promote) — waiting for review, committed, rejected or
//! failed.

use crate::client::{ServerOpts, done, encode, print_json};
use clap::Args;

#[derive(Args)]
pub struct ChangesArgs {
    /// Only changes in this state (waiting, committed, rejected, failed).
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `launchway changes`: environment changes asked for through the server.
pub fn changes(args: &ChangesArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway changes")?;
        let q = match &args.status {
            Some(s) => format!("/api/changes?status={}", encode(s)),
            None => "/api/changes".into(),
        };
        let v = c.get(&q)?;
        if args.json {
            print_json(&v);
            return Ok(());
        }
        println!(
            "{:<5} {:<12} {:<12} {:<9} {:<10} {:<12} {:<12} RESULT",
            "ID", "REPO", "ENVIRONMENT", "KIND", "STATUS", "REQUESTED", "REVIEWED"
        );
        for ch in v["changes"].as_array().into_iter().flatten() {
            let s = |k: &str| ch[k].as_str().unwrap_or("").to_string();
            println!(
                "{:<5} {:<12} {:<12} {:<9} {:<10} {:<12} {:<12} {}",
                ch["id"],
                s("repo"),
                s("environment"),
                s("kind"),
                s("status"),
                s("requested_by"),
                s("reviewed_by"),
                s("result")
            );
        }
        Ok(())
    })())
}
