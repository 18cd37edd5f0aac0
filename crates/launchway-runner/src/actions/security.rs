//! Native equivalents of the security actions pipelines use, with their
//! documented inputs: `anchore/sbom-action`, `aquasecurity/trivy-action`
//! and `gitleaks/gitleaks-action`. They run Launchway's own scanners,
//! offline, against the advisory database in the data directory.

use super::Inputs;
use crate::job::{JobExec, StepRun};
use indexmap::IndexMap;
use launchway_scan::gate;
use launchway_scan::osv::severity::Level;
use launchway_scan::sbom::cyclonedx::SpecVersion;
use std::path::{Path, PathBuf};

fn resolve(exec: &JobExec, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        exec.workspace.join(p)
    }
}

fn timestamp(step_env: &IndexMap<String, String>) -> String {
    step_env
        .get("SOURCE_DATE_EPOCH")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or_else(crate::store::now_rfc3339, |secs| {
            crate::store::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        })
}

/// Stores one file as a run artifact (what the actions' upload steps do).
fn store_artifact(exec: &mut JobExec, name: &str, file: &Path) -> Result<(), String> {
    let dir = exec.shared.run_dir.join("artifacts").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fname = file.file_name().ok_or("no file name")?;
    std::fs::copy(file, dir.join(fname)).map_err(|e| format!("{}: {e}", file.display()))?;
    exec.log(&format!("Uploaded artifact '{name}'"));
    Ok(())
}

pub(crate) fn sbom_action(
    exec: &mut JobExec,
    with: &Inputs,
    step_env: &IndexMap<String, String>,
) -> StepRun {
    let image = match with.get("image") {
        Some(reference) => match read_image(exec, "anchore/sbom-action", reference) {
            Some(x) => Some(x),
            None => return StepRun::failed(),
        },
        None => None,
    };
    let target = resolve(
        exec,
        with.get("file").unwrap_or_else(|| with.get_or("path", ".")),
    );
    let format = with.get_or("format", "spdx-json");
    let (fmt, ext) = match format {
        "spdx-json" => (gate::SbomFormat::Spdx, "spdx.json"),
        "cyclonedx-json" => (
            gate::SbomFormat::CycloneDx(SpecVersion::V1_6),
            "cyclonedx.json",
        ),
        other => {
            exec.error(&format!("anchore/sbom-action: format '{other}' is not supported; use spdx-json or cyclonedx-json"));
            return StepRun::failed();
        }
    };
    let built = match image {
        Some((inv, info)) => Ok((
            launchway_scan::image::document(
                &inv,
                &info,
                fmt,
                &timestamp(step_env),
                env!("CARGO_PKG_VERSION"),
            ),
            inv,
        )),
        None => gate::sbom(
            &target,
            fmt,
            &timestamp(step_env),
            env!("CARGO_PKG_VERSION"),
            &Default::default(),
        ),
    };
    let (doc, inv) = match built {
        Ok(x) => x,
        Err(e) => {
            exec.error(&format!("anchore/sbom-action: {e}"));
            return StepRun::failed();
        }
    };
    for e in &inv.errors {
        exec.log(&format!("##[warning]{e} (skipped)"));
    }
    exec.log(&format!(
        "Cataloged {} packages from {} files in {}",
        inv.components.len(),
        inv.files.len(),
        with.get("image")
            .map_or_else(|| target.display().to_string(), str::to_string)
    ));
    let repo = exec.shared.cfg.source.name().to_string();
    let out_path = match with.get("output-file") {
        Some(p) => resolve(exec, p),
        None => exec.temp.join(format!("{repo}.{ext}")),
    };
    if let Some(parent) = out_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(e) = std::fs::write(
        &out_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    ) {
        exec.error(&format!("anchore/sbom-action: {}: {e}", out_path.display()));
        return StepRun::failed();
    }
    exec.log(&format!("Wrote {}", out_path.display()));
    if with.bool("upload-artifact", true) {
        let name = with.get("artifact-name").map_or_else(
            || format!("{repo}-{}.{ext}", exec.key.replace(' ', "_")),
            str::to_string,
        );
        let tmp = exec.temp.join(&name);
        let stored = std::fs::copy(&out_path, &tmp)
            .map_err(|e| e.to_string())
            .and_then(|_| store_artifact(exec, &name, &tmp));
        if let Err(e) = stored {
            exec.error(&format!("anchore/sbom-action: uploading the artifact: {e}"));
            return StepRun::failed();
        }
    }
    if with.get("dependency-snapshot").is_some_and(|v| v == "true") {
        exec.log(
            "##[warning]dependency-snapshot submits to GitHub's API; skipped when running locally",
        );
    }
    StepRun::ok(IndexMap::new())
}

