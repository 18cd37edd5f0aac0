//! SBOM end to end on hand-written fixtures in every supported format:
//! what is found, snapshots of both writers, and the official validators.

#![allow(clippy::unwrap_used)]

use launchway_scan::sbom::{collect, cyclonedx, spdx};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom")
}

const TS: &str = "2026-01-01T00:00:00Z";

#[test]
fn finds_every_format_and_reports_broken_files() {
    let inv = collect::inventory(&fixtures());
    let purls: Vec<&str> = inv.components.iter().map(|c| c.purl.as_str()).collect();
    for want in [
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/urllib3@1.26.18",
        "pkg:pypi/numpy@1.26.4",
        "pkg:pypi/idna@3.4",
        "pkg:pypi/pytest@7.4.0",
        "pkg:pypi/certifi@2023.7.22",
        "pkg:pypi/charset-normalizer@3.2.0",
        "pkg:pypi/scikit-learn@1.3.2",
        "pkg:pypi/joblib@1.3.2",
        "pkg:pypi/anyio@4.0.0",
        "pkg:pypi/sniffio@1.3.0",
        "pkg:cargo/smallvec@1.11.0",
        "pkg:npm/express@4.18.2",
        "pkg:npm/debug@2.6.9",
        "pkg:npm/%40types/node@20.8.0",
        "pkg:npm/lodash@4.17.21",
        "pkg:npm/left-pad@1.3.0",
        "pkg:npm/react@18.2.0",
        "pkg:npm/loose-envify@1.4.0",
        "pkg:golang/github.com/gorilla/mux@v1.8.0",
        "pkg:golang/golang.org/x/net@v0.17.0",
        "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64",
        "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64",
        "pkg:npm/ms@2.1.3",
        "pkg:npm/%40scope/util@0.4.0",
    ] {
        assert!(purls.contains(&want), "missing {want}; found {purls:#?}");
    }
    // The projects themselves are listed as local components.
    let project = inv
        .components
        .iter()
        .find(|c| c.name == "churn-service")
        .unwrap();
    assert!(project.local);
    assert!(
        inv.components
            .iter()
            .find(|c| c.name == "app")
            .unwrap()
            .local,
        "the Cargo workspace member"
    );
    // Not: the yarn workspace, unpinned requirements, gitignored files.
    for absent in ["site", "flask", "secret-internal-package"] {
        assert!(
            !inv.components.iter().any(|c| c.name == absent),
            "{absent} should not be listed"
        );
    }
    // requests is found twice (requirements and the installed dist-info) and merged.
    let requests = inv
        .components
        .iter()
        .find(|c| c.name == "requests")
        .unwrap();
    assert_eq!(requests.locations.len(), 2);
    assert_eq!(requests.licenses, ["Apache-2.0"]);
    let sklearn = inv
        .components
        .iter()
        .find(|c| c.name == "scikit-learn")
        .unwrap();
    assert_eq!(sklearn.dependencies, ["pkg:pypi/joblib@1.3.2"]);
    assert_eq!(sklearn.hashes.len(), 2);
    // The broken lockfile is reported with its position; the rest is still read.
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert_eq!(inv.errors[0].file, "broken/poetry.lock");
    assert_eq!(inv.errors[0].line, Some(5));
}

#[test]
fn installed_files_come_from_record_with_digests_of_what_is_on_disk() {
    let root = fixtures().join("venv");
    let opts = collect::Options {
        respect_ignore: true,
        files: true,
    };
    let inv = collect::inventory_opts(&root, &opts);
    let requests = inv
        .components
        .iter()
        .find(|c| c.name == "requests")
        .unwrap();
    let paths: Vec<&str> = requests.files.iter().map(|f| f.path.as_str()).collect();
    // Missing files (.pyc) and paths leaving the tree are dropped.
    assert_eq!(
        paths,
        [
            "bin/requests-fixture",
            "lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
            "lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD",
            "lib/python3.11/site-packages/requests/__init__.py",
            "lib/python3.11/site-packages/requests/api.py",
        ]
    );
    for f in &requests.files {
        let algs: Vec<&str> = f.digests.iter().map(|h| h.alg.as_str()).collect();
        assert_eq!(algs, ["SHA-1", "SHA-256"], "{}", f.path);
        let bytes = std::fs::read(root.join(&f.path)).unwrap();
        assert_eq!(f.size, Some(bytes.len() as u64));
    }
    let init = &requests.files[3];
    assert_eq!(
        init.digests[1].value,
        "2db65e5ceabe871392db29b07999bc940a9c0d27c0a32064d12387b20d009bb0"
    );
    // api.py was edited after installation: its RECORD digest no longer matches.
    assert_eq!(inv.notices.len(), 1, "{:?}", inv.notices);
    assert_eq!(
        inv.notices[0].file,
        "lib/python3.11/site-packages/requests/api.py"
    );
    assert!(
        inv.notices[0]
            .message
            .contains("changed after installation")
    );
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    // Without --files the RECORD is not read at all.
    let plain = collect::inventory(&root);
    assert!(plain.components.iter().all(|c| c.files.is_empty()));
    assert!(!plain.files.iter().any(|f| f.ends_with("RECORD")));
}

