//! Bitwise operators, `be`/`le` and `stop when` in the generated and
//! interpreted parsers: fields of 0 to 8 bytes read as big- and
//! little-endian integers, shifts of 0 to 255 bits (64 and more give 0),
//! masks, the operators' order, and variable-length integers of 1 to 4
//! bytes (`tests/varint.aag`).
//! The expected values are computed here, in Rust, from the input; each
//! stream is fed whole and cut into packets of 1 and 3 bytes, so that the
//! fields span packets. A field of more than 8 bytes under `be` fails the
//! stream at the field's offset, the records before it delivered.

use aa_dsl::interp::Grammar;
use std::sync::Arc;

mod common;

/// `tests/bits.aag`, compiled by build.rs.
#[allow(dead_code)]
mod bits {
    include!(concat!(env!("OUT_DIR"), "/bits.rs"));
}

/// `tests/varint.aag`, compiled by build.rs.
#[allow(dead_code)]
mod varint {
    include!(concat!(env!("OUT_DIR"), "/varint.rs"));
}

type Either = aa_runtime::Either<bits::BitsParser, aa_dsl::interp::Interp>;

/// The record variables of `bits.aag`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Vals {
    big: u64,
    little: u64,
    left: u64,
    right: u64,
    masked: u64,
    nibble: u64,
    odd: u64,
    order: u64,
}

/// What the grammar's actions say of a record `[n, shift, data...]`.
fn expected(shift: u8, data: &[u8]) -> Vals {
    let mut b8 = [0u8; 8];
    b8[8 - data.len()..].copy_from_slice(data);
    let big = u64::from_be_bytes(b8);
    let mut l8 = [0u8; 8];
    l8[..data.len()].copy_from_slice(data);
    let little = u64::from_le_bytes(l8);
    let s = u32::from(shift);
    Vals {
        big,
        little,
        left: if s < 64 { big << s } else { 0 },
        right: if s < 64 { little >> s } else { 0 },
        masked: ((big ^ little) & 0xffff) | (u64::from(shift) << 16),
        nibble: u64::from(shift >> 4),
        odd: u64::from(shift & 1),
        // Left to right, it would be `((1 | shift) & 3) ^ 1 == 3`, which
        // differs at shifts 2 and 6.
        order: u64::from((1 | ((shift & 3) ^ 1)) == 3),
    }
}

fn grammar() -> Arc<Grammar> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bits.aag");
    Grammar::new(aa_dsl::load(path).unwrap_or_else(|e| panic!("{e}")))
}

fn parsers(g: &Arc<Grammar>) -> [(&'static str, Either); 2] {
    [
        ("generated", Either::Left(bits::BitsParser::new())),
        ("interpreted", Either::Right(g.parser())),
    ]
}

/// The values of every record, and the error, for `input` cut into packets
/// of `cut` bytes. The pool ends full.
fn run(parser: Either, input: &[u8], cut: usize) -> (Vec<Vals>, Option<String>) {
    let mut out = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        let v = |tag| r.value(tag).expect("every variable is stored");
        out.push(Vals {
            big: v(0),
            little: v(1),
            left: v(2),
            right: v(3),
            masked: v(4),
            nibble: v(5),
            odd: v(6),
            order: v(7),
        });
    });
    (out, err)
}

#[test]
fn bitwise_operators_and_byte_order_at_every_cut() {
    const SHIFTS: [u8; 11] = [0, 1, 2, 6, 7, 8, 63, 64, 65, 200, 255];
    let (mut input, mut want) = (Vec::new(), Vec::new());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..=8u8 {
        for shift in SHIFTS {
            let data: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            input.extend_from_slice(&[n, shift]);
            input.extend_from_slice(&data);
            want.push(expected(shift, &data));
        }
    }
    // An all-ones word and a lone top bit, where sign or overflow mistakes show.
    for data in [[0xffu8; 8], [0x80, 0, 0, 0, 0, 0, 0, 0]] {
        input.extend_from_slice(&[8, 63]);
        input.extend_from_slice(&data);
        want.push(expected(63, &data));
    }
    let g = grammar();
    for cut in [input.len(), 1, 3] {
        for (name, p) in parsers(&g) {
            let (got, err) = run(p, &input, cut);
            assert_eq!(err, None, "{name}, cut {cut}");
            assert_eq!(got.len(), want.len(), "{name}, cut {cut}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{name}, record {i}, cut {cut}");
            }
        }
    }
}

