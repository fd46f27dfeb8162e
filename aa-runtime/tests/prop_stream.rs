//! Property tests of the zero-copy stream ([`ZcStream`]): reassembly under
//! reordering, duplication and overlapping re-cuts; first-copy-wins conflict
//! accounting; caps checked against a reference model; and `skip_to`.
//!
//! Every segment travels in its own pool packet behind a random-length fake
//! header (and a few trailer bytes), so payload ranges never start at 0.

use aa_runtime::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;

mod common;
use common::Rng;

const MAX_HDR: usize = 40;
const MAX_TRAILER: usize = 4;

/// A pool packet holding `payload` behind a random header; returns the handle
/// and the payload's range inside the frame.
fn frame(pool: &PacketPool, rng: &mut Rng, payload: &[u8]) -> (PoolPacket, Range<usize>) {
    let hdr = rng.below(MAX_HDR as u64 + 1) as usize;
    let trailer = rng.below(MAX_TRAILER as u64 + 1) as usize;
    let mut f = Vec::with_capacity(hdr + payload.len() + trailer);
    f.extend((0..hdr).map(|_| rng.next() as u8));
    f.extend_from_slice(payload);
    f.extend((0..trailer).map(|_| rng.next() as u8));
    let p = pool.packet_from(&f).expect("pool sized for every packet");
    (p, hdr..hdr + payload.len())
}

fn buf_size(max_payload: usize) -> usize {
    max_payload + MAX_HDR + MAX_TRAILER
}

/// A segment: stream offset and payload bytes.
#[derive(Debug, Clone)]
struct Seg {
    off: u64,
    bytes: Vec<u8>,
}

/// The stream cut at the given points (each taken modulo `len + 1`).
fn cut(data: &[u8], cuts: &[u32]) -> Vec<Seg> {
    let mut pts: BTreeSet<usize> = cuts
        .iter()
        .map(|&c| c as usize % (data.len() + 1))
        .collect();
    pts.insert(0);
    pts.insert(data.len());
    let pts: Vec<usize> = pts.into_iter().collect();
    pts.windows(2)
        .map(|w| Seg {
            off: w[0] as u64,
            bytes: data[w[0]..w[1]].to_vec(),
        })
        .collect()
}

/// A sub-range `[a, b)` of the stream chosen from two random numbers.
fn sub_range(len: usize, a: u32, b: u32, max: usize) -> Range<usize> {
    let a = a as usize % len;
    let b = a + 1 + b as usize % (len - a).min(max);
    a..b
}

/// Randomly alters some bytes (never all equal by construction of the XOR).
fn alter(rng: &mut Rng, bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        if rng.chance(30) {
            *b ^= rng.range(1, 255) as u8;
        }
    }
}

fn big_cfg() -> StreamConfig {
    StreamConfig {
        recv_buffer: 1 << 20,
        max_fragments: 1 << 16,
        max_ooo_bytes: 1 << 20,
        max_ooo_fragments: 1 << 16,
    }
}

fn isn_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (u32::MAX - 4100)..=u32::MAX,
        Just(u32::MAX),
        0u32..16,
        0x7FFF_F000u32..=0x8000_1000,
    ]
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

