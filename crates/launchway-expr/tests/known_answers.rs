//! Known-answer tests written from GitHub's expression documentation:
//! every operator, coercion rule and function.

#![allow(clippy::unwrap_used)]

use launchway_expr::{Value, eval_str};

fn host() -> Value {
    let json = r#"{
      "github": {"ref": "refs/heads/main", "event_name": "push",
                 "event": {"commits": [{"message": "fix: a"}, {"message": "feat: b"}],
                           "labels": [{"name": "bug"}, {"name": "ui"}]}},
      "env": {"NAME": "World", "EMPTY": ""},
      "matrix": {"os": "ubuntu-latest", "node": 18},
      "fruits": [{"name": "apple", "q": 1}, {"name": "pear"}, {"q": 3}],
      "nested": {"a": {"x": [1, 2]}, "b": {"x": [3]}},
      "vars": {"HEX": "0x10"}
    }"#;
    Value::from_json(&serde_json::from_str(json).unwrap())
}

fn check(src: &str, want: &str) {
    let got = eval_str(src, &host()).unwrap_or_else(|e| panic!("{src}: {e}"));
    let shown = match &got {
        Value::String(s) => format!("'{s}'"),
        Value::Array(_) | Value::Object(_) => got.to_json().to_string(),
        v => v.to_display_string(),
    };
    assert_eq!(shown, want, "{src}");
}

#[test]
fn literals() {
    check("null", "");
    check("true", "true");
    check("711", "711");
    check("-9.2", "-9.2");
    check("0xff", "255");
    check("-2.99e-2", "-0.0299");
    check("1e3", "1000");
    check("'Mona the Octocat'", "'Mona the Octocat'");
    check(
        "'It''s open source!'",
        "'It''s open source!'".replace("''", "'").as_str(),
    );
    check("NaN", "NaN");
    check("Infinity", "Infinity");
}

#[test]
fn logical_operators_return_operands() {
    check("'a' && 'b'", "'b'");
    check("'' && 'b'", "''");
    check("'' || 'b'", "'b'");
    check("'a' || 'b'", "'a'");
    check("0 || null", "");
    check("!''", "true");
    check("!'0'", "false");
    check("!0", "true");
    check("!NaN", "true");
    check("!fromJSON('[]')", "false");
    check("!!env.EMPTY", "false");
}

#[test]
fn equality_and_coercion() {
    check("null == 0", "true");
    check("null == false", "true");
    check("true == 1", "true");
    check("false == 0", "true");
    check("'' == 0", "true");
    check("' 12 ' == 12", "true");
    check("'0x10' == 16", "true");
    check("vars.HEX == 16", "true");
    check("'abc' == 0", "false");
    check("'ABC' == 'abc'", "true");
    check("'abc' != 'ABC'", "false");
    check("NaN == NaN", "false");
    check("NaN != NaN", "true");
    check("'true' == true", "false");
    check("fromJSON('[]') == fromJSON('[]')", "false");
    check("github.event == 'Object'", "false");
    check("matrix.node == '18'", "true");
    check("null == ''", "true");
}

#[test]
fn relational() {
    check("1 < 2", "true");
    check("'a' < 'B'", "true");
    check("'b' <= 'B'", "true");
    check("'10' > 9", "true");
    check("'abc' > 1", "false");
    check("'abc' < 1", "false");
    check("NaN >= NaN", "false");
    check("null >= 0", "true");
    check("true > false", "true");
    check("fromJSON('{}') < 1", "false");
    check("Infinity > 1e308", "true");
}

#[test]
fn property_access() {
    check("github.ref", "'refs/heads/main'");
    check("github['ref']", "'refs/heads/main'");
    check("GITHUB.REF", "'refs/heads/main'");
    check("github.nope", "");
    check("github.nope.deeper", "");
    check("github.event.commits[1].message", "'feat: b'");
    check("github.event.commits[5].message", "");
    check("github.event.commits[1.7].message", "'feat: b'");
    check("github.event.commits['1'].message", "'feat: b'");
    check("github.event.commits[-1]", "");
    check("env.NAME", "'World'");
}

