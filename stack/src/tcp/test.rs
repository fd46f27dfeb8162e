//! The endpoint's state machine against a scripted peer on a [`MemoryIo`].

use super::*;
use crate::frame::TcpFrame;
use crate::io::memory::MemoryIo;
use crate::link::arp::{self, ArpMessage};
use crate::wire::TcpOpts;
use aa_runtime::csv::CsvParser;
use aa_runtime::Packet;
use proptest::prelude::*;

const US: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
const PEER: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 1]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PORT: u16 = 9000;
const IRS: u32 = 0xffff_ff00; // the peer's ISN: sequence numbers wrap soon

/// One segment we sent, parsed, with its payload.
#[derive(Debug)]
struct Sent {
    seg: Segment,
    payload: Vec<u8>,
}

struct Lab {
    stack: Stack<MemoryIo, CsvParser>,
    pool: PacketPool,
    id: ConnId,
    local_port: u16,
    iss: u32,
    t: Instant,
}

impl Lab {
    /// Connected (ARP, SYN, SYN-ACK with MSS 1000 and window scale 2,
    /// window 1000 << 2), the handshake's segments taken.
    fn connected(cfg: StackConfig) -> Lab {
        Lab::connected_sack(cfg, false)
    }

    /// As [`connected`](Self::connected); the SYN-ACK permits SACK if `sack`.
    fn connected_sack(cfg: StackConfig, sack: bool) -> Lab {
        let pool = PacketPool::new(256, 2048);
        let dev = MemoryIo::new(pool.clone(), LinkType::Ethernet);
        let mut stack = Stack::new(dev, pool.clone(), US, OUR_IP, cfg);
        let id = stack
            .connect(SocketAddrV4::new(PEER_IP, PORT), CsvParser::default())
            .unwrap();
        let t = Instant::now();
        let mut lab = Lab {
            stack,
            pool,
            id,
            local_port: 0,
            iss: 0,
            t,
        };
        lab.poll();
        let sent = lab.stack.device_mut().take_sent();
        assert_eq!(sent.len(), 1, "one ARP request");
        let req = arp::parse(&sent[0].data()[14..]).unwrap();
        assert_eq!(req, ArpMessage::request(US, OUR_IP, PEER_IP));
        assert_eq!(lab.stack.state(id), Some(State::ArpWait));
        let mut reply = vec![0u8; 60];
        arp::write_frame(&mut reply, US, &req.reply_from(PEER, PEER_IP)).unwrap();
        lab.stack.device_mut().push(Timestamp::now(), &reply);
        lab.poll();
        let syn = lab.sent();
        assert_eq!(syn.len(), 1);
        let s = &syn[0].seg;
        assert_eq!(s.flags, TcpFlags::SYN);
        assert_eq!(s.dst, (IpAddr::V4(PEER_IP), PORT));
        assert_eq!(s.opts.mss, Some(cfg.mss));
        assert_eq!(
            s.opts.wscale,
            Some(lab.stack.conns[0].as_ref().unwrap().rcv_wscale)
        );
        assert!(s.opts.sack_permitted, "our SYN offers SACK");
        lab.local_port = s.src.1;
        lab.iss = s.seq.0;
        assert_eq!(lab.stack.state(id), Some(State::SynSent));
        let synack = lab
            .frame(IRS, TcpFlags::SYN | TcpFlags::ACK, b"")
            .window(1000)
            .opts(TcpOpts {
                mss: Some(1000),
                wscale: Some(2),
                sack_permitted: sack,
                ..TcpOpts::default()
            });
        lab.push(synack.build(b"").unwrap());
        lab.poll();
        assert_eq!(lab.stack.next_event(), Some(Event::Connected(id)));
        let ack = lab.sent();
        assert_eq!(ack.len(), 1);
        assert_eq!(ack[0].seg.flags, TcpFlags::ACK);
        assert_eq!(ack[0].seg.ack.0, IRS.wrapping_add(1));
        assert_eq!(ack[0].seg.seq.0, lab.iss.wrapping_add(1));
        assert_eq!(lab.stack.state(id), Some(State::Established));
        lab
    }

    fn poll(&mut self) -> usize {
        self.stack.poll_at(self.t).unwrap()
    }

    fn push(&mut self, f: Vec<u8>) {
        self.stack.device_mut().push(Timestamp::now(), &f);
    }

    /// A segment from the peer at sequence number `seq`, acknowledging
    /// everything we sent so far.
    fn frame(&self, seq: u32, flags: TcpFlags, _payload: &[u8]) -> TcpFrame {
        let mut f = TcpFrame::new(
            (IpAddr::V4(PEER_IP), PORT),
            (IpAddr::V4(OUR_IP), self.local_port),
        )
        .seq(seq)
        .ack(self.iss.wrapping_add(1))
        .flags(flags)
        .window(1000);
        f.src_mac = PEER.0;
        f.dst_mac = US.0;
        f
    }

    /// Data from the peer at stream offset `off` (0 = first byte).
    fn data(&self, off: u32, payload: &[u8]) -> Vec<u8> {
        self.frame(IRS.wrapping_add(1 + off), TcpFlags::ACK, payload)
            .build(payload)
            .unwrap()
    }

    fn sent(&mut self) -> Vec<Sent> {
        self.stack
            .device_mut()
            .take_sent()
            .into_iter()
            .map(|p| {
                let seg = wire::parse(p.data(), LinkType::Ethernet, true).unwrap();
                assert_eq!(seg.checksum, ChecksumStatus::Valid);
                Sent {
                    seg,
                    payload: seg.payload(p.data()).to_vec(),
                }
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.stack.next_event()).collect()
    }

    /// Reads and frees every ready record; returns their fields as text.
    fn rows(&mut self) -> Vec<Vec<String>> {
        let s = self.stack.stream_mut(self.id).unwrap();
        let out: Vec<Vec<String>> = s
            .read_aa_records(usize::MAX)
            .map(|r| {
                r.fields()
                    .map(|f| String::from_utf8(f.to_vec()).unwrap())
                    .collect()
            })
            .collect();
        s.free_aa_records(out.len());
        out
    }
}

fn ack_of(s: &Sent) -> u32 {
    s.seg.ack.0.wrapping_sub(IRS.wrapping_add(1))
}

/// The option bytes of a segment we sent, and its SACK blocks as stream
/// offsets of the peer's data (parsed here: `TcpOpts` has no SACK blocks).
fn sack_of(s: &Sent, frame: &[u8]) -> (Vec<u8>, Vec<(u32, u32)>) {
    let opts = frame[s.seg.tcp_offset as usize + 20..s.seg.payload_offset as usize].to_vec();
    // Walk the options by hand: kind 1 is NOP, kind 5 is SACK.
    let (mut i, mut blocks) = (0, Vec::new());
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = opts[i + 1] as usize;
                assert!(len >= 2 && i + len <= opts.len(), "{opts:?}");
                if kind == 5 {
                    assert_eq!((len - 2) % 8, 0, "{opts:?}");
                    for b in opts[i + 2..i + len].chunks(8) {
                        let w = |x: &[u8]| u32::from_be_bytes(x.try_into().unwrap());
                        let base = IRS.wrapping_add(1);
                        blocks.push((w(&b[..4]).wrapping_sub(base), w(&b[4..]).wrapping_sub(base)));
                    }
                }
                i += len;
            }
        }
    }
    (opts, blocks)
}

