//! A protocol written with `#[aa_protocol]`, parsing real bytes.

use aa_macros::aa_protocol;
use aa_runtime::{AaConfig, AaStream, ErrorKind, Packet, PacketPool};

#[aa_protocol]
pub enum Tls {
    #[aa(start)]
    TlsRecord {
        #[aa(
            u8,
            actions = r#"if content_type < 20 || content_type > 24 { fail "unknown content type"; }"#
        )]
        content_type: (),
        #[aa(u16be)]
        version: (),
        #[aa(u16be)]
        length: (),
        #[aa(bytes = "length", max = 18432)]
        fragment: (),
    },
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn macro_parser_reads_records_across_packets() {
    let mut input = record(22, b"client hello");
    input.extend(record(23, &[7u8; 300]));
    input.extend(record(21, b""));
    let pool = PacketPool::new(512, 64);
    let mut s = AaStream::new(AaConfig::default(), 1, tls::TlsParser::default());
    let mut seq = 1u32;
    for c in input.chunks(5) {
        let p = pool.packet_from(c).unwrap();
        let n = p.data().len();
        s.insert(seq, p, 0..n);
        seq += c.len() as u32;
    }
    s.finish();
    let recs: Vec<(String, Vec<Vec<u8>>)> = s
        .read_aa_records(10)
        .map(|r| {
            (
                r.name().to_string(),
                r.fields().map(|f| f.to_vec()).collect(),
            )
        })
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].0, "tls_record");
    assert_eq!(recs[0].1[0], vec![22]);
    assert_eq!(recs[0].1[3], b"client hello");
    assert_eq!(recs[1].1[3], vec![7u8; 300]);
    assert_eq!(recs[2].1[2], vec![0, 0]);
    s.free_aa_records(3);
    drop(s);
    assert!(pool.is_full());
}

#[test]
fn macro_parser_fails_with_the_grammar_message() {
    let pool = PacketPool::new(4, 64);
    let mut s = AaStream::new(AaConfig::default(), 1, tls::TlsParser::default());
    let mut input = record(22, b"ok");
    input.extend(record(99, b"bad"));
    let p = pool.packet_from(&input).unwrap();
    s.insert(1, p, 0..input.len());
    let e = s.error().expect("rejected");
    assert_eq!(
        e.kind,
        ErrorKind::Rejected {
            message: "unknown content type"
        }
    );
    assert_eq!(
        (e.record, e.field, e.offset),
        ("tls_record", Some("content_type"), 7)
    );
    assert_eq!(s.read_aa_records(10).count(), 1, "the good record is kept");
    s.free_aa_records(1);
    drop(s);
    assert!(pool.is_full());
}
