//! The synthetic capture generator: the committed files are what it produces
//! now, they read back frame for frame, every frame parses with a valid
//! checksum, the captured payloads rebuild the ground truth except exactly the
//! lost ranges (across sequence-number wraparound too), the impairments are
//! there, the content is well-formed HTTP/1.1 and CSV, and everything is
//! deterministic in its seeds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use aa_runtime::{Packet, PacketPool};
use aa_stack::io::pcap::{CaptureFormat, PcapReader};
use aa_stack::io::{Burst, PacketIo, Timestamp};
use aa_stack::synth::{
    csv_fixed_fields, csv_rows, http_chunked, http_exchange, http_fixed_bodies, http_keepalive,
    http_pipelined, standard_captures, Capture, Close, Conversation, Dialogue, FlowTruth,
    Impairments, NamedCapture, Side, DEFAULT_MSS,
};
use aa_stack::wire::{parse, ChecksumStatus, LinkType, Segment};

const REGENERATE: &str = "cargo run -p aa-stack --example gen_captures";

fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/captures")
}

fn t0() -> Timestamp {
    Timestamp::new(1_700_000_000, 0)
}

fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)), port)
}

// ---------------------------------------------------------------------------
// Looking at a capture the way a passive observer does.

/// One captured segment of a flow.
struct Seen {
    ts: Timestamp,
    side: Side,
    seg: Segment,
    payload: Vec<u8>,
}

