//! TCP options and the TCP checksum.
//!
//! Options are decoded by etherparse's `TcpOptionsIterator`, which stops for
//! good at the first option kind it does not know (MD5 19, MPTCP 30, Fast Open
//! 34, experimental 253/254, ...). Linux skips unknown kinds by their length
//! byte, and an MD5-signed SYN puts its MD5 option *before* the MSS, so
//! [`parse_options`] resumes the iterator after each such option. Bad lengths
//! are handled like Linux's `tcp_parse_options`: a known kind with a wrong size
//! is skipped, a length below 2 or past the end stops the walk; both set
//! [`TcpOpts::malformed`]. Later duplicates win, as in Linux.
//!
//! The exact `NOP NOP TS` layout of data segments takes a fast path first,
//! as Linux's `tcp_fast_parse_options` does. The options are reported
//! whatever the segment's flags; whether MSS or window scale count outside a
//! SYN is for the TCP layer to decide.
//!
//! The checksum is summed here ([`sum32`]) rather than by etherparse: the
//! bench showed its summing loop at twice the cost of the rest of the parse.
//! etherparse's `Sum16BitWords` stays as the property-test oracle.

use std::net::{IpAddr, Ipv4Addr};

use super::ChecksumStatus;

use etherparse::{TcpOptionElement, TcpOptionReadError, TcpOptionsIterator};

use super::TcpOpts;

/// Decodes the option bytes of a TCP header (after the 20 fixed bytes).
pub fn parse_options(options: &[u8]) -> TcpOpts {
    // Fast path, as in Linux's `tcp_fast_parse_options`: NOP NOP TS is what
    // nearly every data segment of a timestamping connection carries.
    if let [1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3] = *options {
        return TcpOpts {
            timestamps: Some((
                u32::from_be_bytes([v0, v1, v2, v3]),
                u32::from_be_bytes([e0, e1, e2, e3]),
            )),
            ..TcpOpts::default()
        };
    }
    walk_options(options)
}

/// The general option walk (see the module note).
fn walk_options(options: &[u8]) -> TcpOpts {
    let mut opts = TcpOpts::default();
    let mut it = TcpOptionsIterator::from_slice(options);
    loop {
        let at = it.rest();
        match it.next() {
            None => return opts,
            Some(Ok(el)) => match el {
                TcpOptionElement::MaximumSegmentSize(mss) => opts.mss = Some(mss),
                TcpOptionElement::WindowScale(shift) => opts.wscale = Some(shift),
                TcpOptionElement::SelectiveAcknowledgementPermitted => opts.sack_permitted = true,
                TcpOptionElement::Timestamp(val, ecr) => opts.timestamps = Some((val, ecr)),
                TcpOptionElement::Noop | TcpOptionElement::SelectiveAcknowledgement(..) => {}
            },
            Some(Err(err)) => {
                // `at` starts with the option etherparse gave up on; skip it by
                // its own length if that length is sane.
                let len = at.get(1).map_or(0, |&l| usize::from(l));
                if !(2..=at.len()).contains(&len) {
                    opts.malformed = true;
                    return opts;
                }
                if !matches!(err, TcpOptionReadError::UnknownId(_)) {
                    opts.malformed = true;
                }
                it = TcpOptionsIterator::from_slice(&at[len..]);
            }
        }
    }
}

/// Whether the checksum of `tcp` (header and payload, exactly as long as the
/// IP packet says) is right for the given addresses (RFC 9293 3.1, RFC 8200
/// 8.1). `src` and `dst` must be of the same family.
pub fn checksum_ok(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> bool {
    checksum_status(src, dst, tcp) == ChecksumStatus::Valid
}

/// The checksum of `tcp` for the given addresses: right, wrong, or wrong in
/// exactly the way a sender with checksum offload leaves it before the NIC
/// fills it in — the folded pseudo-header sum (Linux `CHECKSUM_PARTIAL`, what
/// a capture on the sending host or a veth shows) or zero.
pub fn checksum_status(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> ChecksumStatus {
    let pseudo_sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_pseudo_sum(s, d, tcp.len()),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = [0u8; 40];
            pseudo[0..16].copy_from_slice(&s.octets());
            pseudo[16..32].copy_from_slice(&d.octets());
            pseudo[32..36].copy_from_slice(&(tcp.len() as u32).to_be_bytes());
            pseudo[39] = 6;
            sum32(&pseudo)
        }
        _ => return ChecksumStatus::Invalid,
    };
    // The sum over everything, checksum field included, is all ones when
    // right; all ones reads the same in either byte order.
    if fold(pseudo_sum + sum32(tcp)) == 0xffff {
        return ChecksumStatus::Valid;
    }
    // Sums are in native byte order; so is the field read natively.
    let field = match tcp.get(16..18) {
        Some(f) => u16::from_ne_bytes([f[0], f[1]]),
        None => return ChecksumStatus::Invalid,
    };
    let partial = fold(pseudo_sum);
    if field == 0 || field == partial || field == !partial {
        ChecksumStatus::Offloaded
    } else {
        ChecksumStatus::Invalid
    }
}