/// Reassembly with duplicates and overlapping re-cuts, some carrying altered
/// bytes. A byte-level model says which copy of every byte arrived first, which
/// re-received bytes conflict, and which could not be checked because the first
/// copy had been released.
#[allow(clippy::too_many_arguments)]
fn reassembly_case(
    data: &[u8],
    isn: u32,
    cuts: &[u32],
    extras: &[(u32, u32)],
    seed: u64,
    originals_first: bool,
    alter_copies: bool,
    free_during: bool,
) {
    let mut rng = Rng(seed);
    let total = data.len();
    let originals = cut(data, cuts);
    let mut copies = Vec::new();
    for s in &originals {
        if rng.chance(25) {
            copies.push(s.clone());
        }
    }
    if total > 0 {
        for &(a, b) in extras {
            let r = sub_range(total, a, b, 1500);
            copies.push(Seg {
                off: r.start as u64,
                bytes: data[r].to_vec(),
            });
        }
    }
    if alter_copies {
        for c in &mut copies {
            if rng.chance(60) {
                alter(&mut rng, &mut c.bytes);
            }
        }
    }
    let mut order: Vec<Seg>;
    if originals_first {
        let mut o = originals.clone();
        rng.shuffle(&mut o);
        rng.shuffle(&mut copies);
        order = o;
        order.extend(copies);
    } else {
        order = originals.iter().cloned().chain(copies).collect();
        rng.shuffle(&mut order);
    }
    // A few empty segments at random sequence numbers.
    let empties = rng.below(3);
    for _ in 0..empties {
        let at = rng.below(order.len() as u64 + 1) as usize;
        order.insert(
            at,
            Seg {
                off: rng.below(total as u64 + 10),
                bytes: Vec::new(),
            },
        );
    }

    let pool = PacketPool::new(order.len() as u32 + 1, buf_size(total.max(1)));
    let cfg = big_cfg();
    let recv = cfg.recv_buffer as u64;
    let mut s = ZcStream::new(cfg, isn);

    let mut first: Vec<Option<u8>> = vec![None; total];
    let (mut overlap, mut conflict, mut unchecked) = (0u64, 0u64, 0u64);
    let mut freed_upto = 0u64;
    let mut out: Vec<u8> = Vec::new();
    let mut unfreed: VecDeque<u64> = VecDeque::new(); // ends of read, unfreed fragments

    let read =
        |s: &mut ZcStream<PoolPacket>, n: usize, out: &mut Vec<u8>, unfreed: &mut VecDeque<u64>| {
            for f in s.read_fragments(n) {
                assert_eq!(f.offset, out.len() as u64, "fragments are contiguous");
                assert!(!f.data.is_empty());
                out.extend_from_slice(f.data);
                unfreed.push_back(out.len() as u64);
            }
        };

    for seg in &order {
        let mut dup = !seg.bytes.is_empty();
        for (i, &b) in seg.bytes.iter().enumerate() {
            let o = seg.off as usize + i;
            match first[o] {
                Some(f) => {
                    overlap += 1;
                    if (o as u64) < freed_upto {
                        unchecked += 1;
                    } else if f != b {
                        conflict += 1;
                    }
                }
                None => {
                    first[o] = Some(b);
                    dup = false;
                }
            }
        }
        let before = s.rcv_nxt_offset();
        let (p, r) = frame(&pool, &mut rng, &seg.bytes);
        let res = s.insert(isn.wrapping_add(seg.off as u32), p, r);
        match res {
            Insert::Empty => assert!(seg.bytes.is_empty()),
            Insert::Duplicate => assert!(dup, "{seg:?} had new bytes"),
            Insert::InOrder { bytes } => {
                assert!(!dup && seg.off <= before);
                assert_eq!(s.rcv_nxt_offset(), before + bytes);
            }
            Insert::OutOfOrder => {
                assert!(!dup && seg.off > before);
                assert_eq!(s.rcv_nxt_offset(), before);
            }
            other => panic!("{other:?} with caps that drop nothing"),
        }
        // The in-order prefix is every byte received so far from offset 0.
        let nxt = first.iter().take_while(|b| b.is_some()).count() as u64;
        assert_eq!(s.rcv_nxt_offset(), nxt);
        assert_eq!(s.rcv_nxt(), SeqNum(isn.wrapping_add(nxt as u32)));
        assert_eq!(s.window() as u64, recv - s.held_bytes());
        if free_during && rng.chance(30) {
            let n = rng.below(6) as usize;
            read(&mut s, n, &mut out, &mut unfreed);
            let k = rng.below(unfreed.len() as u64 + 1) as usize;
            assert_eq!(s.free_fragments(k), k);
            for _ in 0..k {
                freed_upto = unfreed.pop_front().expect("k <= len");
            }
            assert_eq!(s.held_bytes(), nxt - freed_upto);
        }
    }

    read(&mut s, usize::MAX, &mut out, &mut unfreed);
    let expected: Vec<u8> = first.iter().map(|b| b.expect("covered")).collect();
    assert_eq!(out, expected);
    if originals_first {
        assert_eq!(out, data, "first copy wins");
    }
    if !alter_copies {
        assert_eq!(out, data);
    }
    assert_eq!(s.rcv_nxt(), SeqNum(isn.wrapping_add(total as u32)));
    assert_eq!(s.ooo_fragments(), 0);
    assert_eq!(s.ooo_bytes(), 0);
    let st = *s.stats();
    assert_eq!(st.segments, order.len() as u64);
    assert_eq!(st.overlap_bytes, overlap, "overlap");
    assert_eq!(st.conflict_bytes, conflict, "conflicts");
    assert_eq!(st.unchecked_overlap_bytes, unchecked, "unchecked");
    if !alter_copies {
        assert_eq!(st.conflict_bytes, 0);
    }
    assert_eq!(
        st.dropped_cap + st.dropped_window + st.trimmed_window_bytes + st.gaps,
        0
    );
    assert_eq!(s.held_bytes(), total as u64 - freed_upto);
    assert_eq!(s.window() as u64, recv - s.held_bytes());

    let n = unfreed.len();
    assert_eq!(s.free_fragments(usize::MAX), n);
    assert_eq!(s.held_bytes(), 0);
    assert_eq!(s.window() as u64, recv);
    assert_eq!(s.fragments_held(), 0);
    assert!(pool.is_full(), "every packet released");
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn reassembly_restores_the_stream(
        data in prop::collection::vec(any::<u8>(), 0..4000),
        isn in isn_strategy(),
        cuts in prop::collection::vec(any::<u32>(), 0..60),
        extras in prop::collection::vec((any::<u32>(), any::<u32>()), 0..20),
        seed in any::<u64>(),
        originals_first in any::<bool>(),
        free_during in any::<bool>(),
    ) {
        reassembly_case(&data, isn, &cuts, &extras, seed, originals_first, false, free_during);
    }

    #[test]
    fn first_copy_wins_and_conflicts_are_counted(
        data in prop::collection::vec(any::<u8>(), 1..3000),
        isn in isn_strategy(),
        cuts in prop::collection::vec(any::<u32>(), 0..50),
        extras in prop::collection::vec((any::<u32>(), any::<u32>()), 1..20),
        seed in any::<u64>(),
        originals_first in any::<bool>(),
        free_during in any::<bool>(),
    ) {
        reassembly_case(&data, isn, &cuts, &extras, seed, originals_first, true, free_during);
    }
}

