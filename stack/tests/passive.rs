//! Passive reassembly of both directions: handshakes, mid-stream pickup,
//! reordering, retransmissions, overlaps, losses turned into gaps, FIN, RST,
//! idle eviction, caps. Connections carry CSV (the runtime's hand-written
//! parser) so that records say exactly which bytes arrived in which order.
//! Every test ends with the packet pool full again.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use aa_runtime::csv::{CsvConfig, CsvParser};
use aa_runtime::{AaStream, Packet, PacketPool, ParseError};
use aa_stack::flow::{Endpoint, FlowConfig};
use aa_stack::frame::TcpFrame;
use aa_stack::io::Timestamp;
use aa_stack::passive::{DirInfo, End, Parsers, Passive, PassiveConfig, Side, Sink};
use aa_stack::wire::{parse, LinkType, TcpFlags};
use proptest::prelude::*;

const CLIENT: Endpoint = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 40000);
const SERVER: Endpoint = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 9000);

/// CSV both ways on port 9000 (with a small field cap, to provoke errors).
struct Csv {
    max_field_len: u64,
}

impl Parsers for Csv {
    type Parser = CsvParser;
    fn is_server_port(&self, port: u16) -> bool {
        port == 9000
    }
    fn parser(&mut self, server: Endpoint, _side: Side) -> Option<CsvParser> {
        (server.1 == 9000).then(|| {
            CsvParser::new(CsvConfig {
                max_field_len: self.max_field_len,
                ..CsvConfig::default()
            })
        })
    }
}

type Row = Vec<Vec<u8>>;

/// Everything a sink is told, in order.
#[derive(Debug, Default)]
struct Seen {
    rows: [Vec<(u64, Row)>; 2],
    gaps: [Vec<(u64, u64)>; 2],
    errors: [Vec<String>; 2],
    closed: Vec<(Endpoint, Endpoint, End)>,
}

impl Seen {
    fn rows(&self, side: Side) -> Vec<String> {
        self.rows[side as usize]
            .iter()
            .map(|(_, r)| {
                r.iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }
}

impl<P: Packet> Sink<P, CsvParser> for Seen {
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, CsvParser>) {
        let n = stream.ready();
        for r in stream.read_aa_records(n) {
            let row = r.fields().map(|f| f.to_vec()).collect();
            self.rows[dir.side as usize].push((r.span().start, row));
        }
        stream.free_aa_records(n);
    }
    fn gap(&mut self, dir: &DirInfo, offset: u64, len: u64) {
        self.gaps[dir.side as usize].push((offset, len));
    }
    fn error(&mut self, dir: &DirInfo, e: &ParseError) {
        self.errors[dir.side as usize].push(e.to_string());
    }
    fn closed(&mut self, client: Endpoint, server: Endpoint, end: End) {
        self.closed.push((client, server, end));
    }
}

/// Frames of one connection; offsets are relative to each side's ISN + 1.
#[derive(Clone, Copy)]
struct Conn {
    client: Endpoint,
    server: Endpoint,
    isn: [u32; 2],
}

impl Conn {
    fn new(client_port: u16, isn_c: u32, isn_s: u32) -> Conn {
        Conn {
            client: (CLIENT.0, client_port),
            server: SERVER,
            isn: [isn_c, isn_s],
        }
    }

    fn frame(&self, from: Side, flags: TcpFlags, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
        let (src, dst) = match from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        TcpFrame::new(src, dst)
            .seq(seq)
            .ack(ack)
            .flags(flags)
            .build(data)
            .unwrap()
    }

    fn seq(&self, side: Side, off: u32) -> u32 {
        self.isn[side as usize].wrapping_add(1).wrapping_add(off)
    }

