//! Where an image comes from, and reading its blobs: an OCI layout in a
//! tar archive (`podman save --format oci-archive`, `buildah push
//! oci-archive:`), a Docker archive (`docker save`), an OCI layout
//! directory, a registry, or the local containers storage (through
//! `podman image save`). Every blob read is checked against its digest.

use crate::manifest::{self, Config, Descriptor, Document, Platform};
use crate::registry::Registry;
use crate::{OciError, Reference, sha256_digest};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A target as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
    OciDir(PathBuf),
    Registry(Reference),
    ContainersStorage(String),
}

impl Target {
    /// `oci-archive:FILE`, `docker-archive:FILE`, `oci-dir:DIR`,
    /// `registry:REF`, `containers-storage:REF`; `None` when the text has
    /// none of these prefixes (it is a path).
    pub fn parse(s: &str) -> Option<Result<Target, OciError>> {
        let (kind, rest) = s.split_once(':')?;
        let empty = || OciError::Target(s.to_string());
        let t = match kind {
            "oci-archive" | "docker-archive" | "oci-dir" => {
                if rest.is_empty() {
                    return Some(Err(empty()));
                }
                let p = PathBuf::from(rest);
                match kind {
                    "oci-archive" => Target::OciArchive(p),
                    "docker-archive" => Target::DockerArchive(p),
                    _ => Target::OciDir(p),
                }
            }
            "registry" | "docker" => match Reference::parse(rest.trim_start_matches("//")) {
                Ok(r) => Target::Registry(r),
                Err(e) => return Some(Err(e)),
            },
            "containers-storage" | "podman" => {
                if rest.is_empty() {
                    return Some(Err(empty()));
                }
                Target::ContainersStorage(rest.to_string())
            }
            _ => return None,
        };
        Some(Ok(t))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::OciArchive(p) => write!(f, "oci-archive:{}", p.display()),
            Target::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            Target::OciDir(p) => write!(f, "oci-dir:{}", p.display()),
            Target::Registry(r) => write!(f, "registry:{r}"),
            Target::ContainersStorage(r) => write!(f, "containers-storage:{r}"),
        }
    }
}

/// Reads blobs by digest (or, in a Docker archive, by path).
pub trait Blobs: Send + Sync {
    fn open(&self, key: &str) -> Result<Box<dyn Read + '_>, OciError>;
    /// The blob as a file region, when it is one (not a download): its
    /// digest is then checked on another thread while it is read, and an
    /// uncompressed layer skips what is not wanted by seeking.
    fn open_seekable(&self, _key: &str) -> Result<Option<Region>, OciError> {
        Ok(None)
    }

    /// Whether blobs are files ([`Blobs::open_seekable`] gives regions).
    fn in_files(&self) -> bool {
        false
    }
}

/// A part of a file, read and sought within its bounds.
pub struct Region {
    file: std::io::BufReader<File>,
    len: u64,
    pos: u64,
}

impl Region {
    pub fn new(mut file: File, start: u64, len: u64) -> std::io::Result<Region> {
        file.seek(SeekFrom::Start(start))?;
        Ok(Region {
            file: std::io::BufReader::with_capacity(1 << 16, file),
            len,
            pos: 0,
        })
    }
}

impl Read for Region {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.len - self.pos).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        let got = self.file.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Region {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
            SeekFrom::End(d) => i128::from(self.len) + i128::from(d),
        };
        let target =
            u64::try_from(target.clamp(0, i128::from(self.len))).map_err(std::io::Error::other)?;
        let delta = i64::try_from(i128::from(target) - i128::from(self.pos))
            .map_err(std::io::Error::other)?;
        self.file.seek_relative(delta)?;
        self.pos = target;
        Ok(target)
    }
}

/// One layer of an image, bottom first.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The blob's digest (compressed, as stored); for a legacy Docker
    /// archive, the uncompressed digest (its diff id).
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// How to ask [`Blobs`] for it.
    pub key: String,
    /// What its content must hash to, when known.
    pub verify: Option<String>,
}

