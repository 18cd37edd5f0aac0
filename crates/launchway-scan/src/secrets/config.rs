//! gitleaks TOML configs, loaded unchanged: `[[rules]]` with `regex`,
//! `keywords`, `secretGroup`, `entropy`, `path`, `tags` and allowlists
//! (`[rules.allowlist]` and `[[rules.allowlists]]`), global `[allowlist]` /
//! `[[allowlists]]`, and `[extend]` with `useDefault`, `path` and
//! `disabledRules`.

use super::rules::{Allowlist, Rule, Target, defaults};
use regex::bytes::Regex;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}:{}", .column.unwrap_or(1))).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rules: Vec<Rule>,
    pub allowlists: Vec<Allowlist>,
}

impl Config {
    /// The built-in rules, with a global allowlist for installed
    /// dependencies, lockfiles and generated files (as gitleaks has one).
    pub fn defaults() -> Config {
        let paths = [
            r"(?:^|/)node_modules/",
            r"(?:^|/)(?:site|dist)-packages/",
            r"(?:^|/)vendor/",
            r"(?:^|/)\.venv/",
            r"(?:^|/)__pycache__/",
            r"(?:^|/)(?:Cargo\.lock|package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|uv\.lock|Pipfile\.lock|go\.sum)$",
            r"\.(?:min\.js|js\.map|css\.map)$",
        ];
        let allow = Allowlist {
            description: "installed dependencies, lockfiles and generated files".into(),
            paths: paths.iter().filter_map(|p| Regex::new(p).ok()).collect(),
            ..Allowlist::default()
        };
        // Template references where a value would be: `${GITHUB_TOKEN}`,
        // `$TOKEN`, `{credential}`, `{{ secrets.X }}`, `%s`, `<password>`,
        // `$(cat key)` — what a URL or an assignment holds before a value
        // is filled in, not a leak (gitleaks' global allowlist has these).
        let placeholders = [
            r"^\$\{[^}]*\}$",
            r"^\$\{\{[^}]*\}\}$",
            r"^\$[A-Za-z_][A-Za-z0-9_]*$",
            r"^\$\d+$",
            r"^\{+[ \t]*[\w .|()-]*[ \t]*\}+$",
            r"^%[sdr]$|^%\([\w]+\)[sdr]$",
            r"^<[^<>]*>$",
            r"^\$\([^)]*\)$",
        ];
        let template = Allowlist {
            description: "template references, not values".into(),
            target: Target::Secret,
            regexes: placeholders
                .iter()
                .filter_map(|p| Regex::new(p).ok())
                .collect(),
            ..Allowlist::default()
        };
        Config {
            rules: defaults(),
            allowlists: vec![allow, template],
        }
    }

    /// Loads a config file (following `[extend] path`, at most 4 deep).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load_depth(path, 0)
    }

    /// Parses config text; `base` resolves `[extend] path`.
    pub fn parse(file: &str, text: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        parse_depth(file, text, base, 0)
    }
}

fn load_depth(path: &Path, depth: usize) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    parse_depth(&file, &text, path.parent(), depth)
}

