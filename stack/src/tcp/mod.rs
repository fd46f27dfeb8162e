//! The TCP endpoint (IPv4), receive side first: connections this host opens
//! or accepts, each received into an [`AaStream`] and parsed on arrival.
//!
//! [`Stack`] owns a packet device (a [`PacketIo`]: a
//! [`TapIo`](crate::io::tap::TapIo) of [`PoolPacket`]s, or with feature
//! `dpdk` a DPDK port of mbufs), the [`FrameAlloc`] its outgoing frames are
//! built with (a [`PacketPool`], a DPDK mempool), a [`Responder`] for ARP and
//! ICMP echo, and its connections. Received packets are never copied: each
//! connection's records point into the device's buffers (pool buffers,
//! mbufs). The application runs it to completion: it calls
//! [`Stack::poll`] in its loop, takes [`Event`]s with [`Stack::next_event`],
//! reads and frees records through [`Stack::stream_mut`], and may
//! [`send`](Stack::send) small requests and [`close`](Stack::close).
//!
//! What a poll does: one receive burst; each frame goes through the
//! responder (ARP replies, pings), then [`wire::parse`], then to its
//! connection; then timers (ARP retries, retransmission, TIME-WAIT); then
//! queued data and FINs go out; then every connection that received
//! in-order data or whose window grew enough gets **one ACK for the whole
//! burst**; then the transmit burst is flushed.
//!
//! - Active open ([`Stack::connect`]): the peer's MAC is resolved by ARP
//!   first (up to [`StackConfig::arp_tries`] requests), then SYN with MSS and
//!   window scale options, SYN-ACK checked (RFC 9293 3.10.7.3), ACK.
//! - Passive open ([`Stack::listen`]): a SYN to a listening port is answered
//!   by a SYN-ACK (window scaling only when the SYN offered it; the peer's
//!   MAC taken from the frame), retransmitted on the timer; the ACK of it
//!   makes the connection established ([`Event::Accepted`]). At most
//!   [`StackConfig::backlog`] connections wait half-open; one never
//!   completed disappears without an event. No SYN cookies.
//! - Receive: the advertised window is the stream's
//!   ([`ZcStream::window`](aa_runtime::ZcStream::window)), scaled: bytes the
//!   application holds in unfreed records throttle the sender. In-order
//!   segments are parsed at once; out-of-order ones wait in the stream's
//!   queue and are answered by an immediate duplicate ACK, as are
//!   duplicates and segments outside the window. A window update goes out
//!   when the application's frees open the window by
//!   `min(recv_buffer / 2, MSS)` or more (RFC 1122 4.2.3.3).
//! - FIN from the peer: once every byte before it is in, the stream is
//!   finished (the parser ends its last record) and [`Event::Finished`]
//!   comes; [`Stack::close`] sends our FIN after any queued data.
//! - RST: accepted when its sequence number is exactly the next expected,
//!   answered by a challenge ACK when merely inside the window, dropped
//!   otherwise (RFC 5961); a SYN on a synchronized connection gets a
//!   challenge ACK too.
//! - Send: [`Stack::send`] copies into a bounded send buffer, segmented by
//!   the MSS within `min(cwnd, peer's window)`; a retransmission timer
//!   (RFC 6298: SRTT/RTTVAR, Karn's rule, exponential backoff, minimum and
//!   maximum) resends from the oldest unacknowledged byte; when the peer's
//!   window is zero, the timer sends one byte as a probe (and leaves the
//!   congestion window alone).
//! - Congestion control, NewReno (RFC 5681, RFC 6582): initial window per
//!   RFC 5681; slow start counts the bytes each ACK covers (RFC 3465: this
//!   stack, like many, acknowledges a burst at once), at most doubling per
//!   ACK; congestion avoidance adds one SMSS per window acknowledged. Three
//!   duplicate ACKs retransmit the first unacknowledged segment and start
//!   fast recovery (`ssthresh = max(flight / 2, 2 SMSS)`,
//!   `cwnd = ssthresh + 3 SMSS`, inflated by further duplicates); a partial
//!   ACK retransmits the next hole at once, a full ACK ends recovery. A
//!   timeout sets `ssthresh` the same way (first timeout of a segment only),
//!   `cwnd` to one SMSS and goes back to SND.UNA: one segment, then slow
//!   start. No runt segments when cwnd is the limit. See
//!   [`Stack::send_info`] and the counters in [`TcpStats`].
//!
//! Nothing here panics on network input. A connection's packets go back to
//! the pool when the application [`release`](Stack::release)s it (its
//! stream is dropped then); a connection still open is reset at that point.
//!
//! **Not yet**: IPv6, SACK, timestamps (PAWS), limited transmit (RFC 3042),
//! cwnd validation for idle or application-limited periods (RFC 7661),
//! Nagle,
//! delayed ACKs beyond one per burst, simultaneous open, SYN cookies,
//! urgent data, path MTU discovery, IP fragments, VLAN tags. The send
//! buffer is a copy (small requests, not bulk zero-copy sending).

mod out;

use foldhash::fast::RandomState;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_runtime::{AaConfig, AaState, AaStream, Insert, Packet, PacketPool, Parser, PoolPacket};

use crate::io::alloc::FrameAlloc;
use crate::io::{Burst, IoError, PacketIo, Rx, RxChecksum, Timestamp};
use crate::link::{Handled, MacAddr, Responder};
use crate::wire::{self, ChecksumStatus, LinkType, Segment, TcpFlags};
use out::{OutSeg, SackBlocks};

/// Identifies a connection of a [`Stack`]; a released connection's id may
/// name a later connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub usize);

/// Why a connection ended without a proper close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// The peer answered our SYN with RST: nothing listens there.
    Refused,
    /// The peer reset the established connection.
    Reset,
    /// Retransmissions went unanswered [`StackConfig::max_retries`] times.
    TimedOut,
    /// ARP got no answer for the peer's address.
    Unreachable,
}

/// What happened, for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (active open).
    Connected(ConnId),
    /// A peer connected to a listening port (passive open); see
    /// [`Stack::addrs`].
    Accepted(ConnId),
    /// New records are ready to read.
    Records(ConnId),
    /// The peer sent FIN and every byte before it arrived: the stream is
    /// finished, its last records are ready.
    Finished(ConnId),
    /// Both directions are closed (our FIN was acknowledged too).
    Closed(ConnId),
    /// The connection was reset or timed out.
    Reset(ConnId, ResetReason),
    /// The connection's parser rejected the stream: the records before the
    /// error stay readable, [`AaStream::error`] says what and at which
    /// offset, and no more records come. Bytes that arrive after it are
    /// acknowledged and dropped; the connection stays open until the
    /// application closes it ([`Stack::close`]) or the peer does.
    ParseFailed(ConnId),
}

/// Where a connection is (RFC 9293's states, plus waiting for ARP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Resolving the peer's MAC address.
    ArpWait,
    /// SYN sent.
    SynSent,
    /// A peer's SYN answered by our SYN-ACK (passive open).
    SynReceived,
    /// Data flows both ways.
    Established,
    /// Our FIN sent, not yet acknowledged.
    FinWait1,
    /// Our FIN acknowledged; the peer may still send.
    FinWait2,
    /// The peer's FIN received; we may still send.
    CloseWait,
    /// Both FINs sent, ours not yet acknowledged.
    Closing,
    /// The peer's FIN received after ours; waiting for our FIN's ACK.
    LastAck,
    /// Both done; answering retransmitted FINs for a while.
    TimeWait,
    /// Gone (closed, reset or timed out).
    Closed,
}

/// Why a call about a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// No such connection (or it was released).
    NoConnection,
    /// The connection cannot do this in its state (sending after close).
    BadState(State),
    /// Every local port is in use towards that peer.
    NoPort,
    /// Already listening on that port, or port 0.
    BadPort,
    /// The peer is not an address this stack can reach (unspecified,
    /// broadcast, multicast, our own).
    BadPeer,
}

impl std::fmt::Display for TcpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TcpError::NoConnection => f.write_str("no such connection"),
            TcpError::BadState(s) => write!(f, "not possible in state {s:?}"),
            TcpError::NoPort => f.write_str("no free local port"),
            TcpError::BadPort => f.write_str("port 0 or already listening"),
            TcpError::BadPeer => f.write_str("not a reachable peer address"),
        }
    }
}

impl std::error::Error for TcpError {}

