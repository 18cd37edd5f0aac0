//! Lexer and recursive-descent parser for the expression language.
//!
//! Precedence, lowest first: `||`, `&&`, `==` `!=`, `<` `<=` `>` `>=`, `!`,
//! then postfix property access, indexing and filters. Nesting is bounded
//! so hostile input cannot overflow the stack.

use crate::ast::{BinOp, Expr};
use crate::value::{Value, parse_number};
use thiserror::Error;

/// GitHub rejects expressions nested deeper than this.
pub const MAX_DEPTH: usize = 50;
/// GitHub rejects expressions longer than this.
pub const MAX_LENGTH: usize = 21_000;

/// A syntax error with its byte offset inside the expression text.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    /// Byte offset within the expression where the problem starts.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Comma,
    Star,
    Not,
    Op(BinOp),
    Number(f64),
    Str(String),
    Ident(String),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Dot => "'.'".into(),
        Tok::Comma => "','".into(),
        Tok::Star => "'*'".into(),
        Tok::Not => "'!'".into(),
        Tok::Op(op) => format!("'{}'", op.symbol()),
        Tok::Number(n) => format!("number {n}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Ident(s) => format!("'{s}'"),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    let err = |message: String, offset| ParseError { message, offset };
    while i < bytes.len() {
        let c = src[i..].chars().next().unwrap_or(' ');
        let start = i;
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '(' => out.push((Tok::LParen, start)),
            ')' => out.push((Tok::RParen, start)),
            '[' => out.push((Tok::LBracket, start)),
            ']' => out.push((Tok::RBracket, start)),
            ',' => out.push((Tok::Comma, start)),
            '*' => out.push((Tok::Star, start)),
            '.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                || matches!(
                    out.last(),
                    Some((Tok::Ident(_) | Tok::RParen | Tok::RBracket | Tok::Star, _))
                ) =>
            {
                out.push((Tok::Dot, start));
            }
            '!' | '=' | '<' | '>' | '&' | '|' => {
                let next = bytes.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('!', Some(b'=')) => (Tok::Op(BinOp::Ne), 2),
                    ('!', _) => (Tok::Not, 1),
                    ('=', Some(b'=')) => (Tok::Op(BinOp::Eq), 2),
                    ('<', Some(b'=')) => (Tok::Op(BinOp::Le), 2),
                    ('<', _) => (Tok::Op(BinOp::Lt), 1),
                    ('>', Some(b'=')) => (Tok::Op(BinOp::Ge), 2),
                    ('>', _) => (Tok::Op(BinOp::Gt), 1),
                    ('&', Some(b'&')) => (Tok::Op(BinOp::And), 2),
                    ('|', Some(b'|')) => (Tok::Op(BinOp::Or), 2),
                    _ => {
                        // A lone '=' is most likely a comparison; '&' and
                        // '|' the logical operators.
                        let hint = match c {
                            '=' => "did you mean '=='?".to_string(),
                            '&' | '|' => format!("did you mean '{c}{c}'?"),
                            _ => "did you mean '==' or '!='?".to_string(),
                        };
                        return Err(err(format!("unexpected symbol '{c}' ({hint})"), start));
                    }
                };
                out.push((tok, start));
                i += len;
                continue;
            }
            '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    let Some(ch) = src[j..].chars().next() else {
                        return Err(err("unterminated string literal".into(), start));
                    };
                    j += ch.len_utf8();
                    if ch == '\'' {
                        if bytes.get(j) == Some(&b'\'') {
                            s.push('\'');
                            j += 1;
                        } else {
                            break;
                        }
                    } else {
                        s.push(ch);
                    }
                }
                out.push((Tok::Str(s), start));
                i = j;
                continue;
            }
            '"' => {
                return Err(err(
                    "string literals use single quotes in expressions".into(),
                    start,
                ));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || bytes[j] == b'.'
                        || ((bytes[j] == b'-' || bytes[j] == b'+')
                            && matches!(bytes[j - 1], b'e' | b'E')
                            && !src[i..j].contains(['x', 'X'])))
                {
                    j += 1;
                }
                let text = &src[i..j];
                // A sign goes with decimal literals only: `-0xFF` is not a
                // number literal on GitHub.
                let signed_radix = text.starts_with(['-', '+'])
                    && text[1..].len() > 1
                    && text[1..2] == *"0"
                    && (text[2..3].eq_ignore_ascii_case("x")
                        || text[2..3].eq_ignore_ascii_case("o"));
                let n = parse_number(text)
                    .filter(|_| !text.is_empty() && text != "-" && text != "+" && !signed_radix);
                match n {
                    Some(n) => out.push((Tok::Number(n), start)),
                    None => {
                        return Err(err(format!("invalid number '{text}'"), start));
                    }
                }
                i = j;
                continue;
            }
            c if is_ident_start(c) => {
                let mut j = i;
                while j < bytes.len() && is_ident_char(bytes[j] as char) {
                    j += 1;
                }
                out.push((Tok::Ident(src[i..j].to_string()), start));
                i = j;
                continue;
            }
            other => {
                return Err(err(format!("unexpected character '{other}'"), start));
            }
        }
        i += c.len_utf8();
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, o)| *o)
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }
    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.into(),
            offset: self.offset(),
        })
    }
    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ParseError> {
        match self.peek() {
            Some(t) if t == want => {
                self.pos += 1;
                Ok(())
            }
            Some(t) => {
                let t = describe(t);
                self.error(format!("expected {what}, found {t}"))
            }
            None => self.error(format!("expected {what}, found end of expression")),
        }
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("expression nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn binary(&mut self, level: usize) -> Result<Expr, ParseError> {
        const LEVELS: [&[BinOp]; 4] = [
            &[BinOp::Or],
            &[BinOp::And],
            &[BinOp::Eq, BinOp::Ne],
            &[BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            if !LEVELS[level].contains(&op) {
                break;
            }
            self.pos += 1;
            self.enter()?;
            let right = self.binary(level + 1)?;
            self.depth -= 1;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    match self.bump() {
                        Some(Tok::Ident(name)) => e = Expr::Property(Box::new(e), name),
                        Some(Tok::Star) => e = Expr::Filter(Box::new(e)),
                        _ => {
                            self.pos -= 1;
                            return self.error("expected a property name or '*' after '.'");
                        }
                    }
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    if self.peek() == Some(&Tok::Star) {
                        self.pos += 1;
                        self.expect(&Tok::RBracket, "']'")?;
                        e = Expr::Filter(Box::new(e));
                    } else {
                        self.enter()?;
                        let idx = self.binary(0)?;
                        self.depth -= 1;
                        self.expect(&Tok::RBracket, "']'")?;
                        e = Expr::Index(Box::new(e), Box::new(idx));
                    }
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let offset = self.offset();
        match self.bump() {
            Some(Tok::Number(n)) => Ok(Expr::Literal(Value::Number(n))),
            Some(Tok::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Tok::LParen) => {
                self.enter()?;
                let e = self.binary(0)?;
                self.depth -= 1;
                self.expect(&Tok::RParen, "')'")?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    self.enter()?;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.binary(0)?);
                            if self.peek() == Some(&Tok::Comma) {
                                self.pos += 1;
                                continue;
                            }
                            break;
                        }
                    }
                    self.expect(&Tok::RParen, "',' or ')' in the argument list")?;
                    self.depth -= 1;
                    let call = crate::functions::check_call(&name, args.len())
                        .map_err(|message| ParseError { message, offset })?;
                    return Ok(Expr::Call(call, args));
                }
                Ok(match name.as_str() {
                    "true" => Expr::Literal(Value::Bool(true)),
                    "false" => Expr::Literal(Value::Bool(false)),
                    "null" => Expr::Literal(Value::Null),
                    "NaN" => Expr::Literal(Value::Number(f64::NAN)),
                    "Infinity" => Expr::Literal(Value::Number(f64::INFINITY)),
                    _ => Expr::Context(name),
                })
            }
            Some(t) => {
                self.pos -= 1;
                let t = describe(&t);
                self.error(format!("unexpected {t}, expected a value"))
            }
            None => self.error("unexpected end of expression, expected a value"),
        }
    }
}

