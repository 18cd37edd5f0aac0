//! `launchway admin`: users and API tokens — over a server's API with
//! `--server` (or LAUNCHWAY_SERVER) and an admin's token, or straight on
//! the server's database for whoever runs the server and holds its files
//! (`--data-dir`/`--database`). One or the other: naming both is refused.

use crate::client::{Client, ServerOpts};
use crate::cmd_serve::{DbOptions, block_on};
use launchway_server::audit::Event;
use launchway_server::auth::Role;
use serde_json::{Value, json};

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
    /// Groups of users, nameable as reviewers in `required_reviewers`.
    #[command(subcommand)]
    Group(GroupCommand),
    /// A user's role in one repository, in place of their global role.
    #[command(subcommand)]
    RepoRole(RepoRoleCommand),
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
    /// List users, their roles and whether they are disabled.
    List,
    /// Change a user's role.
    SetRole { name: String, role: Role },
    /// Stop a user's tokens from working (until enabled again).
    Disable { name: String },
    /// Let a disabled user's tokens work again.
    Enable { name: String },
    /// Remove a user and their tokens.
    Delete { name: String },
    /// A one-time link (valid 7 days) with which the user makes a personal
    /// token in the web UI and signs in.
    Invite { name: String },
    /// The emails and logins a push names a user by (its run's actor).
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(clap::Subcommand)]
enum IdentityCommand {
    /// Say that a push naming this email or login is this user's.
    Add(IdentityArgs),
    /// Remove one.
    Remove(IdentityArgs),
    /// List a user's identities.
    List { user: String },
}

#[derive(clap::Args)]
struct IdentityArgs {
    user: String,
    /// A git email.
    #[arg(long, conflicts_with = "login", required_unless_present = "login")]
    email: Option<String>,
    /// A forge or machine login (`pusher.name`, `sender.login`).
    #[arg(long)]
    login: Option<String>,
}

impl IdentityArgs {
    fn kind_value(
        &self,
    ) -> Result<(launchway_server::store::accounts::IdentityKind, &str), String> {
        use launchway_server::store::accounts::IdentityKind;
        match (&self.email, &self.login) {
            (Some(e), None) => Ok((IdentityKind::Email, e)),
            (None, Some(l)) => Ok((IdentityKind::Login, l)),
            _ => Err("give one of --email or --login".into()),
        }
    }
}

#[derive(clap::Subcommand)]
enum RepoRoleCommand {
    /// Give a user a role in a repository (viewer, developer, deployer).
    Set {
        repo: String,
        user: String,
        role: Role,
    },
    /// Back to the user's global role there.
    Remove { repo: String, user: String },
    /// Who has a role of their own in a repository.
    List { repo: String },
}

#[derive(clap::Subcommand)]
enum GroupCommand {
    /// Add a user to a group (created with its first member).
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
    /// Groups and their members.
    List,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Issue a token for a user; it is printed once and stored only as a hash.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days until it stops working (default: never).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3650))]
        expires_days: Option<u64>,
    },
    /// List tokens (never their values): id, user, label, created, last
    /// used, expires.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

/// Where an admin command acts: refused (exit 2) when both a server and a
/// database are named.
pub(crate) fn over_api(
    db: &DbOptions,
    server: &ServerOpts,
) -> Result<Option<Client>, (u8, String)> {
    let client = server.client().map_err(|e| (1, e))?;
    if client.is_some() && db.named() {
        return Err((
            2,
            "choose one: --server (over the API, with an admin's token) or --data-dir/--database/--master-key-file (this machine's database); unset LAUNCHWAY_SERVER or LAUNCHWAY_DATABASE to pick".into(),
        ));
    }
    Ok(client)
}

fn ms(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    launchway_runner::store::rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(t).unwrap_or(0)),
    )
}

fn print_tokens(list: &[Value]) {
    println!(
        "{:>5}  {:<16} {:<16} {:<22} {:<22} {:<22} revoked",
        "id", "user", "label", "created", "last used", "expires"
    );
    for t in list {
        println!(
            "{:>5}  {:<16} {:<16} {:<22} {:<22} {:<22} {}",
            t["id"],
            t["user"].as_str().unwrap_or(""),
            t["label"].as_str().unwrap_or(""),
            ms(t["created_ms"].as_i64().unwrap_or(0)),
            ms(t["last_used_ms"].as_i64().unwrap_or(0)),
            ms(t["expires_ms"].as_i64().unwrap_or(0)),
            t["revoked"].as_bool().unwrap_or(false)
        );
    }
}

