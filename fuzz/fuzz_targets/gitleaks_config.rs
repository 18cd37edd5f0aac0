//! gitleaks TOML configs on arbitrary text; accepted configs scan the input too.
#![no_main]
use launchway_scan::secrets::Engine;
use launchway_scan::secrets::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(cfg) = Config::parse("fuzz.toml", data, None) {
        let engine = Engine::new(cfg.rules, cfg.allowlists);
        let _ = engine.scan("fuzz.toml", data.as_bytes(), None, None);
    }
});
