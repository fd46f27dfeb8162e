//! Flow state at scale: heap bytes per tracked connection, and the time to set
//! connections up.
//!
//! Each connection is what a probe sees of a short HTTP exchange on a
//! keep-alive connection that then stays open: SYN, SYN-ACK, ACK, one request
//! (75 bytes, client to server), one response (78 bytes: a 200 with a 13-byte
//! body), the client's ACK. `Passive` parses both directions (`http_request`,
//! `http_response` from `aa-grammars`), a sink reads and frees every record,
//! and the connection is left open. Frames are built on the fly with
//! `aa_stack::frame::TcpFrame` (distinct 4-tuples: clients
//! `198.51.100.1..` ports 10000..59999, server `198.51.100.250:80`), copied
//! into one of a few pool buffers, decoded (checksums `auto`) and dropped: every
//! packet must be back in the pool after each connection's frames, while the
//! connections stay tracked.
//!
//! - **Memory.** A counting global allocator keeps the live heap bytes
//!   (alloc adds the size, dealloc subtracts). The pool, the decoder and the
//!   sink exist before the "before" snapshot, so the figure is
//!   `(live after − live before) / N`: the flow table and every per-connection
//!   allocation, not packet memory. `N` is `AA_FLOWS` (default 1,000,000). A
//!   probe of 1,000 connections estimates the cost first; if `N` connections
//!   would need more than `AA_FLOWS_BUDGET_GIB` (default 12) GiB, the bench
//!   measures at most 20,000 connections (fewer if those would not fit
//!   either) and extrapolates, and says so. The breakdown: the allocator also
//!   counts live allocations by exact size, so the growth is listed as
//!   `count x size` (one table grown by doubling, a hash table, one or two
//!   allocations per connection...), with the heap an `AaStream` takes and
//!   the `size_of` of the structs involved. Tables grown by doubling make
//!   the figure depend on where `N` falls between two powers of two.
//!   `AA_FLOWS_RESERVE=1` calls `Passive::reserve(N)` before the pass.
//! - **Time.** The memory pass is timed (frame building excluded); and
//!   criterion's `flows_setup/aa_http` times `B` connection setups per
//!   iteration (`B` = 100,000, or fewer if they would not fit in 1 GiB at the
//!   cost measured; `Throughput::Elements(B)`, so the rate reads in
//!   connections per second) from an empty `Passive`, frames pre-built in the
//!   untimed setup (the copy of each frame into a pool buffer is timed: it
//!   stands for the NIC's), the `Passive` dropped untimed.
//!
//! Target: at most 512 bytes per connection.
//!
//! Run: `AA_FLOWS=20000 cargo bench -p aa-stack --bench flows`.

#[path = "support/http.rs"]
mod support_http;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support_http::{http, Http, HttpOn80};

use aa_grammars::http_request::HttpRequestParser;
use aa_grammars::http_response::HttpResponseParser;
use aa_runtime::{AaStream, Packet, PacketPool, ParseError, Parser, PoolPacket, ZcStream};
use aa_stack::flow::{Endpoint, FlowConfig, FlowKey};
use aa_stack::frame::TcpFrame;
use aa_stack::io::Timestamp;
use aa_stack::passive::{DirInfo, Passive, PassiveConfig, Side, Sink};
use aa_stack::{ChecksumMode, Decoder, LinkType, TcpFlags};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

// ---------------------------------------------------------------------------
// The counting allocator.

/// Live heap bytes.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Live allocations by exact size: an open-addressing table of (size, count)
/// filled lock-free, so the breakdown can say which sizes the growth is made
/// of. Sizes that find no slot are counted under size `usize::MAX`.
const SIZE_SLOTS: usize = 4096;
static SIZES: [AtomicUsize; SIZE_SLOTS] = [const { AtomicUsize::new(0) }; SIZE_SLOTS];
static COUNTS: [AtomicIsize; SIZE_SLOTS] = [const { AtomicIsize::new(0) }; SIZE_SLOTS];

