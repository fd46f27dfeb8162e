//! Field views: a span of the in-order stream, in one packet or many, read in
//! place (the thesis's `get_byte`, `fieldstrcmp`, `fieldstrstr`, `fieldatoi`).
//!
//! A field is a run of fragments: its bytes are the chunks [`Field::chunks`]
//! yields. Every operation here works on those chunks without copying them
//! together; where a match may straddle two chunks (`find`), the few bytes around
//! the boundary go through a small buffer on the stack.

use crate::packet::Packet;
use crate::stream::FragStore;
use memchr::memmem;
use std::fmt;

/// Flag on a field: its bytes hold escapes that [`crate::csv::unquote`] removes
/// (a CSV field with doubled quotes, or text after a closing quote).
pub const FLAG_ESCAPED: u8 = 1;

/// Where a field lies: stream offsets `[start, end)`, and the id of the fragment
/// holding `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FieldSlot {
    pub tag: u16,
    pub flags: u8,
    pub frag: u64,
    pub start: u64,
    pub end: u64,
}

/// One field of a record, read in place in the packet buffers.
pub struct Field<'a, P: Packet> {
    pub(crate) store: &'a FragStore<P>,
    pub(crate) slot: FieldSlot,
}

impl<P: Packet> Clone for Field<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Packet> Copy for Field<'_, P> {}

/// Why a field is not an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntError {
    /// The field is empty.
    Empty,
    /// The byte at this index of the field is not a digit of the base.
    InvalidDigit {
        /// Index in the field.
        at: u64,
    },
    /// The value does not fit in a `u64`.
    Overflow,
}

impl fmt::Display for IntError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntError::Empty => f.write_str("empty field where an integer was expected"),
            IntError::InvalidDigit { at } => write!(f, "invalid digit at byte {at} of the field"),
            IntError::Overflow => f.write_str("integer does not fit in 64 bits"),
        }
    }
}

impl std::error::Error for IntError {}

/// Parses `bytes` as an unsigned integer in base `radix` (10 or 16: digits,
/// and `a-f`, `A-F` in base 16; nothing else): what [`Field::parse_dec`] and
/// [`Field::parse_hex`] do for a field in one packet, for a slice of one.
pub fn parse_uint(bytes: &[u8], radix: u32) -> Result<u64, IntError> {
    if bytes.is_empty() {
        return Err(IntError::Empty);
    }
    let mut acc = Digits::new(radix);
    acc.push(bytes)?;
    Ok(acc.value)
}

/// Reads `bytes` as an unsigned big-endian integer: 0 for no bytes,
/// [`IntError::Overflow`] for more than 8. What [`Field::parse_be`] does for
/// a field in one packet, for a slice of one.
pub fn parse_be(bytes: &[u8]) -> Result<u64, IntError> {
    if bytes.len() > 8 {
        return Err(IntError::Overflow);
    }
    Ok(bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b)))
}

/// [`parse_be`] for little-endian bytes.
pub fn parse_le(bytes: &[u8]) -> Result<u64, IntError> {
    if bytes.len() > 8 {
        return Err(IntError::Overflow);
    }
    Ok(bytes.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b)))
}

/// An integer read digit by digit, over one slice or several.
struct Digits {
    radix: u32,
    /// So many digits (19 decimal, 16 hexadecimal) fit in 64 bits.
    fit: u64,
    at: u64,
    value: u64,
}

impl Digits {
    #[inline]
    fn new(radix: u32) -> Digits {
        let fit = match radix {
            10 => 19,
            16 => 16,
            _ => 0,
        };
        Digits {
            radix,
            fit,
            at: 0,
            value: 0,
        }
    }

    #[inline]
    fn push(&mut self, c: &[u8]) -> Result<(), IntError> {
        let radix = self.radix as u64;
        for &b in c {
            let d = (b as char)
                .to_digit(self.radix)
                .ok_or(IntError::InvalidDigit { at: self.at })? as u64;
            self.value = if self.at < self.fit {
                self.value * radix + d
            } else {
                self.value
                    .checked_mul(radix)
                    .and_then(|v| v.checked_add(d))
                    .ok_or(IntError::Overflow)?
            };
            self.at += 1;
        }
        Ok(())
    }
}

