//! HTTP/1.1 responses through the application-aware stream, against `httparse`
//! on a copying stack.
//!
//! Input (deterministic, built once, held in memory): a keep-alive stream of
//! `MESSAGES` responses, each with exactly 7 headers (Server, Date,
//! Content-Type, Content-Length, Cache-Control, ETag, Connection) and a body of
//! 0 to 2000 bytes (xorshift), cut into 1448-byte payloads behind a 66-byte
//! header in a `PacketPool`. Group `http_1448`, `Throughput::Bytes(stream
//! length)`, and the same six again as group `http_1448_msgs`,
//! `Throughput::Elements(MESSAGES)` (messages per second). One criterion
//! iteration takes the whole stream:
//!
//! - `aa_generated`: `AaStream<PoolPacket, http_response::HttpResponseParser>`
//!   (generated from `http_response.aag`). Per packet: clone the handle,
//!   `insert` it, `read_aa_records`, and for each `response` take its status
//!   code as the grammar parsed it (the record's `code` variable, as httparse
//!   hands over its own) and touch every `headers` field (its length and last
//!   byte), for each
//!   `body` add its `data` length; then `free_aa_records`. The stream is made in
//!   the untimed setup of `iter_batched` and dropped untimed (as in `csv.rs`).
//! - `aa_interpreted`: the same with `aa_dsl::interp::Interp` running
//!   `http_response.aag` (a grammar loaded at run time; its records have the
//!   generated parser's kinds and tags, so the same typed views read them).
//! - `httparse_reparse` (the baseline: an application on a copying stack, where
//!   `recv` copies each segment into its buffer): append each payload to a
//!   `Vec<u8>`; run `httparse::Response::parse` from the start of the current
//!   message; on `Partial` wait for the next segment and parse again from the
//!   message start; on `Complete` read the status and every header (name and
//!   value length, and the value's last byte, as the aa path), find
//!   Content-Length among them, then count the body bytes as they arrive (they
//!   may span segments). The buffer keeps an offset of what has been consumed
//!   and, after each segment, drops the consumed prefix: a clear when all is
//!   consumed (always the case inside a body), else a `copy_within` of the
//!   unparsed tail (a partial head, a few hundred bytes) to the front — what
//!   `BytesMut::advance` plus `reserve` do in hyper-like servers.
//! - `httparse_whole` (the upper reference): the same parse on the stream held
//!   whole in one buffer, so every message is contiguous: parse each head once,
//!   read Content-Length, skip the body.
//!
//! - `aa_known_fields` (a floor, not a competitor): the `aa_generated` loop
//!   with a parser that is told in advance where every field lies
//!   (`support/known_fields.rs`) and emits the same records: what aa's record
//!   path costs without any parsing.
//! - `lines_whole` (a floor, not a competitor): on the same whole buffer,
//!   header lines found with `memchr` and kept as offsets, the status and
//!   Content-Length read from their bytes, nothing validated (see
//!   `run_lines`): what is left of a head parser once everything a real one
//!   does beyond finding the lines is taken away.
//!
//! Each iteration asserts that it saw every message and every body byte. Before
//! measuring, the six are checked to agree on status codes, header counts,
//! header bytes and body bytes.

use aa_dsl::interp::Grammar;
use aa_grammars::http_response::{HttpResponseParser, HttpResponseRecord};
use aa_runtime::{AaConfig, AaState, AaStream, Insert, Packet, Parser, PoolPacket};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[path = "support/http_doc.rs"]
mod http_doc;
use http_doc::{document, HEADERS, ISN, MESSAGES};
#[path = "support/known_fields.rs"]
mod known_fields;
use known_fields::KnownFields;
#[path = "../../aa-runtime/benches/support/csv_doc.rs"]
#[allow(dead_code)] // the packets of a document, not its CSV
mod csv_doc;
use csv_doc::{packets, HDR};

/// What an application saw: messages, the sum of their status codes, headers,
/// header bytes (name + value), and body bytes; `touch` folds in one byte of
/// every header so the reads stay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    messages: u64,
    status_sum: u64,
    headers: u64,
    header_bytes: u64,
    body_bytes: u64,
    touch: u64,
}

