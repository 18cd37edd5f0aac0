//! The docker actions, native: `docker/login-action`,
//! `docker/setup-buildx-action`, `docker/setup-qemu-action`,
//! `docker/metadata-action` and `docker/build-push-action`, with the
//! actions' inputs and outputs. Images are built by a daemonless builder
//! found on the machine (podman, else buildah; docker when that is what
//! there is), as a step process of the job — a Dockerfile's `RUN` is
//! workflow code and runs where steps run.
//!
//! Registries: `.launchway/registries.yaml` maps a registry to another:
//! pushes go there (the built image is exported as an archive and pushed
//! by Launchway's own registry client, over rustls or loopback HTTP), and
//! pulls of `FROM` images through a generated `registries.conf`. Credentials from a login live in a 0600
//! auth file in the job's temp directory, removed by the login's post
//! step (`logout: true`) and with the temp directory at the job's end;
//! the password is masked everywhere.

use super::Inputs;
use super::docker_meta;
use crate::job::{JobExec, PostKind, PostStep, StepRun};
use indexmap::IndexMap;
use launchway_oci::auth::{Credentials, auth_file_text, on_path};
use launchway_oci::mirrors::Registries;
use launchway_oci::{Platform, Reference};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The registry credentials of a job, from its login steps.
#[derive(Debug, Default, Clone)]
pub(crate) struct Logins {
    pub by_host: std::collections::BTreeMap<String, Credentials>,
}

/// The builder this machine has.
fn builder() -> Option<&'static str> {
    ["podman", "buildah", "docker"]
        .into_iter()
        .find(|t| on_path(t))
}

fn no_builder(action: &str) -> String {
    format!(
        "{action}: no image builder on this machine: install podman or buildah (Debian packages 'podman', 'buildah'), or docker"
    )
}

/// The job's registry settings: mirrors and the logins of its steps.
pub(crate) fn registries(exec: &mut JobExec, action: &str) -> Option<Registries> {
    match Registries::load(&exec.shared.cfg.source.dir) {
        Ok(mut r) => {
            r.credentials = exec
                .registry_logins
                .by_host
                .iter()
                .map(|(h, c)| (h.clone(), c.clone()))
                .collect();
            Some(r)
        }
        Err(e) => {
            exec.error(&format!("{action}: {e}"));
            None
        }
    }
}

/// The job's private directory for registry settings (0700).
fn private_dir(exec: &JobExec) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = exec.temp.join("registry");
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    Ok(dir)
}

/// Writes the auth file (0600) for the builder: every login, under the
/// registry's name and its mirror's.
fn write_auth(exec: &JobExec, regs: &Registries) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = private_dir(exec)?;
    let mut entries = Vec::new();
    for (host, c) in &exec.registry_logins.by_host {
        entries.push((host.clone(), c.clone()));
        let routed = regs.route(host).host;
        if routed != *host {
            entries.push((routed, c.clone()));
        }
    }
    let path = dir.join("config.json");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(auth_file_text(&entries).as_bytes())?;
    Ok(path)
}

/// `registries.conf` sending pulls of a mapped registry to its mirror.
fn write_registries_conf(exec: &JobExec, regs: &Registries) -> std::io::Result<PathBuf> {
    let path = private_dir(exec)?.join("registries.conf");
    std::fs::write(&path, regs.registries_conf())?;
    Ok(path)
}