/// The slot of allocation size `size`, claiming a free one if needed.
#[inline]
fn size_slot(size: usize) -> usize {
    let key = size.max(1);
    let mut h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52;
    for _ in 0..SIZE_SLOTS {
        let i = h % SIZE_SLOTS;
        match SIZES[i].compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return i,
            Err(k) if k == key => return i,
            Err(_) => h += 1,
        }
    }
    // Full: a last slot for everything else.
    SIZE_SLOTS - 1
}

struct Counting;

impl Counting {
    #[inline]
    fn add(size: usize) {
        LIVE.fetch_add(size as isize, Ordering::Relaxed);
        COUNTS[size_slot(size)].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    fn sub(size: usize) {
        LIVE.fetch_sub(size as isize, Ordering::Relaxed);
        COUNTS[size_slot(size)].fetch_sub(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Counting::add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Counting::add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        Counting::sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            Counting::sub(layout.size());
            Counting::add(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Live allocation counts by slot.
fn counts() -> Vec<isize> {
    COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Sizes whose live count grew between two [`counts`], as (size, more
/// allocations), largest share of bytes first.
fn growth(before: &[isize], after: &[isize]) -> Vec<(usize, isize)> {
    let mut g: Vec<(usize, isize)> = (0..SIZE_SLOTS)
        .filter(|&i| after[i] != before[i])
        .map(|i| (SIZES[i].load(Ordering::Relaxed), after[i] - before[i]))
        .collect();
    g.sort_by_key(|&(size, n)| std::cmp::Reverse(size as i128 * n as i128));
    g
}

// ---------------------------------------------------------------------------
// Parsers and sink.

/// Reads and frees every record: message heads (kind 0) and body bytes
/// (kind 1) per direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    heads: [u64; 2],
    body_bytes: [u64; 2],
    gaps: u64,
    errors: u64,
}

impl<P: Packet, R: Parser> Sink<P, R> for Tally {
    #[inline]
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, R>) {
        let side = dir.side as usize;
        let recs = stream.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            match r.kind() {
                0 => self.heads[side] += 1,
                _ => self.body_bytes[side] += r.fields().map(|f| f.len()).sum::<u64>(),
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
// Frames.

const REQUEST: &[u8] =
    b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n";
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
const BODY_LEN: u64 = 13;
/// Frames per connection.
const FRAMES: usize = 6;
const SERVER: Endpoint = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 250)), 80);
const PORTS: u64 = 50_000;

fn client(i: u64) -> Endpoint {
    let host = 1 + i / PORTS;
    assert!(host < 250, "more connections than 4-tuples");
    (
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, host as u8)),
        10_000 + (i % PORTS) as u16,
    )
}

/// Capture time of connection `i`'s frames: one connection per microsecond.
fn time(i: u64) -> Timestamp {
    Timestamp::new(1_700_000_000, i * 1000)
}

/// Frames of connections `conns`, appended to `bytes`, their ranges to `at`.
fn build(conns: Range<u64>, bytes: &mut Vec<u8>, at: &mut Vec<Range<usize>>) {
    for i in conns {
        let c = client(i);
        let isn_c = (i as u32).wrapping_mul(0x9e37_79b9);
        let isn_s = isn_c ^ 0x5bd1_e995;
        let (req, resp) = (REQUEST.len() as u32, RESPONSE.len() as u32);
        let to_s = |seq: u32, ack: u32, flags: TcpFlags| {
            TcpFrame::new(c, SERVER).seq(seq).ack(ack).flags(flags)
        };
        let to_c = |seq: u32, ack: u32, flags: TcpFlags| {
            TcpFrame::new(SERVER, c).seq(seq).ack(ack).flags(flags)
        };
        let (c1, s1) = (isn_c.wrapping_add(1), isn_s.wrapping_add(1));
        let psh = TcpFlags::ACK | TcpFlags::PSH;
        let frames: [(TcpFrame, &[u8]); FRAMES] = [
            (to_s(isn_c, 0, TcpFlags::SYN), b""),
            (to_c(isn_s, c1, TcpFlags::SYN | TcpFlags::ACK), b""),
            (to_s(c1, s1, TcpFlags::ACK), b""),
            (to_s(c1, s1, psh), REQUEST),
            (to_c(s1, c1.wrapping_add(req), psh), RESPONSE),
            (
                to_s(c1.wrapping_add(req), s1.wrapping_add(resp), TcpFlags::ACK),
                b"",
            ),
        ];
        for (f, payload) in frames {
            let start = bytes.len();
            f.write(payload, bytes).expect("a small IPv4 frame");
            at.push(start..bytes.len());
        }
    }
}

/// The three slowest frames: (time, connection), slowest first.
#[derive(Clone, Copy, Debug, Default)]
struct Slowest([(Duration, u64); 3]);

impl Slowest {
    #[inline]
    fn add(&mut self, t: Duration, conn: u64) {
        if t > self.0[2].0 {
            self.0[2] = (t, conn);
            self.0.sort_by_key(|e| std::cmp::Reverse(e.0));
        }
    }
}

/// Everything a pass needs besides the observer.
struct Rig {
    pool: PacketPool,
    decoder: Decoder,
    tally: Tally,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            pool: PacketPool::new(8, 2048),
            decoder: Decoder::new(ChecksumMode::Auto),
            tally: Tally::default(),
        }
    }

    /// Feeds the frames of connections `first..` (built by [`build`]);
    /// returns the time taken and, with `SLOWEST`, the three slowest frames
    /// and the connections they belong to (one clock read per frame).
    fn feed<const SLOWEST: bool>(
        &mut self,
        passive: &mut Passive<PoolPacket, HttpOn80>,
        first: u64,
        bytes: &[u8],
        at: &[Range<usize>],
    ) -> (Duration, Slowest) {
        let start = Instant::now();
        let mut last = start;
        let mut slowest = Slowest::default();
        for (k, r) in at.iter().enumerate() {
            let frame = &bytes[r.clone()];
            let mut buf = self.pool.alloc().expect("every packet is back in the pool");
            buf.space()[..frame.len()].copy_from_slice(frame);
            let pkt = buf.freeze(frame.len());
            let seg = self
                .decoder
                .decode(pkt.data(), LinkType::Ethernet)
                .expect("a valid TCP frame");
            let conn = first + (k / FRAMES) as u64;
            passive.segment(time(conn), &seg, &pkt, &mut self.tally);
            if SLOWEST {
                let now = Instant::now();
                slowest.add(now - last, conn);
                last = now;
            }
        }
        (start.elapsed(), slowest)
    }
}

fn passive(n: u64) -> Passive<PoolPacket, HttpOn80> {
    let mut cfg = PassiveConfig::default();
    cfg.flows = FlowConfig {
        max_flows: cfg.flows.max_flows.max(n as usize),
        ..cfg.flows
    };
    Passive::new(cfg, HttpOn80)
}

/// What one pass measured.
struct Pass {
    n: u64,
    heap: isize,
    /// Allocation sizes the heap grew by: (size, allocations).
    growth: Vec<(usize, isize)>,
    setup: Duration,
    slowest: Slowest,
}

/// Sets up `n` connections in a fresh observer; checks they are all tracked,
/// parsed and hold no packet; measures the heap they take.
fn pass(n: u64) -> Pass {
    const CHUNK: u64 = 10_000;
    let mut rig = Rig::new();
    // Frame buffers big enough for a chunk, made before the snapshot and
    // never grown, so they count in neither the figure nor the breakdown.
    let mut bytes = Vec::with_capacity(CHUNK as usize * FRAMES * 256);
    let mut at = Vec::with_capacity(CHUNK as usize * FRAMES);
    let capacities = (bytes.capacity(), at.capacity());
    let before = live();
    let counts_before = counts();
    let mut p = passive(n);
    if reserve() {
        p.reserve(n as usize);
    }
    let mut setup = Duration::ZERO;
    let mut slowest = Slowest::default();
    let mut first = 0;
    while first < n {
        let end = (first + CHUNK).min(n);
        bytes.clear();
        at.clear();
        build(first..end, &mut bytes, &mut at);
        let (t, slow) = rig.feed::<true>(&mut p, first, &bytes, &at);
        setup += t;
        for (t, conn) in slow.0 {
            slowest.add(t, conn);
        }
        first = end;
    }
    let heap = live() - before;
    let growth = growth(&counts_before, &counts());
    assert_eq!(
        (bytes.capacity(), at.capacity()),
        capacities,
        "frame buffers grew"
    );
    assert_eq!(p.flows() as u64, n, "every connection tracked");
    assert!(rig.pool.is_full(), "an open connection holds a packet");
    let expect = Tally {
        heads: [n; 2],
        body_bytes: [0, n * BODY_LEN],
        gaps: 0,
        errors: 0,
    };
    assert_eq!(rig.tally, expect, "records seen");
    let stats = p.stats();
    assert_eq!(stats.handshakes, n);
    drop(p);
    Pass {
        n,
        heap,
        growth,
        setup,
        slowest,
    }
}

/// `AA_FLOWS_RESERVE=1`: the memory pass calls `Passive::reserve(N)` first.
fn reserve() -> bool {
    std::env::var("AA_FLOWS_RESERVE").is_ok_and(|v| v == "1")
}

/// hashbrown's bucket count for `n` entries (power of two, 7/8 full at most).
fn buckets(n: u64) -> u64 {
    if n < 8 {
        return if n < 4 { 4 } else { 8 };
    }
    (n * 8).div_ceil(7).next_power_of_two()
}

fn gib(bytes: f64) -> f64 {
    bytes / (1u64 << 30) as f64
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
        Err(_) => default,
    }
}

