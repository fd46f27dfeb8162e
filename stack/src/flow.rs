//! The flow table: one entry per TCP connection, both directions under one key.
//!
//! A [`FlowKey`] is the 4-tuple in a canonical order (the lower endpoint first),
//! so a segment and its reply find the same entry; [`FlowKey::of`] also says
//! which of the two endpoints sent the segment. The table is bounded: at most
//! [`FlowConfig::max_flows`] entries, entries idle for longer than
//! [`FlowConfig::idle_timeout`] are evicted by [`FlowTable::expire`], and an
//! insertion into a full table is refused. Every refusal and eviction is
//! counted in [`FlowStats`].
//!
//! Lookups hash the key with foldhash, seeded afresh for each table: whoever
//! sends the packets chooses the 4-tuples, and with a fixed hash (Fx, which
//! the table used before) a sender can compute offline a set of 4-tuples
//! that share one hash and make every lookup walk all of them. A flood of
//! distinct 4-tuples is stopped by the cap; collisions are made hard to aim
//! by the seed. The index is `hashbrown`'s `HashTable` of slot numbers, the
//! keys staying in the slots.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::io::Timestamp;

/// An endpoint: address and port.
pub type Endpoint = (IpAddr, u16);

/// A connection's 4-tuple, lower endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower of the two endpoints.
    pub lo: Endpoint,
    /// The higher of the two endpoints.
    pub hi: Endpoint,
}

/// The addresses as numbers and the two ports as one: an IPv4 key is 96
/// bits in three writes, which a hasher that buffers them (foldhash) mixes
/// once, where the derived `Hash` writes each address's variant and bytes
/// apart (measured 4% of a passive pass with the flow table's hash).
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        for ip in [self.lo.0, self.hi.0] {
            match ip {
                IpAddr::V4(a) => h.write_u32(u32::from(a)),
                IpAddr::V6(a) => h.write_u128(u128::from(a)),
            }
        }
        h.write_u32(u32::from(self.lo.1) << 16 | u32::from(self.hi.1));
    }
}

impl FlowKey {
    /// The key of a segment from `src` to `dst`, and whether `src` is the
    /// key's `lo` endpoint.
    #[inline]
    pub fn of(src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        if src <= dst {
            (FlowKey { lo: src, hi: dst }, true)
        } else {
            (FlowKey { lo: dst, hi: src }, false)
        }
    }
}

