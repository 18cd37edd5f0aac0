//! The OSV importer (JSON and YAML) and matching on whatever it accepts.
#![no_main]
use launchway_scan::osv::{Advisory, is_affected};
use launchway_scan::version::Ecosystem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    for a in [Advisory::from_json("f", data.as_bytes()).ok(), Advisory::from_yaml("f", data).ok()].into_iter().flatten() {
        let _ = launchway_scan::osv::severity::assess(&a);
        for af in &a.affected {
            for eco in Ecosystem::ALL {
                for v in ["0", "1.0.0", "1.2.3-rc.1", "v1.0.0", "1:2.3-1", "2.0.post1"] {
                    let _ = is_affected(eco, v, af);
                }
            }
        }
    }
});
