//! Frames built by `frame::TcpFrame` parse back to what was built, for every
//! link type, both IP families, VLAN and QinQ tags, and any options.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aa_runtime::SeqNum;
use aa_stack::frame::TcpFrame;
use aa_stack::wire::{parse, ChecksumStatus, LinkType, TcpFlags, TcpOpts, WireError};
use proptest::prelude::*;

fn v4(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, a))
}

fn v6(a: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, a))
}

fn syn_opts() -> TcpOpts {
    TcpOpts {
        mss: Some(1460),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some((123_456, 0)),
        malformed: false,
    }
}

/// Every way a frame can start, with the offset of its IP header.
fn links() -> Vec<(&'static str, TcpFrame, usize, [Option<u16>; 2])> {
    let base = |src, dst| TcpFrame::new((src, 40000), (dst, 80));
    let mut out = Vec::new();
    for (fam, src, dst) in [("v4", v4(1), v4(2)), ("v6", v6(1), v6(2))] {
        let _ = fam;
        out.push(("ethernet", base(src, dst), 14, [None, None]));
        out.push((
            "802.1q",
            base(src, dst).vlan(0x8100, 100),
            18,
            [Some(100), None],
        ));
        out.push((
            "qinq 88a8/8100",
            base(src, dst).vlan(0x88a8, 10).vlan(0x8100, 4094),
            22,
            [Some(10), Some(4094)],
        ));
        out.push((
            "qinq 9100/8100",
            base(src, dst).vlan(0x9100, 1).vlan(0x8100, 2),
            22,
            [Some(1), Some(2)],
        ));
        out.push((
            "raw ip",
            base(src, dst).link(LinkType::RawIp),
            0,
            [None, None],
        ));
        out.push((
            "sll ethernet",
            base(src, dst).link(LinkType::LinuxSll),
            16,
            [None, None],
        ));
        out.push((
            "sll loopback",
            base(src, dst).link(LinkType::LinuxSll).arphrd(772),
            16,
            [None, None],
        ));
        out.push((
            "sll2 tun",
            base(src, dst).link(LinkType::LinuxSll2).arphrd(0xfffe),
            20,
            [None, None],
        ));
    }
    out
}

#[test]
fn every_link_type_and_family_parses_back() {
    let payload = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    for (name, frame, ip_offset, vlan) in links() {
        let is_v6 = frame.src.0.is_ipv6();
        let bytes = frame
            .clone()
            .seq(u32::MAX - 3)
            .ack(77)
            .flags(TcpFlags::PSH | TcpFlags::ACK)
            .window(1234)
            .opts(TcpOpts {
                timestamps: Some((5, 6)),
                ..TcpOpts::default()
            })
            .build(payload)
            .unwrap();
        let seg = parse(&bytes, frame.link, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(seg.src, frame.src, "{name}");
        assert_eq!(seg.dst, frame.dst, "{name}");
        assert_eq!(seg.seq, SeqNum(u32::MAX - 3), "{name}");
        assert_eq!(seg.ack, SeqNum(77), "{name}");
        assert_eq!(seg.flags, TcpFlags::PSH | TcpFlags::ACK, "{name}");
        assert_eq!(seg.window, 1234, "{name}");
        assert_eq!(seg.opts.timestamps, Some((5, 6)), "{name}");
        assert_eq!(seg.vlan, vlan, "{name}");
        assert_eq!(seg.ip_offset as usize, ip_offset, "{name}");
        let ip_len = if is_v6 { 40 } else { 20 };
        assert_eq!(seg.tcp_offset as usize, ip_offset + ip_len, "{name}");
        assert_eq!(seg.payload(&bytes), payload, "{name}");
        assert_eq!(seg.payload_range().end, bytes.len(), "{name}");
        assert_eq!(seg.checksum, ChecksumStatus::Valid, "{name}");
        assert_eq!(seg.is_ipv6(), is_v6, "{name}");
    }
}

#[test]
fn syn_options_round_trip_on_every_link() {
    for (name, frame, _, _) in links() {
        let bytes = frame
            .clone()
            .flags(TcpFlags::SYN)
            .opts(syn_opts())
            .build(&[])
            .unwrap();
        let seg = parse(&bytes, frame.link, true).unwrap();
        assert_eq!(seg.opts, syn_opts(), "{name}");
        assert_eq!(seg.seq_len(), 1, "{name}");
    }
}

#[test]
fn four_vlan_tags_are_too_many() {
    let frame = TcpFrame::new((v4(1), 1), (v4(2), 2))
        .vlan(0x88a8, 1)
        .vlan(0x8100, 2)
        .vlan(0x8100, 3);
    let three = frame.build(b"x").unwrap();
    assert!(
        parse(&three, LinkType::Ethernet, true).is_ok(),
        "three tags are followed"
    );
    let four = frame.vlan(0x8100, 4).build(b"x").unwrap();
    assert_eq!(
        parse(&four, LinkType::Ethernet, true),
        Err(WireError::TooManyVlanTags)
    );
}

#[test]
fn arp_and_udp_are_counted_not_parsed() {
    use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder};
    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &[2, 0, 0, 0, 0, 1],
        &[198, 51, 100, 1],
        &[0; 6],
        &[198, 51, 100, 2],
    )
    .unwrap();
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0xff; 6])
        .arp(arp)
        .write(&mut frame)
        .unwrap();
    assert_eq!(
        parse(&frame, LinkType::Ethernet, true),
        Err(WireError::NotIpv4OrIpv6 { ether_type: 0x0806 })
    );

    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6([0x20; 16], [0x21; 16], 64)
        .udp(53, 53)
        .write(&mut frame, b"query")
        .unwrap();
    assert_eq!(
        parse(&frame, LinkType::Ethernet, true),
        Err(WireError::NotTcp { protocol: 17 })
    );
}