pub(crate) fn login(exec: &mut JobExec, with: &Inputs) -> StepRun {
    const A: &str = "docker/login-action";
    let registry = with.get_or("registry", "docker.io").trim().to_string();
    let registry = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (Some(username), Some(password)) = (with.get("username"), with.get("password")) else {
        exec.error(&format!("{A}: username and password are required"));
        return StepRun::failed();
    };
    // Masked before anything can print it.
    exec.shared.masker.add(password);
    let creds = Credentials {
        username: username.to_string(),
        password: password.to_string(),
    };
    let Some(regs) = registries(exec, A) else {
        return StepRun::failed();
    };
    let route = regs.route(&registry);
    if route.host != registry {
        exec.log(&format!(
            "{registry} is mapped to {} by .launchway/registries.yaml",
            route.host
        ));
    }
    if let Err(e) = launchway_oci::registry::Registry::new(&regs).check_login(&registry, &creds) {
        exec.error(&format!("{A}: {e}"));
        return StepRun::failed();
    }
    exec.registry_logins.by_host.insert(registry.clone(), creds);
    let regs = registries(exec, A).unwrap_or_default();
    match write_auth(exec, &regs) {
        Ok(path) => {
            if with.bool("logout", true) {
                exec.post.push(PostStep {
                    inputs: None,
                    name: format!("{A} (logout)"),
                    kind: PostKind::Logout {
                        registry: registry.clone(),
                        auth_file: path,
                    },
                    condition: "always()".into(),
                });
            }
        }
        Err(e) => {
            exec.error(&format!("{A}: writing the auth file: {e}"));
            return StepRun::failed();
        }
    }
    exec.log(&format!("Login Succeeded ({registry})"));
    StepRun::ok(IndexMap::new())
}

/// The login's post step: the credentials leave the job.
pub(crate) fn logout(exec: &mut JobExec, registry: &str, auth_file: &Path) -> StepRun {
    exec.registry_logins.by_host.remove(registry);
    let regs = registries(exec, "docker/login-action").unwrap_or_default();
    let result = if exec.registry_logins.by_host.is_empty() {
        std::fs::remove_file(auth_file).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
    } else {
        write_auth(exec, &regs).map(|_| ())
    };
    match result {
        Ok(()) => {
            exec.log(&format!("Removed login credentials for {registry}"));
            StepRun::ok(IndexMap::new())
        }
        Err(e) => {
            exec.error(&format!("docker/login-action: logout: {e}"));
            StepRun::failed()
        }
    }
}

