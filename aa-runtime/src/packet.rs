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

use std::cell::Cell;
use std::fmt;
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

struct PoolInner {
    /// `count * buf_size` bytes; slot `i` owns `[i * buf_size, (i + 1) * buf_size)`.
    mem: *mut u8,
    mem_len: usize,
    buf_size: usize,
    /// Live handles per slot; 0 for a free slot or one being filled.
    refcnt: Box<[Cell<u32>]>,
    /// Frame length per slot.
    len: Box<[Cell<u32>]>,
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
                refcnt: cells(&|_| 0),
                len: cells(&|_| 0),
                // Hand out low slots first.
                free: cells(&|i| count - 1 - i),
                free_top: Cell::new(count),
            }),
        }
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> u32 {
        self.inner.refcnt.len() as u32
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
        Ok(PacketBuf {
            pool: Rc::clone(inner),
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
    pool: Rc<PoolInner>,
    slot: u32,
}

impl PacketBuf {
    /// The whole buffer, to write a frame into.
    pub fn space(&mut self) -> &mut [u8] {
        // Exclusive: the slot is off the free stack and no `PoolPacket` exists yet.
        unsafe { std::slice::from_raw_parts_mut(self.pool.slot_ptr(self.slot), self.pool.buf_size) }
    }

    /// Ends filling: the first `len` bytes are the frame.
    ///
    /// # Panics
    /// If `len` exceeds the buffer size.
    pub fn freeze(self, len: usize) -> PoolPacket {
        assert!(len <= self.pool.buf_size, "frame longer than its buffer");
        let this = std::mem::ManuallyDrop::new(self);
        // Move the Rc out without running PacketBuf's Drop.
        let pool = unsafe { std::ptr::read(&this.pool) };
        pool.len[this.slot as usize].set(len as u32);
        pool.refcnt[this.slot as usize].set(1);
        PoolPacket {
            pool,
            slot: this.slot,
        }
    }
}

impl Drop for PacketBuf {
    fn drop(&mut self) {
        self.pool.put_back(self.slot);
    }
}

/// A handle on a frame held in a [`PacketPool`] buffer.
pub struct PoolPacket {
    pool: Rc<PoolInner>,
    slot: u32,
}

impl Packet for PoolPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        let len = self.pool.len[self.slot as usize].get() as usize;
        // Shared: the bytes are written only before `freeze`, never after.
        unsafe { std::slice::from_raw_parts(self.pool.slot_ptr(self.slot), len) }
    }
}

impl Clone for PoolPacket {
    #[inline]
    fn clone(&self) -> Self {
        let rc = &self.pool.refcnt[self.slot as usize];
        rc.set(rc.get() + 1);
        PoolPacket {
            pool: Rc::clone(&self.pool),
            slot: self.slot,
        }
    }
}

impl Drop for PoolPacket {
    #[inline]
    fn drop(&mut self) {
        let rc = &self.pool.refcnt[self.slot as usize];
        let n = rc.get() - 1;
        rc.set(n);
        if n == 0 {
            self.pool.put_back(self.slot);
        }
    }
}

impl fmt::Debug for PoolPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolPacket")
            .field("slot", &self.slot)
            .field("len", &self.data().len())
            .finish()
    }
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