#[test]
fn object_filters() {
    check("fruits.*.name", r#"["apple","pear"]"#);
    check("fruits[*].q", "[1,3]");
    check("github.event.labels.*.name", r#"["bug","ui"]"#);
    check("nested.*.x", "[[1,2],[3]]");
    check("nested.*.x.*", "[1,2,3]");
    check("env.NAME.*", "[]");
    check("contains(github.event.labels.*.name, 'BUG')", "true");
    check("join(fruits.*.name, ', ')", "'apple, pear'");
}

#[test]
fn functions() {
    check("contains('Hello world', 'llo')", "true");
    check("contains('Hello world', 'LLO')", "true");
    check(
        "contains(fromJSON('[\"push\", \"pull_request\"]'), github.event_name)",
        "true",
    );
    check("contains(fromJSON('[1, 2]'), '2')", "true");
    check("contains('abc', '')", "true");
    check("contains(null, '')", "true");
    check("startsWith('Hello world', 'he')", "true");
    check("endsWith('Hello world', 'LD')", "true");
    check("startsWith(12, 1)", "true");
    check(
        "format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')",
        "'Hello Mona the Octocat'",
    );
    check(
        "format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')",
        "'{Hello Mona the Octocat!}'",
    );
    check("format('{0}', true)", "'true'");
    check("format('{0}', 1.50)", "'1.5'");
    check("join(fromJSON('[\"a\",\"b\"]'))", "'a,b'");
    check("join('abc', '-')", "'abc'");
    check("join(fromJSON('[1, true, null]'), '|')", "'1|true|'");
    check(
        "toJSON(matrix)",
        "'{\n  \"os\": \"ubuntu-latest\",\n  \"node\": 18\n}'",
    );
    check("toJSON('x')", "'\"x\"'");
    check("fromJSON('{\"a\": [1]}').a[0]", "1");
    check("fromJSON('true')", "true");
    check("fromJSON(' 3 ')", "3");
    check("case(true, 'a', 'b')", "'a'");
    check("case(false, 'a', 1 == 1, 'b', 'c')", "'b'");
    check("case(false, 'a', false, 'b', 'c')", "'c'");
    check(
        "case(matrix.os == 'ubuntu-latest', 'linux', 'other')",
        "'linux'",
    );
    check("success()", "true");
    check("always()", "true");
    check("failure()", "false");
    check("cancelled()", "false");
    check("STARTSWITH('ab', 'a')", "true");
}

#[test]
fn evaluation_errors() {
    let h = host();
    for bad in [
        "nosuch.context",
        "fromJSON('{bad')",
        "fromJSON('')",
        "format('{1}', 'a')",
        "format('{', 'a')",
        "case('yes', 1, 2)",
        "hashFiles('**/x')",
    ] {
        assert!(eval_str(bad, &h).is_err(), "{bad} should fail");
    }
}

/// Issue 16.10: the edge cases where GitHub's expression test data
/// (actions/languageservices, `expressions/testdata`) and Launchway differed.
#[test]
fn edge_cases_agree_with_github() {
    // Ordinal ignore-case: simple uppercase per character; the dotless ı
    // is not I, ß is not SS; Greek sigmas and umlauts fold.
    check("'ı' == 'I'", "false");
    check("'ı' != 'I'", "true");
    check("startsWith('ı_asdf', 'I')", "false");
    check("'ß' == 'SS'", "false");
    check("'ς' == 'Σ'", "true");
    check("'ü' == 'Ü'", "true");
    // join: an object joins to nothing, a separator that is not a scalar is ','.
    check("join(fruits[0])", "''");
    check("join(fromJSON('[\"a\",\"b\"]'), fromJSON('[]'))", "'a,b'");
    check("join(fromJSON('[\"a\",\"b\"]'), 1)", "'a1b'");
    // 15 significant digits.
    check("format('{0}', 0.84551240822557006)", "'0.84551240822557'");
    // Objects compare by identity.
    check("nested == nested", "true");
    check("nested.a == nested.b", "false");
    check("fromJSON('{}') == fromJSON('{}')", "false");
    // An empty expression is null.
    check("", "");
    // Long same-operator chains are flat; deep nesting is refused.
    let or_chain = (1..=60)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" || ");
    check(&or_chain, "1");
    let deep = format!("nested{}", ".a".repeat(50));
    assert!(launchway_expr::parse(&deep).is_err());
    assert!(launchway_expr::parse(&format!("{}false", "!".repeat(50))).is_err());
    assert!(launchway_expr::parse(&format!("{}false", "!".repeat(49))).is_ok());
    // A sign goes with decimal literals only.
    assert!(launchway_expr::parse("-0xFF").is_err());
    check("-0.5", "-0.5");
}
