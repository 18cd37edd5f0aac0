//! Protection rules for deployment environments, read from the repository's
//! environment configs (`configs/environments/<name>.yaml` laid over the
//! shared `_base.yaml`, key `protection`) the way `launchway-deploy` reads
//! them. An environment is found by its file stem or by its `environment:`
//! name.

use crate::source::Source;
pub use launchway_deploy::config::Protection;
use launchway_deploy::config::{Source as ConfigSource, load};

pub const CONFIG_DIR: &str = "configs/environments";

/// Finds the protection rules for an environment; `Ok(None)` when no config
/// names it (an unprotected environment, as on GitHub).
pub fn protection(source: &Source, name: &str) -> Result<Option<Protection>, String> {
    let base_path = format!("{CONFIG_DIR}/{}", launchway_deploy::repo::BASE_FILE);
    let base = source.read_file(&base_path).map(|text| ConfigSource {
        path: base_path.clone(),
        text,
    });
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
            continue;
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
        if stem.eq_ignore_ascii_case(name)
            || env
                .display_name
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(name))
        {
            return Ok(Some(env.protection));
        }
    }
    Ok(None)
}
