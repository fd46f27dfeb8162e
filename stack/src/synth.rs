//! Synthetic captures: TCP conversations with known content, deterministic
//! from a seed, and the ground truth a passive observer must reconstruct.
//!
//! A [`Dialogue`] says what each side writes, in order (the content
//! generators [`http_keepalive`], [`http_chunked`], [`http_pipelined`],
//! [`http_fixed_bodies`], [`csv_rows`] and [`csv_fixed_fields`] make
//! realistic ones). A [`Conversation`] puts a dialogue on a TCP connection
//! and yields the frames a capture point between client and server sees:
//!
//! - a three-way handshake (SYN and SYN-ACK with MSS, SACK-permitted,
//!   timestamps and window scale, the way Linux lays them out), then
//!   timestamps on every segment, TSval advancing with the capture clock in
//!   milliseconds from a per-side random base, TSecr echoing the peer;
//! - each write cut into segments of at most the MSS (default
//!   [`DEFAULT_MSS`]), PSH on the last one;
//! - the receiver's pure ACKs: one for every second in-order segment, an
//!   immediate one for a segment out of order or already received, one at
//!   the end of a write unless the receiver speaks next (then its next
//!   segment carries the acknowledgment);
//! - a FIN / FIN-ACK / ACK teardown or a RST ([`Close`]).
//!
//! [`Impairments`] apply per direction to the data segments: reordering
//! within a window of two or three segments, duplicates, retransmissions
//! that overlap two segments with the same bytes, and one segment the
//! capture never sees although the receiver got it (its ACKs go past it).
//! Impaired segments never overlap each other, and nothing else carries
//! the lost segment's bytes, so those bytes are exactly a gap.
//!
//! A [`Capture`] interleaves conversations round-robin, one event of each in
//! turn, on one clock in whole microseconds, and returns the frames
//! (Ethernet) with a [`FlowTruth`] per conversation: the 4-tuple, the ISNs,
//! the bytes each side sent and the byte ranges the capture lost.
//!
//! Everything depends only on the seeds (a splitmix64 generator), so the
//! same arguments give the same bytes on every platform. The captures
//! committed under `data/captures` are [`standard_captures`], written by
//! `cargo run -p aa-stack --example gen_captures`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};

use crate::frame::TcpFrame;
use crate::io::pcap::{CaptureFormat, PcapWriter, TsPrecision};
use crate::io::{IoError, Timestamp};
use crate::wire::{LinkType, TcpFlags, TcpOpts};

/// Default maximum segment payload: 1460 (Ethernet) minus 12 bytes of
/// timestamps option.
pub const DEFAULT_MSS: usize = 1448;

/// Bytes the timestamps option takes in every segment (10 and NOP padding);
/// the SYN announces the MSS plus this.
const TS_OPTION_LEN: usize = 12;
/// Window scale both sides announce.
const WSCALE: u8 = 7;
/// Window fields of SYN and SYN-ACK (unscaled), by side (Linux defaults).
const SYN_WINDOW: [u16; 2] = [64240, 65160];
/// Window fields once scaled, by side.
const WINDOW: [u16; 2] = [502, 509];

// ---------------------------------------------------------------------------
// Deterministic randomness.

/// splitmix64: small, fast, and the same sequence everywhere.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `range` (not empty).
    fn range(&mut self, range: RangeInclusive<usize>) -> usize {
        range.start() + self.below(range.end() - range.start() + 1)
    }

    /// Microseconds uniform in `range`.
    fn micros(&mut self, range: RangeInclusive<usize>) -> u64 {
        self.range(range) as u64
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An independent generator, so one consumer's draws do not shift
    /// another's.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

// ---------------------------------------------------------------------------
// Dialogues.

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that sends the SYN.
    Client,
    /// The side that answers it.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a conversation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Close {
    /// This side sends FIN, the peer answers FIN-ACK, this side ACKs.
    Fin(Side),
    /// This side sends RST (with ACK).
    Rst(Side),
}

impl Close {
    /// The side that ends the connection.
    pub fn side(self) -> Side {
        match self {
            Close::Fin(side) | Close::Rst(side) => side,
        }
    }
}

/// What each side of a connection writes, in order: a list of writes.
/// Each write starts new segments; consecutive writes of one side follow
/// each other without waiting for the peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dialogue {
    writes: Vec<(Side, Vec<u8>)>,
}

impl Dialogue {
    /// An empty dialogue.
    pub fn new() -> Dialogue {
        Dialogue::default()
    }

    /// One side writes `bytes` and the other says nothing.
    pub fn one_way(side: Side, bytes: impl Into<Vec<u8>>) -> Dialogue {
        let mut d = Dialogue::new();
        d.push(side, bytes);
        d
    }

    /// Appends a write; an empty one is ignored.
    pub fn push(&mut self, side: Side, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            self.writes.push((side, bytes));
        }
    }

    /// The writes, in order.
    pub fn writes(&self) -> &[(Side, Vec<u8>)] {
        &self.writes
    }

    /// Everything `side` writes, concatenated: its application stream.
    pub fn stream(&self, side: Side) -> Vec<u8> {
        self.writes
            .iter()
            .filter(|(s, _)| *s == side)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    /// The client's stream (requests).
    pub fn to_server(&self) -> Vec<u8> {
        self.stream(Side::Client)
    }

    /// The server's stream (responses).
    pub fn to_client(&self) -> Vec<u8> {
        self.stream(Side::Server)
    }
}

// ---------------------------------------------------------------------------
// Impairments.

/// What happens to one direction's data segments between the sender and
/// the capture point. Counts are upper bounds: a stream with too few
/// segments (or writes of one segment, for the pair-wise ones) gets fewer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Impairments {
    /// Runs of two or three consecutive segments of one write whose last
    /// segment is sent first.
    pub reorders: usize,
    /// Segments sent again, identical, one or two segments later.
    pub duplicates: usize,
    /// Retransmissions of the second half of a segment and the first half of
    /// the next (same bytes), sent after both.
    pub overlaps: usize,
    /// Whether one data segment (never the first or the last of the stream)
    /// is missing from the capture. The receiver got it and acknowledges
    /// past it; [`FlowTruth`] lists its bytes as lost.
    pub lose_one: bool,
}

