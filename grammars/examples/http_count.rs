//! A driver for instruction counts of the generated HTTP response parser on
//! the `http` bench's stream (7 headers, bodies of 0 to 2000 bytes,
//! 1448-byte payloads), which unlike times do not move with the load of a
//! shared machine:
//!
//! ```text
//! cargo build --profile bench -p aa-grammars --example http_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/http_count 10
//! ```
//!
//! Per pass, as the bench's `aa_generated`: per packet insert, read every
//! record (the status parsed, every header's length and last byte, the body
//! lengths), free. Compare the totals of two runs with different pass counts
//! to get the cost of one pass (2000 messages) without the set-up.

use aa_grammars::http_response::{HttpResponseParser, HttpResponseRecord};
use aa_runtime::{AaConfig, AaStream, Packet};
use std::hint::black_box;

#[path = "../benches/support/http_doc.rs"]
#[allow(dead_code)] // the bench uses more of it
mod http_doc;
use http_doc::{document, packets, HDR, ISN, MESSAGES};

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let (doc, body_total) = document();
    let (pool, pkts) = packets(&doc);
    for _ in 0..passes {
        let mut aa = AaStream::new(AaConfig::default(), ISN, HttpResponseParser::new());
        let (mut messages, mut body, mut touch) = (0usize, 0u64, 0u64);
        let mut seq = ISN;
        for p in &pkts {
            let len = p.data().len();
            aa.insert(seq, p.clone(), HDR..len);
            seq = seq.wrapping_add((len - HDR) as u32);
            let recs = aa.read_aa_records(usize::MAX);
            let n = recs.len();
            for r in recs {
                match HttpResponseRecord::from_record(r) {
                    Some(HttpResponseRecord::Response(resp)) => {
                        messages += 1;
                        touch += resp.status().and_then(|f| f.parse_dec().ok()).unwrap_or(0);
                        for h in resp.headers() {
                            touch += h.len() + u64::from(h.byte_at(h.len() - 1).unwrap_or(0));
                        }
                    }
                    Some(HttpResponseRecord::Body(b)) => body += b.data().map_or(0, |d| d.len()),
                    _ => {}
                }
            }
            aa.free_aa_records(n);
        }
        aa.finish();
        assert_eq!(
            (messages, body),
            (MESSAGES, body_total),
            "every message seen"
        );
        black_box(touch);
    }
    drop(pkts);
    assert!(pool.is_full(), "every packet back in the pool");
}
