//! Delimiter positions in text of short fields: `aa_runtime::scan::Delims`
//! (a 64-byte bitmask per block, one position per field from it) against
//! `memchr::memchr3` called once per field from the end of the last one (what
//! the generated parsers did before), and memchr's SSE2 `Three` searcher (the
//! generated finder's x86_64 path). Group `delims_8`: rows of ten 8-byte
//! fields, 1448-byte pieces (one per packet); `Throughput::Bytes`. Each
//! variant sums the positions it finds, and all three are checked to agree.
//!
//! Run: `cargo bench -p aa-runtime --bench scan`.

use aa_runtime::scan::Delims;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const MSS: usize = 1448;

fn text() -> Vec<u8> {
    let mut doc = Vec::new();
    let mut n = 0u64;
    while doc.len() < 1 << 20 {
        for f in 0..10 {
            if f > 0 {
                doc.push(b',');
            }
            doc.extend_from_slice(format!("{:08}", n % 100_000_000).as_bytes());
            n += 1;
        }
        doc.push(b'\n');
    }
    doc
}

fn delims(doc: &[u8]) -> u64 {
    let mut sum = 0u64;
    for d in doc.chunks(MSS) {
        let mut s = Delims::new(d, 0, *b",\n\r");
        while let Some(j) = s.next() {
            sum += j as u64;
        }
    }
    sum
}

fn memchr3_per_field(doc: &[u8]) -> u64 {
    let mut sum = 0u64;
    for d in doc.chunks(MSS) {
        let mut s = 0;
        while let Some(j) = memchr::memchr3(b',', b'\n', b'\r', &d[s..]) {
            sum += (s + j) as u64;
            s += j + 1;
        }
    }
    sum
}

#[cfg(target_arch = "x86_64")]
fn sse2_three_per_field(doc: &[u8]) -> u64 {
    let t = memchr::arch::x86_64::sse2::memchr::Three::new(b',', b'\n', b'\r').expect("SSE2");
    let mut sum = 0u64;
    for d in doc.chunks(MSS) {
        let mut s = 0;
        while let Some(j) = t.find(&d[s..]) {
            sum += (s + j) as u64;
            s += j + 1;
        }
    }
    sum
}

fn scan(c: &mut Criterion) {
    let doc = text();
    let want = memchr3_per_field(&doc);
    assert_eq!(delims(&doc), want, "Delims and memchr3 agree");
    let mut g = c.benchmark_group("delims_8");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("delims", |b| b.iter(|| black_box(delims(black_box(&doc)))));
    g.bench_function("memchr3_per_field", |b| {
        b.iter(|| black_box(memchr3_per_field(black_box(&doc))))
    });
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(sse2_three_per_field(&doc), want, "Three and memchr3 agree");
        g.bench_function("sse2_three_per_field", |b| {
            b.iter(|| black_box(sse2_three_per_field(black_box(&doc))))
        });
    }
    g.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
