//! Packet handles and the fixed-size packet pool.
//!
//! A packet handle owns one received frame. Its bytes never change once the
//! frame is received. Cloning a handle increments a reference count; dropping the
//! last clone gives the buffer back to the pool it came from. Callers only see the
//! [`Packet`] trait, so a DPDK `rte_mbuf` handle (clone = `rte_mbuf_refcnt_update`,
//! drop = `rte_pktmbuf_free`) fits without any caller changing.
//!
//! [`PacketPool`] is the implementation used by tests, captures and TAP: a fixed
//! number of fixed-size buffers carved out of one allocation made up front. Taking
//! a buffer and giving it back are O(1) and never allocate. A pool is used from one
//! thread (one stack per core), so the counts are plain cells, not atomics.
//!
//! Like an mbuf, a handle is a pointer and the buffer's reference count is the only
//! count a clone touches. The pool's memory stays alive while any buffer is out:
//! each buffer taken holds one strong count on the pool (`Rc::increment_strong_count`
//! when taken, `decrement` when it comes back), so clones never touch the pool's count.

use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

/// A reference-counted handle on one received frame.
///
/// `clone` must be cheap (a reference-count increment) and dropping the last
/// handle must return the buffer to wherever it came from.
pub trait Packet: Clone {
    /// The frame's bytes, from the first byte of the link-layer header.
    fn data(&self) -> &[u8];
}

/// Why a buffer could not be taken from a [`PacketPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Every buffer of the pool is in use.
    Exhausted {
        /// Number of buffers in the pool.
        capacity: u32,
    },
    /// The frame does not fit in one buffer.
    TooLong {
        /// Length of the frame offered.
        len: usize,
        /// Size of one buffer.
        buf_size: usize,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Exhausted { capacity } => {
                write!(
                    f,
                    "packet pool exhausted: all {capacity} buffers are in use"
                )
            }
            PoolError::TooLong { len, buf_size } => write!(
                f,
                "frame of {len} bytes does not fit in a {buf_size}-byte pool buffer"
            ),
        }
    }
}

impl std::error::Error for PoolError {}

/// Per-buffer bookkeeping, next to nothing else so a clone touches one word.
struct SlotHdr {
    /// Live handles; 0 for a free buffer or one being filled.
    refcnt: Cell<u32>,
    /// Frame length.
    len: Cell<u32>,
    /// The segment size a device is to cut the frame's TCP payload into
    /// (transmit segmentation offload); 0: the frame goes out as it is.
    seg: Cell<u16>,
}

struct PoolInner {
    /// `count * buf_size` bytes; slot `i` owns `[i * buf_size, (i + 1) * buf_size)`.
    mem: *mut u8,
    mem_len: usize,
    buf_size: usize,
    /// Reference count and frame length per slot.
    hdrs: Box<[SlotHdr]>,
    /// Stack of free slot numbers; `free[..free_top]` are free.
    free: Box<[Cell<u32>]>,
    free_top: Cell<u32>,
}

impl PoolInner {
    #[inline]
    fn put_back(&self, slot: u32) {
        let top = self.free_top.get();
        // A slot is freed once per allocation, so the stack never overflows.
        self.free[top as usize].set(slot);
        self.free_top.set(top + 1);
    }

    /// Gives `slot` back and drops the hold it had on the pool.
    ///
    /// # Safety
    /// `this` comes from `Rc::as_ptr` of a live pool, and the slot holds one
    /// strong count taken in `PacketPool::alloc`.
    #[inline]
    unsafe fn put_back_and_release(this: NonNull<PoolInner>, slot: u32) {
        this.as_ref().put_back(slot);
        Rc::decrement_strong_count(this.as_ptr());
    }

    #[inline]
    fn slot_ptr(&self, slot: u32) -> *mut u8 {
        // In bounds: slot < count and mem holds count * buf_size bytes.
        unsafe { self.mem.add(slot as usize * self.buf_size) }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // Rebuild the box leaked in `PacketPool::new`; every handle holds an `Rc`
        // on this pool, so none is left when this runs.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.mem,
                self.mem_len,
            )));
        }
    }
}

/// A fixed number of fixed-size packet buffers, allocated once.
///
/// Cloning the pool clones a handle on the same buffers.
#[derive(Clone)]
pub struct PacketPool {
    inner: Rc<PoolInner>,
}

impl fmt::Debug for PacketPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPool")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("buf_size", &self.buf_size())
            .finish()
    }
}

