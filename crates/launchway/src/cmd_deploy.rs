//! `launchway deploy`, `rollback` and `promote`: an environment change as a
//! git commit — made here, or asked of a server (where a review may gate it).

use clap::Args;
use launchway_deploy::repo;
use std::path::PathBuf;

/// Where the repository and its environments are, and who commits.
#[derive(Args)]
pub struct GitOpsArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', default_value = ".")]
    root: PathBuf,
    /// Where the environment files are, relative to the repository.
    #[arg(long, default_value = repo::DEFAULT_DIR)]
    dir: PathBuf,
    /// The commit's author as "Name <email>" (default: git's user).
    #[arg(long)]
    author: Option<String>,
    /// Commit to this branch instead of the checked-out one (created from
    /// HEAD when missing); the work tree is left alone.
    #[arg(long)]
    branch: Option<String>,
    /// Ask the server (--server) to make the change in this registered
    /// repository, under the environment's approval rules.
    #[arg(long)]
    repo: Option<String>,
    /// Change this machine's repository (-C) even though a server is named
    /// (--server or LAUNCHWAY_SERVER).
    #[arg(long, conflicts_with = "repo")]
    local: bool,
    /// Change this protected environment here anyway (repeatable): a
    /// server enforces its reviewers; locally you say you are one.
    #[arg(long, value_name = "ENV", conflicts_with = "repo")]
    approve: Vec<String>,
}

impl GitOpsArgs {
    /// A local change to a protected environment needs `--approve ENV`:
    /// the file says who must review it, and here nobody else asks.
    fn check_protection(&self, env: &str) -> Result<(), String> {
        if self.approve.iter().any(|a| a.eq_ignore_ascii_case(env)) {
            return Ok(());
        }
        let tree = launchway_deploy::tree::Tree::Rev {
            dir: self.root.clone(),
            rev: self
                .branch
                .as_ref()
                .map_or_else(|| "HEAD".to_string(), |b| format!("refs/heads/{b}")),
        };
        let Ok(loaded) = launchway_deploy::tree::load_environment(&tree, &self.dir, env) else {
            // Unknown or broken: the change itself says why.
            return Ok(());
        };
        let Some(e) = loaded.environment else {
            return Ok(());
        };
        if e.protection.needs_approval() {
            return Err(format!(
                "environment '{env}' is protected (required reviewers: {}): a server enforces them (--repo NAME); to change it here anyway, say so with --approve {env}",
                e.protection.required_reviewers.join(", ")
            ));
        }
        Ok(())
    }

    /// A local change while a server is named is refused unless asked for
    /// (`--local`): the server would otherwise be quietly ignored.
    fn refuse_ignored_server(&self, server: &crate::client::ServerOpts) -> Option<u8> {
        let named = server.server.as_deref().is_some_and(|s| !s.is_empty());
        if self.repo.is_none() && named && !self.local {
            eprintln!(
                "error: a server is named (--server or LAUNCHWAY_SERVER) but not a repository: add --repo NAME to change the server's, or --local to change this machine's (-C)"
            );
            return Some(2);
        }
        None
    }

    fn place(&self, store: &launchway_runner::store::Store) -> launchway_deploy::gitops::Place {
        let mut p = launchway_deploy::gitops::Place::new(&self.root, &self.dir);
        p.history = Some(crate::cmd_sync::data_dir(store, &self.root));
        p.branch = self.branch.clone();
        p.registry = Some(crate::deployer::registry_dir(store));
        p
    }

    /// A commit to a branch the running reconciler does not follow
    /// deploys nothing until it does: say so.
    fn warn_if_not_followed(&self, store: &launchway_runner::store::Store) {
        let data = crate::cmd_sync::data_dir(store, &self.root);
        if launchway_deploy::reconcile::running(&data).is_none() {
            return;
        }
        let head_branch = || {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&self.root)
                .args(["symbolic-ref", "--short", "-q", "HEAD"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|b| !b.is_empty())
        };
        let followed = launchway_deploy::reconcile::tracked_branch(&data).or_else(head_branch);
        let committed_to = self.branch.clone().or_else(head_branch);
        if let (Some(f), Some(c)) = (&followed, &committed_to)
            && f != c
        {
            eprintln!(
                "warning: the reconciler here follows '{f}', not '{c}': this commit deploys nothing until it does (launchway sync --stop -C {root} && launchway sync --detach --branch {c} -C {root})",
                root = self.root.display()
            );
        }
    }

    fn author(&self) -> Result<launchway_deploy::gitops::Author, String> {
        let Some(a) = &self.author else {
            return Ok(Default::default());
        };
        launchway_deploy::gitops::Author::parse(a)
            .ok_or_else(|| format!("--author '{a}': expected \"Name <email>\""))
    }
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    /// The environment (its file's name).
    env: String,
    /// What to run: a commit of this repository (pinned to its full
    /// hash) or a bundle digest.
    #[arg(long)]
    release: Option<String>,
    /// Any other key, e.g. --set replicas=3 --set resources.limits.cpu=2.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    env: String,
    /// The revision whose version of the file to restore (default: the
    /// one before the file's last change).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    at: GitOpsArgs,
    from: String,
    to: String,
}

