//! Property tests of the CSV parser running inside the application-aware stream
//! (`AaStream<PoolPacket, CsvParser>`), against `csv_core::Reader` on the
//! contiguous bytes: records must agree whatever the packet cuts (tiny packets,
//! cuts inside `\r\n` and `""`), the delivery order and the way records are read
//! and freed; packets must be released exactly when no record needs them; a full
//! record queue must throttle the sender; gaps must resynchronise at the next
//! line end.

use aa_runtime::csv::{CsvConfig, CsvParser};
use aa_runtime::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::BTreeSet;
use std::ops::Range;

mod common;
use common::Rng;

type Csv = AaStream<PoolPacket, CsvParser>;
type Rows = Vec<Vec<Vec<u8>>>;
/// A field's stream offset and raw bytes.
type RawField = (u64, Vec<u8>);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Inputs

/// Bytes heavy in the characters that matter to CSV, and in those of a UTF-8
/// byte-order mark (which both parsers skip at the start of the stream).
fn csv_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => Just(b'a'),
        3 => Just(b','),
        3 => Just(b'"'),
        2 => Just(b'\r'),
        3 => Just(b'\n'),
        1 => Just(b';'),
        1 => Just(b'\t'),
        1 => Just(0xEF),
        1 => Just(0xBB),
        1 => Just(0xBF),
        2 => any::<u8>(),
    ]
}

#[derive(Debug, Clone)]
enum FieldSpec {
    Plain(Vec<u8>),
    Quoted(Vec<u8>),
}

fn field_spec() -> impl Strategy<Value = FieldSpec> {
    let plain = prop::collection::vec(prop::sample::select(b"abc xyz,;\t".to_vec()), 0..12);
    let quoted_piece = prop_oneof![
        4 => prop::sample::select(b"ab ,;\t\"".to_vec()).prop_map(|b| vec![b]),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\"\"".to_vec()),
    ];
    let quoted = prop::collection::vec(quoted_piece, 0..12).prop_map(|v| v.concat());
    prop_oneof![
        3 => plain.prop_map(FieldSpec::Plain),
        2 => quoted.prop_map(FieldSpec::Quoted),
    ]
}

/// Rows of fields, each ended by `\n`, `\r\n` or `\r` (the last one maybe not).
fn rows_spec() -> impl Strategy<Value = (Vec<(Vec<FieldSpec>, u8)>, bool)> {
    let row = (prop::collection::vec(field_spec(), 1..6), 0u8..3);
    (prop::collection::vec(row, 0..25), any::<bool>())
}

fn serialize(rows: &[(Vec<FieldSpec>, u8)], last_end: bool, delim: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (fields, end)) in rows.iter().enumerate() {
        for (j, f) in fields.iter().enumerate() {
            if j > 0 {
                out.push(delim);
            }
            match f {
                FieldSpec::Plain(v) if !v.contains(&delim) => out.extend_from_slice(v),
                FieldSpec::Plain(v) | FieldSpec::Quoted(v) => {
                    out.push(b'"');
                    for &b in v {
                        if b == b'"' {
                            out.push(b'"');
                        }
                        out.push(b);
                    }
                    out.push(b'"');
                }
            }
        }
        if i + 1 < rows.len() || last_end {
            out.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][*end as usize]);
        }
    }
    out
}

fn delimiter() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(b','), 1 => Just(b';'), 1 => Just(b'\t')]
}

/// CSV-ish input: random bytes, or well-formed rows; either sometimes behind a
/// whole or partial byte-order mark.
fn input(delim: u8) -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        prop::collection::vec(csv_byte(), 0..600),
        rows_spec().prop_map(move |(rows, last)| serialize(&rows, last, delim)),
    ];
    let bom = prop_oneof![4 => Just(0usize), 2 => Just(3usize), 1 => 1usize..3];
    (bom, body).prop_map(|(n, body)| {
        let mut v = [0xEF, 0xBB, 0xBF][..n].to_vec();
        v.extend(body);
        v
    })
}

fn delim_and_input() -> impl Strategy<Value = (u8, Vec<u8>)> {
    delimiter().prop_flat_map(|d| (Just(d), input(d)))
}

