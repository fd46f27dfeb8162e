//! Differential property tests of the interpreter (`aa_dsl::interp`) running the
//! shipped grammars inside the application-aware stream, against independent
//! oracles on the contiguous bytes:
//!
//! - `csv.aag` against `csv-core` (default `ReaderBuilder`) and against the
//!   hand-written `aa_runtime::csv::CsvParser` through the same `AaStream`, and
//!   the interpreter on one packet against itself on random packets; also
//!   random gaps, interpreter against `CsvParser` (both resynchronise after the
//!   next `\n`);
//! - `http_response.aag` / `http_request.aag` against `httparse` on each message
//!   head, and against the body each message was generated with (by
//!   Content-Length, chunked with extensions and trailers, or to the end of the
//!   stream);
//! - `tls.aag` against the generated records, and an unknown content type;
//! - `resp.aag` against the generated frames;
//! - small grammars of their own (a `sync` pattern that overlaps itself; random
//!   records of every ending but `chunk`): one packet against random packets.
//!
//! `AA_PROPTEST_SCALE=N` multiplies every property's case count, for longer
//! hunts.
//!
//! Every case checks the stream's end state (no error, `Ended`) and that every
//! packet is back in its pool once the records are freed and the stream dropped.

use aa_dsl::interp::{Grammar, Interp};
use aa_runtime::csv::{unquote, CsvParser};
use aa_runtime::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

// ---------------------------------------------------------------------------
// Driving a parser through an AaStream

/// Each grammar is loaded once per test binary (loading leaks its names).
fn grammar(name: &'static str) -> Arc<Grammar> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Grammar>>>> = OnceLock::new();
    let mut m = CACHE.get_or_init(Default::default).lock().unwrap();
    m.entry(name)
        .or_insert_with(|| {
            let path = format!("{}/../grammars/{name}.aag", env!("CARGO_MANIFEST_DIR"));
            Grammar::new(aa_dsl::load(&path).unwrap_or_else(|e| panic!("{e}")))
        })
        .clone()
}

fn interp(name: &'static str) -> Interp {
    grammar(name).parser()
}

/// One field as delivered: its name, raw bytes, value (`csv::unquote`), stream
/// offset and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fld {
    name: &'static str,
    raw: Vec<u8>,
    val: Vec<u8>,
    off: u64,
    flags: u8,
}

/// One record as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    name: &'static str,
    span: Range<u64>,
    fields: Vec<Fld>,
    values: Vec<Option<u64>>,
}

impl Rec {
    /// Values of the fields called `name`, in order.
    fn all(&self, name: &str) -> Vec<Vec<u8>> {
        self.fields
            .iter()
            .filter(|f| f.name == name)
            .map(|f| f.val.clone())
            .collect()
    }

    /// Value of the one field called `name`.
    fn one(&self, name: &str) -> Vec<u8> {
        let v = self.all(name);
        assert_eq!(v.len(), 1, "field {name} of {self:?}");
        v.into_iter().next().unwrap()
    }

    fn vals(&self) -> Vec<Vec<u8>> {
        self.fields.iter().map(|f| f.val.clone()).collect()
    }
}

/// What a run produced.
#[derive(Debug)]
struct Out {
    recs: Vec<Rec>,
    err: Option<ParseError>,
    state: AaState,
    pool_full: bool,
}

impl Out {
    /// Asserts a clean end: no error, `Ended`, every packet back in the pool.
    fn assert_clean(&self, what: &str) {
        assert_eq!(self.err, None, "{what}: unexpected error");
        assert_eq!(self.state, AaState::Ended, "{what}");
        assert!(self.pool_full, "{what}: packets leaked");
    }
}

/// How a run drives the stream: the first sequence number, how many segments
/// go by between frees of the records read, and the record queue's capacity
/// (small capacities make the parser pause with `Step::Full`).
#[derive(Debug, Clone, Copy)]
struct Opts {
    isn: u32,
    lag: usize,
    qcap: u32,
}

const PLAIN: Opts = Opts {
    isn: 0,
    lag: 1,
    qcap: 4096,
};

fn opts() -> impl Strategy<Value = Opts> {
    (
        any::<u32>(),
        prop_oneof![3 => Just(1usize), 1 => 2usize..6],
        prop_oneof![3 => Just(4096u32), 1 => 1u32..4],
    )
        .prop_map(|(isn, lag, qcap)| Opts { isn, lag, qcap })
}

fn config(qcap: u32) -> AaConfig {
    AaConfig {
        max_records: qcap,
        stream: StreamConfig {
            recv_buffer: 1 << 24,
            max_fragments: 1 << 20,
            max_ooo_bytes: 1 << 24,
            max_ooo_fragments: 1 << 16,
        },
        ..AaConfig::default()
    }
}

fn take<R: Parser>(s: &mut AaStream<PoolPacket, R>, out: &mut Vec<Rec>) {
    let schema: &'static Schema = s.schema();
    let recs: Vec<Rec> = s
        .read_aa_records(usize::MAX)
        .map(|r| {
            let rs = &schema.records[r.kind() as usize];
            Rec {
                name: r.name(),
                span: r.span(),
                fields: r
                    .fields()
                    .map(|f| {
                        let mut val = Vec::new();
                        unquote(&f, b'"', &mut val);
                        Fld {
                            name: schema.field_name(r.kind(), f.tag()),
                            raw: f.to_vec(),
                            val,
                            off: f.offset(),
                            flags: f.flags(),
                        }
                    })
                    .collect(),
                values: (0..rs.values.len()).map(|t| r.value(t as u16)).collect(),
            }
        })
        .collect();
    assert_eq!(s.free_aa_records(recs.len()), recs.len());
    out.extend(recs);
}