/// The segments of each flow of `cap`, in capture order. Panics on a frame
/// that does not parse, has a bad checksum, or belongs to no flow.
fn split(name: &str, cap: &Capture) -> Vec<Vec<Seen>> {
    let mut flows: Vec<Vec<Seen>> = cap.flows.iter().map(|_| Vec::new()).collect();
    for (i, (ts, frame)) in cap.frames.iter().enumerate() {
        let seg = parse(frame, LinkType::Ethernet, true)
            .unwrap_or_else(|e| panic!("{name} frame #{i}: {e}"));
        assert_eq!(seg.checksum, ChecksumStatus::Valid, "{name} frame #{i}");
        let src = SocketAddr::new(seg.src.0, seg.src.1);
        let dst = SocketAddr::new(seg.dst.0, seg.dst.1);
        let (flow, side) = cap
            .flows
            .iter()
            .enumerate()
            .find_map(|(f, t)| {
                if (src, dst) == (t.client, t.server) {
                    Some((f, Side::Client))
                } else if (src, dst) == (t.server, t.client) {
                    Some((f, Side::Server))
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("{name} frame #{i}: {src} -> {dst} is in no flow"));
        flows[flow].push(Seen {
            ts: *ts,
            side,
            seg,
            payload: seg.payload(frame).to_vec(),
        });
    }
    flows
}

/// Stream offset of `seq` in the direction whose ISN is `isn`.
fn offset(isn: u32, seq: u32) -> u64 {
    u64::from(seq.wrapping_sub(isn.wrapping_add(1)))
}

/// Ranges of `0..len` that no range of `covered` covers.
fn uncovered(len: u64, covered: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut covered = covered.to_vec();
    covered.sort_by_key(|r| r.start);
    let mut gaps = Vec::new();
    let mut at = 0;
    for r in covered {
        if r.start > at {
            gaps.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if at < len {
        gaps.push(at..len);
    }
    gaps
}

/// How the data segments of one direction arrived, segment by segment.
#[derive(Debug, Default, PartialEq, Eq)]
struct Arrivals {
    /// New bytes only, behind bytes already seen.
    reordered: usize,
    /// Exactly the range of an earlier segment.
    duplicates: usize,
    /// Old bytes, but not an earlier segment's range.
    overlaps: usize,
}

fn arrivals(segs: &[Range<u64>]) -> Arrivals {
    let mut a = Arrivals::default();
    for (i, r) in segs.iter().enumerate() {
        let before = &segs[..i];
        let old = before.iter().any(|b| b.start < r.end && r.start < b.end);
        if before.contains(r) {
            a.duplicates += 1;
        } else if old {
            a.overlaps += 1;
        } else if before.iter().any(|b| b.end > r.start) {
            a.reordered += 1;
        }
    }
    a
}

/// What the checks of one direction found.
struct Direction {
    arrivals: Arrivals,
    /// Whether its sequence numbers pass 2^32 between two data bytes.
    wraps: bool,
    /// How far TSval went from the first segment to the last.
    tsval_advance: u32,
}

/// Checks one direction of one flow against its truth: handshake, every
/// payload at its offset, the gaps, the peer's ACKs, the TCP timestamps.
fn check_direction(name: &str, segs: &[Seen], truth: &FlowTruth, side: Side) -> Direction {
    let ctx = format!("{name} {} {side:?}", truth.client);
    let isn = truth.isn(side);
    let peer_isn = truth.isn(side.peer());
    let stream = truth.sent(side);
    let len = stream.len() as u64;
    let own: Vec<&Seen> = segs.iter().filter(|s| s.side == side).collect();
    let theirs: Vec<&Seen> = segs.iter().filter(|s| s.side != side).collect();

    // The SYN (or SYN-ACK) comes first, with its options.
    let syn = own[0];
    assert!(
        syn.seg.flags.syn(),
        "{ctx}: first segment {:?}",
        syn.seg.flags
    );
    assert_eq!(syn.seg.seq.0, isn, "{ctx}: ISN");
    assert_eq!(
        syn.seg.ack.0,
        if side == Side::Client {
            0
        } else {
            peer_isn.wrapping_add(1)
        }
    );
    let o = syn.seg.opts;
    assert!(
        o.sack_permitted && o.wscale == Some(7) && o.timestamps.is_some(),
        "{ctx}: {o:?}"
    );
    let mss = usize::from(o.mss.expect("MSS option")) - 12;
    assert!(
        own[1..].iter().all(|s| !s.seg.flags.syn()),
        "{ctx}: one SYN"
    );

    // Every payload is the truth at its offset; what no payload covers is
    // exactly what was lost.
    let mut data = Vec::new();
    for s in own.iter().filter(|s| !s.payload.is_empty()) {
        let off = offset(isn, s.seg.seq.0);
        let r = off..off + s.payload.len() as u64;
        assert!(r.end <= len, "{ctx}: {r:?} past the stream's {len} bytes");
        assert_eq!(
            s.payload,
            stream[r.start as usize..r.end as usize],
            "{ctx}: {r:?}"
        );
        assert!(
            s.payload.len() <= mss,
            "{ctx}: {} bytes > MSS {mss}",
            s.payload.len()
        );
        data.push(r);
    }
    assert_eq!(uncovered(len, &data), truth.lost(side), "{ctx}: gaps");

    // The peer acknowledges in order, past every loss, and everything at the
    // end (the FIN too when the connection closes with FINs).
    let acks: Vec<u64> = theirs
        .iter()
        .filter(|s| !s.seg.flags.syn())
        .map(|s| offset(isn, s.seg.ack.0))
        .collect();
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "{ctx}: ACKs go back: {acks:?}"
    );
    let fin = u64::from(matches!(truth.close, Close::Fin(_)));
    assert_eq!(acks.last().copied(), Some(len + fin), "{ctx}: last ACK");
    for lost in truth.lost(side) {
        let past = acks.iter().any(|&a| a >= lost.end);
        assert!(past, "{ctx}: nothing ACKs past {lost:?}");
    }
    // FIN / RST: at the stream's end.
    for s in own
        .iter()
        .filter(|s| s.seg.flags.fin() || s.seg.flags.rst())
    {
        assert_eq!(offset(isn, s.seg.seq.0), len, "{ctx}: {:?}", s.seg.flags);
    }

    // TCP timestamps: TSval never goes back, TSecr echoes the peer.
    let tsvals: Vec<u32> = own
        .iter()
        .map(|s| {
            s.seg
                .opts
                .timestamps
                .expect("timestamps on every segment")
                .0
        })
        .collect();
    assert!(
        tsvals.windows(2).all(|w| w[1].wrapping_sub(w[0]) < 1 << 31),
        "{ctx}: TSval goes back"
    );
    for (i, s) in segs.iter().enumerate().filter(|(_, s)| s.side == side) {
        let (_, tsecr) = s.seg.opts.timestamps.unwrap();
        let last_peer = segs[..i]
            .iter()
            .rev()
            .find(|p| p.side != side)
            .map(|p| p.seg.opts.timestamps.unwrap().0);
        match last_peer {
            None => assert_eq!(tsecr, 0, "{ctx}: TSecr of the SYN"),
            // The peer's latest TSval, or a later one from a segment the
            // capture lost.
            Some(v) => assert!(
                tsecr.wrapping_sub(v) as i32 >= 0,
                "{ctx}: TSecr {tsecr} < {v}"
            ),
        }
    }

    let wraps = len > 0 && u64::from(isn) + 1 + len > 1 << 32 && u64::from(isn) + 1 < 1 << 32;
    Direction {
        arrivals: arrivals(&data),
        wraps,
        tsval_advance: tsvals[tsvals.len() - 1].wrapping_sub(tsvals[0]),
    }
}

/// Checks every flow of a capture; returns the findings per flow and side.
fn check_capture(name: &str, cap: &Capture) -> Vec<[Direction; 2]> {
    assert!(
        cap.frames.windows(2).all(|w| w[0].0 < w[1].0),
        "{name}: timestamps grow"
    );
    assert!(
        cap.frames.iter().all(|(ts, _)| ts.0 % 1000 == 0),
        "{name}: whole µs"
    );
    let flows = split(name, cap);
    cap.flows
        .iter()
        .zip(&flows)
        .map(|(truth, segs)| {
            assert_eq!(segs[0].side, Side::Client, "{name}: the client starts");
            let ends = segs
                .iter()
                .filter(|s| s.seg.flags.fin() || s.seg.flags.rst());
            let ends: Vec<_> = ends.map(|s| (s.side, s.seg.flags.rst())).collect();
            match truth.close {
                Close::Fin(side) => assert_eq!(ends, [(side, false), (side.peer(), false)]),
                Close::Rst(side) => assert_eq!(ends, [(side, true)]),
            }
            [Side::Client, Side::Server].map(|side| check_direction(name, segs, truth, side))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The committed files.

#[test]
fn committed_files_are_what_the_generator_produces() {
    let captures = standard_captures();
    assert_eq!(captures.len(), 7);
    let mut total = 0;
    for named in &captures {
        let path = captures_dir().join(named.name);
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; regenerate with `{REGENERATE}`", path.display()));
        let now = named.encode().unwrap();
        assert!(
            on_disk == now,
            "{} differs from the generator ({} bytes, now {}); regenerate with `{REGENERATE}`",
            named.name,
            on_disk.len(),
            now.len()
        );
        let ext = match named.format {
            CaptureFormat::Pcap => ".pcap",
            CaptureFormat::PcapNg => ".pcapng",
        };
        assert!(named.name.ends_with(ext), "{}", named.name);
        total += on_disk.len();
    }
    assert!(total < 300 << 10, "the captures total {total} bytes");
}

#[test]
fn committed_files_read_back_frame_for_frame() {
    let pool = PacketPool::new(32, 2048);
    for named in standard_captures() {
        let mut reader = PcapReader::open(captures_dir().join(named.name), pool.clone()).unwrap();
        assert_eq!(reader.format(), named.format, "{}", named.name);
        let mut burst = Burst::with_capacity(16);
        let mut got = Vec::new();
        while !reader.at_end() {
            reader.recv_burst(&mut burst).unwrap();
            for rx in burst.drain(..) {
                assert_eq!(rx.meta.link, LinkType::Ethernet);
                assert_eq!(rx.meta.wire_len as usize, rx.packet.data().len());
                got.push((rx.meta.ts, rx.packet.data().to_vec()));
            }
        }
        assert_eq!(got.len(), named.capture.frames.len(), "{}", named.name);
        assert!(got == named.capture.frames, "{}: frames differ", named.name);
        assert_eq!(reader.stats().packets, got.len() as u64);
    }
    assert!(pool.is_full(), "every packet went back to the pool");
}

fn standard(name: &str) -> NamedCapture {
    standard_captures()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no capture {name}"))
}

#[test]
fn standard_captures_rebuild_their_truth() {
    let mut wrapped = 0;
    for named in standard_captures() {
        let name = named.name;
        let found = check_capture(name, &named.capture);
        let impaired = name.ends_with("_impaired.pcap");
        for (truth, dirs) in named.capture.flows.iter().zip(&found) {
            for (side, dir) in [Side::Client, Side::Server].into_iter().zip(dirs) {
                wrapped += usize::from(dir.wraps);
                assert!(dir.tsval_advance > 0, "{name} {side:?}: TSval stands still");
                // The impaired captures impair the direction that carries
                // the bulk (CSV: the client's; HTTP: the server's).
                let bulk = if truth.server.port() == 9000 {
                    Side::Client
                } else {
                    Side::Server
                };
                if impaired && side == bulk {
                    let a = &dir.arrivals;
                    assert_eq!(truth.lost(side).len(), 1, "{name}: one segment lost");
                    assert!(truth.lost(side)[0].end - truth.lost(side)[0].start <= 1448);
                    assert_eq!(a.duplicates, 2, "{name}: {a:?}");
                    assert_eq!(a.overlaps, 2, "{name}: {a:?}");
                    assert!(a.reordered >= 2, "{name}: {a:?}");
                } else {
                    assert!(truth.lost(side).is_empty(), "{name} {side:?}");
                    assert_eq!(dir.arrivals, Arrivals::default(), "{name} {side:?}");
                }
            }
        }
    }
    assert_eq!(
        wrapped, 2,
        "keep-alive's server and impaired CSV's client wrap"
    );
}

#[test]
fn standard_captures_have_what_their_names_say() {
    let keepalive = standard("http_keepalive.pcap").capture;
    assert_eq!(keepalive.flows.len(), 3);
    // Interleaved: the second connection's SYN comes before the first's
    // handshake ends.
    let flows = split("keepalive", &keepalive);
    assert!(flows[1][0].ts < flows[0][2].ts);

    let chunked = standard("http_chunked.pcap").capture;
    assert_eq!(chunked.flows[0].close, Close::Rst(Side::Client));

    let csv = &standard("csv.pcap").capture.flows[0];
    assert_eq!(csv.server.port(), 9000);
    assert!(csv.to_client.is_empty() && !csv.to_server.is_empty());

    let ipv6 = standard("http_ipv6.pcapng");
    assert_eq!(ipv6.format, CaptureFormat::PcapNg);
    let flows = split("ipv6", &ipv6.capture);
    assert!(flows[0].iter().all(|s| s.seg.is_ipv6()));
    assert_eq!(flows[0][0].seg.opts.mss, Some(1440));
    assert!(flows[0].iter().any(|s| s.payload.len() == 1428));

    // Pipelined: every request in at most two segments before any response.
    let pipelined = standard("http_pipelined.pcap").capture;
    let segs = &split("pipelined", &pipelined)[0];
    let first_response = segs
        .iter()
        .position(|s| s.side == Side::Server && !s.payload.is_empty())
        .unwrap();
    let requests: Vec<&Seen> = segs[..first_response]
        .iter()
        .filter(|s| !s.payload.is_empty())
        .collect();
    assert!(
        (1..=2).contains(&requests.len()),
        "{} segments",
        requests.len()
    );
    let sent: usize = requests.iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, pipelined.flows[0].to_server.len());
}

// ---------------------------------------------------------------------------
// Conversations beyond the standard ones.

fn impaired(seed: u64) -> Conversation {
    Conversation::new(
        v4(1, 41000),
        v4(2, 80),
        http_fixed_bodies(6, 8000, seed),
        seed,
    )
    .impair(Side::Server, Impairments::MIXED)
    .impair(
        Side::Client,
        Impairments {
            duplicates: 1,
            ..Impairments::NONE
        },
    )
}

#[test]
fn impaired_conversations_rebuild_their_truth_for_many_seeds() {
    for seed in 0..40 {
        let mss = [DEFAULT_MSS, 536, 100][seed as usize % 3];
        let conv = impaired(seed)
            .mss(mss)
            .wrap_at(Side::Server, 1000 + 37 * seed as u32);
        let cap = conv.capture(t0());
        let [client, server] = check_capture("impaired", &cap).pop().unwrap();
        assert!(server.wraps);
        assert_eq!(cap.flows[0].lost(Side::Server).len(), 1);
        assert_eq!(server.arrivals.duplicates, 2, "seed {seed}");
        assert_eq!(server.arrivals.overlaps, 2, "seed {seed}");
        assert!(server.arrivals.reordered >= 2, "seed {seed}");
        // The client's requests: one duplicate, nothing else.
        let dup = Arrivals {
            duplicates: 1,
            ..Arrivals::default()
        };
        assert_eq!(client.arrivals, dup, "seed {seed}");
        assert!(cap.flows[0].lost(Side::Client).is_empty());
    }
}

#[test]
fn lost_segment_is_exactly_one_segment_never_first_or_last() {
    let stream = vec![b'x'; 10 * 1000 + 1];
    for seed in 0..30 {
        let cap = Conversation::new(
            v4(1, 42000),
            v4(2, 9000),
            Dialogue::one_way(Side::Client, stream.clone()),
            seed,
        )
        .mss(1000)
        .impair(
            Side::Client,
            Impairments {
                lose_one: true,
                ..Impairments::NONE
            },
        )
        .capture(t0());
        let lost = cap.flows[0].lost(Side::Client);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].end - lost[0].start, 1000, "seed {seed}");
        assert!(lost[0].start % 1000 == 0 && lost[0].start > 0 && lost[0].end <= 10_000);
        check_capture("lost", &cap);
    }
}

#[test]
fn tiny_streams_take_what_impairments_fit() {
    // One segment each way: nothing to reorder, overlap or lose.
    let mut d = Dialogue::new();
    d.push(Side::Client, b"ping".to_vec());
    d.push(Side::Server, b"pong".to_vec());
    d.push(Side::Client, Vec::new());
    assert_eq!(d.writes().len(), 2, "empty writes are ignored");
    let cap = Conversation::new(v4(1, 43000), v4(2, 7), d, 5)
        .impair(Side::Client, Impairments::MIXED)
        .impair(Side::Server, Impairments::MIXED)
        .close(Close::Rst(Side::Server))
        .capture(t0());
    let [client, server] = check_capture("tiny", &cap).pop().unwrap();
    assert!(cap.flows[0].lost_to_server.is_empty() && cap.flows[0].lost_to_client.is_empty());
    assert_eq!(client.arrivals.duplicates + server.arrivals.duplicates, 2);
    // Empty dialogue: handshake and teardown only.
    let cap = Conversation::new(v4(1, 43001), v4(2, 7), Dialogue::new(), 6).capture(t0());
    check_capture("empty", &cap);
    assert_eq!(cap.frames.len(), 6);
}

#[test]
fn wrap_at_puts_sequence_zero_at_the_offset() {
    let conv = Conversation::new(
        v4(1, 44000),
        v4(2, 9000),
        Dialogue::one_way(Side::Client, vec![7; 5000]),
        1,
    )
    .wrap_at(Side::Client, 3000);
    let cap = conv.capture(t0());
    let truth = &cap.flows[0];
    assert_eq!(truth.client_isn.wrapping_add(1 + 3000), 0);
    let [client, _] = check_capture("wrap", &cap).pop().unwrap();
    assert!(client.wraps);
}

// ---------------------------------------------------------------------------
// Determinism.

#[test]
fn same_seed_same_capture_different_seed_different() {
    let a = impaired(7).capture(t0());
    assert_eq!(a, impaired(7).capture(t0()));
    assert_eq!(
        a.encode(CaptureFormat::Pcap).unwrap(),
        impaired(7)
            .capture(t0())
            .encode(CaptureFormat::Pcap)
            .unwrap()
    );
    let b = impaired(8).capture(t0());
    assert_ne!(a.frames, b.frames);
    assert_ne!(a.flows[0].to_client, b.flows[0].to_client);
    // Same content, another connection seed: other ISNs, same streams.
    let d = http_fixed_bodies(6, 8000, 7);
    let c = Conversation::new(v4(1, 41000), v4(2, 80), d, 99)
        .impair(Side::Server, Impairments::MIXED)
        .capture(t0());
    assert_eq!(c.flows[0].to_client, a.flows[0].to_client);
    assert_ne!(c.flows[0].server_isn, a.flows[0].server_isn);
    // Interleaving is deterministic too.
    let convs = [impaired(1), impaired(2).isn(Side::Client, 5)];
    assert_eq!(
        Capture::interleave(t0(), &convs),
        Capture::interleave(t0(), &convs)
    );
    assert_eq!(standard_captures(), standard_captures());
}

#[test]
fn content_generators_are_deterministic() {
    assert_eq!(
        http_keepalive(5, 0..=3000, 1),
        http_keepalive(5, 0..=3000, 1)
    );
    assert_ne!(
        http_keepalive(5, 0..=3000, 1),
        http_keepalive(5, 0..=3000, 2)
    );
    assert_eq!(http_chunked(3, 1..=3000, 1), http_chunked(3, 1..=3000, 1));
    assert_ne!(http_chunked(3, 1..=3000, 1), http_chunked(3, 1..=3000, 2));
    assert_eq!(http_pipelined(4, 1), http_pipelined(4, 1));
    assert_ne!(http_pipelined(4, 1), http_pipelined(4, 2));
    assert_eq!(http_fixed_bodies(3, 100, 1), http_fixed_bodies(3, 100, 1));
    assert_ne!(http_fixed_bodies(3, 100, 1), http_fixed_bodies(3, 100, 2));
    assert_eq!(csv_rows(20, 1), csv_rows(20, 1));
    assert_ne!(csv_rows(20, 1), csv_rows(20, 2));
    assert_eq!(csv_fixed_fields(5, 4, 8, 1), csv_fixed_fields(5, 4, 8, 1));
    assert_ne!(csv_fixed_fields(5, 4, 8, 1), csv_fixed_fields(5, 4, 8, 2));
    let d = http_keepalive(5, 0..=3000, 3);
    assert_eq!(
        http_exchange(5, 0..=3000, 3),
        (d.to_server(), d.to_client())
    );
}

// ---------------------------------------------------------------------------
// Content: HTTP/1.1.

/// One parsed HTTP message.
#[derive(Debug)]
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Size lines of a chunked body, and its trailer fields.
    size_lines: Vec<String>,
    trailers: Vec<(String, String)>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn status(&self) -> u16 {
        self.start[9..12].parse().unwrap()
    }
}

/// A strict HTTP/1.1 message splitter over a whole stream.
struct HttpReader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> HttpReader<'a> {
    fn line(&mut self) -> &'a str {
        let rest = &self.buf[self.at..];
        let n = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("no CRLF after offset {}", self.at));
        self.at += n + 2;
        std::str::from_utf8(&rest[..n]).unwrap()
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let bytes = &self.buf[self.at..self.at + n];
        self.at += n;
        bytes
    }
    fn fields(&mut self) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return fields;
            }
            let (name, value) = line.split_once(": ").expect("name: value");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    fn message(&mut self, response: bool) -> Message {
        let start = self.line().to_owned();
        let headers = self.fields();
        let mut m = Message {
            start,
            headers,
            body: Vec::new(),
            size_lines: Vec::new(),
            trailers: Vec::new(),
        };
        if response && [204, 304].contains(&m.status()) {
            assert!(
                m.header("Content-Length").is_none() && m.header("Transfer-Encoding").is_none()
            );
        } else if m.header("Transfer-Encoding") == Some("chunked") {
            assert!(m.header("Content-Length").is_none());
            loop {
                let line = self.line();
                m.size_lines.push(line.to_owned());
                let size = line.split_once(';').map_or(line, |(size, _)| size);
                let size = usize::from_str_radix(size, 16).unwrap();
                if size == 0 {
                    m.trailers = self.fields();
                    break;
                }
                m.body.extend_from_slice(self.take(size));
                assert_eq!(self.take(2), b"\r\n");
            }
        } else if let Some(len) = m.header("Content-Length") {
            m.body = self.take(len.parse().unwrap()).to_vec();
        }
        m
    }
    fn all(buf: &'a [u8], response: bool) -> Vec<Message> {
        let mut r = HttpReader { buf, at: 0 };
        let mut out = Vec::new();
        while r.at < buf.len() {
            out.push(r.message(response));
        }
        out
    }
}

