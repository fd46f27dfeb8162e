//! Parse cost per frame: `aa_stack::wire::parse` (etherparse slicing) against
//! smoltcp's wire views (baseline), on full-size IPv4/TCP frames: Ethernet,
//! 20-byte IPv4, 32-byte TCP header (timestamps), 1448-byte payload: 1514
//! bytes, the frame a 1500-MTU Linux sender emits.
//!
//! Both sides produce the same `Segment` (4-tuple, seq/ack, flags, window,
//! MSS/WS/SACK-permitted/timestamps, payload range), with and without the TCP
//! checksum. `etherparse/sliced` is etherparse's `SlicedPacket` alone (what
//! a parse built on it would start from). Each iteration parses a batch of 64
//! distinct frames; throughput is in frames (elements) per second, so
//! ns/frame = 1e9 / rate. `wire/checksum_1480` times the checksum sum alone
//! (ours against etherparse's), in bytes per second; `wire/copy_checksum_1448`
//! a payload copied into a frame and summed, in two passes or in one.
//!
//! Run: `cargo bench -p aa-stack --bench wire`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use aa_runtime::SeqNum;
use aa_stack::frame::TcpFrame;
use aa_stack::wire::{parse, ChecksumStatus, LinkType, Segment, TcpFlags, TcpOpts};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpOption, TcpPacket,
};

const BATCH: usize = 64;

fn frames() -> Vec<Vec<u8>> {
    let a = |x| IpAddr::V4(Ipv4Addr::new(198, 51, 100, x));
    let payload: Vec<u8> = (0..1448u32).map(|i| (i * 7) as u8).collect();
    (0..BATCH)
        .map(|i| {
            let f = TcpFrame::new((a(1), 40000), (a(2), 443))
                .seq(1_000_000 + 1448 * i as u32)
                .ack(5000)
                .flags(TcpFlags::ACK | TcpFlags::PSH)
                .window(501)
                .opts(TcpOpts {
                    timestamps: Some((i as u32, 77)),
                    ..TcpOpts::default()
                })
                .build(&payload)
                .unwrap();
            assert_eq!(f.len(), 1514);
            f
        })
        .collect()
}

/// The same work as `parse` for Ethernet/IPv4/TCP, with smoltcp's views.
fn smoltcp_parse(frame: &[u8], verify: bool) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 || ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let ip_payload = ip.payload();
    let tcp = TcpPacket::new_checked(ip_payload).ok()?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let checksum = if !verify {
        ChecksumStatus::Unchecked
    } else if tcp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)) {
        ChecksumStatus::Valid
    } else {
        ChecksumStatus::Invalid
    };
    let mut opts = TcpOpts::default();
    let mut rest = tcp.options();
    while !rest.is_empty() {
        let (next, opt) = match TcpOption::parse(rest) {
            Ok(ok) => ok,
            Err(_) => {
                opts.malformed = true;
                break;
            }
        };
        match opt {
            TcpOption::EndOfList => break,
            TcpOption::MaxSegmentSize(m) => opts.mss = Some(m),
            TcpOption::WindowScale(w) => opts.wscale = Some(w),
            TcpOption::SackPermitted => opts.sack_permitted = true,
            TcpOption::TimeStamp { tsval, tsecr } => opts.timestamps = Some((tsval, tsecr)),
            _ => {}
        }
        rest = next;
    }
    let ip_offset = 14u32;
    let tcp_offset = ip_offset + u32::from(ip.header_len());
    let payload_offset = tcp_offset + u32::from(tcp.header_len());
    let payload_len = (ip_payload.len() - usize::from(tcp.header_len())) as u32;
    Some(Segment {
        src: (IpAddr::V4(src), tcp.src_port()),
        dst: (IpAddr::V4(dst), tcp.dst_port()),
        seq: SeqNum(tcp.seq_number().0 as u32),
        ack: SeqNum(tcp.ack_number().0 as u32),
        flags: TcpFlags(frame[tcp_offset as usize + 13]),
        window: tcp.window_len(),
        opts,
        vlan: [None, None],
        ip_offset,
        tcp_offset,
        payload_offset,
        payload_len,
        checksum,
    })
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    // Same answers before timing anything.
    for f in &frames {
        for verify in [false, true] {
            let ours = parse(f, LinkType::Ethernet, verify).unwrap();
            assert_eq!(Some(ours), smoltcp_parse(f, verify));
        }
    }

    let mut g = c.benchmark_group("wire/ipv4_tcp_1448");
    g.throughput(Throughput::Elements(BATCH as u64));
    for verify in [false, true] {
        let tag = if verify { "checksum" } else { "no_checksum" };
        g.bench_function(format!("aa_stack(etherparse)/{tag}"), |b| {
            b.iter(|| {
                for f in &frames {
                    black_box(parse(black_box(f), LinkType::Ethernet, verify).ok());
                }
            })
        });
        g.bench_function(format!("smoltcp/{tag}"), |b| {
            b.iter(|| {
                for f in &frames {
                    black_box(smoltcp_parse(black_box(f), verify));
                }
            })
        });
    }
    g.bench_function("etherparse/sliced", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(etherparse::SlicedPacket::from_ethernet(black_box(f)).ok());
            }
        })
    });
    g.finish();

    // The checksum alone, over one 1480-byte TCP segment.
    let seg = &frames[0][34..];
    let mut g = c.benchmark_group("wire/checksum_1480");
    g.throughput(Throughput::Bytes(seg.len() as u64));
    g.bench_function("aa_stack::sum32", |b| {
        b.iter(|| aa_stack::wire::tcp::fold(aa_stack::wire::tcp::sum32(black_box(seg))))
    });
    g.bench_function("aa_stack::sum32_portable", |b| {
        b.iter(|| aa_stack::wire::tcp::fold(aa_stack::wire::tcp::sum32_portable(black_box(seg))))
    });
    g.bench_function("etherparse::Sum16BitWords", |b| {
        b.iter(|| {
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(black_box(seg))
                .ones_complement()
        })
    });
    g.finish();

    // Building a frame that carries a checksum: the payload copied into the
    // frame and summed there (the baseline), or summed as it is copied.
    let payload = &frames[0][66..];
    let mut into = vec![0u8; payload.len()];
    let mut g = c.benchmark_group("wire/copy_checksum_1448");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("copy_then_sum32", |b| {
        b.iter(|| {
            into.copy_from_slice(black_box(payload));
            aa_stack::wire::tcp::fold(aa_stack::wire::tcp::sum32(black_box(&into)))
        })
    });
    g.bench_function("copy_sum32", |b| {
        b.iter(|| {
            aa_stack::wire::tcp::fold(aa_stack::wire::tcp::copy_sum32(
                &mut into,
                black_box(payload),
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
