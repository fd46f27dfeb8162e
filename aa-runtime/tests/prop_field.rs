//! Property tests of [`Field`] operations on fields that span many packets,
//! against a naive oracle on the copied bytes (`field.to_vec()`, itself checked
//! against the input at the field's stream offset).
//!
//! Fields come from the CSV parser over input cut into tiny packets, so most
//! fields straddle several packet boundaries; needles are taken across those
//! boundaries, in every length class of `find` (1, 2..=65 through the stack
//! buffer, longer byte by byte).

use aa_runtime::csv::CsvParser;
use aa_runtime::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

mod common;
use common::Rng;

type Csv = AaStream<PoolPacket, CsvParser>;

const SPECIALS: &[&str] = &[
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "18446744073709551620",
    "99999999999999999999",
    "184467440737095516150",
    "00000000000000000000000000042",
    "ffffffffffffffff",
    "FFFFFFFFFFFFFFFF0",
    "10000000000000000",
    "0000000000000000ffffffffffffffff",
    "+5",
    "-5",
    "+",
    "-",
    "0x1f",
    "1_000",
    "12 ",
    " 12",
    "1e3",
    "\u{663}",
    "\u{ff11}",
];

const JUNK: &[&str] = &["", "", "+", "-", " ", "x", "0x", ".", "_", "g", "\u{e9}"];

fn field_text() -> impl Strategy<Value = Vec<u8>> {
    let dec = prop::collection::vec(prop::sample::select(b"0123456789".to_vec()), 1..26);
    let hex = prop::collection::vec(
        prop::sample::select(b"0123456789abcdefABCDEF".to_vec()),
        1..22,
    );
    let special = prop::sample::select(SPECIALS).prop_map(|s| s.as_bytes().to_vec());
    let junky = (
        prop::sample::select(JUNK),
        prop::collection::vec(prop::sample::select(b"0123456789aF".to_vec()), 0..22),
        prop::sample::select(JUNK),
    )
        .prop_map(|(a, d, b)| [a.as_bytes(), &d, b.as_bytes()].concat());
    let ab = prop::collection::vec(prop::sample::select(b"abAB".to_vec()), 0..300);
    let long = prop::collection::vec(
        prop::sample::select(b"abcdefghABCDEFGH0123456789 ;".to_vec()),
        60..500,
    );
    let quoted = prop::collection::vec(prop::sample::select(b"ab\",\n".to_vec()), 0..80);
    prop_oneof![
        3 => dec,
        2 => hex,
        2 => special,
        2 => junky,
        3 => ab,
        2 => long,
        1 => quoted,
    ]
}

/// CSV text for rows of field values (quoted where needed, `""` doubled).
fn serialize(rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        for (j, f) in row.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let quote = f.first() == Some(&b'"')
                || f.iter().any(|&b| matches!(b, b',' | b'\n' | b'\r'))
                || f.is_empty() && row.len() == 1;
            if quote {
                out.push(b'"');
                for &b in f {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(f);
            }
        }
        out.push(b'\n');
    }
    out
}

fn rows() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(prop::collection::vec(field_text(), 1..5), 1..5)
}

// ---------------------------------------------------------------------------
// Oracles

fn naive_find(h: &[u8], n: &[u8]) -> Option<u64> {
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n).map(|i| i as u64)
}

fn naive_parse(v: &[u8], radix: u32) -> Result<u64, IntError> {
    if v.is_empty() {
        return Err(IntError::Empty);
    }
    let mut x: u64 = 0;
    for (i, &b) in v.iter().enumerate() {
        let d = (b as char)
            .to_digit(radix)
            .ok_or(IntError::InvalidDigit { at: i as u64 })?;
        x = x
            .checked_mul(radix as u64)
            .and_then(|x| x.checked_add(d as u64))
            .ok_or(IntError::Overflow)?;
    }
    Ok(x)
}

