//! The link-level responder: what a host on an Ethernet segment must answer
//! before any TCP works — ARP for its IPv4 address, and ICMP echo (ping).
//!
//! [`Responder`] owns our address pair (MAC, IPv4) and an [`ArpCache`]. Each
//! received Ethernet frame goes through [`Responder::handle`], which returns
//! a [`Handled`]:
//!
//! - an ARP request for our address: the cache learns the sender (RFC 826)
//!   and the ARP reply comes back as [`Handled::Reply`], a frame built into a
//!   transmit buffer of the caller's [`FrameAlloc`] (a [`PacketPool`], a DPDK
//!   mempool), ready for `send_burst`;
//! - an ICMP echo request to our address: the echo reply, likewise;
//! - an ARP reply or announcement for us (the answer to
//!   [`Responder::arp_request`]): [`Handled::Learned`];
//! - any other IPv4 packet to our address (TCP, other ICMP): [`Handled::Pass`],
//!   for the next layer;
//! - everything else: [`Handled::Ignored`] with the reason.
//!
//! Every outcome is counted in [`LinkStats`]. Nothing here panics on any
//! input: every length is checked before it is used (the unit tests feed
//! truncated, mutated and random frames). Only untagged Ethernet II frames
//! are handled; IPv4 fragments are not reassembled (an ICMP fragment is
//! ignored); a reply needs one pool buffer and allocates nothing else.
//!
//! Validation follows what Linux checks: the IPv4 header checksum and length,
//! the ICMP checksum; no reply to a broadcast, multicast or unspecified
//! source; ARP only for Ethernet/IPv4, and an ARP message claiming our own
//! IPv4 address from another MAC is a conflict, counted and not learnt.

pub mod arp;
pub mod icmp;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[cfg(doc)]
use aa_runtime::PacketPool;
use aa_runtime::{Packet, PoolError, PoolPacket};
use etherparse::{IpNumber, Ipv4HeaderSlice};

pub use arp::{ArpCache, ArpMessage, ArpOp};

use crate::io::alloc::FrameAlloc;
use crate::io::{Rx, RxChecksum, Timestamp};
use crate::wire::LinkType;

/// An Ethernet (EUI-48) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(self) -> bool {
        self == MacAddr::BROADCAST
    }
    /// Whether the group bit is set (multicast, broadcast included).
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }
    /// Whether this names one station: neither group nor all zeros.
    pub fn is_unicast(self) -> bool {
        !self.is_multicast() && self != MacAddr::ZERO
    }
    /// Whether the locally administered bit is set (addresses made up by
    /// software, like `02:…`).
    pub fn is_local(self) -> bool {
        self.0[0] & 2 == 2
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not six hexadecimal bytes separated by `:` or `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMacAddr;

impl fmt::Display for BadMacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address (six hex bytes like 02:aa:00:00:00:01)")
    }
}

impl std::error::Error for BadMacAddr {}

impl FromStr for MacAddr {
    type Err = BadMacAddr;
    fn from_str(s: &str) -> Result<MacAddr, BadMacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or(BadMacAddr)?;
            if p.is_empty() || p.len() > 2 {
                return Err(BadMacAddr);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| BadMacAddr)?;
        }
        match parts.next() {
            None => Ok(MacAddr(out)),
            Some(_) => Err(BadMacAddr),
        }
    }
}

/// Why a frame got no answer and goes no further.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Truncated, or lengths that do not add up (Ethernet, ARP, IPv4, ICMP).
    Malformed,
    /// A bad IPv4 header or ICMP checksum.
    BadChecksum,
    /// For another MAC or IPv4 address.
    NotOurs,
    /// Not a frame this layer knows: another Ethernet type (IPv6, VLAN tags,
    /// ...), another link type, ARP not for Ethernet/IPv4 or with another
    /// operation.
    Unsupported,
    /// An IPv4 fragment of an ICMP message (fragments are not reassembled).
    Fragment,
    /// From an address that must not be answered or learnt: broadcast,
    /// multicast or unspecified, or claiming our own IPv4 address.
    BadSource,
    /// A reply was due but no pool buffer was free, or it is too small.
    NoBuffer,
}

/// What [`Responder::handle`] made of a frame; `P` is the packet type of the
/// allocator replies are built with.
#[derive(Debug)]
pub enum Handled<P = PoolPacket> {
    /// Send this frame: an ARP reply or an ICMP echo reply.
    Reply(P),
    /// An ARP message that taught the cache a mapping (a reply to our
    /// request, an announcement refreshing a known neighbour).
    Learned,
    /// An IPv4 packet to our address that is not an echo request: for the
    /// next layer.
    Pass,
    /// Dropped here.
    Ignored(Ignored),
}

/// Counters of a [`Responder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames handled.
    pub frames: u64,
    /// ARP requests for our address answered.
    pub arp_answered: u64,
    /// ICMP echo requests answered.
    pub echo_answered: u64,
    /// ARP messages that added or refreshed a cache entry.
    pub arp_learned: u64,
    /// ARP requests built by [`Responder::arp_request`].
    pub arp_requests: u64,
    /// ARP messages from another MAC claiming our IPv4 address.
    pub arp_conflicts: u64,
    /// Frames handed on ([`Handled::Pass`]).
    pub passed: u64,
    /// [`Ignored::Malformed`] frames.
    pub malformed: u64,
    /// [`Ignored::BadChecksum`] frames.
    pub bad_checksum: u64,
    /// [`Ignored::NotOurs`] frames.
    pub not_ours: u64,
    /// [`Ignored::Unsupported`] frames.
    pub unsupported: u64,
    /// [`Ignored::Fragment`] frames.
    pub fragments: u64,
    /// [`Ignored::BadSource`] frames.
    pub bad_source: u64,
    /// [`Ignored::NoBuffer`]: replies not sent for want of a buffer.
    pub no_buffer: u64,
}