/// Go's regexp reads a `{` that does not start a repetition (`{2}`,
/// `{2,}`, `{2,5}` after something to repeat) as a literal brace, so
/// gitleaks configs write `\${{ … }}` and `import {a, b}` unescaped; the
/// `regex` crate rejects them. This escapes exactly those braces (outside
/// character classes and escapes), leaving everything else as written.
pub fn go_braces(re: &str) -> std::borrow::Cow<'_, str> {
    if !re.contains(['{', '}']) {
        return std::borrow::Cow::Borrowed(re);
    }
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Whether the last thing written can be repeated (not the start, `(`,
    // `|`, or a group flag such as `(?i)`).
    let mut repeatable = false;
    // A repetition opened at `{` is closed by this `}`.
    let mut open_repeat = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                // An escape and what it escapes, as written.
                let n = re[i + 1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&re[i..i + 1 + n]);
                i += 1 + n;
                repeatable = true;
                continue;
            }
            b'[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                // `[]…]` and `[^]…]`: that first `]` is a literal.
                if b.get(i) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    out.push(']');
                    i += 1;
                }
                continue;
            }
            b'[' if in_class && b.get(i + 1) == Some(&b':') => {
                // `[:alpha:]` inside a class.
                if let Some(end) = re[i + 2..].find(":]") {
                    out.push_str(&re[i..i + 2 + end + 2]);
                    i += 2 + end + 2;
                    continue;
                }
            }
            b']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
                repeatable = true;
                continue;
            }
            _ if in_class => {}
            b'{' => {
                let rest = &re[i + 1..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let after = &rest[digits..];
                let tail = after.strip_prefix(',').map_or(after, |t| {
                    t.trim_start_matches(|ch: char| ch.is_ascii_digit())
                });
                if repeatable && digits > 0 && tail.starts_with('}') {
                    open_repeat = true;
                    out.push('{');
                } else {
                    out.push_str("\\{");
                    repeatable = true;
                }
                i += 1;
                continue;
            }
            b'}' => {
                if open_repeat {
                    open_repeat = false;
                    out.push('}');
                } else {
                    out.push_str("\\}");
                    repeatable = true;
                }
                i += 1;
                continue;
            }
            b'(' => {
                repeatable = false;
                out.push('(');
                i += 1;
                // A flag group `(?i)` or the start of `(?:`, `(?P<n>`.
                if b.get(i) == Some(&b'?') {
                    let end = re[i..]
                        .find([':', ')', '>'])
                        .map_or(re.len(), |e| i + e + 1);
                    out.push_str(&re[i..end]);
                    i = end;
                }
                continue;
            }
            b'|' => {
                repeatable = false;
                out.push('|');
                i += 1;
                continue;
            }
            _ => {}
        }
        let n = re[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&re[i..i + n]);
        i += n;
        if !in_class {
            repeatable = !matches!(c, b'^');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The compiled-size limit for config regexes: gitleaks' own
/// `generic-api-key`, `pypi-upload-token` and `vault-batch-token` need
/// more than the `regex` crate's 10 MB default.
const REGEX_SIZE_LIMIT: usize = 256 << 20;

fn compile(file: &str, what: &str, re: &str) -> Result<Regex, ConfigError> {
    regex::bytes::RegexBuilder::new(&go_braces(re))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            message: format!(
                "{what}: invalid regex: {}",
                e.to_string().lines().last().unwrap_or("")
            ),
        })
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn allowlist(file: &str, what: &str, t: &toml::Value) -> Result<Allowlist, ConfigError> {
    let target = match t.get("regexTarget").and_then(|v| v.as_str()) {
        None | Some("secret") => Target::Secret,
        Some("match") => Target::Match,
        Some("line") => Target::Line,
        Some(other) => {
            return Err(ConfigError {
                file: file.into(),
                line: None,
                column: None,
                message: format!(
                    "{what}: regexTarget must be secret, match or line, not '{other}'"
                ),
            });
        }
    };
    let and = match t.get("condition").and_then(|v| v.as_str()) {
        None | Some("OR") | Some("or") => false,
        Some("AND") | Some("and") => true,
        Some(other) => {
            return Err(ConfigError {
                file: file.into(),
                line: None,
                column: None,
                message: format!("{what}: condition must be AND or OR, not '{other}'"),
            });
        }
    };
    Ok(Allowlist {
        description: t
            .get("description")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        and,
        target,
        regexes: strings(t.get("regexes"))
            .iter()
            .map(|r| compile(file, &format!("{what}.regexes"), r))
            .collect::<Result<_, _>>()?,
        paths: strings(t.get("paths"))
            .iter()
            .map(|r| compile(file, &format!("{what}.paths"), r))
            .collect::<Result<_, _>>()?,
        stopwords: strings(t.get("stopwords")),
        commits: strings(t.get("commits")),
        identifiers: false,
    })
}