impl PacketPool {
    /// A pool of `count` buffers of `buf_size` bytes each.
    ///
    /// # Panics
    /// If `count` or `buf_size` is zero, or `buf_size` exceeds `u32::MAX`.
    pub fn new(count: u32, buf_size: usize) -> PacketPool {
        assert!(count > 0 && buf_size > 0, "a pool needs buffers");
        assert!(buf_size <= u32::MAX as usize, "buffer size exceeds u32");
        let mem_len = count as usize * buf_size;
        let mem = Box::into_raw(vec![0u8; mem_len].into_boxed_slice()) as *mut u8;
        let cells = |f: &dyn Fn(u32) -> u32| (0..count).map(|i| Cell::new(f(i))).collect();
        PacketPool {
            inner: Rc::new(PoolInner {
                mem,
                mem_len,
                buf_size,
                hdrs: (0..count)
                    .map(|_| SlotHdr {
                        refcnt: Cell::new(0),
                        len: Cell::new(0),
                        seg: Cell::new(0),
                    })
                    .collect(),
                // Hand out low slots first.
                free: cells(&|i| count - 1 - i),
                free_top: Cell::new(count),
            }),
        }
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> u32 {
        self.inner.hdrs.len() as u32
    }

    /// Number of buffers not in use.
    pub fn available(&self) -> u32 {
        self.inner.free_top.get()
    }

    /// Whether every buffer is back in the pool.
    pub fn is_full(&self) -> bool {
        self.available() == self.capacity()
    }

    /// Size of one buffer in bytes.
    pub fn buf_size(&self) -> usize {
        self.inner.buf_size
    }

    /// Takes a buffer to fill (what a NIC or `read(2)` would do).
    pub fn alloc(&self) -> Result<PacketBuf, PoolError> {
        let inner = &self.inner;
        let top = inner.free_top.get();
        if top == 0 {
            return Err(PoolError::Exhausted {
                capacity: self.capacity(),
            });
        }
        inner.free_top.set(top - 1);
        let slot = inner.free[top as usize - 1].get();
        let ptr = Rc::as_ptr(inner);
        // The slot's hold on the pool, dropped in `put_back_and_release`.
        unsafe { Rc::increment_strong_count(ptr) };
        Ok(PacketBuf {
            pool: NonNull::from(&**inner),
            slot,
        })
    }

    /// Takes a buffer and copies `frame` into it.
    pub fn packet_from(&self, frame: &[u8]) -> Result<PoolPacket, PoolError> {
        if frame.len() > self.buf_size() {
            return Err(PoolError::TooLong {
                len: frame.len(),
                buf_size: self.buf_size(),
            });
        }
        let mut buf = self.alloc()?;
        buf.space()[..frame.len()].copy_from_slice(frame);
        Ok(buf.freeze(frame.len()))
    }
}

/// A pool buffer being filled; becomes a [`PoolPacket`] with [`PacketBuf::freeze`].
/// Dropping it unfrozen gives the buffer back.
pub struct PacketBuf {
    pool: NonNull<PoolInner>,
    slot: u32,
}

impl PacketBuf {
    /// The whole buffer, to write a frame into.
    pub fn space(&mut self) -> &mut [u8] {
        // Exclusive: the slot is off the free stack and no `PoolPacket` exists yet.
        unsafe {
            let pool = self.pool.as_ref();
            std::slice::from_raw_parts_mut(pool.slot_ptr(self.slot), pool.buf_size)
        }
    }

    /// Ends filling: the first `len` bytes are the frame.
    ///
    /// # Panics
    /// If `len` exceeds the buffer size.
    pub fn freeze(self, len: usize) -> PoolPacket {
        let this = std::mem::ManuallyDrop::new(self);
        // The slot's hold on the pool passes to the packet.
        let inner = unsafe { this.pool.as_ref() };
        assert!(len <= inner.buf_size, "frame longer than its buffer");
        let hdr = &inner.hdrs[this.slot as usize];
        hdr.len.set(len as u32);
        hdr.seg.set(0);
        hdr.refcnt.set(1);
        PoolPacket {
            pool: this.pool,
            hdr: NonNull::from(hdr),
            data: inner.slot_ptr(this.slot),
        }
    }
}

impl Drop for PacketBuf {
    fn drop(&mut self) {
        unsafe { PoolInner::put_back_and_release(self.pool, self.slot) }
    }
}

/// A handle on a frame held in a [`PacketPool`] buffer.
pub struct PoolPacket {
    pool: NonNull<PoolInner>,
    hdr: NonNull<SlotHdr>,
    data: *const u8,
}

impl PoolPacket {
    #[inline]
    fn hdr(&self) -> &SlotHdr {
        // Alive: this handle's buffer holds a strong count on the pool.
        unsafe { self.hdr.as_ref() }
    }