#[test]
fn cyclonedx_snapshot() {
    let inv = collect::inventory(&fixtures());
    let doc = cyclonedx::write(&inv, "fixtures", TS, "0.0.0", cyclonedx::SpecVersion::V1_6);
    insta::assert_json_snapshot!(doc);
}

#[test]
fn spdx_snapshot() {
    let inv = collect::inventory(&fixtures());
    insta::assert_json_snapshot!(spdx::write(&inv, "fixtures", TS, "0.0.0"));
}

#[test]
fn output_is_deterministic() {
    let a = cyclonedx::write(
        &collect::inventory(&fixtures()),
        "x",
        TS,
        "0",
        cyclonedx::SpecVersion::V1_6,
    );
    let b = cyclonedx::write(
        &collect::inventory(&fixtures()),
        "x",
        TS,
        "0",
        cyclonedx::SpecVersion::V1_6,
    );
    assert_eq!(a, b);
}

/// A virtualenv with the official validators, made once per target dir
/// (the tests of this file that need it run on parallel threads: one
/// makes it, the others wait).
fn validators() -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbom-validators");
    let py = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 -m venv failed");
        let out = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "spdx-tools",
                "cyclonedx-python-lib[json-validation]",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing the validators failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&ready, "").unwrap();
    }
    venv
}

/// The CycloneDX document at `path` passes the official strict validator
/// for spec `label` ("1.6", "1.5").
fn assert_valid_cyclonedx(venv: &Path, path: &Path, label: &str) {
    let script = format!(
        "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
         e = JsonStrictValidator(SchemaVersion.V{}).validate_str(open(sys.argv[1]).read())\n\
         print(repr(e)) if e else None\nsys.exit(1 if e else 0)\n",
        label.replace('.', "_")
    );
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", &script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CycloneDX {label}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SPDX document at `path` passes the official tools.
fn assert_valid_spdx(venv: &Path, path: &Path) {
    let out = Command::new(venv.join("bin/pyspdxtools"))
        .arg("--infile")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("ERROR") && !text.contains("issues"),
        "SPDX validation:\n{text}"
    );
}

#[test]
fn documents_pass_the_official_validators() {
    let venv = validators();
    let tmp = tempfile::tempdir().unwrap();
    // With owned files, so SPDX `files` and CycloneDX file components are checked too.
    let inv = collect::inventory_opts(
        &fixtures(),
        &collect::Options {
            respect_ignore: true,
            files: true,
        },
    );
    assert!(inv.components.iter().any(|c| !c.files.is_empty()));
    let spdx_path = tmp.path().join("bom.spdx.json");
    std::fs::write(
        &spdx_path,
        serde_json::to_string_pretty(&spdx::write(&inv, "fixtures", TS, "0.0.0")).unwrap(),
    )
    .unwrap();
    assert_valid_spdx(&venv, &spdx_path);
    for (spec, label) in [
        (cyclonedx::SpecVersion::V1_6, "1.6"),
        (cyclonedx::SpecVersion::V1_5, "1.5"),
    ] {
        let path = tmp.path().join(format!("bom-{label}.cdx.json"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&cyclonedx::write(&inv, "fixtures", TS, "0.0.0", spec))
                .unwrap(),
        )
        .unwrap();
        assert_valid_cyclonedx(&venv, &path, label);
    }
}

