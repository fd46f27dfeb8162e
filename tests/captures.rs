//! The captures shipped in `data/captures`, read from their files and run
//! through the whole passive path (pcap reader, wire decoder, flow table,
//! two-direction reassembly, the parsers `aa inspect` uses):
//!
//! - the bytes reassembled in each direction are exactly what the sender sent,
//!   minus the ranges the capture lost, and every lost range is one gap event
//!   at its offset;
//! - the records of every direction equal those of parsing the sender's bytes
//!   as one contiguous stream (up to the first loss; body pieces joined);
//! - every packet goes back to the pool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use aa::inspect::{PortMap, Protocol, Service};
use aa::runtime::raw::RawParser;
use aa::runtime::{AaConfig, AaStream, PacketPool, ParseError};
use aa::stack::flow::Endpoint;
use aa::stack::io::pcap::PcapReader;
use aa::stack::passive::{DirInfo, Parsers, Passive, PassiveConfig, Side, Sink};
use aa::stack::synth::{self, FlowTruth};
use aa::stack::{Burst, ChecksumMode, Decoder, PacketIo, Rx};
use aa::{Packet, Parser};

/// A record, comparable across runs: type, span, fields (tag, bytes), values.
type Rec = (
    &'static str,
    u64,
    u64,
    Vec<(u16, Vec<u8>)>,
    Vec<Option<u64>>,
);

fn record_of<P: Packet>(r: &aa::Record<'_, P>) -> Rec {
    let schema_values = 8;
    (
        r.name(),
        r.span().start,
        r.span().end,
        r.fields().map(|f| (f.tag(), f.to_vec())).collect(),
        (0..schema_values).map(|t| r.value(t)).collect(),
    )
}

/// Joins consecutive `body` records: a body is delivered as one record per
/// packet by design (a large body never pins many packets), so where its
/// records split depends on how the bytes were cut, not on the bytes.
fn join_bodies(records: Vec<Rec>) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::with_capacity(records.len());
    for r in records {
        match out.last_mut() {
            Some(last) if last.0 == "body" && r.0 == "body" && last.2 == r.1 => {
                last.2 = r.2;
                let bytes = &r.3[0].1;
                last.3[0].1.extend_from_slice(bytes);
            }
            _ => out.push(r),
        }
    }
    out
}

/// The records before stream offset `at`; a body piece that crosses it is
/// cut there (the bytes before a loss are delivered, whatever follows).
fn clip_at(records: Vec<Rec>, at: u64) -> Vec<Rec> {
    let mut out = Vec::new();
    for mut r in records {
        if r.2 <= at {
            out.push(r);
        } else if r.0 == "body" && r.1 < at {
            r.3[0].1.truncate((at - r.1) as usize);
            r.2 = at;
            out.push(r);
        }
    }
    out
}

/// Per direction (sender, receiver): what the sink was told.
#[derive(Default)]
struct Seen {
    records: HashMap<(Endpoint, Endpoint), Vec<Rec>>,
    gaps: HashMap<(Endpoint, Endpoint), Vec<(u64, u64)>>,
    errors: Vec<String>,
}

impl<P: Packet, R: Parser> Sink<P, R> for Seen {
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, R>) {
        let n = stream.ready();
        let out = self.records.entry((dir.src, dir.dst)).or_default();
        out.extend(stream.read_aa_records(n).map(|r| record_of(&r)));
        stream.free_aa_records(n);
    }
    fn gap(&mut self, dir: &DirInfo, offset: u64, len: u64) {
        self.gaps
            .entry((dir.src, dir.dst))
            .or_default()
            .push((offset, len));
    }
    fn error(&mut self, dir: &DirInfo, e: &ParseError) {
        self.errors.push(format!("{:?}: {e}", (dir.src, dir.dst)));
    }
}

struct RawEverywhere;

impl Parsers for RawEverywhere {
    type Parser = RawParser;
    fn is_server_port(&self, port: u16) -> bool {
        port == 80 || port == 9000
    }
    fn parser(&mut self, _server: Endpoint, _side: Side) -> Option<RawParser> {
        Some(RawParser)
    }
}

/// HTTP on 80, CSV on 9000: what `aa inspect --port 9000=csv` runs.
fn inspect_ports() -> PortMap {
    let mut ports = PortMap::well_known();
    ports.set(9000, Service::by_name("csv", &[]).unwrap());
    ports
}

/// Runs the capture file through the passive path with `parsers`.
fn replay<F: Parsers>(path: &Path, parsers: F) -> Seen
where
    F::Parser: Parser,
{
    let pool = PacketPool::new(512, 2048);
    let mut reader = PcapReader::open(path, pool.clone()).unwrap();
    let mut passive = Passive::new(PassiveConfig::default(), parsers);
    let mut decoder = Decoder::new(ChecksumMode::On);
    let mut seen = Seen::default();
    let mut burst: Burst<Rx<_>> = Burst::with_capacity(16);
    loop {
        let n = reader.recv_burst(&mut burst).unwrap();
        if n == 0 && reader.at_end() {
            break;
        }
        // In bursts, as `aa inspect`: with the frames ahead prefetched.
        let taken = passive.frames(&mut decoder, burst.as_slice(), &mut seen);
        assert_eq!(taken, burst.len(), "not TCP");
        burst.clear();
    }
    passive.finish(&mut seen);
    assert_eq!(decoder.stats.bad_checksum, 0);
    drop(passive);
    drop(reader);
    assert!(pool.is_full(), "{}: packets leaked", path.display());
    seen
}

