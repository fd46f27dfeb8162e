//! `rte_pktmbuf` pools and the mbuf packet handle.

use std::ffi::CString;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use aa_runtime::{Packet, PoolError};
use dpdk_sys as sys;

use super::eal::{DpdkError, Eal};
use crate::io::alloc::FrameAlloc;

struct PoolInner {
    mp: NonNull<sys::rte_mempool>,
    size: u32,
    data_room: u16,
}

// SAFETY: the pool pointer is used only through DPDK's mempool functions,
// which are thread-safe for pools made by `rte_pktmbuf_pool_create`: the
// default mempool ops are the multi-producer/multi-consumer ring, and the
// per-lcore cache is only used by the EAL thread owning that lcore (threads
// that are not EAL threads bypass it).
unsafe impl Send for PoolInner {}
// SAFETY: as above; `&PoolInner` only reads counts or takes and puts mbufs.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // An mbuf still out (held by a packet, or sitting in a port's queue)
        // would point into freed memory: free the pool only when all are back,
        // and leak it otherwise.
        // SAFETY: the pool was created by `rte_pktmbuf_pool_create`.
        unsafe {
            if sys::rte_mempool_avail_count(self.mp.as_ptr()) == self.size {
                sys::rte_mempool_free(self.mp.as_ptr());
            }
        }
    }
}

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). Clones are handles on
/// the same pool; handles are `Send` and `Sync` (DPDK's pools are safe to
/// take from and give back to from several threads).
///
/// The pool must outlive its mbufs: dropping the last handle frees the pool
/// only when every mbuf is back in it, and leaks it otherwise. A [`Port`]
/// keeps a handle on the pool it receives into.
///
/// [`Port`]: super::Port
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("data_room", &self.data_room())
            .finish()
    }
}

impl Mempool {
    /// `RTE_MBUF_DEFAULT_BUF_SIZE`: 2048 bytes of data after the 128-byte
    /// headroom.
    pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

    /// A pool named `name` (unique in the process) of `size` mbufs, each with
    /// `data_room` bytes (headroom included), and a per-lcore cache of `cache`
    /// mbufs (0: none). DPDK's pools are fastest with `size` one less than a
    /// power of two.
    pub fn new(
        eal: &Eal,
        name: &str,
        size: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.to_owned()))?;
        let socket = eal.socket_id() as i32;
        // SAFETY: EAL is running; the name is NUL-terminated.
        let mp = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, socket)
        };
        let mp = NonNull::new(mp).ok_or_else(|| DpdkError::errno("rte_pktmbuf_pool_create"))?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                mp,
                size,
                data_room,
            }),
        })
    }

    /// Number of mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        self.inner.size
    }

    /// Number of mbufs in the pool and not in use, per-lcore caches included
    /// (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: a live pool.
        unsafe { sys::rte_mempool_avail_count(self.inner.mp.as_ptr()) }
    }

    /// Whether every mbuf is back in the pool.
    pub fn is_full(&self) -> bool {
        self.available() == self.capacity()
    }

    /// Bytes of one mbuf's buffer, headroom included.
    pub fn data_room(&self) -> u16 {
        self.inner.data_room
    }

    /// The `rte_mempool`.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.mp.as_ptr()
    }

    /// Takes an mbuf and copies `frame` into it (what a sender does before
    /// handing a packet to a port).
    pub fn packet_from(&self, frame: &[u8]) -> Result<MbufPacket, DpdkError> {
        // SAFETY: a live pool.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.as_ptr()) };
        // SAFETY: a fresh mbuf with refcnt 1, now owned by the handle.
        let pkt = unsafe { MbufPacket::from_raw(m) }.ok_or(DpdkError::PoolExhausted)?;
        let m = pkt.as_ptr();
        // SAFETY: a valid single-segment mbuf.
        let room = unsafe { sys::rte_pktmbuf_tailroom(m) } as usize;
        if frame.len() > room {
            return Err(DpdkError::TooLong {
                len: frame.len(),
                room,
            });
        }
        // SAFETY: `frame.len()` fits in the tailroom (checked), so append
        // returns a pointer to that many writable bytes; no handle reads them
        // yet.
        unsafe {
            let dst = sys::rte_pktmbuf_append(m, frame.len() as u16) as *mut u8;
            debug_assert!(!dst.is_null());
            std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len());
        }
        Ok(pkt)
    }
}

/// Frames built straight into mbufs of the pool: `rte_pktmbuf_alloc`, the
/// frame written at `rte_pktmbuf_mtod` (after the headroom),
/// `rte_pktmbuf_append` for its length. What a [`Stack`](crate::tcp::Stack)
/// on a [`Port`](super::Port) sends with.
impl FrameAlloc for Mempool {
    type Packet = MbufPacket;

    fn frame_room(&self) -> usize {
        usize::from(self.data_room()).saturating_sub(sys::RTE_PKTMBUF_HEADROOM as usize)
    }

