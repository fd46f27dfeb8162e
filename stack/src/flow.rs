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
//! Lookups hash the key with `rustc-hash`'s Fx hash: the keys are not chosen
//! by whoever fills the table in a way SipHash would defend against — a flood
//! of distinct 4-tuples is stopped by the cap, not by the hash.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use rustc_hash::FxBuildHasher;

use crate::io::Timestamp;

/// An endpoint: address and port.
pub type Endpoint = (IpAddr, u16);

/// A connection's 4-tuple, lower endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower of the two endpoints.
    pub lo: Endpoint,
    /// The higher of the two endpoints.
    pub hi: Endpoint,
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
/// Entries live in a slab (a vector with a free list) and the hash map holds
/// only key and slot number: a hash table keeps spare buckets (up to half of
/// them empty just after it grows), and spare buckets of 44 bytes cost far
/// less than spare buckets the size of a connection.
#[derive(Debug)]
pub struct FlowTable<V> {
    map: HashMap<FlowKey, u32, FxBuildHasher>,
    slots: Vec<Option<Flow<V>>>,
    free: Vec<u32>,
    cfg: FlowConfig,
    stats: FlowStats,
}

impl<V> FlowTable<V> {
    /// An empty table. Memory grows with the entries, up to the cap.
    pub fn new(cfg: FlowConfig) -> FlowTable<V> {
        FlowTable {
            map: HashMap::with_hasher(FxBuildHasher),
            slots: Vec::new(),
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
        self.map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Reserves room for `n` more entries (up to the cap), so a benchmark or a
    /// probe that knows its load does not grow the table on the packet path.
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.cfg.max_flows.saturating_sub(self.map.len()));
        self.map.reserve(n);
        self.slots.reserve_exact(n.saturating_sub(self.free.len()));
    }

    #[inline]
    fn slot(&self, i: u32) -> &Flow<V> {
        match &self.slots[i as usize] {
            Some(f) => f,
            None => unreachable!("mapped slots are used"),
        }
    }

    #[inline]
    fn slot_mut(&mut self, i: u32) -> &mut Flow<V> {
        match &mut self.slots[i as usize] {
            Some(f) => f,
            None => unreachable!("mapped slots are used"),
        }
    }

    /// The entry of `key`, if tracked.
    #[inline]
    pub fn get(&self, key: &FlowKey) -> Option<&V> {
        let i = *self.map.get(key)?;
        Some(&self.slot(i).value)
    }

    /// The entry of `key`, if tracked; marks it seen at `now`.
    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey, now: Timestamp) -> Option<&mut V> {
        let i = *self.map.get(key)?;
        let f = self.slot_mut(i);
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
        let len = self.map.len();
        let i = match self.map.entry(key) {
            Entry::Occupied(e) => {
                let i = *e.get();
                let f = self.slot_mut(i);
                f.last_seen = now;
                return Lookup::Found(&mut f.value);
            }
            Entry::Vacant(e) => {
                if len >= self.cfg.max_flows {
                    self.stats.refused_full += 1;
                    return Lookup::Full;
                }
                let Some(value) = make() else {
                    return Lookup::Declined;
                };
                let flow = Some(Flow {
                    value,
                    last_seen: now,
                });
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = flow;
                        i
                    }
                    None => {
                        self.slots.push(flow);
                        (self.slots.len() - 1) as u32
                    }
                };
                e.insert(i);
                i
            }
        };
        self.stats.created += 1;
        self.stats.peak = self.stats.peak.max(len as u64 + 1);
        Lookup::Created(&mut self.slot_mut(i).value)
    }

    /// Frees slot `i`, returning its entry.
    fn take(&mut self, i: u32) -> Flow<V> {
        self.free.push(i);
        match self.slots[i as usize].take() {
            Some(f) => f,
            None => unreachable!("mapped slots are used"),
        }
    }

    /// Removes the entry of `key` (its connection is over).
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let i = self.map.remove(key)?;
        self.stats.removed += 1;
        Some(self.take(i).value)
    }

    /// Removes every entry not seen since `now - idle_timeout`, handing each
    /// to `evicted`. Returns how many were evicted.
    pub fn expire(&mut self, now: Timestamp, mut evicted: impl FnMut(FlowKey, V)) -> usize {
        let timeout = self.cfg.idle_timeout.as_nanos() as u64;
        let slots = &self.slots;
        // `extract_if` is not stable at the workspace's MSRV: collect keys.
        let old: Vec<(FlowKey, u32)> = self
            .map
            .iter()
            .filter(|(_, &i)| {
                let seen = slots[i as usize].as_ref().map_or(0, |f| f.last_seen.0);
                now.0.saturating_sub(seen) > timeout
            })
            .map(|(k, &i)| (*k, i))
            .collect();
        for &(k, i) in &old {
            self.map.remove(&k);
            let f = self.take(i);
            evicted(k, f.value);
        }
        self.stats.evicted_idle += old.len() as u64;
        old.len()
    }

    /// Removes every entry, handing each to `f` (end of a capture).
    pub fn drain(&mut self, mut f: impl FnMut(FlowKey, V)) {
        let mut all: Vec<(FlowKey, u32)> = self.map.drain().collect();
        // A deterministic order, so output does not depend on the hash.
        all.sort_unstable_by_key(|(k, _)| *k);
        self.stats.removed += all.len() as u64;
        for (k, i) in all {
            let flow = self.take(i);
            f(k, flow.value);
        }
        self.slots.clear();
        self.free.clear();
    }

    /// Visits every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow<V>)> {
        self.map.iter().map(|(k, &i)| (k, self.slot(i)))
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
}