    fn syn(&self) -> Vec<u8> {
        self.frame(Side::Client, TcpFlags::SYN, self.isn[0], 0, b"")
    }
    fn syn_ack(&self) -> Vec<u8> {
        let ack = self.seq(Side::Client, 0);
        self.frame(
            Side::Server,
            TcpFlags::SYN | TcpFlags::ACK,
            self.isn[1],
            ack,
            b"",
        )
    }
    fn handshake(&self) -> Vec<Vec<u8>> {
        vec![self.syn(), self.syn_ack(), self.ack(Side::Client, 0, 0)]
    }
    /// Data from `from` at `off`, acknowledging `peer_off` of the other side.
    fn data(&self, from: Side, off: u32, peer_off: u32, data: &[u8]) -> Vec<u8> {
        let ack = self.seq(from.other(), peer_off);
        self.frame(
            from,
            TcpFlags::ACK | TcpFlags::PSH,
            self.seq(from, off),
            ack,
            data,
        )
    }
    /// A pure ACK from `from` of `peer_off` bytes of the other side.
    fn ack(&self, from: Side, off: u32, peer_off: u32) -> Vec<u8> {
        let ack = self.seq(from.other(), peer_off);
        self.frame(from, TcpFlags::ACK, self.seq(from, off), ack, b"")
    }
    fn fin(&self, from: Side, off: u32, peer_off: u32) -> Vec<u8> {
        let ack = self.seq(from.other(), peer_off);
        self.frame(
            from,
            TcpFlags::FIN | TcpFlags::ACK,
            self.seq(from, off),
            ack,
            b"",
        )
    }
    fn rst(&self, from: Side, off: u32) -> Vec<u8> {
        self.frame(from, TcpFlags::RST, self.seq(from, off), 0, b"")
    }
    /// `bytes` from `from` cut into segments of `mss`, starting at `off`.
    fn stream(&self, from: Side, off: u32, bytes: &[u8], mss: usize) -> Vec<Vec<u8>> {
        bytes
            .chunks(mss)
            .enumerate()
            .map(|(i, c)| self.data(from, off + (i * mss) as u32, 0, c))
            .collect()
    }
}

struct Run {
    pool: PacketPool,
    passive: Passive<aa_runtime::PoolPacket, Csv>,
    seen: Seen,
}

impl Run {
    fn new(cfg: PassiveConfig) -> Run {
        Run {
            pool: PacketPool::new(256, 2048),
            passive: Passive::new(cfg, Csv { max_field_len: 64 }),
            seen: Seen::default(),
        }
    }

    fn default_cfg() -> Run {
        Run::new(PassiveConfig::default())
    }

    fn feed_at(&mut self, secs: u64, frames: &[Vec<u8>]) {
        for f in frames {
            let seg = parse(f, LinkType::Ethernet, true).unwrap();
            let pkt = self.pool.packet_from(f).unwrap();
            self.passive
                .segment(Timestamp::new(secs, 0), &seg, &pkt, &mut self.seen);
        }
    }

    fn feed(&mut self, frames: &[Vec<u8>]) {
        self.feed_at(1, frames);
    }

    /// Ends the input and checks every packet went back to the pool.
    fn end(mut self) -> (Seen, aa_stack::passive::PassiveStats) {
        self.passive.finish(&mut self.seen);
        assert_eq!(self.passive.flows(), 0);
        let stats = self.passive.stats();
        drop(self.passive);
        assert!(self.pool.is_full(), "packets leaked");
        (self.seen, stats)
    }
}

#[test]
fn handshake_data_and_fin_in_both_directions() {
    let c = Conn::new(40000, 1000, 5000);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[
        c.data(Side::Client, 0, 0, b"a,b\n1,"),
        c.data(Side::Client, 6, 0, b"2\n"),
        c.data(Side::Server, 0, 8, b"ok\n"),
        c.fin(Side::Client, 8, 3),
        c.fin(Side::Server, 3, 9),
    ]);
    // The connection is gone once both FINs are in.
    assert_eq!(run.passive.flows(), 0);
    run.feed(&[c.ack(Side::Client, 9, 4)]);
    let (seen, stats) = run.end();
    assert_eq!(seen.rows(Side::Client), ["a,b", "1,2"]);
    assert_eq!(seen.rows(Side::Server), ["ok"]);
    assert_eq!(seen.closed, [(c.client, c.server, End::Fin)]);
    assert_eq!(seen.gaps, [vec![], vec![]]);
    assert_eq!(stats.handshakes, 1);
    assert_eq!(stats.closed_fin, 1);
    assert_eq!(stats.records, 3);
    // The final ACK of a closed connection starts nothing.
    assert_eq!(stats.untracked, 1);
}

