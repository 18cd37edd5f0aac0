//! The evaluator. Contexts, status functions and `hashFiles` come from a
//! [`Host`], so evaluation itself stays pure.

use crate::ast::{BinOp, Expr};
use crate::functions::{self, Function};
use crate::value::Value;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// What the evaluator needs from the world around it.
pub trait Host {
    /// A named context (`github`, `env`, `matrix`, …); `None` when it is not
    /// available at this point of the workflow.
    fn context(&self, name: &str) -> Option<&Value>;
    fn success(&self) -> bool {
        true
    }
    fn failure(&self) -> bool {
        false
    }
    fn cancelled(&self) -> bool {
        false
    }
    fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
        Err("hashFiles is only available inside a job".into())
    }
}

/// A host backed by a plain object of contexts; status functions report a
/// successful, uncancelled run.
impl Host for Value {
    fn context(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// An intermediate result: a filtered array (`.*`) keeps mapping property
/// access over its items instead of looking the property up on itself.
enum Val {
    Plain(Value),
    Filtered(Vec<Value>),
}

impl Val {
    fn into_value(self) -> Value {
        match self {
            Val::Plain(v) => v,
            Val::Filtered(items) => Value::Array(items),
        }
    }
}

pub fn evaluate(expr: &Expr, host: &dyn Host) -> Result<Value, EvalError> {
    eval(expr, host).map(Val::into_value)
}

fn eval(expr: &Expr, host: &dyn Host) -> Result<Val, EvalError> {
    Ok(match expr {
        Expr::Literal(v) => Val::Plain(v.clone()),
        Expr::Context(name) => Val::Plain(
            host.context(name)
                .cloned()
                .ok_or_else(|| EvalError(format!("unrecognized named-value: '{name}'")))?,
        ),
        Expr::Property(base, name) => access(eval(base, host)?, &Value::String(name.clone())),
        Expr::Index(base, idx) => {
            let b = eval(base, host)?;
            let i = evaluate(idx, host)?;
            access(b, &i)
        }
        Expr::Filter(base) => match eval(base, host)? {
            Val::Plain(Value::Array(items)) => Val::Filtered(items),
            Val::Plain(Value::Object(map)) => Val::Filtered(map.into_values().collect()),
            Val::Plain(_) => Val::Filtered(Vec::new()),
            Val::Filtered(items) => Val::Filtered(
                items
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::Array(a) => a,
                        Value::Object(o) => o.into_values().collect(),
                        _ => Vec::new(),
                    })
                    .collect(),
            ),
        },
        Expr::Not(e) => Val::Plain(Value::Bool(!evaluate(e, host)?.is_truthy())),
        Expr::Binary(op, a, b) => {
            let left = evaluate(a, host)?;
            Val::Plain(match op {
                BinOp::And => {
                    if left.is_truthy() {
                        evaluate(b, host)?
                    } else {
                        left
                    }
                }
                BinOp::Or => {
                    if left.is_truthy() {
                        left
                    } else {
                        evaluate(b, host)?
                    }
                }
                op => {
                    let right = evaluate(b, host)?;
                    // Objects and arrays compare by identity on GitHub: the
                    // same context object equals itself, two equal-looking
                    // ones do not. Here: the same plain path on both sides.
                    if matches!(op, BinOp::Eq | BinOp::Ne)
                        && matches!(left, Value::Object(_) | Value::Array(_))
                        && matches!(right, Value::Object(_) | Value::Array(_))
                    {
                        let same = is_path(a) && a == b;
                        Value::Bool(if *op == BinOp::Eq { same } else { !same })
                    } else {
                        Value::Bool(compare(*op, &left, &right))
                    }
                }
            })
        }
        Expr::Call(f, args) => Val::Plain(call(*f, args, host)?),
    })
}

/// A context reached by property and literal-index access only (no call:
/// each `fromJSON` makes a new object).
fn is_path(e: &Expr) -> bool {
    let mut e = e;
    loop {
        match e {
            Expr::Context(_) => return true,
            Expr::Property(x, _) => e = x,
            Expr::Index(x, i) if matches!(**i, Expr::Literal(_)) => e = x,
            _ => return false,
        }
    }
}

