//! The DPDK receive path (feature `dpdk`), against the in-memory backend, and
//! passive inspection over DPDK on one and two cores.
//!
//! Runs without a NIC or hugepages: EAL starts with `--no-huge --no-pci` and
//! one `net_ring` virtual port with two queue pairs, each a ring that gives
//! back on receive queue `q` what was sent on transmit queue `q`. The
//! synthetic captures (`aa_stack::synth`, deterministic) are copied once
//! into mbufs held by the bench; each pass sends clones of them (a reference
//! count each, what keeps them for the next pass) into the ring and receives
//! them back, so a pass costs `rte_eth_tx_burst` + `rte_eth_rx_burst` per
//! burst of 32 and a reference count per frame, no copy: an upper bound of
//! what a NIC's receive path costs the CPU (its DMA is free).
//!
//! Groups:
//!
//! - `dpdk_rx_csv_8` (`Throughput::Elements` = frames: the time per
//!   iteration over the element count is ns per packet): 16 interleaved CSV
//!   connections (`synth::csv_fixed_fields`, 2000 rows of 10 fields of 8
//!   bytes each: 3,120 frames, 2.9 MB of payload),
//!   - `net_ring_io` / `memory_io`: receiving only (each packet dropped once
//!     received), through a `Port` on `net_ring`, and through
//!     `aa_stack::io::memory::MemoryIo`, which copies each frame into a
//!     `PacketPool` buffer (what a NIC's DMA does, on the CPU);
//!   - `net_ring_dispatch`: receiving through `net_ring`, each packet handed
//!     to one of two workers' bounded queues by `aa_stack::dpdk::Dispatcher`
//!     (`flow_worker`'s hash, a channel send), the queues emptied every
//!     burst on the same thread (a channel receive, the packet dropped): what
//!     spreading connections in software costs per packet, beyond
//!     `net_ring_io`;
//!   - `net_ring_passive` / `memory_io_passive`: the same, each burst then
//!     given to `Passive::frames` as `aa inspect` does (decode with the
//!     frame 4 further on prefetched, flow table, the zero-copy `AaStream`,
//!     the compiled CSV parser, every record read and freed).
//! - `dpdk_passive_http_2000` (`Throughput::Bytes` = TCP payload bytes): 64
//!   interleaved HTTP/1.1 keep-alive connections (16 GETs each, 2000-byte
//!   bodies: 4,480 frames, 2.5 MB of payload), passive inspection over
//!   `net_ring`:
//!   - `one_core`: one thread, queue 0, one `Passive`;
//!   - `two_cores`: two threads, each pinned to its own core
//!     (`aa_stack::dpdk::pin_current_thread`) with its own queue pair and
//!     its own `Passive`, the connections split by `aa_stack::dpdk::flow_worker`
//!     (what a NIC's symmetric RSS does in hardware); the frames each core
//!     gets are printed: connections do not split evenly.
//!
//! What differs from a NIC: the bench keeps a reference on each mbuf across
//! passes, so a received mbuf's count is 2 and every clone and free on the
//! path is an atomic operation (from a NIC the count is 1, and DPDK skips
//! the atomic while it is). The captures are short so that the mbufs held
//! (about 2.4 KB each: 7 MB for CSV, 11 MB for HTTP) can stay in the
//! last-level cache, where a NIC's DMA often leaves received frames too.
//! `AA_DPDK_BENCH_SCALE=4` makes every connection 4 times longer: the held
//! mbufs then outgrow a 32 MB cache, every frame is a miss, and the DPDK
//! path, which reads each frame where it is, falls further behind
//! `MemoryIo`, which copies it into a few reused (warm) buffers; and one
//! core, which holds all the frames, loses more than each of two cores,
//! which hold half.
//!
//! Before measuring, each variant is checked (rows, messages, body bytes,
//! no gap, no error) and the pools are checked after; after the groups, a
//! summary line per group gives ns per packet, or Gbit/s of payload and
//! Mpps, from the medians of 15 extra passes (two cores: of 5 runs of 40
//! passes, the threads started once per run). The machine's cores may be
//! shared: `two_cores` is only worth reading on two idle cores.
//!
//! Run: `cargo bench -p aa-stack --features dpdk --bench dpdk`.

