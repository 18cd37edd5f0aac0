//! `launchway secret` and `launchway var`: a repository's or environment's
//! secrets (sealed by the server) and variables.

use crate::client::{ServerOpts, done, encode, print_json};
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    cmd: SettingCmd,
}

#[derive(Args)]
pub struct VarArgs {
    #[command(subcommand)]
    cmd: SettingCmd,
}

#[derive(Subcommand)]
enum SettingCmd {
    /// Create or replace one. A secret's value is read from standard input
    /// (never from the command line, where `ps` and shell history see it).
    Set {
        repo: String,
        name: String,
        /// A variable's value (secrets: standard input).
        value: Option<String>,
        /// For this environment only (default: the whole repository).
        #[arg(long = "env")]
        environment: Option<String>,
    },
    /// List them (secrets: names only).
    List {
        repo: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        repo: String,
        name: String,
        #[arg(long = "env")]
        environment: Option<String>,
    },
}

/// `secret …` and `var …`.
fn setting(cmd: &SettingCmd, server: &ServerOpts, secret: bool) -> u8 {
    let kind = if secret { "secrets" } else { "variables" };
    done((|| {
        let c = server.require(if secret {
            "launchway secret"
        } else {
            "launchway var"
        })?;
        match cmd {
            SettingCmd::Set {
                repo,
                name,
                value,
                environment,
            } => {
                let value = match (secret, value) {
                    (true, Some(_)) => {
                        return Err("a secret's value is read from standard input, not the command line (e.g. `launchway secret set repo NAME < file`)".into());
                    }
                    (true, None) => {
                        use std::io::{IsTerminal, Read};
                        if std::io::stdin().is_terminal() {
                            eprint!("value for {name} (end with Ctrl-D): ");
                        }
                        let mut v = String::new();
                        std::io::stdin()
                            .read_to_string(&mut v)
                            .map_err(|e| e.to_string())?;
                        // One trailing newline is the terminal's, not the secret's.
                        v.strip_suffix('\n').map(str::to_string).unwrap_or(v)
                    }
                    (false, Some(v)) => v.clone(),
                    (false, None) => return Err("give the variable's value".into()),
                };
                let body =
                    json!({"value": value, "environment": environment.clone().unwrap_or_default()});
                c.put(
                    &format!("/api/repos/{}/{kind}/{}", encode(repo), encode(name)),
                    &body,
                )?;
                println!(
                    "set {name}{}",
                    environment
                        .as_ref()
                        .map(|e| format!(" for environment '{e}'"))
                        .unwrap_or_default()
                );
                Ok(())
            }
            SettingCmd::List { repo, json } => {
                let v = c.get(&format!("/api/repos/{}/{kind}", encode(repo)))?;
                if *json {
                    print_json(&v);
                    return Ok(());
                }
                for s in v.as_array().into_iter().flatten() {
                    let env = s["environment"].as_str().unwrap_or("");
                    println!(
                        "{:<14} {:<32} {}",
                        if env.is_empty() { "(repository)" } else { env },
                        s["name"].as_str().unwrap_or(""),
                        s["value"].as_str().unwrap_or("")
                    );
                }
                Ok(())
            }
            SettingCmd::Delete {
                repo,
                name,
                environment,
            } => {
                let mut path = format!("/api/repos/{}/{kind}/{}", encode(repo), encode(name));
                if let Some(e) = environment {
                    path.push_str(&format!("?environment={}", encode(e)));
                }
                c.delete(&path)?;
                println!("deleted {name}");
                Ok(())
            }
        }
    })())
}

pub fn secret(args: &SecretArgs, server: &ServerOpts) -> u8 {
    setting(&args.cmd, server, true)
}

pub fn var(args: &VarArgs, server: &ServerOpts) -> u8 {
    setting(&args.cmd, server, false)
}
