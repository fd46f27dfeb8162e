//! Passive reassembly: both directions of every TCP connection in a copy of the
//! traffic (a capture file, a mirror port), each rebuilt with the runtime's
//! zero-copy stream and parsed into records on the fly.
//!
//! [`Passive::segment`] takes one decoded [`Segment`] and its packet handle. The
//! connection is found in (or added to) the [`FlowTable`]; the segment's payload
//! goes, without a copy, into the [`AaStream`] of its direction, whose parser runs
//! on whatever became in order; the application's [`Sink`] is then handed the
//! stream to read and free the finished records.
//!
//! What the observer knows and how it acts on it:
//! - **Start.** A SYN gives the client's initial sequence number, a SYN-ACK the
//!   server's. A connection whose handshake was not seen is picked up at its first
//!   segment carrying data (unless [`PassiveConfig::midstream`] is off); the side
//!   whose port the [`Parsers`] serve is the server. The stream then starts at that
//!   segment: a parser that expects a record there and finds the middle of one
//!   fails that stream with a clear error (or resynchronises, if its grammar says
//!   how), and the other flows go on.
//! - **Order.** Out-of-order, retransmitted, overlapping and duplicated segments
//!   are the zero-copy stream's business (first copy wins; conflicts counted).
//! - **Gaps.** Bytes are declared lost when they can no longer arrive: the other
//!   side acknowledged past them (the capture missed them), the connection ended
//!   (FIN acknowledged, RST, idle eviction, end of the capture) with holes left,
//!   or a cap dropped them. Each hole is reported to the parser — which
//!   resynchronises or fails that stream — and to the sink ([`Sink::gap`]) with
//!   its stream offset and length.
//! - **End.** A direction ends when its FIN is reached; the connection is
//!   removed when both directions have ended, on RST, or after
//!   [`FlowConfig::idle_timeout`] without a segment.
//!
//! Every segment that is not used is counted in [`PassiveStats`] under the
//! reason, and nothing on this path panics on what the network sends.

use std::net::IpAddr;

use aa_runtime::{
    AaConfig, AaStream, Buffers, Insert, Packet, Parked, ParseError, Parser, SeqNum, Signals,
};

use crate::flow::{Endpoint, FlowConfig, FlowKey, FlowStats, FlowTable, Lookup};
use crate::io::{Rx, Timestamp};
use crate::wire::{Decoder, Segment};

/// How many frames ahead [`Passive::frames`] prefetches: in `cargo bench -p
/// aa-stack --bench passive`, 4 and 8 gave the same, both about a quarter
/// more HTTP throughput than none.
pub const PREFETCH_AHEAD: usize = 4;

/// Which end of the connection sent a direction's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (the SYN's sender, or the side not on a server port): the
    /// client-to-server direction.
    Client,
    /// The server: the server-to-client direction.
    Server,
}

impl Side {
    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    /// The other side.
    #[inline]
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// One direction of a connection: who sends, who receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirInfo {
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Which end the sender is.
    pub side: Side,
}

/// Chooses the parser of each direction.
pub trait Parsers {
    /// The parser type (an enum when several protocols are served).
    type Parser: Parser;

    /// Whether `port` is a server port: decides which side is the server of a
    /// connection picked up without its handshake.
    fn is_server_port(&self, port: u16) -> bool;

    /// The parser of direction `side` of a connection to `server`, or `None`
    /// to leave that direction unparsed. A connection neither of whose
    /// directions gets a parser is not tracked at all.
    fn parser(&mut self, server: Endpoint, side: Side) -> Option<Self::Parser>;
}

/// Why a connection was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// Both directions reached their FIN.
    Fin,
    /// A RST.
    Reset,
    /// No segment for the idle timeout.
    Idle,
    /// A new SYN reused the 4-tuple of a connection still tracked.
    Reused,
    /// The input ended ([`Passive::finish`]).
    Input,
}

