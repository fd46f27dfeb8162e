//! `aa inspect`: parsed records from a capture file, as JSON lines.
//!
//! A capture is read into a packet pool, every frame decoded, every TCP
//! connection reassembled in both directions by [`aa_stack::passive`], and each
//! direction parsed by the protocol its server port maps to: a compiled grammar
//! (`--protocol`, or the default map: ports 80 and 8080 are HTTP, 443 TLS
//! handshakes, 1883 MQTT, 6379 Redis) or one loaded
//! at run time and run by the interpreter (`--grammar`). Each record becomes one
//! JSON object per line:
//!
//! ```text
//! {"flow":"198.51.100.2:8080>198.51.100.1:40000","record":"response","offset":0,
//!  "fields":{"version":{"len":8,"text":"HTTP/1.1"},"status":{"len":3,"text":"200"},
//!  "reason":{"len":2,"text":"OK"},"headers":[{"len":19,"text":"Content-Length: 12"}]},
//!  "vars":{"code":200,"content_length":12}}
//! ```
//!
//! `flow` is the direction (sender `>` receiver); `offset` the record's first
//! byte in that direction's stream; a field that may repeat is an array, others
//! are objects or absent; `len` is a field's full length and `text` its first
//! `max_text` bytes (a quoted field's value, unquoted), invalid UTF-8 written as
//! `\xHH`; an integer field also has its `value`. Gaps and parser failures
//! are lines of their own: `{"event":"gap",...,"offset":N,"len":L}` and
//! `{"event":"error",...,"record":..,"field":..,"message":..}`.
//!
//! With the feature `dpdk`, `run_dpdk` does the same for live traffic from
//! a DPDK port: the frames arrive in mbufs and take the same path, from
//! decoding to JSON lines, on one thread or, with `Live::workers`, on
//! several, each with its own connections.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aa_dsl::interp::{Grammar, Interp};
use aa_dsl::ir;
use aa_grammars::websocket::{self, Unmask};
use aa_grammars::{csv, http_request, http_response, mqtt, resp, tls, tls_handshake};
use aa_runtime::field::FLAG_ESCAPED;
use aa_runtime::{
    AaStream, Chunk, Emitter, Limits, Packet, PacketPool, ParseError, Parser, RecordId, Schema,
    Step, StreamError,
};
use aa_stack::flow::{Endpoint, FlowConfig};
use aa_stack::io::pcap::PcapReader;
use aa_stack::passive::{DirInfo, End, Parsers, Passive, PassiveConfig, PassiveStats, Side, Sink};
use aa_stack::wire::ChecksumReport;
use aa_stack::{Burst, ChecksumMode, Decoder, IoError, PacketIo, Rx, WireStats};

/// A parser of any protocol `aa inspect` serves: the compiled grammars and the
/// interpreter, behind one type so one flow table holds them all.
pub enum AnyParser {
    /// `csv.aag`, compiled.
    Csv(csv::CsvParser),
    /// `http_request.aag`, compiled.
    HttpRequest(http_request::HttpRequestParser),
    /// `http_response.aag`, compiled.
    HttpResponse(http_response::HttpResponseParser),
    /// `tls.aag`, compiled.
    Tls(tls::TlsParser),
    /// `resp.aag`, compiled.
    Resp(resp::RespParser),
    /// `mqtt.aag`, compiled (boxed: its state, 120 bytes with its five
    /// record variables, is the largest, and every parked direction of
    /// every protocol would pay for it).
    Mqtt(Box<mqtt::MqttParser>),
    /// `tls_handshake.aag`, compiled (boxed, as `Mqtt`).
    TlsHandshake(Box<tls_handshake::TlsHandshakeParser>),
    /// A grammar loaded at run time (boxed: the interpreter's state is
    /// larger than a compiled parser's, and every parked direction holds one
    /// of these).
    Interp(Box<Interp>),
}

macro_rules! each_parser {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyParser::Csv($p) => $e,
            AnyParser::HttpRequest($p) => $e,
            AnyParser::HttpResponse($p) => $e,
            AnyParser::Tls($p) => $e,
            AnyParser::Resp($p) => $e,
            AnyParser::Mqtt($p) => $e,
            AnyParser::TlsHandshake($p) => $e,
            AnyParser::Interp($p) => $e,
        }
    };
}

impl Parser for AnyParser {
    fn schema(&self) -> &'static Schema {
        each_parser!(self, p => p.schema())
    }
    fn limits(&self) -> Limits {
        each_parser!(self, p => p.limits())
    }
    #[inline]
    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError> {
        each_parser!(self, p => p.parse(chunk, out))
    }
    fn gap(&mut self, offset: u64, len: u64) -> Result<(), ParseError> {
        each_parser!(self, p => p.gap(offset, len))
    }
    fn recover(&mut self, at: u64) -> bool {
        each_parser!(self, p => p.recover(at))
    }
    fn finish<P: Packet>(
        &mut self,
        offset: u64,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        each_parser!(self, p => p.finish(offset, out))
    }
    #[inline]
    fn retain_from(&self) -> u64 {
        each_parser!(self, p => p.retain_from())
    }
}

/// One protocol: how to make its parser, and the shape of its records.
#[derive(Clone)]
pub struct Protocol {
    name: String,
    make: Make,
    shape: Arc<Shape>,
}

#[derive(Clone)]
enum Make {
    Compiled(fn() -> AnyParser),
    Interp(Arc<Grammar>),
}

/// What JSON output needs to know beyond the runtime schema: which fields
/// repeat, how to read their bytes, which variables are booleans.
pub(crate) struct Shape {
    schema: &'static Schema,
    /// Per record kind: per field tag, whether it may repeat.
    repeated: Vec<Vec<bool>>,
    /// Per record kind: per field tag, how its bytes read.
    reading: Vec<Vec<Reading>>,
    /// Per record kind: per variable tag, whether it is a boolean.
    boolean: Vec<Vec<bool>>,
}

/// How a field's bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// As text; quoted with this quote character when flagged escaped.
    Text(Option<u8>),
    /// A fixed-width integer (also printed as `value`).
    Int {
        /// Big endian.
        big: bool,
    },
}

impl Shape {
    fn new(schema: &'static Schema, p: &ir::Protocol) -> Shape {
        Shape {
            schema,
            repeated: p
                .records
                .iter()
                .map(|r| r.fields.iter().map(|f| f.repeat.is_some()).collect())
                .collect(),
            reading: p
                .records
                .iter()
                .map(|r| {
                    r.fields
                        .iter()
                        .map(|f| match f.ending {
                            ir::Ending::Until { quote, .. } => Reading::Text(quote),
                            ir::Ending::Int { big, .. } => Reading::Int { big },
                            _ => Reading::Text(None),
                        })
                        .collect()
                })
                .collect(),
            boolean: p
                .records
                .iter()
                .map(|r| r.vars.iter().map(|v| v.ty == ir::Ty::Bool).collect())
                .collect(),
        }
    }
}

impl Protocol {
    /// A protocol compiled into aa: `csv`, `http_request`, `http_response`,
    /// `tls`, `tls_handshake`, `resp`, `mqtt`.
    pub fn compiled(name: &str) -> Option<Protocol> {
        let make: fn() -> AnyParser = match name {
            "csv" => || AnyParser::Csv(csv::CsvParser::new()),
            "http_request" => || AnyParser::HttpRequest(http_request::HttpRequestParser::new()),
            "http_response" => || AnyParser::HttpResponse(http_response::HttpResponseParser::new()),
            "tls" => || AnyParser::Tls(tls::TlsParser::new()),
            "resp" => || AnyParser::Resp(resp::RespParser::new()),
            "mqtt" => || AnyParser::Mqtt(Box::new(mqtt::MqttParser::new())),
            "tls_handshake" => {
                || AnyParser::TlsHandshake(Box::new(tls_handshake::TlsHandshakeParser::new()))
            }
            _ => return None,
        };
        let (_, src) = aa_grammars::SOURCES.iter().find(|(n, _)| *n == name)?;
        let ir = aa_dsl::compile_str(src).ok()?;
        Some(Protocol {
            name: name.to_string(),
            shape: Arc::new(Shape::new(make().schema(), &ir)),
            make: Make::Compiled(make),
        })
    }

