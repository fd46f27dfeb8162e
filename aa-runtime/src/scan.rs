//! Positions of delimiter bytes, 64 bytes at a time, for parsers whose fields
//! are short.
//!
//! `memchr` finds the first delimiter well, but a record of short fields asks
//! for it once per field, and each call sets up its vectors, aligns, and
//! returns. [`Delims`] instead compares a block of 64 bytes against the set
//! once, keeps the matches as a bitmask, and hands out one position per
//! field from it (a `tzcnt` and a clear), the way SIMD CSV and JSON parsers
//! build a structural index. Generated parsers use it for consecutive
//! elements of a repeated field that ends at one of up to three bytes.

/// Positions in `d` of the bytes of a set of `N` (1 to 3) bytes, from a
/// starting index on, in increasing order.
#[derive(Clone, Debug)]
pub struct Delims<'d, const N: usize> {
    d: &'d [u8],
    set: [u8; N],
    /// Index in `d` of the block `mask` describes.
    block: usize,
    /// Matches in `d[block..block + 64]` not yet handed out: bit `k` for
    /// `d[block + k]`.
    mask: u64,
}

/// Where a [`Delims`] got to, in stream offsets, kept by a parser between
/// calls so that the next record goes on with the bitmask of the last one
/// rather than comparing its bytes again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelimsAt {
    /// Offset of the block the mask describes.
    block: u64,
    /// The mask holds every match from `from` on (those before were handed
    /// out) ...
    from: u64,
    /// ... up to `end` (the end of the block, or of the bytes it was made of).
    end: u64,
    mask: u64,
}

impl DelimsAt {
    /// Nothing kept.
    pub const NONE: DelimsAt = DelimsAt {
        block: 0,
        from: 0,
        end: 0,
        mask: 0,
    };
}

impl Default for DelimsAt {
    fn default() -> Self {
        DelimsAt::NONE
    }
}

impl<'d, const N: usize> Delims<'d, N> {
    /// [`Delims::new`] for `d` at stream offset `base`, going on from `at`
    /// when it covers `from` (a bitmask depends only on the bytes, and the
    /// byte at a stream offset never changes).
    #[inline(always)]
    pub fn resume(d: &'d [u8], base: u64, from: usize, at: &DelimsAt, set: [u8; N]) -> Self {
        let o = base + from as u64;
        if at.block >= base && at.from <= o && o < at.end {
            return Delims {
                d,
                set,
                block: (at.block - base) as usize,
                // Below 64: `o < end <= block + 64`.
                mask: at.mask & (u64::MAX << (o - at.block)),
            };
        }
        Self::new(d, from, set)
    }

    /// The index of the first byte of the set at or after `from`, for a
    /// scan that skips bytes by other means between calls (`from` never goes
    /// below the last index returned).
    #[inline(always)]
    pub fn next_from(&mut self, from: usize) -> Option<usize> {
        if from >= self.block + 64 {
            if from >= self.d.len() {
                self.block = self.d.len();
                self.mask = 0;
                return None;
            }
            self.block = from;
            self.mask = block_mask(self.d, from, &self.set);
        } else if from > self.block {
            self.mask &= u64::MAX << (from - self.block);
        }
        self.next()
    }

    /// What [`Delims::resume`] needs to go on at index `from` of `d` (at
    /// stream offset `base`), every match before `from` handed out.
    #[inline(always)]
    pub fn save(&self, base: u64, from: usize) -> DelimsAt {
        let block = self.block.min(self.d.len());
        DelimsAt {
            block: base + block as u64,
            from: base + from as u64,
            end: base + (block + 64).min(self.d.len()) as u64,
            mask: self.mask,
        }
    }

    /// Positions of the bytes of `set` in `d[from..]`.
    #[inline(always)]
    pub fn new(d: &'d [u8], from: usize, set: [u8; N]) -> Self {
        const { assert!(N >= 1 && N <= 3, "a set of one to three bytes") };
        let mask = if from < d.len() {
            block_mask(d, from, &set)
        } else {
            0
        };
        Delims {
            d,
            set,
            block: from,
            mask,
        }
    }

