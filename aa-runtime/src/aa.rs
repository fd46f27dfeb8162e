//! The application-aware stream (thesis 4.2–4.3): records of fields over the
//! zero-copy stream.
//!
//! How it works. Each in-order fragment goes through the [`Parser`] as soon as it
//! joins the stream. The parser reports fields as stream offsets; the [`Emitter`]
//! turns each into a `FieldSlot` (first fragment id, start, end) and, when the
//! record is committed, *pins* every fragment each field spans (`Frag::refs += 1`;
//! fields of one fragment add their pins at once). Until then the record in
//! progress is protected by the parser's horizon, so dropping it (gap, error)
//! needs no unpinning. A fragment is released — its
//! packet dropped, the window grown — exactly when
//! 1. the parser has moved past it: it ends at or before the *horizon*, the lowest
//!    offset the parser may still use ([`Parser::retain_from`]), and
//! 2. no field pins it.
//!
//! `release_scan` walks fragments once as the horizon moves (amortised O(1) per
//! fragment) and releases those no field pins; a fragment it passes while pinned
//! is released later, by the free that drops its last pin. Records
//! may therefore be freed in any order.
//!
//! Records, fields and variables live in three bounded rings, in commit order,
//! addressed by ever-growing ids; a freed record leaves a hole until every older
//! record is freed too, then its slots are dropped by moving the ring heads. When the
//! record queue is full the parser pauses at a record boundary and the remaining
//! fragments wait, unparsed and held, so the window closes: an application that
//! does not free its records throttles its sender instead of growing memory.
//!
//! What must change together: `FieldSlot::frag` ids come from `FragStore`; the
//! pin count of a fragment is the number of unfreed field slots that span it.

use crate::field::{Field, FieldSlot};
use crate::packet::Packet;
use crate::parser::{Chunk, Limits, ParseError, Parser, Schema, Step};
use crate::seq::SeqNum;
use crate::signal::Signals;
use crate::stream::{FragStore, Insert, StreamBuffers, StreamConfig, ZcStream};
use std::collections::VecDeque;
use std::ops::Range;

/// Limits of an application-aware stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AaConfig {
    /// Limits of the underlying zero-copy stream.
    pub stream: StreamConfig,
    /// Most records held (ready, read or awaiting older records' release).
    pub max_records: u32,
    /// Most field slots held.
    pub max_fields: u32,
    /// Most variable slots held.
    pub max_values: u32,
}

impl Default for AaConfig {
    fn default() -> Self {
        AaConfig {
            stream: StreamConfig::default(),
            max_records: 4096,
            max_fields: 64 * 1024,
            max_values: 16 * 1024,
        }
    }
}

/// A fixed-capacity FIFO of `Copy` slots addressed by ids that only grow: slot
/// `id` lives at `id & mask` while `head <= id < tail`.
struct Ring<T> {
    buf: Box<[T]>,
    mask: u64,
    head: u64,
    tail: u64,
}

/// A slot type for which all-zero bytes are a valid value (integers and
/// `bool`s only), so that a ring of them is a zeroed allocation: the pages of
/// a large ring are only touched as it fills (the field ring of the default
/// configuration is 2 MiB; the slots used are its first ones, see
/// [`Ring::restart`]).
///
/// # Safety
/// Every field of the type is an integer, a `bool`, or itself `Zeroed`.
unsafe trait Zeroed: Copy {}

impl<T: Zeroed> Ring<T> {
    /// See [`Ring::restart`].
    const RESTART_AT: usize = 256;

    fn with_capacity(n: usize) -> Self {
        let cap = n.max(1).next_power_of_two();
        let layout = std::alloc::Layout::array::<T>(cap).expect("ring size");
        assert!(layout.size() > 0, "slot types have a size");
        // SAFETY: the layout has a non-zero size; all-zero bytes are a `T`
        // (`Zeroed`); the memory comes from the global allocator with the
        // layout of `[T; cap]`, as a box of that slice expects.
        let buf = unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<T>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, cap))
        };
        Ring {
            buf,
            mask: cap as u64 - 1,
            head: 0,
            tail: 0,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        (self.tail - self.head) as usize
    }

    /// Whether this ring is the one `with_capacity(n)` would make.
    fn fits(&self, n: usize) -> bool {
        self.buf.len() == n.max(1).next_power_of_two()
    }

    /// When the ring holds just its last `n` slots (`n == len()`) and they
    /// start [`Ring::RESTART_AT`] slots or more into the buffer, moves them to
    /// the start (ids `0..n`) if they do not overlap it: a ring that often
    /// empties, as the field and variable rings of an application that frees
    /// its records as they come, stays in its first slots, warm in the cache
    /// (and moves its slots once every so many, not each time it empties).
    #[inline]
    fn restart(&mut self, n: usize) {
        let from = ((self.tail - n as u64) & self.mask) as usize;
        if self.len() != n || from < Self::RESTART_AT {
            return;
        }
        if from >= n && from + n <= self.buf.len() {
            self.buf.copy_within(from..from + n, 0);
            self.head = 0;
            self.tail = n as u64;
        }
    }

    /// Appends `v` where the caller made sure there is room (else the oldest
    /// slot would be overwritten).
    #[inline]
    fn push_unchecked(&mut self, v: T) {
        debug_assert!(self.len() < self.buf.len());
        // SAFETY: as in `get`.
        unsafe { *self.buf.get_unchecked_mut((self.tail & self.mask) as usize) = v };
        self.tail += 1;
    }

    /// Appends `v`; `false` if the ring is full.
    #[inline]
    fn push(&mut self, v: T) -> bool {
        if self.len() == self.buf.len() {
            return false;
        }
        // SAFETY: as in `get`.
        unsafe { *self.buf.get_unchecked_mut((self.tail & self.mask) as usize) = v };
        self.tail += 1;
        true
    }

    #[inline]
    fn get(&self, id: u64) -> &T {
        debug_assert!(id >= self.head && id < self.tail);
        // SAFETY: `mask` is `buf.len() - 1` (a power of two minus one), so the
        // index is in bounds whatever `id` is.
        unsafe { self.buf.get_unchecked((id & self.mask) as usize) }
    }

    #[inline]
    fn get_mut(&mut self, id: u64) -> &mut T {
        debug_assert!(id >= self.head && id < self.tail);
        // SAFETY: as in `get`.
        unsafe { self.buf.get_unchecked_mut((id & self.mask) as usize) }
    }

    /// The slots `id..id + n` (all held) as at most two slices: up to the end
    /// of the buffer, then from its start.
    #[inline]
    fn slices(&self, id: u64, n: u64) -> (&[T], &[T]) {
        debug_assert!(id >= self.head && id + n <= self.tail);
        let from = (id & self.mask) as usize;
        let n = n as usize;
        let room = self.buf.len() - from;
        if n <= room {
            // SAFETY: `from` is below the length (masked) and `n` slots fit
            // after it.
            (unsafe { self.buf.get_unchecked(from..from + n) }, &[])
        } else {
            let (b, a) = self.buf.split_at(from);
            (a, &b[..n - a.len()])
        }
    }
}

/// A committed record. Whether it was handed out is not stored: records
/// before `AaStream::read_next` were.
#[derive(Debug, Clone, Copy)]
struct RecordSlot {
    kind: u16,
    /// Freed by the application (out of order: the slot waits for the older
    /// ones).
    freed: bool,
    start: u64,
    end: u64,
    field0: u64,
    nfields: u32,
    value0: u64,
    nvalues: u32,
    /// The pins of the record's fields (see [`Pins`]).
    pins: Pins,
}

