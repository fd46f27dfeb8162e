//! Why a frame is not a usable TCP segment.

use std::fmt;

/// The header layer a [`WireError::Truncated`] happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II or Linux cooked (SLL, SLL2) header.
    Link,
    /// An 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// The IPv4 or IPv6 header, or the IP packet its length field announces.
    Ip,
    /// An IPv6 extension header or an IPv4 authentication header.
    IpExtension,
    /// The TCP header (fixed part or options).
    Tcp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Link => "link",
            Layer::Vlan => "VLAN",
            Layer::Ip => "IP",
            Layer::IpExtension => "IP extension",
            Layer::Tcp => "TCP",
        })
    }
}

/// Why [`parse`](super::parse) did not return a segment.
///
/// Each variant is a reason to count, not to stop: the frame is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The frame (or the IP packet, for the TCP header) ends before the header
    /// or packet at `layer` does: `need` bytes from that layer's start, `have`.
    Truncated {
        /// The layer that is cut short.
        layer: Layer,
        /// Bytes the layer needs from its start.
        need: usize,
        /// Bytes there are from its start.
        have: usize,
    },
    /// More VLAN tags than the parser follows (three).
    TooManyVlanTags,
    /// The link layer carries something else than IPv4 or IPv6 (ARP, LLDP,
    /// MACsec, a Linux cooked netlink frame, ...).
    NotIpv4OrIpv6 {
        /// The EtherType (or Linux cooked protocol) found.
        ether_type: u16,
    },
    /// The IP version nibble is neither 4 nor 6, or not the one the EtherType
    /// announced.
    BadIpVersion {
        /// The version found.
        version: u8,
    },
    /// IPv4 header length (IHL) below 5 words, or past the IPv4 total length
    /// (when that total length is at least the minimum header, 20).
    BadIpHeaderLength {
        /// The IHL field, in 32-bit words.
        ihl: u8,
    },
    /// IPv4 total length below the minimum IPv4 header (20 bytes); 0 is what
    /// some hosts capture for their own TSO super-packets.
    BadIpTotalLength {
        /// The total length field.
        total_len: u16,
    },
    /// An IPv6 extension header (or IPv4 AH) that is malformed or runs past the
    /// IP packet.
    BadIpExtension,
    /// An IPv4 or IPv6 fragment: skipped (no IP reassembly on this path).
    Fragment,
    /// An IP packet whose payload is not TCP.
    NotTcp {
        /// The IP protocol / next-header number of the payload.
        protocol: u8,
    },
    /// TCP data offset below 5 words, or past the end of the IP packet.
    BadTcpDataOffset {
        /// The data offset field, in 32-bit words.
        data_offset: u8,
    },
    /// The TCP checksum is wrong and the [`ChecksumPolicy`](super::ChecksumPolicy)
    /// dropped the segment (only [`Decoder`](super::Decoder) returns this).
    BadChecksum,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated { layer, need, have } => {
                write!(
                    f,
                    "truncated {layer} header or packet: needs {need} bytes, has {have}"
                )
            }
            WireError::TooManyVlanTags => f.write_str("more than three VLAN tags"),
            WireError::NotIpv4OrIpv6 { ether_type } => {
                write!(f, "not IPv4 or IPv6 (EtherType {ether_type:#06x})")
            }
            WireError::BadIpVersion { version } => write!(f, "bad IP version {version}"),
            WireError::BadIpHeaderLength { ihl } => {
                write!(f, "bad IPv4 header length: IHL {ihl} words")
            }
            WireError::BadIpTotalLength { total_len } => {
                write!(f, "IPv4 total length {total_len} shorter than a header")
            }
            WireError::BadIpExtension => f.write_str("malformed IP extension header"),
            WireError::Fragment => f.write_str("IP fragment (skipped)"),
            WireError::NotTcp { protocol } => write!(f, "not TCP (IP protocol {protocol})"),
            WireError::BadTcpDataOffset { data_offset } => {
                write!(f, "bad TCP data offset: {data_offset} words")
            }
            WireError::BadChecksum => f.write_str("bad TCP checksum"),
        }
    }
}

impl std::error::Error for WireError {}