    /// Marks the frame for a device with transmit segmentation offload: it
    /// is to cut the frame's TCP payload into segments of `seg` bytes (`0`:
    /// send the frame as it is, the default). Set by whoever built the frame,
    /// read by the device that sends it ([`PoolPacket::tx_segment_size`]).
    #[inline]
    pub fn set_tx_segment_size(&self, seg: u16) {
        self.hdr().seg.set(seg);
    }

    /// The segment size set by [`PoolPacket::set_tx_segment_size`] (0: none).
    #[inline]
    pub fn tx_segment_size(&self) -> u16 {
        self.hdr().seg.get()
    }

    fn slot(&self) -> u32 {
        let base = unsafe { self.pool.as_ref() }.hdrs.as_ptr();
        // Same allocation: `hdr` points into `hdrs`.
        unsafe { self.hdr.as_ptr().offset_from(base) as u32 }
    }
}

impl Packet for PoolPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        let len = self.hdr().len.get() as usize;
        // Shared: the bytes are written only before `freeze`, never after.
        unsafe { std::slice::from_raw_parts(self.data, len) }
    }
}

impl Clone for PoolPacket {
    #[inline]
    fn clone(&self) -> Self {
        let rc = &self.hdr().refcnt;
        rc.set(rc.get() + 1);
        PoolPacket { ..*self }
    }
}

impl Drop for PoolPacket {
    #[inline]
    fn drop(&mut self) {
        let rc = &self.hdr().refcnt;
        let n = rc.get() - 1;
        rc.set(n);
        if n == 0 {
            let slot = self.slot();
            unsafe { PoolInner::put_back_and_release(self.pool, slot) }
        }
    }
}

impl fmt::Debug for PoolPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolPacket")
            .field("slot", &self.slot())
            .field("len", &self.data().len())
            .finish()
    }
}

/// Asks the CPU to bring `data` into its caches, a 64-byte line at a time,
/// without waiting for it: a hint for a frame about to be parsed, given while
/// the ones before it are (what DPDK's receive loops do with
/// `rte_prefetch0`). Frames in a receive ring or a replayed capture are
/// usually not in the cache; fetched ahead, their first touch (the TCP
/// checksum) does not wait for memory. Does nothing on targets other than
/// x86_64.
#[inline]
pub fn prefetch(data: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..data.len()).step_by(64) {
        // SAFETY: SSE is part of x86_64; a prefetch never faults, and the
        // address is inside `data` anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch(
                data.as_ptr().add(off) as *const i8,
                core::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn alloc_clone_drop_returns_buffer() {
        let pool = PacketPool::new(2, 64);
        let a = pool.packet_from(b"hello").unwrap();
        assert_eq!(a.data(), b"hello");
        assert_eq!(pool.available(), 1);
        let b = a.clone();
        drop(a);
        assert_eq!(pool.available(), 1, "a clone keeps the buffer");
        assert_eq!(b.data(), b"hello");
        drop(b);
        assert!(pool.is_full());
    }

    #[test]
    fn exhaustion_is_an_error() {
        let pool = PacketPool::new(2, 16);
        let a = pool.packet_from(b"1").unwrap();
        let b = pool.alloc().unwrap();
        assert_eq!(
            pool.packet_from(b"3").unwrap_err(),
            PoolError::Exhausted { capacity: 2 }
        );
        drop(b); // unfrozen buffer goes back too
        let c = pool.packet_from(b"3").unwrap();
        assert_eq!(c.data(), b"3");
        assert_eq!(
            pool.packet_from(&[0; 17]).unwrap_err(),
            PoolError::TooLong {
                len: 17,
                buf_size: 16
            }
        );
        drop((a, c));
        assert!(pool.is_full());
    }

    #[test]
    fn buffers_are_reused_with_new_contents() {
        let pool = PacketPool::new(1, 8);
        for i in 0..10u8 {
            let p = pool.packet_from(&[i; 3]).unwrap();
            assert_eq!(p.data(), &[i; 3]);
        }
        assert!(pool.is_full());
    }

    #[test]
    fn handles_outlive_the_pool_value() {
        let pool = PacketPool::new(1, 8);
        let p = pool.packet_from(b"x").unwrap();
        let counter = pool.clone();
        drop(pool);
        assert_eq!(p.data(), b"x");
        drop(p);
        assert!(counter.is_full());
    }
}