/// The command through a server's API.
fn remote(c: &Client, cmd: &AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::User(u) => match u {
            UserCommand::Add { name, role } => {
                c.post("/api/users", &json!({"name": name, "role": role}))?;
                println!("added user '{name}' ({role})");
            }
            UserCommand::List => {
                let list = c.get("/api/accounts")?;
                for a in list.as_array().cloned().unwrap_or_default() {
                    println!(
                        "{:<24} {:<10} {}",
                        a["name"].as_str().unwrap_or(""),
                        a["role"].as_str().unwrap_or(""),
                        if a["disabled"] == true {
                            "disabled"
                        } else {
                            ""
                        }
                    );
                }
            }
            UserCommand::SetRole { name, role } => {
                c.patch(&format!("/api/users/{name}"), &json!({"role": role}))?;
                println!("'{name}' is now {role}");
            }
            UserCommand::Disable { name } | UserCommand::Enable { name } => {
                let off = matches!(u, UserCommand::Disable { .. });
                c.patch(&format!("/api/users/{name}"), &json!({"disabled": off}))?;
                println!("'{name}' is {}", if off { "disabled" } else { "enabled" });
            }
            UserCommand::Delete { name } => {
                c.delete(&format!("/api/users/{name}"))?;
                println!("removed user '{name}' and their tokens");
            }
            UserCommand::Invite { name } => {
                let v = c.post(&format!("/api/users/{name}/invites"), &json!({}))?;
                println!(
                    "{}{}\n(one use, valid 7 days: give it to {name} privately)",
                    c.base(),
                    v["path"].as_str().unwrap_or("")
                );
            }
            UserCommand::Identity(i) => match i {
                IdentityCommand::Add(a) | IdentityCommand::Remove(a) => {
                    let (kind, value) = a.kind_value()?;
                    let path = format!(
                        "/api/users/{}/identities/{}/{}",
                        a.user,
                        kind.as_str(),
                        crate::client::encode(value)
                    );
                    if matches!(i, IdentityCommand::Add(_)) {
                        c.put(&path, &json!({}))?;
                        println!(
                            "a push naming {} '{value}' is now '{}'s",
                            kind.as_str(),
                            a.user
                        );
                    } else {
                        c.delete(&path)?;
                        println!("removed {} '{value}' from '{}'", kind.as_str(), a.user);
                    }
                }
                IdentityCommand::List { user } => {
                    for i in c
                        .get(&format!("/api/users/{user}/identities"))?
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                    {
                        println!(
                            "{:<6} {}",
                            i["kind"].as_str().unwrap_or(""),
                            i["value"].as_str().unwrap_or("")
                        );
                    }
                }
            },
        },
        AdminCommand::RepoRole(r) => match r {
            RepoRoleCommand::Set { repo, user, role } => {
                c.put(
                    &format!("/api/repos/{repo}/roles/{user}"),
                    &json!({"role": role}),
                )?;
                println!("'{user}' is {role} in '{repo}'");
            }
            RepoRoleCommand::Remove { repo, user } => {
                c.delete(&format!("/api/repos/{repo}/roles/{user}"))?;
                println!("'{user}' has their global role in '{repo}' again");
            }
            RepoRoleCommand::List { repo } => {
                for r in c
                    .get(&format!("/api/repos/{repo}/roles"))?
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    println!(
                        "{:<24} {}",
                        r["user"].as_str().unwrap_or(""),
                        r["role"].as_str().unwrap_or("")
                    );
                }
            }
        },
        AdminCommand::Group(g) => match g {
            GroupCommand::AddMember { group, user } => {
                c.put(&format!("/api/groups/{group}/members/{user}"), &json!({}))?;
                println!("'{user}' is in '{group}'");
            }
            GroupCommand::RemoveMember { group, user } => {
                c.delete(&format!("/api/groups/{group}/members/{user}"))?;
                println!("'{user}' is no longer in '{group}'");
            }
            GroupCommand::List => {
                let v = c.get("/api/groups")?;
                for (g, members) in v.as_object().cloned().unwrap_or_default() {
                    let names: Vec<&str> = members
                        .as_array()
                        .map(|m| m.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    println!("{g:<24} {}", names.join(", "));
                }
            }
        },
        AdminCommand::Token(t) => match t {
            TokenCommand::Create {
                user,
                label,
                expires_days,
            } => {
                let v = c.post(
                    "/api/tokens",
                    &json!({"user": user, "label": label, "expires_in_days": expires_days}),
                )?;
                eprintln!("token {} for '{user}' (shown only now):", v["id"]);
                println!("{}", v["token"].as_str().unwrap_or(""));
            }
            TokenCommand::List { user } => {
                let path = match user {
                    Some(u) => format!("/api/tokens?user={}", crate::client::encode(u)),
                    None => "/api/tokens".into(),
                };
                let list = c.get(&path)?;
                print_tokens(list.as_array().map_or(&[][..], |v| v.as_slice()));
            }
            TokenCommand::Revoke { id } => {
                c.post(&format!("/api/tokens/{id}/revoke"), &json!({}))?;
                println!("revoked token {id}");
            }
        },
        AdminCommand::Prune { .. } => {
            return Err("prune works on the server's own files: run it on the server's machine (--data-dir), or let `serve --retention-days` do it".into());
        }
    }
    Ok(())
}

