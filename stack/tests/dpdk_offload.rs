//! Checksum offload on a DPDK port, against `net_ring` (which has none, and
//! hands back the very mbufs sent, flags included): the receive flags a NIC
//! sets (`RTE_MBUF_F_RX_*_CKSUM_*`) become each frame's `RxMeta::checksum`
//! and the decoder takes them at their word; frames are marked for transmit
//! offload only when they are IPv4/TCP; a port asked for transmit offload on
//! a device without it does not claim it. Every mbuf is back in its pool at
//! the end.
//!
//! EAL starts once per process, so everything is one test.
#![cfg(feature = "dpdk")]

use std::net::{IpAddr, Ipv4Addr};

use aa_runtime::Packet;
use aa_stack::dpdk::{mark_tx_checksum, rx_checksum, Mempool, Port, PortConfig};
use aa_stack::frame::TcpFrame;
use aa_stack::io::{PacketIo, RxChecksum};
use aa_stack::wire::{ChecksumMode, ChecksumStatus, Decoder, WireError};

#[path = "common/dpdk.rs"]
mod dpdk_common;
use dpdk_common::{eal_args, recv_n, send_all, start_eal};

/// The test's virtual devices (EAL's other arguments: [`eal_args`]).
const VDEVS: &[&str] = &["--vdev=net_ring0"];

/// `RTE_MBUF_F_RX_L4_CKSUM_*` and `RTE_MBUF_F_RX_IP_CKSUM_*`.
const L4_BAD: u64 = 1 << 3;
const L4_GOOD: u64 = 1 << 8;
const IP_BAD: u64 = 1 << 4;
const IP_GOOD: u64 = 1 << 7;

#[test]
fn checksum_offload_flags() {
    // What the flags say, as DPDK defines them.
    assert_eq!(rx_checksum(0), RxChecksum::Unknown);
    assert_eq!(rx_checksum(IP_GOOD), RxChecksum::Unknown, "no word on TCP");
    assert_eq!(rx_checksum(L4_GOOD | IP_GOOD), RxChecksum::Good);
    assert_eq!(rx_checksum(L4_GOOD | L4_BAD), RxChecksum::Good, "L4 NONE");
    assert_eq!(rx_checksum(L4_BAD | IP_GOOD), RxChecksum::Bad);
    assert_eq!(rx_checksum(L4_GOOD | IP_BAD), RxChecksum::Bad);

    let eal = start_eal(&eal_args("aa-dpdk-offload-test", VDEVS));
    let pool = Mempool::new(eal, "aa_offload_pool", 255, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
    let id = eal.port_by_name("net_ring0").unwrap();
    let cfg = PortConfig {
        tx_checksum_offload: true,
        ..PortConfig::default()
    };
    let mut port = Port::open(eal, id, &pool, cfg).unwrap();
    // net_ring cannot complete checksums: asking is not enough.
    assert!(!port.tx_checksum_offload() && !PacketIo::tx_checksum_offload(&port));
    assert!(!port.rx_checksum_offload());

    let ip = |d| IpAddr::V4(Ipv4Addr::new(198, 51, 100, d));
    let good = TcpFrame::new((ip(1), 40000), (ip(2), 80))
        .build(b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut corrupt = good.clone();
    *corrupt.last_mut().unwrap() ^= 0x20;
    // (frame, receive flags a NIC set, what the frame's meta says, whether a
    // decoder checking checksums keeps it)
    let cases: [(&[u8], u64, RxChecksum, bool); 5] = [
        (&good, 0, RxChecksum::Unknown, true),
        (&corrupt, 0, RxChecksum::Unknown, false),
        (&corrupt, L4_GOOD | IP_GOOD, RxChecksum::Good, true),
        (&good, L4_BAD | IP_GOOD, RxChecksum::Bad, false),
        (&good, L4_GOOD | IP_BAD, RxChecksum::Bad, false),
    ];
    let pkts = cases
        .iter()
        .map(|&(f, flags, ..)| {
            let p = pool.packet_from(f).unwrap();
            // SAFETY: a fresh mbuf only this handle refers to.
            unsafe { (*p.as_ptr()).ol_flags = flags };
            p
        })
        .collect();
    send_all(&mut port, pkts, 8);
    let got = recv_n(&mut port, cases.len());
    let mut decoder = Decoder::new(ChecksumMode::On);
    for (rx, &(frame, _, want, kept)) in got.iter().zip(&cases) {
        assert_eq!(rx.packet.data(), frame);
        assert_eq!(rx.meta.checksum, want);
        let seg = decoder.decode_rx(rx.packet.data(), &rx.meta);
        assert_eq!(seg.is_ok(), kept, "{want:?}");
        match seg {
            Ok(s) => assert_eq!(s.checksum, ChecksumStatus::Valid),
            Err(e) => assert_eq!(e, WireError::BadChecksum),
        }
    }
    drop(got);

    // Transmit marking: IPv4/TCP frames only, with their header lengths.
    let tcp = pool.packet_from(&good).unwrap();
    let arp = pool.packet_from(&[0xffu8; 42]).unwrap();
    // SAFETY: fresh single-segment mbufs only these handles refer to.
    unsafe {
        assert!(mark_tx_checksum(tcp.as_ptr()));
        let m = tcp.as_ptr();
        assert_eq!((*m).ol_flags, (1 << 52) | (1 << 55));
        assert_eq!((*m).__bindgen_anon_3.tx_offload, 14 | (20 << 7));
        assert!(!mark_tx_checksum(arp.as_ptr()));
        assert_eq!((*arp.as_ptr()).ol_flags, 0);
    }
    drop((tcp, arp));
    drop(port);
    assert!(pool.is_full(), "{pool:?}");
}
