//! CSV through the application-aware stream: the parser generated from
//! `csv.aag` against the hand-written `aa_runtime::csv::CsvParser` and the
//! interpreter running the same grammar.
//!
//! Input: the document of `aa-runtime`'s CSV bench — about 1 MiB, 8 fields per
//! row, every field 4 raw bytes long (without its quotes); one field in eight is
//! quoted and holds a comma, one in eight is quoted and holds a doubled quote.
//! Group `csv_short`, `Throughput::Bytes(document length)`; one criterion
//! iteration parses the whole document:
//!
//! - `aa_generated`: `AaStream<PoolPacket, csv::CsvParser>` (generated);
//! - `aa_handwritten`: `AaStream<PoolPacket, aa_runtime::csv::CsvParser>`;
//! - `aa_interpreted`: `AaStream<PoolPacket, aa_dsl::interp::Interp>`.
//!
//! Each: the document, pre-cut into 1448-byte payloads behind a 66-byte header
//! in a `PacketPool` (built once), goes through the stream: per packet, clone
//! the handle and `insert` it, then `read_aa_records` (touching every field's
//! length) and `free_aa_records`; at the end `finish`. The stream is made in the
//! untimed setup of `iter_batched` and dropped untimed.
//!
//! Before measuring, the three are checked to yield the same fields (the
//! grammar does not skip a byte-order mark, and there is none).

use aa_dsl::interp::Grammar;
use aa_grammars::csv;
use aa_runtime::{AaConfig, AaState, AaStream, Insert, Packet, PacketPool, Parser, PoolPacket};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const MSS: usize = 1448;
/// Ethernet 14 + IPv4 20 + TCP 32 bytes before each payload.
const HDR: usize = 66;
const FIELDS_PER_ROW: usize = 8;
const FIELD_LEN: usize = 4;
const TARGET_LEN: usize = 1 << 20;
const ISN: u32 = 0x1234_5678;

/// The deterministic document of `aa-runtime/benches/csv.rs`.
fn document(field_len: usize) -> Vec<u8> {
    assert!(field_len >= 4);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = Vec::with_capacity(TARGET_LEN + 1024);
    while out.len() < TARGET_LEN {
        for f in 0..FIELDS_PER_ROW {
            if f > 0 {
                out.push(b',');
            }
            let r = next();
            let mut content: Vec<u8> = (0..field_len)
                .map(|i| ALNUM[((r >> (i % 8 * 6)) as usize + i) % ALNUM.len()])
                .collect();
            match r % 8 {
                0 => {
                    content[field_len / 2] = b',';
                    out.push(b'"');
                    out.extend_from_slice(&content);
                    out.push(b'"');
                }
                1 => {
                    content[field_len / 2 - 1] = b'"';
                    content[field_len / 2] = b'"';
                    out.push(b'"');
                    out.extend_from_slice(&content);
                    out.push(b'"');
                }
                _ => out.extend_from_slice(&content),
            }
        }
        out.push(b'\n');
    }
    out
}

/// The document cut into `MSS`-byte payloads, each behind a `HDR`-byte header,
/// in a pool holding exactly these packets.
fn packets(doc: &[u8]) -> (PacketPool, Vec<PoolPacket>) {
    let n = doc.len().div_ceil(MSS);
    let pool = PacketPool::new(n as u32, HDR + MSS);
    let mut frame = vec![0u8; HDR + MSS];
    let pkts = doc
        .chunks(MSS)
        .map(|c| {
            frame[HDR..HDR + c.len()].copy_from_slice(c);
            pool.packet_from(&frame[..HDR + c.len()])
                .expect("pool sized for the document")
        })
        .collect();
    (pool, pkts)
}

/// Feeds every packet, reading and freeing records as they come; calls
/// `on_field(record_index, field)` for every field. Returns the stream (ended).
fn run_aa<R: Parser>(
    mut aa: AaStream<PoolPacket, R>,
    pkts: &[PoolPacket],
    mut on_field: impl FnMut(u64, &aa_runtime::Field<'_, PoolPacket>),
) -> AaStream<PoolPacket, R> {
    let mut seq = ISN;
    let mut rec = 0u64;
    let mut drain = |aa: &mut AaStream<PoolPacket, R>| {
        let recs = aa.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            for f in r.fields() {
                on_field(rec, &f);
            }
            rec += 1;
        }
        aa.free_aa_records(n);
    };
    for p in pkts {
        let len = p.data().len();
        let r = aa.insert(seq, p.clone(), HDR..len);
        debug_assert!(matches!(r, Insert::InOrder { .. }));
        seq = seq.wrapping_add((len - HDR) as u32);
        drain(&mut aa);
    }
    aa.finish();
    drain(&mut aa);
    aa
}

/// Every field as (record index, offset, length, flags).
fn fields<R: Parser>(parser: R, pkts: &[PoolPacket]) -> Vec<(u64, u64, u64, u8)> {
    let mut out = Vec::new();
    let aa = run_aa(
        AaStream::new(AaConfig::default(), ISN, parser),
        pkts,
        |rec, f| out.push((rec, f.offset(), f.len(), f.flags())),
    );
    assert_eq!(aa.state(), AaState::Ended);
    assert_eq!(aa.stream().held_bytes(), 0, "every fragment released");
    out
}

fn bench_one<R: Parser>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pkts: &[PoolPacket],
    make: impl Fn() -> R,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || AaStream::new(AaConfig::default(), ISN, make()),
            |aa| {
                let mut sum = 0u64;
                let aa = run_aa(aa, pkts, |_, f| sum += f.len());
                black_box(sum);
                aa
            },
            BatchSize::PerIteration,
        )
    });
}

fn csv_short(c: &mut Criterion) {
    let doc = document(FIELD_LEN);
    let (pool, pkts) = packets(&doc);
    let grammar = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/csv.aag")).expect("csv.aag loads"),
    );

    let want = fields(aa_runtime::csv::CsvParser::default(), &pkts);
    assert_eq!(
        want.iter().filter(|f| f.0 == 0).count(),
        FIELDS_PER_ROW,
        "8 fields in the first row"
    );
    assert!(
        fields(csv::CsvParser::new(), &pkts) == want,
        "generated and hand-written differ"
    );
    assert!(
        fields(grammar.parser(), &pkts) == want,
        "interpreted and hand-written differ"
    );

    let mut g = c.benchmark_group("csv_short");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(50);
    bench_one(&mut g, "aa_generated", &pkts, csv::CsvParser::new);
    bench_one(
        &mut g,
        "aa_handwritten",
        &pkts,
        aa_runtime::csv::CsvParser::default,
    );
    bench_one(&mut g, "aa_interpreted", &pkts, || grammar.parser());
    g.finish();

    drop(pkts);
    assert!(pool.is_full(), "every packet is back in the pool");
}

criterion_group!(benches, csv_short);
criterion_main!(benches);
