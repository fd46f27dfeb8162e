//! Bad input through the interpreter running the shipped grammars: every error
//! names its record, its field (where one applies) and its exact stream offset;
//! every record before the error is delivered; every packet goes back to its
//! pool once the records are freed and the stream dropped. Also gaps: HTTP
//! responses resynchronise at the next `HTTP/`, CSV after the next `\n`, and TLS
//! (no `sync`) fails the stream.
//!
//! Each case runs at several packet sizes (1 byte, a few bytes, one packet).

use aa_dsl::interp::{Grammar, Interp};
use aa_runtime::csv::{unquote, CsvParser};
use aa_runtime::*;
use std::ops::Range;
use std::sync::Arc;

fn grammar(name: &str) -> Arc<Grammar> {
    let path = format!("{}/../grammars/{name}.aag", env!("CARGO_MANIFEST_DIR"));
    Grammar::new(aa_dsl::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn interp(name: &str) -> Interp {
    grammar(name).parser()
}

/// A record as (name, [(field name, value)]).
type Rec = (&'static str, Vec<(&'static str, Vec<u8>)>);

#[derive(Debug)]
struct Out {
    recs: Vec<Rec>,
    err: Option<ParseError>,
    state: AaState,
    pool_full: bool,
    stats: AaStats,
}

impl Out {
    fn names(&self) -> Vec<&'static str> {
        self.recs.iter().map(|r| r.0).collect()
    }

    /// Values of field `field` of records `rec`, in order.
    fn values(&self, rec: &str, field: &str) -> Vec<Vec<u8>> {
        self.recs
            .iter()
            .filter(|r| r.0 == rec)
            .flat_map(|r| r.1.iter().filter(|f| f.0 == field).map(|f| f.1.clone()))
            .collect()
    }

    /// Per `head` record (`response`, `request`): its `field` and the bytes of
    /// the `body` records after it.
    fn messages(&self, head: &str, field: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (name, fields) in &self.recs {
            if *name == head {
                let v = fields.iter().find(|f| f.0 == field).unwrap().1.clone();
                out.push((v, Vec::new()));
            } else if *name == "body" {
                out.last_mut().unwrap().1.extend_from_slice(&fields[0].1);
            }
        }
        out
    }

    /// Asserts the stream failed with exactly `want`, displayed as `display`,
    /// and that every packet went back to the pool.
    fn assert_failed(&self, want: &ParseError, display: &str, ctx: &str) {
        assert_eq!(
            self.state,
            AaState::Failed,
            "{ctx}: state; records {:?}",
            self.names()
        );
        let e = self
            .err
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}: no error"));
        assert_eq!(e, want, "{ctx}");
        assert_eq!(e.to_string(), display, "{ctx}");
        assert!(self.pool_full, "{ctx}: packets leaked");
    }

    fn assert_clean(&self, ctx: &str) {
        assert_eq!(self.err, None, "{ctx}");
        assert_eq!(self.state, AaState::Ended, "{ctx}");
        assert!(self.pool_full, "{ctx}: packets leaked");
    }
}

fn take<R: Parser>(s: &mut AaStream<PoolPacket, R>, out: &mut Vec<Rec>) {
    let schema: &'static Schema = s.schema();
    let recs: Vec<Rec> = s
        .read_aa_records(usize::MAX)
        .map(|r| {
            let fields = r
                .fields()
                .map(|f| {
                    let mut v = Vec::new();
                    unquote(&f, b'"', &mut v);
                    (schema.field_name(r.kind(), f.tag()), v)
                })
                .collect();
            (r.name(), fields)
        })
        .collect();
    s.free_aa_records(recs.len());
    out.extend(recs);
}

fn pieces(r: Range<usize>, cut: usize) -> Vec<Range<usize>> {
    let mut v = Vec::new();
    let mut at = r.start;
    while at < r.end {
        let e = at.saturating_add(cut.max(1)).min(r.end);
        v.push(at..e);
        at = e;
    }
    v
}

/// First sequence number: close to wrapping, so offsets cross 2^32 in sequence
/// space.
const ISN: u32 = 0xFFFF_FF00;

/// Sends `input` in packets of `cut` bytes, except the bytes in `lost`, which
/// never come: with `ooo` the bytes after them are sent first (queued out of
/// order) and then the hole is skipped; otherwise the hole is skipped first.
/// Then the stream ends. Records are read and freed after every packet.
fn drive<R: Parser>(
    parser: R,
    input: &[u8],
    cut: usize,
    lost: Option<Range<usize>>,
    ooo: bool,
) -> Out {
    let (before, after, hole_end) = match &lost {
        Some(l) => (
            pieces(0..l.start, cut),
            pieces(l.end..input.len(), cut),
            l.end,
        ),
        None => (pieces(0..input.len(), cut), Vec::new(), input.len()),
    };
    let pool = PacketPool::new(
        (before.len() + after.len() + 1) as u32,
        cut.clamp(1, input.len().max(1)),
    );
    // Room for a record in progress over thousands of 1-byte packets.
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: 1 << 24,
            max_fragments: 1 << 20,
            max_ooo_bytes: 1 << 24,
            max_ooo_fragments: 1 << 16,
        },
        ..AaConfig::default()
    };
    let mut s = AaStream::new(cfg, ISN, parser);
    let mut recs = Vec::new();
    let send = |s: &mut AaStream<PoolPacket, R>, r: &Range<usize>| {
        let seq = ISN.wrapping_add(r.start as u32);
        s.insert(
            seq,
            pool.packet_from(&input[r.clone()]).unwrap(),
            0..r.len(),
        )
    };
    for r in &before {
        send(&mut s, r);
        take(&mut s, &mut recs);
    }
    if lost.is_some() {
        let skip = SeqNum(ISN.wrapping_add(hole_end as u32));
        if ooo {
            for r in &after {
                assert_eq!(send(&mut s, r), Insert::OutOfOrder);
            }
            s.skip_to(skip);
            take(&mut s, &mut recs);
        } else {
            s.skip_to(skip);
            for r in &after {
                send(&mut s, r);
                take(&mut s, &mut recs);
            }
        }
    }
    s.finish();
    take(&mut s, &mut recs);
    let (err, state, stats) = (s.error().cloned(), s.state(), s.stats());
    drop(s);
    Out {
        recs,
        err,
        state,
        pool_full: pool.is_full(),
        stats,
    }
}