/// A segment we sent, its SACK blocks (stream offsets) and option bytes.
type SentSack = (Sent, Vec<(u32, u32)>, Vec<u8>);

impl Lab {
    /// Like [`sent`](Self::sent), with each segment's SACK blocks and option
    /// bytes.
    fn sent_sack(&mut self) -> Vec<SentSack> {
        self.stack
            .device_mut()
            .take_sent()
            .into_iter()
            .map(|p| {
                let seg = wire::parse(p.data(), LinkType::Ethernet, true).unwrap();
                assert_eq!(seg.checksum, ChecksumStatus::Valid);
                assert!(!seg.opts.malformed);
                let sent = Sent {
                    seg,
                    payload: seg.payload(p.data()).to_vec(),
                };
                let (opts, blocks) = sack_of(&sent, p.data());
                (sent, blocks, opts)
            })
            .collect()
    }
}

#[test]
fn acks_carry_sack_blocks_newest_first_when_permitted() {
    let mut lab = Lab::connected_sack(StackConfig::default(), true);
    let step = |lab: &mut Lab, offs: &[u32]| -> Vec<(u32, Vec<(u32, u32)>)> {
        for &o in offs {
            let f = lab.data(o, b"k,v\n");
            lab.push(f);
        }
        lab.poll();
        lab.sent_sack()
            .into_iter()
            .map(|(s, b, opts)| {
                assert_eq!(opts.len() % 4, 0);
                if b.is_empty() {
                    assert!(opts.is_empty(), "{opts:?}");
                } else {
                    // NOP NOP SACK: the header length counts them exactly.
                    assert_eq!(opts[..4], [1, 1, 5, 2 + 8 * b.len() as u8]);
                    assert_eq!(opts.len(), 4 + 8 * b.len());
                }
                (ack_of(&s), b)
            })
            .collect()
    };
    assert_eq!(step(&mut lab, &[8]), [(0, vec![(8, 12)])]);
    // The newest block first, the one reported before after it.
    assert_eq!(step(&mut lab, &[16]), [(0, vec![(16, 20), (8, 12)])]);
    // Filling the hole between them: one block, reported first.
    assert_eq!(step(&mut lab, &[12]), [(0, vec![(8, 20)])]);
    assert_eq!(
        step(&mut lab, &[24, 32]),
        [
            (0, vec![(24, 28), (8, 20)]),
            (0, vec![(32, 36), (24, 28), (8, 20)])
        ]
    );
    // Five blocks: four fit (no timestamps), the oldest report drops out.
    assert_eq!(
        step(&mut lab, &[40, 48]),
        [
            (0, vec![(40, 44), (32, 36), (24, 28), (8, 20)]),
            (0, vec![(48, 52), (40, 44), (32, 36), (24, 28)])
        ]
    );
    // A duplicate: its duplicate ACK carries the blocks too.
    assert_eq!(
        step(&mut lab, &[8]),
        [(0, vec![(48, 52), (40, 44), (32, 36), (24, 28)])]
    );
    // The first hole closes (one remains before 8): the ACK moves, the
    // blocks stay.
    assert_eq!(
        step(&mut lab, &[0]),
        [(4, vec![(48, 52), (40, 44), (32, 36), (24, 28)])]
    );
    // Delivered blocks drop out.
    assert_eq!(
        step(&mut lab, &[4, 20, 28]),
        [(36, vec![(48, 52), (40, 44)])]
    );
    let mut l2 = Lab::connected_sack(StackConfig::default(), true);
    for o in [8, 16, 24, 32, 40] {
        let f = l2.data(o, b"k,v\n");
        l2.push(f);
    }
    l2.poll();
    assert_eq!(l2.sent().len(), 5);
    // Five blocks; 44 extends 40's. The blocks of the three segments
    // before it follow; the last slot goes to the block nearest rcv_nxt,
    // which no recent segment names.
    assert_eq!(
        step(&mut l2, &[44]),
        [(0, vec![(40, 48), (32, 36), (24, 28), (8, 12)])]
    );
    assert_eq!(step(&mut l2, &[0, 4, 12, 20, 28, 36]), [(48, vec![])]);
}

#[test]
fn no_sack_blocks_unless_the_peer_permitted_sack() {
    let mut lab = Lab::connected(StackConfig::default());
    for o in [8, 16] {
        let f = lab.data(o, b"k,v\n");
        lab.push(f);
    }
    lab.poll();
    let sent = lab.sent_sack();
    assert_eq!(sent.len(), 2);
    for (s, blocks, opts) in &sent {
        assert_eq!(ack_of(s), 0);
        assert!(blocks.is_empty() && opts.is_empty(), "{opts:?}");
    }
}

#[test]
fn one_ack_per_burst_and_records_parsed() {
    let mut lab = Lab::connected(StackConfig::default());
    let text = b"a,b\nc,d\ne,f\n";
    for (i, chunk) in text.chunks(4).enumerate() {
        let f = lab.data(4 * i as u32, chunk);
        lab.push(f);
    }
    assert_eq!(lab.poll(), 3);
    let sent = lab.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(ack_of(&sent[0]), 12);
    // 256 KiB with scale 3.
    assert_eq!(
        u32::from(sent[0].seg.window) << 3,
        (256 * 1024 - 12) >> 3 << 3
    );
    assert_eq!(lab.events(), [Event::Records(lab.id)]);
    assert_eq!(lab.rows(), [["a", "b"], ["c", "d"], ["e", "f"]]);
    // The frees open the window by 12 bytes: less than an MSS, no update
    // (silly window avoidance).
    lab.poll();
    assert!(lab.sent().is_empty(), "nothing more to say");
}

#[test]
fn out_of_order_gets_duplicate_acks_then_one_ack() {
    let mut lab = Lab::connected(StackConfig::default());
    let (a, b, c) = (
        lab.data(0, b"x,1\n"),
        lab.data(4, b"y,2\n"),
        lab.data(8, b"z,3\n"),
    );
    lab.push(c);
    lab.push(b);
    lab.poll();
    let sent = lab.sent();
    assert_eq!(sent.len(), 2, "one duplicate ACK per segment out of order");
    assert!(sent.iter().all(|s| ack_of(s) == 0));
    assert_eq!(lab.stack.stats().out_of_order, 2);
    assert!(lab.events().is_empty());
    lab.push(a.clone());
    lab.push(a);
    lab.poll();
    let sent = lab.sent();
    // The duplicate of `a` is answered at once; that ACK already covers
    // the burst, so no second one.
    assert_eq!(sent.iter().map(ack_of).collect::<Vec<_>>(), [12]);
    assert_eq!(lab.rows(), [["x", "1"], ["y", "2"], ["z", "3"]]);
}

