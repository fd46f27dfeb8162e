//! The zero-copy stream (thesis 3.1–3.2).
//!
//! How it works. Every accepted TCP segment becomes a *fragment*: a packet handle
//! and the range of its payload. Fragments whose first byte is `rcv_nxt` join the
//! in-order list at once; others wait in the out-of-order queue, kept sorted by
//! stream offset with the invariant `off + len <= next.off`. A new segment is cut
//! into the pieces not already held (first copy wins: bytes already held are
//! compared and differences counted as conflicts, then the new copy is dropped), so
//! one packet may back several pieces, each holding a clone of its handle. When the
//! hole before the queue's head closes, the head and every piece contiguous with it
//! move to the in-order list. The common case — the next segment, nothing queued —
//! is a single push.
//!
//! Offsets. Internally bytes are numbered by a 64-bit stream offset (0 = first data
//! byte); a sequence number becomes an offset by its signed distance to `rcv_nxt`,
//! so comparisons are modulo 2^32 and a stream may carry more than 4 GiB.
//!
//! Window. The advertised window is the configured receive buffer minus the bytes
//! of in-order fragments not yet released: data the application holds throttles the
//! sender. A segment starting at or beyond the right edge is dropped; the part of a
//! segment beyond it is trimmed. Both are counted.
//!
//! What must change together: `FragStore` ids are stable for the life of the
//! stream (`head_id` + index); the application-aware stream in `crate::aa` keeps
//! ids in its field slots and pins fragments through `Frag::refs`.

use crate::packet::Packet;
use crate::seq::SeqNum;
use std::collections::VecDeque;
use std::ops::Range;

/// Limits of one stream direction. Every queue is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Receive buffer in bytes: the largest window advertised, and the most
    /// in-order bytes held for the application.
    pub recv_buffer: u32,
    /// Most in-order fragments held (read or not, released or not yet popped)
    /// when a segment arrives. A segment that closes a hole brings the queued
    /// pieces after it along, so the count can reach
    /// `max_fragments + max_ooo_fragments + 1`, never more.
    pub max_fragments: u32,
    /// Most bytes held in the out-of-order queue.
    pub max_ooo_bytes: u32,
    /// Most fragments held in the out-of-order queue.
    pub max_ooo_fragments: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            recv_buffer: 256 * 1024,
            max_fragments: 4096,
            max_ooo_bytes: 256 * 1024,
            max_ooo_fragments: 1024,
        }
    }
}

/// What happened to a segment given to [`ZcStream::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// New in-order bytes: `bytes` more bytes are readable (this segment and any
    /// out-of-order ones it joined to the stream).
    InOrder {
        /// Bytes added to the in-order list.
        bytes: u64,
    },
    /// Held in the out-of-order queue, waiting for a hole to close.
    OutOfOrder,
    /// Every byte was already held or already delivered.
    Duplicate,
    /// The segment had no payload.
    Empty,
    /// Dropped: it starts at or beyond the right edge of the window.
    OutOfWindow,
    /// Dropped: taking it would exceed a fragment or byte cap.
    OverCap,
}

/// Counters of one stream direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Segments offered to `insert`.
    pub segments: u64,
    /// Segments that extended the in-order stream directly.
    pub in_order: u64,
    /// Segments queued out of order (whole or in part).
    pub out_of_order: u64,
    /// Segments carrying nothing new.
    pub duplicates: u64,
    /// Bytes received again that were already held or delivered.
    pub overlap_bytes: u64,
    /// Of those, bytes that differed from the first copy (kept) — an IDS-evasion signal.
    pub conflict_bytes: u64,
    /// Overlapping bytes that could not be compared because the first copy was
    /// already released.
    pub unchecked_overlap_bytes: u64,
    /// Segments dropped because they started beyond the window.
    pub dropped_window: u64,
    /// Bytes trimmed from segments that ended beyond the window.
    pub trimmed_window_bytes: u64,
    /// Segments dropped because a cap was reached.
    pub dropped_cap: u64,
    /// Holes skipped with [`ZcStream::skip_to`]: bytes that will never arrive.
    pub gaps: u64,
    /// Bytes in those holes.
    pub gap_bytes: u64,
}

/// One in-order fragment: a packet handle (until released) and where its payload
/// lies in the packet and in the stream.
pub(crate) struct Frag<P> {
    /// Stream offset of the fragment's first byte.
    pub off: u64,
    /// Payload start inside the packet's data.
    pub start: u32,
    /// Payload length.
    pub len: u32,
    /// Pins held by unfreed record fields.
    pub refs: u32,
    /// The packet; `None` once released.
    pub pkt: Option<P>,
}

