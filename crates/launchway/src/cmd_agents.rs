//! `launchway agents`: a server's agents — list them, issue a registration
//! token, disable or enable one.

use crate::client::ServerOpts;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args)]
pub struct AgentsArgs {
    #[command(subcommand)]
    cmd: Option<AgentsCmd>,
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// Agents with their labels, status (idle, busy, offline, disabled),
    /// version and last contact.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Issue a registration token for new agents (admin; shown once).
    Token {
        /// Minutes it stays valid.
        #[arg(long, default_value_t = 60)]
        expires_minutes: i64,
        /// A note on what it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Stop an agent from taking jobs (its credential no longer works).
    Disable { id: i64 },
    /// Let a disabled agent take jobs again.
    Enable { id: i64 },
}

pub fn main(args: &AgentsArgs, server: &ServerOpts) -> u8 {
    let r = (|| -> Result<(), String> {
        let c = server.require("launchway agents")?;
        match args
            .cmd
            .as_ref()
            .unwrap_or(&AgentsCmd::List { json: false })
        {
            AgentsCmd::List { json } => {
                let list = c.get("/api/agents")?;
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).unwrap_or_default()
                    );
                    return Ok(());
                }
                let now = launchway_server::now_ms();
                println!(
                    "{:<5} {:<20} {:<9} {:<28} {:<9} LAST CONTACT",
                    "ID", "NAME", "STATUS", "LABELS", "VERSION"
                );
                for a in list.as_array().into_iter().flatten() {
                    let ago = (now - a["last_contact_ms"].as_i64().unwrap_or(now)).max(0) / 1000;
                    println!(
                        "{:<5} {:<20} {:<9} {:<28} {:<9} {ago}s ago",
                        a["id"].as_i64().unwrap_or(0),
                        a["name"].as_str().unwrap_or(""),
                        a["status"].as_str().unwrap_or(""),
                        a["labels"]
                            .as_array()
                            .map(|l| l
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(","))
                            .unwrap_or_default(),
                        a["version"].as_str().unwrap_or(""),
                    );
                }
                Ok(())
            }
            AgentsCmd::Token {
                expires_minutes,
                label,
            } => {
                let v = c.post(
                    "/api/agent-registrations",
                    &json!({ "expires_minutes": expires_minutes, "label": label }),
                )?;
                eprintln!("registration token (shown only now; valid {expires_minutes} min):");
                println!("{}", v["token"].as_str().unwrap_or(""));
                Ok(())
            }
            AgentsCmd::Disable { id } => c
                .post(&format!("/api/agents/{id}/disable"), &json!({}))
                .map(|_| {
                    println!("agent {id} disabled");
                }),
            AgentsCmd::Enable { id } => c
                .post(&format!("/api/agents/{id}/enable"), &json!({}))
                .map(|_| {
                    println!("agent {id} enabled");
                }),
        }
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
