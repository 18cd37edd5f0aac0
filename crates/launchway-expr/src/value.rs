//! Values and GitHub's coercion rules.

use indexmap::IndexMap;
use std::fmt;

/// An expression value. Objects keep insertion order; property lookup is
/// case-insensitive, as on GitHub.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(IndexMap<String, Value>),
}

/// The kind of a value, used in comparisons and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An empty object.
    pub fn object() -> Value {
        Value::Object(IndexMap::new())
    }

    /// GitHub's truthiness: `false`, `0`, `-0`, `NaN`, `''` and `null` are falsy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// Number coercion: `null`→0, booleans→1/0, strings parsed (empty or
    /// whitespace → 0, hex `0x`, octal `0o`, exponents), otherwise NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => parse_number(s.trim()).unwrap_or(f64::NAN),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// String coercion as GitHub does it when a value is interpolated.
    pub fn to_display_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".to_string(),
            Value::Object(_) => "Object".to_string(),
        }
    }

    /// Case-insensitive property lookup (exact match first).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            }),
            _ => None,
        }
    }

    /// Mutable access to an object's entries; `None` for other kinds.
    pub fn as_object_mut(&mut self) -> Option<&mut IndexMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Inserts into an object value; a no-op on other kinds.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        if let Value::Object(m) = self {
            m.insert(key.into(), value);
        }
    }

    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                    #[allow(clippy::cast_possible_truncation)]
                    serde_json::Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => {
                serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// `toJSON` output: pretty-printed with two-space indentation, like GitHub.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }

    /// GitHub's loose equality (`==`).
    pub fn loose_eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => eq_ignore_case(a, b),
            // Objects and arrays compare by identity on GitHub; two distinct
            // evaluations are never the same instance.
            (Array(_), _) | (_, Array(_)) | (Object(_), _) | (_, Object(_)) => false,
            _ => self.to_number() == other.to_number(),
        }
    }

    /// GitHub's relational comparison; `None` when the operands do not compare
    /// (arrays, objects, NaN), which makes every relational operator false.
    pub fn loose_cmp(&self, other: &Value) -> Option<std::cmp::Ordering> {
        use Value::*;
        match (self, other) {
            (Array(_), _) | (_, Array(_)) | (Object(_), _) | (_, Object(_)) => None,
            (String(a), String(b)) => Some(cmp_ignore_case(a, b)),
            _ => self.to_number().partial_cmp(&other.to_number()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display_string())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

/// Case folding for comparisons, as GitHub's (ordinal, ignore case): each
/// character to its simple uppercase — one character for one, so `ß` is
/// not `SS` — and the dotless `ı` stays itself (it is not `I`).
fn fold(c: char) -> std::iter::Once<char> {
    if c.is_ascii() || c == 'ı' {
        return std::iter::once(c.to_ascii_uppercase());
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => std::iter::once(u),
        _ => std::iter::once(c),
    }
}

pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.chars().flat_map(fold).eq(b.chars().flat_map(fold))
}

fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.chars().flat_map(fold).cmp(b.chars().flat_map(fold))
}

pub(crate) fn to_upper(s: &str) -> String {
    s.chars().flat_map(fold).collect()
}

/// Plain unsigned decimal syntax: digits with an optional fraction (at least
/// one digit overall) and an optional exponent — `1`, `.5`, `2.`, `3e-4`.
/// Shared with the YAML core schema so both read numbers alike.
pub fn is_plain_decimal(body: &str) -> bool {
    let b = body.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int = digits(&mut i);
    let mut frac = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac = digits(&mut i);
    }
    if int + frac == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Parses a number the way GitHub's runner does for string coercion and
/// literals: decimal with optional exponent, `0x` hex, `0o` octal,
/// `Infinity`, leading sign.
pub fn parse_number(s: &str) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let sign = if neg { -1.0 } else { 1.0 };
    if body == "Infinity" {
        return Some(sign * f64::INFINITY);
    }
    let radix = |digits: &str, radix: u32| -> Option<f64> {
        if digits.is_empty() {
            return None;
        }
        let mut acc = 0f64;
        for c in digits.chars() {
            acc = acc * f64::from(radix) + f64::from(c.to_digit(radix)?);
        }
        Some(sign * acc)
    };
    if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return radix(h, 16);
    }
    if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        return radix(o, 8);
    }
    // Only plain decimal syntax: digits, optional fraction, optional exponent.
    if !is_plain_decimal(body) {
        return None;
    }
    body.parse::<f64>().ok().map(|n| sign * n)
}

/// Formats a number like JavaScript's `Number.prototype.toString`, which is
/// what GitHub shows when a number is interpolated.
pub fn format_number(n: f64) -> String {
    // GitHub shows at most 15 significant digits (0.84551240822557006 is
    // 0.84551240822557); round first, then print the shortest form.
    let n = if n.is_finite() && n != 0.0 {
        format!("{n:.14e}").parse::<f64>().unwrap_or(n)
    } else {
        n
    };
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    if n.fract() == 0.0 && n.abs() < 1e21 {
        return format!("{n:.0}");
    }
    // Shortest round-trip representation; switch to exponent form as JS does.
    let abs = n.abs();
    if (1e-6..1e21).contains(&abs) {
        format!("{n}")
    } else {
        let s = format!("{n:e}");
        // Rust prints `1e-7`; JS prints `1e-7` too but adds `+` for positive exponents.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_github() {
        assert_eq!(parse_number("0xff"), Some(255.0));
        assert_eq!(parse_number("-0x10"), Some(-16.0));
        assert_eq!(parse_number("0o17"), Some(15.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("-2.99e-2"), Some(-0.0299));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("5."), Some(5.0));
        assert_eq!(parse_number(""), Some(0.0));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("1e"), None);
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("Infinity"), Some(f64::INFINITY));
    }

    #[test]
    fn numbers_format_like_github() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1.5), "1.5");
        // At most 15 significant digits, as GitHub shows numbers.
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(0.845_512_408_225_570_1), "0.84551240822557");
        assert_eq!(format_number(123_456.789), "123456.789");
        assert_eq!(format_number(1e21), "1e+21");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(-f64::INFINITY), "-Infinity");
        assert_eq!(format_number(1e-7), "1e-7");
    }

    #[test]
    fn truthiness() {
        for v in [
            Value::Null,
            Value::Bool(false),
            Value::Number(0.0),
            Value::Number(-0.0),
            Value::Number(f64::NAN),
            Value::str(""),
        ] {
            assert!(!v.is_truthy(), "{v:?}");
        }
        for v in [
            Value::Bool(true),
            Value::Number(-1.0),
            Value::str("false"),
            Value::str("0"),
            Value::Array(vec![]),
            Value::object(),
        ] {
            assert!(v.is_truthy(), "{v:?}");
        }
    }

    #[test]
    fn case_insensitive_get() {
        let mut o = Value::object();
        o.insert("Ref", Value::str("x"));
        assert_eq!(o.get("ref"), Some(&Value::str("x")));
        assert_eq!(o.get("REF"), Some(&Value::str("x")));
        assert_eq!(o.get("nope"), None);
    }
}