impl Impairments {
    /// No impairment.
    pub const NONE: Impairments = Impairments {
        reorders: 0,
        duplicates: 0,
        overlaps: 0,
        lose_one: false,
    };

    /// Two of each, and one lost segment.
    pub const MIXED: Impairments = Impairments {
        reorders: 2,
        duplicates: 2,
        overlaps: 2,
        lose_one: true,
    };
}

/// One transmission of data: a range of the sender's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tx {
    data: Range<usize>,
    psh: bool,
    captured: bool,
}

/// The order one side sends its segments in, write by write, after
/// `imp`; and the ranges the capture misses. `writes` holds each write's
/// segments in stream order.
fn schedule(
    writes: &[Vec<Range<usize>>],
    imp: Impairments,
    rng: &mut Rng,
) -> (Vec<Vec<Tx>>, Vec<Range<usize>>) {
    let mut sched: Vec<Vec<Tx>> = writes
        .iter()
        .map(|segs| {
            segs.iter()
                .enumerate()
                .map(|(i, data)| Tx {
                    data: data.clone(),
                    psh: i + 1 == segs.len(),
                    captured: true,
                })
                .collect()
        })
        .collect();
    // Every segment of the stream as (write, index in write); each impairment
    // takes segments no other one has taken.
    let flat: Vec<(usize, usize)> = writes
        .iter()
        .enumerate()
        .flat_map(|(w, segs)| (0..segs.len()).map(move |i| (w, i)))
        .collect();
    let mut taken = vec![false; flat.len()];

    let mut lost = Vec::new();
    if imp.lose_one && flat.len() >= 3 {
        let k = 1 + rng.below(flat.len() - 2);
        taken[k] = true;
        let (w, i) = flat[k];
        sched[w][i].captured = false;
        lost.push(writes[w][i].clone());
    }
    let reorders: Vec<(usize, usize)> = (0..imp.reorders)
        .filter_map(|_| {
            let width = 2 + rng.below(2);
            pick_run(&flat, &mut taken, width, rng)
                .map(|k| (k, width))
                .or_else(|| pick_run(&flat, &mut taken, 2, rng).map(|k| (k, 2)))
        })
        .collect();
    let overlaps: Vec<usize> = (0..imp.overlaps)
        .filter_map(|_| pick_run(&flat, &mut taken, 2, rng))
        .collect();
    let duplicates: Vec<usize> = (0..imp.duplicates)
        .filter_map(|_| pick_run(&flat, &mut taken, 1, rng))
        .collect();

    // Reorders first, while every segment is still at its own index.
    for (k, width) in reorders {
        let (w, i) = flat[k];
        sched[w][i..i + width].rotate_right(1);
    }
    for k in overlaps {
        let (w, i) = flat[k];
        let (a, b) = (&writes[w][i], &writes[w][i + 1]);
        let tx = Tx {
            data: a.start + a.len() / 2..b.start + b.len().div_ceil(2),
            psh: false,
            captured: true,
        };
        retransmit(&mut sched[w], b.start, tx, rng);
    }
    for k in duplicates {
        let (w, i) = flat[k];
        let tx = sched[w]
            .iter()
            .find(|t| t.data == writes[w][i])
            .cloned()
            .expect("an original is in its write");
        retransmit(&mut sched[w], tx.data.start, tx, rng);
    }
    (sched, lost)
}

/// Takes a random run of `width` consecutive segments of one write that no
/// impairment has taken yet; returns its first index in `flat`.
fn pick_run(
    flat: &[(usize, usize)],
    taken: &mut [bool],
    width: usize,
    rng: &mut Rng,
) -> Option<usize> {
    let starts: Vec<usize> = (0..flat.len().saturating_sub(width - 1))
        .filter(|&k| (k..k + width).all(|j| !taken[j] && flat[j].0 == flat[k].0))
        .collect();
    if starts.is_empty() {
        return None;
    }
    let k = starts[rng.below(starts.len())];
    taken[k..k + width].fill(true);
    Some(k)
}

/// Inserts `tx` one or two transmissions after the original that starts at
/// stream offset `after` (the first transmission starting there).
fn retransmit(write: &mut Vec<Tx>, after: usize, tx: Tx, rng: &mut Rng) {
    let pos = write
        .iter()
        .position(|t| t.data.start == after)
        .expect("the original is in its write");
    let at = (pos + 1 + rng.below(2)).min(write.len());
    write.insert(at, tx);
}

// ---------------------------------------------------------------------------
// Conversations.

/// A TCP connection carrying a [`Dialogue`]; see the [module](self) for what
/// it sends. Build it, then make a [`Capture`] of it alone
/// ([`Conversation::capture`]) or with others ([`Capture::interleave`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    dialogue: Dialogue,
    seed: u64,
    mss: usize,
    isn: [u32; 2],
    impair: [Impairments; 2],
    close: Close,
}

impl Conversation {
    /// A connection from `client` to `server` carrying `dialogue`, with ISNs,
    /// TCP timestamps bases and timing drawn from `seed`, MSS
    /// [`DEFAULT_MSS`], no impairment, closed by the client with FIN.
    ///
    /// # Panics
    /// If the addresses are of different IP families.
    pub fn new(
        client: SocketAddr,
        server: SocketAddr,
        dialogue: Dialogue,
        seed: u64,
    ) -> Conversation {
        assert_eq!(
            client.is_ipv4(),
            server.is_ipv4(),
            "client and server of different IP families"
        );
        let mut rng = Rng::new(seed);
        Conversation {
            client,
            server,
            dialogue,
            seed,
            mss: DEFAULT_MSS,
            isn: [rng.next_u32(), rng.next_u32()],
            impair: [Impairments::NONE; 2],
            close: Close::Fin(Side::Client),
        }
    }

