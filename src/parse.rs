//! `aa parse`: a protocol's records in a file of plain bytes (one direction
//! of a stream, no capture around it), for trying a grammar on sample data
//! while writing it.
//!
//! The bytes go through the same path as a connection's: cut into packets
//! of `segment` bytes (1 makes every delimiter straddle packets) from a
//! [`PacketPool`], inserted into an [`AaStream`], every record read, printed
//! as a JSON line (as `aa inspect` prints them, without the `flow`) and
//! freed as it comes. After an error the parser starts again at the
//! grammar's `sync` pattern, if it has one, so one bad record costs only
//! itself.

use crate::inspect::{push_error, AnyParser, ErrorsAmong, Protocol, RecordJson};
use aa_runtime::{
    AaConfig, AaState, AaStream, Insert, PacketPool, ParseError, PoolPacket, StreamConfig,
};
use std::io::{self, Write};

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Bytes per packet.
    pub segment: usize,
    /// Most bytes of each field's text printed.
    pub max_text: usize,
    /// Print only the summary.
    pub stats_only: bool,
    /// The stream's receive buffer: the most bytes the records in progress
    /// and the unread ones may hold.
    pub buffer: u32,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            segment: 1448,
            max_text: 256,
            stats_only: false,
            buffer: StreamConfig::default().recv_buffer,
        }
    }
}

/// What [`run`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseSummary {
    /// Bytes of input.
    pub bytes: u64,
    /// Packets they were cut into.
    pub packets: u64,
    /// Records parsed.
    pub records: u64,
    /// Parse errors (each reported as an `error` line).
    pub errors: u64,
    /// Bytes not parsed: from an error the parser could not recover from
    /// (a grammar without `sync`), or after a record too large for the
    /// buffer.
    pub unparsed: u64,
    /// Parsing stopped at this offset: a record in progress needed more
    /// than the buffer holds.
    pub over_buffer: Option<u64>,
}

impl ParseSummary {
    /// Whether every byte was parsed into records without an error.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.unparsed == 0 && self.over_buffer.is_none()
    }
}

impl std::fmt::Display for ParseSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} bytes in {} packet{}: {} record{}, {} error{}",
            self.bytes,
            self.packets,
            s(self.packets),
            self.records,
            s(self.records),
            self.errors,
            s(self.errors)
        )?;
        if self.unparsed > 0 {
            write!(f, ", {} bytes not parsed", self.unparsed)?;
        }
        if let Some(at) = self.over_buffer {
            write!(
                f,
                "; stopped at offset {at}: a record needs more than the buffer holds (--buffer)"
            )?;
        }
        Ok(())
    }
}

/// Parses `input` as one direction of a `protocol` stream, writing a JSON
/// line per record and per error to `out`. Fails only when `out` does.
pub fn run(
    protocol: &Protocol,
    input: &[u8],
    opts: &ParseOptions,
    out: impl Write,
) -> io::Result<ParseSummary> {
    let segment = opts.segment.max(1);
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: opts.buffer.max(1),
            ..StreamConfig::default()
        },
        ..AaConfig::default()
    };
    // As many packets as the stream may hold, and one more being inserted.
    let held = (cfg.stream.recv_buffer as usize)
        .div_ceil(segment)
        .min(cfg.stream.max_fragments as usize);
    let pool = PacketPool::new(
        (held + 2).min(input.len().div_ceil(segment) + 1) as u32,
        segment,
    );
    let mut stream: AaStream<PoolPacket, _> = AaStream::new(cfg, 0, protocol.parser());
    stream.recover_from_errors(true);

    let mut w = Writer {
        out: io::BufWriter::with_capacity(1 << 16, out),
        line: String::with_capacity(1024),
        json: RecordJson::new(opts.max_text),
        shape: protocol,
        print: !opts.stats_only,
        summary: ParseSummary::default(),
        errors: ErrorsAmong::default(),
    };
    let mut at = 0usize;
    while at < input.len() {
        let n = segment.min(input.len() - at);
        let Ok(pkt) = pool.packet_from(&input[at..at + n]) else {
            // Every buffer is held by records in progress.
            w.summary.over_buffer = Some(stream.stream().rcv_nxt_offset());
            break;
        };
        match stream.insert(at as u32, pkt, 0..n) {
            Insert::InOrder { .. } => {}
            _ => {
                w.summary.over_buffer = Some(at as u64);
                break;
            }
        }
        w.summary.packets += 1;
        at += n;
        w.drain(&mut stream)?;
        if stream.state() != AaState::Active {
            break;
        }
    }
    w.summary.bytes = input.len() as u64;
    if w.summary.over_buffer.is_none() {
        stream.finish();
    }
    w.drain(&mut stream)?;
    // Bytes after a failure (from the offending one) or never given.
    w.summary.unparsed = match (stream.state(), stream.error()) {
        (AaState::Failed, Some(e)) => (input.len() as u64).saturating_sub(e.offset),
        _ => (input.len() - at) as u64,
    };
    drop(stream);
    debug_assert!(pool.is_full(), "every packet back in the pool");
    w.out.flush()?;
    Ok(w.summary)
}

struct Writer<'p, W: Write> {
    out: io::BufWriter<W>,
    line: String,
    json: RecordJson,
    shape: &'p Protocol,
    print: bool,
    summary: ParseSummary,
    /// The stream's errors, to go among its records.
    errors: ErrorsAmong,
}

impl<W: Write> Writer<'_, W> {
    /// Prints and frees the records ready, and the errors among them, in
    /// stream order.
    fn drain(&mut self, stream: &mut AaStream<PoolPacket, AnyParser>) -> io::Result<()> {
        let n = stream.ready();
        self.summary.records += n as u64;
        self.summary.errors = stream.stats().errors;
        let schema = stream.schema();
        let mut errors = std::mem::take(&mut self.errors);
        errors.take_from(stream);
        for r in stream.read_aa_records(n) {
            while let Some(e) = errors.before(r.id()) {
                self.error_line(e)?;
            }
            if self.print {
                self.line.clear();
                self.line.push('{');
                self.json
                    .push_record(&mut self.line, &r, schema, Some(self.shape.shape()));
                self.line.push_str("}\n");
                self.out.write_all(self.line.as_bytes())?;
            }
        }
        stream.free_aa_records(n);
        while let Some(e) = errors.rest() {
            self.error_line(e)?;
        }
        self.errors = errors;
        Ok(())
    }

    fn error_line(&mut self, e: &ParseError) -> io::Result<()> {
        if self.print {
            self.line.clear();
            self.line.push('{');
            push_error(&mut self.line, e);
            self.line.push_str("}\n");
            self.out.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }
}