#[test]
fn reordered_duplicated_and_overlapping_segments_give_the_same_records() {
    let c = Conn::new(40001, 7, 9);
    let text = b"id,name\n1,\"x,y\"\n2,zz\n3,last\n";
    let mut segs = c.stream(Side::Client, 0, text, 5);
    segs.swap(1, 3);
    segs.swap(2, 5);
    // A retransmission of the first segment and one overlapping two others.
    segs.push(c.data(Side::Client, 0, 0, &text[..5]));
    segs.insert(4, c.data(Side::Client, 3, 0, &text[3..12]));
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&segs);
    run.feed(&[c.fin(Side::Client, text.len() as u32, 0)]);
    let (seen, stats) = run.end();
    assert_eq!(
        seen.rows(Side::Client),
        ["id,name", "1,x,y", "2,zz", "3,last"]
    );
    assert!(stats.out_of_order > 0 && stats.duplicates > 0, "{stats:?}");
    assert_eq!(seen.gaps[0], []);
}

#[test]
fn a_segment_the_capture_missed_is_a_gap_once_acknowledged() {
    let c = Conn::new(40002, 100, 200);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[
        c.data(Side::Client, 0, 0, b"aa,bb\n"),
        // 6..12 "cc,dd\n" never captured
        c.data(Side::Client, 12, 0, b"ee,"),
    ]);
    assert_eq!(run.seen.gaps[0], [], "no gap before the ACK");
    // The server acknowledges everything: the missing bytes were delivered.
    run.feed(&[c.ack(Side::Server, 0, 15)]);
    assert_eq!(run.seen.gaps[0], [(6, 6)]);
    run.feed(&[c.data(Side::Client, 15, 0, b"ff\ngg,hh\n")]);
    let (seen, stats) = run.end();
    // The parser resynchronises at the next line end after the gap.
    assert_eq!(seen.rows(Side::Client), ["aa,bb", "gg,hh"]);
    assert_eq!((stats.gaps, stats.gap_bytes), (1, 6));
    assert_eq!(seen.closed[0].2, End::Input);
}

#[test]
fn holes_left_at_the_end_are_gaps_one_per_hole() {
    let c = Conn::new(40003, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[
        c.data(Side::Client, 0, 0, b"a\n"),
        c.data(Side::Client, 4, 0, b"c\n"),
        c.data(Side::Client, 10, 0, b"e\n"),
    ]);
    let (seen, _) = run.end();
    assert_eq!(seen.gaps[0], [(2, 2), (6, 4)]);
    assert_eq!(seen.rows(Side::Client), ["a"]);
}

#[test]
fn a_lost_tail_is_a_gap_when_the_fin_is_acknowledged() {
    let c = Conn::new(40004, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[
        c.data(Side::Client, 0, 0, b"x,y\n"),
        // 4..8 lost, then the FIN at 8
        c.fin(Side::Client, 8, 0),
    ]);
    assert_eq!(run.seen.gaps[0], []);
    run.feed(&[c.ack(Side::Server, 0, 9)]);
    assert_eq!(run.seen.gaps[0], [(4, 4)]);
    run.feed(&[c.fin(Side::Server, 0, 9)]);
    assert_eq!(run.passive.flows(), 0, "both directions ended");
    let (seen, _) = run.end();
    assert_eq!(seen.rows(Side::Client), ["x,y"]);
    assert_eq!(seen.closed[0].2, End::Fin);
}

