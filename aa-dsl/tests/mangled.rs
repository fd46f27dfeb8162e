//! Grammar authors make typos: every shipped grammar, edited at random
//! (bytes and lines deleted, words and punctuation inserted, letters swapped),
//! goes through the parser and the checks without a panic. A rejected grammar
//! gets at least one diagnostic, each inside the source, and they render. An
//! accepted one generates Rust that parses, and its interpreter takes random
//! bytes in random segments without a panic, giving every packet back.

use aa_dsl::interp::Grammar;
use aa_runtime::{AaConfig, AaStream, PacketPool, PoolPacket};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const GRAMMARS: &[&str] = &[
    "csv",
    "http_request",
    "http_response",
    "resp",
    "tls",
    "mqtt",
    "tls_handshake",
];

/// Pieces an edit may insert: the language's words and punctuation, and a
/// few things it has no place for.
const PIECES: &[&str] = &[
    "record",
    "start",
    "var",
    "repeat",
    "until",
    "bytes",
    "chunk",
    "max",
    "count",
    "stop",
    "on",
    "empty",
    "after",
    "times",
    "then",
    "next",
    "end",
    "fail",
    "if",
    "else",
    "expect",
    "skip",
    "sync",
    "quoted",
    "eof",
    "or",
    "u8",
    "u16be",
    "u64le",
    "bool",
    "u64",
    "true",
    "false",
    "len",
    "dec",
    "hex",
    "trim",
    "ieq",
    "before",
    "{",
    "}",
    "(",
    ")",
    ";",
    ":",
    "=",
    "==",
    "|",
    "||",
    "&&",
    "!",
    "+",
    "-",
    "0",
    "1",
    "65535",
    "0xff",
    "99999999999999999999",
    "\"",
    "\"\\r\\n\"",
    "\"\"",
    "\"\\",
    "x",
    "body",
    "headers",
    "signal",
    "heard",
    "begin",
    "wait",
    "be",
    "le",
    "when",
    "&",
    "^",
    "<<",
    ">>",
    "16",
    "é",
    "\n",
    "//",
    " ",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Delete `len` bytes at (a fraction of) the source length.
    Delete(f64, usize),
    /// Insert piece `i` at a point.
    Insert(f64, usize),
    /// Swap two neighbouring bytes at a point.
    Swap(f64),
    /// Delete the line at a point.
    DropLine(f64),
    /// Repeat the line at a point.
    DupLine(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..12usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (at.clone(), 0..PIECES.len()).prop_map(|(a, i)| Edit::Insert(a, i)),
        at.clone().prop_map(Edit::Swap),
        at.clone().prop_map(Edit::DropLine),
        at.prop_map(Edit::DupLine),
    ]
}

/// The char boundary at or before fraction `a` of `s`.
fn point(s: &str, a: f64) -> usize {
    let mut i = ((s.len() as f64) * a) as usize;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn line_at(s: &str, a: f64) -> std::ops::Range<usize> {
    let i = point(s, a);
    let start = s[..i].rfind('\n').map_or(0, |j| j + 1);
    let end = s[i..].find('\n').map_or(s.len(), |j| i + j + 1);
    start..end
}

fn apply(mut s: String, edits: &[Edit]) -> String {
    for e in edits {
        match *e {
            Edit::Delete(a, n) => {
                let i = point(&s, a);
                let mut j = (i + n).min(s.len());
                while !s.is_char_boundary(j) {
                    j += 1;
                }
                s.replace_range(i..j, "");
            }
            Edit::Insert(a, p) => {
                let i = point(&s, a);
                s.insert_str(i, PIECES[p]);
            }
            Edit::Swap(a) => {
                let i = point(&s, a);
                let b = s.as_bytes();
                if i + 1 < b.len() && b[i].is_ascii() && b[i + 1].is_ascii() {
                    let (x, y) = (b[i] as char, b[i + 1] as char);
                    s.replace_range(i..i + 2, &format!("{y}{x}"));
                }
            }
            Edit::DropLine(a) => {
                let r = line_at(&s, a);
                s.replace_range(r, "");
            }
            Edit::DupLine(a) => {
                let r = line_at(&s, a);
                let line = s[r.clone()].to_string();
                s.insert_str(r.start, &line);
            }
        }
    }
    s
}

/// Random bytes, biased towards what the shipped grammars look for.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"\r\n,\": ;0123456789abcdefHTP/.*$+-".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..400)
}

/// Runs `g`'s interpreter over `data` cut into pieces of the lengths in
/// `cuts` (cycled), reading and freeing every record; the pool must be full
/// once the stream is gone.
fn run(g: &std::sync::Arc<Grammar>, data: &[u8], cuts: &[usize]) {
    let pool = PacketPool::new(512, 512);
    let mut s: AaStream<PoolPacket, _> = AaStream::new(AaConfig::default(), 7, g.parser());
    let mut seq = 7u32;
    let (mut at, mut k) = (0, 0);
    while at < data.len() {
        let n = cuts[k % cuts.len()].min(data.len() - at);
        k += 1;
        let pkt = pool
            .packet_from(&data[at..at + n])
            .expect("pool sized for the input");
        s.insert(seq, pkt, 0..n);
        seq = seq.wrapping_add(n as u32);
        at += n;
        let n = s.read_aa_records(usize::MAX).count();
        s.free_aa_records(n);
    }
    s.finish();
    let n = s.read_aa_records(usize::MAX).count();
    s.free_aa_records(n);
    drop(s);
    assert!(pool.is_full(), "every packet back in the pool");
}

proptest! {
    // `MANGLED_CASES=N` runs N cases instead of 400 (a longer hunt).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MANGLED_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mangled_grammars_are_rejected_clearly_or_run(
        which in 0..GRAMMARS.len(),
        edits in prop::collection::vec(edit(), 1..4),
        data in input(),
        cuts in prop::collection::vec(1..64usize, 1..4),
    ) {
        let name = GRAMMARS[which];
        let path = format!("{}/../grammars/{name}.aag", env!("CARGO_MANIFEST_DIR"));
        let src = apply(std::fs::read_to_string(&path).unwrap(), &edits);
        match aa_dsl::compile_str(&src) {
            Err(diags) => {
                prop_assert!(!diags.is_empty(), "rejected without a diagnostic");
                for d in &diags {
                    prop_assert!(
                        d.span.start <= d.span.end && d.span.end <= src.len(),
                        "span {:?} outside a {}-byte source", d.span, src.len()
                    );
                }
                let out = aa_dsl::diag::render_all(&diags, "mangled.aag", &src);
                prop_assert!(out.contains("mangled.aag:"), "no location in:\n{out}");
            }
            Ok(p) => {
                let code = aa_dsl::codegen::generate(&p);
                prop_assert!(syn::parse_file(&code).is_ok(), "generated code does not parse");
                run(&Grammar::new(p), &data, &cuts);
            }
        }
    }
}
