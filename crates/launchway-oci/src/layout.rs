//! Writing images: an OCI layout (directory, or the same as a tar
//! archive) or a Docker archive, from layers given as lists of entries.
//! Deterministic (fixed times and owners), so the same input gives the
//! same digests.

use crate::manifest::{OCI_INDEX, OCI_MANIFEST, Platform};
use crate::{OciError, sha256_digest};
use std::io::Write;
use std::path::Path;

/// One entry of a layer's tar.
#[derive(Debug, Clone)]
pub enum Entry {
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Dir {
        path: String,
    },
    Symlink {
        path: String,
        target: String,
    },
    HardLink {
        path: String,
        target: String,
    },
}

impl Entry {
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o644,
            data: data.into(),
        }
    }

    pub fn program(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o755,
            data: data.into(),
        }
    }

    /// A whiteout deleting `path` of the layers below.
    pub fn whiteout(path: &str) -> Entry {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let p = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        Entry::file(&p, Vec::new())
    }

    /// An opaque marker emptying `dir` of what the layers below put there.
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            Vec::new(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub entries: Vec<Entry>,
    pub compression: Compression,
}

fn io(e: std::io::Error) -> OciError {
    OciError::io("layout", e)
}

/// The uncompressed tar of a layer.
pub fn tar_of(entries: &[Entry]) -> Result<Vec<u8>, OciError> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice()).map_err(io)?;
            }
            Entry::Dir { path } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).map_err(io)?;
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).map_err(io)?;
            }
            Entry::HardLink { path, target } => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, path, target).map_err(io)?;
            }
        }
    }
    b.into_inner().map_err(io)
}

fn compress(tar: &[u8], c: Compression) -> Result<Vec<u8>, OciError> {
    Ok(match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(tar).map_err(io)?;
            z.finish().map_err(io)?
        }
        Compression::Zstd => {
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
        }
    })
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Result<String, OciError> {
    let digest = sha256_digest(bytes);
    let p = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(io)?;
    std::fs::write(p, bytes).map_err(io)?;
    Ok(digest)
}

/// Writes one image's blobs (layers, configuration, manifest) into the
/// layout at `dir`; the manifest's descriptor.
fn write_image(
    dir: &Path,
    layers: &[LayerSpec],
    platform: &Platform,
) -> Result<(serde_json::Value, Written), OciError> {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut digests = Vec::new();
    for l in layers {
        let tar = tar_of(&l.entries)?;
        diff_ids.push(sha256_digest(&tar));
        let blob = compress(&tar, l.compression)?;
        let d = put_blob(dir, &blob)?;
        descs.push(serde_json::json!({
            "mediaType": l.compression.media_type(),
            "digest": d,
            "size": blob.len(),
        }));
        digests.push(d);
    }
    let mut config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "launchway"})).collect::<Vec<_>>(),
    });
    if let Some(v) = &platform.variant {
        config["variant"] = serde_json::json!(v);
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| OciError::format("config", e))?;
    let config_digest = put_blob(dir, &config_bytes)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": descs,
    });
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| OciError::format("manifest", e))?;
    let manifest_digest = put_blob(dir, &manifest_bytes)?;
    let desc = serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "digest": manifest_digest,
        "size": manifest_bytes.len(),
        "platform": platform,
    });
    Ok((
        desc,
        Written {
            manifest_digest,
            config_digest,
            layers: digests,
        },
    ))
}

fn write_index(dir: &Path, entries: Vec<serde_json::Value>) -> Result<(), OciError> {
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).map_err(|e| OciError::format("index", e))?,
    )
    .map_err(io)
}

/// Writes an OCI layout into `dir` (created), with `tag` as its
/// `org.opencontainers.image.ref.name`.
pub fn write_oci_dir(
    dir: &Path,
    layers: &[LayerSpec],
    platform: &Platform,
    tag: Option<&str>,
) -> Result<Written, OciError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let (mut entry, written) = write_image(dir, layers, platform)?;
    if let Some(t) = tag {
        entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": t});
    }
    write_index(dir, vec![entry])?;
    Ok(written)
}

/// Writes a multi-platform image: `index.json` names an image index
/// (a blob) listing one manifest per platform, as registries serve them.
pub fn write_oci_multi(
    dir: &Path,
    images: &[(Platform, Vec<LayerSpec>)],
) -> Result<Vec<Written>, OciError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let mut descs = Vec::new();
    let mut out = Vec::new();
    for (p, layers) in images {
        let (d, w) = write_image(dir, layers, p)?;
        descs.push(d);
        out.push(w);
    }
    let inner = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs});
    let bytes = serde_json::to_vec(&inner).map_err(|e| OciError::format("index", e))?;
    let digest = put_blob(dir, &bytes)?;
    write_index(
        dir,
        vec![serde_json::json!({"mediaType": OCI_INDEX, "digest": digest, "size": bytes.len()})],
    )?;
    Ok(out)
}

/// A directory as a tar archive (an OCI layout directory → `oci-archive:`).
pub fn tar_dir(dir: &Path, file: &Path) -> Result<(), OciError> {
    let f = std::fs::File::create(file).map_err(io)?;
    let mut b = tar::Builder::new(f);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).map_err(io)?;
    b.into_inner().map_err(io)?.flush().map_err(io)
}

/// A Docker archive (`docker save`'s legacy shape): `manifest.json`, the
/// configuration as `<hex>.json`, each layer uncompressed as
/// `<n>/layer.tar`.
pub fn write_docker_archive(
    file: &Path,
    layers: &[Vec<Entry>],
    platform: &Platform,
    tag: &str,
) -> Result<String, OciError> {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar_of(l)).collect::<Result<_, _>>()?;
    let config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": tars.iter().map(|t| sha256_digest(t)).collect::<Vec<_>>()},
    });
    let config_bytes = serde_json::to_vec(&config).map_err(|e| OciError::format("config", e))?;
    let config_digest = sha256_digest(&config_bytes);
    let config_name = format!("{}.json", config_digest.trim_start_matches("sha256:"));
    let layer_names: Vec<String> = (0..tars.len()).map(|i| format!("{i}/layer.tar")).collect();
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]);
    let mut b = tar::Builder::new(std::fs::File::create(file).map_err(io)?);
    let mut add = |name: &str, data: &[u8]| -> Result<(), OciError> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).map_err(io)
    };
    add(
        "manifest.json",
        &serde_json::to_vec(&manifest).map_err(|e| OciError::format("manifest", e))?,
    )?;
    add(&config_name, &config_bytes)?;
    for (name, t) in layer_names.iter().zip(&tars) {
        add(name, t)?;
    }
    b.into_inner().map_err(io)?.flush().map_err(io)?;
    Ok(config_digest)
}