/// Packet sizes every case runs at (`usize::MAX`: one packet).
const CUTS: [usize; 7] = [1, 2, 3, 5, 7, 64, usize::MAX];

/// A complete response before the bad one: its records must be delivered.
const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn err(
    offset: usize,
    record: &'static str,
    field: Option<&'static str>,
    kind: ErrorKind,
) -> ParseError {
    ParseError {
        offset: offset as u64,
        record,
        field,
        kind,
    }
}

/// Checks that the records before the error are the complete first response.
fn assert_first_response_delivered(out: &Out, ctx: &str) {
    assert_eq!(
        out.messages("response", "status"),
        vec![(b"200".to_vec(), b"hello".to_vec())],
        "{ctx}: {:?}",
        out.names()
    );
}

// ---------------------------------------------------------------------------
// Field limits

#[test]
fn header_line_longer_than_its_maximum() {
    let g = grammar("http_response");
    let head = b"HTTP/1.1 200 OK\r\nServer: x\r\n";
    for (len, fails) in [(8192usize, false), (8193, true), (9000, true)] {
        // `X: aaa…` is `len` bytes long.
        let line = [&b"X: "[..], &vec![b'a'; len - 3]].concat();
        let input = cat(&[OK_RESPONSE, head, &line, b"\r\n\r\n"]);
        let at = OK_RESPONSE.len() + head.len();
        for cut in CUTS.into_iter().chain([1000, 8191, 8192, 8193, 8194]) {
            let ctx = format!("line of {len} bytes, cut {cut}");
            let out = drive(g.parser(), &input, cut, None, false);
            if fails {
                assert_first_response_delivered(&out, &ctx);
                out.assert_failed(
                    &err(at, "response", Some("headers"), ErrorKind::FieldTooLong { max: 8192 }),
                    &format!("stream offset {at}: record `response`, field `headers`: field longer than 8192 bytes"),
                    &ctx,
                );
            } else {
                out.assert_clean(&ctx);
                assert_eq!(out.messages("response", "status").len(), 2, "{ctx}");
                // Content-Length of the first; Server and the long line.
                assert_eq!(out.values("response", "headers").len(), 3, "{ctx}");
                assert_eq!(out.values("response", "headers")[2], line, "{ctx}");
            }
        }
    }
}