#[test]
fn rst_only_at_the_exact_sequence_number() {
    let mut lab = Lab::connected(StackConfig::default());
    let f = lab.data(0, b"q,r\n");
    lab.push(f);
    lab.poll();
    lab.sent();
    lab.events();
    // In the window but not rcv_nxt: a challenge ACK.
    let rst = lab
        .frame(IRS.wrapping_add(1 + 100), TcpFlags::RST, b"")
        .build(b"")
        .unwrap();
    lab.push(rst);
    // Outside the window: dropped silently.
    let far = lab
        .frame(IRS.wrapping_add(1 + 4 + 10_000_000), TcpFlags::RST, b"")
        .build(b"")
        .unwrap();
    lab.push(far);
    // A SYN on the established connection: a challenge ACK.
    let syn = lab
        .frame(IRS.wrapping_add(5), TcpFlags::SYN, b"")
        .build(b"")
        .unwrap();
    lab.push(syn);
    lab.poll();
    let sent = lab.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|s| s.seg.flags == TcpFlags::ACK && ack_of(s) == 4));
    assert_eq!(lab.stack.stats().challenge_acks, 2);
    assert_eq!(lab.stack.state(lab.id), Some(State::Established));
    let rst = lab
        .frame(IRS.wrapping_add(5), TcpFlags::RST, b"")
        .build(b"")
        .unwrap();
    lab.push(rst);
    lab.poll();
    assert_eq!(lab.events(), [Event::Reset(lab.id, ResetReason::Reset)]);
    assert_eq!(lab.stack.state(lab.id), Some(State::Closed));
    assert_eq!(lab.rows(), [["q", "r"]], "records before the reset stay");
    lab.stack.release(lab.id).unwrap();
    assert!(lab.pool.is_full());
}

#[test]
fn fin_finishes_the_stream_and_close_completes() {
    let mut lab = Lab::connected(StackConfig::default());
    // The last row has no newline: the FIN ends it.
    let f = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK | TcpFlags::FIN, b"")
        .build(b"k,v\nlast,row")
        .unwrap();
    lab.push(f);
    lab.poll();
    let sent = lab.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(ack_of(&sent[0]), 13, "data and FIN");
    assert_eq!(sent[0].seg.window, 0, "nothing more after FIN");
    assert_eq!(
        lab.stack.stats().zero_windows_out,
        0,
        "a window closed by the FIN is not the application's"
    );
    assert_eq!(
        lab.events(),
        [Event::Finished(lab.id), Event::Records(lab.id)]
    );
    assert_eq!(lab.rows(), [["k", "v"], ["last", "row"]]);
    assert_eq!(lab.stack.state(lab.id), Some(State::CloseWait));
    // A retransmitted FIN is acknowledged again.
    let again = lab
        .frame(IRS.wrapping_add(1 + 12), TcpFlags::ACK | TcpFlags::FIN, b"")
        .build(b"")
        .unwrap();
    lab.push(again);
    lab.poll();
    let sent = lab.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(ack_of(&sent[0]), 13);
    lab.stack.close(lab.id).unwrap();
    lab.poll();
    let sent = lab.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].seg.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(sent[0].seg.seq.0, lab.iss.wrapping_add(1));
    assert_eq!(lab.stack.state(lab.id), Some(State::LastAck));
    let ack = lab
        .frame(IRS.wrapping_add(14), TcpFlags::ACK, b"")
        .ack(lab.iss.wrapping_add(2))
        .build(b"")
        .unwrap();
    lab.push(ack);
    lab.poll();
    assert_eq!(lab.events(), [Event::Closed(lab.id)]);
    assert_eq!(lab.stack.state(lab.id), Some(State::Closed));
    lab.stack.release(lab.id).unwrap();
    assert_eq!(lab.stack.state(lab.id), None);
    assert!(lab.pool.is_full());
}

#[test]
fn active_close_then_peer_fin_is_time_wait() {
    let mut lab = Lab::connected(StackConfig::default());
    lab.stack.close(lab.id).unwrap();
    lab.poll();
    let fin = lab.sent();
    assert_eq!(fin[0].seg.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(lab.stack.state(lab.id), Some(State::FinWait1));
    // The peer acknowledges our FIN and sends its own in one segment.
    let f = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK | TcpFlags::FIN, b"")
        .ack(lab.iss.wrapping_add(2))
        .build(b"")
        .unwrap();
    lab.push(f);
    lab.poll();
    assert_eq!(
        lab.events(),
        [Event::Finished(lab.id), Event::Closed(lab.id)]
    );
    assert_eq!(lab.stack.state(lab.id), Some(State::TimeWait));
    assert_eq!(ack_of(&lab.sent()[0]), 1);
    lab.stack.release(lab.id).unwrap();
    assert!(lab.pool.is_full(), "the stream goes at release");
    // TIME-WAIT ends later; the slot goes with it.
    lab.t += Duration::from_secs(3);
    lab.poll();
    assert!(lab.stack.conns.iter().all(Option::is_none));
}

#[test]
fn a_fin_after_time_wait_gets_a_rst() {
    let cfg = StackConfig::default();
    let mut lab = Lab::connected(cfg);
    lab.stack.close(lab.id).unwrap();
    lab.poll();
    assert_eq!(lab.sent()[0].seg.flags, TcpFlags::FIN | TcpFlags::ACK);
    let fin = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK | TcpFlags::FIN, b"")
        .ack(lab.iss.wrapping_add(2))
        .build(b"")
        .unwrap();
    lab.push(fin.clone());
    lab.poll();
    assert_eq!(lab.stack.state(lab.id), Some(State::TimeWait));
    assert_eq!(ack_of(&lab.sent()[0]), 1);
    // In TIME-WAIT a retransmitted FIN is acknowledged again ...
    lab.push(fin.clone());
    lab.poll();
    let again = lab.sent();
    assert_eq!((again.len(), again[0].seg.flags), (1, TcpFlags::ACK));
    // ... after it, the connection is closed (not yet released by the
    // application) and the peer learns that at once.
    lab.t += cfg.time_wait + Duration::from_millis(1);
    lab.poll();
    assert_eq!(lab.stack.state(lab.id), Some(State::Closed));
    let before = lab.stack.stats().no_connection;
    lab.push(fin);
    lab.poll();
    let rst = lab.sent();
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].seg.flags, TcpFlags::RST);
    assert_eq!(rst[0].seg.seq.0, lab.iss.wrapping_add(2));
    assert_eq!(lab.stack.stats().no_connection, before + 1);
    lab.stack.release(lab.id).unwrap();
    assert!(lab.stack.conns.iter().all(Option::is_none));
    assert!(lab.pool.is_full());
}