/// Well-formed input with many rows (for the backpressure properties).
fn many_rows(delim: u8) -> impl Strategy<Value = Vec<u8>> {
    let row = (prop::collection::vec(field_spec(), 1..5), 0u8..3);
    (prop::collection::vec(row, 6..30), any::<bool>())
        .prop_map(move |(rows, last)| serialize(&rows, last, delim))
}

// ---------------------------------------------------------------------------
// The oracle

/// csv-core's records for `input`, and the input position right after each
/// record. With `flush`, the input ends there (the final record is emitted);
/// without, only records whose terminator is in `input` are returned.
fn csv_core_records(input: &[u8], delim: u8, flush: bool) -> (Rows, Vec<usize>) {
    let mut rdr = csv_core::ReaderBuilder::new().delimiter(delim).build();
    let mut out = vec![0u8; input.len() + 1];
    let mut ends = vec![0usize; input.len() + 2];
    let (mut pos, mut outlen, mut endlen) = (0, 0, 0);
    let (mut rows, mut at) = (Vec::new(), Vec::new());
    loop {
        let (res, nin, nout, nend) =
            rdr.read_record(&input[pos..], &mut out[outlen..], &mut ends[endlen..]);
        pos += nin;
        outlen += nout;
        endlen += nend;
        match res {
            csv_core::ReadRecordResult::InputEmpty => {
                assert_eq!(pos, input.len());
                if !flush {
                    break;
                }
            }
            csv_core::ReadRecordResult::Record => {
                let mut start = 0;
                let mut row = Vec::new();
                for &e in &ends[..endlen] {
                    row.push(out[start..e].to_vec());
                    start = e;
                }
                rows.push(row);
                at.push(pos);
                outlen = 0;
                endlen = 0;
            }
            csv_core::ReadRecordResult::End => break,
            r => panic!("csv-core buffers too small: {r:?}"),
        }
    }
    (rows, at)
}

// ---------------------------------------------------------------------------
// Packets

const MAX_HDR: usize = 12;

