//! Link types, and the Linux cooked capture headers (SLL and SLL2).
//!
//! The numbers are the pcap `LINKTYPE_*` values (tcpdump.org/linktypes.html),
//! also used in pcapng interface blocks.
//!
//! The cooked headers are decoded here rather than by etherparse: its SLL
//! slicer accepts only five ARPHRD types (Ethernet, netlink, IP-GRE, FRAD,
//! radiotap) and refuses the loopback (772) and tun (`ARPHRD_NONE`, 0xfffe)
//! interfaces that `tcpdump -i any` captures, and it has no SLL2. Both headers
//! are fixed-size; what follows is an EtherType-typed payload handed back to
//! etherparse.
//!
//! ```text
//! SLL  (16 bytes): packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
//! SLL2 (20 bytes): protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1)
//!                  addr len(1) addr(8)
//! ```

use std::fmt;

use super::{Layer, WireError};

/// What the first byte of a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II (`LINKTYPE_ETHERNET`, 1), VLAN tags included.
    Ethernet,
    /// A raw IPv4 or IPv6 packet (`LINKTYPE_RAW` 101, `DLT_RAW` 12 and 14,
    /// `LINKTYPE_IPV4` 228, `LINKTYPE_IPV6` 229); the version nibble decides.
    RawIp,
    /// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`, 113), 16-byte header.
    LinuxSll,
    /// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, 276), 20-byte header.
    LinuxSll2,
}

/// Length of a Linux cooked v1 header.
pub const SLL_HEADER_LEN: usize = 16;
/// Length of a Linux cooked v2 header.
pub const SLL2_HEADER_LEN: usize = 20;
/// `ARPHRD_NETLINK`: the cooked protocol field is a netlink family.
pub const ARPHRD_NETLINK: u16 = 824;

impl LinkType {
    /// The link type for a pcap / pcapng link-type number, if supported.
    pub fn from_linktype(linktype: u32) -> Option<LinkType> {
        match linktype {
            1 => Some(LinkType::Ethernet),
            12 | 14 | 101 | 228 | 229 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }

    /// The pcap link-type number written for this link type.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// The supported link types, for messages.
    pub const SUPPORTED: &'static str =
        "ETHERNET (1), RAW (101, 12, 14), IPV4 (228), IPV6 (229), LINUX_SLL (113), LINUX_SLL2 (276)";
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(linktype_name(self.linktype()))
    }
}

/// The `LINKTYPE_` name of a link-type number (without the prefix), or
/// `"unknown"`.
pub fn linktype_name(linktype: u32) -> &'static str {
    match linktype {
        0 => "NULL",
        1 => "ETHERNET",
        6 => "IEEE802_5",
        8 => "SLIP",
        9 => "PPP",
        12 | 14 | 101 => "RAW",
        50 => "PPP_HDLC",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        119 => "IEEE802_11_PRISM",
        127 => "IEEE802_11_RADIOTAP",
        147..=162 => "USER",
        187 => "BLUETOOTH_HCI_H4",
        192 => "PPI",
        195 => "IEEE802_15_4_WITHFCS",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
        220 => "USB_LINUX_MMAPPED",
        228 => "IPV4",
        229 => "IPV6",
        249 => "USBPCAP",
        253 => "NETLINK",
        274 => "NFLOG",
        276 => "LINUX_SLL2",
        _ => "unknown",
    }
}

/// Decodes a Linux cooked header: the EtherType of the payload and the
/// header length.
pub(crate) fn cooked(frame: &[u8], link: LinkType) -> Result<(u16, usize), WireError> {
    let (len, proto_at, arphrd_at) = match link {
        LinkType::LinuxSll => (SLL_HEADER_LEN, 14, 2),
        LinkType::LinuxSll2 => (SLL2_HEADER_LEN, 0, 8),
        LinkType::Ethernet | LinkType::RawIp => unreachable!("not a cooked link type"),
    };
    if frame.len() < len {
        return Err(WireError::Truncated {
            layer: Layer::Link,
            need: len,
            have: frame.len(),
        });
    }
    let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    let protocol = be16(proto_at);
    // Below 0x0600 the field is an 802.3 length or a Linux pseudo-protocol
    // (0x0001 802.3, 0x0004 802.2 LLC, 0x000c CAN, ...), and on a netlink
    // interface a netlink family: no IP packet either way.
    if protocol < 0x0600 || be16(arphrd_at) == ARPHRD_NETLINK {
        return Err(WireError::NotIpv4OrIpv6 {
            ether_type: protocol,
        });
    }
    Ok((protocol, len))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn linktype_numbers_round_trip() {
        for l in [
            LinkType::Ethernet,
            LinkType::RawIp,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
        ] {
            assert_eq!(LinkType::from_linktype(l.linktype()), Some(l));
        }
        for raw in [12, 14, 101, 228, 229] {
            assert_eq!(LinkType::from_linktype(raw), Some(LinkType::RawIp));
        }
        assert_eq!(LinkType::from_linktype(9), None);
        assert_eq!(linktype_name(127), "IEEE802_11_RADIOTAP");
        assert_eq!(LinkType::LinuxSll2.to_string(), "LINUX_SLL2");
    }

    #[test]
    fn cooked_headers() {
        // SLL: loopback interface (ARPHRD 772), IPv4.
        let mut sll = [0u8; 16];
        sll[2..4].copy_from_slice(&772u16.to_be_bytes());
        sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(cooked(&sll, LinkType::LinuxSll), Ok((0x0800, 16)));
        assert_eq!(
            cooked(&sll[..15], LinkType::LinuxSll),
            Err(WireError::Truncated {
                layer: Layer::Link,
                need: 16,
                have: 15
            })
        );
        // Netlink: protocol is a netlink family even if it looks like IPv4.
        sll[2..4].copy_from_slice(&ARPHRD_NETLINK.to_be_bytes());
        assert_eq!(
            cooked(&sll, LinkType::LinuxSll),
            Err(WireError::NotIpv4OrIpv6 { ether_type: 0x0800 })
        );
        // SLL2: tun interface (ARPHRD_NONE), IPv6.
        let mut sll2 = [0u8; 20];
        sll2[0..2].copy_from_slice(&0x86ddu16.to_be_bytes());
        sll2[8..10].copy_from_slice(&0xfffeu16.to_be_bytes());
        assert_eq!(cooked(&sll2, LinkType::LinuxSll2), Ok((0x86dd, 20)));
        sll2[0..2].copy_from_slice(&0x0004u16.to_be_bytes());
        assert_eq!(
            cooked(&sll2, LinkType::LinuxSll2),
            Err(WireError::NotIpv4OrIpv6 { ether_type: 4 })
        );
    }
}