#[path = "support/captures.rs"]
mod captures;
#[path = "../tests/common/dpdk.rs"]
mod dpdk_common;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/http.rs"]
mod support_http;
use captures::{csv_capture, http_capture, CsvOn9000};
use dpdk_common::{cpus, start_eal};
use measure::{measuring, median_secs};
use std::hint::black_box;
use std::time::{Duration, Instant};
use support_http::HttpOn80;

use aa_grammars::csv::CsvParser;
use aa_runtime::{AaStream, Packet, PacketPool, ParseError, Parser};
use aa_stack::dpdk::{
    flow_worker, pin_current_thread, Dispatcher, MbufPacket, Mempool, Port, PortConfig, PortQueue,
    WorkerQueue,
};
use aa_stack::io::memory::MemoryIo;
use aa_stack::io::{Burst, PacketIo, Rx};
use aa_stack::passive::{DirInfo, Parsers, Passive, PassiveConfig, Sink};
use aa_stack::{ChecksumMode, Decoder, LinkType};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EAL_ARGS: &[&str] = &[
    "aa-dpdk-bench",
    "--no-huge",
    "--no-pci",
    "-m",
    "512",
    "--no-shconf",
    "--no-telemetry",
    "--log-level=warning",
    "--vdev=net_ring0",
];

const CSV_CONNS: usize = 16;
/// CSV rows per connection, times [`scale`].
const CSV_ROWS: usize = 2000;
const CSV_FIELDS: usize = 10;
const CSV_FIELD_LEN: usize = 8;
const HTTP_CONNS: usize = 64;
/// HTTP request/response pairs per connection, times [`scale`].
const HTTP_MESSAGES: usize = 16;
const HTTP_BODY: usize = 2000;
/// Packets per receive or transmit burst.
const BURST: usize = 32;
/// Frames sent before receiving them back: fits in a ring (1023 slots).
const CHUNK: usize = 512;
/// Mbufs besides the held frames: those in flight and held by `Passive`.
const SPARE: u32 = 4096;

/// `AA_DPDK_BENCH_SCALE` (1 unless set): how many times longer the
/// connections are, so the mbufs held outgrow the last-level cache.
fn scale() -> usize {
    match std::env::var("AA_DPDK_BENCH_SCALE") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("AA_DPDK_BENCH_SCALE={v}: expected a positive integer")),
        Err(_) => 1,
    }
}

fn payload_bytes(frames: &[&[u8]]) -> u64 {
    frames
        .iter()
        .map(|f| {
            let seg = aa_stack::parse(f, LinkType::Ethernet, false).expect("a TCP frame");
            u64::from(seg.payload_len)
        })
        .sum()
}

/// Reads every record (the length of each field, the first byte of the
/// first) and frees it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    records: [u64; 2],
    body_bytes: u64,
    field_bytes: u64,
    touch: u64,
    problems: u64,
}

impl<P: Packet, R: Parser> Sink<P, R> for Tally {
    #[inline]
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, R>) {
        let recs = stream.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            let bytes: u64 = r.fields().map(|f| f.len()).sum();
            self.field_bytes += bytes;
            match r.kind() {
                0 => {
                    self.records[dir.side as usize] += 1;
                    if let Some(f) = r.field(0) {
                        self.touch += u64::from(f.byte_at(0).unwrap_or(0));
                    }
                }
                _ => self.body_bytes += bytes,
            }
        }
        stream.free_aa_records(n);
    }
    fn gap(&mut self, _dir: &DirInfo, _offset: u64, _len: u64) {
        self.problems += 1;
    }
    fn error(&mut self, _dir: &DirInfo, _error: &ParseError) {
        self.problems += 1;
    }
}