/// Runs `parser` over `input` cut into `segs` (ranges covering the input in
/// order; a segment listed in `lost` is never sent and is declared lost with
/// `skip_to` before the next one), driven as `o` says. Records are read and
/// freed every `o.lag` segments, and after the end until the stream is done.
fn run_segs<R: Parser>(
    parser: R,
    input: &[u8],
    segs: &[Range<usize>],
    lost: &BTreeSet<usize>,
    o: Opts,
) -> Out {
    let Opts { isn, lag, qcap } = o;
    let max = segs.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let pool = PacketPool::new(segs.len() as u32 + 1, max);
    let mut s = AaStream::new(config(qcap), isn, parser);
    let mut recs = Vec::new();
    let mut held = 0usize;
    for (k, r) in segs.iter().enumerate() {
        let seq = isn.wrapping_add(r.start as u32);
        if lost.contains(&k) {
            continue;
        }
        if k > 0 && lost.contains(&(k - 1)) {
            s.skip_to(SeqNum(seq));
        }
        let res = s.insert(
            seq,
            pool.packet_from(&input[r.clone()]).unwrap(),
            0..r.len(),
        );
        if s.state() == AaState::Active {
            assert!(
                matches!(res, Insert::InOrder { .. }),
                "segment {k}: {res:?}"
            );
        }
        held += 1;
        if held >= lag {
            take(&mut s, &mut recs);
            held = 0;
        }
    }
    if segs.last().is_some() && lost.contains(&(segs.len() - 1)) {
        s.skip_to(SeqNum(isn.wrapping_add(input.len() as u32)));
    }
    s.finish();
    // Freeing may let a paused parser go on: read until it is done.
    for _ in 0..=input.len() + 1 {
        take(&mut s, &mut recs);
        if s.state() != AaState::Active && s.ready() == 0 {
            break;
        }
    }
    assert_ne!(s.state(), AaState::Active, "the stream never ended");
    let (err, state) = (s.error().cloned(), s.state());
    drop(s);
    Out {
        recs,
        err,
        state,
        pool_full: pool.is_full(),
    }
}

/// Segments of `input`: lengths taken from `lens` in turn (one segment if
/// `lens` is empty), plus, with `special`, a cut right after every `\r` and
/// every `"` (splitting `\r\n` and `""`).
fn segments(input: &[u8], lens: &[usize], special: bool) -> Vec<Range<usize>> {
    let mut pts = BTreeSet::new();
    pts.insert(0);
    pts.insert(input.len());
    if !lens.is_empty() {
        let mut at = 0;
        for &l in lens.iter().cycle() {
            at += l.max(1);
            if at >= input.len() {
                break;
            }
            pts.insert(at);
        }
    }
    if special {
        for (i, &b) in input.iter().enumerate() {
            if b == b'\r' || b == b'"' {
                pts.insert(i + 1);
            }
        }
    }
    let pts: Vec<usize> = pts.into_iter().collect();
    pts.windows(2)
        .map(|w| w[0]..w[1])
        .filter(|r| !r.is_empty())
        .collect()
}

fn run<R: Parser>(parser: R, input: &[u8], lens: &[usize], o: Opts) -> Out {
    let segs = segments(input, lens, false);
    run_segs(parser, input, &segs, &BTreeSet::new(), o)
}

/// Packet lengths: mostly tiny (fields then span three packets and more),
/// sometimes MTU-sized; an empty list is one packet.
fn seg_lens() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![]),
        2 => Just(vec![1]),
        4 => prop::collection::vec(
            prop_oneof![4 => 1usize..=3, 2 => 1usize..=40, 1 => 41usize..=1500],
            1..6,
        ),
    ]
}

/// `cases` per property, times `AA_PROPTEST_SCALE` (default 1) for longer hunts.
fn cfg(cases: u32) -> ProptestConfig {
    let scale = std::env::var("AA_PROPTEST_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: cases.saturating_mul(scale.max(1)),
        failure_persistence: None,
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// CSV

type Rows = Vec<Vec<Vec<u8>>>;

/// csv-core's records for the whole of `input` (default `ReaderBuilder`).
fn csv_core_rows(input: &[u8]) -> Rows {
    let mut rdr = csv_core::ReaderBuilder::new().build();
    let mut out = vec![0u8; input.len() + 1];
    let mut ends = vec![0usize; input.len() + 2];
    let (mut pos, mut outlen, mut endlen) = (0, 0, 0);
    let mut rows = Vec::new();
    loop {
        let (res, nin, nout, nend) =
            rdr.read_record(&input[pos..], &mut out[outlen..], &mut ends[endlen..]);
        pos += nin;
        outlen += nout;
        endlen += nend;
        match res {
            csv_core::ReadRecordResult::InputEmpty => assert_eq!(pos, input.len()),
            csv_core::ReadRecordResult::Record => {
                let mut start = 0;
                let mut row = Vec::new();
                for &e in &ends[..endlen] {
                    row.push(out[start..e].to_vec());
                    start = e;
                }
                rows.push(row);
                outlen = 0;
                endlen = 0;
            }
            csv_core::ReadRecordResult::End => break,
            r => panic!("csv-core buffers too small: {r:?}"),
        }
    }
    rows
}

fn rows(out: &Out) -> Rows {
    out.recs
        .iter()
        .map(|r| {
            assert_eq!(r.name, "row");
            r.vals()
        })
        .collect()
}

/// One byte of CSV-ish input. 0xEF is never generated: csv-core and `CsvParser`
/// skip a UTF-8 byte-order mark at the start of the stream and `csv.aag` does
/// not (by design, see the grammar's header), so a leading 0xEF 0xBB 0xBF would
/// differ for a known reason.
fn csv_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => Just(b'a'),
        4 => Just(b','),
        4 => Just(b'"'),
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        1 => Just(b'b'),
        1 => Just(b' '),
        1 => any::<u8>().prop_filter("no BOM byte", |b| *b != 0xEF),
    ]
}

