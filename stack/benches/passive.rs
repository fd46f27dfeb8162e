//! The passive path, frame by frame, against the usual copying way.
//!
//! A synthetic capture (`aa_stack::synth`, deterministic) is generated once and
//! loaded once into a `PacketPool`; each criterion iteration replays all of it.
//! Per frame, every variant runs the same `Decoder::decode` (checksums `auto`,
//! what `aa inspect` does by default; `AA_CHECKSUM=off|on|auto` changes it) and
//! a flow lookup, in bursts of 32 frames with the data of the frame
//! `PREFETCH_AHEAD` (4) further on in the burst prefetched (as
//! `Passive::frames`, what `aa inspect` calls), so that only reassembly and
//! parsing differ:
//!
//! - `aa`: `Passive::frames` (decode and `Passive::segment`) — flow table, the zero-copy stream of the
//!   segment's direction, the compiled parser (`aa-grammars`) on whatever became
//!   in order — and a sink that reads every record, sums the lengths of all its
//!   fields, reads the first byte of its first field, and frees it.
//! - `copying_*` (the baseline: an application on a copying stack): an
//!   `HashMap` keyed by the same `FlowKey` with the same seeded foldhash
//!   `Passive`'s flow table uses,
//!   per direction a `Vec<u8>` the in-order payloads are appended to (the
//!   `recv` copy; the capture is in order, a payload whose sequence number is
//!   not the next one is counted and dropped), then
//!   - `copying_httparse`: `httparse::Request::parse` (client to server) or
//!     `httparse::Response::parse` (server to client) from the start of the
//!     current message, again from the start on `Partial` once the next
//!     segment is in; every header read (name and value length, first byte of
//!     the value), Content-Length found among them, the body skipped by it.
//!     Consumed bytes are dropped after each segment (a clear, or a
//!     `copy_within` of a partial head).
//!   - `copying_csv_core`: one `csv_core::Reader` per direction over the
//!     appended bytes, fields copied into its output buffer (what csv-core
//!     does); per record the field count and bytes, and its first byte.
//!
//! Scenarios (group names; `Throughput::Bytes` = TCP payload bytes of the
//! capture, both directions):
//!
//! - `passive_http_2000`: 16 interleaved HTTP/1.1 keep-alive connections to
//!   port 80, 250 GETs each, every response a 200 with a 2000-byte
//!   Content-Length body (`synth::http_fixed_bodies`): `http_request` for
//!   client to server, `http_response` for server to client. Target: 20 Gbit/s
//!   per core.
//! - `passive_csv_8`: 16 interleaved connections to port 9000, client to
//!   server only, rows of 10 fields of 8 bytes (`synth::csv_fixed_fields`):
//!   `csv` compiled from `csv.aag` (`aa`), the runtime's hand-written
//!   `aa_runtime::csv::CsvParser` (`aa_handwritten`), and the copying
//!   baseline. Target: 10 Gbit/s per core.
//!
//! The frames are pool packets built once and held by the replay (what a
//! NIC's receive ring hands over); `Passive::segment` takes a clone of each
//! (a reference count), the baseline reads it; the copy into the pool is not
//! timed. HTTP: 16,096 frames (12,000 with data), 9.8 MB of payload; CSV:
//! 12,176 frames (8,048 with data), 11.6 MB: a few ms per pass. Before measuring, every variant is checked against the
//! others (messages, body bytes, rows, field bytes) and the pool is checked
//! to hold exactly the replay's packets again after one pass (nothing is
//! kept by a finished `Passive`). After the criterion groups, a one-line
//! summary per scenario gives Gbit/s of payload, millions of frames per
//! second, and aa's throughput over the baseline's (above 1: aa is faster),
//! from the medians of 15 extra passes of each.
//!
//! Run: `cargo bench -p aa-stack --bench passive`.

#[path = "support/captures.rs"]
mod captures;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/http.rs"]
mod support_http;
use captures::{csv_capture, http_capture, CsvOn9000};
use measure::{measuring, median_secs};
use std::hint::black_box;
use std::time::Duration;
use support_http::HttpOn80;