/// Cut points: packet sizes from a random mode (tiny 1–3 bytes, small, mixed),
/// plus, at random, cuts splitting `\r\n` and `""`.
fn cut_points(input: &[u8], rng: &mut Rng) -> Vec<Range<usize>> {
    let max = [3u64, 3, 8, 40, 120][rng.below(5) as usize];
    let mut pts = BTreeSet::new();
    pts.insert(0);
    pts.insert(input.len());
    let mut at = 0usize;
    while at < input.len() {
        at += rng.range(1, max) as usize;
        pts.insert(at.min(input.len()));
    }
    for i in 0..input.len().saturating_sub(1) {
        let pair = &input[i..i + 2];
        if (pair == b"\r\n" || pair == b"\"\"") && rng.chance(50) {
            pts.insert(i + 1);
        }
    }
    let pts: Vec<usize> = pts.into_iter().collect();
    pts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Delivery order (indices into the packets): in order, locally reordered,
/// or shuffled; sometimes with retransmitted duplicates.
fn delivery_order(n: usize, rng: &mut Rng, dups: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    match rng.below(3) {
        0 => {}
        1 => {
            for i in 1..n {
                if rng.chance(30) {
                    let j = i - 1 - rng.below(i.min(5) as u64) as usize;
                    order.swap(i, j);
                }
            }
        }
        _ => rng.shuffle(&mut order),
    }
    if dups && n > 0 {
        for _ in 0..rng.below(n as u64 / 4 + 2) {
            let at = rng.below(order.len() as u64 + 1) as usize;
            order.insert(at, rng.below(n as u64) as usize);
        }
    }
    order
}

fn insert_packet(
    s: &mut Csv,
    pool: &PacketPool,
    rng: &mut Rng,
    isn: u32,
    input: &[u8],
    r: Range<usize>,
) -> Insert {
    let hdr = rng.below(MAX_HDR as u64 + 1) as usize;
    let mut f: Vec<u8> = (0..hdr).map(|_| rng.next() as u8).collect();
    f.extend_from_slice(&input[r.clone()]);
    let p = pool.packet_from(&f).expect("pool sized for every packet");
    s.insert(isn.wrapping_add(r.start as u32), p, hdr..f.len())
}

fn big_stream() -> StreamConfig {
    StreamConfig {
        recv_buffer: 1 << 20,
        max_fragments: 1 << 16,
        max_ooo_bytes: 1 << 20,
        max_ooo_fragments: 1 << 16,
    }
}

fn parser(delim: u8) -> CsvParser {
    CsvParser::new(CsvConfig {
        delimiter: delim,
        ..CsvConfig::default()
    })
}

// ---------------------------------------------------------------------------
// The application

/// Reads, decodes and frees records; remembers the raw bytes of every record it
/// holds, to check later that they are still there.
#[derive(Default)]
struct App {
    got: Rows,
    /// Read, unfreed records: id, raw field spans (offset, bytes).
    held: Vec<(RecordId, Vec<RawField>)>,
    max_span_end: u64,
}

impl App {
    fn read(&mut self, s: &mut Csv, n: usize, input: &[u8]) {
        let ready = s.ready();
        let recs = s.read_aa_records(n);
        assert_eq!(recs.len(), n.min(ready));
        for r in recs {
            assert_eq!(r.kind(), aa_runtime::csv::ROW);
            assert_eq!(r.name(), "row");
            let mut raw = Vec::new();
            let mut row = Vec::new();
            for f in r.fields() {
                let (a, b) = (f.offset() as usize, (f.offset() + f.len()) as usize);
                let bytes = f.to_vec();
                assert_eq!(
                    bytes,
                    &input[a..b],
                    "field bytes are the input at its offset"
                );
                assert!(a as u64 >= r.span().start && b as u64 <= r.span().end);
                let mut v = Vec::new();
                aa_runtime::csv::unquote(&f, b'"', &mut v);
                row.push(v);
                raw.push((f.offset(), bytes));
            }
            self.max_span_end = self.max_span_end.max(r.span().end);
            if let Some(&(last, _)) = self.held.last() {
                assert!(r.id() > last, "records come in commit order");
            }
            self.got.push(row);
            self.held.push((r.id(), raw));
        }
    }

    fn free_oldest(&mut self, s: &mut Csv, n: usize) {
        let freed = s.free_aa_records(n);
        assert_eq!(freed, n.min(self.held.len()));
        for (id, _) in self.held.drain(..freed) {
            assert!(s.record(id).is_none());
        }
    }

    fn free_one(&mut self, s: &mut Csv, i: usize) {
        let (id, _) = self.held.remove(i);
        assert!(s.free_record(id));
        assert!(!s.free_record(id), "a record is freed once");
        assert!(s.record(id).is_none());
    }

    /// Random reads and frees.
    fn step(&mut self, s: &mut Csv, rng: &mut Rng, input: &[u8]) {
        if rng.chance(50) {
            let n = rng.below(6) as usize;
            self.read(s, n, input);
        }
        match rng.below(4) {
            0 => {
                let n = rng.below(self.held.len() as u64 + 2) as usize;
                self.free_oldest(s, n);
            }
            1 if !self.held.is_empty() => {
                for _ in 0..rng.range(1, 3) {
                    if self.held.is_empty() {
                        break;
                    }
                    let i = rng.below(self.held.len() as u64) as usize;
                    self.free_one(s, i);
                }
            }
            _ => {}
        }
    }

    /// Every held record still reads back the same bytes.
    fn verify(&self, s: &Csv, input: &[u8]) {
        for (id, raw) in &self.held {
            let r = s.record(*id).expect("held record");
            let now: Vec<RawField> = r.fields().map(|f| (f.offset(), f.to_vec())).collect();
            assert_eq!(&now, raw, "record {id:?} changed under the application");
            for (off, bytes) in raw {
                assert_eq!(
                    &input[*off as usize..*off as usize + bytes.len()],
                    &bytes[..]
                );
            }
        }
    }

    fn drain_all(&mut self, s: &mut Csv, input: &[u8]) {
        self.read(s, usize::MAX, input);
        let n = self.held.len();
        self.free_oldest(s, n);
    }

    /// Ends the stream and reads everything left (a full queue may hold the
    /// last records back until earlier ones are freed). Once every record is
    /// read and freed, the parser must have reached the end (or failed).
    fn finish(&mut self, s: &mut Csv, input: &[u8]) {
        s.finish();
        loop {
            self.drain_all(s, input);
            if s.ready() > 0 {
                continue; // freeing let paused parsing go on
            }
            assert_ne!(
                s.state(),
                AaState::Active,
                "stalled: finished, every record read and freed, yet still parsing \
                 (held {} bytes, {} records so far)",
                s.stream().held_bytes(),
                self.got.len()
            );
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Records equal csv-core's

fn records_case(delim: u8, input: &[u8], isn: u32, seed: u64) {
    let mut rng = Rng(seed);
    let (want, _) = csv_core_records(input, delim, true);
    let packets = cut_points(input, &mut rng);
    let order = delivery_order(packets.len(), &mut rng, true);
    let pool = PacketPool::new(order.len() as u32 + 1, input.len().max(1) + MAX_HDR);
    let cfg = AaConfig {
        stream: big_stream(),
        max_records: if rng.chance(30) {
            rng.range(1, 8) as u32
        } else {
            4096
        },
        ..AaConfig::default()
    };
    let mut s: Csv = AaStream::new(cfg, isn, parser(delim));
    let mut app = App::default();
    for &i in &order {
        insert_packet(&mut s, &pool, &mut rng, isn, input, packets[i].clone());
        app.step(&mut s, &mut rng, input);
        if rng.chance(20) {
            app.verify(&s, input);
        }
        assert_eq!(s.state(), AaState::Active);
    }
    assert_eq!(s.stream().rcv_nxt_offset(), input.len() as u64);
    s.finish();
    // Records may still wait behind a full queue: read and free a while at
    // random, then everything.
    for _ in 0..rng.below(20) {
        app.verify(&s, input);
        app.step(&mut s, &mut rng, input);
    }
    app.verify(&s, input);
    app.finish(&mut s, input);
    assert_eq!(s.state(), AaState::Ended);
    assert!(s.error().is_none());
    assert_eq!(app.got, want, "records differ from csv-core");
    assert_eq!(s.stats().records, want.len() as u64);
    assert_eq!(s.stats().freed, want.len() as u64);
    assert_eq!(s.stats().gaps, 0);
    assert_eq!(s.stream().held_bytes(), 0);
    assert!(
        pool.is_full(),
        "every packet released once every record is freed"
    );
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn records_equal_csv_core(
        (delim, input) in delim_and_input(),
        isn in prop_oneof![any::<u32>(), (u32::MAX - 700)..=u32::MAX],
        seed in any::<u64>(),
    ) {
        records_case(delim, &input, isn, seed);
    }
}

// ---------------------------------------------------------------------------
// Packets are released when the records referencing them are freed, not before

/// Indices of the packets that the spans `[a, b)` touch (empty spans touch none).
fn touched(spans: impl Iterator<Item = (u64, u64)>, packets: &[Range<usize>]) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    // `packets` are sorted and disjoint.
    for (a, b) in spans.filter(|(a, b)| a < b) {
        let mut i = packets.partition_point(|p| p.end as u64 <= a);
        while i < packets.len() && (packets[i].start as u64) < b {
            set.insert(i);
            i += 1;
        }
    }
    set
}

fn held_spans(app: &App) -> impl Iterator<Item = (u64, u64)> + '_ {
    app.held
        .iter()
        .flat_map(|(_, raw)| raw.iter().map(|(o, b)| (*o, *o + b.len() as u64)))
}

fn in_use(pool: &PacketPool) -> usize {
    (pool.capacity() - pool.available()) as usize
}

fn release_case(delim: u8, input: &[u8], isn: u32, seed: u64) {
    let mut rng = Rng(seed);
    let (want, _) = csv_core_records(input, delim, true);
    let packets = cut_points(input, &mut rng);
    // Exact duplicates only: every byte range stays backed by one packet.
    let order = delivery_order(packets.len(), &mut rng, true);
    // One spare buffer: a buffer released too early is reused at once (the
    // pool hands out the most recently freed buffer first) and overwritten.
    let pool = PacketPool::new(packets.len() as u32 + 2, input.len().max(1) + MAX_HDR);
    let cfg = AaConfig {
        stream: big_stream(),
        ..AaConfig::default()
    };
    let mut s: Csv = AaStream::new(cfg, isn, parser(delim));
    let mut app = App::default();
    let mut delivered = vec![false; packets.len()];
    // Packets touched by read records (nothing is freed yet, so this only grows).
    let mut lower = vec![false; packets.len()];
    let mut marked = 0;
    for &i in &order {
        insert_packet(&mut s, &pool, &mut rng, isn, input, packets[i].clone());
        delivered[i] = true;
        app.read(&mut s, usize::MAX, input);
        if rng.chance(25) {
            // A buffer released too early has been reused by now (and stays
            // overwritten), so sampling the check loses nothing.
            app.verify(&s, input);
        }
        let spans = app.held[marked..]
            .iter()
            .flat_map(|(_, raw)| raw.iter().map(|(o, b)| (*o, *o + b.len() as u64)));
        for j in touched(spans, &packets) {
            lower[j] = true;
        }
        marked = app.held.len();
        // Held: at least every packet a read, unfreed record touches; at most
        // those plus the delivered packets from the last record's end on.
        let low = lower.iter().filter(|&&x| x).count();
        let high = low
            + (0..packets.len())
                .filter(|&j| delivered[j] && !lower[j] && packets[j].end as u64 > app.max_span_end)
                .count();
        let h = in_use(&pool);
        assert!(
            low <= h && h <= high,
            "held {h}, expected between {low} and {high}"
        );
    }
    s.finish();
    app.read(&mut s, usize::MAX, input);
    assert_eq!(s.state(), AaState::Ended);
    assert_eq!(app.got, want);
    app.verify(&s, input);
    // Exactly the packets that unfreed records' fields touch are held.
    let expect = touched(held_spans(&app), &packets);
    assert_eq!(in_use(&pool), expect.len(), "after finish, nothing freed");
    while !app.held.is_empty() {
        let i = rng.below(app.held.len() as u64) as usize;
        app.free_one(&mut s, i);
        app.verify(&s, input);
        let expect = touched(held_spans(&app), &packets);
        assert_eq!(in_use(&pool), expect.len(), "after freeing a record");
    }
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn packets_are_released_with_their_last_record(
        (delim, input) in delim_and_input(),
        isn in any::<u32>(),
        seed in any::<u64>(),
    ) {
        release_case(delim, &input, isn, seed);
    }
}

// ---------------------------------------------------------------------------
// Backpressure: a full record queue pauses parsing and closes the window

/// Where record `k + 1` (0-based `k`) starts: after record `k`'s terminator and
/// any empty lines.
fn next_record_start(input: &[u8], after: usize) -> usize {
    let mut i = after;
    while i < input.len() && (input[i] == b'\r' || input[i] == b'\n') {
        i += 1;
    }
    i
}

fn queue_full_case(delim: u8, input: &[u8], max_records: u32, seed: u64) {
    let mut rng = Rng(seed);
    let (want, _) = csv_core_records(input, delim, true);
    let (terminated, at) = csv_core_records(input, delim, false);
    let packets = cut_points(input, &mut rng);
    let pool = PacketPool::new(packets.len() as u32 + 1, input.len().max(1) + MAX_HDR);
    let stream = big_stream();
    let recv = stream.recv_buffer as u64;
    let cfg = AaConfig {
        stream,
        max_records,
        ..AaConfig::default()
    };
    let isn = rng.next() as u32;
    let mut s: Csv = AaStream::new(cfg, isn, parser(delim));
    for p in &packets {
        let r = insert_packet(&mut s, &pool, &mut rng, isn, input, p.clone());
        assert!(matches!(r, Insert::InOrder { .. }));
    }
    let m = max_records as usize;
    assert_eq!(
        s.ready(),
        m.min(terminated.len()),
        "parsing pauses at a full queue"
    );
    let held = s.stream().held_bytes();
    assert_eq!(s.stream().window() as u64, recv - held);
    if terminated.len() >= m {
        let start = next_record_start(input, at[m - 1]);
        let unparsed = (input.len() - start) as u64;
        assert!(
            held >= unparsed,
            "unparsed bytes {unparsed} are held (held {held})"
        );
        if unparsed > 0 {
            assert!(
                s.stream().window() < cfg.stream.recv_buffer,
                "window shrinks"
            );
        }
    }
    // Read and free progressively.
    let mut app = App::default();
    let mut guard = 0;
    while app.got.len() < terminated.len() {
        guard += 1;
        assert!(guard < 100_000, "no progress");
        let before = app.got.len();
        app.step(&mut s, &mut rng, input);
        assert!(s.ready() + app.held.len() <= m, "queue bounded");
        if app.got.len() == before && rng.chance(20) {
            app.drain_all(&mut s, input);
        }
    }
    app.finish(&mut s, input);
    assert_eq!(s.state(), AaState::Ended);
    assert!(s.error().is_none());
    assert_eq!(app.got, want);
    assert_eq!(s.stream().window(), cfg.stream.recv_buffer);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

/// A sender that never exceeds the advertised window, a small receive buffer
/// and a small record queue: the application's pace throttles the sender, and
/// everything still arrives.
fn throttled_sender_case(delim: u8, input: &[u8], max_records: u32, seed: u64) {
    let mut rng = Rng(seed);
    let (want, at) = csv_core_records(input, delim, true);
    let mut longest = 0;
    let mut prev = 0;
    for &p in &at {
        longest = longest.max(p - prev);
        prev = p;
    }
    longest = longest.max(input.len() - prev);
    let max_seg = rng.range(1, 40) as usize;
    let recv = (longest + 3 * max_seg + 8) as u32;
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: recv,
            ..StreamConfig::default()
        },
        max_records,
        ..AaConfig::default()
    };
    let pool = PacketPool::new(recv + 8, max_seg + MAX_HDR);
    let isn = rng.next() as u32;
    let mut s: Csv = AaStream::new(cfg, isn, parser(delim));
    let mut app = App::default();
    let total = input.len();
    let mut guard = 0;
    while (s.stream().rcv_nxt_offset() as usize) < total {
        guard += 1;
        assert!(guard < 200_000, "stalled");
        let nxt = s.stream().rcv_nxt_offset() as usize;
        let win = s.stream().window() as usize;
        if win > 0 {
            let mut n = (rng.range(1, max_seg as u64) as usize).min(total - nxt);
            if !rng.chance(15) {
                n = n.min(win); // otherwise the part beyond the window is trimmed
            }
            let r = insert_packet(&mut s, &pool, &mut rng, isn, input, nxt..nxt + n);
            assert_eq!(
                r,
                Insert::InOrder {
                    bytes: n.min(win) as u64
                }
            );
        } else {
            // The window is closed: the application must catch up, and once
            // it has, the window opens (records are shorter than the buffer).
            let mut tries = 0;
            while s.stream().window() == 0 {
                tries += 1;
                assert!(tries < 1000, "window stays closed with every record freed");
                app.drain_all(&mut s, input);
            }
        }
        if rng.chance(40) {
            app.step(&mut s, &mut rng, input);
        }
    }
    app.finish(&mut s, input);
    assert_eq!(s.state(), AaState::Ended);
    assert!(s.error().is_none());
    assert_eq!(app.got, want);
    assert_eq!(s.stream().window(), recv);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn full_queue_pauses_parsing_and_closes_the_window(
        (delim, input) in delimiter().prop_flat_map(|d| (Just(d), many_rows(d))),
        max_records in 1u32..=4,
        seed in any::<u64>(),
    ) {
        queue_full_case(delim, &input, max_records, seed);
    }

    #[test]
    fn slow_application_throttles_the_sender(
        (delim, input) in delimiter().prop_flat_map(|d| (Just(d), many_rows(d))),
        max_records in 1u32..=4,
        seed in any::<u64>(),
    ) {
        throttled_sender_case(delim, &input, max_records, seed);
    }
}

// ---------------------------------------------------------------------------
// Gaps: the record in progress is dropped, parsing resumes after the next `\n`

/// Records expected when `lost` packets never arrive: the kept runs of bytes
/// are parsed separately; every run after a gap starts after its first `\n`;
/// a run followed by a gap keeps only terminated records.
fn expected_with_gaps(input: &[u8], delim: u8, packets: &[Range<usize>], lost: &[bool]) -> Rows {
    let mut runs: Vec<(Range<usize>, bool, bool)> = Vec::new(); // range, after gap, before gap
    let mut i = 0;
    while i < packets.len() {
        if lost[i] {
            i += 1;
            continue;
        }
        let start = packets[i].start;
        while i < packets.len() && !lost[i] {
            i += 1;
        }
        let end = packets[i - 1].end;
        runs.push((start..end, start > 0, end < input.len()));
    }
    let mut rows = Vec::new();
    for (r, after_gap, before_gap) in runs {
        let bytes = &input[r];
        let bytes = if after_gap {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(j) => &bytes[j + 1..],
                None => continue,
            }
        } else {
            bytes
        };
        // Only the stream's start may hold a byte-order mark: csv-core strips one
        // at the start of its input, so give it one to strip in front of a
        // piece that starts later.
        let owned;
        let bytes = if after_gap {
            owned = [&[0xEF, 0xBB, 0xBF][..], bytes].concat();
            &owned[..]
        } else {
            bytes
        };
        rows.extend(csv_core_records(bytes, delim, !before_gap).0);
    }
    rows
}