/// What the application does with what passive reassembly finds.
pub trait Sink<P: Packet, R: Parser> {
    /// Records are ready in `stream`: read them (`read_aa_records`) and free
    /// them (`free_aa_records`). Records not freed stay queued, and when the
    /// queue is full the stream stops taking data (later bytes become gaps).
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, R>);

    /// `len` bytes at stream `offset` of `dir` will never be seen.
    fn gap(&mut self, dir: &DirInfo, offset: u64, len: u64) {
        let _ = (dir, offset, len);
    }

    /// The parser of `dir` found an error in its stream: it resynchronises
    /// at its grammar's sync pattern if it can (else that direction parses no
    /// more). Called once per error, in order, after the records before it
    /// were handed to [`records`](Self::records); a sink that wants the
    /// errors among its records takes them there itself
    /// ([`AaStream::take_error`]), and those are not given here again.
    fn error(&mut self, dir: &DirInfo, error: &ParseError) {
        let _ = (dir, error);
    }

    /// The connection from `client` to `server` was removed.
    fn closed(&mut self, client: Endpoint, server: Endpoint, end: End) {
        let _ = (client, server, end);
    }
}

/// Bounds and switches of a [`Passive`] observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassiveConfig {
    /// Limits of each direction's record stream (window, queues).
    pub aa: AaConfig,
    /// Limits of the flow table.
    pub flows: FlowConfig,
    /// Pick up connections whose handshake was not seen.
    pub midstream: bool,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        // Only directions in the middle of something hold these queues; an
        // observer holds them for few directions at a time.
        // A record that needs more fields than `max_fields` still fits: the
        // queues always hold at least one whole record of the parser's limits.
        let mut aa = AaConfig {
            max_records: 64,
            max_fields: 512,
            max_values: 256,
            ..AaConfig::default()
        };
        aa.stream.max_fragments = 512;
        aa.stream.max_ooo_fragments = 256;
        PassiveConfig {
            aa,
            flows: FlowConfig::default(),
            midstream: true,
        }
    }
}

/// Counters of a [`Passive`] observer. Every segment lands in exactly one of
/// `untracked`, `refused`, `rejected` or `accepted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassiveStats {
    /// Segments handed in.
    pub segments: u64,
    /// Segments of connections not tracked: no parser for them, or no way to
    /// start (a pure ACK, a RST or, with mid-stream pickup off, data of a
    /// connection whose SYN was not seen).
    pub untracked: u64,
    /// Segments of new connections refused because the flow table was full.
    pub refused: u64,
    /// Segments of tracked connections that could not be used: a SYN out of
    /// place, data of a direction that cannot start, data after its FIN.
    pub rejected: u64,
    /// Segments used.
    pub accepted: u64,
    /// TCP payload bytes in the segments handed in.
    pub payload_bytes: u64,
    /// Connections started by a SYN.
    pub handshakes: u64,
    /// Connections picked up mid-stream.
    pub midstream: u64,
    /// Connections closed by FIN in both directions.
    pub closed_fin: u64,
    /// Connections reset.
    pub closed_rst: u64,
    /// Connections evicted for being idle.
    pub closed_idle: u64,
    /// Connections replaced by a new SYN on the same 4-tuple.
    pub closed_reused: u64,
    /// Connections still open when the input ended.
    pub closed_input: u64,
    /// Segments queued out of order.
    pub out_of_order: u64,
    /// Segments with nothing new (retransmissions).
    pub duplicates: u64,
    /// Segments dropped beyond the receive window.
    pub out_of_window: u64,
    /// Segments dropped at a stream cap.
    pub over_cap: u64,
    /// Acknowledgments so far past the data that they cannot be real; ignored.
    pub bogus_acks: u64,
    /// Holes declared lost.
    pub gaps: u64,
    /// Bytes in those holes.
    pub gap_bytes: u64,
    /// Parser errors: a direction whose parser resynchronises after one goes
    /// on (every error is reported), one that cannot is failed.
    pub errors: u64,
    /// Records parsed, counted when their connection is removed.
    pub records: u64,
    /// Signals between the directions of a connection (see
    /// [`aa_runtime::signal`]) dropped from a full queue: more than 15
    /// waiting to be heard, or sent in one segment.
    pub signals_dropped: u64,
}

