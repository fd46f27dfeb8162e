//! Differential tests: every shipped grammar's generated parser against the
//! interpreter running the same grammar (the reference semantics), inside the
//! application-aware stream, on random inputs — well-formed, mutated, truncated,
//! oversized — and random deliveries: segmentations down to 1-byte packets, lost
//! packets (gaps), a small record queue that makes the parsers pause, records read
//! and freed at random moments. Both must give the same records (name, span, every
//! field's tag, offset, length, flags and bytes, every variable), the same error
//! (its `Display`), the same counters, and give every packet back to the pool.
//!
//! Also: the typed record views, and no heap allocation by generated parsers in
//! steady state (a counting global allocator, switched on per thread).

use aa_dsl::interp::Grammar;
use aa_grammars::{csv, http_request, http_response, mqtt, resp, tls, tls_handshake};
use aa_runtime::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::ops::Range;
use std::sync::Arc;

/// `tests/kitchen.aag`: every construct of the language (compiled by build.rs);
/// the tests use its parser only.
#[allow(dead_code)]
mod kitchen {
    include!(concat!(env!("OUT_DIR"), "/kitchen.rs"));
}

/// `tests/names.aag`: names that are Rust keywords or clash with generated items.
#[allow(dead_code)]
mod names {
    include!(concat!(env!("OUT_DIR"), "/type.rs"));
}

/// Counts allocations made by a thread while counting is on for it.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Counting;

    pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        pub static COUNTING: Cell<bool> = const { Cell::new(false) };
    }

    fn note() {
        // `try_with`: the allocator may be called while thread-locals are torn down.
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            System.alloc(layout)
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            System.alloc_zeroed(layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note();
            System.realloc(ptr, layout, new_size)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
    }

    /// Runs `f` with counting on for this thread; returns the allocations it made.
    pub fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        let r = f();
        COUNTING.with(|c| c.set(false));
        (ALLOCS.load(Ordering::Relaxed), r)
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const ISN: u32 = 0xFFFF_FF00; // the sequence numbers wrap early in the stream

/// Small deterministic generator for choices derived from one proptest seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn range(&mut self, lo: u64, hi_incl: u64) -> u64 {
        lo + self.below(hi_incl - lo + 1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    fn piece<'a>(&mut self, v: &[&'a [u8]]) -> &'a [u8] {
        v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Running a parser

/// One record as the application sees it.
#[derive(Debug, PartialEq)]
struct Rec {
    name: &'static str,
    span: Range<u64>,
    /// (tag, offset, len, flags, bytes) of every field.
    fields: Vec<(u16, u64, u64, u8, Vec<u8>)>,
    /// Every variable of the record type, by tag.
    values: Vec<Option<u64>>,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    recs: Vec<Rec>,
    error: Option<String>,
    state: AaState,
    stats: AaStats,
    pool_full: bool,
    /// Signals the parser sent, taken after each packet.
    sent: Vec<u8>,
}

/// How the bytes are delivered.
#[derive(Debug, Clone)]
struct Plan {
    /// Packet lengths, in stream order (they add up to the input's length).
    packets: Vec<usize>,
    /// Packets that never arrive (their bytes become a gap).
    lost: Vec<bool>,
    /// Most records the stream holds.
    max_records: u32,
    /// Records are read and freed after every `read_every`-th packet.
    read_every: usize,
    /// Signals given to the parser before each packet (none past the end).
    signals: Vec<Vec<u8>>,
}

impl Plan {
    fn new(len: usize, gaps: bool, seed: u64) -> Plan {
        let mut r = Rng(seed);
        let mode = r.below(5);
        let mut packets = Vec::new();
        let mut left = len;
        while left > 0 {
            let n = match mode {
                0 => 1,
                1 => r.range(1, 4) as usize,
                2 => r.range(1, 40) as usize,
                3 => r.range(1, 600) as usize,
                _ => left,
            }
            .min(left);
            packets.push(n);
            left -= n;
        }
        let lost = packets
            .iter()
            .enumerate()
            // Never the last packet: its loss is just a shorter stream.
            .map(|(k, _)| gaps && k + 1 < packets.len() && r.chance(8))
            .collect();
        let max_records = *r.pick(&[1, 2, 3, 8, 4096]);
        let read_every = *r.pick(&[1, 1, 2, 5, 1000]);
        // Now and then a few small signals, as a request parser sends
        // (HTTP: 1 HEAD, 2 CONNECT), sometimes more than a queue holds.
        let signals = packets
            .iter()
            .map(|_| match r.below(10) {
                0..=6 => Vec::new(),
                7 | 8 => (0..r.range(1, 3)).map(|_| r.below(4) as u8).collect(),
                _ => (0..r.range(1, 20)).map(|_| r.below(16) as u8).collect(),
            })
            .collect();
        Plan {
            lost,
            packets,
            max_records,
            read_every,
            signals,
        }
    }
}

fn take<R: Parser>(s: &mut AaStream<PoolPacket, R>, out: &mut Vec<Rec>) {
    loop {
        let schema = s.schema();
        let mut n = 0;
        for r in s.read_aa_records(usize::MAX) {
            let nvalues = schema.records[r.kind() as usize].values.len();
            out.push(Rec {
                name: r.name(),
                span: r.span(),
                fields: r
                    .fields()
                    .map(|f| (f.tag(), f.offset(), f.len(), f.flags(), f.to_vec()))
                    .collect(),
                values: (0..nvalues as u16).map(|t| r.value(t)).collect(),
            });
            n += 1;
        }
        if n == 0 {
            return;
        }
        s.free_aa_records(n);
    }
}

