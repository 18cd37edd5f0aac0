//! `launchway hook …`: git hooks — ones that tell a server about new
//! commits, and the pre-commit check that refuses a commit adding a
//! secret or a vulnerable pin (`launchway scan --staged`).

use crate::client::ServerOpts;
use crate::client::done;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct HookArgs {
    #[command(subcommand)]
    cmd: HookCmd,
}

#[derive(Subcommand)]
enum HookCmd {
    /// Write git hooks: post-commit and post-receive hooks that notify a
    /// server of new commits (signed with the repository's webhook
    /// secret), or with --pre-commit a pre-commit hook that refuses a
    /// commit adding a secret or a vulnerable pin.
    Install {
        /// The name the repository is registered under.
        #[arg(
            long,
            required_unless_present = "pre_commit",
            conflicts_with = "pre_commit"
        )]
        repo: Option<String>,
        /// A file holding the webhook secret `repo add` printed.
        #[arg(
            long,
            required_unless_present = "pre_commit",
            conflicts_with = "pre_commit"
        )]
        secret_file: Option<PathBuf>,
        /// Install the pre-commit check (`launchway scan --staged`) instead.
        #[arg(long)]
        pre_commit: bool,
        /// With --pre-commit: scan for secrets only (no vulnerable pins).
        #[arg(long, requires = "pre_commit")]
        secrets_only: bool,
        /// The repository (default: the current directory).
        #[arg(short = 'C', default_value = ".")]
        dir: PathBuf,
    },
    /// Send a push notification (what the installed hooks run).
    Notify {
        #[arg(long)]
        repo: String,
        #[arg(long)]
        secret_file: PathBuf,
        /// The ref that moved.
        #[arg(long = "ref")]
        git_ref: String,
        #[arg(long)]
        before: String,
        #[arg(long)]
        after: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    launchway_runner::source::git(dir, args).map_err(|e| e.to_string())
}

/// A POSIX-shell single-quoted word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The repository's hooks directory (`core.hooksPath` respected), made.
fn hooks_dir(dir: &Path) -> Result<PathBuf, String> {
    let hooks = PathBuf::from(git(dir, &["rev-parse", "--git-path", "hooks"])?);
    let hooks = if hooks.is_absolute() {
        hooks
    } else {
        dir.join(hooks)
    };
    std::fs::create_dir_all(&hooks).map_err(|e| format!("{}: {e}", hooks.display()))?;
    Ok(hooks)
}

/// Writes an executable hook, unless a hook Launchway did not write is
/// there: then it says what to add to it instead.
fn write_hook(path: &Path, text: &str, line: &str) -> Result<(), String> {
    if path.exists()
        && !std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains("launchway hook install")
    {
        return Err(format!(
            "{} exists and was not written by Launchway; add this line to it instead:\n  {line}",
            path.display()
        ));
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The pre-commit hook: `launchway scan --staged`, failing the commit on
/// a finding (`git commit --no-verify` skips it, as any hook).
fn install_pre_commit(dir: &Path, secrets_only: bool) -> Result<(), String> {
    let hooks = hooks_dir(dir)?;
    if dir.join(".pre-commit-config.yaml").is_file() {
        eprintln!(
            "note: this repository uses the pre-commit framework; its hook may replace this one. \
             Add Launchway to .pre-commit-config.yaml instead:\n  - repo: local\n    hooks:\n      - id: launchway\n        name: launchway scan --staged\n        entry: launchway scan --staged --exit-code 1\n        language: system\n        pass_filenames: false"
        );
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let scan = format!(
        "{} scan --staged{} --exit-code 1",
        sh_quote(&exe.to_string_lossy()),
        if secrets_only {
            " --scanners secret"
        } else {
            ""
        }
    );
    let text = format!(
        "#!/bin/sh\n# Written by `launchway hook install --pre-commit`: refuses a commit that adds a\n# secret or a vulnerable pin (`git commit --no-verify` skips it).\nexec {scan}\n"
    );
    write_hook(&hooks.join("pre-commit"), &text, &scan)
}

pub fn hook(args: &HookArgs, server: &ServerOpts) -> u8 {
    done((|| match &args.cmd {
        HookCmd::Install {
            pre_commit: true,
            secrets_only,
            dir,
            ..
        } => install_pre_commit(dir, *secrets_only),
        HookCmd::Install {
            repo,
            secret_file,
            dir,
            ..
        } => {
            let (Some(repo), Some(secret_file)) = (repo, secret_file) else {
                return Err("hook install needs --repo and --secret-file (or --pre-commit)".into());
            };
            let server_url = server
                .server
                .clone()
                .ok_or("hook install needs --server URL (or LAUNCHWAY_SERVER)")?;
            let secret_file = secret_file
                .canonicalize()
                .map_err(|e| format!("{}: {e}", secret_file.display()))?;
            let hooks = hooks_dir(dir)?;
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let notify = format!(
                "{} --server {} hook notify --repo {} --secret-file {}",
                sh_quote(&exe.to_string_lossy()),
                sh_quote(&server_url),
                sh_quote(repo),
                sh_quote(&secret_file.to_string_lossy())
            );
            let post_commit = format!(
                "#!/bin/sh\n# Written by `launchway hook install`: tells the Launchway server about the new commit.\nref=$(git symbolic-ref -q HEAD) || exit 0\nafter=$(git rev-parse HEAD)\nbefore=$(git rev-parse -q --verify HEAD~1 || echo 0000000000000000000000000000000000000000)\n{notify} --ref \"$ref\" --before \"$before\" --after \"$after\" || echo 'launchway: the server was not notified' >&2\n"
            );
            let post_receive = format!(
                "#!/bin/sh\n# Written by `launchway hook install`: tells the Launchway server about pushed refs.\nwhile read -r before after ref; do\n  {notify} --ref \"$ref\" --before \"$before\" --after \"$after\" || echo 'launchway: the server was not notified' >&2\ndone\n"
            );
            for (name, text) in [("post-commit", post_commit), ("post-receive", post_receive)] {
                write_hook(&hooks.join(name), &text, &notify)?;
            }
            Ok(())
        }
        HookCmd::Notify {
            repo,
            secret_file,
            git_ref,
            before,
            after,
        } => {
            let base = server
                .server
                .clone()
                .ok_or("hook notify needs --server URL")?;
            let secret = std::fs::read_to_string(secret_file)
                .map_err(|e| format!("{}: {e}", secret_file.display()))?;
            let body = json!({
                "ref": git_ref,
                "before": before,
                "after": after,
                "repository": {"name": repo},
                "pusher": {"name": std::env::var("USER").unwrap_or_else(|_| "git".into())},
            })
            .to_string();
            let signature =
                launchway_server::webhook::sign(secret.trim().as_bytes(), body.as_bytes());
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut res = agent
                .post(format!("{}/api/hooks/git", base.trim_end_matches('/')))
                .header("Content-Type", "application/json")
                .header("X-GitHub-Event", "push")
                .header("X-Hub-Signature-256", signature)
                .send(body)
                .map_err(|e| format!("{base}: {e}"))?;
            let status = res.status().as_u16();
            let text = res.body_mut().read_to_string().unwrap_or_default();
            if !(200..300).contains(&status) {
                return Err(format!("the server answered {status}: {text}"));
            }
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let ids: Vec<String> = v["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            if ids.is_empty() {
                eprintln!("launchway: no workflow runs for {git_ref}");
            } else {
                eprintln!("launchway: queued run(s) {}", ids.join(", "));
            }
            Ok(())
        }
    })())
}
