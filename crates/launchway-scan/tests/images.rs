//! Container images through the gate: built here as OCI layouts (Debian,
//! Alpine, Ubuntu shapes), inventoried layer by layer, matched against
//! hand-written OSV advisories of each distribution's releases.

#![allow(clippy::unwrap_used)]

use launchway_oci::layout::{self, Compression, Entry, LayerSpec};
use launchway_oci::{Platform, Target, source};
use launchway_scan::gate;
use launchway_scan::image;
use launchway_scan::osv::db::{Db, read_sources};
use std::io::Write;
use std::path::{Path, PathBuf};

const DEBIAN_STATUS_1: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDepends: libc6 (>= 2.34)\n";

fn debian_status_2() -> String {
    format!(
        "{DEBIAN_STATUS_1}\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\nDepends: libc6, libssl3\n"
    )
}

fn metadata(name: &str, version: &str) -> String {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
}

/// An ELF with a cargo-auditable `.dep-v0` section, made with objcopy
/// from this machine's `true`.
fn auditable_binary(dir: &Path) -> Vec<u8> {
    let json = br#"{"packages":[{"name":"tool","version":"0.1.0","source":"local","kind":"runtime","dependencies":[1],"root":true},{"name":"time","version":"0.1.45","source":"crates.io","kind":"runtime","dependencies":[]}]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json).unwrap();
    let section = dir.join("dep-v0");
    std::fs::write(&section, z.finish().unwrap()).unwrap();
    let out = dir.join("tool");
    let status = std::process::Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg("/bin/true")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "objcopy");
    std::fs::read(out).unwrap()
}

fn debian_layers(work: &Path) -> Vec<LayerSpec> {
    let sp = "usr/local/lib/python3.11/site-packages";
    vec![
        LayerSpec {
            compression: Compression::Gzip,
            entries: vec![
                Entry::file(
                    "usr/lib/os-release",
                    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
                ),
                Entry::Symlink {
                    path: "etc/os-release".into(),
                    target: "../usr/lib/os-release".into(),
                },
                Entry::file("var/lib/dpkg/status", DEBIAN_STATUS_1),
            ],
        },
        LayerSpec {
            compression: Compression::Gzip,
            entries: vec![
                Entry::file("var/lib/dpkg/status", debian_status_2()),
                Entry::file(
                    &format!("{sp}/requests-2.19.0.dist-info/METADATA"),
                    metadata("requests", "2.19.0"),
                ),
                Entry::file(
                    &format!("{sp}/urllib3-1.24.1.dist-info/METADATA"),
                    metadata("urllib3", "1.24.1"),
                ),
                Entry::program("usr/local/bin/tool", auditable_binary(work)),
            ],
        },
        LayerSpec {
            compression: Compression::Zstd,
            entries: vec![Entry::whiteout(&format!("{sp}/requests-2.19.0.dist-info"))],
        },
    ]
}

fn open(dir: &Path) -> launchway_oci::Image {
    source::open(
        &Target::OciDir(dir.to_path_buf()),
        &source::Options::default(),
    )
    .unwrap()
}

