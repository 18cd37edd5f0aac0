//! `launchway rerun`: runs a server's run again, whole or its failed jobs.

use crate::client::{ServerOpts, done};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct RerunArgs {
    /// Run number on the server.
    run: i64,
    /// Only the jobs that did not succeed (and what needs them); the
    /// others' results and outputs are reused.
    #[arg(long)]
    failed: bool,
}

pub fn rerun(args: &RerunArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway rerun")?;
        let q = if args.failed { "?failed=true" } else { "" };
        let run = c.post(&format!("/api/runs/{}/rerun{q}", args.run), &json!({}))?;
        println!("queued run {} (a re-run of {})", run["id"], args.run);
        Ok(())
    })())
}