fn run<R: Parser>(parser: R, input: &[u8], plan: &Plan) -> Outcome {
    let biggest = plan.packets.iter().copied().max().unwrap_or(1);
    let pool = PacketPool::new(plan.packets.len() as u32 + 1, biggest);
    let cfg = AaConfig {
        max_records: plan.max_records,
        ..AaConfig::default()
    };
    let mut s = AaStream::new(cfg, ISN, parser);
    // The plan gives signals, as the other direction would: `wait` pauses.
    s.expect_signals(true);
    let mut recs = Vec::new();
    let mut sent = Vec::new();
    let mut off = 0usize;
    let mut hole = false;
    for (k, &len) in plan.packets.iter().enumerate() {
        let data = &input[off..off + len];
        let seq = ISN.wrapping_add(off as u32);
        off += len;
        if plan.lost[k] {
            hole = true;
            continue;
        }
        let mut given = Signals::new();
        for &v in plan.signals.get(k).into_iter().flatten() {
            given.push(v);
        }
        s.give_signals(given);
        s.insert(seq, pool.packet_from(data).expect("pool sized"), 0..len);
        sent.extend(s.take_signals().iter());
        if hole {
            s.skip_to_next_segment();
            hole = false;
        }
        if (k + 1) % plan.read_every == 0 {
            take(&mut s, &mut recs);
        }
    }
    take(&mut s, &mut recs);
    s.finish();
    take(&mut s, &mut recs);
    sent.extend(s.take_signals().iter());
    let error = s.error().map(|e| e.to_string());
    let (state, stats) = (s.state(), s.stats());
    drop(s);
    Outcome {
        recs,
        error,
        state,
        stats,
        pool_full: pool.is_full(),
        sent,
    }
}

