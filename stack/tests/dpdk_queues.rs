//! Several queues and several threads on the DPDK backend:
//!
//! - `net_ring` with two queue pairs (what is sent on queue `q` comes back on
//!   queue `q`): two threads, each with its own queue handle and its own
//!   `Passive`, receive the connections `flow_worker` gave them and parse
//!   their CSV rows;
//! - the software dispatcher on a one-queue `net_ring`: every packet of a
//!   connection, both directions, reaches one worker; connections spread over
//!   2 and 4 workers; a full worker queue drops and counts instead of
//!   blocking;
//! - `net_null`, which reports receive-side scaling: four queues get RSS with
//!   the symmetric key, and four threads receive from their own queues.
//!
//! Every test ends with its pool full. EAL starts once per process: the
//! tests share one `Eal::init`, each on its own virtual device and pool.
#![cfg(feature = "dpdk")]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use aa_runtime::csv::CsvParser;
use aa_runtime::{AaStream, Packet};
use aa_stack::dpdk::{
    current_thread_cpus, flow_worker, pin_current_thread, Dispatcher, DpdkError, MbufPacket,
    Mempool, Port, PortConfig, RSS_IP, RSS_TCP,
};
use aa_stack::flow::{Endpoint, FlowKey};
use aa_stack::io::{Burst, PacketIo};
use aa_stack::passive::{DirInfo, Parsers, Passive, PassiveConfig, Side, Sink};
use aa_stack::synth::{self, Capture, Conversation, Dialogue};
use aa_stack::wire::{parse, LinkType};
use aa_stack::Timestamp;

#[path = "common/dpdk.rs"]
mod dpdk_common;
use dpdk_common::{cpus, eal_args, recv_n, send_all, start_eal};

/// The test's virtual devices (EAL's other arguments: [`eal_args`]).
const VDEVS: &[&str] = &["--vdev=net_ring0", "--vdev=net_ring1", "--vdev=net_null0"];

const POOL: u32 = 4095;
const CONNS: usize = 64;
const ROWS: usize = 20;

fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)), port)
}

/// `CONNS` interleaved connections to port 9000, each with a handshake,
/// `ROWS` CSV rows from the client, the server's ACKs and both FINs.
fn capture() -> Capture {
    let convs: Vec<Conversation> = (0..CONNS)
        .map(|i| {
            Conversation::new(
                v4(1 + (i % 7) as u8, 40000 + i as u16),
                v4(200, 9000),
                Dialogue::one_way(
                    synth::Side::Client,
                    synth::csv_fixed_fields(ROWS, 4, 6, i as u64),
                ),
                i as u64,
            )
        })
        .collect();
    Capture::interleave(Timestamp::new(1_700_000_000, 0), &convs)
}

/// A frame's connection and whether it goes from the lower endpoint.
fn key(frame: &[u8]) -> (FlowKey, bool) {
    let seg = parse(frame, LinkType::Ethernet, false).expect("a TCP frame");
    FlowKey::of(seg.src, seg.dst)
}

/// CSV to port 9000, client to server.
struct Csv9000;

impl Parsers for Csv9000 {
    type Parser = CsvParser;
    fn is_server_port(&self, port: u16) -> bool {
        port == 9000
    }
    fn parser(&mut self, server: Endpoint, side: Side) -> Option<CsvParser> {
        (server.1 == 9000 && side == Side::Client).then(CsvParser::default)
    }
}

/// Counts and frees every row.
#[derive(Default)]
struct Rows {
    rows: usize,
    problems: usize,
}

impl<P: Packet> Sink<P, CsvParser> for Rows {
    fn records(&mut self, _dir: &DirInfo, stream: &mut AaStream<P, CsvParser>) {
        let n = stream.read_aa_records(usize::MAX).len();
        self.rows += n;
        stream.free_aa_records(n);
    }
    fn gap(&mut self, _dir: &DirInfo, _offset: u64, _len: u64) {
        self.problems += 1;
    }
    fn error(&mut self, _dir: &DirInfo, _error: &aa_runtime::ParseError) {
        self.problems += 1;
    }
}

