//! What the generated and interpreted parsers' actions compute from field bytes: every test
//! against a literal at the edges (exact length, longer, shorter, case), the
//! header-name test, `before`/`after`/`trim`, and numbers, with the error of a
//! bad number at its offset. Each line is fed whole, in one packet, and cut
//! into packets of 1 and 3 bytes, so that the fields read span packets; the
//! values must not depend on the cut.

use aa_dsl::interp::Grammar;
use std::sync::Arc;

mod common;

/// `tests/actions.aag`, compiled by build.rs.
#[allow(dead_code)]
mod acts {
    include!(concat!(env!("OUT_DIR"), "/acts.rs"));
}

/// The record variables of `actions.aag`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Vals {
    eq: u64,
    ieq: u64,
    pre: u64,
    ipre: u64,
    has: u64,
    ihas: u64,
    key: u64,
    trimmed: u64,
    before: u64,
    after: u64,
    num: u64,
}

fn grammar() -> Arc<Grammar> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/actions.aag");
    Grammar::new(aa_dsl::load(path).unwrap_or_else(|e| panic!("{e}")))
}

/// The parsers of `actions.aag`.
const PARSERS: [&str; 2] = ["generated", "interpreted"];

/// A new parser, by its name in [`PARSERS`].
fn parser(name: &str, g: &Arc<Grammar>) -> Either {
    match name {
        "generated" => Either::Left(acts::ActsParser::new()),
        _ => Either::Right(g.parser()),
    }
}

type Either = aa_runtime::Either<acts::ActsParser, aa_dsl::interp::Interp>;

/// The values of every `line` record, and the error, for `input` cut into
/// packets of `cut` bytes. The pool ends full.
fn run(parser: Either, input: &[u8], cut: usize) -> (Vec<Vals>, Option<String>) {
    let mut out = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        let v = |tag| r.value(tag).expect("every variable is stored");
        out.push(Vals {
            eq: v(0),
            ieq: v(1),
            pre: v(2),
            ipre: v(3),
            has: v(4),
            ihas: v(5),
            key: v(6),
            trimmed: v(7),
            before: v(8),
            after: v(9),
            num: v(10),
        });
    });
    (out, err)
}

#[test]
fn actions_give_what_the_language_says_at_every_cut() {
    let t = |eq, ieq, pre, ipre, has, ihas, key, trimmed, before, after, num| Vals {
        eq,
        ieq,
        pre,
        ipre,
        has,
        ihas,
        key,
        trimmed,
        before,
        after,
        num,
    };
    let cases: &[(&str, Vals)] = &[
        ("abc", t(1, 1, 1, 1, 0, 0, 0, 3, 3, 0, 0)),
        // Longer than the literal: not equal, still a prefix.
        ("abcd", t(0, 0, 1, 1, 0, 0, 0, 4, 4, 0, 0)),
        ("ABC", t(0, 1, 0, 1, 0, 0, 0, 3, 3, 0, 0)),
        // Shorter than the literal: no prefix either way.
        ("Ab", t(0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0)),
        (" Content-Length : 12", t(0, 0, 0, 0, 0, 0, 1, 19, 16, 3, 0)),
        ("content-lengthx: 1", t(0, 0, 0, 0, 0, 0, 0, 18, 15, 2, 0)),
        // No separator: the whole line is the name.
        ("content-length", t(0, 0, 0, 0, 0, 0, 1, 14, 14, 0, 0)),
        ("content-length x: 1", t(0, 0, 0, 0, 0, 0, 0, 19, 16, 2, 0)),
        ("\tCONTENT-length\t", t(0, 0, 0, 0, 0, 0, 1, 14, 16, 0, 0)),
        ("xab:B:", t(0, 0, 0, 0, 1, 1, 0, 6, 3, 2, 0)),
        ("xAB:", t(0, 0, 0, 0, 0, 1, 0, 4, 3, 0, 0)),
        (" \t ", t(0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0)),
        ("# 17 ", t(0, 0, 0, 0, 0, 0, 0, 4, 5, 0, 17 + 0x17)),
    ];
    let mut input = Vec::new();
    for (line, _) in cases {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    let want: Vec<Vals> = cases.iter().map(|c| c.1).collect();
    let g = grammar();
    for name in PARSERS {
        for cut in [input.len(), 1, 3] {
            let (got, err) = run(parser(name, &g), &input, cut);
            assert_eq!(err, None, "{name}, cut {cut}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{name}, line {:?}, cut {cut}", cases[i].0);
            }
            assert_eq!(got.len(), want.len(), "{name}, cut {cut}");
        }
    }
}

