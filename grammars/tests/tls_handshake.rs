//! `tls_handshake.aag` on handshakes built here byte by byte (RFC 8446,
//! RFC 5246, RFC 6066, RFC 7301): a TLS 1.3 ClientHello with a server name,
//! ALPN, supported_versions and a key share, and its ServerHello choosing
//! TLS 1.3 and `h2`; a TLS 1.2 server flight whose Certificate spans two
//! records, with ServerHelloDone after it in the second; ChangeCipherSpec
//! and encrypted records after. Generated and interpreted parsers, the
//! stream whole and cut into packets of 1, 7 and 1448 bytes: the same
//! records, the server name, the protocols and the version read from them,
//! every byte in exactly one record, and the pool full at the end. Bad
//! lengths fail at the field that shows them, after every good record.

use aa_dsl::interp::Grammar;
use aa_grammars::tls_handshake::TlsHandshakeParser;
use aa_runtime::Either;
use std::sync::Arc;

mod common;

/// A record: its type and its fields, by name.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    name: &'static str,
    span: (u64, u64),
    fields: Vec<(&'static str, Vec<u8>)>,
}

impl Rec {
    fn field(&self, name: &str) -> &[u8] {
        &self.fields.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

fn u16b(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    [&t.to_be_bytes()[..], &u16b(data.len()), data].concat()
}

fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    [&[msg_type][..], &n.to_be_bytes()[1..], body].concat()
}

fn record(content_type: u8, payload: &[u8]) -> Vec<u8> {
    [&[content_type, 3, 3][..], &u16b(payload.len()), payload].concat()
}

fn server_name(host: &str) -> Vec<u8> {
    let entry = [&[0u8][..], &u16b(host.len()), host.as_bytes()].concat();
    ext(0, &[&u16b(entry.len())[..], &entry].concat())
}

fn alpn(names: &[&str]) -> Vec<u8> {
    let list: Vec<u8> = names
        .iter()
        .flat_map(|n| [&[n.len() as u8][..], n.as_bytes()].concat())
        .collect();
    ext(16, &[&u16b(list.len())[..], &list].concat())
}

fn client_hello(exts: &[Vec<u8>]) -> Vec<u8> {
    let exts = exts.concat();
    let body = [
        &[3u8, 3][..],
        &[0x5a; 32],
        &[32],
        &[0xa5; 32],
        &u16b(6),
        &[0x13, 1, 0x13, 2, 0xc0, 0x2f],
        &[1, 0],
        &u16b(exts.len()),
        &exts,
    ]
    .concat();
    message(1, &body)
}

fn server_hello(exts: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut body = [
        &[3u8, 3][..],
        &[0x77; 32],
        &[32],
        &[0xa5; 32],
        &[0x13, 1],
        &[0],
    ]
    .concat();
    if let Some(exts) = exts {
        let exts = exts.concat();
        body.extend_from_slice(&u16b(exts.len()));
        body.extend_from_slice(&exts);
    }
    message(2, &body)
}

/// A TLS 1.3 client's first flight, then its ChangeCipherSpec and an
/// encrypted record.
fn tls13_client() -> Vec<u8> {
    let hello = client_hello(&[
        server_name("example.com"),
        alpn(&["h2", "http/1.1"]),
        ext(43, &[4, 3, 4, 3, 3]),
        ext(
            51,
            &[0, 36, 0, 29, 0, 32]
                .iter()
                .copied()
                .chain([7; 32])
                .collect::<Vec<_>>(),
        ),
        ext(0xff01, &[0]),
    ]);
    [
        record(22, &hello),
        record(20, &[1]),
        record(23, &[0x42; 120]),
    ]
    .concat()
}

/// A TLS 1.3 server's ServerHello (version 0x0304, ALPN `h2`), then
/// ChangeCipherSpec and encrypted records.
fn tls13_server() -> Vec<u8> {
    let hello = server_hello(Some(&[
        ext(43, &[3, 4]),
        alpn(&["h2"]),
        ext(51, &[0, 29, 0, 2, 9, 9]),
    ]));
    [
        record(22, &hello),
        record(20, &[1]),
        record(23, &[0x17; 900]),
        record(23, &[0x18; 40]),
    ]
    .concat()
}

/// A TLS 1.2 server flight: ServerHello without extensions, a 20,000-byte
/// Certificate over two records with ServerHelloDone after it, then
/// ChangeCipherSpec and an encrypted Finished (a handshake record not to be
/// parsed).
fn tls12_server() -> Vec<u8> {
    let cert = message(11, &[0xc3; 20_000]);
    let done = message(14, &[]);
    let flight = [server_hello(None), cert, done].concat();
    let (a, b) = flight.split_at(16_384);
    [
        record(22, a),
        record(22, b),
        record(20, &[1]),
        record(22, &[0xee; 40]),
    ]
    .concat()
}

type P = Either<TlsHandshakeParser, aa_dsl::interp::Interp>;

fn grammar() -> Arc<Grammar> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tls_handshake.aag");
    Grammar::new(aa_dsl::load(path).unwrap_or_else(|e| panic!("{e}")))
}

