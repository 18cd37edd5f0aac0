//! The GitHub Actions expression language (`${{ … }}`).
//!
//! Parsing ([`parse`]), evaluation against a [`Host`] ([`evaluate`]),
//! templates and `if:` conditions ([`template`]), and GitHub's value coercion
//! rules ([`Value`]). Pure: anything that needs the outside world — contexts,
//! job status, `hashFiles` — is asked of the host.

pub mod ast;
mod eval;
pub mod functions;
mod parser;
pub mod template;
mod value;

pub use ast::{BinOp, Expr};
pub use eval::{EvalError, Host, evaluate};
pub use functions::Function;
pub use parser::{MAX_DEPTH, MAX_LENGTH, ParseError, parse};
pub use template::{Condition, evaluate_template, interpolate};
pub use value::{Kind, Value, format_number, is_plain_decimal, parse_number};

/// Parses and evaluates an expression in one call.
pub fn eval_str(src: &str, host: &dyn Host) -> Result<Value, EvalError> {
    let e = parse(src).map_err(|e| EvalError(e.message))?;
    evaluate(&e, host)
}