/// Settings of a [`Stack`].
#[derive(Clone, Copy, Debug)]
pub struct StackConfig {
    /// Limits of each connection's receive stream; `aa.stream.recv_buffer`
    /// is the largest window advertised (the window scale follows from it).
    pub aa: AaConfig,
    /// MSS we advertise and the most we send per segment (further bounded
    /// by the transmit buffers' size and the peer's MSS).
    pub mss: u16,
    /// Bytes [`Stack::send`] buffers per connection (sent and unacknowledged
    /// included).
    pub send_buffer: usize,
    /// Retransmission timeout before any RTT sample (RFC 6298: 1 s).
    pub initial_rto: Duration,
    /// Lowest retransmission timeout (Linux: 200 ms; RFC 6298 says 1 s).
    pub min_rto: Duration,
    /// Highest retransmission timeout (backoff stops there).
    pub max_rto: Duration,
    /// Retransmissions of one segment before the connection times out.
    pub max_retries: u32,
    /// Time between ARP requests for a peer.
    pub arp_retry: Duration,
    /// ARP requests before the peer is unreachable.
    pub arp_tries: u32,
    /// How long TIME-WAIT lasts (much less than RFC 9293's 2 MSL: an
    /// endpoint that picks a fresh port per connection).
    pub time_wait: Duration,
    /// Frames received and sent per burst.
    pub burst: usize,
    /// Most connections in SYN-RECEIVED at once (passive open); further
    /// SYNs are dropped and counted.
    pub backlog: usize,
    /// On a device that cuts TCP frames into segments itself
    /// ([`PacketIo::tx_segmentation`]: a TAP device with the virtio-net
    /// header), send data in frames of up to 64 KiB (or what the transmit
    /// buffers hold), each marked for segments of the peer's MSS, rather
    /// than a frame per segment. Retransmissions of a single segment stay
    /// one segment. No effect on other devices.
    pub segmentation_offload: bool,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            aa: AaConfig::default(),
            mss: 1460,
            send_buffer: 64 * 1024,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            max_retries: 8,
            arp_retry: Duration::from_secs(1),
            arp_tries: 3,
            time_wait: Duration::from_secs(2),
            burst: 32,
            backlog: 64,
            segmentation_offload: true,
        }
    }
}

/// Counters of a [`Stack`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Frames received.
    pub frames_in: u64,
    /// TCP segments for our address that parsed.
    pub segments_in: u64,
    /// Frames handed on by the responder that were not valid TCP.
    pub not_tcp: u64,
    /// Segments with a wrong TCP checksum, dropped.
    pub bad_checksum: u64,
    /// Segments for no connection (answered by RST unless they were one).
    pub no_connection: u64,
    /// Segments outside the receive window (answered by an ACK).
    pub unacceptable: u64,
    /// Segments queued out of order.
    pub out_of_order: u64,
    /// Segments carrying only bytes already received.
    pub duplicates: u64,
    /// Segments dropped at a stream cap.
    pub over_cap: u64,
    /// Segments sent, all kinds (those of a frame cut by the device
    /// counted one by one).
    pub segments_out: u64,
    /// Frames sent for the device to cut into segments
    /// ([`StackConfig::segmentation_offload`]).
    pub large_frames_out: u64,
    /// Pure ACKs sent (one per connection per burst, window updates).
    pub acks_out: u64,
    /// Duplicate ACKs sent (out of order, duplicate, outside the window).
    pub dup_acks_out: u64,
    /// Window updates sent (the application's frees opened the window).
    pub window_updates: u64,
    /// Segments sent advertising a zero window: the application holds the
    /// whole receive buffer. (After the peer's FIN the window is closed for
    /// good; those segments are not counted.)
    pub zero_windows_out: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// RSTs sent.
    pub rsts_out: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Data bytes sent again.
    pub retransmitted_bytes: u64,
    /// Fast retransmits: three duplicate ACKs (RFC 5681 3.2), each the start
    /// of a fast recovery.
    pub fast_retransmits: u64,
    /// Segments retransmitted on a partial ACK during fast recovery
    /// (NewReno, RFC 6582).
    pub partial_ack_retransmits: u64,
    /// Duplicate ACKs received (RFC 5681's definition).
    pub dup_acks_in: u64,
    /// Frames not sent: no pool buffer, or the device would not take them.
    pub tx_dropped: u64,
    /// Receives that found every pool buffer in use.
    pub rx_pool_empty: u64,
    /// SYNs to a listening port dropped: backlog full, or a bad source.
    pub syn_dropped: u64,
}

struct Conn<P: Packet, R: Parser> {
    state: State,
    local_port: u16,
    remote: SocketAddrV4,
    peer_mac: MacAddr,
    // Send side.
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    snd_wnd: u32,
    snd_wl1: u32,
    snd_wl2: u32,
    snd_wscale: u8,
    snd_mss: u16,
    sbuf: VecDeque<u8>,
    fin_queued: bool,
    // Congestion control (RFC 5681, NewReno RFC 6582), bytes.
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    ca_acked: u32,
    /// Duplicate ACKs in a row.
    dup_acks: u32,
    /// RFC 6582's `recover`: the highest sequence number sent when fast
    /// recovery began or the timer last expired (inclusive).
    recover: u32,
    in_recovery: bool,
    // Receive side.
    rcv_wscale: u8,
    /// Window scaling in use (both sides sent the option).
    wscale_ok: bool,
    /// SACK in use (both sides sent SACK-permitted, RFC 2018): our ACKs carry
    /// the out-of-order blocks.
    sack_ok: bool,
    /// Sequence numbers of the latest out-of-order segments, newest first:
    /// the blocks holding them lead the SACK option (RFC 2018 4).
    sack_recent: [u32; SackBlocks::MAX],
    /// How many of `sack_recent` are set.
    sack_recent_len: u8,
    /// Send side: the lowest ranges above SND.UNA the peer's SACK blocks
    /// reported held, sorted and merged; cleared on a timeout (RFC 2018 8).
    sacked: SackBlocks,
    fin_received: bool,
    stream: Option<AaStream<P, R>>,
    parser: Option<R>,
    last_edge: u32,
    need_ack: bool,
    records_seen: u64,
    /// An [`Event::Records`] for this connection waits in the queue.
    records_event: bool,
    /// [`Event::ParseFailed`] was queued.
    failed_reported: bool,
    // Timers.
    rto: Duration,
    rtx_at: Option<Instant>,
    retries: u32,
    rtt_probe: Option<(u32, Instant)>,
    srtt: Option<Duration>,
    rttvar: Duration,
    arp_at: Instant,
    arp_sent: u32,
    tw_until: Option<Instant>,
    released: bool,
}

#[inline]
fn d(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// Congestion state of a connection's send side, from [`Stack::send_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendInfo {
    /// Congestion window, bytes (RFC 5681).
    pub cwnd: u32,
    /// Slow start threshold, bytes (`u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// The peer's window, bytes (scaled).
    pub snd_wnd: u32,
    /// Bytes sent and not yet acknowledged (`SND.NXT - SND.UNA`).
    pub in_flight: u32,
    /// The sender's maximum segment size.
    pub smss: u32,
    /// In fast recovery (NewReno).
    pub in_recovery: bool,
    /// Duplicate ACKs in a row.
    pub dup_acks: u32,
}

/// The most payload per segment: the peer's MSS, bounded by the pool's
/// buffers.
fn seg_size<A: FrameAlloc>(snd_mss: u16, pool: &A) -> u32 {
    let room = pool.frame_room().saturating_sub(out::HEADERS).max(1);
    usize::from(snd_mss).min(room).max(1) as u32
}

/// The most payload per frame with segmentation offload: what the pool's
/// buffers hold, and an IPv4 packet's 65,535 bytes, behind the largest
/// headers (60 bytes of IP, 60 of TCP).
fn tso_size<A: FrameAlloc>(pool: &A) -> u32 {
    let room = pool.frame_room().saturating_sub(14 + 60 + 60);
    room.min(65535 - 60 - 60) as u32
}

/// RFC 5681's initial window (3.1, equation 1).
fn initial_window(smss: u32) -> u32 {
    match smss {
        s if s > 2190 => 2 * s,
        s if s > 1095 => 3 * s,
        s => 4 * s,
    }
}

impl<P: Packet, R: Parser> Conn<P, R> {
    fn new(
        local_port: u16,
        remote: SocketAddrV4,
        iss: u32,
        rcv_wscale: u8,
        parser: Option<R>,
        rto: Duration,
        now: Instant,
    ) -> Conn<P, R> {
        Conn {
            state: State::ArpWait,
            local_port,
            remote,
            peer_mac: MacAddr::ZERO,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_wscale: 0,
            snd_mss: 536,
            sbuf: VecDeque::new(),
            fin_queued: false,
            cwnd: 0,
            ssthresh: u32::MAX,
            ca_acked: 0,
            dup_acks: 0,
            recover: iss,
            in_recovery: false,
            rcv_wscale,
            wscale_ok: false,
            sack_ok: false,
            sack_recent: [0; SackBlocks::MAX],
            sack_recent_len: 0,
            sacked: SackBlocks::NONE,
            fin_received: false,
            stream: None,
            parser,
            last_edge: 0,
            need_ack: false,
            records_seen: 0,
            records_event: false,
            failed_reported: false,
            rto,
            rtx_at: None,
            retries: 0,
            rtt_probe: None,
            srtt: None,
            rttvar: Duration::ZERO,
            arp_at: now,
            arp_sent: 0,
            tw_until: None,
            released: false,
        }
    }

