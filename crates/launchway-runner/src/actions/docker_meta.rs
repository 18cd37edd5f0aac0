//! `docker/metadata-action`, computed as the action computes it for the
//! rules pipelines use: `type=ref,event=branch|tag|pr`, `type=sha`,
//! `type=semver` (patterns of `{{version}}`, `{{major}}`, `{{minor}}`,
//! `{{patch}}`), `type=raw`, `type=schedule`; `enable=`, `prefix=`,
//! `suffix=`, `priority=`; the `flavor` keys `latest`, `prefix`, `suffix`.
//! Tags are ordered by priority, `version` is the first tag's; the OCI
//! labels are the action's. Pure: no I/O.

use indexmap::IndexMap;

/// What the rules are evaluated against.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub event_name: String,
    /// `refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/7/merge`.
    pub git_ref: String,
    pub sha: String,
    /// `owner/repo`.
    pub repository: String,
    pub server_url: String,
    /// RFC 3339, for `org.opencontainers.image.created`.
    pub created: String,
    pub pr_number: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub version: String,
    /// `image:tag`, one per image and tag.
    pub tags: Vec<String>,
    pub labels: Vec<(String, String)>,
}

impl Meta {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "tags": self.tags,
            "labels": self.labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

#[derive(Debug, Clone)]
struct Rule {
    kind: String,
    attrs: IndexMap<String, String>,
}

fn parse_rule(line: &str) -> Result<Rule, String> {
    let mut attrs = IndexMap::new();
    let mut kind = None;
    for part in line.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("tags: '{part}' in '{line}' is not key=value"))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        if k == "type" {
            kind = Some(v);
        } else {
            attrs.insert(k, v);
        }
    }
    // A bare `type=raw` shorthand: `value` alone.
    let kind = kind.unwrap_or_else(|| "raw".into());
    match kind.as_str() {
        "ref" | "sha" | "semver" | "raw" | "schedule" => Ok(Rule { kind, attrs }),
        other => Err(format!(
            "tags: type={other} is not supported (ref, sha, semver, raw, schedule)"
        )),
    }
}

/// A tag as the registry accepts it: `[A-Za-z0-9_.-]`, at most 128,
/// not starting with `.` or `-` (the action's sanitising).
fn sanitize(tag: &str) -> String {
    let mut t: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while t.starts_with(['.', '-']) {
        t.remove(0);
    }
    t.truncate(128);
    t
}

struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    raw: String,
}

fn semver(tag: &str) -> Option<Semver> {
    let v = tag.strip_prefix('v').unwrap_or(tag);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, p.split('+').next().unwrap_or(p).to_string()),
        None => (v.split('+').next().unwrap_or(v), String::new()),
    };
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let raw = if pre.is_empty() {
        format!("{major}.{minor}.{patch}")
    } else {
        format!("{major}.{minor}.{patch}-{pre}")
    };
    Some(Semver {
        major,
        minor,
        patch,
        pre,
        raw,
    })
}

/// The default priority of a rule (the action's table).
fn default_priority(r: &Rule) -> i64 {
    match r.kind.as_str() {
        "schedule" => 1000,
        "semver" => 900,
        "ref" => 600,
        "raw" => 200,
        "sha" => 100,
        _ => 0,
    }
}