fn grammar(name: &str) -> Arc<Grammar> {
    let dir = if name == "kitchen" || name == "names" {
        "/tests"
    } else {
        ""
    };
    let path = format!("{}{dir}/{name}.aag", env!("CARGO_MANIFEST_DIR"));
    Grammar::new(aa_dsl::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

/// Runs both parsers and compares everything.
fn compare<R: Parser>(g: &Arc<Grammar>, generated: R, input: &[u8], plan: &Plan) -> Outcome {
    let want = run(g.parser(), input, plan);
    let got = run(generated, input, plan);
    assert!(want.pool_full, "the interpreter kept a packet");
    if got != want {
        let first = got
            .recs
            .iter()
            .zip(&want.recs)
            .position(|(a, b)| a != b)
            .unwrap_or(got.recs.len().min(want.recs.len()));
        panic!(
            "generated and interpreted parsers disagree\ninput: \"{}\"\nplan: {plan:?}\n\
             first differing record: #{first}\ngenerated: {:?}\ninterpreted: {:?}\n\
             errors: generated {:?}, interpreted {:?}\nrecords: generated {}, interpreted {}\n\
             stats: generated {:?}, interpreted {:?}\npool full: generated {}\n\
             signals sent: generated {:?}, interpreted {:?}",
            input.escape_ascii(),
            got.recs.get(first),
            want.recs.get(first),
            got.error,
            want.error,
            got.recs.len(),
            want.recs.len(),
            got.stats,
            want.stats,
            got.pool_full,
            got.sent,
            want.sent,
        );
    }
    got
}

// ---------------------------------------------------------------------------
// Inputs

/// Random damage: flipped, inserted and deleted bytes, or a cut.
fn mutate(r: &mut Rng, mut v: Vec<u8>, alphabet: &[u8]) -> Vec<u8> {
    if r.chance(60) {
        return v;
    }
    for _ in 0..r.range(1, 3) {
        let at = r.below(v.len() as u64 + 1) as usize;
        let b = if r.chance(70) {
            *r.pick(alphabet)
        } else {
            r.next() as u8
        };
        match r.below(4) {
            0 if at < v.len() => v[at] = b,
            1 => v.insert(at, b),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn csv_input(r: &mut Rng) -> Vec<u8> {
    const ALPHA: &[u8] = b"aaaabc,,,\"\"\"\r\n\n\n ;\t";
    let n = r.range(0, 300);
    let mut v: Vec<u8> = (0..n)
        .map(|_| {
            if r.chance(5) {
                r.next() as u8
            } else {
                *r.pick(ALPHA)
            }
        })
        .collect();
    if r.chance(10) {
        // A UTF-8 byte-order mark at the start: data for this grammar.
        v.splice(0..0, [0xEF, 0xBB, 0xBF]);
    }
    v
}

fn token(r: &mut Rng, alphabet: &[u8], lo: u64, hi: u64) -> Vec<u8> {
    (0..r.range(lo, hi)).map(|_| *r.pick(alphabet)).collect()
}

/// Headers of an HTTP message and how its body is framed.
enum Body {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

fn http_headers(r: &mut Rng, v: &mut Vec<u8>, body: &Body) {
    const NAME: &[u8] = b"abcdefghijklmnopqrstuvwxyz-ABCXYZ";
    const VALUE: &[u8] = b"abc xyz0123456789;=,/:-\t";
    let extra = r.range(0, 4);
    let framing = r.below(extra + 1);
    for h in 0..=extra {
        if h == framing {
            match body {
                Body::Length(n) => {
                    // Spaces around the name too: `trim` drops them.
                    let name = *r.pick(&[
                        "Content-Length",
                        "content-length",
                        "CONTENT-LENGTH",
                        " Content-Length",
                        "Content-Length\t",
                        "\tcontent-length  ",
                    ]);
                    let sp = *r.pick(&["", " ", "  ", "\t"]);
                    v.extend_from_slice(format!("{name}:{sp}{n}{sp}\r\n").as_bytes());
                }
                Body::Chunked => {
                    let name = *r.pick(&["Transfer-Encoding", "transfer-encoding"]);
                    let val = *r.pick(&["chunked", " Chunked", " gzip, chunked", "CHUNKED "]);
                    v.extend_from_slice(format!("{name}:{val}\r\n").as_bytes());
                }
                Body::None | Body::UntilClose => {}
            }
        }
        if h < extra && r.chance(20) {
            // Names that are nearly a framing header's, compared like one
            // in the generated code's fast test of names.
            let near = *r.pick(&[
                "Content-Lengths: 7",
                "Content-Lengt: 7",
                "Content-Length-X: 7",
                "Content-Length 7: 7",
                "Xontent-Length: 7",
                "Content-Length x",
                "Transfer-Encodings: chunked",
                "Transfer-Encodinq: chunked",
                "Transfer-Encoding x: chunked",
                "C: Content-Length: 7",
            ]);
            v.extend_from_slice(near.as_bytes());
            v.extend_from_slice(b"\r\n");
        } else if h < extra {
            v.extend(token(r, NAME, 1, 12));
            v.extend_from_slice(b": ");
            v.extend(token(r, VALUE, 0, 20));
            v.extend_from_slice(b"\r\n");
        }
    }
    v.extend_from_slice(b"\r\n");
}

fn http_body(r: &mut Rng, v: &mut Vec<u8>, body: &Body) {
    const DATA: &[u8] = b"HTTP/1.1 200\r\nabcdef0123";
    match body {
        Body::None => {}
        Body::Length(n) => v.extend((0..*n).map(|_| *r.pick(DATA))),
        Body::UntilClose => v.extend((0..r.range(0, 100)).map(|_| *r.pick(DATA))),
        Body::Chunked => {
            for _ in 0..r.range(0, 3) {
                let n = r.range(1, 40) as usize;
                let size = if r.chance(50) {
                    format!("{n:x}")
                } else {
                    format!("{n:X}")
                };
                let ext = *r.pick(&["", "", ";x=1", " ;ext"]);
                v.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                v.extend((0..n).map(|_| *r.pick(DATA)));
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(b"0\r\n");
            for _ in 0..r.range(0, 2) {
                v.extend_from_slice(b"X-Trailer: yes\r\n");
            }
            v.extend_from_slice(b"\r\n");
        }
    }
}

fn http_request_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.range(0, 4) {
        if r.chance(20) {
            v.extend_from_slice(b"\r\n");
        }
        let method = *r.pick(&["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "CONNECT"]);
        let target = token(r, b"/abc?=&%0123", 1, 30);
        v.extend_from_slice(method.as_bytes());
        v.push(b' ');
        v.extend(target);
        v.extend_from_slice(b" HTTP/1.1\r\n");
        let body = match r.below(4) {
            0 => Body::None,
            1 => Body::Chunked,
            _ => Body::Length(r.range(0, 60) as usize),
        };
        http_headers(r, &mut v, &body);
        http_body(r, &mut v, &body);
    }
    if r.chance(10) {
        // A bad number in Content-Length, or one too big.
        let bad = *r.pick(&["1x", "", "99999999999999999999999", "-1"]);
        v.extend_from_slice(format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n").as_bytes());
    }
    if r.chance(5) {
        // A bad chunk size.
        v.extend_from_slice(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    }
    mutate(r, v, b"\r\n :0aG")
}

fn http_response_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    if r.chance(10) {
        // Garbage before the first response.
        v.extend(token(r, b"xyzHTTP/ \r\n", 0, 20));
    }
    let n = r.range(0, 4);
    for k in 0..n {
        let code = *r.pick(&[
            "100", "103", "101", "200", "200", "200", "204", "304", "404", "500", "2x0", "99",
        ]);
        let version = *r.pick(&["HTTP/1.1", "HTTP/1.0"]);
        v.extend_from_slice(format!("{version} {code} ").as_bytes());
        v.extend(token(r, b"OK Not Found", 0, 12));
        v.extend_from_slice(b"\r\n");
        if code == "101" && r.chance(50) {
            // A WebSocket upgrade: frames from here on.
            v.extend_from_slice(b"Upgrade: websocket\r\n\r\n");
            ws_frames(r, &mut v);
            break;
        }
        let body = match r.below(5) {
            0 => Body::None,
            1 => Body::Chunked,
            2 if k + 1 == n => Body::UntilClose,
            _ => Body::Length(r.range(0, 60) as usize),
        };
        http_headers(r, &mut v, &body);
        let bodiless = matches!(code, "100" | "101" | "204" | "304" | "99");
        if !bodiless {
            http_body(r, &mut v, &body);
        }
    }
    if r.chance(10) {
        let bad = *r.pick(&["1x", "", "99999999999999999999999"]);
        v.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n").as_bytes());
    }
    mutate(r, v, b"\r\n :0aHTP/")
}

/// One to four WebSocket frames: any opcode (reserved ones too), FIN or
/// not, masked or not, 7-, 16- or 64-bit lengths (a wrong one now and then).
fn ws_frames(r: &mut Rng, v: &mut Vec<u8>) {
    for _ in 0..r.range(1, 4) {
        let opcode = r.below(16) as u8;
        v.push(u8::from(r.chance(80)) << 7 | opcode);
        let masked = r.chance(50);
        let m = if masked { 0x80 } else { 0 };
        let enc = r.below(3);
        let len = if enc == 0 {
            r.range(0, 125)
        } else {
            r.range(0, 300)
        };
        match enc {
            0 => v.push(m | len as u8),
            1 => {
                v.push(m | 126);
                v.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                v.push(m | 127);
                let top = if r.chance(10) { 1 << 63 } else { 0 };
                v.extend_from_slice(&(len | top).to_be_bytes());
            }
        }
        if masked {
            v.extend((0..4).map(|_| r.next() as u8));
        }
        v.extend((0..len).map(|_| r.next() as u8));
    }
}

fn tls_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.range(0, 5) {
        let ct = if r.chance(90) {
            r.range(20, 24) as u8
        } else {
            r.next() as u8
        };
        v.push(ct);
        v.extend_from_slice(&[3, r.range(0, 4) as u8]);
        let len = if r.chance(95) {
            r.range(0, 200) as u16
        } else {
            r.next() as u16
        };
        v.extend_from_slice(&len.to_be_bytes());
        let n = if r.chance(90) {
            len as usize
        } else {
            r.range(0, 300) as usize
        };
        v.extend((0..n.min(20000)).map(|_| r.next() as u8));
    }
    mutate(r, v, &[0, 3, 20, 23, 0x47])
}

fn resp_frame(r: &mut Rng, v: &mut Vec<u8>, depth: u32) {
    match r.below(if depth > 2 { 4 } else { 5 }) {
        0 => {
            v.push(*r.pick(b"+-"));
            v.extend(token(r, b"OK ERR wrong", 0, 15));
            v.extend_from_slice(b"\r\n");
        }
        1 => v.extend_from_slice(format!(":{}\r\n", r.below(100_000)).as_bytes()),
        2 => {
            let n = r.range(0, 40) as usize;
            v.extend_from_slice(format!("${n}\r\n").as_bytes());
            v.extend((0..n).map(|_| *r.pick(b"ab\r\n$*")));
            v.extend_from_slice(b"\r\n");
        }
        3 => v.extend_from_slice(if r.chance(50) { b"$-1\r\n" } else { b"*-1\r\n" }),
        _ => {
            let n = r.range(0, 3);
            v.extend_from_slice(format!("*{n}\r\n").as_bytes());
            for _ in 0..n {
                resp_frame(r, v, depth + 1);
            }
        }
    }
}

fn resp_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.range(0, 6) {
        resp_frame(r, &mut v, 0);
    }
    if r.chance(10) {
        let bad = *r.pick(&[
            "$abc\r\n",
            "$99999999999999999999999\r\n",
            "?x\r\n",
            "$3\r\nabcXY",
        ]);
        v.extend_from_slice(bad.as_bytes());
    }
    mutate(r, v, b"\r\n$*+:-0123")
}

/// An MQTT Remaining Length: 7 bits a byte, low first, the top bit for more.
fn mqtt_varint(v: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            return;
        }
        v.push(b | 0x80);
    }
}

fn mqtt_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.range(0, 6) {
        let kind = if r.chance(95) {
            r.range(1, 14)
        } else {
            *r.pick(&[0, 15])
        };
        let flags = if kind == 3 { r.below(16) } else { r.below(3) };
        v.push((kind << 4 | flags) as u8);
        let qos = flags >> 1 & 3;
        let mut body = Vec::new();
        if kind == 3 {
            let topic = token(r, b"a/b+#", 0, 30);
            body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
            body.extend(topic);
        }
        if (kind == 3 && qos > 0) || (4..=11).contains(&kind) {
            body.extend_from_slice(&(r.next() as u16).to_be_bytes());
        }
        let payload = match r.below(4) {
            0 => 0,
            1 => r.range(1, 10),
            2 => r.range(100, 3000),
            _ => r.range(16_000, 20_000),
        };
        body.extend((0..payload).map(|_| r.next() as u8));
        let mut len = body.len() as u64;
        if r.chance(5) {
            len = r.below(len + 3);
        }
        if r.chance(3) {
            // A Remaining Length of five bytes.
            v.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]);
        } else {
            mqtt_varint(&mut v, len);
        }
        v.extend(body);
    }
    mutate(r, v, &[0x30, 0x32, 0x82, 0x80, 0x00, 0x01, 0xff])
}

/// A TLS handshake stream: ClientHellos and ServerHellos with random
/// extensions (server names, ALPN lists, supported versions, others), other
/// handshake messages (some longer than their record), ChangeCipherSpec,
/// application data; lengths now and then wrong.
fn tls_handshake_input(r: &mut Rng) -> Vec<u8> {
    fn b16(v: usize) -> [u8; 2] {
        (v as u16).to_be_bytes()
    }
    let mut v = Vec::new();
    for _ in 0..r.range(0, 5) {
        let kind = r.below(6);
        let payload: Vec<u8> = if kind <= 2 {
            let mut msgs = Vec::new();
            for _ in 0..r.range(1, 2) {
                let hello = r.below(3) as u8; // 0 other, 1 client, 2 server
                let mut body = Vec::new();
                if hello > 0 {
                    body.extend_from_slice(&[3, 3]);
                    body.extend((0..32).map(|_| r.next() as u8));
                    let sid = *r.pick(&[0usize, 32, 33]);
                    body.push(sid as u8);
                    body.extend((0..sid.min(32)).map(|_| r.next() as u8));
                    if hello == 1 {
                        let n = 2 * r.range(1, 4) as usize;
                        body.extend_from_slice(&b16(n));
                        body.extend((0..n).map(|_| r.next() as u8));
                        body.extend_from_slice(&[1, 0]);
                    } else {
                        body.extend_from_slice(&[0x13, 1, 0]);
                    }
                    if r.chance(90) {
                        let mut exts = Vec::new();
                        for _ in 0..r.range(0, 4) {
                            let (t, data): (u16, Vec<u8>) = match r.below(5) {
                                0 => {
                                    let host = token(r, b"abc.-", 0, 20);
                                    let e = [&[0u8][..], &b16(host.len()), &host].concat();
                                    (0, [&b16(e.len())[..], &e].concat())
                                }
                                1 => {
                                    let mut list = Vec::new();
                                    for _ in 0..r.range(0, 3) {
                                        let n = token(r, b"h2/.1tp", 0, 9);
                                        list.push(n.len() as u8);
                                        list.extend(n);
                                    }
                                    (16, [&b16(list.len())[..], &list].concat())
                                }
                                2 => (43, vec![3, 4]),
                                3 => (43, vec![2, 3, 4]),
                                _ => (
                                    r.below(65536) as u16,
                                    (0..r.range(0, 8)).map(|_| r.next() as u8).collect(),
                                ),
                            };
                            exts.extend_from_slice(&t.to_be_bytes());
                            exts.extend_from_slice(&b16(data.len()));
                            exts.extend(data);
                        }
                        body.extend_from_slice(&b16(exts.len()));
                        body.extend(exts);
                    }
                } else {
                    body.extend((0..r.range(0, 60)).map(|_| r.next() as u8));
                }
                let t = if hello > 0 {
                    hello
                } else {
                    *r.pick(&[4u8, 8, 11, 14, 20])
                };
                msgs.push(t);
                msgs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
                msgs.extend(body);
            }
            msgs
        } else {
            (0..r.range(0, 300)).map(|_| r.next() as u8).collect()
        };
        let ct = match kind {
            0..=2 => 22,
            3 => 20,
            4 => 23,
            _ => *r.pick(&[21u8, 24, 25]),
        };
        // Sometimes cut a handshake over two records.
        let cut = if ct == 22 && r.chance(20) {
            r.below(payload.len() as u64 + 1) as usize
        } else {
            payload.len()
        };
        for part in [&payload[..cut], &payload[cut..]] {
            if part.is_empty() && cut == payload.len() && !payload.is_empty() {
                continue;
            }
            v.extend_from_slice(&[ct, 3, 3]);
            v.extend_from_slice(&b16(part.len()));
            v.extend_from_slice(part);
        }
    }
    mutate(r, v, &[0, 1, 2, 3, 16, 20, 22, 23, 43])
}

/// One record of `tests/kitchen.aag` (and what it leads to), mostly valid.
fn kitchen_record(r: &mut Rng, v: &mut Vec<u8>) {
    if r.chance(20) {
        v.extend(token(r, b" \r\n", 1, 3));
    }
    if r.chance(15) {
        // Where the parser resynchronises after a gap (the pattern overlaps
        // itself: "<" and "<<" may each begin it).
        v.extend_from_slice(r.piece(&[b"<<!", b"<<<!", b"<<<<!!"]));
    }
    v.push(b'<');
    let kind = r.below(8) as u8;
    let tag = match r.below(20) {
        0 => 126,
        1 => 60,
        2 => 255,
        // Kind 6 above 127 leads to `timed`.
        _ => kind + 8 * r.below(if kind == 6 { 32 } else { 16 }) as u8,
    };
    v.push(tag);
    let kind = tag % 8;
    if kind == 7 {
        return;
    }
    let name: &[u8] = r.piece(&[
        b"ab",
        b"AB=b",
        b" ab =x",
        b"a=B",
        b"zz",
        b"x",
        b"ba",
        b"'q''x'",
        b"'a:b'",
        b"'ab'cd",
        b"",
        b"ab",
        b"x",
        b"a=B",
        b"'x'",
        b"q",
        b"''",
        b"ab",
        b"x",
        b"'open",
        b"abcdefghijkl",
    ]);
    v.extend_from_slice(name);
    v.extend_from_slice(r.piece(&[b"::", b":", b">>"]));
    if name == b"zz" {
        return;
    }
    for _ in 0..kind.min(3) {
        v.extend_from_slice(r.piece(&[
            b"", b"a", b"ab!", b"xyz", b"a", b"", b"xyz", b"b", b"toolong",
        ]));
        v.extend_from_slice(r.piece(&[b";", b"..", b"."]));
    }
    match kind {
        0 => {
            let n = r.below(24);
            v.extend_from_slice(format!("{n}\n").as_bytes());
            v.extend((0..n).map(|_| *r.pick(b"<ab\n")));
            v.extend_from_slice(b"\n  ");
        }
        1 => {
            for _ in 0..r.range(0, 7) {
                v.extend_from_slice(r.piece(&[b"w", b"\"a,b\"", b"\"x\"\"y\"", b"", b"long word"]));
                v.extend_from_slice(r.piece(&[b",", b",,"]));
            }
            v.extend_from_slice(r.piece(&[b"|", b"\n", b"w|", b"\"q\"\n"]));
        }
        2 => {
            let n = r.below(10);
            v.extend_from_slice(format!("{}{n:x}\n", *r.pick(&["", " ", "0"])).as_bytes());
            v.extend((0..n).map(|_| *r.pick(b" xy")));
        }
        3 => {
            let b: u32 = if r.chance(80) { 1 << 20 } else { 3 };
            v.extend_from_slice(&(r.below(1000) as u16).to_le_bytes());
            v.extend_from_slice(&b.to_be_bytes());
            v.extend_from_slice(&r.next().to_le_bytes());
            let d = r.below(256) as u8;
            v.push(d);
            v.extend((0..d % 4).map(|_| r.next() as u8));
            v.extend((0..d % 10).map(|_| r.next() as u8));
            // `v`: bytes of 128 and up go on, mostly.
            for _ in 0..r.range(0, 3) {
                v.push(*r.pick(&[130, 255, 128, 200]));
            }
            v.push(*r.pick(&[0, 127, 200, 129]));
            for _ in 0..r.range(0, 3) {
                v.extend_from_slice(r.piece(&[
                    b"e\n",
                    b"eeeeee\n",
                    b"'e\n'\n",
                    b"''\n",
                    b"'a''b'c\n",
                ]));
            }
            v.push(b'\n');
        }
        4 if r.chance(70) => {
            // Would make the rest of the stream a `tail`: a `marker` instead.
            v.push(b'\n');
        }
        6 if tag > 127 => kitchen_timed(r, v),
        _ => {}
    }
}

/// A `timed` record (and the `lines` after it, when `c` > 127).
fn kitchen_timed(r: &mut Rng, v: &mut Vec<u8>) {
    // `end` after `c` when `c % 16 > 11`; `times c % 4`.
    let c = *r.pick(&[0u8, 1, 2, 3, 4, 5, 12, 13, 128, 129, 130, 131, 140, 255]);
    v.push(c);
    if c % 16 <= 11 {
        v.push(r.next() as u8);
        v.extend_from_slice(r.piece(&[b"", b"a", b"xyz", b"ab", b"long"]));
        v.push(b';');
        for _ in 0..c % 4 {
            v.extend_from_slice(r.piece(&[b"", b"e", b"ab", b"e", b"toolong"]));
            v.push(b',');
        }
    }
    if c > 127 {
        for _ in 0..r.range(0, 4) {
            v.extend_from_slice(r.piece(&[b"", b"a", b"bb", b"a", b"long!"]));
            v.push(b'|');
        }
        v.extend_from_slice(r.piece(&[b"z\n", b"\n", b"zz\n", b"zz"]));
    }
}

/// A `msg` leading to a `timed` record, with the stream ending anywhere in it
/// or in the `lines` after it (`until … | eof` fields, `times`, `stop after`).
fn kitchen_timed_at_the_end(r: &mut Rng, v: &mut Vec<u8>) {
    let tag = 6 + 8 * r.range(16, 31) as u8;
    v.extend_from_slice(&[b'<', tag]);
    v.extend_from_slice(b"n:a;ab;;");
    let at = v.len();
    kitchen_timed(r, v);
    if r.chance(70) {
        let cut = r.range(at as u64 + 1, v.len() as u64) as usize;
        v.truncate(cut);
    }
}

/// Bytes for `tests/kitchen.aag`: a few records, maybe damaged.
fn kitchen_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.range(0, 6) {
        kitchen_record(r, &mut v);
    }
    if r.chance(20) {
        kitchen_timed_at_the_end(r, &mut v);
    }
    mutate(r, v, b"<:;.,|\n\"' ")
}

// ---------------------------------------------------------------------------
// The properties

/// `cases` cases, or `$PROPTEST_CASES` for a longer run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn csv_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("csv");
        let input = csv_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), true, plan_seed);
        compare(&g, csv::CsvParser::new(), &input, &plan);
    }

    #[test]
    fn http_request_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("http_request");
        let input = http_request_input(&mut Rng(input_seed));
        // Requests resynchronise after lost bytes: gaps in every plan.
        let plan = Plan::new(input.len(), true, plan_seed);
        compare(&g, http_request::HttpRequestParser::new(), &input, &plan);
    }

    #[test]
    fn http_response_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("http_response");
        let input = http_response_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), true, plan_seed);
        compare(&g, http_response::HttpResponseParser::new(), &input, &plan);
    }

    #[test]
    fn tls_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("tls");
        let input = tls_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), plan_seed % 8 == 0, plan_seed);
        compare(&g, tls::TlsParser::new(), &input, &plan);
    }

    #[test]
    fn resp_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("resp");
        let input = resp_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), plan_seed % 8 == 0, plan_seed);
        compare(&g, resp::RespParser::new(), &input, &plan);
    }

    #[test]
    fn tls_handshake_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("tls_handshake");
        let input = tls_handshake_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), plan_seed % 8 == 0, plan_seed);
        compare(&g, tls_handshake::TlsHandshakeParser::new(), &input, &plan);
    }

    #[test]
    fn mqtt_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("mqtt");
        let input = mqtt_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), plan_seed % 8 == 0, plan_seed);
        compare(&g, mqtt::MqttParser::new(), &input, &plan);
    }
}