#[test]
fn connections_are_picked_up_mid_stream_unless_switched_off() {
    let c = Conn::new(40005, 77, 88);
    let frames = [
        c.data(Side::Client, 50, 20, b"p,q\n"),
        c.data(Side::Server, 20, 54, b"r\n"),
    ];
    let mut run = Run::default_cfg();
    run.feed(&frames);
    let (seen, stats) = run.end();
    assert_eq!(seen.rows(Side::Client), ["p,q"]);
    assert_eq!(seen.rows(Side::Server), ["r"]);
    assert_eq!((stats.midstream, stats.handshakes), (1, 0));
    // The server is the side on the served port, whoever speaks first.
    let mut run = Run::default_cfg();
    run.feed(&frames[1..]);
    let (seen, _) = run.end();
    assert_eq!(seen.rows(Side::Server), ["r"]);
    assert_eq!(seen.closed[0].0, c.client);

    let mut run = Run::new(PassiveConfig {
        midstream: false,
        ..PassiveConfig::default()
    });
    run.feed(&frames);
    let (seen, stats) = run.end();
    assert_eq!(seen.rows[0].len() + seen.rows[1].len(), 0);
    assert_eq!(stats.untracked, 2);
}

#[test]
fn rst_ends_the_connection_and_reports_what_was_parsed() {
    let c = Conn::new(40006, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[c.data(Side::Client, 0, 0, b"1,2\n3,")]);
    run.feed(&[c.rst(Side::Server, 0)]);
    assert_eq!(run.passive.flows(), 0);
    let (seen, stats) = run.end();
    // The half row before the reset is the record the stream ends inside.
    assert_eq!(seen.rows(Side::Client), ["1,2", "3,"]);
    assert_eq!(seen.closed[0].2, End::Reset);
    assert_eq!(stats.closed_rst, 1);
}

#[test]
fn a_syn_flood_beyond_the_flow_cap_is_refused_and_counted() {
    let mut run = Run::new(PassiveConfig {
        flows: FlowConfig {
            max_flows: 4,
            ..FlowConfig::default()
        },
        ..PassiveConfig::default()
    });
    let first = Conn::new(50000, 1, 1);
    run.feed(&first.handshake());
    for port in 50001..50020 {
        run.feed(&[Conn::new(port, port as u32, 0).syn()]);
    }
    assert_eq!(run.passive.flows(), 4);
    assert_eq!(run.passive.stats().refused, 16);
    assert_eq!(run.passive.flow_stats().refused_full, 16);
    // The connection tracked before the flood still works.
    run.feed(&[first.data(Side::Client, 0, 0, b"still,here\n")]);
    let (seen, _) = run.end();
    assert_eq!(seen.rows(Side::Client), ["still,here"]);
}

#[test]
fn segments_and_acks_far_outside_the_window_are_counted_and_ignored() {
    let c = Conn::new(40007, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[
        c.data(Side::Client, 0, 0, b"a\n"),
        c.data(Side::Client, 100_000_000, 0, b"far,away\n"),
        c.ack(Side::Server, 0, 2_000_000_000),
        c.data(Side::Client, 2, 0, b"b\n"),
    ]);
    let (seen, stats) = run.end();
    assert_eq!(seen.rows(Side::Client), ["a", "b"]);
    assert_eq!(stats.out_of_window, 1);
    assert_eq!(stats.bogus_acks, 1);
    assert_eq!(seen.gaps[0], []);
}

#[test]
fn idle_connections_are_evicted() {
    let old = Conn::new(40008, 0, 0);
    let young = Conn::new(40009, 0, 0);
    let mut run = Run::new(PassiveConfig {
        flows: FlowConfig {
            idle_timeout: Duration::from_secs(60),
            ..FlowConfig::default()
        },
        ..PassiveConfig::default()
    });
    run.feed_at(0, &old.handshake());
    run.feed_at(0, &[old.data(Side::Client, 0, 0, b"late,row")]);
    run.feed_at(100, &young.handshake());
    assert_eq!(run.passive.flows(), 1);
    assert_eq!(run.seen.closed, [(old.client, old.server, End::Idle)]);
    // The row in progress was ended with the connection.
    assert_eq!(run.seen.rows(Side::Client), ["late,row"]);
    let (_, stats) = run.end();
    assert_eq!((stats.closed_idle, stats.closed_input), (1, 1));
}

