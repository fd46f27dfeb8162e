//! Memory per tracked connection: many HTTP connections, each after its
//! handshake and one request and response, left open. Heap bytes per
//! connection (both directions, parser state included, packets excluded —
//! the pool is made before the first count) must stay within 512.
//!
//! A counting global allocator keeps the live heap bytes of this test
//! binary; the binary holds this one test, so nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering};

use aa::inspect::{AnyParser, PortMap};
use aa::runtime::{AaStream, PacketPool, PoolPacket};
use aa::stack::frame::TcpFrame;
use aa::stack::io::Timestamp;
use aa::stack::passive::{DirInfo, Passive, PassiveConfig, Sink};
use aa::stack::wire::{parse, LinkType, TcpFlags};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Reads and frees every record; counts them.
struct Count(u64);

impl Sink<PoolPacket, AnyParser> for Count {
    fn records(&mut self, _: &DirInfo, s: &mut AaStream<PoolPacket, AnyParser>) {
        let n = s.read_aa_records(usize::MAX).count();
        self.0 += n as u64;
        s.free_aa_records(n);
    }
}

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

/// The frames of connection `n`: handshake, request, response, ACK.
fn frames(n: u32) -> Vec<Vec<u8>> {
    let client = (
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + (n >> 16) as u8)),
        (1024 + (n & 0xffff) % 60000) as u16,
    );
    let server = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 200)), 80);
    let (c, s) = (n.wrapping_mul(2_654_435_761), n.wrapping_mul(40_503));
    let seg = |from_client: bool, flags, seq: u32, ack: u32, data: &[u8]| {
        let (a, b) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        TcpFrame::new(a, b)
            .flags(flags)
            .seq(seq)
            .ack(ack)
            .build(data)
            .unwrap()
    };
    let (rq, rs) = (REQUEST.len() as u32, RESPONSE.len() as u32);
    let ack = TcpFlags::ACK;
    vec![
        seg(true, TcpFlags::SYN, c, 0, b""),
        seg(false, TcpFlags::SYN | ack, s, c + 1, b""),
        seg(true, ack, c + 1, s + 1, b""),
        seg(true, ack | TcpFlags::PSH, c + 1, s + 1, REQUEST),
        seg(false, ack | TcpFlags::PSH, s + 1, c + 1 + rq, RESPONSE),
        seg(true, ack, c + 1 + rq, s + 1 + rs, b""),
    ]
}

#[test]
fn a_quiet_connection_costs_at_most_512_bytes() {
    const N: u32 = 50_000;
    let pool = PacketPool::new(64, 2048);
    let mut passive = Passive::new(PassiveConfig::default(), PortMap::well_known());
    let mut sink = Count(0);
    let feed = |passive: &mut Passive<PoolPacket, PortMap>, n: u32, sink: &mut Count| {
        for f in frames(n) {
            let seg = parse(&f, LinkType::Ethernet, true).unwrap();
            let pkt = pool.packet_from(&f).unwrap();
            passive.segment(Timestamp::new(1, 0), &seg, &pkt, sink);
        }
    };
    // Warm up what is made once (spare queues), then count.
    feed(&mut passive, N, &mut sink);
    let before = LIVE.load(Ordering::Relaxed);
    for n in 0..N {
        feed(&mut passive, n, &mut sink);
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(passive.flows(), N as usize + 1);
    assert_eq!(sink.0, 3 * (N as u64 + 1), "request, response, body");
    assert!(pool.is_full(), "quiet connections hold no packet");
    let per_conn = (after - before) as f64 / f64::from(N);
    eprintln!("{per_conn:.0} heap bytes per tracked connection ({N} connections)");
    assert!(per_conn <= 512.0, "{per_conn:.0} bytes per connection");
    passive.finish(&mut sink);
    drop(passive);
    assert!(pool.is_full());
}
