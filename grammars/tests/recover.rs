//! Resynchronising after a parser error (`AaStream::recover_from_errors`):
//! the generated parsers and the interpreter give the same records, the error
//! is counted and kept, and the stream goes on at the grammar's next sync point.

use aa_dsl::interp::Grammar;
use aa_grammars::{http_request, http_response};
use aa_runtime::{AaConfig, AaState, AaStream, Insert, PacketPool, Parser};

type Rec = (&'static str, Vec<Vec<u8>>);

/// Parses `input` cut into `cut`-byte packets with error recovery on;
/// returns the records, the error count and the last error's display.
fn run<R: Parser>(parser: R, input: &[u8], cut: usize) -> (Vec<Rec>, u64, String) {
    let pool = PacketPool::new(input.len() as u32 / cut as u32 + 2, cut);
    let mut cfg = AaConfig::default();
    // One-byte packets: a record in progress holds thousands of them.
    cfg.stream.max_fragments = 1 << 20;
    cfg.stream.recv_buffer = 1 << 24;
    let mut s = AaStream::new(cfg, 0, parser);
    s.recover_from_errors(true);
    let mut recs = Vec::new();
    for (i, piece) in input.chunks(cut).enumerate() {
        let r = s.insert(
            (i * cut) as u32,
            pool.packet_from(piece).unwrap(),
            0..piece.len(),
        );
        assert!(matches!(r, Insert::InOrder { .. }), "{r:?}");
        let n = s.ready();
        recs.extend(
            s.read_aa_records(n)
                .map(|r| (r.name(), r.fields().map(|f| f.to_vec()).collect())),
        );
        s.free_aa_records(n);
    }
    s.finish();
    let n = s.ready();
    recs.extend(
        s.read_aa_records(n)
            .map(|r| (r.name(), r.fields().map(|f| f.to_vec()).collect())),
    );
    s.free_aa_records(n);
    assert_eq!(s.state(), AaState::Ended, "{:?}", s.error());
    let (errors, last) = (s.stats().errors, s.error().map(|e| e.to_string()));
    drop(s);
    assert!(pool.is_full());
    (recs, errors, last.unwrap_or_default())
}

fn grammar(name: &str) -> std::sync::Arc<Grammar> {
    let path = format!("{}/{name}.aag", env!("CARGO_MANIFEST_DIR"));
    Grammar::new(aa_dsl::load(&path).unwrap())
}

fn targets(recs: &[Rec], record: &str, field: usize) -> Vec<Vec<u8>> {
    recs.iter()
        .filter(|r| r.0 == record)
        .map(|r| r.1[field].clone())
        .collect()
}

#[test]
fn a_request_after_an_over_long_header_is_parsed() {
    let input = format!(
        "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nX: {}\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /d HTTP/1.1\r\n\r\n",
        "y".repeat(9000)
    );
    let g = grammar("http_request");
    for cut in [1, 7, 100, 1448, 4096] {
        let compiled = run(
            http_request::HttpRequestParser::new(),
            input.as_bytes(),
            cut,
        );
        let interpreted = run(g.parser(), input.as_bytes(), cut);
        assert_eq!(compiled, interpreted, "cut {cut}");
        let (recs, errors, last) = compiled;
        assert_eq!(errors, 1, "cut {cut}");
        assert!(
            last.contains("field `headers`") && last.contains("8192"),
            "{last}"
        );
        assert_eq!(
            targets(&recs, "request", 1),
            [b"/a".to_vec(), b"/c".to_vec(), b"/d".to_vec()],
            "cut {cut}"
        );
    }
}

#[test]
fn a_response_after_a_bad_content_length_is_parsed() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let g = grammar("http_response");
    for cut in [1, 5, 64, 1448] {
        let compiled = run(http_response::HttpResponseParser::new(), input, cut);
        let interpreted = run(g.parser(), input, cut);
        assert_eq!(compiled, interpreted, "cut {cut}");
        let (recs, errors, _) = compiled;
        assert_eq!(errors, 1, "cut {cut}");
        assert_eq!(
            targets(&recs, "response", 1),
            [b"200".to_vec(), b"404".to_vec()],
            "cut {cut}"
        );
    }
}

/// What an application reading records and errors in stream order sees:
/// `input` in `cut`-byte packets; after each packet the errors taken
/// (`take_error`) go among the records by their `before`. Each entry is a
/// response's status, or `error at OFFSET`.
fn timeline<R: Parser>(parser: R, input: &[u8], cut: usize) -> (Vec<String>, u64) {
    let pool = PacketPool::new(input.len() as u32 / cut as u32 + 2, cut);
    let mut s = AaStream::new(AaConfig::default(), 0, parser);
    s.recover_from_errors(true);
    let mut out = Vec::new();
    let mut drain = |s: &mut AaStream<_, R>| {
        let errors: Vec<_> = std::iter::from_fn(|| s.take_error()).collect();
        let mut e = errors.iter().peekable();
        let n = s.ready();
        for r in s.read_aa_records(n) {
            while let Some(err) = e.next_if(|err| err.before <= r.id()) {
                out.push(format!("error at {}", err.error.offset));
            }
            if r.name() == "response" {
                out.push(String::from_utf8(r.field(1).unwrap().to_vec()).unwrap());
            }
        }
        out.extend(e.map(|err| format!("error at {}", err.error.offset)));
        s.free_aa_records(n);
    };
    for (i, piece) in input.chunks(cut).enumerate() {
        let at = (i * cut) as u32;
        s.insert(at, pool.packet_from(piece).unwrap(), 0..piece.len());
        drain(&mut s);
    }
    s.finish();
    drain(&mut s);
    let errors = s.stats().errors;
    drop(s);
    assert!(pool.is_full());
    (out, errors)
}

#[test]
fn errors_come_among_the_records_in_stream_order() {
    let good = |code: &str| format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\n\r\nhi");
    let bad = "HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\n";
    let input = [
        good("200"),
        bad.into(),
        good("201"),
        bad.into(),
        good("404"),
    ]
    .concat();
    // The bad Content-Length values, where `x` is.
    let x = |k: usize| input.match_indices("x1").nth(k).unwrap().0;
    let want = [
        "200".to_string(),
        format!("error at {}", x(0)),
        "201".into(),
        format!("error at {}", x(1)),
        "404".into(),
    ];
    let g = grammar("http_response");
    for cut in [input.len(), 1448, 40, 1] {
        for (out, errors) in [
            timeline(
                http_response::HttpResponseParser::new(),
                input.as_bytes(),
                cut,
            ),
            timeline(g.parser(), input.as_bytes(), cut),
        ] {
            assert_eq!(out, want, "cut {cut}");
            assert_eq!(errors, 2, "cut {cut}");
        }
    }
}

#[test]
fn a_stream_keeps_its_latest_errors_up_to_the_cap() {
    let bad = "HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\n";
    let n = aa_runtime::MAX_PENDING_ERRORS + 4;
    let input = [bad.repeat(n), "HTTP/1.1 204 No\r\n\r\n".into()].concat();
    let (out, errors) = timeline(
        http_response::HttpResponseParser::new(),
        input.as_bytes(),
        input.len(),
    );
    assert_eq!(errors, n as u64, "every error counted");
    // One packet: the oldest four were dropped from the queue, the rest are
    // in order, then the good response.
    let x: Vec<usize> = input.match_indices("x1").map(|m| m.0).collect();
    let want: Vec<String> = x[4..]
        .iter()
        .map(|o| format!("error at {o}"))
        .chain(["204".to_string()])
        .collect();
    assert_eq!(out, want);
}
