//! Changing one value in an environment file without disturbing the rest:
//! comments, order, quoting and layout stay as the author wrote them. The
//! value's node span says where its text is; a key that is not there yet
//! is added under its parent (a block mapping), or at the end for a
//! top-level key. Pure: text in, text out.

use launchway_yaml::{Node, NodeKind, Pos};

/// The byte offset of a 1-based line and column.
fn offset(text: &str, p: Pos) -> Option<usize> {
    let mut line = 1u32;
    let mut start = 0usize;
    if p.line > 1 {
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line += 1;
                if line == p.line {
                    start = i + 1;
                    break;
                }
            }
        }
        if line != p.line {
            return None;
        }
    }
    let col = usize::try_from(p.col.saturating_sub(1)).ok()?;
    let line_text = &text[start..];
    let byte = line_text
        .char_indices()
        .nth(col)
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + byte)
}

/// A scalar written so YAML reads it back as this string.
pub fn scalar(value: &str) -> String {
    let doc = crate::render::yaml::documents(&[serde_json::json!({ "k": value })]);
    doc.trim_end()
        .strip_prefix("k: ")
        .unwrap_or(value)
        .to_string()
}

/// As [`set`], but a value YAML reads as a number, boolean or null is
/// written as one (`--set replicas=5` sets the number 5).
pub fn set_inferred(text: &str, path: &[&str], value: &str) -> Result<String, String> {
    let typed = launchway_yaml::parse(&format!("k: {value}"))
        .ok()
        .and_then(|n| n.get("k").cloned())
        .is_some_and(|n| matches!(n.kind, NodeKind::Number(_) | NodeKind::Bool(_)));
    set_as(text, path, value, typed)
}

/// Sets `path` (e.g. `["release"]`, `["resources", "limits", "cpu"]`) to
/// the string `value` in `text`.
pub fn set(text: &str, path: &[&str], value: &str) -> Result<String, String> {
    set_as(text, path, value, false)
}

fn set_as(text: &str, path: &[&str], value: &str, raw: bool) -> Result<String, String> {
    let scalar = |v: &str| if raw { v.trim().to_string() } else { scalar(v) };
    let root = launchway_yaml::parse(text).map_err(|e| {
        format!(
            "invalid YAML at {}:{}: {}",
            e.pos.line, e.pos.col, e.message
        )
    })?;
    let root = match root.kind {
        NodeKind::Map(_) => root,
        NodeKind::Null => {
            return Ok(format!("{text}{}", block(path, &scalar(value), 0)));
        }
        _ => return Err("the file is not a mapping".into()),
    };
    // The deepest existing node along the path.
    let mut node: &Node = &root;
    let mut depth = 0;
    for key in path {
        match node.get(key) {
            Some(n) => {
                node = n;
                depth += 1;
            }
            None => break,
        }
    }
    if depth == path.len() {
        if !node.is_scalar() {
            return Err(format!(
                "{} is {}, not a single value",
                path.join("."),
                node.type_name()
            ));
        }
        // Replace the value's text. A null value (`key:`) has an empty span.
        let (a, b) = (offset(text, node.span.start), offset(text, node.span.end));
        let (Some(a), Some(b)) = (a, b) else {
            return Err("cannot locate the value in the file".into());
        };
        let new = scalar(value);
        // A null value's (empty) span can sit on the key's colon.
        let (a, b) = if matches!(node.kind, NodeKind::Null) {
            let at = if text[a..].starts_with(':') { a + 1 } else { a };
            (at, at)
        } else {
            (a, b.max(a))
        };
        let mut out = String::with_capacity(text.len() + new.len());
        out.push_str(&text[..a]);
        if matches!(node.kind, NodeKind::Null) && !text[..a].ends_with(' ') {
            out.push(' ');
        }
        out.push_str(&new);
        out.push_str(&text[b..]);
        return Ok(out);
    }
    if depth == 0 {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&block(path, &scalar(value), 0));
        return Ok(out);
    }
    // Add under the existing parent, which must be a block mapping.
    if node.as_map().is_none() || text_of(text, node).trim_start().starts_with('{') {
        return Err(format!(
            "cannot add {} here: {} is not a block mapping (add it by hand)",
            path.join("."),
            path[..depth].join(".")
        ));
    }
    let first_key = node
        .as_map()
        .and_then(|m| m.first())
        .map(|(k, _)| k.span.start);
    let Some(first) = first_key else {
        return Err(format!(
            "{} is empty; add the key by hand",
            path[..depth].join(".")
        ));
    };
    let indent = usize::try_from(first.col.saturating_sub(1)).unwrap_or(0);
    // Insert after the parent's last line.
    let end = offset(text, node.span.end).unwrap_or(text.len());
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
    let insert_at = if text[..end].ends_with('\n') {
        end
    } else {
        line_end
    };
    let mut out = String::new();
    out.push_str(&text[..insert_at]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&block(&path[depth..], &scalar(value), indent));
    out.push_str(&text[insert_at..]);
    Ok(out)
}