impl<P: Packet> Frag<P> {
    #[inline]
    pub fn end(&self) -> u64 {
        self.off + self.len as u64
    }

    /// The payload, or `None` if released.
    #[inline]
    pub fn payload(&self) -> Option<&[u8]> {
        let (s, n) = (self.start as usize, self.len as usize);
        self.pkt.as_ref().map(|p| &p.data()[s..s + n])
    }
}

impl<P> Frag<P> {
    /// A slot holding no fragment.
    fn vacant() -> Self {
        Frag {
            off: 0,
            start: 0,
            len: 0,
            refs: 0,
            pkt: None,
        }
    }
}

/// In-order fragments, addressed by ids that never change: `head_id` is the id of
/// the oldest fragment still held. A released fragment keeps its slot (packet
/// `None`) until every older one is released too.
///
/// A ring whose length is a power of two (or zero, before the first fragment):
/// fragment `id` lives at `id & mask`, so finding it is a mask and a load.
/// Slots outside `head_id..end_id()` hold no packet.
pub(crate) struct FragStore<P> {
    buf: Box<[Frag<P>]>,
    mask: u64,
    pub head_id: u64,
    tail_id: u64,
}

impl<P: Packet> FragStore<P> {
    /// An empty store whose first fragment will have id `head_id`, in `buf`
    /// (slots holding no packet; length zero or a power of two).
    pub(crate) fn with_buffer(buf: Box<[Frag<P>]>, head_id: u64) -> Self {
        debug_assert!(buf.is_empty() || buf.len().is_power_of_two());
        debug_assert!(buf.iter().all(|f| f.pkt.is_none()));
        FragStore {
            mask: (buf.len() as u64).wrapping_sub(1),
            buf,
            head_id,
            tail_id: head_id,
        }
    }

    /// Id one past the newest fragment.
    #[inline]
    pub fn end_id(&self) -> u64 {
        self.tail_id
    }

    /// Fragments held (released ones behind an older held one included).
    #[inline]
    pub fn len(&self) -> usize {
        (self.tail_id - self.head_id) as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tail_id == self.head_id
    }

