//! Cross-reference checks that need the whole model: `needs.<id>` used
//! without being in `needs`, `steps.<id>` naming no earlier step,
//! `matrix.<x>` in a job without a matrix.

use crate::diag::Diagnostic;
use crate::model::{Spanned, Workflow};
use launchway_expr::{Expr, template};

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