/// The unfolded sum of the IPv4 pseudo-header (RFC 9293 3.1) for a TCP
/// segment of `tcp_len` bytes, in the native byte order of [`sum32`]. Folded,
/// it is what a sender leaves in the checksum field for a NIC to complete.
pub fn ipv4_pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, tcp_len: usize) -> u64 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6;
    // An IPv4 packet is at most 65535 bytes, so a TCP length fits 16 bits.
    pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    sum32(&pseudo)
}

/// Sum of `data` as native-endian 32-bit words (the last one zero-padded),
/// into `u64`s with no carry handling: it takes 2^32 words to overflow one.
/// Eight independent accumulators over 32-byte blocks keep the adds free of
/// a common dependency. Folded to 16 bits this is the RFC 1071
/// one's-complement sum in native byte order; pieces may be summed
/// separately if each but the last has an even length.
///
/// This replaces etherparse's `Sum16BitWords::add_slice` (kept as the test
/// oracle), whose carry on every 8-byte step made checksum verification cost
/// twice the rest of the parse; this runs about 2.4 times faster on the bench
/// (`benches/wire.rs`, `wire/checksum_1480`).
///
/// On x86-64 CPUs with AVX2 (checked once, at run time), segments of 256
/// bytes and more are summed by the same loop compiled for AVX2, which the
/// compiler vectorises four words wide instead of two.
#[inline]
pub fn sum32(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= 256 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (just checked).
        return unsafe { sum32_avx2(data) };
    }
    sum32_words(data)
}

