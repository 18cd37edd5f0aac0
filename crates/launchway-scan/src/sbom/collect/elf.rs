//! What an ELF executable says it was built from, read from two sections
//! only (found through the section headers, never the whole file): Go's
//! `.go.buildinfo` (modules, Go 1.18+) and cargo-auditable's `.dep-v0`
//! (a zlib-compressed JSON list of the crates, Rust).

use super::go;
use crate::sbom::Component;
use crate::version::Ecosystem;
use std::io::Read;

/// Random access to the bytes of a file or of a buffer.
pub trait At {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Option<()>;
}

impl At for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Option<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset).ok()
    }
}

impl At for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Option<()> {
        let start = usize::try_from(offset).ok()?;
        buf.copy_from_slice(self.get(start..start.checked_add(buf.len())?)?);
        Some(())
    }
}

/// The most a section read here may hold.
const MAX_SECTION: u64 = 64 << 20;

/// The named sections' contents, for a 64-bit little-endian ELF (what Go
/// and Rust build for Linux on amd64 and arm64).
fn sections(f: &(impl At + ?Sized), wanted: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut h = [0u8; 64];
    if f.read_at(&mut h, 0).is_none() || h[..4] != *b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return Vec::new();
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&h, 0x28),
        u64::from(u16_at(&h, 0x3a)),
        u64::from(u16_at(&h, 0x3c)),
        u64::from(u16_at(&h, 0x3e)),
    );
    if shentsize < 64 || shnum == 0 || shnum > 4096 || shstrndx >= shnum {
        return Vec::new();
    }
    let Ok(table_len) = usize::try_from(shentsize * shnum) else {
        return Vec::new();
    };
    let mut table = vec![0u8; table_len];
    if f.read_at(&mut table, shoff).is_none() {
        return Vec::new();
    }
    let section = |i: u64| -> (u32, u64, u64) {
        let b = &table[usize::try_from(i * shentsize).unwrap_or(0)..];
        (
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u64_at(b, 0x18),
            u64_at(b, 0x20),
        )
    };
    let (_, str_off, str_size) = section(shstrndx);
    if str_size > 1 << 20 {
        return Vec::new();
    }
    let mut names = vec![0u8; usize::try_from(str_size).unwrap_or(0)];
    if f.read_at(&mut names, str_off).is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..shnum {
        let (name, off, size) = section(i);
        let Ok(n) = usize::try_from(name) else {
            continue;
        };
        let Some(found) = wanted.iter().find(|w| {
            names.get(n..n + w.len()) == Some(w.as_bytes()) && names.get(n + w.len()) == Some(&0)
        }) else {
            continue;
        };
        if size > MAX_SECTION {
            continue;
        }
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
        if f.read_at(&mut data, off).is_some() {
            out.push(((*found).to_string(), data));
        }
    }
    out
}

/// Components an executable at `rel` was built from (Go modules, Rust
/// crates); empty for anything else.
pub fn modules(f: &(impl At + ?Sized), rel: &str) -> Vec<Component> {
    let mut out = Vec::new();
    for (name, data) in sections(f, &[".go.buildinfo", ".dep-v0"]) {
        match name.as_str() {
            ".go.buildinfo" => out.extend(go::binary(rel, &data)),
            _ => out.extend(auditable(rel, &data)),
        }
    }
    out
}

/// cargo-auditable's dependency list: `{"packages": [{"name", "version",
/// "source", "kind", "dependencies": [index…], "root"}]}`.
pub fn auditable(rel: &str, compressed: &[u8]) -> Vec<Component> {
    let mut text = Vec::new();
    if flate2::read::ZlibDecoder::new(compressed)
        .take(8 << 20)
        .read_to_end(&mut text)
        .is_err()
    {
        return Vec::new();
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(packages) = doc["packages"].as_array() else {
        return Vec::new();
    };
    let mut out: Vec<Component> = packages
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            let version = p["version"].as_str()?;
            let mut c = Component::new(Ecosystem::Crates, name, version, rel);
            // The binary's own crate and path dependencies are not on crates.io.
            c.local = p["root"].as_bool() == Some(true)
                || !matches!(p["source"].as_str(), Some("crates.io") | None);
            Some(c)
        })
        .collect();
    let purls: Vec<String> = out.iter().map(|c| c.purl.clone()).collect();
    for (c, p) in out.iter_mut().zip(packages) {
        if let Some(deps) = p["dependencies"].as_array() {
            c.dependencies = deps
                .iter()
                .filter_map(|d| purls.get(usize::try_from(d.as_u64()?).ok()?).cloned())
                .collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal ELF64 with one named section holding `data`.
    pub fn elf_with(section: &str, data: &[u8]) -> Vec<u8> {
        let names = format!("\0{section}\0.shstrtab\0");
        let data_off = 64u64;
        let names_off = data_off + data.len() as u64;
        let sh_off = names_off + names.len() as u64;
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[0x28..0x30].copy_from_slice(&sh_off.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(data);
        f.extend_from_slice(names.as_bytes());
        let header = |name: u32, off: u64, size: u64| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            h
        };
        f.extend(header(0, 0, 0));
        f.extend(header(1, data_off, data.len() as u64));
        f.extend(header(
            u32::try_from(section.len() + 2).unwrap_or(0),
            names_off,
            names.len() as u64,
        ));
        f
    }

    #[test]
    fn a_cargo_auditable_binary_lists_its_crates() {
        let json = br#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","kind":"runtime","dependencies":[1],"root":true},
            {"name":"time","version":"0.1.45","source":"crates.io","kind":"runtime","dependencies":[]}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap_or_default();
        let elf = elf_with(".dep-v0", &z.finish().unwrap_or_default());
        let cs = modules(elf.as_slice(), "usr/bin/app");
        let names: Vec<(&str, &str, bool)> = cs
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str(), c.local))
            .collect();
        assert_eq!(names, [("app", "0.1.0", true), ("time", "0.1.45", false)]);
        assert_eq!(cs[0].dependencies, ["pkg:cargo/time@0.1.45"]);
        // Not ELF, truncated, or a corrupt section: nothing, no panic.
        assert!(modules(&b"#!/bin/sh\n"[..], "x").is_empty());
        assert!(modules(&elf[..70], "x").is_empty());
        assert!(modules(elf_with(".dep-v0", b"garbage").as_slice(), "x").is_empty());
    }
}
