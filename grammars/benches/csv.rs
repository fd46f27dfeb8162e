//! CSV through the application-aware stream: the parser generated from
//! `csv.aag` against the hand-written `aa_runtime::csv::CsvParser` and the
//! interpreter running the same grammar.
//!
//! Input: the document of `aa-runtime`'s CSV bench — about 1 MiB, 8 fields per
//! row, every field 4 raw bytes long (without its quotes); one field in eight is
//! quoted and holds a comma, one in eight is quoted and holds a doubled quote.
//! Group `grammars_csv_short` (named apart from `aa-runtime`'s `csv_short`, whose
//! results it would share and overwrite), `Throughput::Bytes(document length)`; one criterion
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
use aa_runtime::{AaConfig, AaState, AaStream, Parser, PoolPacket};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

#[path = "../../aa-runtime/benches/support/csv_doc.rs"]
mod csv_doc;
use csv_doc::{document, packets, run_aa, FIELDS_PER_ROW, ISN};

const FIELD_LEN: usize = 4;

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

    let mut g = c.benchmark_group("grammars_csv_short");
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
