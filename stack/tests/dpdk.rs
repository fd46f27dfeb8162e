//! The DPDK backend against a `net_ring` virtual port, which loops what is
//! sent back to its own receive queue: frames built with `TcpFrame` go out in
//! mbufs, come back as the same mbufs, are reassembled and parsed as CSV by an
//! `AaStream` straight from the mbufs, and every mbuf is back in its pool at
//! the end. Runs without a NIC or hugepages (`--no-huge --no-pci`).
//!
//! EAL starts once per process, so everything is one test.
#![cfg(feature = "dpdk")]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use aa_runtime::csv::CsvParser;
use aa_runtime::{AaConfig, AaStream, Insert, Packet};
use aa_stack::dpdk::{DpdkError, Eal, MbufPacket, Mempool, Port, PortConfig};
use aa_stack::frame::TcpFrame;
use aa_stack::io::{Burst, PacketIo};
use aa_stack::wire::{parse, LinkType};

#[path = "common/dpdk.rs"]
mod dpdk_common;
use dpdk_common::{eal_args, recv_n, send_all, start_eal};

/// The test's virtual devices (EAL's other arguments: [`eal_args`]).
const VDEVS: &[&str] = &["--vdev=net_ring0", "--vdev=net_ring1"];

const POOL: u32 = 2047;
const MSS: usize = 100;

fn csv_document(rows: usize) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let mut doc = Vec::new();
    let mut want = Vec::new();
    for i in 0..rows {
        let row: Vec<Vec<u8>> = vec![
            format!("{i}").into_bytes(),
            format!("sym{}", i % 7).into_bytes(),
            format!("{}.{:02}", 100 + i, i % 100).into_bytes(),
            b"x".repeat(i % 13),
        ];
        doc.extend_from_slice(&row.join(&b","[..]));
        doc.push(b'\n');
        want.push(row);
    }
    (doc, want)
}

/// `doc` cut into TCP frames of `payload` bytes each (the last shorter),
/// numbered from `isn`.
fn segments(
    doc: &[u8],
    payload: usize,
    isn: u32,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
) -> Vec<Vec<u8>> {
    doc.chunks(payload)
        .enumerate()
        .map(|(i, chunk)| {
            TcpFrame::new(client, server)
                .seq(isn.wrapping_add((i * payload) as u32))
                .build(chunk)
                .unwrap()
        })
        .collect()
}

/// Reads every ready record's fields into `rows` and frees the records.
fn drain_rows(aa: &mut AaStream<MbufPacket, CsvParser>, rows: &mut Vec<Vec<Vec<u8>>>) {
    let ready = aa.ready();
    for r in aa.read_aa_records(ready) {
        rows.push(r.fields().map(|f| f.to_vec()).collect());
    }
    assert_eq!(aa.free_aa_records(ready), ready);
}