#[test]
fn status_longer_than_its_maximum() {
    let input = cat(&[OK_RESPONSE, b"HTTP/1.1 2000 OK\r\n\r\n"]);
    let at = OK_RESPONSE.len() + 9;
    for cut in CUTS {
        let out = drive(interp("http_response"), &input, cut, None, false);
        assert_first_response_delivered(&out, &format!("cut {cut}"));
        out.assert_failed(
            &err(
                at,
                "response",
                Some("status"),
                ErrorKind::FieldTooLong { max: 3 },
            ),
            &format!(
                "stream offset {at}: record `response`, field `status`: field longer than 3 bytes"
            ),
            &format!("cut {cut}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Numbers

/// A response whose Content-Length value is `value`: the error is at the first
/// byte of the trimmed value.
fn bad_content_length(value: &[u8], expected: &'static str) {
    let head = b"HTTP/1.1 200 OK\r\nServer: x\r\n";
    let input = cat(&[
        OK_RESPONSE,
        head,
        b"Content-Length:  ",
        value,
        b" \r\n\r\nbody",
    ]);
    let at = OK_RESPONSE.len() + head.len() + b"Content-Length:  ".len();
    for cut in CUTS {
        let ctx = format!(
            "Content-Length {:?}, cut {cut}",
            value.escape_ascii().to_string()
        );
        let out = drive(interp("http_response"), &input, cut, None, false);
        assert_first_response_delivered(&out, &ctx);
        out.assert_failed(
            &err(
                at,
                "response",
                Some("headers"),
                ErrorKind::Invalid { expected },
            ),
            &format!("stream offset {at}: record `response`, field `headers`: expected {expected}"),
            &ctx,
        );
    }
}

#[test]
fn content_length_not_a_number() {
    bad_content_length(b"abc", "a decimal number");
    bad_content_length(b"12a", "a decimal number");
    bad_content_length(b"-1", "a decimal number");
    bad_content_length(b"0x10", "a decimal number");
}

#[test]
fn content_length_overflowing_u64() {
    bad_content_length(b"99999999999999999999", "a number that fits in 64 bits");
    bad_content_length(b"18446744073709551616", "a number that fits in 64 bits");
}

#[test]
fn content_length_u64_max_is_a_number() {
    // The largest value parses; the body it announces then never comes, so
    // the end of the stream truncates it.
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
    for cut in CUTS {
        let out = drive(interp("http_response"), input, cut, None, false);
        let e = out.err.as_ref().expect("truncated");
        assert_eq!(
            (e.offset, e.record, e.field),
            (57, "body", Some("data")),
            "cut {cut}"
        );
        assert_eq!(e.kind, ErrorKind::Truncated);
        assert_eq!(out.names(), ["response"], "cut {cut}");
    }
}

#[test]
fn request_content_length_not_a_number() {
    let first = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
    let head = b"POST /b HTTP/1.1\r\nContent-Length: ";
    let input = cat(&[first, head, b"ten\r\n\r\n"]);
    let at = first.len() + head.len();
    for cut in CUTS {
        let ctx = format!("cut {cut}");
        let out = drive(interp("http_request"), &input, cut, None, false);
        assert_eq!(
            out.messages("request", "target"),
            vec![(b"/a".to_vec(), b"hi".to_vec())],
            "{ctx}"
        );
        out.assert_failed(
            &err(
                at,
                "request",
                Some("headers"),
                ErrorKind::Invalid {
                    expected: "a decimal number",
                },
            ),
            &format!(
                "stream offset {at}: record `request`, field `headers`: expected a decimal number"
            ),
            &ctx,
        );
    }
}

/// A chunked response whose second chunk size line is `size`.
fn bad_chunk_size(g: &str, start: &[u8], size: &[u8]) {
    let head = [start, b"Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n"].concat();
    let input = cat(&[OK_RESPONSE, &head, size, b"\r\nxyz\r\n0\r\n\r\n"]);
    let at = OK_RESPONSE.len() + head.len();
    let head_rec = if g == "http_response" {
        "response"
    } else {
        "request"
    };
    for cut in CUTS {
        let ctx = format!(
            "{g}, chunk size {:?}, cut {cut}",
            size.escape_ascii().to_string()
        );
        let out = drive(interp(g), &input, cut, None, false);
        // Everything before the bad size line is delivered.
        let names = out.names();
        let want_names = [
            head_rec,
            "body",
            head_rec,
            "chunk_size",
            "body",
            "chunk_end",
        ];
        let mut dedup = names.clone();
        dedup.dedup_by(|a, b| *a == "body" && *b == "body");
        assert_eq!(dedup, want_names, "{ctx}");
        let bodies = out.values("body", "data").concat();
        assert_eq!(bodies, b"helloabc", "{ctx}");
        out.assert_failed(
            &err(at, "chunk_size", Some("size"), ErrorKind::Invalid { expected: "a hexadecimal number" }),
            &format!("stream offset {at}: record `chunk_size`, field `size`: expected a hexadecimal number"),
            &ctx,
        );
    }
}

#[test]
fn chunk_size_not_hex() {
    bad_chunk_size("http_response", b"HTTP/1.1 200 OK\r\n", b"zz");
    bad_chunk_size("http_response", b"HTTP/1.1 200 OK\r\n", b"0x3");
    bad_chunk_size("http_response", b"HTTP/1.1 200 OK\r\n", b"");
}

#[test]
fn chunk_size_negative() {
    bad_chunk_size("http_response", b"HTTP/1.1 200 OK\r\n", b"-5");
    bad_chunk_size("http_response", b"HTTP/1.1 200 OK\r\n", b"-5;a=b");
}

#[test]
fn chunk_size_overflowing_u64() {
    let size = b"1ffffffffffffffff";
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let input = cat(&[head, size, b"\r\n"]);
    for cut in CUTS {
        let out = drive(interp("http_response"), &input, cut, None, false);
        out.assert_failed(
            &err(head.len(), "chunk_size", Some("size"), ErrorKind::Invalid { expected: "a number that fits in 64 bits" }),
            &format!("stream offset {}: record `chunk_size`, field `size`: expected a number that fits in 64 bits", head.len()),
            &format!("cut {cut}"),
        );
    }
}

#[test]
fn chunk_size_bad_in_requests() {
    // The request grammar skips blank lines between requests; `OK_RESPONSE` is
    // not a request, so use a request prefix of the same shape.
    let start: &[u8] = b"POST /up HTTP/1.1\r\n";
    let first = b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let head = [start, b"Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n"].concat();
    for size in [&b"zz"[..], b"-5"] {
        let input = cat(&[first, &head, size, b"\r\n"]);
        let at = first.len() + head.len();
        for cut in CUTS {
            let out = drive(interp("http_request"), &input, cut, None, false);
            assert_eq!(
                out.values("body", "data").concat(),
                b"helloabc",
                "cut {cut}"
            );
            out.assert_failed(
                &err(at, "chunk_size", Some("size"), ErrorKind::Invalid { expected: "a hexadecimal number" }),
                &format!("stream offset {at}: record `chunk_size`, field `size`: expected a hexadecimal number"),
                &format!("cut {cut}"),
            );
        }
    }
}

#[test]
fn chunk_longer_than_its_size() {
    // `3\r\nabcd\r\n`: after 3 bytes `chunk_end` expects CRLF and finds `d`. No
    // field applies.
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc";
    let input = cat(&[OK_RESPONSE, head, b"d\r\n0\r\n\r\n"]);
    let at = OK_RESPONSE.len() + head.len();
    for cut in CUTS {
        let out = drive(interp("http_response"), &input, cut, None, false);
        assert_eq!(
            out.values("body", "data").concat(),
            b"helloabc",
            "cut {cut}"
        );
        out.assert_failed(
            &err(
                at,
                "chunk_end",
                None,
                ErrorKind::Invalid {
                    expected: "\"\\r\\n\"",
                },
            ),
            &format!("stream offset {at}: record `chunk_end`: expected \"\\r\\n\""),
            &format!("cut {cut}"),
        );
    }
}

#[test]
fn resp_unknown_frame_type() {
    let good = b"+OK\r\n$5\r\na\r\nbc\r\n";
    let input = cat(&[good, b"!oops\r\n"]);
    for cut in CUTS {
        let out = drive(interp("resp"), &input, cut, None, false);
        assert_eq!(out.names(), ["frame", "frame", "bulk_string"], "cut {cut}");
        assert_eq!(out.values("bulk_string", "data"), [b"a\r\nbc".to_vec()]);
        out.assert_failed(
            &err(
                good.len(),
                "frame",
                Some("kind"),
                ErrorKind::Rejected {
                    message: "unknown frame type",
                },
            ),
            &format!(
                "stream offset {}: record `frame`, field `kind`: unknown frame type",
                good.len()
            ),
            &format!("cut {cut}"),
        );
    }
}

#[test]
fn tls_record_too_long() {
    let good = [&[23u8, 3, 3, 0, 2][..], b"hi"].concat();
    let input = cat(&[&good, &[22, 3, 3, 0x48, 0x01]]); // 18433 bytes
    for cut in CUTS {
        let out = drive(interp("tls"), &input, cut, None, false);
        assert_eq!(
            out.values("tls_record", "fragment"),
            [b"hi".to_vec()],
            "cut {cut}"
        );
        out.assert_failed(
            &err(good.len() + 3, "tls_record", Some("length"), ErrorKind::Rejected { message: "record longer than 2^14 + 2048 bytes" }),
            &format!("stream offset {}: record `tls_record`, field `length`: record longer than 2^14 + 2048 bytes", good.len() + 3),
            &format!("cut {cut}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Truncation: `finish()` inside a record

/// `input` ends inside a record: the stream fails with `Truncated` at its end.
fn truncated(
    g: &str,
    input: &[u8],
    record: &'static str,
    field: Option<&'static str>,
    delivered: &[&str],
) {
    let at = input.len();
    for cut in CUTS {
        let ctx = format!("{g}, {:?}, cut {cut}", input.escape_ascii().to_string());
        let out = drive(interp(g), input, cut, None, false);
        let mut names = out.names();
        names.dedup_by(|a, b| *a == "body" && *b == "body");
        assert_eq!(names, delivered, "{ctx}");
        let display = match field {
            Some(f) => format!("stream offset {at}: record `{record}`, field `{f}`: stream ended inside the record"),
            None => format!("stream offset {at}: record `{record}`: stream ended inside the record"),
        };
        out.assert_failed(
            &err(at, record, field, ErrorKind::Truncated),
            &display,
            &ctx,
        );
    }
}

#[test]
fn truncated_mid_headers() {
    let rs: &[&str] = &["response", "body"];
    truncated(
        "http_response",
        &cat(&[OK_RESPONSE, b"HTTP/1.1 200 OK\r\nServ"]),
        "response",
        Some("headers"),
        rs,
    );
    truncated(
        "http_response",
        &cat(&[OK_RESPONSE, b"HTTP/1.1 200 OK\r\nServer: x\r"]),
        "response",
        Some("headers"),
        rs,
    );
    truncated(
        "http_response",
        &cat(&[OK_RESPONSE, b"HTTP/1.1 200 OK\r\nServer: x\r\n"]),
        "response",
        Some("headers"),
        rs,
    );
    truncated(
        "http_response",
        &cat(&[OK_RESPONSE, b"HTTP/1.1 20"]),
        "response",
        Some("status"),
        rs,
    );
    truncated(
        "http_response",
        &cat(&[OK_RESPONSE, b"H"]),
        "response",
        Some("version"),
        rs,
    );
    truncated(
        "http_request",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHo",
        "request",
        Some("headers"),
        &["request"],
    );
}

#[test]
fn truncated_mid_chunk_size_line() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    truncated(
        "http_response",
        &cat(&[head, b"a;x"]),
        "chunk_size",
        Some("size"),
        &["response"],
    );
    truncated(
        "http_response",
        &cat(&[head, b"3\r\nabc\r\n0\r\nX-T: 1\r\n"]),
        "trailers",
        Some("fields"),
        &["response", "chunk_size", "body", "chunk_end", "chunk_size"],
    );
}

#[test]
fn truncated_mid_fixed_size_fields() {
    truncated(
        "tls",
        &[23, 3, 3, 0, 10, b'a', b'b'],
        "tls_record",
        Some("fragment"),
        &[],
    );
    truncated("tls", &[23, 3], "tls_record", Some("version"), &[]);
    truncated(
        "resp",
        b"+OK\r\n$5\r\nab",
        "bulk_string",
        Some("data"),
        &["frame", "frame"],
    );
    truncated(
        "resp",
        b"+OK\r\n$5\r\nabcde\r",
        "bulk_string",
        None,
        &["frame", "frame"],
    );
}

/// BUG (see the report): the stream ends inside a Content-Length body, 5 of 10
/// bytes sent. The interpreter ends the stream cleanly instead of failing it
/// with `Truncated`.
#[test]
fn truncated_mid_body() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    truncated(
        "http_response",
        input,
        "body",
        Some("data"),
        &["response", "body"],
    );
}

#[test]
fn until_close_body_ends_cleanly() {
    // Neither Content-Length nor chunked: the end of the stream ends the body.
    let input = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it";
    for cut in CUTS {
        let out = drive(interp("http_response"), input, cut, None, false);
        out.assert_clean(&format!("cut {cut}"));
        assert_eq!(
            out.messages("response", "status"),
            vec![(b"200".to_vec(), b"all of it".to_vec())]
        );
    }
}

// ---------------------------------------------------------------------------
// Gaps

const R1: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const R2: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 20\r\n\r\n01234567890123456789";
const R3: &[u8] =
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

fn http_gap(lost: Range<usize>, want: &[(&[u8], &[u8])]) {
    let input = cat(&[R1, R2, R3]);
    let want: Vec<(Vec<u8>, Vec<u8>)> =
        want.iter().map(|(s, b)| (s.to_vec(), b.to_vec())).collect();
    for cut in CUTS {
        for ooo in [false, true] {
            let ctx = format!("lost {lost:?}, cut {cut}, ooo {ooo}");
            let out = drive(
                interp("http_response"),
                &input,
                cut,
                Some(lost.clone()),
                ooo,
            );
            out.assert_clean(&ctx);
            assert_eq!(out.stats.gaps, 1, "{ctx}");
            assert_eq!(out.stats.gap_bytes, lost.len() as u64, "{ctx}");
            assert_eq!(
                out.messages("response", "status"),
                want,
                "{ctx}: {:?}",
                out.names()
            );
        }
    }
}

#[test]
fn http_gap_in_headers_resyncs_at_next_status_line() {
    let r2 = R1.len();
    // R2's status line and headers partly lost: R2 is dropped, R3 is parsed.
    http_gap(r2 + 10..r2 + 30, &[(b"200", b"hello"), (b"201", b"abc")]);
    // Lost from R2's very first byte.
    http_gap(r2..r2 + 1, &[(b"200", b"hello"), (b"201", b"abc")]);
    // Lost R1's end and R2's `H`: the `TTP/1.1 404` left is no sync point.
    http_gap(r2 - 2..r2 + 1, &[(b"200", b"hel"), (b"201", b"abc")]);
}

#[test]
fn http_gap_in_body_resyncs_at_next_status_line() {
    let body = R1.len() + R2.len() - 20;
    // Bytes of R2's body before the gap are delivered; then R3.
    http_gap(
        body + 4..body + 9,
        &[(b"200", b"hello"), (b"404", b"0123"), (b"201", b"abc")],
    );
    // The gap runs into R3's `HTTP/`: nothing to resynchronise on after it.
    let r3 = R1.len() + R2.len();
    http_gap(body + 4..r3 + 2, &[(b"200", b"hello"), (b"404", b"0123")]);
}

#[test]
fn http_gap_in_chunked_body_resyncs_at_next_status_line() {
    // R3 first, then R1: lose R3's chunk data.
    let input = cat(&[R3, R1]);
    let at = R3.len() - 9; // the `b` of `abc`
    for cut in CUTS {
        for ooo in [false, true] {
            let ctx = format!("cut {cut}, ooo {ooo}");
            let out = drive(interp("http_response"), &input, cut, Some(at..at + 1), ooo);
            out.assert_clean(&ctx);
            let m = out.messages("response", "status");
            assert_eq!(m.len(), 2, "{ctx}: {:?}", out.names());
            assert_eq!(m[1], (b"200".to_vec(), b"hello".to_vec()), "{ctx}");
            assert_eq!(m[0].0, b"201", "{ctx}");
        }
    }
}

#[test]
fn http_request_gap_resyncs_at_the_next_request_line_of_any_method() {
    const Q1: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const Q2: &[u8] = b"POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nDATA";
    const Q3: &[u8] = b"DELETE /c HTTP/1.1\r\n\r\n";
    const Q4: &[u8] = b"PUT /d HTTP/1.1\r\nContent-Length: 2\r\n\r\nok";
    let input = cat(&[Q1, Q2, Q3, Q4]);
    let q2 = Q1.len();
    let q3 = q2 + Q2.len();
    let cases: [(Range<usize>, &[&[u8]]); 3] = [
        // Q2's headers partly lost: Q2 dropped, resynchronised on `DELETE `.
        (q2 + 8..q2 + 20, &[b"/a", b"/c", b"/d"]),
        // The gap ends inside `DELETE `: no pattern left there; `PUT ` is next.
        (q3 - 2..q3 + 3, &[b"/a", b"/b", b"/d"]),
        // Lost inside Q1's head: the earliest pattern after it is `POST `.
        (3..6, &[b"/b", b"/c", b"/d"]),
    ];
    for (lost, want) in cases {
        let want: Vec<(Vec<u8>, Vec<u8>)> = want.iter().map(|t| (t.to_vec(), Vec::new())).collect();
        for cut in CUTS {
            for ooo in [false, true] {
                let ctx = format!("lost {lost:?}, cut {cut}, ooo {ooo}");
                let out = drive(interp("http_request"), &input, cut, Some(lost.clone()), ooo);
                out.assert_clean(&ctx);
                let got: Vec<(Vec<u8>, Vec<u8>)> = out
                    .messages("request", "target")
                    .into_iter()
                    .map(|(t, _)| (t, Vec::new()))
                    .collect();
                assert_eq!(got, want, "{ctx}: {:?}", out.names());
            }
        }
    }
}

#[test]
fn csv_gap_resyncs_after_next_newline() {
    let input = b"a,b\nccc,ddd\neee,fff\n\"q\nq\",r\ng\n";
    let rows = |out: &Out| -> Vec<Vec<Vec<u8>>> {
        out.recs
            .iter()
            .map(|r| r.1.iter().map(|f| f.1.clone()).collect())
            .collect()
    };
    let v = |s: &[&str]| -> Vec<Vec<u8>> { s.iter().map(|x| x.as_bytes().to_vec()).collect() };
    // Lost inside `ccc,ddd`: resume at `eee`.
    let want1 = vec![
        v(&["a", "b"]),
        v(&["eee", "fff"]),
        v(&["q\nq", "r"]),
        v(&["g"]),
    ];
    // Lost inside the quoted `"q\nq"`: resume after the newline inside the
    // quotes, at `q",r`.
    let want2 = vec![
        v(&["a", "b"]),
        v(&["ccc", "ddd"]),
        v(&["eee", "fff"]),
        v(&["q\"", "r"]),
        v(&["g"]),
    ];
    for (lost, want) in [(5..9, want1), (21..22, want2)] {
        for cut in CUTS {
            for ooo in [false, true] {
                let ctx = format!("lost {lost:?}, cut {cut}, ooo {ooo}");
                let out = drive(interp("csv"), input, cut, Some(lost.clone()), ooo);
                out.assert_clean(&ctx);
                assert_eq!(rows(&out), want, "{ctx}");
                let hand = drive(CsvParser::default(), input, cut, Some(lost.clone()), ooo);
                hand.assert_clean(&ctx);
                assert_eq!(rows(&hand), want, "CsvParser, {ctx}");
            }
        }
    }
}

#[test]
fn tls_gap_fails_the_stream() {
    let r1 = [&[23u8, 3, 3, 0, 4][..], b"abcd"].concat();
    let r2 = [&[23u8, 3, 3, 0, 6][..], b"efghij"].concat();
    let r3 = [&[21u8, 3, 3, 0, 2][..], b"kl"].concat();
    let input = cat(&[&r1, &r2, &r3]);
    // In a record's fragment, in its header, and at a record boundary.
    let cases: [(Range<usize>, Option<&'static str>); 3] = [
        (r1.len() + 7..r1.len() + 9, Some("fragment")),
        (r1.len() + 1..r1.len() + 2, Some("version")),
        (r1.len()..r1.len() + 3, None),
    ];
    for (lost, field) in cases {
        for cut in CUTS {
            for ooo in [false, true] {
                let ctx = format!("lost {lost:?}, cut {cut}, ooo {ooo}");
                let out = drive(interp("tls"), &input, cut, Some(lost.clone()), ooo);
                assert_eq!(
                    out.values("tls_record", "fragment"),
                    [b"abcd".to_vec()],
                    "{ctx}"
                );
                let (at, len) = (lost.start, lost.len() as u64);
                let display = match field {
                    Some(f) => format!("stream offset {at}: record `tls_record`, field `{f}`: {len} bytes lost, cannot resynchronise"),
                    None => format!("stream offset {at}: record `tls_record`: {len} bytes lost, cannot resynchronise"),
                };
                out.assert_failed(
                    &err(at, "tls_record", field, ErrorKind::Gap { len }),
                    &display,
                    &ctx,
                );
            }
        }
    }
}

/// BUG (same cause as `truncated_mid_body`): the stream ends inside a chunk's
/// data, or where the grammar has chosen a record that must come (`next body`,
/// `next chunk_end`, `next trailers`, `next bulk_string`) but before its first
/// byte. Each of these ends cleanly today; all are listed before failing.
#[test]
fn truncated_between_records_that_must_follow() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases: Vec<(&str, Vec<u8>, &'static str, Option<&'static str>)> = vec![
        (
            "http_response",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".to_vec(),
            "body",
            Some("data"),
        ),
        (
            "http_request",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n".to_vec(),
            "body",
            Some("data"),
        ),
        (
            "http_response",
            cat(&[chunked, b"a\r\nhello"]),
            "body",
            Some("data"),
        ),
        (
            "http_response",
            cat(&[chunked, b"5\r\n"]),
            "body",
            Some("data"),
        ),
        (
            "http_response",
            cat(&[chunked, b"5\r\nhello"]),
            "chunk_end",
            None,
        ),
        (
            "http_response",
            cat(&[chunked, b"0\r\n"]),
            "trailers",
            Some("fields"),
        ),
        ("resp", b"$5\r\n".to_vec(), "bulk_string", Some("data")),
    ];
    let mut wrong = Vec::new();
    for (g, input, record, field) in cases {
        for cut in [1, usize::MAX] {
            let out = drive(interp(g), &input, cut, None, false);
            let want = err(input.len(), record, field, ErrorKind::Truncated);
            if out.state != AaState::Failed || out.err.as_ref() != Some(&want) {
                wrong.push(format!(
                    "{g} {:?} cut {cut}: {:?} {:?}, want {want}",
                    input.escape_ascii().to_string(),
                    out.state,
                    out.err.map(|e| e.to_string())
                ));
            }
            assert!(out.pool_full);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Length limits of quoted CSV fields at packet boundaries

/// Sends `input` as the packets between `points` (ascending cut offsets).
fn drive_at<R: Parser>(parser: R, input: &[u8], points: &[usize]) -> Out {
    let mut pts = vec![0];
    pts.extend_from_slice(points);
    pts.push(input.len());
    let segs: Vec<Range<usize>> = pts
        .windows(2)
        .map(|w| w[0]..w[1])
        .filter(|r| !r.is_empty())
        .collect();
    let pool = PacketPool::new(segs.len() as u32 + 1, input.len().max(1));
    let mut s = AaStream::new(AaConfig::default(), ISN, parser);
    let mut recs = Vec::new();
    for r in &segs {
        let seq = ISN.wrapping_add(r.start as u32);
        s.insert(
            seq,
            pool.packet_from(&input[r.clone()]).unwrap(),
            0..r.len(),
        );
        take(&mut s, &mut recs);
    }
    s.finish();
    take(&mut s, &mut recs);
    let (err, state, stats) = (s.error().cloned(), s.state(), s.stats());
    drop(s);
    Out {
        recs,
        err,
        state,
        pool_full: pool.is_full(),
        stats,
    }
}

/// `"` + `n` × `a` + `"\n`, cut nowhere, inside the field, before and after
/// the closing quote: a field of at most 65536 bytes (csv.aag's `max`, and
/// CsvParser's default) is accepted; one byte more fails at the field's first
/// byte (offset 1, after the opening quote), whatever the cuts.
fn quoted_field_at_max<R: Parser>(parser: impl Fn() -> R) -> Vec<String> {
    let mut wrong = Vec::new();
    for n in [65535usize, 65536, 65537] {
        let input = [&b"\""[..], &vec![b'a'; n], b"\"\n"].concat();
        for points in [vec![], vec![1000], vec![n], vec![n + 1], vec![n + 2]] {
            let out = drive_at(parser(), &input, &points);
            assert!(out.pool_full);
            let got = (
                out.state,
                out.err.clone(),
                out.recs.iter().map(|r| r.1[0].1.len()).collect::<Vec<_>>(),
            );
            let want = if n <= 65536 {
                (AaState::Ended, None, vec![n])
            } else {
                let e = err(
                    1,
                    "row",
                    Some("field"),
                    ErrorKind::FieldTooLong { max: 65536 },
                );
                (AaState::Failed, Some(e), vec![])
            };
            if got != want {
                wrong.push(format!(
                    "n {n}, cut at {points:?}: got {:?} {:?}, want {:?} {:?}",
                    got.0,
                    got.1.map(|e| e.to_string()),
                    want.0,
                    want.1.map(|e| e.to_string())
                ));
            }
        }
    }
    wrong
}

/// BUG: the interpreter's length check at a packet's end counts a quoted
/// field's opening quote (and a closing quote not yet known to close it), and
/// reports the quote's offset.
#[test]
fn csv_quoted_field_at_its_maximum_interp() {
    let wrong = quoted_field_at_max(|| interp("csv"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// BUG: CsvParser's length check at a packet's end counts the closing quote.
#[test]
fn csv_quoted_field_at_its_maximum_hand_written() {
    let wrong = quoted_field_at_max(CsvParser::default);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Small grammars of their own: `fail` in `then`, `times` and `stop after` at the
// end of the stream, fields a record did not parse, counts near u32::MAX

fn grammar_src(src: &str) -> Arc<Grammar> {
    Grammar::new(aa_dsl::compile_str(src).unwrap_or_else(|e| panic!("{e:?}")))
}

/// Records (name, [(field, value)]) as `drive` delivers them.
fn recs(want: &[(&'static str, &[(&'static str, &str)])]) -> Vec<Rec> {
    want.iter()
        .map(|(n, fs)| {
            let fs = fs
                .iter()
                .map(|(f, v)| (*f, v.as_bytes().to_vec()))
                .collect();
            (*n, fs)
        })
        .collect()
}

/// A `fail` in a `then` block reports the record's end (where `then` runs),
/// whatever the packets: not where parsing got to in the last packet.
#[test]
fn then_fail_reports_the_record_end() {
    let line = grammar_src(
        r#"protocol p;
start record line {
    text: until "\n" max 10;
    then {
        if eq(text, "bad") {
            fail "bad line";
        }
    }
}"#,
    );
    // The record ends after an empty element, not kept, of a repeat.
    let block = grammar_src(
        r#"protocol p;
start record line {
    repeat text: until "\n" max 10 count 8 stop on empty;
    then {
        if len(text) > 3 {
            fail "bad line";
        }
    }
}"#,
    );
    // (grammar, input, the failing record's end)
    let cases: [(&Arc<Grammar>, &[u8], usize); 2] = [
        (&line, b"ok\nbad\nok\n", 7),
        (&block, b"a\nb\n\nlong\n\nok\n\n", 11),
    ];
    for (g, input, at) in cases {
        for cut in CUTS {
            let ctx = format!("{:?}, cut {cut}", input.escape_ascii().to_string());
            let out = drive(g.parser(), input, cut, None, false);
            assert_eq!(out.names(), ["line"], "{ctx}");
            out.assert_failed(
                &err(
                    at,
                    "line",
                    None,
                    ErrorKind::Rejected {
                        message: "bad line",
                    },
                ),
                &format!("stream offset {at}: record `line`: bad line"),
                &ctx,
            );
        }
    }
}

/// The end of the stream before a `times` repeat of an `until … | eof` field
/// (the field before it ended at the end of the stream too): `times` is
/// evaluated there, and 0 means no element.
#[test]
fn times_is_evaluated_at_the_end_of_the_stream() {
    let g = grammar_src(
        r#"protocol p;
start record r {
    n: until ":" max 2;
    a: until "/" | eof max 5;
    repeat t: until "," | ";" | eof max 4 count 5 times dec(n);
}"#,
    );
    let three: (&str, &[(&str, &str)]) = (
        "r",
        &[("n", "3"), ("a", "x"), ("t", "a"), ("t", "b"), ("t", "c")],
    );
    let cases: Vec<(&[u8], Vec<Rec>)> = vec![
        (b"0:abc", recs(&[("r", &[("n", "0"), ("a", "abc")])])),
        (b"0:abc/", recs(&[("r", &[("n", "0"), ("a", "abc")])])),
        (
            b"1:abc",
            recs(&[("r", &[("n", "1"), ("a", "abc"), ("t", "")])]),
        ),
        // A `times` of an earlier record is not the one of this record.
        (
            b"3:x/a,b,c;0:abc",
            recs(&[three, ("r", &[("n", "0"), ("a", "abc")])]),
        ),
        (
            b"3:x/a,b,c;1:abc",
            recs(&[three, ("r", &[("n", "1"), ("a", "abc"), ("t", "")])]),
        ),
    ];
    for (input, want) in cases {
        for cut in CUTS {
            let ctx = format!("{:?}, cut {cut}", input.escape_ascii().to_string());
            let out = drive(g.parser(), input, cut, None, false);
            out.assert_clean(&ctx);
            assert_eq!(out.recs, want, "{ctx}");
        }
    }
    // Two elements wanted; the end of the stream ends the first.
    for cut in CUTS {
        let out = drive(g.parser(), b"2:abc", cut, None, false);
        out.assert_failed(
            &err(5, "r", Some("t"), ErrorKind::Truncated),
            "stream offset 5: record `r`, field `t`: stream ended inside the record",
            &format!("cut {cut}"),
        );
    }
}

/// At the end of the stream an element of an `until … | eof` field ends; a
/// `stop after` repeat stops there only if it lists `eof`, and otherwise the
/// record is truncated.
#[test]
fn stop_after_stops_at_the_end_of_the_stream_only_with_eof() {
    let src = |stop: &str| {
        format!(
            "protocol p;\nstart record r {{\n    repeat w: until \"|\" | \"\\n\" | eof max 8 count 8 stop after {stop};\n}}"
        )
    };
    let with_eof = grammar_src(&src(r#""\n" | eof"#));
    let without = grammar_src(&src(r#""\n""#));
    let ab: (&str, &[(&str, &str)]) = ("r", &[("w", "a"), ("w", "b")]);
    for cut in CUTS {
        let ctx = format!("cut {cut}");
        // Ends between records: clean either way.
        for g in [&with_eof, &without] {
            let out = drive(g.parser(), b"a|b\n", cut, None, false);
            out.assert_clean(&ctx);
            assert_eq!(out.recs, recs(&[ab]), "{ctx}");
        }
        for (input, last) in [(&b"a|b\nc|d"[..], "d"), (b"a|b\nc|", "")] {
            let ctx = format!("{:?}, {ctx}", input.escape_ascii().to_string());
            let out = drive(with_eof.parser(), input, cut, None, false);
            out.assert_clean(&ctx);
            assert_eq!(
                out.recs,
                recs(&[ab, ("r", &[("w", "c"), ("w", last)])]),
                "{ctx}"
            );
            let out = drive(without.parser(), input, cut, None, false);
            assert_eq!(out.recs, recs(&[ab]), "{ctx}");
            let at = input.len();
            out.assert_failed(
                &err(at, "r", Some("w"), ErrorKind::Truncated),
                &format!(
                    "stream offset {at}: record `r`, field `w`: stream ended inside the record"
                ),
                &ctx,
            );
        }
    }
}

/// Records of `g` on `input` in packets of `cut` bytes: (name, variables).
fn values_of(g: &Arc<Grammar>, input: &[u8], cut: usize) -> Vec<(&'static str, Vec<u64>)> {
    let pool = PacketPool::new(input.len() as u32 + 1, cut.clamp(1, input.len().max(1)));
    let mut s = AaStream::new(AaConfig::default(), ISN, g.parser());
    let mut out = Vec::new();
    let take = |s: &mut AaStream<PoolPacket, Interp>, out: &mut Vec<_>| {
        let schema: &'static Schema = s.schema();
        let recs: Vec<_> = s
            .read_aa_records(usize::MAX)
            .map(|r| {
                let n = schema.records[r.kind() as usize].values.len() as u16;
                (r.name(), (0..n).map(|t| r.value(t).unwrap()).collect())
            })
            .collect();
        s.free_aa_records(recs.len());
        out.extend(recs);
    };
    for r in pieces(0..input.len(), cut) {
        let seq = ISN.wrapping_add(r.start as u32);
        s.insert(
            seq,
            pool.packet_from(&input[r.clone()]).unwrap(),
            0..r.len(),
        );
        take(&mut s, &mut out);
    }
    s.finish();
    take(&mut s, &mut out);
    assert_eq!(s.error(), None);
    assert_eq!(s.state(), AaState::Ended);
    drop(s);
    assert!(pool.is_full());
    out
}

/// A field the record did not parse (after `end`, or a repeat of no element)
/// reads as empty and 0, not as the field of the same index in an earlier
/// record.
#[test]
fn fields_not_parsed_in_the_record_read_as_empty_and_zero() {
    let g = grammar_src(
        r#"protocol p;
start record a {
    k: until ":" max 8;
    v: u8;
    w: until ";" max 8;
    then {
        next b;
    }
}
record b {
    var wlen: u64;
    var none: bool;
    var vval: u64;
    c: u8 {
        if c == 33 {
            end;
        }
    }
    y: u8;
    repeat x: until "," max 8 count 4 stop on empty;
    then {
        wlen = len(x);
        none = empty(x);
        vval = y;
    }
}"#,
    );
    let a = ("a", vec![]);
    let cases: [(&[u8], Vec<u64>); 3] = [
        // `end` after `c`.
        (b"key:\x05hello;!", vec![0, 1, 0]),
        // No element of `x`.
        (b"key:\x05hello;?\x07,", vec![0, 1, 7]),
        (b"key:\x05hello;?\x07ab,,", vec![2, 0, 7]),
    ];
    for (input, want) in cases {
        for cut in CUTS {
            assert_eq!(
                values_of(&g, input, cut),
                [a.clone(), ("b", want.clone())],
                "{:?}, cut {cut}",
                input.escape_ascii().to_string()
            );
        }
    }
}

/// `count` may be up to u32::MAX: the record's limit of fields saturates.
#[test]
fn repeat_counts_near_u32_max_saturate() {
    let g = grammar_src(
        r#"protocol p;
start record r {
    x: u8;
    repeat a: until "," | "\n" max 8 count 4294967295 stop after "\n";
    repeat b: until "," | "\n" max 8 count 2 stop after "\n";
}"#,
    );
    assert_eq!(g.parser().limits().fields_per_record, u32::MAX);
}

/// Up to 64 delimiters (the checker allows no more): each has its own bit in
/// `stop after`.
#[test]
fn sixty_four_delimiters_stop_each_on_their_own() {
    let ds: Vec<String> = (0..64).map(|k| format!("\"<{k}>\"")).collect();
    let g = grammar_src(&format!(
        "protocol p;\nstart record r {{\n    repeat w: until {} max 8 count 8 stop after \"<63>\";\n}}",
        ds.join(" | ")
    ));
    let input = b"a<62>b<0>c<63>d<63>";
    for cut in CUTS {
        let out = drive(g.parser(), input, cut, None, false);
        out.assert_clean(&format!("cut {cut}"));
        assert_eq!(
            out.recs,
            recs(&[
                ("r", &[("w", "a"), ("w", "b"), ("w", "c")]),
                ("r", &[("w", "d")]),
            ]),
            "cut {cut}"
        );
    }
}