    /// Fragment `id` (`head_id <= id < end_id()`).
    #[inline]
    pub fn get(&self, id: u64) -> &Frag<P> {
        debug_assert!(id >= self.head_id && id < self.tail_id);
        &self.buf[(id & self.mask) as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, id: u64) -> &mut Frag<P> {
        debug_assert!(id >= self.head_id && id < self.tail_id);
        &mut self.buf[(id & self.mask) as usize]
    }

    /// Fragment `id`, if held.
    #[inline]
    pub fn try_get(&self, id: u64) -> Option<&Frag<P>> {
        (id.wrapping_sub(self.head_id) < self.tail_id - self.head_id).then(|| self.get(id))
    }

    /// Fragment `id`, if held.
    #[inline]
    pub fn try_get_mut(&mut self, id: u64) -> Option<&mut Frag<P>> {
        if id.wrapping_sub(self.head_id) < self.tail_id - self.head_id {
            Some(self.get_mut(id))
        } else {
            None
        }
    }

    /// The oldest fragment held.
    #[inline]
    pub fn front(&self) -> Option<&Frag<P>> {
        self.try_get(self.head_id)
    }

    #[inline]
    fn push(&mut self, off: u64, pkt: P, start: u32, len: u32) {
        if self.len() == self.buf.len() {
            self.grow();
        }
        let id = self.tail_id;
        *self.get_mut_unheld(id) = Frag {
            off,
            start,
            len,
            refs: 0,
            pkt: Some(pkt),
        };
        self.tail_id += 1;
    }

    #[inline]
    fn get_mut_unheld(&mut self, id: u64) -> &mut Frag<P> {
        &mut self.buf[(id & self.mask) as usize]
    }

    /// Doubles the ring (at least 8 slots), keeping every fragment's id.
    #[cold]
    fn grow(&mut self) {
        let cap = (self.buf.len() * 2).max(8);
        let mut buf: Box<[Frag<P>]> = (0..cap).map(|_| Frag::vacant()).collect();
        let mask = cap as u64 - 1;
        for id in self.head_id..self.tail_id {
            buf[(id & mask) as usize] = std::mem::replace(self.get_mut(id), Frag::vacant());
        }
        self.buf = buf;
        self.mask = mask;
    }

    /// Drops the oldest fragment's slot; returns its length if its packet was
    /// still held.
    #[inline]
    fn pop_front(&mut self) -> u32 {
        let id = self.head_id;
        let f = self.get_mut(id);
        let len = f.pkt.take().map_or(0, |_| f.len);
        self.head_id += 1;
        len
    }

    /// Drops fragment `id`'s packet; returns its length if it was still held.
    /// Pops released fragments off the head.
    #[inline]
    pub fn release(&mut self, id: u64) -> u32 {
        let len = if id == self.head_id {
            // The usual case: the oldest goes.
            self.pop_front()
        } else {
            let f = self.get_mut(id);
            f.pkt.take().map_or(0, |_| f.len)
        };
        while self.front().is_some_and(|f| f.pkt.is_none()) {
            self.head_id += 1;
        }
        len
    }

    /// Id of the first fragment ending after `off` (`end_id()` if none).
    pub fn find(&self, off: u64) -> u64 {
        let (mut lo, mut hi) = (self.head_id, self.tail_id);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid).end() <= off {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The empty ring, for another stream.
    fn into_buffer(self) -> (Box<[Frag<P>]>, u64) {
        debug_assert!(self.is_empty());
        (self.buf, self.head_id)
    }
}

/// The queues of an empty stream, kept to be reused by another.
pub(crate) struct StreamBuffers<P> {
    frags: Box<[Frag<P>]>,
    /// Fragment ids go on growing where the last stream left them.
    head_id: u64,
    ooo: VecDeque<OooSeg<P>>,
}

struct OooSeg<P> {
    off: u64,
    pkt: P,
    start: u32,
    len: u32,
}

impl<P: Packet> OooSeg<P> {
    fn end(&self) -> u64 {
        self.off + self.len as u64
    }
    fn bytes(&self) -> &[u8] {
        &self.pkt.data()[self.start as usize..(self.start + self.len) as usize]
    }
}

/// One in-order payload handed out by [`ZcStream::read_fragments`].
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Stream offset of `data[0]` (0 = first byte after the SYN). A fragment
    /// whose offset is past the previous one's end follows a gap.
    pub offset: u64,
    /// The payload, in the packet buffer.
    pub data: &'a [u8],
}

/// One direction of a TCP connection as a zero-copy stream of packet payloads.
pub struct ZcStream<P: Packet> {
    cfg: StreamConfig,
    pub(crate) store: FragStore<P>,
    ooo: VecDeque<OooSeg<P>>,
    ooo_bytes: u64,
    /// Sequence number of stream offset 0.
    isn: SeqNum,
    rcv_nxt: u64,
    /// Bytes of unreleased in-order fragments.
    held: u64,
    /// Raw API: id of the next fragment `read_fragments` hands out.
    read_next: u64,
    stats: StreamStats,
}

impl<P: Packet> ZcStream<P> {
    /// An empty stream whose first data byte has sequence number `first_seq`
    /// (the peer's ISN + 1).
    pub fn new(cfg: StreamConfig, first_seq: u32) -> Self {
        ZcStream::resume(cfg, SeqNum(first_seq), 0, None)
    }

    /// An empty stream whose next byte, sequence number `seq`, is at stream
    /// offset `offset`, in `buffers` if given (their memory is reused).
    pub(crate) fn resume(
        cfg: StreamConfig,
        seq: SeqNum,
        offset: u64,
        buffers: Option<StreamBuffers<P>>,
    ) -> Self {
        // Queues grow as segments come (amortised, then reused), so an idle
        // stream costs no queue memory.
        let (frags, ooo, head_id) = match buffers {
            Some(b) => (b.frags, b.ooo, b.head_id),
            None => (Box::default(), VecDeque::new(), 0),
        };
        ZcStream {
            store: FragStore::with_buffer(frags, head_id),
            ooo,
            ooo_bytes: 0,
            isn: SeqNum(seq.0.wrapping_sub(offset as u32)),
            rcv_nxt: offset,
            held: 0,
            read_next: head_id,
            stats: StreamStats::default(),
            cfg,
        }
    }

    /// The emptied queues of a stream that holds nothing (the caller checked
    /// [`is_empty`](Self::is_empty)), for [`resume`](Self::resume).
    pub(crate) fn into_buffers(self) -> StreamBuffers<P> {
        debug_assert!(self.is_empty());
        let (frags, head_id) = self.store.into_buffer();
        StreamBuffers {
            frags,
            head_id,
            ooo: self.ooo,
        }
    }

    /// The limits this stream was made with.
    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    /// Next sequence number expected (what an ACK acknowledges).
    pub fn rcv_nxt(&self) -> SeqNum {
        self.isn.wrapping_add(self.rcv_nxt as u32)
    }

    /// Stream offset of the next byte expected (bytes delivered in order so far,
    /// gaps included).
    pub fn rcv_nxt_offset(&self) -> u64 {
        self.rcv_nxt
    }