    /// The index of the next byte of the set, or `None` when `d` has no more.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)] // a hot loop wants no iterator adaptors here
    pub fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.d.len() {
                self.block = self.d.len();
                return None;
            }
            self.mask = block_mask(self.d, self.block, &self.set);
        }
        let j = self.block + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(j)
    }
}

/// Matches of `set` in `d[at..at + 64]` (fewer bytes at the end of `d`): bit
/// `k` for `d[at + k]`.
#[inline(always)]
fn block_mask<const N: usize>(d: &[u8], at: usize, set: &[u8; N]) -> u64 {
    let rest = &d[at..];
    if rest.len() >= 64 {
        let block: &[u8; 64] = rest[..64].try_into().expect("64 bytes");
        return mask64(block, set);
    }
    // The last block: padded, and the bits past the end cleared.
    let mut block = [0u8; 64];
    block[..rest.len()].copy_from_slice(rest);
    mask64(&block, set) & ((1u64 << rest.len()) - 1)
}

/// Bit `k` set where `block[k]` is one of `set`.
#[inline(always)]
pub fn mask64<const N: usize>(block: &[u8; 64], set: &[u8; N]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of x86_64: four 16-byte loads, a compare per byte of
        // the set each.
        mask64_sse2(block, set)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        mask64_words(block, set)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask64_sse2<const N: usize>(block: &[u8; 64], set: &[u8; N]) -> u64 {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    // SAFETY: SSE2 is enabled on every x86_64 target; the loads read
    // `block[16 * q..16 * q + 16]`, inside the 64-byte array.
    unsafe {
        let wants: [__m128i; N] = core::array::from_fn(|k| _mm_set1_epi8(set[k] as i8));
        let mut mask = 0u64;
        for q in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * q) as *const __m128i);
            let mut hit = _mm_setzero_si128();
            for w in &wants {
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, *w));
            }
            mask |= (_mm_movemask_epi8(hit) as u32 as u64) << (16 * q);
        }
        mask
    }
}