/// Bounds of a [`FlowTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most connections tracked at once.
    pub max_flows: usize,
    /// A connection with no segment for this long is evicted.
    pub idle_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Counters of a [`FlowTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Entries created.
    pub created: u64,
    /// Entries removed by their owner (connection closed).
    pub removed: u64,
    /// Entries evicted for being idle.
    pub evicted_idle: u64,
    /// Insertions refused because the table was full.
    pub refused_full: u64,
    /// Most entries held at once.
    pub peak: u64,
}

/// A table entry: the owner's state and when the flow was last seen.
#[derive(Debug)]
pub struct Flow<V> {
    /// Owner's per-connection state.
    pub value: V,
    /// Time of the last segment.
    pub last_seen: Timestamp,
}

/// What [`FlowTable::get_or_try_insert`] found.
#[derive(Debug)]
pub enum Lookup<'a, V> {
    /// The entry was there.
    Found(&'a mut V),
    /// A new entry was made.
    Created(&'a mut V),
    /// Absent, and the table is full (counted).
    Full,
    /// Absent, and `make` declined to make one.
    Declined,
}

impl<'a, V> Lookup<'a, V> {
    /// The entry, found or created.
    pub fn entry(self) -> Option<&'a mut V> {
        match self {
            Lookup::Found(v) | Lookup::Created(v) => Some(v),
            Lookup::Full | Lookup::Declined => None,
        }
    }
}

/// A bounded map from [`FlowKey`] to per-connection state `V`.
///
/// Memory is what the entries need, with bounded slack: entries (key, last
/// time seen, state) live in fixed chunks of [`CHUNK`] slots with a free list,
/// so the table never copies them to grow and never holds more than one
/// chunk unused; the hash index holds only 4-byte slot numbers, so its spare
/// buckets (up to half of them after it grows) cost a few bytes per entry.
#[derive(Debug)]
pub struct FlowTable<V> {
    index: HashTable<u32>,
    /// The index's hash, seeded for this table.
    hasher: RandomState,
    chunks: Vec<Vec<Option<Slot<V>>>>,
    free: Vec<u32>,
    cfg: FlowConfig,
    stats: FlowStats,
}

/// Slots per chunk of a [`FlowTable`].
pub const CHUNK: usize = 4096;

#[derive(Debug)]
struct Slot<V> {
    key: FlowKey,
    flow: Flow<V>,
}

impl<V> FlowTable<V> {
    /// An empty table. Memory grows with the entries, up to the cap.
    pub fn new(cfg: FlowConfig) -> FlowTable<V> {
        FlowTable {
            index: HashTable::new(),
            hasher: RandomState::default(),
            chunks: Vec::new(),
            free: Vec::new(),
            cfg,
            stats: FlowStats::default(),
        }
    }

    /// The bounds.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Reserves index room for `n` more entries (up to the cap), so a probe
    /// that knows its load does not stop to grow the index on the packet path.
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.cfg.max_flows.saturating_sub(self.len()));
        let (chunks, h) = (&self.chunks, &self.hasher);
        self.index
            .reserve(n, |&i| h.hash_one(Self::slot_in(chunks, i).key));
    }

    #[inline]
    fn slot_in(chunks: &[Vec<Option<Slot<V>>>], i: u32) -> &Slot<V> {
        match &chunks[i as usize / CHUNK][i as usize % CHUNK] {
            Some(s) => s,
            None => unreachable!("indexed slots are used"),
        }
    }

    #[inline]
    fn slot_mut(&mut self, i: u32) -> &mut Slot<V> {
        match &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK] {
            Some(s) => s,
            None => unreachable!("indexed slots are used"),
        }
    }

    #[inline]
    fn find(&self, key: &FlowKey) -> Option<u32> {
        let chunks = &self.chunks;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                Self::slot_in(chunks, i).key == *key
            })
            .copied()
    }

    /// The entry of `key`, if tracked.
    #[inline]
    pub fn get(&self, key: &FlowKey) -> Option<&V> {
        let i = self.find(key)?;
        Some(&Self::slot_in(&self.chunks, i).flow.value)
    }

    /// The entry of `key`, if tracked; marks it seen at `now`.
    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey, now: Timestamp) -> Option<&mut V> {
        let i = self.find(key)?;
        let f = &mut self.slot_mut(i).flow;
        f.last_seen = now;
        Some(&mut f.value)
    }

    /// The entry of `key`; if absent and the table has room, the one `make`
    /// returns (`make` may decline with `None`). A full table refuses without
    /// calling `make` and counts it in `refused_full`.
    pub fn get_or_try_insert(
        &mut self,
        key: FlowKey,
        now: Timestamp,
        make: impl FnOnce() -> Option<V>,
    ) -> Lookup<'_, V> {
        if let Some(i) = self.find(&key) {
            let f = &mut self.slot_mut(i).flow;
            f.last_seen = now;
            return Lookup::Found(&mut f.value);
        }
        let len = self.len();
        if len >= self.cfg.max_flows {
            self.stats.refused_full += 1;
            return Lookup::Full;
        }
        let Some(value) = make() else {
            return Lookup::Declined;
        };
        let slot = Some(Slot {
            key,
            flow: Flow {
                value,
                last_seen: now,
            },
        });
        let i = match self.free.pop() {
            Some(i) => {
                self.chunks[i as usize / CHUNK][i as usize % CHUNK] = slot;
                i
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let n = self.chunks.len() - 1;
                let chunk = &mut self.chunks[n];
                chunk.push(slot);
                (n * CHUNK + chunk.len() - 1) as u32
            }
        };
        let (chunks, h) = (&self.chunks, &self.hasher);
        self.index.insert_unique(h.hash_one(key), i, |&j| {
            h.hash_one(Self::slot_in(chunks, j).key)
        });
        self.stats.created += 1;
        self.stats.peak = self.stats.peak.max(len as u64 + 1);
        Lookup::Created(&mut self.slot_mut(i).flow.value)
    }

    /// Frees slot `i` (already out of the index), returning its entry.
    fn take(&mut self, i: u32) -> Slot<V> {
        self.free.push(i);
        match self.chunks[i as usize / CHUNK][i as usize % CHUNK].take() {
            Some(s) => s,
            None => unreachable!("indexed slots are used"),
        }
    }

    /// Takes `key`'s slot out of the index.
    fn unindex(&mut self, key: &FlowKey) -> Option<u32> {
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(self.hasher.hash_one(key), |&i| {
                Self::slot_in(chunks, i).key == *key
            })
            .ok()?;
        Some(entry.remove().0)
    }

    /// Removes the entry of `key` (its connection is over).
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let i = self.unindex(key)?;
        self.stats.removed += 1;
        Some(self.take(i).flow.value)
    }

    /// Keys and slots of every entry, in key order (deterministic output).
    fn all_sorted(&self, keep: impl Fn(&Flow<V>) -> bool) -> Vec<(FlowKey, u32)> {
        let mut all: Vec<(FlowKey, u32)> = self
            .chunks
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| keep(&s.flow))
                    .map(|s| (s.key, i as u32))
            })
            .collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    /// Removes every entry not seen since `now - idle_timeout`, handing each
    /// to `evicted` in key order. Returns how many were evicted.
    pub fn expire(&mut self, now: Timestamp, mut evicted: impl FnMut(FlowKey, V)) -> usize {
        let timeout = self.cfg.idle_timeout.as_nanos() as u64;
        let old = self.all_sorted(|f| now.0.saturating_sub(f.last_seen.0) > timeout);
        for &(k, i) in &old {
            self.unindex(&k);
            let s = self.take(i);
            evicted(k, s.flow.value);
        }
        self.stats.evicted_idle += old.len() as u64;
        old.len()
    }

    /// Removes every entry, handing each to `f` in key order (end of a
    /// capture).
    pub fn drain(&mut self, mut f: impl FnMut(FlowKey, V)) {
        let all = self.all_sorted(|_| true);
        self.index.clear();
        self.stats.removed += all.len() as u64;
        for (k, i) in all {
            let s = self.take(i);
            f(k, s.flow.value);
        }
        self.chunks.clear();
        self.free.clear();
    }

    /// Visits every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow<V>)> {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|s| s.as_ref().map(|s| (&s.key, &s.flow)))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::Ipv4Addr;

    fn ep(last: u8, port: u16) -> Endpoint {
        (IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)), port)
    }

    #[test]
    fn both_directions_share_a_key() {
        let (k1, a) = FlowKey::of(ep(1, 40000), ep(2, 80));
        let (k2, b) = FlowKey::of(ep(2, 80), ep(1, 40000));
        assert_eq!(k1, k2);
        assert_ne!(a, b);
    }

    #[test]
    fn cap_refuses_and_counts() {
        let mut t = FlowTable::new(FlowConfig {
            max_flows: 2,
            idle_timeout: Duration::from_secs(1),
        });
        let now = Timestamp::new(10, 0);
        for port in 0..5u16 {
            let (k, _) = FlowKey::of(ep(1, 1000 + port), ep(2, 80));
            let got = t.get_or_try_insert(k, now, || Some(port)).entry().is_some();
            assert_eq!(got, port < 2);
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.stats().refused_full, 3);
        assert_eq!(t.stats().created, 2);
        // An existing entry is still found when the table is full.
        let (k, _) = FlowKey::of(ep(1, 1000), ep(2, 80));
        assert!(matches!(
            t.get_or_try_insert(k, now, || Some(99)),
            Lookup::Found(&mut 0)
        ));
        // Declining makes nothing.
        t.remove(&k);
        assert!(matches!(
            t.get_or_try_insert(k, now, || None),
            Lookup::Declined
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn idle_entries_expire() {
        let mut t = FlowTable::new(FlowConfig {
            max_flows: 10,
            idle_timeout: Duration::from_secs(5),
        });
        let (old, _) = FlowKey::of(ep(1, 1), ep(2, 80));
        let (young, _) = FlowKey::of(ep(1, 2), ep(2, 80));
        t.get_or_try_insert(old, Timestamp::new(0, 0), || Some("old"));
        t.get_or_try_insert(young, Timestamp::new(4, 0), || Some("young"));
        let mut gone = Vec::new();
        assert_eq!(t.expire(Timestamp::new(6, 0), |k, v| gone.push((k, v))), 1);
        assert_eq!(gone, [(old, "old")]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().evicted_idle, 1);
        // Seeing a flow refreshes it.
        assert!(t.get_mut(&young, Timestamp::new(10, 0)).is_some());
        assert_eq!(t.expire(Timestamp::new(14, 0), |_, _| ()), 0);
        assert_eq!(t.expire(Timestamp::new(16, 0), |_, _| ()), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn each_table_has_its_own_hash() {
        // 4-tuples that collide in one table must not be known to collide in
        // another (another probe, or the same one restarted): with a fixed
        // hash, a sender computes them once, offline.
        let keys: Vec<FlowKey> = (0..64)
            .map(|i| FlowKey::of(ep(1, 10_000 + i), ep(2, 80)).0)
            .collect();
        let cfg = FlowConfig {
            max_flows: 64,
            idle_timeout: Duration::from_secs(5),
        };
        let (a, b) = (FlowTable::<()>::new(cfg), FlowTable::<()>::new(cfg));
        let same = keys
            .iter()
            .filter(|k| a.hasher.hash_one(k) == b.hasher.hash_one(k))
            .count();
        assert_eq!(same, 0, "two tables hash the same 4-tuples alike");
        // Lookups still find every entry.
        let mut t = FlowTable::new(cfg);
        let now = Timestamp::new(0, 0);
        for (i, k) in keys.iter().enumerate() {
            t.get_or_try_insert(*k, now, || Some(i));
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(&i));
        }
    }
}