    /// A grammar loaded from a `.aag` file, run by the interpreter. The error
    /// is the rendered diagnostics.
    pub fn load(path: &Path) -> Result<Protocol, String> {
        let ir = aa_dsl::load(path)?;
        let grammar = Grammar::new(ir);
        Ok(Protocol {
            name: grammar.protocol().name.clone(),
            shape: Arc::new(Shape::new(grammar.schema(), grammar.protocol())),
            make: Make::Interp(grammar),
        })
    }

    /// How the JSON output reads its records.
    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The protocol's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A parser for one stream direction.
    pub fn parser(&self) -> AnyParser {
        match &self.make {
            Make::Compiled(f) => f(),
            Make::Interp(g) => AnyParser::Interp(Box::new(g.parser())),
        }
    }
}

/// What a server port speaks: a protocol per direction.
#[derive(Clone)]
pub struct Service {
    /// Client to server.
    pub to_server: Option<Protocol>,
    /// Server to client.
    pub to_client: Option<Protocol>,
}

impl Service {
    /// The same protocol both ways.
    pub fn both(p: Protocol) -> Service {
        Service {
            to_server: Some(p.clone()),
            to_client: Some(p),
        }
    }

    /// HTTP/1.1: requests from the client, responses from the server.
    pub fn http() -> Service {
        Service {
            to_server: Protocol::compiled("http_request"),
            to_client: Protocol::compiled("http_response"),
        }
    }

    /// A service by name: `http`, a protocol (compiled, or one of `loaded`:
    /// grammars given with `--grammar`) both ways, or `CLIENT/SERVER`, two
    /// protocols: the client's bytes parsed as the first, the server's as
    /// the second. `Err` names what is unknown.
    pub fn by_name(name: &str, loaded: &[Protocol]) -> Result<Service, String> {
        let one = |n: &str| {
            loaded
                .iter()
                .find(|p| p.name == n)
                .cloned()
                .or_else(|| Protocol::compiled(n))
                .ok_or_else(|| n.to_string())
        };
        match name.split_once('/') {
            Some((client, server)) => Ok(Service {
                to_server: Some(one(client)?),
                to_client: Some(one(server)?),
            }),
            None if name == "http" && !loaded.iter().any(|p| p.name == "http") => {
                Ok(Service::http())
            }
            None => one(name).map(Service::both),
        }
    }

    fn protocols(&self) -> impl Iterator<Item = &Protocol> {
        self.to_server.iter().chain(self.to_client.iter())
    }
}

/// Which service each server port speaks, and what the others do.
#[derive(Clone)]
pub struct PortMap {
    ports: Vec<(u16, Service)>,
    other: Option<Service>,
}

impl PortMap {
    /// The default map: ports 80 and 8080 are HTTP, 443 is TLS (its
    /// handshakes), 1883 is MQTT, 6379 is Redis (RESP); other ports
    /// unparsed.
    pub fn well_known() -> PortMap {
        let mut ports = vec![(80, Service::http()), (8080, Service::http())];
        for (port, name) in [(443, "tls_handshake"), (1883, "mqtt"), (6379, "resp")] {
            ports.extend(Protocol::compiled(name).map(|p| (port, Service::both(p))));
        }
        PortMap { ports, other: None }
    }

    /// Every port speaks `service`.
    pub fn all(service: Service) -> PortMap {
        PortMap {
            ports: Vec::new(),
            other: Some(service),
        }
    }

    /// Maps `port` to `service` (replacing a previous mapping).
    pub fn set(&mut self, port: u16, service: Service) {
        self.ports.retain(|(p, _)| *p != port);
        self.ports.push((port, service));
    }

    fn get(&self, port: u16) -> Option<&Service> {
        self.ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, s)| s)
            .or(self.other.as_ref())
    }

    fn shapes(&self) -> Vec<Arc<Shape>> {
        let mut out: Vec<Arc<Shape>> = Vec::new();
        let all = self.ports.iter().map(|(_, s)| s).chain(self.other.iter());
        for p in all.flat_map(Service::protocols) {
            if !out.iter().any(|s| std::ptr::eq(s.schema, p.shape.schema)) {
                out.push(p.shape.clone());
            }
        }
        out
    }
}

impl Parsers for PortMap {
    type Parser = AnyParser;

    fn is_server_port(&self, port: u16) -> bool {
        self.ports.iter().any(|(p, _)| *p == port)
    }

    fn parser(&mut self, server: Endpoint, side: Side) -> Option<AnyParser> {
        let s = self.get(server.1)?;
        match side {
            Side::Client => s.to_server.as_ref(),
            Side::Server => s.to_client.as_ref(),
        }
        .map(Protocol::parser)
    }
}

/// Options of one `aa inspect` run.
#[derive(Clone)]
pub struct Options {
    /// Which protocol each port speaks.
    pub ports: PortMap,
    /// Most bytes of a field's text printed.
    pub max_text: usize,
    /// Print only the summary.
    pub stats_only: bool,
    /// What to do with bad TCP checksums.
    pub checksums: ChecksumMode,
    /// Pick up connections whose handshake is not in the capture.
    pub midstream: bool,
    /// Packet buffers in the pool (each holds one frame of up to 64 KiB).
    pub pool: u32,
    /// Bounds of the flow table.
    pub flows: FlowConfig,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ports: PortMap::well_known(),
            max_text: 256,
            stats_only: false,
            checksums: ChecksumMode::Auto,
            midstream: true,
            pool: 4096,
            flows: FlowConfig::default(),
            progress: false,
        }
    }
}

/// Bytes of one pool buffer: the largest IP packet, its link header and the
/// biggest link-layer encapsulation aa reads (SLL2 + VLAN tags), rounded up.
pub const FRAME_BUF: usize = 65_536 + 128;

/// What a run found: the counters the summary prints.
#[derive(Clone, Debug)]
pub struct Summary {
    /// What was read: the capture's path, or the DPDK port.
    pub source: String,
    /// Frames decoded, by outcome.
    pub wire: WireStats,
    /// Passive reassembly counters.
    pub passive: PassiveStats,
    /// Records printed (or counted, with `--stats`).
    pub records: u64,
    /// Gap events.
    pub gaps: u64,
    /// Error events.
    pub errors: u64,
    /// The checksum policy's verdict.
    pub checksums: String,
    /// Frames skipped for being longer than a pool buffer.
    pub too_long: u64,
    /// Frames a DPDK port received in chained mbufs (longer than one mbuf's
    /// data room) and dropped: not supported yet.
    pub multi_segment: u64,
    /// Times every pool buffer was held by connections waiting for bytes:
    /// each time, every open connection was ended (holes became gaps) to go
    /// on.
    pub pool_exhausted: u64,
    /// Pool packets not back in the pool once every connection ended, the
    /// reader's own included (0 unless something leaks).
    pub packets_held: u32,
    /// How long the run took.
    pub elapsed: Duration,
    /// Set when the capture ended inside a record or was corrupt: what and
    /// where. Every packet before it was processed.
    pub truncated: Option<String>,
    /// A live run on several workers (`Live::workers`): how frames were
    /// spread over them, how many each decoded, and the CPUs they ran on.
    /// `None` with one worker.
    pub spreading: Option<String>,
    /// Frames the receiving thread dropped because the queue of the worker
    /// they were for was full (software spreading only; the summary's
    /// packet and frame counts do not include them).
    pub queue_full: u64,
}

