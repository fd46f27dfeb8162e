//! TCP sequence numbers, compared modulo 2^32 (RFC 9293, 3.4).

use std::fmt;

/// A 32-bit TCP sequence number. `a.before(b)` holds when `b` is less than 2^31
/// ahead of `a`, so comparisons stay right across wraparound.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n`, wrapping.
    #[inline]
    pub fn wrapping_add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Signed distance `self - other`, in `[-2^31, 2^31)`.
    #[inline]
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Whether `self` comes strictly before `other`.
    #[inline]
    pub fn before(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// Whether `self` comes strictly after `other`.
    #[inline]
    pub fn after(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod test {
    use super::SeqNum;

    #[test]
    fn comparisons_wrap() {
        let a = SeqNum(u32::MAX - 10);
        let b = a.wrapping_add(20);
        assert_eq!(b, SeqNum(9));
        assert!(a.before(b));
        assert!(b.after(a));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert!(!a.before(a));
        // Half the space away is "behind".
        assert!(SeqNum(0).after(SeqNum(0x8000_0001)));
    }
}
