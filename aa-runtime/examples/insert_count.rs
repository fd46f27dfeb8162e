//! A driver for instruction counts of the in-order receive path, which unlike
//! times do not move with the load of a shared machine:
//!
//! ```text
//! cargo build --release -p aa-runtime --example insert_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/insert_count aa 1000000
//! ```
//!
//! Runs `N` 1448-byte segments through either the zero-copy stream (`aa`: clone
//! the handle, insert, then read and free in batches of 32) or a copying ring
//! buffer (`ringbuffer`: copy in, read in place, discard) — the same work as the
//! `zc_insert` criterion group. Compare the totals of two runs with different `N`
//! to get instructions per segment without the set-up.

use aa_runtime::{Packet, PacketPool, PoolPacket, StreamConfig, ZcStream};
use smoltcp::storage::RingBuffer;
use std::hint::black_box;

const MSS: usize = 1448;
const HDR: usize = 66;
const BATCH: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "aa".into());
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let pool = PacketPool::new(BATCH as u32, 2048);
    let pkts: Vec<PoolPacket> = (0..BATCH)
        .map(|i| pool.packet_from(&vec![i as u8; HDR + MSS]).expect("pool"))
        .collect();
    match mode.as_str() {
        "aa" => {
            let mut s: ZcStream<PoolPacket> = ZcStream::new(StreamConfig::default(), 1);
            let mut seq = 1u32;
            for _ in 0..n / BATCH {
                for p in &pkts {
                    black_box(s.insert(seq, p.clone(), HDR..HDR + MSS));
                    seq = seq.wrapping_add(MSS as u32);
                }
                let bytes: usize = s.read_fragments(BATCH).map(|f| f.data.len()).sum();
                black_box(bytes);
                s.free_fragments(BATCH);
            }
            assert_eq!(s.held_bytes(), 0);
        }
        "ringbuffer" => {
            let mut rb = RingBuffer::new(vec![0u8; 64 * 1024]);
            for _ in 0..n / BATCH {
                for p in &pkts {
                    black_box(rb.enqueue_slice(&p.data()[HDR..HDR + MSS]));
                }
                let mut bytes = 0;
                while !rb.is_empty() {
                    let m = rb.get_allocated(0, usize::MAX).len();
                    bytes += m;
                    rb.dequeue_allocated(m);
                }
                black_box(bytes);
            }
        }
        other => {
            eprintln!("unknown mode {other}: use aa or ringbuffer");
            std::process::exit(2);
        }
    }
    drop(pkts);
    assert!(pool.is_full());
}