    fn build(
        &self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<MbufPacket, PoolError> {
        // SAFETY: a live pool.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.as_ptr()) };
        // SAFETY: a fresh mbuf with refcnt 1, now owned by the handle (freed
        // by its drop on every early return).
        let pkt = unsafe { MbufPacket::from_raw(m) }.ok_or(PoolError::Exhausted {
            capacity: self.capacity(),
        })?;
        let m = pkt.as_ptr();
        // SAFETY: a valid, fresh single-segment mbuf.
        let room = usize::from(unsafe { sys::rte_pktmbuf_tailroom(m) });
        // SAFETY: with `data_len` 0, the tailroom's `room` bytes start at
        // mtod, inside the mbuf's buffer; no other handle sees them yet.
        let space = unsafe { std::slice::from_raw_parts_mut(sys::pktmbuf_mtod(m), room) };
        let too_long = |len| PoolError::TooLong {
            len,
            buf_size: room,
        };
        let len = write(space).ok_or(too_long(0))?;
        if len > room {
            return Err(too_long(len));
        }
        // SAFETY: `len` fits in the tailroom (checked), so append succeeds
        // and only moves `data_len`/`pkt_len`; the bytes are already there.
        let tail = unsafe { sys::rte_pktmbuf_append(m, len as u16) };
        debug_assert!(len == 0 || !tail.is_null());
        Ok(pkt)
    }
}

/// A reference-counted handle on one single-segment `rte_mbuf`.
///
/// Clone increments the mbuf's reference count (`rte_mbuf_refcnt_update`);
/// drop calls `rte_pktmbuf_free`, which decrements it and puts the mbuf back
/// in its pool at zero. The frame's bytes are never written once the handle
/// exists. Only the first segment is seen: chained mbufs are not supported
/// ([`Port`](super::Port) drops them on receive).
pub struct MbufPacket {
    m: NonNull<sys::rte_mbuf>,
}

impl MbufPacket {
    /// Takes over one reference on `m`; `None` for a null pointer.
    ///
    /// # Safety
    /// `m` is null or a valid mbuf whose pool outlives the handle, on which
    /// the caller owns one reference that it hands over. The mbuf should have
    /// one segment: [`data`](Packet::data) only covers the first.
    pub unsafe fn from_raw(m: *mut sys::rte_mbuf) -> Option<MbufPacket> {
        NonNull::new(m).map(|m| MbufPacket { m })
    }

    /// Gives up the handle without freeing: the caller now owns its reference
    /// (what `rte_eth_tx_burst` takes).
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let m = self.m.as_ptr();
        std::mem::forget(self);
        m
    }

    /// The mbuf.
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.m.as_ptr()
    }

    /// The mbuf's reference count (`rte_mbuf_refcnt_read`).
    pub fn refcnt(&self) -> u16 {
        // SAFETY: a valid mbuf.
        unsafe { sys::rte_mbuf_refcnt_read(self.m.as_ptr()) }
    }

    /// Number of segments (`nb_segs`).
    pub fn segments(&self) -> u16 {
        // SAFETY: a valid mbuf.
        unsafe { (*self.m.as_ptr()).nb_segs }
    }

    /// The receive-side scaling hash the device computed for this frame
    /// (`hash.rss`), if it set `RTE_MBUF_F_RX_RSS_HASH` in `ol_flags`.
    /// `None` from devices without RSS (`net_ring`, `net_null`, `net_tap`)
    /// and for mbufs allocated locally.
    pub fn rss_hash(&self) -> Option<u32> {
        /// `RTE_MBUF_F_RX_RSS_HASH`.
        const RX_RSS_HASH: u64 = 1 << 1;
        let m = self.m.as_ptr();
        // SAFETY: a valid mbuf; `hash.rss` is a plain u32 of the union, set
        // by the driver when the flag is.
        unsafe { ((*m).ol_flags & RX_RSS_HASH != 0).then(|| (*m).__bindgen_anon_2.hash.rss) }
    }

    /// The port the mbuf was received on (`port`).
    pub fn port(&self) -> u16 {
        // SAFETY: a valid mbuf.
        unsafe { (*self.m.as_ptr()).port }
    }
}

// SAFETY: a handle owns one reference on its mbuf. DPDK updates mbuf
// reference counts atomically (`RTE_MBUF_REFCNT_ATOMIC`, the default build)
// except when the count is 1, that is when the calling handle is the only
// one, so no other thread can touch the count; the last `rte_pktmbuf_free`
// puts the mbuf back through the thread-safe mempool functions (see
// `PoolInner`). The frame's bytes are never written while a handle exists,
// so handles on one mbuf may be read from several threads at once.
unsafe impl Send for MbufPacket {}
// SAFETY: `&MbufPacket` reads the frame (immutable while handles exist) and
// metadata, or clones (an atomic reference-count increment, see above).
unsafe impl Sync for MbufPacket {}

impl Clone for MbufPacket {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: a valid mbuf on which this handle holds a reference.
        unsafe { sys::rte_mbuf_refcnt_update(self.m.as_ptr(), 1) };
        MbufPacket { m: self.m }
    }
}

impl Drop for MbufPacket {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this handle's reference, given back once.
        unsafe { sys::rte_pktmbuf_free(self.m.as_ptr()) }
    }
}

impl Packet for MbufPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.m.as_ptr();
        // SAFETY: a valid mbuf; its first segment holds `data_len` bytes from
        // `buf_addr + data_off`, unchanged while a handle exists.
        unsafe { std::slice::from_raw_parts(sys::pktmbuf_mtod(m), (*m).data_len as usize) }
    }
}

impl fmt::Debug for MbufPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufPacket")
            .field("mbuf", &self.m)
            .field("len", &self.data().len())
            .field("refcnt", &self.refcnt())
            .finish()
    }
}
