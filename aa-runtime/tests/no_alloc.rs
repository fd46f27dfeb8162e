//! No heap allocation per packet in steady state.
//!
//! A counting global allocator counts allocations (and reallocations) made by the
//! current thread while counting is switched on for it. Everything that may
//! allocate — pool, streams, parser, test data — is made first and warmed up;
//! then the counter is reset and thousands of packets go through
//! (a) `ZcStream` insert + `read_fragments` + `free_fragments`, in order and
//! reordered, and (b) `AaStream<_, CsvParser>` insert + `read_aa_records` (every
//! field read with `len`, `byte_at`, `eq_bytes`, `chunks`) + `free_aa_records`.
//! Each packet is taken from the pool and filled, as a NIC would. The count must
//! stay 0, and every packet must be back in the pool at the end.
//!
//! The flag is per thread, so other tests of this binary running in parallel
//! cannot disturb the count; there is a single test anyway.

use aa_runtime::csv::CsvParser;
use aa_runtime::{
    AaConfig, AaState, AaStream, Insert, PacketPool, PoolPacket, StreamConfig, ZcStream,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the allocator may be called while thread-locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with counting on for this thread; returns the allocations it made.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCS.load(Ordering::Relaxed), r)
}

const MSS: usize = 1448;
const HDR: usize = 66;
const BATCH: usize = 32;
const N: usize = 10_000;

/// Takes a pool buffer and writes a frame: a header, then `payload`.
fn receive(pool: &PacketPool, payload: &[u8]) -> PoolPacket {
    let mut buf = pool.alloc().expect("pool has room");
    let space = buf.space();
    space[..HDR].fill(0x45);
    space[HDR..HDR + payload.len()].copy_from_slice(payload);
    buf.freeze(HDR + payload.len())
}

/// Pushes `n` segments through a zero-copy stream, in batches of `BATCH`; with
/// `swap`, each pair of segments arrives in reverse order. Returns the bytes read.
fn run_zc(
    s: &mut ZcStream<PoolPacket>,
    pool: &PacketPool,
    seq: &mut u32,
    payload: &[u8; MSS],
    n: usize,
    swap: bool,
) -> u64 {
    let mut read = 0u64;
    for _ in 0..n / BATCH {
        let mut i = 0;
        while i < BATCH {
            if swap {
                let late = *seq;
                let early = seq.wrapping_add(MSS as u32);
                let r = s.insert(early, receive(pool, payload), HDR..HDR + MSS);
                assert_eq!(r, Insert::OutOfOrder);
                let r = s.insert(late, receive(pool, payload), HDR..HDR + MSS);
                assert_eq!(
                    r,
                    Insert::InOrder {
                        bytes: 2 * MSS as u64
                    }
                );
                i += 2;
                *seq = seq.wrapping_add(2 * MSS as u32);
            } else {
                let r = s.insert(*seq, receive(pool, payload), HDR..HDR + MSS);
                assert_eq!(r, Insert::InOrder { bytes: MSS as u64 });
                i += 1;
                *seq = seq.wrapping_add(MSS as u32);
            }
        }
        let mut k = 0;
        for f in s.read_fragments(BATCH) {
            assert_eq!(f.data.len(), MSS);
            assert_eq!(f.data[MSS / 2], payload[MSS / 2]);
            read += f.data.len() as u64;
            k += 1;
        }
        assert_eq!(s.free_fragments(k), BATCH);
    }
    read
}

/// A CSV document of 8-field rows, some quoted with a comma or a doubled quote
/// inside, ending with a line end (so it can be repeated as one stream).
fn csv_document() -> Vec<u8> {
    let mut doc = Vec::new();
    let mut row = 0u32;
    while doc.len() < 20_000 {
        for f in 0..8u32 {
            if f > 0 {
                doc.push(b',');
            }
            match (row + f) % 7 {
                0 => doc.extend_from_slice(b"abcd"),
                1 => doc.extend_from_slice(b"\"a,b\""),
                2 => doc.extend_from_slice(b"\"say \"\"hi\"\"\""),
                3 => doc.extend_from_slice(format!("{}", row * 8 + f).as_bytes()),
                4 => {}
                _ => doc.extend_from_slice(&[b'x'; 37][..(row % 37) as usize + 1]),
            }
        }
        doc.extend_from_slice(if row % 5 == 0 { b"\r\n" } else { b"\n" });
        row += 1;
    }
    doc
}

/// What reading the fields of every ready record found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    records: u64,
    fields: u64,
    bytes: u64,
    abcd: u64,
}

