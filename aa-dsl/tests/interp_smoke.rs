//! The shipped CSV and HTTP grammars through the interpreter, at several cuts.

use aa_dsl::interp::Grammar;
use aa_runtime::csv::unquote;
use aa_runtime::*;

fn grammar(name: &str) -> std::sync::Arc<Grammar> {
    let path = format!("{}/../grammars/{name}.aag", env!("CARGO_MANIFEST_DIR"));
    Grammar::new(aa_dsl::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

type Recs = Vec<(String, Vec<Vec<u8>>)>;

/// Records (name, decoded fields), the error if any, and whether the pool is full.
fn run(g: &std::sync::Arc<Grammar>, input: &[u8], cut: usize) -> (Recs, Option<String>, bool) {
    let pool = PacketPool::new(4096, 2048);
    let mut s = AaStream::new(AaConfig::default(), 0, g.parser());
    let mut seq = 0u32;
    let mut out = Vec::new();
    let take = |s: &mut AaStream<PoolPacket, _>| {
        let recs: Vec<_> = s
            .read_aa_records(usize::MAX)
            .map(|r| {
                (
                    r.name().to_string(),
                    r.fields()
                        .map(|f| {
                            let mut v = Vec::new();
                            unquote(&f, b'"', &mut v);
                            v
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        s.free_aa_records(recs.len());
        recs
    };
    for c in input.chunks(cut.max(1)) {
        s.insert(seq, pool.packet_from(c).unwrap(), 0..c.len());
        seq += c.len() as u32;
        out.extend(take(&mut s));
    }
    s.finish();
    out.extend(take(&mut s));
    let err = s.error().map(|e| e.to_string());
    drop(s);
    (out, err, pool.is_full())
}

#[test]
fn csv_smoke() {
    let g = grammar("csv");
    for cut in [1, 2, 3, 7, 100] {
        let (recs, err, full) = run(&g, b"a,b\r\n\"x,\"\"y\",z\n\nlast,\"q\"", cut);
        assert_eq!(err, None);
        assert!(full);
        let want: Vec<(String, Vec<Vec<u8>>)> = vec![
            ("row".into(), vec![b"a".to_vec(), b"b".to_vec()]),
            ("row".into(), vec![b"x,\"y".to_vec(), b"z".to_vec()]),
            ("row".into(), vec![b"last".to_vec(), b"q".to_vec()]),
        ];
        assert_eq!(recs, want, "cut {cut}");
    }
}

#[test]
fn http_smoke() {
    let g = grammar("http_response");
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    for cut in [1, 2, 5, 1000] {
        let (recs, err, full) = run(&g, input, cut);
        assert_eq!(err, None, "cut {cut}");
        assert!(full);
        let names: Vec<_> = recs.iter().map(|r| r.0.as_str()).collect();
        let bodies: Vec<u8> = recs
            .iter()
            .filter(|r| r.0 == "body")
            .flat_map(|r| r.1[0].clone())
            .collect();
        assert_eq!(bodies, b"helloabcde", "cut {cut}: {names:?}");
        assert_eq!(
            recs.iter().filter(|r| r.0 == "response").count(),
            3,
            "{names:?}"
        );
    }
}