/// Adds the counts of another (a decoder or observer of another thread, say).
impl std::ops::AddAssign for PassiveStats {
    fn add_assign(&mut self, from: PassiveStats) {
        // Every field named: a new counter cannot be forgotten here.
        let PassiveStats {
            segments,
            untracked,
            refused,
            rejected,
            accepted,
            payload_bytes,
            handshakes,
            midstream,
            closed_fin,
            closed_rst,
            closed_idle,
            closed_reused,
            closed_input,
            out_of_order,
            duplicates,
            out_of_window,
            over_cap,
            bogus_acks,
            gaps,
            gap_bytes,
            errors,
            records,
            signals_dropped,
        } = from;
        self.segments += segments;
        self.untracked += untracked;
        self.refused += refused;
        self.rejected += rejected;
        self.accepted += accepted;
        self.payload_bytes += payload_bytes;
        self.handshakes += handshakes;
        self.midstream += midstream;
        self.closed_fin += closed_fin;
        self.closed_rst += closed_rst;
        self.closed_idle += closed_idle;
        self.closed_reused += closed_reused;
        self.closed_input += closed_input;
        self.out_of_order += out_of_order;
        self.duplicates += duplicates;
        self.out_of_window += out_of_window;
        self.over_cap += over_cap;
        self.bogus_acks += bogus_acks;
        self.gaps += gaps;
        self.gap_bytes += gap_bytes;
        self.errors += errors;
        self.records += records;
        self.signals_dropped += signals_dropped;
    }
}

/// Where a direction's record stream is.
enum Stream<R> {
    /// No parser: bytes of this direction are not reassembled.
    Unparsed,
    /// A parser, waiting for the first sequence number, and the signals
    /// the other direction sent it meanwhile.
    Waiting(R, Signals),
    /// Idle between records, holding nothing: the parser and the position,
    /// no queue (see [`AaStream::park`]).
    Parked(Parked<R>),
    /// Reassembling and parsing: the stream is slot `n` of [`Hot`].
    Open(u32),
}

/// What is known of a direction besides its stream.
#[derive(Clone, Copy)]
struct Meta {
    /// Sequence number of the first data byte, from the SYN.
    first_seq: Option<SeqNum>,
    /// Sequence number of the FIN, once seen.
    fin: Option<SeqNum>,
    /// End of the highest data seen.
    high: SeqNum,
    /// The stream was finished (FIN reached or connection over).
    finished: bool,
    /// Parser errors of the open stream reported so far.
    errors: u32,
}

struct Dir<R> {
    stream: Stream<R>,
    meta: Meta,
}

impl<R> Dir<R> {
    fn new(parser: Option<R>) -> Self {
        Dir {
            stream: match parser {
                Some(p) => Stream::Waiting(p, Signals::new()),
                None => Stream::Unparsed,
            },
            meta: Meta {
                first_seq: None,
                fin: None,
                high: SeqNum(0),
                finished: false,
                errors: 0,
            },
        }
    }

    /// Whether this direction will carry nothing more.
    fn done(&self) -> bool {
        self.meta.fin.is_some()
            && (self.meta.finished || matches!(self.stream, Stream::Unparsed | Stream::Waiting(..)))
    }
}

/// One tracked connection.
struct Conn<R> {
    /// Whether the client is the flow key's `lo` endpoint.
    client_is_lo: bool,
    /// Client-to-server, then server-to-client.
    dirs: [Dir<R>; 2],
}

impl<R> Conn<R> {
    fn endpoints(&self, key: &FlowKey) -> (Endpoint, Endpoint) {
        endpoints(key, self.client_is_lo)
    }

    fn info(&self, key: &FlowKey, side: Side) -> DirInfo {
        DirInfo::of(key, self.client_is_lo, side)
    }
}

/// Client and server of `key`.
fn endpoints(key: &FlowKey, client_is_lo: bool) -> (Endpoint, Endpoint) {
    if client_is_lo {
        (key.lo, key.hi)
    } else {
        (key.hi, key.lo)
    }
}

impl DirInfo {
    /// Direction `side` of the connection `key`.
    fn of(key: &FlowKey, client_is_lo: bool, side: Side) -> DirInfo {
        let (client, server) = endpoints(key, client_is_lo);
        let (src, dst) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        DirInfo { src, dst, side }
    }
}

/// The record streams of the directions that hold something (a packet, a
/// record, a record in progress). A direction that holds nothing is parked in
/// its connection — a few dozen bytes — and its queues wait here, cleared,
/// for the next direction that wakes: a million quiet connections cost their
/// parked state only, and waking allocates nothing once the spares exist.
struct Hot<P: Packet, R: Parser> {
    cfg: AaConfig,
    slots: Vec<Option<AaStream<P, R>>>,
    free: Vec<u32>,
    spares: Vec<Buffers<P>>,
}

