//! A hand-written CSV parser (RFC 4180) implementing the parser contract: the
//! proof of the contract and the baseline that generated parsers are measured
//! against.
//!
//! Records are of type `row` (kind [`ROW`]) with a repeated field `field` (tag
//! [`FIELD`]). Accepted input is what `csv-core` accepts with its defaults:
//! `\n`, `\r` and `\r\n` end a record, empty lines are skipped, a field starting
//! with the quote character is quoted (delimiters and line ends inside it are
//! data, a doubled quote is one quote), quotes inside an unquoted field are data,
//! text after a closing quote is appended to the field, and a UTF-8 byte-order
//! mark at the start of the stream is skipped.
//!
//! Zero copy: a field is the span of its raw bytes, without the surrounding
//! quotes. A quoted field holding a doubled quote or text after its closing quote
//! carries [`FLAG_ESCAPED`]; [`unquote`] yields its value. Other fields are their
//! value as they are.
//!
//! The scanner is a small DFA over the states below; the hot loops are `memchr3`
//! (delimiter, `\n`, `\r`) in unquoted fields and `memchr` (quote) in quoted ones.
//! After a gap it skips to the next `\n` and starts a record there.

use crate::aa::Emitter;
use crate::field::{Field, FLAG_ESCAPED};
use crate::packet::Packet;
use crate::parser::{Chunk, ErrorKind, Limits, ParseError, Parser, RecordSchema, Schema, Step};

/// Record kind of a CSV row.
pub const ROW: u16 = 0;
/// Tag of every field of a row.
pub const FIELD: u16 = 0;

static SCHEMA: Schema = Schema {
    protocol: "csv",
    records: &[RecordSchema {
        name: "row",
        fields: &["field"],
        values: &[],
    }],
};

/// Dialect and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvConfig {
    /// Field delimiter.
    pub delimiter: u8,
    /// Quote character.
    pub quote: u8,
    /// Longest field, in raw bytes.
    pub max_field_len: u64,
    /// Most fields in a row.
    pub max_fields: u32,
}

impl Default for CsvConfig {
    fn default() -> Self {
        CsvConfig {
            delimiter: b',',
            quote: b'"',
            max_field_len: 64 * 1024,
            max_fields: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// At the stream's start, `n` bytes of a UTF-8 byte-order mark matched.
    Bom(u8),
    /// Between records: line ends are skipped.
    RecordStart,
    /// After a delimiter, or at a record's first byte.
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: closing quote or first half of `""`.
    QuoteInQuoted,
    /// After a gap: skipping to the next `\n`.
    Resync,
}

/// A UTF-8 byte-order mark, skipped at the start of the stream (as csv-core does).
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Bytes scanned one at a time before handing over to `memchr3`.
const SHORT: usize = 16;

/// The hand-written CSV parser.
#[derive(Debug, Clone)]
pub struct CsvParser {
    cfg: CsvConfig,
    /// `ends[b]`: `b` ends an unquoted field (delimiter, `\n`, `\r`).
    ends: [bool; 256],
    st: St,
    rec_start: u64,
    field_start: u64,
    flags: u8,
    resyncs: u64,
}

impl CsvParser {
    /// A parser for `cfg`'s dialect.
    pub fn new(cfg: CsvConfig) -> Self {
        let mut ends = [false; 256];
        for b in [cfg.delimiter, b'\n', b'\r'] {
            ends[b as usize] = true;
        }
        CsvParser {
            cfg,
            ends,
            st: St::Bom(0),
            rec_start: 0,
            field_start: 0,
            flags: 0,
            resyncs: 0,
        }
    }

    /// Times the parser resynchronised after a gap.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    fn error(&self, offset: u64, kind: ErrorKind) -> ParseError {
        ParseError {
            offset,
            record: "row",
            field: Some("field"),
            kind,
        }
    }

    /// Index of the first delimiter or line end in `d`. Short fields are common
    /// and memchr3's set-up costs more than a few table lookups, so the first
    /// [`SHORT`] bytes are scanned one by one.
    #[inline]
    fn find_end(&self, d: &[u8]) -> Option<usize> {
        let head = &d[..d.len().min(SHORT)];
        match head.iter().position(|&b| self.ends[b as usize]) {
            Some(j) => Some(j),
            None if d.len() > SHORT => {
                memchr::memchr3(self.cfg.delimiter, b'\n', b'\r', &d[SHORT..]).map(|j| j + SHORT)
            }
            None => None,
        }
    }

    #[inline]
    fn end_field<P: Packet>(
        &mut self,
        end: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        if end - self.field_start > self.cfg.max_field_len {
            return Err(self.too_long());
        }
        if !out.field(FIELD, self.field_start, end, self.flags) {
            return Err(self.too_many());
        }
        Ok(())
    }

    #[cold]
    fn too_long(&self) -> ParseError {
        self.error(
            self.field_start,
            ErrorKind::FieldTooLong {
                max: self.cfg.max_field_len,
            },
        )
    }

    #[cold]
    fn too_many(&self) -> ParseError {
        self.error(
            self.field_start,
            ErrorKind::TooManyFields {
                max: self.cfg.max_fields,
            },
        )
    }

    /// Ends the field at `at` (the delimiter or line end `b`); ends the record too
    /// if `b` is a line end.
    #[inline]
    fn terminate<P: Packet>(
        &mut self,
        b: u8,
        field_end: u64,
        at: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        self.end_field(field_end, out)?;
        if b == self.cfg.delimiter {
            self.st = St::FieldStart;
        } else {
            out.commit(ROW, self.rec_start, at);
            self.st = St::RecordStart;
        }
        Ok(())
    }
}

impl Default for CsvParser {
    fn default() -> Self {
        CsvParser::new(CsvConfig::default())
    }
}

impl Parser for CsvParser {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn limits(&self) -> Limits {
        Limits {
            fields_per_record: self.cfg.max_fields,
            values_per_record: 0,
        }
    }

    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError> {
        let (d, base) = (chunk.data, chunk.offset);
        let (delim, quote) = (self.cfg.delimiter, self.cfg.quote);
        let mut i = 0;
        while i < d.len() {
            match self.st {
                St::Bom(n) => {
                    if d[i] == BOM[n as usize] {
                        i += 1;
                        self.st = if n == 2 {
                            St::RecordStart
                        } else {
                            St::Bom(n + 1)
                        };
                    } else if n == 0 {
                        self.st = St::RecordStart;
                    } else {
                        // Not a BOM after all: its bytes open the first field.
                        self.rec_start = 0;
                        self.field_start = 0;
                        self.flags = 0;
                        self.st = St::Unquoted;
                    }
                }
                St::RecordStart => {
                    if d[i] == b'\n' || d[i] == b'\r' {
                        i += 1;
                        continue;
                    }
                    if out.is_full() {
                        return Ok(Step::Full { consumed: i });
                    }
                    self.rec_start = base + i as u64;
                    self.st = St::FieldStart;
                }
                St::FieldStart => {
                    self.flags = 0;
                    self.field_start = base + i as u64;
                    if d[i] == quote {
                        self.st = St::Quoted;
                        self.field_start += 1;
                        i += 1;
                        continue;
                    }
                    // Unquoted, the usual case: find its end now rather than
                    // going round the state loop once more.
                    match self.find_end(&d[i..]) {
                        Some(j) => {
                            let at = base + (i + j) as u64;
                            self.terminate(d[i + j], at, at, out)?;
                            i += j + 1;
                        }
                        None => {
                            self.st = St::Unquoted;
                            i = d.len();
                        }
                    }
                }
                St::Unquoted => match self.find_end(&d[i..]) {
                    Some(j) => {
                        let at = base + (i + j) as u64;
                        self.terminate(d[i + j], at, at, out)?;
                        i += j + 1;
                    }
                    None => i = d.len(),
                },
                St::Quoted => match memchr::memchr(quote, &d[i..]) {
                    Some(j) => {
                        self.st = St::QuoteInQuoted;
                        i += j + 1;
                    }
                    None => i = d.len(),
                },
                St::QuoteInQuoted => {
                    let b = d[i];
                    let at = base + i as u64;
                    if b == delim || b == b'\n' || b == b'\r' {
                        // The field ends before its closing quote.
                        self.terminate(b, at - 1, at, out)?;
                        i += 1;
                    } else if b == quote {
                        self.flags |= FLAG_ESCAPED;
                        self.st = St::Quoted;
                        i += 1;
                    } else {
                        self.flags |= FLAG_ESCAPED;
                        self.st = St::Unquoted;
                    }
                }
                St::Resync => match memchr::memchr(b'\n', &d[i..]) {
                    Some(j) => {
                        self.st = St::RecordStart;
                        i += j + 1;
                    }
                    None => i = d.len(),
                },
            }
        }
        let end = base + d.len() as u64;
        // In `QuoteInQuoted` the last byte may be the closing quote, not content.
        let pending = (self.st == St::QuoteInQuoted) as u64;
        if matches!(self.st, St::Unquoted | St::Quoted | St::QuoteInQuoted)
            && end - self.field_start > self.cfg.max_field_len + pending
        {
            return Err(self.too_long());
        }
        Ok(Step::Done)
    }

