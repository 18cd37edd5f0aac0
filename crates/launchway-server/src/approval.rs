//! The deployment gate in front of a job with `environment:`: who may
//! review it, and what state it is in. Pure: the server feeds in the rules,
//! the reviews so far and the clock, and acts on the answer.

use crate::auth::Role;
use launchway_runner::environments::Protection;

/// Someone acting on a pending deployment.
#[derive(Debug, Clone)]
pub struct Reviewer<'a> {
    pub name: &'a str,
    pub role: Role,
    /// Teams the user belongs to (`release-managers`).
    pub groups: &'a [String],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("'{name}' is not among the required reviewers ({required})")]
    NotAReviewer { name: String, required: String },
    #[error("'{0}' triggered this run and the environment prevents self-review")]
    SelfReview(String),
    #[error("reviewing deployments needs the deployer role")]
    Role,
}

/// Whether `who` may approve or reject a deployment that `triggered_by`
/// started. A required-reviewer entry names a user, a group, or a role (held
/// or exceeded).
pub fn may_review(p: &Protection, who: &Reviewer<'_>, triggered_by: &str) -> Result<(), Refusal> {
    if who.role < Role::Deployer {
        return Err(Refusal::Role);
    }
    let listed = p.required_reviewers.iter().any(|entry| {
        entry.eq_ignore_ascii_case(who.name)
            || who.groups.iter().any(|g| g.eq_ignore_ascii_case(entry))
            || entry.parse::<Role>().is_ok_and(|r| who.role >= r)
    });
    if !listed {
        return Err(Refusal::NotAReviewer {
            name: who.name.to_string(),
            required: p.required_reviewers.join(", "),
        });
    }
    if p.prevent_self_review && who.name.eq_ignore_ascii_case(triggered_by) {
        return Err(Refusal::SelfReview(who.name.to_string()));
    }
    Ok(())
}

/// A recorded review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub by: String,
    pub approved: bool,
    pub at_ms: i64,
    pub comment: Option<String>,
}

/// Where a held job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The ref may not deploy here; the job fails.
    RefNotAllowed(String),
    WaitingForReview,
    /// Approved (or no review needed), held by the wait timer until then.
    Waiting {
        until_ms: i64,
    },
    Rejected {
        by: String,
    },
    /// The job may start; environment secrets may be handed to it now.
    Open {
        approved_by: Option<String>,
    },
}

/// The gate's state from the rules, the ref, when the job was queued, the
/// reviews so far (oldest first; the first decision counts) and the time.
pub fn gate(
    p: &Protection,
    git_ref: &str,
    queued_at_ms: i64,
    reviews: &[Review],
    now_ms: i64,
) -> Gate {
    match p.allows_ref(git_ref) {
        Ok(true) => {}
        Ok(false) => return Gate::RefNotAllowed(git_ref.to_string()),
        Err(e) => return Gate::RefNotAllowed(format!("{git_ref} (bad branch pattern: {e})")),
    }
    let mut approved_by = None;
    if p.needs_approval() {
        match reviews.first() {
            None => return Gate::WaitingForReview,
            Some(r) if !r.approved => return Gate::Rejected { by: r.by.clone() },
            Some(r) => approved_by = Some(r.by.clone()),
        }
    }
    let wait_ms = i64::try_from(p.wait_timer_minutes)
        .unwrap_or(i64::MAX / 60_000)
        .saturating_mul(60_000);
    let until_ms = queued_at_ms.saturating_add(wait_ms);
    if now_ms < until_ms {
        return Gate::Waiting { until_ms };
    }
    Gate::Open { approved_by }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> Protection {
        Protection {
            required_reviewers: vec!["release-managers".into(), "ana".into()],
            prevent_self_review: true,
            wait_timer_minutes: 0,
            branches: vec!["main".into(), "release/*".into()],
        }
    }

    fn reviewer<'a>(name: &'a str, role: Role, groups: &'a [String]) -> Reviewer<'a> {
        Reviewer { name, role, groups }
    }

    #[test]
    fn who_may_review() {
        let team = vec!["release-managers".to_string()];
        let p = prod();
        assert_eq!(
            may_review(&p, &reviewer("bo", Role::Deployer, &team), "mona"),
            Ok(())
        );
        assert_eq!(
            may_review(&p, &reviewer("ana", Role::Deployer, &[]), "mona"),
            Ok(())
        );
        assert_eq!(
            may_review(&p, &reviewer("cy", Role::Admin, &[]), "mona"),
            Err(Refusal::NotAReviewer {
                name: "cy".into(),
                required: "release-managers, ana".into()
            }),
            "admins are not reviewers unless listed"
        );
        assert_eq!(
            may_review(&p, &reviewer("ana", Role::Deployer, &[]), "ana"),
            Err(Refusal::SelfReview("ana".into()))
        );
        assert_eq!(
            may_review(&p, &reviewer("ana", Role::Developer, &team), "mona"),
            Err(Refusal::Role)
        );
        let by_role = Protection {
            required_reviewers: vec!["deployer".into()],
            ..prod()
        };
        assert_eq!(
            may_review(&by_role, &reviewer("cy", Role::Admin, &[]), "mona"),
            Ok(())
        );
    }

    #[test]
    fn gate_states() {
        let p = prod();
        let ok = |by: &str| Review {
            by: by.into(),
            approved: true,
            at_ms: 5,
            comment: None,
        };
        assert_eq!(
            gate(&p, "refs/heads/feature", 0, &[], 0),
            Gate::RefNotAllowed("refs/heads/feature".into())
        );
        assert_eq!(
            gate(&p, "refs/heads/main", 0, &[], 0),
            Gate::WaitingForReview
        );
        assert_eq!(
            gate(&p, "refs/heads/release/1.2", 0, &[ok("ana")], 10),
            Gate::Open {
                approved_by: Some("ana".into())
            }
        );
        let rejected = Review {
            approved: false,
            ..ok("bo")
        };
        assert_eq!(
            gate(&p, "refs/heads/main", 0, &[rejected, ok("ana")], 10),
            Gate::Rejected { by: "bo".into() }
        );
        let timed = Protection {
            wait_timer_minutes: 5,
            ..prod()
        };
        assert_eq!(
            gate(&timed, "refs/heads/main", 1_000, &[ok("ana")], 2_000),
            Gate::Waiting { until_ms: 301_000 }
        );
        assert_eq!(
            gate(&timed, "refs/heads/main", 1_000, &[ok("ana")], 301_000),
            Gate::Open {
                approved_by: Some("ana".into())
            }
        );
        let open = Protection::default();
        assert_eq!(
            gate(&open, "refs/heads/x", 0, &[], 0),
            Gate::Open { approved_by: None }
        );
        let huge = Protection {
            wait_timer_minutes: u64::MAX,
            ..Protection::default()
        };
        assert!(matches!(
            gate(&huge, "refs/heads/x", 0, &[], 0),
            Gate::Waiting { .. }
        ));
    }
}
