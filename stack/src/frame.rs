//! Building TCP frames: tests now, the synthetic capture generator later.
//!
//! [`TcpFrame`] describes one segment (link type, MACs, VLAN tags, 4-tuple,
//! seq/ack, flags, window, options) and writes it in front of a payload. The
//! IP and TCP headers, lengths and checksums come from etherparse's
//! `PacketBuilder`; the link header (Ethernet II with any TPIDs, Linux cooked
//! SLL / SLL2) is a few fixed bytes written here, since the builder knows
//! neither SLL2 nor a choice of TPID per tag.
//!
//! Options are laid out the way Linux lays out a SYN: MSS, SACK-permitted,
//! timestamps, NOP, window scale (NOPs stand in for what is absent, padded to
//! a 4-byte boundary).

use std::fmt;
use std::net::IpAddr;

use etherparse::err::packet::BuildVecWriteError;
use etherparse::{PacketBuilder, TcpHeader, TcpOptionElement};

use crate::wire::link::{SLL2_HEADER_LEN, SLL_HEADER_LEN};
use crate::wire::{LinkType, TcpFlags, TcpOpts};

/// One VLAN tag: tag protocol identifier and VLAN id (12 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// 0x8100 (802.1Q), 0x88a8 (802.1ad service tag) or 0x9100 (old QinQ).
    pub tpid: u16,
    /// VLAN identifier; the priority and DEI bits are written as zero.
    pub id: u16,
}

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Source and destination addresses are not of the same IP family.
    MixedFamilies,
    /// The options do not fit in the 40 bytes a TCP header has for them.
    OptionsTooLong,
    /// The payload does not fit the IP length field.
    PayloadTooLong {
        /// Payload length asked for.
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::MixedFamilies => {
                f.write_str("source and destination of different IP families")
            }
            FrameError::OptionsTooLong => f.write_str("TCP options longer than 40 bytes"),
            FrameError::PayloadTooLong { len } => {
                write!(f, "payload of {len} bytes too long for the IP length field")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A TCP segment to build a frame for. Builder-style setters; `write` or
/// `build` puts it in front of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpFrame {
    /// Link header to write.
    pub link: LinkType,
    /// Source MAC (Ethernet; also the cooked headers' address).
    pub src_mac: [u8; 6],
    /// Destination MAC (Ethernet).
    pub dst_mac: [u8; 6],
    /// VLAN tags, outermost first (Ethernet only; up to 4 so tests can go
    /// past what the parser follows).
    pub vlans: [Option<VlanTag>; 4],
    /// `ARPHRD_*` type written in SLL / SLL2 headers (1: Ethernet, 772: loopback).
    pub arphrd: u16,
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (written whatever the flags).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Options to write (`malformed` is ignored).
    pub opts: TcpOpts,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

impl TcpFrame {
    /// An Ethernet frame from `src` to `dst`, flags ACK, window 65535, no
    /// options, sequence and acknowledgment numbers 0.
    pub fn new(src: (IpAddr, u16), dst: (IpAddr, u16)) -> TcpFrame {
        TcpFrame {
            link: LinkType::Ethernet,
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            vlans: [None; 4],
            arphrd: 1,
            src,
            dst,
            seq: 0,
            ack: 0,
            flags: TcpFlags::ACK,
            window: 65535,
            opts: TcpOpts::default(),
            ttl: 64,
        }
    }

    /// Sets the link type.
    pub fn link(mut self, link: LinkType) -> Self {
        self.link = link;
        self
    }
    /// Adds a VLAN tag inside the ones already there.
    ///
    /// # Panics
    /// With a fifth tag.
    pub fn vlan(mut self, tpid: u16, id: u16) -> Self {
        let slot = self
            .vlans
            .iter_mut()
            .find(|v| v.is_none())
            .expect("at most 4 VLAN tags");
        *slot = Some(VlanTag { tpid, id });
        self
    }
    /// Sets the `ARPHRD_*` type of cooked headers.
    pub fn arphrd(mut self, arphrd: u16) -> Self {
        self.arphrd = arphrd;
        self
    }
    /// Sets the sequence number.
    pub fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }
    /// Sets the acknowledgment number.
    pub fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self
    }
    /// Sets the flags.
    pub fn flags(mut self, flags: TcpFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Sets the window field.
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }
    /// Sets the options.
    pub fn opts(mut self, opts: TcpOpts) -> Self {
        self.opts = opts;
        self
    }

    /// The TCP option elements, in Linux's SYN order.
    fn option_elements(&self) -> ([TcpOptionElement; 8], usize) {
        let o = &self.opts;
        let mut els = [const { TcpOptionElement::Noop }; 8];
        let mut n = 0;
        let mut push = |e| {
            els[n] = e;
            n += 1;
        };
        if let Some(mss) = o.mss {
            push(TcpOptionElement::MaximumSegmentSize(mss));
        }
        match (o.sack_permitted, o.timestamps) {
            (true, Some((val, ecr))) => {
                push(TcpOptionElement::SelectiveAcknowledgementPermitted);
                push(TcpOptionElement::Timestamp(val, ecr));
            }
            (true, None) => {
                push(TcpOptionElement::Noop);
                push(TcpOptionElement::Noop);
                push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            (false, Some((val, ecr))) => {
                push(TcpOptionElement::Noop);
                push(TcpOptionElement::Noop);
                push(TcpOptionElement::Timestamp(val, ecr));
            }
            (false, None) => {}
        }
        if let Some(shift) = o.wscale {
            push(TcpOptionElement::Noop);
            push(TcpOptionElement::WindowScale(shift));
        }
        (els, n)
    }

    /// Appends the frame (link header, IP, TCP, `payload`) to `out`.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut tcp = TcpHeader::new(self.src.1, self.dst.1, self.seq, self.window);
        tcp.acknowledgment_number = self.ack;
        let f = self.flags;
        tcp.fin = f.fin();
        tcp.syn = f.syn();
        tcp.rst = f.rst();
        tcp.psh = f.psh();
        tcp.ack = f.ack();
        tcp.urg = f.urg();
        tcp.ece = f.contains(TcpFlags::ECE);
        tcp.cwr = f.contains(TcpFlags::CWR);
        let (els, n) = self.option_elements();
        tcp.set_options(&els[..n])
            .map_err(|_| FrameError::OptionsTooLong)?;

        let (builder, ether_type) = match (self.src.0, self.dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                PacketBuilder::ipv4(s.octets(), d.octets(), self.ttl),
                0x0800,
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => (
                PacketBuilder::ipv6(s.octets(), d.octets(), self.ttl),
                0x86dd,
            ),
            _ => return Err(FrameError::MixedFamilies),
        };
        let start = out.len();
        self.write_link(ether_type, out);
        builder
            .tcp_header(tcp)
            .write_to_vec(out, payload)
            .map_err(|e| {
                out.truncate(start);
                match e {
                    BuildVecWriteError::PayloadLen(_) => {
                        FrameError::PayloadTooLong { len: payload.len() }
                    }
                    // Only IP extensions, ICMPv6 and ARP fail otherwise; none is built here.
                    _ => unreachable!("etherparse refused a plain TCP packet: {e:?}"),
                }
            })
    }

    /// The frame as a new vector.
    pub fn build(&self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(18 + 16 + 40 + 60 + 20 + payload.len());
        self.write(payload, &mut out)?;
        Ok(out)
    }

    fn write_link(&self, ether_type: u16, out: &mut Vec<u8>) {
        let mut addr = [0u8; 8];
        addr[..6].copy_from_slice(&self.src_mac);
        match self.link {
            LinkType::Ethernet => {
                out.extend_from_slice(&self.dst_mac);
                out.extend_from_slice(&self.src_mac);
                for tag in self.vlans.iter().flatten() {
                    out.extend_from_slice(&tag.tpid.to_be_bytes());
                    out.extend_from_slice(&(tag.id & 0x0fff).to_be_bytes());
                }
                out.extend_from_slice(&ether_type.to_be_bytes());
            }
            LinkType::RawIp => {}
            LinkType::LinuxSll => {
                let start = out.len();
                out.extend_from_slice(&0u16.to_be_bytes()); // packet type: to us
                out.extend_from_slice(&self.arphrd.to_be_bytes());
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(&addr);
                out.extend_from_slice(&ether_type.to_be_bytes());
                debug_assert_eq!(out.len() - start, SLL_HEADER_LEN);
            }
            LinkType::LinuxSll2 => {
                let start = out.len();
                out.extend_from_slice(&ether_type.to_be_bytes());
                out.extend_from_slice(&0u16.to_be_bytes()); // reserved
                out.extend_from_slice(&1u32.to_be_bytes()); // interface index
                out.extend_from_slice(&self.arphrd.to_be_bytes());
                out.push(0); // packet type: to us
                out.push(6);
                out.extend_from_slice(&addr);
                debug_assert_eq!(out.len() - start, SLL2_HEADER_LEN);
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::{parse, ChecksumStatus};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> TcpFrame {
        TcpFrame::new(
            (Ipv4Addr::new(198, 51, 100, 1).into(), 40000),
            (Ipv4Addr::new(198, 51, 100, 2).into(), 80),
        )
    }

    #[test]
    fn test_emit_ethernet_ipv4() {
        let frame = v4()
            .seq(1000)
            .ack(2000)
            .flags(TcpFlags::PSH | TcpFlags::ACK)
            .build(b"hi")
            .unwrap();
        // 14 Ethernet + 20 IPv4 + 20 TCP + 2.
        assert_eq!(frame.len(), 56);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(frame[14], 0x45);
        assert_eq!(&frame[54..], b"hi");
        let seg = parse(&frame, LinkType::Ethernet, true).unwrap();
        assert_eq!(seg.checksum, ChecksumStatus::Valid);
        assert_eq!(seg.seq.0, 1000);
        assert_eq!(seg.ack.0, 2000);
    }

    #[test]
    fn test_emit_options_layout() {
        let opts = TcpOpts {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((7, 0)),
            malformed: false,
        };
        let frame = v4().flags(TcpFlags::SYN).opts(opts).build(&[]).unwrap();
        // Linux's SYN: MSS, SACK_PERM, TS, NOP, WS: 20 bytes, data offset 10.
        assert_eq!(frame[14 + 20 + 12] >> 4, 10);
        assert_eq!(
            &frame[54..74],
            &[2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7]
        );
    }

    #[test]
    fn errors() {
        let mixed = TcpFrame::new(
            (Ipv4Addr::LOCALHOST.into(), 1),
            (Ipv6Addr::LOCALHOST.into(), 2),
        );
        assert_eq!(mixed.build(b""), Err(FrameError::MixedFamilies));
        let mut out = vec![1, 2, 3];
        assert_eq!(
            v4().write(&vec![0; 70000], &mut out),
            Err(FrameError::PayloadTooLong { len: 70000 })
        );
        assert_eq!(out, [1, 2, 3], "a failed write leaves the buffer as it was");
    }
}