/// Where the fields of a record pin fragments: when every field with bytes lies
/// in one fragment (the usual case) or in two consecutive ones (a record cut
/// by a packet boundary), its pins are added and dropped in one go, without
/// looking at each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pins {
    /// That fragment (the later of the two), or [`Pins::NONE`] (no field with
    /// bytes) or [`Pins::MIXED`] (fields over more fragments: look at each). A
    /// fragment with `n == 0` and `n2 == 0` means no field with bytes too (see
    /// [`Pins::is_none`]).
    frag: u64,
    /// Fields with bytes in `frag`.
    n: u32,
    /// Fields with bytes in `frag - 1` (a field spanning both counts in
    /// each).
    n2: u32,
}

impl Pins {
    const NONE: u64 = u64::MAX;
    const MIXED: u64 = u64::MAX - 1;
    const EMPTY: Pins = Pins {
        frag: Pins::NONE,
        n: 0,
        n2: 0,
    };

    /// No field with bytes: [`Pins::NONE`], or a fragment with none in it yet.
    #[inline]
    fn is_none(self) -> bool {
        self.frag == Pins::NONE || (self.frag != Pins::MIXED && self.n == 0 && self.n2 == 0)
    }

    /// Counts a field with bytes in fragments `first..=last`.
    #[inline]
    fn add(&mut self, first: u64, last: u64) {
        let two = u32::from(last == first + 1);
        if first != last && two == 0 {
            self.frag = Pins::MIXED;
        } else if self.is_none() {
            *self = Pins {
                frag: last,
                n: 1,
                n2: two,
            };
        } else if self.frag == Pins::MIXED {
        } else if last == self.frag {
            // In this fragment, maybe from the one before.
            self.n += 1;
            self.n2 += two;
        } else if first == self.frag && self.n2 == 0 {
            // The record moves on to the next fragment.
            *self = Pins {
                frag: last,
                n: 1,
                n2: self.n + two,
            };
        } else if last == self.frag.wrapping_sub(1) && two == 0 {
            self.n2 += 1;
        } else if first == self.frag + 1 && two == 0 && self.n2 == 0 {
            *self = Pins {
                frag: last,
                n: 1,
                n2: self.n,
            };
        } else {
            self.frag = Pins::MIXED;
        }
    }
}

/// Pins of one fragment to drop, gathered over consecutive records.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// The fragment, or [`Pins::NONE`].
    frag: u64,
    n: u32,
}

impl Batch {
    const EMPTY: Batch = Batch {
        frag: Pins::NONE,
        n: 0,
    };
}

// SAFETY: integers and `bool`s (and `Pins`, integers).
unsafe impl Zeroed for RecordSlot {}
unsafe impl Zeroed for FieldSlot {}
unsafe impl Zeroed for ValueSlot {}
// SAFETY: an integer.
#[cfg(test)]
unsafe impl Zeroed for u64 {}

#[derive(Debug, Clone, Copy)]
struct ValueSlot {
    tag: u16,
    value: u64,
}

/// Committed records and the fields of the record in progress.
struct RecordQueue {
    records: Ring<RecordSlot>,
    fields: Ring<FieldSlot>,
    values: Ring<ValueSlot>,
    /// Id of the first field of the record in progress (its fields are
    /// `field0..fields.tail`).
    field0: u64,
    /// The field id the record in progress may not reach: its
    /// [`Limits::fields_per_record`] limit, or the end of the ring's room.
    field_stop: u64,
    pending_values: u32,
    /// The pins of the fields of the record in progress.
    pending_pins: Pins,
    limits: Limits,
    max_records: usize,
    max_fields: usize,
    max_values: usize,
}

impl RecordQueue {
    /// No room for one more whole record. Fields and variables of the record in
    /// progress do not count: room for a whole record includes them.
    #[inline]
    fn is_full(&self) -> bool {
        let fields = (self.field0 - self.fields.head) as usize;
        let values = self.values.len() - self.pending_values as usize;
        self.records.len() >= self.max_records
            || fields + self.limits.fields_per_record as usize > self.max_fields
            || values + self.limits.values_per_record as usize > self.max_values
    }

    /// Fields of the record in progress.
    #[inline]
    fn pending_fields(&self) -> u32 {
        (self.fields.tail - self.field0) as u32
    }

    /// Sets `field_stop` after `field0` or the field ring's head moved.
    #[inline]
    fn set_field_stop(&mut self) {
        let room_end = self.fields.head + self.fields.buf.len() as u64;
        self.field_stop = (self.field0 + self.limits.fields_per_record as u64).min(room_end);
    }

    /// Drops the fields and variables of the record in progress (they pin
    /// nothing yet: fields pin at commit).
    fn abort(&mut self) {
        self.fields.tail = self.field0;
        self.values.tail -= self.pending_values as u64;
        self.pending_values = 0;
        self.pending_pins = Pins::EMPTY;
    }
}

/// Where a parser puts what it finds. Given to [`Parser::parse`] and
/// [`Parser::finish`].
pub struct Emitter<'a, P: Packet> {
    store: &'a mut FragStore<P>,
    /// Fragment being parsed, and its first offset.
    hint: u64,
    hint_off: u64,
    /// Offset one past the last byte handed to the parser.
    limit: u64,
    /// Pins on fragment `hint` of the records committed so far, added to it in
    /// one go by [`Emitter::flush`] when the parser returns (nothing reads pin
    /// counts while it runs).
    hint_pins: u32,
    q: &'a mut RecordQueue,
    sig: &'a mut SignalIo,
    /// Signals may still come to wait for: the stream expects them
    /// ([`AaStream::expect_signals`]) and has not ended.
    can_wait: bool,
}

/// The signals of a stream: heard from the other direction, and sent to it.
#[derive(Default)]
struct SignalIo {
    inbox: Signals,
    outbox: Signals,
    /// Signals dropped from a full queue.
    dropped: u64,
}

