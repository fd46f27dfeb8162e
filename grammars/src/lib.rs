//! The `.aag` grammars shipped with aa, compiled to Rust at build time by
//! `aa_dsl::compile` in `build.rs` (the generated code is in
//! `$OUT_DIR/<protocol>.rs`).
//!
//! Each module holds one protocol's generated parser (`csv::CsvParser`, …),
//! the constants of its record kinds (`kinds`), field tags (`fields`) and
//! variable tags (`values`), and typed views of its records (`csv::Row`, and
//! `csv::CsvRecord`, an enum over the record types). A parser runs one stream
//! direction inside an [`aa_runtime::AaStream`]:
//!
//! ```
//! use aa_grammars::csv::{CsvParser, CsvRecord};
//! use aa_runtime::{AaConfig, AaStream, PacketPool};
//!
//! let pool = PacketPool::new(4, 2048);
//! let mut s = AaStream::new(AaConfig::default(), 0, CsvParser::new());
//! let data = b"a,\"b,c\"\n1,2\n";
//! s.insert(0, pool.packet_from(data).unwrap(), 0..data.len());
//! s.finish();
//! let mut rows = Vec::new();
//! for r in s.read_aa_records(usize::MAX) {
//!     let Some(CsvRecord::Row(row)) = CsvRecord::from_record(r) else { unreachable!() };
//!     rows.push(row.field().map(|f| f.to_vec()).collect::<Vec<_>>());
//! }
//! assert_eq!(rows, [vec![b"a".to_vec(), b"b,c".to_vec()], vec![b"1".to_vec(), b"2".to_vec()]]);
//! ```
//!
//! The generated parsers behave exactly as the interpreter (`aa_dsl::interp`)
//! runs the same grammars — the tests compare them on random inputs, damaged
//! inputs and packet cuts — at the speed of hand-written code (`benches/csv.rs`
//! compares the CSV parser with the hand-written `aa_runtime::csv::CsvParser`).
#![deny(missing_docs)]

/// RFC 4180 CSV (`csv.aag`): `row` records of repeated `field`s.
pub mod csv {
    include!(concat!(env!("OUT_DIR"), "/csv.rs"));

    #[cfg(test)]
    mod finders {
        use proptest::prelude::*;

        proptest! {
            /// The three-byte finder of a delimited field finds what a plain
            /// search finds, through both of its paths: the SSE2 searcher
            /// used on x86_64 and the word scan used elsewhere (and as its
            /// fallback), at every length around the 64-byte scan window.
            #[test]
            fn both_paths_find_the_first_delimiter(
                bytes in proptest::collection::vec(
                    prop_oneof![8 => b'a'..=b'z', 1 => Just(b','), 1 => Just(b'\n'), 1 => Just(b'\r')],
                    0..200,
                ),
                skip in 0usize..16,
            ) {
                let d = &bytes[skip.min(bytes.len())..];
                let want = d.iter().position(|b| matches!(b, b',' | b'\n' | b'\r'));
                prop_assert_eq!(super::find_comma_lf_cr(d), want);
                prop_assert_eq!(super::find_comma_lf_cr_words(d), want);
            }

            /// The same with the delimiter only far in or absent.
            #[test]
            fn both_paths_across_the_window(len in 0usize..300, at in 0usize..300) {
                let mut d = vec![b'x'; len];
                if at < len {
                    d[at] = b'\r';
                }
                let want = (at < len).then_some(at);
                prop_assert_eq!(super::find_comma_lf_cr(&d), want);
                prop_assert_eq!(super::find_comma_lf_cr_words(&d), want);
            }
        }
    }
}

/// HTTP/1.1 requests (`http_request.aag`): request line and headers, then the
/// body as `body` records by Content-Length or chunked coding.
pub mod http_request {
    include!(concat!(env!("OUT_DIR"), "/http_request.rs"));
}

/// HTTP/1.1 responses (`http_response.aag`): status line and headers, then the
/// body as `body` records by Content-Length, chunked coding, or until the end.
pub mod http_response {
    include!(concat!(env!("OUT_DIR"), "/http_response.rs"));
}

pub mod websocket;

/// The TLS record layer (`tls.aag`): typed, length-prefixed `tls_record`s.
pub mod tls {
    include!(concat!(env!("OUT_DIR"), "/tls.rs"));
}

/// Redis RESP2 (`resp.aag`): `frame`s and the payloads of bulk strings.
pub mod resp {
    include!(concat!(env!("OUT_DIR"), "/resp.rs"));
}

/// TLS handshakes in the clear (`tls_handshake.aag`): the record layer, each
/// handshake message's header, a ClientHello's and ServerHello's fields and
/// extensions, with the server name, the ALPN protocols and a TLS 1.3
/// server's chosen version broken out.
pub mod tls_handshake {
    include!(concat!(env!("OUT_DIR"), "/tls_handshake.rs"));
}

/// MQTT 3.1.1 (`mqtt.aag`): a `packet` record per control packet (type,
/// flags, Remaining Length, a PUBLISH's topic, the Packet Identifier), and
/// the rest of each packet as `payload` records.
pub mod mqtt {
    include!(concat!(env!("OUT_DIR"), "/mqtt.rs"));
}

/// The `.aag` source of every shipped grammar, by protocol name: what tools
/// that describe records (field shapes, variable types) read beside the
/// compiled parsers.
pub const SOURCES: &[(&str, &str)] = &[
    ("csv", include_str!("../csv.aag")),
    ("http_request", include_str!("../http_request.aag")),
    ("http_response", include_str!("../http_response.aag")),
    ("tls", include_str!("../tls.aag")),
    ("resp", include_str!("../resp.aag")),
    ("mqtt", include_str!("../mqtt.aag")),
    ("tls_handshake", include_str!("../tls_handshake.aag")),
];
