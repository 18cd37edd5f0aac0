//! The image's file system, as its layers make it: applied bottom to top,
//! each file replacing what a lower layer had at its path, whiteouts
//! (`.wh.<name>`) deleting a lower path and opaque markers
//! (`.wh..wh..opq`) emptying a lower directory. Only the files a caller
//! asks for are read; the result maps each surviving path to the layer
//! that wrote it and what the caller made of its content.

use crate::OciError;
use crate::source::Image;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

/// A file met in a layer.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// Relative to the image's root, `/`-separated, no `.` or `..`.
    pub path: &'a str,
    pub mode: u32,
    pub size: u64,
    /// Index into the image's layers.
    pub layer: usize,
}

#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub layer: usize,
    pub value: T,
}

/// The merged view: kept files and every symbolic link.
#[derive(Debug)]
pub struct Merged<T> {
    pub files: BTreeMap<String, Entry<T>>,
    /// Symbolic links and their targets as written.
    pub links: BTreeMap<String, String>,
    /// Wanted files that were not read (larger than [`MAX_FILE`]): path,
    /// size, layer. A caller decides whether that leaves something
    /// unchecked.
    pub too_large: Vec<(String, u64, usize)>,
    /// Foreign layers (fetched from elsewhere at run time), not read.
    pub foreign: Vec<usize>,
}

impl<T> Merged<T> {
    /// Follows symbolic links (relative or absolute, up to 16) from `path`
    /// to a kept file.
    pub fn resolve(&self, path: &str) -> Option<(&str, &Entry<T>)> {
        let mut p = normalize(path)?;
        for _ in 0..16 {
            if let Some((k, e)) = self.files.get_key_value(&p) {
                return Some((k.as_str(), e));
            }
            // The longest linked prefix of the path.
            let parts: Vec<&str> = p.split('/').collect();
            let mut next = None;
            for i in (1..=parts.len()).rev() {
                let prefix = parts[..i].join("/");
                if let Some(target) = self.links.get(&prefix) {
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        parts[..i - 1].join("/")
                    };
                    let rest = parts[i..].join("/");
                    next = normalize(&format!("{base}/{target}/{rest}"));
                    break;
                }
            }
            p = next?;
        }
        None
    }
}

/// A path inside the image: no leading `/` or `./`, no `.` parts, `..`
/// resolved (never above the root); `None` for the root itself.
pub fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

/// The largest file read into memory; larger ones are skipped with a notice.
pub const MAX_FILE: u64 = 512 << 20;

fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str, below: impl Fn(&V) -> bool) {
    let prefix = format!("{dir}/");
    let doomed: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, v)| below(v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        map.remove(&k);
    }
}

/// Opens a layer's (possibly compressed) stream as a tar reader.
fn decompress<'a, R: Read + 'a>(mut r: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        let got = r.read(&mut magic[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(r);
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(head)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            ruzstd::decoding::StreamingDecoder::new(head)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?,
        ),
        _ => Box::new(head),
    })
}

/// What the layers built so far.
struct State<T, W, R> {
    files: BTreeMap<String, Entry<T>>,
    links: BTreeMap<String, (usize, String)>,
    /// Every regular file's layer (kept or not), for counting and deletes.
    present: BTreeMap<String, usize>,
    too_large: Vec<(String, u64, usize)>,
    want: W,
    read: R,
}

impl<T: Clone, W: FnMut(&Header) -> bool, R: FnMut(&Header, Vec<u8>) -> Option<T>> State<T, W, R> {
    /// Removes `path` and, with `under`, what lower layers put below it.
    fn remove(&mut self, path: &str, i: usize, under: bool) {
        self.present.remove(path);
        self.links.remove(path);
        self.files.remove(path);
        if under {
            remove_under(&mut self.present, path, |l| *l < i);
            remove_under(&mut self.links, path, |(l, _)| *l < i);
            remove_under(&mut self.files, path, |e| e.layer < i);
        }
    }

    fn apply_all<S: Read>(
        &mut self,
        entries: tar::Entries<'_, S>,
        i: usize,
        what: &str,
    ) -> Result<(), OciError> {
        for entry in entries {
            self.apply(entry.map_err(|e| OciError::io(what, e))?, i, what)?;
        }
        Ok(())
    }

