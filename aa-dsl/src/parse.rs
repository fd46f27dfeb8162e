//! From source text to the syntax tree, with pest.

use crate::ast::*;
use crate::diag::{did_you_mean, Diagnostic};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

mod pest_parser {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar.pest"]
    pub(super) struct AagParser;
}
use pest_parser::{AagParser, Rule};

fn span(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    // Optional parts at a rule's end may leave the whitespace before them in it.
    let text = s.as_str();
    Span {
        start: s.start(),
        end: s.start() + text.trim_end().len(),
    }
}

/// Parses a `.aag` source. A syntax error is one diagnostic; errors in literals
/// (escapes, integers too large) are all reported.
pub fn parse(src: &str) -> Result<File, Vec<Diagnostic>> {
    let mut pairs = AagParser::parse(Rule::file, src).map_err(|e| vec![syntax_error(e, src)])?;
    let file = pairs.next().expect("file rule");
    let mut cx = Cx { errors: Vec::new() };
    let mut inner = file.into_inner().filter(significant);
    let proto = inner.next().expect("protocol_decl");
    let protocol = ident(proto.into_inner().find(significant).expect("name"));
    let (mut vars, mut records) = (Vec::new(), Vec::new());
    for p in inner {
        match p.as_rule() {
            Rule::var_decl => vars.push(cx.var_decl(p)),
            Rule::record => records.push(cx.record(p)),
            _ => {}
        }
    }
    if cx.errors.is_empty() {
        Ok(File {
            protocol,
            vars,
            records,
        })
    } else {
        Err(cx.errors)
    }
}

const KEYWORDS: &[&str] = &[
    "protocol", "var", "start", "record", "skip", "sync", "then", "expect", "repeat", "until",
    "quoted", "bytes", "chunk", "max", "count", "stop", "times", "if", "else", "next", "end",
    "fail", "true", "false",
];

/// The integer types of a field's ending.
pub(crate) const INT_TYPES: &[&str] = &["u8", "u16be", "u16le", "u32be", "u32le", "u64be", "u64le"];