    /// Next sequence number expected from the peer.
    fn rcv_nxt(&self) -> u32 {
        match &self.stream {
            Some(s) => s
                .stream()
                .rcv_nxt()
                .0
                .wrapping_add(u32::from(self.fin_received)),
            None => 0,
        }
    }

    /// The receive window, unscaled bytes.
    fn rcv_wnd(&self, cfg: &StackConfig) -> u32 {
        match &self.stream {
            Some(s) if !self.fin_received => s.stream().window(),
            Some(_) => 0,
            None => cfg.aa.stream.recv_buffer,
        }
    }

    /// Notes that the segment starting at `seq` was queued out of order.
    fn sack_note(&mut self, seq: u32) {
        if !self.sack_ok {
            return;
        }
        let nxt = self.rcv_nxt();
        let n = usize::from(self.sack_recent_len);
        // Keep the still-pending older ones, newest first, behind `seq`.
        let mut kept = [0u32; SackBlocks::MAX];
        let mut k = 1;
        kept[0] = seq;
        for &a in &self.sack_recent[..n] {
            if k < kept.len() && a != seq && d(a, nxt) > 0 {
                kept[k] = a;
                k += 1;
            }
        }
        self.sack_recent = kept;
        self.sack_recent_len = k as u8;
    }

    /// The SACK blocks for an ACK sent now (RFC 2018 4): none unless SACK is
    /// in use and data waits out of order. The block holding the latest
    /// out-of-order segment comes first, then those of the segments before it
    /// (the blocks most recently reported), then the rest nearest `rcv_nxt`
    /// first, up to [`SackBlocks::MAX`] (no timestamps are sent, so four fit).
    fn sack_blocks(&self) -> SackBlocks {
        let mut out = SackBlocks::NONE;
        let Some(s) = self.stream.as_ref().filter(|_| self.sack_ok) else {
            return out;
        };
        let zs = s.stream();
        if zs.next_queued().is_none() {
            return out;
        }
        for &a in &self.sack_recent[..usize::from(self.sack_recent_len)] {
            if let Some((l, r)) = zs
                .ooo_blocks()
                .find(|(l, r)| d(a, l.0) >= 0 && d(a, r.0) < 0)
            {
                out.push((l.0, r.0));
            }
        }
        for (l, r) in zs.ooo_blocks() {
            if out.is_full() {
                break;
            }
            out.push((l.0, r.0));
        }
        out
    }

    /// Send side: merges the SACK blocks of an incoming ACK (`opts`, its
    /// option bytes) acknowledging up to `ack` into [`sacked`](Self::sacked),
    /// dropping what the cumulative ACK covers and blocks outside what was
    /// sent (D-SACK blocks below `ack` included). Returns whether the blocks
    /// now cover more bytes than before (for an ACK of nothing new, RFC
    /// 6675's sign of a duplicate).
    fn sack_update(&mut self, ack: u32, opts: &[u8]) -> bool {
        let una = if d(ack, self.snd_una) > 0 {
            ack
        } else {
            self.snd_una
        };
        if self.sacked.as_slice().is_empty() && opts.is_empty() {
            return false;
        }
        let before = self.sacked_bytes();
        let new = out::parse_sack(opts);
        let mut all = [(0u32, 0u32); 2 * SackBlocks::MAX];
        let mut n = 0;
        for &(l, r) in self.sacked.as_slice().iter().chain(new.as_slice()) {
            if d(r, l) <= 0 || d(r, una) <= 0 || d(r, self.snd_max) > 0 {
                continue;
            }
            all[n] = (if d(l, una) < 0 { una } else { l }, r);
            n += 1;
        }
        let all = &mut all[..n];
        all.sort_unstable_by_key(|b| b.0.wrapping_sub(una));
        let mut merged = SackBlocks::NONE;
        let mut cur: Option<(u32, u32)> = None;
        for &(l, r) in all.iter() {
            cur = match cur {
                Some((cl, cr)) if d(l, cr) <= 0 => Some((cl, if d(r, cr) > 0 { r } else { cr })),
                Some(b) => {
                    merged.push(b);
                    Some((l, r))
                }
                None => Some((l, r)),
            };
        }
        if let Some(b) = cur {
            merged.push(b);
        }
        self.sacked = merged;
        self.sacked_bytes() > before
    }

    /// Bytes the peer reported held above SND.UNA (its SACK blocks).
    fn sacked_bytes(&self) -> u32 {
        self.sacked
            .as_slice()
            .iter()
            .map(|&(l, r)| r.wrapping_sub(l))
            .fold(0u32, u32::saturating_add)
    }

    fn receiving(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) && !self.fin_received
    }

    fn rtt_sample(&mut self, r: Duration, cfg: &StackConfig) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let delta = s.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(s * 7 / 8 + r / 8);
            }
        }
        let s = self.srtt.unwrap_or(r);
        let k = (self.rttvar * 4).max(Duration::from_millis(1));
        self.rto = (s + k).clamp(cfg.min_rto, cfg.max_rto);
    }
}

/// Transmit side: the allocator frames are built with and the burst they
/// wait in.
struct Tx<A: FrameAlloc> {
    pool: A,
    burst: Burst<A::Packet>,
    mac: MacAddr,
    ip: Ipv4Addr,
    ip_id: u16,
    error: Option<IoError>,
    /// The device completes checksums ([`PacketIo::tx_checksum_offload`]).
    csum_offload: bool,
    /// Data goes out in frames the device cuts into segments
    /// ([`StackConfig::segmentation_offload`]).
    tso: bool,
}

impl<A: FrameAlloc> Tx<A> {
    fn push<D: PacketIo<Packet = A::Packet>>(
        &mut self,
        dev: &mut D,
        p: A::Packet,
        stats: &mut TcpStats,
    ) {
        if self.burst.room() == 0 {
            self.flush(dev, stats);
        }
        if self.burst.push(p).is_err() {
            stats.tx_dropped += 1;
        }
    }

    fn flush<D: PacketIo<Packet = A::Packet>>(&mut self, dev: &mut D, stats: &mut TcpStats) {
        while !self.burst.is_empty() {
            match dev.send_burst(&mut self.burst) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.error.get_or_insert(e);
                    break;
                }
            }
        }
        stats.tx_dropped += self.burst.len() as u64;
        self.burst.clear();
    }

    /// Builds and queues one segment of `c`, its payload in up to two
    /// pieces (a range of the send buffer) copied straight into the frame.
    #[allow(clippy::too_many_arguments)]
    fn segment<D: PacketIo<Packet = A::Packet>, R: Parser>(
        &mut self,
        dev: &mut D,
        stats: &mut TcpStats,
        cfg: &StackConfig,
        c: &mut Conn<A::Packet, R>,
        seq: u32,
        flags: TcpFlags,
        payload: out::Payload<'_>,
    ) {
        let syn = flags.syn();
        let (ack, window) = if syn {
            let ack = if flags.ack() { c.rcv_nxt() } else { 0 };
            (ack, cfg.aa.stream.recv_buffer.min(65535) as u16)
        } else {
            let wnd = c.rcv_wnd(cfg);
            let w = (wnd >> c.rcv_wscale).min(65535);
            if w == 0 && !flags.rst() && !c.fin_received {
                stats.zero_windows_out += 1;
            }
            let nxt = c.rcv_nxt();
            c.last_edge = nxt.wrapping_add(w << c.rcv_wscale);
            (nxt, w as u16)
        };
        let seg = OutSeg {
            src_mac: self.mac,
            dst_mac: c.peer_mac,
            src: (self.ip, c.local_port),
            dst: (*c.remote.ip(), c.remote.port()),
            ip_id: self.ip_id,
            seq,
            ack,
            flags: if syn { flags } else { flags | TcpFlags::ACK },
            window,
            // A SYN offers window scaling and SACK; a SYN-ACK only answers
            // an offer.
            syn_opts: syn.then_some((
                cfg.mss,
                (!flags.ack() || c.wscale_ok).then_some(c.rcv_wscale),
                !flags.ack() || c.sack_ok,
            )),
            sack: if syn || flags.rst() {
                SackBlocks::NONE
            } else {
                c.sack_blocks()
            },
        };
        // A frame longer than a segment (with segmentation offload) goes
        // out as that many segments, each with an IP id of its own.
        let len = payload[0].len() + payload[1].len();
        let cut = if self.tso {
            let mss = seg_size(c.snd_mss, &self.pool) as usize;
            (len > mss).then_some(mss)
        } else {
            None
        };
        let segments = cut.map_or(1, |mss| len.div_ceil(mss));
        self.ip_id = self.ip_id.wrapping_add(segments as u16);
        match out::write(&self.pool, &seg, payload, self.csum_offload) {
            Ok(p) => {
                if let Some(mss) = cut {
                    self.pool.set_segment_size(&p, mss as u16);
                    stats.large_frames_out += 1;
                }
                stats.segments_out += segments as u64;
                if !syn {
                    c.need_ack = false;
                }
                self.push(dev, p, stats);
            }
            Err(_) => stats.tx_dropped += 1,
        }
    }

    /// Sends a reset outside any connection's state (a segment for no
    /// connection, an unacceptable ACK): no options, window 0.
    #[allow(clippy::too_many_arguments)]
    fn rst<D: PacketIo<Packet = A::Packet>>(
        &mut self,
        dev: &mut D,
        stats: &mut TcpStats,
        dst_mac: MacAddr,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        (seq, ack, flags): (u32, u32, TcpFlags),
    ) {
        let out = OutSeg {
            src_mac: self.mac,
            dst_mac,
            src,
            dst,
            ip_id: self.ip_id,
            seq,
            ack,
            flags,
            window: 0,
            syn_opts: None,
            sack: SackBlocks::NONE,
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        match out::write(&self.pool, &out, out::one(&[]), self.csum_offload) {
            Ok(p) => {
                stats.rsts_out += 1;
                stats.segments_out += 1;
                self.push(dev, p, stats);
            }
            Err(_) => stats.tx_dropped += 1,
        }
    }

    /// A segment of `c` without payload (SYN, FIN, RST, ACK).
    #[allow(clippy::too_many_arguments)]
    fn control<D: PacketIo<Packet = A::Packet>, R: Parser>(
        &mut self,
        dev: &mut D,
        stats: &mut TcpStats,
        cfg: &StackConfig,
        c: &mut Conn<A::Packet, R>,
        seq: u32,
        flags: TcpFlags,
    ) {
        self.segment(dev, stats, cfg, c, seq, flags, out::one(&[]));
    }

    fn ack<D: PacketIo<Packet = A::Packet>, R: Parser>(
        &mut self,
        dev: &mut D,
        stats: &mut TcpStats,
        cfg: &StackConfig,
        c: &mut Conn<A::Packet, R>,
    ) {
        stats.acks_out += 1;
        let seq = c.snd_nxt;
        self.control(dev, stats, cfg, c, seq, TcpFlags::ACK);
    }
}