pub struct Image {
    /// The target as given.
    pub target: String,
    /// The manifest's digest (`None` for a legacy Docker archive, which
    /// has no manifest blob).
    pub manifest_digest: Option<String>,
    /// The configuration's digest: the image id.
    pub config_digest: String,
    /// How to ask [`Blobs`] for the configuration.
    pub config_key: String,
    pub config: Config,
    /// `registry/repository:tag` names the source gives.
    pub tags: Vec<String>,
    pub layers: Vec<Layer>,
    pub blobs: Box<dyn Blobs>,
    /// A file to delete when the image is dropped (a saved copy).
    pub(crate) scratch: Option<Scratch>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("target", &self.target)
            .field("manifest_digest", &self.manifest_digest)
            .field("config_digest", &self.config_digest)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl Image {
    pub fn platform(&self) -> Platform {
        self.config.platform()
    }

    /// The layer's content (decompressed), checked against its digest
    /// when read to the end with [`Verified::finish`].
    pub fn layer(&self, i: usize) -> Result<Verified<Box<dyn Read + '_>>, OciError> {
        let l = self
            .layers
            .get(i)
            .ok_or_else(|| OciError::Missing(format!("layer {i}")))?;
        let raw = self.blobs.open(&l.key)?;
        Ok(Verified::new(raw, l.verify.clone()))
    }

    /// The layer's blob as a file region, unchecked (check it with
    /// [`Image::check_layer`]); `None` for a download.
    pub fn layer_seekable(&self, i: usize) -> Result<Option<Region>, OciError> {
        let l = self
            .layers
            .get(i)
            .ok_or_else(|| OciError::Missing(format!("layer {i}")))?;
        self.blobs.open_seekable(&l.key)
    }

    /// Reads layer `i` on its own and checks it against its digest: one
    /// thread reads (in 1 MiB blocks, which bypass the buffer), this one
    /// hashes, so copying and hashing overlap.
    pub fn check_layer(&self, i: usize) -> Result<(), OciError> {
        use sha2::Digest;
        let l = self
            .layers
            .get(i)
            .ok_or_else(|| OciError::Missing(format!("layer {i}")))?;
        let Some(want) = l.verify.clone() else {
            return Ok(());
        };
        let what = format!("layer {}", i + 1);
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(4);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        for _ in 0..6 {
            let _ = empty_tx.send(vec![0u8; 1 << 20]);
        }
        let mut hasher = sha2::Sha256::new();
        let read = std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> Result<(), OciError> {
                let mut raw = self.blobs.open(&l.key)?;
                while let Ok(mut buf) = empty_rx.recv() {
                    let n = loop {
                        match raw.read(&mut buf) {
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            r => break r.map_err(|e| OciError::io(&what, e))?,
                        }
                    };
                    if n == 0 || full_tx.send((buf, n)).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            while let Ok((buf, n)) = full_rx.recv() {
                hasher.update(&buf[..n]);
                let _ = empty_tx.send(buf);
            }
            drop(empty_tx);
            reader
                .join()
                .unwrap_or_else(|_| Err(OciError::Tool("the reader stopped".into())))
        });
        read?;
        let actual = format!("sha256:{:x}", hasher.finalize());
        if actual == want {
            Ok(())
        } else {
            Err(OciError::Digest {
                digest: want,
                actual,
            })
        }
    }
}

/// A private (0700) temporary directory, removed with everything in it
/// when dropped: for a saved image, or a file a library must open by path.
#[derive(Debug)]
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reader that hashes what passes; [`Verified::finish`] reads what is
/// left and compares.
pub struct Verified<R> {
    inner: R,
    hasher: sha2::Sha256,
    want: Option<String>,
}

impl<R: Read> Verified<R> {
    pub fn new(inner: R, want: Option<String>) -> Verified<R> {
        use sha2::Digest;
        Verified {
            inner,
            hasher: sha2::Sha256::new(),
            want,
        }
    }