fn gap_case(delim: u8, input: &[u8], loss_pct: u64, seed: u64) {
    let mut rng = Rng(seed);
    let packets = cut_points(input, &mut rng);
    let lost: Vec<bool> = packets.iter().map(|_| rng.chance(loss_pct)).collect();
    let want = expected_with_gaps(input, delim, &packets, &lost);
    let kept: Vec<usize> = (0..packets.len()).filter(|&i| !lost[i]).collect();
    let mut order = kept.clone();
    let shuffled = rng.chance(50);
    if shuffled {
        rng.shuffle(&mut order);
    }
    let pool = PacketPool::new(order.len() as u32 + 1, input.len().max(1) + MAX_HDR);
    let cfg = AaConfig {
        stream: big_stream(),
        // Sometimes a small queue: gaps then wait behind paused parsing.
        max_records: if rng.chance(30) {
            rng.range(1, 4) as u32
        } else {
            4096
        },
        ..AaConfig::default()
    };
    let isn = rng.next() as u32;
    let mut s: Csv = AaStream::new(cfg, isn, parser(delim));
    let mut app = App::default();
    for &i in &order {
        insert_packet(&mut s, &pool, &mut rng, isn, input, packets[i].clone());
        app.step(&mut s, &mut rng, input);
        if !shuffled && rng.chance(10) {
            // Give up on the hole before the next queued segment (in order,
            // every earlier packet that was sent has arrived).
            s.skip_to_next_segment();
        }
    }
    let missing: u64 = packets
        .iter()
        .zip(&lost)
        .filter(|(_, &l)| l)
        .map(|(p, _)| p.len() as u64)
        .sum();
    s.skip_to(SeqNum(isn.wrapping_add(input.len() as u32)));
    assert_eq!(s.stream().stats().gap_bytes, missing);
    app.finish(&mut s, input);
    assert_eq!(s.state(), AaState::Ended);
    assert!(s.error().is_none());
    assert_eq!(s.stats().gap_bytes, missing);
    assert_eq!(app.got, want, "records around gaps");
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn gaps_resynchronise_at_the_next_line(
        (delim, input) in delim_and_input(),
        loss_pct in 0u64..=40,
        seed in any::<u64>(),
    ) {
        gap_case(delim, &input, loss_pct, seed);
    }
}