impl Summary {
    /// TCP payload throughput.
    pub fn gbit_per_s(&self) -> f64 {
        self.passive.payload_bytes as f64 * 8.0 / self.elapsed.as_secs_f64().max(1e-9) / 1e9
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.passive;
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "{}: {} packets, {} TCP payload bytes in {:.3} s: {:.2} Gbit/s, {:.0} packets/s",
            self.source,
            self.wire.frames,
            p.payload_bytes,
            secs,
            self.gbit_per_s(),
            self.wire.frames as f64 / secs.max(1e-9)
        )?;
        writeln!(
            f,
            "  flows: {} ({} with handshake, {} picked up mid-stream); closed: {} by FIN, \
             {} by RST, {} idle, {} reused, {} open at end; {} refused (table full)",
            p.handshakes + p.midstream,
            p.handshakes,
            p.midstream,
            p.closed_fin,
            p.closed_rst,
            p.closed_idle,
            p.closed_reused,
            p.closed_input,
            p.refused
        )?;
        writeln!(
            f,
            "  records: {}; gaps: {} ({} bytes); errors: {}",
            self.records, self.gaps, p.gap_bytes, self.errors
        )?;
        writeln!(
            f,
            "  segments: {} ({} used, {} untracked, {} rejected); {} out of order, \
             {} retransmitted, {} beyond the window, {} over a cap, {} implausible acks",
            p.segments,
            p.accepted,
            p.untracked,
            p.rejected,
            p.out_of_order,
            p.duplicates,
            p.out_of_window,
            p.over_cap,
            p.bogus_acks
        )?;
        writeln!(f, "  frames: {}", self.wire)?;
        if let Some(how) = &self.spreading {
            writeln!(f, "  workers: {how}")?;
        }
        if self.queue_full > 0 {
            writeln!(
                f,
                "  {} frames dropped: a worker's queue was full",
                self.queue_full
            )?;
        }
        if p.signals_dropped > 0 {
            writeln!(
                f,
                "  {} signals between the directions of a connection dropped (more than 15 \
                 waiting): messages after them may be paired with the wrong ones",
                p.signals_dropped
            )?;
        }
        if self.packets_held > 0 {
            writeln!(
                f,
                "  {} packets were not returned to the pool (a leak: please report it)",
                self.packets_held
            )?;
        }
        if self.pool_exhausted > 0 {
            writeln!(
                f,
                "  packet pool exhausted {} times: every open connection was ended there \
                 (its holes reported as gaps); raise --pool",
                self.pool_exhausted
            )?;
        }
        if self.too_long > 0 {
            writeln!(
                f,
                "  {} frames longer than a packet buffer skipped",
                self.too_long
            )?;
        }
        if self.multi_segment > 0 {
            writeln!(
                f,
                "  {} multi-segment frames dropped (longer than one mbuf: not supported yet)",
                self.multi_segment
            )?;
        }
        write!(f, "  checksums: {}", self.checksums)?;
        if let Some(t) = &self.truncated {
            write!(f, "\n  {t}")?;
        }
        Ok(())
    }
}

/// Why a run could not start or could not go on.
#[derive(Debug)]
pub enum InspectError {
    /// The capture could not be opened or is not a capture aa reads.
    Open(PathBuf, IoError),
    /// Writing the output failed.
    Output(io::Error),
    /// DPDK could not start, or the port could not be opened.
    #[cfg(feature = "dpdk")]
    Dpdk(String),
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::Open(p, e) => write!(f, "{}: {e}", p.display()),
            InspectError::Output(e) => write!(f, "writing output: {e}"),
            #[cfg(feature = "dpdk")]
            InspectError::Dpdk(e) => write!(f, "DPDK: {e}"),
        }
    }
}

impl std::error::Error for InspectError {}