    /// Sets the largest segment payload (the SYNs announce it plus 12 for the
    /// timestamps option).
    ///
    /// # Panics
    /// Outside `1..=9000`.
    pub fn mss(mut self, mss: usize) -> Self {
        assert!((1..=9000).contains(&mss), "MSS {mss} outside 1..=9000");
        self.mss = mss;
        self
    }

    /// Sets the initial sequence number of `side`.
    pub fn isn(mut self, side: Side, isn: u32) -> Self {
        self.isn[side.index()] = isn;
        self
    }

    /// Sets the ISN of `side` so that its sequence numbers wrap past 2^32
    /// at stream offset `offset`: the byte at `offset` has sequence number 0.
    pub fn wrap_at(self, side: Side, offset: u32) -> Self {
        self.isn(side, 0u32.wrapping_sub(offset).wrapping_sub(1))
    }

    /// Sets the impairments of the data `side` sends.
    pub fn impair(mut self, side: Side, impairments: Impairments) -> Self {
        self.impair[side.index()] = impairments;
        self
    }

    /// Sets how the connection ends.
    pub fn close(mut self, close: Close) -> Self {
        self.close = close;
        self
    }

    /// A capture of this conversation alone, starting at `start`.
    pub fn capture(&self, start: Timestamp) -> Capture {
        Capture::interleave(start, std::slice::from_ref(self))
    }

    /// Every event of the connection, with the truth about it.
    fn plan(&self) -> Plan {
        let mut rng = Rng::new(self.seed);
        // The ISNs' draws, replayed so what follows does not depend on them.
        rng.next_u64();
        rng.next_u64();
        let ts_base = [rng.next_u32(), rng.next_u32()];

        // Segment every write, then schedule each side's writes.
        let mut writes: [Vec<Vec<Range<usize>>>; 2] = Default::default();
        let mut end = [0usize; 2];
        for (side, bytes) in self.dialogue.writes() {
            let s = side.index();
            let start = end[s];
            end[s] += bytes.len();
            writes[s].push(
                (start..end[s])
                    .step_by(self.mss)
                    .map(|a| a..(a + self.mss).min(end[s]))
                    .collect(),
            );
        }
        let (mut scheds, lost): (Vec<_>, Vec<_>) = writes
            .iter()
            .zip(self.impair)
            .map(|(writes, imp)| schedule(writes, imp, &mut rng.fork()))
            .unzip();

        let mut planner = Planner {
            isn: self.isn,
            rng,
            events: Vec::new(),
            sent: [0; 2],
            rcvd: [0; 2],
            fin_sent: [false; 2],
        };
        planner.handshake();
        let mut next_write = [0usize; 2];
        for (n, (side, _)) in self.dialogue.writes().iter().enumerate() {
            let s = side.index();
            let txs = std::mem::take(&mut scheds[s][next_write[s]]);
            next_write[s] += 1;
            let next_speaker = match self.dialogue.writes().get(n + 1) {
                Some((next, _)) => *next,
                None => self.close.side(),
            };
            planner.write(*side, &txs, next_speaker);
        }
        planner.close(self.close);

        let lost64 = |s: usize| {
            lost[s]
                .iter()
                .map(|r| r.start as u64..r.end as u64)
                .collect()
        };
        Plan {
            events: planner.events,
            ts_base,
            announced_mss: (self.mss + TS_OPTION_LEN) as u16,
            truth: FlowTruth {
                client: self.client,
                server: self.server,
                client_isn: self.isn[0],
                server_isn: self.isn[1],
                to_server: self.dialogue.to_server(),
                to_client: self.dialogue.to_client(),
                lost_to_server: lost64(0),
                lost_to_client: lost64(1),
                close: self.close,
            },
        }
    }
}

/// One segment of a conversation, before it becomes a frame.
#[derive(Clone, Debug)]
struct Event {
    side: Side,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    /// Payload: a range of `side`'s stream.
    data: Range<usize>,
    /// Microseconds since the previous event of the capture.
    gap_us: u64,
    captured: bool,
}

/// Builds a conversation's events: the sequence space of both sides and the
/// receiver's acknowledgment policy.
struct Planner {
    isn: [u32; 2],
    rng: Rng,
    events: Vec<Event>,
    /// Stream bytes each side has sent.
    sent: [usize; 2],
    /// Stream bytes each side has received in order.
    rcvd: [usize; 2],
    fin_sent: [bool; 2],
}

impl Planner {
    /// The next sequence number of `side` (`offset` bytes into its stream).
    fn seq(&self, side: Side, offset: usize) -> u32 {
        let s = side.index();
        self.isn[s]
            .wrapping_add(1)
            .wrapping_add(offset as u32)
            .wrapping_add(u32::from(self.fin_sent[s]))
    }

    /// What `side` acknowledges.
    fn ack(&self, side: Side) -> u32 {
        let p = side.peer().index();
        self.isn[p]
            .wrapping_add(1)
            .wrapping_add(self.rcvd[side.index()] as u32)
            .wrapping_add(u32::from(self.fin_sent[p]))
    }

    fn push(
        &mut self,
        side: Side,
        flags: TcpFlags,
        data: Range<usize>,
        gap_us: u64,
        captured: bool,
    ) {
        let offset = if data.is_empty() {
            self.sent[side.index()]
        } else {
            data.start
        };
        self.events.push(Event {
            side,
            seq: self.seq(side, offset),
            ack: self.ack(side),
            flags,
            data,
            gap_us,
            captured,
        });
    }

    /// A segment without data, flags ACK plus `flags`.
    fn control(&mut self, side: Side, flags: TcpFlags, gap_us: u64) {
        self.push(side, TcpFlags::ACK | flags, 0..0, gap_us, true);
    }

