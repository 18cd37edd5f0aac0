//! The built-in function table: names, arities and implementations of the
//! pure functions. Status functions and `hashFiles` are answered by the host.

use crate::value::{Value, to_upper};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    HashFiles,
    Case,
    Success,
    Failure,
    Always,
    Cancelled,
}

const TABLE: &[(Function, &str, usize, usize)] = &[
    (Function::Contains, "contains", 2, 2),
    (Function::StartsWith, "startsWith", 2, 2),
    (Function::EndsWith, "endsWith", 2, 2),
    (Function::Format, "format", 1, usize::MAX),
    (Function::Join, "join", 1, 2),
    (Function::ToJson, "toJSON", 1, 1),
    (Function::FromJson, "fromJSON", 1, 1),
    (Function::HashFiles, "hashFiles", 1, usize::MAX),
    (Function::Case, "case", 3, usize::MAX),
    // In a job's `if`, `success('build', 'test')` and `failure('build')`
    // name needed jobs (GitHub's schema: success(0,MAX), failure(0,MAX)).
    (Function::Success, "success", 0, usize::MAX),
    (Function::Failure, "failure", 0, usize::MAX),
    (Function::Always, "always", 0, 0),
    (Function::Cancelled, "cancelled", 0, 0),
];

impl Function {
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(f, ..)| *f == self)
            .map_or("?", |(_, n, ..)| n)
    }

    pub fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Always | Function::Cancelled
        )
    }
}

/// Resolves a call by name (case-insensitive, as GitHub does) and checks its
/// argument count at parse time.
pub(crate) fn check_call(name: &str, argc: usize) -> Result<Function, String> {
    let Some((f, canonical, min, max)) =
        TABLE.iter().find(|(_, n, ..)| n.eq_ignore_ascii_case(name))
    else {
        return Err(format!("unknown function '{name}'"));
    };
    if argc < *min || argc > *max {
        let want = if min == max {
            format!("{min}")
        } else if *max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "'{canonical}' takes {want} argument{}, got {argc}",
            if *min == 1 && min == max { "" } else { "s" }
        ));
    }
    if *f == Function::Case && argc.is_multiple_of(2) {
        return Err(
            "'case' takes pairs of predicate and value followed by a default value (an odd number of arguments)"
                .into(),
        );
    }
    Ok(*f)
}

pub(crate) fn contains(search: &Value, item: &Value) -> bool {
    match search {
        Value::Array(items) => items.iter().any(|v| v.loose_eq(item)),
        _ => to_upper(&search.to_display_string()).contains(&to_upper(&item.to_display_string())),
    }
}

pub(crate) fn starts_with(s: &Value, p: &Value) -> bool {
    to_upper(&s.to_display_string()).starts_with(&to_upper(&p.to_display_string()))
}

pub(crate) fn ends_with(s: &Value, p: &Value) -> bool {
    to_upper(&s.to_display_string()).ends_with(&to_upper(&p.to_display_string()))
}

/// `join(array, separator)`: a separator that is an array or an object is
/// the default `,`; joining an object gives nothing (GitHub's test data).
pub(crate) fn join(v: &Value, sep: Option<&Value>) -> String {
    let sep = match sep {
        None | Some(Value::Array(_) | Value::Object(_)) => ",".to_string(),
        Some(s) => s.to_display_string(),
    };
    match v {
        Value::Array(items) => items
            .iter()
            .map(Value::to_display_string)
            .collect::<Vec<_>>()
            .join(&sep),
        Value::Object(_) => String::new(),
        other => other.to_display_string(),
    }
}

/// `format('{0} and {{literal}}', x)`.
pub(crate) fn format(fmt: &str, args: &[Value]) -> Result<String, String> {
    let invalid = || format!("the format string is invalid: '{fmt}'");
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '{' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some((_, d)) if d.is_ascii_digit() => digits.push(d),
                        Some((_, '}')) if !digits.is_empty() => break,
                        _ => return Err(invalid()),
                    }
                }
                let idx: usize = digits.parse().map_err(|_| invalid())?;
                let arg = args.get(idx).ok_or_else(|| {
                    format!(
                        "the format string '{fmt}' refers to argument {{{idx}}} but only {} argument{} given",
                        args.len(),
                        if args.len() == 1 { " was" } else { "s were" }
                    )
                })?;
                out.push_str(&arg.to_display_string());
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(invalid()),
            c => out.push(c),
        }
    }
    Ok(out)
}

pub(crate) fn from_json(s: &str) -> Result<Value, String> {
    if s.trim().is_empty() {
        return Err("fromJSON: empty input".into());
    }
    serde_json::from_str::<serde_json::Value>(s)
        .map(|v| Value::from_json(&v))
        .map_err(|e| format!("fromJSON: invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_rules() {
        let a = [Value::str("x"), Value::Number(2.0)];
        assert_eq!(format("{0}-{1}-{0}", &a).unwrap(), "x-2-x");
        assert_eq!(format("{{0}} {0}", &a).unwrap(), "{0} x");
        assert!(format("{2}", &a).is_err());
        assert!(format("{", &a).is_err());
        assert!(format("}", &a).is_err());
        assert!(format("{a}", &a).is_err());
        assert_eq!(format("}}{{", &a).unwrap(), "}{");
    }
}
