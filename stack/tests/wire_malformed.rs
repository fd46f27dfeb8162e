//! Malformed frames: every truncation length of valid frames, length fields
//! pointing past the packet, bad checksums under each checksum mode, and
//! arbitrary bytes. None may panic; each gets a sensible reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aa_runtime::{Packet, PacketPool};
use aa_stack::frame::TcpFrame;
use aa_stack::io::memory::MemoryIo;
use aa_stack::io::{Burst, PacketIo};
use aa_stack::wire::{
    parse, ChecksumMode, ChecksumStatus, Decoder, Layer, LinkType, TcpFlags, TcpOpts, WireError,
};
use proptest::prelude::*;

fn v4(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, a))
}

fn v6(a: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, a))
}

fn syn(src: IpAddr, dst: IpAddr) -> TcpFrame {
    TcpFrame::new((src, 1234), (dst, 80))
        .flags(TcpFlags::SYN)
        .opts(TcpOpts {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            malformed: false,
        })
}

/// A named frame, its link type, and where each layer starts: `(offset,
/// layer)` ascending, ending with the IP header.
type Case = (String, Vec<u8>, LinkType, Vec<(usize, Layer)>);

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (fam, src, dst) in [("v4", v4(1), v4(2)), ("v6", v6(1), v6(2))] {
        let f = |t: TcpFrame, link| (t.link(link).build(b"payload bytes").unwrap(), link);
        let eth = vec![(0, Layer::Link), (14, Layer::Ip)];
        let (b, l) = f(syn(src, dst), LinkType::Ethernet);
        out.push((format!("{fam} ethernet"), b, l, eth));
        let (b, l) = f(
            syn(src, dst).vlan(0x88a8, 5).vlan(0x8100, 6),
            LinkType::Ethernet,
        );
        let qinq = vec![(0, Layer::Link), (14, Layer::Vlan), (22, Layer::Ip)];
        out.push((format!("{fam} qinq"), b, l, qinq));
        let (b, l) = f(syn(src, dst), LinkType::RawIp);
        out.push((format!("{fam} raw"), b, l, vec![(0, Layer::Ip)]));
        let (b, l) = f(syn(src, dst), LinkType::LinuxSll);
        out.push((
            format!("{fam} sll"),
            b,
            l,
            vec![(0, Layer::Link), (16, Layer::Ip)],
        ));
        let (b, l) = f(syn(src, dst), LinkType::LinuxSll2);
        out.push((
            format!("{fam} sll2"),
            b,
            l,
            vec![(0, Layer::Link), (20, Layer::Ip)],
        ));
    }
    out
}

#[test]
fn every_truncation_length_is_a_truncated_error_at_the_right_layer() {
    for (name, frame, link, layers) in cases() {
        assert!(parse(&frame, link, true).is_ok(), "{name} whole");
        for len in 0..frame.len() {
            let expect = layers.iter().rev().find(|(at, _)| *at <= len).unwrap().1;
            match parse(&frame[..len], link, true) {
                Err(WireError::Truncated { layer, need, have }) => {
                    assert_eq!(layer, expect, "{name} cut at {len}");
                    assert!(have < need, "{name} cut at {len}: need {need} have {have}");
                }
                other => panic!("{name} cut at {len}: {other:?}"),
            }
        }
    }
}

/// A raw IPv4 SYN with 20 bytes of options and "payload bytes".
fn raw_v4() -> Vec<u8> {
    syn(v4(1), v4(2))
        .link(LinkType::RawIp)
        .build(b"payload bytes")
        .unwrap()
}

