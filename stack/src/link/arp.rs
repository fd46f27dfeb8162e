//! ARP (RFC 826) for Ethernet and IPv4: messages, frames and the neighbour
//! cache.
//!
//! [`parse`] decodes the ARP part of a frame (after the Ethernet header) with
//! etherparse's `ArpPacketSlice`, which checks the lengths; only Ethernet
//! hardware with IPv4 protocol addresses is accepted. [`write_frame`] lays out
//! an Ethernet header and an ARP message (42 bytes, not padded to 60: a TAP
//! device and the kernel take short frames; a NIC pads).
//!
//! [`ArpCache`] is a bounded table of IPv4 → MAC mappings whose entries
//! expire: a fixed capacity allocated once, looked up by a linear scan (a
//! link has few neighbours; 64 entries by default), the entry closest to
//! expiry evicted when full. Time is a [`Timestamp`] the caller passes in (a
//! received packet's), so the cache is deterministic under test.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::{
    ArpEthIpv4Packet, ArpHardwareId, ArpOperation, ArpPacketSlice, EtherType, Ethernet2Header,
};

use super::MacAddr;
use crate::io::Timestamp;

/// Ethernet type of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Length of an ARP frame for Ethernet and IPv4: 14-byte Ethernet header and
/// 28-byte message.
pub const ARP_FRAME_LEN: usize = 14 + ArpEthIpv4Packet::LEN;

/// What an ARP message asks or says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// Who has the target address? (1)
    Request,
    /// The sender has the sender address. (2)
    Reply,
    /// Any other operation code (RARP, InARP, ...).
    Other(u16),
}

impl ArpOp {
    /// From the operation field.
    pub fn from_u16(op: u16) -> ArpOp {
        match op {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            n => ArpOp::Other(n),
        }
    }
    /// The operation field.
    pub fn to_u16(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::Other(n) => n,
        }
    }
}

/// An ARP message for Ethernet and IPv4, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpMessage {
    /// Request, reply or other.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpMessage {
    /// A request from `(our_mac, our_ip)` for the MAC address of `target`.
    pub fn request(our_mac: MacAddr, our_ip: Ipv4Addr, target: Ipv4Addr) -> ArpMessage {
        ArpMessage {
            op: ArpOp::Request,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: MacAddr::ZERO,
            target_ip: target,
        }
    }

    /// The reply `(our_mac, our_ip)` gives to this request.
    pub fn reply_from(&self, our_mac: MacAddr, our_ip: Ipv4Addr) -> ArpMessage {
        ArpMessage {
            op: ArpOp::Reply,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }
}

/// Why an ARP message was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpError {
    /// Shorter than its header says.
    Truncated,
    /// Not Ethernet hardware addresses with IPv4 protocol addresses.
    Unsupported,
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArpError::Truncated => "truncated ARP message",
            ArpError::Unsupported => "ARP message not for Ethernet and IPv4",
        })
    }
}

impl std::error::Error for ArpError {}

/// Decodes the ARP message at the start of `payload` (what follows the
/// Ethernet header; padding after the message is ignored).
pub fn parse(payload: &[u8]) -> Result<ArpMessage, ArpError> {
    let arp = ArpPacketSlice::from_slice(payload).map_err(|_| ArpError::Truncated)?;
    if arp.hw_addr_type() != ArpHardwareId::ETHERNET
        || arp.proto_addr_type() != EtherType::IPV4
        || arp.hw_addr_size() != 6
        || arp.proto_addr_size() != 4
    {
        return Err(ArpError::Unsupported);
    }
    // The sizes were checked: these conversions cannot fail.
    let mac = |s: &[u8]| MacAddr(s.try_into().unwrap_or_default());
    let ip = |s: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(s).unwrap_or_default());
    Ok(ArpMessage {
        op: ArpOp::from_u16(arp.operation().0),
        sender_mac: mac(arp.sender_hw_addr()),
        sender_ip: ip(arp.sender_protocol_addr()),
        target_mac: mac(arp.target_hw_addr()),
        target_ip: ip(arp.target_protocol_addr()),
    })
}

/// Writes an Ethernet frame from `msg.sender_mac` to `eth_dst` carrying
/// `msg` at the start of `buf`; returns its length ([`ARP_FRAME_LEN`]), or
/// `None` if `buf` is shorter.
pub fn write_frame(buf: &mut [u8], eth_dst: MacAddr, msg: &ArpMessage) -> Option<usize> {
    let out = buf.get_mut(..ARP_FRAME_LEN)?;
    let eth = Ethernet2Header {
        source: msg.sender_mac.0,
        destination: eth_dst.0,
        ether_type: EtherType::ARP,
    };
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation(msg.op.to_u16()),
        sender_mac: msg.sender_mac.0,
        sender_ipv4: msg.sender_ip.octets(),
        target_mac: msg.target_mac.0,
        target_ipv4: msg.target_ip.octets(),
    };
    out[..14].copy_from_slice(&eth.to_bytes());
    out[14..].copy_from_slice(&arp.to_bytes());
    Some(ARP_FRAME_LEN)
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    ip: Ipv4Addr,
    mac: MacAddr,
    expires: Timestamp,
}

/// A bounded IPv4 → MAC table whose entries expire.
#[derive(Clone, Debug)]
pub struct ArpCache {
    entries: Vec<Entry>,
    capacity: usize,
    ttl: Duration,
    evictions: u64,
}

impl Default for ArpCache {
    /// [`ArpCache::DEFAULT_CAPACITY`] entries living [`ArpCache::DEFAULT_TTL`].
    fn default() -> Self {
        ArpCache::new(ArpCache::DEFAULT_CAPACITY, ArpCache::DEFAULT_TTL)
    }
}