/// Reads `path`, writes one JSON line per record and event to `out`, and
/// returns the summary.
pub fn run(path: &Path, opts: &Options, out: impl Write) -> Result<Summary, InspectError> {
    let open_err = |e| InspectError::Open(path.to_path_buf(), e);
    let file_len = std::fs::metadata(path)
        .map_err(|e| open_err(IoError::Os(e)))?
        .len();
    let pool = PacketPool::new(opts.pool.max(16), FRAME_BUF);
    let mut reader = PcapReader::open(path, pool.clone()).map_err(open_err)?;
    let bar = (opts.progress && file_len > 64 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(file_len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    let counts = capture(&mut reader, opts, out, |reader, burst| {
        let next = match reader.recv_burst(burst) {
            Ok(0) if reader.at_end() => Next::Stop(None),
            Ok(_) => Next::Go,
            // Every buffer is held by a stream waiting for bytes that may
            // never come: end the connections that hold them.
            Err(IoError::Pool(_)) if burst.is_empty() => Next::FreeBuffers,
            Err(IoError::Pool(_)) => Next::Go,
            Err(e @ (IoError::Truncated { .. } | IoError::Corrupt { .. })) => {
                Next::Stop(Some(e.to_string()))
            }
            Err(e) => return Err(open_err(e)),
        };
        if let Some(b) = &bar {
            b.set_position(reader.stats().bytes);
        }
        Ok(next)
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Every connection has ended: nothing may still hold a packet.
    let packets_held = pool.capacity() - pool.available();
    Ok(counts.summary(
        path.display().to_string(),
        reader.stats().too_long,
        0,
        packets_held,
    ))
}

/// What a capture loop does after a receive.
enum Next {
    /// Process the burst and receive again.
    Go,
    /// Nothing came: write out the lines waiting in the output buffer, and
    /// receive again (a live source; a file is never idle).
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    Idle,
    /// Every buffer is held by connections waiting for bytes: process the
    /// burst, end every connection (their holes become gaps), go on.
    FreeBuffers,
    /// Process the burst and stop; with what cut the source short, if it was.
    Stop(Option<String>),
}

/// What a capture loop counted.
struct Counts {
    wire: WireStats,
    passive: PassiveStats,
    records: u64,
    gaps: u64,
    errors: u64,
    checksums: ChecksumReport,
    pool_exhausted: u64,
    truncated: Option<String>,
    elapsed: Duration,
}

impl Counts {
    fn summary(
        self,
        source: String,
        too_long: u64,
        multi_segment: u64,
        packets_held: u32,
    ) -> Summary {
        Summary {
            source,
            wire: self.wire,
            passive: self.passive,
            records: self.records,
            gaps: self.gaps,
            errors: self.errors,
            checksums: self.checksums.to_string(),
            too_long,
            multi_segment,
            pool_exhausted: self.pool_exhausted,
            packets_held,
            elapsed: self.elapsed,
            truncated: self.truncated,
            spreading: None,
            queue_full: 0,
        }
    }
}

/// The passive path over any packet source: `next` receives a burst from
/// `io` into the burst it is given (which is empty) and says how to go on;
/// every frame received is decoded, reassembled, parsed and written to `out`
/// as JSON lines. An error from `next` ends the run. Returns once every
/// connection has ended and every packet the loop held is dropped.
fn capture<S, P: Packet, W: Write>(
    io: &mut S,
    opts: &Options,
    out: W,
    mut next: impl FnMut(&mut S, &mut Burst<Rx<P>>) -> Result<Next, InspectError>,
) -> Result<Counts, InspectError> {
    let started = Instant::now();
    let mut decoder = Decoder::new(opts.checksums);
    let cfg = PassiveConfig {
        midstream: opts.midstream,
        flows: opts.flows,
        ..PassiveConfig::default()
    };
    let mut passive: Passive<P, PortMap> = Passive::new(cfg, opts.ports.clone());
    let mut sink = JsonSink::new(out, opts, opts.ports.shapes());
    let mut burst: Burst<Rx<P>> = Burst::with_capacity(BURST);
    let mut pool_exhausted = 0;
    // Index room for the connections of a busy link, so the table does not
    // stop to grow on the first tens of thousands (5 bytes each).
    passive.reserve(1 << 16);
    let truncated = loop {
        let step = next(io, &mut burst)?;
        passive.frames(&mut decoder, burst.as_slice(), &mut sink);
        burst.clear();
        match step {
            Next::Go => sink.flush_if_failed()?,
            Next::Idle => sink.flush_pending()?,
            Next::FreeBuffers => {
                pool_exhausted += 1;
                passive.finish(&mut sink);
                sink.flush_if_failed()?;
            }
            Next::Stop(why) => break why,
        }
    };
    passive.finish(&mut sink);
    sink.finish()?;
    let stats = passive.stats();
    drop(passive);
    Ok(Counts {
        wire: decoder.stats,
        passive: stats,
        records: sink.records,
        gaps: sink.gaps,
        errors: sink.errors,
        checksums: decoder.policy.report(),
        pool_exhausted,
        truncated,
        elapsed: started.elapsed(),
    })
}

/// Packets asked for per receive.
const BURST: usize = 32;

/// What a live run reads and when it stops.
#[cfg(feature = "dpdk")]
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// EAL arguments, separated by whitespace (the program name is put
    /// first): `--no-huge --no-pci -m 256 --vdev=net_pcap0,iface=eth0`.
    pub eal: String,
    /// The port's name (`net_pcap0`); `None`: the first port.
    pub port: Option<String>,
    /// Stop after this many packets.
    pub packets: Option<u64>,
    /// Stop after this long without a packet (from the start, until the
    /// first).
    pub idle: Option<Duration>,
    /// Worker threads, each with its own decoder, flow table and output
    /// buffer (0 and 1: one, the thread that calls [`run_dpdk`]).
    pub workers: usize,
}

/// Starts DPDK's EAL with `live.eal`, opens the port, receives into a pool
/// of `opts.pool` mbufs, and writes one JSON line per record and event to
/// `out` until `stop` is set (by a signal handler), `live.packets` packets
/// came, or none came for `live.idle`; returns the summary.
///
/// EAL starts once per process: a later call reuses the first one's EAL and
/// ignores `live.eal`. Frames longer than one mbuf's data room (2048
/// bytes) arrive chained and are dropped and counted
/// ([`Summary::multi_segment`]). Packets count once they reach the passive
/// path, so multi-segment frames do not count towards `live.packets`.
///
/// With `live.workers` N > 1, N threads each decode, reassemble and parse
/// the connections given to them, with their own flow table (see
/// [`Summary::spreading`]):
///
/// - on a device with receive-side scaling that takes the symmetric key
///   ([`aa_stack::dpdk::Rss::symmetric`]), the port gets N queue pairs and
///   each worker polls its own;
/// - otherwise (`net_pcap`, `net_ring`, `net_tap`, a key the device would
///   not take), the port gets one queue, polled by the calling thread, which
///   hands each frame to the worker of its connection
///   ([`aa_stack::dpdk::Dispatcher`]: both directions to one worker) through
///   a bounded queue of [`WORKER_QUEUE`] frames; a frame for a full queue is
///   dropped and counted ([`Summary::queue_full`]), never waited for.
///
/// Each worker is pinned to one of the CPUs the calling thread could run on
/// before EAL started (EAL pins the thread that starts it to its main
/// lcore's core), in turn; with software spreading, the receiving thread's
/// core comes last. With more workers than CPUs, workers share them. The
/// pool holds `opts.pool` mbufs per worker, plus the workers' queues. Every
/// worker writes whole JSON lines to `out`, under a lock: the lines of one
/// connection (both directions) keep their order; lines of different
/// connections may interleave. `stop`, `live.packets` and `live.idle`
/// apply to the whole run; at its end every worker ends its connections,
/// and the summary adds up every worker's counters.
#[cfg(feature = "dpdk")]
pub fn run_dpdk(
    live: &Live,
    opts: &Options,
    out: impl Write + Send,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Summary, InspectError> {
    use aa_stack::dpdk::{current_thread_cpus, Eal, Mempool, Port, PortConfig};
    use std::sync::atomic::Ordering;

    let dpdk = |e: aa_stack::dpdk::DpdkError| InspectError::Dpdk(e.to_string());
    // Before EAL pins this thread to one core: the CPUs workers may use.
    let cpus = current_thread_cpus();
    let eal = Eal::init_line("aa", &live.eal).map_err(dpdk)?;
    let (id, name) = eal.find_port(live.port.as_deref()).map_err(dpdk)?;
    let workers = live.workers.max(1);
    let size = if workers == 1 {
        opts.pool.max(2 * BURST as u32)
    } else {
        (opts.pool.max(2 * BURST as u32) + WORKER_QUEUE as u32)
            .saturating_mul(u32::try_from(workers).unwrap_or(u32::MAX))
    };
    // Pool names are unique in the process.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pool = Mempool::new(
        eal,
        &format!("aa_inspect{}", RUNS.fetch_add(1, Ordering::Relaxed)),
        size,
        (size / 8).min(256),
        Mempool::DEFAULT_DATA_ROOM,
    )
    .map_err(dpdk)?;
    // Promiscuous: a mirror port or a tap carries frames for other hosts.
    let cfg = PortConfig {
        promiscuous: true,
        ..PortConfig::default()
    };
    if workers > 1 {
        return workers::run(
            workers::Run {
                eal,
                id,
                name: &name,
                pool: &pool,
                cfg,
                cpus,
                workers,
                live,
                opts,
                stop,
            },
            out,
        );
    }
    let mut port = Port::open(eal, id, &pool, cfg).map_err(dpdk)?;

    let mut received = 0u64;
    let mut done = live.packets == Some(0);
    let mut last = Instant::now();
    let mut freed = false;
    let counts = capture(&mut port, opts, out, |port, burst| {
        if done || stop.load(Ordering::Relaxed) {
            return Ok(Next::Stop(None));
        }
        // The device takes a buffer for every frame it receives, and one it
        // cannot get loses the frame: when fewer than a burst's worth are
        // free, the connections hold them, waiting for bytes that may never
        // come; end them. Then receive, whatever is free: a port's receive
        // ring may hold more than is left.
        if !freed && port.pool().available() < BURST as u32 {
            freed = true;
            return Ok(Next::FreeBuffers);
        }
        freed = false;
        let n = port
            .recv_burst(burst)
            .map_err(|e| InspectError::Dpdk(format!("receiving from {name}: {e}")))?;
        if n == 0 {
            if live.idle.is_some_and(|idle| last.elapsed() >= idle) {
                return Ok(Next::Stop(None));
            }
            return Ok(Next::Idle);
        }
        last = Instant::now();
        done = limit_reached(received, live.packets, burst);
        received += n as u64;
        Ok(Next::Go)
    })?;
    let multi_segment = port.dropped_multi_segment();
    // A stopped port may still hold mbufs in its receive ring (a NIC,
    // net_tap); a closed one holds none: with every connection ended, the
    // pool must be full.
    port.close().map_err(dpdk)?;
    let packets_held = pool.capacity() - pool.available();
    Ok(counts.summary(
        format!("{name} (DPDK port {id})"),
        0,
        multi_segment,
        packets_held,
    ))
}

/// Whether `burst`, after `before` packets, reaches the run's limit of `max`
/// packets; the packets past it go back to the pool, unread.
#[cfg(feature = "dpdk")]
fn limit_reached<P>(before: u64, max: Option<u64>, burst: &mut Burst<Rx<P>>) -> bool {
    let Some(max) = max else { return false };
    if before + (burst.len() as u64) < max {
        return false;
    }
    burst.drain(max.saturating_sub(before) as usize..);
    true
}

/// Frames each worker's queue holds, with software spreading.
#[cfg(feature = "dpdk")]
pub const WORKER_QUEUE: usize = 1024;

/// `aa inspect --eal ... --workers N`, N > 1.
#[cfg(feature = "dpdk")]
mod workers {
    use std::io::{self, Write};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use aa_stack::dpdk::{
        current_thread_cpus, pin_current_thread, Dispatcher, DpdkError, Eal, MbufPacket, Mempool,
        Port, PortConfig,
    };
    use aa_stack::{Burst, PacketIo};

    use super::{
        capture, limit_reached, Counts, InspectError, Live, Next, Options, Summary, BURST,
        WORKER_QUEUE,
    };

    /// What [`run`] needs from `run_dpdk`.
    pub(super) struct Run<'a> {
        pub eal: &'static Eal,
        pub id: u16,
        pub name: &'a str,
        pub pool: &'a Mempool,
        pub cfg: PortConfig,
        /// The CPUs the process could run on before EAL started.
        pub cpus: Vec<usize>,
        pub workers: usize,
        pub live: &'a Live,
        pub opts: &'a Options,
        pub stop: &'a AtomicBool,
    }

    /// How long a worker fed by the dispatcher waits for a frame before it
    /// looks at its other duties (writing out waiting lines, ending its
    /// connections when asked).
    const WAIT: Duration = Duration::from_millis(1);

    /// One worker's share of the output. Its sink's buffer hands over only
    /// whole lines (every write into it is one whole line, and it writes out
    /// what it holds, or a line longer than itself, in one `write` call),
    /// and each `write` goes out whole under the lock: lines never
    /// interleave.
    struct Lines<'a, W>(&'a Mutex<W>);

    impl<W: Write> Write for Lines<'_, W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_all(buf)?;
            Ok(buf.len())
        }

        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            out.write_all(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            out.flush()
        }
    }

    /// What the threads of a run share: when to stop, how many packets came,
    /// and requests to end every connection when the pool runs low.
    struct Shared<'a> {
        stop: &'a AtomicBool,
        /// Set when the run ends (a limit reached, a worker failed).
        done: AtomicBool,
        /// Packets received, all queues (RSS).
        received: AtomicU64,
        started: Instant,
        /// When the last packet came, in nanoseconds from `started` (RSS).
        last: AtomicU64,
        /// Requests to end every connection so far.
        exhausted: AtomicU64,
        /// Per worker, the last request it has handled.
        handled: Vec<AtomicU64>,
    }

    impl Shared<'_> {
        fn stopping(&self) -> bool {
            self.done.load(Ordering::Relaxed) || self.stop.load(Ordering::Relaxed)
        }

        /// Asks every worker to end its connections, unless one is still
        /// handling the previous request; returns whether it asked.
        fn ask_to_free(&self) -> bool {
            let g = self.exhausted.load(Ordering::Acquire);
            self.handled.iter().all(|h| h.load(Ordering::Acquire) == g)
                && self
                    .exhausted
                    .compare_exchange(g, g + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        }

        /// At worker `w`'s every turn (the previous one done): whether it is
        /// asked to end its connections now. `seen`: the last request it took.
        fn must_free(&self, w: usize, seen: &mut u64) -> bool {
            self.handled[w].store(*seen, Ordering::Release);
            let g = self.exhausted.load(Ordering::Acquire);
            if g == *seen {
                return false;
            }
            *seen = g;
            true
        }

        /// Counts `burst`'s packets towards `--packets`, shared by every
        /// queue: those past the limit go back to the pool unread, and the
        /// run ends once it is reached.
        fn count<P>(&self, limit: Option<u64>, burst: &mut Burst<aa_stack::Rx<P>>) {
            let before = self
                .received
                .fetch_add(burst.len() as u64, Ordering::Relaxed);
            if limit_reached(before, limit, burst) {
                self.done.store(true, Ordering::Relaxed);
            }
        }

        /// Notes that a packet came now.
        fn heard(&self) {
            let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.last.store(ns, Ordering::Relaxed);
        }

        /// Whether nothing came for `idle` (since the start, until the first).
        fn idle_for(&self, idle: Option<Duration>) -> bool {
            idle.is_some_and(|idle| {
                let last = Duration::from_nanos(self.last.load(Ordering::Relaxed));
                self.started.elapsed().saturating_sub(last) >= idle
            })
        }
    }

    /// Pins the calling thread to `cpu`, if any; the CPU it runs on then.
    fn pin(cpu: Option<usize>) -> Option<usize> {
        pin_current_thread(cpu?).ok().and(cpu)
    }

    /// Opens the port with one queue pair per worker if the device spreads
    /// connections over them symmetrically; otherwise with one. The second
    /// value says why not, when not.
    fn open(r: &Run<'_>) -> Result<(Port, Option<String>), DpdkError> {
        let one = |why: String| Ok((Port::open(r.eal, r.id, r.pool, r.cfg)?, Some(why)));
        let Ok(queues) = u16::try_from(r.workers) else {
            return one(format!("{} queue pairs asked for", r.workers));
        };
        let cfg = PortConfig { queues, ..r.cfg };
        match Port::open(r.eal, r.id, r.pool, cfg) {
            Ok(port) => match port.rss() {
                Some(rss) if rss.symmetric => Ok((port, None)),
                // Stopped, to be configured again with one queue.
                Some(_) => {
                    drop(port);
                    one("the device would not take the symmetric RSS key".into())
                }
                None => {
                    drop(port);
                    one("the device has no receive-side scaling".into())
                }
            },
            Err(DpdkError::Queues { max, .. }) => one(format!(
                "the device has {max} queue pair{} at most",
                if max == 1 { "" } else { "s" }
            )),
            Err(e) => one(format!("{queues} queue pairs refused: {e}")),
        }
    }

    pub(super) fn run<W: Write + Send>(r: Run<'_>, out: W) -> Result<Summary, InspectError> {
        let dpdk = |e: DpdkError| InspectError::Dpdk(e.to_string());
        let (mut port, software) = open(&r).map_err(dpdk)?;
        let shared = Shared {
            stop: r.stop,
            done: AtomicBool::new(r.live.packets == Some(0)),
            received: AtomicU64::new(0),
            started: Instant::now(),
            last: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            handled: (0..r.workers).map(|_| AtomicU64::new(0)).collect(),
        };
        let out = Mutex::new(out);
        let (results, queue_full, receiving) = match &software {
            None => (per_queue(&r, &mut port, &shared, &out), 0, Ok(())),
            Some(_) => dispatched(&r, &mut port, &shared, &out),
        };
        let multi_segment = port.dropped_multi_segment();
        // A closed port holds no mbuf: with every connection ended, the
        // pool must be full.
        let closed = port.close();
        let mut counts = Vec::with_capacity(results.len());
        let mut cpus = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok((c, cpu)) => {
                    counts.push(c);
                    cpus.push(cpu);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        receiving?;
        let counts: Vec<Counts> = counts.into_iter().collect::<Result<_, _>>()?;
        closed.map_err(dpdk)?;
        let per_worker: Vec<String> = counts.iter().map(|c| c.wire.frames.to_string()).collect();
        let cpus: Vec<String> = cpus
            .iter()
            .map(|c| c.map_or_else(|| "-".to_string(), |c| c.to_string()))
            .collect();
        let how = match &software {
            None => format!(
                "{}, one per receive queue, spread by the device's symmetric RSS",
                r.workers
            ),
            Some(why) => format!(
                "{}, fed from one receive queue by a software flow hash ({why})",
                r.workers
            ),
        };
        let spreading = format!(
            "{how}; frames per worker: {}; on CPUs {}",
            per_worker.join(" "),
            cpus.join(" ")
        );
        let (mut merged, each) =
            merge(counts).ok_or_else(|| InspectError::Dpdk("no worker ran".into()))?;
        // Counted once per request, not once per worker that ended its
        // connections for it.
        merged.pool_exhausted = shared.exhausted.load(Ordering::Relaxed);
        merged.elapsed = shared.started.elapsed();
        let packets_held = r.pool.capacity() - r.pool.available();
        let mut summary = merged.summary(
            format!("{} (DPDK port {})", r.name, r.id),
            0,
            multi_segment,
            packets_held,
        );
        if let Some(each) = each {
            summary.checksums = each;
        }
        summary.spreading = Some(spreading);
        summary.queue_full = queue_full;
        Ok(summary)
    }

    type WorkerResult = std::thread::Result<(Result<Counts, InspectError>, Option<usize>)>;

    /// One worker per queue pair, each polling its own.
    fn per_queue<W: Write + Send>(
        r: &Run<'_>,
        port: &mut Port,
        shared: &Shared<'_>,
        out: &Mutex<W>,
    ) -> Vec<WorkerResult> {
        let (live, opts, cpus) = (r.live, r.opts, &r.cpus);
        let name = r.name;
        std::thread::scope(|s| {
            let handles: Vec<_> = port
                .queues_mut()
                .iter_mut()
                .enumerate()
                .map(|(w, queue)| {
                    s.spawn(move || {
                        let cpu = pin((!cpus.is_empty()).then(|| cpus[w % cpus.len()]));
                        let mut seen = 0;
                        let mut asked = false;
                        let counts = capture(queue, opts, Lines(out), |queue, burst| {
                            if shared.stopping() {
                                return Ok(Next::Stop(None));
                            }
                            if shared.must_free(w, &mut seen) {
                                return Ok(Next::FreeBuffers);
                            }
                            // As with one worker: fewer free mbufs than a
                            // burst, every worker ends its connections
                            // (once until a packet comes again).
                            if !asked && queue.pool().available() < BURST as u32 {
                                asked = shared.ask_to_free();
                                if shared.must_free(w, &mut seen) {
                                    return Ok(Next::FreeBuffers);
                                }
                            }
                            let n = queue.recv_burst(burst).map_err(|e| {
                                InspectError::Dpdk(format!(
                                    "receiving from {name} queue {}: {e}",
                                    queue.queue()
                                ))
                            })?;
                            if n == 0 {
                                if shared.idle_for(live.idle) {
                                    shared.done.store(true, Ordering::Relaxed);
                                    return Ok(Next::Stop(None));
                                }
                                return Ok(Next::Idle);
                            }
                            asked = false;
                            shared.heard();
                            shared.count(live.packets, burst);
                            Ok(Next::Go)
                        });
                        if counts.is_err() {
                            shared.done.store(true, Ordering::Relaxed);
                        }
                        (counts, cpu)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        })
    }

    /// One receive queue, polled by this thread, which hands each frame to
    /// the worker of its connection. Returns the workers' results, the
    /// frames dropped for a full queue, and how receiving ended.
    fn dispatched<W: Write + Send>(
        r: &Run<'_>,
        port: &mut Port,
        shared: &Shared<'_>,
        out: &Mutex<W>,
    ) -> (Vec<WorkerResult>, u64, Result<(), InspectError>) {
        let opts = r.opts;
        // EAL pinned this thread, which receives, to its main lcore's core:
        // workers take the others first.
        let here = current_thread_cpus();
        let mut cpus: Vec<usize> = r
            .cpus
            .iter()
            .copied()
            .filter(|c| !here.contains(c))
            .collect();
        cpus.extend(r.cpus.iter().copied().filter(|c| here.contains(c)));
        let cpus = &cpus;
        let (mut dispatcher, ends) = Dispatcher::<MbufPacket>::new(r.workers, WORKER_QUEUE);
        std::thread::scope(|s| {
            let handles: Vec<_> = ends
                .into_iter()
                .map(|mut end| {
                    s.spawn(move || {
                        let w = end.index();
                        let cpu = pin((!cpus.is_empty()).then(|| cpus[w % cpus.len()]));
                        let mut seen = 0;
                        let counts = capture(&mut end, opts, Lines(out), |end, burst| {
                            if shared.must_free(w, &mut seen) {
                                return Ok(Next::FreeBuffers);
                            }
                            // Until the receiving thread is done and the
                            // queue empty.
                            Ok(match end.recv_burst_timeout(burst, WAIT) {
                                None => Next::Stop(None),
                                Some(0) => Next::Idle,
                                Some(_) => Next::Go,
                            })
                        });
                        if counts.is_err() {
                            shared.done.store(true, Ordering::Relaxed);
                        }
                        (counts, cpu)
                    })
                })
                .collect();
            let receiving = receive(r, port, shared, &mut dispatcher);
            let queue_full = dispatcher.dropped();
            // The workers see the end of their queues.
            drop(dispatcher);
            let results = handles.into_iter().map(|h| h.join()).collect();
            (results, queue_full, receiving)
        })
    }

    /// Receives from `port` and dispatches until the run stops.
    fn receive(
        r: &Run<'_>,
        port: &mut Port,
        shared: &Shared<'_>,
        dispatcher: &mut Dispatcher<MbufPacket>,
    ) -> Result<(), InspectError> {
        let mut burst = Burst::with_capacity(BURST);
        let mut received = 0u64;
        let mut last = Instant::now();
        let mut asked = false;
        while !shared.stopping() {
            if !asked && port.pool().available() < BURST as u32 {
                asked = shared.ask_to_free();
            }
            let n = port
                .recv_burst(&mut burst)
                .map_err(|e| InspectError::Dpdk(format!("receiving from {}: {e}", r.name)))?;
            if n == 0 {
                if r.live.idle.is_some_and(|idle| last.elapsed() >= idle) {
                    break;
                }
                continue;
            }
            asked = false;
            last = Instant::now();
            if limit_reached(received, r.live.packets, &mut burst) {
                shared.done.store(true, Ordering::Relaxed);
            }
            received += n as u64;
            dispatcher.dispatch_burst(&mut burst);
        }
        Ok(())
    }

    /// Every worker's counters added up; `None` without any. The checksum
    /// verdicts are summed; when the `auto` policies of workers that checked
    /// segments came to different conclusions, the second value has each
    /// worker's.
    fn merge(counts: Vec<Counts>) -> Option<(Counts, Option<String>)> {
        let mut it = counts.into_iter();
        let mut total = it.next()?;
        let mut reports = vec![total.checksums];
        for c in it {
            total.wire += c.wire;
            total.passive += c.passive;
            total.records += c.records;
            total.gaps += c.gaps;
            total.errors += c.errors;
            total.pool_exhausted += c.pool_exhausted;
            total.truncated = total.truncated.or(c.truncated);
            total.elapsed = total.elapsed.max(c.elapsed);
            reports.push(c.checksums);
        }
        let sum = &mut total.checksums;
        for r in &reports[1..] {
            sum.checked += r.checked;
            sum.bad += r.bad;
            sum.offloaded += r.offloaded;
            sum.dropped += r.dropped;
            sum.sample = (sum.sample.0 + r.sample.0, sum.sample.1 + r.sample.1);
        }
        // Where the policies stand, of the workers that checked something
        // (one that saw no segment is still sampling).
        let active: Vec<_> = reports
            .iter()
            .filter(|r| r.checked > 0 || r.sample.0 > 0)
            .collect();
        if let Some(first) = active.first() {
            sum.state = first.state;
        }
        let disagree = active.iter().any(|r| r.state != active[0].state);
        let each = disagree.then(|| {
            reports
                .iter()
                .enumerate()
                .map(|(w, r)| format!("worker {w}: {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        Some((total, each))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use aa_runtime::PacketPool;
        use aa_stack::{LinkType, Rx, RxMeta, Timestamp};

        fn shared(stop: &AtomicBool, workers: usize) -> Shared<'_> {
            Shared {
                stop,
                done: AtomicBool::new(false),
                received: AtomicU64::new(0),
                started: Instant::now(),
                last: AtomicU64::new(0),
                exhausted: AtomicU64::new(0),
                handled: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            }
        }

        #[test]
        fn a_request_to_free_reaches_every_worker_once() {
            let stop = AtomicBool::new(false);
            let s = shared(&stop, 2);
            let mut seen = [0u64; 2];
            assert!(!s.must_free(0, &mut seen[0]));
            assert!(s.ask_to_free());
            // Not again while a worker has not handled it.
            assert!(!s.ask_to_free());
            assert!(s.must_free(0, &mut seen[0]));
            assert!(!s.must_free(0, &mut seen[0]), "once");
            assert!(!s.ask_to_free(), "worker 1 has not taken it yet");
            assert!(s.must_free(1, &mut seen[1]));
            // Worker 1 handled it at its next turn: a new request can come.
            assert!(!s.must_free(1, &mut seen[1]));
            assert!(s.ask_to_free());
            assert_eq!(s.exhausted.load(Ordering::Relaxed), 2);
            assert!(!s.stopping());
            stop.store(true, Ordering::Relaxed);
            assert!(s.stopping());
        }

        #[test]
        fn packets_count_for_the_whole_run() {
            let stop = AtomicBool::new(false);
            let s = shared(&stop, 2);
            let pool = PacketPool::new(64, 128);
            let mut burst = Burst::with_capacity(32);
            let fill = |burst: &mut Burst<Rx<_>>, n: usize| {
                for _ in 0..n {
                    let packet = pool.packet_from(&[0u8; 60]).unwrap();
                    let meta = RxMeta {
                        ts: Timestamp::new(1, 0),
                        link: LinkType::Ethernet,
                        wire_len: 60,
                        iface: 0,
                        checksum: aa_stack::io::RxChecksum::Unknown,
                    };
                    assert!(burst.push(Rx { packet, meta }).is_ok());
                }
            };
            // Two queues' bursts of 20 against a limit of 30: 20, then 10.
            fill(&mut burst, 20);
            s.count(Some(30), &mut burst);
            assert_eq!(burst.len(), 20);
            assert!(!s.stopping());
            burst.clear();
            fill(&mut burst, 20);
            s.count(Some(30), &mut burst);
            assert_eq!(burst.len(), 10);
            assert!(s.stopping());
            burst.clear();
            // Past the limit, nothing more.
            fill(&mut burst, 5);
            s.count(Some(30), &mut burst);
            assert!(burst.is_empty());
            // Without a limit, everything.
            fill(&mut burst, 5);
            s.count(None, &mut burst);
            assert_eq!(burst.len(), 5);
            burst.clear();
            assert!(pool.is_full());
        }
    }
}

/// Writes records and events as JSON lines.
struct JsonSink<W: Write> {
    out: io::BufWriter<W>,
    line: String,
    /// The start of lines of the direction last written (`flow_of`).
    flow: String,
    flow_of: Option<(Endpoint, Endpoint)>,
    json: RecordJson,
    print: bool,
    shapes: Vec<Arc<Shape>>,
    records: u64,
    gaps: u64,
    errors: u64,
    failed: Option<io::Error>,
    /// The WebSocket directions of the HTTP grammars whose current frame is
    /// masked, by (sender, receiver), and how far into the frame's payload
    /// they are: one entry per direction at most, removed with the
    /// connection (`closed`), so at most twice the flow table's connections.
    unmask: HashMap<(Endpoint, Endpoint), Unmask>,
    /// A masked payload's first `max_text` bytes, unmasked.
    unmasked: Vec<u8>,
    /// The errors of the direction being written, taken from its stream to
    /// go among its records in stream order.
    stream_errors: ErrorsAmong,
}

impl<W: Write> JsonSink<W> {
    fn new(out: W, opts: &Options, shapes: Vec<Arc<Shape>>) -> Self {
        JsonSink {
            out: io::BufWriter::with_capacity(1 << 16, out),
            line: String::with_capacity(1024),
            flow: String::with_capacity(128),
            flow_of: None,
            json: RecordJson::new(opts.max_text),
            print: !opts.stats_only,
            shapes,
            records: 0,
            gaps: 0,
            errors: 0,
            failed: None,
            unmask: HashMap::new(),
            unmasked: Vec::with_capacity(opts.max_text),
            stream_errors: ErrorsAmong::default(),
        }
    }

    /// Writes an error line for direction `dir`.
    fn error_line(&mut self, dir: &DirInfo, e: &ParseError) {
        self.errors += 1;
        self.unmask.remove(&(dir.src, dir.dst));
        if self.print {
            self.begin(dir);
            self.line.push(',');
            push_error(&mut self.line, e);
            self.end_line();
        }
    }

    /// After a WebSocket record of the HTTP grammars (`ws_frame`,
    /// `ws_payload`): keeps the masking key of the direction's frame, and
    /// adds a masked payload's text unmasked to its line as `"unmasked"`.
    fn push_unmasked<P: Packet>(
        &mut self,
        dir: &DirInfo,
        r: &aa_runtime::Record<'_, P>,
        schema: &Schema,
    ) {
        let key = (dir.src, dir.dst);
        match schema.record_name(r.kind()) {
            "ws_frame" => match websocket::mask_key(r.field_named("mask")) {
                Some(k) => self.unmask.entry(key).or_default().frame(Some(k)),
                None => {
                    self.unmask.remove(&key);
                }
            },
            "ws_payload" => {
                let (Some(u), Some(data)) = (self.unmask.get_mut(&key), r.field_named("data"))
                else {
                    return;
                };
                self.unmasked.clear();
                for c in data.chunks() {
                    let take = c.len().min(self.json.max_text - self.unmasked.len());
                    u.bytes_into(&c[..take], &mut self.unmasked);
                    u.skip((c.len() - take) as u64);
                }
                let _ = write!(
                    self.line,
                    ",\"unmasked\":{{\"len\":{},\"text\":",
                    data.len()
                );
                push_json_bytes(&mut self.line, &self.unmasked);
                self.line.push('}');
            }
            _ => {}
        }
    }

    /// Starts a line with the flow of `dir`.
    fn begin(&mut self, dir: &DirInfo) {
        if self.flow_of != Some((dir.src, dir.dst)) {
            self.flow_of = Some((dir.src, dir.dst));
            self.flow.clear();
            self.flow.push_str("{\"flow\":\"");
            push_endpoint(&mut self.flow, &dir.src);
            self.flow.push('>');
            push_endpoint(&mut self.flow, &dir.dst);
            self.flow.push('"');
        }
        self.line.clear();
        self.line.push_str(&self.flow);
    }

    fn end_line(&mut self) {
        self.line.push_str("}\n");
        if self.failed.is_none() {
            if let Err(e) = self.out.write_all(self.line.as_bytes()) {
                self.failed = Some(e);
            }
        }
    }

    fn flush_if_failed(&mut self) -> Result<(), InspectError> {
        match self.failed.take() {
            Some(e) => Err(InspectError::Output(e)),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), InspectError> {
        self.flush_if_failed()?;
        self.out.flush().map_err(InspectError::Output)
    }

    /// Writes out the lines waiting in the buffer, if any (a live source
    /// that has nothing to deliver now).
    fn flush_pending(&mut self) -> Result<(), InspectError> {
        if self.out.buffer().is_empty() {
            return self.flush_if_failed();
        }
        self.finish()
    }
}

impl<P: Packet, W: Write> Sink<P, AnyParser> for JsonSink<W> {
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, AnyParser>) {
        let n = stream.ready();
        self.records += n as u64;
        if !self.print || self.failed.is_some() {
            // Only records handed out can be freed.
            let _ = stream.read_aa_records(n);
            stream.free_aa_records(n);
            return;
        }
        let schema = stream.schema();
        // Out of `self` while lines are written (a move, no reference count).
        let shapes = std::mem::take(&mut self.shapes);
        let shape = shapes.iter().find(|s| std::ptr::eq(s.schema, schema));
        let http = matches!(schema.protocol, "http_request" | "http_response");
        // The errors among these records go between them, in stream order.
        let mut errors = std::mem::take(&mut self.stream_errors);
        errors.take_from(stream);
        for r in stream.read_aa_records(n) {
            while let Some(e) = errors.before(r.id()) {
                self.error_line(dir, e);
            }
            self.begin(dir);
            self.line.push(',');
            self.json
                .push_record(&mut self.line, &r, schema, shape.map(|s| &**s));
            if http {
                self.push_unmasked(dir, &r, schema);
            }
            self.end_line();
        }
        while let Some(e) = errors.rest() {
            self.error_line(dir, e);
        }
        self.stream_errors = errors;
        self.shapes = shapes;
        stream.free_aa_records(n);
    }

    fn gap(&mut self, dir: &DirInfo, offset: u64, len: u64) {
        self.gaps += 1;
        // The frame the bytes after the gap belong to is not known.
        self.unmask.remove(&(dir.src, dir.dst));
        if self.print {
            self.begin(dir);
            let _ = write!(
                self.line,
                ",\"event\":\"gap\",\"offset\":{offset},\"len\":{len}"
            );
            self.end_line();
        }
    }

    fn error(&mut self, dir: &DirInfo, e: &ParseError) {
        self.error_line(dir, e);
    }

    fn closed(&mut self, client: Endpoint, server: Endpoint, _: End) {
        if !self.unmask.is_empty() {
            self.unmask.remove(&(client, server));
            self.unmask.remove(&(server, client));
        }
    }
}

/// The errors a stream's parser found, taken from it before its records are
/// read (`AaStream::take_error`), handed out as the records come so that
/// each is written where it falls: `aa inspect`'s and `aa parse`'s lines.
#[derive(Default)]
pub(crate) struct ErrorsAmong {
    errors: Vec<StreamError>,
    next: usize,
}

impl ErrorsAmong {
    /// Takes every error `stream` holds (the vector is reused).
    pub(crate) fn take_from<P: Packet, R: Parser>(&mut self, stream: &mut AaStream<P, R>) {
        self.errors.clear();
        self.next = 0;
        self.errors
            .extend(std::iter::from_fn(|| stream.take_error()));
    }

    /// The next error that came before record `id`, if any.
    pub(crate) fn before(&mut self, id: RecordId) -> Option<&ParseError> {
        let e = self.errors.get(self.next).filter(|e| e.before <= id)?;
        self.next += 1;
        Some(&e.error)
    }

    /// The next error after every record read, if any.
    pub(crate) fn rest(&mut self) -> Option<&ParseError> {
        self.before(RecordId(u64::MAX))
    }
}

/// Writes records as the members of a JSON object (`"record":...,
/// "offset":...,"fields":{...},"vars":{...}`), the part of a line `aa
/// inspect` and `aa parse` share.
pub(crate) struct RecordJson {
    text: Vec<u8>,
    max_text: usize,
}

impl RecordJson {
    pub(crate) fn new(max_text: usize) -> RecordJson {
        RecordJson {
            text: Vec::with_capacity(max_text),
            max_text,
        }
    }

    /// Appends record `r`'s members to `line`; `shape` says how its
    /// fields read (text when it is `None`).
    pub(crate) fn push_record<P: Packet>(
        &mut self,
        line: &mut String,
        r: &aa_runtime::Record<'_, P>,
        schema: &Schema,
        shape: Option<&Shape>,
    ) {
        let kind = r.kind() as usize;
        let rs = &schema.records[kind];
        let _ = write!(
            line,
            "\"record\":\"{}\",\"offset\":{},\"fields\":{{",
            rs.name,
            r.span().start
        );
        let repeated = |tag: usize| {
            shape
                .and_then(|s| s.repeated.get(kind)?.get(tag).copied())
                .unwrap_or(false)
        };
        let reading = |tag: usize| {
            shape
                .and_then(|s| s.reading.get(kind)?.get(tag).copied())
                .unwrap_or(Reading::Text(None))
        };
        // Fields come in order; a repeated field's items are consecutive.
        let mut first = true;
        let mut open_array: Option<u16> = None;
        for i in 0..r.len() {
            let Some(f) = r.field(i) else { break };
            let tag = f.tag();
            if open_array != Some(tag) {
                if open_array.take().is_some() {
                    line.push(']');
                }
                if !first {
                    line.push(',');
                }
                let _ = write!(line, "\"{}\":", rs.fields[tag as usize]);
                if repeated(tag as usize) {
                    line.push('[');
                    open_array = Some(tag);
                }
            } else {
                line.push(',');
            }
            first = false;
            self.push_field(line, &f, reading(tag as usize));
        }
        if open_array.is_some() {
            line.push(']');
        }
        line.push_str("},\"vars\":{");
        for (tag, name) in rs.values.iter().enumerate() {
            if tag > 0 {
                line.push(',');
            }
            let v = r.value(tag as u16).unwrap_or(0);
            let boolean = shape
                .and_then(|s| s.boolean.get(kind)?.get(tag).copied())
                .unwrap_or(false);
            if boolean {
                let _ = write!(line, "\"{name}\":{}", v != 0);
            } else {
                let _ = write!(line, "\"{name}\":{v}");
            }
        }
        line.push('}');
    }

    fn push_field<P: Packet>(
        &mut self,
        line: &mut String,
        f: &aa_runtime::Field<'_, P>,
        reading: Reading,
    ) {
        let _ = write!(line, "{{\"len\":{},\"text\":", f.len());
        self.text.clear();
        match reading {
            Reading::Text(Some(quote)) if f.flags() & FLAG_ESCAPED != 0 => {
                aa_runtime::csv::unquote(f, quote, &mut self.text);
                self.text.truncate(self.max_text);
            }
            _ => {
                for c in f.chunks() {
                    let room = self.max_text - self.text.len();
                    self.text.extend_from_slice(&c[..c.len().min(room)]);
                    if self.text.len() == self.max_text {
                        break;
                    }
                }
            }
        }
        push_json_bytes(line, &self.text);
        if let Reading::Int { big } = reading {
            let n = f.len().min(8);
            let value = (0..n).fold(0u64, |v, i| {
                let at = if big { i } else { n - 1 - i };
                (v << 8) | u64::from(f.byte_at(at).unwrap_or(0))
            });
            let _ = write!(line, ",\"value\":{value}");
        }
        line.push('}');
    }
}

/// Appends a parse error's members to `line`: `"event":"error"`, its
/// stream offset, record, field and message.
pub(crate) fn push_error(line: &mut String, e: &ParseError) {
    let _ = write!(
        line,
        "\"event\":\"error\",\"offset\":{},\"record\":\"{}\",\"field\":",
        e.offset, e.record
    );
    match e.field {
        Some(f) => {
            let _ = write!(line, "\"{f}\"");
        }
        None => line.push_str("null"),
    }
    line.push_str(",\"message\":");
    push_json_bytes(line, e.to_string().as_bytes());
}

/// `addr:port`, IPv6 in brackets.
fn push_endpoint(out: &mut String, ep: &Endpoint) {
    let _ = match ep.0 {
        IpAddr::V4(a) => write!(out, "{a}:{}", ep.1),
        IpAddr::V6(a) => write!(out, "[{a}]:{}", ep.1),
    };
}

/// `bytes` as a JSON string: UTF-8 as is (escaped where JSON requires),
/// every byte of invalid UTF-8 as the six characters `\\xHH`.
pub fn push_json_bytes(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |b: u8| {
        [
            HEX[usize::from(b >> 4)] as char,
            HEX[usize::from(b & 15)] as char,
        ]
    };
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        // Runs that need no escape are copied whole; every byte that needs
        // one is ASCII, so the runs end on character boundaries.
        let mut start = 0;
        for (i, &b) in valid.as_bytes().iter().enumerate() {
            if b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f {
                continue;
            }
            out.push_str(&valid[start..i]);
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                _ => {
                    out.push_str("\\u00");
                    out.extend(hex(b));
                }
            }
            start = i + 1;
        }
        out.push_str(&valid[start..]);
        for &b in chunk.invalid() {
            out.push_str("\\\\x");
            out.extend(hex(b));
        }
    }
    out.push('"');
}

#[cfg(test)]
mod test {
    use super::*;

    fn json(bytes: &[u8]) -> String {
        let mut s = String::new();
        push_json_bytes(&mut s, bytes);
        s
    }

    #[test]
    fn text_is_json_with_invalid_utf8_escaped() {
        assert_eq!(json(b"a\"b\\c\r\n"), r#""a\"b\\c\r\n""#);
        assert_eq!(json("é".as_bytes()), "\"é\"");
        assert_eq!(json(b"x\xffy\x01"), r#""x\\xffy\u0001""#);
        // A character cut by --max-text is escaped byte by byte.
        assert_eq!(json(&"é".as_bytes()[..1]), r#""\\xc3""#);
    }

    #[test]
    fn every_compiled_protocol_has_a_shape() {
        for (name, _) in aa_grammars::SOURCES {
            let p = Protocol::compiled(name).expect(name);
            let schema = p.parser().schema();
            assert_eq!(p.shape.repeated.len(), schema.records.len(), "{name}");
        }
        let http = Protocol::compiled("http_response").unwrap();
        let kind = http
            .shape
            .schema
            .records
            .iter()
            .position(|r| r.name == "response")
            .unwrap();
        let headers = http.shape.schema.records[kind]
            .fields
            .iter()
            .position(|f| *f == "headers")
            .unwrap();
        assert!(http.shape.repeated[kind][headers]);
        assert!(!http.shape.repeated[kind][0]);
    }
}