fn set_total_len(f: &mut [u8], len: u16) {
    f[2..4].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn ip_header_length_past_the_packet() {
    // 20 + 40 + 13 = 73 bytes. IHL 15 = 60 bytes: inside the packet, but
    // TCP then starts at 60 and has 13 bytes.
    let mut f = raw_v4();
    f[0] = 0x4f;
    assert_eq!(
        parse(&f, LinkType::RawIp, false),
        Err(WireError::Truncated {
            layer: Layer::Tcp,
            need: 20,
            have: 13
        })
    );
    // Total length 50 < IHL 60.
    set_total_len(&mut f, 50);
    assert_eq!(
        parse(&f, LinkType::RawIp, false),
        Err(WireError::BadIpHeaderLength { ihl: 15 })
    );
    // Same, with the frame cut at 40 bytes (not even the header is there).
    assert_eq!(
        parse(&f[..40], LinkType::RawIp, false),
        Err(WireError::BadIpHeaderLength { ihl: 15 })
    );
    // Every IHL below 5.
    for ihl in 0..5u8 {
        let mut f = raw_v4();
        f[0] = 0x40 | ihl;
        assert_eq!(
            parse(&f, LinkType::RawIp, false),
            Err(WireError::BadIpHeaderLength { ihl })
        );
    }
    // Total lengths below the minimum header, and zero (TSO capture).
    for total in [0u16, 1, 19] {
        let mut f = raw_v4();
        set_total_len(&mut f, total);
        assert_eq!(
            parse(&f, LinkType::RawIp, false),
            Err(WireError::BadIpTotalLength { total_len: total })
        );
    }
    // Total length leaves 10 bytes for TCP.
    let mut f = raw_v4();
    set_total_len(&mut f, 30);
    assert_eq!(
        parse(&f, LinkType::RawIp, false),
        Err(WireError::Truncated {
            layer: Layer::Tcp,
            need: 20,
            have: 10
        })
    );
}

#[test]
fn tcp_data_offset_past_the_packet() {
    let f = raw_v4();
    for words in 0..16u8 {
        let mut g = f.clone();
        g[20 + 12] = words << 4;
        let r = parse(&g, LinkType::RawIp, false);
        match words {
            0..=4 => assert_eq!(r, Err(WireError::BadTcpDataOffset { data_offset: words })),
            // 73 - 20 = 53 bytes of TCP: up to 13 words fit.
            5..=13 => {
                let seg = r.unwrap();
                assert_eq!(seg.payload_offset as usize, 20 + 4 * words as usize);
                assert_eq!(seg.payload_range().end, f.len());
            }
            _ => assert_eq!(r, Err(WireError::BadTcpDataOffset { data_offset: words })),
        }
    }
}

#[test]
fn ipv6_extension_past_the_packet() {
    use etherparse::{
        IpHeaders, IpNumber, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader, PacketBuilder,
    };
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 0,
        next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
        hop_limit: 64,
        source: [0x20; 16],
        destination: [0x21; 16],
    };
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        ..Default::default()
    };
    let mut f = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv6(header, exts))
        .tcp(1, 2, 3, 4)
        .write(&mut f, b"x")
        .unwrap();
    let seg = parse(&f, LinkType::RawIp, true).unwrap();
    assert_eq!(seg.tcp_offset, 48);
    // Payload length 4: the 8-byte hop-by-hop header runs past the packet.
    f[4..6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        parse(&f, LinkType::RawIp, true),
        Err(WireError::BadIpExtension)
    );
}

/// A capture of `n` data segments; those with `bad(i)` get a wrong checksum.
fn capture(n: usize, bad: impl Fn(usize) -> bool) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = TcpFrame::new((v4(1), 5000), (v4(2), 80))
                .seq(i as u32 * 100)
                .build(&[b'a'; 100])
                .unwrap();
            if bad(i) {
                let last = f.len() - 1;
                f[last] ^= 0x40;
            }
            f
        })
        .collect()
}

/// Runs `frames` through a memory device and a decoder; returns the decoder
/// and the payload bytes of the segments it kept.
fn run(frames: &[Vec<u8>], mode: ChecksumMode) -> (Decoder, usize) {
    let pool = PacketPool::new(32, 2048);
    let mut io = MemoryIo::with_frames(pool.clone(), LinkType::Ethernet, frames);
    let mut burst = Burst::with_capacity(32);
    let mut dec = Decoder::new(mode);
    let mut kept = 0;
    while !io.at_end() {
        io.recv_burst(&mut burst).unwrap();
        for rx in burst.drain(..) {
            if let Ok(seg) = dec.decode(rx.packet.data(), rx.meta.link) {
                kept += seg.payload(rx.packet.data()).len();
            }
        }
    }
    assert!(pool.is_full(), "every packet went back to the pool");
    (dec, kept)
}