/// The tag a rule gives (before prefix, suffix and the image name), and
/// whether it is a release that earns `latest` with `latest=auto`.
fn evaluate(r: &Rule, ctx: &Context) -> Result<Option<(String, bool)>, String> {
    if r.attrs.get("enable").is_some_and(|e| e == "false") {
        return Ok(None);
    }
    let branch = ctx.git_ref.strip_prefix("refs/heads/");
    let tag = ctx.git_ref.strip_prefix("refs/tags/");
    Ok(match r.kind.as_str() {
        "ref" => match r.attrs.get("event").map(String::as_str) {
            Some("branch") => branch.map(|b| (sanitize(b), false)),
            Some("tag") => tag.map(|t| (sanitize(t), true)),
            Some("pr") => {
                let n = ctx.pr_number.or_else(|| {
                    ctx.git_ref
                        .strip_prefix("refs/pull/")
                        .and_then(|r| r.split('/').next())
                        .and_then(|n| n.parse().ok())
                });
                if ctx.event_name.starts_with("pull_request") {
                    n.map(|n| (format!("pr-{n}"), false))
                } else {
                    None
                }
            }
            other => {
                return Err(format!(
                    "tags: type=ref needs event=branch, tag or pr (got {other:?})"
                ));
            }
        },
        "sha" => {
            if ctx.sha.is_empty() {
                None
            } else {
                let long = r.attrs.get("format").is_some_and(|f| f == "long");
                let sha = if long {
                    ctx.sha.clone()
                } else {
                    ctx.sha.chars().take(7).collect()
                };
                let prefix = r.attrs.get("prefix").map_or("sha-", String::as_str);
                return Ok(Some((format!("{prefix}{sha}"), false)));
            }
        }
        "semver" => {
            let source = r
                .attrs
                .get("value")
                .cloned()
                .or_else(|| tag.map(str::to_string));
            let Some(v) = source.as_deref().and_then(semver) else {
                return Ok(None);
            };
            let pattern = r
                .attrs
                .get("pattern")
                .ok_or("tags: type=semver needs pattern=…")?;
            // A pre-release gets its full version whatever the pattern.
            if !v.pre.is_empty() {
                Some((sanitize(&v.raw), false))
            } else {
                let out = pattern
                    .replace("{{raw}}", &v.raw)
                    .replace("{{version}}", &v.raw)
                    .replace("{{major}}", &v.major.to_string())
                    .replace("{{minor}}", &v.minor.to_string())
                    .replace("{{patch}}", &v.patch.to_string());
                // `{{major}}` of 0.x is not a stable line: the action skips it.
                if v.major == 0
                    && !pattern.contains("{{minor}}")
                    && !pattern.contains("{{version}}")
                {
                    None
                } else {
                    Some((sanitize(&out), true))
                }
            }
        }
        "raw" => {
            let v = r.attrs.get("value").ok_or("tags: type=raw needs value=…")?;
            (!v.is_empty()).then(|| (sanitize(v), false))
        }
        "schedule" => {
            if ctx.event_name == "schedule" {
                let p = r.attrs.get("pattern").map_or("nightly", String::as_str);
                Some((sanitize(p), false))
            } else {
                None
            }
        }
        _ => None,
    }
    .map(|(t, release)| {
        let prefix = r.attrs.get("prefix").map_or("", String::as_str);
        let suffix = r.attrs.get("suffix").map_or("", String::as_str);
        (format!("{prefix}{t}{suffix}"), release)
    }))
}