impl<P: Packet> Emitter<'_, P> {
    /// Adds a field `[start, end)` (stream offsets) with tag `tag` to the record
    /// in progress. Returns `false`, adding nothing, when the record already has
    /// [`Limits::fields_per_record`] fields (or, for a parser that does not
    /// pause when the queue [`is_full`](Self::is_full), when the queue has no
    /// room for it).
    #[inline]
    #[must_use]
    pub fn field(&mut self, tag: u16, start: u64, end: u64, flags: u8) -> bool {
        let q = &mut *self.q;
        if q.fields.tail >= q.field_stop {
            return false;
        }
        let end = end.min(self.limit);
        let start = start.min(end);
        if start >= self.hint_off && q.pending_pins.frag == self.hint {
            // The usual case: the field lies in the fragment being parsed, as
            // do the record's other fields with bytes so far (their pins are
            // counted here).
            q.fields.push_unchecked(FieldSlot {
                tag,
                flags,
                frag: self.hint,
                start,
                end,
            });
            q.pending_pins.n += u32::from(start < end);
            return true;
        }
        self.field_slow(tag, start, end, flags);
        true
    }

    /// [`Emitter::field`] for a field the caller knows ends in what the
    /// parser was handed (`start <= end`, `end` at most one past the last
    /// byte given): the fast case without the clamps, for a parser's loop
    /// over short fields in the packet it is parsing. A field that starts
    /// before the fragment being parsed takes the slow case (a parser
    /// replaying the bytes of a sync pattern that straddled packets, from
    /// its own copy of them, sees offsets of the packet before).
    /// (`field` keeps its own copy of this case: calling this from it cost
    /// 3.6% more instructions per CSV row in `rt_count csv`.)
    #[inline]
    #[must_use]
    pub fn field_here(&mut self, tag: u16, start: u64, end: u64, flags: u8) -> bool {
        debug_assert!(start <= end && end <= self.limit);
        let q = &mut *self.q;
        if q.fields.tail >= q.field_stop {
            return false;
        }
        if q.pending_pins.frag == self.hint && start >= self.hint_off {
            q.fields.push_unchecked(FieldSlot {
                tag,
                flags,
                frag: self.hint,
                start,
                end,
            });
            q.pending_pins.n += u32::from(start < end);
            return true;
        }
        self.field_slow(tag, start, end, flags);
        true
    }

    /// [`Emitter::field`] past its fast case: `[start, end)` (clamped) may lie
    /// before the fragment being parsed, or be the first field of the record
    /// in this fragment, or the record's fields may lie in several fragments.
    /// The ring has room (checked by `field`).
    #[inline(never)]
    fn field_slow(&mut self, tag: u16, start: u64, end: u64, flags: u8) {
        let frag = if start >= self.hint_off || start == end {
            // Within the fragment being parsed: the usual case.
            self.hint
        } else {
            self.first_frag(start)
        };
        self.q.fields.push_unchecked(FieldSlot {
            tag,
            flags,
            frag,
            start,
            end,
        });
        if start < end {
            // The last fragment the field spans: the one being parsed if it
            // ends in it; else, before it, only when it lies in one fragment.
            let last = if end > self.hint_off {
                self.hint
            } else if frag < self.store.end_id() && end <= self.store.get(frag).end() {
                frag
            } else {
                Pins::MIXED
            };
            if last == Pins::MIXED {
                self.q.pending_pins.frag = Pins::MIXED;
            } else {
                self.q.pending_pins.add(frag, last);
            }
        }
    }

    /// Id of the fragment holding offset `start`, before the current one.
    fn first_frag(&self, start: u64) -> u64 {
        let head = self.store.head_id;
        let last = self.store.end_id();
        let mut id = self.hint.min(last.saturating_sub(1)).max(head);
        while id > head && self.store.get(id).off > start {
            id -= 1;
        }
        id
    }

    /// Adds `n` pins to fragment `frag`, if it is held.
    #[inline]
    fn pin(&mut self, frag: u64, n: u32) {
        if let Some(m) = self.store.try_get_mut(frag) {
            m.refs += n;
        }
    }

    /// Adds the pins of a record whose fields lie in `frag` and maybe the one
    /// before (not only in `hint`).
    #[inline(never)]
    fn pin_two(&mut self, frag: u64, pins: Pins) {
        if frag == self.hint {
            self.hint_pins += pins.n;
        } else {
            self.pin(frag, pins.n);
        }
        if pins.n2 > 0 {
            self.pin(frag - 1, pins.n2);
        }
    }

    /// Adds the pins counted in `hint_pins`; called when the parser returns.
    #[inline]
    fn flush(mut self) {
        if self.hint_pins > 0 {
            self.pin(self.hint, self.hint_pins);
        }
    }

    /// [`Emitter::commit`] for fields in several fragments: pins each
    /// fragment every field spans; consecutive fields inside one fragment add
    /// their pins in one go.
    #[inline(never)]
    fn pin_mixed(&mut self) {
        let (frags, q) = (&mut *self.store, &mut *self.q);
        // `cur` is held from its first field on, so `cur_end` is its end.
        let (mut cur, mut cur_end, mut n) = (u64::MAX, 0u64, 0u32);
        for fi in q.field0..q.fields.tail {
            let f = *q.fields.get(fi);
            if f.start == f.end {
                continue;
            }
            if f.frag != cur {
                if let Some(m) = frags.try_get_mut(cur) {
                    m.refs += n;
                }
                (cur, n) = (f.frag, 0);
                cur_end = frags.try_get(cur).map_or(u64::MAX, |m| m.end());
            }
            n += 1;
            if f.end > cur_end {
                // Spans later fragments too.
                let mut id = f.frag + 1;
                while let Some(m) = frags.try_get_mut(id) {
                    m.refs += 1;
                    if m.end() >= f.end {
                        break;
                    }
                    id += 1;
                }
            }
        }
        if let Some(m) = frags.try_get_mut(cur) {
            m.refs += n;
        }
    }

    /// The bytes `[start, end)` of the record in progress, read in place (for
    /// actions that test or parse a field before the record is committed).
    /// Offsets are clamped to what the parser has been given and still holds.
    pub fn view(&self, start: u64, end: u64) -> Field<'_, P> {
        let lowest = self.store.front().map_or(self.limit, |f| f.off);
        // Bytes no longer held read as an empty view where the held ones begin.
        let end = end.min(self.limit).max(lowest);
        let start = start.clamp(lowest, end);
        let frag = if start == end || start >= self.hint_off {
            self.hint
        } else {
            self.first_frag(start)
        };
        Field {
            store: self.store,
            slot: FieldSlot {
                tag: 0,
                flags: 0,
                frag,
                start,
                end,
            },
        }
    }

    /// Stores variable `tag` = `value` in the record in progress. Returns `false`
    /// when the record already has [`Limits::values_per_record`] variables.
    #[inline(always)]
    #[must_use]
    pub fn value(&mut self, tag: u16, value: u64) -> bool {
        if self.q.pending_values >= self.q.limits.values_per_record {
            return false;
        }
        if !self.q.values.push(ValueSlot { tag, value }) {
            // A parser that does not pause when the queue is full.
            return false;
        }
        self.q.pending_values += 1;
        true
    }

    /// Ends the record in progress as a record of type `kind` spanning stream
    /// offsets `[start, end)`.
    #[inline]
    pub fn commit(&mut self, kind: u16, start: u64, end: u64) {
        let q = &mut *self.q;
        let pins = q.pending_pins;
        if pins.frag == self.hint && pins.n2 == 0 && q.records.len() < q.records.buf.len() {
            // The usual case: fields (if any) in the fragment being parsed.
            self.hint_pins += pins.n;
        } else if !self.pin_pending() {
            return;
        }
        let q = &mut *self.q;
        let tail = q.fields.tail;
        q.records.push_unchecked(RecordSlot {
            kind,
            freed: false,
            start,
            end,
            field0: q.field0,
            nfields: (tail - q.field0) as u32,
            value0: q.values.tail - q.pending_values as u64,
            nvalues: q.pending_values,
            pins,
        });
        q.field0 = tail;
        q.set_field_stop();
        q.pending_values = 0;
        // No field with bytes yet: the next record's fields in this fragment
        // take the fast case of `field` from the first.
        q.pending_pins = Pins {
            frag: self.hint,
            n: 0,
            n2: 0,
        };
    }

    /// [`Emitter::commit`] past its usual case: pins the record's fields;
    /// `false` if the record is dropped instead.
    #[inline(never)]
    fn pin_pending(&mut self) -> bool {
        let q = &mut *self.q;
        if q.records.len() == q.records.buf.len() {
            // A parser that does not pause when the queue is full: the record
            // is dropped (it pins nothing yet).
            q.abort();
            q.set_field_stop();
            return false;
        }
        let pins = q.pending_pins;
        match pins.frag {
            f if f == self.hint && pins.n2 == 0 => self.hint_pins += pins.n,
            Pins::NONE => {}
            Pins::MIXED => self.pin_mixed(),
            // The record's fields lie in an earlier fragment, or in two.
            frag => self.pin_two(frag, pins),
        }
        true
    }

    /// Drops the fields and variables added since the last commit.
    pub fn abort(&mut self) {
        self.q.abort();
    }

    /// Whether the record queue is full: pause with [`Step::Full`] at the next
    /// record boundary.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.q.is_full()
    }

    /// Fields added to the record in progress.
    pub fn pending_fields(&self) -> u32 {
        self.q.pending_fields()
    }

    /// Sends signal `v` to the other direction's parser (see
    /// [`crate::signal`]). `false`, sending nothing, if `v` is more than
    /// [`Signals::MAX`].
    #[inline]
    #[must_use]
    pub fn signal(&mut self, v: u64) -> bool {
        if v > Signals::MAX {
            return false;
        }
        let sig = &mut *self.sig;
        sig.dropped += u64::from(sig.outbox.push(v as u8));
        true
    }

    /// Takes the oldest signal of the other direction's parser not heard
    /// yet; 0 if there is none.
    #[inline]
    pub fn heard(&mut self) -> u64 {
        self.sig.inbox.pop().map_or(0, u64::from)
    }

    /// Whether a parser that needs a signal before it goes on (a grammar's
    /// `wait`) should pause with [`Step::Wait`]: no signal is waiting, and
    /// the stream expects signals ([`AaStream::expect_signals`]) and has
    /// not ended (at its end none is waited for).
    #[inline]
    pub fn may_wait(&self) -> bool {
        self.can_wait && self.sig.inbox.is_empty()
    }
}