fn endpoint(a: SocketAddr) -> Endpoint {
    (a.ip(), a.port())
}

fn dir(t: &FlowTruth, side: Side) -> (Endpoint, Endpoint) {
    let (from, to) = match side {
        Side::Client => (t.client, t.server),
        Side::Server => (t.server, t.client),
    };
    (endpoint(from), endpoint(to))
}

fn synth_side(side: Side) -> synth::Side {
    match side {
        Side::Client => synth::Side::Client,
        Side::Server => synth::Side::Server,
    }
}

/// The records of `bytes` parsed as one contiguous stream.
fn contiguous(protocol: &Protocol, bytes: &[u8]) -> Vec<Rec> {
    let pool = PacketPool::new(1, bytes.len().max(1));
    let mut s = AaStream::new(AaConfig::default(), 0, protocol.parser());
    if !bytes.is_empty() {
        s.insert(0, pool.packet_from(bytes).unwrap(), 0..bytes.len());
    }
    s.finish();
    let n = s.ready();
    let out = s.read_aa_records(n).map(|r| record_of(&r)).collect();
    drop(s);
    assert!(pool.is_full());
    out
}

fn protocol_of(port: u16, side: Side) -> Protocol {
    let name = match (port, side) {
        (9000, _) => "csv",
        (_, Side::Client) => "http_request",
        (_, Side::Server) => "http_response",
    };
    Protocol::compiled(name).unwrap()
}

#[test]
fn every_shipped_capture_reassembles_and_parses_like_the_contiguous_stream() {
    let dir_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/captures");
    let captures = synth::standard_captures();
    assert!(captures.len() >= 7);
    for named in captures {
        let path = dir_path.join(named.name);
        let raw = replay(&path, RawEverywhere);
        let parsed = replay(&path, inspect_ports());
        assert_eq!(raw.errors, Vec::<String>::new(), "{}", named.name);
        for truth in &named.capture.flows {
            for side in [Side::Client, Side::Server] {
                let key = dir(truth, side);
                let what = format!("{} {:?} {side:?}", named.name, truth.client);
                let sent = truth.sent(synth_side(side));
                let lost = truth.lost(synth_side(side));

                // Reassembly: the bytes sent, minus exactly the lost ranges.
                let mut want = Vec::new();
                let mut at = 0;
                for r in lost {
                    want.extend_from_slice(&sent[at..r.start as usize]);
                    at = r.end as usize;
                }
                want.extend_from_slice(&sent[at..]);
                let got: Vec<u8> = raw
                    .records
                    .get(&key)
                    .map(|rs| rs.iter().flat_map(|r| r.3[0].1.clone()).collect())
                    .unwrap_or_default();
                assert!(got == want, "{what}: reassembled bytes differ");
                let gaps = raw.gaps.get(&key).cloned().unwrap_or_default();
                let want_gaps: Vec<(u64, u64)> =
                    lost.iter().map(|r| (r.start, r.end - r.start)).collect();
                assert_eq!(gaps, want_gaps, "{what}");

                // Records: those of the contiguous stream, up to the first loss.
                let protocol = protocol_of(truth.server.port(), side);
                let mut want = join_bodies(contiguous(&protocol, sent));
                let mut got = join_bodies(parsed.records.get(&key).cloned().unwrap_or_default());
                if let Some(first) = lost.first() {
                    want = clip_at(want, first.start);
                    got = clip_at(got, first.start);
                }
                if !sent.is_empty() {
                    assert!(!want.is_empty(), "{what}: no records at all");
                }
                assert_eq!(got.len(), want.len(), "{what}: record count");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "{what}");
                }
            }
        }
    }
}

#[test]
fn aa_inspect_returns_every_packet_to_its_pool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut opts = aa::inspect::Options::default();
    opts.ports.set(9000, Service::by_name("csv", &[]).unwrap());
    for named in synth::standard_captures() {
        let path = dir.join("captures").join(named.name);
        let summary = aa::inspect::run(&path, &opts, std::io::sink()).unwrap();
        assert!(summary.records > 0, "{}", named.name);
        assert_eq!(summary.packets_held, 0, "{}", named.name);
    }
    for name in ["real_http_keepalive.pcap", "real_http_chunked.pcap"] {
        let summary =
            aa::inspect::run(&dir.join("real").join(name), &opts, std::io::sink()).unwrap();
        assert!(summary.records > 0, "{name}");
        assert_eq!(summary.packets_held, 0, "{name}");
    }
}