proptest! {
    // Every construct of the language, so more cases: a `wait` shows only
    // when a signal comes after the record that waits for it.
    #![proptest_config(config(2500))]

    #[test]
    fn kitchen_same_as_interpreter(input_seed: u64, plan_seed: u64) {
        let g = grammar("kitchen");
        let input = kitchen_input(&mut Rng(input_seed));
        let plan = Plan::new(input.len(), true, plan_seed);
        compare(&g, kitchen::KitchenParser::new(), &input, &plan);
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Fields and records at and past their limits: 65536-byte CSV fields, 1024
    /// fields in a row, 8192-byte HTTP headers, 128 headers.
    #[test]
    fn limits_same_as_interpreter(which in 0u8..6, extra in 0usize..3, plan_seed: u64) {
        let (name, input): (&str, Vec<u8>) = match which {
            0 => ("csv", [b"x,".to_vec(), vec![b'a'; 65535 + extra], b"\n".to_vec()].concat()),
            1 => ("csv", [b"\"".to_vec(), vec![b'a'; 65535 + extra], b"\"\r\n".to_vec()].concat()),
            2 => ("csv", [vec![b','; 1022 + extra], b"\nz".to_vec()].concat()),
            3 => (
                "http_request",
                [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'v'; 8187 + extra], b"\r\n\r\n".to_vec()].concat(),
            ),
            4 => (
                "http_response",
                [b"HTTP/1.1 200 OK\r\n".to_vec(), b"A: b\r\n".repeat(127 + extra), b"\r\n".to_vec()].concat(),
            ),
            _ => ("resp", [b"+".to_vec(), vec![b'o'; 65535 + extra], b"\r\n".to_vec()].concat()),
        };
        let g = grammar(name);
        let mut plan = Plan::new(input.len(), false, plan_seed);
        if plan.packets.len() > 2000 {
            // Keep the packets of these long inputs within the stream's
            // fragment cap (a record in progress holds all of its packets).
            let size = 64 + (plan_seed >> 32) as usize % 1400;
            plan.packets = input.chunks(size).map(<[u8]>::len).collect();
            plan.lost = vec![false; plan.packets.len()];
        }
        match name {
            "csv" => compare(&g, csv::CsvParser::new(), &input, &plan),
            "http_request" => compare(&g, http_request::HttpRequestParser::new(), &input, &plan),
            "http_response" => compare(&g, http_response::HttpResponseParser::new(), &input, &plan),
            _ => compare(&g, resp::RespParser::new(), &input, &plan),
        };
    }
}

