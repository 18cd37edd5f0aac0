//! Protection rules for deployment environments, read from the repository's
//! environment configs (`configs/environments/<name>.yaml` laid over the
//! shared `_base.yaml`, key `protection`) the way `launchway-deploy` reads
//! them — and read from the commit the rules are kept on ([`RulesSource`]:
//! the repository's default or tracked branch), never from the commit
//! being run, which the person who pushed it controls (GitHub keeps them
//! in the repository's settings for the same reason).
//!
//! An environment is its file: a workflow's `environment: prod` is
//! `prod.yaml`. A file's `environment:` key is an alias a workflow may use
//! instead (`production` for `prod.yaml`); an alias that is another file's
//! name, or that two files claim, is an error — a run fails rather than
//! guess which rules apply.

use crate::source::Source;
pub use launchway_config::Protection;
use launchway_config::{Source as ConfigSource, load};

/// Where environment files live (one constant: launchway-deploy's).
pub const CONFIG_DIR: &str = launchway_config::DEFAULT_DIR;

/// Where protection rules are read from, and how to say so.
#[derive(Debug, Clone)]
pub struct RulesSource {
    pub source: Source,
    /// `refs/heads/main at 1a2b3c4`, or `the commit being run (…)`.
    pub from: String,
}

/// An environment's rules and the file they came from.
#[derive(Debug, Clone)]
pub struct Rules {
    pub file: String,
    pub protection: Protection,
}

/// Finds the protection rules for the environment a workflow names;
/// `Ok(None)` when no file is that environment (an unprotected
/// environment, as on GitHub). Any unreadable file, colliding alias or
/// alias claimed twice is an error: the caller fails closed.
pub fn protection(source: &Source, name: &str) -> Result<Option<Rules>, String> {
    let base_path = format!("{CONFIG_DIR}/{}", launchway_config::BASE_FILE);
    let base = source.read_file(&base_path).map(|text| ConfigSource {
        path: base_path.clone(),
        text,
    });
    // (file, stem, alias, rules) of every environment file.
    let mut all: Vec<(String, String, Option<String>, Protection)> = Vec::new();
    for file in source.list_dir(CONFIG_DIR) {
        let Some(stem) = file
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".yaml").or_else(|| f.strip_suffix(".yml")))
            .filter(|s| !s.starts_with('_'))
        else {
            continue;
        };
        let Some(text) = source.read_file(&file) else {
            return Err(format!("{file}: cannot be read"));
        };
        let loaded = load(
            stem,
            &ConfigSource {
                path: file.clone(),
                text,
            },
            base.as_ref(),
        );
        let Some(env) = loaded.environment else {
            let d = loaded.diagnostics.first();
            return Err(d.map_or_else(
                || format!("{file}: cannot be read"),
                |d| {
                    format!(
                        "{}:{}:{}: {}",
                        d.file,
                        d.diagnostic.span.start.line,
                        d.diagnostic.span.start.col,
                        d.diagnostic.message
                    )
                },
            ));
        };
        all.push((
            file.clone(),
            stem.to_string(),
            env.display_name.clone(),
            env.protection,
        ));
    }
    check_names(&all)?;
    let by_stem = all
        .iter()
        .find(|(_, stem, _, _)| stem.eq_ignore_ascii_case(name));
    let by_alias = || {
        all.iter().find(|(_, _, alias, _)| {
            alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
    };
    Ok(by_stem.or_else(by_alias).map(|(file, _, _, p)| Rules {
        file: file.clone(),
        protection: p.clone(),
    }))
}

/// Aliases are unique and never another file's name.
fn check_names(all: &[(String, String, Option<String>, Protection)]) -> Result<(), String> {
    for (file, stem, alias, _) in all {
        let Some(alias) = alias else { continue };
        if let Some((other, ..)) = all
            .iter()
            .find(|(_, s, _, _)| s.eq_ignore_ascii_case(alias) && !s.eq_ignore_ascii_case(stem))
        {
            return Err(format!(
                "{file}: `environment: {alias}` is the name of {other}; an environment is named by its file (remove the key, or rename one of the files)"
            ));
        }
        if let Some((other, ..)) = all.iter().find(|(f, _, a, _)| {
            f != file && a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(alias))
        }) {
            return Err(format!(
                "{file} and {other} both say `environment: {alias}`; one name, one environment"
            ));
        }
    }
    Ok(())
}