/// Parses one expression (the text between `${{` and `}}`).
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_LENGTH {
        return Err(ParseError {
            message: format!("expression longer than {MAX_LENGTH} characters"),
            offset: 0,
        });
    }
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    if p.peek().is_none() {
        // `${{ }}` is null, as on GitHub.
        return Ok(Expr::Literal(Value::Null));
    }
    let e = p.binary(0)?;
    if let Some(t) = p.peek() {
        let t = describe(t);
        return p.error(format!("unexpected {t} after a complete expression"));
    }
    if too_deep(&e) {
        return Err(ParseError {
            message: format!("exceeded max expression depth {MAX_DEPTH}"),
            offset: 0,
        });
    }
    Ok(e)
}

/// Whether the tree is deeper than [`MAX_DEPTH`] nodes (every operator,
/// property access, index and call counts, as in GitHub's parser).
/// Iterative: a long chain of `.a` must not exhaust the stack.
fn too_deep(root: &Expr) -> bool {
    let mut stack: Vec<(&Expr, usize)> = vec![(root, 1)];
    while let Some((e, d)) = stack.pop() {
        if d > MAX_DEPTH {
            return true;
        }
        match e {
            Expr::Literal(_) | Expr::Context(_) => {}
            Expr::Property(x, _) | Expr::Filter(x) | Expr::Not(x) => stack.push((x, d + 1)),
            // `a || b || c` is one node of three operands to GitHub, not
            // a nesting: a chain of the same logical operator adds no depth.
            Expr::Binary(op @ (crate::BinOp::And | crate::BinOp::Or), a, b) => {
                let same = matches!(&**a, Expr::Binary(o, ..) if o == op);
                stack.push((a, if same { d } else { d + 1 }));
                stack.push((b, d + 1));
            }
            Expr::Index(a, b) | Expr::Binary(_, a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            Expr::Call(_, args) => stack.extend(args.iter().map(|a| (a, d + 1))),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let e = parse("a || b && c == d < e").unwrap();
        assert_eq!(
            e.to_string(),
            "(a || (b && (c == (d < e))))",
            "|| binds loosest, < tightest"
        );
        assert_eq!(parse("!a == b").unwrap().to_string(), "(!a == b)");
    }

    #[test]
    fn postfix_forms() {
        assert_eq!(
            parse("github.event['head_commit'].id").unwrap().to_string(),
            "github.event['head_commit'].id"
        );
        assert_eq!(parse("a.*.b").unwrap().to_string(), "a.*.b");
        assert_eq!(parse("a[*].b").unwrap().to_string(), "a.*.b");
        assert_eq!(
            parse("needs.build-x.outputs").unwrap().to_string(),
            "needs.build-x.outputs"
        );
    }

    #[test]
    fn literals() {
        assert_eq!(parse("-9.2").unwrap(), Expr::Literal(Value::Number(-9.2)));
        assert_eq!(parse("0xff").unwrap(), Expr::Literal(Value::Number(255.0)));
        assert_eq!(
            parse("-2.99e-2").unwrap(),
            Expr::Literal(Value::Number(-0.0299))
        );
        assert_eq!(parse("'it''s'").unwrap(), Expr::Literal(Value::str("it's")));
        assert_eq!(parse("1.5").unwrap(), Expr::Literal(Value::Number(1.5)));
    }

    #[test]
    fn errors_have_offsets() {
        let e = parse("a == ").unwrap_err();
        assert_eq!(e.offset, 5);
        let e = parse("a = b").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(parse("'abc").is_err());
        assert!(parse("foo(").is_err());
        assert!(parse("a b").is_err());
        assert!(parse("\"x\"").is_err());
        assert!(parse("contains('a')").is_err(), "arity is checked");
        assert!(parse("nosuchfn()").is_err());
        assert!(parse(&"(".repeat(200)).is_err());
        assert!(parse(&"!".repeat(200)).is_err());
    }
}