impl Seen {
    fn check(&self, body_total: u64) {
        assert_eq!(self.messages, MESSAGES as u64, "every message seen");
        assert_eq!(self.body_bytes, body_total, "every body byte seen");
    }
}

/// `aa_generated`: feeds every packet, reading and freeing records as they
/// come. Returns the stream (ended) so that dropping it is not timed.
fn run_aa<R: Parser>(
    mut aa: AaStream<PoolPacket, R>,
    pkts: &[PoolPacket],
    seen: &mut Seen,
) -> AaStream<PoolPacket, R> {
    let drain = |aa: &mut AaStream<PoolPacket, R>, seen: &mut Seen| {
        let recs = aa.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            match HttpResponseRecord::from_record(r) {
                Some(HttpResponseRecord::Response(resp)) => {
                    // The status as the grammar parsed it (`code`), as
                    // httparse hands over its own.
                    let code = resp.code().expect("a status code");
                    seen.messages += 1;
                    seen.status_sum += code;
                    for h in resp.headers() {
                        // "Name: value": the bytes besides ':' and the space
                        // after it (every header here has exactly one).
                        seen.headers += 1;
                        seen.header_bytes += h.len() - 2;
                        seen.touch += h.byte_at(h.len() - 1).unwrap_or(0) as u64;
                    }
                }
                Some(HttpResponseRecord::Body(b)) => {
                    seen.body_bytes += b.data().map_or(0, |d| d.len());
                }
                _ => unreachable!("no chunked coding in this stream"),
            }
        }
        aa.free_aa_records(n);
    };
    let mut seq = ISN;
    for p in pkts {
        let len = p.data().len();
        let r = aa.insert(seq, p.clone(), HDR..len);
        debug_assert!(matches!(r, Insert::InOrder { .. }));
        seq = seq.wrapping_add((len - HDR) as u32);
        drain(&mut aa, seen);
    }
    aa.finish();
    drain(&mut aa, seen);
    aa
}

/// Reads the head httparse parsed: status, every header, Content-Length.
#[inline]
fn read_head(resp: &httparse::Response<'_, '_>, seen: &mut Seen) -> u64 {
    seen.messages += 1;
    seen.status_sum += resp.code.expect("a status code") as u64;
    let mut content_length = None;
    for h in resp.headers.iter() {
        seen.headers += 1;
        seen.header_bytes += (h.name.len() + h.value.len()) as u64;
        seen.touch += h.value.last().copied().unwrap_or(0) as u64;
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        }
    }
    content_length.expect("a Content-Length")
}

/// `httparse_reparse`: the application on a copying stack (see the module
/// comment for the buffer policy).
fn run_reparse(pkts: &[PoolPacket], seen: &mut Seen) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    // Start of the unconsumed bytes in `buf`: the current message's head, or
    // the next body bytes.
    let mut pos = 0usize;
    // Body bytes still to come; `None` while waiting for a complete head.
    let mut body_left: Option<u64> = None;
    for p in pkts {
        // `recv`: the copy into the application's buffer.
        buf.extend_from_slice(&p.data()[HDR..]);
        loop {
            match body_left {
                None => {
                    let mut headers = [httparse::EMPTY_HEADER; 16];
                    let mut resp = httparse::Response::new(&mut headers);
                    match resp.parse(&buf[pos..]).expect("a valid response") {
                        // Wait for the next segment; parse again from `pos`.
                        httparse::Status::Partial => break,
                        httparse::Status::Complete(head_len) => {
                            let cl = read_head(&resp, seen);
                            pos += head_len;
                            body_left = Some(cl);
                        }
                    }
                }
                Some(left) => {
                    let take = left.min((buf.len() - pos) as u64);
                    seen.body_bytes += take;
                    pos += take as usize;
                    if take == left {
                        body_left = None; // the message is done
                    } else {
                        body_left = Some(left - take);
                        break; // the body goes on in the next segment
                    }
                }
            }
        }
        // Drop what was consumed.
        if pos == buf.len() {
            buf.clear();
        } else if pos > 0 {
            buf.copy_within(pos.., 0);
            buf.truncate(buf.len() - pos);
        }
        pos = 0;
    }
    assert!(
        buf.is_empty() && body_left.is_none(),
        "the stream ends clean"
    );
}