#[test]
fn two_ring_queues_each_polled_by_its_own_thread_and_stack() {
    let eal = start_eal(&eal_args("aa-dpdk-queues-test", VDEVS));
    let pool = Mempool::new(eal, "aa_q_ring0", POOL, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
    let id = eal.port_by_name("net_ring0").unwrap();

    // The ring device has 16 queue pairs; more, or none, is refused.
    for queues in [0, 17] {
        let cfg = PortConfig {
            queues,
            ..PortConfig::default()
        };
        match Port::open(eal, id, &pool, cfg) {
            Err(DpdkError::Queues { asked, max }) => assert_eq!((asked, max), (queues, 16)),
            other => panic!("{queues} queues: {other:?}"),
        }
    }

    let cfg = PortConfig {
        queues: 2,
        ..PortConfig::default()
    };
    let port = Port::open(eal, id, &pool, cfg).unwrap();
    assert_eq!((port.id(), port.queue_count()), (id, 2));
    assert_eq!(port.rss(), None, "net_ring has no receive-side scaling");

    let cap = capture();
    let mut frames: [Vec<&[u8]>; 2] = [Vec::new(), Vec::new()];
    for (_, f) in &cap.frames {
        frames[flow_worker(f, 2)].push(f);
    }
    assert!(
        frames.iter().all(|f| !f.is_empty()),
        "both queues get flows"
    );

    let results: Vec<(u16, usize, Rows, HashSet<FlowKey>)> = std::thread::scope(|s| {
        let handles: Vec<_> = port
            .into_queues()
            .into_iter()
            .zip(&frames)
            .map(|(mut queue, frames)| {
                s.spawn(move || {
                    let q = queue.queue();
                    let pool = queue.pool().clone();
                    let pkts = frames
                        .iter()
                        .map(|f| pool.packet_from(f).unwrap())
                        .collect();
                    send_all(&mut queue, pkts, 32);
                    let got = recv_n(&mut queue, frames.len());
                    let mut passive = Passive::new(PassiveConfig::default(), Csv9000);
                    let mut rows = Rows::default();
                    let mut flows = HashSet::new();
                    for (rx, frame) in got.into_iter().zip(frames) {
                        assert_eq!(rx.packet.data(), *frame, "in order, intact");
                        assert_eq!(rx.packet.rss_hash(), None);
                        let seg = parse(rx.packet.data(), LinkType::Ethernet, false).unwrap();
                        flows.insert(FlowKey::of(seg.src, seg.dst).0);
                        passive.segment(rx.meta.ts, &seg, &rx.packet, &mut rows);
                    }
                    passive.finish(&mut rows);
                    assert_eq!(queue.dropped_multi_segment(), 0);
                    (q, frames.len(), rows, flows)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all_flows = HashSet::new();
    for (q, n, rows, flows) in &results {
        assert!(*n > 0);
        assert_eq!(rows.problems, 0, "queue {q}");
        assert_eq!(rows.rows, flows.len() * ROWS, "queue {q}: every row parsed");
        for f in flows {
            assert!(all_flows.insert(*f), "a connection on one queue only");
        }
    }
    assert_eq!(all_flows.len(), CONNS);
    assert!(pool.is_full(), "every mbuf back: {pool:?}");
}

/// The ring's packets, looped through one queue and handed to `workers`
/// worker threads; per worker, the (connection, direction) pairs it saw.
fn dispatch_to(port: &mut Port, cap: &Capture, workers: usize) -> Vec<HashSet<(FlowKey, bool)>> {
    let pool = port.pool().clone();
    let (mut dispatcher, ends) = Dispatcher::<MbufPacket>::new(workers, 4096);
    let seen = std::thread::scope(|s| {
        let handles: Vec<_> = ends
            .into_iter()
            .map(|mut end| {
                s.spawn(move || {
                    let mut seen = HashSet::new();
                    let mut burst = Burst::with_capacity(32);
                    while end.recv_burst(&mut burst).is_some() {
                        for rx in burst.drain(..) {
                            seen.insert(key(rx.packet.data()));
                        }
                    }
                    (end.index(), seen)
                })
            })
            .collect();
        for chunk in cap.frames.chunks(512) {
            let pkts = chunk
                .iter()
                .map(|(_, f)| pool.packet_from(f).unwrap())
                .collect();
            send_all(port, pkts, 32);
            let mut burst = Burst::with_capacity(chunk.len());
            let got = recv_n(port, chunk.len());
            for rx in got {
                burst.push(rx).unwrap();
            }
            assert_eq!(dispatcher.dispatch_burst(&mut burst), chunk.len());
            assert!(burst.is_empty());
        }
        assert_eq!(dispatcher.dropped(), 0);
        let counts = dispatcher.counts().to_vec();
        assert_eq!(
            counts.iter().map(|c| c.delivered).sum::<u64>(),
            cap.frames.len() as u64
        );
        drop(dispatcher);
        let mut seen: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        seen.sort_by_key(|(i, _)| *i);
        seen.into_iter().map(|(_, s)| s).collect::<Vec<_>>()
    });
    assert!(pool.is_full(), "every mbuf back: {pool:?}");
    seen
}

#[test]
fn software_dispatch_keeps_connections_together_and_drops_when_full() {
    let eal = start_eal(&eal_args("aa-dpdk-queues-test", VDEVS));
    let pool = Mempool::new(eal, "aa_q_ring1", POOL, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
    let id = eal.port_by_name("net_ring1").unwrap();
    let mut port = Port::open(eal, id, &pool, PortConfig::default()).unwrap();
    let cap = capture();

    for workers in [2, 4] {
        let seen = dispatch_to(&mut port, &cap, workers);
        assert_eq!(seen.len(), workers);
        // Each connection, each direction, at exactly one worker.
        let mut at: HashMap<FlowKey, usize> = HashMap::new();
        for (w, s) in seen.iter().enumerate() {
            for (k, _) in s {
                if let Some(other) = at.insert(*k, w) {
                    assert_eq!(other, w, "{k:?} went to two workers");
                }
            }
            // Both directions of every connection seen here are here.
            for (k, lo) in s {
                assert!(s.contains(&(*k, !lo)), "{k:?}: one direction elsewhere");
            }
        }
        assert_eq!(at.len(), CONNS);
        // Not degenerate: each worker has at least half its fair share.
        for (w, s) in seen.iter().enumerate() {
            let conns = s.len() / 2;
            assert!(
                conns * workers * 2 >= CONNS,
                "{workers} workers: worker {w} got {conns} of {CONNS} connections"
            );
        }
    }

    // A full worker queue: the receiving side drops and counts, never blocks
    // (nobody drains the queues here).
    let (mut dispatcher, mut ends) = Dispatcher::<MbufPacket>::new(2, 8);
    let frame = &cap.frames[5].1;
    let w = flow_worker(frame, 2);
    let pkts: Vec<MbufPacket> = (0..100).map(|_| pool.packet_from(frame).unwrap()).collect();
    send_all(&mut port, pkts, 32);
    let mut burst = Burst::with_capacity(100);
    for rx in recv_n(&mut port, 100) {
        burst.push(rx).unwrap();
    }
    assert_eq!(dispatcher.dispatch_burst(&mut burst), 8);
    let counts = dispatcher.counts()[w];
    assert_eq!((counts.delivered, counts.dropped), (8, 92));
    assert_eq!(dispatcher.dropped(), 92);
    assert_eq!(dispatcher.counts()[1 - w].delivered, 0);
    assert_eq!(pool.available(), POOL - 8, "dropped packets were freed");
    let mut out = Burst::with_capacity(32);
    assert_eq!(ends[w].try_recv_burst(&mut out), Some(8));
    assert_eq!(ends[1 - w].try_recv_burst(&mut out), Some(0));
    out.clear();
    drop(dispatcher);
    assert_eq!(ends[w].try_recv_burst(&mut out), None, "dispatcher gone");
    assert_eq!(port.dropped_multi_segment(), 0);
    drop(port);
    assert!(pool.is_full(), "every mbuf back: {pool:?}");

    // The device's hash, when the mbuf says it has one.
    let mut port = Port::open(eal, id, &pool, PortConfig::default()).unwrap();
    let p = pool.packet_from(frame).unwrap();
    assert_eq!(p.rss_hash(), None, "a fresh mbuf has no hash");
    // SAFETY: a valid mbuf held by `p` alone; what a driver writes on receive.
    unsafe {
        (*p.as_ptr()).ol_flags |= 1 << 1; // RTE_MBUF_F_RX_RSS_HASH
        (*p.as_ptr()).__bindgen_anon_2.hash.rss = 0x1234_5678;
    }
    send_all(&mut port, vec![p], 32);
    let back = recv_n(&mut port, 1);
    assert_eq!(back[0].packet.rss_hash(), Some(0x1234_5678));
    drop(back);
    drop(port);
    assert!(pool.is_full(), "every mbuf back: {pool:?}");
}

#[test]
fn null_device_gets_symmetric_rss_and_one_thread_per_queue() {
    let eal = start_eal(&eal_args("aa-dpdk-queues-test", VDEVS));
    let pool = Mempool::new(eal, "aa_q_null0", POOL, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
    let id = eal.port_by_name("net_null0").unwrap();

    // One queue, or RSS turned off: no RSS.
    let port = Port::open(eal, id, &pool, PortConfig::default()).unwrap();
    assert_eq!(port.rss(), None);
    drop(port);
    // net_null cannot change the setting (it passes every frame anyway):
    // asking for it is not an error.
    let cfg = PortConfig {
        promiscuous: true,
        ..PortConfig::default()
    };
    drop(Port::open(eal, id, &pool, cfg).expect("promiscuous where unsupported"));
    let cfg = PortConfig {
        queues: 4,
        rss: false,
        ..PortConfig::default()
    };
    let port = Port::open(eal, id, &pool, cfg).unwrap();
    assert_eq!(port.rss(), None);
    drop(port);

    let cfg = PortConfig {
        queues: 4,
        ..PortConfig::default()
    };
    let mut port = Port::open(eal, id, &pool, cfg).unwrap();
    let rss = port.rss().expect("net_null reports RSS hash types");
    assert_ne!(rss.hash_types, 0);
    assert_eq!(rss.hash_types & !(RSS_IP | RSS_TCP), 0, "IP and TCP only");
    assert!(rss.symmetric, "the device holds the symmetric key");

    // Each queue polled by its own thread (net_null makes up 64-byte frames
    // out of the pool).
    const EACH: usize = 1000;
    let cpus = cpus();
    assert!(!cpus.is_empty());
    let got: Vec<(u16, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = port
            .queues_mut()
            .iter_mut()
            .map(|queue| {
                s.spawn(move || {
                    // EAL pinned the thread that started it; this one is
                    // moved to a core of its own.
                    let cpu = cpus[usize::from(queue.queue()) % cpus.len()];
                    pin_current_thread(cpu).unwrap();
                    assert_eq!(current_thread_cpus(), vec![cpu]);
                    let mut burst = Burst::with_capacity(32);
                    let mut n = 0;
                    while n < EACH {
                        n += queue.recv_burst(&mut burst).unwrap();
                        for rx in burst.drain(..) {
                            assert_eq!(rx.meta.iface, u32::from(queue.port_id()));
                            assert!(!rx.packet.data().is_empty());
                        }
                    }
                    (queue.queue(), n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let queues: HashSet<u16> = got.iter().map(|(q, _)| *q).collect();
    assert_eq!(queues, (0..4).collect());
    assert!(got.iter().all(|(_, n)| *n >= EACH));
    assert_eq!(port.dropped_multi_segment(), 0);
    drop(port);
    assert!(pool.is_full(), "every mbuf back: {pool:?}");
}
