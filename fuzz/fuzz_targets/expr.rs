//! Parse and evaluate arbitrary expressions, conditions and templates.
#![no_main]
use launchway_expr::{Condition, Value, eval_str, template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let host = Value::from_json(&serde_json::json!({
        "github": {"ref": "refs/heads/main", "event": {"a": [1, {"b": "c"}]}},
        "env": {"X": "1"}, "matrix": {}, "inputs": {"n": 3}
    }));
    let _ = eval_str(data, &host);
    let _ = Condition::parse(data).map(|c| c.evaluate(&host));
    let _ = template::interpolate(data, &host);
});
