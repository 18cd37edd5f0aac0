//! An environment as Kubernetes objects: a Deployment (apps/v1), a Service
//! (v1) and, with autoscaling, a HorizontalPodAutoscaler (autoscaling/v2).

use crate::config::Environment;
use serde_json::{Value, json};

/// What rendering needs beyond the environment.
#[derive(Debug, Clone)]
pub struct Names {
    /// The service's name when the config has no `service:`.
    pub default_service: String,
}

pub use crate::config::is_label;

/// A name the user wrote must already be valid: rewriting `ML Prod` to
/// `ml-prod` would deploy somewhere nobody asked for.
fn checked(what: &str, s: &str) -> Result<String, String> {
    if is_label(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{what} '{s}' is not a valid Kubernetes name (lower case letters, digits and '-', at most 63, starting and ending with a letter or digit)"
        ))
    }
}

/// DNS-1123 label made from a name nobody wrote for Kubernetes (the
/// repository folder): lower case, digits and '-', at most 63.
fn label(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "app".into() } else { out }
}

/// The manifests, or why they cannot be made.
pub fn manifests(env: &Environment, names: &Names) -> Result<Vec<Value>, String> {
    let image = env.image.as_deref().ok_or_else(|| {
        format!(
            "environment '{}' has no 'image': Kubernetes runs container images (add e.g. image: ghcr.io/org/app:1.2.3)",
            env.name
        )
    })?;
    let service = match env.service.as_deref() {
        Some(s) => checked("service", s)?,
        None => label(&names.default_service),
    };
    let env_label = checked("environment name (the file's name)", &env.name)?;
    let name = checked("object name", &format!("{service}-{env_label}"))?;
    let labels = json!({"app.kubernetes.io/name": service, "app.kubernetes.io/instance": name, "launchway.dev/environment": env_label});
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some(ns) = &env.namespace {
        metadata["namespace"] = json!(checked("namespace", ns)?);
    }
    let mut resources = json!({});
    for (kind, a) in [
        ("requests", &env.resources.requests),
        ("limits", &env.resources.limits),
    ] {
        let mut m = serde_json::Map::new();
        if let Some(c) = &a.cpu {
            m.insert("cpu".into(), json!(c));
        }
        if let Some(mem) = &a.memory {
            m.insert("memory".into(), json!(mem));
        }
        if !m.is_empty() {
            resources[kind] = Value::Object(m);
        }
    }
    let env_vars: Vec<Value> = env
        .config
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let probe =
        json!({"httpGet": {"path": env.run.health_path, "port": "http"}, "periodSeconds": 10});
    let mut container = json!({
        "name": service,
        "image": image,
        "ports": [{"name": "http", "containerPort": env.run.port, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": resources,
    });
    if !env_vars.is_empty() {
        container["env"] = Value::Array(env_vars);
    }
    if let Some(cmd) = &env.run.command {
        container["command"] = json!(["/bin/sh", "-c", cmd]);
    }
    let autoscaled = env.autoscaling.as_ref().is_some_and(|a| a.enabled);
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container]},
            },
        },
    });
    // With an autoscaler the HPA owns the count: a `replicas` here would
    // be put back by every apply, fighting it.
    if !autoscaled {
        deployment["spec"]["replicas"] = json!(env.replicas);
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": {"app.kubernetes.io/instance": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    });
    let mut out = vec![deployment, svc];
    if let Some(a) = env.autoscaling.as_ref().filter(|a| a.enabled) {
        out.push(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "metrics": [{
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": a.target_cpu_percent}},
                }],
            },
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, load};

    #[test]
    fn deployment_service_and_autoscaler() {
        let text = "environment: production\nimage: ghcr.io/acme/churn:1.4.0\nreplicas: 3\nresources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: \"2\", memory: 4Gi}}\nmodel_name: ChurnPredictor\nautoscaling: {enabled: true, min_replicas: 3, max_replicas: 10, target_cpu_percent: 70}\n";
        let env = load(
            "prod",
            &Source {
                path: "prod.yaml".into(),
                text: text.into(),
            },
            None,
        )
        .environment
        .unwrap();
        let m = manifests(
            &env,
            &Names {
                default_service: "Churn_Service".into(),
            },
        )
        .unwrap();
        let kinds: Vec<&str> = m.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Deployment", "Service", "HorizontalPodAutoscaler"]);
        assert_eq!(m[0]["metadata"]["name"], "churn-service-prod");
        assert!(
            m[0]["spec"].get("replicas").is_none(),
            "the autoscaler owns the count"
        );
        let c = &m[0]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"]["limits"]["memory"], "4Gi");
        assert_eq!(
            c["env"][0],
            json!({"name": "MODEL_NAME", "value": "ChurnPredictor"})
        );
        assert_eq!(
            m[2]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        let no_image = load(
            "dev",
            &Source {
                path: "dev.yaml".into(),
                text: "replicas: 1\n".into(),
            },
            None,
        )
        .environment
        .unwrap();
        assert!(
            manifests(
                &no_image,
                &Names {
                    default_service: "x".into()
                }
            )
            .unwrap_err()
            .contains("has no 'image'")
        );
        let bad_ns = load(
            "prod",
            &Source {
                path: "prod.yaml".into(),
                text: "image: x:1\nnamespace: ML Prod\nreplicas: 2\n".into(),
            },
            None,
        )
        .environment
        .unwrap();
        let e = manifests(
            &bad_ns,
            &Names {
                default_service: "x".into(),
            },
        )
        .unwrap_err();
        assert!(e.contains("namespace 'ML Prod' is not a valid"), "{e}");
    }
}
