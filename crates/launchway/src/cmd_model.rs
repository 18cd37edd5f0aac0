//! `launchway model`: the built-in model registry — versions (the files,
//! content-addressed) and aliases that environments' `model_stage` pins.

use clap::{Args, Subcommand};
use launchway_deploy::models::{self, Registry};
use std::path::PathBuf;

#[derive(Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    cmd: ModelCmd,
}

#[derive(Subcommand)]
enum ModelCmd {
    /// A file as the next version of a model (the same content is the
    /// same version); --alias points aliases at it.
    Register {
        name: String,
        file: PathBuf,
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// Point an alias (a stage: Staging, Production…) at a version.
    Alias {
        name: String,
        alias: String,
        version: u64,
    },
    /// The registered models, or one model's versions and aliases.
    List {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn main(args: &ModelArgs, store: &launchway_runner::store::Store) -> u8 {
    let registry = Registry::new(&crate::deployer::registry_dir(store));
    let r = (|| -> Result<(), String> {
        match &args.cmd {
            ModelCmd::Register {
                name,
                file,
                aliases,
            } => {
                let source = file
                    .canonicalize()
                    .unwrap_or_else(|_| file.clone())
                    .display()
                    .to_string();
                let v = models::register_and_alias(
                    &registry,
                    name,
                    Some(file),
                    None,
                    aliases,
                    &source,
                )?;
                println!("{name} version {v}");
            }
            ModelCmd::Alias {
                name,
                alias,
                version,
            } => {
                registry.set_alias(name, alias, *version)?;
                println!("{name}@{alias} = {version}");
            }
            ModelCmd::List { name, json } => {
                let list = match name {
                    Some(n) => vec![
                        registry
                            .model(n)?
                            .ok_or_else(|| format!("no model '{n}' in the registry"))?,
                    ],
                    None => registry.models()?,
                };
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                    );
                    return Ok(());
                }
                for m in list {
                    let aliases: Vec<String> =
                        m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
                    println!(
                        "{}  ({} version(s); aliases: {})",
                        m.name,
                        m.versions.len(),
                        if aliases.is_empty() {
                            "none".into()
                        } else {
                            aliases.join(", ")
                        }
                    );
                    if name.is_some() {
                        for v in &m.versions {
                            println!(
                                "  {:<4} {}  sha256:{}  {} bytes  from {}",
                                v.version,
                                v.file,
                                &v.sha256[..16],
                                v.size,
                                v.source
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