fn allowlists_of(
    file: &str,
    what: &str,
    t: &toml::Value,
    single: &str,
    many: &str,
) -> Result<Vec<Allowlist>, ConfigError> {
    let mut out = Vec::new();
    if let Some(a) = t.get(single) {
        out.push(allowlist(file, &format!("{what}.{single}"), a)?);
    }
    if let Some(list) = t.get(many).and_then(|v| v.as_array()) {
        for (i, a) in list.iter().enumerate() {
            out.push(allowlist(file, &format!("{what}.{many}[{i}]"), a)?);
        }
    }
    Ok(out)
}

fn parse_depth(
    file: &str,
    text: &str,
    base: Option<&Path>,
    depth: usize,
) -> Result<Config, ConfigError> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e.span().map_or((None, None), |s| {
            let (l, c) = crate::sbom::collect::position_of(text, s.start);
            (Some(l), Some(c))
        });
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message: format!("invalid TOML: {}", e.message()),
        }
    })?;
    let root = toml::Value::Table(doc);
    let mut cfg = Config {
        rules: Vec::new(),
        allowlists: Vec::new(),
    };
    let mut disabled: Vec<String> = Vec::new();
    if let Some(ext) = root.get("extend") {
        if ext.get("useDefault").and_then(|v| v.as_bool()) == Some(true) {
            cfg = Config::defaults();
        }
        if let Some(p) = ext.get("path").and_then(|v| v.as_str()) {
            if depth >= 4 {
                return Err(ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: "[extend] path nested more than 4 deep".into(),
                });
            }
            let path = base.map_or_else(|| Path::new(p).to_path_buf(), |b| b.join(p));
            let parent = load_depth(&path, depth + 1)?;
            merge(&mut cfg, parent);
        }
        disabled = strings(ext.get("disabledRules"));
    }
    let mut own = Config {
        rules: Vec::new(),
        allowlists: allowlists_of(file, "allowlist", &root, "allowlist", "allowlists")?,
    };
    if let Some(rules) = root.get("rules").and_then(|v| v.as_array()) {
        for (i, r) in rules.iter().enumerate() {
            let what = format!("rules[{i}]");
            let id = r
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: format!("{what}: a rule needs an 'id'"),
                })?;
            let what = format!("rules[{i}] ({id})");
            let regex = r
                .get("regex")
                .and_then(|v| v.as_str())
                .map(|re| compile(file, &what, re))
                .transpose()?;
            let path = r
                .get("path")
                .and_then(|v| v.as_str())
                .map(|re| compile(file, &format!("{what}.path"), re))
                .transpose()?;
            if regex.is_none() && path.is_none() {
                return Err(ConfigError {
                    file: file.into(),
                    line: None,
                    column: None,
                    message: format!("{what}: a rule needs a 'regex' or a 'path'"),
                });
            }
            let secret_group = r
                .get("secretGroup")
                .and_then(|v| v.as_integer())
                .unwrap_or(0);
            own.rules.push(Rule {
                window: None,
                id: id.to_string(),
                description: r
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or(id)
                    .to_string(),
                regex,
                secret_group: usize::try_from(secret_group).unwrap_or(0),
                entropy: r
                    .get("entropy")
                    .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))),
                keywords: strings(r.get("keywords"))
                    .iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect(),
                path,
                tags: strings(r.get("tags")),
                allowlists: allowlists_of(file, &what, r, "allowlist", "allowlists")?,
            });
        }
    }
    merge(&mut cfg, own);
    cfg.rules.retain(|r| !disabled.contains(&r.id));
    Ok(cfg)
}

