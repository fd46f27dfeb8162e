//! [`parse`]: one frame to one [`Segment`], or the reason why not.
//!
//! Each layer is sliced by etherparse's per-layer slicers (`Ethernet2Slice`,
//! `SingleVlanSlice`, `Ipv4Slice` / `Ipv6Slice` with their extension headers,
//! `TcpSlice`), all strict: every length field is checked against the bytes
//! there are. This file chains them (the link type picks the first), turns
//! each layer's error into a [`WireError`], and reads the TCP fields into a
//! `Segment`. Offsets into the frame come from the subslices etherparse
//! returns.
//!
//! Why not `SlicedPacket`, which does the chaining itself: on the bench
//! (`benches/wire.rs`, 1514-byte frames) it alone cost more than smoltcp's
//! whole parse, and `parse` built on it took about 330 ns per frame against
//! smoltcp's 120; most of it went to moving its large result around and to
//! slicing layers (UDP, ICMP, ARP) this path only needs to reject. Chaining
//! the same slicers directly keeps etherparse's checks without that cost.
//! One thing `SlicedPacket` follows and this does not: MACsec (EtherType
//! 0x88e5), reported as not IP.

use std::net::IpAddr;

use aa_runtime::SeqNum;
use etherparse::err::{ip_auth, ipv4, ipv6, tcp, Layer as EpLayer, LenError};
use etherparse::{
    ether_type, EtherType, Ethernet2Slice, IpNumber, IpPayloadSlice, Ipv4Slice, Ipv6Slice,
    LenSource, SingleVlanSlice, TcpSlice,
};

use super::link::{self, LinkType};
use super::tcp::{checksum_status, parse_options};
use super::{ChecksumStatus, Layer, Segment, TcpFlags, WireError};

/// Most VLAN tags followed (etherparse's `SlicedPacket` follows three too).
const MAX_VLAN_TAGS: usize = 3;

/// Parses one captured frame into a TCP segment view.
///
/// `verify_checksum` computes the TCP checksum over the pseudo-header and the
/// segment; otherwise the status is [`ChecksumStatus::Unchecked`]. Never
/// panics: see the module's failure contract.
pub fn parse(frame: &[u8], link: LinkType, verify_checksum: bool) -> Result<Segment, WireError> {
    let mut vlan = [None; 2];
    let ip = match link {
        LinkType::RawIp => match frame.first() {
            None => {
                return Err(WireError::Truncated {
                    layer: Layer::Ip,
                    need: 1,
                    have: 0,
                })
            }
            Some(b) if b >> 4 == 4 => ipv4(frame, 0)?,
            Some(b) if b >> 4 == 6 => ipv6(frame, 0)?,
            Some(b) => return Err(WireError::BadIpVersion { version: b >> 4 }),
        },
        LinkType::Ethernet => {
            let eth = Ethernet2Slice::from_slice_without_fcs(frame)
                .map_err(|e| truncated(Layer::Link, &e))?;
            let (ether_type, at) =
                follow_vlans(frame, eth.ether_type(), eth.header_len(), &mut vlan)?;
            ip_by_ether_type(frame, ether_type, at)?
        }
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            let (protocol, at) = link::cooked(frame, link)?;
            let (ether_type, at) = follow_vlans(frame, EtherType(protocol), at, &mut vlan)?;
            ip_by_ether_type(frame, ether_type, at)?
        }
    };
    if ip.payload.fragmented {
        return Err(WireError::Fragment);
    }
    if ip.payload.ip_number != IpNumber::TCP {
        return Err(WireError::NotTcp {
            protocol: ip.payload.ip_number.0,
        });
    }
    let tcp = TcpSlice::from_slice(ip.payload.payload).map_err(|e| match e {
        // The IP packet is complete (strict slicing checked it), so a header
        // of 20+ bytes that does not fit is the data offset's fault.
        tcp::HeaderSliceError::Len(e) if e.len >= 20 => WireError::BadTcpDataOffset {
            data_offset: (e.required_len / 4) as u8,
        },
        tcp::HeaderSliceError::Len(e) => truncated(Layer::Tcp, &e),
        tcp::HeaderSliceError::Content(tcp::HeaderError::DataOffsetTooSmall { data_offset }) => {
            WireError::BadTcpDataOffset { data_offset }
        }
    })?;

    let header = tcp.header_slice();
    let checksum = if !verify_checksum {
        ChecksumStatus::Unchecked
    } else {
        checksum_status(ip.src, ip.dst, tcp.slice())
    };
    let payload = tcp.payload();
    Ok(Segment {
        src: (ip.src, tcp.source_port()),
        dst: (ip.dst, tcp.destination_port()),
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: TcpFlags(header[13]),
        window: tcp.window_size(),
        opts: parse_options(tcp.options()),
        vlan,
        ip_offset: ip.offset as u32,
        tcp_offset: offset_in(frame, header),
        payload_offset: offset_in(frame, payload),
        payload_len: payload.len() as u32,
        checksum,
    })
}