use aa_grammars::csv::CsvParser as GenCsvParser;
use aa_runtime::csv::CsvParser as HandCsvParser;
use aa_runtime::{AaStream, Packet, PacketPool, ParseError, Parser, PoolPacket};
use aa_stack::flow::FlowKey;
use aa_stack::io::{Rx, RxMeta};
use aa_stack::passive::{DirInfo, Parsers, Passive, PassiveConfig, Sink, PREFETCH_AHEAD};
use aa_stack::synth::Capture;
use aa_stack::{ChecksumMode, Decoder, LinkType, Segment};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use foldhash::fast::RandomState;
use std::collections::HashMap;

/// Interleaved connections per capture.
const CONNS: usize = 16;
/// HTTP request/response pairs per connection.
const HTTP_MESSAGES: usize = 250;
/// Response body length.
const HTTP_BODY: usize = 2000;
/// CSV rows per connection, fields per row, bytes per field.
const CSV_ROWS: usize = 8000;
const CSV_FIELDS: usize = 10;
const CSV_FIELD_LEN: usize = 8;
/// Pool buffer size: a 1514-byte frame fits.
const BUF: usize = 2048;
/// Frames per receive burst (a DPDK-sized one).
const BURST: usize = 32;

fn checksum_mode() -> ChecksumMode {
    match std::env::var("AA_CHECKSUM").as_deref() {
        Ok("off") => ChecksumMode::Off,
        Ok("on") => ChecksumMode::On,
        Ok("auto") | Err(_) => ChecksumMode::Auto,
        Ok(other) => panic!("AA_CHECKSUM={other}: expected off, on or auto"),
    }
}

// ---------------------------------------------------------------------------
// The capture, in a pool.

/// A capture loaded into a pool, each frame a packet held by this replay.
struct Replay {
    pool: PacketPool,
    /// As a receive loop holds them: packet and metadata.
    frames: Vec<Rx<PoolPacket>>,
    payload_bytes: u64,
}

impl Replay {
    fn new(capture: &Capture) -> Replay {
        let pool = PacketPool::new(capture.frames.len() as u32, BUF);
        let mut payload_bytes = 0;
        let frames = capture
            .frames
            .iter()
            .map(|(ts, f)| {
                let seg = aa_stack::parse(f, LinkType::Ethernet, false).expect("a TCP frame");
                payload_bytes += u64::from(seg.payload_len);
                Rx {
                    packet: pool.packet_from(f).expect("pool sized for the capture"),
                    meta: RxMeta {
                        ts: *ts,
                        link: LinkType::Ethernet,
                        wire_len: f.len() as u32,
                        iface: 0,
                        checksum: aa_stack::io::RxChecksum::Unknown,
                    },
                }
            })
            .collect();
        Replay {
            pool,
            frames,
            payload_bytes,
        }
    }

    /// Every packet is held by this replay alone: nothing else kept one.
    fn assert_only_replay_holds_packets(&self) {
        assert_eq!(
            self.pool.available() as usize + self.frames.len(),
            self.pool.capacity() as usize,
            "packets still held after a pass"
        );
    }
}

// ---------------------------------------------------------------------------
// What both sides count.

/// What an application saw, per direction (client to server, then server to
/// client). `heads` are HTTP message heads or CSV rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    heads: [u64; 2],
    body_bytes: [u64; 2],
}

/// The `aa` sink: reads and frees every record.
#[derive(Debug, Default)]
struct Tally {
    seen: Seen,
    fields: u64,
    field_bytes: u64,
    touch: u64,
    gaps: u64,
    errors: u64,
}

/// Record kind 0 is the message head (`request`, `response`) or the CSV row;
/// kind 1 is an HTTP `body`.
impl<P: Packet, R: Parser> Sink<P, R> for Tally {
    #[inline]
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, R>) {
        let side = dir.side as usize;
        let recs = stream.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            let mut bytes = 0;
            for f in r.fields() {
                self.fields += 1;
                bytes += f.len();
            }
            self.field_bytes += bytes;
            match r.kind() {
                0 => {
                    self.seen.heads[side] += 1;
                    if let Some(f) = r.field(0) {
                        self.touch += u64::from(f.byte_at(0).unwrap_or(0));
                    }
                }
                _ => self.seen.body_bytes[side] += bytes,
            }
        }
        stream.free_aa_records(n);
    }

    fn gap(&mut self, _dir: &DirInfo, _offset: u64, _len: u64) {
        self.gaps += 1;
    }

    fn error(&mut self, _dir: &DirInfo, _error: &ParseError) {
        self.errors += 1;
    }
}

