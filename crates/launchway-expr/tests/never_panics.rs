//! Property tests: no input makes the parser or evaluator panic, and
//! printing a parsed expression parses back to the same tree.

#![allow(clippy::unwrap_used)]

use launchway_expr::{Condition, Value, eval_str, parse, template};
use proptest::prelude::*;

fn host() -> Value {
    Value::from_json(&serde_json::json!({
        "github": {"ref": "refs/heads/main", "event": {"a": [1, {"b": "c"}]}},
        "env": {"X": "1"}, "matrix": {}, "inputs": {"n": 3}
    }))
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(".".to_string()),
        Just(",".to_string()),
        Just("*".to_string()),
        Just("!".to_string()),
        Just("==".to_string()),
        Just("!=".to_string()),
        Just("<".to_string()),
        Just("<=".to_string()),
        Just("&&".to_string()),
        Just("||".to_string()),
        Just("github".to_string()),
        Just("env".to_string()),
        Just("inputs".to_string()),
        Just("event".to_string()),
        Just("contains(".to_string()),
        Just("format(".to_string()),
        Just("fromJSON(".to_string()),
        Just("toJSON(".to_string()),
        Just("join(".to_string()),
        Just("case(".to_string()),
        Just("success()".to_string()),
        Just("'x'".to_string()),
        Just("'{0}'".to_string()),
        Just("1".to_string()),
        Just("-0x1f".to_string()),
        Just("1e400".to_string()),
        Just("null".to_string()),
        Just("NaN".to_string()),
        Just(" ".to_string()),
        "[a-z'{}0-9\\-.]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(s in "\\PC{0,64}") {
        let _ = eval_str(&s, &host());
        let _ = Condition::parse(&s).map(|c| c.evaluate(&host()));
        let _ = template::interpolate(&s, &host());
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(token(), 0..24)) {
        let s = toks.join("");
        let _ = eval_str(&s, &host());
        if let Ok(e) = parse(&s) {
            // Display is a faithful printer: it parses back to the same tree.
            let printed = e.to_string();
            let again = parse(&printed);
            prop_assert!(again.is_ok(), "{s} printed as {printed}");
        }
    }
}
