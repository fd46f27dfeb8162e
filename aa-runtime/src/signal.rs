//! Signals between the two directions of a connection.
//!
//! A response often cannot be parsed without its request: the response to a
//! `HEAD` carries a Content-Length but no body, and a `2xx` to a `CONNECT`
//! turns the connection into a tunnel. A parser therefore may *signal* a small
//! number (0 to [`Signals::MAX`]) when it parses something the other
//! direction will need, and the other direction's parser *hears* the signals
//! in the order they were sent, one per message it pairs with one of the
//! other side's (`signal`/`heard()` in the `.aag` language;
//! [`Emitter::signal`](crate::Emitter::signal) and
//! [`Emitter::heard`](crate::Emitter::heard) for hand-written parsers).
//!
//! Whoever owns both directions passes the signals across after each
//! segment ([`AaStream::take_signals`](crate::AaStream::take_signals), then
//! [`AaStream::give_signals`](crate::AaStream::give_signals) or
//! [`Parked::give_signals`](crate::Parked::give_signals) on the other
//! direction): `aa-stack`'s passive path does. A queue holds at most
//! [`Signals::CAP`] signals in one word, so that a parked direction keeps
//! its pending signals in 8 bytes; past that the oldest is dropped and
//! counted ([`AaStats::signals_dropped`](crate::AaStats::signals_dropped)).
//!
//! A parser may also wait for a signal before a record (`wait` in the
//! language; [`Emitter::may_wait`](crate::Emitter::may_wait) and
//! [`Step::Wait`](crate::Step::Wait) for hand-written parsers): when the
//! stream was told signals will come
//! ([`AaStream::expect_signals`](crate::AaStream::expect_signals)), it parses
//! no further until [`AaStream::give_signals`](crate::AaStream::give_signals)
//! brings one, or the stream ends.

use std::fmt;

/// A first-in first-out queue of up to [`Signals::CAP`] signals of 0 to
/// [`Signals::MAX`], packed in one word (4 bits each, the count in the top
/// four bits).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals(u64);

const COUNT_SHIFT: u32 = 60;
const VALUES: u64 = (1 << COUNT_SHIFT) - 1;

impl Signals {
    /// Most signals a queue holds.
    pub const CAP: usize = 15;
    /// Largest signal.
    pub const MAX: u64 = 15;

    /// An empty queue.
    pub const fn new() -> Signals {
        Signals(0)
    }

    /// Signals waiting.
    pub fn len(self) -> usize {
        (self.0 >> COUNT_SHIFT) as usize
    }

    /// Whether no signal waits.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Appends `v`, which must be at most [`MAX`](Self::MAX) (higher bits
    /// are dropped). A full queue drops its oldest signal first: returns
    /// whether it did.
    #[inline]
    pub fn push(&mut self, v: u8) -> bool {
        let mut n = self.len();
        let mut values = self.0 & VALUES;
        let full = n == Self::CAP;
        if full {
            values >>= 4;
            n -= 1;
        }
        values |= u64::from(v & 15) << (4 * n);
        self.0 = values | ((n as u64 + 1) << COUNT_SHIFT);
        full
    }

    /// Takes the oldest signal.
    #[inline]
    pub fn pop(&mut self) -> Option<u8> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let v = (self.0 & 15) as u8;
        self.0 = ((self.0 & VALUES) >> 4) | ((n as u64 - 1) << COUNT_SHIFT);
        Some(v)
    }

    /// Appends every signal of `from`, oldest first; returns how many
    /// signals were dropped to make room.
    pub fn append(&mut self, mut from: Signals) -> u64 {
        let mut dropped = 0;
        while let Some(v) = from.pop() {
            dropped += u64::from(self.push(v));
        }
        dropped
    }

    /// The signals, oldest first.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        let mut s = self;
        std::iter::from_fn(move || s.pop())
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_first_out_up_to_the_cap_then_the_oldest_goes() {
        let mut s = Signals::new();
        assert!(s.is_empty());
        assert_eq!(s.pop(), None);
        for v in 0..15u8 {
            assert!(!s.push(v));
        }
        assert_eq!(s.len(), 15);
        assert_eq!(s.iter().collect::<Vec<_>>(), (0..15).collect::<Vec<_>>());
        // Full: 0 goes to make room for 15.
        assert!(s.push(15));
        assert_eq!(s.len(), 15);
        assert_eq!(s.pop(), Some(1));
        let rest: Vec<u8> = s.iter().collect();
        assert_eq!(rest, (2..=15).collect::<Vec<_>>());
    }

    #[test]
    fn append_keeps_the_order_and_counts_what_was_dropped() {
        let mut a = Signals::new();
        let mut b = Signals::new();
        for v in [1, 2, 3] {
            a.push(v);
        }
        for v in 0..14u8 {
            b.push(v % 16);
        }
        assert_eq!(b.append(a), 2);
        let all: Vec<u8> = b.iter().collect();
        assert_eq!(all, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1, 2, 3]);
        assert_eq!(format!("{:?}", a), "[1, 2, 3]");
    }
}