/// `httparse_whole`: every message contiguous in one buffer, no segmentation.
fn run_whole(doc: &[u8], seen: &mut Seen) {
    let mut pos = 0usize;
    while pos < doc.len() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&doc[pos..]).expect("a valid response") {
            httparse::Status::Complete(head_len) => {
                let cl = read_head(&resp, seen);
                seen.body_bytes += cl;
                pos += head_len + cl as usize;
            }
            httparse::Status::Partial => unreachable!("the whole stream is here"),
        }
    }
}

/// `lines_whole`, a floor rather than a competitor: the least a parser can
/// do to hand over these heads, on the whole stream held in one buffer (no
/// segments, no records, nothing kept between messages, no byte checked but
/// the ones it looks for). Per message: the status from the three digits
/// after the first space, each header line found with `memchr` for `\r` and
/// kept as `(start, end)` in an array on the stack, Content-Length picked by
/// its first bytes; then the same reads as the other paths, and the body
/// skipped. Valid input only: it stands for what the target leaves to the
/// rest of aa's work (packets, resumable state, records, pins, reading and
/// freeing), not for a parser anyone should ship.
fn run_lines(doc: &[u8], seen: &mut Seen) {
    let mut lines = [(0usize, 0usize); 16];
    let mut pos = 0usize;
    while pos < doc.len() {
        let d = &doc[pos..];
        let sp = memchr::memchr(b' ', d).expect("a status line");
        let code = d[sp + 1..sp + 4]
            .iter()
            .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
        let mut i = sp + memchr::memchr(b'\r', &d[sp..]).expect("a status line end") + 2;
        let (mut n, mut content_length) = (0, None);
        loop {
            let j = i + memchr::memchr(b'\r', &d[i..]).expect("a header line end");
            if j == i {
                i += 2;
                break;
            }
            lines[n] = (i, j);
            n += 1;
            let line = &d[i..j];
            if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
                content_length = std::str::from_utf8(&line[15..])
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            }
            i = j + 2;
        }
        seen.messages += 1;
        seen.status_sum += code;
        for &(start, end) in &lines[..n] {
            seen.headers += 1;
            seen.header_bytes += (end - start - 2) as u64;
            seen.touch += u64::from(d[end - 1]);
        }
        let cl = content_length.expect("a Content-Length");
        seen.body_bytes += cl;
        pos += i + cl as usize;
    }
}

/// One of the `aa_*` benches: a stream with the parser `make` gives, made
/// in the untimed setup, fed the whole stream, dropped untimed.
fn bench_aa<R: Parser>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pkts: &[PoolPacket],
    body_total: u64,
    make: impl Fn() -> R,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || AaStream::new(AaConfig::default(), ISN, make()),
            |aa| {
                let mut seen = Seen::default();
                let aa = run_aa(aa, pkts, &mut seen);
                seen.check(body_total);
                black_box(seen);
                aa
            },
            BatchSize::PerIteration,
        )
    });
}

/// What every bench of a group runs on.
#[derive(Clone, Copy)]
struct Input<'a> {
    doc: &'a [u8],
    body_total: u64,
    pkts: &'a [PoolPacket],
    grammar: &'a Arc<Grammar>,
    heads: &'a Arc<[known_fields::Head]>,
}