/// [`mask64`] a word (8 bytes) at a time, for targets without a vector unit
/// known to every build; on x86_64 it is there for the tests.
#[inline(always)]
pub fn mask64_words<const N: usize>(block: &[u8; 64], set: &[u8; N]) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut mask = 0u64;
    for (q, chunk) in block.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let mut eq = 0u64;
        for &b in set {
            // The high bit of exactly the zero bytes of `x` (no carries
            // between bytes: each byte's low seven bits plus 0x7f stay in it).
            let x = w ^ (LO * b as u64);
            eq |= !(((x & LOW7) + LOW7) | x) & HI;
        }
        // Gather the eight high bits into the low byte, byte 0 first.
        let bits = ((eq >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= bits << (8 * q);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(block: &[u8; 64], set: &[u8]) -> u64 {
        (0..64).fold(0, |m, k| m | (u64::from(set.contains(&block[k])) << k))
    }

    /// Bytes drawn mostly from a few values, so that the set is often hit.
    fn bytes(n: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                3 => Just(b','),
                2 => Just(b'\n'),
                1 => Just(b'\r'),
                1 => Just(0u8),
                1 => Just(0x80u8),
                1 => Just(0xacu8),
                6 => any::<u8>(),
            ],
            0..n,
        )
    }

    proptest! {
        #[test]
        fn masks_agree_with_a_byte_loop(v in bytes(65), a: u8, b: u8, c: u8) {
            let mut block = [0u8; 64];
            let n = v.len().min(64);
            block[..n].copy_from_slice(&v[..n]);
            let one = naive(&block, &[a]);
            prop_assert_eq!(mask64(&block, &[a]), one);
            prop_assert_eq!(mask64_words(&block, &[a]), one);
            let two = naive(&block, &[a, b]);
            prop_assert_eq!(mask64(&block, &[a, b]), two);
            prop_assert_eq!(mask64_words(&block, &[a, b]), two);
            let three = naive(&block, &[a, b, c]);
            prop_assert_eq!(mask64(&block, &[a, b, c]), three);
            prop_assert_eq!(mask64_words(&block, &[a, b, c]), three);
            let csv = naive(&block, b",\n\r");
            prop_assert_eq!(mask64(&block, b",\n\r"), csv);
            prop_assert_eq!(mask64_words(&block, b",\n\r"), csv);
        }

        #[test]
        fn positions_are_every_match_in_order(v in bytes(300), from in 0usize..320) {
            let set = *b",\n\r";
            let want: Vec<usize> = (from..v.len()).filter(|&k| set.contains(&v[k])).collect();
            let mut got = Vec::new();
            let mut s = Delims::new(&v, from, set);
            while let Some(j) = s.next() {
                got.push(j);
            }
            prop_assert_eq!(got, want);
            // Exhausted stays exhausted.
            prop_assert_eq!(s.next(), None);
        }
    }

    proptest! {
        /// Saving after each record and resuming for the next gives what one
        /// scan gives, also when the bytes come in pieces at growing offsets
        /// and when a piece is looked at again from an earlier index.
        #[test]
        fn resuming_gives_the_same_positions(
            v in bytes(400),
            cuts in prop::collection::vec(0usize..400, 0..6),
            stops in prop::collection::vec(1usize..12, 1..40),
            back in 0usize..4,
        ) {
            let set = *b",\n\r";
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= v.len()).collect();
            cuts.push(0);
            cuts.push(v.len());
            cuts.sort_unstable();
            cuts.dedup();
            let want: Vec<usize> = (0..v.len()).filter(|&k| set.contains(&v[k])).collect();
            let mut got = Vec::new();
            let mut at = DelimsAt::NONE;
            let mut stops = stops.into_iter().cycle();
            for w in cuts.windows(2) {
                let (base, d) = (w[0], &v[w[0]..w[1]]);
                let mut from = 0;
                let mut went_back = false;
                loop {
                    // A "record": up to `n` matches, then save.
                    let n = stops.next().unwrap();
                    let mut s = Delims::resume(d, base as u64, from, &at, set);
                    let mut k = 0;
                    while k < n {
                        match s.next() {
                            Some(j) => { got.push(base + j); from = j + 1; k += 1; }
                            None => { from = d.len(); break; }
                        }
                    }
                    at = s.save(base as u64, from);
                    if from >= d.len() { break; }
                    // Looking again from an earlier index (as a parser that
                    // paused does) must not lose matches: take them back.
                    if back > 0 && from > back && !went_back {
                        went_back = true;
                        let again = from - back;
                        got.retain(|&g| g < base + again);
                        from = again;
                    }
                }
            }
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        /// `next_from` with growing starts, as a scan that steps over some
        /// bytes itself, finds the first match at or after each.
        #[test]
        fn next_from_finds_the_first_match_from_there(
            v in bytes(300),
            steps in prop::collection::vec(0usize..90, 1..30),
        ) {
            let set = *b"\r";
            let mut s = Delims::new(&v, 0, set);
            let mut from = 0;
            for step in steps {
                let want = (from..v.len()).find(|&k| v[k] == b'\r');
                let got = s.next_from(from);
                prop_assert_eq!(got, want, "from {}", from);
                from = got.map_or(v.len(), |j| j + 1) + step;
            }
        }
    }

    #[test]
    fn positions_at_block_edges() {
        let mut v = vec![b'a'; 200];
        for k in [0, 63, 64, 127, 128, 199] {
            v[k] = b',';
        }
        let mut s = Delims::new(&v, 0, [b',']);
        let mut got = Vec::new();
        while let Some(j) = s.next() {
            got.push(j);
        }
        assert_eq!(got, [0, 63, 64, 127, 128, 199]);
        let mut s = Delims::new(&v, 64, [b',']);
        assert_eq!(s.next(), Some(64));
        let mut s = Delims::new(&v, 200, [b',']);
        assert_eq!(s.next(), None);
        let mut s = Delims::new(&[], 0, [b',']);
        assert_eq!(s.next(), None);
    }
}