/// The IPv4 header's length in an untagged Ethernet frame carrying IPv4 and
/// TCP whose headers are all there (what transmit checksum offload needs to
/// place the TCP checksum); `None` for any other frame (ARP, ICMP, a VLAN
/// tag, a header length below 20 bytes).
pub fn ipv4_tcp_header_len(frame: &[u8]) -> Option<usize> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 || frame[23] != 6 {
        return None;
    }
    let l3 = usize::from(frame[14] & 0x0f) * 4;
    (l3 >= 20 && frame.len() >= 14 + l3 + 20).then_some(l3)
}

/// The IP layer of a frame.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    /// Offset of the IP header in the frame.
    offset: usize,
    payload: IpPayloadSlice<'a>,
}

/// Offset of `inner` (a subslice of `frame`) from the start of `frame`.
#[inline]
fn offset_in(frame: &[u8], inner: &[u8]) -> u32 {
    let off = (inner.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    debug_assert!(off + inner.len() <= frame.len(), "not a subslice");
    off as u32
}

fn truncated(layer: Layer, e: &LenError) -> WireError {
    WireError::Truncated {
        layer,
        need: e.required_len,
        have: e.len,
    }
}

/// Skips VLAN tags from `at`; returns the inner EtherType and where its
/// payload starts. Records the outer two VLAN ids.
#[inline]
fn follow_vlans(
    frame: &[u8],
    mut ether_type: EtherType,
    mut at: usize,
    vlan: &mut [Option<u16>; 2],
) -> Result<(EtherType, usize), WireError> {
    let mut tags = 0;
    while matches!(
        ether_type,
        ether_type::VLAN_TAGGED_FRAME
            | ether_type::PROVIDER_BRIDGING
            | ether_type::VLAN_DOUBLE_TAGGED_FRAME
    ) {
        if tags == MAX_VLAN_TAGS {
            return Err(WireError::TooManyVlanTags);
        }
        let tag =
            SingleVlanSlice::from_slice(&frame[at..]).map_err(|e| truncated(Layer::Vlan, &e))?;
        if let Some(slot) = vlan.get_mut(tags) {
            *slot = Some(tag.vlan_identifier().value());
        }
        ether_type = tag.ether_type();
        at += tag.header_len();
        tags += 1;
    }
    Ok((ether_type, at))
}

#[inline]
fn ip_by_ether_type(frame: &[u8], ether_type: EtherType, at: usize) -> Result<Ip<'_>, WireError> {
    match ether_type {
        ether_type::IPV4 => ipv4(frame, at),
        ether_type::IPV6 => ipv6(frame, at),
        EtherType(other) => Err(WireError::NotIpv4OrIpv6 { ether_type: other }),
    }
}

