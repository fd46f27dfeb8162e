//! A device whose "wire" is memory: frames queued by the caller, received into
//! pool buffers, and sent packets kept for inspection. For tests and benches.
//!
//! Frames live back to back in one arena (one allocation, grown as frames are
//! queued, not per receive). `recv_burst` copies each frame once into a buffer
//! of the [`PacketPool`], as a NIC's DMA would, so the receive path costs what
//! a real device's does. [`MemoryIo::rewind`] replays the same frames (benches).

use aa_runtime::{PacketPool, PoolError, PoolPacket};

use super::{Burst, IoError, PacketIo, Rx, RxChecksum, RxMeta, Timestamp};
use crate::wire::LinkType;

/// Frames in memory, received through a packet pool.
#[derive(Debug)]
pub struct MemoryIo {
    pool: PacketPool,
    link: LinkType,
    arena: Vec<u8>,
    /// (start in arena, length, timestamp) per queued frame.
    frames: Vec<(usize, usize, Timestamp)>,
    next: usize,
    sent: Vec<PoolPacket>,
    too_long: u64,
}

impl MemoryIo {
    /// An empty device receiving into `pool`; every frame has link type `link`.
    pub fn new(pool: PacketPool, link: LinkType) -> MemoryIo {
        MemoryIo {
            pool,
            link,
            arena: Vec::new(),
            frames: Vec::new(),
            next: 0,
            sent: Vec::new(),
            too_long: 0,
        }
    }

    /// A device holding `frames`, timestamped one microsecond apart from 0.
    pub fn with_frames<I>(pool: PacketPool, link: LinkType, frames: I) -> MemoryIo
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut io = MemoryIo::new(pool, link);
        for (i, f) in frames.into_iter().enumerate() {
            io.push(Timestamp(i as u64 * 1000), f.as_ref());
        }
        io
    }

    /// Queues a frame to be received.
    pub fn push(&mut self, ts: Timestamp, frame: &[u8]) {
        self.frames.push((self.arena.len(), frame.len(), ts));
        self.arena.extend_from_slice(frame);
    }

    /// Frames queued and not received yet.
    pub fn pending(&self) -> usize {
        self.frames.len() - self.next
    }

    /// Makes every queued frame receivable again, from the first.
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    /// Packets sent so far, oldest first.
    pub fn sent(&self) -> &[PoolPacket] {
        &self.sent
    }

    /// Takes the packets sent so far.
    pub fn take_sent(&mut self) -> Vec<PoolPacket> {
        std::mem::take(&mut self.sent)
    }

    /// Frames skipped because they do not fit in a pool buffer.
    pub fn too_long(&self) -> u64 {
        self.too_long
    }

    /// The pool frames are received into.
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }
}

impl PacketIo for MemoryIo {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        let mut n = 0;
        while out.room() > 0 && self.next < self.frames.len() {
            let (start, len, ts) = self.frames[self.next];
            let packet = match self.pool.packet_from(&self.arena[start..start + len]) {
                Ok(p) => p,
                Err(PoolError::TooLong { .. }) => {
                    self.too_long += 1;
                    self.next += 1;
                    continue;
                }
                Err(e @ PoolError::Exhausted { .. }) => {
                    if n == 0 {
                        return Err(IoError::Pool(e));
                    }
                    break;
                }
            };
            let meta = RxMeta {
                ts,
                link: self.link,
                wire_len: len as u32,
                iface: 0,
                checksum: RxChecksum::Unknown,
            };
            // Room was checked above.
            let _ = out.push(Rx { packet, meta });
            self.next += 1;
            n += 1;
        }
        Ok(n)
    }

    fn send_burst(&mut self, pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        let n = pkts.len();
        self.sent.extend(pkts.drain(..));
        Ok(n)
    }

    fn at_end(&self) -> bool {
        self.next == self.frames.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use aa_runtime::Packet;

    #[test]
    fn receives_in_bursts_through_the_pool() {
        let pool = PacketPool::new(4, 64);
        let frames: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 10 + i as usize]).collect();
        let mut io = MemoryIo::with_frames(pool.clone(), LinkType::Ethernet, &frames);
        let mut burst = Burst::with_capacity(4);
        assert_eq!(io.recv_burst(&mut burst).unwrap(), 4);
        assert_eq!(pool.available(), 0);
        // Pool empty, nothing delivered: an error, and nothing consumed.
        let mut other = Burst::with_capacity(4);
        assert!(matches!(io.recv_burst(&mut other), Err(IoError::Pool(_))));
        assert_eq!(io.pending(), 2);
        for (i, rx) in burst.iter().enumerate() {
            assert_eq!(rx.packet.data(), &frames[i][..]);
            assert_eq!(rx.meta.wire_len as usize, frames[i].len());
            assert_eq!(rx.meta.ts, Timestamp(i as u64 * 1000));
        }
        burst.clear();
        assert!(pool.is_full());
        assert_eq!(io.recv_burst(&mut burst).unwrap(), 2);
        assert!(io.at_end());
        assert_eq!(io.recv_burst(&mut burst).unwrap(), 0);
        // Send: handles move to the wire, the burst empties.
        let mut tx = Burst::with_capacity(4);
        for rx in burst.drain(..) {
            tx.push(rx.packet).unwrap();
        }
        assert_eq!(io.send_burst(&mut tx).unwrap(), 2);
        assert!(tx.is_empty());
        assert_eq!(io.sent()[1].data(), &frames[5][..]);
        drop(io.take_sent());
        assert!(pool.is_full());
    }

    #[test]
    fn too_long_frames_are_skipped_and_counted() {
        let pool = PacketPool::new(2, 8);
        let mut io = MemoryIo::with_frames(pool, LinkType::RawIp, [&[1u8; 9][..], &[2; 8]]);
        let mut burst = Burst::with_capacity(2);
        assert_eq!(io.recv_burst(&mut burst).unwrap(), 1);
        assert_eq!(io.too_long(), 1);
        assert_eq!(burst.as_slice()[0].packet.data(), &[2; 8]);
        io.rewind();
        burst.clear();
        assert_eq!(io.recv_burst(&mut burst).unwrap(), 1);
    }
}