// ---------------------------------------------------------------------------
// Failure: a record with too many fields fails the stream; the records before it
// stay readable and every packet is released once they are freed

fn too_many_fields_case(delim: u8, input: &[u8], max_fields: u32, seed: u64) {
    let mut rng = Rng(seed);
    let (all, _) = csv_core_records(input, delim, true);
    let bad = all.iter().position(|r| r.len() > max_fields as usize);
    let want: Rows = all[..bad.unwrap_or(all.len())].to_vec();
    let packets = cut_points(input, &mut rng);
    let order = delivery_order(packets.len(), &mut rng, true);
    let pool = PacketPool::new(order.len() as u32 + 1, input.len().max(1) + MAX_HDR);
    let cfg = AaConfig {
        stream: big_stream(),
        max_records: if rng.chance(30) {
            rng.range(1, 4) as u32
        } else {
            4096
        },
        // Sometimes a small field budget: the queue then fills by fields.
        max_fields: if rng.chance(30) {
            rng.range(max_fields as u64, 3 * max_fields as u64) as u32
        } else {
            64 * 1024
        },
        ..AaConfig::default()
    };
    let isn = rng.next() as u32;
    let csv = CsvConfig {
        delimiter: delim,
        max_fields,
        ..CsvConfig::default()
    };
    let mut s: Csv = AaStream::new(cfg, isn, CsvParser::new(csv));
    let mut app = App::default();
    for &i in &order {
        insert_packet(&mut s, &pool, &mut rng, isn, input, packets[i].clone());
        app.step(&mut s, &mut rng, input);
        if rng.chance(20) {
            app.verify(&s, input);
        }
    }
    s.finish();
    for _ in 0..rng.below(20) {
        app.verify(&s, input);
        app.step(&mut s, &mut rng, input);
    }
    app.verify(&s, input);
    app.finish(&mut s, input);
    assert_eq!(app.got, want, "records before the failure");
    match bad {
        Some(_) => {
            assert_eq!(s.state(), AaState::Failed);
            let e = s.error().expect("error recorded");
            assert_eq!(e.kind, ErrorKind::TooManyFields { max: max_fields });
            assert_eq!(e.record, "row");
        }
        None => {
            assert_eq!(s.state(), AaState::Ended);
            assert!(s.error().is_none());
        }
    }
    assert_eq!(s.stream().held_bytes(), 0);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn too_many_fields_fails_after_the_good_records(
        (delim, input) in delim_and_input(),
        max_fields in 1u32..=4,
        seed in any::<u64>(),
    ) {
        too_many_fields_case(delim, &input, max_fields, seed);
    }
}