#[test]
fn send_segments_by_mss_within_the_window_and_retransmits() {
    let mut lab = Lab::connected(StackConfig::default());
    // The SYN-ACK's window is not scaled; this one is: 1000 << 2.
    let wnd = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
        .build(b"")
        .unwrap();
    lab.push(wnd);
    lab.poll();
    let req: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(lab.stack.send(lab.id, &req), Ok(3000));
    lab.poll();
    let sent = lab.sent();
    // MSS 1000 (the peer's), window 1000 << 2 = 4000.
    assert_eq!(
        sent.iter().map(|s| s.payload.len()).collect::<Vec<_>>(),
        [1000, 1000, 1000]
    );
    assert_eq!(sent[2].seg.flags, TcpFlags::ACK | TcpFlags::PSH);
    let all: Vec<u8> = sent.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(all, req);
    // Nothing acknowledged: after the RTO the first segment goes again,
    // alone (the congestion window is one segment now).
    lab.t += Duration::from_millis(1100);
    lab.poll();
    let again = lab.sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seg.seq.0, lab.iss.wrapping_add(1));
    assert_eq!(again[0].payload, req[..1000]);
    assert_eq!(lab.stack.stats().timeouts, 1);
    assert_eq!(lab.stack.stats().retransmitted_bytes, 1000);
    // The RTO was 200 ms (the minimum: the handshake's RTT sample was 0);
    // the backoff doubled it: nothing 300 ms later.
    lab.t += Duration::from_millis(300);
    lab.poll();
    assert!(lab.sent().is_empty());
    // An ACK of the first 2000 bytes, then of the rest.
    let ack = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
        .ack(lab.iss.wrapping_add(2001))
        .window(1000)
        .build(b"")
        .unwrap();
    lab.push(ack);
    lab.poll();
    assert_eq!(lab.stack.unacked(lab.id), Some(1000));
    // Slow start from one segment: the last 1000 bytes go again.
    let rest = lab.sent();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].seg.seq.0, lab.iss.wrapping_add(2001));
    assert_eq!(rest[0].payload, req[2000..]);
    let ack = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
        .ack(lab.iss.wrapping_add(3001))
        .window(1000)
        .build(b"")
        .unwrap();
    lab.push(ack);
    lab.poll();
    assert_eq!(lab.stack.unacked(lab.id), Some(0));
    lab.t += Duration::from_secs(100);
    lab.poll();
    assert!(lab.sent().is_empty(), "no timer once all is acknowledged");
}

#[test]
fn zero_window_gets_a_probe_and_timeouts_reset() {
    let cfg = StackConfig {
        max_retries: 2,
        ..StackConfig::default()
    };
    let mut lab = Lab::connected(cfg);
    let zero = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
        .window(0)
        .build(b"")
        .unwrap();
    lab.push(zero);
    lab.poll();
    lab.stack.send(lab.id, b"hello").unwrap();
    lab.poll();
    assert!(lab.sent().is_empty(), "the window is closed");
    lab.t += Duration::from_secs(1);
    lab.poll();
    let probe = lab.sent();
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].payload, b"h");
    // The peer answers the probe, still with a zero window: no give-up.
    let still = lab
        .frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
        .window(0)
        .build(b"")
        .unwrap();
    for _ in 0..4 {
        lab.push(still.clone());
        lab.t += Duration::from_secs(100);
        lab.poll();
        assert_eq!(lab.sent().last().unwrap().payload, b"h");
    }
    assert!(lab.events().is_empty());
    // A silent peer: reset after max_retries more.
    for _ in 0..3 {
        lab.t += Duration::from_secs(100);
        lab.poll();
    }
    let ev = lab.events();
    assert_eq!(ev, [Event::Reset(lab.id, ResetReason::TimedOut)]);
    let last = lab.sent();
    assert_eq!(
        last.last().unwrap().seg.flags,
        TcpFlags::RST | TcpFlags::ACK
    );
}

#[test]
fn a_small_window_throttles_and_reopens() {
    let mut cfg = StackConfig::default();
    cfg.aa.stream.recv_buffer = 4096;
    let mut lab = Lab::connected(cfg);
    let row = b"0123456789,abcdefghij,0123456789,abcdefghij,0123456789,abcdefghij\n";
    let seg = row.repeat(10);
    for i in 0..10 {
        let f = lab.data(i * seg.len() as u32, &seg);
        lab.push(f);
    }
    lab.poll();
    let sent = lab.sent();
    let last = sent.last().unwrap();
    // Six segments, the seventh trimmed at the window's edge, the other
    // three outside it, each answered by an ACK at once (and those cover
    // the burst).
    assert_eq!(ack_of(last), 4096);
    assert_eq!(last.seg.window, 0, "window closed");
    assert_eq!(sent.len(), 3, "{sent:?}");
    let st = lab.stack.stream(lab.id).unwrap().stream().stats();
    assert_eq!((st.in_order, st.trimmed_window_bytes), (7, 524));
    let rows = lab.rows().len();
    assert_eq!(rows, 4096 / row.len());
    lab.poll();
    let update = lab.sent();
    assert_eq!(update.len(), 1, "window update after the frees");
    // All but the fragment holding the unfinished 63rd row (136 bytes).
    assert_eq!(update[0].seg.window, 4096 - 136);
    assert!(lab.stack.stats().unacceptable > 0 || lab.stack.stats().duplicates > 0);
}

#[test]
fn refused_and_no_connection() {
    let pool = PacketPool::new(16, 2048);
    let dev = MemoryIo::new(pool.clone(), LinkType::Ethernet);
    let mut stack: Stack<MemoryIo, CsvParser> =
        Stack::new(dev, pool.clone(), US, OUR_IP, StackConfig::default());
    // A segment for no connection is answered by RST.
    let mut f = TcpFrame::new((IpAddr::V4(PEER_IP), 5555), (IpAddr::V4(OUR_IP), 80))
        .seq(77)
        .flags(TcpFlags::SYN);
    f.src_mac = PEER.0;
    f.dst_mac = US.0;
    stack
        .device_mut()
        .push(Timestamp::now(), &f.build(b"").unwrap());
    stack.poll().unwrap();
    let sent = stack.device_mut().take_sent();
    let rst = wire::parse(sent[0].data(), LinkType::Ethernet, true).unwrap();
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst.ack.0, 78);
    drop(sent);
    // Bad peers.
    for bad in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, OUR_IP] {
        assert_eq!(
            stack
                .connect(SocketAddrV4::new(bad, 1), CsvParser::default())
                .err(),
            Some(TcpError::BadPeer)
        );
    }
    // ARP never answered: unreachable after the tries.
    let cfg = StackConfig::default();
    let id = stack
        .connect(SocketAddrV4::new(PEER_IP, 1), CsvParser::default())
        .unwrap();
    let mut t = Instant::now();
    for _ in 0..=cfg.arp_tries {
        stack.poll_at(t).unwrap();
        t += cfg.arp_retry;
    }
    assert_eq!(
        stack.next_event(),
        Some(Event::Reset(id, ResetReason::Unreachable))
    );
    stack.release(id).unwrap();
    drop(stack);
    assert!(pool.is_full());
}