/// The deterministic cases of the interpreter's smoke test, through the
/// generated parsers, at every cut.
#[test]
fn smoke_every_cut() {
    let cases: Vec<(&str, &[u8])> = vec![
        ("csv", b"a,b\r\n\"x,\"\"y\",z\n\nlast,\"q\""),
        ("csv", b"\"ab\"cd,\"\",\"unterminated"),
        ("http_response", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
        ("http_response", b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
        ("http_request", b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n"),
        ("tls", b"\x17\x03\x03\x00\x03abc\x16\x03\x01\x00\x00"),
        ("tls", b"\x17\x03\x03\x00\x05ab"),
        ("resp", b"*2\r\n$3\r\nfoo\r\n:42\r\n$-1\r\n+OK\r\n"),
        ("mqtt", b"\x32\x0a\x00\x03a/b\x00\x07hiy\x40\x02\x00\x07\xc0\x00\x30\x80\x01\x00\x00"),
    ];
    for (name, input) in cases {
        let g = grammar(name);
        for cut in 1..=input.len().max(1) {
            let packets: Vec<usize> = input.chunks(cut).map(<[u8]>::len).collect();
            for max_records in [1, 4096] {
                let plan = Plan {
                    lost: vec![false; packets.len()],
                    packets: packets.clone(),
                    max_records,
                    read_every: 1,
                    signals: Vec::new(),
                };
                let got = match name {
                    "csv" => compare(&g, csv::CsvParser::new(), input, &plan),
                    "http_request" => {
                        compare(&g, http_request::HttpRequestParser::new(), input, &plan)
                    }
                    "http_response" => {
                        compare(&g, http_response::HttpResponseParser::new(), input, &plan)
                    }
                    "tls" => compare(&g, tls::TlsParser::new(), input, &plan),
                    "mqtt" => compare(&g, mqtt::MqttParser::new(), input, &plan),
                    _ => compare(&g, resp::RespParser::new(), input, &plan),
                };
                assert!(got.pool_full);
            }
        }
    }
}

/// Awkward names compile, and parse as the interpreter does.
#[test]
fn odd_names() {
    let g = grammar("names");
    let input: &[u8] = b"x\n!\nab\n?xy\nz\n!q8";
    for cut in 1..=input.len() {
        let packets: Vec<usize> = input.chunks(cut).map(<[u8]>::len).collect();
        let plan = Plan {
            lost: vec![false; packets.len()],
            packets,
            max_records: 4096,
            read_every: 1,
            signals: Vec::new(),
        };
        let got = compare(&g, names::TypeParser::new(), input, &plan);
        assert!(got.recs.len() >= 4, "{got:?}");
    }
    // The views and constants have usable names.
    let _ = (names::kinds::TYPE_PARSER, names::kinds::RESULT);
    let _ = names::fields::state::INTO_RECORD;
    let _ = names::fields::result::SELF;
    let _ = names::values::state::FOO_BAR;
    let _ = |r: &names::State<'_, PoolPacket>| {
        (r.match_(), r.fn_().is_some(), r.into_record2().is_some())
    };
    let _ = |r: &names::Result<'_, PoolPacket>| r.self_().is_some();
    let _ = |r: &names::TypeParser2<'_, PoolPacket>| (r.kinds().is_some(), r.x_().is_some());
    let _ = |r: Record<'_, PoolPacket>| match names::TypeRecord::from_record(r) {
        Some(names::TypeRecord::Result(x)) => x.self_().is_some(),
        _ => false,
    };
}

// ---------------------------------------------------------------------------
// Cases both once got wrong alike (tests/kitchen.aag): they must agree, and give
// the outcome the semantics (aa_dsl::ir) say.

/// `input` through the generated kitchen parser and the interpreter at every
/// cut, with a record queue of 1 and of 4096: they agree, end with `error`,
/// and deliver records named `names`, the same at every cut (returned).
fn kitchen_at_every_cut(input: &[u8], names: &[&str], error: Option<&str>) -> Vec<Rec> {
    let g = grammar("kitchen");
    let mut first: Option<Vec<Rec>> = None;
    for cut in 1..=input.len() {
        let packets: Vec<usize> = input.chunks(cut).map(<[u8]>::len).collect();
        for max_records in [1, 4096] {
            let plan = Plan {
                lost: vec![false; packets.len()],
                packets: packets.clone(),
                max_records,
                read_every: 1,
                signals: Vec::new(),
            };
            let got = compare(&g, kitchen::KitchenParser::new(), input, &plan);
            let ctx = format!(
                "{:?}, cut {cut}, queue {max_records}",
                input.escape_ascii().to_string()
            );
            assert_eq!(got.error.as_deref(), error, "{ctx}");
            let got_names: Vec<&str> = got.recs.iter().map(|r| r.name).collect();
            assert_eq!(got_names, names, "{ctx}");
            match &first {
                None => first = Some(got.recs),
                Some(f) => assert_eq!(&got.recs, f, "{ctx}"),
            }
        }
    }
    first.expect("a non-empty input")
}

/// A `msg` of kind 3: an `ints` record follows.
const MSG_INTS: &[u8] = b"<\x03n:a;a;a;";
/// A `msg` of kind 6 above 127: a `timed` record follows (the `times` of its
/// `items` is 3).
const MSG_TIMED: &[u8] = b"<\x86n:a;a;a;";

/// An `ints` record (`d` = 0: no `f`; one `e`).
fn ints(a: u16, b: u32) -> Vec<u8> {
    [
        &a.to_le_bytes()[..],
        &b.to_be_bytes(),
        &[0; 8],
        // `d`; no `f` or `g` for a `d` of 0; one `v`.
        &[0],
        &[0],
        b"e\n\n",
    ]
    .concat()
}

/// A `fail` in a `then` block reports the record's end, at every cut.
#[test]
fn then_fail_reports_the_record_end() {
    let rec = ints(1000, 3);
    let input = [MSG_INTS, &rec, b"  "].concat();
    let at = MSG_INTS.len() + rec.len();
    let e = format!("stream offset {at}: record `ints`: a > b");
    kitchen_at_every_cut(&input, &["msg"], Some(&e));
}

/// The end of the stream ends `x` and enters `t`, a `times c % 4` repeat of an
/// `until … | eof` field: `times` is this record's, and 0 means no element.
#[test]
fn times_is_evaluated_at_the_end_of_the_stream() {
    const T: u16 = 3;
    for (c, elements) in [(4u8, 0), (5, 1)] {
        let input = [MSG_TIMED, &[c, 9], b"xy"].concat();
        let recs = kitchen_at_every_cut(&input, &["msg", "timed"], None);
        let t = recs[1].fields.iter().filter(|f| f.0 == T).count();
        assert_eq!(t, elements, "c {c}: {:?}", recs[1]);
        // `y`, `len(x)`, an empty `t`.
        assert_eq!(recs[1].values, [Some(9 + 2 * 256 + (1 << 24))], "c {c}");
    }
    // Two elements wanted; the end of the stream ends the first.
    let input = [MSG_TIMED, &[6, 9], b"xy"].concat();
    let e = format!(
        "stream offset {}: record `timed`, field `t`: stream ended inside the record",
        input.len()
    );
    kitchen_at_every_cut(&input, &["msg"], Some(&e));
}

/// `lines` is a `stop after "\n"` repeat of an `until … | eof` field: the end
/// of the stream ends an element but not the repeat, and truncates the record.
#[test]
fn stop_after_without_eof_truncates_at_the_end_of_the_stream() {
    // `c` = 140: `end` after it, then `lines`.
    let open = [MSG_TIMED, &[140], b"a|b|c"].concat();
    let e = format!(
        "stream offset {}: record `lines`, field `l`: stream ended inside the record",
        open.len()
    );
    kitchen_at_every_cut(&open, &["msg", "timed"], Some(&e));
    let closed = [&open[..], b"\n"].concat();
    let recs = kitchen_at_every_cut(&closed, &["msg", "timed", "lines"], None);
    assert_eq!(recs[2].fields.len(), 3);
}

/// Fields a record does not parse read as empty and 0, not as the fields of
/// the same index of earlier records (`ints` sets fields 1 to 3, `msg` 2).
#[test]
fn fields_not_parsed_in_the_record_read_as_empty_and_zero() {
    let before = [MSG_INTS, &ints(3, 1 << 20)].concat();
    // `c` = 12: `end` after it; nothing of `y`, `x`, `t`.
    let input = [&before[..], MSG_TIMED, &[12]].concat();
    let recs = kitchen_at_every_cut(&input, &["msg", "ints", "msg", "timed"], None);
    assert_eq!(recs[3].values, [Some(1 << 24)]);
    // `c` = 4: no element of `t`.
    let input = [&before[..], MSG_TIMED, &[4, 9], b"xy;"].concat();
    let recs = kitchen_at_every_cut(&input, &["msg", "ints", "msg", "timed"], None);
    assert_eq!(recs[3].values, [Some(9 + 2 * 256 + (1 << 24))]);
}

/// Counts near u32::MAX: the generated parser's limit of fields per record
/// saturates as the interpreter's does.
#[test]
fn repeat_counts_near_u32_max_saturate() {
    let p = aa_dsl::compile_str(
        r#"protocol p;
start record r {
    x: u8;
    repeat a: until "," | "\n" max 8 count 4294967295 stop after "\n";
    repeat b: until "," | "\n" max 8 count 2 stop after "\n";
}"#,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let code = aa_dsl::codegen::generate(&p);
    let limits = Grammar::new(p).parser().limits();
    assert_eq!(limits.fields_per_record, u32::MAX);
    assert!(
        code.contains(&format!("fields_per_record: {},", limits.fields_per_record)),
        "{code}"
    );
}

/// The typed views read the same records as the untyped API.
#[test]
fn typed_views() {
    let pool = PacketPool::new(4, 2048);
    let mut s = AaStream::new(
        AaConfig::default(),
        0,
        http_response::HttpResponseParser::new(),
    );
    let data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nA: b\r\n\r\nhi";
    s.insert(0, pool.packet_from(data).unwrap(), 0..data.len());
    s.finish();
    assert_eq!(s.state(), AaState::Ended);
    let mut seen = Vec::new();
    for r in s.read_aa_records(usize::MAX) {
        match http_response::HttpResponseRecord::from_record(r).expect("a kind of the protocol") {
            http_response::HttpResponseRecord::Response(resp) => {
                assert_eq!(resp.record().kind(), http_response::kinds::RESPONSE);
                assert_eq!(resp.status().unwrap().to_vec(), b"200");
                assert_eq!(resp.code(), Some(200));
                assert_eq!(resp.content_length(), Some(2));
                let headers: Vec<Vec<u8>> = resp.headers().map(|f| f.to_vec()).collect();
                assert_eq!(headers, [b"Content-Length: 2".to_vec(), b"A: b".to_vec()]);
                seen.push("response");
            }
            http_response::HttpResponseRecord::Body(body) => {
                assert_eq!(body.data().unwrap().to_vec(), b"hi");
                assert_eq!(
                    body.data().unwrap().tag(),
                    http_response::fields::body::DATA
                );
                seen.push("body");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["response", "body"]);
    assert_eq!(s.free_aa_records(usize::MAX), 2);
}

/// Feeds `msg` repeated `n` times in 1448-byte packets taken from `pool`,
/// reading every field and freeing the records after each packet. Returns the
/// records seen.
fn stream_through<R: Parser>(
    s: &mut AaStream<PoolPacket, R>,
    pool: &PacketPool,
    msg: &[u8],
    n: usize,
    seq: &mut u32,
) -> usize {
    let mut recs = 0;
    let mut pending: &[u8] = &[];
    let mut left = n;
    let mut frame = [0u8; 1448];
    loop {
        // Fill one packet from the repeated message.
        let mut len = 0;
        while len < frame.len() {
            if pending.is_empty() {
                if left == 0 {
                    break;
                }
                left -= 1;
                pending = msg;
            }
            let k = pending.len().min(frame.len() - len);
            frame[len..len + k].copy_from_slice(&pending[..k]);
            pending = &pending[k..];
            len += k;
        }
        if len == 0 {
            return recs;
        }
        let r = s.insert(
            *seq,
            pool.packet_from(&frame[..len]).expect("pool has room"),
            0..len,
        );
        assert!(matches!(r, Insert::InOrder { .. }), "{r:?}");
        *seq = seq.wrapping_add(len as u32);
        let mut sum = 0u64;
        let got = s.read_aa_records(usize::MAX);
        let k = got.len();
        for r in got {
            for f in r.fields() {
                sum += f.len() + f.byte_at(0).unwrap_or(0) as u64;
            }
        }
        std::hint::black_box(sum);
        s.free_aa_records(k);
        recs += k;
    }
}

fn no_alloc<R: Parser>(parser: R, msg: &[u8]) {
    let pool = PacketPool::new(64, 1448);
    let mut s = AaStream::new(AaConfig::default(), 7, parser);
    let mut seq = 7u32;
    // Warm up: anything lazily set up is set up now.
    assert!(stream_through(&mut s, &pool, msg, 50, &mut seq) > 0);
    let (n, recs) = counting::allocations(|| stream_through(&mut s, &pool, msg, 2000, &mut seq));
    assert_eq!(s.state(), AaState::Active, "{:?}", s.error());
    assert!(recs >= 2000, "{recs} records");
    assert_eq!(n, 0, "{n} allocations while parsing {recs} records");
    drop(s);
    assert!(pool.is_full());
}

/// Generated parsers allocate nothing per record or per packet.
#[test]
fn no_allocation_in_steady_state() {
    no_alloc(csv::CsvParser::new(), b"ab,\"c,d\",\"e\"\"f\",,g\r\n");
    no_alloc(
        http_response::HttpResponseParser::new(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 200 OK\r\n\
          Transfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\n\r\n",
    );
    no_alloc(
        http_request::HttpRequestParser::new(),
        b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n",
    );
    no_alloc(
        tls::TlsParser::new(),
        b"\x17\x03\x03\x00\x03abc\x16\x03\x01\x00\x00",
    );
    no_alloc(
        resp::RespParser::new(),
        b"*2\r\n$3\r\nfoo\r\n:42\r\n$-1\r\n+OK\r\n",
    );
}

/// The limits of `csv.aag` (a field of at most 65536 bytes, at most 1024
/// fields in a row) where the generated parser takes its fast path: many
/// unquoted fields in one packet. At, and one past, each limit; whole, and cut
/// before the last field; the generated parser agrees with the interpreter,
/// and the one past fails with the limit's error.
#[test]
fn csv_limits_within_one_packet() {
    let g = grammar("csv");
    let long = |n: usize| [&b"x,"[..], &vec![b'a'; n], b",y\nz\n"].concat();
    let wide = |n: usize| {
        let mut v = b"first\n".to_vec();
        for k in 0..n {
            if k > 0 {
                v.push(b',');
            }
            v.extend_from_slice(format!("{}", k % 10).as_bytes());
        }
        v.extend_from_slice(b"\nlast\n");
        v
    };
    let cases = [
        (long(65536), None),
        (long(65537), Some("longer than 65536")),
        (wide(1023), None),
        (wide(1024), None),
        (wide(1025), Some("more than 1024 fields")),
    ];
    for (input, error) in &cases {
        let n = input.len();
        for packets in [vec![n], vec![n - 8, 8], vec![n / 2, n - n / 2]] {
            let plan = Plan {
                lost: vec![false; packets.len()],
                packets,
                max_records: 4096,
                read_every: 1,
                signals: Vec::new(),
            };
            let got = compare(&g, csv::CsvParser::new(), input, &plan);
            assert!(got.pool_full);
            match error {
                None => assert_eq!(got.error, None, "{plan:?}"),
                Some(what) => {
                    let e = got.error.clone().unwrap_or_default();
                    assert!(e.contains(what), "{e} (want {what}), {plan:?}");
                }
            }
        }
    }
}
