//! `launchway admin`: users and API tokens, straight on the server's
//! database (for whoever runs the server and holds its files).

use crate::cmd_serve::{DbOptions, block_on};
use launchway_server::audit::Event;
use launchway_server::auth::Role;

#[derive(clap::Args)]
pub struct AdminArgs {
    #[command(flatten)]
    db: DbOptions,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Issue and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remove the files (logs, artifacts) of finished runs older than N
    /// days now; their records stay (`serve --retention-days` does it daily).
    Prune {
        #[arg(long)]
        older_than_days: u64,
    },
}

#[derive(clap::Subcommand)]
enum UserCommand {
    /// Add a user with a role: viewer, developer, deployer or admin.
    Add {
        name: String,
        #[arg(long, default_value = "viewer")]
        role: Role,
    },
    /// List users and their roles.
    List,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Issue a token for a user; it is printed once and stored only as a hash.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

pub fn main(args: &AdminArgs, store: &launchway_runner::store::Store) -> u8 {
    block_on(async {
        let db = args.db.open(store).await?;
        let actor = std::env::var("USER").unwrap_or_else(|_| "local-admin".into());
        let (action, target, result) = match &args.command {
            AdminCommand::User(UserCommand::Add { name, role }) => {
                let r = db.add_user(name, *role).await.map(|u| {
                    println!("added user '{}' ({})", u.name, u.role);
                });
                ("user.add", format!("user/{name}"), r)
            }
            AdminCommand::User(UserCommand::List) => {
                for u in db.users().await.map_err(|e| e.to_string())? {
                    println!("{:<24} {}", u.name, u.role);
                }
                return Ok(());
            }
            AdminCommand::Token(TokenCommand::Create { user, label }) => {
                let r = db.create_token(user, label).await.map(|(id, token)| {
                    eprintln!("token {id} for '{user}' (shown only now):");
                    println!("{token}");
                });
                ("token.create", format!("user/{user}"), r)
            }
            AdminCommand::Prune { older_than_days } => {
                let n = launchway_server::engine::prune(&db, *older_than_days).await;
                let r = n.map(|n| {
                    println!("removed the files of {n} run(s)");
                });
                let outcome = match &r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error: {e}"),
                };
                let event = Event {
                    actor,
                    action: "runs.prune".into(),
                    target: format!("runs/older-than-{older_than_days}-days"),
                    source: "cli".into(),
                    outcome,
                };
                db.audit(launchway_server::now_ms(), event)
                    .await
                    .map_err(|e| e.to_string())?;
                return r;
            }
            AdminCommand::Token(TokenCommand::Revoke { id }) => {
                let r = db.revoke_token(*id).await.map(|()| {
                    println!("revoked token {id}");
                });
                ("token.revoke", format!("token/{id}"), r)
            }
        };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        let event = Event {
            actor,
            action: action.into(),
            target,
            source: "cli".into(),
            outcome,
        };
        db.audit(launchway_server::now_ms(), event)
            .await
            .map_err(|e| e.to_string())?;
        result.map_err(|e| e.to_string())
    })
}

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

pub fn audit(args: &AuditArgs, store: &launchway_runner::store::Store) -> u8 {
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
