//! A driver for instruction counts of the generated parsers and the record
//! machinery (commit, pins, record views, free), which unlike times do not
//! move with the load of a shared machine:
//!
//! ```text
//! cargo build --profile bench -p aa-grammars --example rt_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/rt_count http 20
//! ```
//!
//! - `http REPS`: the `http_1448_msgs` workload of `benches/http.rs` (7-header
//!   responses, bodies of 0 to 2000 bytes, 1448-byte segments), `REPS` times
//!   over one stream; per packet: insert, read every record (status code,
//!   every header's length and last byte, body lengths), free them.
//! - `http-interp REPS`: the same through the interpreter running
//!   `http_response.aag`, loaded at run time.
//! - `http-known REPS`: the same records from a parser told in advance where
//!   every field is (`benches/support/known_fields.rs`): the record path
//!   alone.
//! - `csv REPS`: the `passive_csv_8` rows (10 fields of 8 bytes) in 1448-byte
//!   segments, `REPS` passes of 1,000 packets over one stream; per packet:
//!   insert, read every record (every field's length, the first byte of the
//!   first field), free them.
//! - `csv-interp REPS`: the same through the interpreter running `csv.aag`.
//! - `new REPS`: `REPS` streams of the default configuration made, given
//!   one packet, one record read and freed, and dropped.
//!
//! Compare the totals of two runs with different `REPS` to get instructions
//! per record without the set-up; the counts printed divide them.

use aa_dsl::interp::Grammar;
use aa_grammars::csv::CsvParser;
use aa_grammars::http_response::{HttpResponseParser, HttpResponseRecord};
use aa_runtime::{AaConfig, AaStream, Insert, Packet, Parser, PoolPacket};
use std::hint::black_box;

#[path = "../benches/support/http_doc.rs"]
#[allow(dead_code)] // the bench uses more of it
mod http_doc;
use http_doc::document as http_document;
#[path = "../../aa-runtime/benches/support/csv_doc.rs"]
#[allow(dead_code)] // the packets of a document, not its CSV
mod csv_doc;
#[path = "../benches/support/known_fields.rs"]
mod known_fields;
use csv_doc::{packets, HDR, MSS};

fn csv_document(packets: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::new();
    while out.len() < packets * MSS {
        for f in 0..10 {
            if f > 0 {
                out.push(b',');
            }
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.push(b'a' + (x % 26) as u8);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    // Whole rows only, so that passes join up.
    let end = out.len() - (out.len() % 91);
    out.truncate(end);
    out
}

/// `reps` passes of `doc`'s packets through one stream with `parser`: per
/// packet insert, hand every record to `read`, free them. Returns the
/// records; checks that every packet went back to the pool.
fn drive<R: Parser>(
    parser: R,
    doc: &[u8],
    reps: usize,
    mut read: impl FnMut(aa_runtime::Record<'_, PoolPacket>),
) -> u64 {
    let (pool, pkts) = packets(doc);
    let mut seq = 1u32;
    let mut aa: AaStream<PoolPacket, R> = AaStream::new(AaConfig::default(), seq, parser);
    let mut records = 0;
    for _ in 0..reps {
        for p in &pkts {
            let len = p.data().len();
            let r = aa.insert(seq, p.clone(), HDR..len);
            assert!(matches!(r, Insert::InOrder { .. }));
            seq = seq.wrapping_add((len - HDR) as u32);
            let recs = aa.read_aa_records(usize::MAX);
            let n = recs.len();
            for r in recs {
                records += 1;
                read(r);
            }
            aa.free_aa_records(n);
        }
    }
    drop(aa);
    drop(pkts);
    assert!(pool.is_full());
    records
}

/// The interpreter running the shipped grammar `file`, loaded at run time.
fn interp(file: &str) -> aa_dsl::interp::Interp {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    Grammar::new(aa_dsl::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"))).parser()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "http".into());
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let (mut records, mut fields, mut touch) = (0u64, 0u64, 0u64);
    let seq = 1u32;
    match mode.as_str() {
        "http" | "http-interp" | "http-known" => {
            let read =
                |r: aa_runtime::Record<'_, PoolPacket>| match HttpResponseRecord::from_record(r) {
                    Some(HttpResponseRecord::Response(resp)) => {
                        touch += resp.code().expect("a status code");
                        for h in resp.headers() {
                            fields += 1;
                            touch += h.len() - 2;
                            touch += h.byte_at(h.len() - 1).unwrap_or(0) as u64;
                        }
                    }
                    Some(HttpResponseRecord::Body(b)) => {
                        fields += 1;
                        touch += b.data().map_or(0, |d| d.len());
                    }
                    _ => unreachable!("no chunked coding"),
                };
            let doc = http_document().0;
            records = if mode == "http" {
                drive(HttpResponseParser::default(), &doc, reps, read)
            } else if mode == "http-known" {
                let heads = known_fields::heads(&doc).into();
                drive(
                    known_fields::KnownFields::new(heads, doc.len()),
                    &doc,
                    reps,
                    read,
                )
            } else {
                drive(interp("http_response.aag"), &doc, reps, read)
            };
        }
        "csv" | "csv-interp" => {
            let read = |r: aa_runtime::Record<'_, PoolPacket>| {
                let mut bytes = 0;
                for f in r.fields() {
                    fields += 1;
                    bytes += f.len();
                }
                touch += bytes;
                if let Some(f) = r.field(0) {
                    touch += u64::from(f.byte_at(0).unwrap_or(0));
                }
            };
            let doc = csv_document(1000);
            records = if mode == "csv" {
                drive(CsvParser::default(), &doc, reps, read)
            } else {
                drive(interp("csv.aag"), &doc, reps, read)
            };
        }
        "new" => {
            // Streams made and dropped (the default configuration), with one
            // record each: what a connection's set-up costs.
            let (pool, pkts) = packets(&csv_document(1));
            for _ in 0..reps {
                let mut aa: AaStream<PoolPacket, CsvParser> =
                    AaStream::new(AaConfig::default(), seq, CsvParser::default());
                let len = pkts[0].data().len();
                aa.insert(seq, pkts[0].clone(), HDR..len);
                records += aa.read_aa_records(1).len() as u64;
                aa.free_aa_records(1);
            }
            drop(pkts);
            assert!(pool.is_full());
        }
        other => {
            eprintln!(
                "unknown mode {other}: use http, http-interp, http-known, csv, csv-interp or new"
            );
            std::process::exit(2);
        }
    }
    black_box(touch);
    println!("records {records} fields {fields}");
}