fn syntax_error(e: pest::error::Error<Rule>, src: &str) -> Diagnostic {
    let (start, end) = match e.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let expected = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<String> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort();
            names.dedup();
            match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let rest = &src[start.min(src.len())..];
    let line_rest = rest.split('\n').next().unwrap_or("");
    if line_rest.starts_with('"')
        && !line_rest[1..]
            .replace("\\\\", "")
            .replace("\\\"", "")
            .contains('"')
    {
        return Diagnostic::new(
            "unterminated string",
            Span {
                start,
                end: start + 1,
            },
            "this string is never closed",
        )
        .help("strings end on the line they start on");
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let word: String = rest.chars().take_while(|c| is_word(*c)).collect();
    // In the middle of a word: a keyword matched its start (`untill` is
    // `until` and then `l`). Point at the whole word and name the keyword.
    let head = src[..start.min(src.len())]
        .chars()
        .rev()
        .take_while(|c| is_word(*c))
        .count();
    if head > 0 && !word.is_empty() {
        let from = start - head;
        let whole = &src[from..start + word.len()];
        if let Some(m) = did_you_mean(whole, KEYWORDS.iter().copied()) {
            return Diagnostic::new(
                "syntax error",
                Span {
                    start: from,
                    end: start + word.len(),
                },
                format!("`{whole}` is not a keyword"),
            )
            .help(format!("did you mean `{m}`?"));
        }
    }
    let d = Diagnostic::new(
        "syntax error",
        Span { start, end },
        format!("expected {expected}"),
    );
    if KEYWORDS.contains(&word.as_str()) {
        d.help(format!("`{word}` is a keyword and cannot be a name"))
    } else if rest.starts_with('=') && !rest.starts_with("==") && expected.contains("an operator") {
        d.help("`=` assigns a variable; a comparison is `==`")
    } else if let Some(m) = did_you_mean(&word, KEYWORDS.iter().chain(INT_TYPES).copied()) {
        d.help(format!("did you mean `{m}`?"))
    } else if rest
        .chars()
        .next()
        .is_some_and(|c| !c.is_ascii() && c.is_alphabetic())
    {
        d.help("names are ASCII letters, digits and `_`")
    } else {
        d
    }
}

fn rule_name(r: Rule) -> String {
    match r {
        Rule::ident => "a name".into(),
        Rule::string | Rule::str_inner => "a string".into(),
        Rule::int => "an integer".into(),
        Rule::expr | Rule::unary | Rule::primary | Rule::call | Rule::boolean => {
            "an expression".into()
        }
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem
        | Rule::bit_and
        | Rule::bit_or
        | Rule::bit_xor
        | Rule::shl
        | Rule::shr => "an operator".into(),
        Rule::stmt
        | Rule::if_stmt
        | Rule::next_stmt
        | Rule::end_stmt
        | Rule::fail_stmt
        | Rule::signal_stmt
        | Rule::wait_stmt
        | Rule::assign => "a statement".into(),
        Rule::record_item | Rule::field_item | Rule::repeat_item | Rule::expect_item => {
            "an item (a field, `repeat`, `expect` or `var`)".into()
        }
        Rule::ending
        | Rule::until_end
        | Rule::len_end
        | Rule::chunk_end
        | Rule::int_end
        | Rule::int_ty => {
            "`until`, `bytes`, `chunk` or an integer type (`u8`, `u16be`, ...)".into()
        }
        Rule::field_opt | Rule::max_opt | Rule::count_opt => "`max`, `count`".into(),
        Rule::stop | Rule::stop_empty | Rule::stop_after | Rule::stop_times => {
            "`stop on empty`, `stop after ...` or `times N`".into()
        }
        Rule::delim | Rule::eof_kw => "a string or `eof`".into(),
        Rule::quoted_opt => "`quoted`".into(),
        Rule::record_opt | Rule::skip_opt | Rule::sync_opt => "`skip` or `sync`".into(),
        Rule::after_kw => "`after`".into(),
        Rule::or_eof => "`or eof`".into(),
        Rule::ty => "`u64` or `bool`".into(),
        Rule::block => "`{`".into(),
        Rule::then_block => "`then`".into(),
        Rule::begin_block => "`begin`".into(),
        Rule::semi => "`;`".into(),
        Rule::rbrace => "`}`".into(),
        Rule::start_kw => "`start`".into(),
        Rule::record | Rule::record_kw => "`record`".into(),
        Rule::var_decl => "`var`".into(),
        Rule::protocol_decl => "`protocol`".into(),
        Rule::EOI => "end of file".into(),
        other => format!("`{other:?}`"),
    }
}

/// Punctuation rules exist only so syntax errors can name them.
fn significant(p: &Pair<'_, Rule>) -> bool {
    !matches!(p.as_rule(), Rule::semi | Rule::rbrace | Rule::record_kw)
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

struct Cx {
    errors: Vec<Diagnostic>,
}

impl Cx {
    fn lit(&mut self, p: Pair<'_, Rule>) -> Lit {
        let sp = span(&p);
        let raw = p.into_inner().find(significant).map_or("", |i| i.as_str());
        let mut bytes = Vec::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                let mut buf = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            match it.next() {
                Some('n') => bytes.push(b'\n'),
                Some('r') => bytes.push(b'\r'),
                Some('t') => bytes.push(b'\t'),
                Some('0') => bytes.push(0),
                Some('\\') => bytes.push(b'\\'),
                Some('"') => bytes.push(b'"'),
                Some('x') => {
                    let h: String = it.by_ref().take(2).collect();
                    match u8::from_str_radix(&h, 16) {
                        Ok(b) if h.len() == 2 => bytes.push(b),
                        _ => self.errors.push(Diagnostic::new(
                            "bad escape in string",
                            sp,
                            "`\\x` takes two hex digits",
                        )),
                    }
                }
                other => self.errors.push(
                    Diagnostic::new(
                        "unknown escape in string",
                        sp,
                        format!("`\\{}` is not an escape", other.unwrap_or(' ')),
                    )
                    .help("escapes are \\n \\r \\t \\0 \\\\ \\\" and \\xHH"),
                ),
            }
        }
        Lit { bytes, span: sp }
    }

    fn int(&mut self, p: Pair<'_, Rule>) -> u64 {
        let s = p.as_str();
        let v = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        };
        v.unwrap_or_else(|_| {
            self.errors.push(Diagnostic::new(
                "integer too large",
                span(&p),
                "does not fit in 64 bits",
            ));
            0
        })
    }

    fn var_decl(&mut self, p: Pair<'_, Rule>) -> VarDecl {
        let sp = span(&p);
        let mut it = p.into_inner().filter(significant);
        let name = ident(it.next().expect("name"));
        let ty = match it.next().expect("type").as_str() {
            "bool" => Ty::Bool,
            _ => Ty::U64,
        };
        let init = it.next().map(|e| self.expr(e));
        VarDecl {
            name,
            ty,
            init,
            span: sp,
        }
    }

    fn record(&mut self, p: Pair<'_, Rule>) -> RecordDecl {
        let mut rec = RecordDecl {
            name: Ident {
                name: String::new(),
                span: Span::default(),
            },
            start: false,
            skip: None,
            sync: None,
            begin: None,
            items: Vec::new(),
            then: Vec::new(),
        };
        for q in p.into_inner().filter(significant) {
            match q.as_rule() {
                Rule::start_kw => rec.start = true,
                Rule::ident => rec.name = ident(q),
                Rule::record_opt => {
                    let o = q.into_inner().find(significant).expect("option");
                    let is_skip = o.as_rule() == Rule::skip_opt;
                    let mut after = false;
                    let mut lits = Vec::new();
                    for x in o.into_inner().filter(significant) {
                        match x.as_rule() {
                            Rule::after_kw => after = true,
                            _ => lits.push(self.lit(x)),
                        }
                    }
                    if is_skip {
                        rec.skip = lits.pop();
                    } else {
                        rec.sync = Some((lits, after));
                    }
                }
                Rule::record_item => {
                    let i = q.into_inner().find(significant).expect("item");
                    rec.items.push(match i.as_rule() {
                        Rule::var_decl => Item::Var(self.var_decl(i)),
                        Rule::expect_item => Item::Expect(
                            self.lit(i.into_inner().find(significant).expect("string")),
                        ),
                        _ => Item::Field(self.field(i)),
                    });
                }
                Rule::then_block => {
                    rec.then = self.block(q.into_inner().find(significant).expect("block"));
                }
                Rule::begin_block => {
                    let sp = span(&q);
                    let b = self.block(q.into_inner().find(significant).expect("block"));
                    rec.begin = Some((b, sp));
                }
                _ => {}
            }
        }
        rec
    }

    fn field(&mut self, p: Pair<'_, Rule>) -> FieldDecl {
        let is_repeat = p.as_rule() == Rule::repeat_item;
        let mut it = p.into_inner().filter(significant);
        let name = ident(it.next().expect("name"));
        let e = it.next().expect("ending");
        let ending_span = span(&e);
        let ending = self.ending(e.into_inner().find(significant).expect("ending kind"));
        let mut f = FieldDecl {
            name,
            ending,
            ending_span,
            max: None,
            count: None,
            repeat: None,
            actions: Vec::new(),
        };
        for q in it {
            match q.as_rule() {
                Rule::field_opt => {
                    let o = q.into_inner().find(significant).expect("opt");
                    let is_max = o.as_rule() == Rule::max_opt;
                    let n = o.into_inner().find(significant).expect("int");
                    let v = (self.int(n.clone()), span(&n));
                    if is_max {
                        f.max = Some(v);
                    } else {
                        f.count = Some(v);
                    }
                }
                Rule::stop => {
                    let s = q.into_inner().find(significant).expect("stop kind");
                    let sp = span(&s);
                    f.repeat = Some(match s.as_rule() {
                        Rule::stop_empty => Stop::OnEmpty(sp),
                        Rule::stop_after => {
                            let (mut delims, mut eof) = (Vec::new(), None);
                            for d in s.into_inner().filter(significant) {
                                self.delim(d, &mut delims, &mut eof);
                            }
                            Stop::After(delims, eof)
                        }
                        Rule::stop_when => {
                            Stop::When(self.expr(s.into_inner().find(significant).expect("expr")))
                        }
                        _ => {
                            Stop::Times(self.expr(s.into_inner().find(significant).expect("expr")))
                        }
                    });
                }
                Rule::block => f.actions = self.block(q),
                _ => {}
            }
        }
        debug_assert_eq!(is_repeat, f.repeat.is_some());
        f
    }

    fn ending(&mut self, e: Pair<'_, Rule>) -> Ending {
        match e.as_rule() {
            Rule::until_end => {
                let (mut delims, mut eof, mut quote) = (Vec::new(), None, None);
                for q in e.into_inner().filter(significant) {
                    if q.as_rule() == Rule::quoted_opt {
                        quote = Some(self.lit(q.into_inner().find(significant).expect("string")));
                    } else {
                        self.delim(q, &mut delims, &mut eof);
                    }
                }
                Ending::Until { delims, eof, quote }
            }
            Rule::len_end => {
                Ending::Bytes(self.expr(e.into_inner().find(significant).expect("expr")))
            }
            Rule::chunk_end => {
                Ending::Chunk(e.into_inner().find(significant).map(|x| self.expr(x)))
            }
            _ => {
                let t = e.into_inner().find(significant).expect("int type").as_str();
                let bytes = match &t[1..t.len().min(3)] {
                    "8" => 1,
                    "16" => 2,
                    "32" => 4,
                    _ => 8,
                };
                Ending::Int {
                    bytes,
                    big: !t.ends_with("le"),
                }
            }
        }
    }

    fn delim(&mut self, d: Pair<'_, Rule>, delims: &mut Vec<Lit>, eof: &mut Option<Span>) {
        let q = d.into_inner().find(significant).expect("delimiter");
        if q.as_rule() == Rule::eof_kw {
            *eof = Some(span(&q));
        } else {
            delims.push(self.lit(q));
        }
    }

    fn block(&mut self, p: Pair<'_, Rule>) -> Vec<Stmt> {
        p.into_inner()
            .filter(significant)
            .map(|s| self.stmt(s))
            .collect()
    }

    fn stmt(&mut self, p: Pair<'_, Rule>) -> Stmt {
        let s = if p.as_rule() == Rule::stmt {
            p.into_inner().find(significant).expect("stmt kind")
        } else {
            p
        };
        let sp = span(&s);
        match s.as_rule() {
            Rule::if_stmt => {
                let mut it = s.into_inner().filter(significant);
                let cond = self.expr(it.next().expect("cond"));
                let then = self.block(it.next().expect("block"));
                let els = match it.next() {
                    Some(b) if b.as_rule() == Rule::block => self.block(b),
                    Some(i) => vec![self.stmt(i)],
                    None => Vec::new(),
                };
                Stmt::If(cond, then, els)
            }
            Rule::next_stmt => {
                let mut it = s.into_inner().filter(significant);
                let name = ident(it.next().expect("name"));
                Stmt::Next(name, it.next().is_some())
            }
            Rule::end_stmt => Stmt::End(sp),
            Rule::wait_stmt => Stmt::Wait(sp),
            Rule::fail_stmt => {
                Stmt::Fail(self.lit(s.into_inner().find(significant).expect("string")))
            }
            Rule::signal_stmt => {
                Stmt::Signal(self.expr(s.into_inner().find(significant).expect("expr")))
            }
            _ => {
                let mut it = s.into_inner().filter(significant);
                let name = ident(it.next().expect("name"));
                Stmt::Assign(name, self.expr(it.next().expect("expr")))
            }
        }
    }

    fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
        let pratt = PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            // Rust's order: `|` below `^` below `&` below the shifts, all
            // above the comparisons.
            .op(Op::infix(Rule::bit_or, Assoc::Left))
            .op(Op::infix(Rule::bit_xor, Assoc::Left))
            .op(Op::infix(Rule::bit_and, Assoc::Left))
            .op(Op::infix(Rule::shl, Assoc::Left) | Op::infix(Rule::shr, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left));
        pratt
            .map_primary(|q| self.unary(q))
            .map_infix(|l, op, r| {
                let sp = Span {
                    start: l.span.start,
                    end: r.span.end,
                };
                let op = match op.as_rule() {
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::bit_and => BinOp::BitAnd,
                    Rule::bit_or => BinOp::BitOr,
                    Rule::bit_xor => BinOp::BitXor,
                    Rule::shl => BinOp::Shl,
                    Rule::shr => BinOp::Shr,
                    _ => BinOp::Rem,
                };
                Expr {
                    kind: ExprKind::Bin(op, Box::new(l), Box::new(r)),
                    span: sp,
                }
            })
            .parse(p.into_inner().filter(significant))
    }

    fn unary(&mut self, p: Pair<'_, Rule>) -> Expr {
        let sp = span(&p);
        let mut nots = 0;
        let mut e = None;
        for q in p.into_inner().filter(significant) {
            match q.as_rule() {
                Rule::not => nots += 1,
                _ => e = Some(self.primary(q)),
            }
        }
        let mut e = e.expect("primary");
        for _ in 0..nots {
            e = Expr {
                kind: ExprKind::Not(Box::new(e)),
                span: sp,
            };
        }
        e
    }

    fn primary(&mut self, p: Pair<'_, Rule>) -> Expr {
        let sp = span(&p);
        let q = p.into_inner().find(significant).expect("primary kind");
        let kind = match q.as_rule() {
            Rule::int => ExprKind::Int(self.int(q)),
            Rule::boolean => ExprKind::Bool(q.as_str() == "true"),
            Rule::string => ExprKind::Str(self.lit(q).bytes),
            Rule::ident => ExprKind::Name(q.as_str().to_string()),
            Rule::call => {
                let mut it = q.into_inner().filter(significant);
                let f = ident(it.next().expect("name"));
                ExprKind::Call(f, it.map(|a| self.expr(a)).collect())
            }
            _ => return self.expr(q),
        };
        Expr { kind, span: sp }
    }
}