/// The records of `input` cut into packets of `cut` bytes, and the error.
fn parse(parser: P, input: &[u8], cut: usize) -> (Vec<Rec>, Option<String>) {
    let mut out: Vec<Rec> = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        let rs = &r.schema().records[r.kind() as usize];
        let rec = Rec {
            name: rs.name,
            span: (r.span().start, r.span().end),
            fields: r
                .fields()
                .map(|f| (rs.fields[f.tag() as usize], f.to_vec()))
                .collect(),
        };
        // `fragment` and `message_data` are one record a segment: joined,
        // they do not depend on the cuts.
        match out.last_mut() {
            Some(last)
                if last.name == rec.name
                    && matches!(rec.name, "fragment" | "message_data")
                    && last.span.1 == rec.span.0 =>
            {
                last.span.1 = rec.span.1;
                let data = rec.fields[0].1.clone();
                last.fields[0].1.extend(data);
            }
            _ => out.push(rec),
        }
    });
    (out, err)
}

/// Both parsers at every cut give the same records and error; returns them.
fn parse_all(input: &[u8]) -> (Vec<Rec>, Option<String>) {
    let g = grammar();
    let want = parse(
        Either::Left(TlsHandshakeParser::new()),
        input,
        input.len().max(1),
    );
    // One byte a packet only for the small streams: a record in progress
    // holds its packets, and the stream caps how many.
    let cuts = if input.len() < 4096 {
        &[1, 7, 1448][..]
    } else {
        &[7, 1448][..]
    };
    for &cut in cuts.iter().chain([input.len().max(1)].iter()) {
        for p in [
            Either::Left(TlsHandshakeParser::new()),
            Either::Right(g.parser()),
        ] {
            assert_eq!(parse(p, input, cut), want, "cut {cut}");
        }
    }
    want
}

/// Records cover the stream: each begins where the one before ended.
fn contiguous(recs: &[Rec], len: usize) {
    let mut at = 0;
    for r in recs {
        assert_eq!(r.span.0, at, "{r:?}");
        at = r.span.1;
    }
    assert_eq!(at, len as u64);
}

/// Field `field` of every `record` record, in order.
fn all<'a>(recs: &'a [Rec], record: &str, field: &str) -> Vec<&'a [u8]> {
    recs.iter()
        .filter(|r| r.name == record)
        .map(|r| r.field(field))
        .collect()
}

fn names(recs: &[Rec]) -> Vec<&'static str> {
    recs.iter().map(|r| r.name).collect()
}

#[test]
fn a_tls13_client_hello_gives_its_server_name_and_protocols() {
    let input = tls13_client();
    let (recs, err) = parse_all(&input);
    assert_eq!(err, None);
    contiguous(&recs, input.len());
    assert_eq!(
        names(&recs),
        [
            "tls_record",
            "handshake",
            "client_hello",
            "extension",
            "server_name",
            "extension",
            "alpn_list",
            "alpn",
            "alpn",
            "extension",
            "extension_data",
            "extension",
            "extension_data",
            "extension",
            "extension_data",
            "tls_record",
            "fragment",
            "tls_record",
            "fragment",
        ]
    );
    let sni = recs.iter().find(|r| r.name == "server_name").unwrap();
    assert_eq!(sni.field("host_name"), b"example.com");
    assert_eq!(sni.field("rest"), b"");
    let protocols = all(&recs, "alpn", "name");
    assert_eq!(protocols, [&b"h2"[..], b"http/1.1"]);
    let hello = recs.iter().find(|r| r.name == "client_hello").unwrap();
    assert_eq!(hello.field("cipher_suites"), [0x13, 1, 0x13, 2, 0xc0, 0x2f]);
    assert_eq!(hello.field("session_id").len(), 32);
}