#[test]
fn syn_sent_refused() {
    let pool = PacketPool::new(16, 2048);
    let dev = MemoryIo::new(pool.clone(), LinkType::Ethernet);
    let mut stack: Stack<MemoryIo, CsvParser> =
        Stack::new(dev, pool.clone(), US, OUR_IP, StackConfig::default());
    stack
        .resp
        .cache_mut()
        .insert(PEER_IP, PEER, Timestamp::now());
    let id = stack
        .connect(SocketAddrV4::new(PEER_IP, PORT), CsvParser::default())
        .unwrap();
    stack.poll().unwrap();
    let syn = stack.device_mut().take_sent();
    let s = wire::parse(syn[0].data(), LinkType::Ethernet, true).unwrap();
    drop(syn);
    let mk = |flags, ack| {
        let mut f = TcpFrame::new((IpAddr::V4(PEER_IP), PORT), (IpAddr::V4(OUR_IP), s.src.1))
            .flags(flags)
            .ack(ack);
        f.src_mac = PEER.0;
        f.dst_mac = US.0;
        f.build(b"").unwrap()
    };
    // An ACK for something we never sent: RST, no state change.
    stack.device_mut().push(
        Timestamp::now(),
        &mk(TcpFlags::SYN | TcpFlags::ACK, s.seq.0.wrapping_add(9)),
    );
    stack.poll().unwrap();
    assert_eq!(stack.device_mut().take_sent().len(), 1);
    assert_eq!(stack.state(id), Some(State::SynSent));
    stack.device_mut().push(
        Timestamp::now(),
        &mk(TcpFlags::RST | TcpFlags::ACK, s.seq.0.wrapping_add(1)),
    );
    stack.poll().unwrap();
    assert_eq!(
        stack.next_event(),
        Some(Event::Reset(id, ResetReason::Refused))
    );
    stack.release(id).unwrap();
    drop(stack);
    assert!(pool.is_full());
}

proptest! {
    /// Mutated segments (every header byte fair game) never panic, and the
    /// pool is full once the connection is released.
    #[test]
    fn mutated_segments_never_panic(
        muts in prop::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in 0usize..80,
        seqoff in any::<u32>(),
        flags in any::<u8>(),
    ) {
        let mut lab = Lab::connected(StackConfig::default());
        let mut f = lab
            .frame(IRS.wrapping_add(1).wrapping_add(seqoff % 3 * (seqoff >> 2)), TcpFlags(flags), b"")
            .build(b"a,b\nc,d\n")
            .unwrap();
        for (i, x) in muts {
            let i = i % f.len();
            f[i] ^= x;
        }
        let keep = f.len() - cut.min(f.len());
        lab.push(f[..keep].to_vec());
        lab.push(f);
        let good = lab.data(0, b"e,f\n");
        lab.push(good);
        lab.poll();
        lab.poll();
        lab.stack.release(lab.id).unwrap();
        drop(lab.sent());
        prop_assert!(lab.pool.is_full());
    }
}

#[test]
fn passive_open_answers_syn_and_accepts() {
    let pool = PacketPool::new(32, 2048);
    let dev = MemoryIo::new(pool.clone(), LinkType::Ethernet);
    let mut stack: Stack<MemoryIo, CsvParser> =
        Stack::new(dev, pool.clone(), US, OUR_IP, StackConfig::default());
    stack.listen(80, CsvParser::default).unwrap();
    assert_eq!(stack.listen(80, CsvParser::default), Err(TcpError::BadPort));
    let peer = |seq: u32, ack: u32, flags: TcpFlags, opts: TcpOpts, data: &[u8]| {
        let mut f = TcpFrame::new((IpAddr::V4(PEER_IP), 40000), (IpAddr::V4(OUR_IP), 80))
            .seq(seq)
            .ack(ack)
            .flags(flags)
            .window(500)
            .opts(opts);
        f.src_mac = PEER.0;
        f.dst_mac = US.0;
        f.build(data).unwrap()
    };
    let sent = |stack: &mut Stack<MemoryIo, CsvParser>| -> Vec<Segment> {
        let v = stack.device_mut().take_sent();
        v.iter()
            .map(|p| wire::parse(p.data(), LinkType::Ethernet, true).unwrap())
            .collect()
    };
    // A SYN without window scaling: the SYN-ACK offers none either.
    let syn = peer(
        IRS,
        0,
        TcpFlags::SYN,
        TcpOpts {
            mss: Some(1200),
            ..TcpOpts::default()
        },
        b"",
    );
    stack.device_mut().push(Timestamp::now(), &syn);
    stack.poll().unwrap();
    let s = sent(&mut stack);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(s[0].ack.0, IRS.wrapping_add(1));
    assert_eq!((s[0].opts.mss, s[0].opts.wscale), (Some(1460), None));
    assert!(!s[0].opts.sack_permitted, "SACK not offered: not answered");
    assert!(stack.next_event().is_none());
    let iss = s[0].seq.0;
    // The SYN again (our SYN-ACK lost): the SYN-ACK again.
    stack.device_mut().push(Timestamp::now(), &syn);
    stack.poll().unwrap();
    assert_eq!(sent(&mut stack)[0].seq.0, iss);
    // The ACK with data: accepted, parsed, acknowledged.
    let ack = peer(
        IRS.wrapping_add(1),
        iss.wrapping_add(1),
        TcpFlags::ACK,
        TcpOpts::default(),
        b"a,b\n",
    );
    stack.device_mut().push(Timestamp::now(), &ack);
    stack.poll().unwrap();
    let id = match stack.next_event() {
        Some(Event::Accepted(id)) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(stack.next_event(), Some(Event::Records(id)));
    let s = sent(&mut stack);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].ack.0, IRS.wrapping_add(5));
    // No window scaling: the window field is the plain byte count, capped.
    assert_eq!(s[0].window, 65535);
    assert_eq!(stack.state(id), Some(State::Established));
    assert_eq!(
        stack.addrs(id),
        Some((
            SocketAddrV4::new(OUR_IP, 80),
            SocketAddrV4::new(PEER_IP, 40000)
        ))
    );
    // A SYN to a port nobody listens on: RST.
    let mut other =
        TcpFrame::new((IpAddr::V4(PEER_IP), 40001), (IpAddr::V4(OUR_IP), 81)).flags(TcpFlags::SYN);
    other.src_mac = PEER.0;
    other.dst_mac = US.0;
    stack
        .device_mut()
        .push(Timestamp::now(), &other.build(b"").unwrap());
    stack.poll().unwrap();
    assert_eq!(sent(&mut stack)[0].flags, TcpFlags::RST | TcpFlags::ACK);
    stack.release(id).unwrap();
    drop(sent(&mut stack));
    drop(stack);
    assert!(pool.is_full());
}