/// Heap bytes one open `AaStream` takes when made with the passive default
/// configuration.
fn stream_heap(parser: Http) -> isize {
    let before = live();
    let s: AaStream<PoolPacket, Http> = AaStream::new(PassiveConfig::default().aa, 1, parser);
    let heap = live() - before;
    drop(black_box(s));
    heap
}

/// Per-connection cost in bytes, measured on a pass of `probe` connections.
fn per_conn(pass: &Pass) -> f64 {
    pass.heap as f64 / pass.n as f64
}

/// What an allocation of `size` bytes, made `count` times for `n`
/// connections, probably is.
fn guess(size: usize, count: isize, n: u64) -> String {
    let size = size as u64;
    if count == 1 {
        // A vector grown by doubling, or a hashbrown table: `buckets` entries
        // (rounded up to 16 bytes) then `buckets + 16` control bytes.
        let cap = n.next_power_of_two();
        if size % cap == 0 && size / cap >= 8 {
            return format!(": a table of {cap} slots of {} bytes?", size / cap);
        }
        let b = buckets(n);
        if size > b + 16 && (size - b - 16) % b == 0 {
            return format!(
                ": a hash table of {b} buckets of {} bytes + 1 control byte?",
                (size - b - 16) / b
            );
        }
        return String::new();
    }
    let per = count as f64 / n as f64;
    if (per - 2.0).abs() < 0.05 {
        " (two per connection: one per direction)".to_string()
    } else if (per - 1.0).abs() < 0.05 {
        " (one per connection)".to_string()
    } else {
        String::new()
    }
}