pub(crate) fn setup_buildx(exec: &mut JobExec) -> StepRun {
    let Some(b) = builder() else {
        exec.error(&no_builder("docker/setup-buildx-action"));
        return StepRun::failed();
    };
    let platform = Platform::host().to_string();
    exec.log(&format!(
        "Launchway builds images with {b}, without a BuildKit daemon: nothing to set up"
    ));
    let outputs: IndexMap<String, String> = [
        ("name", "launchway"),
        ("driver", b),
        ("platforms", platform.as_str()),
        ("nodes", "[]"),
        ("endpoint", ""),
        ("status", "running"),
        ("flags", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    StepRun::ok(outputs)
}

pub(crate) fn setup_qemu(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let host = Platform::host().to_string();
    let wanted = with.get_or("platforms", "all");
    if wanted != "all"
        && wanted
            .split(',')
            .map(str::trim)
            .any(|p| !p.is_empty() && Platform::parse(p).is_ok_and(|p| p.to_string() != host))
    {
        exec.log(&format!(
            "##[warning]docker/setup-qemu-action: emulating {wanted} is not available; images build for {host}"
        ));
    } else {
        exec.log(&format!(
            "No emulation needed: images build for this machine's platform ({host})"
        ));
    }
    StepRun::ok([("platforms".to_string(), host)].into_iter().collect())
}

/// A multi-value input: comma- or newline-separated (the actions' rule).
fn values(with: &Inputs, k: &str) -> Vec<String> {
    with.get(k)
        .map(|v| {
            v.split(['\n', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn metadata(exec: &mut JobExec, with: &Inputs) -> StepRun {
    const A: &str = "docker/metadata-action";
    let images = values(with, "images");
    if images.is_empty() {
        exec.error(&format!("{A}: images is required"));
        return StepRun::failed();
    }
    let g = exec.ctx.contexts.get("github").cloned().unwrap_or_default();
    let s = |k: &str| g.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let pr_number = match g.get("event").and_then(|e| e.get("number")) {
        Some(launchway_expr::Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(*n as u64)
        }
        _ => None,
    };
    let ctx = docker_meta::Context {
        event_name: s("event_name"),
        git_ref: s("ref"),
        sha: s("sha"),
        repository: s("repository"),
        server_url: s("server_url"),
        created: crate::store::now_rfc3339(),
        pr_number,
    };
    let meta = match docker_meta::compute(
        &images,
        &with.lines("tags"),
        &with.lines("flavor"),
        &with.lines("labels"),
        &ctx,
    ) {
        Ok(m) => m,
        Err(e) => {
            exec.error(&format!("{A}: {e}"));
            return StepRun::failed();
        }
    };
    exec.log(&format!("Version: {}", meta.version));
    for t in &meta.tags {
        exec.log(&format!("Tag: {t}"));
    }
    let sep_tags = with.get_or("sep-tags", "\n").to_string();
    let sep_labels = with.get_or("sep-labels", "\n").to_string();
    let labels: Vec<String> = meta
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut outputs = IndexMap::new();
    outputs.insert("version".into(), meta.version.clone());
    outputs.insert("tags".into(), meta.tags.join(&sep_tags));
    outputs.insert("labels".into(), labels.join(&sep_labels));
    outputs.insert("json".into(), meta.json().to_string());
    outputs.insert("annotations".into(), String::new());
    outputs.insert("bake-file".into(), String::new());
    StepRun::ok(outputs)
}

pub(crate) async fn build_push(
    exec: &mut JobExec,
    with: &Inputs,
    step_env: &IndexMap<String, String>,
    timeout: Option<Duration>,
) -> StepRun {
    const A: &str = "docker/build-push-action";
    let Some(tool) = builder() else {
        exec.error(&no_builder(A));
        return StepRun::failed();
    };
    for unsupported in [
        "platforms",
        "cache-from",
        "cache-to",
        "secrets",
        "ssh",
        "outputs",
    ] {
        if let Some(v) = with.get(unsupported)
            && !(unsupported == "platforms"
                && Platform::parse(v.trim()).is_ok_and(|p| p == Platform::host()))
        {
            exec.error(&format!(
                "{A}: '{unsupported}' is not supported by Launchway's builder (it builds for {} with {tool})",
                Platform::host()
            ));
            return StepRun::failed();
        }
    }
    let Some(regs) = registries(exec, A) else {
        return StepRun::failed();
    };
    let context = exec.workspace.join(with.get_or("context", "."));
    let file = match with.get("file") {
        Some(f) => exec.workspace.join(f),
        None => context.join("Dockerfile"),
    };
    if !file.is_file() {
        exec.error(&format!("{A}: {} does not exist", file.display()));
        return StepRun::failed();
    }
    let tags = values(with, "tags");
    let mut refs = Vec::new();
    for t in &tags {
        match Reference::parse(t) {
            Ok(r) => refs.push(r),
            Err(e) => {
                exec.error(&format!("{A}: tags: {e}"));
                return StepRun::failed();
            }
        }
    }
    let push = with.bool("push", false);
    if push && refs.is_empty() {
        exec.error(&format!("{A}: push needs at least one tag"));
        return StepRun::failed();
    }
    let (auth, conf) = match (write_auth(exec, &regs), write_registries_conf(exec, &regs)) {
        (Ok(a), Ok(c)) => (a, c),
        (Err(e), _) | (_, Err(e)) => {
            exec.error(&format!("{A}: {e}"));
            return StepRun::failed();
        }
    };
    let mut env = step_env.clone();
    env.insert("REGISTRY_AUTH_FILE".into(), auth.to_string_lossy().into());
    env.insert(
        "CONTAINERS_REGISTRIES_CONF".into(),
        conf.to_string_lossy().into(),
    );
    if let Some(dir) = auth.parent() {
        env.insert("DOCKER_CONFIG".into(), dir.to_string_lossy().into());
    }
    let iidfile = exec.temp.join("registry").join("iid");
    let _ = std::fs::remove_file(&iidfile);
    let mut argv: Vec<String> = vec![tool.into()];
    argv.push(if tool == "buildah" { "bud" } else { "build" }.into());
    argv.push("--iidfile".into());
    argv.push(iidfile.to_string_lossy().into());
    argv.push("-f".into());
    argv.push(file.to_string_lossy().into());
    for r in &refs {
        argv.push("-t".into());
        argv.push(r.to_string());
    }
    for l in with.lines("labels") {
        argv.push("--label".into());
        argv.push(l);
    }
    for b in with.lines("build-args") {
        argv.push("--build-arg".into());
        argv.push(b);
    }
    if let Some(t) = with.get("target") {
        argv.push("--target".into());
        argv.push(t.to_string());
    }
    if with.bool("no-cache", false) {
        argv.push("--no-cache".into());
    }
    if with.bool("pull", false) {
        argv.push("--pull".into());
    }
    argv.push(context.to_string_lossy().into());
    let cwd = exec.workspace.clone();
    let built = exec.exec(&argv, &cwd, &env, timeout, "").await;
    if built.failed || built.cancelled {
        if !built.cancelled {
            exec.error(&format!("{A}: the build failed ({tool})"));
        }
        return built;
    }
    let image_id = std::fs::read_to_string(&iidfile)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let image_id = if image_id.is_empty() || image_id.starts_with("sha256:") {
        image_id
    } else {
        format!("sha256:{image_id}")
    };
    let mut digest = String::new();
    if push {
        // The image leaves the builder as an archive and is pushed by
        // Launchway's registry client (rustls; mirrors and the job's logins).
        let archive = exec.temp.join("registry").join("image.tar");
        let _ = std::fs::remove_file(&archive);
        let (save, target): (Vec<String>, launchway_oci::Target) = match tool {
            "podman" => (
                vec![
                    tool.into(),
                    "save".into(),
                    "--format".into(),
                    "oci-archive".into(),
                    "-o".into(),
                    archive.to_string_lossy().into(),
                    image_id.clone(),
                ],
                launchway_oci::Target::OciArchive(archive.clone()),
            ),
            "buildah" => (
                vec![
                    tool.into(),
                    "push".into(),
                    image_id.clone(),
                    format!("oci-archive:{}", archive.display()),
                ],
                launchway_oci::Target::OciArchive(archive.clone()),
            ),
            _ => (
                vec![
                    tool.into(),
                    "save".into(),
                    "-o".into(),
                    archive.to_string_lossy().into(),
                    image_id.clone(),
                ],
                launchway_oci::Target::DockerArchive(archive.clone()),
            ),
        };
        let saved = exec.exec(&save, &cwd, &env, timeout, "").await;
        if saved.failed || saved.cancelled {
            if !saved.cancelled {
                exec.error(&format!("{A}: exporting the image from {tool} failed"));
            }
            return saved;
        }
        let image = match launchway_oci::source::open(&target, &Default::default()) {
            Ok(i) => i,
            Err(e) => {
                exec.error(&format!("{A}: {e}"));
                return StepRun::failed();
            }
        };
        let client = launchway_oci::registry::Registry::new(&regs);
        for r in &refs {
            let route = regs.route(&r.registry);
            if route.host != r.registry {
                exec.log(&format!(
                    "{r} → {} (.launchway/registries.yaml)",
                    route.host
                ));
            }
            match client.push(&image, r) {
                Ok(d) => {
                    exec.log(&format!("Pushed {r} ({d})"));
                    digest = d;
                }
                Err(e) => {
                    exec.error(&format!("{A}: pushing {r}: {e}"));
                    return StepRun::failed();
                }
            }
        }
        let _ = std::fs::remove_file(&archive);
        exec.log(&format!("Pushed {} tag(s), digest {digest}", refs.len()));
    }
    let metadata = serde_json::json!({
        "containerimage.config.digest": image_id,
        "containerimage.digest": digest,
        "image.name": tags.join(","),
    });
    let mut outputs = IndexMap::new();
    outputs.insert("imageid".into(), image_id);
    outputs.insert("digest".into(), digest);
    outputs.insert("metadata".into(), metadata.to_string());
    StepRun::ok(outputs)
}

/// Where a plain image reference (`anchore/sbom-action`'s `image:`,
/// `trivy-action`'s `image-ref`) is read from: a target as written, the
/// local containers storage when the builder has the image, else the
/// registry.
pub(crate) fn image_target(reference: &str) -> String {
    if launchway_oci::Target::parse(reference).is_some() {
        return reference.to_string();
    }
    let local = ["podman", "buildah"]
        .into_iter()
        .filter(|t| on_path(t))
        .any(|t| {
            let args: &[&str] = if t == "podman" {
                &["image", "exists", reference]
            } else {
                &["inspect", "--type", "image", reference]
            };
            std::process::Command::new(t)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if local {
        format!("containers-storage:{reference}")
    } else {
        format!("registry:{reference}")
    }
}
