//! `launchway sbom`: the software bill of materials of a tree or an image.

use clap::{Args, ValueEnum};
use launchway_scan::gate;
use launchway_scan::sbom::cyclonedx;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    SpdxJson,
    CyclonedxJson,
}

#[derive(Args)]
pub struct SbomArgs {
    /// A directory or a lockfile; or an image: oci-archive:FILE,
    /// docker-archive:FILE, oci-dir:DIR, registry:REF, containers-storage:REF.
    #[arg(default_value = ".")]
    target: String,
    /// For an image that lists several platforms: which (os/arch[/variant];
    /// default: this machine's).
    #[arg(long)]
    platform: Option<String>,
    #[arg(short, long, value_enum, default_value = "cyclonedx-json")]
    format: Format,
    /// CycloneDX specification version.
    #[arg(long, default_value = "1.6", value_parser = ["1.5", "1.6"])]
    spec_version: String,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Also read files that .gitignore excludes (vendored trees, crate sources).
    #[arg(long)]
    no_ignore: bool,
    /// List the files each installed Python distribution owns (its RECORD)
    /// with SHA-1 and SHA-256 digests of their content; files changed since
    /// installation are reported.
    #[arg(long)]
    files: bool,
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub fn timestamp() -> Result<String, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => {
            let secs: u64 = s
                .trim()
                .parse()
                .map_err(|_| format!("SOURCE_DATE_EPOCH='{s}' is not a number of seconds"))?;
            Ok(launchway_runner::store::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            ))
        }
        _ => Ok(launchway_runner::store::now_rfc3339()),
    }
}

/// Builds the document for a path.
pub fn document(
    path: &std::path::Path,
    format: Format,
    spec: &str,
    opts: &launchway_scan::sbom::collect::Options,
) -> Result<(serde_json::Value, launchway_scan::sbom::Inventory), String> {
    let fmt = sbom_format(format, spec)?;
    gate::sbom(path, fmt, &timestamp()?, env!("CARGO_PKG_VERSION"), opts)
}

fn sbom_format(format: Format, spec: &str) -> Result<gate::SbomFormat, String> {
    Ok(match format {
        Format::SpdxJson => gate::SbomFormat::Spdx,
        Format::CyclonedxJson => gate::SbomFormat::CycloneDx(
            cyclonedx::SpecVersion::parse(spec)
                .ok_or_else(|| format!("unknown CycloneDX version {spec}"))?,
        ),
    })
}

pub fn main(args: &SbomArgs) -> u8 {
    let opts = launchway_scan::sbom::collect::Options {
        respect_ignore: !args.no_ignore,
        files: args.files,
    };
    let image = match crate::image_target::inventory(&args.target, args.platform.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if image.is_some() && (args.no_ignore || args.files) {
        eprintln!("error: --no-ignore and --files apply to a directory, not to an image");
        return 2;
    }
    let built = match image {
        Some((inv, info)) => sbom_format(args.format, &args.spec_version).and_then(|fmt| {
            let doc = launchway_scan::image::document(
                &inv,
                &info,
                fmt,
                &timestamp()?,
                env!("CARGO_PKG_VERSION"),
            );
            Ok((doc, inv))
        }),
        None => document(
            std::path::Path::new(&args.target),
            args.format,
            &args.spec_version,
            &opts,
        ),
    };
    let (doc, inv) = match built {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for e in &inv.errors {
        eprintln!("warning: {e} (skipped)");
    }
    for n in &inv.notices {
        eprintln!("warning: {n}");
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("error: {}: {e}", p.display());
                return 1;
            }
        }
        None => print!("{text}"),
    }
    eprintln!(
        "{} components from {} file{}{}",
        inv.components.len(),
        inv.files.len(),
        if inv.files.len() == 1 { "" } else { "s" },
        if inv.errors.is_empty() {
            String::new()
        } else {
            format!("; {} skipped with errors", inv.errors.len())
        }
    );
    0
}
