//! Alpine: `lib/apk/db/installed`, one paragraph per package of
//! `X:value` lines (`P` name, `V` version, `A` architecture, `o` origin —
//! the source package Alpine's advisories name, `L` license, `D` deps).

use super::err;
use crate::sbom::{CollectError, Component, SourcePackage};
use crate::version::Ecosystem;

pub fn apk_installed(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let mut out: Vec<Component> = Vec::new();
    let mut deps: Vec<Vec<String>> = Vec::new();
    let mut provides: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut cur: Vec<(char, String)> = Vec::new();
    let mut start = 1;
    let lines: Vec<&str> = text.lines().chain(std::iter::once("")).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                let get = |k: char| cur.iter().find(|(c, _)| *c == k).map(|(_, v)| v.as_str());
                let (Some(name), Some(version)) = (get('P'), get('V')) else {
                    return Err(err(
                        file,
                        Some(start),
                        "a package entry without 'P:' (name) and 'V:' (version)",
                    ));
                };
                let mut c = Component::new(Ecosystem::Alpine, name, version, file);
                if let Some(arch) = get('A') {
                    c.purl = format!("{}?arch={arch}", c.purl);
                }
                if let Some(l) = get('L').filter(|l| !l.is_empty()) {
                    c.licenses.push(l.to_string());
                }
                if let Some(origin) = get('o') {
                    c.source = Some(SourcePackage {
                        name: origin.to_string(),
                        version: version.to_string(),
                    });
                }
                let idx = out.len();
                provides.insert(name.to_string(), idx);
                for p in get('p').unwrap_or("").split_whitespace() {
                    let p = p.split(['=', '<', '>', '~']).next().unwrap_or(p);
                    provides.entry(p.to_string()).or_insert(idx);
                }
                deps.push(
                    get('D')
                        .unwrap_or("")
                        .split_whitespace()
                        .filter(|d| !d.starts_with('!'))
                        .map(|d| {
                            d.split(['=', '<', '>', '~'])
                                .next()
                                .unwrap_or(d)
                                .to_string()
                        })
                        .collect(),
                );
                out.push(c);
                cur.clear();
            }
            start = i + 2;
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(err(file, Some(i + 1), "expected 'X:value'"));
        };
        let mut chars = k.chars();
        let (Some(key), None) = (chars.next(), chars.next()) else {
            return Err(err(file, Some(i + 1), "a field name is one letter"));
        };
        cur.push((key, v.to_string()));
    }
    // Dependencies name packages or what they provide (so:, cmd:, pc:).
    let purls: Vec<String> = out.iter().map(|c| c.purl.clone()).collect();
    for (c, ds) in out.iter_mut().zip(deps) {
        let mut seen = Vec::new();
        for d in ds {
            if let Some(&j) = provides.get(&d)
                && !seen.contains(&purls[j])
                && purls[j] != c.purl
            {
                seen.push(purls[j].clone());
            }
        }
        c.dependencies = seen;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_database() {
        let text = "C:Q1abc=\nP:libssl3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\nD:so:libc.musl-x86_64.so.1 so:libcrypto.so.3\np:so:libssl.so.3=3\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\np:so:libcrypto.so.3=3\n\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\n";
        let cs = apk_installed("lib/apk/db/installed", text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0].purl, "pkg:apk/alpine/libssl3@3.1.4-r5?arch=x86_64");
        assert_eq!(cs[0].advisory_key(), ("openssl", "3.1.4-r5"));
        assert_eq!(cs[2].advisory_key(), ("musl", "1.2.4_git20230717-r4"));
        assert_eq!(cs[0].dependencies, [cs[2].purl.clone(), cs[1].purl.clone()]);
        let e = apk_installed("f", "P:x\n\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("f:1"), "{e}");
        assert!(apk_installed("f", "nonsense\n").is_err());
    }
}
