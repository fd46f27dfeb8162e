//! The checked program both front ends lower to, and that the interpreter runs
//! and the code generator translates. Names are resolved to indices; every
//! expression is well typed.
//!
//! Semantics, shared by the interpreter and generated code:
//! - A stream is a sequence of records. The first is of the `start` type; each
//!   record's `then` statements choose the next with `next` (default: the start
//!   record). Globals keep their values across records; record variables start at
//!   0/false in each record and are stored in it.
//! - Before a record begins, bytes in its `skip` set are skipped. The end of the
//!   stream before the first byte of a start record — or of a record chosen with
//!   `next R or eof` — ends the stream cleanly; anywhere else (but in an
//!   `until ... | eof` field) it truncates the record, an error naming the
//!   record and its field.
//! - Items run in order. A field's actions run after it ends (after each element
//!   of a repeat). `end` ends the record after the current item; `fail` fails the
//!   stream with the message, at the element's first byte in a field's actions
//!   and at the record's end (where `then` runs) in `then`, however the stream
//!   is cut into packets.
//! - Expressions read fields of the current record: a field's span (the last
//!   element, for a repeat) and an integer field's value. A field not parsed in
//!   the record (a repeat of no element, or a field after `end`) reads as empty,
//!   at the record's start, and as 0.
//! - `until`: the field ends before the first delimiter completed in the input
//!   (the longest, when several complete at the same byte), which is consumed;
//!   with `eof` listed, the end of the stream ends it too. At most 64
//!   delimiters. With `quoted Q`, a field starting with Q is quoted as in RFC
//!   4180: delimiters inside quotes are data, `QQ` is a quote; the field's span
//!   excludes the outer quotes and is flagged when it holds escapes. `bytes N`:
//!   exactly N bytes. `chunk N`: between 1 and N bytes, ending at the end of the
//!   current packet (`chunk` alone: up to the end of the stream). Integer
//!   fields: fixed width, their value readable by name.
//! - `max`: a field longer than this fails the stream.
//! - Repeats: `stop on empty` ends at an empty element, consumed and not kept;
//!   `stop after D` ends after an element ended by one of those delimiters (by
//!   the end of the stream, if `D` lists `eof`: without it, the end of the
//!   stream ends the element but not the repeat, and truncates the record);
//!   `times N` after N elements, N evaluated on entering the field — also when
//!   the end of the stream enters it — and 0 meaning none. `count` bounds the
//!   elements.
//! - After a gap the parser drops the record in progress, searches for the
//!   first place where any `sync` pattern of the protocol matches (the earliest
//!   start; at one start, the pattern declared first) and starts that
//!   pattern's record at it (or after it, for `sync after`); a protocol without
//!   one fails the stream. Patterns have 64 bytes in all at most.

/// A checked protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Protocol name.
    pub name: String,
    /// Global variables.
    pub globals: Vec<VarDef>,
    /// Record types; records refer to each other by index.
    pub records: Vec<RecordDef>,
    /// Index of the start record.
    pub start: usize,
}

/// Variable types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean (stored as 0 or 1).
    Bool,
}

/// A variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VarDef {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Ty,
    /// Initial value (globals).
    pub init: u64,
}

/// A record type.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDef {
    /// Name.
    pub name: String,
    /// Bytes skipped before the record.
    pub skip: Vec<u8>,
    /// Patterns to resynchronise on (any of them), and whether the record
    /// starts after the pattern found (rather than at it).
    pub sync: Option<(Vec<Vec<u8>>, bool)>,
    /// Record variables, stored in each record (value tag = index).
    pub vars: Vec<VarDef>,
    /// Fields (field tag = index).
    pub fields: Vec<FieldDef>,
    /// What the record consists of, in order.
    pub items: Vec<ItemDef>,
    /// Statements run when the record is about to begin, at its first byte
    /// (after `skip`); a `next R` among them starts `R` there instead.
    pub begin: Vec<Stmt>,
    /// Statements after the last item.
    pub then: Vec<Stmt>,
}

/// One item of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemDef {
    /// These exact bytes.
    Expect(Vec<u8>),
    /// Field number `n` of the record.
    Field(usize),
}