/// What is done with each received burst (emptied).
trait Consume<P> {
    fn burst(&mut self, rx: &mut Burst<Rx<P>>);
}

/// Drops it (the receive path alone).
#[derive(Default)]
struct Discard(u64);

impl<P: Packet> Consume<P> for Discard {
    #[inline]
    fn burst(&mut self, rx: &mut Burst<Rx<P>>) {
        for r in rx.drain(..) {
            self.0 += r.packet.data().len() as u64;
        }
    }
}

/// Hands each packet to one of two workers' queues (`Dispatcher`), and,
/// every burst, empties those queues on this same thread: the software
/// spreading's cost per packet, without a second core.
struct DispatchDrain {
    dispatcher: Dispatcher<MbufPacket>,
    ends: Vec<WorkerQueue<MbufPacket>>,
    burst: Burst<Rx<MbufPacket>>,
    per_worker: [u64; 2],
    since_drain: usize,
}

impl DispatchDrain {
    fn new() -> Self {
        let (dispatcher, ends) = Dispatcher::new(2, 2 * BURST);
        DispatchDrain {
            dispatcher,
            ends,
            burst: Burst::with_capacity(2 * BURST),
            per_worker: [0; 2],
            since_drain: 0,
        }
    }

    fn drain(&mut self) {
        for (w, end) in self.ends.iter_mut().enumerate() {
            self.per_worker[w] += end.try_recv_burst(&mut self.burst).unwrap_or(0) as u64;
            self.burst.clear();
        }
        self.since_drain = 0;
    }

    /// Packets each worker got; none dropped.
    fn finish(mut self) -> [u64; 2] {
        self.drain();
        assert_eq!(self.dispatcher.dropped(), 0, "queues deep enough");
        self.per_worker
    }
}

impl Consume<MbufPacket> for DispatchDrain {
    #[inline]
    fn burst(&mut self, rx: &mut Burst<Rx<MbufPacket>>) {
        for r in rx.drain(..) {
            let _ = self.dispatcher.dispatch(r);
            self.since_drain += 1;
            if self.since_drain == BURST {
                self.drain();
            }
        }
    }
}

/// Passive inspection as `aa inspect` does it: each burst through
/// `Passive::frames` (decode, the data of the frame 4 further on
/// prefetched, `Passive::segment`), records read and freed.
struct Inspect<P: Packet, F: Parsers> {
    passive: Passive<P, F>,
    decoder: Decoder,
    tally: Tally,
}

impl<P: Packet, F: Parsers> Inspect<P, F> {
    fn new(parsers: F) -> Self {
        Inspect {
            passive: Passive::new(PassiveConfig::default(), parsers),
            decoder: Decoder::new(ChecksumMode::Auto),
            tally: Tally::default(),
        }
    }

    fn finish(mut self) -> Tally {
        self.passive.finish(&mut self.tally);
        self.tally
    }
}

impl<P: Packet, F: Parsers> Consume<P> for Inspect<P, F> {
    #[inline]
    fn burst(&mut self, rx: &mut Burst<Rx<P>>) {
        self.passive
            .frames(&mut self.decoder, rx.as_slice(), &mut self.tally);
        rx.clear();
    }
}

/// One pass of `held` through a ring queue: clones sent in chunks, each
/// chunk received back and consumed.
fn ring_pass<C: Consume<MbufPacket>>(
    queue: &mut PortQueue,
    held: &[MbufPacket],
    tx: &mut Burst<MbufPacket>,
    rx: &mut Burst<Rx<MbufPacket>>,
    consume: &mut C,
) {
    for chunk in held.chunks(CHUNK) {
        let mut pkts = chunk.iter();
        loop {
            while tx.room() > 0 {
                match pkts.next() {
                    Some(p) => {
                        let _ = tx.push(p.clone());
                    }
                    None => break,
                }
            }
            if tx.is_empty() {
                break;
            }
            queue.send_burst(tx).expect("net_ring sends");
            assert!(tx.is_empty(), "the ring has room for a chunk");
        }
        let mut got = 0;
        while got < chunk.len() {
            got += queue.recv_burst(rx).expect("net_ring receives");
            consume.burst(rx);
        }
    }
}