/// Counters of an application-aware stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AaStats {
    /// Records committed by the parser.
    pub records: u64,
    /// Records freed by the application.
    pub freed: u64,
    /// Gaps reported to the parser.
    pub gaps: u64,
    /// Bytes in those gaps.
    pub gap_bytes: u64,
    /// Bytes that arrived after the stream had failed or ended, dropped unparsed.
    pub discarded_bytes: u64,
    /// Parser errors, the one that failed the stream included; with
    /// [`AaStream::recover_from_errors`], those the parser resynchronised after.
    pub errors: u64,
    /// Signals dropped from a full queue, sent or given (see [`crate::signal`]).
    pub signals_dropped: u64,
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AaState {
    /// Parsing.
    Active,
    /// The parser rejected the stream; see [`AaStream::error`]. Records committed
    /// before the error stay readable.
    Failed,
    /// The stream ended and the parser finished.
    Ended,
}

/// An idle stream's parser and position (see [`AaStream::park`]).
#[derive(Debug, Clone)]
pub struct Parked<R> {
    /// The parser, between records.
    pub parser: R,
    /// Sequence number of the next byte expected.
    pub seq: SeqNum,
    /// Stream offset of that byte.
    pub offset: u64,
    /// Signals from the other direction not heard yet.
    pub signals: Signals,
}

impl<R> Parked<R> {
    /// Adds signals from the other direction (see [`crate::signal`]);
    /// returns how many were dropped to make room.
    pub fn give_signals(&mut self, s: Signals) -> u64 {
        self.signals.append(s)
    }
}

/// The queues of a parked stream, reusable by [`AaStream::resume`].
pub struct Buffers<P: Packet> {
    stream: StreamBuffers<P>,
    rings: (Ring<RecordSlot>, Ring<FieldSlot>, Ring<ValueSlot>),
}

/// Identifies a record of one stream, for freeing it out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub u64);

/// An error of a stream's parser, and where it falls among the records: the
/// records before `before` came before it in the stream, those from
/// `before` on after it (parsed once the parser resynchronised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The id the first record after the error has (or will have).
    pub before: RecordId,
    /// The error.
    pub error: ParseError,
}

/// Most errors a stream keeps for [`AaStream::take_error`]; a further one
/// drops the oldest (all are counted in [`AaStats::errors`]).
pub const MAX_PENDING_ERRORS: usize = 16;

/// One direction of a TCP connection as a stream of parsed records whose fields
/// point into the packet buffers.
pub struct AaStream<P: Packet, R: Parser> {
    zc: ZcStream<P>,
    parser: R,
    q: RecordQueue,
    /// Next fragment to parse, and the offset reached inside it.
    parse_id: u64,
    parse_off: u64,
    /// Offset below which the parser needs nothing.
    horizon: u64,
    /// Fragments before this id have been examined for release.
    release_scan: u64,
    /// Next record `read_aa_records` hands out.
    read_next: u64,
    /// Records freed out of order, whose slots wait for older ones.
    freed_ahead: u64,
    /// Id of this stream's first record (reused rings go on counting).
    first_record: u64,
    /// After a parser error, resynchronise instead of failing.
    recover: bool,
    state: AaState,
    eof: bool,
    /// The parser returned [`Step::Wait`]: no parsing until a signal is
    /// given or the stream ends.
    waiting: bool,
    /// Another direction gives this one signals: a grammar's `wait` may
    /// pause for them.
    paired: bool,
    error: Option<ParseError>,
    /// Errors not yet taken (`take_error`), oldest first, at most
    /// [`MAX_PENDING_ERRORS`].
    // Boxed, not a `VecDeque` in place: 8 bytes in a struct whose hot
    // fields the per-packet path reads (with the queue in place,
    // `aa_generated` ran 1.5-3.7% slower in alternated runs).
    #[allow(clippy::box_collection)]
    pending_errors: Option<Box<VecDeque<StreamError>>>,
    stats: AaStats,
    sig: SignalIo,
}

impl<P: Packet, R: Parser> AaStream<P, R> {
    /// A stream whose first data byte has sequence number `first_seq`, parsed by
    /// `parser`.
    pub fn new(cfg: AaConfig, first_seq: u32, parser: R) -> Self {
        let parked = Parked {
            parser,
            seq: SeqNum(first_seq),
            offset: 0,
            signals: Signals::new(),
        };
        AaStream::resume(cfg, parked, None)
    }

    /// A stream that goes on from a parked one: the parser as it was, the next
    /// byte (`parked.seq`) at stream offset `parked.offset`. With `buffers`
    /// from [`park`](Self::park), no memory is allocated.
    pub fn resume(cfg: AaConfig, parked: Parked<R>, buffers: Option<Buffers<P>>) -> Self {
        let limits = parked.parser.limits();
        let max_fields = (cfg.max_fields as usize).max(limits.fields_per_record as usize);
        let max_values = (cfg.max_values as usize).max(limits.values_per_record as usize);
        let max_records = (cfg.max_records as usize).max(1);
        let (stream, rings) = match buffers {
            Some(b) => (Some(b.stream), Some(b.rings)),
            None => (None, None),
        };
        let (records, fields, values) = match rings {
            Some((r, f, v)) if r.fits(max_records) && f.fits(max_fields) && v.fits(max_values) => {
                (r, f, v)
            }
            _ => (
                Ring::with_capacity(max_records),
                Ring::with_capacity(max_fields),
                Ring::with_capacity(max_values),
            ),
        };
        let zc = ZcStream::resume(cfg.stream, parked.seq, parked.offset, stream);
        let frag_id = zc.store.end_id();
        let record_id = records.tail;
        let mut q = RecordQueue {
            field0: fields.tail,
            field_stop: 0,
            records,
            fields,
            values,
            pending_values: 0,
            pending_pins: Pins::EMPTY,
            limits,
            max_records,
            max_fields,
            max_values,
        };
        q.set_field_stop();
        AaStream {
            zc,
            parser: parked.parser,
            q,
            parse_id: frag_id,
            parse_off: parked.offset,
            horizon: parked.offset,
            release_scan: frag_id,
            read_next: record_id,
            freed_ahead: 0,
            first_record: record_id,
            recover: false,
            state: AaState::Active,
            eof: false,
            waiting: false,
            paired: false,
            error: None,
            pending_errors: None,
            stats: AaStats::default(),
            sig: SignalIo {
                inbox: parked.signals,
                ..SignalIo::default()
            },
        }
    }

