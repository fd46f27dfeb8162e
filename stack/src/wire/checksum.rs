//! What to do with bad TCP checksums: [`ChecksumMode`] and [`ChecksumPolicy`].
//!
//! A segment with a bad checksum is one the receiving host dropped, so a
//! monitor that reassembles it sees data the application never saw (a classic
//! IDS evasion). But a capture taken on a host whose NIC computes checksums
//! (TX offload) holds that host's outgoing segments with checksums never
//! filled in, and dropping them loses half of every conversation.
//!
//! `Auto` is Suricata's `checksum-validation: auto`: validate and drop; watch
//! the first `sample` (1000) TCP segments whose checksum was checked; if more
//! than `max_bad_percent` (10%) of them are bad, conclude that the capture was
//! taken with offload, stop validating, and say so in the
//! [`ChecksumReport`]. The conclusion is drawn as soon as the bad count passes
//! the threshold (more than 100 of the first 1000), which is the same verdict
//! Suricata reaches at packet 1000, only earlier. Segments dropped before
//! the conclusion stay dropped. A capture shorter than the sample never
//! concludes; its report says when its bad ratio was over the threshold
//! ([`ChecksumReport::offload_suspected`]) so the summary can suggest `Off`.

use std::fmt;

use super::ChecksumStatus;

/// How bad TCP checksums are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// Verify every segment; drop bad ones.
    On,
    /// Verify nothing; keep everything.
    Off,
    /// Verify and drop, until the first segments show checksum offload.
    Auto,
}

/// Where an `Auto` policy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoState {
    /// Still inside the first `sample` checked segments.
    Sampling,
    /// The sample was clean enough: validating for good.
    Validating,
    /// Too many bad checksums in the sample: offload assumed, not validating.
    OffloadAssumed,
}

/// Decides, segment by segment, whether to verify checksums and whether a bad
/// one drops the segment. One per capture or interface.
#[derive(Clone, Debug)]
pub struct ChecksumPolicy {
    mode: ChecksumMode,
    state: AutoState,
    sample: u64,
    max_bad_percent: u64,
    sample_seen: u64,
    sample_bad: u64,
    checked: u64,
    bad: u64,
    offloaded: u64,
    dropped: u64,
}

/// Counts and conclusion of a [`ChecksumPolicy`], for a run's summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChecksumReport {
    /// The configured mode.
    pub mode: ChecksumMode,
    /// For `Auto`, where it stands (`Validating` for `On`, `Sampling` never for
    /// `On`/`Off`).
    pub state: AutoState,
    /// Segments whose checksum was verified.
    pub checked: u64,
    /// Of those, bad.
    pub bad: u64,
    /// Of those, kept by `Auto` for holding the checksum-offload pattern
    /// (not counted in `bad`).
    pub offloaded: u64,
    /// Segments dropped for a bad checksum.
    pub dropped: u64,
    /// Segments in the `Auto` sample so far, and how many were bad.
    pub sample: (u64, u64),
    /// The `Auto` threshold, in percent.
    pub max_bad_percent: u64,
}

impl ChecksumReport {
    /// `Auto` concluded that the capture was taken with checksum offload.
    pub fn offload_assumed(&self) -> bool {
        self.state == AutoState::OffloadAssumed
    }

    /// The run ended inside the `Auto` sample with a bad ratio above the
    /// threshold: offload is likely, but the sample was too short to conclude.
    pub fn offload_suspected(&self) -> bool {
        let (seen, bad) = self.sample;
        self.mode == ChecksumMode::Auto
            && self.state == AutoState::Sampling
            && bad * 100 > self.max_bad_percent * seen
    }
}

impl fmt::Display for ChecksumReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            ChecksumMode::On => "on",
            ChecksumMode::Off => "off",
            ChecksumMode::Auto => "auto",
        };
        write!(
            f,
            "checksums ({mode}): {} checked, {} bad, {} dropped",
            self.checked, self.bad, self.dropped
        )?;
        if self.offloaded > 0 {
            write!(
                f,
                "; {} left unfilled by checksum offload (kept)",
                self.offloaded
            )?;
        }
        let (seen, bad) = self.sample;
        if self.offload_assumed() {
            write!(
                f,
                "; {bad} of the first {seen} checked segments had bad checksums \
                 (over {}%): capture taken with checksum offload, validation disabled",
                self.max_bad_percent
            )?;
        } else if self.offload_suspected() {
            write!(
                f,
                "; {bad} of {seen} checked segments had bad checksums, likely checksum \
                 offload (capture too short to conclude): consider checksum mode off"
            )?;
        }
        Ok(())
    }
}

impl ChecksumPolicy {
    /// A policy with the `Auto` sample of 1000 segments and a 10% threshold.
    pub fn new(mode: ChecksumMode) -> ChecksumPolicy {
        ChecksumPolicy::with_auto_sample(mode, 1000, 10)
    }