/// Reference model of the stream's queues, per the documented rules: first copy
/// wins, a new segment is cut into the holes it fills, caps refuse whole
/// segments, the window is `recv_buffer - held` and its right edge trims.
/// Pieces remember the packet that backs them, to check packet accounting.
struct Model {
    cfg: StreamConfig,
    nxt: u64,
    held: u64,
    /// Out-of-order pieces `(off, end, packet)`, sorted, disjoint.
    ooo: Vec<(u64, u64, usize)>,
    /// In-order fragments not freed `(off, end, packet)`.
    store: VecDeque<(u64, u64, usize)>,
    /// How many of `store` were read.
    read: usize,
    dropped_cap: u64,
    dropped_window: u64,
}

impl Model {
    fn window(&self) -> u64 {
        (self.cfg.recv_buffer as u64).saturating_sub(self.held)
    }

    fn push_in_order(&mut self, off: u64, end: u64, pkt: usize) {
        assert_eq!(off, self.nxt);
        self.store.push_back((off, end, pkt));
        self.nxt = end;
        self.held += end - off;
    }

    fn insert(&mut self, s: i64, len: u64, pkt: usize) -> Insert {
        if len == 0 {
            return Insert::Empty;
        }
        let nxt = self.nxt as i64;
        let win = self.window();
        if s == nxt
            && self.ooo.is_empty()
            && len <= win
            && self.store.len() < self.cfg.max_fragments as usize
        {
            self.push_in_order(self.nxt, self.nxt + len, pkt);
            return Insert::InOrder { bytes: len };
        }
        let e = s + len as i64;
        if e <= nxt {
            return Insert::Duplicate;
        }
        let right = nxt + win as i64;
        if s >= right {
            self.dropped_window += 1;
            return Insert::OutOfWindow;
        }
        let (s, e) = (s.max(nxt) as u64, e.min(right) as u64);
        let mut pieces = Vec::new();
        let mut cur = s;
        for &(go, ge, _) in &self.ooo {
            if ge <= s {
                continue;
            }
            if go >= e {
                break;
            }
            if go > cur {
                pieces.push((cur, go, pkt));
            }
            cur = cur.max(ge);
        }
        if cur < e {
            pieces.push((cur, e, pkt));
        }
        if pieces.is_empty() {
            return Insert::Duplicate;
        }
        let new: u64 = pieces.iter().map(|p| p.1 - p.0).sum();
        let ooo_bytes: u64 = self.ooo.iter().map(|p| p.1 - p.0).sum();
        let joins = s == self.nxt;
        let over = if joins {
            self.store.len() >= self.cfg.max_fragments as usize
        } else {
            self.ooo.len() + pieces.len() > self.cfg.max_ooo_fragments as usize
                || ooo_bytes + new > self.cfg.max_ooo_bytes as u64
        };
        if over {
            self.dropped_cap += 1;
            return Insert::OverCap;
        }
        self.ooo.extend(pieces);
        self.ooo.sort();
        if joins {
            let before = self.nxt;
            while self.ooo.first().is_some_and(|p| p.0 == self.nxt) {
                let (o, e, p) = self.ooo.remove(0);
                self.push_in_order(o, e, p);
            }
            Insert::InOrder {
                bytes: self.nxt - before,
            }
        } else {
            Insert::OutOfOrder
        }
    }