#[inline]
fn ipv4(frame: &[u8], at: usize) -> Result<Ip<'_>, WireError> {
    let v4 = Ipv4Slice::from_slice(&frame[at..]).map_err(|e| match e {
        ipv4::SliceError::Len(e) => match e.layer {
            EpLayer::Ipv4Header => {
                // The frame has the 20 fixed bytes but not IHL * 4: the header
                // is either cut by the capture or longer than its packet.
                let total = frame
                    .get(at + 2..at + 4)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                match total {
                    Some(total) if e.len >= 20 && e.required_len > total => {
                        ip_lengths_disagree(e.required_len, total)
                    }
                    _ => truncated(Layer::Ip, &e),
                }
            }
            // The total length is smaller than the header.
            EpLayer::Ipv4Packet if e.len_source == LenSource::Ipv4HeaderTotalLen => {
                ip_lengths_disagree(e.required_len, e.len)
            }
            EpLayer::Ipv4Packet => truncated(Layer::Ip, &e),
            // The authentication header runs past the total length.
            _ => WireError::BadIpExtension,
        },
        ipv4::SliceError::Header(ipv4::HeaderError::UnexpectedVersion { version_number }) => {
            WireError::BadIpVersion {
                version: version_number,
            }
        }
        ipv4::SliceError::Header(ipv4::HeaderError::HeaderLengthSmallerThanHeader { ihl }) => {
            WireError::BadIpHeaderLength { ihl }
        }
        ipv4::SliceError::Exts(ip_auth::HeaderError::ZeroPayloadLen) => WireError::BadIpExtension,
    })?;
    let h = v4.header();
    Ok(Ip {
        src: IpAddr::from(h.source()),
        dst: IpAddr::from(h.destination()),
        offset: at,
        payload: v4.payload().clone(),
    })
}

#[inline]
fn ipv6(frame: &[u8], at: usize) -> Result<Ip<'_>, WireError> {
    let v6 = Ipv6Slice::from_slice(&frame[at..]).map_err(|e| match e {
        ipv6::SliceError::Len(e) => match e.layer {
            EpLayer::Ipv6Header | EpLayer::Ipv6Packet => truncated(Layer::Ip, &e),
            // An extension header cut by the capture (jumbogram: no payload
            // length), or running past the payload length.
            _ if e.len_source == LenSource::Slice => truncated(Layer::IpExtension, &e),
            _ => WireError::BadIpExtension,
        },
        ipv6::SliceError::Header(ipv6::HeaderError::UnexpectedVersion { version_number }) => {
            WireError::BadIpVersion {
                version: version_number,
            }
        }
        ipv6::SliceError::Exts(_) => WireError::BadIpExtension,
    })?;
    let h = v6.header();
    Ok(Ip {
        src: IpAddr::from(h.source()),
        dst: IpAddr::from(h.destination()),
        offset: at,
        payload: v6.payload().clone(),
    })
}

