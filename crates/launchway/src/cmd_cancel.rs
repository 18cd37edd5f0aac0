//! `launchway cancel`: cancels a server's run (its `always()` steps run).

use crate::client::{ServerOpts, done};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct RunIdArgs {
    /// Run number on the server.
    run: i64,
}

pub fn cancel(args: &RunIdArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway cancel")?;
        c.post(&format!("/api/runs/{}/cancel", args.run), &json!({}))?;
        println!("cancelling run {}", args.run);
        Ok(())
    })())
}