#[test]
fn a_new_syn_on_a_tracked_tuple_replaces_the_old_connection() {
    let a = Conn::new(40010, 10, 20);
    let b = Conn::new(40010, 99_999, 5);
    let mut run = Run::default_cfg();
    run.feed(&a.handshake());
    run.feed(&[a.data(Side::Client, 0, 0, b"first\n")]);
    // A retransmitted SYN changes nothing.
    run.feed(&[a.syn()]);
    assert!(run.seen.closed.is_empty());
    run.feed(&b.handshake());
    run.feed(&[b.data(Side::Client, 0, 0, b"second\n")]);
    let (seen, stats) = run.end();
    assert_eq!(seen.rows(Side::Client), ["first", "second"]);
    assert_eq!(seen.closed[0].2, End::Reused);
    assert_eq!(stats.closed_reused, 1);
}

#[test]
fn a_parser_error_fails_one_direction_and_the_others_go_on() {
    let bad = Conn::new(40011, 0, 0);
    let good = Conn::new(40012, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&bad.handshake());
    run.feed(&good.handshake());
    let long = [b'x'; 100];
    run.feed(&[
        bad.data(Side::Client, 0, 0, b"ok\n"),
        bad.data(Side::Client, 3, 0, &long),
        good.data(Side::Client, 0, 0, b"fine\n"),
        bad.data(Side::Server, 0, 0, b"reply\n"),
    ]);
    let (seen, stats) = run.end();
    assert_eq!(seen.errors[0].len(), 1, "{:?}", seen.errors);
    assert!(
        seen.errors[0][0].contains("stream offset 3")
            && seen.errors[0][0].contains("longer than 64"),
        "{}",
        seen.errors[0][0]
    );
    assert_eq!(seen.rows(Side::Client), ["ok", "fine"]);
    assert_eq!(seen.rows(Side::Server), ["reply"]);
    assert_eq!(stats.errors, 1);
}

#[test]
fn sequence_numbers_wrap() {
    let c = Conn::new(40013, u32::MAX - 3, u32::MAX);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    let text = b"w,r,a,p\naround,the,end\n";
    let mut segs = c.stream(Side::Client, 0, text, 3);
    segs.reverse();
    run.feed(&segs);
    run.feed(&c.stream(Side::Server, 0, b"s\n", 1));
    let (seen, _) = run.end();
    assert_eq!(seen.rows(Side::Client), ["w,r,a,p", "around,the,end"]);
    assert_eq!(seen.rows(Side::Server), ["s"]);
}