    /// Whether the stream holds nothing and may be parked: no packet, no
    /// record (every one freed), no error not taken, the parser between
    /// records, not ended.
    pub fn is_idle(&self) -> bool {
        self.state == AaState::Active
            && !self.eof
            && self.pending_errors.as_ref().is_none_or(|q| q.is_empty())
            && self.zc.is_empty()
            && self.q.records.len() == 0
            && self.q.fields.len() == 0
            && self.q.values.len() == 0
            && self.parser.retain_from() == u64::MAX
    }

    /// Takes an idle stream apart: what it needs to go on ([`Parked`]: the
    /// parser and the position, a few dozen bytes) and its queues, to be
    /// reused by any stream of the same configuration ([`resume`](Self::resume)).
    /// A tracker of many mostly idle connections keeps only the parked part
    /// of each. The stream comes back unchanged if it is not idle. Signals
    /// not heard yet go with the parked part; signals sent and not taken
    /// ([`take_signals`](Self::take_signals)) are dropped. Counters
    /// are not kept: read [`stats`](Self::stats) before.
    // The stream itself is the error: it comes back whole, unchanged.
    #[allow(clippy::result_large_err)]
    pub fn park(self) -> Result<(Parked<R>, Buffers<P>), Self> {
        if !self.is_idle() {
            return Err(self);
        }
        let seq = self.zc.rcv_nxt();
        let offset = self.zc.rcv_nxt_offset();
        let AaStream {
            zc, parser, q, sig, ..
        } = self;
        let stream = zc.into_buffers();
        Ok((
            Parked {
                parser,
                seq,
                offset,
                signals: sig.inbox,
            },
            Buffers {
                stream,
                rings: (q.records, q.fields, q.values),
            },
        ))
    }

    /// The underlying zero-copy stream (window, `rcv_nxt`, counters).
    pub fn stream(&self) -> &ZcStream<P> {
        &self.zc
    }

    /// The parser.
    pub fn parser(&self) -> &R {
        &self.parser
    }

