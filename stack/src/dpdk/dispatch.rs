//! Spreading connections over worker threads in software, for devices
//! without receive-side scaling (`net_ring`, `net_null`, `net_tap`) or with
//! one receive queue: one thread receives and hands each packet to the
//! worker of its connection through a bounded queue.

use std::hash::BuildHasher;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};

use aa_runtime::Packet;
use rustc_hash::FxBuildHasher;

use crate::flow::FlowKey;
use crate::io::{Burst, Rx};
use crate::wire::{parse, LinkType};

/// The worker, of `workers`, that handles the Ethernet frame `frame`.
///
/// Symmetric: both directions of a TCP connection (over IPv4 or IPv6, VLAN
/// tags allowed) get the same index, since the hash is over the connection's
/// [`FlowKey`] (its two endpoints in a canonical order). The hash is
/// `rustc-hash`'s Fx (fixed, so that every thread agrees without shared
/// state; a sender that aims its 4-tuples at one worker can only fill that
/// worker's bounded queue), reduced to `0..workers` by
/// its high bits. Frames that are not TCP (ARP, ICMP, UDP) and frames that do
/// not parse all go to worker 0. Never panics; `workers` 0 or 1 gives 0.
#[inline]
pub fn flow_worker(frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let Ok(seg) = parse(frame, LinkType::Ethernet, false) else {
        return 0;
    };
    let (key, _) = FlowKey::of(seg.src, seg.dst);
    let h = FxBuildHasher.hash_one(key);
    ((u128::from(h) * workers as u128) >> 64) as usize
}

/// What a [`Dispatcher`] did for one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Packets queued for the worker.
    pub delivered: u64,
    /// Packets dropped because the worker's queue was full (or the worker
    /// gone).
    pub dropped: u64,
}

/// Hands received packets to `n` workers by connection ([`flow_worker`]),
/// through one bounded queue per worker.
///
/// The queues are std's bounded channels (`sync_channel`): their slots are
/// allocated once, at [`Dispatcher::new`]; sending never blocks: a packet for
/// a worker whose queue is full is dropped (its mbuf freed) and counted in
/// [`WorkerCounts::dropped`], so a slow worker cannot stall the receiving
/// thread or the other workers. Packets cross threads, so `P` is `Send`
/// ([`MbufPacket`](super::MbufPacket) is).
#[derive(Debug)]
pub struct Dispatcher<P> {
    queues: Vec<SyncSender<Rx<P>>>,
    counts: Vec<WorkerCounts>,
}

/// The receiving end of one worker's queue (move it to the worker's thread).
#[derive(Debug)]
pub struct WorkerQueue<P> {
    index: usize,
    rx: Receiver<Rx<P>>,
}

impl<P: Packet + Send> Dispatcher<P> {
    /// A dispatcher to `workers` workers (at least 1), each with a queue of
    /// `depth` packets (at least 1), and the workers' ends, in order.
    pub fn new(workers: usize, depth: usize) -> (Dispatcher<P>, Vec<WorkerQueue<P>>) {
        let workers = workers.max(1);
        let (queues, ends) = (0..workers)
            .map(|index| {
                let (tx, rx) = sync_channel(depth.max(1));
                (tx, WorkerQueue { index, rx })
            })
            .unzip();
        (
            Dispatcher {
                queues,
                counts: vec![WorkerCounts::default(); workers],
            },
            ends,
        )
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.queues.len()
    }

    /// Queues `rx` for the worker of its connection: `Ok(worker)`, or
    /// `Err(worker)` when that worker's queue was full or the worker gone
    /// (the packet is dropped and counted).
    #[inline]
    pub fn dispatch(&mut self, rx: Rx<P>) -> Result<usize, usize> {
        let w = flow_worker(rx.packet.data(), self.queues.len());
        match self.queues[w].try_send(rx) {
            Ok(()) => {
                self.counts[w].delivered += 1;
                Ok(w)
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts[w].dropped += 1;
                Err(w)
            }
        }
    }

    /// Dispatches every packet of `burst`, leaving it empty; returns how many
    /// were queued (the others were dropped and counted).
    pub fn dispatch_burst(&mut self, burst: &mut Burst<Rx<P>>) -> usize {
        let mut queued = 0;
        for rx in burst.drain(..) {
            queued += usize::from(self.dispatch(rx).is_ok());
        }
        queued
    }

    /// Per worker, packets queued and dropped so far.
    pub fn counts(&self) -> &[WorkerCounts] {
        &self.counts
    }

    /// Packets dropped so far, all workers.
    pub fn dropped(&self) -> u64 {
        self.counts.iter().map(|c| c.dropped).sum()
    }
}