/// Requests and responses of a dialogue, checked to pair up.
fn http(d: &Dialogue) -> (Vec<Message>, Vec<Message>) {
    let reqs = HttpReader::all(&d.to_server(), false);
    let resps = HttpReader::all(&d.to_client(), true);
    assert_eq!(reqs.len(), resps.len());
    for (req, res) in reqs.iter().zip(&resps) {
        assert!(req.start.ends_with(" HTTP/1.1") && res.start.starts_with("HTTP/1.1 "));
        assert!(!req.start.starts_with("HEAD "), "no HEAD requests");
        assert!((6..=10).contains(&req.headers.len()), "{:?}", req.headers);
        assert!((6..=10).contains(&res.headers.len()), "{:?}", res.headers);
        assert_eq!(
            req.header("Content-Length").map(|l| l.parse().unwrap()),
            (!req.body.is_empty()).then_some(req.body.len())
        );
        match res.status() {
            304 => assert!(req.header("If-None-Match") == res.header("ETag")),
            204 => assert!(req.start.starts_with("PUT ")),
            _ => {}
        }
    }
    (reqs, resps)
}

#[test]
fn http_keepalive_is_well_formed_and_varied() {
    let d = http_keepalive(40, 0..=6000, 42);
    // Request, response, request, ...
    let sides: Vec<Side> = d.writes().iter().map(|(s, _)| *s).collect();
    assert!(sides.chunks(2).all(|p| p == [Side::Client, Side::Server]));
    let (reqs, resps) = http(&d);
    assert_eq!(reqs.len(), 40);
    let statuses: Vec<u16> = resps.iter().map(Message::status).collect();
    for status in [200, 204, 304] {
        assert!(statuses.contains(&status), "{statuses:?} lacks {status}");
    }
    assert!(reqs
        .iter()
        .any(|r| r.start.starts_with("POST ") && !r.body.is_empty()));
    assert!(
        resps.iter().any(|r| r.body.len() > DEFAULT_MSS),
        "a body crosses packets"
    );
    assert!(resps.iter().all(|r| r.body.len() <= 6000));
    // Header names in mixed case.
    let names: Vec<&str> = resps
        .iter()
        .chain(&reqs)
        .flat_map(|m| m.headers.iter().map(|(n, _)| n.as_str()))
        .collect();
    for name in [
        "Content-Length",
        "content-length",
        "Content-Type",
        "content-type",
    ] {
        assert!(names.contains(&name), "no header spelled {name}");
    }
    for r in &resps {
        if r.header("Content-Type") == Some("application/json") && r.body.len() >= 2 {
            assert!(r.body.starts_with(b"{") && r.body.trim_ascii_end().ends_with(b"}"));
        }
    }
}