    fn gap(&mut self, _offset: u64, _len: u64) -> Result<(), ParseError> {
        self.recover(0);
        Ok(())
    }

    fn recover(&mut self, _at: u64) -> bool {
        // Resynchronise at the next line end.
        self.st = St::Resync;
        self.resyncs += 1;
        true
    }

    fn finish<P: Packet>(
        &mut self,
        offset: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        let field_end = match self.st {
            St::RecordStart | St::Resync | St::Bom(0) | St::Bom(3..) => return Ok(()),
            St::Bom(n) => {
                // The stream is a partial byte-order mark: one field of those bytes.
                self.rec_start = 0;
                self.field_start = 0;
                n as u64
            }
            St::FieldStart => {
                self.field_start = offset;
                offset
            }
            St::Unquoted | St::Quoted => offset,
            St::QuoteInQuoted => offset - 1,
        };
        self.end_field(field_end, out)?;
        out.commit(ROW, self.rec_start, offset);
        self.st = St::RecordStart;
        Ok(())
    }

    fn retain_from(&self) -> u64 {
        match self.st {
            St::FieldStart | St::Unquoted | St::Quoted | St::QuoteInQuoted => self.rec_start,
            St::Bom(_) => 0,
            St::RecordStart | St::Resync => u64::MAX,
        }
    }
}

/// Appends the value of CSV field `field` to `out`: its bytes, with doubled
/// quotes made single and the closing quote of an irregular field (`"ab"cd`)
/// removed, when the parser flagged it [`FLAG_ESCAPED`].
pub fn unquote<P: Packet>(field: &Field<'_, P>, quote: u8, out: &mut Vec<u8>) {
    if field.flags() & FLAG_ESCAPED == 0 {
        field.chunks().for_each(|c| out.extend_from_slice(c));
        return;
    }
    // 0: inside quotes, 1: just saw a quote inside quotes, 2: after the quoted part.
    let mut st = 0u8;
    for c in field.chunks() {
        for &b in c {
            match st {
                0 if b == quote => st = 1,
                1 if b == quote => {
                    out.push(quote);
                    st = 0
                }
                1 => {
                    out.push(b);
                    st = 2
                }
                _ => out.push(b),
            }
        }
    }
}