fn db(home: &Path) -> PathBuf {
    let (advisories, errors) = read_sources(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/advisories.json")
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    Db::open(home)
        .import(advisories, "2026-11-01T00:00:00Z")
        .unwrap();
    home.to_path_buf()
}

fn scan(home: &Path, img: &launchway_oci::Image, skip_db: bool) -> Result<gate::Outcome, String> {
    let mut o = gate::Options::new(PathBuf::from("."), home.to_path_buf(), "2026-11-30".into());
    o.image = Some(image::inventory(img).unwrap());
    o.secret = false;
    o.skip_db = skip_db;
    gate::run(&o)
}

#[test]
fn a_debian_image_is_inventoried_layer_by_layer_and_matched_by_release() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let w = layout::write_oci_dir(
        &dir,
        &debian_layers(tmp.path()),
        &Platform::host(),
        Some("ghcr.io/org/app:1"),
    )
    .unwrap();
    let img = open(&dir);
    let (inv, info) = image::inventory(&img).unwrap();
    let got: Vec<(String, String, Option<String>)> = inv
        .components
        .iter()
        .map(|c| (c.name.clone(), c.version.clone(), c.layer.clone()))
        .collect();
    let l = |i: usize| Some(w.layers[i].clone());
    assert_eq!(
        got,
        vec![
            ("time".into(), "0.1.45".into(), l(1)),
            ("tool".into(), "0.1.0".into(), l(1)),
            // Installed by layer 1 and still listed by layer 2's database.
            ("curl".into(), "7.88.1-10+deb12u5".into(), l(1)),
            ("libc6".into(), "2.36-9+deb12u4".into(), l(0)),
            ("libssl3".into(), "3.0.11-1~deb12u2".into(), l(0)),
            // requests was whited out by layer 3.
            ("urllib3".into(), "1.24.1".into(), l(1)),
        ]
    );
    let ssl = inv.components.iter().find(|c| c.name == "libssl3").unwrap();
    assert_eq!(
        ssl.purl,
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    );
    assert_eq!(ssl.advisory_key(), ("openssl", "3.0.11-1~deb12u2"));
    assert_eq!(
        info.os.as_ref().map(|o| o.distro()).as_deref(),
        Some("debian-12")
    );
    assert_eq!(info.tags, ["ghcr.io/org/app:1"]);
    assert_eq!(
        info.manifest_digest.as_deref(),
        Some(w.manifest_digest.as_str())
    );

    let home = tempfile::tempdir().unwrap();
    let out = scan(&db(home.path()), &img, false).unwrap();
    let mut found: Vec<(String, String, Option<String>, Option<String>)> = out
        .report
        .vulnerabilities
        .iter()
        .map(|f| {
            (
                f.package.clone(),
                f.id.clone(),
                f.source_package.clone(),
                f.layer.clone(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            // Debian 12's advisory, on the binary package built from openssl.
            (
                "libssl3".into(),
                "CVE-2026-9001".into(),
                Some("openssl".into()),
                l(0)
            ),
            ("time".into(), "RUSTSEC-2026-9007".into(), None, l(1)),
            ("urllib3".into(), "PYSEC-2026-9005".into(), None, l(1)),
            // Not DLA-9002-1 (Debian 11's), not requests (deleted).
        ]
    );
    assert_eq!(
        out.report.image.as_ref().map(|i| i.config_digest.clone()),
        Some(w.config_digest.clone())
    );
    assert!(out.fails(false));
}

#[test]
fn an_alpine_image_matches_its_own_release_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let installed = "P:libssl3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\n\n";
    layout::write_oci_dir(
        &dir,
        &[LayerSpec {
            compression: Compression::Gzip,
            entries: vec![
                Entry::file(
                    "etc/os-release",
                    "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
                ),
                Entry::file("lib/apk/db/installed", installed),
            ],
        }],
        &Platform::host(),
        None,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = scan(&db(home.path()), &open(&dir), false).unwrap();
    let found: Vec<(&str, &str)> = out
        .report
        .vulnerabilities
        .iter()
        .map(|f| (f.package.as_str(), f.id.as_str()))
        .collect();
    assert_eq!(found, [("libssl3", "ALPINE-CVE-2026-9003")]);
}

#[test]
fn an_ubuntu_image_is_not_matched_against_debian_and_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout::write_oci_dir(
        &dir,
        &[LayerSpec {
            compression: Compression::None,
            entries: vec![
                Entry::file("etc/os-release", "ID=ubuntu\nVERSION_ID=\"22.04\"\n"),
                Entry::file("var/lib/dpkg/status", DEBIAN_STATUS_1),
            ],
        }],
        &Platform::host(),
        None,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = db(home.path());
    let img = open(&dir);
    let e = scan(&home, &img, false).err().unwrap_or_default();
    assert!(
        e.contains("2 package(s) of ubuntu-22.04") && e.contains("--skip-db"),
        "{e}"
    );
    let out = scan(&home, &img, true).unwrap();
    assert!(out.report.vulnerabilities.is_empty());
    assert!(
        out.report
            .not_checked
            .iter()
            .any(|n| n.contains("2 ubuntu-22.04 package(s)")),
        "{:?}",
        out.report.not_checked
    );
    let (inv, _) = image::inventory(&img).unwrap();
    assert!(
        inv.components
            .iter()
            .all(|c| c.purl.starts_with("pkg:deb/ubuntu/"))
    );
}

/// A real `rpmdb.sqlite`, written by rpm itself (Debian's `rpm` package:
/// rpmbuild makes a package, `rpm --justdb` records it).
fn real_rpmdb(dir: &Path) -> Option<Vec<u8>> {
    let required = std::env::var("LAUNCHWAY_TEST_RPM").is_ok_and(|v| v == "1");
    let have = std::process::Command::new("rpmbuild")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(!required, "LAUNCHWAY_TEST_RPM=1 but rpmbuild is missing");
        eprintln!("rpmbuild not installed: the RPM image test is skipped");
        return None;
    }
    let top = dir.join("rpm");
    for d in ["SPECS", "BUILD", "RPMS", "SOURCES", "SRPMS", "db"] {
        std::fs::create_dir_all(top.join(d)).unwrap();
    }
    std::fs::write(
        top.join("SPECS/hello.spec"),
        "Name: hello-lw\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 1\nSummary: test\nLicense: MIT\nBuildArch: noarch\n%description\ntest\n%files\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let topdef = format!("_topdir {}", top.display());
    run(&[
        "rpmbuild",
        "-bb",
        "--define",
        &topdef,
        &top.join("SPECS/hello.spec").to_string_lossy(),
    ]);
    let db = top.join("db").to_string_lossy().into_owned();
    run(&[
        "rpm",
        "--define",
        "_db_backend sqlite",
        "--dbpath",
        &db,
        "--initdb",
    ]);
    let pkg = top.join("RPMS/noarch/hello-lw-1.2.3-4.el9.noarch.rpm");
    run(&[
        "rpm",
        "--define",
        "_db_backend sqlite",
        "--dbpath",
        &db,
        "-i",
        "--justdb",
        "--nodeps",
        "--noscripts",
        &pkg.to_string_lossy(),
    ]);
    Some(std::fs::read(top.join("db/rpmdb.sqlite")).unwrap())
}

#[test]
fn an_rpm_image_is_inventoried_and_not_passed_unchecked() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rpmdb) = real_rpmdb(tmp.path()) else {
        return;
    };
    let dir = tmp.path().join("layout");
    let w = layout::write_oci_dir(
        &dir,
        &[
            LayerSpec {
                compression: Compression::Gzip,
                entries: vec![Entry::file(
                    "etc/os-release",
                    "ID=\"rocky\"\nVERSION_ID=\"9.3\"\n",
                )],
            },
            LayerSpec {
                compression: Compression::Gzip,
                entries: vec![Entry::file("var/lib/rpm/rpmdb.sqlite", rpmdb)],
            },
        ],
        &Platform::host(),
        None,
    )
    .unwrap();
    let img = open(&dir);
    let (inv, _) = image::inventory(&img).unwrap();
    let got: Vec<(&str, Option<&str>)> = inv
        .components
        .iter()
        .map(|c| (c.purl.as_str(), c.layer.as_deref()))
        .collect();
    assert_eq!(
        got,
        [(
            "pkg:rpm/rocky/hello-lw@1%3A1.2.3-4.el9?arch=noarch&distro=rocky-9.3",
            Some(w.layers[1].as_str())
        )]
    );
    let home = tempfile::tempdir().unwrap();
    let e = scan(home.path(), &img, false).err().unwrap_or_default();
    assert!(e.contains("RPM") && e.contains("--skip-db"), "{e}");
    let out = scan(home.path(), &img, true).unwrap();
    assert!(
        out.report.not_checked.iter().any(|n| n.contains("RPM")),
        "{:?}",
        out.report.not_checked
    );
}