fn today() -> String {
    crate::store::now_rfc3339()[..10].to_string()
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// An image's inventory, from a reference (local containers storage, else
/// its registry) or a target (`oci-archive:…`), with the job's registry
/// settings; errors are reported.
fn read_image(
    exec: &mut JobExec,
    action: &str,
    reference: &str,
) -> Option<(
    launchway_scan::sbom::Inventory,
    launchway_scan::image::ImageInfo,
)> {
    let regs = super::docker::registries(exec, action)?;
    let target = super::docker::image_target(reference.trim());
    match launchway_scan::image::open_target(&target, None, &regs) {
        Ok(Some(x)) => {
            exec.log(&format!("Reading {target}"));
            Some(x)
        }
        Ok(None) => {
            exec.error(&format!(
                "{action}: '{reference}' is not an image reference"
            ));
            None
        }
        Err(e) => {
            exec.error(&format!("{action}: {e}"));
            None
        }
    }
}

pub(crate) fn trivy_action(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let scan_type = with.get_or("scan-type", "image");
    if !matches!(scan_type, "fs" | "repo" | "rootfs" | "sbom" | "image") {
        exec.error(&format!(
            "aquasecurity/trivy-action: scan-type '{scan_type}' is not supported; use image, fs, repo, rootfs or sbom"
        ));
        return StepRun::failed();
    }
    let image = if scan_type == "image" {
        let Some(reference) = with.get("image-ref") else {
            exec.error("aquasecurity/trivy-action: scan-type image needs image-ref");
            return StepRun::failed();
        };
        match read_image(exec, "aquasecurity/trivy-action", reference) {
            Some(x) => Some(x),
            None => return StepRun::failed(),
        }
    } else {
        None
    };
    let target = if image.is_some() {
        exec.workspace.clone()
    } else {
        resolve(exec, with.get_or("scan-ref", "."))
    };
    let mut o = gate::Options::new(target, exec.shared.cfg.store.home.clone(), today());
    // Images: vulnerabilities (secrets in images are not scanned yet).
    let default_scanners = if image.is_some() {
        "vuln"
    } else {
        "vuln,secret"
    };
    o.image = image;
    let scanners = list(with.get_or("scanners", default_scanners));
    if o.image.is_some() && scanners.iter().any(|s| s == "secret") {
        exec.error(
            "aquasecurity/trivy-action: scanners: secret is not supported for images yet; use vuln",
        );
        return StepRun::failed();
    }
    o.vuln = scanners.iter().any(|s| s == "vuln");
    o.secret = scanners.iter().any(|s| s == "secret");
    match list(with.get_or("severity", "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"))
        .iter()
        .map(|s| s.parse::<Level>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(levels) => o.severity = levels,
        Err(e) => {
            exec.error(&format!("aquasecurity/trivy-action: severity: {e}"));
            return StepRun::failed();
        }
    }
    o.ignore_unfixed = with.bool("ignore-unfixed", false);
    o.skip_dirs = list(with.get_or("skip-dirs", ""));
    o.ignorefiles = list(with.get_or("trivyignores", ""))
        .iter()
        .map(|p| resolve(exec, p))
        .collect();
    let exit_code: i32 = match with.get_or("exit-code", "0").trim().parse() {
        Ok(c) => c,
        Err(_) => {
            exec.error("aquasecurity/trivy-action: exit-code must be a number");
            return StepRun::failed();
        }
    };
    let format = match with.get_or("format", "table") {
        "table" => gate::Format::Table,
        "json" => gate::Format::Json,
        "sarif" => gate::Format::Sarif,
        // SBOM formats: trivy writes the inventory instead of a findings report.
        f @ ("cyclonedx" | "spdx-json") => return trivy_sbom(exec, with, f, o.image.take()),
        other => {
            exec.error(&format!(
                "aquasecurity/trivy-action: format '{other}' is not supported; use table, json, sarif, cyclonedx or spdx-json"
            ));
            return StepRun::failed();
        }
    };
    let out = match gate::run(&o) {
        Ok(x) => x,
        Err(e) => {
            exec.error(&format!("aquasecurity/trivy-action: {e}"));
            return StepRun::failed();
        }
    };
    for w in &out.warnings {
        exec.log(&format!("##[warning]{w}"));
    }
    let text = gate::render(&out.report, format, env!("CARGO_PKG_VERSION"));
    match with.get("output") {
        Some(p) => {
            let path = resolve(exec, p);
            if let Err(e) = std::fs::write(&path, &text) {
                exec.error(&format!(
                    "aquasecurity/trivy-action: {}: {e}",
                    path.display()
                ));
                return StepRun::failed();
            }
            exec.log(&format!("Report written to {}", path.display()));
        }
        None => exec.log(&text),
    }
    let (v, s) = (out.report.vulnerabilities.len(), out.report.secrets.len());
    exec.log(&format!(
        "{} packages scanned: {v} vulnerabilities, {s} secrets",
        out.packages
    ));
    for u in &out.unreadable {
        exec.error(&format!(
            "aquasecurity/trivy-action: {u}: not checked (a lockfile that cannot be read fails the gate)"
        ));
    }
    if out.fails(false) && exit_code != 0 {
        exec.error(&format!(
            "{v} vulnerabilities and {s} secrets at severity {}, {} file(s) not checked (exit code {exit_code})",
            o.severity
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(","),
            out.unreadable.len()
        ));
        return StepRun::failed();
    }
    StepRun::ok(IndexMap::new())
}

/// trivy-action with `format: cyclonedx` or `spdx-json`: an SBOM of `scan-ref`.
fn trivy_sbom(
    exec: &mut JobExec,
    with: &Inputs,
    format: &str,
    image: Option<(
        launchway_scan::sbom::Inventory,
        launchway_scan::image::ImageInfo,
    )>,
) -> StepRun {
    let fmt = if format == "cyclonedx" {
        gate::SbomFormat::CycloneDx(SpecVersion::V1_6)
    } else {
        gate::SbomFormat::Spdx
    };
    let target = resolve(exec, with.get_or("scan-ref", "."));
    let built = match image {
        Some((inv, info)) => Ok((
            launchway_scan::image::document(
                &inv,
                &info,
                fmt,
                &crate::store::now_rfc3339(),
                env!("CARGO_PKG_VERSION"),
            ),
            inv,
        )),
        None => gate::sbom(
            &target,
            fmt,
            &crate::store::now_rfc3339(),
            env!("CARGO_PKG_VERSION"),
            &Default::default(),
        ),
    };
    let doc = match built {
        Ok((doc, _)) => serde_json::to_string_pretty(&doc).unwrap_or_default(),
        Err(e) => {
            exec.error(&format!("aquasecurity/trivy-action: {e}"));
            return StepRun::failed();
        }
    };
    match with.get("output") {
        Some(p) => {
            let path = resolve(exec, p);
            if let Err(e) = std::fs::write(&path, doc) {
                exec.error(&format!(
                    "aquasecurity/trivy-action: {}: {e}",
                    path.display()
                ));
                return StepRun::failed();
            }
            exec.log(&format!("SBOM written to {}", path.display()));
        }
        None => exec.log(&doc),
    }
    StepRun::ok(IndexMap::new())
}

pub(crate) fn gitleaks_action(exec: &mut JobExec, step_env: &IndexMap<String, String>) -> StepRun {
    let mut vars = exec.env.clone();
    vars.extend(step_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env = |k: &str| vars.get(k).cloned();
    let root = exec.workspace.clone();
    let mut o = gate::Options::new(root.clone(), exec.shared.cfg.store.home.clone(), today());
    o.vuln = false;
    o.git = root.join(".git").exists();
    o.config = env("GITLEAKS_CONFIG")
        .filter(|c| !c.is_empty())
        .map(|c| resolve(exec, &c));
    let out = match gate::run(&o) {
        Ok(x) => x,
        Err(e) => {
            exec.error(&format!("gitleaks/gitleaks-action: {e}"));
            return StepRun::failed();
        }
    };
    exec.log(&format!(
        "Scanned {} for secrets",
        if o.git {
            "the git history"
        } else {
            "the workspace"
        }
    ));
    let leaks = &out.report.secrets;
    if leaks.is_empty() {
        exec.log("No leaks detected");
        return StepRun::ok(IndexMap::new());
    }
    for f in leaks {
        exec.log(&format!(
            "{}:{}:{} {} {}",
            f.file,
            f.line,
            f.column,
            f.rule_id,
            f.matched.lines().next().unwrap_or("")
        ));
    }
    if env("GITLEAKS_ENABLE_SUMMARY").is_none_or(|v| v != "false") {
        let mut md = String::from(
            "## 🛑 Gitleaks detected secrets 🛑\n\n| Rule ID | Commit | Secret URL | Start Line | Author | Date | Email | File |\n|---|---|---|---|---|---|---|---|\n",
        );
        for f in leaks {
            md.push_str(&format!(
                "| {} | {} | | {} | {} | {} | {} | {} |\n",
                f.rule_id,
                f.commit.as_deref().map_or("", |c| &c[..c.len().min(7)]),
                f.line,
                f.author.clone().unwrap_or_default(),
                f.date.clone().unwrap_or_default(),
                f.email.clone().unwrap_or_default(),
                f.file
            ));
        }
        let masked = exec.shared.masker.mask(&md);
        exec.summary.push_str(&masked);
    }
    if env("GITLEAKS_ENABLE_UPLOAD_ARTIFACT").is_none_or(|v| v != "false") {
        let path = exec.temp.join("results.sarif");
        let sarif = gate::render(&out.report, gate::Format::Sarif, env!("CARGO_PKG_VERSION"));
        if std::fs::write(&path, sarif).is_ok()
            && store_artifact(exec, "gitleaks-results.sarif", &path).is_err()
        {
            exec.log("##[warning]could not store the SARIF artifact");
        }
    }
    exec.error(&format!(
        "🛑 Leaks detected, see job summary for details ({} finding{})",
        leaks.len(),
        if leaks.len() == 1 { "" } else { "s" }
    ));
    StepRun::failed()
}