#[test]
fn checksum_on_drops_bad_segments() {
    let frames = capture(10, |i| i == 3 || i == 7);
    let (dec, kept) = run(&frames, ChecksumMode::On);
    assert_eq!(kept, 800);
    assert_eq!(dec.stats.bad_checksum, 2);
    assert_eq!(dec.stats.segments, 8);
    let r = dec.policy.report();
    assert_eq!((r.checked, r.bad, r.dropped), (10, 2, 2));
    // The status itself, without a policy.
    assert_eq!(
        parse(&frames[3], LinkType::Ethernet, true)
            .unwrap()
            .checksum,
        ChecksumStatus::Invalid
    );
}

#[test]
fn checksum_off_ignores_bad_segments() {
    let frames = capture(10, |i| i % 2 == 0);
    let (dec, kept) = run(&frames, ChecksumMode::Off);
    assert_eq!(kept, 1000);
    assert_eq!(dec.stats.bad_checksum, 0);
    assert_eq!(dec.policy.report().checked, 0);
    assert_eq!(
        parse(&frames[0], LinkType::Ethernet, false)
            .unwrap()
            .checksum,
        ChecksumStatus::Unchecked
    );
}

#[test]
fn checksum_auto_flips_on_an_offloaded_capture_and_says_so() {
    // One side of every exchange captured with TX offload: half bad.
    let frames = capture(1500, |i| i % 2 == 1);
    let (dec, kept) = run(&frames, ChecksumMode::Auto);
    let r = dec.policy.report();
    assert!(dec.policy.offload_assumed());
    // The 101st bad segment (number 201) decides; the 100 before were dropped.
    assert_eq!(r.sample, (202, 101));
    assert_eq!(r.dropped, 100);
    assert_eq!(kept, (1500 - 100) * 100);
    let text = r.to_string();
    assert!(
        text.contains("checksum offload, validation disabled"),
        "{text}"
    );

    // A clean capture keeps validating.
    let frames = capture(1500, |i| i == 1200);
    let (dec, kept) = run(&frames, ChecksumMode::Auto);
    assert!(!dec.policy.offload_assumed());
    assert_eq!(dec.stats.bad_checksum, 1);
    assert_eq!(kept, 1499 * 100);
}

#[test]
fn decoder_counts_every_outcome() {
    let mut dec = Decoder::new(ChecksumMode::On);
    let good = raw_v4();
    let mut frag = good.clone();
    frag[6] = 0x20;
    let mut udp = good.clone();
    udp[9] = 17;
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x43;
    for f in [&good[..], &good[..10], &frag, &udp, &bad_ihl] {
        let _ = dec.decode(f, LinkType::RawIp);
    }
    let _ = dec.decode(&[0u8; 60], LinkType::Ethernet); // EtherType 0
    let s = dec.stats;
    assert_eq!(
        (
            s.frames,
            s.segments,
            s.truncated,
            s.fragments,
            s.not_tcp,
            s.malformed,
            s.not_ip
        ),
        (6, 1, 1, 1, 1, 1, 1)
    );
    assert!(s.to_string().starts_with("6 frames: 1 TCP segments"), "{s}");
}

fn check_no_panic(bytes: &[u8]) -> Result<(), TestCaseError> {
    for link in [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ] {
        if let Ok(seg) = parse(bytes, link, true) {
            prop_assert!(seg.ip_offset < seg.tcp_offset);
            prop_assert!(seg.tcp_offset + 20 <= seg.payload_offset);
            prop_assert!(seg.payload_range().end <= bytes.len());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_no_panic(&bytes)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..10,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let (_, mut frame, _, _) = cases().swap_remove(which);
        for (at, byte) in edits {
            let at = at % frame.len();
            frame[at] = byte;
        }
        let cut = cut % (frame.len() + 1);
        check_no_panic(&frame[..cut])?;
        check_no_panic(&frame)?;
    }
}