    fn apply<S: Read>(
        &mut self,
        mut entry: tar::Entry<'_, S>,
        i: usize,
        what: &str,
    ) -> Result<(), OciError> {
        let raw = entry
            .path()
            .map_err(|e| OciError::io(what, e))?
            .to_string_lossy()
            .into_owned();
        let Some(path) = normalize(&raw) else {
            return Ok(());
        };
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        // Whiteouts delete what lower layers put there.
        if name == ".wh..wh..opq" {
            remove_under(&mut self.present, &dir, |l| *l < i);
            remove_under(&mut self.links, &dir, |(l, _)| *l < i);
            remove_under(&mut self.files, &dir, |e| e.layer < i);
            return Ok(());
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            self.remove(&target, i, true);
            return Ok(());
        }
        let kind = entry.header().entry_type();
        // Whatever is written at a path replaces what was there; a
        // directory replaces a file or link of that name only.
        self.remove(&path, i, !kind.is_dir());
        if kind.is_symlink() {
            if let Ok(Some(target)) = entry.link_name() {
                self.links
                    .insert(path, (i, target.to_string_lossy().into_owned()));
            }
            return Ok(());
        }
        if kind.is_hard_link() {
            // The same content as a file earlier in this archive.
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .and_then(|t| normalize(&t.to_string_lossy()));
            if let Some(t) = target
                && let Some(&l) = self.present.get(&t)
            {
                self.present.insert(path.clone(), l.max(i));
                if let Some(e) = self.files.get(&t).cloned() {
                    self.files.insert(
                        path,
                        Entry {
                            layer: i,
                            value: e.value,
                        },
                    );
                }
            }
            return Ok(());
        }
        if !kind.is_file() {
            return Ok(());
        }
        self.present.insert(path.clone(), i);
        let size = entry.size();
        let header = Header {
            path: &path,
            mode: entry.header().mode().unwrap_or(0),
            size,
            layer: i,
        };
        if !(self.want)(&header) {
            return Ok(());
        }
        if size > MAX_FILE {
            self.too_large.push((path.clone(), size, i));
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| OciError::io(format!("{what}: /{path}"), e))?;
        if let Some(value) = (self.read)(&header, bytes) {
            self.files.insert(path.clone(), Entry { layer: i, value });
        }
        Ok(())
    }

    /// Reads layer `i`. A file (checked against its digest by the
    /// caller, on another thread): an uncompressed tar skips what is not
    /// wanted by seeking. A download: hashed as it is read.
    fn layer(&mut self, image: &Image, i: usize, what: &str) -> Result<(), OciError> {
        if let Some(mut file) = image.layer_seekable(i)? {
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut file, &mut magic).map_err(|e| OciError::io(what, e))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| OciError::io(what, e))?;
            if matches!(&magic[..n], [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd]) {
                let s = decompress(file).map_err(|e| OciError::io(what, e))?;
                let mut archive = tar::Archive::new(s);
                let entries = archive.entries().map_err(|e| OciError::io(what, e))?;
                return self.apply_all(entries, i, what);
            }
            let mut archive = tar::Archive::new(file);
            let entries = archive
                .entries_with_seek()
                .map_err(|e| OciError::io(what, e))?;
            return self.apply_all(entries, i, what);
        }
        let mut verified = image.layer(i)?;
        let read = decompress(&mut verified)
            .map_err(|e| OciError::io(what, e))
            .and_then(|s| {
                let mut archive = tar::Archive::new(s);
                let entries = archive.entries().map_err(|e| OciError::io(what, e))?;
                self.apply_all(entries, i, what)
            });
        match (read, verified.finish()) {
            (_, Err(e @ OciError::Digest { .. })) | (Err(e), _) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = r.read(&mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// Applies the image's layers. `want` says whether to read a regular
/// file; `read` turns its bytes into what the caller keeps (`None`: keep
/// nothing). `read` sees every version of a wanted path, layer by layer,
/// so a caller can follow a database file through the layers.
pub fn merge<T: Clone>(
    image: &Image,
    want: impl FnMut(&Header) -> bool,
    read: impl FnMut(&Header, Vec<u8>) -> Option<T>,
) -> Result<Merged<T>, OciError> {
    let mut state = State {
        files: BTreeMap::new(),
        links: BTreeMap::new(),
        present: BTreeMap::new(),
        too_large: Vec::new(),
        want,
        read,
    };
    let foreign = |i: usize| {
        let t = &image.layers[i].media_type;
        t.contains("foreign") || t.contains("nondistributable")
    };
    // Layers in files are checked against their digests on another
    // thread while they are read (hashing is most of the work for an
    // uncompressed layer); downloads as they stream.
    let in_files: Vec<usize> = (0..image.layers.len())
        .filter(|&i| !foreign(i) && image.blobs.in_files())
        .collect();
    let (read, checked) = std::thread::scope(|scope| {
        let checker = scope.spawn(|| in_files.iter().try_for_each(|&i| image.check_layer(i)));
        let read = (0..image.layers.len()).try_for_each(|i| {
            if foreign(i) {
                return Ok(());
            }
            let what = format!("layer {} ({})", i + 1, image.layers[i].digest);
            state.layer(image, i, &what)
        });
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err(OciError::Tool("the digest check stopped".into())));
        (read, checked)
    });
    // A blob that does not match its digest is refused as such, even when
    // the damage also broke the tar on the way.
    match (read, checked) {
        (_, Err(e @ OciError::Digest { .. })) | (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
        (Ok(()), Ok(())) => {}
    }
    Ok(Merged {
        files: state.files,
        links: state.links.into_iter().map(|(k, (_, t))| (k, t)).collect(),
        too_large: state.too_large,
        foreign: (0..image.layers.len()).filter(|&i| foreign(i)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(
            normalize("./etc/os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(normalize("/a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("../../etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(normalize("./"), None);
    }
}