/// Fail closed: a layer the scan cannot read (a foreign layer, fetched from
/// elsewhere at run time) leaves its packages unchecked, and the gate fails
/// — it does not pass on what it could see.
#[test]
fn an_unread_layer_fails_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout::write_oci_dir(
        &dir,
        &[
            LayerSpec {
                compression: Compression::Gzip,
                entries: vec![Entry::file(
                    "etc/os-release",
                    "ID=debian\nVERSION_ID=\"12\"\n",
                )],
            },
            LayerSpec {
                compression: Compression::Gzip,
                entries: vec![Entry::file("var/lib/dpkg/status", DEBIAN_STATUS_1)],
            },
        ],
        &Platform::host(),
        None,
    )
    .unwrap();
    // Mark the second layer foreign, as Windows base layers are.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&old)).unwrap()).unwrap();
    manifest["layers"][1]["mediaType"] =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let new = launchway_oci::sha256_digest(&bytes);
    std::fs::write(blob(&new), &bytes).unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = new.clone().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let img = open(&dir);
    let (inv, _) = image::inventory(&img).unwrap();
    assert!(inv.components.is_empty());
    assert!(
        inv.errors
            .iter()
            .any(|e| e.message.contains("foreign layer")),
        "{:?}",
        inv.errors
    );
    let home = tempfile::tempdir().unwrap();
    let out = scan(&db(home.path()), &img, false).unwrap();
    assert!(out.fails(false), "an unread layer must fail the gate");
    assert!(!out.fails(true), "…unless unreadable files are let through");
}