    /// Names of record types and fields.
    pub fn schema(&self) -> &'static Schema {
        self.parser.schema()
    }

    /// Where the stream is.
    pub fn state(&self) -> AaState {
        self.state
    }

    /// After a parser error, let the parser resynchronise where its grammar
    /// says (its sync patterns, as after a gap) instead of failing the stream;
    /// the error is still counted ([`AaStats::errors`]) and kept
    /// ([`error`](Self::error)). Records before the error stay; the record
    /// in progress is dropped. A parser that cannot resynchronise fails the
    /// stream as without this. Off by default.
    pub fn recover_from_errors(&mut self, on: bool) {
        self.recover = on;
    }

    /// Why the stream failed, if it did; or, with
    /// [`recover_from_errors`](Self::recover_from_errors), the last error the
    /// parser resynchronised after.
    pub fn error(&self) -> Option<&ParseError> {
        self.error.as_ref()
    }

    /// The oldest error not taken yet, with where it falls among the records
    /// (for output in stream order: the records before
    /// [`StreamError::before`], then the error, then the rest). Every error
    /// is kept until taken, up to [`MAX_PENDING_ERRORS`].
    pub fn take_error(&mut self) -> Option<StreamError> {
        self.pending_errors.as_mut()?.pop_front()
    }

    /// Notes the parser's error `e` (the latest, and one more to take).
    fn note_error(&mut self, e: ParseError) {
        self.stats.errors += 1;
        // Boxed: a stream without errors keeps a pointer, not a queue.
        let q = self
            .pending_errors
            .get_or_insert_with(|| Box::new(VecDeque::with_capacity(MAX_PENDING_ERRORS)));
        if q.len() == MAX_PENDING_ERRORS {
            q.pop_front();
        }
        q.push_back(StreamError {
            before: RecordId(self.q.records.tail),
            error: e.clone(),
        });
        self.error = Some(e);
    }

    /// Counters.
    pub fn stats(&self) -> AaStats {
        AaStats {
            records: self.q.records.tail - self.first_record,
            signals_dropped: self.sig.dropped,
            ..self.stats
        }
    }

    /// Takes the signals the parser sent to the other direction's parser
    /// (see [`crate::signal`]), to hand to it.
    pub fn take_signals(&mut self) -> Signals {
        std::mem::take(&mut self.sig.outbox)
    }

    /// Gives the parser signals from the other direction's parser, heard
    /// after those it holds; a full queue drops its oldest (counted in
    /// [`AaStats::signals_dropped`]). A gap, or an error the parser
    /// resynchronises after, drops the signals not heard yet: the bytes lost
    /// or skipped may have held the messages they were for.
    pub fn give_signals(&mut self, s: Signals) {
        self.sig.dropped += self.sig.inbox.append(s);
        if self.waiting && !s.is_empty() {
            // A parser waiting for a signal goes on.
            self.pump();
        }
    }

    /// Whether the parser waits for a signal from the other direction
    /// (see [`Step::Wait`]) before the bytes it holds.
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Says whether another direction's parser will give this stream
    /// signals ([`give_signals`](Self::give_signals)), as the passive path
    /// does when both directions of a connection are parsed. Only then does
    /// a grammar's `wait` pause ([`Step::Wait`]); by default (a stream
    /// parsed alone, as an endpoint's) it goes on at once. Turning it off
    /// lets a waiting parser go on.
    pub fn expect_signals(&mut self, on: bool) {
        self.paired = on;
        if !on && self.waiting {
            self.pump();
        }
    }

    /// Signals from the other direction not heard yet.
    pub fn pending_signals(&self) -> Signals {
        self.sig.inbox
    }

    /// Takes a received segment (see [`ZcStream::insert`]) and parses whatever
    /// became in-order.
    #[inline]
    pub fn insert(&mut self, seq: u32, pkt: P, payload: Range<usize>) -> Insert {
        let r = self.zc.insert(seq, pkt, payload);
        if let Insert::InOrder { .. } = r {
            self.pump();
        }
        r
    }

    /// Declares lost every byte before `seq` that has not arrived (see
    /// [`ZcStream::skip_to`]); the parser is told of each hole in stream order.
    pub fn skip_to(&mut self, seq: SeqNum) -> u64 {
        let n = self.zc.skip_to(seq);
        self.pump();
        n
    }

    /// Skips the hole before the first queued segment (see
    /// [`ZcStream::skip_to_next_segment`]).
    pub fn skip_to_next_segment(&mut self) -> u64 {
        let n = self.zc.skip_to_next_segment();
        self.pump();
        n
    }

    /// The stream ends at `rcv_nxt` (FIN reached, or the flow is gone). Bytes
    /// missing before it are a gap; the parser ends the record in progress once
    /// every held fragment has been parsed.
    pub fn finish(&mut self) {
        self.eof = true;
        self.pump();
    }

    /// Runs the parser over fragments not parsed yet, as far as the record queue
    /// allows.
    fn pump(&mut self) {
        loop {
            if self.state != AaState::Active {
                self.discard_unparsed();
                return;
            }
            if self.parse_id == self.zc.store.end_id() {
                if self.eof {
                    self.end_of_stream();
                    continue;
                }
                return;
            }
            if self.q.is_full() {
                return;
            }
            if self.waiting {
                if self.sig.inbox.is_empty() && self.paired && !self.eof {
                    return;
                }
                self.waiting = false;
            }
            let frag = self.zc.store.get(self.parse_id);
            let (off, end) = (frag.off, frag.end());
            if off > self.parse_off && !self.gap(self.parse_off, off - self.parse_off) {
                continue;
            }
            let store = &mut self.zc.store;
            let skip = (self.parse_off - off) as usize;
            let data: *const [u8] = match store.get(self.parse_id).payload() {
                Some(p) => &p[skip..],
                None => unreachable!("unparsed fragments are never released"),
            };
            // SAFETY: the bytes live in the packet buffer, not in the fragment ring, and
            // the fragment's handle stays in place while the parser runs: the
            // emitter only changes pin counts, it never drops or moves handles.
            let data = unsafe { &*data };
            if self.q.pending_pins.is_none() {
                // No field with bytes pending: the first one in this fragment
                // takes the fast case of `field` (once per packet, 2% of the
                // instructions of an HTTP message in `rt_count http-known`).
                self.q.pending_pins = Pins {
                    frag: self.parse_id,
                    n: 0,
                    n2: 0,
                };
            }
            let chunk = Chunk {
                data,
                offset: self.parse_off,
            };
            let mut em = Emitter {
                store,
                hint: self.parse_id,
                hint_off: off,
                limit: end,
                hint_pins: 0,
                q: &mut self.q,
                sig: &mut self.sig,
                can_wait: self.paired && !self.eof,
            };
            let step = self.parser.parse(chunk, &mut em);
            em.flush();
            match step {
                Ok(Step::Done) => {
                    self.parse_id += 1;
                    self.parse_off = end;
                }
                Ok(Step::Full { consumed }) => {
                    self.parse_off += consumed.min(data.len()) as u64;
                    if self.parse_off == end {
                        self.parse_id += 1;
                    }
                    if consumed == 0 {
                        self.advance_horizon();
                        return;
                    }
                }
                Ok(Step::Wait { consumed }) => {
                    self.parse_off += consumed.min(data.len()) as u64;
                    if self.parse_off == end {
                        self.parse_id += 1;
                    }
                    // Until a signal comes (`give_signals`) or the end.
                    self.waiting = true;
                    self.advance_horizon();
                    return;
                }
                Err(e) => {
                    // Resynchronise from the byte after the offending one (not
                    // before this chunk, not past the fragment).
                    let at = e.offset.saturating_add(1).clamp(self.parse_off, end);
                    if self.recover && self.parser.recover(at) {
                        self.q.abort();
                        // As after a gap: the bytes skipped may have answered them.
                        self.sig.inbox = Signals::new();
                        self.note_error(e);
                        self.parse_off = at;
                        if at == end {
                            self.parse_id += 1;
                        }
                        self.advance_horizon();
                        continue;
                    }
                    // The failing fragment counts as parsed; later ones are discarded.
                    self.parse_id += 1;
                    self.parse_off = end;
                    self.fail(e);
                    continue;
                }
            }
            self.advance_horizon();
        }
    }

    /// Reports a hole to the parser; `false` if the stream failed.
    fn gap(&mut self, off: u64, len: u64) -> bool {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        self.q.abort();
        // The lost bytes may have held the messages the pending signals were
        // for: pairing starts again with the signals sent from now on.
        self.sig.inbox = Signals::new();
        self.parse_off = off + len;
        match self.parser.gap(off, len) {
            Ok(()) => true,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn end_of_stream(&mut self) {
        let end = self.zc.rcv_nxt_offset();
        if end > self.parse_off && !self.gap(self.parse_off, end - self.parse_off) {
            return;
        }
        let store = &mut self.zc.store;
        let hint = self.parse_id.saturating_sub(1).max(store.head_id);
        let hint_off = if hint < store.end_id() {
            store.get(hint).off
        } else {
            end
        };
        let mut em = Emitter {
            store,
            hint,
            hint_off,
            limit: end,
            hint_pins: 0,
            q: &mut self.q,
            sig: &mut self.sig,
            can_wait: false,
        };
        let r = self.parser.finish(end, &mut em);
        em.flush();
        match r {
            Ok(()) => {
                self.q.abort();
                self.state = AaState::Ended;
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: ParseError) {
        self.q.abort();
        self.note_error(e);
        self.state = AaState::Failed;
    }

    /// After failure or end: nothing more is parsed; fragments go as soon as no
    /// record pins them.
    fn discard_unparsed(&mut self) {
        let end_id = self.zc.store.end_id();
        while self.parse_id < end_id {
            let f = self.zc.store.get(self.parse_id);
            self.stats.discarded_bytes += f.end() - self.parse_off.clamp(f.off, f.end());
            self.parse_id += 1;
        }
        self.parse_off = self.parse_off.max(self.zc.rcv_nxt_offset());
        self.horizon = u64::MAX;
        self.release_passed();
    }

    #[inline]
    fn advance_horizon(&mut self) {
        let h = self.parser.retain_from().min(self.parse_off);
        self.horizon = self.horizon.max(h);
        self.release_passed();
    }

    /// Releases unpinned fragments that the horizon has passed.
    #[inline]
    fn release_passed(&mut self) {
        self.release_scan = self.release_scan.max(self.zc.store.head_id);
        while self.release_scan < self.parse_id {
            let f = self.zc.store.get(self.release_scan);
            if f.end() > self.horizon {
                break;
            }
            if f.refs == 0 {
                self.zc.release(self.release_scan);
            }
            self.release_scan += 1;
        }
    }

    /// Records committed and not yet handed out by `read_aa_records`.
    pub fn ready(&self) -> usize {
        (self.q.records.tail - self.read_next.max(self.q.records.head)) as usize
    }

    /// Hands out up to `n` records not read before, oldest first. They stay
    /// valid (and their packets held) until freed.
    #[inline]
    pub fn read_aa_records(&mut self, n: usize) -> Records<'_, P> {
        let from = self.read_next.max(self.q.records.head);
        let to = self.q.records.tail.min(from.saturating_add(n as u64));
        self.read_next = to;
        Records {
            view: self.view(),
            ids: from..to,
        }
    }

    /// Frees the `n` oldest records that were read and not freed yet. Returns how
    /// many were freed.
    pub fn free_aa_records(&mut self, n: usize) -> usize {
        if self.freed_ahead == 0 {
            return self.free_oldest(n);
        }
        let (mut id, mut freed) = (self.q.records.head, 0usize);
        // Consecutive records pinning one fragment drop their pins in one go.
        let mut batch = Batch::EMPTY;
        while freed < n && id < self.read_next {
            let r = self.q.records.get_mut(id);
            if !r.freed {
                r.freed = true;
                self.freed_ahead += 1;
                freed += 1;
                let pins = r.pins;
                batch = self.unpin_record(batch, id, pins);
            }
            id += 1;
        }
        self.unpin(batch.frag, batch.n);
        self.stats.freed += freed as u64;
        self.after_free();
        freed
    }

    /// [`AaStream::free_aa_records`] when no record was freed out of order:
    /// the `n` oldest read records are the first ones of the queue, and their
    /// slots go at once.
    #[inline]
    fn free_oldest(&mut self, n: usize) -> usize {
        let head = self.q.records.head;
        let to = self.read_next.min(head.saturating_add(n as u64));
        if to == head {
            self.pump();
            return 0;
        }
        // Consecutive records pinning one fragment drop their pins in one go.
        let mut batch = Batch::EMPTY;
        for id in head..to {
            let pins = self.q.records.get(id).pins;
            batch = self.unpin_record(batch, id, pins);
        }
        self.unpin(batch.frag, batch.n);
        self.stats.freed += to - head;
        self.pop_records(to);
        self.pump_after_free();
        (to - head) as usize
    }

    /// Frees one read record, in any order. Returns `false` if it was not a read,
    /// unfreed record of this stream.
    pub fn free_record(&mut self, id: RecordId) -> bool {
        let ok =
            id.0 >= self.q.records.head && id.0 < self.read_next && !self.q.records.get(id.0).freed;
        if ok {
            let r = self.q.records.get_mut(id.0);
            r.freed = true;
            self.freed_ahead += 1;
            let (pins, batch) = (r.pins, Batch::EMPTY);
            let batch = self.unpin_record(batch, id.0, pins);
            self.unpin(batch.frag, batch.n);
            self.stats.freed += 1;
            self.after_free();
        }
        ok
    }

    /// A record read and not freed yet.
    pub fn record(&self, id: RecordId) -> Option<Record<'_, P>> {
        let live = id.0 >= self.q.records.head && id.0 < self.read_next;
        (live && !self.q.records.get(id.0).freed).then(|| self.view().record(id.0))
    }

    /// Drops the pins `pins` of record `id`, or adds them to `batch` (pins of
    /// one fragment not dropped yet) when they are on its fragment; returns
    /// the batch then: what is left on the record's last fragment.
    #[inline(always)]
    fn unpin_record(&mut self, batch: Batch, id: u64, pins: Pins) -> Batch {
        if pins.frag == batch.frag && pins.n2 == 0 {
            // The usual case: on the fragment of the records before.
            return Batch {
                frag: batch.frag,
                n: batch.n + pins.n,
            };
        }
        self.unpin_record_slow(batch, id)
    }

    /// [`AaStream::unpin_record`] for a record on another fragment.
    #[inline(never)]
    fn unpin_record_slow(&mut self, mut batch: Batch, id: u64) -> Batch {
        let pins = self.q.records.get(id).pins;
        if pins.frag == Pins::MIXED {
            self.unpin(batch.frag, batch.n);
            self.unpin_fields(id);
            return Batch::EMPTY;
        }
        if pins.n2 > 0 {
            // Pins on the fragment before, usually that of the records before.
            let prev = pins.frag - 1;
            if batch.frag == prev {
                batch.n += pins.n2;
            } else {
                self.unpin(prev, pins.n2);
            }
        }
        if pins.frag != batch.frag {
            self.unpin(batch.frag, batch.n);
            batch = Batch {
                frag: pins.frag,
                n: 0,
            };
        }
        batch.n += pins.n;
        batch
    }

    /// Drops the pins of record `id`'s fields one field at a time (fields in
    /// several fragments: [`Pins::MIXED`]).
    #[inline(never)]
    fn unpin_fields(&mut self, id: u64) {
        let r = *self.q.records.get(id);
        // Consecutive fields in one fragment drop their pins in one go.
        let (mut cur, mut cur_end, mut n) = (u64::MAX, 0u64, 0u32);
        for fi in r.field0..r.field0 + r.nfields as u64 {
            let f = *self.q.fields.get(fi);
            if f.start == f.end {
                continue;
            }
            if f.frag != cur {
                self.unpin(cur, n);
                (cur, cur_end, n) = (f.frag, self.zc.store.get(f.frag).end(), 0);
            }
            n += 1;
            if f.end > cur_end {
                // Spans later fragments.
                let mut id = f.frag;
                while self.zc.store.get(id).end() < f.end {
                    id += 1;
                    self.unpin(id, 1);
                }
            }
        }
        self.unpin(cur, n);
    }

    /// Drops `n` pins of fragment `id`, releasing it if that was the last pin and
    /// the parser is past it.
    #[inline]
    fn unpin(&mut self, id: u64, n: u32) {
        if n == 0 {
            return;
        }
        let m = self.zc.store.get_mut(id);
        m.refs -= n;
        if m.refs == 0 && id < self.release_scan {
            self.zc.release(id);
        }
    }

    /// Drops the slots of freed records at the head of the queue.
    fn after_free(&mut self) {
        let q = &self.q;
        let mut head = q.records.head;
        while head < q.records.tail && q.records.get(head).freed {
            head += 1;
        }
        self.freed_ahead -= head - q.records.head;
        self.pop_records(head);
        self.pump_after_free();
    }

    /// Room may let paused parsing go on; after failure or end, fragments may
    /// go. (Nothing to do when every fragment was parsed, the usual case.)
    #[inline]
    fn pump_after_free(&mut self) {
        if self.state != AaState::Active || self.eof || self.parse_id != self.zc.store.end_id() {
            self.pump();
        }
    }

    /// Drops the slots of the records before `head` (all freed).
    #[inline(always)]
    fn pop_records(&mut self, head: u64) {
        let q = &mut self.q;
        if head == q.records.head {
            return;
        }
        let r = *q.records.get(head - 1);
        q.records.head = head;
        q.fields.head = r.field0 + r.nfields as u64;
        q.values.head = r.value0 + r.nvalues as u64;
        if q.records.len() == 0 {
            // Only the record in progress holds slots (field ids are not
            // seen outside the queue).
            let pending = q.pending_fields();
            q.fields.restart(pending as usize);
            q.field0 = q.fields.tail - pending as u64;
            q.values.restart(q.pending_values as usize);
        }
        q.set_field_stop();
    }

    fn view(&self) -> View<'_, P> {
        View {
            store: &self.zc.store,
            q: &self.q,
            schema: self.parser.schema(),
        }
    }
}

