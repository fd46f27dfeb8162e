//! Two in-memory devices wired back to back: what one sends, the other
//! receives. Packet handles are moved across, never copied, so two
//! [`Stack`](crate::tcp::Stack)s (or any two users of [`PacketIo`]) can talk
//! in one thread, in tests and benches.
//!
//! Each direction is a queue of fixed capacity, allocated once by [`pair`];
//! a packet sent into a full queue is dropped (its buffer goes back to its
//! pool) and counted, as a full NIC ring would. No allocation per packet.
//! Packets keep the pool they were built in: the receiving side holds the
//! sender's buffers until it drops them, so size the sender's pool for its
//! peer's window too. Frames are stamped with the wall-clock time when
//! received.
//!
//! [`PairIo::offload_checksums`] makes the wire act as two NICs with
//! checksum offload: senders leave the TCP checksums to it, and
//! receivers get every frame marked [`RxChecksum::Good`] (a wire in memory
//! does not corrupt frames), so neither side computes them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use aa_runtime::Packet;

use super::{Burst, IoError, PacketIo, Rx, RxChecksum, RxMeta, Timestamp};
use crate::wire::LinkType;

/// Counters of one direction of a [`pair`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Packets taken by the sending side.
    pub sent: u64,
    /// Packets delivered to the receiving side.
    pub received: u64,
    /// Packets dropped because the queue was full.
    pub overflow: u64,
}

struct Lane<P> {
    queue: VecDeque<P>,
    cap: usize,
    stats: WireStats,
}

struct Wire<P> {
    /// `lanes[i]` carries what end `i` sends to end `1 - i`.
    lanes: [Lane<P>; 2],
    /// Checksums left to the wire (see [`PairIo::offload_checksums`]).
    offload: bool,
}

/// One end of a [`pair`].
pub struct PairIo<P: Packet> {
    wire: Rc<RefCell<Wire<P>>>,
    side: usize,
    link: LinkType,
}

impl<P: Packet> std::fmt::Debug for PairIo<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairIo")
            .field("side", &self.side)
            .field("link", &self.link)
            .field("pending", &self.pending())
            .finish()
    }
}

/// Two ends connected back to back, each direction holding at most `cap`
/// packets in flight; frames are received with link type `link`.
///
/// # Panics
/// If `cap` is zero.
pub fn pair<P: Packet>(cap: usize, link: LinkType) -> (PairIo<P>, PairIo<P>) {
    assert!(cap > 0, "a wire holds at least one packet");
    let lane = || Lane {
        queue: VecDeque::with_capacity(cap),
        cap,
        stats: WireStats::default(),
    };
    let wire = Rc::new(RefCell::new(Wire {
        lanes: [lane(), lane()],
        offload: false,
    }));
    (
        PairIo {
            wire: wire.clone(),
            side: 0,
            link,
        },
        PairIo {
            wire,
            side: 1,
            link,
        },
    )
}

impl<P: Packet> PairIo<P> {
    /// Packets waiting for this end to receive them.
    pub fn pending(&self) -> usize {
        self.wire.borrow().lanes[1 - self.side].queue.len()
    }

    /// Counters of what this end sent (towards the other end).
    pub fn tx_stats(&self) -> WireStats {
        self.wire.borrow().lanes[self.side].stats
    }

    /// Counters of what this end received (from the other end).
    pub fn rx_stats(&self) -> WireStats {
        self.wire.borrow().lanes[1 - self.side].stats
    }

    /// Sets both ends to checksum offload (off at first): they say
    /// [`PacketIo::tx_checksum_offload`], and frames are received marked
    /// [`RxChecksum::Good`] instead of `Unknown`, whatever their checksum
    /// fields hold: what two stacks with NIC offload see, with no checksum
    /// computed in software on either side.
    pub fn offload_checksums(&self, on: bool) {
        self.wire.borrow_mut().offload = on;
    }

    /// Drops every packet in flight, both directions.
    pub fn clear(&self) {
        let mut w = self.wire.borrow_mut();
        for l in &mut w.lanes {
            l.queue.clear();
        }
    }
}

impl<P: Packet> PacketIo for PairIo<P> {
    type Packet = P;

    fn recv_burst(&mut self, out: &mut Burst<Rx<P>>) -> Result<usize, IoError> {
        let mut w = self.wire.borrow_mut();
        let lane = 1 - self.side;
        if w.lanes[lane].queue.is_empty() {
            return Ok(0);
        }
        // Wall-clock time, as a NIC stamps frames (the ARP cache ages by it).
        let ts = Timestamp::now();
        let checksum = if w.offload {
            RxChecksum::Good
        } else {
            RxChecksum::Unknown
        };
        let l = &mut w.lanes[lane];
        let mut n = 0;
        while out.room() > 0 {
            let Some(packet) = l.queue.pop_front() else {
                break;
            };
            let meta = RxMeta {
                ts,
                link: self.link,
                wire_len: packet.data().len() as u32,
                iface: 0,
                checksum,
            };
            // Room was checked above.
            let _ = out.push(Rx { packet, meta });
            n += 1;
        }
        l.stats.received += n as u64;
        Ok(n)
    }

    fn send_burst(&mut self, pkts: &mut Burst<P>) -> Result<usize, IoError> {
        let mut w = self.wire.borrow_mut();
        let l = &mut w.lanes[self.side];
        let n = pkts.len();
        for p in pkts.drain(..) {
            if l.queue.len() < l.cap {
                l.queue.push_back(p);
            } else {
                l.stats.overflow += 1;
            }
        }
        l.stats.sent += n as u64;
        Ok(n)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.wire.borrow().offload
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use aa_runtime::{PacketPool, PoolPacket};

    #[test]
    fn what_one_sends_the_other_receives() {
        let pool = PacketPool::new(8, 64);
        let (mut a, mut b) = pair::<PoolPacket>(2, LinkType::Ethernet);
        let mut tx = Burst::with_capacity(4);
        for i in 0..3u8 {
            tx.push(pool.packet_from(&[i; 20]).unwrap()).unwrap();
        }
        assert_eq!(a.send_burst(&mut tx).unwrap(), 3);
        assert_eq!(a.tx_stats().overflow, 1);
        assert_eq!(pool.available(), 6);
        assert_eq!(b.pending(), 2);
        let mut rx = Burst::with_capacity(1);
        assert_eq!(b.recv_burst(&mut rx).unwrap(), 1);
        assert_eq!(rx.as_slice()[0].packet.data(), &[0; 20]);
        assert_eq!(a.recv_burst(&mut Burst::with_capacity(4)).unwrap(), 0);
        drop(rx);
        drop((a, b));
        assert!(pool.is_full());
    }
}