#[test]
fn net_ring_loopback_into_aa_stream() {
    // Arguments EAL cannot start with are refused before it starts, and do
    // not use up the process's one start.
    let bad = ["aa-dpdk-test", "--no-huge", "--in-memory", "-m", "256"];
    match Eal::init(&bad) {
        Err(e @ DpdkError::Conflict(_)) => {
            assert!(e.to_string().contains("--no-shconf"), "{e}")
        }
        other => panic!("--no-huge with --in-memory: {other:?}"),
    }
    let eal = start_eal(&eal_args("aa-dpdk-test", VDEVS));
    assert!(eal.port_count() >= 1, "net_ring0 is a port");
    let pool = Mempool::new(eal, "aa_test_pool", POOL, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
    assert_eq!(pool.capacity(), POOL);
    assert!(pool.is_full(), "{pool:?}");

    // Handles: clone = refcnt + 1, drop = free at zero.
    {
        let p = pool.packet_from(b"hello").unwrap();
        assert_eq!(p.data(), b"hello");
        assert_eq!(p.refcnt(), 1);
        assert_eq!(pool.available(), POOL - 1);
        let q = p.clone();
        assert_eq!((p.refcnt(), q.as_ptr()), (2, p.as_ptr()));
        drop(p);
        assert_eq!(q.refcnt(), 1);
        assert_eq!(pool.available(), POOL - 1, "a clone keeps the mbuf");
        drop(q);
        assert!(pool.is_full());
        let too_long = vec![0u8; 4096];
        assert!(pool.packet_from(&too_long).is_err());
        assert!(pool.is_full(), "a frame too long gives its mbuf back");
    }

    let id = eal.port_by_name("net_ring0").unwrap();
    let mut port = Port::open(eal, id, &pool, PortConfig::default()).unwrap();
    assert_eq!(port.id(), id);

    // A CSV stream cut into segments, sent with pairs swapped (reordering).
    let (doc, want) = csv_document(200);
    let client = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 40000);
    let server = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 9000);
    let isn = 4_294_960_000u32; // crosses the sequence-number wrap
    let mut frames = segments(&doc, MSS, isn, client, server);
    for pair in frames.chunks_mut(2) {
        pair.reverse();
    }
    let n = frames.len();
    let pkts: Vec<MbufPacket> = frames
        .iter()
        .map(|f| pool.packet_from(f).unwrap())
        .collect();
    let sent_mbufs: HashSet<usize> = pkts.iter().map(|p| p.as_ptr() as usize).collect();
    assert_eq!(pool.available(), POOL - n as u32);
    send_all(&mut port, pkts, 8);
    assert_eq!(pool.available(), POOL - n as u32, "in the ring, not freed");

    let got = recv_n(&mut port, n);
    let mut aa = AaStream::new(AaConfig::default(), isn, CsvParser::default());
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut in_order = 0;
    for (rx, frame) in got.into_iter().zip(&frames) {
        assert_eq!(
            rx.packet.data(),
            &frame[..],
            "frames come back in order, intact"
        );
        assert!(
            sent_mbufs.contains(&(rx.packet.as_ptr() as usize)),
            "the same mbuf, not a copy"
        );
        assert_eq!(
            (rx.meta.link, rx.meta.iface),
            (LinkType::Ethernet, u32::from(id))
        );
        assert_eq!(rx.meta.wire_len as usize, frame.len());
        let seg = parse(rx.packet.data(), LinkType::Ethernet, true).unwrap();
        match aa.insert(seg.seq.0, rx.packet, seg.payload_range()) {
            Insert::InOrder { .. } => in_order += 1,
            Insert::OutOfOrder => {}
            other => panic!("unexpected {other:?}"),
        }
        // Records read but not freed yet pin their packets.
        let ready = aa.ready();
        if ready > 0 {
            assert!(pool.available() < POOL);
            for r in aa.read_aa_records(ready) {
                rows.push(r.fields().map(|f| f.to_vec()).collect());
            }
            assert_eq!(aa.free_aa_records(ready), ready);
        }
    }
    assert!(
        in_order > 0 && in_order < n,
        "some segments waited for a hole"
    );
    aa.finish();
    drain_rows(&mut aa, &mut rows);
    assert_eq!(rows, want);
    assert!(aa.error().is_none());
    drop(aa);
    assert!(
        pool.is_full(),
        "every mbuf back once the records are freed: {pool:?}"
    );

    // Fill the ring: what the port cannot take stays in the burst, in order.
    let mut burst = Burst::with_capacity(64);
    let mut queued = 0usize;
    let kept = loop {
        while burst.room() > 0 {
            burst.push(pool.packet_from(&frames[0]).unwrap()).unwrap();
        }
        let before = burst.len();
        let first_unsent = burst.as_slice().first().map(|p| p.as_ptr());
        let sent = port.send_burst(&mut burst).unwrap();
        queued += sent;
        if sent < before {
            assert_eq!(burst.len(), before - sent);
            if sent == 0 {
                assert_eq!(burst.as_slice()[0].as_ptr(), first_unsent.unwrap());
            }
            break burst.len();
        }
        assert!(queued < POOL as usize, "the ring never fills");
    };
    assert!(queued > 0 && kept > 0);
    assert_eq!(pool.available(), POOL - (queued + kept) as u32);
    burst.clear();
    assert_eq!(pool.available(), POOL - queued as u32);
    drop(recv_n(&mut port, queued));
    assert_eq!(port.dropped_multi_segment(), 0);
    assert!(pool.is_full(), "no mbuf leaked, none freed twice: {pool:?}");
    assert_eq!(pool.available(), POOL);
    drop(port);

    jumbo_frames(eal, &pool);
}

/// A port at MTU 9000 on mbufs that hold a whole jumbo frame: frames of
/// 9014 bytes go out and come back whole, one mbuf each, and a stream
/// reassembles them; a pool of 2 KiB mbufs is refused for that MTU.
fn jumbo_frames(eal: &Eal, small: &Mempool) {
    const MTU: u16 = 9000;
    const PAYLOAD: usize = MTU as usize - 40;
    let id = eal.port_by_name("net_ring1").unwrap();
    let jumbo = PortConfig {
        mtu: Some(MTU),
        ..PortConfig::default()
    };
    match Port::open(eal, id, small, jumbo) {
        Err(DpdkError::TooLong { len: 9014, room }) => assert_eq!(room, 2048),
        other => panic!("MTU 9000 on 2 KiB mbufs: {other:?}"),
    }
    let pool = Mempool::new(eal, "aa_jumbo_pool", 255, 0, 9216 + 128).unwrap();
    let mut port = Port::open(eal, id, &pool, jumbo).unwrap();
    assert_eq!(port.mtu().unwrap(), MTU);

    let (doc, want) = csv_document(3000);
    let client = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 40001);
    let server = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 9000);
    let isn = 7u32;
    let frames = segments(&doc, PAYLOAD, isn, client, server);
    let n = frames.len();
    assert!(n >= 3 && frames[0].len() == 14 + MTU as usize, "{n} frames");
    let pkts: Vec<MbufPacket> = frames
        .iter()
        .map(|f| pool.packet_from(f).unwrap())
        .collect();
    send_all(&mut port, pkts, 8);
    let mut aa = AaStream::new(AaConfig::default(), isn, CsvParser::default());
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::new();
    for (rx, frame) in recv_n(&mut port, n).into_iter().zip(&frames) {
        assert_eq!(rx.packet.data(), &frame[..], "whole and intact");
        assert_eq!(rx.packet.segments(), 1, "in one mbuf");
        let seg = parse(rx.packet.data(), LinkType::Ethernet, true).unwrap();
        assert!(matches!(
            aa.insert(seg.seq.0, rx.packet, seg.payload_range()),
            Insert::InOrder { .. }
        ));
        drain_rows(&mut aa, &mut rows);
    }
    aa.finish();
    drain_rows(&mut aa, &mut rows);
    assert_eq!(rows, want);
    assert!(aa.error().is_none());
    drop(aa);
    assert_eq!(port.dropped_multi_segment(), 0);
    assert!(pool.is_full(), "every jumbo mbuf back: {pool:?}");
    assert!(small.is_full());
    drop(port);
}
