//! Go: `go.mod` requirements (with `replace` directives applied) and the
//! modules `go.sum` records.

use super::err;
use crate::sbom::{CollectError, Component};
use crate::version::Ecosystem;
use std::collections::HashMap;

fn strip_comment(l: &str) -> &str {
    l.split("//").next().unwrap_or("").trim()
}

pub fn go_mod(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let mut requires: Vec<(String, String, usize)> = Vec::new();
    let mut replaces: HashMap<String, Option<(String, String)>> = HashMap::new();
    let mut block: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        if line == ")" {
            block = None;
            continue;
        }
        let (verb, body) = match block {
            Some(v) => (v, line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(match verb {
                        "require" => "require",
                        "replace" => "replace",
                        _ => "other",
                    });
                    continue;
                }
                (verb, rest)
            }
        };
        match verb {
            "require" => {
                let mut parts = body.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some(m), Some(v)) => {
                        requires.push((m.trim_matches('"').to_string(), v.to_string(), line_no))
                    }
                    _ => {
                        return Err(err(
                            file,
                            Some(line_no),
                            "expected 'require MODULE VERSION'",
                        ));
                    }
                }
            }
            "replace" => {
                let Some((old, new)) = body.split_once("=>") else {
                    return Err(err(file, Some(line_no), "expected 'replace OLD => NEW'"));
                };
                let old = old.split_whitespace().next().unwrap_or("").to_string();
                let mut new_parts = new.split_whitespace();
                let target = new_parts.next().unwrap_or("");
                // A local directory replacement has no registry version.
                let replacement = match new_parts.next() {
                    Some(v) if !target.starts_with('.') && !target.starts_with('/') => {
                        Some((target.to_string(), v.to_string()))
                    }
                    _ => None,
                };
                replaces.insert(old, replacement);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (module, version, _) in requires {
        let (m, v) = match replaces.get(&module) {
            Some(Some((m, v))) => (m.clone(), v.clone()),
            Some(None) => continue,
            None => (module, version),
        };
        out.push(Component::new(Ecosystem::Go, &m, &v, file));
    }
    Ok(out)
}

pub fn go_sum(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(m), Some(v), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err(file, Some(i + 1), "expected 'MODULE VERSION h1:HASH'"));
        };
        if !h.starts_with("h1:") {
            return Err(err(file, Some(i + 1), format!("unknown hash '{h}'")));
        }
        // `/go.mod` lines only pin a module's go.mod, not its code.
        if v.ends_with("/go.mod") {
            continue;
        }
        out.push(Component::new(Ecosystem::Go, m, v, file));
    }
    Ok(out)
}

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";

fn uvarint(b: &[u8]) -> Option<(usize, usize)> {
    let mut x: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(x).ok()?, i + 1));
        }
    }
    None
}

/// Modules a Go binary was built from (its embedded build info, Go 1.18+):
/// the main module and every `dep`, with `=>` replacements applied.
pub fn binary(file: &str, data: &[u8]) -> Vec<Component> {
    let Some(at) = data
        .windows(BUILDINFO_MAGIC.len())
        .position(|w| w == BUILDINFO_MAGIC)
    else {
        return Vec::new();
    };
    let Some(&flags) = data.get(at + 15) else {
        return Vec::new();
    };
    if flags & 0x2 == 0 {
        return Vec::new(); // pre-1.18 layout (pointers), not read
    }
    let mut p = at + 32;
    let mut strings = Vec::new();
    for _ in 0..2 {
        let Some((len, n)) = data.get(p..).and_then(uvarint) else {
            return Vec::new();
        };
        let Some(s) = data.get(p + n..p + n + len) else {
            return Vec::new();
        };
        strings.push(s);
        p += n + len;
    }
    // The module info is wrapped in 16-byte sentinels.
    let info = strings[1];
    let info = if info.len() >= 33 && info[info.len() - 17] == b'\n' {
        &info[16..info.len() - 16]
    } else {
        info
    };
    let text = String::from_utf8_lossy(info);
    let mut out: Vec<Component> = Vec::new();
    // The toolchain: Go advisories name it `stdlib`, versioned without `go`.
    let toolchain = String::from_utf8_lossy(strings[0]);
    if let Some(v) = toolchain
        .strip_prefix("go")
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    {
        out.push(Component::new(
            Ecosystem::Go,
            "stdlib",
            v.split_whitespace().next().unwrap_or(v),
            file,
        ));
    }
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, version, ..] if !version.is_empty() && *version != "(devel)" => {
                out.push(Component::new(Ecosystem::Go, path, version, file));
            }
            ["=>", path, version, ..] if !version.is_empty() => {
                if let Some(last) = out.last_mut() {
                    *last = Component::new(Ecosystem::Go, path, version, file);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules() {
        let text = "module example.com/app\n\ngo 1.21\n\nrequire github.com/a/b v1.2.3\n\nrequire (\n\tgithub.com/c/d v0.0.0-20191109021931-daa7c04131f5 // indirect\n\tgolang.org/x/text v0.14.0\n\tgithub.com/e/f v2.0.0+incompatible\n)\n\nreplace github.com/a/b => github.com/fork/b v1.2.4\nreplace golang.org/x/text => ../text\n";
        let cs = go_mod("go.mod", text).unwrap();
        let p: Vec<&str> = cs.iter().map(|c| c.purl.as_str()).collect();
        assert_eq!(
            p,
            [
                "pkg:golang/github.com/fork/b@v1.2.4",
                "pkg:golang/github.com/c/d@v0.0.0-20191109021931-daa7c04131f5",
                "pkg:golang/github.com/e/f@v2.0.0%2Bincompatible",
            ]
        );
        let sum = "github.com/a/b v1.2.3 h1:abc=\ngithub.com/a/b v1.2.3/go.mod h1:def=\n";
        assert_eq!(go_sum("go.sum", sum).unwrap().len(), 1);
        assert_eq!(go_sum("go.sum", "garbage\n").unwrap_err().line, Some(1));
    }

    #[test]
    fn binary_build_info() {
        // A build-info blob laid out as the Go linker writes it.
        let mut data = b"\x7fELF....padding....".to_vec();
        let mut header = BUILDINFO_MAGIC.to_vec();
        header.push(8);
        header.push(0x2);
        header.resize(32, 0);
        data.extend(header);
        let version = b"go1.22.1";
        data.push(version.len() as u8);
        data.extend(version);
        let mut info = vec![0x30u8; 16];
        info.extend(b"path\texample.com/cmd/app\nmod\texample.com/app\tv1.2.3\th1:x=\ndep\tgolang.org/x/sys\tv0.20.0\th1:y=\ndep\tgithub.com/old/lib\tv1.0.0\n=>\tgithub.com/new/lib\tv1.1.0\th1:z=\n");
        info.extend(vec![0xf9u8; 16]);
        let mut n = info.len();
        while n >= 0x80 {
            data.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        data.push(n as u8);
        data.extend(&info);
        let cs = binary("bin/app", &data);
        let p: Vec<&str> = cs.iter().map(|c| c.purl.as_str()).collect();
        assert_eq!(
            p,
            [
                "pkg:golang/stdlib@1.22.1",
                "pkg:golang/example.com/app@v1.2.3",
                "pkg:golang/golang.org/x/sys@v0.20.0",
                "pkg:golang/github.com/new/lib@v1.1.0"
            ]
        );
        assert!(binary("x", b"no build info here").is_empty());
    }
}