#[test]
fn operators_on_variables_and_constants() {
    // `either = pre || has`, `both = pre && has` over every pair of truth
    // values (`pre`: starts with "ab"; `has`: contains "b:"), and
    // `calc = (((trimmed - 5) << 2) | (trimmed % 3)) ^ (trimmed & 1)`, its
    // subtraction saturating at 0.
    let calc = |t: u64| ((t.saturating_sub(5) << 2) | (t % 3)) ^ (t & 1);
    let cases: [(&str, u64, u64, u64); 5] = [
        ("abc", 1, 0, 3),
        ("xab:B:", 1, 0, 6),
        ("ab:", 1, 1, 3),
        ("ABC", 0, 0, 3),
        ("   abcdefghij   ", 0, 0, 10),
    ];
    let mut input = Vec::new();
    for (line, ..) in cases {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    let g = grammar();
    for name in PARSERS {
        for cut in [input.len(), 1] {
            let mut got = Vec::new();
            let err = common::feed_cut(parser(name, &g), &input, cut, |r| {
                let v = |tag| r.value(tag).expect("every variable is stored");
                got.push((v(11), v(12), v(13)));
            });
            assert_eq!(err, None, "{name}, cut {cut}");
            let want: Vec<_> = cases
                .iter()
                .map(|&(_, either, both, trimmed)| (either, both, calc(trimmed)))
                .collect();
            assert_eq!(got, want, "{name}, cut {cut}");
        }
    }
}

#[test]
fn a_bad_number_is_reported_at_its_offset_at_every_cut() {
    // "ok\n#  1x\n": the second line's number, "1x", starts at offset 6.
    // "#  \n": nothing but spaces after '#', which trim to nothing where
    // they start, at offset 1.
    let cases: [(&[u8], usize, &str, &str); 2] = [
        (b"ok\n#  1x\n", 1, "offset 6", "decimal"),
        (b"#  \n", 0, "offset 1", "decimal"),
    ];
    let g = grammar();
    for name in PARSERS {
        for (input, before, at, what) in cases {
            for cut in [input.len(), 1, 2] {
                let (got, err) = run(parser(name, &g), input, cut);
                assert_eq!(
                    got.len(),
                    before,
                    "{name}: the lines before the error stay, cut {cut}"
                );
                let err = err.expect("a bad number fails the stream");
                assert!(
                    err.contains(at) && err.contains(what),
                    "{name}, cut {cut}: {err}"
                );
            }
        }
    }
}

#[test]
fn fields_and_variables_by_name() {
    // What an application reading a grammar loaded at run time uses: the
    // names in the schema, not tag constants.
    let input = b"abc\n# 17\n";
    let g = grammar();
    for name in PARSERS {
        let mut seen = Vec::new();
        let err = common::feed_cut(parser(name, &g), input, 3, |r| {
            let text = r.field_named("text").map(|f| f.to_vec());
            assert_eq!(r.fields_named("text").count(), 1);
            assert_eq!(r.fields_named("nothing").count(), 0);
            assert_eq!(r.field_named("nothing").map(|f| f.len()), None);
            assert_eq!(r.value_named("nothing"), None);
            assert_eq!(r.value_named("eq"), r.value(0));
            seen.push((text.unwrap(), r.value_named("eq"), r.value_named("num")));
        });
        assert_eq!(err, None, "{name}");
        assert_eq!(
            seen,
            [
                (b"abc".to_vec(), Some(1), Some(0)),
                (b"# 17".to_vec(), Some(0), Some(17 + 0x17)),
            ],
            "{name}"
        );
    }
}