struct View<'a, P: Packet> {
    store: &'a FragStore<P>,
    q: &'a RecordQueue,
    schema: &'static Schema,
}

impl<'a, P: Packet> View<'a, P> {
    #[inline]
    fn record(self, id: u64) -> Record<'a, P> {
        Record {
            slot: self.q.records.get(id),
            view: self,
            id,
        }
    }
}

impl<P: Packet> Clone for View<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Packet> Copy for View<'_, P> {}

/// Records handed out by [`AaStream::read_aa_records`].
pub struct Records<'a, P: Packet> {
    view: View<'a, P>,
    ids: Range<u64>,
}

impl<'a, P: Packet> Iterator for Records<'a, P> {
    type Item = Record<'a, P>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a, P>> {
        let view = self.view;
        self.ids.next().map(|id| view.record(id))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ids.size_hint()
    }
}

impl<P: Packet> ExactSizeIterator for Records<'_, P> {}

/// One parsed record; its fields are read in place.
pub struct Record<'a, P: Packet> {
    view: View<'a, P>,
    slot: &'a RecordSlot,
    id: u64,
}

impl<'a, P: Packet> Record<'a, P> {
    #[inline]
    fn slot(&self) -> &'a RecordSlot {
        self.slot
    }

    /// Identifies the record for [`AaStream::free_record`].
    pub fn id(&self) -> RecordId {
        RecordId(self.id)
    }

    /// Record type (index into the schema's records).
    #[inline]
    pub fn kind(&self) -> u16 {
        self.slot().kind
    }

    /// Record type name.
    pub fn name(&self) -> &'static str {
        self.view.schema.record_name(self.kind())
    }

    /// The schema of the parser that made the record: the names of its
    /// fields and variables, by tag.
    pub fn schema(&self) -> &'static Schema {
        self.view.schema
    }

    /// Stream offsets the record spans.
    pub fn span(&self) -> Range<u64> {
        self.slot().start..self.slot().end
    }

    /// Number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        self.slot().nfields as usize
    }

    /// Whether the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Field `i` in order of appearance.
    #[inline]
    pub fn field(&self, i: usize) -> Option<Field<'a, P>> {
        let s = self.slot();
        (i < s.nfields as usize).then(|| Field {
            store: self.view.store,
            slot: *self.view.q.fields.get(s.field0 + i as u64),
        })
    }

    /// All fields in order of appearance.
    #[inline]
    pub fn fields(&self) -> impl Iterator<Item = Field<'a, P>> + '_ {
        let s = self.slot();
        let (a, b) = self.view.q.fields.slices(s.field0, s.nfields as u64);
        Fields {
            store: self.view.store,
            cur: a.iter(),
            next: b,
        }
    }

    /// The first field named `name` in the record's schema (for a parser
    /// loaded at run time, whose tags are not constants of the program).
    pub fn field_named(&self, name: &str) -> Option<Field<'a, P>> {
        self.field_by_tag(self.tag_of(name)?)
    }

    /// Every field named `name`, in order: a repeated field's items.
    pub fn fields_named(&self, name: &str) -> impl Iterator<Item = Field<'a, P>> + '_ {
        let tag = self.tag_of(name);
        self.fields().filter(move |f| Some(f.tag()) == tag)
    }

    /// The variable named `name` in the record's schema, as stored at the
    /// record's end.
    pub fn value_named(&self, name: &str) -> Option<u64> {
        let rs = self.view.schema.records.get(usize::from(self.kind()))?;
        let tag = rs.values.iter().position(|v| *v == name)?;
        self.value(tag as u16)
    }

    /// The tag of the field named `name` in the record's schema.
    fn tag_of(&self, name: &str) -> Option<u16> {
        let rs = self.view.schema.records.get(usize::from(self.kind()))?;
        rs.fields.iter().position(|f| *f == name).map(|t| t as u16)
    }

    /// The first field with tag `tag`.
    #[inline]
    pub fn field_by_tag(&self, tag: u16) -> Option<Field<'a, P>> {
        let (s, store) = (self.slot(), self.view.store);
        let (a, b) = self.view.q.fields.slices(s.field0, s.nfields as u64);
        let slot = *a.iter().chain(b).find(|f| f.tag == tag)?;
        Some(Field { store, slot })
    }

    /// Variable `tag`, if the parser stored it in this record.
    pub fn value(&self, tag: u16) -> Option<u64> {
        let s = self.slot();
        (s.value0..s.value0 + s.nvalues as u64)
            .map(|id| self.view.q.values.get(id))
            .find(|v| v.tag == tag)
            .map(|v| v.value)
    }
}