/// A gap while a record is in progress whose pinned fragment is followed by an
/// already-released one (a delimiter-only packet): dropping the record's pins
/// releases both, and the scan over them must not index a popped fragment.
#[test]
fn gap_after_a_delimiter_only_packet() {
    let pool = PacketPool::new(8, 16);
    let isn = 100u32;
    let mut s: Csv = AaStream::new(AaConfig::default(), isn, CsvParser::default());
    for (off, seg) in [(0u32, &b"aaa"[..]), (3, b","), (4, b"b")] {
        let p = pool.packet_from(seg).unwrap();
        assert!(matches!(
            s.insert(isn + off, p, 0..seg.len()),
            Insert::InOrder { .. }
        ));
    }
    let p = pool.packet_from(b"x\nc,d\n").unwrap();
    assert_eq!(s.insert(isn + 8, p, 0..6), Insert::OutOfOrder);
    assert_eq!(s.skip_to(SeqNum(isn + 8)), 3);
    let rows: Rows = s
        .read_aa_records(9)
        .map(|r| r.fields().map(|f| f.to_vec()).collect())
        .collect();
    assert_eq!(rows, vec![vec![b"c".to_vec(), b"d".to_vec()]]);
    assert_eq!(s.free_aa_records(9), 1);
    s.finish();
    assert_eq!(s.state(), AaState::Ended);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

/// A record admitted to the queue must be able to finish: its own pending
/// fields must not make the queue "full" and stop the parser mid-record.
///
/// Minimal case: 2 fields per record (CsvConfig::max_fields), a field budget of
/// 2 (AaConfig::max_fields), the record `a,b\n` cut after the delimiter.
#[test]
fn pending_fields_do_not_stall_the_record_in_progress() {
    let pool = PacketPool::new(4, 16);
    let csv = CsvConfig {
        max_fields: 2,
        ..CsvConfig::default()
    };
    let cfg = AaConfig {
        max_fields: 2,
        ..AaConfig::default()
    };
    let mut s: Csv = AaStream::new(cfg, 0, CsvParser::new(csv));
    let p = pool.packet_from(b"a,").unwrap();
    assert_eq!(s.insert(0, p, 0..2), Insert::InOrder { bytes: 2 });
    let p = pool.packet_from(b"b\n").unwrap();
    assert_eq!(s.insert(2, p, 0..2), Insert::InOrder { bytes: 2 });
    s.finish();
    let rows: Rows = s
        .read_aa_records(9)
        .map(|r| r.fields().map(|f| f.to_vec()).collect())
        .collect();
    assert_eq!(rows, vec![vec![b"a".to_vec(), b"b".to_vec()]]);
    assert_eq!(s.free_aa_records(9), 1);
    assert_eq!(s.state(), AaState::Ended);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}
