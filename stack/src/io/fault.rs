//! A faulty link around any device: seeded, deterministic drops,
//! duplicates, reordering and delays, separately for receive and transmit.
//!
//! [`FaultIo`] wraps a [`PacketIo`] and decides, packet by packet and with
//! the probabilities of its [`Faults`], whether to
//!
//! 1. **drop** it (its buffer goes back to the pool at once);
//! 2. **duplicate** it: a clone of the handle (a reference count, no copy)
//!    is delivered right after the original, wherever the original goes;
//! 3. **reorder** it: hold it until the next `reorder_gap` packets of the
//!    same direction went past, then release it after them (or after
//!    [`FaultConfig::reorder_timeout`] polls, so a quiet link does not keep
//!    it forever);
//! 4. **delay** it by a number of polls or a time ([`Delay`]).
//!
//! The draws come from a seeded generator per direction: the same seed and
//! the same traffic give the same faults. A *poll* is one call of
//! [`recv_burst`](PacketIo::recv_burst) (a [`Stack`](crate::tcp::Stack)
//! makes one per poll); held transmit packets also go out from there, so a
//! delayed send leaves even when nothing else is sent.
//!
//! Every queue has the capacity [`FaultConfig::cap`], allocated when the
//! device is made: a packet that would not fit is dropped and counted as
//! [`FaultStats::overflow`]. No allocation per packet. Held packets are
//! dropped (back to their pool) with the device.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Burst, IoError, PacketIo, Rx};

/// How long a delayed packet waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Released at the `n`-th poll after it came.
    Polls(u32),
    /// Released at the first poll at least this long after it came.
    Time(Duration),
}

/// What happens to packets of one direction, each a probability in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Probability that a packet is dropped.
    pub drop: f64,
    /// Probability that a packet (not dropped) is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet (not dropped) is held back and delivered
    /// after the next `reorder_gap` packets.
    pub reorder: f64,
    /// How many packets overtake a reordered one (at least 1).
    pub reorder_gap: u32,
    /// Probability that a packet (not dropped nor reordered) is delayed.
    pub delay: f64,
    /// How long a delayed packet waits.
    pub delay_by: Delay,
}

impl Faults {
    /// A perfect link.
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_gap: 1,
        delay: 0.0,
        delay_by: Delay::Polls(1),
    };

    /// With drop probability `p`.
    pub fn drop(self, p: f64) -> Faults {
        Faults { drop: p, ..self }
    }
    /// With duplicate probability `p`.
    pub fn duplicate(self, p: f64) -> Faults {
        Faults {
            duplicate: p,
            ..self
        }
    }
    /// With reorder probability `p`, each reordered packet overtaken by `gap`.
    pub fn reorder(self, p: f64, gap: u32) -> Faults {
        Faults {
            reorder: p,
            reorder_gap: gap.max(1),
            ..self
        }
    }
    /// With delay probability `p`, each delayed packet waiting `by`.
    pub fn delay(self, p: f64, by: Delay) -> Faults {
        Faults {
            delay: p,
            delay_by: by,
            ..self
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::NONE
    }
}

/// Settings of a [`FaultIo`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultConfig {
    /// Seed of the generators (the same seed gives the same faults).
    pub seed: u64,
    /// Faults of received packets.
    pub rx: Faults,
    /// Faults of sent packets.
    pub tx: Faults,
    /// Capacity of each queue (ready and held, per direction).
    pub cap: usize,
    /// Polls after which a reordered packet is released even if fewer than
    /// `reorder_gap` packets went past.
    pub reorder_timeout: u32,
    /// Packets received from, and handed to, the wrapped device per call.
    pub burst: usize,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0x5eed,
            rx: Faults::NONE,
            tx: Faults::NONE,
            cap: 1024,
            reorder_timeout: 8,
            burst: 64,
        }
    }
}

/// Counters of one direction of a [`FaultIo`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Packets that came in (from the device, or from the sender).
    pub packets: u64,
    /// Packets dropped on purpose.
    pub dropped: u64,
    /// Packets delivered twice.
    pub duplicated: u64,
    /// Packets held back to be overtaken.
    pub reordered: u64,
    /// Packets delayed.
    pub delayed: u64,
    /// Packets dropped because a queue was full.
    pub overflow: u64,
    /// Packets handed on (to the caller, or to the device), copies included.
    pub delivered: u64,
}

struct Held<T> {
    item: T,
    /// Released once this many packets passed in order (reordering).
    after: u64,
    /// Released at this poll.
    poll: u64,
    /// Released at this time.
    time: Option<Instant>,
}