    /// Reads to the end and checks the digest.
    pub fn finish(mut self) -> Result<(), OciError> {
        use sha2::Digest;
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|e| OciError::io("layer", e))?;
        let Some(want) = self.want else {
            return Ok(());
        };
        let actual = format!("sha256:{:x}", self.hasher.finalize());
        if actual == want {
            Ok(())
        } else {
            Err(OciError::Digest {
                digest: want,
                actual,
            })
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The most a manifest, index or configuration may weigh.
const MAX_DOCUMENT: u64 = 16 << 20;

fn read_document(blobs: &dyn Blobs, key: &str, digest: Option<&str>) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    blobs
        .open(key)?
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::io(key, e))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(OciError::format(key, "larger than 16 MiB"));
    }
    if let Some(d) = digest {
        let actual = sha256_digest(&bytes);
        if actual != d {
            return Err(OciError::Digest {
                digest: d.to_string(),
                actual,
            });
        }
    }
    Ok(bytes)
}

fn blob_key(digest: &str) -> Result<String, OciError> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| OciError::format(digest, "a digest is algorithm:hex"))?;
    if alg != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OciError::format(
            digest,
            "only sha256 digests are supported",
        ));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

/// An OCI layout (`oci-layout`, `index.json`, `blobs/`), in a directory.
struct DirBlobs(PathBuf);

impl Blobs for DirBlobs {
    fn in_files(&self) -> bool {
        true
    }

    fn open_seekable(&self, key: &str) -> Result<Option<Region>, OciError> {
        let p = self.0.join(key);
        let f = File::open(&p).map_err(|e| OciError::io(p.display(), e))?;
        let len = f
            .metadata()
            .map_err(|e| OciError::io(p.display(), e))?
            .len();
        Region::new(f, 0, len)
            .map(Some)
            .map_err(|e| OciError::io(p.display(), e))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + '_>, OciError> {
        let p = self.0.join(key);
        File::open(&p)
            .map(|f| Box::new(std::io::BufReader::with_capacity(1 << 16, f)) as Box<dyn Read>)
            .map_err(|e| OciError::io(p.display(), e))
    }
}

/// A tar archive read in place: where each member's data starts.
struct TarBlobs {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl TarBlobs {
    fn index(path: &Path) -> Result<TarBlobs, OciError> {
        let f = File::open(path).map_err(|e| OciError::io(path.display(), e))?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(f));
        let mut members = HashMap::new();
        let entries = archive
            .entries()
            .map_err(|e| OciError::io(path.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| OciError::io(path.display(), e))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| OciError::io(path.display(), e))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(TarBlobs {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl Blobs for TarBlobs {
    fn in_files(&self) -> bool {
        true
    }

    fn open_seekable(&self, key: &str) -> Result<Option<Region>, OciError> {
        let &(at, size) = self
            .members
            .get(key.trim_start_matches("./"))
            .ok_or_else(|| OciError::Missing(format!("{key} (in {})", self.path.display())))?;
        let f = File::open(&self.path).map_err(|e| OciError::io(self.path.display(), e))?;
        Region::new(f, at, size)
            .map(Some)
            .map_err(|e| OciError::io(self.path.display(), e))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + '_>, OciError> {
        let &(at, size) = self
            .members
            .get(key.trim_start_matches("./"))
            .ok_or_else(|| OciError::Missing(format!("{key} (in {})", self.path.display())))?;
        let mut f = File::open(&self.path).map_err(|e| OciError::io(self.path.display(), e))?;
        f.seek(SeekFrom::Start(at))
            .map_err(|e| OciError::io(self.path.display(), e))?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            f.take(size),
        )))
    }
}

/// How to open a target.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The platform an index resolves to (default: this machine's).
    pub platform: Option<Platform>,
    /// Registry settings: mirrors and credentials.
    pub registries: crate::mirrors::Registries,
}