/// `u64::from_str_radix` agrees wherever it applies (it also takes a `+` sign,
/// which the field API does not).
fn std_agrees(v: &[u8], radix: u32, got: Result<u64, IntError>) {
    if v.first() == Some(&b'+') {
        return;
    }
    let Ok(s) = std::str::from_utf8(v) else {
        return;
    };
    use std::num::IntErrorKind as K;
    match (u64::from_str_radix(s, radix), got) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(e), Err(IntError::Empty)) => assert_eq!(*e.kind(), K::Empty),
        (Err(e), Err(IntError::InvalidDigit { .. })) => assert_eq!(*e.kind(), K::InvalidDigit),
        (Err(e), Err(IntError::Overflow)) => assert_eq!(*e.kind(), K::PosOverflow),
        (a, b) => panic!("{s:?} radix {radix}: std {a:?}, field {b:?}"),
    }
}

fn flip_case(v: &[u8], rng: &mut Rng) -> Vec<u8> {
    v.iter()
        .map(|&b| {
            if rng.chance(50) {
                if b.is_ascii_lowercase() {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            } else {
                b
            }
        })
        .collect()
}

fn random_needle(rng: &mut Rng, len: usize) -> Vec<u8> {
    const ALPHA: &[u8] = b"abAB0123456789;";
    (0..len)
        .map(|_| ALPHA[rng.below(ALPHA.len() as u64) as usize])
        .collect()
}

// ---------------------------------------------------------------------------
// One field against the oracle

fn check_field(f: &Field<'_, PoolPacket>, input: &[u8], rng: &mut Rng) {
    let v = f.to_vec();
    let len = v.len();
    let off = f.offset() as usize;
    assert_eq!(
        &v[..],
        &input[off..off + len],
        "bytes at the field's offset"
    );
    assert_eq!(f.len(), len as u64);
    assert_eq!(f.is_empty(), len == 0);

    // Chunks: non-empty, one per packet, concatenating to the bytes.
    let chunks: Vec<&[u8]> = f.chunks().collect();
    assert!(chunks.iter().all(|c| !c.is_empty()));
    assert_eq!(chunks.concat(), v);
    assert_eq!(f.packets(), chunks.len());
    // Field indices where a new packet starts.
    let mut bounds = Vec::new();
    let mut at = 0;
    for c in &chunks[..chunks.len().saturating_sub(1)] {
        at += c.len();
        bounds.push(at);
    }

    // byte_at, in range and beyond.
    for i in 0..len as u64 + 3 {
        assert_eq!(f.byte_at(i), v.get(i as usize).copied(), "byte_at({i})");
    }
    assert_eq!(f.byte_at(u64::MAX), None);

    // Equality.
    assert!(f.eq_bytes(&v));
    assert!(f.eq_ignore_ascii_case(&v));
    let flipped = flip_case(&v, rng);
    assert!(f.eq_ignore_ascii_case(&flipped));
    assert_eq!(f.eq_bytes(&flipped), flipped == v);
    let mut longer = v.clone();
    longer.push(b'a');
    assert!(!f.eq_bytes(&longer) && !f.eq_ignore_ascii_case(&longer));
    assert!(!f.starts_with(&longer) && !f.starts_with_ignore_ascii_case(&longer));
    if len > 0 {
        assert!(!f.eq_bytes(&v[..len - 1]));
        assert!(!f.eq_ignore_ascii_case(&v[..len - 1]));
        let mut changed = v.clone();
        let i = rng.below(len as u64) as usize;
        changed[i] ^= 0x01;
        assert!(!f.eq_bytes(&changed));
        assert_eq!(
            f.eq_ignore_ascii_case(&changed),
            v.eq_ignore_ascii_case(&changed)
        );
    }

    // Prefixes: of the field (flipped too, altered at the end), and random.
    for _ in 0..4 {
        let k = rng.below(len as u64 + 1) as usize;
        assert!(f.starts_with(&v[..k]));
        assert!(f.starts_with_ignore_ascii_case(&flip_case(&v[..k], rng)));
        if k > 0 {
            let mut p = v[..k].to_vec();
            p[k - 1] ^= 0x01;
            assert!(!f.starts_with(&p));
        }
    }
    for &b in &bounds {
        // Prefixes ending just before, at and after a packet boundary.
        for k in [b - 1, b, b + 1] {
            if k <= len {
                assert!(f.starts_with(&v[..k]));
            }
        }
    }
    for _ in 0..6 {
        let k = rng.below(8) as usize;
        let n = random_needle(rng, k);
        assert_eq!(f.eq_bytes(&n), n == v);
        assert_eq!(f.eq_ignore_ascii_case(&n), n.eq_ignore_ascii_case(&v));
        assert_eq!(f.starts_with(&n), v.starts_with(&n));
        assert_eq!(
            f.starts_with_ignore_ascii_case(&n),
            len >= n.len() && v[..n.len()].eq_ignore_ascii_case(&n)
        );
    }

    // find: empty needle, the field itself, one byte longer than the field.
    assert_eq!(f.find(b""), Some(0));
    if len > 0 {
        assert_eq!(f.find(&v), Some(0));
    }
    assert_eq!(f.find(&longer), None);
    // Substrings in every length class, anywhere and across boundaries.
    let classes: [(usize, usize); 6] = [(1, 1), (2, 8), (9, 63), (64, 66), (67, 140), (141, 400)];
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for &(lo, hi) in &classes {
        if len < lo {
            continue;
        }
        let hi = hi.min(len);
        for _ in 0..2 {
            let n = rng.range(lo as u64, hi as u64) as usize;
            let a = rng.below((len - n) as u64 + 1) as usize;
            needles.push(v[a..a + n].to_vec());
        }
        if !bounds.is_empty() {
            // Straddling a packet boundary.
            let b = bounds[rng.below(bounds.len() as u64) as usize];
            let n = rng.range(lo as u64, hi as u64) as usize;
            if n >= 2 {
                // Anywhere across the boundary, and with one byte on either side.
                let any = rng.range(1, (n - 1).min(b) as u64) as usize;
                for before in [any, 1, n - 1] {
                    if before <= b && b - before + n <= len {
                        let a = b - before;
                        needles.push(v[a..a + n].to_vec());
                    }
                }
            }
        }
    }
    for n in [1usize, 2, 3, 5, 8, 64, 65, 66, 100] {
        needles.push(random_needle(rng, n));
        // A substring with its last byte changed: a near miss.
        if len >= n {
            let a = rng.below((len - n) as u64 + 1) as usize;
            let mut m = v[a..a + n].to_vec();
            m[n - 1] = b'#';
            needles.push(m);
        }
    }
    for n in &needles {
        assert_eq!(
            f.find(n),
            naive_find(&v, n),
            "find of a {}-byte needle in a {len}-byte field over {} packets",
            n.len(),
            chunks.len()
        );
    }

    // Integers.
    for radix in [10u32, 16] {
        let got = if radix == 10 {
            f.parse_dec()
        } else {
            f.parse_hex()
        };
        assert_eq!(
            got,
            naive_parse(&v, radix),
            "radix {radix} of {:?}",
            v.escape_ascii().to_string()
        );
        std_agrees(&v, radix, got);
    }

    // copy_to with short, exact and long buffers; bytes past the copy untouched.
    let sizes = [
        0,
        1,
        len.saturating_sub(1),
        len,
        len + 7,
        rng.below(len as u64 + 10) as usize,
    ];
    for size in sizes {
        let mut buf = vec![0xA5u8; size];
        let n = f.copy_to(&mut buf);
        assert_eq!(n, size.min(len));
        assert_eq!(&buf[..n], &v[..n]);
        assert!(buf[n..].iter().all(|&b| b == 0xA5));
    }
}

// ---------------------------------------------------------------------------
// The stream

const MAX_HDR: usize = 8;

fn fields_case(rows: &[Vec<Vec<u8>>], seed: u64) {
    let mut rng = Rng(seed);
    let input = serialize(rows);
    let max = [1u64, 2, 3, 5, 80, 200][rng.below(6) as usize];
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = (rng.range(1, max) as usize).min(input.len() - at);
        cuts.push(at..at + n);
        at += n;
    }
    let pool = PacketPool::new(cuts.len() as u32 + 1, max as usize + MAX_HDR);
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: 1 << 20,
            max_fragments: 1 << 16,
            max_ooo_bytes: 1 << 20,
            max_ooo_fragments: 1 << 16,
        },
        ..AaConfig::default()
    };
    let isn = rng.next() as u32;
    let mut s: Csv = AaStream::new(cfg, isn, CsvParser::default());
    for r in &cuts {
        let hdr = rng.below(MAX_HDR as u64 + 1) as usize;
        let mut frame: Vec<u8> = (0..hdr).map(|_| rng.next() as u8).collect();
        frame.extend_from_slice(&input[r.clone()]);
        let p = pool
            .packet_from(&frame)
            .expect("pool sized for every packet");
        let res = s.insert(isn.wrapping_add(r.start as u32), p, hdr..frame.len());
        assert!(matches!(res, Insert::InOrder { .. }), "{res:?}");
    }
    s.finish();
    assert_eq!(s.state(), AaState::Ended);
    let mut nrec = 0;
    let mut nfields = 0;
    for (rec, want) in s.read_aa_records(usize::MAX).zip(rows) {
        nrec += 1;
        assert_eq!(rec.len(), want.len());
        for (f, w) in rec.fields().zip(want) {
            nfields += 1;
            let mut value = Vec::new();
            aa_runtime::csv::unquote(&f, b'"', &mut value);
            assert_eq!(&value, w, "field value");
            check_field(&f, &input, &mut rng);
        }
    }
    assert_eq!(nrec, rows.len());
    assert!(nfields > 0);
    assert_eq!(s.free_aa_records(usize::MAX), nrec);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 120,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn field_operations_match_the_copied_bytes(rows in rows(), seed in any::<u64>()) {
        fields_case(&rows, seed);
    }
}

