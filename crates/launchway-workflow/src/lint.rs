//! Cross-reference checks that need the whole model: `needs.<id>` used
//! without being in `needs`, `steps.<id>` naming no earlier step,
//! `matrix.<x>` in a job without a matrix; and script injection: text an
//! outsider controls (an issue title, a branch name) expanded into a
//! `run:` script.

use crate::diag::Diagnostic;
use crate::model::{Spanned, Workflow};
use launchway_expr::{BinOp, Expr, Function, Value, template};

/// Event fields anyone who can open an issue, comment or push a branch
/// chooses (`*` is any key or index). Expanded into a script, they run as
/// code in the job.
const UNTRUSTED: &[&str] = &[
    "github.head_ref",
    "github.event.issue.title",
    "github.event.issue.body",
    "github.event.pull_request.title",
    "github.event.pull_request.body",
    "github.event.pull_request.head.ref",
    "github.event.pull_request.head.label",
    "github.event.pull_request.head.repo.default_branch",
    "github.event.comment.body",
    "github.event.review.body",
    "github.event.review_comment.body",
    "github.event.discussion.title",
    "github.event.discussion.body",
    "github.event.pages.*.page_name",
    "github.event.commits.*.message",
    "github.event.commits.*.author.email",
    "github.event.commits.*.author.name",
    "github.event.head_commit.message",
    "github.event.head_commit.author.email",
    "github.event.head_commit.author.name",
    "github.event.workflow_run.head_branch",
    "github.event.workflow_run.head_commit.message",
    "github.event.workflow_run.head_commit.author.email",
    "github.event.workflow_run.head_commit.author.name",
    "github.event.workflow_run.pull_requests.*.head.ref",
];

/// `github.event.issue.title` → ["github", "event", "issue", "title"]; an
/// index or filter is `*` (a literal string index is its key).
fn path_of(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Context(c) => Some(vec![c.to_ascii_lowercase()]),
        Expr::Property(base, name) => {
            let mut p = path_of(base)?;
            p.push(name.to_ascii_lowercase());
            Some(p)
        }
        Expr::Index(base, key) => {
            let mut p = path_of(base)?;
            match &**key {
                Expr::Literal(Value::String(k)) => p.push(k.to_ascii_lowercase()),
                _ => p.push("*".into()),
            }
            Some(p)
        }
        Expr::Filter(base) => {
            let mut p = path_of(base)?;
            p.push("*".into());
            Some(p)
        }
        _ => None,
    }
}

fn untrusted(path: &[String]) -> Option<&'static str> {
    UNTRUSTED.iter().copied().find(|pattern| {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == path.len()
            && parts
                .iter()
                .zip(path)
                .all(|(want, got)| *want == "*" || got == "*" || want == got)
    })
}

/// The untrusted fields an expression's value can carry as text. A
/// comparison or a `contains`-style test yields only true or false.
fn injected(e: &Expr, out: &mut Vec<&'static str>) {
    match e {
        Expr::Binary(BinOp::And | BinOp::Or, a, b) => {
            injected(a, out);
            injected(b, out);
        }
        Expr::Binary(..) | Expr::Not(_) => {}
        Expr::Call(Function::Contains | Function::StartsWith | Function::EndsWith, _) => {}
        Expr::Call(_, args) => args.iter().for_each(|a| injected(a, out)),
        _ => {
            if let Some(p) = path_of(e)
                && let Some(found) = untrusted(&p)
            {
                out.push(found);
            }
        }
    }
}

fn check_injection(s: &Spanned<String>, what: &str, diags: &mut Vec<Diagnostic>) {
    let Ok(exprs) = template::parse_template(&s.value) else {
        return;
    };
    let mut found = Vec::new();
    for e in &exprs {
        injected(e, &mut found);
    }
    found.dedup();
    for field in found {
        let var = field
            .rsplit('.')
            .next()
            .unwrap_or("VALUE")
            .to_ascii_uppercase();
        diags.push(
            Diagnostic::warning(
                "injection",
                s.span,
                format!("'{field}' is expanded into {what}: whoever writes it can run code in this job"),
            )
            .with_hint(format!(
                "pass it through env (env: {{{var}: ${{{{ {field} }}}}}}) and use \"${var}\" in the script"
            )),
        );
    }
}

/// Property chains like `needs.build.outputs` → ("needs", "build").
fn references<'a>(e: &'a Expr, ctx: &str, out: &mut Vec<&'a str>) {
    e.walk(&mut |node| {
        if let Expr::Property(base, name) = node
            && let Expr::Context(c) = &**base
            && c.eq_ignore_ascii_case(ctx)
        {
            out.push(name);
        }
    });
}

