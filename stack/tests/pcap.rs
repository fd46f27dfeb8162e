//! Capture files: written and read back identically (pcap micro/nano, pcapng),
//! known-byte fixtures (little- and big-endian, several interfaces and
//! sections), truncation at every length, unsupported link types, pool use.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};

use aa_runtime::{Packet, PacketPool};
use aa_stack::frame::TcpFrame;
use aa_stack::io::pcap::{CaptureFormat, PcapReader, PcapWriter, TsPrecision};
use aa_stack::io::{Burst, IoError, PacketIo, RxMeta, Timestamp};
use aa_stack::wire::{ChecksumMode, Decoder, Layer, LinkType, TcpFlags, WireError};

fn frames(n: usize) -> Vec<Vec<u8>> {
    let a = |x| IpAddr::V4(Ipv4Addr::new(198, 51, 100, x));
    (0..n)
        .map(|i| {
            // Payload lengths 0..=6 exercise the pcapng 32-bit padding.
            TcpFrame::new((a(1), 40000), (a(2), 80))
                .seq(1000 + 7 * i as u32)
                .flags(TcpFlags::PSH | TcpFlags::ACK)
                .build(&b"abcdefg"[..i % 7])
                .unwrap()
        })
        .collect()
}

fn ts(i: usize) -> Timestamp {
    Timestamp::new(1_700_000_000 + i as u64, 123_456_789 + i as u64)
}

type Read = (Vec<(Vec<u8>, RxMeta)>, Option<IoError>);

/// Reads every packet (bursts of 3) until the end or an error.
fn read_all(bytes: &[u8], pool: &PacketPool) -> Read {
    let mut r = PcapReader::new(Cursor::new(bytes.to_vec()), pool.clone()).unwrap();
    let mut burst = Burst::with_capacity(3);
    let mut got = Vec::new();
    loop {
        match r.recv_burst(&mut burst) {
            Ok(0) => {
                assert!(r.at_end());
                return (got, None);
            }
            Ok(_) => {
                for rx in burst.drain(..) {
                    got.push((rx.packet.data().to_vec(), rx.meta));
                }
            }
            Err(e) => {
                assert!(r.at_end(), "an error ends the reader");
                assert_eq!(
                    r.recv_burst(&mut burst).unwrap(),
                    0,
                    "nothing after the error"
                );
                return (got, Some(e));
            }
        }
    }
}

fn write(kind: &str, frames: &[Vec<u8>], link: LinkType) -> Vec<u8> {
    let mut w = match kind {
        "micro" => PcapWriter::pcap(Vec::new(), link, TsPrecision::Micro).unwrap(),
        "nano" => PcapWriter::pcap(Vec::new(), link, TsPrecision::Nano).unwrap(),
        _ => PcapWriter::pcapng(Vec::new(), link).unwrap(),
    };
    for (i, f) in frames.iter().enumerate() {
        w.write(ts(i), f).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn written_captures_read_back_identically() {
    let pool = PacketPool::new(16, 2048);
    let frames = frames(20);
    for kind in ["micro", "nano", "pcapng"] {
        let bytes = write(kind, &frames, LinkType::Ethernet);
        let (got, err) = read_all(&bytes, &pool);
        assert!(err.is_none(), "{kind}: {err:?}");
        assert_eq!(got.len(), frames.len(), "{kind}");
        for (i, (data, meta)) in got.iter().enumerate() {
            assert_eq!(data, &frames[i], "{kind} #{i}");
            let want = if kind == "micro" {
                Timestamp(ts(i).0 / 1000 * 1000)
            } else {
                ts(i)
            };
            assert_eq!(meta.ts, want, "{kind} #{i}");
            assert_eq!(meta.link, LinkType::Ethernet);
            assert_eq!(meta.wire_len as usize, frames[i].len());
        }
        assert!(pool.is_full(), "{kind}: packets dropped, buffers back");
    }
}

#[test]
fn every_link_type_is_written_in_the_header_and_read_back() {
    let pool = PacketPool::new(4, 2048);
    for link in [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ] {
        for kind in ["micro", "pcapng"] {
            let (got, err) = read_all(&write(kind, &frames(2), link), &pool);
            assert!(err.is_none());
            assert!(got.iter().all(|(_, m)| m.link == link), "{kind} {link}");
        }
    }
}

#[test]
fn pcap_writer_emits_known_bytes() {
    let mut w = PcapWriter::pcap(Vec::new(), LinkType::Ethernet, TsPrecision::Micro).unwrap();
    w.write(Timestamp::new(0x0102_0304, 5_000), &[0xaa, 0xbb, 0xcc])
        .unwrap();
    w.write_snapped(Timestamp::new(1, 999_999_999), &[0xdd], 60)
        .unwrap();
    let bytes = w.finish().unwrap();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..], // magic (µs), version 2.4
        &[0; 8],                                   // thiszone, sigfigs
        &[0x00, 0x00, 0x04, 0x00],                 // snaplen 262144
        &[1, 0, 0, 0],                             // LINKTYPE_ETHERNET
        &[0x04, 0x03, 0x02, 0x01, 5, 0, 0, 0],     // ts 0x01020304 s, 5 µs
        &[3, 0, 0, 0, 3, 0, 0, 0],                 // caplen, wire length
        &[0xaa, 0xbb, 0xcc],
        &[1, 0, 0, 0, 0x3f, 0x42, 0x0f, 0],        // 1 s, 999999 µs
        &[1, 0, 0, 0, 60, 0, 0, 0],
        &[0xdd],
    ]
    .concat();
    assert_eq!(bytes, want);
    let (got, err) = read_all(&bytes, &PacketPool::new(2, 64));
    assert!(err.is_none());
    assert_eq!(got[1].0, [0xdd]);
    assert_eq!(got[1].1.wire_len, 60);
    assert_eq!(got[1].1.ts, Timestamp::new(1, 999_999_000));
}

