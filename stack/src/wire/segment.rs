//! The parsed view of one TCP segment: a small `Copy` value that points into
//! its frame by offsets, so it outlives no borrow and copies no payload.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use aa_runtime::SeqNum;

/// TCP control flags, as the byte at offset 13 of the TCP header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every flag of `other` is set.
    #[inline]
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// FIN is set.
    #[inline]
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// SYN is set.
    #[inline]
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// RST is set.
    #[inline]
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// PSH is set.
    #[inline]
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// ACK is set.
    #[inline]
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// URG is set.
    #[inline]
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The TCP options the stack uses; others are skipped by their length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpOpts {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3), as sent (not clamped to 14).
    pub wscale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// Some option had a bad length; the walk stopped or skipped it the way
    /// Linux does (`tcp_parse_options`), keeping what came before.
    pub malformed: bool,
}

/// What is known about the TCP checksum of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumStatus {
    /// Verified over the pseudo-header and the segment: correct.
    Valid,
    /// Verified: wrong.
    Invalid,
    /// Verified: wrong, but holding what a sender with checksum offload
    /// leaves for the NIC to complete (the pseudo-header sum, or zero): the
    /// capture was taken before the NIC, not a corrupted segment.
    Offloaded,
    /// Not verified (not asked to).
    Unchecked,
}

/// One TCP segment inside a frame.
///
/// Offsets are from the first byte of the frame, so the same frame bytes (for
/// example [`Packet::data`](aa_runtime::Packet::data)) give the payload back:
/// `seg.payload(pkt.data())`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful when `flags.ack()`).
    pub ack: SeqNum,
    /// Control flags.
    pub flags: TcpFlags,
    /// Window field as sent (not scaled).
    pub window: u16,
    /// Parsed options.
    pub opts: TcpOpts,
    /// VLAN identifiers, outermost first (`None` where there is no tag).
    pub vlan: [Option<u16>; 2],
    /// Offset of the IP header.
    pub ip_offset: u32,
    /// Offset of the TCP header.
    pub tcp_offset: u32,
    /// Offset of the TCP payload.
    pub payload_offset: u32,
    /// Length of the TCP payload (bounded by the IP length, not the frame).
    pub payload_len: u32,
    /// TCP checksum status.
    pub checksum: ChecksumStatus,
}

impl Segment {
    /// The payload's byte range within the frame.
    #[inline]
    pub fn payload_range(&self) -> Range<usize> {
        let start = self.payload_offset as usize;
        start..start + self.payload_len as usize
    }

    /// The payload, sliced out of the frame this segment was parsed from.
    ///
    /// # Panics
    /// If `frame` is shorter than the frame the segment came from.
    #[inline]
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.payload_range()]
    }

    /// Sequence space the segment occupies: payload bytes plus one for SYN and
    /// one for FIN.
    #[inline]
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// Whether the segment is carried over IPv6.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.src.0.is_ipv6()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn flags_debug_and_accessors() {
        let f = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(format!("{f:?}"), "SYN|ACK");
        assert!(f.syn() && f.ack() && !f.fin() && !f.rst() && !f.psh() && !f.urg());
        assert_eq!(format!("{:?}", TcpFlags(0)), "-");
        assert_eq!(
            format!("{:?}", TcpFlags(0xff)),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
    }
}