/// The chunks of a field, one per fragment it spans.
pub struct Chunks<'a, P: Packet> {
    store: &'a FragStore<P>,
    id: u64,
    off: u64,
    end: u64,
}

impl<'a, P: Packet> Iterator for Chunks<'a, P> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.off >= self.end {
            return None;
        }
        let m = self.store.get(self.id);
        // A field pins every fragment it spans, so the payload is held.
        let Some(payload) = m.payload() else {
            debug_assert!(false, "field over a released fragment");
            self.off = self.end;
            return None;
        };
        let to = self.end.min(m.end());
        let chunk = &payload[(self.off - m.off) as usize..(to - m.off) as usize];
        self.off = to;
        self.id += 1;
        Some(chunk)
    }
}

/// Longest needle for which straddling matches are found through a stack buffer;
/// longer needles compare byte by byte at each boundary.
const STRADDLE_MAX: usize = 64;

impl<'a, P: Packet> Field<'a, P> {
    /// The field's tag: its position in the record type's field list.
    pub fn tag(&self) -> u16 {
        self.slot.tag
    }

    /// Flags set by the parser (see [`FLAG_ESCAPED`]).
    pub fn flags(&self) -> u8 {
        self.slot.flags
    }

    /// Stream offset of the first byte.
    pub fn offset(&self) -> u64 {
        self.slot.start
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.slot.end - self.slot.start
    }