impl LinkStats {
    /// Frames dropped, whatever the reason.
    pub fn ignored(&self) -> u64 {
        self.malformed
            + self.bad_checksum
            + self.not_ours
            + self.unsupported
            + self.fragments
            + self.bad_source
            + self.no_buffer
    }
}

const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;

/// Answers ARP and ICMP echo for one (MAC, IPv4) address pair and keeps the
/// ARP cache of its neighbours.
#[derive(Clone, Debug)]
pub struct Responder {
    mac: MacAddr,
    ip: Ipv4Addr,
    cache: ArpCache,
    stats: LinkStats,
    ip_id: u16,
}

fn is_bad_ip_source(ip: Ipv4Addr) -> bool {
    ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast()
}

impl Responder {
    /// A responder for `(mac, ip)` with a default [`ArpCache`].
    pub fn new(mac: MacAddr, ip: Ipv4Addr) -> Responder {
        Responder::with_cache(mac, ip, ArpCache::default())
    }

    /// A responder for `(mac, ip)` with the given cache.
    pub fn with_cache(mac: MacAddr, ip: Ipv4Addr, cache: ArpCache) -> Responder {
        Responder {
            mac,
            ip,
            cache,
            stats: LinkStats::default(),
            ip_id: 0,
        }
    }

    /// Our MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Our IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The ARP cache.
    pub fn cache(&self) -> &ArpCache {
        &self.cache
    }

    /// The ARP cache, to add or remove entries by hand.
    pub fn cache_mut(&mut self) -> &mut ArpCache {
        &mut self.cache
    }

    /// The MAC address of neighbour `ip`, if the cache knows it at `now`.
    pub fn lookup(&self, ip: Ipv4Addr, now: Timestamp) -> Option<MacAddr> {
        self.cache.lookup(ip, now)
    }

    /// The counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Builds a broadcast ARP request for the MAC address of `target`, to
    /// send; the answer comes back through [`handle`](Self::handle) as
    /// [`Handled::Learned`] and lands in the cache.
    pub fn arp_request<A: FrameAlloc>(
        &mut self,
        target: Ipv4Addr,
        pool: &A,
    ) -> Result<A::Packet, PoolError> {
        let msg = ArpMessage::request(self.mac, self.ip, target);
        let p = pool
            .build(|b| arp::write_frame(b, MacAddr::BROADCAST, &msg))
            .map_err(|e| match e {
                PoolError::TooLong { buf_size, .. } => PoolError::TooLong {
                    len: arp::ARP_FRAME_LEN,
                    buf_size,
                },
                e => e,
            })?;
        self.stats.arp_requests += 1;
        Ok(p)
    }

    /// [`handle`](Self::handle) for a received packet: its timestamp is the
    /// time; a link type other than Ethernet is [`Ignored::Unsupported`].
    pub fn handle_rx<P: Packet, A: FrameAlloc>(
        &mut self,
        rx: &Rx<P>,
        pool: &A,
    ) -> Handled<A::Packet> {
        if rx.meta.link != LinkType::Ethernet {
            self.stats.frames += 1;
            return self.ignore(Ignored::Unsupported);
        }
        self.handle_checked(rx.packet.data(), rx.meta.ts, rx.meta.checksum, pool)
    }