/// An IPv4 header of `header_len` bytes in a packet of `total_len` bytes
/// (`header_len > total_len`): a total length below the minimum header is the
/// total length's fault, otherwise the IHL points past the packet.
fn ip_lengths_disagree(header_len: usize, total_len: usize) -> WireError {
    if total_len < 20 {
        WireError::BadIpTotalLength {
            total_len: total_len as u16,
        }
    } else {
        WireError::BadIpHeaderLength {
            ihl: (header_len / 4) as u8,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::TcpOpts;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Ethernet / IPv4 / TCP SYN 198.51.100.1:40000 → 198.51.100.2:80, seq
    /// 0x01020304, options MSS 1460, SACK_PERM, TS (0x11223344, 0), NOP, WS 7.
    /// Checksums computed independently of etherparse.
    static SYN_V4: [u8; 74] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0xd4, 0x1d, 0xc6, 0x33, 0x64, 0x01,
        0xc6, 0x33, 0x64, 0x02, 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x13, 0xa8, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
        0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    /// Raw IPv6 / TCP PSH|ACK [2001:db8::1]:443 → [2001:db8::2]:50000, seq
    /// 1000, ack 2000, window 512, payload "hello".
    static DATA_V6: [u8; 65] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x19, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0xbb, 0xc3, 0x50, 0x00,
        0x00, 0x03, 0xe8, 0x00, 0x00, 0x07, 0xd0, 0x50, 0x18, 0x02, 0x00, 0x3d, 0xbd, 0x00, 0x00,
        0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ];

    #[test]
    fn test_parse_ipv4_syn() {
        let seg = parse(&SYN_V4, LinkType::Ethernet, true).unwrap();
        assert_eq!(seg.src, (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 40000));
        assert_eq!(seg.dst, (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 80));
        assert_eq!(seg.seq, SeqNum(0x0102_0304));
        assert_eq!(seg.flags, TcpFlags::SYN);
        assert_eq!(seg.window, 64240);
        assert_eq!(
            seg.opts,
            TcpOpts {
                mss: Some(1460),
                wscale: Some(7),
                sack_permitted: true,
                timestamps: Some((0x1122_3344, 0)),
                malformed: false,
            }
        );
        assert_eq!(
            (seg.ip_offset, seg.tcp_offset, seg.payload_offset),
            (14, 34, 74)
        );
        assert_eq!(seg.payload_len, 0);
        assert_eq!(seg.seq_len(), 1);
        assert_eq!(seg.vlan, [None, None]);
        assert_eq!(seg.checksum, ChecksumStatus::Valid);
        assert!(!seg.is_ipv6());
    }

    #[test]
    fn test_parse_ipv6_data() {
        let seg = parse(&DATA_V6, LinkType::RawIp, true).unwrap();
        let a = |last| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
        assert_eq!((seg.src, seg.dst), ((a(1), 443), (a(2), 50000)));
        assert_eq!((seg.seq, seg.ack), (SeqNum(1000), SeqNum(2000)));
        assert_eq!(seg.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(seg.payload(&DATA_V6), b"hello");
        assert_eq!(seg.payload_range(), 60..65);
        assert_eq!(seg.checksum, ChecksumStatus::Valid);
        assert_eq!(
            parse(&DATA_V6, LinkType::RawIp, false).unwrap().checksum,
            ChecksumStatus::Unchecked
        );
    }

    #[test]
    fn test_checksum_detects_any_flipped_bit() {
        let mut frame = DATA_V6;
        for at in [8, 24, 40, 47, 53, 56, 64] {
            frame[at] ^= 0x01;
            let seg = parse(&frame, LinkType::RawIp, true).unwrap();
            assert_eq!(seg.checksum, ChecksumStatus::Invalid, "byte {at}");
            frame[at] ^= 0x01;
        }
    }

    #[test]
    fn test_ethernet_padding_is_not_payload() {
        let mut frame = SYN_V4.to_vec();
        frame.extend_from_slice(&[0xee; 6]);
        let seg = parse(&frame, LinkType::Ethernet, true).unwrap();
        assert_eq!(seg.payload_len, 0);
        assert_eq!(seg.checksum, ChecksumStatus::Valid);
    }

    #[test]
    fn test_length_fields_past_the_packet() {
        // IHL 15 (60 bytes) in a packet of total length 56, whether the frame
        // holds the 60 bytes or not.
        let mut f = SYN_V4;
        f[14] = 0x4f;
        f[16..18].copy_from_slice(&56u16.to_be_bytes());
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadIpHeaderLength { ihl: 15 })
        );
        assert_eq!(
            parse(&f[..64], LinkType::Ethernet, false),
            Err(WireError::BadIpHeaderLength { ihl: 15 })
        );
        // IHL 15 = total length 60: the header fits, TCP has no room.
        f[16..18].copy_from_slice(&60u16.to_be_bytes());
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::Truncated {
                layer: Layer::Tcp,
                need: 20,
                have: 0
            })
        );
        // ... and a frame cut inside that header is a truncated capture.
        assert_eq!(
            parse(&f[..64], LinkType::Ethernet, false),
            Err(WireError::Truncated {
                layer: Layer::Ip,
                need: 60,
                have: 50
            })
        );
        // IHL 4: shorter than the fixed header.
        f[14] = 0x44;
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadIpHeaderLength { ihl: 4 })
        );
        // Total length 19.
        let mut f = SYN_V4;
        f[16..18].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadIpTotalLength { total_len: 19 })
        );
        // Total length past the frame: truncated capture.
        f[16..18].copy_from_slice(&61u16.to_be_bytes());
        assert!(matches!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::Truncated {
                layer: Layer::Ip,
                need: 61,
                have: 60
            })
        ));
        // Data offset 15 (60 bytes) in a 40-byte segment; data offset 4.
        let mut f = SYN_V4;
        f[46] = 0xf0;
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadTcpDataOffset { data_offset: 15 })
        );
        f[46] = 0x40;
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadTcpDataOffset { data_offset: 4 })
        );
        // IPv6 payload length past the frame.
        let mut f = DATA_V6;
        f[5] = 0x1a;
        assert!(matches!(
            parse(&f, LinkType::RawIp, false),
            Err(WireError::Truncated {
                layer: Layer::Ip,
                ..
            })
        ));
    }

    #[test]
    fn test_versions() {
        let mut f = SYN_V4;
        f[14] = 0x65; // EtherType IPv4, version 6
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::BadIpVersion { version: 6 })
        );
        let mut f = DATA_V6;
        f[0] = 0x50;
        assert_eq!(
            parse(&f, LinkType::RawIp, false),
            Err(WireError::BadIpVersion { version: 5 })
        );
        assert_eq!(
            parse(&[], LinkType::RawIp, false),
            Err(WireError::Truncated {
                layer: Layer::Ip,
                need: 1,
                have: 0
            })
        );
    }

    #[test]
    fn test_not_tcp_and_fragments() {
        let mut f = SYN_V4;
        f[23] = 17; // UDP: etherparse slices a UDP header out of the TCP bytes
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::NotTcp { protocol: 17 })
        );
        f[23] = 47; // GRE: not sliced further
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::NotTcp { protocol: 47 })
        );
        let mut f = SYN_V4;
        f[20] = 0x20; // more fragments
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::Fragment)
        );
        f[20] = 0x00;
        f[21] = 0x08; // offset 64, last fragment
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::Fragment)
        );
        let mut f = SYN_V4;
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(matches!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::NotIpv4OrIpv6 { ether_type: 0x0806 } | WireError::Truncated { .. })
        ));
        f[12..14].copy_from_slice(&0x88ccu16.to_be_bytes()); // LLDP
        assert_eq!(
            parse(&f, LinkType::Ethernet, false),
            Err(WireError::NotIpv4OrIpv6 { ether_type: 0x88cc })
        );
    }

    #[test]
    fn ipv4_tcp_header_len_only_for_whole_ipv4_tcp_frames() {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(198, 51, 100, d));
        let tcp = crate::frame::TcpFrame::new((ip(1), 1000), (ip(2), 80))
            .build(b"x")
            .unwrap();
        assert_eq!(ipv4_tcp_header_len(&tcp), Some(20));
        assert_eq!(ipv4_tcp_header_len(&tcp[..53]), None, "TCP header cut");
        let mut icmp = tcp.clone();
        icmp[23] = 1;
        assert_eq!(ipv4_tcp_header_len(&icmp), None);
        let mut short = tcp.clone();
        short[14] = 0x44;
        assert_eq!(ipv4_tcp_header_len(&short), None, "IHL below 5");
        let mut arp = tcp.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(ipv4_tcp_header_len(&arp), None);
    }
}
