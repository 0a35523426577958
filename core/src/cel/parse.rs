//! CEL's lexer and recursive-descent parser (the grammar of cel-spec's `langdef.md`), with
//! the standard macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) expanded at
//! parse time. Input length and nesting depth are bounded before anything is built.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Longest expression accepted, in bytes (kube limits policy expressions to 5 KiB... and more
/// for CRD rules; this is the ceiling of both).
pub(crate) const MAX_LEN: usize = 100 * 1024;

/// Deepest nesting of the syntax tree (cel-go's default recursion limit is 250).
const MAX_DEPTH: usize = 100;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
}

/// Binary operators, in CEL's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// The comprehension macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Lit),
    Ident(String),
    Select(Box<Expr>, String),
    /// `has(e.f)`.
    Has(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call {
        target: Option<Box<Expr>>,
        func: String,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Comprehension {
        kind: Macro,
        range: Box<Expr>,
        var: String,
        /// The predicate (or the filter of a three-argument `map`).
        pred: Box<Expr>,
        /// What `map` produces.
        transform: Option<Box<Expr>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Lit),
    Ident(String),
    Punct(&'static str),
}

const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

const PUNCT: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".", ",",
    "(", ")", "[", "]", "{", "}",
];

/// Whether `name` is one of CEL's reserved words (escaped as `__name__` in property names).
pub(crate) fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || matches!(name, "true" | "false" | "null" | "in")
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b.get(i) != Some(&b'\n') {
                i += 1;
            }
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, next) = number(src, i)?;
            out.push((start, tok));
            i = next;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                j += 1;
            }
            let word = src.get(i..j).unwrap_or("");
            let quote = b.get(j).copied();
            let is_prefix = matches!(
                word,
                "r" | "R" | "b" | "B" | "rb" | "br" | "Rb" | "bR" | "RB" | "BR" | "rB" | "Br"
            );
            if is_prefix && matches!(quote, Some(b'"' | b'\'')) {
                let raw = word.contains(['r', 'R']);
                let bytes = word.contains(['b', 'B']);
                let (text, next) = string(src, j, raw)?;
                out.push((
                    start,
                    Tok::Lit(if bytes {
                        Lit::Bytes(text.into_bytes())
                    } else {
                        Lit::Str(text)
                    }),
                ));
                i = next;
                continue;
            }
            let tok = match word {
                "true" => Tok::Lit(Lit::Bool(true)),
                "false" => Tok::Lit(Lit::Bool(false)),
                "null" => Tok::Lit(Lit::Null),
                "in" => Tok::Punct("in"),
                w => Tok::Ident(w.to_string()),
            };
            out.push((start, tok));
            i = j;
            continue;
        }
        if c == b'"' || c == b'\'' {
            let (text, next) = string(src, i, false)?;
            out.push((start, Tok::Lit(Lit::Str(text))));
            i = next;
            continue;
        }
        let rest = src.get(i..).unwrap_or("");
        let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) else {
            return Err(format!(
                "Syntax error: token recognition error at: '{}'",
                rest.chars().next().unwrap_or(' ')
            ));
        };
        out.push((start, Tok::Punct(p)));
        i += p.len();
    }
    Ok(out)
}

fn number(src: &str, start: usize) -> Result<(Tok, usize), String> {
    let b = src.as_bytes();
    let mut i = start;
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let digits_start = i;
        while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        let digits = src.get(digits_start..i).unwrap_or("");
        let unsigned = matches!(b.get(i), Some(b'u' | b'U'));
        let v = u64::from_str_radix(digits, 16).map_err(|_| "invalid hex literal".to_string())?;
        if unsigned {
            return Ok((Tok::Lit(Lit::Uint(v)), i + 1));
        }
        let v = i64::try_from(v).map_err(|_| "invalid int literal".to_string())?;
        return Ok((Tok::Lit(Lit::Int(v)), i));
    }
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut float = false;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            float = true;
            i = j;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
    }
    let text = src.get(start..i).unwrap_or("");
    if float {
        let v: f64 = text
            .parse()
            .map_err(|_| "invalid double literal".to_string())?;
        return Ok((Tok::Lit(Lit::Double(v)), i));
    }
    if matches!(b.get(i), Some(b'u' | b'U')) {
        let v: u64 = text
            .parse()
            .map_err(|_| "invalid uint literal".to_string())?;
        return Ok((Tok::Lit(Lit::Uint(v)), i + 1));
    }
    let v: i64 = text
        .parse()
        .map_err(|_| "invalid int literal".to_string())?;
    Ok((Tok::Lit(Lit::Int(v)), i))
}

