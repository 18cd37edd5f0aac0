//! The `github` context and event payload, filled from the local repository.

use crate::run::RunConfig;
use launchway_expr::Value;
use launchway_workflow::Workflow;
use std::path::Path;

pub const SERVER_URL: &str = "https://github.com";

fn s(v: &str) -> Value {
    Value::str(v)
}

/// A payload shaped like GitHub's for the events people run locally.
pub fn default_payload(cfg: &RunConfig, inputs: &Value) -> Value {
    let src = &cfg.source;
    let mut repo = Value::object();
    repo.insert("full_name", s(&src.repository));
    repo.insert("name", s(src.name()));
    let mut owner = Value::object();
    owner.insert("login", s(src.repository.split('/').next().unwrap_or("")));
    repo.insert("owner", owner);
    repo.insert("default_branch", s("main"));
    let mut p = Value::object();
    p.insert("repository", repo);
    let mut sender = Value::object();
    sender.insert("login", s(&src.actor));
    p.insert("sender", sender);
    match cfg.event.name.as_str() {
        "push" => {
            p.insert("ref", s(&cfg.event.git_ref));
            p.insert("after", s(&src.sha));
            p.insert("before", s(&"0".repeat(40)));
            let mut commit = Value::object();
            commit.insert("id", s(&src.sha));
            commit.insert("message", s(&src.commit_message));
            commit.insert("timestamp", s(&src.commit_timestamp));
            let mut author = Value::object();
            author.insert("name", s(&src.commit_author.0));
            author.insert("email", s(&src.commit_author.1));
            commit.insert("author", author);
            p.insert("head_commit", commit.clone());
            p.insert("commits", Value::Array(vec![commit]));
            let mut pusher = Value::object();
            pusher.insert("name", s(&src.actor));
            p.insert("pusher", pusher);
        }
        "pull_request" | "pull_request_target" => {
            p.insert("action", s(cfg.event.action.as_deref().unwrap_or("opened")));
            p.insert("number", Value::Number(1.0));
            let mut pr = Value::object();
            pr.insert("number", Value::Number(1.0));
            pr.insert("title", s(src.commit_message.lines().next().unwrap_or("")));
            let mut head = Value::object();
            head.insert(
                "ref",
                s(cfg
                    .event
                    .git_ref
                    .strip_prefix("refs/heads/")
                    .unwrap_or(&cfg.event.git_ref)),
            );
            head.insert("sha", s(&src.sha));
            let mut base = Value::object();
            base.insert("ref", s(cfg.event.base_ref.as_deref().unwrap_or("main")));
            pr.insert("head", head);
            pr.insert("base", base);
            p.insert("pull_request", pr);
        }
        "workflow_dispatch" => {
            p.insert("ref", s(&cfg.event.git_ref));
            p.insert("inputs", inputs.clone());
        }
        _ => {}
    }
    p
}

pub fn github_context(
    cfg: &RunConfig,
    wf: &Workflow,
    run_id: u64,
    run_dir: &Path,
    inputs: &Value,
) -> Value {
    let src = &cfg.source;
    let ev = &cfg.event;
    let payload = cfg
        .payload
        .clone()
        .unwrap_or_else(|| default_payload(cfg, inputs));
    let is_pr = ev.name.starts_with("pull_request");
    let git_ref = if is_pr {
        // The pull request's number: the payload's when one was given.
        let number = payload
            .get("number")
            .or_else(|| payload.get("pull_request").and_then(|p| p.get("number")))
            .map_or(1.0, Value::to_number);
        format!("refs/pull/{}/merge", launchway_expr::format_number(number))
    } else {
        ev.git_ref.clone()
    };
    let ref_name = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .or_else(|| git_ref.strip_prefix("refs/"))
        .unwrap_or(&git_ref)
        .to_string();
    let mut g = Value::object();
    g.insert("action", s(""));
    g.insert("action_path", s(""));
    g.insert("actor", s(&src.actor));
    g.insert("actor_id", s("0"));
    g.insert("api_url", s("https://api.github.com"));
    g.insert(
        "base_ref",
        s(if is_pr {
            ev.base_ref.as_deref().unwrap_or("main")
        } else {
            ""
        }),
    );
    g.insert("event", payload);
    g.insert("event_name", s(&ev.name));
    g.insert(
        "event_path",
        s(&run_dir.join("event.json").to_string_lossy()),
    );
    g.insert("graphql_url", s("https://api.github.com/graphql"));
    g.insert(
        "head_ref",
        s(if is_pr {
            ev.git_ref
                .strip_prefix("refs/heads/")
                .unwrap_or(&ev.git_ref)
        } else {
            ""
        }),
    );
    g.insert("job", s(""));
    g.insert("ref", s(&git_ref));
    g.insert("ref_name", s(&ref_name));
    g.insert("ref_protected", Value::Bool(false));
    g.insert(
        "ref_type",
        s(if git_ref.starts_with("refs/tags/") {
            "tag"
        } else {
            "branch"
        }),
    );
    g.insert("repository", s(&src.repository));
    g.insert("repository_id", s("0"));
    g.insert(
        "repository_owner",
        s(src.repository.split('/').next().unwrap_or("")),
    );
    g.insert("repository_owner_id", s("0"));
    g.insert(
        "repositoryUrl",
        s(&format!("git://github.com/{}.git", src.repository)),
    );
    g.insert("retention_days", s("90"));
    g.insert("run_id", s(&run_id.to_string()));
    g.insert("run_number", s(&run_id.to_string()));
    g.insert("run_attempt", s("1"));
    g.insert("secret_source", s("Actions"));
    g.insert("server_url", s(SERVER_URL));
    g.insert("sha", s(&src.sha));
    g.insert("token", s(""));
    g.insert("triggering_actor", s(&src.actor));
    g.insert("workflow", s(wf.display_name()));
    g.insert(
        "workflow_ref",
        s(&format!("{}/{}@{}", src.repository, wf.path, git_ref)),
    );
    g.insert("workflow_sha", s(&src.sha));
    g.insert("workspace", s(""));
    let _ = crate::private::write(
        &run_dir.join("event.json"),
        g.get("event")
            .map(Value::to_json_pretty)
            .unwrap_or_default(),
    );
    g
}