#[test]
fn big_endian_pcap_fixture() {
    #[rustfmt::skip]
    let bytes: Vec<u8> = [
        &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4][..], // big-endian, nanoseconds
        &[0; 8],
        &[0, 0, 0xff, 0xff],
        &[0, 0, 0, 101],                           // LINKTYPE_RAW
        &[0, 0, 0, 9, 0, 0, 0, 10],                // 9 s, 10 ns
        &[0, 0, 0, 2, 0, 0, 0, 2],
        &[0x45, 0x00],
    ]
    .concat();
    let r = PcapReader::new(Cursor::new(bytes.clone()), PacketPool::new(1, 64)).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcap);
    let (got, err) = read_all(&bytes, &PacketPool::new(1, 64));
    assert!(err.is_none());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, [0x45, 0]);
    assert_eq!(got[0].1.ts, Timestamp::new(9, 10));
    assert_eq!(got[0].1.link, LinkType::RawIp);
}

#[test]
fn modified_pcap_fixture() {
    // Kuznetsov's patched libpcap: 24-byte record headers.
    #[rustfmt::skip]
    let bytes: Vec<u8> = [
        &[0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0][..],
        &[0; 8],
        &[0xff, 0xff, 0, 0],
        &[113, 0, 0, 0],                           // LINUX_SLL
        &[7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0],
        &[2, 0, 0, 0, 0, 8, 0, 0],                 // ifindex, protocol, type, pad
        &[0x42],
    ]
    .concat();
    let (got, err) = read_all(&bytes, &PacketPool::new(1, 64));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got[0].0, [0x42]);
    assert_eq!(got[0].1.link, LinkType::LinuxSll);
    assert_eq!(got[0].1.ts, Timestamp::new(7, 1000));
}

/// pcapng blocks assembled field by field, in either byte order.
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = Vec::new();
        b.extend(self.u32(kind));
        b.extend(self.u32(len as u32));
        b.extend(body);
        b.resize(len - 4, 0);
        b.extend(self.u32(len as u32));
        self.out.extend(b);
    }
    fn shb(&mut self) {
        let mut body = Vec::new();
        body.extend(self.u32(0x1a2b_3c4d));
        body.extend(self.u16(1));
        body.extend(self.u16(0));
        body.extend([0xff; 8]); // section length unknown
        self.block(0x0a0d_0d0a, &body);
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>) {
        let mut body = Vec::new();
        body.extend(self.u16(linktype));
        body.extend(self.u16(0));
        body.extend(self.u32(0)); // no snap length
        if let Some(r) = tsresol {
            body.extend(self.u16(9)); // if_tsresol
            body.extend(self.u16(1));
            body.extend([r, 0, 0, 0]);
            body.extend([0; 4]); // opt_endofopt
        }
        self.block(1, &body);
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.u32(iface));
        body.extend(self.u32((ts >> 32) as u32));
        body.extend(self.u32(ts as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        self.block(6, &body);
    }
}