/// Rules of `other` replace rules with the same id; allowlists add up.
fn merge(into: &mut Config, other: Config) {
    for r in other.rules {
        match into.rules.iter_mut().find(|x| x.id == r.id) {
            Some(slot) => *slot = r,
            None => into.rules.push(r),
        }
    }
    into.allowlists.extend(other.allowlists);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitleaks_config() {
        let text = r#"
title = "custom"
[extend]
useDefault = true
disabledRules = ["jwt"]

[[rules]]
id = "internal-token"
description = "Internal service token"
regex = '''itk_([a-z0-9]{32})'''
secretGroup = 1
entropy = 3.0
keywords = ["itk_"]
tags = ["internal"]
  [rules.allowlist]
  regexTarget = "line"
  regexes = ['''EXAMPLE''']

[allowlist]
paths = ['''(^|/)testdata/''']
stopwords = ["dummy"]
"#;
        let cfg = Config::parse("gl.toml", text, None).unwrap();
        assert!(
            cfg.rules.iter().any(|r| r.id == "github-pat"),
            "defaults kept"
        );
        assert!(!cfg.rules.iter().any(|r| r.id == "jwt"), "disabled");
        let r = cfg.rules.iter().find(|r| r.id == "internal-token").unwrap();
        assert_eq!(
            (r.secret_group, r.entropy, r.allowlists[0].target),
            (1, Some(3.0), Target::Line)
        );
        assert_eq!(cfg.allowlists.len(), 3, "the defaults' two and the file's");
        let e = Config::parse(
            "gl.toml",
            "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("invalid regex"), "{e}");
        let e = Config::parse("gl.toml", "[[rules]\n", None).unwrap_err();
        assert_eq!(e.line, Some(1));
        // Go's literal braces, as gitleaks' own config writes them.
        for (go, text, matches) in [
            (r"^\${(?:[A-Z_]+|[a-z_]+)}$", "${GITHUB_TOKEN}", true),
            (r"^\$(?:\d+|{\d+})$", "${12}", true),
            (r#"['"]?\$?{{[^}]+}}['"]?"#, "{{ secrets.X }}", true),
            (
                r"import[ \t]+{[ \t\w,]+}[ \t]+from",
                "import { a, b } from",
                true,
            ),
            (r"a{2}[{}]{1,3}x{2,}", "aa{}xx", true),
            (r"a{2}", "a{2}", false),
            (r"[{]\{x}", "{{x}", true),
        ] {
            let rust = go_braces(go);
            let re = regex::Regex::new(&rust).unwrap_or_else(|e| panic!("{go} -> {rust}: {e}"));
            assert_eq!(re.is_match(text), matches, "{go} -> {rust} on {text}");
        }
        // A rule as large as gitleaks' generic-api-key: over the regex
        // crate's default size limit, within ours.
        let big = r"(?i)[\w.-]{0,150}(?:key|secret|token|passwd)[\w.-]{0,150}[=:]\w{10,150}";
        assert!(
            regex::bytes::Regex::new(big).is_err(),
            "over the default limit"
        );
        let text = format!("[[rules]]\nid = \"big\"\nregex = '''{big}'''\n");
        let cfg = Config::parse("gl.toml", &text, None).unwrap();
        assert_eq!(cfg.rules.len(), 1);
        // Without useDefault only the file's rules apply.
        let only = Config::parse("gl.toml", "[[rules]]\nid = \"a\"\nregex = 'x'\n", None).unwrap();
        assert_eq!(only.rules.len(), 1);
    }
}

#[cfg(test)]
mod properties {
    use super::go_braces;
    use proptest::prelude::*;

    proptest! {
        /// Any text: no panic; without braces it is left as it is; a
        /// pattern Rust already accepts keeps its meaning on braces-free
        /// text.
        #[test]
        fn go_braces_never_panics(re in r"[a-z{}\[\]\\(|)?:0-9,^$.*+-]{0,30}") {
            let out = go_braces(&re);
            if !re.contains(['{', '}']) {
                prop_assert_eq!(out.as_ref(), re.as_str());
            }
            if let (Ok(a), Ok(b)) = (regex::Regex::new(&re), regex::Regex::new(&out)) {
                for t in ["", "a", "ab1", "aaa", "x,y"] {
                    prop_assert_eq!(a.is_match(t), b.is_match(t), "{} vs {} on {}", re, out, t);
                }
            }
        }
    }
}