    /// The SYN of `side`: the client's alone, the server's with an ACK.
    fn syn(&mut self, side: Side, gap_us: u64) {
        let (flags, ack) = match side {
            Side::Client => (TcpFlags::SYN, 0),
            Side::Server => (TcpFlags::SYN | TcpFlags::ACK, self.ack(side)),
        };
        self.events.push(Event {
            side,
            seq: self.isn[side.index()],
            ack,
            flags,
            data: 0..0,
            gap_us,
            captured: true,
        });
    }

    fn handshake(&mut self) {
        let gap = self.rng.micros(1..=400);
        self.syn(Side::Client, gap);
        let rtt = self.rng.micros(200..=2000);
        self.syn(Side::Server, rtt);
        let gap = self.rng.micros(20..=rtt as usize);
        self.control(Side::Client, TcpFlags::default(), gap);
    }

    /// One write of `side`, and the peer's acknowledgments.
    fn write(&mut self, side: Side, txs: &[Tx], next_speaker: Side) {
        let (s, receiver) = (side.index(), side.peer());
        let r = receiver.index();
        // The receiver's out-of-order ranges, and in-order segments it has
        // not acknowledged yet.
        let mut ooo: Vec<Range<usize>> = Vec::new();
        let mut unacked = 0;
        for (i, tx) in txs.iter().enumerate() {
            let gap = if i == 0 {
                self.rng.micros(500..=12_000)
            } else {
                self.rng.micros(8..=40)
            };
            let flags = if tx.psh {
                TcpFlags::ACK | TcpFlags::PSH
            } else {
                TcpFlags::ACK
            };
            self.push(side, flags, tx.data.clone(), gap, tx.captured);
            self.sent[s] = self.sent[s].max(tx.data.end);

            let nxt = self.rcvd[r];
            let immediate = if tx.data.start == nxt && ooo.is_empty() {
                self.rcvd[r] = tx.data.end;
                unacked += 1;
                unacked == 2
            } else {
                // Out of order, filling a hole, or already received: Linux
                // acknowledges at once.
                if tx.data.start > nxt {
                    ooo.push(tx.data.clone());
                } else {
                    self.rcvd[r] = nxt.max(tx.data.end);
                    while let Some(k) = ooo.iter().position(|o| o.start <= self.rcvd[r]) {
                        self.rcvd[r] = self.rcvd[r].max(ooo.swap_remove(k).end);
                    }
                }
                true
            };
            if immediate {
                let gap = self.rng.micros(15..=80);
                self.control(receiver, TcpFlags::default(), gap);
                unacked = 0;
            }
        }
        if unacked > 0 && next_speaker != receiver {
            let gap = self.rng.micros(15..=80);
            self.control(receiver, TcpFlags::default(), gap);
        }
    }

    fn close(&mut self, close: Close) {
        let gap = self.rng.micros(500..=12_000);
        match close {
            Close::Rst(side) => self.control(side, TcpFlags::RST, gap),
            Close::Fin(side) => {
                let peer = side.peer();
                self.control(side, TcpFlags::FIN, gap);
                self.fin_sent[side.index()] = true;
                let gap = self.rng.micros(50..=2000);
                self.control(peer, TcpFlags::FIN, gap);
                self.fin_sent[peer.index()] = true;
                let gap = self.rng.micros(50..=2000);
                self.control(side, TcpFlags::default(), gap);
            }
        }
    }
}

/// A planned conversation: its events and what a renderer needs besides.
struct Plan {
    events: Vec<Event>,
    ts_base: [u32; 2],
    announced_mss: u16,
    truth: FlowTruth,
}

/// A conversation being turned into frames, event by event.
struct Replay {
    plan: Plan,
    next: usize,
    /// Capture time of the first event, in nanoseconds.
    start_ns: Option<u64>,
    /// The TSval each side sent last.
    last_tsval: [u32; 2],
}

impl Replay {
    fn new(conv: &Conversation) -> Replay {
        Replay {
            plan: conv.plan(),
            next: 0,
            start_ns: None,
            last_tsval: [0; 2],
        }
    }

    /// Advances `clock` by the next event's gap and appends its frame if the
    /// capture sees it; false when there is no event left.
    fn step(&mut self, clock: &mut u64, out: &mut Vec<(Timestamp, Vec<u8>)>) -> bool {
        let Some(e) = self.plan.events.get(self.next) else {
            return false;
        };
        self.next += 1;
        *clock += e.gap_us * 1000;
        let start = *self.start_ns.get_or_insert(*clock);
        let (s, p) = (e.side.index(), e.side.peer().index());
        let tsval = self.plan.ts_base[s].wrapping_add(((*clock - start) / 1_000_000) as u32);
        let tsecr = if e.flags.ack() { self.last_tsval[p] } else { 0 };
        self.last_tsval[s] = tsval;
        if !e.captured {
            return true;
        }

        let truth = &self.plan.truth;
        let (window, opts) = if e.flags.syn() {
            let opts = TcpOpts {
                mss: Some(self.plan.announced_mss),
                wscale: Some(WSCALE),
                sack_permitted: true,
                timestamps: Some((tsval, tsecr)),
                malformed: false,
            };
            (SYN_WINDOW[s], opts)
        } else {
            let opts = TcpOpts {
                timestamps: Some((tsval, tsecr)),
                ..TcpOpts::default()
            };
            (WINDOW[s], opts)
        };
        let (src, dst) = (truth.addr(e.side), truth.addr(e.side.peer()));
        let mut frame = TcpFrame::new((src.ip(), src.port()), (dst.ip(), dst.port()))
            .seq(e.seq)
            .ack(e.ack)
            .flags(e.flags)
            .window(window)
            .opts(opts);
        frame.src_mac = mac(e.side);
        frame.dst_mac = mac(e.side.peer());
        let bytes = frame
            .build(&truth.sent(e.side)[e.data.clone()])
            .expect("one IP family and a payload within the MSS");
        out.push((Timestamp(*clock), bytes));
        true
    }
}

/// Locally administered MAC of a side.
fn mac(side: Side) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, 1 + side.index() as u8]
}