fn report(requested: u64, probe: &Pass, m: &Pass) {
    let per = per_conn(m);
    let extrapolated = m.n != requested;
    let mut out = vec![
        format!(
            "flows: {} connections tracked (handshake, one HTTP request and response each, \
             left open){}{}",
            m.n,
            if reserve() {
                ", Passive::reserve(N) first"
            } else {
                ""
            },
            if extrapolated {
                format!("; {requested} requested, figures for {requested} extrapolated")
            } else {
                String::new()
            }
        ),
        format!(
            "flows: live heap {:.1} MiB = {:.0} bytes per connection (target 512){}",
            m.heap as f64 / (1 << 20) as f64,
            per,
            if extrapolated {
                format!(
                    "; {requested} connections would take {:.2} GiB",
                    gib(per * requested as f64)
                )
            } else {
                String::new()
            }
        ),
        format!(
            "flows: probe of {} connections: {:.0} bytes per connection",
            probe.n,
            per_conn(probe)
        ),
        "flows: breakdown of the growth by allocation size (bytes per connection):".to_string(),
    ];
    let mut shown = 0i128;
    for &(size, count) in m.growth.iter().take(12) {
        let bytes = size as i128 * count as i128;
        shown += bytes;
        out.push(format!(
            "flows:   {:>8.1}  {count} x {size} bytes{}",
            bytes as f64 / m.n as f64,
            guess(size, count, m.n)
        ));
    }
    out.push(format!(
        "flows:   {:>8.1}  everything else",
        (m.heap as i128 - shown) as f64 / m.n as f64
    ));
    out.extend([
        format!(
            "flows: an AaStream made with PassiveConfig::default().aa allocates {} bytes \
             (request parser) / {} bytes (response parser); a direction holding nothing is \
             parked without them",
            stream_heap(http(Side::Client)),
            stream_heap(http(Side::Server)),
        ),
        format!(
            "flows: size_of: AaStream<PoolPacket, Http> {}, ZcStream<PoolPacket> {}, \
             HttpRequestParser {}, HttpResponseParser {}, Http {}, FlowKey {}, Timestamp {}",
            size_of::<AaStream<PoolPacket, Http>>(),
            size_of::<ZcStream<PoolPacket>>(),
            size_of::<HttpRequestParser>(),
            size_of::<HttpResponseParser>(),
            size_of::<Http>(),
            size_of::<FlowKey>(),
            size_of::<Timestamp>(),
        ),
        format!(
            "flows: setup of {} connections took {:.1} ms ({:.2} us per connection, \
             {:.0} k connections/s; frame building not timed){}",
            m.n,
            m.setup.as_secs_f64() * 1e3,
            m.setup.as_secs_f64() * 1e6 / m.n as f64,
            m.n as f64 / m.setup.as_secs_f64() / 1e3,
            if extrapolated {
                format!(
                    "; {requested} would take about {:.2} s",
                    m.setup.as_secs_f64() * requested as f64 / m.n as f64
                )
            } else {
                String::new()
            }
        ),
        format!(
            "flows: slowest frames: {} (a table that grows by doubling moves all of itself \
             at once: hashbrown at 7/8 of a power of two, a Vec at a power of two; other \
             stalls on a loaded machine are the scheduler's)",
            m.slowest
                .0
                .iter()
                .map(|(t, conn)| format!("{:.3} ms at connection {conn}", t.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]);
    for line in out {
        eprintln!("{line}");
        println!("{line}");
    }
}

fn flows(c: &mut Criterion) {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `cargo test --benches` runs this once as a test: keep that quick.
    let default = if args.iter().any(|a| a == "--test") {
        10_000
    } else {
        1_000_000
    };
    let requested = env_u64("AA_FLOWS", default).max(1);
    let budget = env_u64("AA_FLOWS_BUDGET_GIB", 12) as f64 * (1u64 << 30) as f64;

    let probe = pass(requested.min(1000));
    let cost = per_conn(&probe).max(1.0);
    let n = if requested as f64 * cost <= budget {
        requested
    } else {
        requested.min(20_000).min((budget / cost) as u64).max(1)
    };
    let m = pass(n);
    report(requested, &probe, &m);

    // Time: `batch` setups per iteration.
    let batch = 100_000u64.min(((1u64 << 30) as f64 / cost) as u64).max(100);
    let mut bytes = Vec::new();
    let mut at = Vec::new();
    build(0..batch, &mut bytes, &mut at);
    eprintln!("flows_setup/aa_http: {batch} connection setups per iteration");
    let mut g = c.benchmark_group("flows_setup");
    g.throughput(Throughput::Elements(batch));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("aa_http", |b| {
        b.iter_batched(
            || (Rig::new(), passive(batch)),
            |(mut rig, mut p)| {
                rig.feed::<false>(&mut p, 0, &bytes, &at);
                assert_eq!(p.flows() as u64, batch);
                (rig, p)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, flows);
criterion_main!(benches);
