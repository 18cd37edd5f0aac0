//! JSON values written as block-style YAML (what `kubectl` and people
//! read). Strings are quoted whenever plain style could change their type
//! or meaning.

use serde_json::Value;

fn needs_quotes(s: &str) -> bool {
    if s.is_empty()
        || s.starts_with(|c: char| " -?:,[]{}#&*!|>'\"%@`".contains(c))
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.contains('\n')
        || s.chars().any(char::is_control)
    {
        return true;
    }
    // Anything a YAML reader would not give back as this very string
    // (numbers, booleans, null, `0x1F`, `.inf`…) is quoted.
    !matches!(
        launchway_yaml::parse(&format!("k: {s}")).ok().and_then(|n| n.get("k").cloned()),
        Some(launchway_yaml::Node { kind: launchway_yaml::NodeKind::String(ref t), .. }) if t == s
    )
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if needs_quotes(s) => Value::String(s.clone()).to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn write(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = scalar(&Value::String(k.clone()));
                match v {
                    Value::Object(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write(v, indent, out);
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{key}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{key}: []\n")),
                    _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        write(item, indent + 2, &mut inner);
                        // The first line goes after the dash.
                        let inner = inner.replacen(&" ".repeat(indent + 2), "", 1);
                        out.push_str(&format!("{pad}- {inner}"));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        write(item, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// One document per value, separated by `---`.
pub fn documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match d {
            Value::Object(m) if m.is_empty() => out.push_str("{}\n"),
            Value::Array(a) if a.is_empty() => out.push_str("[]\n"),
            _ => write(d, 0, &mut out),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::String),
            Just(Value::Null),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9_./-]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever is written reads back as the same value.
        #[test]
        fn any_value_round_trips(m in prop::collection::btree_map("[a-zA-Z0-9_./-]{1,8}", value(), 0..5)) {
            let v = Value::Object(m.into_iter().collect());
            let text = documents(std::slice::from_ref(&v));
            let back = launchway_yaml::parse(&text).map(|n| n.to_json());
            prop_assert_eq!(back.ok(), Some(v), "{}", text);
        }
    }

    #[test]
    fn round_trips_through_the_yaml_parser() {
        let v = json!({
            "apiVersion": "apps/v1",
            "metadata": {"name": "churn", "labels": {"app": "churn", "version": "1.10"}},
            "spec": {"replicas": 3, "containers": [{"name": "app", "ports": [{"containerPort": 8080}], "args": ["--flag", "yes", "", "a: b"]}], "empty": {}, "none": []},
            "on": true,
            "note": "line\nbreak"
        });
        let text = documents(std::slice::from_ref(&v));
        let back = launchway_yaml::parse(&text).unwrap().to_json();
        assert_eq!(back, v, "{text}");
    }
}