/// One pass of every frame of `io` (rewound first).
fn memory_pass<C: Consume<aa_runtime::PoolPacket>>(
    io: &mut MemoryIo,
    rx: &mut Burst<Rx<aa_runtime::PoolPacket>>,
    consume: &mut C,
) {
    io.rewind();
    while io.recv_burst(rx).expect("memory receives") > 0 {
        consume.burst(rx);
    }
}

/// The bench's one port: `net_ring0`, two queue pairs.
struct Ring {
    queues: Vec<PortQueue>,
}

fn ring(pool: &Mempool) -> Ring {
    let eal = start_eal(EAL_ARGS);
    let id = eal.port_by_name("net_ring0").expect("net_ring0");
    let cfg = PortConfig {
        queues: 2,
        ..PortConfig::default()
    };
    let port = Port::open(eal, id, pool, cfg).expect("net_ring0 opens with two queues");
    Ring {
        queues: port.into_queues(),
    }
}

fn dpdk_rx_csv(c: &mut Criterion) {
    let capture = csv_capture(CSV_CONNS, CSV_ROWS * scale(), CSV_FIELDS, CSV_FIELD_LEN);
    let frames: Vec<&[u8]> = capture.frames.iter().map(|(_, f)| &f[..]).collect();
    let n = frames.len();
    let payload = payload_bytes(&frames);
    eprintln!("dpdk_rx_csv_8: {CSV_CONNS} connections, {n} frames, {payload} payload bytes");
    let expect = Tally {
        records: [(CSV_CONNS * CSV_ROWS * scale()) as u64, 0],
        field_bytes: (CSV_CONNS * CSV_ROWS * scale() * CSV_FIELDS * CSV_FIELD_LEN) as u64,
        ..Tally::default()
    };

    let eal = start_eal(EAL_ARGS);
    let mempool = Mempool::new(
        eal,
        "aa_bench_csv",
        n as u32 + SPARE,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("a mempool");
    let held: Vec<MbufPacket> = frames
        .iter()
        .map(|f| mempool.packet_from(f).expect("pool sized for the capture"))
        .collect();
    let mut ring = ring(&mempool);
    let q0 = &mut ring.queues[0];
    let mut memory =
        MemoryIo::with_frames(PacketPool::new(SPARE, 2048), LinkType::Ethernet, &frames);
    let mut tx = Burst::with_capacity(BURST);
    let mut rx_mbuf = Burst::with_capacity(BURST);
    let mut rx_pool = Burst::with_capacity(BURST);

    // Both backends deliver every frame and the same records.
    let mut d = Discard::default();
    ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
    let mut m = Discard::default();
    memory_pass(&mut memory, &mut rx_pool, &mut m);
    assert_eq!(d.0, m.0, "the same frame bytes");
    let mut i = Inspect::new(CsvOn9000(CsvParser::new));
    ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut i);
    let on_ring = i.finish();
    assert_eq!(
        Tally {
            touch: 0,
            ..on_ring
        },
        expect,
        "net_ring_passive"
    );
    let mut i = Inspect::new(CsvOn9000(CsvParser::new));
    memory_pass(&mut memory, &mut rx_pool, &mut i);
    assert_eq!(i.finish(), on_ring, "memory_io_passive");
    let mut d = DispatchDrain::new();
    ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
    let per_worker = d.finish();
    assert_eq!(
        per_worker.iter().sum::<u64>(),
        n as u64,
        "net_ring_dispatch"
    );
    assert!(
        per_worker.iter().all(|&w| w > 0),
        "both workers get packets"
    );
    assert_eq!(
        mempool.available() as usize,
        mempool.capacity() as usize - n
    );

    let mut g = c.benchmark_group("dpdk_rx_csv_8");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("net_ring_io", |b| {
        b.iter(|| {
            let mut d = Discard::default();
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
            black_box(d.0)
        })
    });
    g.bench_function("memory_io", |b| {
        b.iter(|| {
            let mut d = Discard::default();
            memory_pass(&mut memory, &mut rx_pool, &mut d);
            black_box(d.0)
        })
    });
    g.bench_function("net_ring_dispatch", |b| {
        b.iter(|| {
            let mut d = DispatchDrain::new();
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
            black_box(d.finish())
        })
    });
    g.bench_function("net_ring_passive", |b| {
        b.iter(|| {
            let mut i = Inspect::new(CsvOn9000(CsvParser::new));
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut i);
            black_box(i.finish().field_bytes)
        })
    });
    g.bench_function("memory_io_passive", |b| {
        b.iter(|| {
            let mut i = Inspect::new(CsvOn9000(CsvParser::new));
            memory_pass(&mut memory, &mut rx_pool, &mut i);
            black_box(i.finish().field_bytes)
        })
    });
    g.finish();

    if measuring() {
        let ns = |secs: f64| secs * 1e9 / n as f64;
        let ring_io = median_secs(15, || {
            let mut d = Discard::default();
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
        });
        let mem_io = median_secs(15, || {
            let mut d = Discard::default();
            memory_pass(&mut memory, &mut rx_pool, &mut d);
        });
        let ring_d = median_secs(15, || {
            let mut d = DispatchDrain::new();
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut d);
            black_box(d.finish());
        });
        let ring_p = median_secs(15, || {
            let mut i = Inspect::new(CsvOn9000(CsvParser::new));
            ring_pass(q0, &held, &mut tx, &mut rx_mbuf, &mut i);
            black_box(i.finish());
        });
        let mem_p = median_secs(15, || {
            let mut i = Inspect::new(CsvOn9000(CsvParser::new));
            memory_pass(&mut memory, &mut rx_pool, &mut i);
            black_box(i.finish());
        });
        eprintln!(
            "summary dpdk_rx_csv_8 (ns per packet): net_ring_io {:.1} | memory_io {:.1} | \
             net_ring_dispatch {:.1} | net_ring_passive {:.1} | memory_io_passive {:.1} | \
             payload {:.2} Gbit/s net_ring_passive, {:.2} Gbit/s memory_io_passive",
            ns(ring_io),
            ns(mem_io),
            ns(ring_d),
            ns(ring_p),
            ns(mem_p),
            payload as f64 * 8.0 / ring_p / 1e9,
            payload as f64 * 8.0 / mem_p / 1e9,
        );
    }
    drop(ring);
    drop(held);
    assert!(mempool.is_full(), "every mbuf back: {mempool:?}");
}