fn committed(
    r: Result<Option<String>, String>,
    what: &str,
    at: &GitOpsArgs,
    store: &launchway_runner::store::Store,
) -> u8 {
    match r {
        Ok(Some(sha)) => {
            println!("{what}: committed {}", &sha[..sha.len().min(12)]);
            at.warn_if_not_followed(store);
            0
        }
        Ok(None) => {
            eprintln!("error: {what}: the environment already has this; nothing to commit");
            1
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// A change through the server: committed at once or waiting for a reviewer.
fn remote_change(
    server: &crate::client::ServerOpts,
    repo: &str,
    env: &str,
    kind: &str,
    body: serde_json::Value,
) -> u8 {
    let r = (|| -> Result<serde_json::Value, String> {
        let c = server.require(&format!("launchway {kind} --repo"))?;
        c.post(
            &format!("/api/repos/{repo}/environments/{env}/{kind}"),
            &body,
        )
    })();
    match r {
        Ok(v) if v["status"] == "waiting" => {
            // What the reviewer will be approving, key by key.
            for d in v["diff"].as_array().cloned().unwrap_or_default() {
                let show = |x: &serde_json::Value| {
                    x.as_str().map_or("(unset)".to_string(), str::to_string)
                };
                println!(
                    "  {}: {} → {}",
                    d["path"].as_str().unwrap_or(""),
                    show(&d["before"]),
                    show(&d["after"])
                );
            }
            println!(
                "{kind} {env}: waiting for a reviewer ({}) — change {}; `launchway approve --change {}`",
                v["required_reviewers"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                v["change"],
                v["change"]
            );
            0
        }
        Ok(v) => {
            let c = v["commit"].as_str().unwrap_or("");
            println!("{kind} {env}: committed {}", &c[..c.len().min(12)]);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

impl GitOpsArgs {
    /// One environment change to `env` (`what`, for messages): asked of
    /// the server when `--repo` names a repository there (`body`), else
    /// committed here by `local`, once `env`'s protection allows it.
    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        server: &crate::client::ServerOpts,
        store: &launchway_runner::store::Store,
        env: &str,
        kind: &str,
        what: &str,
        body: serde_json::Value,
        local: impl FnOnce(
            &launchway_deploy::gitops::Place,
            &launchway_deploy::gitops::Author,
        ) -> Result<Option<String>, launchway_deploy::gitops::ChangeError>,
    ) -> u8 {
        if let Some(code) = self.refuse_ignored_server(server) {
            return code;
        }
        if let Some(repo) = &self.repo {
            return remote_change(server, repo, env, kind, body);
        }
        if let Err(e) = self.check_protection(env) {
            eprintln!("error: {e}");
            return 1;
        }
        let r = self
            .author()
            .and_then(|a| local(&self.place(store), &a).map_err(|e| e.to_string()));
        committed(r, what, self, store)
    }
}

pub fn deploy(
    args: &DeployArgs,
    server: &crate::client::ServerOpts,
    store: &launchway_runner::store::Store,
) -> u8 {
    let mut sets = Vec::new();
    for s in &args.sets {
        let Some((k, v)) = s.split_once('=') else {
            eprintln!("error: --set {s}: expected KEY=VALUE");
            return 1;
        };
        sets.push((k.trim().to_string(), v.to_string()));
    }
    let set: serde_json::Map<String, serde_json::Value> = sets
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    args.at.change(
        server,
        store,
        &args.env,
        "deploy",
        &format!("deploy {}", args.env),
        serde_json::json!({"release": args.release, "set": set}),
        |place, author| {
            launchway_deploy::gitops::deploy(
                place,
                &args.env,
                args.release.as_deref(),
                &sets,
                author,
            )
        },
    )
}

pub fn rollback(
    args: &RollbackArgs,
    server: &crate::client::ServerOpts,
    store: &launchway_runner::store::Store,
) -> u8 {
    args.at.change(
        server,
        store,
        &args.env,
        "rollback",
        &format!("rollback {}", args.env),
        serde_json::json!({"to": args.to}),
        |place, author| {
            launchway_deploy::gitops::rollback(place, &args.env, args.to.as_deref(), author)
        },
    )
}

pub fn promote(
    args: &PromoteArgs,
    server: &crate::client::ServerOpts,
    store: &launchway_runner::store::Store,
) -> u8 {
    args.at.change(
        server,
        store,
        &args.to,
        "promote",
        &format!("promote {} to {}", args.from, args.to),
        serde_json::json!({"from": args.from}),
        |place, author| launchway_deploy::gitops::promote(place, &args.from, &args.to, author),
    )
}