#[test]
fn http_fixed_bodies_have_exactly_n_bytes() {
    for len in [0, 1, 2000, 5000] {
        let (_, resps) = http(&http_fixed_bodies(7, len, 3));
        assert_eq!(resps.len(), 7);
        assert!(resps
            .iter()
            .all(|r| r.status() == 200 && r.body.len() == len));
        assert!(resps
            .iter()
            .all(|r| r.header("Content-Length") == Some(&*len.to_string())));
    }
}

#[test]
fn http_chunked_has_extensions_and_trailers() {
    let (_, resps) = http(&http_chunked(12, 1..=8000, 9));
    let chunked: Vec<&Message> = resps
        .iter()
        .filter(|r| r.header("Transfer-Encoding").is_some())
        .collect();
    assert!(chunked.len() >= 6);
    let mut sizes = String::new();
    for r in &chunked {
        assert!(r.size_lines[0].ends_with(";ext=1"), "{:?}", r.size_lines);
        assert!(r.size_lines[1..].iter().all(|l| !l.contains(';')));
        assert!(r.size_lines.len() >= 2);
        sizes.extend(r.size_lines.iter().map(|l| l.trim_end_matches(";ext=1")));
        let names: Vec<String> = r
            .trailers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        assert_eq!(names, ["x-checksum", "server-timing"]);
        assert!(!r.body.is_empty());
    }
    assert!(resps.iter().all(|r| r.header("Content-Length").is_none()));
    // Hex sizes with letters of both cases.
    assert!(sizes.bytes().any(|b| b.is_ascii_uppercase()), "{sizes}");
    assert!(sizes.bytes().any(|b| b.is_ascii_lowercase()), "{sizes}");
}