pub fn main(args: &AdminArgs, server: &ServerOpts, store: &launchway_runner::store::Store) -> u8 {
    match over_api(&args.db, server) {
        Err((code, e)) => {
            eprintln!("error: {e}");
            return code;
        }
        Ok(Some(c)) => {
            return match remote(&c, &args.command) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    if matches!(args.command, AdminCommand::Prune { .. }) {
                        2
                    } else {
                        1
                    }
                }
            };
        }
        Ok(None) => {}
    }
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
                for u in db.accounts().await.map_err(|e| e.to_string())? {
                    println!(
                        "{:<24} {:<10} {}",
                        u.name,
                        u.role,
                        if u.disabled { "disabled" } else { "" }
                    );
                }
                return Ok(());
            }
            AdminCommand::User(UserCommand::SetRole { name, role }) => {
                let r = db.set_role(name, *role).await.map(|()| {
                    println!("'{name}' is now {role}");
                });
                ("user.change", format!("user/{name}"), r)
            }
            AdminCommand::User(
                u @ (UserCommand::Disable { name } | UserCommand::Enable { name }),
            ) => {
                let off = matches!(u, UserCommand::Disable { .. });
                let r = db.set_user_disabled(name, off).await.map(|()| {
                    println!("'{name}' is {}", if off { "disabled" } else { "enabled" });
                });
                ("user.change", format!("user/{name}"), r)
            }
            AdminCommand::User(UserCommand::Invite { name }) => {
                let expires = launchway_server::now_ms() + 7 * 24 * 3600 * 1000;
                let r = db.create_invite(name, &actor, expires).await.map(|code| {
                    println!(
                        "<the server's address>/invite/{code}\n(one use, valid 7 days: give it to {name} privately)"
                    );
                });
                ("user.invite", format!("user/{name}"), r)
            }
            AdminCommand::User(UserCommand::Delete { name }) => {
                let r = db.delete_user(name).await.map(|()| {
                    println!("removed user '{name}' and their tokens");
                });
                ("user.delete", format!("user/{name}"), r)
            }
            AdminCommand::User(UserCommand::Identity(i)) => match i {
                IdentityCommand::Add(a) | IdentityCommand::Remove(a) => {
                    let (kind, value) = a.kind_value()?;
                    let adding = matches!(i, IdentityCommand::Add(_));
                    let r = if adding {
                        db.add_identity(&a.user, kind, value).await
                    } else {
                        db.remove_identity(&a.user, kind, value).await
                    }
                    .map(|()| {
                        println!(
                            "{} {} '{value}' for '{}'",
                            if adding { "added" } else { "removed" },
                            kind.as_str(),
                            a.user
                        )
                    });
                    (
                        if adding {
                            "identity.add"
                        } else {
                            "identity.remove"
                        },
                        format!("user/{}", a.user),
                        r,
                    )
                }
                IdentityCommand::List { user } => {
                    for (k, v) in db.identities(user).await.map_err(|e| e.to_string())? {
                        println!("{k:<6} {v}");
                    }
                    return Ok(());
                }
            },
            AdminCommand::RepoRole(RepoRoleCommand::Set { repo, user, role }) => {
                let r = db
                    .set_repo_role(repo, user, *role)
                    .await
                    .map(|()| println!("'{user}' is {role} in '{repo}'"));
                ("repo.role", format!("repo/{repo}/role/{user}"), r)
            }
            AdminCommand::RepoRole(RepoRoleCommand::Remove { repo, user }) => {
                let r = db
                    .remove_repo_role(repo, user)
                    .await
                    .map(|()| println!("'{user}' has their global role in '{repo}' again"));
                ("repo.role", format!("repo/{repo}/role/{user}"), r)
            }
            AdminCommand::RepoRole(RepoRoleCommand::List { repo }) => {
                for (u, role) in db.repo_roles(repo).await.map_err(|e| e.to_string())? {
                    println!("{u:<24} {role}");
                }
                return Ok(());
            }
            AdminCommand::Group(GroupCommand::AddMember { group, user }) => {
                let r = db
                    .add_group_member(group, user)
                    .await
                    .map(|()| println!("'{user}' is in '{group}'"));
                ("group.add", format!("group/{group}/{user}"), r)
            }
            AdminCommand::Group(GroupCommand::RemoveMember { group, user }) => {
                let r = db
                    .remove_group_member(group, user)
                    .await
                    .map(|()| println!("'{user}' is no longer in '{group}'"));
                ("group.remove", format!("group/{group}/{user}"), r)
            }
            AdminCommand::Group(GroupCommand::List) => {
                for (g, members) in db.groups().await.map_err(|e| e.to_string())? {
                    println!("{g:<24} {}", members.join(", "));
                }
                return Ok(());
            }
            AdminCommand::Token(TokenCommand::List { user }) => {
                let list = db
                    .tokens(user.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
                let list: Vec<Value> = list.iter().map(|t| json!(t)).collect();
                print_tokens(&list);
                return Ok(());
            }
            AdminCommand::Token(TokenCommand::Create {
                user,
                label,
                expires_days,
            }) => {
                let until = expires_days.map_or(0, |d| {
                    launchway_server::now_ms() + i64::try_from(d * 86_400_000).unwrap_or(i64::MAX)
                });
                let r = db
                    .create_token_until(user, label, until)
                    .await
                    .map(|(id, token)| {
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
