//! What differs between two environments: their merged documents
//! flattened to dotted paths, compared key by key.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    /// `None` where one side does not set it.
    pub left: Option<String>,
    pub right: Option<String>,
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Every path whose value differs, in path order.
pub fn diff(left: &Value, right: &Value) -> Vec<Difference> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", left, &mut a);
    flatten("", right, &mut b);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| Difference {
            path: p.clone(),
            left: a.get(p).cloned(),
            right: b.get(p).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_compare_by_path() {
        let a = json!({"replicas": 1, "resources": {"limits": {"cpu": "1"}}, "log_level": "DEBUG"});
        let b = json!({"replicas": 3, "resources": {"limits": {"cpu": "1", "memory": "4Gi"}}, "log_level": "DEBUG"});
        assert_eq!(
            diff(&a, &b),
            [
                Difference {
                    path: "replicas".into(),
                    left: Some("1".into()),
                    right: Some("3".into())
                },
                Difference {
                    path: "resources.limits.memory".into(),
                    left: None,
                    right: Some("4Gi".into())
                },
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }
}