// ---------------------------------------------------------------------------
// Captures and their truth.

/// What a passive observer of one conversation must reconstruct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTruth {
    /// Client address and port.
    pub client: SocketAddr,
    /// Server address and port.
    pub server: SocketAddr,
    /// The client's initial sequence number (its first data byte is ISN + 1).
    pub client_isn: u32,
    /// The server's initial sequence number.
    pub server_isn: u32,
    /// Every byte the client sent.
    pub to_server: Vec<u8>,
    /// Every byte the server sent.
    pub to_client: Vec<u8>,
    /// Ranges of `to_server` (offsets from its first byte) no captured frame
    /// carries.
    pub lost_to_server: Vec<Range<u64>>,
    /// Ranges of `to_client` no captured frame carries.
    pub lost_to_client: Vec<Range<u64>>,
    /// How the connection ended.
    pub close: Close,
}

impl FlowTruth {
    /// The address and port of `side`.
    pub fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    /// The initial sequence number of `side`.
    pub fn isn(&self, side: Side) -> u32 {
        match side {
            Side::Client => self.client_isn,
            Side::Server => self.server_isn,
        }
    }

    /// Every byte `side` sent.
    pub fn sent(&self, side: Side) -> &[u8] {
        match side {
            Side::Client => &self.to_server,
            Side::Server => &self.to_client,
        }
    }

    /// The ranges of what `side` sent that the capture lost.
    pub fn lost(&self, side: Side) -> &[Range<u64>] {
        match side {
            Side::Client => &self.lost_to_server,
            Side::Server => &self.lost_to_client,
        }
    }
}

/// Ethernet frames with their capture times, and the truth about every
/// conversation in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Frames in capture order; timestamps are whole microseconds and grow.
    pub frames: Vec<(Timestamp, Vec<u8>)>,
    /// One per conversation, in the order they were given.
    pub flows: Vec<FlowTruth>,
}

impl Capture {
    /// The conversations' frames interleaved round-robin (one event of each
    /// in turn, those that have ended dropping out) on one clock: capture
    /// times are `start` plus whole microseconds.
    pub fn interleave(start: Timestamp, convs: &[Conversation]) -> Capture {
        let mut replays: Vec<Replay> = convs.iter().map(Replay::new).collect();
        let mut clock = start.0;
        let mut frames = Vec::new();
        let mut live = true;
        while live {
            live = false;
            for r in &mut replays {
                live |= r.step(&mut clock, &mut frames);
            }
        }
        Capture {
            frames,
            flows: replays.into_iter().map(|r| r.plan.truth).collect(),
        }
    }

    /// Writes the frames as a pcap file (microsecond timestamps, Ethernet).
    pub fn write_pcap<W: Write>(&self, out: W) -> Result<W, IoError> {
        self.write(PcapWriter::pcap(
            out,
            LinkType::Ethernet,
            TsPrecision::Micro,
        )?)
    }

    /// Writes the frames as a pcapng file (one Ethernet interface).
    pub fn write_pcapng<W: Write>(&self, out: W) -> Result<W, IoError> {
        self.write(PcapWriter::pcapng(out, LinkType::Ethernet)?)
    }

    /// The bytes of the capture file in `format`.
    pub fn encode(&self, format: CaptureFormat) -> Result<Vec<u8>, IoError> {
        match format {
            CaptureFormat::Pcap => self.write_pcap(Vec::new()),
            CaptureFormat::PcapNg => self.write_pcapng(Vec::new()),
        }
    }

    fn write<W: Write>(&self, mut w: PcapWriter<W>) -> Result<W, IoError> {
        for (ts, frame) in &self.frames {
            w.write(*ts, frame)?;
        }
        w.finish()
    }
}

// ---------------------------------------------------------------------------
// Content: HTTP/1.1.

const WORDS: [&str; 24] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "yankee",
];
const HOSTS: [&str; 3] = ["www.example.com", "api.example.org", "static.example.net"];
const AGENTS: [&str; 3] = [
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "python-requests/2.31.0",
];
const SERVERS: [&str; 3] = ["nginx/1.24.0", "Apache/2.4.58 (Unix)", "aa-synth/0.1"];

/// A resource a GET can fetch: path and content type (see [`body`]).
const RESOURCES: [(&str, &str); 6] = [
    ("/", "text/html; charset=utf-8"),
    ("/static/app.js", "application/javascript"),
    ("/api/v1/items", "application/json"),
    ("/downloads/blob.bin", "application/octet-stream"),
    ("/styles/main.css", "text/css"),
    ("/docs/readme.txt", "text/plain"),
];

/// The kind of one request/response pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// GET, 200 with a body.
    Get,
    /// POST with a form body, 200 with a JSON body.
    Post,
    /// PUT with a JSON body, 204 without one.
    NoContent,
    /// GET with If-None-Match, 304 without a body.
    NotModified,
    /// GET, 404 with an HTML body.
    NotFound,
}