    /// Handles one received Ethernet frame at time `now` (see the module
    /// documentation); a reply is built into a buffer of `pool`.
    pub fn handle<A: FrameAlloc>(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        pool: &A,
    ) -> Handled<A::Packet> {
        self.handle_checked(frame, now, RxChecksum::Unknown, pool)
    }

    /// [`handle`](Self::handle) with the device's word on the IPv4 header
    /// checksum ([`RxChecksum`]): `Good` skips checking it, `Bad` ignores
    /// the frame as a bad checksum. (Device checks do not cover ICMP's own
    /// checksum, which is always checked.)
    fn handle_checked<A: FrameAlloc>(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        device: RxChecksum,
        pool: &A,
    ) -> Handled<A::Packet> {
        self.stats.frames += 1;
        let out = self.dispatch(frame, now, device, pool);
        match out {
            Ok(Handled::Ignored(why)) | Err(why) => self.ignore(why),
            Ok(Handled::Pass) => {
                self.stats.passed += 1;
                Handled::Pass
            }
            Ok(h) => h,
        }
    }

    fn ignore<P>(&mut self, why: Ignored) -> Handled<P> {
        let s = &mut self.stats;
        *match why {
            Ignored::Malformed => &mut s.malformed,
            Ignored::BadChecksum => &mut s.bad_checksum,
            Ignored::NotOurs => &mut s.not_ours,
            Ignored::Unsupported => &mut s.unsupported,
            Ignored::Fragment => &mut s.fragments,
            Ignored::BadSource => &mut s.bad_source,
            Ignored::NoBuffer => &mut s.no_buffer,
        } += 1;
        Handled::Ignored(why)
    }