/// Most spare queue sets kept for reuse (each is a stream's rings and queues).
const MAX_SPARES: usize = 64;

/// Idle directions stay open (no parking, no waking: a few hundred bytes moved
/// each way per message otherwise) while no more than this many streams are
/// open; past it, a direction is parked as soon as it is idle.
const HOT_TARGET: usize = 64;

impl<P: Packet, R: Parser> Hot<P, R> {
    fn new(cfg: AaConfig) -> Self {
        Hot {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            spares: Vec::new(),
        }
    }

    /// Makes a stream of `parked` hot; returns its slot.
    fn wake(&mut self, parked: Parked<R>) -> u32 {
        let mut s = AaStream::resume(self.cfg, parked, self.spares.pop());
        // A protocol error resynchronises where the grammar can.
        s.recover_from_errors(true);
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(s);
                i
            }
            None => {
                self.slots.push(Some(s));
                (self.slots.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn get(&mut self, i: u32) -> &mut AaStream<P, R> {
        match &mut self.slots[i as usize] {
            Some(s) => s,
            None => unreachable!("open directions own their slot"),
        }
    }

    /// Takes slot `i`'s stream out.
    fn take(&mut self, i: u32) -> AaStream<P, R> {
        self.free.push(i);
        match self.slots[i as usize].take() {
            Some(s) => s,
            None => unreachable!("open directions own their slot"),
        }
    }

    /// Streams open now.
    fn open_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Parks `stream` if it is open and idle and more than [`HOT_TARGET`]
    /// streams are open; counts its records.
    fn park_if_idle(&mut self, d: &mut Dir<R>, records: &mut u64, signals_dropped: &mut u64) {
        let Stream::Open(i) = d.stream else {
            return;
        };
        if self.open_count() <= HOT_TARGET || !self.get(i).is_idle() {
            return;
        }
        let s = self.take(i);
        *records += s.stats().records;
        *signals_dropped += s.stats().signals_dropped;
        match s.park() {
            Ok((parked, buffers)) => {
                if self.spares.len() < MAX_SPARES {
                    self.spares.push(buffers);
                }
                d.stream = Stream::Parked(parked);
                // A resumed stream counts its errors from zero.
                d.meta.errors = 0;
            }
            Err(_) => unreachable!("checked idle"),
        }
    }

    /// The open stream of `stream`, waking a parked one.
    fn open<'a>(&'a mut self, stream: &mut Stream<R>) -> Option<&'a mut AaStream<P, R>> {
        if let Stream::Parked(_) = stream {
            let Stream::Parked(parked) = std::mem::replace(stream, Stream::Unparsed) else {
                unreachable!("matched above")
            };
            *stream = Stream::Open(self.wake(parked));
        }
        match *stream {
            Stream::Open(i) => Some(self.get(i)),
            _ => None,
        }
    }
}

/// The passive observer: a flow table of connections, each direction
/// reassembled and parsed.
pub struct Passive<P: Packet, F: Parsers> {
    table: FlowTable<Conn<F::Parser>>,
    hot: Hot<P, F::Parser>,
    parsers: F,
    cfg: PassiveConfig,
    stats: PassiveStats,
    next_sweep: u64,
}

/// How often (in capture time) idle connections are looked for, at most.
const SWEEP_EVERY_NS: u64 = 1_000_000_000;

impl<P: Packet, F: Parsers> Passive<P, F> {
    /// An observer with no connection yet.
    pub fn new(cfg: PassiveConfig, parsers: F) -> Self {
        Passive {
            table: FlowTable::new(cfg.flows),
            hot: Hot::new(cfg.aa),
            parsers,
            cfg,
            stats: PassiveStats::default(),
            next_sweep: 0,
        }
    }

    /// Counters.
    pub fn stats(&self) -> PassiveStats {
        self.stats
    }

    /// The flow table's counters.
    pub fn flow_stats(&self) -> FlowStats {
        self.table.stats()
    }

    /// Connections tracked now.
    pub fn flows(&self) -> usize {
        self.table.len()
    }