/// A TCP endpoint over a packet device; see the module documentation.
///
/// `D` is the device, `R` the parser of every connection's stream, `A` the
/// allocator outgoing frames are built with, of the device's packet type: a
/// [`PacketPool`] for a device of [`PoolPacket`]s ([`Stack::new`]), a DPDK
/// `Mempool` for a DPDK `Port` ([`Stack::with_alloc`]).
pub struct Stack<D: PacketIo, R: Parser, A: FrameAlloc<Packet = D::Packet> = PacketPool> {
    dev: D,
    resp: Responder,
    cfg: StackConfig,
    tx: Tx<A>,
    /// Receive storage; out only while a burst is handled.
    rx: Option<Burst<Rx<D::Packet>>>,
    conns: Vec<Option<Conn<D::Packet, R>>>,
    /// Connections by local port and peer. Hashed as the flow table (seeded
    /// foldhash): the peer chooses its address and port, and this lookup runs
    /// for every segment, where SipHash cost 6% of a bulk transfer.
    index: HashMap<(u16, SocketAddrV4), usize, RandomState>,
    listeners: HashMap<u16, Box<dyn FnMut() -> R>>,
    events: VecDeque<Event>,
    stats: TcpStats,
    next_port: u16,
    rng: u64,
}

const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;

impl<D: PacketIo<Packet = PoolPacket>, R: Parser> Stack<D, R, PacketPool> {
    /// An endpoint at `(mac, ip)` on `dev`, building the frames it sends in
    /// `pool` (the pool `dev` receives into will do; size it for every
    /// connection's window plus its out-of-order queue plus a burst).
    pub fn new(dev: D, pool: PacketPool, mac: MacAddr, ip: Ipv4Addr, cfg: StackConfig) -> Self {
        Stack::with_alloc(dev, pool, mac, ip, cfg)
    }
}

impl<D: PacketIo, R: Parser, A: FrameAlloc<Packet = D::Packet>> Stack<D, R, A> {
    /// An endpoint at `(mac, ip)` on `dev`, building the frames it sends
    /// with `alloc`, any [`FrameAlloc`] of the device's packet type (for a
    /// DPDK port, its mempool). Received packets stay where the device put
    /// them: records point into them. Size the receive pool for every
    /// connection's window plus its out-of-order queue plus a burst.
    pub fn with_alloc(dev: D, alloc: A, mac: MacAddr, ip: Ipv4Addr, cfg: StackConfig) -> Self {
        let burst = cfg.burst.max(1);
        let seed = Timestamp::now().0 ^ (u64::from(std::process::id()) << 32);
        let csum_offload = dev.tx_checksum_offload();
        let tso = cfg.segmentation_offload && dev.tx_segmentation() && csum_offload;
        let mut s = Stack {
            dev,
            resp: Responder::new(mac, ip),
            cfg,
            tx: Tx {
                pool: alloc,
                burst: Burst::with_capacity(burst),
                mac,
                ip,
                ip_id: seed as u16,
                error: None,
                csum_offload,
                tso,
            },
            rx: Some(Burst::with_capacity(burst)),
            conns: Vec::new(),
            index: HashMap::default(),
            listeners: HashMap::new(),
            events: VecDeque::new(),
            stats: TcpStats::default(),
            next_port: 0,
            rng: seed | 1,
        };
        let span = u64::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        s.next_port = EPHEMERAL.start() + (s.random() % span) as u16;
        s
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, mutable.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Ends the endpoint and gives its device back (to put another stack
    /// on it). Connections still here are dropped without a word to their
    /// peers (no reset: [`release`](Self::release) or close them first);
    /// every packet they hold goes back to its pool.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// The link-level responder (ARP cache, counters).
    pub fn responder(&self) -> &Responder {
        &self.resp
    }

    /// The counters.
    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// The settings.
    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// The next event, oldest first. At most one [`Event::Records`] per
    /// connection waits in the queue.
    pub fn next_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Records(id) = ev {
            if let Some(Some(c)) = self.conns.get_mut(id.0) {
                c.records_event = false;
            }
        }
        Some(ev)
    }

    fn conn(&self, id: ConnId) -> Result<&Conn<D::Packet, R>, TcpError> {
        match self.conns.get(id.0) {
            Some(Some(c)) if !c.released => Ok(c),
            _ => Err(TcpError::NoConnection),
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Conn<D::Packet, R>, TcpError> {
        match self.conns.get_mut(id.0) {
            Some(Some(c)) if !c.released => Ok(c),
            _ => Err(TcpError::NoConnection),
        }
    }

    /// The state of a connection.
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.conn(id).ok().map(|c| c.state)
    }

    /// Local and remote address of a connection.
    pub fn addrs(&self, id: ConnId) -> Option<(SocketAddrV4, SocketAddrV4)> {
        let c = self.conn(id).ok()?;
        Some((SocketAddrV4::new(self.tx.ip, c.local_port), c.remote))
    }

    /// The connection's receive stream (after the handshake): read records
    /// with `read_aa_records`, free them with `free_aa_records`.
    pub fn stream_mut(&mut self, id: ConnId) -> Option<&mut AaStream<D::Packet, R>> {
        self.conn_mut(id).ok()?.stream.as_mut()
    }

    /// The connection's receive stream, to look at.
    pub fn stream(&self, id: ConnId) -> Option<&AaStream<D::Packet, R>> {
        self.conn(id).ok()?.stream.as_ref()
    }

    /// The connection's congestion state (window, threshold, recovery).
    pub fn send_info(&self, id: ConnId) -> Option<SendInfo> {
        let c = self.conn(id).ok()?;
        Some(SendInfo {
            cwnd: c.cwnd,
            ssthresh: c.ssthresh,
            snd_wnd: c.snd_wnd,
            in_flight: d(c.snd_nxt, c.snd_una).max(0) as u32,
            smss: seg_size(c.snd_mss, &self.tx.pool),
            in_recovery: c.in_recovery,
            dup_acks: c.dup_acks,
        })
    }

    /// The smoothed round-trip time, once measured.
    pub fn srtt(&self, id: ConnId) -> Option<Duration> {
        self.conn(id).ok()?.srtt
    }

    /// Opens a connection to `peer`, its bytes to be parsed by `parser`.
    /// The SYN goes out on a later [`poll`](Self::poll), after ARP.
    pub fn connect(&mut self, peer: SocketAddrV4, parser: R) -> Result<ConnId, TcpError> {
        let ip = *peer.ip();
        if ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip == self.tx.ip
            || peer.port() == 0
        {
            return Err(TcpError::BadPeer);
        }
        let mut port = None;
        for _ in 0..=(EPHEMERAL.end() - EPHEMERAL.start()) {
            let p = self.next_port;
            self.next_port = if p == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                p + 1
            };
            if !self.index.contains_key(&(p, peer)) {
                port = Some(p);
                break;
            }
        }
        let port = port.ok_or(TcpError::NoPort)?;
        let iss = self.random() as u32;
        let rcv_wscale = self.rcv_wscale();
        let c = Conn::new(
            port,
            peer,
            iss,
            rcv_wscale,
            Some(parser),
            self.cfg.initial_rto,
            Instant::now(),
        );
        Ok(ConnId(self.insert(c)))
    }

    fn insert(&mut self, c: Conn<D::Packet, R>) -> usize {
        let key = (c.local_port, c.remote);
        let slot = match self.conns.iter().position(Option::is_none) {
            Some(i) => {
                self.conns[i] = Some(c);
                i
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        };
        self.index.insert(key, slot);
        slot
    }

    fn rcv_wscale(&self) -> u8 {
        let buf = self.cfg.aa.stream.recv_buffer;
        let mut ws = 0u8;
        while ws < 14 && (buf >> ws) > 65535 {
            ws += 1;
        }
        ws
    }

    /// Accepts connections to `port` (passive open); each gets its parser
    /// from `new_parser` and is announced by [`Event::Accepted`].
    pub fn listen(
        &mut self,
        port: u16,
        new_parser: impl FnMut() -> R + 'static,
    ) -> Result<(), TcpError> {
        if port == 0 || self.listeners.contains_key(&port) {
            return Err(TcpError::BadPort);
        }
        self.listeners.insert(port, Box::new(new_parser));
        Ok(())
    }

    /// Stops accepting connections to `port` (those accepted stay).
    pub fn unlisten(&mut self, port: u16) -> bool {
        self.listeners.remove(&port).is_some()
    }

    /// A SYN to a listening port: SYN-RECEIVED, SYN-ACK out.
    fn accept_syn(&mut self, seg: &Segment, src: Ipv4Addr, frame: &[u8], now: Instant) {
        let half_open = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.state == State::SynReceived)
            .count();
        let peer_mac = MacAddr([frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]);
        if half_open >= self.cfg.backlog
            || !peer_mac.is_unicast()
            || src.is_broadcast()
            || src.is_multicast()
            || src.is_unspecified()
            || seg.src.1 == 0
        {
            self.stats.syn_dropped += 1;
            return;
        }
        let Some(make) = self.listeners.get_mut(&seg.dst.1) else {
            return;
        };
        let parser = make();
        let iss = self.random() as u32;
        let remote = SocketAddrV4::new(src, seg.src.1);
        let mut c = Conn::new(
            seg.dst.1,
            remote,
            iss,
            self.rcv_wscale(),
            None,
            self.cfg.initial_rto,
            now,
        );
        let irs = seg.seq.0;
        c.state = State::SynReceived;
        c.peer_mac = peer_mac;
        c.snd_mss = seg.opts.mss.unwrap_or(536).clamp(64, self.cfg.mss.max(64));
        match seg.opts.wscale {
            Some(ws) => {
                c.snd_wscale = ws.min(14);
                c.wscale_ok = true;
            }
            None => c.rcv_wscale = 0,
        }
        c.sack_ok = seg.opts.sack_permitted;
        c.snd_wnd = u32::from(seg.window);
        c.snd_wl1 = irs;
        c.snd_wl2 = iss;
        c.cwnd = initial_window(seg_size(c.snd_mss, &self.tx.pool));
        c.stream = Some(AaStream::new(self.cfg.aa, irs.wrapping_add(1), parser));
        let i = self.insert(c);
        let Self {
            conns,
            tx,
            dev,
            stats,
            cfg,
            ..
        } = self;
        let Some(c) = conns[i].as_mut() else { return };
        tx.control(dev, stats, cfg, c, iss, TcpFlags::SYN | TcpFlags::ACK);
        c.snd_nxt = iss.wrapping_add(1);
        c.snd_max = c.snd_nxt;
        c.rtt_probe = Some((c.snd_nxt, now));
        c.rtx_at = Some(now + c.rto);
    }

    /// Queues bytes to send; returns how many fit in the send buffer.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        let room = self.cfg.send_buffer;
        let c = self.conn_mut(id)?;
        if c.fin_queued
            || !matches!(
                c.state,
                State::ArpWait
                    | State::SynSent
                    | State::SynReceived
                    | State::Established
                    | State::CloseWait
            )
        {
            return Err(TcpError::BadState(c.state));
        }
        let n = room.saturating_sub(c.sbuf.len()).min(data.len());
        c.sbuf.extend(&data[..n]);
        Ok(n)
    }