impl Kind {
    fn random(rng: &mut Rng) -> Kind {
        match rng.below(10) {
            0 => Kind::NoContent,
            1 => Kind::NotModified,
            2 => Kind::NotFound,
            3 => Kind::Post,
            _ => Kind::Get,
        }
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Appends `name: value\r\n`, the name spelled as is, in lower case or in
/// upper case.
fn header(out: &mut Vec<u8>, rng: &mut Rng, name: &str, value: &str) {
    let name = match rng.below(10) {
        0..=5 => name.to_owned(),
        6..=8 => name.to_ascii_lowercase(),
        _ => name.to_ascii_uppercase(),
    };
    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
}

/// `len` bytes of words and line breaks.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(rng.pick(&WORDS).as_bytes());
        out.push(if rng.chance(10) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// `len` bytes of a body of `content_type`: random bytes for
/// `application/octet-stream`, a JSON object for `application/json` (at
/// least 2 bytes long), words otherwise.
fn body(rng: &mut Rng, content_type: &str, len: usize) -> Vec<u8> {
    const JSON_FRAME: (&[u8], &[u8]) = (b"{\"data\":\"", b"\"}");
    let frame = JSON_FRAME.0.len() + JSON_FRAME.1.len();
    match content_type {
        "application/octet-stream" => (0..len).map(|_| rng.next_u32() as u8).collect(),
        "application/json" if len < frame => {
            let mut out = b"{}".to_vec();
            out.resize(len, b' ');
            out
        }
        "application/json" => {
            let mut words = text(rng, len - frame);
            words
                .iter_mut()
                .filter(|b| **b == b'\n')
                .for_each(|b| *b = b' ');
            [JSON_FRAME.0, &words, JSON_FRAME.1].concat()
        }
        _ => text(rng, len),
    }
}

/// FNV-1a, for ETags and checksums that look like hashes.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Request/response pair number `i` of `kind`; `body_len` is the length of
/// the response body where there is one.
fn pair(
    rng: &mut Rng,
    i: usize,
    kind: Kind,
    body_len: usize,
    framing: Framing,
) -> (Vec<u8>, Vec<u8>) {
    let resource = rng.pick(&RESOURCES);
    let etag = format!("\"{:08x}\"", rng.next_u32());
    let req = request(rng, i, kind, resource.0, &etag);
    let res = response(rng, i, kind, resource.1, body_len, framing, &etag);
    (req, res)
}

/// The request of a pair: about seven headers; a body for POST and PUT.
fn request(rng: &mut Rng, i: usize, kind: Kind, path: &str, etag: &str) -> Vec<u8> {
    let (method, path, body) = match kind {
        Kind::Get | Kind::NotModified => ("GET", format!("{path}?page={i}"), None),
        Kind::NotFound => ("GET", format!("/missing/{}", rng.pick(&WORDS)), None),
        Kind::Post => {
            let form = format!(
                "name={}&qty={}&note={}",
                rng.pick(&WORDS),
                rng.below(1000),
                rng.pick(&WORDS)
            );
            let body = ("application/x-www-form-urlencoded", form.into_bytes());
            ("POST", "/api/v1/orders".to_owned(), Some(body))
        }
        Kind::NoContent => {
            let len = rng.range(16..=300);
            let body = ("application/json", self::body(rng, "application/json", len));
            ("PUT", format!("/api/v1/items/{i}"), Some(body))
        }
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    let (host, agent) = (rng.pick(&HOSTS), rng.pick(&AGENTS));
    header(&mut out, rng, "Host", host);
    header(&mut out, rng, "User-Agent", agent);
    header(&mut out, rng, "Accept", "*/*");
    header(&mut out, rng, "Accept-Encoding", "gzip, deflate, br");
    header(&mut out, rng, "Accept-Language", "en-US,en;q=0.5");
    header(&mut out, rng, "Connection", "keep-alive");
    let id = format!("{:016x}", rng.next_u64());
    header(&mut out, rng, "X-Request-Id", &id);
    if kind == Kind::NotModified {
        header(&mut out, rng, "If-None-Match", etag);
    }
    if let Some((content_type, body)) = body {
        header(&mut out, rng, "Content-Type", content_type);
        header(&mut out, rng, "Content-Length", &body.len().to_string());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The response of a pair: about seven headers; no body for 204 and 304.
fn response(
    rng: &mut Rng,
    i: usize,
    kind: Kind,
    content_type: &str,
    body_len: usize,
    framing: Framing,
    etag: &str,
) -> Vec<u8> {
    let (status, content_type) = match kind {
        Kind::Get => ("200 OK", Some(content_type)),
        Kind::Post => ("200 OK", Some("application/json")),
        Kind::NoContent => ("204 No Content", None),
        Kind::NotModified => ("304 Not Modified", None),
        Kind::NotFound => ("404 Not Found", Some("text/html")),
    };
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    let date = format!("Tue, 14 Nov 2023 22:{:02}:{:02} GMT", 13 + i / 60, i % 60);
    header(&mut out, rng, "Date", &date);
    let server = rng.pick(&SERVERS);
    header(&mut out, rng, "Server", server);
    header(&mut out, rng, "Cache-Control", "max-age=3600");
    header(&mut out, rng, "ETag", etag);
    header(&mut out, rng, "Connection", "keep-alive");
    let Some(content_type) = content_type else {
        let id = format!("{:016x}", rng.next_u64());
        header(&mut out, rng, "X-Request-Id", &id);
        out.extend_from_slice(b"\r\n");
        return out;
    };
    let body = body(rng, content_type, body_len);
    header(&mut out, rng, "Content-Type", content_type);
    match framing {
        Framing::ContentLength => {
            header(&mut out, rng, "Content-Length", &body.len().to_string());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
        }
        Framing::Chunked => {
            header(&mut out, rng, "Transfer-Encoding", "chunked");
            header(&mut out, rng, "Trailer", "X-Checksum, Server-Timing");
            out.extend_from_slice(b"\r\n");
            chunk(rng, &body, &mut out);
        }
    }
    out
}

/// Appends `body` in chunked encoding: chunks of 1 to 3000 bytes, sizes in
/// lower- or upper-case hex, `;ext=1` on the first size line, then the last
/// chunk and two trailer fields.
fn chunk(rng: &mut Rng, body: &[u8], out: &mut Vec<u8>) {
    let mut rest = body;
    let mut ext = ";ext=1";
    loop {
        let n = rng.range(1..=3000).min(rest.len());
        let size = if rng.chance(50) {
            format!("{n:x}")
        } else {
            format!("{n:X}")
        };
        out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
        ext = "";
        if n == 0 {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    header(out, rng, "X-Checksum", &format!("{:08x}", fnv(body)));
    let dur = format!("total;dur={}", rng.range(1..=250));
    header(out, rng, "Server-Timing", &dur);
    out.extend_from_slice(b"\r\n");
}

/// Request/response pairs as alternating writes: request, response, ...
fn alternate(pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Dialogue {
    let mut d = Dialogue::new();
    for (req, res) in pairs {
        d.push(Side::Client, req);
        d.push(Side::Server, res);
    }
    d
}

/// `messages` random pairs (see [`Kind::random`]), bodies of `body_sizes`.
fn random_pairs(
    messages: usize,
    body_sizes: RangeInclusive<usize>,
    framing: Framing,
    seed: u64,
) -> Dialogue {
    assert!(
        !body_sizes.is_empty(),
        "empty body size range {body_sizes:?}"
    );
    let mut rng = Rng::new(seed);
    alternate((0..messages).map(|i| {
        let kind = Kind::random(&mut rng);
        let len = rng.range(body_sizes.clone());
        pair(&mut rng, i, kind, len, framing)
    }))
}

/// An HTTP/1.1 keep-alive connection: `messages` requests, each answered
/// before the next is sent. Mostly GETs answered 200, with POSTs (form
/// bodies), PUTs answered 204, conditional GETs answered 304 and 404s; every
/// response body that exists has a length drawn from `body_sizes` and a
/// `Content-Length`. About seven headers per message, their names in mixed
/// case. No HEAD requests.
///
/// # Panics
/// If `body_sizes` is empty.
pub fn http_keepalive(messages: usize, body_sizes: RangeInclusive<usize>, seed: u64) -> Dialogue {
    random_pairs(messages, body_sizes, Framing::ContentLength, seed)
}

/// The two streams of [`http_keepalive`]: (requests, responses).
///
/// # Panics
/// If `body_sizes` is empty.
pub fn http_exchange(
    messages: usize,
    body_sizes: RangeInclusive<usize>,
    seed: u64,
) -> (Vec<u8>, Vec<u8>) {
    let d = http_keepalive(messages, body_sizes, seed);
    (d.to_server(), d.to_client())
}

/// A keep-alive connection of `messages` GETs, every response a 200 with a
/// `Content-Length` body of exactly `body_len` bytes.
pub fn http_fixed_bodies(messages: usize, body_len: usize, seed: u64) -> Dialogue {
    let mut rng = Rng::new(seed);
    alternate((0..messages).map(|i| pair(&mut rng, i, Kind::Get, body_len, Framing::ContentLength)))
}

/// Like [`http_keepalive`], but the responses with a body use
/// `Transfer-Encoding: chunked`: chunks of 1 to 3000 bytes, hex sizes in
/// either case, a chunk extension `;ext=1` on the first size line, two
/// trailer fields (announced by `Trailer`) after the last chunk.
///
/// # Panics
/// If `body_sizes` is empty.
pub fn http_chunked(messages: usize, body_sizes: RangeInclusive<usize>, seed: u64) -> Dialogue {
    random_pairs(messages, body_sizes, Framing::Chunked, seed)
}

/// A pipelined connection: the client writes all `messages` requests (the
/// second a POST with a `Content-Length` body, the others GETs, the last one
/// conditional and answered 304) in two writes before any response; the
/// server then answers each in turn, bodies of 0 to 2000 bytes.
pub fn http_pipelined(messages: usize, seed: u64) -> Dialogue {
    let mut rng = Rng::new(seed);
    let (reqs, resps): (Vec<_>, Vec<_>) = (0..messages)
        .map(|i| {
            let kind = match i {
                1 => Kind::Post,
                _ if i + 1 == messages => Kind::NotModified,
                _ => Kind::Get,
            };
            let len = rng.range(0..=2000);
            pair(&mut rng, i, kind, len, Framing::ContentLength)
        })
        .unzip();
    let mut d = Dialogue::new();
    let half = messages.div_ceil(2);
    d.push(Side::Client, reqs[..half].concat());
    d.push(Side::Client, reqs[half..].concat());
    for res in resps {
        d.push(Side::Server, res);
    }
    d
}

// ---------------------------------------------------------------------------
// Content: CSV.

const SYMBOLS: [&str; 6] = ["ACME", "HOOLI", "INITECH", "UMBRELLA", "GLOBEX", "STARK"];

/// A CSV document (RFC 4180, `\r\n` line ends): a header line
/// `id,symbol,side,price,qty,note` and `rows` records. Some fields are
/// quoted: notes holding commas, doubled quotes, or line breaks (`\r\n` or
/// `\n`), and some quoted symbols without anything to escape.
pub fn csv_rows(rows: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = b"id,symbol,side,price,qty,note\r\n".to_vec();
    for id in 1..=rows {
        let symbol = rng.pick(&SYMBOLS);
        let symbol = if rng.chance(10) {
            format!("\"{symbol}\"")
        } else {
            symbol.to_owned()
        };
        let side = rng.pick(&["buy", "sell"]);
        let cents = rng.range(100..=99_999);
        let qty = rng.range(1..=50) * 100;
        let (w1, w2) = (rng.pick(&WORDS), rng.pick(&WORDS));
        let note = match rng.below(6) {
            0 => format!("\"{w1}, {w2}\""),
            1 => format!("\"client said \"\"{w1}\"\"\""),
            2 => format!("\"{w1}\r\n{w2}\""),
            3 => format!("\"{w1}\n{w2}, \"\"{w2}\"\"\""),
            4 => String::new(),
            _ => w1.to_owned(),
        };
        out.extend_from_slice(
            format!(
                "{id},{symbol},{side},{}.{:02},{qty},{note}\r\n",
                cents / 100,
                cents % 100
            )
            .as_bytes(),
        );
    }
    out
}

/// A CSV document of `rows` records of `fields` unquoted fields of exactly
/// `field_len` alphanumeric bytes, `\r\n` line ends, no header.
pub fn csv_fixed_fields(rows: usize, fields: usize, field_len: usize, seed: u64) -> Vec<u8> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(rows * (fields * (field_len + 1) + 1));
    for _ in 0..rows {
        for f in 0..fields {
            if f > 0 {
                out.push(b',');
            }
            out.extend((0..field_len).map(|_| ALNUM[rng.below(ALNUM.len())]));
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// The committed captures.

/// A capture with the file name and format it is committed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedCapture {
    /// File name, with its extension.
    pub name: &'static str,
    /// File format.
    pub format: CaptureFormat,
    /// The capture.
    pub capture: Capture,
}

impl NamedCapture {
    /// The bytes of the file.
    pub fn encode(&self) -> Result<Vec<u8>, IoError> {
        self.capture.encode(self.format)
    }
}

/// `198.51.100.x:port` (TEST-NET-2).
fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)), port)
}

/// `[2001:db8::x]:port` (documentation prefix).
fn v6(host: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, host)),
        port,
    )
}

/// The captures committed under `data/captures`:
///
/// | file | what |
/// | --- | --- |
/// | `http_keepalive.pcap` | three interleaved keep-alive connections; the second one's server sequence numbers wrap past 2^32, the third has 2000-byte bodies and closes from the server |
/// | `http_chunked.pcap` | chunked responses with extensions and trailers, closed by a client RST |
/// | `http_pipelined.pcap` | five pipelined requests in two writes, then the responses |
/// | `csv.pcap` | CSV from client to server port 9000 |
/// | `http_impaired.pcap` | a keep-alive and a chunked connection, their responses [`Impairments::MIXED`] |
/// | `csv_impaired.pcap` | CSV, [`Impairments::MIXED`], sequence numbers wrapping |
/// | `http_ipv6.pcapng` | keep-alive over IPv6, MSS 1428 |
pub fn standard_captures() -> Vec<NamedCapture> {
    let t0 = Timestamp::new(1_700_000_000, 0);
    let http = |port, dialogue, seed| Conversation::new(v4(1, port), v4(2, 80), dialogue, seed);
    let csv = |port, rows, seed| {
        Conversation::new(
            v4(1, port),
            v4(2, 9000),
            Dialogue::one_way(Side::Client, csv_rows(rows, seed)),
            seed,
        )
    };
    let named = |name, format, capture| NamedCapture {
        name,
        format,
        capture,
    };
    use CaptureFormat::{Pcap, PcapNg};
    vec![
        named(
            "http_keepalive.pcap",
            Pcap,
            Capture::interleave(
                t0,
                &[
                    http(40000, http_keepalive(5, 0..=6000, 1), 11),
                    http(40001, http_keepalive(4, 0..=4000, 2), 12).wrap_at(Side::Server, 2500),
                    http(40002, http_fixed_bodies(3, 2000, 3), 13).close(Close::Fin(Side::Server)),
                ],
            ),
        ),
        named(
            "http_chunked.pcap",
            Pcap,
            http(40010, http_chunked(4, 1..=5000, 4), 14)
                .close(Close::Rst(Side::Client))
                .capture(t0),
        ),
        named(
            "http_pipelined.pcap",
            Pcap,
            http(40020, http_pipelined(5, 5), 15).capture(t0),
        ),
        named("csv.pcap", Pcap, csv(40030, 120, 6).capture(t0)),
        named(
            "http_impaired.pcap",
            Pcap,
            Capture::interleave(
                t0,
                &[
                    http(40040, http_keepalive(5, 6000..=12_000, 7), 17)
                        .impair(Side::Server, Impairments::MIXED),
                    http(40041, http_chunked(4, 6000..=12_000, 8), 18)
                        .impair(Side::Server, Impairments::MIXED),
                ],
            ),
        ),
        named(
            "csv_impaired.pcap",
            Pcap,
            csv(40050, 600, 9)
                .impair(Side::Client, Impairments::MIXED)
                .wrap_at(Side::Client, 10_000)
                .capture(t0),
        ),
        named(
            "http_ipv6.pcapng",
            PcapNg,
            Conversation::new(v6(1, 40060), v6(2, 80), http_keepalive(4, 0..=5000, 10), 20)
                .mss(1428)
                .capture(t0),
        ),
    ]
}

#[cfg(test)]
mod test {
    use super::*;

    fn segments(lens: &[&[usize]]) -> Vec<Vec<Range<usize>>> {
        let mut at = 0;
        lens.iter()
            .map(|write| {
                write
                    .iter()
                    .map(|&n| {
                        at += n;
                        at - n..at
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rng_is_splitmix64() {
        // Reference values of splitmix64 seeded with 0.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        for n in [1, 2, 7, 1000] {
            assert!((0..100).all(|_| rng.below(n) < n));
        }
    }

    #[test]
    fn schedule_without_impairment_keeps_order() {
        let writes = segments(&[&[10, 10, 5], &[7]]);
        let (sched, lost) = schedule(&writes, Impairments::NONE, &mut Rng::new(1));
        assert!(lost.is_empty());
        let got: Vec<_> = sched
            .iter()
            .map(|w| {
                w.iter()
                    .map(|t| (t.data.clone(), t.psh))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            got,
            [
                vec![(0..10, false), (10..20, false), (20..25, true)],
                vec![(25..32, true)]
            ]
        );
    }

    #[test]
    fn schedule_loses_one_segment_nothing_else_carries() {
        for seed in 0..200 {
            let writes = segments(&[&[10; 6], &[4], &[10; 9]]);
            let (sched, lost) = schedule(&writes, Impairments::MIXED, &mut Rng::new(seed));
            assert_eq!(lost.len(), 1);
            let gap = &lost[0];
            let captured: Vec<&Tx> = sched.iter().flatten().filter(|t| t.captured).collect();
            assert!(captured
                .iter()
                .all(|t| t.data.end <= gap.start || t.data.start >= gap.end));
            // Every other byte is carried, and three kinds of retransmission
            // were added: two duplicates and two overlaps.
            let total = sched.iter().flatten().count();
            assert_eq!(total, 16 + 4, "seed {seed}");
            let mut covered = [false; 154];
            for t in &captured {
                covered[t.data.clone()].fill(true);
            }
            assert!(
                (0..154).all(|b| covered[b] != gap.contains(&b)),
                "seed {seed}"
            );
        }
    }
}