    /// Reserves flow-table room for `n` connections.
    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n);
    }

    /// The parser chooser.
    pub fn parsers(&self) -> &F {
        &self.parsers
    }

    /// [`Passive::frame`] for each frame of a burst, in order, with the data
    /// of the frame [`PREFETCH_AHEAD`] further on brought into the cache
    /// meanwhile ([`aa_runtime::prefetch`]): the frames of a receive ring or
    /// a replayed capture are usually cold, and their first touch, the TCP
    /// checksum, would wait for memory. Returns the TCP segments taken.
    pub fn frames<S: Sink<P, F::Parser>>(
        &mut self,
        decoder: &mut Decoder,
        burst: &[Rx<P>],
        sink: &mut S,
    ) -> usize {
        for rx in burst.iter().take(PREFETCH_AHEAD) {
            aa_runtime::prefetch(rx.packet.data());
        }
        let mut taken = 0;
        for (k, rx) in burst.iter().enumerate() {
            if let Some(ahead) = burst.get(k + PREFETCH_AHEAD) {
                aa_runtime::prefetch(ahead.packet.data());
            }
            taken += usize::from(self.frame(decoder, rx, sink));
        }
        taken
    }

    /// Decodes one received frame ([`Decoder::decode_rx`]: a device's
    /// checksum verdict is taken) and, if it is a TCP segment, takes it.
    /// Returns whether it was a TCP segment (the decoder counts the others).
    pub fn frame<S: Sink<P, F::Parser>>(
        &mut self,
        decoder: &mut Decoder,
        rx: &Rx<P>,
        sink: &mut S,
    ) -> bool {
        match decoder.decode_rx(rx.packet.data(), &rx.meta) {
            Ok(seg) => {
                self.segment(rx.meta.ts, &seg, &rx.packet, sink);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes one TCP segment captured at `now`; `pkt` holds the frame it was
    /// parsed from (its payload is referenced, not copied).
    pub fn segment<S: Sink<P, F::Parser>>(
        &mut self,
        now: Timestamp,
        seg: &Segment,
        pkt: &P,
        sink: &mut S,
    ) {
        self.stats.segments += 1;
        self.stats.payload_bytes += u64::from(seg.payload_len);
        if now.0 >= self.next_sweep {
            self.sweep(now, sink);
        }
        let (key, src_is_lo) = FlowKey::of(seg.src, seg.dst);
        let fresh_syn = seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst();
        if fresh_syn {
            self.end_if_reused(&key, src_is_lo, seg, sink);
        }

        // Find the connection, or decide whether this segment starts one.
        let start = if fresh_syn {
            Some((true, true))
        } else if seg.flags.syn() && !seg.flags.rst() {
            // A SYN-ACK whose SYN was not seen: the sender is the server.
            Some((false, true))
        } else if seg.payload_len > 0 && !seg.flags.rst() && self.cfg.midstream {
            let src_serves = self.parsers.is_server_port(seg.src.1);
            let dst_serves = self.parsers.is_server_port(seg.dst.1);
            let src_is_client = if src_serves != dst_serves {
                dst_serves
            } else {
                seg.src.1 > seg.dst.1
            };
            Some((src_is_client, false))
        } else {
            None
        };
        let parsers = &mut self.parsers;
        let lookup = self.table.get_or_try_insert(key, now, || {
            let (src_is_client, _) = start?;
            let server = if src_is_client { seg.dst } else { seg.src };
            let to_server = parsers.parser(server, Side::Client);
            let to_client = parsers.parser(server, Side::Server);
            if to_server.is_none() && to_client.is_none() {
                return None;
            }
            Some(Conn {
                client_is_lo: src_is_lo == src_is_client,
                dirs: [Dir::new(to_server), Dir::new(to_client)],
            })
        });
        let conn = match lookup {
            Lookup::Found(c) => c,
            Lookup::Created(c) => {
                match start {
                    Some((_, true)) => self.stats.handshakes += 1,
                    _ => self.stats.midstream += 1,
                }
                c
            }
            Lookup::Full => {
                self.stats.refused += 1;
                return;
            }
            Lookup::Declined => {
                self.stats.untracked += 1;
                return;
            }
        };
        let side = if src_is_lo == conn.client_is_lo {
            Side::Client
        } else {
            Side::Server
        };

        if seg.flags.rst() {
            self.stats.accepted += 1;
            self.stats.closed_rst += 1;
            self.close(&key, End::Reset, sink);
            return;
        }

        let hot = &mut self.hot;
        let stats = &mut self.stats;
        let used = Self::take(
            self.cfg.midstream,
            stats,
            hot,
            conn,
            &key,
            side,
            seg,
            pkt,
            sink,
        );
        if seg.flags.ack() {
            Self::acked(stats, hot, conn, &key, side.other(), seg.ack, sink);
        }
        if used {
            stats.accepted += 1;
        } else {
            stats.rejected += 1;
        }
        if conn.dirs.iter().all(Dir::done) {
            stats.closed_fin += 1;
            self.close(&key, End::Fin, sink);
        } else {
            Self::pass_signals(stats, hot, conn, &key, sink);
            for d in &mut conn.dirs {
                hot.park_if_idle(d, &mut stats.records, &mut stats.signals_dropped);
            }
        }
    }

    /// Hands the signals each open direction's parser sent to the other
    /// direction, whatever its state (see [`aa_runtime::signal`]).
    fn pass_signals<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        hot: &mut Hot<P, F::Parser>,
        conn: &mut Conn<F::Parser>,
        key: &FlowKey,
        sink: &mut S,
    ) {
        for from in [Side::Client, Side::Server] {
            let Stream::Open(i) = conn.dirs[from.index()].stream else {
                continue;
            };
            let sent = hot.get(i).take_signals();
            if sent.is_empty() {
                continue;
            }
            let to = from.other();
            match &mut conn.dirs[to.index()].stream {
                Stream::Open(j) => {
                    let s = hot.get(*j);
                    let waited = s.is_waiting();
                    s.give_signals(sent);
                    if waited {
                        // Its parser waited for these (`wait`): what it
                        // parsed since goes out now.
                        let info = conn.info(key, to);
                        Self::settle(stats, &mut conn.dirs[to.index()].meta, s, &info, sink);
                    }
                }
                Stream::Parked(p) => stats.signals_dropped += p.give_signals(sent),
                Stream::Waiting(_, pending) => stats.signals_dropped += pending.append(sent),
                Stream::Unparsed => {}
            }
        }
    }

    /// A SYN on a tracked 4-tuple that is not a retransmission of its SYN
    /// starts a new connection: the old one ends.
    fn end_if_reused<S: Sink<P, F::Parser>>(
        &mut self,
        key: &FlowKey,
        src_is_lo: bool,
        seg: &Segment,
        sink: &mut S,
    ) {
        let Some(conn) = self.table.get(key) else {
            return;
        };
        let client = &conn.dirs[Side::Client.index()];
        let same = src_is_lo == conn.client_is_lo
            && client.meta.first_seq == Some(seg.seq.wrapping_add(1));
        if !same {
            self.stats.closed_reused += 1;
            self.close(key, End::Reused, sink);
        }
    }

    /// Handles the SYN, data and FIN of one segment from `side`. Returns whether
    /// the segment was of use.
    #[allow(clippy::too_many_arguments)]
    fn take<S: Sink<P, F::Parser>>(
        midstream: bool,
        stats: &mut PassiveStats,
        hot: &mut Hot<P, F::Parser>,
        conn: &mut Conn<F::Parser>,
        key: &FlowKey,
        side: Side,
        seg: &Segment,
        pkt: &P,
        sink: &mut S,
    ) -> bool {
        let client_is_lo = conn.client_is_lo;
        // The other direction's parser gives this one its signals.
        let paired = !matches!(conn.dirs[side.other().index()].stream, Stream::Unparsed);
        let d = &mut conn.dirs[side.index()];
        let mut used = false;
        if seg.flags.syn() && matches!(d.stream, Stream::Unparsed | Stream::Waiting(..)) {
            d.meta.first_seq = Some(seg.seq.wrapping_add(1));
            used = true;
        }
        let data_seq = if seg.flags.syn() {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        if seg.payload_len == 0 && !seg.flags.fin() {
            return used || seg.flags.ack();
        }
        if d.meta.finished {
            return false;
        }
        // The stream starts at the first sequence number known.
        if let Stream::Waiting(..) = d.stream {
            let first = match d.meta.first_seq {
                Some(s) => s,
                None if midstream => data_seq,
                None => return false,
            };
            let Stream::Waiting(parser, signals) =
                std::mem::replace(&mut d.stream, Stream::Unparsed)
            else {
                unreachable!("matched above")
            };
            d.stream = Stream::Parked(Parked {
                parser,
                seq: first,
                offset: 0,
                signals,
            });
            d.meta.high = first;
        }
        if seg.flags.fin() {
            d.meta.fin = Some(data_seq.wrapping_add(seg.payload_len));
            used = true;
        }
        let Some(s) = hot.open(&mut d.stream) else {
            // Unparsed: only the FIN matters.
            return used;
        };
        s.expect_signals(paired);
        if seg.payload_len > 0 {
            // Data on a SYN is legal (rare): its first byte follows the SYN.
            let r = s.insert(data_seq.0, pkt.clone(), seg.payload_range());
            // Bytes dropped at a cap were sent and become a gap; bytes beyond
            // the window are not believed.
            let end = data_seq.wrapping_add(seg.payload_len);
            if r != Insert::OutOfWindow && end.after(d.meta.high) {
                d.meta.high = end;
            }
            match r {
                Insert::InOrder { .. } => used = true,
                Insert::OutOfOrder => {
                    stats.out_of_order += 1;
                    used = true;
                }
                Insert::Duplicate => {
                    stats.duplicates += 1;
                    used = true;
                }
                Insert::Empty => {}
                Insert::OutOfWindow => stats.out_of_window += 1,
                Insert::OverCap => stats.over_cap += 1,
            }
        }
        let info = DirInfo::of(key, client_is_lo, side);
        Self::settle(stats, &mut d.meta, s, &info, sink);
        used
    }

    /// `side` acknowledged up to `ack`: bytes of `side`'s incoming direction
    /// before it that were not seen never will be.
    fn acked<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        hot: &mut Hot<P, F::Parser>,
        conn: &mut Conn<F::Parser>,
        key: &FlowKey,
        side: Side,
        ack: SeqNum,
        sink: &mut S,
    ) {
        let client_is_lo = conn.client_is_lo;
        let d = &mut conn.dirs[side.index()];
        if d.meta.finished {
            return;
        }
        let nxt = match &d.stream {
            Stream::Open(i) => hot.get(*i).stream().rcv_nxt(),
            Stream::Parked(p) => p.seq,
            Stream::Unparsed | Stream::Waiting(..) => return,
        };
        // The FIN takes one sequence number; data ends before it.
        let target = match d.meta.fin {
            Some(f) if !ack.before(f) => f,
            _ => ack,
        };
        if !target.after(nxt) {
            return;
        }
        // Acknowledging data far beyond anything sent is not believable; a
        // believable ack past the highest byte seen means the tail was lost.
        let limit = u64::from(hot.cfg.stream.recv_buffer).max(1 << 20);
        if target.diff(nxt) as u64 > limit {
            stats.bogus_acks += 1;
            return;
        }
        if target.after(d.meta.high) {
            d.meta.high = target;
        }
        if let Some(s) = hot.open(&mut d.stream) {
            let info = DirInfo::of(key, client_is_lo, side);
            Self::skip(stats, s, &info, target, sink);
            Self::settle(stats, &mut d.meta, s, &info, sink);
        }
    }

    /// Declares lost the holes before `target`, one gap event each.
    fn skip<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        s: &mut AaStream<P, F::Parser>,
        info: &DirInfo,
        target: SeqNum,
        sink: &mut S,
    ) {
        loop {
            let z = s.stream();
            let nxt = z.rcv_nxt();
            if !target.after(nxt) {
                break;
            }
            let hole_end = match z.next_queued() {
                Some(q) if q.before(target) => q,
                _ => target,
            };
            let offset = z.rcv_nxt_offset();
            let n = s.skip_to(hole_end);
            if n == 0 {
                break;
            }
            stats.gaps += 1;
            stats.gap_bytes += n;
            sink.gap(info, offset, n);
            Self::deliver(s, info, sink);
        }
    }

    /// Hands ready records to the sink until none is left: freeing records
    /// lets a parser paused on a full queue go on and make more. Stops when the
    /// sink frees nothing (it keeps its records; the queue stays full).
    fn deliver<S: Sink<P, F::Parser>>(
        s: &mut AaStream<P, F::Parser>,
        info: &DirInfo,
        sink: &mut S,
    ) {
        while s.ready() > 0 {
            let freed = s.stats().freed;
            sink.records(info, s);
            if s.stats().freed == freed {
                break;
            }
        }
    }

    /// Hands out ready records, reports a failure once, finishes the stream
    /// when its FIN is reached.
    fn settle<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        m: &mut Meta,
        s: &mut AaStream<P, F::Parser>,
        info: &DirInfo,
        sink: &mut S,
    ) {
        if !m.finished && m.fin == Some(s.stream().rcv_nxt()) {
            Self::deliver(s, info, sink);
            s.finish();
            m.finished = true;
        }
        Self::deliver(s, info, sink);
        let errors = s.stats().errors;
        if errors > u64::from(m.errors) {
            stats.errors += errors - u64::from(m.errors);
            m.errors = errors.min(u64::from(u32::MAX)) as u32;
        }
        // Every error the sink did not take among its records, in order.
        while let Some(e) = s.take_error() {
            sink.error(info, &e.error);
        }
    }

    /// Ends a direction that will get nothing more: holes up to its FIN or its
    /// highest byte are gaps, then the parser finishes.
    fn end_dir<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        hot: &mut Hot<P, F::Parser>,
        d: &mut Dir<F::Parser>,
        info: &DirInfo,
        sink: &mut S,
    ) {
        if d.meta.finished {
            return;
        }
        let Some(s) = hot.open(&mut d.stream) else {
            return;
        };
        let target = d.meta.fin.unwrap_or(d.meta.high);
        Self::skip(stats, s, info, target, sink);
        Self::deliver(s, info, sink);
        s.finish();
        d.meta.finished = true;
        Self::settle(stats, &mut d.meta, s, info, sink);
    }

    /// Removes a connection, ending both directions.
    fn close<S: Sink<P, F::Parser>>(&mut self, key: &FlowKey, end: End, sink: &mut S) {
        if let Some(conn) = self.table.remove(key) {
            Self::finish_conn(&mut self.stats, &mut self.hot, *key, conn, end, sink);
        }
    }

    fn finish_conn<S: Sink<P, F::Parser>>(
        stats: &mut PassiveStats,
        hot: &mut Hot<P, F::Parser>,
        key: FlowKey,
        mut conn: Conn<F::Parser>,
        end: End,
        sink: &mut S,
    ) {
        for side in [Side::Client, Side::Server] {
            let info = conn.info(&key, side);
            let d = &mut conn.dirs[side.index()];
            Self::end_dir(stats, hot, d, &info, sink);
            if let Stream::Open(i) = d.stream {
                // Dropping the stream releases every packet it still holds.
                let s = hot.take(i).stats();
                stats.records += s.records;
                stats.signals_dropped += s.signals_dropped;
            }
        }
        let (client, server) = conn.endpoints(&key);
        sink.closed(client, server, end);
    }

    /// Evicts connections idle for longer than the timeout (at most once per
    /// second of capture time).
    fn sweep<S: Sink<P, F::Parser>>(&mut self, now: Timestamp, sink: &mut S) {
        self.next_sweep = now.0.saturating_add(SWEEP_EVERY_NS);
        let (stats, hot) = (&mut self.stats, &mut self.hot);
        self.table.expire(now, |key, conn| {
            stats.closed_idle += 1;
            Self::finish_conn(stats, hot, key, conn, End::Idle, sink);
        });
    }

    /// The input ended: every connection still tracked is ended (holes become
    /// gaps, parsers finish) and removed, in 4-tuple order.
    pub fn finish<S: Sink<P, F::Parser>>(&mut self, sink: &mut S) {
        let (stats, hot) = (&mut self.stats, &mut self.hot);
        self.table.drain(|key, conn| {
            stats.closed_input += 1;
            Self::finish_conn(stats, hot, key, conn, End::Input, sink);
        });
    }
}

/// Formats an endpoint as `addr:port`, IPv6 in brackets.
pub fn fmt_endpoint(ep: &Endpoint, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    match ep.0 {
        IpAddr::V4(a) => write!(out, "{a}:{}", ep.1),
        IpAddr::V6(a) => write!(out, "[{a}]:{}", ep.1),
    }
}