fn drain_records(aa: &mut AaStream<PoolPacket, CsvParser>, seen: &mut Seen) {
    let recs = aa.read_aa_records(usize::MAX);
    let n = recs.len();
    for r in recs {
        assert_eq!(r.len(), 8, "every row has 8 fields");
        seen.records += 1;
        for f in r.fields() {
            seen.fields += 1;
            let len = f.len();
            let by_chunks: u64 = f.chunks().map(|c| c.len() as u64).sum();
            assert_eq!(by_chunks, len);
            if len > 0 {
                assert!(f.byte_at(len - 1).is_some());
                assert!(f.byte_at(len).is_none());
            }
            if f.eq_bytes(b"abcd") {
                seen.abcd += 1;
            }
            seen.bytes += len;
        }
    }
    assert_eq!(aa.free_aa_records(n), n);
}

/// Feeds `n` packets of the repeated document, from stream offset `*off`.
fn run_aa(
    aa: &mut AaStream<PoolPacket, CsvParser>,
    pool: &PacketPool,
    doc: &[u8],
    off: &mut usize,
    n: usize,
    seen: &mut Seen,
) {
    let mut payload = [0u8; MSS];
    for _ in 0..n {
        for b in payload.iter_mut() {
            *b = doc[*off % doc.len()];
            *off += 1;
        }
        let seq = (*off - MSS) as u32;
        let r = aa.insert(seq, receive(pool, &payload), HDR..HDR + MSS);
        assert_eq!(r, Insert::InOrder { bytes: MSS as u64 });
        drain_records(aa, seen);
    }
}

#[test]
fn steady_state_does_not_allocate() {
    let pool = PacketPool::new(256, 2048);

    // (a) The zero-copy stream.
    let mut payload = [0u8; MSS];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    let first = u32::MAX - 100 * MSS as u32; // crosses the sequence-number wrap
    let mut s = ZcStream::new(StreamConfig::default(), first);
    let mut seq = first;
    run_zc(&mut s, &pool, &mut seq, &payload, 20 * BATCH, false);
    run_zc(&mut s, &pool, &mut seq, &payload, 20 * BATCH, true);
    let (n, read) = allocations(|| {
        run_zc(&mut s, &pool, &mut seq, &payload, N, false)
            + run_zc(&mut s, &pool, &mut seq, &payload, N, true)
    });
    assert_eq!(read, (2 * (N / BATCH) * BATCH * MSS) as u64);
    assert_eq!(n, 0, "ZcStream: {n} allocations for {} packets", 2 * N);
    assert_eq!(s.fragments_held(), 0);
    assert!(
        pool.is_full(),
        "the stream holds no packet once all are freed"
    );

    // (b) The application-aware stream with the CSV parser.
    let doc = csv_document();
    let mut aa = AaStream::new(AaConfig::default(), 0, CsvParser::default());
    let (mut off, mut seen) = (0usize, Seen::default());
    run_aa(&mut aa, &pool, &doc, &mut off, 2_000, &mut seen);
    let before = seen;
    let (n, ()) = allocations(|| run_aa(&mut aa, &pool, &doc, &mut off, N, &mut seen));
    assert_eq!(n, 0, "AaStream: {n} allocations for {N} packets");
    assert!(seen.records - before.records > 1000, "{seen:?}");
    assert!(seen.abcd > before.abcd);
    assert_eq!(seen.fields, 8 * seen.records);

    // End the stream on a record boundary: everything is read, freed, returned.
    let rest = doc.len() - off % doc.len();
    let mut tail = [0u8; MSS];
    let mut left = rest;
    while left > 0 {
        let k = left.min(MSS);
        let at = doc.len() - left;
        tail[..k].copy_from_slice(&doc[at..at + k]);
        let r = aa.insert(off as u32, receive(&pool, &tail[..k]), HDR..HDR + k);
        assert_eq!(r, Insert::InOrder { bytes: k as u64 });
        off += k;
        left -= k;
        drain_records(&mut aa, &mut seen);
    }
    aa.finish();
    drain_records(&mut aa, &mut seen);
    assert_eq!(aa.state(), AaState::Ended);
    assert_eq!(aa.stats().records, seen.records);
    assert_eq!(aa.stats().freed, seen.records);
    let rows_per_doc = doc.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(seen.records, off as u64 / doc.len() as u64 * rows_per_doc);
    assert_eq!(aa.stream().held_bytes(), 0);
    assert!(pool.is_full(), "the stream holds no packet after the end");
    drop(aa);
    assert!(pool.is_full());
}
