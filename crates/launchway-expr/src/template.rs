//! `${{ }}` templates inside workflow strings, and `if:` conditions.

use crate::ast::Expr;
use crate::eval::{EvalError, Host, evaluate};
use crate::functions::Function;
use crate::parser::{ParseError, parse};
use crate::value::Value;

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// An expression's source and the byte offset of that source in the template.
    Expr {
        src: &'a str,
        offset: usize,
    },
}

/// Splits a string into literal text and `${{ … }}` expressions. A `}}`
/// inside a single-quoted string literal does not close the expression.
pub fn segments(s: &str) -> Result<Vec<Segment<'_>>, ParseError> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = s[rest..].find("${{").map(|i| i + rest) {
        if open > rest {
            out.push(Segment::Text(&s[rest..open]));
        }
        let body = open + 3;
        let bytes = s.as_bytes();
        let mut i = body;
        let mut in_str = false;
        let close = loop {
            if i >= bytes.len() {
                return Err(ParseError {
                    message: "unterminated '${{': expected '}}'".into(),
                    offset: open,
                });
            }
            match bytes[i] {
                b'\'' => in_str = !in_str,
                b'}' if !in_str && bytes.get(i + 1) == Some(&b'}') => break i,
                _ => {}
            }
            i += 1;
        };
        out.push(Segment::Expr {
            src: &s[body..close],
            offset: body,
        });
        rest = close + 2;
    }
    if rest < s.len() {
        out.push(Segment::Text(&s[rest..]));
    }
    Ok(out)
}

/// Parses every expression of a template, reporting offsets within `s`.
pub fn parse_template(s: &str) -> Result<Vec<Expr>, ParseError> {
    let mut exprs = Vec::new();
    for seg in segments(s)? {
        if let Segment::Expr { src, offset } = seg {
            exprs.push(parse(src).map_err(|e| ParseError {
                message: e.message,
                offset: offset + e.offset,
            })?);
        }
    }
    Ok(exprs)
}

pub fn has_expressions(s: &str) -> bool {
    s.contains("${{")
}

/// A mapping key that is the `${{ insert }}` directive (any spacing, any
/// case): its value, a mapping, is merged into the mapping holding it.
pub fn is_insert(key: &str) -> bool {
    key.trim()
        .strip_prefix("${{")
        .and_then(|r| r.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim().eq_ignore_ascii_case("insert"))
}

/// Evaluates a template to a string.
pub fn interpolate(s: &str, host: &dyn Host) -> Result<String, EvalError> {
    if !has_expressions(s) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    for seg in segments(s).map_err(|e| EvalError(e.message))? {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Expr { src, .. } => {
                let e = parse(src).map_err(|e| EvalError(e.message))?;
                out.push_str(&evaluate(&e, host)?.to_display_string());
            }
        }
    }
    Ok(out)
}

/// Evaluates a template; a string that is exactly one `${{ }}` keeps the
/// expression's type (so `${{ fromJSON(x) }}` can yield an array).
pub fn evaluate_template(s: &str, host: &dyn Host) -> Result<Value, EvalError> {
    let segs = segments(s).map_err(|e| EvalError(e.message))?;
    if let [Segment::Expr { src, .. }] = segs.as_slice() {
        let e = parse(src).map_err(|e| EvalError(e.message))?;
        return evaluate(&e, host);
    }
    interpolate(s, host).map(Value::String)
}

/// A parsed `if:` condition, with GitHub's implicit `success() &&` applied
/// when no status function appears.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub expr: Expr,
}

impl Condition {
    /// Parses an `if:` value, with or without the `${{ }}` wrapper.
    pub fn parse(s: &str) -> Result<Condition, ParseError> {
        let trimmed = s.trim();
        let expr = if trimmed.is_empty() {
            Expr::Call(Function::Success, vec![])
        } else {
            let segs = segments(trimmed)?;
            match segs.as_slice() {
                [Segment::Expr { src, offset }] => {
                    let lead = s.len() - s.trim_start().len();
                    parse(src).map_err(|e| ParseError {
                        message: e.message,
                        offset: lead + offset + e.offset,
                    })?
                }
                _ if has_expressions(trimmed) => {
                    // Mixed text and expressions: GitHub evaluates the whole
                    // thing as a string, which is true unless empty.
                    parse_template(trimmed)?;
                    Expr::Literal(Value::String(trimmed.to_string()))
                }
                _ => parse(s)?,
            }
        };
        let expr = if expr.has_status_function() {
            expr
        } else {
            Expr::Binary(
                crate::ast::BinOp::And,
                Box::new(Expr::Call(Function::Success, vec![])),
                Box::new(expr),
            )
        };
        Ok(Condition { expr })
    }

    pub fn evaluate(&self, host: &dyn Host) -> Result<bool, EvalError> {
        match &self.expr {
            // Templated conditions: interpolate, then test the string.
            Expr::Binary(_, _, rhs) if matches!(&**rhs, Expr::Literal(Value::String(s)) if has_expressions(s)) =>
            {
                let Expr::Literal(Value::String(s)) = &**rhs else {
                    return Ok(false);
                };
                Ok(host.success() && !interpolate(s, host)?.is_empty())
            }
            e => Ok(evaluate(e, host)?.is_truthy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_respect_string_literals() {
        let s = "a ${{ '}}' }} b";
        let segs = segments(s).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(
            segs[1],
            Segment::Expr {
                src: " '}}' ",
                offset: 5
            }
        );
        assert!(segments("${{ x").is_err());
    }

    #[test]
    fn template_keeps_type_when_whole() {
        let host = Value::object();
        assert_eq!(
            evaluate_template("${{ fromJSON('[1,2]') }}", &host).unwrap(),
            Value::Array(vec![Value::Number(1.0), Value::Number(2.0)])
        );
        assert_eq!(
            evaluate_template("x${{ 1 }}", &host).unwrap(),
            Value::str("x1")
        );
    }

    #[test]
    fn implicit_success() {
        let c = Condition::parse("${{ true }}").unwrap();
        assert_eq!(c.expr.to_string(), "(success() && true)");
        let c = Condition::parse("always() && false").unwrap();
        assert_eq!(c.expr.to_string(), "(always() && false)");
    }
}