#[test]
fn pcapng_fixtures_in_both_byte_orders() {
    for big in [false, true] {
        let mut ng = Ng {
            big,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(101, None); // RAW, default resolution: microseconds
        ng.idb(276, Some(9)); // SLL2, nanoseconds
        ng.block(0x0000_0bad, &[1, 2, 3, 4]); // custom block: skipped
        ng.epb(0, 1_500_000, &[0x45, 1, 2]); // 1.5 s
        ng.epb(1, 2_000_000_007, &[0x00, 0x08, 9, 9, 9]); // 2 s 7 ns
                                                          // SPB: interface 0, no timestamp.
        let mut body = ng.u32(3).to_vec();
        body.extend([7, 7, 7, 0]);
        ng.block(3, &body);
        // A second section, other byte order, other link type.
        let mut other = Ng {
            big: !big,
            out: Vec::new(),
        };
        other.shb();
        other.idb(1, Some(3)); // Ethernet, milliseconds
        other.epb(0, 42, &[0xee; 14]);
        ng.out.extend(other.out);

        let pool = PacketPool::new(8, 128);
        let r = PcapReader::new(Cursor::new(ng.out.clone()), pool.clone()).unwrap();
        assert_eq!(r.format(), CaptureFormat::PcapNg);
        let mut r = r;
        let mut burst = Burst::with_capacity(8);
        assert_eq!(r.recv_burst(&mut burst).unwrap(), 4, "big-endian: {big}");
        let got: Vec<_> = burst
            .iter()
            .map(|rx| (rx.packet.data().to_vec(), rx.meta))
            .collect();
        assert_eq!(got[0].0, [0x45, 1, 2]);
        assert_eq!(
            (got[0].1.link, got[0].1.ts, got[0].1.iface),
            (LinkType::RawIp, Timestamp::new(1, 500_000_000), 0)
        );
        assert_eq!(got[1].0, [0, 8, 9, 9, 9]);
        assert_eq!(
            (got[1].1.link, got[1].1.ts, got[1].1.iface),
            (LinkType::LinuxSll2, Timestamp::new(2, 7), 1)
        );
        assert_eq!(got[2].0, [7, 7, 7]);
        assert_eq!(got[2].1.wire_len, 3);
        assert_eq!(got[3].0, [0xee; 14]);
        assert_eq!(
            (got[3].1.link, got[3].1.ts),
            (LinkType::Ethernet, Timestamp::new(0, 42_000_000))
        );
        assert_eq!(r.stats().other_blocks, 1);
        assert_eq!(r.stats().packets, 4);
        drop(burst);
        assert!(pool.is_full());
    }
}

#[test]
fn truncated_files_yield_every_complete_packet_then_say_where() {
    let pool = PacketPool::new(8, 2048);
    let frames = frames(5);
    for kind in ["micro", "pcapng"] {
        let bytes = write(kind, &frames, LinkType::Ethernet);
        // Record boundaries: where each record starts, and the end.
        // File header: pcap's 24 bytes, or pcapng's section and interface blocks.
        let header = write(kind, &[], LinkType::Ethernet).len();
        let mut starts = vec![header];
        for f in &frames {
            let rec = if kind == "pcapng" {
                32 + f.len().div_ceil(4) * 4
            } else {
                16 + f.len()
            };
            starts.push(starts.last().unwrap() + rec);
        }
        assert_eq!(*starts.last().unwrap(), bytes.len(), "{kind} layout");
        for cut in header..bytes.len() {
            let (got, err) = read_all(&bytes[..cut], &pool);
            let complete = starts.iter().skip(1).filter(|&&end| end <= cut).count();
            assert_eq!(got.len(), complete, "{kind} cut at {cut}");
            for (i, (data, _)) in got.iter().enumerate() {
                assert_eq!(data, &frames[i]);
            }
            if starts.contains(&cut) {
                assert!(err.is_none(), "{kind} cut at a boundary {cut}: {err:?}");
            } else {
                let offset = starts[complete] as u64;
                match err {
                    Some(IoError::Truncated { offset: o, have }) => {
                        assert_eq!(
                            (o, have),
                            (offset, cut as u64 - offset),
                            "{kind} cut at {cut}"
                        );
                    }
                    other => panic!("{kind} cut at {cut}: {other:?}"),
                }
            }
        }
        // The flag and the message.
        let cut = starts[3] + 5;
        let mut r = PcapReader::new(Cursor::new(bytes[..cut].to_vec()), pool.clone()).unwrap();
        let mut burst = Burst::with_capacity(64);
        assert_eq!(r.recv_burst(&mut burst).unwrap(), 3, "packets first");
        let err = r.recv_burst(&mut burst).unwrap_err();
        assert_eq!(r.truncation(), Some((starts[3] as u64, 5)));
        assert_eq!(
            err.to_string(),
            format!(
                "capture truncated: the record at byte offset {} is incomplete (5 bytes before end of file)",
                starts[3]
            )
        );
    }
    // Inside the file header.
    let bytes = write("micro", &frames, LinkType::Ethernet);
    for cut in 4..24 {
        match PcapReader::new(Cursor::new(bytes[..cut].to_vec()), pool.clone()) {
            Err(IoError::Truncated { offset: 0, have }) => assert_eq!(have, cut as u64),
            other => panic!("cut at {cut}: {:?}", other.err()),
        }
    }
}

#[test]
fn unsupported_link_types_are_named() {
    let mut bytes = write("micro", &frames(1), LinkType::Ethernet);
    bytes[20] = 9; // LINKTYPE_PPP
    let err = PcapReader::new(Cursor::new(bytes), PacketPool::new(1, 64)).unwrap_err();
    assert!(matches!(err, IoError::UnsupportedLinkType { linktype: 9 }));
    assert_eq!(
        err.to_string(),
        "unsupported link type 9 (PPP); supported: ETHERNET (1), RAW (101, 12, 14), \
         IPV4 (228), IPV6 (229), LINUX_SLL (113), LINUX_SLL2 (276)"
    );

    // pcapng: the packets of a supported interface come first.
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None);
    ng.idb(127, None); // IEEE802_11_RADIOTAP
    ng.epb(0, 1, &[1; 14]);
    ng.epb(1, 2, &[2; 14]);
    ng.epb(0, 3, &[3; 14]);
    let (got, err) = read_all(&ng.out, &PacketPool::new(4, 64));
    assert_eq!(got.len(), 1);
    let err = err.unwrap();
    assert!(
        err.to_string()
            .starts_with("unsupported link type 127 (IEEE802_11_RADIOTAP)"),
        "{err}"
    );
}