#[test]
fn backlog_and_unanswered_syn_ack() {
    let pool = PacketPool::new(32, 2048);
    let dev = MemoryIo::new(pool.clone(), LinkType::Ethernet);
    let cfg = StackConfig {
        backlog: 2,
        max_retries: 1,
        ..StackConfig::default()
    };
    let mut stack: Stack<MemoryIo, CsvParser> = Stack::new(dev, pool.clone(), US, OUR_IP, cfg);
    stack.listen(80, CsvParser::default).unwrap();
    for port in 1..=3u16 {
        let mut f = TcpFrame::new((IpAddr::V4(PEER_IP), port), (IpAddr::V4(OUR_IP), 80))
            .flags(TcpFlags::SYN)
            .opts(TcpOpts {
                wscale: Some(7),
                sack_permitted: true,
                ..TcpOpts::default()
            });
        f.src_mac = PEER.0;
        f.dst_mac = US.0;
        stack
            .device_mut()
            .push(Timestamp::now(), &f.build(b"").unwrap());
    }
    let mut t = Instant::now();
    stack.poll_at(t).unwrap();
    assert_eq!(stack.stats().syn_dropped, 1);
    let synacks = stack.device_mut().take_sent();
    assert_eq!(synacks.len(), 2);
    let s = wire::parse(synacks[0].data(), LinkType::Ethernet, true).unwrap();
    assert_eq!(s.opts.wscale, Some(3), "answers the offer");
    assert!(s.opts.sack_permitted, "answers the SACK offer");
    drop(synacks);
    // Nobody completes the handshake: one retransmission, then gone.
    for _ in 0..3 {
        t += Duration::from_secs(10);
        stack.poll_at(t).unwrap();
    }
    assert!(stack.next_event().is_none(), "never announced");
    assert!(stack.conns.iter().all(Option::is_none));
    drop(stack);
    assert!(pool.is_full());
}

/// Congestion control: a connected lab whose peer opened its window wide
/// (65535 << 2), `n` bytes queued and the initial window's segments taken.
fn sending(n: usize) -> (Lab, Vec<u8>, Vec<Sent>) {
    sending_sack(n, false)
}