#[test]
fn more_than_eight_bytes_fail_at_the_field() {
    // Three good records (of 2, 2 and 0 bytes), then one whose 9 bytes do
    // not fit in 64 bits: its `data` starts at offset 4 + 4 + 2 + 2 = 12.
    let mut input = vec![2, 0, 0xab, 0xcd, 2, 0, 1, 2, 0, 0, 9, 0];
    input.extend_from_slice(&[7; 9]);
    let g = grammar();
    for cut in [input.len(), 1, 3] {
        for (name, p) in parsers(&g) {
            let (got, err) = run(p, &input, cut);
            assert_eq!(
                got,
                vec![
                    expected(0, &[0xab, 0xcd]),
                    expected(0, &[1, 2]),
                    expected(0, &[])
                ],
                "{name}, cut {cut}: the records before the error"
            );
            let err = err.expect("nine bytes fail the stream");
            assert!(
                err.contains("offset 12") && err.contains("64 bits") && err.contains("data"),
                "{name}, cut {cut}: {err}"
            );
        }
    }
}

/// `value` in 7-bit groups, low first, the top bit on all but the last.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// `(size, marker, number of length bytes)` of every `msg` record of
/// `varint.aag` in `input` cut into packets of `cut` bytes, and the error.
/// The pool ends full.
fn run_varint(
    parser: aa_runtime::Either<varint::VarintParser, aa_dsl::interp::Interp>,
    input: &[u8],
    cut: usize,
) -> (Vec<(u64, u64, usize)>, Option<String>) {
    let mut out = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        match varint::VarintRecord::from_record(r) {
            Some(varint::VarintRecord::Msg(m)) => {
                let marker = m.marker().and_then(|f| f.byte_at(0)).expect("a marker");
                out.push((m.size().unwrap(), u64::from(marker), m.len().count()));
            }
            // A `words` record: its words' lengths, as one number.
            Some(varint::VarintRecord::Words(w)) => {
                let lens = w.w().fold(0, |n, f| n * 10 + f.len());
                out.push((lens, 0, w.w().count()));
            }
            None => panic!("not a record of varint.aag"),
        }
    });
    (out, err)
}

fn varint_parsers() -> [(
    &'static str,
    aa_runtime::Either<varint::VarintParser, aa_dsl::interp::Interp>,
); 2] {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/varint.aag");
    let g = Grammar::new(aa_dsl::load(path).unwrap_or_else(|e| panic!("{e}")));
    [
        (
            "generated",
            aa_runtime::Either::Left(varint::VarintParser::new()),
        ),
        ("interpreted", aa_runtime::Either::Right(g.parser())),
    ]
}

#[test]
fn stop_when_reads_lengths_of_one_to_four_bytes_at_every_cut() {
    // The edges of each length: 1 byte up to 127, 2 up to 16383, 3 up to
    // 2097151, 4 up to 268435455.
    let values = [
        0u64,
        1,
        127,
        128,
        300,
        16_383,
        16_384,
        2_097_151,
        2_097_152,
        268_435_455,
    ];
    let (mut input, mut want) = (Vec::new(), Vec::new());
    for (i, &v) in values.iter().enumerate() {
        let bytes = varint(v);
        input.extend_from_slice(&bytes);
        input.push(i as u8);
        want.push((v, i as u64, bytes.len()));
    }
    // A last byte of 0 after continuation bytes ends the length too.
    input.extend_from_slice(&[0x85, 0x80, 0x00, 42]);
    want.push((5, 42, 3));
    for cut in [input.len(), 1, 3] {
        for (name, p) in varint_parsers() {
            let (got, err) = run_varint(p, &input, cut);
            assert_eq!(err, None, "{name}, cut {cut}");
            assert_eq!(got, want, "{name}, cut {cut}");
        }
    }
}

#[test]
fn a_length_longer_than_four_bytes_fails_at_the_fourth() {
    // One good message (3 bytes), then four bytes that all say "more": the
    // count of 4 is reached at the fourth, at offset 3 + 3 = 6.
    let input = [0x81, 0x01, 7, 0xff, 0xff, 0xff, 0xff, 0x01, 9];
    for cut in [input.len(), 1, 2] {
        for (name, p) in varint_parsers() {
            let (got, err) = run_varint(p, &input, cut);
            assert_eq!(got, vec![(129, 7, 2)], "{name}, cut {cut}");
            let err = err.expect("a fourth byte saying \"more\" fails the stream");
            assert!(
                err.contains("offset 6") && err.contains("`len`: more than 4"),
                "{name}, cut {cut}: {err}"
            );
        }
    }
}

#[test]
fn stop_when_reads_the_element_s_bytes() {
    // After a marker of 255: words up to "end" (kept), or up to a word
    // longer than 5 bytes (kept), each list a `words` record.
    let input = b"\x00\xffab,c,end,\x00\xffxyz,abcdef,\x01\x07";
    let want = vec![(0, 255, 1), (213, 0, 3), (0, 255, 1), (36, 0, 2), (1, 7, 1)];
    for cut in [input.len(), 1, 2, 5] {
        for (name, p) in varint_parsers() {
            let (got, err) = run_varint(p, input, cut);
            assert_eq!(err, None, "{name}, cut {cut}");
            assert_eq!(got, want, "{name}, cut {cut}");
        }
    }
}