    fn dispatch<A: FrameAlloc>(
        &mut self,
        frame: &[u8],
        now: Timestamp,
        device: RxChecksum,
        pool: &A,
    ) -> Result<Handled<A::Packet>, Ignored> {
        let Some((eth, payload)) = frame.split_first_chunk::<ETH_LEN>() else {
            return Err(Ignored::Malformed);
        };
        let dst = MacAddr([eth[0], eth[1], eth[2], eth[3], eth[4], eth[5]]);
        let src = MacAddr([eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]]);
        match u16::from_be_bytes([eth[12], eth[13]]) {
            arp::ETHERTYPE_ARP => self.handle_arp(dst, payload, now, pool),
            ETHERTYPE_IPV4 => self.handle_ipv4(dst, src, payload, device, pool),
            _ => Err(Ignored::Unsupported),
        }
    }

    fn handle_arp<A: FrameAlloc>(
        &mut self,
        eth_dst: MacAddr,
        payload: &[u8],
        now: Timestamp,
        pool: &A,
    ) -> Result<Handled<A::Packet>, Ignored> {
        let msg = arp::parse(payload).map_err(|e| match e {
            arp::ArpError::Truncated => Ignored::Malformed,
            arp::ArpError::Unsupported => Ignored::Unsupported,
        })?;
        if eth_dst != self.mac && !eth_dst.is_broadcast() {
            return Err(Ignored::NotOurs);
        }
        if !matches!(msg.op, ArpOp::Request | ArpOp::Reply) {
            return Err(Ignored::Unsupported);
        }
        if !msg.sender_mac.is_unicast() || msg.sender_mac == self.mac {
            return Err(Ignored::BadSource);
        }
        if msg.sender_ip == self.ip {
            self.stats.arp_conflicts += 1;
            return Err(Ignored::BadSource);
        }
        // RFC 826: update a sender we know; add it if the message is for us.
        // An ARP probe (sender 0.0.0.0) teaches nothing but is answered.
        let learnable = !is_bad_ip_source(msg.sender_ip);
        let merged = learnable && self.cache.refresh(msg.sender_ip, msg.sender_mac, now);
        if msg.target_ip != self.ip {
            if merged {
                self.stats.arp_learned += 1;
                return Ok(Handled::Learned);
            }
            return Err(Ignored::NotOurs);
        }
        if learnable {
            if !merged {
                self.cache.insert(msg.sender_ip, msg.sender_mac, now);
            }
            self.stats.arp_learned += 1;
        }
        if msg.op == ArpOp::Reply {
            return if learnable {
                Ok(Handled::Learned)
            } else {
                Err(Ignored::BadSource)
            };
        }
        let reply = msg.reply_from(self.mac, self.ip);
        let p = pool
            .build(|b| arp::write_frame(b, msg.sender_mac, &reply))
            .map_err(|_| Ignored::NoBuffer)?;
        self.stats.arp_answered += 1;
        Ok(Handled::Reply(p))
    }

    fn handle_ipv4<A: FrameAlloc>(
        &mut self,
        eth_dst: MacAddr,
        eth_src: MacAddr,
        payload: &[u8],
        device: RxChecksum,
        pool: &A,
    ) -> Result<Handled<A::Packet>, Ignored> {
        let hdr = Ipv4HeaderSlice::from_slice(payload).map_err(|_| Ignored::Malformed)?;
        let hlen = hdr.slice().len();
        let total = usize::from(hdr.total_len());
        if total < hlen || total > payload.len() {
            return Err(Ignored::Malformed);
        }
        if hdr.destination_addr() != self.ip || (eth_dst != self.mac && !eth_dst.is_broadcast()) {
            return Err(Ignored::NotOurs);
        }
        let header_ok = match device {
            RxChecksum::Good => true,
            RxChecksum::Bad => false,
            RxChecksum::Unknown => icmp::checksum_ok(hdr.slice()),
        };
        if !header_ok {
            return Err(Ignored::BadChecksum);
        }
        if hdr.protocol() != IpNumber::ICMP {
            return Ok(Handled::Pass);
        }
        if hdr.is_fragmenting_payload() {
            return Err(Ignored::Fragment);
        }
        let msg = &payload[hlen..total];
        if msg.len() < 8 {
            return Err(Ignored::Malformed);
        }
        if msg[0] != icmp::ECHO_REQUEST {
            return Ok(Handled::Pass);
        }
        if !icmp::checksum_ok(msg) {
            return Err(Ignored::BadChecksum);
        }
        let src = hdr.source_addr();
        if is_bad_ip_source(src) || src == self.ip || !eth_src.is_unicast() {
            return Err(Ignored::BadSource);
        }
        let reply = icmp::EchoReply {
            src_mac: self.mac,
            dst_mac: eth_src,
            src_ip: self.ip,
            dst_ip: src,
            ip_id: self.ip_id,
            tos: hdr.slice()[1],
        };
        let p = pool
            .build(|b| icmp::write_echo_reply(b, &reply, msg))
            .map_err(|_| Ignored::NoBuffer)?;
        self.ip_id = self.ip_id.wrapping_add(1);
        self.stats.echo_answered += 1;
        Ok(Handled::Reply(p))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::io::RxMeta;
    use aa_runtime::PacketPool;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const US: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
    const PEER: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 1]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const OTHER: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 3]);
    const T0: Timestamp = Timestamp(1_000_000_000);

    fn arp_frame(eth_dst: MacAddr, msg: &ArpMessage) -> Vec<u8> {
        let mut f = vec![0u8; 60]; // padded, as on the wire
        arp::write_frame(&mut f, eth_dst, msg).unwrap();
        f
    }

    fn ping(dst_ip: Ipv4Addr, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(PEER.0, US.0)
            .ipv4(PEER_IP.octets(), dst_ip.octets(), 64)
            .icmpv4_echo_request(id, seq)
            .write(&mut f, data)
            .unwrap();
        f
    }

    fn tcp_to_us() -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(PEER.0, US.0)
            .ipv4(PEER_IP.octets(), OUR_IP.octets(), 64)
            .tcp(40000, 80, 1, 1024)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        f
    }

    fn reply(h: Handled) -> PoolPacket {
        match h {
            Handled::Reply(p) => p,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "02:AA:0:00:00:2".parse().unwrap();
        assert_eq!(m, US);
        assert_eq!(m.to_string(), "02:aa:00:00:00:02");
        assert_eq!("02-aa-00-00-00-02".parse(), Ok(US));
        for bad in [
            "",
            "02:aa:00:00:00",
            "02:aa:00:00:00:02:03",
            "02:aa::00:00:02",
            "0g:aa:0:0:0:2",
            "002:0:0:0:0:0",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(BadMacAddr), "{bad}");
        }
        assert!(US.is_unicast() && US.is_local() && !US.is_multicast());
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr::ZERO.is_unicast());
    }

    #[test]
    fn answers_arp_for_our_address_and_learns_the_asker() {
        let pool = PacketPool::new(4, 2048);
        let mut r = Responder::new(US, OUR_IP);
        let req = ArpMessage::request(PEER, PEER_IP, OUR_IP);
        let p = reply(r.handle(&arp_frame(MacAddr::BROADCAST, &req), T0, &pool));
        assert_eq!(p.data().len(), arp::ARP_FRAME_LEN);
        assert_eq!(&p.data()[..6], &PEER.0);
        assert_eq!(&p.data()[6..12], &US.0);
        assert_eq!(arp::parse(&p.data()[14..]), Ok(req.reply_from(US, OUR_IP)));
        assert_eq!(r.lookup(PEER_IP, T0), Some(PEER));
        // For someone else, from a neighbour not in the cache: neither
        // answered nor learnt.
        let other = ArpMessage::request(OTHER, Ipv4Addr::new(198, 51, 100, 9), PEER_IP);
        assert!(matches!(
            r.handle(&arp_frame(MacAddr::BROADCAST, &other), T0, &pool),
            Handled::Ignored(Ignored::NotOurs)
        ));
        assert_eq!(r.lookup(Ipv4Addr::new(198, 51, 100, 9), T0), None);
        let s = r.stats();
        assert_eq!(
            (s.frames, s.arp_answered, s.arp_learned, s.not_ours),
            (2, 1, 1, 1)
        );
        drop(p);
        assert!(pool.is_full());
    }

    #[test]
    fn learns_from_replies_to_its_requests() {
        let pool = PacketPool::new(2, 2048);
        let mut r = Responder::new(US, OUR_IP);
        let req = r.arp_request(PEER_IP, &pool).unwrap();
        assert_eq!(&req.data()[..6], &[0xff; 6]);
        let msg = arp::parse(&req.data()[14..]).unwrap();
        assert_eq!(msg, ArpMessage::request(US, OUR_IP, PEER_IP));
        let answer = arp_frame(US, &msg.reply_from(PEER, PEER_IP));
        assert!(matches!(r.handle(&answer, T0, &pool), Handled::Learned));
        assert_eq!(r.lookup(PEER_IP, T0), Some(PEER));
        let ttl = r.cache().ttl();
        assert_eq!(
            r.lookup(PEER_IP, Timestamp(T0.0 + ttl.as_nanos() as u64)),
            None
        );
        // A reply for another MAC is not ours; one claiming our IP is a conflict.
        assert!(matches!(
            r.handle(&arp_frame(OTHER, &msg.reply_from(PEER, PEER_IP)), T0, &pool),
            Handled::Ignored(Ignored::NotOurs)
        ));
        let claim = ArpMessage {
            op: ArpOp::Reply,
            sender_mac: OTHER,
            sender_ip: OUR_IP,
            target_mac: MacAddr::BROADCAST,
            target_ip: OUR_IP,
        };
        assert!(matches!(
            r.handle(&arp_frame(MacAddr::BROADCAST, &claim), T0, &pool),
            Handled::Ignored(Ignored::BadSource)
        ));
        let s = r.stats();
        assert_eq!((s.arp_requests, s.arp_learned, s.arp_conflicts), (1, 1, 1));
        drop(req);
        assert!(pool.is_full());
    }

    #[test]
    fn answers_pings_to_us_only() {
        let pool = PacketPool::new(2, 2048);
        let mut r = Responder::new(US, OUR_IP);
        let req = ping(OUR_IP, 77, 1, &[0x5a; 56]);
        let p = reply(r.handle(&req, T0, &pool));
        assert_eq!(p.data().len(), req.len());
        assert_eq!(&p.data()[..6], &PEER.0);
        assert_eq!(&p.data()[26..30], &OUR_IP.octets(), "source");
        assert_eq!(&p.data()[30..34], &PEER_IP.octets(), "destination");
        assert_eq!(p.data()[34], icmp::ECHO_REPLY);
        assert_eq!(&p.data()[38..], &req[38..], "id, seq and data unchanged");
        assert!(icmp::checksum_ok(&p.data()[14..34]));
        assert!(icmp::checksum_ok(&p.data()[34..]));
        drop(p);
        // Odd data length, padding after the IP packet.
        let mut odd = ping(OUR_IP, 1, 2, b"abc");
        odd.extend_from_slice(&[0xee; 20]);
        let p = reply(r.handle(&odd, T0, &pool));
        assert_eq!(p.data().len(), 14 + 20 + 8 + 3);
        assert!(icmp::checksum_ok(&p.data()[34..]));
        drop(p);
        let mut bad = ping(OUR_IP, 1, 3, b"abcd");
        bad[40] ^= 1;
        let outcomes = [
            r.handle(&ping(Ipv4Addr::new(198, 51, 100, 3), 1, 1, b""), T0, &pool),
            r.handle(&bad, T0, &pool),
            r.handle(&tcp_to_us(), T0, &pool),
        ];
        assert!(matches!(outcomes[0], Handled::Ignored(Ignored::NotOurs)));
        assert!(matches!(
            outcomes[1],
            Handled::Ignored(Ignored::BadChecksum)
        ));
        assert!(matches!(outcomes[2], Handled::Pass));
        // A fragment; no buffer; another link type.
        let mut frag = ping(OUR_IP, 1, 4, b"abcd");
        frag[20] |= 0x20; // more fragments
        frag[24..26].fill(0);
        let sum = !crate::wire::tcp::fold(crate::wire::tcp::sum32(&frag[14..34]));
        frag[24..26].copy_from_slice(&sum.to_ne_bytes());
        assert!(matches!(
            r.handle(&frag, T0, &pool),
            Handled::Ignored(Ignored::Fragment)
        ));
        let hold = (pool.alloc().unwrap(), pool.alloc().unwrap());
        assert!(matches!(
            r.handle(&req, T0, &pool),
            Handled::Ignored(Ignored::NoBuffer)
        ));
        drop(hold);
        let tiny = PacketPool::new(1, 40);
        assert!(matches!(
            r.handle(&req, T0, &tiny),
            Handled::Ignored(Ignored::NoBuffer)
        ));
        let rx = Rx {
            packet: pool.packet_from(&req).unwrap(),
            meta: RxMeta {
                ts: T0,
                link: LinkType::RawIp,
                wire_len: req.len() as u32,
                iface: 0,
                checksum: crate::io::RxChecksum::Unknown,
            },
        };
        assert!(matches!(
            r.handle_rx(&rx, &pool),
            Handled::Ignored(Ignored::Unsupported)
        ));
        drop(rx);
        let s = r.stats();
        assert_eq!(s.echo_answered, 2);
        assert_eq!(s.passed, 1);
        assert_eq!(s.ignored(), 6);
        assert!(pool.is_full());
    }

    /// Every prefix of every valid frame, and every single-byte corruption of
    /// them, is handled without a panic and without keeping a buffer.
    #[test]
    fn truncated_and_corrupted_frames_never_panic() {
        let pool = PacketPool::new(4, 2048);
        let mut r = Responder::new(US, OUR_IP);
        let frames = [
            arp_frame(
                MacAddr::BROADCAST,
                &ArpMessage::request(PEER, PEER_IP, OUR_IP),
            ),
            arp_frame(
                US,
                &ArpMessage::request(US, OUR_IP, PEER_IP).reply_from(PEER, PEER_IP),
            ),
            ping(OUR_IP, 9, 9, &[1; 40]),
            tcp_to_us(),
        ];
        for f in &frames {
            for n in 0..f.len() {
                drop(r.handle(&f[..n], T0, &pool));
            }
            for i in 0..f.len() {
                for x in [0x01, 0x0f, 0x80, 0xff] {
                    let mut g = f.clone();
                    g[i] ^= x;
                    drop(r.handle(&g, T0, &pool));
                }
            }
        }
        assert!(pool.is_full());
        assert_eq!(
            r.stats().frames as usize,
            frames.iter().map(|f| f.len() * 5).sum::<usize>()
        );
    }

    proptest! {
        #[test]
        fn random_frames_never_panic(
            head in prop::sample::select(vec![0x0806u16, 0x0800, 0x86dd, 0x8100]),
            body in prop::collection::vec(any::<u8>(), 0..200),
            to_us in any::<bool>(),
        ) {
            let pool = PacketPool::new(2, 256);
            let mut r = Responder::new(US, OUR_IP);
            let mut f = Vec::new();
            f.extend_from_slice(if to_us { &US.0 } else { &MacAddr::BROADCAST.0 });
            f.extend_from_slice(&PEER.0);
            f.extend_from_slice(&head.to_be_bytes());
            f.extend_from_slice(&body);
            drop(r.handle(&f, T0, &pool));
            prop_assert!(pool.is_full());
        }
    }
}