impl<P> WorkerQueue<P> {
    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Appends up to `out.room()` queued packets to `out` without waiting;
    /// returns how many, or `None` once the dispatcher is dropped and the
    /// queue is empty (the worker can stop).
    pub fn try_recv_burst(&mut self, out: &mut Burst<Rx<P>>) -> Option<usize> {
        let mut n = 0;
        while out.room() > 0 {
            match self.rx.try_recv() {
                Ok(rx) => {
                    let _ = out.push(rx);
                    n += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if n == 0 => return None,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        Some(n)
    }

    /// Waits for a packet, then appends it and up to `out.room() - 1` more
    /// already queued; returns how many, or `None` once the dispatcher is
    /// dropped and the queue is empty.
    pub fn recv_burst(&mut self, out: &mut Burst<Rx<P>>) -> Option<usize> {
        if out.room() == 0 {
            return Some(0);
        }
        let first = self.rx.recv().ok()?;
        let _ = out.push(first);
        Some(1 + self.try_recv_burst(out).unwrap_or(0))
    }

    /// Like [`recv_burst`](Self::recv_burst), but waits at most `timeout`
    /// for the first packet: `Some(0)` when none came in that time (the
    /// worker can look at its other duties, then wait again).
    pub fn recv_burst_timeout(
        &mut self,
        out: &mut Burst<Rx<P>>,
        timeout: std::time::Duration,
    ) -> Option<usize> {
        if out.room() == 0 {
            return Some(0);
        }
        let first = match self.rx.recv_timeout(timeout) {
            Ok(rx) => rx,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Some(0),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
        };
        let _ = out.push(first);
        Some(1 + self.try_recv_burst(out).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::frame::TcpFrame;

    #[test]
    fn both_directions_get_one_worker_ipv4_ipv6_and_vlan() {
        let v4 = |h: u8| IpAddr::V4(Ipv4Addr::new(198, 51, 100, h));
        let v6 = |h: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, h));
        let pairs = [(v4(1), v4(2)), (v6(1), v6(2))];
        for workers in [2, 3, 4, 8] {
            let mut used = vec![0usize; workers];
            for (a, b) in pairs {
                for port in 40000..40200u16 {
                    let there = TcpFrame::new((a, port), (b, 443));
                    let back = TcpFrame::new((b, 443), (a, port));
                    let w = flow_worker(&there.build(b"x").unwrap(), workers);
                    assert!(w < workers);
                    assert_eq!(w, flow_worker(&back.build(b"").unwrap(), workers));
                    let tagged = back.vlan(0x8100, 7).build(b"y").unwrap();
                    assert_eq!(w, flow_worker(&tagged, workers), "VLAN-tagged");
                    used[w] += 1;
                }
            }
            // 400 connections: every worker gets a fair part of them.
            for (w, n) in used.iter().enumerate() {
                assert!(n * workers * 2 >= 400, "{workers} workers: {w} got {n}");
            }
        }
    }

    /// A frame behind a reference count: a `Send` packet without a pool.
    #[derive(Clone)]
    struct Frame(std::sync::Arc<Vec<u8>>);

    impl Packet for Frame {
        fn data(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn waiting_with_a_timeout_gives_nothing_then_packets_then_the_end() {
        use std::time::Duration;
        let frame = std::sync::Arc::new(
            TcpFrame::new(
                (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 40000),
                (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 80),
            )
            .build(b"x")
            .unwrap(),
        );
        let rx = || Rx {
            packet: Frame(frame.clone()),
            meta: crate::io::RxMeta {
                ts: crate::io::Timestamp::new(1, 0),
                link: LinkType::Ethernet,
                wire_len: frame.len() as u32,
                iface: 0,
                checksum: crate::io::RxChecksum::Unknown,
            },
        };
        let (mut dispatcher, mut ends) = Dispatcher::<Frame>::new(1, 4);
        let wait = Duration::from_millis(1);
        let mut out = Burst::with_capacity(8);
        assert_eq!(ends[0].recv_burst_timeout(&mut out, wait), Some(0));
        for _ in 0..3 {
            assert_eq!(dispatcher.dispatch(rx()), Ok(0));
        }
        assert_eq!(ends[0].recv_burst_timeout(&mut out, wait), Some(3));
        assert_eq!(out.len(), 3);
        // No room: nothing taken.
        let mut full = Burst::with_capacity(1);
        assert!(full.push(rx()).is_ok());
        assert_eq!(dispatcher.dispatch(rx()), Ok(0));
        assert_eq!(ends[0].recv_burst_timeout(&mut full, wait), Some(0));
        // The dispatcher gone, what is queued still comes, then the end.
        drop(dispatcher);
        assert_eq!(ends[0].recv_burst_timeout(&mut out, wait), Some(1));
        assert_eq!(ends[0].recv_burst_timeout(&mut out, wait), None);
        assert_eq!(out.len(), 4);
        drop((out, full));
        assert_eq!(
            std::sync::Arc::strong_count(&frame),
            1,
            "every packet dropped"
        );
    }

    #[test]
    fn what_is_not_tcp_goes_to_worker_zero() {
        let frame = TcpFrame::new(
            (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 1),
            (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 2),
        )
        .build(b"")
        .unwrap();
        assert_eq!(flow_worker(&frame, 0), 0);
        assert_eq!(flow_worker(&frame, 1), 0);
        for cut in 0..frame.len() - 1 {
            assert_eq!(flow_worker(&frame[..cut], 4), 0, "cut at {cut}");
        }
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(flow_worker(&arp, 4), 0);
    }
}