/// A field: plain, or quoted with commas, line ends and doubled quotes inside,
/// sometimes with text after the closing quote.
fn csv_field() -> impl Strategy<Value = Vec<u8>> {
    let inner = prop::collection::vec(
        prop_oneof![
            4 => Just(&b"a"[..]),
            2 => Just(&b","[..]),
            2 => Just(&b"\n"[..]),
            2 => Just(&b"\r\n"[..]),
            1 => Just(&b"\r"[..]),
            3 => Just(&b"\"\""[..]),
            1 => Just(&b" "[..]),
        ],
        0..8,
    );
    prop_oneof![
        3 => "[ab ]{0,6}".prop_map(String::into_bytes),
        3 => (inner, prop_oneof![6 => Just(&b""[..]), 1 => Just(&b"x"[..]), 1 => Just(&b"x\"y"[..])])
            .prop_map(|(parts, tail)| {
                let mut v = vec![b'"'];
                parts.iter().for_each(|p| v.extend_from_slice(p));
                v.push(b'"');
                v.extend_from_slice(tail);
                v
            }),
    ]
}

/// Rows of fields joined by `,` and ended by `\n`, `\r\n` or `\r`, blank lines
/// between, the last terminator optional.
fn csv_doc() -> impl Strategy<Value = Vec<u8>> {
    let term = prop_oneof![
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\r\n\r\n"[..]),
        Just(&b"\n\n"[..])
    ];
    (
        prop::collection::vec((prop::collection::vec(csv_field(), 1..6), term), 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rows, last_term, lead)| {
            let mut v = Vec::new();
            if lead {
                v.extend_from_slice(b"\r\n");
            }
            let n = rows.len();
            for (i, (fields, t)) in rows.into_iter().enumerate() {
                for (j, f) in fields.iter().enumerate() {
                    if j > 0 {
                        v.push(b',');
                    }
                    v.extend_from_slice(f);
                }
                if i + 1 < n || last_term {
                    v.extend_from_slice(t);
                }
            }
            v
        })
}

fn csv_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(csv_byte(), 0..200), csv_doc(),]
}