    /// Receive window to advertise: the buffer minus the bytes held for the
    /// application.
    pub fn window(&self) -> u32 {
        (self.cfg.recv_buffer as u64).saturating_sub(self.held) as u32
    }

    /// In-order bytes held (not yet released).
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// In-order fragments held, including released ones waiting behind an older
    /// held fragment.
    pub fn fragments_held(&self) -> usize {
        self.store.len()
    }

    /// Bytes waiting in the out-of-order queue.
    pub fn ooo_bytes(&self) -> u64 {
        self.ooo_bytes
    }

    /// Segments (pieces) waiting in the out-of-order queue.
    pub fn ooo_fragments(&self) -> usize {
        self.ooo.len()
    }

    /// Counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Whether the stream holds nothing: no in-order fragment (read or not,
    /// released or not) and nothing out of order.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty() && self.ooo.is_empty()
    }

    /// Sequence number of the first byte waiting in the out-of-order queue: the
    /// end of the hole at `rcv_nxt`. `None` when nothing waits.
    pub fn next_queued(&self) -> Option<SeqNum> {
        self.ooo
            .front()
            .map(|g| self.isn.wrapping_add(g.off as u32))
    }

    /// The out-of-order queue as sequence-number blocks `(left, right)`: `left`
    /// is the first byte held, `right` the one just past the last (RFC 2018's
    /// left and right edges). Pieces that touch are merged into one block, so
    /// blocks are disjoint, separated by holes, and come in stream order (the
    /// block nearest `rcv_nxt` first); the first `left` is
    /// [`next_queued`](Self::next_queued). Nothing is allocated: each call walks
    /// the queue lazily.
    pub fn ooo_blocks(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        let isn = self.isn;
        let mut it = self.ooo.iter().peekable();
        std::iter::from_fn(move || {
            let g = it.next()?;
            let mut end = g.end();
            while let Some(n) = it.next_if(|n| n.off == end) {
                end = n.end();
            }
            Some((isn.wrapping_add(g.off as u32), isn.wrapping_add(end as u32)))
        })
    }

    #[inline]
    fn seq_to_off(&self, seq: u32) -> i64 {
        self.rcv_nxt as i64 + SeqNum(seq).diff(self.rcv_nxt()) as i64
    }

    /// Takes a received segment: `payload` is the byte range of the TCP payload
    /// inside `pkt.data()`, `seq` the sequence number of its first byte.
    ///
    /// The packet handle is kept (zero copy) or dropped, never copied.
    ///
    /// # Panics
    /// If `payload` is not within `pkt.data()` (a caller bug, not network input).
    #[inline]
    pub fn insert(&mut self, seq: u32, pkt: P, payload: Range<usize>) -> Insert {
        assert!(payload.start <= payload.end && payload.end <= pkt.data().len());
        self.stats.segments += 1;
        let len = payload.len() as u64;
        if len == 0 {
            return Insert::Empty;
        }
        // The usual case: the next segment, nothing queued, room for it.
        if seq == self.rcv_nxt().0
            && self.ooo.is_empty()
            && self.held + len <= self.cfg.recv_buffer as u64
            && self.store.len() < self.cfg.max_fragments as usize
        {
            self.push_in_order(pkt, payload.start as u32, len as u32);
            self.stats.in_order += 1;
            return Insert::InOrder { bytes: len };
        }
        self.insert_slow(self.seq_to_off(seq), pkt, payload)
    }

    #[inline]
    fn push_in_order(&mut self, pkt: P, start: u32, len: u32) {
        self.store.push(self.rcv_nxt, pkt, start, len);
        self.rcv_nxt += len as u64;
        self.held += len as u64;
    }