    /// Whether the field has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, as one slice per packet spanned.
    pub fn chunks(&self) -> Chunks<'a, P> {
        Chunks {
            store: self.store,
            id: self.slot.frag,
            off: self.slot.start,
            end: self.slot.end,
        }
    }

    /// The bytes as one slice, when the field lies in one packet (the usual
    /// case); `None` when it spans several.
    #[inline]
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        let (start, end) = (self.slot.start, self.slot.end);
        if start == end {
            return Some(&[]);
        }
        let f = self.store.get(self.slot.frag);
        if end > f.end() {
            return None;
        }
        // The field's bytes as indices into the packet's data: one bounds
        // check instead of the payload's and then the field's.
        let at = (f.start as u64).wrapping_sub(f.off);
        f.pkt
            .as_ref()?
            .data()
            .get(at.wrapping_add(start) as usize..at.wrapping_add(end) as usize)
    }

    /// Number of packets the field spans.
    pub fn packets(&self) -> usize {
        self.chunks().count()
    }

    /// The byte at index `i`.
    #[inline]
    pub fn byte_at(&self, i: u64) -> Option<u8> {
        if i >= self.len() {
            return None;
        }
        // In the first packet (the usual case): no chunk iteration.
        let f = self.store.get(self.slot.frag);
        let at = self.slot.start + i;
        if at < f.end() {
            let p = f.pkt.as_ref()?;
            return p
                .data()
                .get(f.start as usize + (at - f.off) as usize)
                .copied();
        }
        self.byte_at_later(i)
    }

    /// [`Field::byte_at`] past the first packet.
    #[inline(never)]
    fn byte_at_later(&self, mut i: u64) -> Option<u8> {
        for c in self.chunks() {
            if i < c.len() as u64 {
                return Some(c[i as usize]);
            }
            i -= c.len() as u64;
        }
        None
    }

    /// Whether the field starts with `prefix`, under `eq` per chunk.
    fn prefix_by(&self, prefix: &[u8], eq: impl Fn(&[u8], &[u8]) -> bool) -> bool {
        if (prefix.len() as u64) > self.len() {
            return false;
        }
        if let Some(b) = self.contiguous() {
            return eq(&b[..prefix.len()], prefix);
        }
        let mut rest = prefix;
        for c in self.chunks() {
            if rest.is_empty() {
                break;
            }
            let n = c.len().min(rest.len());
            if !eq(&c[..n], &rest[..n]) {
                return false;
            }
            rest = &rest[n..];
        }
        true
    }

    /// Whether the bytes equal `s`.
    pub fn eq_bytes(&self, s: &[u8]) -> bool {
        self.len() == s.len() as u64 && self.starts_with(s)
    }

    /// Whether the bytes equal `s`, ignoring ASCII case.
    pub fn eq_ignore_ascii_case(&self, s: &[u8]) -> bool {
        self.len() == s.len() as u64 && self.starts_with_ignore_ascii_case(s)
    }

    /// Whether the field starts with `prefix`.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.prefix_by(prefix, |a, b| a == b)
    }

    /// Whether the field starts with `prefix`, ignoring ASCII case.
    pub fn starts_with_ignore_ascii_case(&self, prefix: &[u8]) -> bool {
        self.prefix_by(prefix, |a, b| a.eq_ignore_ascii_case(b))
    }

    /// Index of the first occurrence of `needle`, also when it straddles packets.
    pub fn find(&self, needle: &[u8]) -> Option<u64> {
        if needle.is_empty() {
            return Some(0);
        }
        if let Some(b) = self.contiguous() {
            return match needle {
                [c] => memchr::memchr(*c, b),
                _ => memmem::find(b, needle),
            }
            .map(|i| i as u64);
        }
        if needle.len() == 1 {
            let mut base = 0u64;
            for c in self.chunks() {
                if let Some(i) = memchr::memchr(needle[0], c) {
                    return Some(base + i as u64);
                }
                base += c.len() as u64;
            }
            return None;
        }
        let finder = memmem::Finder::new(needle);
        let k = needle.len() - 1;
        // The last (up to k) bytes before the current chunk, for straddles.
        let mut tail = [0u8; STRADDLE_MAX];
        let mut tail_len = 0usize;
        let mut base = 0u64;
        for c in self.chunks() {
            if tail_len > 0 {
                if let Some(i) = self.straddle(needle, &finder, &tail[..tail_len], c, base) {
                    return Some(i);
                }
            }
            if let Some(i) = finder.find(c) {
                return Some(base + i as u64);
            }
            base += c.len() as u64;
            if k <= STRADDLE_MAX {
                // tail = last k bytes of (tail ++ c)
                if c.len() >= k {
                    tail[..k].copy_from_slice(&c[c.len() - k..]);
                    tail_len = k;
                } else {
                    let keep = (k - c.len()).min(tail_len);
                    tail.copy_within(tail_len - keep..tail_len, 0);
                    tail[keep..keep + c.len()].copy_from_slice(c);
                    tail_len = keep + c.len();
                }
            } else {
                tail_len = 1; // marks "not the first chunk" for the slow path
            }
        }
        None
    }

    /// A match starting before the chunk that begins at field index `base` and
    /// ending inside it or later.
    fn straddle(
        &self,
        needle: &[u8],
        finder: &memmem::Finder<'_>,
        tail: &[u8],
        chunk: &[u8],
        base: u64,
    ) -> Option<u64> {
        let k = needle.len() - 1;
        if k <= STRADDLE_MAX {
            let mut win = [0u8; 2 * STRADDLE_MAX];
            let head = chunk.len().min(k);
            win[..tail.len()].copy_from_slice(tail);
            win[tail.len()..tail.len() + head].copy_from_slice(&chunk[..head]);
            let w = &win[..tail.len() + head];
            // Only matches that start in the tail are straddles; a match that
            // needs bytes beyond `head` is found at the next boundary.
            return finder
                .find(w)
                .filter(|&i| i < tail.len())
                .map(|i| base - (tail.len() - i) as u64);
        }
        // Long needle: compare at each start position before the boundary.
        let first = base.saturating_sub(k as u64);
        (first..base).find(|&s| self.matches_at(s, needle))
    }

    fn matches_at(&self, at: u64, needle: &[u8]) -> bool {
        if at + needle.len() as u64 > self.len() {
            return false;
        }
        let sub = Field {
            store: self.store,
            slot: FieldSlot {
                frag: self.store.find(self.slot.start + at).max(self.slot.frag),
                start: self.slot.start + at,
                ..self.slot
            },
        };
        sub.starts_with(needle)
    }

    /// The bytes `[from, to)` of this field as a field (indices clamped to it).
    pub fn slice(&self, from: u64, to: u64) -> Field<'a, P> {
        let len = self.len();
        let (from, to) = (from.min(len), to.min(len).max(from.min(len)));
        let start = self.slot.start + from;
        let mut frag = self.slot.frag;
        if from < to {
            while self.store.get(frag).end() <= start {
                frag += 1;
            }
        }
        Field {
            store: self.store,
            slot: FieldSlot {
                frag,
                start,
                end: self.slot.start + to,
                ..self.slot
            },
        }
    }

    /// The field without leading and trailing spaces, tabs, CRs and LFs.
    pub fn trim_ascii(&self) -> Field<'a, P> {
        let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        if let Some(b) = self.contiguous() {
            // Within one packet: the trimmed field starts in the same one.
            let (first, last) = match b.iter().position(|&c| !ws(c)) {
                Some(first) => {
                    let last = b.iter().rposition(|&c| !ws(c)).map_or(first, |i| i + 1);
                    (first as u64, last as u64)
                }
                None => (0, 0),
            };
            return Field {
                store: self.store,
                slot: FieldSlot {
                    start: self.slot.start + first,
                    end: self.slot.start + last,
                    ..self.slot
                },
            };
        }
        let (mut first, mut last, mut at) = (None, 0u64, 0u64);
        for c in self.chunks() {
            for &b in c {
                if !ws(b) {
                    first.get_or_insert(at);
                    last = at + 1;
                }
                at += 1;
            }
        }
        match first {
            Some(f) => self.slice(f, last),
            None => self.slice(0, 0),
        }
    }

    /// Parses the bytes as an unsigned decimal integer (digits only).
    #[inline]
    pub fn parse_dec(&self) -> Result<u64, IntError> {
        self.parse_radix(10)
    }

    /// Parses the bytes as an unsigned hexadecimal integer (digits and `a-f`,
    /// `A-F` only; no `0x`).
    #[inline]
    pub fn parse_hex(&self) -> Result<u64, IntError> {
        self.parse_radix(16)
    }

    /// Reads the bytes as an unsigned big-endian integer (a length or a
    /// value of 1 to 8 bytes, as `u24` lengths in TLS handshakes): 0 when
    /// the field is empty, [`IntError::Overflow`] when it has more than 8.
    pub fn parse_be(&self) -> Result<u64, IntError> {
        if self.len() > 8 {
            return Err(IntError::Overflow);
        }
        let mut v = 0u64;
        for c in self.chunks() {
            v = c.iter().fold(v, |v, &b| v << 8 | u64::from(b));
        }
        Ok(v)
    }

    /// [`Field::parse_be`] for little-endian bytes.
    pub fn parse_le(&self) -> Result<u64, IntError> {
        if self.len() > 8 {
            return Err(IntError::Overflow);
        }
        let (mut v, mut shift) = (0u64, 0u32);
        for c in self.chunks() {
            for &b in c {
                v |= u64::from(b) << shift;
                shift += 8;
            }
        }
        Ok(v)
    }

    #[inline]
    fn parse_radix(&self, radix: u32) -> Result<u64, IntError> {
        if self.is_empty() {
            return Err(IntError::Empty);
        }
        let mut acc = Digits::new(radix);
        match self.contiguous() {
            Some(b) => acc.push(b)?,
            None => self.chunks().try_for_each(|c| acc.push(c))?,
        }
        Ok(acc.value)
    }

    /// Copies the first bytes into `buf`; returns how many (the smaller of the
    /// field's and the buffer's length).
    pub fn copy_to(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        for c in self.chunks() {
            let m = c.len().min(buf.len() - n);
            buf[n..n + m].copy_from_slice(&c[..m]);
            n += m;
            if n == buf.len() {
                break;
            }
        }
        n
    }

    /// The bytes copied into a new vector (a convenience; allocates).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        self.chunks().for_each(|c| v.extend_from_slice(c));
        v
    }
}

impl<P: Packet> fmt::Debug for Field<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({}..{} ", self.slot.start, self.slot.end)?;
        for c in self.chunks() {
            write!(f, "{}", c.escape_ascii())?;
        }
        f.write_str(")")
    }
}