    fn read(&mut self, n: usize) -> Vec<(u64, u64)> {
        let to = self.store.len().min(self.read.saturating_add(n));
        let r = self
            .store
            .range(self.read..to)
            .map(|f| (f.0, f.1))
            .collect();
        self.read = to;
        r
    }

    fn free(&mut self, n: usize) -> usize {
        let m = n.min(self.read);
        for _ in 0..m {
            let (o, e, _) = self.store.pop_front().expect("read fragment");
            self.held -= e - o;
        }
        self.read -= m;
        m
    }

    fn packets_held(&self) -> usize {
        let ids: BTreeSet<usize> = self
            .store
            .iter()
            .chain(self.ooo.iter())
            .map(|p| p.2)
            .collect();
        ids.len()
    }
}

fn check_model(s: &ZcStream<PoolPacket>, m: &Model, pool: &PacketPool, ctx: &str) {
    let cfg = m.cfg;
    assert_eq!(s.rcv_nxt_offset(), m.nxt, "{ctx}: rcv_nxt");
    assert_eq!(s.held_bytes(), m.held, "{ctx}: held");
    assert_eq!(s.window() as u64, m.window(), "{ctx}: window");
    assert_eq!(s.ooo_fragments(), m.ooo.len(), "{ctx}: ooo pieces");
    let ooo_bytes: u64 = m.ooo.iter().map(|p| p.1 - p.0).sum();
    assert_eq!(s.ooo_bytes(), ooo_bytes, "{ctx}: ooo bytes");
    assert_eq!(s.fragments_held(), m.store.len(), "{ctx}: fragments");
    assert_eq!(s.stats().dropped_cap, m.dropped_cap, "{ctx}: dropped_cap");
    assert_eq!(
        s.stats().dropped_window,
        m.dropped_window,
        "{ctx}: dropped_window"
    );
    assert_eq!(
        (pool.capacity() - pool.available()) as usize,
        m.packets_held(),
        "{ctx}: packets held"
    );
    // Out-of-order blocks: the model's pieces with touching ones merged, as
    // sequence numbers.
    let isn = s.rcv_nxt().0.wrapping_sub(m.nxt as u32);
    let mut want: Vec<(u32, u32)> = Vec::new();
    for &(o, e, _) in &m.ooo {
        let (o, e) = (isn.wrapping_add(o as u32), isn.wrapping_add(e as u32));
        match want.last_mut() {
            Some(last) if last.1 == o => last.1 = e,
            _ => want.push((o, e)),
        }
    }
    let got: Vec<(u32, u32)> = s.ooo_blocks().map(|(l, r)| (l.0, r.0)).collect();
    assert_eq!(got, want, "{ctx}: ooo blocks");
    assert_eq!(
        s.next_queued().map(|q| q.0),
        want.first().map(|b| b.0),
        "{ctx}: next_queued"
    );
    // Documented bounds.
    assert!(s.held_bytes() <= cfg.recv_buffer as u64, "{ctx}");
    assert!(s.ooo_bytes() <= cfg.max_ooo_bytes as u64, "{ctx}");
    assert!(s.ooo_fragments() <= cfg.max_ooo_fragments as usize, "{ctx}");
}