/// As [`sending`]; the peer permitted SACK if `sack`.
fn sending_sack(n: usize, sack: bool) -> (Lab, Vec<u8>, Vec<Sent>) {
    let cfg = StackConfig {
        send_buffer: 1 << 20,
        burst: 64,
        ..StackConfig::default()
    };
    let mut lab = Lab::connected_sack(cfg, sack);
    let open = lab.ack_to(0);
    lab.push(open);
    lab.poll();
    let req: Vec<u8> = (0..n as u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(lab.stack.send(lab.id, &req), Ok(n));
    lab.poll();
    let first = lab.sent();
    (lab, req, first)
}

impl Lab {
    /// A pure ACK of the first `off` bytes we sent, window 65535 << 2.
    fn ack_to(&self, off: u32) -> Vec<u8> {
        self.frame(IRS.wrapping_add(1), TcpFlags::ACK, b"")
            .ack(self.iss.wrapping_add(1 + off))
            .window(65535)
            .build(b"")
            .unwrap()
    }

    /// [`ack_to`](Self::ack_to) with SACK blocks (offsets of our data).
    fn ack_to_sack(&self, off: u32, blocks: &[(u32, u32)]) -> Vec<u8> {
        self.ack_to_sack_window(off, blocks, 65535)
    }

    /// [`ack_to_sack`](Self::ack_to_sack) advertising `window` (<< 2).
    fn ack_to_sack_window(&self, off: u32, blocks: &[(u32, u32)], window: u16) -> Vec<u8> {
        let base = self.iss.wrapping_add(1);
        let mut sack = super::out::SackBlocks::NONE;
        for &(l, r) in blocks {
            assert!(sack.push((base.wrapping_add(l), base.wrapping_add(r))));
        }
        let seg = super::out::OutSeg {
            src_mac: PEER,
            dst_mac: US,
            src: (PEER_IP, PORT),
            dst: (OUR_IP, self.local_port),
            ip_id: 1,
            seq: IRS.wrapping_add(1),
            ack: base.wrapping_add(off),
            flags: TcpFlags::ACK,
            window,
            syn_opts: None,
            sack,
        };
        super::out::write(&self.pool, &seg, super::out::one(b""), false)
            .unwrap()
            .data()
            .to_vec()
    }

    /// Stream offset of a segment we sent.
    fn off(&self, s: &Sent) -> u32 {
        s.seg.seq.0.wrapping_sub(self.iss.wrapping_add(1))
    }

    fn cwnd(&self) -> u32 {
        self.stack.send_info(self.id).unwrap().cwnd
    }

    /// Acknowledges each of `sent` on its own (one round trip); returns
    /// what went out in answer.
    fn ack_each(&mut self, sent: &[Sent]) -> Vec<Sent> {
        for s in sent {
            let f = self.ack_to(self.off(s) + s.payload.len() as u32);
            self.push(f);
        }
        self.poll();
        self.sent()
    }
}

#[test]
fn three_duplicate_acks_fast_retransmit_the_first_segment_once() {
    let (mut lab, req, first) = sending(20_000);
    // MSS 1000: an initial window of four segments (RFC 5681).
    assert_eq!(first.len(), 4);
    assert_eq!(lab.cwnd(), 4000);
    // The first segment arrives, the second is lost: slow start sends two.
    let a = lab.ack_to(1000);
    lab.push(a);
    lab.poll();
    let more = lab.sent();
    assert_eq!(
        more.iter().map(|s| lab.off(s)).collect::<Vec<_>>(),
        [4000, 5000]
    );
    assert_eq!(lab.cwnd(), 5000);
    // Two duplicate ACKs: nothing yet.
    for i in 1..=2 {
        let dup = lab.ack_to(1000);
        lab.push(dup);
        lab.poll();
        assert!(lab.sent().is_empty(), "after {i} duplicates");
        assert_eq!(lab.stack.send_info(lab.id).unwrap().dup_acks, i);
    }
    assert_eq!(lab.stack.stats().fast_retransmits, 0);
    // The third: exactly the missing segment, once.
    let dup = lab.ack_to(1000);
    lab.push(dup);
    lab.poll();
    let fr = lab.sent();
    assert_eq!(fr.len(), 1, "{fr:?}");
    assert_eq!(lab.off(&fr[0]), 1000);
    assert_eq!(fr[0].payload, req[1000..2000]);
    let st = lab.stack.stats();
    assert_eq!((st.fast_retransmits, st.retransmitted_bytes), (1, 1000));
    assert_eq!(st.timeouts, 0);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert!(info.in_recovery);
    // ssthresh = max(flight / 2, 2 MSS), cwnd = ssthresh + 3 MSS.
    assert_eq!((info.ssthresh, info.cwnd), (2500, 5500));
    // Further duplicates inflate the window (8500 with 5000 in flight):
    // new data, whole segments, never the same segment again.
    for _ in 0..3 {
        let dup = lab.ack_to(1000);
        lab.push(dup);
    }
    lab.poll();
    let out = lab.sent();
    assert_eq!(lab.cwnd(), 8500);
    assert_eq!(
        out.iter().map(|s| lab.off(s)).collect::<Vec<_>>(),
        [6000, 7000, 8000]
    );
    assert_eq!(out[0].payload, req[6000..7000]);
    assert_eq!(lab.stack.stats().fast_retransmits, 1);
    assert_eq!(lab.stack.stats().retransmitted_bytes, 1000);
    assert_eq!(lab.stack.stats().dup_acks_in, 6);
}

#[test]
fn a_partial_ack_in_recovery_retransmits_the_next_hole() {
    let (mut lab, req, first) = sending(20_000);
    assert_eq!(first.len(), 4);
    // Segments 0 and 2 (of 0..4) lost; the peer has 1 and 3.
    for _ in 0..3 {
        let dup = lab.ack_to(0);
        lab.push(dup);
    }
    lab.poll();
    let fr = lab.sent();
    // The first segment again, then (cwnd 5000, 4000 in flight) a new one.
    assert_eq!(fr.len(), 2);
    assert_eq!((lab.off(&fr[0]), &fr[0].payload[..]), (0, &req[..1000]));
    assert_eq!(lab.off(&fr[1]), 4000);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert!(info.in_recovery);
    assert_eq!((info.ssthresh, info.cwnd), (2000, 5000));
    // The retransmission fills the first hole: a partial ACK up to the
    // second one, which goes at once.
    let partial = lab.ack_to(2000);
    lab.push(partial);
    lab.poll();
    let out = lab.sent();
    assert_eq!(lab.off(&out[0]), 2000, "{out:?}");
    assert_eq!(out[0].payload, req[2000..3000]);
    assert!(
        out[1..].iter().all(|s| lab.off(s) >= 4000),
        "the rest is new data"
    );
    let st = lab.stack.stats();
    assert_eq!((st.fast_retransmits, st.partial_ack_retransmits), (1, 1));
    assert_eq!(st.retransmitted_bytes, 2000);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert!(info.in_recovery, "still short of `recover`");
    // Deflated by the 2000 bytes acknowledged, one SMSS added back.
    assert_eq!(info.cwnd, 5000 - 2000 + 1000);
    // The full ACK (everything sent before recovery began and more) ends
    // recovery: cwnd = min(ssthresh, flight + SMSS).
    let top = out.iter().map(|s| lab.off(s) + 1000).max().unwrap();
    let full = lab.ack_to(4000);
    lab.push(full);
    lab.poll();
    let info = lab.stack.send_info(lab.id).unwrap();
    assert!(!info.in_recovery);
    assert_eq!(info.cwnd, 2000.min(top - 4000 + 1000));
    assert_eq!(lab.stack.stats().timeouts, 0);
}

#[test]
fn slow_start_doubles_per_round_trip_then_avoidance_adds_one_mss() {
    let (mut lab, _req, mut sent) = sending(600_000);
    let mut cwnds = vec![lab.cwnd()];
    for _ in 0..3 {
        assert_eq!(sent.len() as u32 * 1000, lab.cwnd(), "a full window");
        sent = lab.ack_each(&sent);
        cwnds.push(lab.cwnd());
    }
    assert_eq!(cwnds, [4000, 8000, 16000, 32000]);
    assert_eq!(sent.len(), 32);
    // A timeout: ssthresh = 32000 / 2, one segment again.
    lab.t += Duration::from_millis(250);
    lab.poll();
    let rtx = lab.sent();
    assert_eq!(rtx.len(), 1);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert_eq!((info.cwnd, info.ssthresh), (1000, 16000));
    // Everything had arrived: one ACK of it all.
    let top = sent.iter().map(|s| lab.off(s) + 1000).max().unwrap();
    let all = lab.ack_to(top);
    lab.push(all);
    lab.poll();
    sent = lab.sent();
    let mut cwnds = vec![lab.cwnd()];
    for _ in 0..5 {
        assert_eq!(sent.len() as u32 * 1000, lab.cwnd(), "a full window");
        sent = lab.ack_each(&sent);
        cwnds.push(lab.cwnd());
    }
    // Slow start up to ssthresh, then one MSS per round trip.
    assert_eq!(cwnds, [2000, 4000, 8000, 16000, 17000, 18000]);
    assert_eq!(lab.stack.stats().fast_retransmits, 0);
}

#[test]
fn a_timeout_collapses_cwnd_to_one_segment() {
    let (mut lab, req, first) = sending(100_000);
    let sent = lab.ack_each(&first);
    assert_eq!(sent.len(), 8);
    assert_eq!(lab.cwnd(), 8000);
    let base = lab.off(&sent[0]);
    // Nothing more arrives: RTO, one segment from SND.UNA, not eight.
    lab.t += Duration::from_millis(250);
    lab.poll();
    let rtx = lab.sent();
    assert_eq!(rtx.len(), 1, "{rtx:?}");
    assert_eq!(lab.off(&rtx[0]), base);
    assert_eq!(rtx[0].payload, req[base as usize..base as usize + 1000]);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert_eq!(
        (info.cwnd, info.ssthresh, info.in_flight),
        (1000, 4000, 1000)
    );
    assert_eq!(lab.stack.stats().timeouts, 1);
    // Backoff: the second timeout keeps ssthresh, sends one again.
    lab.t += Duration::from_millis(500);
    lab.poll();
    let rtx = lab.sent();
    assert_eq!(rtx.len(), 1);
    assert_eq!(lab.off(&rtx[0]), base);
    let info = lab.stack.send_info(lab.id).unwrap();
    assert_eq!((info.cwnd, info.ssthresh), (1000, 4000));
    // Duplicate ACKs of data sent before the timeout start no fast
    // retransmit (RFC 6582's `recover`).
    for _ in 0..3 {
        let dup = lab.ack_to(base);
        lab.push(dup);
    }
    lab.poll();
    assert!(lab.sent().is_empty());
    assert_eq!(lab.stack.stats().fast_retransmits, 0);
    // The ACK of it: slow start again, two segments (sent before, so
    // retransmitted).
    let a = lab.ack_to(base + 1000);
    lab.push(a);
    lab.poll();
    let out = lab.sent();
    assert_eq!(
        out.iter().map(|s| lab.off(s) - base).collect::<Vec<_>>(),
        [1000, 2000]
    );
    assert_eq!(lab.cwnd(), 2000);
    assert_eq!(lab.stack.stats().retransmitted_bytes, 4000);
}

#[test]
fn with_sack_fast_recovery_retransmits_only_the_holes() {
    let (mut lab, req, first) = sending_sack(20_000, true);
    assert_eq!(first.len(), 4);
    // The peer holds 500..2000 and 3000..4000 (a resegmenting middlebox
    // could leave holes smaller than a segment): three duplicate ACKs.
    for _ in 0..3 {
        let dup = lab.ack_to_sack(0, &[(3000, 4000), (500, 2000)]);
        lab.push(dup);
    }
    lab.poll();
    let fr = lab.sent();
    // Only the hole 0..500 goes again, then new data.
    assert_eq!((lab.off(&fr[0]), &fr[0].payload[..]), (0, &req[..500]));
    assert!(fr[1..].iter().all(|s| lab.off(s) >= 4000), "{fr:?}");
    assert_eq!(lab.stack.stats().fast_retransmits, 1);
    assert_eq!(lab.stack.stats().retransmitted_bytes, 500);
    // A partial ACK up to the second hole (the blocks remembered, though
    // this ACK repeats only one): exactly that hole.
    let partial = lab.ack_to_sack(2000, &[(3000, 4000)]);
    lab.push(partial);
    lab.poll();
    let out = lab.sent();
    assert_eq!(
        (lab.off(&out[0]), &out[0].payload[..]),
        (2000, &req[2000..3000])
    );
    assert!(out[1..].iter().all(|s| lab.off(s) >= 4000), "{out:?}");
    assert_eq!(lab.stack.stats().partial_ack_retransmits, 1);
    assert_eq!(lab.stack.stats().retransmitted_bytes, 1500);
    // A hole of a whole segment: the whole segment, as without SACK.
    let (mut lab, req, _) = sending_sack(20_000, true);
    for _ in 0..3 {
        let dup = lab.ack_to_sack(0, &[(1000, 4000)]);
        lab.push(dup);
    }
    lab.poll();
    assert_eq!(lab.sent()[0].payload, req[..1000]);
    // Blocks from an ACK without SACK permitted are ignored: see
    // `three_duplicate_acks_fast_retransmit_the_first_segment_once`.
    let (mut lab, req, _) = sending_sack(20_000, false);
    for _ in 0..3 {
        let dup = lab.ack_to_sack(0, &[(500, 4000)]);
        lab.push(dup);
    }
    lab.poll();
    assert_eq!(lab.sent()[0].payload, req[..1000], "SACK not negotiated");
}

#[test]
fn with_sack_an_ack_that_sacks_more_is_a_duplicate_whatever_its_window() {
    // A receiver such as Linux's opens its window while it holds data after
    // a hole: three ACKs of nothing new, each with another window, each
    // SACKing more (less than two segments in all): duplicates (RFC 6675),
    // and the third retransmits the hole.
    let (mut lab, req, first) = sending_sack(20_000, true);
    assert_eq!(first.len(), 4);
    for (i, r) in [1300u32, 1600, 1900].into_iter().enumerate() {
        let dup = lab.ack_to_sack_window(0, &[(1000, r)], 60000 + i as u16);
        lab.push(dup);
        lab.poll();
        assert_eq!(lab.stack.stats().dup_acks_in, i as u64 + 1);
    }
    assert_eq!(lab.stack.stats().fast_retransmits, 1);
    assert_eq!(lab.sent()[0].payload, req[..1000]);
    drop(lab.stack);
    assert!(lab.pool.is_full());
    // The same ACKs SACKing nothing new: window updates, not duplicates.
    let (mut lab, _, _) = sending_sack(20_000, true);
    for i in 0..3u16 {
        let same = lab.ack_to_sack_window(0, &[(1000, 1300)], 60000 + i);
        lab.push(same);
    }
    lab.poll();
    assert_eq!(
        lab.stack.stats().dup_acks_in,
        1,
        "only the first SACKs anything"
    );
    assert_eq!(lab.stack.stats().fast_retransmits, 0);
    drop(lab.stack);
    assert!(lab.pool.is_full());
}

#[test]
fn with_sack_one_ack_holding_more_than_two_segments_starts_recovery() {
    // Large frames in flight may leave a loss fewer than three ACKs behind
    // it: one duplicate ACK SACKing more than two segments' bytes above the
    // hole marks it lost (RFC 6675's IsLost).
    let (mut lab, req, _) = sending_sack(20_000, true);
    let dup = lab.ack_to_sack(0, &[(1000, 3001)]);
    lab.push(dup);
    lab.poll();
    assert_eq!(lab.stack.stats().fast_retransmits, 1);
    assert_eq!(lab.sent()[0].payload, req[..1000]);
    drop(lab.stack);
    assert!(lab.pool.is_full());
    // Exactly two segments' bytes: not yet.
    let (mut lab, _, _) = sending_sack(20_000, true);
    let dup = lab.ack_to_sack(0, &[(1000, 3000)]);
    lab.push(dup);
    lab.poll();
    assert_eq!(lab.stack.stats().fast_retransmits, 0);
    assert!(lab.sent().is_empty());
    drop(lab.stack);
    assert!(lab.pool.is_full());
}

#[test]
fn a_parse_error_is_an_event_once_and_the_rows_before_it_stay() {
    let mut lab = Lab::connected(StackConfig::default());
    // Two good rows, then one with more fields than the parser's cap (1024
    // by default), cut over segments: the error comes in the third.
    let mut text = b"a,b\nc,d\n".to_vec();
    text.extend(b"x,".repeat(1100));
    text.extend(b"\nafter,error\n");
    let mut off = 0;
    let mut events = Vec::new();
    for chunk in text.chunks(900) {
        let f = lab.data(off as u32, chunk);
        lab.push(f);
        lab.poll();
        off += chunk.len();
        events.extend(lab.events());
    }
    assert_eq!(
        events,
        [Event::Records(lab.id), Event::ParseFailed(lab.id),],
        "one failure event, after the records before it"
    );
    let s = lab.stack.stream(lab.id).unwrap();
    assert_eq!(s.state(), AaState::Failed);
    let e = s.error().expect("the error is kept").to_string();
    assert!(e.contains("1024"), "says which cap: {e}");
    assert_eq!(lab.rows(), [["a", "b"], ["c", "d"]]);
    // Bytes after the failure are acknowledged (the peer is not stalled)
    // and dropped; the connection stays open until closed.
    let sent = lab.sent();
    assert_eq!(ack_of(sent.last().unwrap()), text.len() as u32);
    assert_eq!(lab.stack.state(lab.id), Some(State::Established));
    lab.stack.close(lab.id).unwrap();
    lab.poll();
    assert_eq!(lab.sent()[0].seg.flags, TcpFlags::FIN | TcpFlags::ACK);
    drop(lab.stack);
    assert!(lab.pool.is_full());
}

#[test]
fn send_buffer_ranges_across_the_ring_wrap() {
    // A send buffer whose ring has wrapped: its bytes in two pieces.
    let mut q: VecDeque<u8> = VecDeque::with_capacity(16);
    q.extend(0..12u8);
    q.drain(..10);
    q.extend(12..24u8);
    let (a, b) = q.as_slices();
    assert!(!a.is_empty() && !b.is_empty(), "the ring wraps");
    let all: Vec<u8> = q.iter().copied().collect();
    for off in 0..=all.len() {
        for n in 0..=all.len() - off {
            let [x, y] = range_of(&q, off, n);
            assert_eq!([x, y].concat(), &all[off..off + n], "{off} {n}");
        }
    }
    // Written into a frame, the two pieces are one payload.
    let pool = PacketPool::new(1, 2048);
    let seg = super::out::OutSeg {
        src_mac: US,
        dst_mac: PEER,
        src: (OUR_IP, 40000),
        dst: (PEER_IP, PORT),
        ip_id: 1,
        seq: 1,
        ack: 1,
        flags: TcpFlags::ACK,
        window: 100,
        syn_opts: None,
        sack: super::out::SackBlocks::NONE,
    };
    let p = super::out::write(&pool, &seg, range_of(&q, 1, all.len() - 2), false).unwrap();
    let s = wire::parse(p.data(), LinkType::Ethernet, true).unwrap();
    assert_eq!(s.checksum, wire::ChecksumStatus::Valid);
    assert_eq!(s.payload(p.data()), &all[1..all.len() - 1]);
    drop(p);
    assert!(pool.is_full());
}