#[test]
fn ipv6_fragments_are_skipped() {
    use etherparse::{
        IpFragOffset, IpHeaders, IpNumber, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header,
        PacketBuilder,
    };
    let frag = |offset: u16, more: bool| {
        let header = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 0,
            next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
            hop_limit: 64,
            source: [0x20; 16],
            destination: [0x21; 16],
        };
        let exts = Ipv6Extensions {
            fragment: Some(Ipv6FragmentHeader::new(
                IpNumber::TCP,
                IpFragOffset::try_new(offset).unwrap(),
                more,
                7,
            )),
            ..Default::default()
        };
        let mut out = Vec::new();
        PacketBuilder::ip(IpHeaders::Ipv6(header, exts))
            .tcp(1, 2, 3, 4)
            .write(&mut out, b"data")
            .unwrap();
        out
    };
    assert_eq!(
        parse(&frag(0, true), LinkType::RawIp, true),
        Err(WireError::Fragment)
    );
    assert_eq!(
        parse(&frag(8, false), LinkType::RawIp, true),
        Err(WireError::Fragment)
    );
    // An "atomic fragment" (offset 0, no more) is a whole packet.
    let seg = parse(&frag(0, false), LinkType::RawIp, true).unwrap();
    assert_eq!(seg.payload(&frag(0, false)), b"data");
    assert_eq!(seg.tcp_offset, 48);
}

fn arb_opts() -> impl Strategy<Value = TcpOpts> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(|(mss, wscale, sack_permitted, timestamps)| TcpOpts {
            mss,
            wscale,
            sack_permitted,
            timestamps,
            malformed: false,
        })
}

proptest! {
    #[test]
    fn any_segment_round_trips(
        v6_family in any::<bool>(),
        link in 0usize..4,
        seq in any::<u32>(),
        ack in any::<u32>(),
        flags in any::<u8>(),
        window in any::<u16>(),
        opts in arb_opts(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ports in (any::<u16>(), any::<u16>()),
    ) {
        let link = [LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll, LinkType::LinuxSll2][link];
        let (src, dst) = if v6_family { (v6(7), v6(8)) } else { (v4(7), v4(8)) };
        let frame = TcpFrame::new((src, ports.0), (dst, ports.1))
            .link(link)
            .seq(seq)
            .ack(ack)
            .flags(TcpFlags(flags))
            .window(window)
            .opts(opts);
        let bytes = frame.build(&payload).unwrap();
        let seg = parse(&bytes, link, true).unwrap();
        prop_assert_eq!(seg.src, (src, ports.0));
        prop_assert_eq!(seg.dst, (dst, ports.1));
        prop_assert_eq!((seg.seq.0, seg.ack.0, seg.flags.0, seg.window), (seq, ack, flags, window));
        prop_assert_eq!(seg.opts, opts);
        prop_assert_eq!(seg.payload(&bytes), &payload[..]);
        prop_assert_eq!(seg.checksum, ChecksumStatus::Valid);
    }
}