/// Integers at the edges of `u64`, each cut into one-byte packets.
#[test]
fn integer_edges_across_one_byte_packets() {
    type Int = Result<u64, IntError>;
    let cases: &[(&str, Int, Int)] = &[
        (
            "18446744073709551615",
            Ok(u64::MAX),
            Err(IntError::Overflow),
        ),
        (
            "18446744073709551616",
            Err(IntError::Overflow),
            Err(IntError::Overflow),
        ),
        (
            "ffffffffffffffff",
            Err(IntError::InvalidDigit { at: 0 }),
            Ok(u64::MAX),
        ),
        (
            "10000000000000000",
            Ok(10_000_000_000_000_000),
            Err(IntError::Overflow),
        ),
        ("0000000000000000000000042", Ok(42), Ok(0x42)),
        (
            "12x",
            Err(IntError::InvalidDigit { at: 2 }),
            Err(IntError::InvalidDigit { at: 2 }),
        ),
        (
            "+5",
            Err(IntError::InvalidDigit { at: 0 }),
            Err(IntError::InvalidDigit { at: 0 }),
        ),
        (
            "-5",
            Err(IntError::InvalidDigit { at: 0 }),
            Err(IntError::InvalidDigit { at: 0 }),
        ),
        (
            "99999999999999999999x",
            Err(IntError::Overflow),
            Err(IntError::Overflow),
        ),
        (
            "1844674407370955161x",
            Err(IntError::InvalidDigit { at: 19 }),
            Err(IntError::Overflow),
        ),
    ];
    let mut input = Vec::new();
    for (text, _, _) in cases {
        input.extend_from_slice(text.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(b"\"\"\n");
    let pool = PacketPool::new(input.len() as u32 + 1, 4);
    let cfg = AaConfig {
        stream: StreamConfig {
            max_fragments: 1 << 16,
            ..StreamConfig::default()
        },
        ..AaConfig::default()
    };
    let mut s: Csv = AaStream::new(cfg, 7, CsvParser::default());
    for (i, &b) in input.iter().enumerate() {
        let p = pool.packet_from(&[0, b]).unwrap();
        s.insert(7 + i as u32, p, 1..2);
    }
    s.finish();
    let recs: Vec<_> = s.read_aa_records(usize::MAX).collect();
    assert_eq!(recs.len(), cases.len() + 1);
    for (r, (text, dec, hex)) in recs.iter().zip(cases) {
        let f = r.field(0).unwrap();
        assert_eq!(f.packets(), text.len());
        assert_eq!(f.parse_dec(), *dec, "{text} dec");
        assert_eq!(f.parse_hex(), *hex, "{text} hex");
    }
    let empty = recs[cases.len()].field(0).unwrap();
    assert_eq!(empty.parse_dec(), Err(IntError::Empty));
    assert_eq!(empty.parse_hex(), Err(IntError::Empty));
    drop(recs);
    s.free_aa_records(usize::MAX);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}
