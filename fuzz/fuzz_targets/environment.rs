//! Environment configs (an overlay over a base) and what is made of them.
#![no_main]
use launchway_config::{Source, load};
use launchway_deploy::render::{kubernetes, yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (own, base) = text.split_once("\n---\n").unwrap_or((&text, ""));
    let own = Source { path: "env.yaml".into(), text: own.into() };
    let base = Source { path: "_base.yaml".into(), text: base.into() };
    if let Some(env) = load("env", &own, Some(&base)).environment {
        let names = kubernetes::Names { default_service: "fuzz".into() };
        if let Ok(docs) = kubernetes::manifests(&env, &names) {
            let _ = yaml::documents(&docs);
        }
    }
});