fn small_caps_case(data: &[u8], isn: u32, cfg: StreamConfig, max_seg: usize, seed: u64) {
    let mut rng = Rng(seed);
    let total = data.len();
    // Mostly segments well inside the window, sometimes larger than it.
    let max_seg = if rng.chance(70) {
        max_seg.min((cfg.recv_buffer as usize / 3).max(1))
    } else {
        max_seg
    };
    // Cut into segments of 1..=max_seg bytes.
    let mut originals = Vec::new();
    let mut at = 0;
    while at < total {
        let n = (rng.range(1, max_seg as u64) as usize).min(total - at);
        originals.push(Seg {
            off: at as u64,
            bytes: data[at..at + n].to_vec(),
        });
        at += n;
    }
    let mut order = originals.clone();
    if total > 0 {
        for _ in 0..rng.below(originals.len() as u64 / 2 + 3) {
            let r = sub_range(total, rng.next() as u32, rng.next() as u32, max_seg);
            order.push(Seg {
                off: r.start as u64,
                bytes: data[r].to_vec(),
            });
        }
    }
    for _ in 0..rng.below(3) {
        order.push(Seg {
            off: rng.below(total as u64 + 1),
            bytes: Vec::new(),
        });
    }
    // Mostly-forward order with local swaps, or fully shuffled.
    if rng.chance(50) {
        rng.shuffle(&mut order);
    } else {
        for i in 1..order.len() {
            if rng.chance(30) {
                let j = i - 1 - rng.below(i.min(6) as u64) as usize;
                order.swap(i, j);
            }
        }
    }
    // Segments past the end of the data (never joined: nothing fills the byte
    // at `total`) exercise the window's right edge and the caps.
    for _ in 0..rng.below(3) {
        let at = rng.below(order.len() as u64 + 1) as usize;
        let off = rng.range(total as u64 + 1, total as u64 + 3 * cfg.recv_buffer as u64);
        order.insert(
            at,
            Seg {
                off,
                bytes: vec![0xEE; rng.range(1, max_seg as u64) as usize],
            },
        );
    }

    let pool = PacketPool::new(
        2 * order.len() as u32 + 64 + cfg.max_ooo_fragments + cfg.max_fragments,
        buf_size(max_seg),
    );
    let mut s = ZcStream::new(cfg, isn);
    let mut m = Model {
        cfg,
        nxt: 0,
        held: 0,
        ooo: Vec::new(),
        store: VecDeque::new(),
        read: 0,
        dropped_cap: 0,
        dropped_window: 0,
    };
    let mut out: Vec<u8> = Vec::new();
    let mut pkt_id = 0usize;
    let mut deliver = |s: &mut ZcStream<PoolPacket>,
                       m: &mut Model,
                       rng: &mut Rng,
                       seg: &Seg,
                       ctx: &str|
     -> Insert {
        let before = (s.rcv_nxt_offset(), s.ooo_bytes(), s.held_bytes());
        let (p, r) = frame(&pool, rng, &seg.bytes);
        let got = s.insert(isn.wrapping_add(seg.off as u32), p, r);
        let want = m.insert(seg.off as i64, seg.bytes.len() as u64, pkt_id);
        pkt_id += 1;
        assert_eq!(
            got,
            want,
            "{ctx}: outcome of {}..{}",
            seg.off,
            seg.off + seg.bytes.len() as u64
        );
        let after = (s.rcv_nxt_offset(), s.ooo_bytes(), s.held_bytes());
        match got {
            Insert::InOrder { bytes } => {
                assert!(bytes > 0);
                assert_eq!(after.0, before.0 + bytes);
                assert_eq!(after.2, before.2 + bytes);
            }
            Insert::OutOfOrder => {
                assert_eq!(after.0, before.0);
                assert!(after.1 > before.1);
            }
            _ => assert_eq!(after, before, "{ctx}: {got:?} changes nothing"),
        }
        check_model(s, m, &pool, ctx);
        got
    };
    let read_some = |s: &mut ZcStream<PoolPacket>, m: &mut Model, n: usize, out: &mut Vec<u8>| {
        let want = m.read(n);
        let got: Vec<(u64, Vec<u8>)> = s
            .read_fragments(n)
            .map(|f| (f.offset, f.data.to_vec()))
            .collect();
        assert_eq!(got.len(), want.len());
        for ((off, bytes), (wo, we)) in got.iter().zip(&want) {
            assert_eq!((*off, *off + bytes.len() as u64), (*wo, *we));
            assert_eq!(*off, out.len() as u64, "no gaps were skipped");
            out.extend_from_slice(bytes);
        }
        // What was delivered in order is a prefix of the original stream.
        assert_eq!(&out[..], &data[..out.len()]);
    };

    for seg in &order {
        deliver(&mut s, &mut m, &mut rng, seg, "phase 1");
        if rng.chance(30) && (m.nxt as usize) < total {
            // A retransmission from rcv_nxt (it may or may not fit the window).
            let nxt = m.nxt as usize;
            let n = (rng.range(1, max_seg as u64) as usize).min(total - nxt);
            let seg = Seg {
                off: nxt as u64,
                bytes: data[nxt..nxt + n].to_vec(),
            };
            deliver(&mut s, &mut m, &mut rng, &seg, "retransmit");
        }
        if rng.chance(60) {
            let n = rng.below(8) as usize;
            read_some(&mut s, &mut m, n, &mut out);
            let k = rng.below(m.read as u64 + 1) as usize;
            assert_eq!(s.free_fragments(k), m.free(k));
            check_model(&s, &m, &pool, "free");
        }
    }

    // Phase 2: the peer retransmits in order from rcv_nxt within the window
    // while the application reads and frees everything: the stream completes.
    let mut guard = 0;
    while (m.nxt as usize) < total {
        guard += 1;
        assert!(guard < 100_000, "no progress");
        read_some(&mut s, &mut m, usize::MAX, &mut out);
        assert_eq!(s.free_fragments(usize::MAX), m.free(usize::MAX));
        check_model(&s, &m, &pool, "drain");
        let nxt = m.nxt as usize;
        let win = m.window() as usize;
        assert!(win > 0, "everything freed, the window is open");
        let n = (rng.range(1, max_seg as u64) as usize)
            .min(total - nxt)
            .min(win);
        let seg = Seg {
            off: nxt as u64,
            bytes: data[nxt..nxt + n].to_vec(),
        };
        let got = deliver(&mut s, &mut m, &mut rng, &seg, "phase 2");
        assert!(matches!(got, Insert::InOrder { .. }), "{got:?}");
    }
    read_some(&mut s, &mut m, usize::MAX, &mut out);
    assert_eq!(out.len(), total);
    assert_eq!(out, data);
    assert_eq!(s.free_fragments(usize::MAX), m.free(usize::MAX));
    assert_eq!(s.held_bytes(), 0);
    assert_eq!(s.window(), cfg.recv_buffer);
    // Pieces beyond the data (sent past the window's edge) may still wait.
    check_model(&s, &m, &pool, "end");
    drop(s);
    assert!(pool.is_full());
}