fn text_of<'a>(text: &'a str, n: &Node) -> &'a str {
    match (offset(text, n.span.start), offset(text, n.span.end)) {
        (Some(a), Some(b)) if a <= b => &text[a..b],
        _ => "",
    }
}

/// `a:\n  b: value\n` at `indent`; `value` is already YAML.
fn block(path: &[&str], value: &str, indent: usize) -> String {
    let mut out = String::new();
    for (i, key) in path.iter().enumerate() {
        let pad = " ".repeat(indent + 2 * i);
        if i + 1 == path.len() {
            out.push_str(&format!("{pad}{}: {value}\n", scalar(key)));
        } else {
            out.push_str(&format!("{pad}{}:\n", scalar(key)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Production: approved by release managers.
environment: production
release: abc1234   # the commit that runs
replicas: 3
resources:
  limits:
    cpu: \"2\"
autoscaling: {enabled: true, min_replicas: 3, max_replicas: 10}
";

    fn get(text: &str, path: &[&str]) -> String {
        let mut n = launchway_yaml::parse(text).unwrap();
        for k in path {
            n = n.get(k).unwrap().clone();
        }
        n.scalar_string().unwrap()
    }

    #[test]
    fn replaces_in_place_and_keeps_everything_else() {
        let out = set(FILE, &["release"], "def5678").unwrap();
        assert_eq!(out, FILE.replace("abc1234", "def5678"));
        let out = set(FILE, &["resources", "limits", "cpu"], "4").unwrap();
        assert!(out.contains("    cpu: \"4\"\n"), "{out}");
        let out = set(FILE, &["replicas"], "5").unwrap();
        assert_eq!(get(&out, &["replicas"]), "5");
        assert!(out.contains("# the commit that runs"));
    }

    proptest::proptest! {
        /// Setting a value reads back as that value and leaves the other keys alone.
        #[test]
        fn set_reads_back(key in "[a-z_]{1,8}", value in "[ -~]{0,16}") {
            let out = set(FILE, &[key.as_str()], &value).unwrap();
            let doc = launchway_yaml::parse(&out).unwrap();
            proptest::prop_assert_eq!(doc.get(&key).and_then(|n| n.scalar_string()), Some(value.clone()));
            let before = launchway_yaml::parse(FILE).unwrap().to_json();
            let after = doc.to_json();
            for (k, v) in before.as_object().unwrap() {
                if *k != key {
                    proptest::prop_assert_eq!(after.get(k), Some(v));
                }
            }
        }
    }

    #[test]
    fn set_values_keep_their_yaml_type() {
        let out = set_inferred(FILE, &["replicas"], "5").unwrap();
        assert!(out.contains("replicas: 5\n"), "{out}");
        let out = set_inferred(FILE, &["self_heal"], "false").unwrap();
        assert_eq!(
            launchway_yaml::parse(&out)
                .unwrap()
                .get("self_heal")
                .unwrap()
                .kind,
            NodeKind::Bool(false)
        );
        let out = set_inferred(FILE, &["log_level"], "DEBUG").unwrap();
        assert!(out.contains("log_level: DEBUG\n"), "{out}");
        // A commit that is all digits stays a string.
        let out = set(FILE, &["release"], "1234567").unwrap();
        assert!(out.contains("release: \"1234567\""), "{out}");
    }

    #[test]
    fn adds_missing_keys_where_they_belong() {
        let out = set(FILE, &["model_version"], "7").unwrap();
        assert!(out.ends_with("model_version: \"7\"\n"), "{out}");
        assert_eq!(get(&out, &["model_version"]), "7");
        let out = set(FILE, &["resources", "limits", "memory"], "4Gi").unwrap();
        assert_eq!(get(&out, &["resources", "limits", "memory"]), "4Gi");
        assert_eq!(get(&out, &["resources", "limits", "cpu"]), "2");
        let out = set(FILE, &["resources", "requests", "cpu"], "500m").unwrap();
        assert_eq!(get(&out, &["resources", "requests", "cpu"]), "500m");
        let e = set(FILE, &["autoscaling", "target_cpu_percent"], "70").unwrap_err();
        assert!(e.contains("not a block mapping"), "{e}");
        let e = set(FILE, &["resources"], "x").unwrap_err();
        assert!(e.contains("a mapping, not a single value"), "{e}");
        assert_eq!(set("", &["release"], "x").unwrap(), "release: x\n");
        let out = set("release:\n", &["release"], "abc").unwrap();
        assert_eq!(get(&out, &["release"]), "abc");
    }
}
