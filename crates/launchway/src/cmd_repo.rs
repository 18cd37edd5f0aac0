//! `launchway repo`: the repositories a server runs workflows for.

use crate::client::{ServerOpts, done, print_json};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::Path;

#[derive(Args)]
pub struct RepoArgs {
    #[command(subcommand)]
    cmd: RepoCmd,
}

#[derive(Subcommand)]
enum RepoCmd {
    /// Register a git repository on the server's machine.
    Add {
        name: String,
        /// A path on the server's machine (made absolute here), or a URL
        /// the server clones and polls.
        location: String,
    },
    /// List registered repositories.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a repository with its runs, settings and changes (admins).
    Delete { name: String },
    /// A new webhook secret for a repository, shown once (admins).
    RotateWebhookSecret { name: String },
}

pub fn repo(args: &RepoArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway repo")?;
        match &args.cmd {
            RepoCmd::Add { name, location } => {
                let location = if launchway_server::triggers::is_url(location) {
                    location.clone()
                } else {
                    Path::new(location)
                        .canonicalize()
                        .map_err(|e| format!("{location}: {e}"))?
                        .to_string_lossy()
                        .to_string()
                };
                let v = c.post("/api/repos", &json!({"name": name, "location": location}))?;
                println!("registered '{name}' ({location})");
                println!(
                    "webhook secret (shown only now; give it to `launchway hook install --secret-file` or your forge):"
                );
                println!("  {}", v["webhook_secret"].as_str().unwrap_or(""));
                Ok(())
            }
            RepoCmd::Delete { name } => {
                c.delete(&format!("/api/repos/{name}"))?;
                println!("removed repository '{name}' with its runs, settings and changes");
                Ok(())
            }
            RepoCmd::RotateWebhookSecret { name } => {
                let v = c.post(&format!("/api/repos/{name}/webhook-secret"), &json!({}))?;
                eprintln!(
                    "new webhook secret for '{name}' (shown only now; the old one no longer verifies):"
                );
                println!("  {}", v["webhook_secret"].as_str().unwrap_or(""));
                Ok(())
            }
            RepoCmd::List { json } => {
                let v = c.get("/api/repos")?;
                if *json {
                    print_json(&v);
                } else {
                    for r in v.as_array().into_iter().flatten() {
                        println!(
                            "{:<24} {}",
                            r["name"].as_str().unwrap_or(""),
                            r["location"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(())
            }
        }
    })())
}