fn compare(op: BinOp, l: &Value, r: &Value) -> bool {
    use std::cmp::Ordering::*;
    match op {
        BinOp::Eq => l.loose_eq(r),
        BinOp::Ne => !l.loose_eq(r),
        BinOp::Lt => l.loose_cmp(r) == Some(Less),
        BinOp::Le => matches!(l.loose_cmp(r), Some(Less | Equal)),
        BinOp::Gt => l.loose_cmp(r) == Some(Greater),
        BinOp::Ge => matches!(l.loose_cmp(r), Some(Greater | Equal)),
        BinOp::And | BinOp::Or => false,
    }
}

/// Property or index access. Missing properties, out-of-range indexes and
/// access on the wrong kind yield `null`, never an error.
fn access(base: Val, key: &Value) -> Val {
    match base {
        Val::Plain(v) => Val::Plain(lookup(&v, key).cloned().unwrap_or(Value::Null)),
        Val::Filtered(items) => Val::Filtered(
            items
                .iter()
                .filter_map(|v| lookup(v, key).cloned())
                .collect(),
        ),
    }
}

fn lookup<'a>(v: &'a Value, key: &Value) -> Option<&'a Value> {
    match (v, key) {
        (Value::Object(_), Value::String(k)) => v.get(k),
        (Value::Object(_), k @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
            v.get(&k.to_display_string())
        }
        (Value::Array(items), k) => {
            let n = k.to_number();
            if n.is_nan() || n < 0.0 {
                return None;
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            items.get(n.floor() as usize)
        }
        _ => None,
    }
}

fn call(f: Function, args: &[Expr], host: &dyn Host) -> Result<Value, EvalError> {
    let arg = |i: usize| -> Result<Value, EvalError> {
        match args.get(i) {
            Some(e) => evaluate(e, host),
            None => Ok(Value::Null),
        }
    };
    Ok(match f {
        Function::Success if args.is_empty() => Value::Bool(host.success()),
        Function::Failure if args.is_empty() => Value::Bool(host.failure()),
        // With job ids: the results of those needed jobs (`needs.<id>.result`).
        Function::Success | Function::Failure => {
            let mut results = Vec::with_capacity(args.len());
            for i in 0..args.len() {
                let id = arg(i)?.to_display_string();
                let result = host
                    .context("needs")
                    .and_then(|n| n.get(&id))
                    .and_then(|j| j.get("result"))
                    .map(Value::to_display_string);
                results.push(result);
            }
            Value::Bool(if f == Function::Success {
                !host.cancelled() && results.iter().all(|r| r.as_deref() == Some("success"))
            } else {
                results.iter().any(|r| r.as_deref() == Some("failure"))
            })
        }
        Function::Cancelled => Value::Bool(host.cancelled()),
        Function::Always => Value::Bool(true),
        Function::Contains => Value::Bool(functions::contains(&arg(0)?, &arg(1)?)),
        Function::StartsWith => Value::Bool(functions::starts_with(&arg(0)?, &arg(1)?)),
        Function::EndsWith => Value::Bool(functions::ends_with(&arg(0)?, &arg(1)?)),
        Function::Join => {
            let sep = if args.len() > 1 { Some(arg(1)?) } else { None };
            Value::String(functions::join(&arg(0)?, sep.as_ref()))
        }
        Function::ToJson => Value::String(arg(0)?.to_json_pretty()),
        Function::FromJson => {
            functions::from_json(&arg(0)?.to_display_string()).map_err(EvalError)?
        }
        Function::Format => {
            let fmt = arg(0)?.to_display_string();
            let rest = (1..args.len()).map(arg).collect::<Result<Vec<_>, _>>()?;
            Value::String(functions::format(&fmt, &rest).map_err(EvalError)?)
        }
        Function::HashFiles => {
            let patterns = (0..args.len())
                .map(|i| arg(i).map(|v| v.to_display_string()))
                .collect::<Result<Vec<_>, _>>()?;
            Value::String(host.hash_files(&patterns).map_err(EvalError)?)
        }
        Function::Case => {
            let pairs = args.len() / 2;
            for p in 0..pairs {
                match arg(2 * p)? {
                    Value::Bool(true) => return arg(2 * p + 1),
                    Value::Bool(false) => {}
                    other => {
                        return Err(EvalError(format!(
                            "case: predicate {} must be a boolean, got {:?}",
                            p + 1,
                            other.kind()
                        )));
                    }
                }
            }
            arg(args.len() - 1)?
        }
    })
}