proptest! {
    #![proptest_config(cfg(500))]

    /// Interpreted csv.aag = csv-core = CsvParser, and random packets = one packet.
    #[test]
    fn csv_interp_matches_csv_core_and_hand_written(
        input in csv_input(),
        lens in seg_lens(),
        special in any::<bool>(),
        o in opts(),
    ) {
        let want = csv_core_rows(&input);
        let segs = segments(&input, &lens, special);
        let none = BTreeSet::new();
        let whole = run(interp("csv"), &input, &[], PLAIN);
        whole.assert_clean("interp, one packet");
        let cut = run_segs(interp("csv"), &input, &segs, &none, o);
        cut.assert_clean("interp, cut");
        let hand = run_segs(CsvParser::default(), &input, &segs, &none, o);
        hand.assert_clean("CsvParser, cut");
        prop_assert_eq!(rows(&whole), want.clone(), "interp (one packet) vs csv-core");
        prop_assert_eq!(rows(&hand), want.clone(), "CsvParser vs csv-core");
        prop_assert_eq!(rows(&cut), want, "interp (cut) vs csv-core; segs {:?}", segs);
        // Same records, byte for byte (spans, raw bytes, offsets, flags).
        prop_assert_eq!(&cut.recs, &whole.recs, "interp: cut vs one packet; segs {:?}", segs);
    }

    /// With segments lost (gaps), the interpreter and CsvParser both drop the
    /// row in progress and resume after the next `\n`: same rows.
    #[test]
    fn csv_gaps_interp_matches_hand_written(
        input in csv_input(),
        lens in prop::collection::vec(1usize..=12, 1..5),
        lost in prop::collection::btree_set(0usize..60, 0..4),
        o in opts(),
    ) {
        let segs = segments(&input, &lens, false);
        let a = run_segs(interp("csv"), &input, &segs, &lost, o);
        let b = run_segs(CsvParser::default(), &input, &segs, &lost, o);
        a.assert_clean("interp");
        b.assert_clean("CsvParser");
        prop_assert_eq!(rows(&a), rows(&b), "segs {:?}", segs);
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// One generated message: its bytes on the wire, its head (start line to the
/// blank line, as given to httparse), its decoded body and its trailer lines.
#[derive(Debug, Clone)]
struct Msg {
    wire: Vec<u8>,
    head: Vec<u8>,
    body: Vec<u8>,
    trailers: Vec<Vec<u8>>,
}

/// How a message's body is framed.
#[derive(Debug, Clone)]
enum Framing {
    /// `Content-Length`, with optional whitespace around the number.
    Length {
        pre: &'static str,
        post: &'static str,
    },
    /// `Transfer-Encoding: chunked`.
    Chunked {
        te: &'static str,
        /// Chunk sizes, used in turn.
        sizes: Vec<usize>,
        /// Extensions (`;a=b`) on chunks, used in turn.
        ext: Vec<bool>,
        upper: bool,
        /// Leading zeros on sizes.
        zeros: bool,
        trailers: Vec<(String, String)>,
        /// A Content-Length too (chunked wins).
        also_length: bool,
    },
    /// Neither: no body for a request; for a response, to the end of the stream.
    None,
}

/// Parameters of a message; the start line is generated separately.
#[derive(Debug, Clone)]
struct MsgParams {
    headers: Vec<(String, &'static str, String)>,
    framing: Framing,
    /// Where the framing header goes among the others.
    fpos: usize,
    case: u64,
    body: Vec<u8>,
}

fn rand_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn header() -> impl Strategy<Value = (String, &'static str, String)> {
    (
        prop_oneof![
            3 => "[Xx]-[A-Za-z0-9-]{1,10}",
            1 => Just("Host".to_string()),
            1 => Just("Server".to_string()),
            1 => Just("ETag".to_string()),
            1 => Just("cache-control".to_string()),
        ],
        prop_oneof![4 => Just(" "), 1 => Just(""), 1 => Just("  "), 1 => Just("\t")],
        "[ -~]{0,24}",
    )
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        3 => (
            prop_oneof![3 => Just(""), 1 => Just(" "), 1 => Just("\t ")],
            prop_oneof![3 => Just(""), 1 => Just(" "), 1 => Just(" \t")],
        )
            .prop_map(|(pre, post)| Framing::Length { pre, post }),
        3 => (
            prop_oneof![Just("chunked"), Just("Chunked"), Just("gzip, chunked")],
            prop::collection::vec(prop_oneof![3 => 1usize..=16, 2 => 1usize..=600, 1 => 601usize..=3000], 1..5),
            prop::collection::vec(any::<bool>(), 1..4),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(("[Xx]-[a-z]{1,6}", "[ -~]{0,12}"), 0..3),
            prop::bool::weighted(0.15),
        )
            .prop_map(|(te, sizes, ext, upper, zeros, trailers, also_length)| Framing::Chunked {
                te,
                sizes,
                ext,
                upper,
                zeros,
                trailers,
                also_length,
            }),
        1 => Just(Framing::None),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..=24),
        1 => prop::collection::vec(any::<u8>(), 0..=3000),
    ]
}

fn msg_params() -> impl Strategy<Value = MsgParams> {
    (
        prop::collection::vec(header(), 0..=8),
        framing(),
        any::<usize>(),
        any::<u64>(),
        body(),
    )
        .prop_map(|(headers, framing, fpos, case, body)| MsgParams {
            fpos: fpos % (headers.len() + 1),
            headers,
            framing,
            case,
            body,
        })
}

/// Builds a message after `start` (the start line with its CRLF). `has_body`:
/// whether the body is sent (false for responses 1xx, 204, 304, whose framing
/// headers are still written). Framing `None` sends the body only if
/// `until_close`.
fn build(start: String, p: &MsgParams, has_body: bool, until_close: bool) -> Msg {
    let body_sent = match p.framing {
        Framing::None if !until_close => false,
        _ => has_body,
    };
    let body = if body_sent {
        p.body.clone()
    } else {
        Vec::new()
    };
    let mut lines: Vec<String> = p
        .headers
        .iter()
        .map(|(n, sep, v)| format!("{n}:{sep}{v}"))
        .collect();
    let mut framing_lines = Vec::new();
    match &p.framing {
        Framing::Length { pre, post } => framing_lines.push(format!(
            "{}:{pre}{}{post}",
            rand_case("content-length", p.case),
            if has_body {
                p.body.len()
            } else {
                p.body.len() % 7
            }
        )),
        Framing::Chunked {
            te, also_length, ..
        } => {
            framing_lines.push(format!("{}: {te}", rand_case("transfer-encoding", p.case)));
            if *also_length {
                framing_lines.push(format!("Content-Length: {}", p.body.len() + 3));
            }
        }
        Framing::None => {}
    }
    for (k, l) in framing_lines.into_iter().enumerate() {
        lines.insert(p.fpos + k, l);
    }
    let mut head = start.into_bytes();
    for l in &lines {
        head.extend_from_slice(l.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut wire = head.clone();
    let mut trailer_lines = Vec::new();
    match &p.framing {
        Framing::Chunked {
            sizes,
            ext,
            upper,
            zeros,
            trailers,
            ..
        } if has_body => {
            let mut rest = &body[..];
            let mut k = 0;
            loop {
                let n = rest.len().min(sizes[k % sizes.len()]);
                let mut size = if *upper {
                    format!("{n:X}")
                } else {
                    format!("{n:x}")
                };
                if *zeros {
                    size.insert_str(0, "00");
                }
                wire.extend_from_slice(size.as_bytes());
                if ext[k % ext.len()] {
                    wire.extend_from_slice(if k % 2 == 0 { b";a=b" } else { b" ;x=\"y\";z" });
                }
                wire.extend_from_slice(b"\r\n");
                if n == 0 {
                    break;
                }
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                k += 1;
            }
            for (n, v) in trailers {
                let l = format!("{n}: {v}");
                wire.extend_from_slice(l.as_bytes());
                wire.extend_from_slice(b"\r\n");
                trailer_lines.push(l.into_bytes());
            }
            wire.extend_from_slice(b"\r\n");
        }
        _ => wire.extend_from_slice(&body),
    }
    Msg {
        wire,
        head,
        body,
        trailers: trailer_lines,
    }
}

const CODES: [u16; 7] = [100, 200, 204, 301, 304, 404, 500];

fn no_body(code: u16) -> bool {
    code < 200 || code == 204 || code == 304
}

/// A pipelined sequence of responses; with `until_close` the last one (if its
/// status allows a body) has neither length nor chunking and its body runs to
/// the end of the stream.
fn responses() -> impl Strategy<Value = Vec<Msg>> {
    (
        prop::collection::vec(
            (
                prop::sample::select(&CODES[..]),
                0u8..=1,
                prop_oneof![
                    Just(String::new()),
                    "[A-Z][a-z]{0,8}( [A-Z][a-z]{0,6}){0,2}"
                ],
                msg_params(),
            ),
            1..=4,
        ),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(v, until_close)| {
            let n = v.len();
            v.into_iter()
                .enumerate()
                .map(|(i, (code, minor, reason, mut p))| {
                    let last_close = until_close && i + 1 == n;
                    if last_close {
                        p.framing = Framing::None;
                    } else if matches!(p.framing, Framing::None) {
                        p.framing = Framing::Length { pre: " ", post: "" };
                    }
                    let start = format!("HTTP/1.{minor} {code} {reason}\r\n");
                    build(start, &p, !no_body(code), last_close)
                })
                .collect()
        })
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];

/// A pipelined sequence of requests, some after blank lines.
fn requests() -> impl Strategy<Value = Vec<(usize, Msg)>> {
    prop::collection::vec(
        (
            prop::sample::select(&METHODS[..]),
            "/[A-Za-z0-9/?=&.%-]{0,30}",
            0u8..=1,
            msg_params(),
            prop_oneof![6 => Just(0usize), 1 => 1usize..=2],
        ),
        1..=4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(m, target, minor, p, blank)| {
                let start = format!("{m} {target} HTTP/1.{minor}\r\n");
                let mut msg = build(start, &p, true, false);
                let mut wire = b"\r\n".repeat(blank);
                wire.extend_from_slice(&msg.wire);
                msg.wire = wire;
                (blank, msg)
            })
            .collect()
    })
}

/// One message as delivered: its head record, its concatenated body and its
/// trailer lines.
type Delivered<'a> = (&'a Rec, Vec<u8>, Vec<Vec<u8>>);

