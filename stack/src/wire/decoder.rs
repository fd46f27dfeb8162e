//! [`Decoder`]: [`parse`] plus the checksum policy plus the counters a run's
//! summary prints. What the passive path calls once per received frame.

use std::fmt;

use super::{parse, ChecksumMode, ChecksumPolicy, ChecksumStatus, LinkType, Segment, WireError};
use crate::io::{RxChecksum, RxMeta};

/// Frames seen by a [`Decoder`], by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames decoded.
    pub frames: u64,
    /// TCP segments returned.
    pub segments: u64,
    /// Frames cut short ([`WireError::Truncated`]).
    pub truncated: u64,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...), including too many VLAN tags.
    pub not_ip: u64,
    /// IP but not TCP.
    pub not_tcp: u64,
    /// IP fragments, skipped.
    pub fragments: u64,
    /// Malformed headers: IP version, IP header or total length, IP
    /// extension, TCP data offset.
    pub malformed: u64,
    /// Dropped for a bad TCP checksum.
    pub bad_checksum: u64,
}

/// Adds the counts of another (a decoder or observer of another thread, say).
impl std::ops::AddAssign for WireStats {
    fn add_assign(&mut self, from: WireStats) {
        // Every field named: a new counter cannot be forgotten here.
        let WireStats {
            frames,
            segments,
            truncated,
            not_ip,
            not_tcp,
            fragments,
            malformed,
            bad_checksum,
        } = from;
        self.frames += frames;
        self.segments += segments;
        self.truncated += truncated;
        self.not_ip += not_ip;
        self.not_tcp += not_tcp;
        self.fragments += fragments;
        self.malformed += malformed;
        self.bad_checksum += bad_checksum;
    }
}

impl WireStats {
    /// Counts one outcome.
    pub fn count(&mut self, result: &Result<Segment, WireError>) {
        self.frames += 1;
        let slot = match result {
            Ok(_) => &mut self.segments,
            Err(WireError::Truncated { .. }) => &mut self.truncated,
            Err(WireError::NotIpv4OrIpv6 { .. } | WireError::TooManyVlanTags) => &mut self.not_ip,
            Err(WireError::NotTcp { .. }) => &mut self.not_tcp,
            Err(WireError::Fragment) => &mut self.fragments,
            Err(WireError::BadChecksum) => &mut self.bad_checksum,
            Err(
                WireError::BadIpVersion { .. }
                | WireError::BadIpHeaderLength { .. }
                | WireError::BadIpTotalLength { .. }
                | WireError::BadIpExtension
                | WireError::BadTcpDataOffset { .. },
            ) => &mut self.malformed,
        };
        *slot += 1;
    }
}

impl fmt::Display for WireStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames: {} TCP segments, {} truncated, {} not IP, {} not TCP, \
             {} fragments, {} malformed, {} bad checksum",
            self.frames,
            self.segments,
            self.truncated,
            self.not_ip,
            self.not_tcp,
            self.fragments,
            self.malformed,
            self.bad_checksum
        )
    }
}

/// Parses frames, applies a [`ChecksumPolicy`], counts every outcome.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// The checksum policy (its report says whether offload was assumed).
    pub policy: ChecksumPolicy,
    /// Outcome counters.
    pub stats: WireStats,
}

impl Decoder {
    /// A decoder with a default [`ChecksumPolicy`] for `mode`.
    pub fn new(mode: ChecksumMode) -> Decoder {
        Decoder::with_policy(ChecksumPolicy::new(mode))
    }

    /// A decoder with the given policy.
    pub fn with_policy(policy: ChecksumPolicy) -> Decoder {
        Decoder {
            policy,
            stats: WireStats::default(),
        }
    }

    /// Parses one frame; a segment the policy drops is
    /// `Err(WireError::BadChecksum)`. Every call is counted in `stats`.
    pub fn decode(&mut self, frame: &[u8], link: LinkType) -> Result<Segment, WireError> {
        let result = parse(frame, link, self.policy.wants_check()).and_then(|seg| {
            if self.policy.admit(seg.checksum) {
                Ok(seg)
            } else {
                Err(WireError::BadChecksum)
            }
        });
        self.stats.count(&result);
        result
    }

    /// [`decode`](Self::decode) of a received frame, taking the device's
    /// word on its checksums ([`RxMeta::checksum`], from receive checksum
    /// offload): a frame the device found good is not checked again (status
    /// `Valid`, admitted by the policy as a good one); one it found bad is
    /// dropped as a bad checksum, or kept as `Invalid` in
    /// [`ChecksumMode::Off`] (the policy's own counters do not see it; the
    /// decoder's `bad_checksum` does). `Unknown` is `decode`.
    pub fn decode_rx(&mut self, frame: &[u8], meta: &RxMeta) -> Result<Segment, WireError> {
        let result = match meta.checksum {
            RxChecksum::Unknown => return self.decode(frame, meta.link),
            RxChecksum::Good => parse(frame, meta.link, false).and_then(|mut seg| {
                seg.checksum = ChecksumStatus::Valid;
                if self.policy.admit(seg.checksum) {
                    Ok(seg)
                } else {
                    Err(WireError::BadChecksum)
                }
            }),
            RxChecksum::Bad => parse(frame, meta.link, false).and_then(|mut seg| {
                seg.checksum = ChecksumStatus::Invalid;
                if self.policy.mode() == ChecksumMode::Off {
                    Ok(seg)
                } else {
                    Err(WireError::BadChecksum)
                }
            }),
        };
        self.stats.count(&result);
        result
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::frame::TcpFrame;
    use crate::io::Timestamp;
    use std::net::{IpAddr, Ipv4Addr};

    fn meta(checksum: RxChecksum) -> RxMeta {
        RxMeta {
            ts: Timestamp::new(0, 0),
            link: LinkType::Ethernet,
            wire_len: 0,
            iface: 0,
            checksum,
        }
    }

    /// A frame with a correct checksum, and the same with a payload byte
    /// changed (its checksum now wrong).
    fn frames() -> (Vec<u8>, Vec<u8>) {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(198, 51, 100, d));
        let good = TcpFrame::new((ip(1), 1000), (ip(2), 80))
            .build(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        (good, bad)
    }

    #[test]
    fn the_devices_word_on_checksums_is_taken() {
        let (good, bad) = frames();
        for mode in [ChecksumMode::On, ChecksumMode::Auto] {
            let mut d = Decoder::new(mode);
            // Unknown: software checks.
            assert!(d.decode_rx(&good, &meta(RxChecksum::Unknown)).is_ok());
            // Good: not checked again, whatever the bytes.
            let seg = d.decode_rx(&bad, &meta(RxChecksum::Good)).unwrap();
            assert_eq!(seg.checksum, ChecksumStatus::Valid);
            // Bad: dropped even when the bytes sum right.
            assert_eq!(
                d.decode_rx(&good, &meta(RxChecksum::Bad)).err(),
                Some(WireError::BadChecksum)
            );
            assert_eq!((d.stats.segments, d.stats.bad_checksum), (2, 1));
        }
        // Software still checks what the device did not.
        let mut d = Decoder::new(ChecksumMode::On);
        assert_eq!(
            d.decode_rx(&bad, &meta(RxChecksum::Unknown)).err(),
            Some(WireError::BadChecksum)
        );
        // Off keeps what the device found bad, marked so.
        let mut d = Decoder::new(ChecksumMode::Off);
        let seg = d.decode_rx(&good, &meta(RxChecksum::Bad)).unwrap();
        assert_eq!(seg.checksum, ChecksumStatus::Invalid);
        assert_eq!(d.stats.segments, 1);
    }
}