#[test]
fn not_a_capture() {
    for bytes in [&b""[..], b"ab", b"hello, this is no capture file at all"] {
        let err = PcapReader::new(Cursor::new(bytes.to_vec()), PacketPool::new(1, 64)).unwrap_err();
        assert!(matches!(err, IoError::NotACapture { .. }), "{err:?}");
    }
    let err = PcapReader::new(
        Cursor::new(b"GIF89a and more bytes here..".to_vec()),
        PacketPool::new(1, 64),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a pcap or pcapng file (starts with [47, 49, 46, 38])"
    );
}

#[test]
fn corrupt_lengths_are_errors_not_allocations() {
    let mut bytes = write("micro", &frames(2), LinkType::Ethernet);
    // Second record's caplen: 4 GiB.
    let second = 24 + 16 + frames(1)[0].len();
    bytes[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (got, err) = read_all(&bytes, &PacketPool::new(4, 2048));
    assert_eq!(got.len(), 1);
    assert!(
        matches!(err, Some(IoError::Corrupt { offset, .. }) if offset == second as u64),
        "{err:?}"
    );

    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None);
    ng.out.extend([6, 0, 0, 0, 13, 0, 0, 0]); // block length 13
    ng.out.extend([0; 8]);
    let (_, err) = read_all(&ng.out, &PacketPool::new(4, 64));
    assert!(err.unwrap().to_string().contains("not a multiple of 4"));
    // A packet before any interface.
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.epb(0, 0, &[1]);
    let (_, err) = read_all(&ng.out, &PacketPool::new(4, 64));
    assert!(err.unwrap().to_string().contains("interface not described"));
}

