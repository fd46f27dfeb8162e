//! The syntax tree of a `.aag` file, with the byte span of every part for
//! diagnostics. Built by [`crate::parse`], checked and lowered by [`crate::check`].

/// Byte offsets `[start, end)` in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A name and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A string literal's bytes (escapes resolved) and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lit {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Where.
    pub span: Span,
}

/// A whole file.
#[derive(Debug, Clone)]
pub struct File {
    /// `protocol NAME;`
    pub protocol: Ident,
    /// Global variables, in order.
    pub vars: Vec<VarDecl>,
    /// Record types, in order.
    pub records: Vec<RecordDecl>,
}

/// Variable types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean.
    Bool,
}

/// `var NAME: TY [= EXPR];`
#[derive(Debug, Clone)]
pub struct VarDecl {
    /// Name.
    pub name: Ident,
    /// Type.
    pub ty: Ty,
    /// Initial value (a constant).
    pub init: Option<Expr>,
    /// The whole declaration.
    pub span: Span,
}

/// `[start] record NAME [skip "..."] [sync ["after"] "..." | "..."] { ... }`
#[derive(Debug, Clone)]
pub struct RecordDecl {
    /// Name.
    pub name: Ident,
    /// Marked `start`.
    pub start: bool,
    /// Bytes skipped before the record begins.
    pub skip: Option<Lit>,
    /// Patterns that start this record after a gap: `(patterns, after)`,
    /// where `after` means the record starts after the pattern rather than at
    /// it.
    pub sync: Option<(Vec<Lit>, bool)>,
    /// Statements run when the record is about to begin at its first byte
    /// (`begin { .. }`), and where the block is.
    pub begin: Option<(Vec<Stmt>, Span)>,
    /// Fields, expectations and record variables, in order.
    pub items: Vec<Item>,
    /// Statements run after the last item.
    pub then: Vec<Stmt>,
}

/// One item of a record.
#[derive(Debug, Clone)]
pub enum Item {
    /// A record variable, stored in each record.
    Var(VarDecl),
    /// `expect "...";` — these exact bytes.
    Expect(Lit),
    /// A field or a repeated field.
    Field(FieldDecl),
}

/// `[repeat] NAME: ENDING [max N] [count N] [STOP] { actions }`
#[derive(Debug, Clone)]
pub struct FieldDecl {
    /// Name.
    pub name: Ident,
    /// How the field ends.
    pub ending: Ending,
    /// Where the ending is written.
    pub ending_span: Span,
    /// `max N`: the longest the field may be.
    pub max: Option<(u64, Span)>,
    /// `count N`: the most elements of a repeated field.
    pub count: Option<(u64, Span)>,
    /// For `repeat`: when the repetition stops.
    pub repeat: Option<Stop>,
    /// Statements run after the field (after each element of a repeat).
    pub actions: Vec<Stmt>,
}

/// How a field ends.
#[derive(Debug, Clone)]
pub enum Ending {
    /// `until "a" | "b" [quoted "q"]`: before the first delimiter, which is consumed.
    Until {
        /// Delimiters.
        delims: Vec<Lit>,
        /// `eof` is listed: the end of the stream also ends the field.
        eof: Option<Span>,
        /// RFC 4180 quoting with this quote character.
        quote: Option<Lit>,
    },
    /// `bytes EXPR`: exactly that many bytes.
    Bytes(Expr),
    /// `chunk [EXPR]`: up to EXPR bytes (or to the end of the stream), ending at
    /// the end of the current packet.
    Chunk(Option<Expr>),
    /// `u8`, `u16be`, ...: a fixed-width unsigned integer.
    Int {
        /// Width in bytes.
        bytes: u8,
        /// Big endian.
        big: bool,
    },
}

/// When a repeated field stops.
#[derive(Debug, Clone)]
pub enum Stop {
    /// `stop on empty`: at an empty element, which is consumed and not kept.
    OnEmpty(Span),
    /// `stop after "x" | ... [| eof]`: after an element ended by one of these
    /// delimiters (or by the end of the stream, with `eof`).
    After(Vec<Lit>, Option<Span>),
    /// `times EXPR`: after EXPR elements.
    Times(Expr),
    /// `stop when EXPR`: after the element (its actions run) for which EXPR,
    /// which may read the element, holds.
    When(Expr),
}

/// A statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// `NAME = EXPR;`
    Assign(Ident, Expr),
    /// `if COND { .. } else { .. }`
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `next RECORD [or eof];` — with `or eof`, the stream may also end here.
    Next(Ident, bool),
    /// `end;`
    End(Span),
    /// `fail "message";`
    Fail(Lit),
    /// `signal EXPR;`: a signal to the other direction's parser.
    Signal(Expr),
    /// `wait;`: in `begin`, pause until the other direction's parser has
    /// sent a signal.
    Wait(Span),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `&` (bitwise)
    BitAnd,
    /// `|` (bitwise)
    BitOr,
    /// `^` (bitwise)
    BitXor,
    /// `<<` (0 for a shift of 64 or more)
    Shl,
    /// `>>` (0 for a shift of 64 or more)
    Shr,
}

/// An expression and where it is written.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
}

/// Expression forms.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// Integer literal.
    Int(u64),
    /// `true` / `false`.
    Bool(bool),
    /// String literal (only as a function argument).
    Str(Vec<u8>),
    /// A variable or a field.
    Name(String),
    /// `f(args)`.
    Call(Ident, Vec<Expr>),
    /// `a OP b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `!a`.
    Not(Box<Expr>),
}
