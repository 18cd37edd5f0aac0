//! The job graph: `needs` edges, cycle detection and ancestry.

use crate::diag::{Diagnostic, suggest};
use crate::model::Workflow;
use indexmap::IndexMap;

/// Reports `needs` that name missing jobs and dependency cycles.
pub fn check(wf: &Workflow, diags: &mut Vec<Diagnostic>) {
    for job in wf.jobs.values() {
        for need in &job.needs {
            if need.value == job.id {
                diags.push(Diagnostic::error(
                    "needs",
                    need.span,
                    format!("job '{}' needs itself", job.id),
                ));
            } else if !wf.jobs.contains_key(&need.value) {
                let mut d = Diagnostic::error(
                    "needs",
                    need.span,
                    format!(
                        "job '{}' needs '{}', which does not exist",
                        job.id, need.value
                    ),
                );
                d.hint = Some(
                    match suggest(&need.value, wf.jobs.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean '{s}'?"),
                        None => format!(
                            "jobs in this workflow: {}",
                            wf.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
                diags.push(d);
            }
        }
    }
    if let Err(cycle) = topo_order(wf) {
        let first = &wf.jobs[&cycle[0]];
        diags.push(
            Diagnostic::error(
                "cycle",
                first.span,
                format!(
                    "jobs depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            )
            .with_hint("remove one of these 'needs' entries"),
        );
    }
}

/// Job ids in an order where every job comes after its needs; `Err` holds a
/// cycle (first id repeated at the end). Missing needs are ignored.
pub fn topo_order(wf: &Workflow) -> Result<Vec<String>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: IndexMap<&str, Mark> = wf.jobs.keys().map(|k| (k.as_str(), Mark::New)).collect();
    let mut order = Vec::new();
    for start in wf.jobs.keys() {
        if marks[start.as_str()] != Mark::New {
            continue;
        }
        // Iterative DFS: (job, index of next need to visit).
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        marks[start.as_str()] = Mark::Active;
        while let Some((id, next)) = stack.last_mut() {
            let job = &wf.jobs[*id];
            if let Some(need) = job.needs.get(*next) {
                *next += 1;
                let n = need.value.as_str();
                match marks.get(n).copied() {
                    Some(Mark::New) => {
                        marks[n] = Mark::Active;
                        stack.push((n, 0));
                    }
                    Some(Mark::Active) => {
                        let pos = stack.iter().position(|(j, _)| *j == n).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[pos..].iter().map(|(j, _)| j.to_string()).collect();
                        cycle.push(n.to_string());
                        return Err(cycle);
                    }
                    _ => {}
                }
            } else {
                marks[*id] = Mark::Done;
                order.push(id.to_string());
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// Every job that `id` depends on, directly or not.
pub fn ancestors(wf: &Workflow, id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = vec![id.to_string()];
    while let Some(j) = todo.pop() {
        if let Some(job) = wf.jobs.get(&j) {
            for n in &job.needs {
                if !out.contains(&n.value) && wf.jobs.contains_key(&n.value) {
                    out.push(n.value.clone());
                    todo.push(n.value.clone());
                }
            }
        }
    }
    out
}