/// One direction: the decisions, the held packets and those ready to go.
struct Lane<T> {
    faults: Faults,
    rng: u64,
    cap: usize,
    ready: VecDeque<T>,
    held: VecDeque<Held<T>>,
    /// Packets that passed without being held.
    passed: u64,
    /// Smallest `after` among the held packets.
    next_after: u64,
    stats: FaultStats,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<T: Clone> Lane<T> {
    fn new(faults: Faults, seed: u64, cap: usize) -> Lane<T> {
        let cap = cap.max(1);
        Lane {
            faults,
            rng: seed,
            cap,
            ready: VecDeque::with_capacity(cap),
            held: VecDeque::with_capacity(cap),
            passed: 0,
            next_after: u64::MAX,
            stats: FaultStats::default(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let u = (splitmix(&mut self.rng) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        u < p
    }

    fn push_ready(&mut self, item: T) {
        if self.ready.len() < self.cap {
            self.ready.push_back(item);
        } else {
            self.stats.overflow += 1;
        }
    }

    fn hold(&mut self, h: Held<T>) {
        if self.held.len() < self.cap {
            self.next_after = self.next_after.min(h.after);
            self.held.push_back(h);
        } else {
            self.stats.overflow += 1;
        }
    }

    /// Moves the held packets that are due to the ready queue, oldest first.
    fn release(&mut self, poll: u64, now: Option<Instant>, all: bool) {
        if self.held.is_empty() {
            return;
        }
        self.next_after = u64::MAX;
        for _ in 0..self.held.len() {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            let due = all
                || h.after <= self.passed
                || h.poll <= poll
                || matches!((h.time, now), (Some(t), Some(n)) if t <= n);
            if due {
                self.push_ready(h.item);
            } else {
                self.next_after = self.next_after.min(h.after);
                self.held.push_back(h);
            }
        }
    }

    /// One new packet through the faults.
    fn process(&mut self, item: T, poll: u64, now: Option<Instant>, timeout: u32) {
        self.stats.packets += 1;
        let f = self.faults;
        if self.chance(f.drop) {
            self.stats.dropped += 1;
            return;
        }
        let copy = if self.chance(f.duplicate) {
            self.stats.duplicated += 1;
            Some(item.clone())
        } else {
            None
        };
        if self.chance(f.reorder) {
            self.stats.reordered += 1;
            let after = self.passed + u64::from(f.reorder_gap.max(1));
            let poll = poll + u64::from(timeout.max(1));
            self.hold(Held {
                item,
                after,
                poll,
                time: None,
            });
            if let Some(c) = copy {
                self.hold(Held {
                    item: c,
                    after,
                    poll,
                    time: None,
                });
            }
            return;
        }
        if self.chance(f.delay) {
            self.stats.delayed += 1;
            let (poll, time) = match f.delay_by {
                Delay::Polls(n) => (poll + u64::from(n), None),
                Delay::Time(d) => (u64::MAX, Some(now.unwrap_or_else(Instant::now) + d)),
            };
            self.hold(Held {
                item,
                after: u64::MAX,
                poll,
                time,
            });
            if let Some(c) = copy {
                self.hold(Held {
                    item: c,
                    after: u64::MAX,
                    poll,
                    time,
                });
            }
            return;
        }
        self.push_ready(item);
        if let Some(c) = copy {
            self.push_ready(c);
        }
        self.passed += 1;
        if self.next_after <= self.passed {
            self.release(poll, now, false);
        }
    }

    fn uses_time(&self) -> bool {
        self.faults.delay > 0.0 && matches!(self.faults.delay_by, Delay::Time(_))
    }
}

/// A device whose link drops, duplicates, reorders and delays packets; see
/// the module documentation.
pub struct FaultIo<D: PacketIo> {
    inner: D,
    cfg: FaultConfig,
    rx: Lane<Rx<D::Packet>>,
    tx: Lane<D::Packet>,
    rx_scratch: Burst<Rx<D::Packet>>,
    tx_scratch: Burst<D::Packet>,
    poll: u64,
    tx_error: Option<IoError>,
}

impl<D: PacketIo> std::fmt::Debug for FaultIo<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultIo")
            .field("cfg", &self.cfg)
            .field("poll", &self.poll)
            .field("rx", &self.rx.stats)
            .field("tx", &self.tx.stats)
            .field("held", &self.held())
            .finish()
    }
}

impl<D: PacketIo> FaultIo<D> {
    /// `inner` behind the faults of `cfg`.
    pub fn new(inner: D, cfg: FaultConfig) -> FaultIo<D> {
        let mut s = cfg.seed;
        let rx_seed = splitmix(&mut s);
        let tx_seed = splitmix(&mut s);
        let burst = cfg.burst.max(1);
        FaultIo {
            inner,
            cfg,
            rx: Lane::new(cfg.rx, rx_seed, cfg.cap),
            tx: Lane::new(cfg.tx, tx_seed, cfg.cap),
            rx_scratch: Burst::with_capacity(burst),
            tx_scratch: Burst::with_capacity(burst),
            poll: 0,
            tx_error: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }

    /// What happened to received packets.
    pub fn rx_stats(&self) -> FaultStats {
        self.rx.stats
    }

    /// What happened to sent packets.
    pub fn tx_stats(&self) -> FaultStats {
        self.tx.stats
    }

    /// Packets held (reordered, delayed, or waiting to be received or sent).
    pub fn held(&self) -> usize {
        self.rx.held.len()
            + self.rx.ready.len()
            + self.rx_scratch.len()
            + self.tx.held.len()
            + self.tx.ready.len()
            + self.tx_scratch.len()
    }

    /// Polls so far (calls of `recv_burst`).
    pub fn polls(&self) -> u64 {
        self.poll
    }

    /// Makes every held packet due now: received ones come with the next
    /// `recv_burst`, sent ones go to the device at once.
    pub fn release_all(&mut self) -> Result<(), IoError> {
        self.rx.release(self.poll, None, true);
        self.tx.release(self.poll, None, true);
        self.flush_tx()
    }

    /// Drops every held packet (back to their pools).
    pub fn clear(&mut self) {
        self.rx.held.clear();
        self.rx.ready.clear();
        self.rx_scratch.clear();
        self.tx.held.clear();
        self.tx.ready.clear();
        self.tx_scratch.clear();
        self.rx.next_after = u64::MAX;
        self.tx.next_after = u64::MAX;
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The wrapped device; held packets are dropped.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn now(&self) -> Option<Instant> {
        (self.rx.uses_time() || self.tx.uses_time()).then(Instant::now)
    }

    /// Hands ready transmit packets to the device, as many as it takes.
    fn flush_tx(&mut self) -> Result<(), IoError> {
        loop {
            while self.tx_scratch.room() > 0 {
                let Some(p) = self.tx.ready.pop_front() else {
                    break;
                };
                let _ = self.tx_scratch.push(p);
            }
            if self.tx_scratch.is_empty() {
                return Ok(());
            }
            let n = self.inner.send_burst(&mut self.tx_scratch)?;
            self.tx.stats.delivered += n as u64;
            if n == 0 {
                return Ok(());
            }
        }
    }
}

impl<D: PacketIo> PacketIo for FaultIo<D> {
    type Packet = D::Packet;

    fn recv_burst(&mut self, out: &mut Burst<Rx<D::Packet>>) -> Result<usize, IoError> {
        self.poll += 1;
        let poll = self.poll;
        let now = self.now();
        let timeout = self.cfg.reorder_timeout;
        // Transmit packets that came due go out on the poll too.
        self.tx.release(poll, now, false);
        if let Err(e) = self.flush_tx() {
            self.tx_error.get_or_insert(e);
        }
        self.rx.release(poll, now, false);
        let mut err = None;
        if self.rx.ready.len() < out.room() {
            match self.inner.recv_burst(&mut self.rx_scratch) {
                Ok(_) => {}
                Err(e) => err = Some(e),
            }
            for r in self.rx_scratch.drain(..) {
                self.rx.process(r, poll, now, timeout);
            }
        }
        let mut n = 0;
        while out.room() > 0 {
            let Some(r) = self.rx.ready.pop_front() else {
                break;
            };
            let _ = out.push(r);
            n += 1;
        }
        self.rx.stats.delivered += n as u64;
        match err {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        }
    }

    /// The device's: the link delays, drops and duplicates frames but never
    /// changes their bytes.
    fn tx_checksum_offload(&self) -> bool {
        self.inner.tx_checksum_offload()
    }

    fn send_burst(&mut self, pkts: &mut Burst<D::Packet>) -> Result<usize, IoError> {
        if let Some(e) = self.tx_error.take() {
            return Err(e);
        }
        let poll = self.poll;
        let now = self.now();
        let timeout = self.cfg.reorder_timeout;
        self.tx.release(poll, now, false);
        let n = pkts.len();
        for p in pkts.drain(..) {
            self.tx.process(p, poll, now, timeout);
        }
        self.flush_tx()?;
        Ok(n)
    }

    fn at_end(&self) -> bool {
        self.inner.at_end() && self.rx.held.is_empty() && self.rx.ready.is_empty()
    }
}