pub fn open(target: &Target, opts: &Options) -> Result<Image, OciError> {
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let name = target.to_string();
    match target {
        Target::OciDir(dir) => {
            if !dir.join("index.json").is_file() {
                return Err(OciError::format(
                    dir.display().to_string(),
                    "not an OCI layout (no index.json)",
                ));
            }
            from_layout(name, Box::new(DirBlobs(dir.clone())), &platform)
        }
        Target::OciArchive(file) => {
            let blobs = TarBlobs::index(file)?;
            if !blobs.members.contains_key("index.json") {
                let hint = if blobs.members.contains_key("manifest.json") {
                    " (it has a manifest.json: use docker-archive:)"
                } else {
                    ""
                };
                return Err(OciError::format(
                    file.display().to_string(),
                    format!("not an OCI archive (no index.json){hint}"),
                ));
            }
            from_layout(name, Box::new(blobs), &platform)
        }
        Target::DockerArchive(file) => docker_archive(name, TarBlobs::index(file)?),
        Target::Registry(r) => Registry::new(&opts.registries).image(r, &platform),
        Target::ContainersStorage(r) => containers_storage(r, opts),
    }
}

/// An OCI layout: `index.json` names manifests (or indexes).
fn from_layout(
    name: String,
    blobs: Box<dyn Blobs>,
    platform: &Platform,
) -> Result<Image, OciError> {
    let top = read_document(blobs.as_ref(), "index.json", None)?;
    let index = Document::parse("index.json", &top)?;
    let entries = index.manifests.clone().unwrap_or_default();
    if entries.is_empty() {
        return Err(OciError::format("index.json", "lists no manifest"));
    }
    // The tags the layout records for its manifests.
    let tag_of = |d: &Descriptor| {
        d.annotations.as_ref().and_then(|a| {
            a.get("io.containerd.image.name")
                .or_else(|| a.get("org.opencontainers.image.ref.name"))
                .cloned()
        })
    };
    let mut tags: Vec<String> = entries.iter().filter_map(tag_of).collect();
    let mut desc = if entries.len() == 1 || entries.iter().all(|d| d.platform.is_none()) {
        entries[0].clone()
    } else {
        manifest::choose(&entries, platform)?.clone()
    };
    // Nested indexes resolve to the platform's manifest.
    for _ in 0..4 {
        let bytes = read_document(blobs.as_ref(), &blob_key(&desc.digest)?, Some(&desc.digest))?;
        let doc = Document::parse(&desc.digest, &bytes)?;
        if doc.is_index() {
            let inner = doc.manifests.unwrap_or_default();
            desc = manifest::choose(&inner, platform)?.clone();
            continue;
        }
        tags.sort();
        tags.dedup();
        return from_manifest(name, blobs, &desc.digest, &doc, tags);
    }
    Err(OciError::format("index.json", "indexes nested too deep"))
}