    fn insert_slow(&mut self, s: i64, pkt: P, payload: Range<usize>) -> Insert {
        let nxt = self.rcv_nxt as i64;
        let mut e = s + payload.len() as i64;
        let mut s = s;
        let mut pstart = payload.start as i64;
        let data = pkt.data();

        if e <= nxt {
            self.compare_delivered(s, &data[payload.clone()]);
            self.stats.duplicates += 1;
            return Insert::Duplicate;
        }
        let right = nxt + self.window() as i64;
        if s >= right {
            self.stats.dropped_window += 1;
            return Insert::OutOfWindow;
        }
        if s < nxt {
            let old = (nxt - s) as usize;
            self.compare_delivered(s, &data[payload.start..payload.start + old]);
            pstart += nxt - s;
            s = nxt;
        }
        if e > right {
            self.stats.trimmed_window_bytes += (e - right) as u64;
            e = right;
        }
        let (s, e) = (s as u64, e as u64);
        let bytes = &data[pstart as usize..pstart as usize + (e - s) as usize];

        // Pass 1: what is new, and what overlaps the queue.
        let first = self.ooo.partition_point(|g| g.end() <= s);
        let (mut pieces, mut new_bytes, mut cur) = (0usize, 0u64, s);
        let (mut overlap, mut conflict) = (0u64, 0u64);
        for g in self.ooo.range(first..) {
            if g.off >= e {
                break;
            }
            if g.off > cur {
                pieces += 1;
                new_bytes += g.off - cur;
            }
            let (os, oe) = (cur.max(g.off), e.min(g.end()));
            if os < oe {
                overlap += oe - os;
                conflict += count_diff(
                    &bytes[(os - s) as usize..(oe - s) as usize],
                    &g.bytes()[(os - g.off) as usize..(oe - g.off) as usize],
                );
            }
            cur = cur.max(g.end());
        }
        if cur < e {
            pieces += 1;
            new_bytes += e - cur;
        }
        self.stats.overlap_bytes += overlap;
        self.stats.conflict_bytes += conflict;
        if pieces == 0 {
            self.stats.duplicates += 1;
            return Insert::Duplicate;
        }
        let joins = s == self.rcv_nxt;
        let over = if joins {
            self.store.len() >= self.cfg.max_fragments as usize
        } else {
            self.ooo.len() + pieces > self.cfg.max_ooo_fragments as usize
                || self.ooo_bytes + new_bytes > self.cfg.max_ooo_bytes as u64
        };
        if over {
            self.stats.dropped_cap += 1;
            return Insert::OverCap;
        }

        // Pass 2: queue the new pieces in the holes they fill.
        let mut i = first;
        let mut cur = s;
        let piece = |from: u64, to: u64, pkt: &P| OooSeg {
            off: from,
            pkt: pkt.clone(),
            start: (pstart as u64 + (from - s)) as u32,
            len: (to - from) as u32,
        };
        while i < self.ooo.len() && self.ooo[i].off < e {
            let g_off = self.ooo[i].off;
            if g_off > cur {
                self.ooo.insert(i, piece(cur, g_off, &pkt));
                i += 1;
            }
            cur = cur.max(self.ooo[i].end());
            i += 1;
        }
        if cur < e {
            self.ooo.insert(i, piece(cur, e, &pkt));
        }
        self.ooo_bytes += new_bytes;
        drop(pkt);

        if joins {
            let before = self.rcv_nxt;
            self.drain_ooo();
            self.stats.in_order += 1;
            Insert::InOrder {
                bytes: self.rcv_nxt - before,
            }
        } else {
            self.stats.out_of_order += 1;
            Insert::OutOfOrder
        }
    }

    /// Moves queued pieces that start at `rcv_nxt` to the in-order list.
    fn drain_ooo(&mut self) {
        while self.ooo.front().is_some_and(|g| g.off == self.rcv_nxt) {
            let g = self.ooo.pop_front().expect("front checked");
            self.ooo_bytes -= g.len as u64;
            self.push_in_order(g.pkt, g.start, g.len);
        }
    }

    /// Compares bytes at stream offset `s` (`s < rcv_nxt`) received again with the
    /// first copy, where it is still held.
    fn compare_delivered(&mut self, s: i64, bytes: &[u8]) {
        let e = s + bytes.len() as i64;
        let s0 = s.max(0) as u64;
        let e = e.min(self.rcv_nxt as i64).max(0) as u64;
        if s0 >= e {
            return;
        }
        self.stats.overlap_bytes += e - s0;
        let mut checked = 0;
        let mut id = self.store.find(s0);
        while id < self.store.end_id() {
            let m = self.store.get(id);
            if m.off >= e {
                break;
            }
            let (os, oe) = (s0.max(m.off), e.min(m.end()));
            if let Some(first) = m.payload() {
                checked += oe - os;
                let new = &bytes[(os as i64 - s) as usize..(oe as i64 - s) as usize];
                let old = &first[(os - m.off) as usize..(oe - m.off) as usize];
                self.stats.conflict_bytes += count_diff(new, old);
            }
            id += 1;
        }
        self.stats.unchecked_overlap_bytes += (e - s0) - checked;
    }

    /// Declares that every byte before `seq` that has not arrived never will (the
    /// peer acknowledged past it, the flow ended, or a cap was hit). Queued pieces
    /// before `seq` are kept; the holes between them are skipped. Returns the
    /// number of bytes skipped (0 if none).
    pub fn skip_to(&mut self, seq: SeqNum) -> u64 {
        let target = self.seq_to_off(seq.0);
        let mut skipped = 0;
        loop {
            let next_hole_end = match self.ooo.front() {
                Some(g) if (g.off as i64) < target => g.off,
                _ if target > self.rcv_nxt as i64 => target as u64,
                _ => break,
            };
            if next_hole_end > self.rcv_nxt {
                self.stats.gaps += 1;
                self.stats.gap_bytes += next_hole_end - self.rcv_nxt;
                skipped += next_hole_end - self.rcv_nxt;
                self.rcv_nxt = next_hole_end;
            }
            self.drain_ooo();
        }
        self.drain_ooo();
        skipped
    }