// ---------------------------------------------------------------------------
// aa: parsers per direction.

/// One pass of the capture through `Passive`.
fn run_aa<F: Parsers>(replay: &Replay, parsers: F, mode: ChecksumMode) -> Tally {
    let mut passive: Passive<PoolPacket, F> = Passive::new(PassiveConfig::default(), parsers);
    let mut decoder = Decoder::new(mode);
    let mut tally = Tally::default();
    for burst in replay.frames.chunks(BURST) {
        passive.frames(&mut decoder, burst, &mut tally);
    }
    passive.finish(&mut tally);
    tally
}

// ---------------------------------------------------------------------------
// The copying baseline.

/// How a copying application parses one direction's bytes.
trait CopyParser: Default {
    /// New bytes were appended to `buf`: consume what can be, return how much.
    fn consume(&mut self, buf: &[u8], seen: &mut CopySeen, side: usize) -> usize;
}

/// What the copying application counts (besides [`Seen`]).
#[derive(Debug, Default)]
struct CopySeen {
    seen: Seen,
    fields: u64,
    field_bytes: u64,
    touch: u64,
    out_of_order: u64,
}

/// One direction of a connection on a copying stack.
#[derive(Default)]
struct CopyDir<C> {
    /// The next sequence number expected; `None` until the SYN is seen.
    next: Option<u32>,
    /// The application's receive buffer.
    buf: Vec<u8>,
    parser: C,
    fin: bool,
}

impl<C: CopyParser> CopyDir<C> {
    fn new() -> Self {
        CopyDir {
            next: None,
            buf: Vec::with_capacity(16 * 1024),
            parser: C::default(),
            fin: false,
        }
    }

    #[inline]
    fn data(&mut self, seg: &Segment, frame: &[u8], seen: &mut CopySeen, side: usize) {
        let seq = seg.seq.0.wrapping_add(u32::from(seg.flags.syn()));
        let Some(next) = self.next else {
            seen.out_of_order += 1;
            return;
        };
        if seq != next {
            seen.out_of_order += 1;
            return;
        }
        self.next = Some(next.wrapping_add(seg.payload_len));
        // `recv`: the copy into the application's buffer.
        self.buf.extend_from_slice(seg.payload(frame));
        let used = self.parser.consume(&self.buf, seen, side);
        // Drop what was consumed.
        if used == self.buf.len() {
            self.buf.clear();
        } else if used > 0 {
            self.buf.copy_within(used.., 0);
            self.buf.truncate(self.buf.len() - used);
        }
    }
}

struct CopyConn<C> {
    client_is_lo: bool,
    dirs: [CopyDir<C>; 2],
}

