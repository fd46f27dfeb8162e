//! A driver for instruction counts of the generated CSV parser on short
//! fields, which unlike times do not move with the load of a shared machine:
//!
//! ```text
//! cargo build --release -p aa-grammars --example csv_fields_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/csv_fields_count 20
//! ```
//!
//! Rows of 10 unquoted 8-byte fields (the passive bench's `passive_csv_8`
//! rows), cut into 1448-byte payloads, go `PASSES` times through an
//! `AaStream` with the parser compiled from `csv.aag`: per packet insert,
//! read every record (summing its field lengths), free. Compare the totals
//! of two runs with different `PASSES` to get the cost of one pass without
//! the set-up; a pass is 1 MiB (116,508 fields).

use aa_grammars::csv::CsvParser;
use aa_runtime::{AaConfig, AaStream, Packet, PacketPool};
use std::hint::black_box;

const MSS: usize = 1448;
const HDR: usize = 66;
const FIELDS: usize = 10;
const FIELD_LEN: usize = 8;

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let mut doc = Vec::new();
    let mut n = 0u64;
    while doc.len() < 1 << 20 {
        for f in 0..FIELDS {
            if f > 0 {
                doc.push(b',');
            }
            doc.extend_from_slice(format!("{:0w$}", n % 100_000_000, w = FIELD_LEN).as_bytes());
            n += 1;
        }
        doc.push(b'\n');
    }
    let pkts_n = doc.len().div_ceil(MSS);
    let pool = PacketPool::new(pkts_n as u32, HDR + MSS);
    let mut frame = vec![0u8; HDR + MSS];
    let pkts: Vec<_> = doc
        .chunks(MSS)
        .map(|c| {
            frame[HDR..HDR + c.len()].copy_from_slice(c);
            pool.packet_from(&frame[..HDR + c.len()]).expect("pool")
        })
        .collect();
    let mut fields = 0u64;
    for _ in 0..passes {
        let mut aa = AaStream::new(AaConfig::default(), 1, CsvParser::new());
        let mut seq = 1u32;
        for p in &pkts {
            let len = p.data().len();
            aa.insert(seq, p.clone(), HDR..len);
            seq = seq.wrapping_add((len - HDR) as u32);
            let recs = aa.read_aa_records(usize::MAX);
            let k = recs.len();
            for r in recs {
                let mut bytes = 0;
                for f in r.fields() {
                    bytes += f.len();
                    fields += 1;
                }
                black_box(bytes);
            }
            aa.free_aa_records(k);
        }
        aa.finish();
        let k = aa.read_aa_records(usize::MAX).len();
        aa.free_aa_records(k);
    }
    assert_eq!(fields, n * passes as u64, "every field seen");
    drop(pkts);
    assert!(pool.is_full(), "every packet back in the pool");
}