/// A field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// Name.
    pub name: String,
    /// How it ends.
    pub ending: Ending,
    /// Longest allowed, in bytes.
    pub max: u64,
    /// Repetition, for `repeat`.
    pub repeat: Option<Repeat>,
    /// Statements after the field (after each element).
    pub actions: Vec<Stmt>,
}

/// How a field ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Before the first of these delimiters.
    Until {
        /// Delimiters (non-empty byte strings).
        delims: Vec<Vec<u8>>,
        /// The end of the stream also ends the field.
        eof: bool,
        /// Quote character for RFC 4180 quoting.
        quote: Option<u8>,
    },
    /// Exactly this many bytes.
    Bytes(Expr),
    /// 1 to this many bytes (`None`: unbounded), ending at the packet's end.
    Chunk(Option<Expr>),
    /// A fixed-width unsigned integer.
    Int {
        /// Width in bytes: 1, 2, 4 or 8.
        bytes: u8,
        /// Big endian.
        big: bool,
    },
}

/// Repetition of a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    /// Most elements.
    pub max_count: u32,
    /// When to stop.
    pub stop: Stop,
}

/// When a repetition stops.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// At an empty element (consumed, not kept).
    OnEmpty,
    /// After an element ended by one of these delimiters (indices into the
    /// field's `Until` delimiters), or by the end of the stream if `eof`.
    After {
        /// Delimiter indices.
        delims: Vec<usize>,
        /// The end of the stream.
        eof: bool,
    },
    /// After this many elements.
    Times(Expr),
    /// After an element whose actions ran [`Stmt::StopRepeat`]: `stop when
    /// EXPR` is lowered to `if EXPR { StopRepeat }` after the element's own
    /// actions, so that EXPR reads the element as they do.
    When,
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// Assignment.
    Set(Var, Expr),
    /// Conditional.
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// The next record type; `true`: the stream may also end before it.
    Next(usize, bool),
    /// End the record after this item.
    End,
    /// End a `stop when` repeat after this element (only in the lowering of
    /// `stop when`).
    StopRepeat,
    /// Fail the stream.
    Fail(String),
    /// Send a signal (0 to 15) to the other direction's parser.
    Signal(Expr),
    /// Take the oldest signal of the other direction's parser (0 if none)
    /// into a `u64` variable (`v = heard();`).
    Hear(Var),
    /// In `begin`, before any statement with an effect: when no signal of
    /// the other direction's parser is waiting and the stream goes on,
    /// pause before the record; `begin` runs again from its start when
    /// one comes.
    Wait,
}

/// Calls `f` on every statement of `stmts`, those inside `if` branches
/// included, in order.
pub fn each_stmt<'a>(stmts: &'a [Stmt], f: &mut impl FnMut(&'a Stmt)) {
    for s in stmts {
        f(s);
        if let Stmt::If(_, a, b) = s {
            each_stmt(a, f);
            each_stmt(b, f);
        }
    }
}

/// What the error at a byte an `expect` item does not match says was
/// expected: the item's bytes, quoted and escaped as in a grammar
/// (`"\r\n"`).
pub fn expect_message(lit: &[u8]) -> String {
    format!("\"{}\"", lit.escape_ascii())
}

/// Whether any statement of `stmts` (in `if` branches too) is one `pred`
/// holds for.
pub fn any_stmt(stmts: &[Stmt], pred: impl Fn(&Stmt) -> bool) -> bool {
    let mut any = false;
    each_stmt(stmts, &mut |s| any |= pred(s));
    any
}

/// The error of a `signal` whose value is out of range.
pub const SIGNAL_RANGE: &str = "a signal is a number from 0 to 15";

/// A variable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// Global `n`.
    Global(usize),
    /// Record variable `n` of the current record.
    Local(usize),
}