/// Per message: the head record, the concatenated body and the trailer lines.
fn group<'a>(recs: &'a [Rec], head: &str) -> Vec<Delivered<'a>> {
    let mut out: Vec<Delivered<'a>> = Vec::new();
    for r in recs {
        if r.name == head {
            out.push((r, Vec::new(), Vec::new()));
            continue;
        }
        let cur = out.last_mut().expect("a body record before any head");
        match r.name {
            "body" => cur.1.extend(r.one("data")),
            "trailers" => cur.2.extend(r.all("fields")),
            "chunk_size" | "chunk_end" => {}
            other => panic!("unexpected record {other}"),
        }
    }
    out
}

/// `Name: value` split as the interpreter's `headers` lines are compared.
fn split_header(line: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let at = line.iter().position(|&b| b == b':').expect("a colon");
    (line[..at].to_vec(), line[at + 1..].trim_ascii().to_vec())
}

fn httparse_headers(h: &[httparse::Header<'_>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    h.iter()
        .map(|h| (h.name.as_bytes().to_vec(), h.value.trim_ascii().to_vec()))
        .collect()
}

fn concat<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    parts.flatten().copied().collect()
}

proptest! {
    #![proptest_config(cfg(160))]

    /// Pipelined responses through http_response.aag against httparse and the
    /// generated bodies.
    #[test]
    fn http_responses_match_httparse(
        msgs in responses(),
        lens in seg_lens(),
        o in opts(),
    ) {
        let input = concat(msgs.iter().map(|m| &m.wire[..]));
        let out = run(interp("http_response"), &input, &lens, o);
        out.assert_clean("http_response");
        let got = group(&out.recs, "response");
        prop_assert_eq!(got.len(), msgs.len());
        for (i, (m, (r, body, trailers))) in msgs.iter().zip(&got).enumerate() {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut want = httparse::Response::new(&mut hs);
            let n = want.parse(&m.head).expect("httparse");
            prop_assert_eq!(n, httparse::Status::Complete(m.head.len()));
            prop_assert_eq!(r.one("version"), format!("HTTP/1.{}", want.version.unwrap()).into_bytes(), "message {}", i);
            prop_assert_eq!(r.one("status"), want.code.unwrap().to_string().into_bytes(), "message {}", i);
            prop_assert_eq!(r.one("reason"), want.reason.unwrap_or("").as_bytes().to_vec(), "message {}", i);
            let lines: Vec<_> = r.all("headers").iter().map(|l| split_header(l)).collect();
            prop_assert_eq!(lines, httparse_headers(want.headers), "message {}", i);
            prop_assert_eq!(body, &m.body, "message {} body", i);
            prop_assert_eq!(trailers, &m.trailers, "message {} trailers", i);
        }
    }

    /// Pipelined requests through http_request.aag against httparse and the
    /// generated bodies.
    #[test]
    fn http_requests_match_httparse(
        msgs in requests(),
        lens in seg_lens(),
        o in opts(),
    ) {
        let input = concat(msgs.iter().map(|m| &m.1.wire[..]));
        let out = run(interp("http_request"), &input, &lens, o);
        out.assert_clean("http_request");
        let got = group(&out.recs, "request");
        prop_assert_eq!(got.len(), msgs.len());
        let mut at = 0u64;
        for (i, ((blank, m), (r, body, trailers))) in msgs.iter().zip(&got).enumerate() {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut want = httparse::Request::new(&mut hs);
            let n = want.parse(&m.head).expect("httparse");
            prop_assert_eq!(n, httparse::Status::Complete(m.head.len()));
            prop_assert_eq!(r.one("method"), want.method.unwrap().as_bytes().to_vec(), "message {}", i);
            prop_assert_eq!(r.one("target"), want.path.unwrap().as_bytes().to_vec(), "message {}", i);
            prop_assert_eq!(r.one("version"), format!("HTTP/1.{}", want.version.unwrap()).into_bytes(), "message {}", i);
            let lines: Vec<_> = r.all("headers").iter().map(|l| split_header(l)).collect();
            prop_assert_eq!(lines, httparse_headers(want.headers), "message {}", i);
            prop_assert_eq!(body, &m.body, "message {} body", i);
            prop_assert_eq!(trailers, &m.trailers, "message {} trailers", i);
            // The request starts after the skipped blank lines.
            prop_assert_eq!(r.span.start, at + 2 * *blank as u64, "message {} start", i);
            at += m.wire.len() as u64;
        }
    }
}

