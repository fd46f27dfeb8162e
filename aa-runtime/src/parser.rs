//! The parser contract: what a generated (or hand-written) parser implements so
//! that the application-aware stream can call it on every in-order fragment.
//!
//! The stream calls [`Parser::parse`] once per in-order fragment, in order, with
//! the fragment's bytes and its stream offset. The parser keeps whatever it needs
//! to resume in its own state (record type, where the current field started, a
//! partial delimiter match, counters, variables) — never the bytes themselves —
//! and reports fields as stream offsets through the [`Emitter`]. It pauses with
//! [`Step::Full`] at a record boundary when the emitter says the record queue is
//! full; the stream calls it again with the rest of the fragment once the
//! application has freed records.
//!
//! Bytes that will never arrive are reported with [`Parser::gap`]: the stream has
//! already dropped the record in progress; the parser either resynchronises (its
//! grammar says how, e.g. at the next line end) or fails the stream. At the end of
//! the stream, [`Parser::finish`] ends or rejects the record in progress.

use crate::aa::Emitter;
use crate::packet::Packet;
use std::fmt;

/// Bytes of one in-order fragment (or of its rest, after a pause).
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The bytes, in the packet buffer.
    pub data: &'a [u8],
    /// Stream offset of `data[0]`.
    pub offset: u64,
}

/// How far [`Parser::parse`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every byte of the chunk was consumed.
    Done,
    /// The record queue is full; `consumed` bytes were consumed, ending at a
    /// record boundary. Call again with the rest later.
    Full {
        /// Bytes of the chunk consumed.
        consumed: usize,
    },
    /// The parser waits for a signal from the other direction (a grammar's
    /// `wait`, when [`crate::Emitter::may_wait`]); `consumed` bytes were
    /// consumed, ending at a record boundary. The stream calls again with
    /// the rest once a signal is given ([`crate::AaStream::give_signals`])
    /// or the stream ends.
    Wait {
        /// Bytes of the chunk consumed.
        consumed: usize,
    },
}

/// Names of a protocol's record types, fields and variables, for diagnostics and
/// for tools that print records.
#[derive(Debug)]
pub struct Schema {
    /// Protocol name.
    pub protocol: &'static str,
    /// Record types, indexed by record kind.
    pub records: &'static [RecordSchema],
}

/// One record type of a [`Schema`].
#[derive(Debug)]
pub struct RecordSchema {
    /// Record type name.
    pub name: &'static str,
    /// Field names, indexed by field tag.
    pub fields: &'static [&'static str],
    /// Variable names, indexed by value tag.
    pub values: &'static [&'static str],
}

impl Schema {
    /// Name of record kind `kind`.
    pub fn record_name(&self, kind: u16) -> &'static str {
        self.records.get(kind as usize).map_or("?", |r| r.name)
    }

    /// Name of field `tag` of record kind `kind`.
    pub fn field_name(&self, kind: u16, tag: u16) -> &'static str {
        self.records
            .get(kind as usize)
            .and_then(|r| r.fields.get(tag as usize))
            .copied()
            .unwrap_or("?")
    }
}

/// Per-record bounds a parser enforces; the stream sizes its queues from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most fields in one record.
    pub fields_per_record: u32,
    /// Most variables stored in one record.
    pub values_per_record: u32,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A field grew beyond its maximum length.
    FieldTooLong {
        /// The maximum.
        max: u64,
    },
    /// A record has more fields than allowed.
    TooManyFields {
        /// The maximum.
        max: u32,
    },
    /// Bytes that do not fit the grammar.
    Invalid {
        /// What was expected.
        expected: &'static str,
    },
    /// The stream ended inside a record.
    Truncated,
    /// The grammar rejected the input (an `.aag` `fail` statement).
    Rejected {
        /// The grammar's message.
        message: &'static str,
    },
    /// Bytes were lost and the grammar cannot resynchronise.
    Gap {
        /// Bytes lost.
        len: u64,
    },
}

/// A stream failure, naming where: record type, field, stream offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Stream offset of the offending byte (or of the field's start).
    pub offset: u64,
    /// Record type being parsed.
    pub record: &'static str,
    /// Field being parsed, if any.
    pub field: Option<&'static str>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream offset {}: record `{}`", self.offset, self.record)?;
        if let Some(field) = self.field {
            write!(f, ", field `{field}`")?;
        }
        match &self.kind {
            ErrorKind::FieldTooLong { max } => write!(f, ": field longer than {max} bytes"),
            ErrorKind::TooManyFields { max } => write!(f, ": more than {max} fields"),
            ErrorKind::Invalid { expected } => write!(f, ": expected {expected}"),
            ErrorKind::Truncated => f.write_str(": stream ended inside the record"),
            ErrorKind::Rejected { message } => write!(f, ": {message}"),
            ErrorKind::Gap { len } => write!(f, ": {len} bytes lost, cannot resynchronise"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A resumable parser of one stream direction.
pub trait Parser {
    /// Names of the record types and fields.
    fn schema(&self) -> &'static Schema;

    /// Per-record bounds.
    fn limits(&self) -> Limits;

    /// Parses the next in-order bytes. `chunk.offset` is where the previous call
    /// stopped, or later after a [`gap`](Parser::gap).
    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError>;

    /// `len` bytes at stream offset `offset` will never arrive. The record in
    /// progress has been dropped. Return `Ok` to resynchronise.
    fn gap(&mut self, offset: u64, len: u64) -> Result<(), ParseError>;

    /// The parser returned an error; resynchronise from stream offset `at` as
    /// after a gap (look for the grammar's sync patterns) and return `true`, or
    /// return `false` when the grammar has no way to (the default). Called
    /// only for streams that asked for it ([`AaStream::recover_from_errors`]).
    ///
    /// [`AaStream::recover_from_errors`]: crate::AaStream::recover_from_errors
    fn recover(&mut self, at: u64) -> bool {
        let _ = at;
        false
    }

    /// The stream ends at `offset`: emit or reject the record in progress.
    fn finish<P: Packet>(
        &mut self,
        offset: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError>;

    /// Lowest stream offset the record in progress may still refer to (the start
    /// of its first field), or `u64::MAX` between records. Fields pin their
    /// packets only when their record is committed, so packets wholly before this
    /// offset that no committed record needs are released.
    fn retain_from(&self) -> u64;
}

/// One of two parsers, itself a parser: the directions of a connection that
/// speak different record types (HTTP requests one way, responses the
/// other) behind one type, so one flow table holds both. Every call goes to
/// the parser held.
#[derive(Debug, Clone)]
pub enum Either<L, R> {
    /// The first kind.
    Left(L),
    /// The second kind.
    Right(R),
}

macro_rules! either {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            Either::Left($p) => $e,
            Either::Right($p) => $e,
        }
    };
}

impl<L: Parser, R: Parser> Parser for Either<L, R> {
    fn schema(&self) -> &'static Schema {
        either!(self, p => p.schema())
    }
    fn limits(&self) -> Limits {
        either!(self, p => p.limits())
    }
    #[inline]
    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError> {
        either!(self, p => p.parse(chunk, out))
    }
    fn gap(&mut self, offset: u64, len: u64) -> Result<(), ParseError> {
        either!(self, p => p.gap(offset, len))
    }
    fn recover(&mut self, at: u64) -> bool {
        either!(self, p => p.recover(at))
    }
    fn finish<P: Packet>(
        &mut self,
        offset: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        either!(self, p => p.finish(offset, out))
    }
    #[inline]
    fn retain_from(&self) -> u64 {
        either!(self, p => p.retain_from())
    }
}
