//! Images written in every shape a target can name, read back, merged.

use launchway_oci::layout::{self, Compression, Entry, LayerSpec};
use launchway_oci::source::{self, Options};
use launchway_oci::{OciError, Platform, Target, merge};
use std::collections::BTreeMap;

fn layers() -> Vec<LayerSpec> {
    vec![
        LayerSpec {
            compression: Compression::Gzip,
            entries: vec![
                Entry::Dir { path: "etc".into() },
                Entry::Symlink {
                    path: "etc/os-release".into(),
                    target: "../usr/lib/os-release".into(),
                },
                Entry::file("usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
                Entry::file("app/a.txt", "one"),
                Entry::file("app/b.txt", "two"),
                Entry::file("opt/x/keep", "lower"),
                Entry::file("gone/deep/file", "x"),
            ],
        },
        LayerSpec {
            compression: Compression::None,
            entries: vec![
                Entry::whiteout("app/a.txt"),
                Entry::file("app/c.txt", "three"),
                Entry::opaque("opt/x"),
                Entry::file("opt/x/new", "upper"),
                Entry::whiteout("gone"),
                Entry::HardLink {
                    path: "app/c-link.txt".into(),
                    target: "app/c.txt".into(),
                },
            ],
        },
        LayerSpec {
            compression: Compression::Zstd,
            entries: vec![Entry::file("app/b.txt", "two, again")],
        },
    ]
}

fn files(target: &Target) -> BTreeMap<String, (usize, String)> {
    let img = source::open(target, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let merged = merge(
        &img,
        |_| true,
        |_, b| Some(String::from_utf8_lossy(&b).into_owned()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut out: BTreeMap<String, (usize, String)> = merged
        .files
        .iter()
        .map(|(k, e)| (k.clone(), (e.layer, e.value.clone())))
        .collect();
    // The symbolic link resolves to the file it names.
    if let Some((path, e)) = merged.resolve("etc/os-release") {
        out.insert(format!("-> {path}"), (e.layer, e.value.clone()));
    }
    out
}

fn expected() -> BTreeMap<String, (usize, String)> {
    [
        ("app/b.txt", 2, "two, again"),
        ("app/c.txt", 1, "three"),
        ("app/c-link.txt", 1, "three"),
        ("opt/x/new", 1, "upper"),
        ("usr/lib/os-release", 0, "ID=debian\nVERSION_ID=\"12\"\n"),
        ("-> usr/lib/os-release", 0, "ID=debian\nVERSION_ID=\"12\"\n"),
    ]
    .into_iter()
    .map(|(p, l, t)| (p.to_string(), (l, t.to_string())))
    .collect()
}

#[test]
fn layers_merge_with_their_whiteouts_in_every_container_format() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("layout");
    let w = layout::write_oci_dir(&dir, &layers(), &Platform::host(), Some("app:1"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files(&Target::OciDir(dir.clone())), expected());
    let archive = tmp.path().join("image.tar");
    layout::tar_dir(&dir, &archive).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files(&Target::OciArchive(archive.clone())), expected());
    let img = source::open(&Target::OciArchive(archive), &Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        img.manifest_digest.as_deref(),
        Some(w.manifest_digest.as_str())
    );
    assert_eq!(img.tags, ["app:1"]);
    let docker = tmp.path().join("docker.tar");
    let entries: Vec<Vec<Entry>> = layers().into_iter().map(|l| l.entries).collect();
    layout::write_docker_archive(&docker, &entries, &Platform::host(), "app:1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files(&Target::DockerArchive(docker.clone())), expected());
    // Each format named for what it is not: a clear error.
    let e = source::open(&Target::OciArchive(docker), &Options::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("use docker-archive:"), "{e}");
}

#[test]
fn a_tampered_layer_is_refused() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("layout");
    let w = layout::write_oci_dir(&dir, &layers(), &Platform::host(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    // Same length, one byte changed: only the digest can tell.
    let blob = dir
        .join("blobs/sha256")
        .join(w.layers[1].trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap_or_default();
    let i = bytes.iter().position(|b| *b == b't').unwrap_or(0);
    bytes[i] = b'T';
    std::fs::write(&blob, bytes).unwrap_or_else(|e| panic!("{e}"));
    let img =
        source::open(&Target::OciDir(dir), &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let r = merge(&img, |_| true, |_, b| Some(b));
    assert!(matches!(r, Err(OciError::Digest { .. })), "{r:?}");
}

#[test]
fn a_missing_or_foreign_layout_says_what_it_is() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = source::open(
        &Target::OciDir(tmp.path().to_path_buf()),
        &Options::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("not an OCI layout"), "{e}");
    let e = source::open(
        &Target::OciArchive(tmp.path().join("nope.tar")),
        &Options::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("nope.tar"), "{e}");
}

#[test]
fn a_multi_platform_image_resolves_to_the_asked_platform() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("multi");
    let image = |arch: &str| LayerSpec {
        compression: Compression::Gzip,
        entries: vec![Entry::file("arch.txt", arch)],
    };
    let amd = Platform::parse("linux/amd64").unwrap_or_default();
    let arm = Platform::parse("linux/arm64/v8").unwrap_or_default();
    layout::write_oci_multi(
        &dir,
        &[
            (amd.clone(), vec![image("amd64")]),
            (arm, vec![image("arm64")]),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let arch_of = |p: Option<&str>| -> Result<String, String> {
        let opts = Options {
            platform: p.map(|p| Platform::parse(p).unwrap_or_default()),
            ..Options::default()
        };
        let img = source::open(&Target::OciDir(dir.clone()), &opts).map_err(|e| e.to_string())?;
        let merged = merge(
            &img,
            |_| true,
            |_, b| Some(String::from_utf8_lossy(&b).into_owned()),
        )
        .map_err(|e| e.to_string())?;
        Ok(merged
            .files
            .get("arch.txt")
            .map(|e| e.value.clone())
            .unwrap_or_default())
    };
    assert_eq!(arch_of(Some("linux/arm64")).as_deref(), Ok("arm64"));
    assert_eq!(arch_of(Some("linux/amd64")).as_deref(), Ok("amd64"));
    let e = arch_of(Some("linux/s390x")).err().unwrap_or_default();
    assert!(
        e.contains("linux/amd64, linux/arm64/v8") && e.contains("--platform"),
        "{e}"
    );
}