/// [`sum32`] without the AVX2 path: the baseline of `benches/wire.rs`.
#[inline]
pub fn sum32_portable(data: &[u8]) -> u64 {
    sum32_words(data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum32_avx2(data: &[u8]) -> u64 {
    sum32_words(data)
}

/// Copies `src` into `dst` (of the same length) and returns [`sum32`] of
/// it, in one pass: a sender that computes the TCP checksum reads the
/// payload once instead of copying it into the frame and reading it back.
/// AVX2 as for [`sum32`].
#[inline]
pub fn copy_sum32(dst: &mut [u8], src: &[u8]) -> u64 {
    assert_eq!(dst.len(), src.len(), "copy_sum32: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if src.len() >= 256 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (just checked).
        return unsafe { copy_sum32_avx2(dst, src) };
    }
    copy_sum32_words(dst, src)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_sum32_avx2(dst: &mut [u8], src: &[u8]) -> u64 {
    copy_sum32_words(dst, src)
}

#[inline(always)]
fn copy_sum32_words(dst: &mut [u8], src: &[u8]) -> u64 {
    let word = |w: &[u8]| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    let mut to = dst.chunks_exact_mut(32);
    let mut from = src.chunks_exact(32);
    let mut acc = [0u64; 8];
    for (t, f) in (&mut to).zip(&mut from) {
        t.copy_from_slice(f);
        for (i, a) in acc.iter_mut().enumerate() {
            *a += word(&f[4 * i..]);
        }
    }
    let rest = from.remainder();
    to.into_remainder().copy_from_slice(rest);
    acc.iter().sum::<u64>() + sum32_words(rest)
}

#[inline(always)]
fn sum32_words(data: &[u8]) -> u64 {
    let word = |w: &[u8]| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    let mut blocks = data.chunks_exact(32);
    let mut acc = [0u64; 8];
    for b in &mut blocks {
        for (i, a) in acc.iter_mut().enumerate() {
            *a += word(&b[4 * i..]);
        }
    }
    let mut sum: u64 = acc.iter().sum();
    let mut words = blocks.remainder().chunks_exact(4);
    for w in &mut words {
        sum += word(w);
    }
    let rest = words.remainder();
    let mut last = [0u8; 4];
    last[..rest.len()].copy_from_slice(rest);
    sum + word(&last)
}

/// Folds a [`sum32`] to a 16-bit one's-complement sum (native byte order).
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod test {
    use super::*;
    use etherparse::checksum::Sum16BitWords;
    use proptest::prelude::*;

    #[test]
    fn checksum_offload_pattern_is_told_from_corruption() {
        use std::net::Ipv4Addr;
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        );
        let frame = crate::frame::TcpFrame::new((a, 40000), (b, 80))
            .build(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut tcp = frame[34..].to_vec();
        assert_eq!(checksum_status(a, b, &tcp), ChecksumStatus::Valid);
        // What Linux leaves for the NIC: the pseudo-header sum, not inverted.
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&[198, 51, 100, 1]);
        pseudo[4..8].copy_from_slice(&[198, 51, 100, 2]);
        pseudo[9] = 6;
        pseudo[10..].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
        tcp[16..18].copy_from_slice(&fold(sum32(&pseudo)).to_ne_bytes());
        assert_eq!(checksum_status(a, b, &tcp), ChecksumStatus::Offloaded);
        tcp[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(checksum_status(a, b, &tcp), ChecksumStatus::Offloaded);
        tcp[16..18].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(checksum_status(a, b, &tcp), ChecksumStatus::Invalid);
    }

    proptest! {
        /// `sum32` + `fold` against etherparse's checksum (the oracle), at
        /// every length and split point.
        #[test]
        fn sum_matches_etherparse(data in proptest::collection::vec(any::<u8>(), 0..3000), split in any::<usize>()) {
            let theirs = Sum16BitWords::new().add_slice(&data).ones_complement();
            prop_assert_eq!(!fold(sum32(&data)), theirs);
            prop_assert_eq!(sum32_portable(&data), sum32(&data), "the AVX2 path sums the same");
            let split = (split % (data.len() + 1)) & !1;
            let (a, b) = data.split_at(split);
            prop_assert_eq!(!fold(sum32(a) + sum32(b)), theirs);
        }

        /// `copy_sum32` copies exactly and sums as `sum32`, at every length
        /// and alignment of either side (the AVX2 path from 256 bytes).
        #[test]
        fn copy_sum_copies_and_sums(data in proptest::collection::vec(any::<u8>(), 0..3000), at in 0usize..8, from in 0usize..8) {
            let src = &data[from.min(data.len())..];
            let mut dst = vec![0xa5u8; src.len() + at + 3];
            let sum = copy_sum32(&mut dst[at..at + src.len()], src);
            prop_assert_eq!(sum, sum32(src));
            prop_assert_eq!(&dst[at..at + src.len()], src);
            prop_assert!(dst[..at].iter().chain(&dst[at + src.len()..]).all(|&b| b == 0xa5));
        }
    }

    #[test]
    fn linux_syn_options() {
        // MSS 1460, SACK_PERM, TS 1/0, NOP, WS 7.
        let bytes = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let o = parse_options(&bytes);
        assert_eq!(
            o,
            TcpOpts {
                mss: Some(1460),
                wscale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                malformed: false,
            }
        );
    }

    #[test]
    fn timestamp_fast_path_agrees_with_the_walk() {
        let bytes = [1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9];
        let fast = parse_options(&bytes);
        assert_eq!(fast.timestamps, Some((0xdead_beef, 9)));
        assert_eq!(fast, walk_options(&bytes));
        // Not the exact layout: the walk decides.
        assert_eq!(parse_options(&bytes[..11]), walk_options(&bytes[..11]));
        assert!(parse_options(&bytes[..11]).malformed);
    }

    #[test]
    fn unknown_kinds_are_skipped_not_fatal() {
        // MD5 signature (kind 19, 18 bytes) before the MSS, as Linux sends it.
        let mut bytes = vec![1, 1, 19, 18];
        bytes.extend_from_slice(&[0xaa; 16]);
        bytes.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 9]);
        let o = parse_options(&bytes);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.wscale, Some(9));
        assert!(!o.malformed);
        // Fast Open cookie (34) between known options.
        let bytes = [4, 2, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 0x02, 0x18];
        let o = parse_options(&bytes);
        assert!(o.sack_permitted);
        assert_eq!(o.mss, Some(536));
    }

    #[test]
    fn bad_lengths() {
        // MSS with length 3: skipped (malformed), WS after it still read.
        let o = parse_options(&[2, 3, 5, 3, 3, 2]);
        assert_eq!((o.mss, o.wscale, o.malformed), (None, Some(2), true));
        // Length 0, 1, or past the end: stop.
        for bytes in [
            &[2u8, 4, 5, 180, 99, 0][..],
            &[99, 1, 3, 3, 2],
            &[3, 3, 4, 99, 8, 1],
        ] {
            let o = parse_options(bytes);
            assert!(o.malformed, "{bytes:?}");
        }
        assert_eq!(parse_options(&[2, 4, 5, 180, 99, 0]).mss, Some(1460));
        assert_eq!(parse_options(&[3, 3, 4, 99, 8, 1]).wscale, Some(4));
        // End of option list stops cleanly, padding after it is ignored.
        let o = parse_options(&[4, 2, 0, 2, 4, 5]);
        assert!(o.sack_permitted && o.mss.is_none() && !o.malformed);
        // A lone unknown kind byte at the end.
        assert!(parse_options(&[1, 1, 1, 200]).malformed);
    }
}