#[test]
fn http_pipelined_sends_every_request_first() {
    let d = http_pipelined(5, 4);
    let sides: Vec<Side> = d.writes().iter().map(|(s, _)| *s).collect();
    assert_eq!(
        sides,
        [
            Side::Client,
            Side::Client,
            Side::Server,
            Side::Server,
            Side::Server,
            Side::Server,
            Side::Server
        ]
    );
    let (reqs, resps) = http(&d);
    assert!(reqs[1].start.starts_with("POST ") && !reqs[1].body.is_empty());
    assert!(d.writes()[..2].iter().all(|(_, w)| w.len() <= DEFAULT_MSS));
    assert_eq!(resps[4].status(), 304);
}

// ---------------------------------------------------------------------------
// Content: CSV.

/// RFC 4180 records; panics on a bare `\n` or `\r` outside quotes or on a
/// stray quote.
fn csv_records(buf: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'"' {
            assert!(field.is_empty(), "quote inside a field at {i}");
            i += 1;
            loop {
                match buf[i] {
                    b'"' if buf.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    b'"' => break,
                    b => {
                        field.push(b);
                        i += 1;
                    }
                }
            }
            i += 1;
            assert!(
                matches!(buf[i], b',' | b'\r'),
                "after a quoted field at {i}"
            );
            continue;
        }
        match buf[i] {
            b',' => record.push(std::mem::take(&mut field)),
            b'\r' => {
                assert_eq!(buf[i + 1], b'\n', "CRLF at {i}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                i += 1;
            }
            b'\n' => panic!("bare LF at {i}"),
            b => field.push(b),
        }
        i += 1;
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the last line ends with CRLF"
    );
    records
}

