//! `launchway artifacts`: a server run's artifacts, listed or downloaded.

use crate::client::{ServerOpts, done, encode};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ArtifactsArgs {
    /// Run number on the server.
    run: i64,
    /// Download this artifact (every file, checked against its digest).
    #[arg(long)]
    download: Option<String>,
    /// Where downloads go (default: ./NAME).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn artifacts(args: &ArtifactsArgs, server: &ServerOpts) -> u8 {
    done((|| {
        let c = server.require("launchway artifacts")?;
        let list = c.get(&format!("/api/runs/{}/artifacts", args.run))?;
        let Some(name) = &args.download else {
            for a in list.as_array().into_iter().flatten() {
                println!(
                    "{:<28} {:>4} file(s) {:>10} bytes  sha256:{}",
                    a["name"].as_str().unwrap_or(""),
                    a["files"].as_array().map_or(0, Vec::len),
                    a["bytes"].as_u64().unwrap_or(0),
                    a["sha256"].as_str().unwrap_or("")
                );
            }
            return Ok(());
        };
        let a = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == name.as_str())
            .ok_or_else(|| format!("run {} has no artifact '{name}'", args.run))?;
        let dest = args.output.clone().unwrap_or_else(|| PathBuf::from(name));
        for f in a["files"].as_array().into_iter().flatten() {
            let rel = f["path"].as_str().unwrap_or("");
            // Never write outside the destination, whatever the server says.
            if rel.is_empty()
                || Path::new(rel).is_absolute()
                || rel.split('/').any(|p| p == ".." || p.is_empty())
            {
                return Err(format!("refusing the artifact path '{rel}'"));
            }
            let url = format!(
                "/api/runs/{}/artifacts/{}/{}",
                args.run,
                encode(name),
                rel.split('/').map(encode).collect::<Vec<_>>().join("/")
            );
            let data = c.get_bytes(&url)?;
            let sum = launchway_server::hex_sha256(&data);
            if Some(sum.as_str()) != f["sha256"].as_str() {
                return Err(format!("{rel}: the content does not match its digest"));
            }
            let target = dest.join(rel);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            std::fs::write(&target, &data).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        println!(
            "downloaded '{name}' to {} (sha256 verified)",
            dest.display()
        );
        Ok(())
    })())
}