fn from_manifest(
    name: String,
    blobs: Box<dyn Blobs>,
    digest: &str,
    doc: &Document,
    tags: Vec<String>,
) -> Result<Image, OciError> {
    let config_desc = doc
        .config
        .as_ref()
        .ok_or_else(|| OciError::format(digest, "a manifest without config"))?;
    let config_bytes = read_document(
        blobs.as_ref(),
        &blob_key(&config_desc.digest)?,
        Some(&config_desc.digest),
    )?;
    let config = Config::parse(&config_bytes)?;
    let mut layers = Vec::new();
    for l in doc.layers.clone().unwrap_or_default() {
        layers.push(Layer {
            key: blob_key(&l.digest)?,
            verify: Some(l.digest.clone()),
            digest: l.digest,
            media_type: l.media_type,
            size: l.size,
        });
    }
    Ok(Image {
        target: name,
        manifest_digest: Some(digest.to_string()),
        config_key: blob_key(&config_desc.digest)?,
        config_digest: config_desc.digest.clone(),
        config,
        tags,
        layers,
        blobs,
        scratch: None,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// `docker save`: `manifest.json` lists the configuration and the layer
/// files (legacy `<id>/layer.tar`, or OCI blob paths since Docker 25).
fn docker_archive(name: String, blobs: TarBlobs) -> Result<Image, OciError> {
    if !blobs.members.contains_key("manifest.json") {
        return Err(OciError::format(
            blobs.path.display().to_string(),
            "not a Docker archive (no manifest.json)",
        ));
    }
    let bytes = read_document(&blobs, "manifest.json", None)?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|e| OciError::format("manifest.json", e))?;
    let [entry] = entries.as_slice() else {
        return Err(OciError::format(
            "manifest.json",
            format!(
                "the archive holds {} images; save one image per archive",
                entries.len()
            ),
        ));
    };
    let hex_of = |p: &str| -> Option<String> {
        let stem = p.rsplit('/').next()?.trim_end_matches(".json");
        (stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("sha256:{stem}"))
    };
    let config_bytes = read_document(&blobs, &entry.config, hex_of(&entry.config).as_deref())?;
    let config = Config::parse(&config_bytes)?;
    let config_digest = sha256_digest(&config_bytes);
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != entry.layers.len() {
        return Err(OciError::format(
            "manifest.json",
            "the layer list and the configuration's diff_ids differ in length",
        ));
    }
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(path, diff_id)| Layer {
            // A blob path names its own digest; a legacy layer.tar is
            // its uncompressed content, whose digest is the diff id.
            verify: Some(hex_of(path).unwrap_or_else(|| diff_id.clone())),
            digest: hex_of(path).unwrap_or_else(|| diff_id.clone()),
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            size: blobs.members.get(path.as_str()).map_or(0, |m| m.1),
            key: path.clone(),
        })
        .collect();
    Ok(Image {
        target: name,
        manifest_digest: None,
        config_digest,
        config_key: entry.config.clone(),
        config,
        tags: entry.repo_tags.clone().unwrap_or_default(),
        layers,
        blobs: Box::new(blobs),
        scratch: None,
    })
}

/// The local containers storage, through podman: saved as an OCI archive
/// in a private temporary directory, read, then removed.
fn containers_storage(reference: &str, opts: &Options) -> Result<Image, OciError> {
    let tool = ["podman", "buildah"]
        .into_iter()
        .find(|t| crate::auth::on_path(t))
        .ok_or_else(|| {
            OciError::Tool(
                "containers-storage: needs podman or buildah (Debian packages 'podman', 'buildah')"
                    .into(),
            )
        })?;
    let scratch = Scratch::new("launchway-image")
        .map_err(|e| OciError::io(std::env::temp_dir().display(), e))?;
    let dir = scratch.0.clone();
    let file = dir.join("image.tar");
    let mut cmd = std::process::Command::new(tool);
    if tool == "podman" {
        cmd.args(["image", "save", "--format", "oci-archive", "-o"])
            .arg(&file)
            .arg(reference);
    } else {
        cmd.arg("push")
            .arg(reference)
            .arg(format!("oci-archive:{}", file.display()));
    }
    let out = cmd
        .output()
        .map_err(|e| OciError::Tool(format!("{tool}: {e}")))?;
    if !out.status.success() {
        return Err(OciError::Tool(format!(
            "{tool} could not export {reference}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut image = open(&Target::OciArchive(file), opts)?;
    image.target = format!("containers-storage:{reference}");
    if image.tags.is_empty() {
        image.tags.push(reference.to_string());
    }
    image.scratch = Some(scratch);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |s: &str| Target::parse(s).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            t("oci-archive:/tmp/a.tar"),
            Some(Ok(Target::OciArchive("/tmp/a.tar".into())))
        );
        assert!(matches!(
            t("registry:ghcr.io/org/app:1"),
            Some(Ok(Target::Registry(_)))
        ));
        assert!(matches!(t("oci-dir:"), Some(Err(_))));
        assert_eq!(t("some/dir"), None);
        assert_eq!(t("C:thing"), None);
        assert!(matches!(t("registry:Bad Name"), Some(Err(_))));
    }

    #[test]
    fn a_tampered_blob_is_refused() {
        let data = b"layer bytes".to_vec();
        let good = Verified::new(&data[..], Some(sha256_digest(&data)));
        assert!(good.finish().is_ok());
        let bad = Verified::new(&b"other bytes"[..], Some(sha256_digest(&data)));
        assert!(matches!(bad.finish(), Err(OciError::Digest { .. })));
    }
}
