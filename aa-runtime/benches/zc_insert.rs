//! Steady-state in-order receive of full-sized segments: the zero-copy stream
//! against a copying stack's receive buffer (smoltcp's `RingBuffer<u8>`).
//!
//! Unit: one criterion iteration is ONE 1448-byte segment (`Throughput::Bytes(1448)`),
//! so the reported time is the cost per segment. Inside the timed loop segments
//! go in batches of [`BATCH`]: insert 32, then read and free those 32, so the
//! freeing cost is measured too and the stream stays in steady state (the last
//! batch of a sample may be shorter so that exactly `iters` segments are timed).
//!
//! - `zc_insert/aa`: the frames already sit in a `PacketPool` (built once, outside
//!   the timed loop). Per segment: clone the handle (a reference-count increment;
//!   this is what the stream takes ownership of) and `ZcStream::insert` it; per
//!   batch: `read_fragments` (touching each fragment's length) and
//!   `free_fragments` (dropping the clones).
//! - `zc_insert/smoltcp_ringbuffer`: the same payloads, copied into a 64 KiB
//!   `RingBuffer<u8>` with `enqueue_slice` (the copy a copying stack makes on
//!   receive; smoltcp's TCP socket does the same copy with `write_unallocated` +
//!   `enqueue_unallocated`). The application then reads the bytes *in place*
//!   (`get_allocated`, one contiguous slice at a time) and discards them with
//!   `dequeue_allocated` — no copy out. This is the cheapest receive path a
//!   copying stack can offer (a `recv_slice` into a user buffer would add a
//!   second copy), so the comparison is conservative for aa.

use aa_runtime::{Packet, PacketPool, PoolPacket, StreamConfig, ZcStream};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smoltcp::storage::RingBuffer;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// TCP payload per segment (Ethernet MTU 1500 - IPv4 20 - TCP 20 - timestamps 12).
const MSS: usize = 1448;
/// Bytes before the payload in each frame: Ethernet 14 + IPv4 20 + TCP 32.
const HDR: usize = 66;
/// Segments inserted before the application reads and frees them.
const BATCH: usize = 32;
/// First sequence number; close to the wrap so that the wrap is exercised.
const ISN: u32 = u32::MAX - 10 * MSS as u32;

/// `BATCH` frames of `HDR + MSS` bytes with distinct payloads, in their own pool.
fn frames(pool: &PacketPool) -> Vec<PoolPacket> {
    (0..BATCH)
        .map(|i| {
            let frame: Vec<u8> = (0..HDR + MSS).map(|j| (i * 31 + j * 7) as u8).collect();
            pool.packet_from(&frame).expect("pool sized for the batch")
        })
        .collect()
}

/// Runs `iters` segments through `step_batch(n)` in batches of at most `BATCH`.
fn batched(iters: u64, mut step_batch: impl FnMut(usize)) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        step_batch(n);
        left -= n as u64;
    }
    start.elapsed()
}

fn zc_insert(c: &mut Criterion) {
    let pool = PacketPool::new(BATCH as u32, 2048);
    let pkts = frames(&pool);

    let mut g = c.benchmark_group("zc_insert");
    g.throughput(Throughput::Bytes(MSS as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));

    g.bench_function("aa", |b| {
        let mut s: ZcStream<PoolPacket> = ZcStream::new(StreamConfig::default(), ISN);
        let mut seq = ISN;
        b.iter_custom(|iters| {
            batched(iters, |n| {
                for p in &pkts[..n] {
                    let r = s.insert(seq, p.clone(), HDR..HDR + MSS);
                    black_box(r);
                    seq = seq.wrapping_add(MSS as u32);
                }
                let mut bytes = 0usize;
                for f in s.read_fragments(n) {
                    bytes += f.data.len();
                }
                black_box(bytes);
                s.free_fragments(n);
            })
        });
        // Every segment went the fast path and nothing is left held.
        let st = *s.stats();
        assert_eq!(st.in_order, st.segments, "{st:?}");
        assert_eq!(s.held_bytes(), 0);
        assert_eq!(s.fragments_held(), 0);
    });

    g.bench_function("smoltcp_ringbuffer", |b| {
        let payloads: Vec<&[u8]> = pkts.iter().map(|p| &p.data()[HDR..HDR + MSS]).collect();
        let mut rb = RingBuffer::new(vec![0u8; 64 * 1024]);
        b.iter_custom(|iters| {
            batched(iters, |n| {
                for p in &payloads[..n] {
                    // Copy in on receive.
                    let k = rb.enqueue_slice(p);
                    black_box(k);
                }
                // The application reads in place and discards.
                let mut bytes = 0usize;
                while !rb.is_empty() {
                    let m = rb.get_allocated(0, usize::MAX).len();
                    bytes += m;
                    rb.dequeue_allocated(m);
                }
                black_box(bytes);
            })
        });
        assert!(rb.is_empty());
    });
    g.finish();

    drop(pkts);
    assert!(pool.is_full(), "every frame is back in the pool");
}

criterion_group!(benches, zc_insert);
criterion_main!(benches);