// ---------------------------------------------------------------------------
// TLS

/// A TLS record: content type and fragment.
fn tls_records() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (
            20u8..=24,
            prop_oneof![
                2 => prop::collection::vec(any::<u8>(), 0..=16),
                1 => prop::collection::vec(any::<u8>(), 0..2000),
            ],
        ),
        0..6,
    )
}

fn tls_wire(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (ct, frag) in recs {
        v.push(*ct);
        v.extend_from_slice(&[3, 3]);
        v.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        v.extend_from_slice(frag);
    }
    v
}

proptest! {
    #![proptest_config(cfg(160))]

    /// Records, then optionally a record of an unknown content type (and more
    /// bytes): every earlier record is delivered, then the error names
    /// `tls_record`, `content_type` and the bad record's offset.
    #[test]
    fn tls_records_match(
        recs in tls_records(),
        bad in prop::option::weighted(0.4, (prop_oneof![3 => Just(25u8), 1 => 0u8..20, 1 => 25u8..=255], prop::collection::vec(any::<u8>(), 0..40))),
        lens in seg_lens(),
        o in opts(),
    ) {
        let good = tls_wire(&recs);
        let mut input = good.clone();
        if let Some((ct, rest)) = &bad {
            input.push(*ct);
            input.extend_from_slice(rest);
        }
        let out = run(interp("tls"), &input, &lens, o);
        prop_assert!(out.pool_full, "packets leaked");
        prop_assert_eq!(out.recs.len(), recs.len());
        let mut at = 0u64;
        for (r, (ct, frag)) in out.recs.iter().zip(&recs) {
            prop_assert_eq!(r.name, "tls_record");
            let names: Vec<_> = r.fields.iter().map(|f| f.name).collect();
            prop_assert_eq!(names, vec!["content_type", "version", "length", "fragment"]);
            prop_assert_eq!(r.one("content_type"), vec![*ct]);
            prop_assert_eq!(r.one("version"), vec![3u8, 3]);
            prop_assert_eq!(r.one("length"), (frag.len() as u16).to_be_bytes().to_vec());
            prop_assert_eq!(&r.one("fragment"), frag);
            prop_assert_eq!(r.span.clone(), at..at + 5 + frag.len() as u64);
            at += 5 + frag.len() as u64;
        }
        match bad {
            None => out.assert_clean("tls"),
            Some(_) => {
                prop_assert_eq!(out.state, AaState::Failed);
                let e = out.err.expect("an error");
                prop_assert_eq!(
                    e.clone(),
                    ParseError {
                        offset: good.len() as u64,
                        record: "tls_record",
                        field: Some("content_type"),
                        kind: ErrorKind::Rejected { message: "unknown content type" },
                    }
                );
                prop_assert_eq!(
                    e.to_string(),
                    format!("stream offset {}: record `tls_record`, field `content_type`: unknown content type", good.len())
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// RESP

#[derive(Debug, Clone)]
enum Frame {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    Array(Vec<Frame>),
    NullArray,
}

fn frame() -> impl Strategy<Value = Frame> {
    let bulk = prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            1 => Just(b'\r'),
            1 => Just(b'\n'),
            1 => Just(b'$'),
        ],
        0..300,
    );
    let leaf = prop_oneof![
        "[A-Za-z0-9 +:$*-]{0,20}".prop_map(Frame::Simple),
        "ERR [a-z ]{0,20}".prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Int),
        bulk.prop_map(Frame::Bulk),
        Just(b"\r\n".to_vec()).prop_map(Frame::Bulk),
        Just(Frame::NullBulk),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(Frame::Array)
    })
}

/// Wire bytes, and the expected records as (name, [(field, value)]).
fn resp_encode(f: &Frame, wire: &mut Vec<u8>, want: &mut Vec<(&'static str, Vec<Vec<u8>>)>) {
    let mut line = |wire: &mut Vec<u8>, kind: u8, l: &[u8]| {
        wire.push(kind);
        wire.extend_from_slice(l);
        wire.extend_from_slice(b"\r\n");
        want.push(("frame", vec![vec![kind], l.to_vec()]));
    };
    match f {
        Frame::Simple(s) => line(wire, b'+', s.as_bytes()),
        Frame::Error(s) => line(wire, b'-', s.as_bytes()),
        Frame::Int(n) => line(wire, b':', n.to_string().as_bytes()),
        Frame::NullBulk => line(wire, b'$', b"-1"),
        Frame::NullArray => line(wire, b'*', b"-1"),
        Frame::Bulk(d) => {
            line(wire, b'$', d.len().to_string().as_bytes());
            wire.extend_from_slice(d);
            wire.extend_from_slice(b"\r\n");
            want.push(("bulk_string", vec![d.clone()]));
        }
        Frame::Array(v) => {
            line(wire, b'*', v.len().to_string().as_bytes());
            for x in v {
                resp_encode(x, wire, want);
            }
        }
    }
}

proptest! {
    #![proptest_config(cfg(250))]

    /// Frames through resp.aag: one record per frame line (kind, line) and one
    /// per bulk string's data.
    #[test]
    fn resp_frames_match(
        frames in prop::collection::vec(frame(), 0..6),
        lens in seg_lens(),
        o in opts(),
    ) {
        let (mut input, mut want) = (Vec::new(), Vec::new());
        frames.iter().for_each(|f| resp_encode(f, &mut input, &mut want));
        let out = run(interp("resp"), &input, &lens, o);
        out.assert_clean("resp");
        let got: Vec<(&str, Vec<Vec<u8>>)> = out.recs.iter().map(|r| (r.name, r.vals())).collect();
        prop_assert_eq!(got, want);
        // Field names as in the grammar.
        for r in &out.recs {
            let names: Vec<_> = r.fields.iter().map(|f| f.name).collect();
            match r.name {
                "frame" => prop_assert_eq!(names, vec!["kind", "line"]),
                _ => prop_assert_eq!(names, vec!["data"]),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Resynchronisation after a gap, on small grammars of its own: the sync
// pattern (over `a`/`b`, so it often overlaps itself) must be found wherever
// the packets cut it, and the record started at it parsed as in one packet.

/// A protocol resynchronising on `pat`; `shape` picks its record.
fn sync_grammar(pat: &str, shape: u8) -> Arc<Grammar> {
    let body = match shape {
        0 => format!("start record r sync \"{pat}\" {{ x: bytes 1; }}"),
        1 => format!("start record r sync \"{pat}\" {{ x: until \"\\n\" max 1000; }}"),
        2 => format!("start record r sync after \"{pat}\" {{ x: until \"\\n\" max 1000; }}"),
        _ => format!(
            "start record r sync \"{pat}\" {{ x: bytes 2; y: until \"\\n\" | \"b\" max 1000; }}"
        ),
    };
    let src = format!("protocol s;\n{body}\n");
    Grammar::new(aa_dsl::compile_str(&src).unwrap_or_else(|e| panic!("{src}: {e:?}")))
}

proptest! {
    #![proptest_config(cfg(300))]

    /// After a gap, cutting the rest into random packets gives the records of
    /// the rest in one packet.
    #[test]
    fn sync_after_gap_is_independent_of_packets(
        pat in "[ab]{1,5}",
        shape in 0u8..4,
        rest in prop::collection::vec(prop_oneof![3 => Just(b'a'), 3 => Just(b'b'), 1 => Just(b'\n')], 0..40),
        lens in prop::collection::vec(1usize..=4, 1..5),
    ) {
        let g = sync_grammar(&pat, shape);
        // A record, one lost byte, then `rest`.
        let input = [&b"a\nz"[..], &rest].concat();
        let lost: BTreeSet<usize> = [1].into();
        let mut one = vec![0..2, 2..3];
        one.extend((input.len() > 3).then_some(3..input.len()));
        let mut cut = vec![0..2, 2..3];
        cut.extend(segments(&input[3..], &lens, false).into_iter().map(|r| r.start + 3..r.end + 3));
        let a = run_segs(g.parser(), &input, &one, &lost, PLAIN);
        let b = run_segs(g.parser(), &input, &cut, &lost, PLAIN);
        prop_assert!(a.pool_full && b.pool_full, "packets leaked");
        // The input may end inside a record: then both fail the same way.
        prop_assert_eq!((&b.recs, &b.err, b.state), (&a.recs, &a.err, a.state), "segments {:?}", cut);
    }
}

/// Minimal repro of the replay bug the property above finds: `sync "abc"`,
/// records of one byte; after a gap, `abc` arrives as `ab` + `c`. In one
/// packet the records are `a`, `b`, `c`; cut, `b` is lost.
#[test]
fn sync_replay_keeps_pattern_bytes_after_a_record_ends() {
    let g = sync_grammar("abc", 0);
    let input = b"qzabc";
    let lost: BTreeSet<usize> = [1].into();
    let one = run_segs(g.parser(), input, &[0..1, 1..2, 2..5], &lost, PLAIN);
    let cut = run_segs(g.parser(), input, &[0..1, 1..2, 2..4, 4..5], &lost, PLAIN);
    let xs = |o: &Out| o.recs.iter().map(|r| r.one("x")).collect::<Vec<_>>();
    assert_eq!(xs(&one), [b"q", b"a", b"b", b"c"]);
    assert_eq!(xs(&cut), xs(&one), "`ab` + `c` after the gap");
}

// ---------------------------------------------------------------------------
// Random small grammars: the interpreter on one packet against itself on
// random packets (the semantics say records do not depend on the cuts; `chunk`
// fields, which do by definition, are left out).

fn delim() -> impl Strategy<Value = String> {
    "[abc]{1,3}"
}

/// A field's maximum: mostly roomy, sometimes tight (length checks at packet
/// ends must agree with those at the field's end).
fn max() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(1000u32), 1 => 1u32..=4]
}

/// One item of a record, as `.aag` text; `{i}` is replaced by its index.
fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        (delim(), delim(), max()).prop_map(|(a, b, m)| format!("f{{i}}: until \"{a}\" | \"{b}\" max {m};")),
        (delim(), max()).prop_map(|(a, m)| format!("f{{i}}: until \"{a}\" | eof max {m};")),
        (1u8..=3).prop_map(|n| format!("f{{i}}: bytes {n};")),
        Just("f{i}: u16be;".to_string()),
        Just("f{i}: u8;".to_string()),
        "[abc,]{1,3}".prop_map(|l| format!("expect \"{l}\";")),
        (delim(), delim(), max()).prop_map(|(a, b, m)| format!(
            "repeat f{{i}}: until \"{a}\" | \"{b}\" max {m} count 64 stop after \"{a}\";"
        )),
        (delim(), max()).prop_map(|(a, m)| format!("repeat f{{i}}: until \"{a}\" max {m} count 64 stop on empty;")),
        Just("f{i}: until \",\" | \"\\n\" | eof quoted \"\\\"\" max 1000;".to_string()),
        Just("repeat f{i}: until \",\" | \"\\n\" | eof quoted \"\\\"\" max 1000 count 64 stop after \"\\n\" | eof;".to_string()),
        Just("l{i}: u8; f{i}: bytes l{i} % 4 max 8;".to_string()),
        Just("repeat f{i}: bytes 1 count 8 times 2;".to_string()),
    ]
}

fn record_items() -> impl Strategy<Value = String> {
    prop::collection::vec(item(), 1..4).prop_map(|items| {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| t.replace("{i}", &i.to_string()))
            .collect::<Vec<_>>()
            .join("\n    ")
    })
}

fn skip() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" skip \"\\n\""), Just(" skip \"c\"")]
}

