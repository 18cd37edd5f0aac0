//! `launchway audit`: the server's audit log — listed, and its hash chain
//! verified — over the API or straight on the server's database.

use crate::client::ServerOpts;
use crate::cmd_admin::over_api;
use crate::cmd_serve::{DbOptions, block_on};

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    db: DbOptions,
    /// Check the hash chain; exit 1 at the first edited, deleted or
    /// reordered entry.
    #[arg(long)]
    verify: bool,
    /// Show only the newest N entries.
    #[arg(long)]
    last: Option<usize>,
}

pub fn audit(args: &AuditArgs, server: &ServerOpts, store: &launchway_runner::store::Store) -> u8 {
    match over_api(&args.db, server) {
        Err((code, e)) => {
            eprintln!("error: {e}");
            return code;
        }
        Ok(Some(c)) => {
            // The server checks with its key and checkpoint; this prints
            // what it found.
            let r = c.get("/api/audit").and_then(|v| {
                let entries = v["entries"].as_array().cloned().unwrap_or_default();
                if args.verify {
                    return if v["verify"]["ok"] == true {
                        println!(
                            "audit log intact (checked by the server): {} entries{}",
                            v["verify"]["entries"],
                            entries.last().map_or_else(String::new, |e| format!(
                                "; head: entry {}, hash {}",
                                e["seq"],
                                e["hash"].as_str().unwrap_or("")
                            ))
                        );
                        Ok(())
                    } else {
                        Err(format!(
                            "audit log tampered: {}",
                            v["verify"]["problem"].as_str().unwrap_or("?")
                        ))
                    };
                }
                let skip = args.last.map_or(0, |n| entries.len().saturating_sub(n));
                for e in &entries[skip..] {
                    println!(
                        "{:>6}  {}  {:<16} {:<16} {:<24} {:<16} {}",
                        e["seq"],
                        e["at_ms"],
                        e["actor"].as_str().unwrap_or(""),
                        e["action"].as_str().unwrap_or(""),
                        e["target"].as_str().unwrap_or(""),
                        e["source"].as_str().unwrap_or(""),
                        e["outcome"].as_str().unwrap_or("")
                    );
                }
                Ok(())
            });
            return match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            };
        }
        Ok(None) => {}
    }
    block_on(async {
        let db = args.db.open(store).await?;
        let entries = db.audit_log().await.map_err(|e| e.to_string())?;
        if args.verify {
            let Some(anchor) = db.audit_anchor() else {
                // Fails closed: a chain alone can be re-hashed by anyone
                // who can write the database.
                return Err("cannot verify the audit log's signatures without the master key (--master-key-file, LAUNCHWAY_MASTER_KEY or master.key in the data dir)".into());
            };
            return match launchway_server::audit::verify_anchored(&entries, anchor) {
                Ok(n) => {
                    let head = entries.last().map_or_else(String::new, |e| {
                        format!("; head: entry {}, hash {}", e.seq, e.hash)
                    });
                    println!(
                        "audit log intact: {n} entries, chain, signatures and checkpoint verified{head}"
                    );
                    Ok(())
                }
                Err(t) => Err(format!("audit log tampered: {t}")),
            };
        }
        let skip = args.last.map_or(0, |n| entries.len().saturating_sub(n));
        for e in &entries[skip..] {
            println!(
                "{:>6}  {}  {:<16} {:<16} {:<24} {:<16} {}",
                e.seq,
                e.at_ms,
                e.event.actor,
                e.event.action,
                e.event.target,
                e.event.source,
                e.event.outcome
            );
        }
        Ok(())
    })
}
