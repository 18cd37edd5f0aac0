//! The expression syntax tree.

use crate::functions::Function;
use crate::value::{Value, format_number};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A top-level named context such as `github` or `matrix`.
    Context(String),
    Property(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// The object filter `.*` / `[*]`.
    Filter(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

impl Expr {
    /// Calls `f` on this node and every node below it.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Literal(_) | Expr::Context(_) => {}
            Expr::Property(e, _) | Expr::Filter(e) | Expr::Not(e) => e.walk(f),
            Expr::Index(a, b) | Expr::Binary(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
        }
    }

    /// The named contexts this expression reads, e.g. `["github", "matrix"]`.
    pub fn contexts(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Context(name) = e
                && !out.contains(&name.as_str())
            {
                out.push(name.as_str());
            }
        });
        out
    }

    /// The functions this expression calls.
    pub fn functions(&self) -> Vec<Function> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(f, _) = e
                && !out.contains(f)
            {
                out.push(*f);
            }
        });
        out
    }

    /// Whether a status function (`success()`, `failure()`, `always()`,
    /// `cancelled()`) appears; without one, `if:` gets an implicit `success() &&`.
    pub fn has_status_function(&self) -> bool {
        self.functions().iter().any(|f| f.is_status())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(Value::String(s)) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Literal(Value::Number(n)) => f.write_str(&format_number(*n)),
            Expr::Literal(Value::Null) => f.write_str("null"),
            Expr::Literal(v) => write!(f, "{v}"),
            Expr::Context(name) => f.write_str(name),
            Expr::Property(e, name) => write!(f, "{e}.{name}"),
            Expr::Index(e, i) => write!(f, "{e}[{i}]"),
            Expr::Filter(e) => write!(f, "{e}.*"),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::Binary(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}