/// A quoted string starting at `start` (single, double, or triple quotes); escapes decoded
/// unless `raw`.
fn string(src: &str, start: usize, raw: bool) -> Result<(String, usize), String> {
    let rest = src.get(start..).unwrap_or("");
    let quote = if rest.starts_with("\"\"\"") {
        "\"\"\""
    } else if rest.starts_with("'''") {
        "'''"
    } else if rest.starts_with('"') {
        "\""
    } else {
        "'"
    };
    let body_start = start + quote.len();
    let body = src.get(body_start..).unwrap_or("");
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if body.get(i..).is_some_and(|r| r.starts_with(quote)) {
            return Ok((out, body_start + i + quote.len()));
        }
        if c == '\n' && quote.len() == 1 {
            break;
        }
        if c == '\\' && !raw {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' | '\'' | '"' | '`' | '?' => out.push(e),
                'u' | 'U' | 'x' | 'X' => {
                    let n = match e {
                        'u' => 4,
                        'U' => 8,
                        _ => 2,
                    };
                    let mut code = 0u32;
                    for _ in 0..n {
                        let d = chars
                            .next()
                            .and_then(|(_, h)| h.to_digit(16))
                            .ok_or_else(|| "invalid escape sequence".to_string())?;
                        code = code * 16 + d;
                    }
                    out.push(
                        char::from_u32(code)
                            .ok_or_else(|| "invalid escape sequence".to_string())?,
                    );
                }
                _ => return Err("invalid escape sequence".into()),
            }
            continue;
        }
        out.push(c);
    }
    Err("Syntax error: unterminated string literal".into())
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |(p, _)| *p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting '{p}'")))
        }
    }

    fn unexpected(&self, what: &str) -> String {
        match self.peek() {
            None => format!("Syntax error: mismatched input '<EOF>' {what}"),
            Some(Tok::Punct(p)) => format!("Syntax error: mismatched input '{p}' {what}"),
            Some(Tok::Ident(i)) => format!("Syntax error: mismatched input '{i}' {what}"),
            Some(Tok::Lit(_)) => format!("Syntax error: extraneous input {what}"),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let cond = self.or()?;
        let out = if self.eat("?") {
            let a = self.or()?;
            self.expect(":")?;
            let b = self.expr()?;
            Expr::Cond(Box::new(cond), Box::new(a), Box::new(b))
        } else {
            cond
        };
        self.depth -= 1;
        Ok(out)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.relation()?;
        while self.eat("&&") {
            let right = self.relation()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Expr, String> {
        let mut left = self.addition()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("==")) => BinOp::Eq,
                Some(Tok::Punct("!=")) => BinOp::Ne,
                Some(Tok::Punct("<")) => BinOp::Lt,
                Some(Tok::Punct("<=")) => BinOp::Le,
                Some(Tok::Punct(">")) => BinOp::Gt,
                Some(Tok::Punct(">=")) => BinOp::Ge,
                Some(Tok::Punct("in")) => BinOp::In,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.addition()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn addition(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplication()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("+")) => BinOp::Add,
                Some(Tok::Punct("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.multiplication()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplication(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("*")) => BinOp::Mul,
                Some(Tok::Punct("/")) => BinOp::Div,
                Some(Tok::Punct("%")) => BinOp::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let out = if self.eat("!") {
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat("-") {
            match self.unary()? {
                // -9223372036854775808 is a literal in CEL.
                Expr::Lit(Lit::Int(n)) => Expr::Lit(Lit::Int(n.wrapping_neg())),
                Expr::Lit(Lit::Double(d)) => Expr::Lit(Lit::Double(-d)),
                e => Expr::Neg(Box::new(e)),
            }
        } else {
            self.member()?
        };
        self.depth -= 1;
        Ok(out)
    }

    fn member(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let name = match self.peek().cloned() {
                    Some(Tok::Ident(n)) => n,
                    _ => return Err(self.unexpected("expecting IDENTIFIER")),
                };
                self.pos += 1;
                if self.eat("(") {
                    let args = self.args(")")?;
                    e = macro_or_call(Some(e), name, args)?;
                } else {
                    e = Expr::Select(Box::new(e), name);
                }
            } else if self.eat("[") {
                let index = self.expr()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(index));
            } else {
                return Ok(e);
            }
        }
    }

    fn args(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            out.push(self.expr()?);
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(",")?;
            if self.eat(close) {
                return Ok(out);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected("expecting an expression"));
        };
        self.pos += 1;
        match tok {
            Tok::Lit(l) => Ok(Expr::Lit(l)),
            Tok::Ident(name) => {
                if self.eat("(") {
                    let args = self.args(")")?;
                    return macro_or_call(None, name, args);
                }
                Ok(Expr::Ident(name))
            }
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct("[") => Ok(Expr::List(self.args("]")?)),
            Tok::Punct("{") => {
                let mut entries = Vec::new();
                if self.eat("}") {
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let k = self.expr()?;
                    self.expect(":")?;
                    let v = self.expr()?;
                    entries.push((k, v));
                    if self.eat("}") {
                        return Ok(Expr::Map(entries));
                    }
                    self.expect(",")?;
                    if self.eat("}") {
                        return Ok(Expr::Map(entries));
                    }
                }
            }
            Tok::Punct(".") => {
                // A leading dot names the root scope: `.object` is `object`.
                match self.peek().cloned() {
                    Some(Tok::Ident(n)) => {
                        self.pos += 1;
                        Ok(Expr::Ident(n))
                    }
                    _ => Err(self.unexpected("expecting IDENTIFIER")),
                }
            }
            Tok::Punct(p) => {
                self.pos -= 1;
                let _ = p;
                Err(self.unexpected("expecting an expression"))
            }
        }
    }
}