/// Issue 17.6, shaped like the real files: a uv.lock that locks numpy at
/// two versions (one per Python marker) keeps both edges from torch; a
/// package-lock.json with an SRI value of the wrong length loses that
/// digest with a notice instead of writing an invalid document; every
/// `dependsOn` is unique. Both documents pass the official validators.
#[test]
fn real_lockfile_shapes_make_valid_documents() {
    let shapes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shapes");
    let inv = collect::inventory(&shapes);
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    let torch = inv.components.iter().find(|c| c.name == "torch").unwrap();
    assert_eq!(
        torch.dependencies,
        [
            "pkg:pypi/filelock@3.18.0",
            "pkg:pypi/numpy@2.0.2",
            "pkg:pypi/numpy@2.2.6"
        ]
    );
    let pad = inv
        .components
        .iter()
        .find(|c| c.name == "left-pad")
        .unwrap();
    assert!(pad.hashes.is_empty(), "{:?}", pad.hashes);
    let ms = inv.components.iter().find(|c| c.name == "ms").unwrap();
    assert_eq!(ms.hashes.len(), 1);
    assert!(
        inv.notices.iter().any(|n| n
            .message
            .contains("left-pad@1.3.0: a SHA-512 digest of 170 hex digits is malformed")),
        "{:?}",
        inv.notices
    );
    let doc = cyclonedx::write(&inv, "shapes", TS, "0.0.0", cyclonedx::SpecVersion::V1_6);
    for d in doc["dependencies"].as_array().unwrap() {
        let on: Vec<&Value> = d["dependsOn"].as_array().unwrap().iter().collect();
        let mut unique = on.clone();
        unique.sort_by_key(|v| v.to_string());
        unique.dedup();
        assert_eq!(on.len(), unique.len(), "{d}");
    }
    let venv = validators();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bom.cdx.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    assert_valid_cyclonedx(&venv, &path, "1.6");
    let spdx_path = tmp.path().join("bom.spdx.json");
    std::fs::write(
        &spdx_path,
        serde_json::to_string_pretty(&spdx::write(&inv, "shapes", TS, "0.0.0")).unwrap(),
    )
    .unwrap();
    assert_valid_spdx(&venv, &spdx_path);
}

/// Issue 17.10: a module listed only in go.sum (the module graph, not the
/// build) is no component when a go.mod sits next to it; a module both
/// list keeps both locations.
#[test]
fn go_sum_alone_adds_no_module_next_to_a_go_mod() {
    let inv = collect::inventory(&fixtures().join("go"));
    let names: Vec<&str> = inv.components.iter().map(|c| c.name.as_str()).collect();
    assert!(!names.contains(&"github.com/stretchr/testify"), "{names:?}");
    let mux = inv
        .components
        .iter()
        .find(|c| c.name == "github.com/gorilla/mux")
        .unwrap();
    assert_eq!(mux.locations, ["go.mod", "go.sum"]);
    // Alone, a go.sum is all there is to go on.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("go/go.sum"), tmp.path().join("go.sum")).unwrap();
    let alone = collect::inventory(tmp.path());
    assert!(
        alone
            .components
            .iter()
            .any(|c| c.name == "github.com/stretchr/testify")
    );
}

/// Issue 14: the documents of an image (a container subject with its
/// digest, OS packages with their distribution and layer) pass the
/// official validators.
#[test]
fn image_documents_pass_the_official_validators() {
    use launchway_oci::layout::{Compression, Entry, LayerSpec, write_oci_dir};
    let venv = validators();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    write_oci_dir(
        &dir,
        &[LayerSpec {
            compression: Compression::Gzip,
            entries: vec![
                Entry::file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
                Entry::file(
                    "var/lib/dpkg/status",
                    "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n",
                ),
                Entry::file(
                    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
                ),
            ],
        }],
        &launchway_oci::Platform::host(),
        Some("ghcr.io/org/app:1"),
    )
    .unwrap();
    let img = launchway_oci::source::open(
        &launchway_oci::Target::OciDir(dir),
        &launchway_oci::source::Options::default(),
    )
    .unwrap();
    let (inv, info) = launchway_scan::image::inventory(&img).unwrap();
    assert_eq!(inv.components.len(), 2);
    let mut s = spdx::write(&inv, &info.name(), TS, "0.0.0");
    launchway_scan::image::describe_spdx(&mut s, &inv, &info);
    assert_eq!(s["packages"][0]["primaryPackagePurpose"], "CONTAINER");
    assert!(
        s["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["primaryPackagePurpose"] == "OPERATING-SYSTEM" && p["name"] == "debian"),
        "{s}"
    );
    let spdx_path = tmp.path().join("image.spdx.json");
    std::fs::write(&spdx_path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    assert_valid_spdx(&venv, &spdx_path);
    for (spec, label) in [
        (cyclonedx::SpecVersion::V1_6, "1.6"),
        (cyclonedx::SpecVersion::V1_5, "1.5"),
    ] {
        let mut d = cyclonedx::write(&inv, &info.name(), TS, "0.0.0", spec);
        launchway_scan::image::describe_cyclonedx(&mut d, &inv, &info);
        assert_eq!(d["metadata"]["component"]["type"], "container");
        assert_eq!(d["components"][0]["type"], "operating-system");
        assert_eq!(d["components"][0]["version"], "12");
        assert!(
            d["metadata"]["component"]["purl"]
                .as_str()
                .unwrap()
                .starts_with("pkg:oci/app@sha256%3A"),
            "{}",
            d["metadata"]["component"]["purl"]
        );
        let path = tmp.path().join(format!("image-{label}.cdx.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&d).unwrap()).unwrap();
        assert_valid_cyclonedx(&venv, &path, label);
    }
}
