//! ICMPv4 echo (RFC 792): the reply to a ping.
//!
//! The reply is a new frame: Ethernet header back to the sender, an IPv4
//! header without options written by etherparse (`Ipv4Header`, TTL 64, the
//! request's DSCP/ECN kept), and the request's ICMP message copied with its
//! type turned into echo reply and its checksum recomputed. Identifier,
//! sequence number and data come back unchanged, as RFC 792 asks.

use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header};

use super::MacAddr;
use crate::wire::tcp::{fold, sum32};

/// ICMP type of an echo request.
pub const ECHO_REQUEST: u8 = 8;
/// ICMP type of an echo reply.
pub const ECHO_REPLY: u8 = 0;
/// TTL of the replies.
pub const REPLY_TTL: u8 = 64;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const ICMP_HEADER_LEN: usize = 8;

/// Whether the one's-complement sum of `data`, checksum field included, is
/// all ones: the IPv4 header and ICMP checksum test.
pub fn checksum_ok(data: &[u8]) -> bool {
    fold(sum32(data)) == 0xffff
}

/// The checksum to store in `data`'s checksum field, which must hold zero
/// (native byte order: write it with `to_ne_bytes`).
fn checksum(data: &[u8]) -> u16 {
    !fold(sum32(data))
}

/// Addresses and header fields of an echo reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply {
    /// Our MAC address (source of the reply).
    pub src_mac: MacAddr,
    /// The requester's MAC address.
    pub dst_mac: MacAddr,
    /// Our IPv4 address.
    pub src_ip: Ipv4Addr,
    /// The requester's IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// IPv4 identification field.
    pub ip_id: u16,
    /// DSCP and ECN bits (the second byte of the IPv4 header), copied from
    /// the request.
    pub tos: u8,
}

/// Writes the echo reply to the ICMP echo request `request` (the ICMP
/// message: header and data, as the IPv4 length delimits it) at the start of
/// `buf`; returns the frame length, or `None` if `buf` is too short or
/// `request` is not an echo request of at least 8 bytes.
pub fn write_echo_reply(buf: &mut [u8], reply: &EchoReply, request: &[u8]) -> Option<usize> {
    if request.len() < ICMP_HEADER_LEN || request[0] != ECHO_REQUEST {
        return None;
    }
    let total = ETH_LEN + IPV4_LEN + request.len();
    let out = buf.get_mut(..total)?;
    let eth = Ethernet2Header {
        source: reply.src_mac.0,
        destination: reply.dst_mac.0,
        ether_type: EtherType::IPV4,
    };
    let mut ip = Ipv4Header::new(
        u16::try_from(request.len()).ok()?,
        REPLY_TTL,
        IpNumber::ICMP,
        reply.src_ip.octets(),
        reply.dst_ip.octets(),
    )
    .ok()?;
    ip.identification = reply.ip_id;
    ip.dont_fragment = false;
    ip.dscp = etherparse::IpDscp::try_new(reply.tos >> 2).unwrap_or_default();
    ip.ecn = etherparse::IpEcn::try_new(reply.tos & 3).unwrap_or_default();
    ip.header_checksum = ip.calc_header_checksum();
    let (eth_out, rest) = out.split_at_mut(ETH_LEN);
    let (ip_out, icmp) = rest.split_at_mut(IPV4_LEN);
    eth_out.copy_from_slice(&eth.to_bytes());
    ip_out.copy_from_slice(&ip.to_bytes());
    icmp.copy_from_slice(request);
    icmp[0] = ECHO_REPLY;
    icmp[1] = 0;
    icmp[2..4].fill(0);
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_ne_bytes());
    Some(total)
}

#[cfg(test)]
mod test {
    use super::*;
    use etherparse::{Icmpv4Type, SlicedPacket, TransportSlice};

    #[test]
    fn reply_mirrors_the_request() {
        let mut req = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
            .icmpv4_echo_request(0x1234, 7)
            .write(&mut req, b"abcdefghijklmnopq")
            .unwrap();
        let icmp = &req[34..];
        assert!(checksum_ok(icmp));
        let reply = EchoReply {
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            src_ip: Ipv4Addr::new(198, 51, 100, 2),
            dst_ip: Ipv4Addr::new(198, 51, 100, 1),
            ip_id: 9,
            tos: 0xb9,
        };
        let mut buf = [0u8; 128];
        let n = write_echo_reply(&mut buf, &reply, icmp).unwrap();
        assert_eq!(n, req.len());
        let p = SlicedPacket::from_ethernet(&buf[..n]).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header();
        assert_eq!(h.source_addr(), reply.src_ip);
        assert_eq!(h.destination_addr(), reply.dst_ip);
        assert_eq!((h.ttl(), h.identification(), h.slice()[1]), (64, 9, 0xb9));
        assert!(checksum_ok(h.slice()));
        let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
            panic!("not ICMP")
        };
        let Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
            panic!("not an echo reply")
        };
        assert_eq!((echo.id, echo.seq), (0x1234, 7));
        assert_eq!(icmp.payload(), b"abcdefghijklmnopq");
        assert!(checksum_ok(icmp.slice()));
        // Not a request, too short, buffer too small.
        let answer = buf[34..n].to_vec();
        let mut out = [0u8; 128];
        assert_eq!(write_echo_reply(&mut out, &reply, &answer), None);
        assert_eq!(write_echo_reply(&mut out, &reply, &req[34..40]), None);
        assert_eq!(
            write_echo_reply(&mut out[..n - 1], &reply, &req[34..]),
            None
        );
    }
}