/// Expands the macros; any other call stays a call.
fn macro_or_call(target: Option<Expr>, func: String, mut args: Vec<Expr>) -> Result<Expr, String> {
    match (target, func.as_str(), args.len()) {
        (None, "has", 1) => match args.pop() {
            Some(Expr::Select(e, f)) => Ok(Expr::Has(e, f)),
            _ => Err("invalid argument to has() macro".into()),
        },
        (Some(range), "all" | "exists" | "exists_one" | "filter" | "map", 2 | 3) => {
            let kind = match func.as_str() {
                "all" => Macro::All,
                "exists" => Macro::Exists,
                "exists_one" => Macro::ExistsOne,
                "filter" => Macro::Filter,
                _ => Macro::Map,
            };
            if args.len() == 3 && kind != Macro::Map {
                return Ok(Expr::Call {
                    target: Some(Box::new(range)),
                    func,
                    args,
                });
            }
            let mut it = args.into_iter();
            let var = match it.next() {
                Some(Expr::Ident(v)) => v,
                _ => return Err("argument is not an identifier".into()),
            };
            let first = it.next().ok_or("missing macro argument")?;
            let (pred, transform) = match (kind, it.next()) {
                (Macro::Map, Some(t)) => (first, Some(Box::new(t))),
                (Macro::Map, None) => (Expr::Lit(Lit::Bool(true)), Some(Box::new(first))),
                (_, _) => (first, None),
            };
            Ok(Expr::Comprehension {
                kind,
                range: Box::new(range),
                var,
                pred: Box::new(pred),
                transform,
            })
        }
        (target, _, _) => Ok(Expr::Call {
            target: target.map(Box::new),
            func,
            args,
        }),
    }
}

/// Parses `src`, or explains why not in cel-go's style (`ERROR: <input>:1:5: ...`).
pub(crate) fn parse(src: &str) -> Result<Expr, String> {
    let located = |at: usize, msg: String| {
        let line = src.get(..at).map_or(1, |s| s.matches('\n').count() + 1);
        let col = src.get(..at).map_or(0, |s| {
            s.rsplit('\n').next().map_or(0, |l| l.chars().count())
        });
        format!("ERROR: <input>:{line}:{}: {msg}", col + 1)
    };
    if src.len() > MAX_LEN {
        return Err(format!("expression is longer than {MAX_LEN} bytes"));
    }
    let toks = lex(src).map_err(|e| located(0, e))?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr().map_err(|e| located(p.at(), e))?;
    if p.pos < p.toks.len() {
        return Err(located(p.at(), p.unexpected("expecting <EOF>")));
    }
    Ok(e)
}