/// An integer or boolean expression (booleans are 0 or 1).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Const(u64),
    /// A variable.
    Var(Var),
    /// The value of integer field `n` of the current record.
    FieldInt(usize),
    /// Length of a byte string.
    Len(Bytes),
    /// Decimal value of a byte string (error if not digits or over 64 bits).
    Dec(Bytes),
    /// Hexadecimal value of a byte string.
    Hex(Bytes),
    /// A byte string of at most 8 bytes as a big-endian integer (0 when
    /// empty; error when longer).
    Be(Bytes),
    /// The same, little-endian.
    Le(Bytes),
    /// A test of a byte string against a literal.
    Test(Test, Bytes, Vec<u8>),
    /// Whether the byte string is empty.
    Empty(Bytes),
    /// A header name's test, `ieq(trim(before(line, sep)), key)` where
    /// `sep` is one byte that is neither a letter nor a byte `trim` removes,
    /// and `key` is not empty, holds no `sep` and does not start or end with
    /// such a byte (see [`Expr::ieq`]): it holds exactly when `line`, past
    /// its leading spaces, starts with `key` (ignoring ASCII case) followed
    /// by spaces only, up to `sep` or the end. So the name can be compared
    /// where it starts and `sep` looked for only after a match. `name` is
    /// `trim(before(line, sep))`, for reading the test the long way.
    Key {
        /// `trim(before(line, sep))`.
        name: Bytes,
        /// The byte string the name is the start of.
        line: Bytes,
        /// The separator after the name.
        sep: u8,
        /// The name looked for.
        key: Vec<u8>,
        /// `key` as words to compare ignoring case ([`ieq_words`]); none for
        /// a key of fewer than 8 bytes.
        words: Vec<(usize, u64, u64)>,
    },
    /// A binary operation; arithmetic wraps on overflow except `-`, which
    /// saturates at 0, and `/`, `%` by 0, which give 0.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// Logical not.
    Not(Box<Expr>),
    /// The smaller of two.
    Min(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// `ieq(b, lit)`: [`Expr::Key`] when it is a header name's test, else
    /// [`Expr::Test`].
    pub fn ieq(b: Bytes, lit: Vec<u8>) -> Expr {
        let trimmed = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        if let Bytes::Trim(inner) = &b {
            if let Bytes::Before(line, sep) = &**inner {
                if let (&[sep], Some(&first), Some(&last)) = (&sep[..], lit.first(), lit.last()) {
                    if !trimmed(sep)
                        && !sep.is_ascii_alphabetic()
                        && !lit.contains(&sep)
                        && !trimmed(first)
                        && !trimmed(last)
                    {
                        let line = (**line).clone();
                        return Expr::Key {
                            name: b,
                            line,
                            sep,
                            words: ieq_words(&lit),
                            key: lit,
                        };
                    }
                }
            }
        }
        Expr::Test(Test::IEq, b, lit)
    }
}

pub use crate::ast::BinOp;

/// Tests of a byte string against a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Equal.
    Eq,
    /// Equal ignoring ASCII case.
    IEq,
    /// Starts with.
    Prefix,
    /// Starts with, ignoring ASCII case.
    IPrefix,
    /// Contains.
    Contains,
    /// Contains, ignoring ASCII case.
    IContains,
}

/// A byte string: a field of the current record, or part of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Bytes {
    /// Field `n` (the last element, for a repeat).
    Field(usize),
    /// Before the first occurrence of the literal (all of it if absent).
    Before(Box<Bytes>, Vec<u8>),
    /// After the first occurrence of the literal (empty if absent).
    After(Box<Bytes>, Vec<u8>),
    /// Without leading and trailing ASCII whitespace.
    Trim(Box<Bytes>),
}

/// `lit` as 8-byte words for a comparison that ignores ASCII case: each
/// `(at, fold, want)` says that the 8 bytes of a candidate at `at`, with the
/// bits of `fold` set (the case bit where `lit` has a letter), read `want`
/// (little-endian). The last word overlaps the one before when the length is
/// not a multiple of 8. None for a literal of fewer than 8 bytes.
pub fn ieq_words(lit: &[u8]) -> Vec<(usize, u64, u64)> {
    if lit.len() < 8 {
        return Vec::new();
    }
    let mut ats: Vec<usize> = (0..lit.len() - 7).step_by(8).collect();
    if ats.last() != Some(&(lit.len() - 8)) {
        ats.push(lit.len() - 8);
    }
    ats.into_iter()
        .map(|at| {
            let (mut fold, mut want) = (0u64, 0u64);
            for (k, &c) in lit[at..at + 8].iter().enumerate() {
                if c.is_ascii_alphabetic() {
                    fold |= 0x20 << (8 * k);
                }
                want |= (c.to_ascii_lowercase() as u64) << (8 * k);
            }
            (at, fold, want)
        })
        .collect()
}