impl ArpCache {
    /// Entries of a default cache.
    pub const DEFAULT_CAPACITY: usize = 64;
    /// How long a default cache keeps a mapping it has not heard again (Linux
    /// keeps a neighbour reachable for 15 to 45 seconds, then checks it).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    /// A cache of at most `capacity` entries, each living `ttl` after it was
    /// last learnt.
    ///
    /// # Panics
    /// If `capacity` is zero.
    pub fn new(capacity: usize, ttl: Duration) -> ArpCache {
        assert!(capacity > 0, "an ARP cache holds at least one entry");
        ArpCache {
            entries: Vec::with_capacity(capacity),
            capacity,
            ttl,
            evictions: 0,
        }
    }

    fn find(&self, ip: Ipv4Addr) -> Option<usize> {
        self.entries.iter().position(|e| e.ip == ip)
    }

    /// The MAC address of `ip`, if known and not expired at `now`.
    pub fn lookup(&self, ip: Ipv4Addr, now: Timestamp) -> Option<MacAddr> {
        self.find(ip)
            .map(|i| self.entries[i])
            .filter(|e| now < e.expires)
            .map(|e| e.mac)
    }

    /// Records that `ip` is at `mac` as of `now`, replacing what was known.
    /// When the cache is full, the entry closest to expiry (an expired one
    /// first) makes room.
    pub fn insert(&mut self, ip: Ipv4Addr, mac: MacAddr, now: Timestamp) {
        let entry = Entry {
            ip,
            mac,
            expires: Timestamp(
                now.0
                    .saturating_add(u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX)),
            ),
        };
        if let Some(i) = self.find(ip) {
            self.entries[i] = entry;
        } else if self.entries.len() < self.capacity {
            self.entries.push(entry);
        } else if let Some(i) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].expires) {
            if now < self.entries[i].expires {
                self.evictions += 1;
            }
            self.entries[i] = entry;
        }
    }

    /// Updates `ip` to `mac` if it is in the cache and not expired (RFC 826's
    /// merge step); returns whether it was.
    pub fn refresh(&mut self, ip: Ipv4Addr, mac: MacAddr, now: Timestamp) -> bool {
        if self.lookup(ip, now).is_none() {
            return false;
        }
        self.insert(ip, mac, now);
        true
    }

    /// Forgets `ip`; returns the MAC address it had, expired or not.
    pub fn remove(&mut self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.find(ip).map(|i| self.entries.swap_remove(i).mac)
    }

    /// Drops the entries expired at `now`; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| now < e.expires);
        before - self.entries.len()
    }

    /// The mappings not expired at `now`.
    pub fn iter(&self, now: Timestamp) -> impl Iterator<Item = (Ipv4Addr, MacAddr)> + '_ {
        self.entries
            .iter()
            .filter(move |e| now < e.expires)
            .map(|e| (e.ip, e.mac))
    }

    /// Entries held, expired ones included until [`expire`](Self::expire)
    /// or a newer entry drops them.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long an entry lives after it was learnt.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Live entries dropped to make room for a new one.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, n)
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::new(s, 0)
    }

    #[test]
    fn frames_round_trip() {
        let req = ArpMessage::request(A, ip(2), ip(1));
        let mut buf = [0u8; 64];
        assert_eq!(write_frame(&mut buf, MacAddr::BROADCAST, &req), Some(42));
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(&buf[6..12], &A.0);
        assert_eq!(&buf[12..14], &[0x08, 0x06]);
        assert_eq!(parse(&buf[14..42]), Ok(req));
        let rep = req.reply_from(B, ip(1));
        assert_eq!((rep.target_mac, rep.target_ip), (A, ip(2)));
        assert_eq!(rep.op, ArpOp::Reply);
        assert_eq!(write_frame(&mut buf[..41], A, &rep), None);
        for n in 0..28 {
            assert_eq!(parse(&buf[14..14 + n]), Err(ArpError::Truncated), "{n}");
        }
        buf[14] = 0x01; // hardware type 0x0101
        assert_eq!(parse(&buf[14..42]), Err(ArpError::Unsupported));
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let mut c = ArpCache::new(2, Duration::from_secs(10));
        assert!(!c.refresh(ip(1), A, secs(0)), "merge only updates");
        c.insert(ip(1), A, secs(0));
        c.insert(ip(2), B, secs(5));
        assert_eq!(c.lookup(ip(1), secs(9)), Some(A));
        assert_eq!(c.lookup(ip(1), secs(10)), None, "expired");
        assert!(c.refresh(ip(2), A, secs(6)));
        assert_eq!(c.lookup(ip(2), secs(15)), Some(A));
        // Full: the expired entry for .1 makes room, no live one evicted.
        c.insert(ip(3), B, secs(11));
        assert_eq!((c.len(), c.evictions()), (2, 0));
        // Full of live entries: the one closest to expiry (.2) goes.
        c.insert(ip(4), B, secs(12));
        assert_eq!(c.evictions(), 1);
        assert_eq!(c.lookup(ip(2), secs(12)), None);
        assert_eq!(
            c.iter(secs(12)).collect::<Vec<_>>().len(),
            2,
            "bounded by capacity"
        );
        assert_eq!(c.expire(secs(21)), 1);
        assert_eq!(c.remove(ip(4)), Some(B));
        assert!(c.is_empty());
        assert_eq!((c.capacity(), c.ttl()), (2, Duration::from_secs(10)));
    }
}