    /// A policy whose `Auto` mode samples the first `sample` checked segments
    /// and assumes offload above `max_bad_percent` bad ones.
    pub fn with_auto_sample(mode: ChecksumMode, sample: u32, max_bad_percent: u8) -> Self {
        ChecksumPolicy {
            mode,
            state: match mode {
                ChecksumMode::Auto => AutoState::Sampling,
                ChecksumMode::On | ChecksumMode::Off => AutoState::Validating,
            },
            sample: u64::from(sample.max(1)),
            max_bad_percent: u64::from(max_bad_percent.min(100)),
            sample_seen: 0,
            sample_bad: 0,
            checked: 0,
            bad: 0,
            offloaded: 0,
            dropped: 0,
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> ChecksumMode {
        self.mode
    }

    /// Whether the next segment's checksum should be verified.
    #[inline]
    pub fn wants_check(&self) -> bool {
        match self.mode {
            ChecksumMode::On => true,
            ChecksumMode::Off => false,
            ChecksumMode::Auto => self.state != AutoState::OffloadAssumed,
        }
    }

    /// Records a segment's checksum status; returns whether to keep the
    /// segment (`false`: drop it for a bad checksum).
    pub fn admit(&mut self, status: ChecksumStatus) -> bool {
        let bad = match status {
            ChecksumStatus::Unchecked => return true,
            ChecksumStatus::Valid => false,
            ChecksumStatus::Invalid => true,
            // Offload is certain from the pattern: `auto` keeps the segment
            // without waiting for a sample; `on` treats it as any bad one.
            ChecksumStatus::Offloaded if self.mode == ChecksumMode::Auto => {
                self.checked += 1;
                self.offloaded += 1;
                return true;
            }
            ChecksumStatus::Offloaded => true,
        };
        if self.mode == ChecksumMode::Off || self.state == AutoState::OffloadAssumed {
            // Checked anyway by the caller; nothing to enforce.
            return true;
        }
        self.checked += 1;
        self.bad += u64::from(bad);
        if self.state == AutoState::Sampling {
            self.sample_seen += 1;
            self.sample_bad += u64::from(bad);
            if self.sample_bad * 100 > self.max_bad_percent * self.sample {
                self.state = AutoState::OffloadAssumed;
                return true;
            }
            if self.sample_seen == self.sample {
                self.state = AutoState::Validating;
            }
        }
        if bad {
            self.dropped += 1;
        }
        !bad
    }

    /// `Auto` concluded that the capture was taken with checksum offload.
    pub fn offload_assumed(&self) -> bool {
        self.state == AutoState::OffloadAssumed
    }

    /// Counts and conclusion so far.
    pub fn report(&self) -> ChecksumReport {
        ChecksumReport {
            mode: self.mode,
            state: self.state,
            checked: self.checked,
            bad: self.bad,
            offloaded: self.offloaded,
            dropped: self.dropped,
            sample: (self.sample_seen, self.sample_bad),
            max_bad_percent: self.max_bad_percent,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use ChecksumStatus::{Invalid, Unchecked, Valid};

    #[test]
    fn on_drops_bad_off_keeps_all() {
        let mut on = ChecksumPolicy::new(ChecksumMode::On);
        assert!(on.wants_check());
        assert!(on.admit(Valid));
        assert!(!on.admit(Invalid));
        assert!(on.admit(Unchecked));
        let r = on.report();
        assert_eq!((r.checked, r.bad, r.dropped), (2, 1, 1));

        let mut off = ChecksumPolicy::new(ChecksumMode::Off);
        assert!(!off.wants_check());
        assert!(off.admit(Invalid));
        assert_eq!(off.report().dropped, 0);
    }

    #[test]
    fn auto_flips_on_a_mostly_bad_sample() {
        let mut p = ChecksumPolicy::new(ChecksumMode::Auto);
        let mut kept = 0;
        // Half the segments bad, as when one side's TX offload is captured.
        for i in 0..1000 {
            if p.admit(if i % 2 == 0 { Invalid } else { Valid }) {
                kept += 1;
            }
        }
        assert!(p.offload_assumed());
        assert!(!p.wants_check());
        let r = p.report();
        // The 101st bad one (segment 201) flips it; the 100 before it were dropped.
        assert_eq!(r.sample, (201, 101));
        assert_eq!(r.dropped, 100);
        assert_eq!(kept, 900);
        assert!(r.to_string().contains("checksum offload"), "{r}");
    }

    #[test]
    fn auto_keeps_validating_on_a_clean_sample() {
        let mut p = ChecksumPolicy::new(ChecksumMode::Auto);
        // 100 bad of 1000 is exactly 10%: not more than the threshold.
        for i in 0..1000 {
            p.admit(if i % 10 == 0 { Invalid } else { Valid });
        }
        assert_eq!(p.report().state, AutoState::Validating);
        assert!(p.wants_check());
        // Past the sample, even a burst of bad checksums is dropped.
        for _ in 0..500 {
            assert!(!p.admit(Invalid));
        }
        assert!(!p.offload_assumed());
        assert_eq!(p.report().dropped, 600);
    }

    #[test]
    fn auto_keeps_the_offload_pattern_and_on_drops_it() {
        let mut auto = ChecksumPolicy::new(ChecksumMode::Auto);
        for _ in 0..5 {
            assert!(auto.admit(ChecksumStatus::Offloaded));
        }
        assert!(!auto.admit(Invalid));
        let r = auto.report();
        assert_eq!((r.checked, r.bad, r.offloaded, r.dropped), (6, 1, 5, 1));
        assert!(
            r.to_string()
                .contains("5 left unfilled by checksum offload"),
            "{r}"
        );
        let mut on = ChecksumPolicy::new(ChecksumMode::On);
        assert!(!on.admit(ChecksumStatus::Offloaded));
        assert_eq!(on.report().dropped, 1);
    }

    #[test]
    fn short_capture_is_suspected_not_concluded() {
        let mut p = ChecksumPolicy::new(ChecksumMode::Auto);
        for _ in 0..30 {
            assert!(!p.admit(Invalid));
        }
        let r = p.report();
        assert!(!r.offload_assumed());
        assert!(r.offload_suspected());
        assert!(r.to_string().contains("too short to conclude"), "{r}");
    }
}