/// One pass of the capture through the copying application.
fn run_copying<C: CopyParser>(replay: &Replay, mode: ChecksumMode) -> CopySeen {
    let mut flows: HashMap<FlowKey, CopyConn<C>, RandomState> = HashMap::default();
    let mut decoder = Decoder::new(mode);
    let mut seen = CopySeen::default();
    for (k, rx) in replay.frames.iter().enumerate() {
        // The same bursts and prefetch as `Passive::frames`, so that only
        // reassembly and parsing differ.
        let (burst, at) = (k / BURST * BURST, k % BURST);
        let end = (burst + BURST).min(replay.frames.len());
        if at == 0 {
            for rx in &replay.frames[burst..(burst + PREFETCH_AHEAD).min(end)] {
                aa_runtime::prefetch(rx.packet.data());
            }
        }
        if k + PREFETCH_AHEAD < end {
            aa_runtime::prefetch(replay.frames[k + PREFETCH_AHEAD].packet.data());
        }
        let frame = rx.packet.data();
        let Ok(seg) = decoder.decode(frame, LinkType::Ethernet) else {
            continue;
        };
        let (key, src_is_lo) = FlowKey::of(seg.src, seg.dst);
        let flags = seg.flags;
        if flags.syn() && !flags.ack() {
            let mut conn = CopyConn {
                client_is_lo: src_is_lo,
                dirs: [CopyDir::new(), CopyDir::new()],
            };
            conn.dirs[0].next = Some(seg.seq.0.wrapping_add(1));
            flows.insert(key, conn);
            continue;
        }
        let Some(conn) = flows.get_mut(&key) else {
            continue;
        };
        if flags.rst() {
            flows.remove(&key);
            continue;
        }
        let side = usize::from(src_is_lo != conn.client_is_lo);
        let d = &mut conn.dirs[side];
        if flags.syn() {
            d.next = Some(seg.seq.0.wrapping_add(1));
        }
        if seg.payload_len > 0 {
            d.data(&seg, frame, &mut seen, side);
        }
        if flags.fin() {
            d.fin = true;
            if conn.dirs.iter().all(|d| d.fin) {
                flows.remove(&key);
            }
        }
    }
    seen
}

/// httparse, re-run from the message start on `Partial`; bodies skipped by
/// Content-Length.
#[derive(Default)]
struct HttparseDir {
    /// Body bytes still to come; `None` while waiting for a complete head.
    body_left: Option<u64>,
}

/// Reads every header of a parsed head; returns its Content-Length.
#[inline]
fn read_headers(headers: &[httparse::Header<'_>], seen: &mut CopySeen) -> u64 {
    let mut content_length = 0;
    for h in headers {
        seen.fields += 1;
        seen.field_bytes += (h.name.len() + h.value.len()) as u64;
        seen.touch += u64::from(h.value.first().copied().unwrap_or(0));
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("a valid Content-Length");
        }
    }
    content_length
}

impl CopyParser for HttparseDir {
    #[inline]
    fn consume(&mut self, buf: &[u8], seen: &mut CopySeen, side: usize) -> usize {
        let mut pos = 0;
        loop {
            match self.body_left {
                None => {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let (status, cl) = if side == 0 {
                        let mut req = httparse::Request::new(&mut headers);
                        let status = req.parse(&buf[pos..]).expect("a valid request");
                        if status.is_partial() {
                            return pos;
                        }
                        seen.touch += u64::from(req.method.map_or(0, |m| m.as_bytes()[0]));
                        (status, read_headers(req.headers, seen))
                    } else {
                        let mut resp = httparse::Response::new(&mut headers);
                        let status = resp.parse(&buf[pos..]).expect("a valid response");
                        if status.is_partial() {
                            return pos;
                        }
                        seen.touch += u64::from(resp.code.unwrap_or(0));
                        (status, read_headers(resp.headers, seen))
                    };
                    let httparse::Status::Complete(head_len) = status else {
                        unreachable!("partial returned above")
                    };
                    seen.seen.heads[side] += 1;
                    pos += head_len;
                    if cl > 0 {
                        self.body_left = Some(cl);
                    }
                }
                Some(left) => {
                    let take = left.min((buf.len() - pos) as u64);
                    seen.seen.body_bytes[side] += take;
                    pos += take as usize;
                    if take == left {
                        self.body_left = None;
                    } else {
                        self.body_left = Some(left - take);
                        return pos;
                    }
                }
            }
            if pos == buf.len() {
                return pos;
            }
        }
    }
}

/// csv-core over the appended bytes.
struct CsvCoreDir {
    reader: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    out_pos: usize,
    ends_pos: usize,
}

impl Default for CsvCoreDir {
    fn default() -> Self {
        CsvCoreDir {
            reader: csv_core::Reader::new(),
            out: vec![0; 4096],
            ends: vec![0; 256],
            out_pos: 0,
            ends_pos: 0,
        }
    }
}