    /// Skips the hole before the first queued segment, if any (used when a cap
    /// stops the stream from waiting longer). Returns the bytes skipped.
    pub fn skip_to_next_segment(&mut self) -> u64 {
        match self.ooo.front() {
            Some(g) => {
                let seq = self.isn.wrapping_add(g.off as u32);
                self.skip_to(seq)
            }
            None => 0,
        }
    }

    /// Drops fragment `id` (bookkeeping for the record layer); returns bytes freed.
    pub(crate) fn release(&mut self, id: u64) -> u32 {
        let n = self.store.release(id);
        self.held -= n as u64;
        n
    }

    /// Hands out up to `n` in-order payloads not read before, oldest first. They
    /// stay held until [`free_fragments`](Self::free_fragments).
    pub fn read_fragments(&mut self, n: usize) -> impl ExactSizeIterator<Item = Fragment<'_>> {
        let from = self.read_next;
        let to = self.store.end_id().min(from.saturating_add(n as u64));
        self.read_next = to;
        let store = &self.store;
        (0..(to - from) as usize).map(move |i| {
            let f = store.get(from + i as u64);
            Fragment {
                offset: f.off,
                data: f.payload().unwrap_or_default(),
            }
        })
    }

    /// Releases the `n` oldest fragments handed out by `read_fragments`; their
    /// packets go back to the pool and the window grows. Returns how many were
    /// released (fewer if fewer had been read).
    pub fn free_fragments(&mut self, n: usize) -> usize {
        let m = ((self.read_next - self.store.head_id) as usize).min(n);
        let mut bytes = 0u64;
        for _ in 0..m {
            bytes += self.store.pop_front() as u64;
        }
        self.held -= bytes;
        m
    }
}