fn bench_all(c: &mut Criterion, group: &str, throughput: Throughput, input: Input<'_>) {
    let Input {
        doc,
        body_total,
        pkts,
        grammar,
        heads,
    } = input;
    let mut g = c.benchmark_group(group);
    g.throughput(throughput);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(50);
    bench_aa(
        &mut g,
        "aa_generated",
        pkts,
        body_total,
        HttpResponseParser::new,
    );
    bench_aa(&mut g, "aa_interpreted", pkts, body_total, || {
        grammar.parser()
    });
    bench_aa(&mut g, "aa_known_fields", pkts, body_total, || {
        KnownFields::new(heads.clone(), doc.len())
    });
    g.bench_function("httparse_reparse", |b| {
        b.iter(|| {
            let mut seen = Seen::default();
            run_reparse(black_box(pkts), &mut seen);
            seen.check(body_total);
            black_box(seen)
        })
    });
    g.bench_function("httparse_whole", |b| {
        b.iter(|| {
            let mut seen = Seen::default();
            run_whole(black_box(doc), &mut seen);
            seen.check(body_total);
            black_box(seen)
        })
    });
    g.bench_function("lines_whole", |b| {
        b.iter(|| {
            let mut seen = Seen::default();
            run_lines(black_box(doc), &mut seen);
            seen.check(body_total);
            black_box(seen)
        })
    });
    g.finish();
}

fn http_1448(c: &mut Criterion) {
    let (doc, body_total) = document();
    let (pool, pkts) = packets(&doc);

    // The six paths see the same thing.
    let mut aa_seen = Seen::default();
    let aa = run_aa(
        AaStream::new(AaConfig::default(), ISN, HttpResponseParser::new()),
        &pkts,
        &mut aa_seen,
    );
    assert_eq!(aa.state(), AaState::Ended, "{:?}", aa.error());
    assert_eq!(aa.stream().held_bytes(), 0, "every fragment released");
    drop(aa);
    let grammar = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/http_response.aag"))
            .expect("http_response.aag loads"),
    );
    let mut interp_seen = Seen::default();
    let aa = run_aa(
        AaStream::new(AaConfig::default(), ISN, grammar.parser()),
        &pkts,
        &mut interp_seen,
    );
    assert_eq!(aa.state(), AaState::Ended, "{:?}", aa.error());
    drop(aa);
    let heads: Arc<[known_fields::Head]> = known_fields::heads(&doc).into();
    let mut known_seen = Seen::default();
    let aa = run_aa(
        AaStream::new(
            AaConfig::default(),
            ISN,
            KnownFields::new(heads.clone(), doc.len()),
        ),
        &pkts,
        &mut known_seen,
    );
    assert_eq!(aa.state(), AaState::Ended, "{:?}", aa.error());
    drop(aa);
    let mut reparse_seen = Seen::default();
    run_reparse(&pkts, &mut reparse_seen);
    let mut whole_seen = Seen::default();
    run_whole(&doc, &mut whole_seen);
    let mut lines_seen = Seen::default();
    run_lines(&doc, &mut lines_seen);
    aa_seen.check(body_total);
    assert_eq!(
        aa_seen.headers,
        (HEADERS * MESSAGES) as u64,
        "7 headers each"
    );
    assert_eq!(aa_seen, interp_seen, "generated and interpreted differ");
    assert_eq!(aa_seen, known_seen, "generated and known fields differ");
    assert_eq!(aa_seen, reparse_seen, "aa and httparse (segmented) differ");
    assert_eq!(aa_seen, whole_seen, "aa and httparse (whole) differ");
    assert_eq!(aa_seen, lines_seen, "aa and the line floor differ");
    eprintln!(
        "http_1448: {} messages, {} bytes ({} of bodies) in {} packets",
        MESSAGES,
        doc.len(),
        body_total,
        pkts.len()
    );

    let input = Input {
        doc: &doc,
        body_total,
        pkts: &pkts,
        grammar: &grammar,
        heads: &heads,
    };
    let bytes = Throughput::Bytes(doc.len() as u64);
    bench_all(c, "http_1448", bytes, input);
    let messages = Throughput::Elements(MESSAGES as u64);
    bench_all(c, "http_1448_msgs", messages, input);

    drop(pkts);
    assert!(pool.is_full(), "every packet is back in the pool");
}

criterion_group!(benches, http_1448);
criterion_main!(benches);