    /// Bytes queued and not yet acknowledged.
    pub fn unacked(&self, id: ConnId) -> Option<usize> {
        Some(self.conn(id).ok()?.sbuf.len())
    }

    /// Closes our direction: FIN after the queued data. Before the handshake
    /// completes the connection just goes away (closed, no event).
    pub fn close(&mut self, id: ConnId) -> Result<(), TcpError> {
        let c = self.conn_mut(id)?;
        match c.state {
            State::ArpWait | State::SynSent | State::SynReceived => {
                c.state = State::Closed;
                c.rtx_at = None;
            }
            State::Established => {
                c.fin_queued = true;
                c.state = State::FinWait1;
            }
            State::CloseWait => {
                c.fin_queued = true;
                c.state = State::LastAck;
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops the connection and its stream (every packet it holds goes back
    /// to the pool; records not freed are gone). A connection still open is
    /// reset. One in TIME-WAIT keeps answering until it ends.
    pub fn release(&mut self, id: ConnId) -> Result<(), TcpError> {
        let Self {
            conns,
            tx,
            dev,
            stats,
            cfg,
            ..
        } = self;
        let c = match conns.get_mut(id.0) {
            Some(Some(c)) if !c.released => c,
            _ => return Err(TcpError::NoConnection),
        };
        if matches!(
            c.state,
            State::SynSent
                | State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
        ) {
            let seq = c.snd_nxt;
            stats.rsts_out += 1;
            tx.control(dev, stats, cfg, c, seq, TcpFlags::RST);
            tx.flush(dev, stats);
            c.state = State::Closed;
        }
        c.stream = None;
        c.parser = None;
        c.sbuf = VecDeque::new();
        c.released = true;
        if c.state != State::TimeWait {
            self.remove(id.0);
        }
        Ok(())
    }

    fn remove(&mut self, i: usize) {
        if let Some(c) = self.conns[i].take() {
            self.index.remove(&(c.local_port, c.remote));
        }
    }

    /// [`poll_at`](Self::poll_at) now.
    pub fn poll(&mut self) -> Result<usize, IoError> {
        self.poll_at(Instant::now())
    }

    /// Receives one burst and handles it, runs the timers due at `now`,
    /// sends what is queued and the ACKs; returns how many frames came in.
    /// An `Err` is the device's (the burst was handled as far as it came).
    pub fn poll_at(&mut self, now: Instant) -> Result<usize, IoError> {
        let mut n = 0;
        if let Some(mut rx) = self.rx.take() {
            let got = self.dev.recv_burst(&mut rx);
            for r in rx.drain(..) {
                self.frame(r, now);
            }
            self.rx = Some(rx);
            match got {
                Ok(k) => n = k,
                Err(IoError::Pool(_)) => self.stats.rx_pool_empty += 1,
                Err(e) => return Err(e),
            }
        }
        self.timers(now);
        self.output(now);
        self.tx.flush(&mut self.dev, &mut self.stats);
        match self.tx.error.take() {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    fn frame(&mut self, r: Rx<D::Packet>, now: Instant) {
        self.stats.frames_in += 1;
        match self.resp.handle_rx(&r, &self.tx.pool) {
            Handled::Reply(p) => {
                self.tx.push(&mut self.dev, p, &mut self.stats);
                return;
            }
            Handled::Pass => {}
            Handled::Learned | Handled::Ignored(_) => return,
        }
        if r.meta.link != LinkType::Ethernet {
            return;
        }
        // A device that checked the checksums is taken at its word.
        let seg = match wire::parse(
            aa_runtime::Packet::data(&r.packet),
            LinkType::Ethernet,
            r.meta.checksum == RxChecksum::Unknown,
        ) {
            Ok(s) => s,
            Err(_) => {
                self.stats.not_tcp += 1;
                return;
            }
        };
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (seg.src.0, seg.dst.0) else {
            self.stats.not_tcp += 1;
            return;
        };
        if dst != self.tx.ip {
            return;
        }
        if matches!(seg.checksum, ChecksumStatus::Invalid) || r.meta.checksum == RxChecksum::Bad {
            self.stats.bad_checksum += 1;
            return;
        }
        self.stats.segments_in += 1;
        let remote = SocketAddrV4::new(src, seg.src.1);
        match self.index.get(&(seg.dst.1, remote)) {
            // Closed but not yet released: for the peer there is no
            // connection (a FIN retransmitted after TIME-WAIT ran out, say).
            Some(&i)
                if self.conns[i]
                    .as_ref()
                    .is_some_and(|c| c.state == State::Closed) =>
            {
                self.no_connection(&seg, &r)
            }
            Some(&i) => self.segment(i, seg, r.packet, now),
            None if seg.flags.0 & (TcpFlags::SYN.0 | TcpFlags::ACK.0 | TcpFlags::RST.0)
                == TcpFlags::SYN.0
                && self.listeners.contains_key(&seg.dst.1) =>
            {
                self.accept_syn(&seg, src, aa_runtime::Packet::data(&r.packet), now)
            }
            None => self.no_connection(&seg, &r),
        }
    }

    /// RFC 9293 3.10.7.1: a segment for no connection gets a RST.
    fn no_connection(&mut self, seg: &Segment, r: &Rx<D::Packet>) {
        self.stats.no_connection += 1;
        if seg.flags.rst() {
            return;
        }
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (seg.src.0, seg.dst.0) else {
            return;
        };
        let data = aa_runtime::Packet::data(&r.packet);
        if data.len() < 12 {
            return;
        }
        let peer_mac = MacAddr([data[6], data[7], data[8], data[9], data[10], data[11]]);
        if !peer_mac.is_unicast() {
            return;
        }
        let (seq, ack, flags) = if seg.flags.ack() {
            (seg.ack.0, 0, TcpFlags::RST)
        } else {
            (
                0,
                seg.seq.0.wrapping_add(seg.seq_len()),
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        self.tx.rst(
            &mut self.dev,
            &mut self.stats,
            peer_mac,
            (dst, seg.dst.1),
            (src, seg.src.1),
            (seq, ack, flags),
        );
    }

    fn segment(&mut self, i: usize, seg: Segment, pkt: D::Packet, now: Instant) {
        let Self {
            conns,
            tx,
            dev,
            stats,
            cfg,
            events,
            ..
        } = self;
        let Some(c) = conns[i].as_mut() else { return };
        let id = ConnId(i);
        match c.state {
            State::ArpWait | State::Closed => {}
            State::SynSent => syn_sent(c, id, &seg, now, tx, dev, stats, cfg, events),
            State::SynReceived => {
                if syn_received(c, id, &seg, now, tx, dev, stats, cfg, events) {
                    synchronized(c, id, &seg, pkt, now, tx, dev, stats, cfg, events);
                } else if c.state == State::Closed {
                    // Never announced: nobody will release it.
                    self.remove(i);
                }
            }
            _ => synchronized(c, id, &seg, pkt, now, tx, dev, stats, cfg, events),
        }
    }

    fn timers(&mut self, now: Instant) {
        let wall = Timestamp::now();
        for i in 0..self.conns.len() {
            let Self {
                conns,
                tx,
                dev,
                stats,
                cfg,
                events,
                resp,
                ..
            } = self;
            let Some(c) = conns[i].as_mut() else { continue };
            let id = ConnId(i);
            match c.state {
                State::ArpWait => {
                    if let Some(mac) = resp.lookup(*c.remote.ip(), wall) {
                        c.peer_mac = mac;
                        c.state = State::SynSent;
                        let iss = c.iss;
                        tx.control(dev, stats, cfg, c, iss, TcpFlags::SYN);
                        c.snd_nxt = iss.wrapping_add(1);
                        c.snd_max = c.snd_nxt;
                        c.rtt_probe = Some((c.snd_nxt, now));
                        c.rtx_at = Some(now + c.rto);
                    } else if now >= c.arp_at {
                        if c.arp_sent >= cfg.arp_tries {
                            c.state = State::Closed;
                            events.push_back(Event::Reset(id, ResetReason::Unreachable));
                        } else if let Ok(p) = resp.arp_request(*c.remote.ip(), &tx.pool) {
                            tx.push(dev, p, stats);
                            c.arp_sent += 1;
                            c.arp_at = now + cfg.arp_retry;
                        } else {
                            c.arp_at = now + Duration::from_millis(10);
                        }
                    }
                }
                State::TimeWait => {
                    if c.tw_until.is_some_and(|t| now >= t) {
                        c.state = State::Closed;
                        if c.released {
                            self.remove(i);
                        }
                    }
                }
                State::Closed => {}
                _ => {
                    if c.rtx_at.is_some_and(|t| now >= t) {
                        stats.timeouts += 1;
                        c.retries += 1;
                        if c.retries > cfg.max_retries && c.state == State::SynReceived {
                            // Never announced: gone without an event.
                            let seq = c.snd_nxt;
                            stats.rsts_out += 1;
                            tx.control(dev, stats, cfg, c, seq, TcpFlags::RST);
                            c.state = State::Closed;
                            self.remove(i);
                            continue;
                        }
                        if c.retries > cfg.max_retries {
                            let seq = c.snd_nxt;
                            stats.rsts_out += 1;
                            tx.control(dev, stats, cfg, c, seq, TcpFlags::RST);
                            c.state = State::Closed;
                            c.rtx_at = None;
                            events.push_back(Event::Reset(id, ResetReason::TimedOut));
                            continue;
                        }
                        c.rto = (c.rto * 2).min(cfg.max_rto);
                        c.rtt_probe = None;
                        c.rtx_at = Some(now + c.rto);
                        if c.state == State::SynSent {
                            let iss = c.iss;
                            tx.control(dev, stats, cfg, c, iss, TcpFlags::SYN);
                        } else if c.state == State::SynReceived {
                            let iss = c.iss;
                            tx.control(dev, stats, cfg, c, iss, TcpFlags::SYN | TcpFlags::ACK);
                        } else {
                            let persist = c.snd_wnd == 0 && !c.sbuf.is_empty();
                            if !persist {
                                // RFC 5681 3.1 (equation 4, only for the first
                                // timeout of a segment) and RFC 6582 3.2 step 4:
                                // one segment, then slow start from SND.UNA.
                                let smss = seg_size(c.snd_mss, &tx.pool);
                                if c.retries == 1 {
                                    let flight = d(c.snd_max, c.snd_una).max(0) as u32;
                                    c.ssthresh = (flight / 2).max(2 * smss);
                                }
                                c.cwnd = smss;
                                c.ca_acked = 0;
                                c.dup_acks = 0;
                                c.in_recovery = false;
                                c.recover = c.snd_max.wrapping_sub(1);
                                // The peer may have dropped what it SACKed
                                // (RFC 2018 8): forget it.
                                c.sacked = SackBlocks::NONE;
                            }
                            // What goes again is counted as it is sent.
                            c.snd_nxt = c.snd_una;
                            if persist {
                                // Zero-window probe: one byte past the window.
                                let b = [c.sbuf[0]];
                                let seq = c.snd_una;
                                tx.segment(dev, stats, cfg, c, seq, TcpFlags::ACK, out::one(&b));
                                c.snd_nxt = seq.wrapping_add(1);
                                if d(c.snd_nxt, c.snd_max) > 0 {
                                    c.snd_max = c.snd_nxt;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Data, FINs, then one ACK per connection that owes one.
    fn output(&mut self, now: Instant) {
        let Self {
            conns,
            tx,
            dev,
            stats,
            cfg,
            events,
            ..
        } = self;
        for (i, slot) in conns.iter_mut().enumerate() {
            let Some(c) = slot.as_mut() else { continue };
            if matches!(
                c.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            ) {
                send_data(c, now, tx, dev, stats, cfg);
            }
            if let Some(s) = &c.stream {
                let recs = s.stats().records;
                if recs > c.records_seen {
                    c.records_seen = recs;
                    if !c.records_event {
                        c.records_event = true;
                        events.push_back(Event::Records(ConnId(i)));
                    }
                }
                if s.state() == AaState::Failed && !c.failed_reported {
                    c.failed_reported = true;
                    events.push_back(Event::ParseFailed(ConnId(i)));
                }
                if c.receiving() {
                    let wnd = c.rcv_wnd(cfg);
                    let edge = c
                        .rcv_nxt()
                        .wrapping_add((wnd >> c.rcv_wscale) << c.rcv_wscale);
                    let grow = d(edge, c.last_edge);
                    let threshold =
                        (cfg.aa.stream.recv_buffer / 2).min(u32::from(c.snd_mss)) as i32;
                    if grow >= threshold.max(1) && !c.need_ack {
                        stats.window_updates += 1;
                        c.need_ack = true;
                    }
                }
            }
            if c.need_ack {
                tx.ack(dev, stats, cfg, c);
            }
        }
    }
}

/// Bytes `off..off + n` of a send buffer, in its ring's two pieces.
fn range_of(q: &VecDeque<u8>, off: usize, n: usize) -> out::Payload<'_> {
    let (a, b) = q.as_slices();
    if off >= a.len() {
        let off = off - a.len();
        [&b[off..off + n], &[]]
    } else if off + n <= a.len() {
        [&a[off..off + n], &[]]
    } else {
        [&a[off..], &b[..off + n - a.len()]]
    }
}

/// Sends queued data within `min(cwnd, peer's window)`, then the FIN.
fn send_data<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    now: Instant,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
) {
    let mss = seg_size(c.snd_mss, &tx.pool) as usize;
    // With segmentation offload, a frame holds as many segments as fit.
    let most = if tx.tso {
        (tso_size(&tx.pool) as usize).max(mss)
    } else {
        mss
    };
    loop {
        let off = d(c.snd_nxt, c.snd_una).max(0) as usize;
        let len = c.sbuf.len();
        if off < len {
            let cwnd_limited = c.cwnd < c.snd_wnd;
            let wnd_room = (c.snd_wnd.min(c.cwnd) as usize).saturating_sub(off);
            let mut n = most.min(len - off).min(wnd_room);
            if n == 0 || (cwnd_limited && off > 0 && n < mss.min(len - off)) {
                // No room, or only for a runt the congestion window cuts
                // short: the ACKs of what is in flight open it.
                break;
            }
            if n > mss && off + n < len {
                // Whole segments only, unless the data ends here: the
                // window's odd rest waits for the next frame.
                n -= n % mss;
            }
            let last = off + n == len;
            let mut flags = TcpFlags::ACK;
            if last {
                flags = flags | TcpFlags::PSH;
            }
            let fin = last && c.fin_queued && wnd_room > n;
            if fin {
                flags = flags | TcpFlags::FIN;
            }
            let seq = c.snd_nxt;
            if d(seq, c.snd_max) < 0 {
                stats.retransmitted_bytes += n as u64;
            }
            // The bytes go from the send buffer straight into the frame; the
            // buffer is out of `c` meanwhile (a swap, no allocation).
            let sbuf = std::mem::take(&mut c.sbuf);
            tx.segment(dev, stats, cfg, c, seq, flags, range_of(&sbuf, off, n));
            c.sbuf = sbuf;
            c.snd_nxt = seq.wrapping_add(n as u32 + u32::from(fin));
        } else if c.fin_queued && off == len {
            let seq = c.snd_nxt;
            tx.control(dev, stats, cfg, c, seq, TcpFlags::FIN);
            c.snd_nxt = seq.wrapping_add(1);
        } else {
            break;
        }
        if d(c.snd_nxt, c.snd_max) > 0 {
            c.snd_max = c.snd_nxt;
            if c.rtt_probe.is_none() && c.retries == 0 {
                c.rtt_probe = Some((c.snd_max, now));
            }
        }
        if c.rtx_at.is_none() {
            c.rtx_at = Some(now + c.rto);
        }
    }
    // Data waits behind a zero window: the timer sends the probe.
    if c.rtx_at.is_none() && !c.sbuf.is_empty() {
        c.rtx_at = Some(now + c.rto);
    }
}

/// Sends the first unacknowledged segment again (fast retransmit, NewReno's
/// partial ACK): up to an SMSS from SND.UNA, cut short where the peer's
/// SACK blocks say the hole ends, with the FIN if it was sent and fits.
/// SND.NXT stays.
fn retransmit_first<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
) {
    let mss = seg_size(c.snd_mss, &tx.pool) as usize;
    let len = c.sbuf.len();
    let mut n = mss.min(len);
    // SACK: only the hole, not the bytes after it the peer reported held.
    if let Some(&(l, _)) = c.sacked.as_slice().first() {
        let hole = d(l, c.snd_una);
        if hole > 0 {
            n = n.min(hole as usize);
        }
    }
    let fin_sent = d(c.snd_max, c.snd_una) > len as i32 && c.fin_queued;
    let fin = fin_sent && n == len;
    if n == 0 && !fin {
        return;
    }
    let mut flags = TcpFlags::ACK;
    if n == len && n > 0 {
        flags = flags | TcpFlags::PSH;
    }
    if fin {
        flags = flags | TcpFlags::FIN;
    }
    let seq = c.snd_una;
    let sbuf = std::mem::take(&mut c.sbuf);
    tx.segment(dev, stats, cfg, c, seq, flags, range_of(&sbuf, 0, n));
    c.sbuf = sbuf;
    stats.retransmitted_bytes += n as u64;
    // Karn: no RTT sample across a retransmission.
    c.rtt_probe = None;
}

/// Congestion control on an ACK (RFC 5681, RFC 6582): `acked` new bytes
/// (0: a duplicate ACK if `dup`).
#[allow(clippy::too_many_arguments)]
fn congestion_on_ack<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    ack: u32,
    acked: u32,
    dup: bool,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
) {
    let smss = seg_size(c.snd_mss, &tx.pool);
    let cap = u32::try_from(cfg.send_buffer)
        .unwrap_or(u32::MAX)
        .max(2 * smss)
        .saturating_add(4 * smss);
    if acked > 0 {
        if c.in_recovery {
            if d(ack, c.recover) > 0 {
                // Full ACK: deflate (RFC 6582 3.2 step 3, option 2).
                let flight = d(c.snd_max, ack).max(0) as u32;
                c.cwnd = c.ssthresh.min(flight.max(smss) + smss);
                c.in_recovery = false;
                c.dup_acks = 0;
                c.ca_acked = 0;
            } else {
                // Partial ACK: the next hole goes at once; deflate by the
                // bytes acknowledged, add one SMSS back if that was one.
                stats.partial_ack_retransmits += 1;
                retransmit_first(c, tx, dev, stats, cfg);
                c.cwnd = c.cwnd.saturating_sub(acked);
                if acked >= smss {
                    c.cwnd += smss;
                }
                c.cwnd = c.cwnd.max(smss);
            }
        } else {
            c.dup_acks = 0;
            if c.cwnd < c.ssthresh {
                // Slow start, counting bytes (RFC 3465) since ACKs here may
                // each cover a whole burst; at most doubling per ACK (an ACK
                // that jumps over a filled hole is no sign of room).
                c.cwnd = c.cwnd.saturating_add(acked.min(c.cwnd)).min(c.ssthresh);
            } else {
                // Congestion avoidance: one SMSS per window acknowledged.
                c.ca_acked = c.ca_acked.saturating_add(acked);
                if c.ca_acked >= c.cwnd {
                    c.ca_acked -= c.cwnd;
                    c.cwnd = c.cwnd.saturating_add(smss);
                }
            }
            c.cwnd = c.cwnd.min(cap);
            // Keep `recover` just behind SND.UNA so that it never falls a
            // half sequence space behind.
            if d(ack.wrapping_sub(1), c.recover) > 0 {
                c.recover = ack.wrapping_sub(1);
            }
        }
    } else if dup {
        stats.dup_acks_in += 1;
        c.dup_acks = c.dup_acks.saturating_add(1);
        if c.in_recovery {
            // Each further duplicate: a segment left the network.
            c.cwnd = c.cwnd.saturating_add(smss).min(cap.saturating_add(cap));
        } else if (c.dup_acks == 3 || c.sacked_bytes() > 2 * smss) && d(ack, c.recover) > 0 {
            // Fast retransmit (RFC 5681 3.2, RFC 6582 3.2 step 2), after
            // three duplicate ACKs or, with SACK, once more than two
            // segments' worth of bytes above the hole were SACKed (RFC
            // 6675's IsLost): with large frames in flight, a loss may be
            // followed by fewer than three ACKs.
            let flight = d(c.snd_max, c.snd_una).max(0) as u32;
            c.ssthresh = (flight / 2).max(2 * smss);
            c.recover = c.snd_max.wrapping_sub(1);
            c.in_recovery = true;
            c.ca_acked = 0;
            stats.fast_retransmits += 1;
            retransmit_first(c, tx, dev, stats, cfg);
            c.cwnd = c.ssthresh + 3 * smss;
        }
    }
}

/// RFC 9293 3.10.7.3, SYN-SENT.
#[allow(clippy::too_many_arguments)]
fn syn_sent<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    id: ConnId,
    seg: &Segment,
    now: Instant,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
    events: &mut VecDeque<Event>,
) {
    let f = seg.flags;
    let ack = seg.ack.0;
    let ack_ok = f.ack() && d(ack, c.iss) > 0 && d(ack, c.snd_max) <= 0;
    if f.ack() && !ack_ok {
        if !f.rst() {
            let (src, dst) = ((tx.ip, c.local_port), (*c.remote.ip(), c.remote.port()));
            tx.rst(dev, stats, c.peer_mac, src, dst, (ack, 0, TcpFlags::RST));
        }
        return;
    }
    if f.rst() {
        if ack_ok {
            c.state = State::Closed;
            c.rtx_at = None;
            events.push_back(Event::Reset(id, ResetReason::Refused));
        }
        return;
    }
    if !f.syn() || !ack_ok {
        // A SYN without ACK would be a simultaneous open: not supported.
        return;
    }
    let Some(parser) = c.parser.take() else {
        return;
    };
    let irs = seg.seq.0;
    c.snd_una = ack;
    c.snd_nxt = ack;
    c.snd_mss = seg.opts.mss.unwrap_or(536).clamp(64, cfg.mss.max(64));
    match seg.opts.wscale {
        Some(s) => {
            c.snd_wscale = s.min(14);
            c.wscale_ok = true;
        }
        None => {
            c.snd_wscale = 0;
            c.rcv_wscale = 0;
        }
    }
    // Our SYN offered SACK: it is on if the peer's SYN-ACK offers it too.
    c.sack_ok = seg.opts.sack_permitted;
    c.snd_wnd = u32::from(seg.window);
    c.snd_wl1 = irs;
    c.snd_wl2 = ack;
    c.cwnd = initial_window(seg_size(c.snd_mss, &tx.pool));
    c.recover = c.iss;
    c.stream = Some(AaStream::new(cfg.aa, irs.wrapping_add(1), parser));
    if let Some((probe, at)) = c.rtt_probe.take() {
        if d(ack, probe) >= 0 && c.retries == 0 {
            c.rtt_sample(now.saturating_duration_since(at), cfg);
        }
    }
    c.retries = 0;
    c.rtx_at = None;
    c.state = State::Established;
    tx.ack(dev, stats, cfg, c);
    events.push_back(Event::Connected(id));
}

/// SYN-RECEIVED (RFC 9293 3.10.7.4, the parts that differ): the ACK of our
/// SYN makes the connection established, and the segment goes on through
/// [`synchronized`] (`true`).
#[allow(clippy::too_many_arguments)]
fn syn_received<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    id: ConnId,
    seg: &Segment,
    now: Instant,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
    events: &mut VecDeque<Event>,
) -> bool {
    let f = seg.flags;
    let rcv_nxt = c.rcv_nxt();
    if f.rst() {
        if seg.seq.0 == rcv_nxt {
            c.state = State::Closed;
        }
        return false;
    }
    if f.syn() {
        if !f.ack() && seg.seq.0.wrapping_add(1) == rcv_nxt {
            // The peer's SYN again: our SYN-ACK was lost.
            let iss = c.iss;
            tx.control(dev, stats, cfg, c, iss, TcpFlags::SYN | TcpFlags::ACK);
        }
        return false;
    }
    if !f.ack() {
        return false;
    }
    let ack = seg.ack.0;
    if ack != c.iss.wrapping_add(1) {
        let (src, dst) = ((tx.ip, c.local_port), (*c.remote.ip(), c.remote.port()));
        tx.rst(dev, stats, c.peer_mac, src, dst, (ack, 0, TcpFlags::RST));
        return false;
    }
    let d_seq = d(seg.seq.0, rcv_nxt);
    if d_seq < 0 || d_seq as u32 > c.rcv_wnd(cfg) {
        tx.ack(dev, stats, cfg, c);
        return false;
    }
    c.snd_una = ack;
    if let Some((_, at)) = c.rtt_probe.take() {
        if c.retries == 0 {
            c.rtt_sample(now.saturating_duration_since(at), cfg);
        }
    }
    c.retries = 0;
    c.rtx_at = None;
    c.snd_wnd = u32::from(seg.window) << c.snd_wscale;
    c.snd_wl1 = seg.seq.0;
    c.snd_wl2 = ack;
    c.state = State::Established;
    events.push_back(Event::Accepted(id));
    true
}

/// RFC 9293 3.10.7.4 for the synchronized states.
#[allow(clippy::too_many_arguments)]
fn synchronized<A: FrameAlloc, D: PacketIo<Packet = A::Packet>, R: Parser>(
    c: &mut Conn<A::Packet, R>,
    id: ConnId,
    seg: &Segment,
    pkt: A::Packet,
    now: Instant,
    tx: &mut Tx<A>,
    dev: &mut D,
    stats: &mut TcpStats,
    cfg: &StackConfig,
    events: &mut VecDeque<Event>,
) {
    let f = seg.flags;
    let seq = seg.seq.0;
    let len = seg.seq_len();
    let rcv_nxt = c.rcv_nxt();
    let wnd = c.rcv_wnd(cfg);
    let in_wnd = |x: u32| {
        let o = d(x, rcv_nxt);
        o >= 0 && (o as u32) < wnd
    };
    let acceptable = match (len, wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => in_wnd(seq),
        (_, 0) => false,
        (_, _) => in_wnd(seq) || in_wnd(seq.wrapping_add(len - 1)),
    };
    if !acceptable {
        stats.unacceptable += 1;
        if f.rst() {
            return;
        }
        stats.dup_acks_out += 1;
        tx.ack(dev, stats, cfg, c);
        if !(wnd == 0 && seq == rcv_nxt) {
            return;
        }
        // Zero window: the segment's data cannot be taken, but its ACK and
        // window still count.
    }
    if f.rst() {
        if seq == rcv_nxt {
            c.state = State::Closed;
            c.rtx_at = None;
            events.push_back(Event::Reset(id, ResetReason::Reset));
        } else {
            stats.challenge_acks += 1;
            tx.ack(dev, stats, cfg, c);
        }
        return;
    }
    if f.syn() {
        stats.challenge_acks += 1;
        tx.ack(dev, stats, cfg, c);
        return;
    }
    if !f.ack() {
        return;
    }
    let ack = seg.ack.0;
    if d(ack, c.snd_max) > 0 {
        tx.ack(dev, stats, cfg, c);
        return;
    }
    let mut sacked_more = false;
    if c.sack_ok {
        let opts = pkt
            .data()
            .get(seg.tcp_offset as usize + 20..seg.payload_offset as usize)
            .unwrap_or_default();
        sacked_more = c.sack_update(ack, opts);
    }
    let new_wnd = u32::from(seg.window) << c.snd_wscale;
    // RFC 5681's duplicate ACK: nothing new acknowledged, data outstanding,
    // no data, SYN or FIN, the same window (and not a zero-window probe's
    // answer). With SACK, RFC 6675's: one that SACKs bytes not SACKed
    // before, whatever its window (a receiver such as Linux's may open its
    // window while it holds data after a hole).
    let dup = ack == c.snd_una
        && c.snd_una != c.snd_max
        && seg.payload_len == 0
        && !f.fin()
        && (new_wnd == c.snd_wnd || sacked_more)
        && c.snd_wnd != 0;
    if dup {
        congestion_on_ack(c, ack, 0, true, tx, dev, stats, cfg);
    }
    if d(ack, c.snd_una) > 0 {
        let acked = d(ack, c.snd_una) as usize;
        let data = acked.min(c.sbuf.len());
        let fin_acked = acked > c.sbuf.len() && c.fin_queued;
        c.sbuf.drain(..data);
        c.snd_una = ack;
        if d(c.snd_nxt, ack) < 0 {
            c.snd_nxt = ack;
        }
        if let Some((probe, at)) = c.rtt_probe {
            if d(ack, probe) >= 0 {
                c.rtt_probe = None;
                c.rtt_sample(now.saturating_duration_since(at), cfg);
            }
        }
        c.retries = 0;
        c.rtx_at = (c.snd_una != c.snd_max).then(|| now + c.rto);
        congestion_on_ack(c, ack, acked as u32, false, tx, dev, stats, cfg);
        if fin_acked {
            match c.state {
                State::FinWait1 => c.state = State::FinWait2,
                State::Closing => {
                    c.state = State::TimeWait;
                    c.tw_until = Some(now + cfg.time_wait);
                    events.push_back(Event::Closed(id));
                }
                State::LastAck => {
                    c.state = State::Closed;
                    events.push_back(Event::Closed(id));
                }
                _ => {}
            }
        }
    }
    if d(seq, c.snd_wl1) > 0 || (seq == c.snd_wl1 && d(ack, c.snd_wl2) >= 0) {
        c.snd_wnd = u32::from(seg.window) << c.snd_wscale;
        c.snd_wl1 = seq;
        c.snd_wl2 = ack;
        if c.snd_wnd == 0 {
            // The peer answers our probes: it is alive, only its window is
            // closed (the probe timer backs off but never gives up).
            c.retries = 0;
        }
    }
    if !acceptable {
        return;
    }
    if seg.payload_len > 0 && c.receiving() {
        if let Some(s) = c.stream.as_mut() {
            match s.insert(seq, pkt, seg.payload_range()) {
                Insert::InOrder { .. } => c.need_ack = true,
                Insert::OutOfOrder => {
                    c.sack_note(seq);
                    stats.out_of_order += 1;
                    stats.dup_acks_out += 1;
                    tx.ack(dev, stats, cfg, c);
                }
                Insert::Duplicate | Insert::OutOfWindow => {
                    stats.duplicates += 1;
                    stats.dup_acks_out += 1;
                    tx.ack(dev, stats, cfg, c);
                }
                Insert::OverCap => stats.over_cap += 1,
                Insert::Empty => {}
            }
        }
    }
    if f.fin() && c.receiving() {
        let fin_seq = seq.wrapping_add(seg.payload_len);
        let Some(s) = c.stream.as_mut() else { return };
        if fin_seq == s.stream().rcv_nxt().0 {
            s.finish();
            c.fin_received = true;
            c.need_ack = true;
            events.push_back(Event::Finished(id));
            match c.state {
                State::Established => c.state = State::CloseWait,
                // Our FIN not acknowledged yet (an ACK of it in this very
                // segment moved us to FIN-WAIT-2 above).
                State::FinWait1 => c.state = State::Closing,
                State::FinWait2 => {
                    c.state = State::TimeWait;
                    c.tw_until = Some(now + cfg.time_wait);
                    events.push_back(Event::Closed(id));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod test;