fn count_diff(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::packet::{PacketPool, PoolPacket};

    const ISN: u32 = 1000;

    #[test]
    fn frag_ring_keeps_ids_across_wrap_and_growth() {
        let pool = PacketPool::new(32, 64);
        let mut st: FragStore<PoolPacket> = FragStore::with_buffer(Box::default(), 100);
        assert!(st.front().is_none() && st.try_get(100).is_none());
        let mut off = 0;
        let mut push = |st: &mut FragStore<PoolPacket>, n: u32| {
            st.push(off, pool.packet_from(&[n as u8; 10]).unwrap(), 0, n);
            off += n as u64;
        };
        for _ in 0..6 {
            push(&mut st, 10);
        }
        // Release the first four (one out of order) so later pushes wrap.
        assert_eq!(st.release(101), 10);
        assert_eq!(st.release(100), 10);
        assert_eq!(st.head_id, 102, "the released one behind the head goes too");
        assert_eq!(st.release(102), 10);
        assert_eq!(st.release(103), 10);
        for _ in 0..5 {
            push(&mut st, 5);
        }
        // 104..111 in an 8-slot ring wrapped; one more grows it to 16.
        assert_eq!((st.head_id, st.end_id(), st.buf.len()), (104, 111, 8));
        push(&mut st, 5);
        push(&mut st, 5);
        assert_eq!((st.head_id, st.end_id(), st.buf.len()), (104, 113, 16));
        let offs: Vec<u64> = (104..113).map(|id| st.get(id).off).collect();
        assert_eq!(offs, [40, 50, 60, 65, 70, 75, 80, 85, 90]);
        assert_eq!(st.find(0), 104);
        assert_eq!(st.find(64), 106);
        assert_eq!(st.find(65), 107);
        assert_eq!(st.find(95), 113);
        assert!(st.try_get(113).is_none() && st.try_get(103).is_none());
        for id in 104..113 {
            assert!(st.release(id) > 0);
        }
        assert!(st.is_empty());
        let (buf, head) = st.into_buffer();
        assert!(buf.iter().all(|f| f.pkt.is_none()));
        assert_eq!(head, 113);
        drop(buf);
        assert!(pool.is_full());
    }

    fn seg(pool: &PacketPool, bytes: &[u8]) -> PoolPacket {
        // A 4-byte "header" before the payload, so ranges are not trivially 0..
        let mut frame = b"HDR:".to_vec();
        frame.extend_from_slice(bytes);
        pool.packet_from(&frame).unwrap()
    }

    fn put(s: &mut ZcStream<PoolPacket>, pool: &PacketPool, seq: u32, bytes: &[u8]) -> Insert {
        let p = seg(pool, bytes);
        let n = p.data().len();
        s.insert(seq, p, 4..n)
    }

    fn drain(s: &mut ZcStream<PoolPacket>) -> Vec<u8> {
        let mut out = Vec::new();
        let n = s
            .read_fragments(usize::MAX)
            .map(|f| out.extend_from_slice(f.data))
            .count();
        s.free_fragments(n);
        out
    }

    #[test]
    fn in_order_and_window_accounting() {
        let pool = PacketPool::new(8, 64);
        let cfg = StreamConfig {
            recv_buffer: 10,
            ..Default::default()
        };
        let mut s = ZcStream::new(cfg, ISN);
        assert_eq!(
            put(&mut s, &pool, ISN, b"abcd"),
            Insert::InOrder { bytes: 4 }
        );
        assert_eq!(s.window(), 6);
        assert_eq!(s.rcv_nxt(), SeqNum(ISN + 4));
        assert_eq!(
            put(&mut s, &pool, ISN + 4, b"efgh"),
            Insert::InOrder { bytes: 4 }
        );
        assert_eq!(s.window(), 2);
        // Beyond the right edge: dropped.
        assert_eq!(put(&mut s, &pool, ISN + 10, b"zz"), Insert::OutOfWindow);
        // Ending beyond it: trimmed to the window.
        assert_eq!(
            put(&mut s, &pool, ISN + 8, b"ijkl"),
            Insert::InOrder { bytes: 2 }
        );
        assert_eq!(s.window(), 0);
        assert_eq!(s.stats().trimmed_window_bytes, 2);
        let f: Vec<_> = s
            .read_fragments(2)
            .map(|f| (f.offset, f.data.to_vec()))
            .collect();
        assert_eq!(f, vec![(0, b"abcd".to_vec()), (4, b"efgh".to_vec())]);
        assert_eq!(s.window(), 0, "reading does not free");
        assert_eq!(s.free_fragments(5), 2);
        assert_eq!(s.window(), 8);
        assert_eq!(drain(&mut s), b"ij");
        assert_eq!(s.window(), 10);
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn reordering_fills_holes() {
        let pool = PacketPool::new(8, 64);
        let mut s = ZcStream::new(StreamConfig::default(), ISN);
        assert_eq!(put(&mut s, &pool, ISN + 8, b"89"), Insert::OutOfOrder);
        assert_eq!(put(&mut s, &pool, ISN + 4, b"4567"), Insert::OutOfOrder);
        assert_eq!(s.ooo_fragments(), 2);
        assert_eq!(
            put(&mut s, &pool, ISN, b"0123"),
            Insert::InOrder { bytes: 10 }
        );
        assert_eq!(s.ooo_fragments(), 0);
        assert_eq!(drain(&mut s), b"0123456789");
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn first_copy_wins_and_conflicts_are_counted() {
        let pool = PacketPool::new(8, 64);
        let mut s = ZcStream::new(StreamConfig::default(), ISN);
        put(&mut s, &pool, ISN + 2, b"cd");
        put(&mut s, &pool, ISN + 6, b"gh");
        // Covers both queued pieces and the holes around them; "XX" differs from "gh".
        assert_eq!(put(&mut s, &pool, ISN + 1, b"BcdEFXXi"), Insert::OutOfOrder);
        assert_eq!(s.stats().overlap_bytes, 4);
        assert_eq!(s.stats().conflict_bytes, 2);
        // Retransmission of delivered bytes with one changed byte.
        put(&mut s, &pool, ISN, b"A");
        assert_eq!(put(&mut s, &pool, ISN, b"AB?d"), Insert::Duplicate);
        assert_eq!(s.stats().conflict_bytes, 3);
        assert_eq!(drain(&mut s), b"ABcdEFghi");
        // Overlap with bytes already released cannot be checked, and is said so.
        put(&mut s, &pool, ISN + 5, b"FghiJ");
        assert_eq!(s.stats().unchecked_overlap_bytes, 4);
        assert_eq!(drain(&mut s), b"J");
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let pool = PacketPool::new(8, 64);
        let first = u32::MAX - 2;
        let mut s = ZcStream::new(StreamConfig::default(), first);
        assert_eq!(
            put(&mut s, &pool, first.wrapping_add(5), b"fg"),
            Insert::OutOfOrder
        );
        assert_eq!(
            put(&mut s, &pool, first, b"abcde"),
            Insert::InOrder { bytes: 7 }
        );
        assert_eq!(s.rcv_nxt(), SeqNum(4));
        // An old segment from before the wrap is a duplicate, not a far-future one.
        assert_eq!(put(&mut s, &pool, first, b"ab"), Insert::Duplicate);
        assert_eq!(drain(&mut s), b"abcdefg");
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn caps_drop_and_count() {
        let pool = PacketPool::new(16, 64);
        let cfg = StreamConfig {
            recv_buffer: 1000,
            max_fragments: 2,
            max_ooo_bytes: 5,
            max_ooo_fragments: 2,
        };
        let mut s = ZcStream::new(cfg, ISN);
        assert_eq!(put(&mut s, &pool, ISN + 10, b"abc"), Insert::OutOfOrder);
        assert_eq!(
            put(&mut s, &pool, ISN + 20, b"abc"),
            Insert::OverCap,
            "bytes"
        );
        assert_eq!(put(&mut s, &pool, ISN + 20, b"a"), Insert::OutOfOrder);
        assert_eq!(
            put(&mut s, &pool, ISN + 30, b"a"),
            Insert::OverCap,
            "pieces"
        );
        put(&mut s, &pool, ISN, b"x");
        put(&mut s, &pool, ISN + 1, b"y");
        assert_eq!(
            put(&mut s, &pool, ISN + 2, b"z"),
            Insert::OverCap,
            "in order"
        );
        assert_eq!(s.stats().dropped_cap, 3);
        assert_eq!(pool.available(), 16 - 4, "dropped segments are not kept");
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn ooo_blocks_merge_touching_pieces() {
        let pool = PacketPool::new(16, 64);
        let first = u32::MAX - 5; // blocks straddle the wrap
        let mut s = ZcStream::new(StreamConfig::default(), first);
        let at = |n: u32| SeqNum(first.wrapping_add(n));
        assert_eq!(s.ooo_blocks().count(), 0);
        put(&mut s, &pool, first.wrapping_add(10), b"kl");
        put(&mut s, &pool, first.wrapping_add(4), b"ef");
        // Touches the "ef" piece on its right: one block of two pieces.
        put(&mut s, &pool, first.wrapping_add(6), b"gh");
        // Overlaps "kl" and extends it: cut into a new touching piece.
        put(&mut s, &pool, first.wrapping_add(11), b"lmn");
        put(&mut s, &pool, first.wrapping_add(20), b"u");
        assert_eq!(s.ooo_fragments(), 5);
        let blocks: Vec<_> = s.ooo_blocks().collect();
        assert_eq!(blocks, [(at(4), at(8)), (at(10), at(14)), (at(20), at(21))]);
        assert_eq!(s.next_queued(), Some(blocks[0].0));
        // Filling the first hole delivers the first block; the rest stay.
        put(&mut s, &pool, first, b"abcd");
        assert_eq!(s.rcv_nxt(), at(8));
        let blocks: Vec<_> = s.ooo_blocks().collect();
        assert_eq!(blocks, [(at(10), at(14)), (at(20), at(21))]);
        // Filling the hole between two blocks merges them.
        put(&mut s, &pool, first.wrapping_add(14), b"opqrst");
        let blocks: Vec<_> = s.ooo_blocks().collect();
        assert_eq!(blocks, [(at(10), at(21))]);
        put(&mut s, &pool, first.wrapping_add(8), b"ij");
        assert_eq!(s.ooo_blocks().count(), 0);
        assert_eq!(drain(&mut s), b"abcdefghijklmnopqrstu");
        drop(s);
        assert!(pool.is_full());
    }

    #[test]
    fn skip_to_declares_gaps_and_keeps_queued_data() {
        let pool = PacketPool::new(8, 64);
        let mut s = ZcStream::new(StreamConfig::default(), ISN);
        put(&mut s, &pool, ISN, b"ab");
        put(&mut s, &pool, ISN + 4, b"ef");
        put(&mut s, &pool, ISN + 8, b"ij");
        assert_eq!(s.skip_to(SeqNum(ISN + 12)), 6);
        assert_eq!(s.stats().gaps, 3);
        assert_eq!(s.rcv_nxt(), SeqNum(ISN + 12));
        let f: Vec<_> = s
            .read_fragments(9)
            .map(|f| (f.offset, f.data.to_vec()))
            .collect();
        assert_eq!(
            f,
            vec![
                (0, b"ab".to_vec()),
                (4, b"ef".to_vec()),
                (8, b"ij".to_vec())
            ]
        );
        s.free_fragments(3);
        put(&mut s, &pool, ISN + 14, b"op");
        assert_eq!(s.skip_to_next_segment(), 2);
        assert_eq!(drain(&mut s), b"op");
        drop(s);
        assert!(pool.is_full());
    }
}