impl CopyParser for CsvCoreDir {
    #[inline]
    fn consume(&mut self, buf: &[u8], seen: &mut CopySeen, side: usize) -> usize {
        let mut pos = 0;
        loop {
            let (res, nin, nout, nend) = self.reader.read_record(
                &buf[pos..],
                &mut self.out[self.out_pos..],
                &mut self.ends[self.ends_pos..],
            );
            pos += nin;
            self.out_pos += nout;
            self.ends_pos += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => return pos,
                csv_core::ReadRecordResult::Record => {
                    seen.seen.heads[side] += 1;
                    seen.fields += self.ends_pos as u64;
                    seen.field_bytes += self.out_pos as u64;
                    seen.touch += u64::from(self.out[0]);
                    self.out_pos = 0;
                    self.ends_pos = 0;
                }
                csv_core::ReadRecordResult::End => return pos,
                csv_core::ReadRecordResult::OutputFull
                | csv_core::ReadRecordResult::OutputEndsFull => {
                    panic!("csv-core output buffers too small")
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checks, criterion groups, summary.

fn check_aa(name: &str, t: &Tally, expect: Seen) {
    assert_eq!(t.seen, expect, "{name}: records");
    assert_eq!((t.gaps, t.errors), (0, 0), "{name}: gaps or errors");
}

fn check_copying(name: &str, s: &CopySeen, expect: Seen) {
    assert_eq!(s.seen, expect, "{name}: records");
    assert_eq!(s.out_of_order, 0, "{name}: out of order");
}

/// Whether the command line's filter (criterion's positional argument, taken
/// here as a plain substring unless it looks like a regular expression) can
/// select one of `benches` of `group`, so that a filtered run does not build
/// the other scenarios' captures.
fn selected(group: &str, benches: &[&str]) -> bool {
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "--output-format",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--format",
        "--logfile",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 1;
        } else if !a.starts_with('-') {
            filter = Some(a.as_str());
        }
        i += 1;
    }
    filter.is_none_or(|f| {
        // A regular expression is not second-guessed.
        f.contains(|c| "^$.*+?()[]{}|\\".contains(c))
            || benches.iter().any(|b| format!("{group}/{b}").contains(f))
    })
}

fn rate(name: &str, replay: &Replay, secs: f64) -> String {
    format!(
        "{name} {:.2} Gbit/s {:.3} Mpps",
        replay.payload_bytes as f64 * 8.0 / secs / 1e9,
        replay.frames.len() as f64 / secs / 1e6
    )
}

fn describe(name: &str, replay: &Replay, capture: &Capture, mode: ChecksumMode) {
    let data_frames = capture
        .frames
        .iter()
        .filter(|(_, f)| {
            aa_stack::parse(f, LinkType::Ethernet, false).is_ok_and(|s| s.payload_len > 0)
        })
        .count();
    eprintln!(
        "{name}: {} connections, {} frames ({} with data), {} payload bytes, \
         {:.1} MB of frames, checksums {mode:?}",
        capture.flows.len(),
        replay.frames.len(),
        data_frames,
        replay.payload_bytes,
        capture.frames.iter().map(|(_, f)| f.len()).sum::<usize>() as f64 / 1e6,
    );
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    replay: &Replay,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(replay.payload_bytes));
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g
}

fn passive_http(c: &mut Criterion) {
    if !selected("passive_http_2000", &["aa", "copying_httparse"]) {
        return;
    }
    let mode = checksum_mode();
    let capture = http_capture(CONNS, HTTP_MESSAGES, HTTP_BODY);
    let replay = Replay::new(&capture);
    describe("passive_http_2000", &replay, &capture, mode);
    drop(capture);
    let expect = Seen {
        heads: [(CONNS * HTTP_MESSAGES) as u64; 2],
        body_bytes: [0, (CONNS * HTTP_MESSAGES * HTTP_BODY) as u64],
    };
    let t = run_aa(&replay, HttpOn80, mode);
    check_aa("aa", &t, expect);
    replay.assert_only_replay_holds_packets();
    let s = run_copying::<HttparseDir>(&replay, mode);
    check_copying("copying_httparse", &s, expect);

    let mut g = group(c, "passive_http_2000", &replay);
    g.bench_function("aa", |b| {
        b.iter(|| black_box(run_aa(&replay, HttpOn80, mode).field_bytes))
    });
    g.bench_function("copying_httparse", |b| {
        b.iter(|| black_box(run_copying::<HttparseDir>(&replay, mode).field_bytes))
    });
    g.finish();
    replay.assert_only_replay_holds_packets();

    if measuring() {
        let aa = median_secs(15, || {
            black_box(run_aa(&replay, HttpOn80, mode));
        });
        let copying = median_secs(15, || {
            black_box(run_copying::<HttparseDir>(&replay, mode));
        });
        eprintln!(
            "summary passive_http_2000: {} | {} | throughput aa/copying {:.2} | target 20 Gbit/s",
            rate("aa", &replay, aa),
            rate("copying_httparse", &replay, copying),
            copying / aa
        );
    }
    let Replay { pool, frames, .. } = replay;
    drop(frames);
    assert!(pool.is_full(), "every packet is back in the pool");
}

fn passive_csv(c: &mut Criterion) {
    if !selected(
        "passive_csv_8",
        &["aa", "aa_handwritten", "copying_csv_core"],
    ) {
        return;
    }
    let mode = checksum_mode();
    let capture = csv_capture(CONNS, CSV_ROWS, CSV_FIELDS, CSV_FIELD_LEN);
    let replay = Replay::new(&capture);
    describe("passive_csv_8", &replay, &capture, mode);
    drop(capture);
    let expect = Seen {
        heads: [(CONNS * CSV_ROWS) as u64, 0],
        body_bytes: [0; 2],
    };
    let generated = || CsvOn9000(GenCsvParser::new);
    let handwritten = || CsvOn9000(HandCsvParser::default);
    let t = run_aa(&replay, generated(), mode);
    check_aa("aa", &t, expect);
    let field_bytes = (CONNS * CSV_ROWS * CSV_FIELDS * CSV_FIELD_LEN) as u64;
    assert_eq!(t.field_bytes, field_bytes, "aa: field bytes");
    replay.assert_only_replay_holds_packets();
    let h = run_aa(&replay, handwritten(), mode);
    check_aa("aa_handwritten", &h, expect);
    assert_eq!(h.field_bytes, field_bytes, "aa_handwritten: field bytes");
    replay.assert_only_replay_holds_packets();
    let s = run_copying::<CsvCoreDir>(&replay, mode);
    check_copying("copying_csv_core", &s, expect);
    assert_eq!(s.field_bytes, field_bytes, "copying_csv_core: field bytes");
    assert_eq!((t.fields, h.fields), (s.fields, s.fields), "field counts");

    let mut g = group(c, "passive_csv_8", &replay);
    g.bench_function("aa", |b| {
        b.iter(|| black_box(run_aa(&replay, generated(), mode).field_bytes))
    });
    g.bench_function("aa_handwritten", |b| {
        b.iter(|| black_box(run_aa(&replay, handwritten(), mode).field_bytes))
    });
    g.bench_function("copying_csv_core", |b| {
        b.iter(|| black_box(run_copying::<CsvCoreDir>(&replay, mode).field_bytes))
    });
    g.finish();
    replay.assert_only_replay_holds_packets();

    if measuring() {
        let aa = median_secs(15, || {
            black_box(run_aa(&replay, generated(), mode));
        });
        let hand = median_secs(15, || {
            black_box(run_aa(&replay, handwritten(), mode));
        });
        let copying = median_secs(15, || {
            black_box(run_copying::<CsvCoreDir>(&replay, mode));
        });
        eprintln!(
            "summary passive_csv_8: {} | {} | {} | throughput aa/copying {:.2} | target 10 Gbit/s",
            rate("aa", &replay, aa),
            rate("aa_handwritten", &replay, hand),
            rate("copying_csv_core", &replay, copying),
            copying / aa
        );
    }
    let Replay { pool, frames, .. } = replay;
    drop(frames);
    assert!(pool.is_full(), "every packet is back in the pool");
}

criterion_group!(benches, passive_http, passive_csv);
criterion_main!(benches);