/// A protocol of one record, or of two taking turns (every other record is
/// the second, counted in a global).
fn random_grammar() -> impl Strategy<Value = String> {
    (
        record_items(),
        skip(),
        prop::option::of((record_items(), skip(), 1u64..4)),
    )
        .prop_map(|(items, skip, second)| match second {
            None => format!("protocol g;\nstart record r{skip} {{\n    {items}\n}}\n"),
            Some((items2, skip2, k)) => format!(
                "protocol g;\nvar n: u64 = 0;\nstart record r{skip} {{\n    {items}\n    then {{\n        n = n + 1;\n        if n % {k} == 0 {{\n            next s;\n        }}\n    }}\n}}\nrecord s{skip2} {{\n    {items2}\n}}\n"
            ),
        })
}

proptest! {
    #![proptest_config(cfg(600))]

    #[test]
    fn random_grammars_are_independent_of_packets(
        src in random_grammar(),
        input in prop::collection::vec(
            prop_oneof![3 => Just(b'a'), 3 => Just(b'b'), 2 => Just(b'c'), 1 => Just(b','), 1 => Just(b'\n'), 1 => Just(b'"')],
            0..60,
        ),
        lens in prop::collection::vec(1usize..=4, 1..5),
    ) {
        let p = aa_dsl::compile_str(&src);
        prop_assume!(p.is_ok(), "rejected by the checks");
        let g = Grammar::new(p.unwrap());
        let none = BTreeSet::new();
        let whole = segments(&input, &[], false);
        let segs = segments(&input, &lens, false);
        let a = run_segs(g.parser(), &input, &whole, &none, PLAIN);
        let b = run_segs(g.parser(), &input, &segs, &none, PLAIN);
        prop_assert!(a.pool_full && b.pool_full, "packets leaked");
        prop_assert_eq!((&b.recs, &b.err, b.state), (&a.recs, &a.err, a.state), "grammar\n{}\nsegments {:?}", src, segs);
    }
}