#[test]
fn csv_rows_are_rfc4180_with_escapes() {
    let doc = csv_rows(200, 5);
    let records = csv_records(&doc);
    assert_eq!(records.len(), 201);
    assert_eq!(records[0].join(&b','), b"id,symbol,side,price,qty,note");
    assert!(records.iter().all(|r| r.len() == 6));
    let notes: Vec<&Vec<u8>> = records.iter().map(|r| &r[5]).collect();
    assert!(notes.iter().any(|n| n.contains(&b',')));
    assert!(notes.iter().any(|n| n.contains(&b'"')));
    assert!(notes.iter().any(|n| n.windows(2).any(|w| w == b"\r\n")));
    assert!(notes
        .iter()
        .any(|n| n.contains(&b'\n') && !n.contains(&b'\r')));
    assert!(doc.windows(2).any(|w| w == b"\"\""), "doubled quotes");
    for (i, r) in records[1..].iter().enumerate() {
        assert_eq!(r[0], (i + 1).to_string().as_bytes());
    }
}

#[test]
fn csv_fixed_fields_are_exactly_n_bytes() {
    let doc = csv_fixed_fields(50, 6, 8, 3);
    assert_eq!(doc.len(), 50 * (6 * 9 + 1));
    let records = csv_records(&doc);
    assert_eq!(records.len(), 50);
    assert!(records.iter().all(|r| r.len() == 6
        && r.iter()
            .all(|f| f.len() == 8 && f.iter().all(u8::is_ascii_alphanumeric))));
}