/// The fields of a record: the slots up to the end of the ring's buffer, then
/// those from its start (usually none).
struct Fields<'a, P: Packet> {
    store: &'a FragStore<P>,
    cur: std::slice::Iter<'a, FieldSlot>,
    next: &'a [FieldSlot],
}

impl<'a, P: Packet> Fields<'a, P> {
    /// Goes on at the start of the ring's buffer.
    #[cold]
    fn wrap(&mut self) -> Option<Field<'a, P>> {
        self.cur = std::mem::take(&mut self.next).iter();
        let slot = *self.cur.next()?;
        Some(Field {
            store: self.store,
            slot,
        })
    }
}

impl<'a, P: Packet> Iterator for Fields<'a, P> {
    type Item = Field<'a, P>;

    #[inline]
    fn next(&mut self) -> Option<Field<'a, P>> {
        match self.cur.next() {
            Some(&slot) => Some(Field {
                store: self.store,
                slot,
            }),
            None => self.wrap(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.cur.len() + self.next.len();
        (n, Some(n))
    }

    // What `filter` (a record type's accessor of a repeated field) calls: the
    // predicate looks at the slot in place.
    #[inline]
    fn find<F: FnMut(&Field<'a, P>) -> bool>(&mut self, mut pred: F) -> Option<Field<'a, P>> {
        let store = self.store;
        loop {
            if let Some(&slot) = self.cur.find(|&&slot| pred(&Field { store, slot })) {
                return Some(Field { store, slot });
            }
            if self.next.is_empty() {
                return None;
            }
            self.cur = std::mem::take(&mut self.next).iter();
        }
    }
}

impl<P: Packet> std::fmt::Debug for Record<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.name())
            .field("span", &self.span())
            .field("fields", &self.fields().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod test {
    use super::{Pins, Ring};

    #[test]
    fn pins_count_one_or_two_fragments_and_give_up_past_that() {
        let mut p = Pins::EMPTY;
        p.add(5, 5);
        p.add(5, 5);
        assert_eq!((p.frag, p.n, p.n2), (5, 2, 0));
        // A field across the boundary counts in both, one after it in the second.
        p.add(5, 6);
        assert_eq!((p.frag, p.n, p.n2), (6, 1, 3));
        p.add(6, 6);
        assert_eq!((p.frag, p.n, p.n2), (6, 2, 3));
        p.add(5, 5);
        assert_eq!((p.frag, p.n, p.n2), (6, 2, 4), "back in the one before");
        p.add(7, 7);
        assert_eq!(p.frag, Pins::MIXED, "a third fragment");
        p.add(7, 7);
        assert_eq!(p.frag, Pins::MIXED, "mixed stays mixed");

        // After a commit the record in progress starts as "fragment, none yet".
        let mut p = Pins {
            frag: 3,
            n: 0,
            n2: 0,
        };
        assert!(p.is_none());
        p.add(4, 5);
        assert_eq!((p.frag, p.n, p.n2), (5, 1, 1));
        p.add(5, 5);
        assert_eq!((p.frag, p.n, p.n2), (5, 2, 1));
        let mut p = Pins::EMPTY;
        p.add(4, 4);
        p.add(5, 5);
        assert_eq!((p.frag, p.n, p.n2), (5, 1, 1), "the next fragment");
        let mut p = Pins::EMPTY;
        p.add(4, 6);
        assert_eq!(p.frag, Pins::MIXED, "three fragments");
        let mut p = Pins::EMPTY;
        p.add(4, 4);
        p.add(2, 2);
        assert_eq!(p.frag, Pins::MIXED, "two before");
        let mut p = Pins::EMPTY;
        p.add(4, 5);
        p.add(6, 6);
        assert_eq!(p.frag, Pins::MIXED, "past two");
    }

    #[test]
    fn fields_go_on_at_the_start_of_the_ring() {
        use super::{FieldSlot, Fields};
        use crate::packet::PoolPacket;
        use crate::stream::FragStore;
        let store: FragStore<PoolPacket> = FragStore::with_buffer(Box::default(), 0);
        let mut r: Ring<FieldSlot> = Ring::with_capacity(4);
        for tag in 0..6 {
            if r.len() == 4 {
                r.head += 1;
            }
            r.push_unchecked(FieldSlot {
                tag,
                ..FieldSlot::default()
            });
        }
        let fields = |id, n| {
            let (a, b) = r.slices(id, n);
            Fields {
                store: &store,
                cur: a.iter(),
                next: b,
            }
        };
        let tags: Vec<u16> = fields(2, 4).map(|f| f.tag()).collect();
        assert_eq!(tags, [2, 3, 4, 5]);
        assert_eq!(fields(2, 4).size_hint(), (4, Some(4)));
        let odd: Vec<u16> = fields(2, 4)
            .filter(|f| f.tag() % 2 == 1)
            .map(|f| f.tag())
            .collect();
        assert_eq!(odd, [3, 5]);
        assert_eq!(
            fields(3, 3).find(|f| f.tag() == 5).map(|f| f.tag()),
            Some(5)
        );
        assert!(fields(3, 3).find(|f| f.tag() == 2).is_none());
        assert_eq!(fields(4, 0).count(), 0);
    }

    #[test]
    fn ring_slices_wrap_around_the_buffer_end() {
        let mut r: Ring<u64> = Ring::with_capacity(4);
        for v in 0..6 {
            if r.len() == 4 {
                r.head += 1;
            }
            assert!(r.push(v));
        }
        // Ids 2..6 live at 2, 3, 0, 1.
        assert_eq!(r.slices(2, 4), (&[2, 3][..], &[4, 5][..]));
        assert_eq!(r.slices(3, 2), (&[3][..], &[4][..]));
        assert_eq!(r.slices(4, 2), (&[4, 5][..], &[][..]));
        assert_eq!(r.slices(2, 0), (&[][..], &[][..]));
        assert!(!r.push(6), "full");
        assert_eq!(*r.get(5), 5);
    }
}