#[test]
fn ports_without_a_parser_are_not_tracked() {
    let mut c = Conn::new(40014, 0, 0);
    c.server.1 = 5555;
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    run.feed(&[c.data(Side::Client, 0, 0, b"a\n")]);
    let (seen, stats) = run.end();
    assert!(seen.closed.is_empty());
    assert_eq!(stats.untracked, 4);
    assert_eq!(stats.handshakes + stats.midstream, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any cut, any order, duplicates: the records of both directions are those
    /// of the contiguous bytes, and every packet is released.
    #[test]
    fn any_cut_and_order_gives_the_contiguous_records(
        rows in proptest::collection::vec("[a-z]{0,6}(,[a-z0-9]{0,5}){0,3}", 1..12),
        mss in 1usize..20,
        swaps in proptest::collection::vec((0usize..64, 0usize..64), 0..20),
        dups in proptest::collection::vec(0usize..64, 0..5),
        isn in any::<u32>(),
    ) {
        let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        let c = Conn::new(40100, isn, isn.wrapping_mul(7));
        let mut segs = c.stream(Side::Client, 0, text.as_bytes(), mss);
        segs.extend(c.stream(Side::Server, 0, text.as_bytes(), mss + 3));
        let n = segs.len();
        for (a, b) in swaps {
            segs.swap(a % n, b % n);
        }
        for d in dups {
            segs.push(segs[d % n].clone());
        }
        let mut run = Run::default_cfg();
        run.feed(&c.handshake());
        run.feed(&segs);
        let (seen, _) = run.end();
        let want: Vec<String> = rows.iter().filter(|r| !r.is_empty()).cloned().collect();
        prop_assert_eq!(seen.rows(Side::Client), want.clone());
        prop_assert_eq!(seen.rows(Side::Server), want);
        prop_assert_eq!(&seen.gaps, &[vec![], vec![]]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the bytes — flipped header bits, cut frames, shuffled order,
    /// checksums not checked so damaged segments get in — nothing panics,
    /// every flow ends, and every packet goes back to the pool.
    #[test]
    fn damaged_traffic_never_panics_and_leaks_nothing(
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<usize>(), 0usize..80, any::<u8>()), 0..40),
        cuts in proptest::collection::vec((any::<usize>(), 0usize..120), 0..8),
        swaps in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..10),
    ) {
        use aa_stack::synth::{csv_rows, Conversation, Dialogue, Impairments, Side as S};
        use aa_stack::wire::{ChecksumMode, Decoder};
        let conv = Conversation::new(
            "198.51.100.1:40200".parse().unwrap(),
            "198.51.100.2:9000".parse().unwrap(),
            Dialogue::one_way(S::Client, csv_rows(40, seed)),
            seed,
        )
        .impair(S::Client, Impairments::MIXED);
        let mut frames: Vec<Vec<u8>> =
            conv.capture(Timestamp::new(1, 0)).frames.into_iter().map(|(_, f)| f).collect();
        let n = frames.len();
        for (i, at, x) in flips {
            let f = &mut frames[i % n];
            let at = at.min(f.len() - 1);
            f[at] ^= x;
        }
        for (i, len) in cuts {
            let f = &mut frames[i % n];
            f.truncate(len.min(f.len()));
        }
        for (a, b) in swaps {
            frames.swap(a % n, b % n);
        }
        let pool = PacketPool::new(256, 2048);
        let mut passive = Passive::new(PassiveConfig::default(), Csv { max_field_len: 64 });
        let mut decoder = Decoder::new(ChecksumMode::Off);
        let mut seen = Seen::default();
        for f in &frames {
            let pkt = pool.packet_from(f).unwrap();
            if let Ok(seg) = decoder.decode(f, LinkType::Ethernet) {
                passive.segment(Timestamp::new(1, 0), &seg, &pkt, &mut seen);
            }
        }
        passive.finish(&mut seen);
        prop_assert_eq!(passive.flows(), 0);
        drop(passive);
        prop_assert!(pool.is_full());
    }
}

#[test]
fn a_small_record_queue_still_delivers_every_record() {
    let mut cfg = PassiveConfig::default();
    cfg.aa.max_records = 2;
    let c = Conn::new(40300, 0, 0);
    let text: String = (0..50).map(|i| format!("row{i},x\n")).collect();
    let mut run = Run::new(cfg);
    run.feed(&c.handshake());
    // Many records per packet: the parser pauses on the full queue and goes
    // on as the sink frees.
    run.feed(&c.stream(Side::Client, 0, text.as_bytes(), 400));
    run.feed(&[c.fin(Side::Client, text.len() as u32, 0)]);
    let (seen, _) = run.end();
    let want: Vec<String> = (0..50).map(|i| format!("row{i},x")).collect();
    assert_eq!(seen.rows(Side::Client), want);
}

#[test]
fn a_direction_resynchronises_after_a_parser_error() {
    let c = Conn::new(40301, 0, 0);
    let mut run = Run::default_cfg();
    run.feed(&c.handshake());
    let long = format!("ok\n{},x\nafter,error\n", "y".repeat(100));
    run.feed(&c.stream(Side::Client, 0, long.as_bytes(), 30));
    let (seen, stats) = run.end();
    assert_eq!(seen.errors[0].len(), 1, "{:?}", seen.errors);
    assert!(
        seen.errors[0][0].contains("longer than 64"),
        "{:?}",
        seen.errors
    );
    assert_eq!(seen.rows(Side::Client), ["ok", "after,error"]);
    assert_eq!(stats.errors, 1);
}
