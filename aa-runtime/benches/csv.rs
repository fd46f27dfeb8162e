//! CSV over the application-aware stream against `csv-core` over a contiguous buffer.
//!
//! Input: a deterministic CSV document of about 1 MiB, 8 fields per row, every
//! field `FIELD_LEN` raw bytes long (without its quotes); one field in eight is
//! quoted and holds a comma, one in eight is quoted and holds a doubled quote.
//! Groups: `csv_short` (4-byte fields) and `csv_long` (64-byte fields), each with
//! `Throughput::Bytes(document length)`; one criterion iteration parses the whole
//! document.
//!
//! - `<group>/aa_handwritten`: the document, pre-cut into 1448-byte payloads
//!   behind a 66-byte header in a `PacketPool` (built once), goes through
//!   `AaStream<PoolPacket, CsvParser>`: per packet, clone the handle (a
//!   reference-count increment) and `insert` it, then `read_aa_records` (touching
//!   every field's length) and `free_aa_records`; at the end `finish`. The
//!   stream itself is made in the untimed setup of `iter_batched` and dropped
//!   untimed.
//! - `<group>/csv_core`: `csv_core::Reader::read_record` over the contiguous
//!   document (it copies each field, unescaped, into an output buffer — that is
//!   its API), touching every field's length.
//!
//! Before measuring, both are checked to yield the same records (field values
//! compared after `aa_runtime::csv::unquote`).

use aa_runtime::csv::{unquote, CsvParser};
use aa_runtime::{AaConfig, AaState, AaStream, PacketPool, PoolPacket};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use csv_core::{ReadRecordResult, Reader};
use std::hint::black_box;
use std::time::Duration;

#[path = "support/csv_doc.rs"]
mod csv_doc;
use csv_doc::{document, packets, run_aa, FIELDS_PER_ROW, ISN};

fn new_stream() -> AaStream<PoolPacket, CsvParser> {
    AaStream::new(AaConfig::default(), ISN, CsvParser::default())
}

/// Records of `doc` as csv-core reads them.
fn csv_core_records(doc: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut rdr = Reader::new();
    let (mut out, mut ends) = (vec![0u8; 64 * 1024], [0usize; 64]);
    let mut input = doc;
    let mut recs = Vec::new();
    loop {
        let (res, nin, _, nend) = rdr.read_record(input, &mut out, &mut ends);
        input = &input[nin..];
        match res {
            ReadRecordResult::Record => {
                let mut prev = 0;
                recs.push(
                    ends[..nend]
                        .iter()
                        .map(|&e| {
                            let f = out[prev..e].to_vec();
                            prev = e;
                            f
                        })
                        .collect(),
                );
            }
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::End => return recs,
            other => panic!("csv-core: {other:?}"),
        }
    }
}

/// Checks that both parsers see the same records, and that the stream gives
/// every packet back.
fn check(doc: &[u8], pool: &PacketPool, pkts: &[PoolPacket]) {
    let want = csv_core_records(doc);
    assert!(want.iter().all(|r| r.len() == FIELDS_PER_ROW));
    let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
    let aa = run_aa(new_stream(), pkts, |rec, f| {
        if got.len() as u64 == rec {
            got.push(Vec::new());
        }
        let mut v = Vec::new();
        unquote(f, b'"', &mut v);
        got.last_mut().expect("record").push(v);
    });
    assert_eq!(aa.state(), AaState::Ended);
    assert_eq!(aa.stats().records, want.len() as u64);
    assert_eq!(aa.stream().held_bytes(), 0, "every fragment released");
    assert_eq!(
        pool.available() as usize + pkts.len(),
        pool.capacity() as usize,
        "the stream holds no packet after the end"
    );
    drop(aa);
    assert!(got == want, "aa and csv-core disagree");
}

fn bench_group(c: &mut Criterion, group: &str, field_len: usize) {
    let doc = document(field_len);
    let (pool, pkts) = packets(&doc);
    check(&doc, &pool, &pkts);

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(50);

    g.bench_function("aa_handwritten", |b| {
        b.iter_batched(
            new_stream,
            |aa| {
                let mut sum = 0u64;
                let aa = run_aa(aa, &pkts, |_, f| sum += f.len());
                black_box(sum);
                aa
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("csv_core", |b| {
        let (mut out, mut ends) = (vec![0u8; 64 * 1024], [0usize; 64]);
        b.iter(|| {
            let mut rdr = Reader::new();
            let mut input = &doc[..];
            let mut sum = 0usize;
            loop {
                let (res, nin, _, nend) = rdr.read_record(input, &mut out, &mut ends);
                input = &input[nin..];
                match res {
                    ReadRecordResult::Record => {
                        let mut prev = 0;
                        for &e in &ends[..nend] {
                            sum += e - prev;
                            prev = e;
                        }
                    }
                    ReadRecordResult::InputEmpty => {}
                    ReadRecordResult::End => break,
                    other => panic!("csv-core: {other:?}"),
                }
            }
            black_box(sum)
        })
    });
    g.finish();

    drop(pkts);
    assert!(pool.is_full(), "every packet is back in the pool");
}

fn csv(c: &mut Criterion) {
    bench_group(c, "csv_short", 4);
    bench_group(c, "csv_long", 64);
}

criterion_group!(benches, csv);
criterion_main!(benches);