fn refs_in(s: &Spanned<String>, ctx: &str, is_if: bool) -> Vec<String> {
    let exprs = if is_if {
        launchway_expr::Condition::parse(&s.value)
            .map(|c| vec![c.expr])
            .unwrap_or_default()
    } else {
        template::parse_template(&s.value).unwrap_or_default()
    };
    let mut out = Vec::new();
    for e in &exprs {
        let mut names = Vec::new();
        references(e, ctx, &mut names);
        out.extend(names.into_iter().map(str::to_string));
    }
    out
}

pub fn check_references(wf: &Workflow, diags: &mut Vec<Diagnostic>) {
    for job in wf.jobs.values() {
        let needs: Vec<&str> = job.needs.iter().map(|n| n.value.as_str()).collect();
        let mut strings: Vec<(&Spanned<String>, bool)> = Vec::new();
        strings.extend(job.if_.iter().map(|s| (s, true)));
        strings.extend(job.outputs.values().map(|s| (s, false)));
        strings.extend(job.env.values().map(|s| (s, false)));
        strings.extend(job.with.values().map(|s| (s, false)));
        strings.extend(job.name.iter().map(|s| (s, false)));
        for step in crate::model::flat_steps(&job.steps) {
            strings.extend(step.if_.iter().map(|s| (s, true)));
            strings.extend(step.run.iter().map(|s| (s, false)));
            strings.extend(step.with.values().map(|s| (s, false)));
            strings.extend(step.env.values().map(|s| (s, false)));
            strings.extend(step.name.iter().map(|s| (s, false)));
        }
        for step in crate::model::flat_steps(&job.steps) {
            if let Some(run) = &step.run {
                check_injection(run, "a run script", diags);
            }
            if step.uses.as_ref().is_some_and(|u| {
                u.value
                    .to_ascii_lowercase()
                    .starts_with("actions/github-script@")
            }) && let Some(script) = step.with.get("script")
            {
                check_injection(script, "a github-script script", diags);
            }
        }
        // `matrix.x` in a job with no matrix is null (actionlint warns).
        let has_matrix = job.strategy.as_ref().is_some_and(|st| st.matrix.is_some());
        if !has_matrix {
            for (s, is_if) in &strings {
                if let Some(name) = refs_in(s, "matrix", *is_if).into_iter().next() {
                    diags.push(
                        Diagnostic::warning(
                            "matrix",
                            s.span,
                            format!("'matrix.{name}' is used but job '{}' has no matrix (it evaluates to null)", job.id),
                        )
                        .with_hint("add a strategy.matrix, or use an input or env value"),
                    );
                }
            }
        }
        for (s, is_if) in strings {
            for name in refs_in(s, "needs", is_if) {
                if !needs.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                    // GitHub runs such a workflow (the expression is null
                    // there); actionlint flags it: a warning, not a block.
                    diags.push(
                        Diagnostic::warning(
                            "needs",
                            s.span,
                            format!("'needs.{name}' is used but job '{}' does not list '{name}' in 'needs' (it evaluates to null)", job.id),
                        )
                        .with_hint(format!("add '{name}' to 'needs' of job '{}'", job.id)),
                    );
                }
            }
        }
        // steps.<id> must name a step of this job that comes earlier.
        let ids: Vec<&str> = crate::model::flat_steps(&job.steps)
            .into_iter()
            .filter_map(|s| s.id.as_ref().map(|i| i.value.as_str()))
            .collect();
        let mut check_steps = |s: &Spanned<String>, is_if: bool| {
            for name in refs_in(s, "steps", is_if) {
                if !ids.iter().any(|i| i.eq_ignore_ascii_case(&name)) {
                    diags.push(
                        Diagnostic::warning(
                            "steps",
                            s.span,
                            format!(
                                "'steps.{name}' names no step with that id in job '{}'",
                                job.id
                            ),
                        )
                        .with_hint("give the step an 'id:' or fix the name"),
                    );
                }
            }
        };
        for s in job.outputs.values() {
            check_steps(s, false);
        }
        for step in crate::model::flat_steps(&job.steps) {
            if let Some(s) = &step.if_ {
                check_steps(s, true);
            }
            if let Some(s) = &step.run {
                check_steps(s, false);
            }
            step.with.values().for_each(|s| check_steps(s, false));
            step.env.values().for_each(|s| check_steps(s, false));
        }
    }
}