/// `passes` passes of each share on its own queue and thread, each with its
/// own `Passive` per pass; returns the tallies of the last pass and the
/// wall time of all.
fn cores_run(
    queues: &mut [PortQueue],
    shares: &[Vec<MbufPacket>],
    passes: u64,
) -> (Vec<Tally>, Duration) {
    let start = Instant::now();
    let tallies = std::thread::scope(|s| {
        let handles: Vec<_> = queues
            .iter_mut()
            .zip(shares)
            .enumerate()
            .map(|(i, (queue, held))| {
                s.spawn(move || {
                    // Off the core EAL pinned the main thread to, which the
                    // spawned threads inherit.
                    let cpus = cpus();
                    pin_current_thread(cpus[i % cpus.len()]).expect("a core");
                    let mut tx = Burst::with_capacity(BURST);
                    let mut rx = Burst::with_capacity(BURST);
                    let mut last = Tally::default();
                    for _ in 0..passes {
                        let mut i = Inspect::new(HttpOn80);
                        ring_pass(queue, held, &mut tx, &mut rx, &mut i);
                        last = i.finish();
                    }
                    last
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker"))
            .collect()
    });
    (tallies, start.elapsed())
}

fn dpdk_passive_http(c: &mut Criterion) {
    let capture = http_capture(HTTP_CONNS, HTTP_MESSAGES * scale(), HTTP_BODY);
    let frames: Vec<&[u8]> = capture.frames.iter().map(|(_, f)| &f[..]).collect();
    let n = frames.len();
    let payload = payload_bytes(&frames);
    let eal = start_eal(EAL_ARGS);
    let mempool = Mempool::new(
        eal,
        "aa_bench_http",
        n as u32 + 2 * SPARE,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("a mempool");
    let all: Vec<MbufPacket> = frames
        .iter()
        .map(|f| mempool.packet_from(f).expect("pool sized for the capture"))
        .collect();
    // Two shares by connection, both directions together.
    let mut shares = [Vec::new(), Vec::new()];
    for p in &all {
        shares[flow_worker(p.data(), 2)].push(p.clone());
    }
    eprintln!(
        "dpdk_passive_http_2000: {HTTP_CONNS} connections, {n} frames, {payload} payload bytes; \
         two cores: {} and {} frames",
        shares[0].len(),
        shares[1].len()
    );
    let expect = Tally {
        records: [(HTTP_CONNS * HTTP_MESSAGES * scale()) as u64; 2],
        body_bytes: (HTTP_CONNS * HTTP_MESSAGES * scale() * HTTP_BODY) as u64,
        ..Tally::default()
    };
    let mut ring = ring(&mempool);
    let mut tx = Burst::with_capacity(BURST);
    let mut rx = Burst::with_capacity(BURST);

    let one = |q: &mut PortQueue, tx: &mut Burst<_>, rx: &mut Burst<_>| {
        let mut i = Inspect::new(HttpOn80);
        ring_pass(q, &all, tx, rx, &mut i);
        i.finish()
    };
    let t = one(&mut ring.queues[0], &mut tx, &mut rx);
    assert_eq!(
        (t.records, t.body_bytes, t.problems),
        (expect.records, expect.body_bytes, 0),
        "one_core"
    );
    let (ts, _) = cores_run(&mut ring.queues, &shares, 1);
    let sum = ts.iter().fold(Tally::default(), |a, t| Tally {
        records: [a.records[0] + t.records[0], a.records[1] + t.records[1]],
        body_bytes: a.body_bytes + t.body_bytes,
        field_bytes: a.field_bytes + t.field_bytes,
        touch: a.touch + t.touch,
        problems: a.problems + t.problems,
    });
    assert_eq!(sum, t, "two cores see what one does");

    let mut g = c.benchmark_group("dpdk_passive_http_2000");
    g.throughput(Throughput::Bytes(payload));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("one_core", |b| {
        b.iter(|| black_box(one(&mut ring.queues[0], &mut tx, &mut rx).field_bytes))
    });
    g.bench_function("two_cores", |b| {
        b.iter_custom(|iters| cores_run(&mut ring.queues, &shares, iters).1)
    });
    g.finish();

    if measuring() {
        let one_secs = median_secs(15, || {
            black_box(one(&mut ring.queues[0], &mut tx, &mut rx));
        });
        // Threads started once per 40 passes.
        let mut runs: Vec<f64> = (0..5)
            .map(|_| cores_run(&mut ring.queues, &shares, 40).1.as_secs_f64() / 40.0)
            .collect();
        runs.sort_by(|a, b| a.total_cmp(b));
        let two_secs = runs[2];
        let rate = |secs: f64| {
            format!(
                "{:.2} Gbit/s {:.3} Mpps",
                payload as f64 * 8.0 / secs / 1e9,
                n as f64 / secs / 1e6
            )
        };
        eprintln!(
            "summary dpdk_passive_http_2000: one_core {} | two_cores {} | two/one {:.2}",
            rate(one_secs),
            rate(two_secs),
            one_secs / two_secs
        );
    }
    drop(ring);
    drop(shares);
    drop(all);
    assert!(mempool.is_full(), "every mbuf back: {mempool:?}");
}

criterion_group!(benches, dpdk_rx_csv, dpdk_passive_http);
criterion_main!(benches);