#[test]
fn a_tls13_server_hello_gives_the_version_chosen() {
    let input = tls13_server();
    let (recs, err) = parse_all(&input);
    assert_eq!(err, None);
    contiguous(&recs, input.len());
    let v = recs.iter().find(|r| r.name == "selected_version").unwrap();
    assert_eq!(v.field("version"), [3, 4]);
    let hello = recs.iter().find(|r| r.name == "server_hello").unwrap();
    assert_eq!(hello.field("cipher_suite"), [0x13, 1]);
    let alpn = all(&recs, "alpn", "name");
    assert_eq!(alpn, [&b"h2"[..]]);
    // After the ChangeCipherSpec, records are fragments.
    assert_eq!(
        names(&recs)[names(&recs).len() - 6..],
        [
            "tls_record",
            "fragment",
            "tls_record",
            "fragment",
            "tls_record",
            "fragment"
        ]
    );
}

#[test]
fn a_message_over_two_records_and_encrypted_handshakes_are_not_misread() {
    let input = tls12_server();
    let (recs, err) = parse_all(&input);
    assert_eq!(err, None);
    contiguous(&recs, input.len());
    // ServerHello (no extensions), the Certificate's header and first part,
    // its rest in the second record, ServerHelloDone, CCS, the encrypted
    // Finished as a fragment.
    assert_eq!(
        names(&recs),
        [
            "tls_record",
            "handshake",
            "server_hello",
            "handshake",
            "message_data",
            "tls_record",
            "message_data",
            "handshake",
            "tls_record",
            "fragment",
            "tls_record",
            "fragment",
        ]
    );
    let parts: usize = all(&recs, "message_data", "data")
        .iter()
        .map(|d| d.len())
        .sum();
    assert_eq!(parts, 20_000);
    let types = all(&recs, "handshake", "msg_type");
    assert_eq!(types, [&[2u8][..], &[11], &[14]]);
}

#[test]
fn bad_lengths_fail_at_their_field_after_every_good_record() {
    // A ServerHello and application data (no ChangeCipherSpec: handshake
    // records after it would be taken as encrypted).
    let good = [
        record(22, &server_hello(Some(&[ext(43, &[3, 4])]))),
        record(23, &[0x17; 50]),
    ]
    .concat();
    // An extension longer than the extensions: the second extension's
    // length field says 200 where 10 bytes are left.
    let mut bad_ext = client_hello(&[server_name("a.example"), ext(13, &[0; 6])]);
    let at = bad_ext.len() - 8;
    bad_ext[at..at + 2].copy_from_slice(&u16b(200));
    // A server name longer than its extension.
    let mut bad_name = client_hello(&[server_name("b.example")]);
    let name_len_at = bad_name.len() - 9 - 2;
    bad_name[name_len_at..name_len_at + 2].copy_from_slice(&u16b(60));
    let cases: [(Vec<u8>, &str, &str); 3] = [
        (
            record(22, &bad_ext),
            "ext_length",
            "extension longer than the extensions",
        ),
        (
            record(22, &bad_name),
            "name_length",
            "server name longer than its extension",
        ),
        (
            vec![0x19, 3, 3, 0, 1, 0],
            "content_type",
            "unknown content type",
        ),
    ];
    for (bad, field, message) in cases {
        let input = [&good[..], &bad].concat();
        let (recs, err) = parse_all(&input);
        let good_recs = parse_all(&good).0;
        assert_eq!(recs[..good_recs.len()], good_recs[..], "{message}");
        let err = err.unwrap_or_else(|| panic!("{message}: refused"));
        assert!(
            err.contains(&format!("field `{field}`")) && err.contains(message),
            "{err}"
        );
    }
}