#[test]
fn pool_backed_reader_leaves_the_pool_full() {
    let pool = PacketPool::new(3, 2048);
    let bytes = write("pcapng", &frames(10), LinkType::Ethernet);
    let mut r = PcapReader::new(Cursor::new(bytes), pool.clone()).unwrap();
    let mut burst = Burst::with_capacity(8);
    // Three buffers: the burst stops there, nothing is lost.
    assert_eq!(r.recv_burst(&mut burst).unwrap(), 3);
    assert_eq!(pool.available(), 0);
    let mut more = Burst::with_capacity(8);
    assert!(matches!(r.recv_burst(&mut more), Err(IoError::Pool(_))));
    assert!(!r.at_end());
    let mut seqs = Vec::new();
    let mut dec = Decoder::new(ChecksumMode::On);
    loop {
        for rx in burst.drain(..) {
            seqs.push(dec.decode(rx.packet.data(), rx.meta.link).unwrap().seq.0);
        }
        if r.recv_burst(&mut burst).unwrap() == 0 {
            break;
        }
    }
    assert_eq!(seqs, (0..10).map(|i| 1000 + 7 * i).collect::<Vec<_>>());
    assert!(r.at_end());
    assert!(pool.is_full());
    // Packets kept past the reader's life still return their buffers.
    let mut r = PcapReader::new(
        Cursor::new(write("micro", &frames(2), LinkType::Ethernet)),
        pool.clone(),
    )
    .unwrap();
    r.recv_burst(&mut burst).unwrap();
    drop(r);
    assert_eq!(pool.available(), 1);
    burst.clear();
    assert!(pool.is_full());
}

#[test]
fn oversize_and_snapped_frames() {
    let frames = frames(3);
    let mut w = PcapWriter::pcap(Vec::new(), LinkType::Ethernet, TsPrecision::Nano).unwrap();
    w.write(ts(0), &frames[0]).unwrap();
    w.write(ts(1), &[0u8; 300]).unwrap(); // longer than a pool buffer
    w.write_snapped(ts(2), &frames[2][..40], 1514).unwrap();
    let bytes = w.finish().unwrap();
    let pool = PacketPool::new(4, 256);
    let mut r = PcapReader::new(Cursor::new(bytes), pool.clone()).unwrap();
    let mut burst = Burst::with_capacity(4);
    assert_eq!(r.recv_burst(&mut burst).unwrap(), 2);
    let s = r.stats();
    assert_eq!((s.packets, s.too_long, s.snapped), (2, 1, 1));
    let snapped = &burst.as_slice()[1];
    assert_eq!(snapped.meta.wire_len, 1514);
    // The wire layer calls a snapped TCP segment what it is.
    assert!(matches!(
        aa_stack::wire::parse(snapped.packet.data(), LinkType::Ethernet, true),
        Err(WireError::Truncated {
            layer: Layer::Ip,
            ..
        })
    ));
}

#[test]
fn capture_files_on_disk() {
    let dir = std::env::temp_dir().join(format!("aa-stack-pcap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two.pcapng");
    let frames = frames(300);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::pcapng(std::io::BufWriter::new(file), LinkType::Ethernet).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(ts(i), f).unwrap();
    }
    w.finish().unwrap();
    let pool = PacketPool::new(64, 2048);
    let mut r = PcapReader::open(&path, pool.clone()).unwrap();
    let mut burst = Burst::with_capacity(32);
    let mut n = 0;
    while r.recv_burst(&mut burst).unwrap() > 0 {
        for rx in burst.drain(..) {
            assert_eq!(rx.packet.data(), &frames[n][..]);
            n += 1;
        }
    }
    assert_eq!(n, 300);
    assert!(matches!(
        r.send_burst(&mut Burst::with_capacity(1)),
        Err(IoError::Unsupported(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        PcapReader::open(dir.join("missing.pcap"), pool),
        Err(IoError::Os(_))
    ));
}