/// `images`, `tags` (rules, one per line), `flavor`, extra `labels`.
pub fn compute(
    images: &[String],
    tags: &[String],
    flavor: &[String],
    extra_labels: &[String],
    ctx: &Context,
) -> Result<Meta, String> {
    let default_rules = [
        "type=schedule",
        "type=ref,event=branch",
        "type=ref,event=tag",
        "type=ref,event=pr",
    ];
    let lines: Vec<String> = if tags.is_empty() {
        default_rules.iter().map(ToString::to_string).collect()
    } else {
        tags.to_vec()
    };
    let mut latest = "auto".to_string();
    let (mut gprefix, mut gsuffix) = (String::new(), String::new());
    for f in flavor.iter().flat_map(|l| l.split(',')) {
        let Some((k, v)) = f.split_once('=') else {
            continue;
        };
        match k.trim() {
            "latest" => latest = v.trim().to_string(),
            "prefix" => gprefix = v.trim().to_string(),
            "suffix" => gsuffix = v.trim().to_string(),
            other => {
                return Err(format!(
                    "flavor: '{other}' is not supported (latest, prefix, suffix)"
                ));
            }
        }
    }
    let mut found: Vec<(i64, usize, String)> = Vec::new();
    let mut release = false;
    for (i, line) in lines.iter().enumerate() {
        let r = parse_rule(line)?;
        let prio = match r.attrs.get("priority") {
            Some(p) => p
                .parse()
                .map_err(|_| format!("tags: priority '{p}' is not a number"))?,
            None => default_priority(&r),
        };
        if let Some((t, rel)) = evaluate(&r, ctx)? {
            release |= rel;
            let t = format!("{gprefix}{t}{gsuffix}");
            if !found.iter().any(|(_, _, x)| *x == t) {
                found.push((prio, i, t));
            }
        }
    }
    // Tags from a release (a git tag, a semver) earn `latest` on auto.
    let add_latest = match latest.as_str() {
        "true" => true,
        "false" => false,
        _ => release,
    };
    if add_latest && !found.iter().any(|(_, _, t)| t == "latest") {
        found.push((1, usize::MAX, format!("{gprefix}latest{gsuffix}")));
    }
    // Highest priority first; the order of the rules among equals.
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let version = found.first().map(|f| f.2.clone()).unwrap_or_default();
    let mut out_tags = Vec::new();
    for img in images {
        for (_, _, t) in &found {
            out_tags.push(format!("{img}:{t}"));
        }
    }
    let repo_name = ctx.repository.rsplit('/').next().unwrap_or("").to_string();
    let url = format!(
        "{}/{}",
        ctx.server_url.trim_end_matches('/'),
        ctx.repository
    );
    let mut labels: Vec<(String, String)> = vec![
        (
            "org.opencontainers.image.created".into(),
            ctx.created.clone(),
        ),
        ("org.opencontainers.image.description".into(), String::new()),
        ("org.opencontainers.image.licenses".into(), String::new()),
        ("org.opencontainers.image.revision".into(), ctx.sha.clone()),
        ("org.opencontainers.image.source".into(), url.clone()),
        ("org.opencontainers.image.title".into(), repo_name),
        ("org.opencontainers.image.url".into(), url),
        ("org.opencontainers.image.version".into(), version.clone()),
    ];
    for l in extra_labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("labels: '{l}' is not key=value"))?;
        match labels.iter_mut().find(|(x, _)| x == k.trim()) {
            Some(slot) => slot.1 = v.trim().to_string(),
            None => labels.push((k.trim().to_string(), v.trim().to_string())),
        }
    }
    labels.sort();
    Ok(Meta {
        version,
        tags: out_tags,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(event: &str, git_ref: &str) -> Context {
        Context {
            event_name: event.into(),
            git_ref: git_ref.into(),
            sha: "860c1904a1ce19322e91ac35af1ab07466440c37".into(),
            repository: "org/app".into(),
            server_url: "https://github.com".into(),
            created: "2026-01-01T00:00:00Z".into(),
            pr_number: None,
        }
    }

    fn tags(rules: &[&str], c: &Context) -> (String, Vec<String>) {
        let m = compute(
            &["ghcr.io/org/app".into()],
            &rules.iter().map(ToString::to_string).collect::<Vec<_>>(),
            &[],
            &[],
            c,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (m.version, m.tags)
    }

    #[test]
    fn the_readme_examples() {
        let rules = [
            "type=ref,event=branch",
            "type=ref,event=pr",
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=sha",
        ];
        assert_eq!(
            tags(&rules, &ctx("push", "refs/heads/main")),
            (
                "main".to_string(),
                vec![
                    "ghcr.io/org/app:main".into(),
                    "ghcr.io/org/app:sha-860c190".into()
                ]
            )
        );
        assert_eq!(
            tags(&rules, &ctx("push", "refs/tags/v1.2.3")),
            (
                "1.2.3".to_string(),
                vec![
                    "ghcr.io/org/app:1.2.3".into(),
                    "ghcr.io/org/app:1.2".into(),
                    "ghcr.io/org/app:sha-860c190".into(),
                    "ghcr.io/org/app:latest".into(),
                ]
            )
        );
        assert_eq!(
            tags(&rules, &ctx("pull_request", "refs/pull/7/merge")).1,
            ["ghcr.io/org/app:pr-7", "ghcr.io/org/app:sha-860c190"]
        );
        // A pre-release: its full version only, no latest.
        assert_eq!(
            tags(&rules, &ctx("push", "refs/tags/v2.0.0-rc.1")).1,
            ["ghcr.io/org/app:2.0.0-rc.1", "ghcr.io/org/app:sha-860c190"]
        );
        // Branch names are sanitised; raw values and long shas.
        assert_eq!(
            tags(
                &[
                    "type=ref,event=branch",
                    "type=raw,value=edge",
                    "type=sha,format=long,prefix="
                ],
                &ctx("push", "refs/heads/feature/x")
            )
            .1,
            [
                "ghcr.io/org/app:feature-x",
                "ghcr.io/org/app:edge",
                "ghcr.io/org/app:860c1904a1ce19322e91ac35af1ab07466440c37"
            ]
        );
    }

    #[test]
    fn labels_and_errors() {
        let m = compute(
            &["app".into()],
            &[],
            &["latest=false".into()],
            &["maintainer=ci".into()],
            &ctx("push", "refs/tags/v1.0.0"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.tags, ["app:v1.0.0"]);
        let get = |k: &str| {
            m.labels
                .iter()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("org.opencontainers.image.version"), Some("v1.0.0"));
        assert_eq!(
            get("org.opencontainers.image.source"),
            Some("https://github.com/org/app")
        );
        assert_eq!(get("maintainer"), Some("ci"));
        for bad in [
            "type=match,pattern=x",
            "type=ref",
            "type=semver",
            "nonsense",
        ] {
            assert!(
                compute(
                    &["a".into()],
                    &[bad.into()],
                    &[],
                    &[],
                    &ctx("push", "refs/tags/v1.0.0")
                )
                .is_err(),
                "{bad}"
            );
        }
    }
}
