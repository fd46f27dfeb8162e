//! Transmit buffers: where a sender builds the frames it sends.
//!
//! [`FrameAlloc`] takes one writable buffer of a device's packet type, lets
//! the caller write a frame into it in place, and freezes it into a packet
//! handle ready for [`PacketIo::send_burst`](super::PacketIo::send_burst).
//! [`PacketPool`] builds [`PoolPacket`]s (TAP, memory devices); with feature
//! `dpdk`, `dpdk::Mempool` builds `dpdk::MbufPacket`s (`rte_pktmbuf_alloc`,
//! written at `rte_pktmbuf_mtod`, `rte_pktmbuf_append`). Neither copies the
//! frame again nor allocates from the heap.

use aa_runtime::{Packet, PacketPool, PoolError, PoolPacket};

/// Allocates frame buffers of one packet type, written in place.
pub trait FrameAlloc {
    /// The packet handle a built frame becomes.
    type Packet: Packet;

    /// The most bytes one frame can hold.
    fn frame_room(&self) -> usize;

    /// Takes a buffer and calls `write` with its writable bytes (at least
    /// [`frame_room`](Self::frame_room) of them, contents unspecified);
    /// `write` returns the frame's length, or `None` to give the buffer
    /// back. [`PoolError::Exhausted`] when no buffer is free,
    /// [`PoolError::TooLong`] when `write` gave up (`len` 0) or returned
    /// more than the buffer holds.
    fn build(
        &self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<Self::Packet, PoolError>;

    /// Marks `pkt`, a TCP frame just built, for the device to cut its payload
    /// into segments of `seg` bytes (transmit segmentation offload), where
    /// the packets can carry that mark. Only for a device whose
    /// [`PacketIo::tx_segmentation`](crate::io::PacketIo::tx_segmentation)
    /// is `true`. Does nothing by default.
    fn set_segment_size(&self, pkt: &Self::Packet, seg: u16) {
        let _ = (pkt, seg);
    }
}

impl FrameAlloc for PacketPool {
    type Packet = PoolPacket;

    fn frame_room(&self) -> usize {
        self.buf_size()
    }

    #[inline]
    fn build(
        &self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<PoolPacket, PoolError> {
        let mut buf = self.alloc()?;
        let room = self.buf_size();
        match write(buf.space()) {
            Some(len) if len <= room => Ok(buf.freeze(len)),
            Some(len) => Err(PoolError::TooLong {
                len,
                buf_size: room,
            }),
            None => Err(PoolError::TooLong {
                len: 0,
                buf_size: room,
            }),
        }
    }

    fn set_segment_size(&self, pkt: &PoolPacket, seg: u16) {
        pkt.set_tx_segment_size(seg);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn pool_builds_in_place_and_gives_back_on_failure() {
        let pool = PacketPool::new(2, 64);
        assert_eq!(pool.frame_room(), 64);
        let p = pool
            .build(|b| {
                b[..3].copy_from_slice(b"abc");
                Some(3)
            })
            .unwrap();
        assert_eq!(p.data(), b"abc");
        assert_eq!(pool.available(), 1);
        assert!(matches!(
            pool.build(|_| None),
            Err(PoolError::TooLong { len: 0, .. })
        ));
        assert!(matches!(
            pool.build(|_| Some(65)),
            Err(PoolError::TooLong { len: 65, .. })
        ));
        assert_eq!(pool.available(), 1, "failed builds give their buffer back");
        let q = pool.build(|_| Some(0)).unwrap();
        assert!(matches!(
            pool.build(|_| Some(1)),
            Err(PoolError::Exhausted { capacity: 2 })
        ));
        drop((p, q));
        assert!(pool.is_full());
    }
}
