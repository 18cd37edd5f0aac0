//! Load arbitrary text as a workflow file and lint it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = launchway_workflow::load("fuzz.yml", data);
});