fn small_cfg() -> impl Strategy<Value = StreamConfig> {
    (1u32..=600, 1u32..=8, 1u32..=600, 1u32..=6).prop_map(|(r, f, ob, of)| StreamConfig {
        recv_buffer: r,
        max_fragments: f,
        max_ooo_bytes: ob,
        max_ooo_fragments: of,
    })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn small_caps_agree_with_the_model(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        isn in isn_strategy(),
        cfg in small_cfg(),
        max_seg in 1usize..=200,
        seed in any::<u64>(),
    ) {
        small_caps_case(&data, isn, cfg, max_seg, seed);
    }
}

/// Random losses (and duplicates), random order, optional skips while data is
/// still arriving; then `skip_to` the end. What is readable is exactly what
/// arrived before the stream moved past it, at the right offsets.
fn skip_case(data: &[u8], isn: u32, cuts: &[u32], loss_pct: u64, seed: u64) {
    let mut rng = Rng(seed);
    let total = data.len();
    let segs = cut(data, cuts);
    let mut order: Vec<Seg> = Vec::new();
    for s in &segs {
        if !rng.chance(loss_pct) {
            order.push(s.clone());
        }
        if rng.chance(10) {
            order.push(s.clone());
        }
    }
    for _ in 0..rng.below(4) {
        let r = sub_range(total, rng.next() as u32, rng.next() as u32, 300);
        order.push(Seg {
            off: r.start as u64,
            bytes: data[r].to_vec(),
        });
    }
    rng.shuffle(&mut order);

    let pool = PacketPool::new(order.len() as u32 + 1, buf_size(total));
    let mut s = ZcStream::new(big_cfg(), isn);
    // Bytes that made it into the stream, and the model's rcv_nxt.
    let mut got = vec![false; total];
    let mut nxt = 0usize;
    let advance = |got: &[bool], nxt: &mut usize| {
        while *nxt < got.len() && got[*nxt] {
            *nxt += 1;
        }
    };
    let mut skipped = 0u64;
    let mut skips = 0u64;
    for seg in &order {
        let (p, r) = frame(&pool, &mut rng, &seg.bytes);
        s.insert(isn.wrapping_add(seg.off as u32), p, r);
        let (a, b) = (seg.off as usize, seg.off as usize + seg.bytes.len());
        got[a.max(nxt).min(b)..b].iter_mut().for_each(|g| *g = true);
        advance(&got, &mut nxt);
        assert_eq!(s.rcv_nxt_offset(), nxt as u64);
        if rng.chance(8) {
            let target = rng.below(total as u64 + 1) as usize;
            let want = (nxt..target.max(nxt)).filter(|&o| !got[o]).count() as u64;
            let n = s.skip_to(SeqNum(isn.wrapping_add(target as u32)));
            assert_eq!(n, want, "skip_to({target}) from {nxt}");
            skipped += n;
            skips += 1;
            nxt = nxt.max(target);
            advance(&got, &mut nxt);
            assert_eq!(s.rcv_nxt_offset(), nxt as u64);
        } else if rng.chance(5) {
            let next = (nxt + 1..total).find(|&o| got[o]);
            let want = next.map_or(0, |o| (o - nxt) as u64);
            assert_eq!(s.skip_to_next_segment(), want);
            skipped += want;
            skips += 1;
            if let Some(o) = next {
                nxt = o;
                advance(&got, &mut nxt);
            }
            assert_eq!(s.rcv_nxt_offset(), nxt as u64);
        }
    }
    let n = s.skip_to(SeqNum(isn.wrapping_add(total as u32)));
    skipped += n;
    skips += 1;
    assert_eq!(s.rcv_nxt(), SeqNum(isn.wrapping_add(total as u32)));
    assert_eq!(s.ooo_fragments(), 0);
    // A second skip to the same point does nothing.
    assert_eq!(s.skip_to(SeqNum(isn.wrapping_add(total as u32))), 0);

    let missing = got.iter().filter(|&&b| !b).count() as u64;
    assert_eq!(skipped, missing);
    assert_eq!(s.stats().gap_bytes, missing);
    let runs = (0..total)
        .filter(|&o| !got[o] && (o == 0 || got[o - 1]))
        .count() as u64;
    assert!(s.stats().gaps >= runs && s.stats().gaps <= runs + skips);

    let mut seen = vec![false; total];
    let mut last_end = 0u64;
    let mut nfrag = 0;
    for f in s.read_fragments(usize::MAX) {
        nfrag += 1;
        assert!(f.offset >= last_end, "fragments in order, disjoint");
        let (a, b) = (f.offset as usize, f.offset as usize + f.data.len());
        assert!(b <= total);
        assert_eq!(f.data, &data[a..b], "bytes at offset {a}");
        seen[a..b].iter_mut().for_each(|x| *x = true);
        last_end = b as u64;
    }
    assert_eq!(
        seen, got,
        "readable bytes are exactly those that arrived in time"
    );
    assert_eq!(s.free_fragments(usize::MAX), nfrag);
    assert_eq!(s.held_bytes(), 0);
    assert!(pool.is_full());
    drop(s);
    assert!(pool.is_full());
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn skip_to_exposes_exactly_the_lost_bytes(
        data in prop::collection::vec(any::<u8>(), 1..3000),
        isn in isn_strategy(),
        cuts in prop::collection::vec(any::<u32>(), 0..60),
        loss_pct in 0u64..=60,
        seed in any::<u64>(),
    ) {
        skip_case(&data, isn, &cuts, loss_pct, seed);
    }
}
