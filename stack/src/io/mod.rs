//! Packet I/O: bursts of packet handles in and out of a device.
//!
//! [`PacketIo`] is the contract every backend implements: memory, capture
//! files, a Linux TAP device ([`tap`]) and, with feature `dpdk`, a DPDK port
//! or one of its queues. It is shaped after
//! `rte_eth_rx_burst` / `rte_eth_tx_burst`:
//!
//! - `recv_burst` appends up to [`Burst::room`] received packets to storage
//!   the *caller* owns and reuses ([`Burst`], allocated once with a fixed
//!   capacity that never grows), each with its [`RxMeta`] (timestamp, link
//!   type, wire length, interface). A backend copies a frame at most once,
//!   into a pool buffer (what a NIC's DMA does); a DPDK backend hands over the
//!   mbufs it got, copying nothing. No allocation per packet.
//! - `send_burst` takes packets from the front of a burst and leaves the ones
//!   the device could not take, in order, for the caller to retry or drop.
//!
//! A receive that finds nothing returns `Ok(0)`; a finite source (a file) says
//! it has no more with [`PacketIo::at_end`]. Errors that end a source (a
//! truncated file) come after every packet before them was delivered.
//!
//! What a sender builds its frames in is an [`alloc::FrameAlloc`]: pool
//! buffers for memory and TAP devices, mbufs for DPDK, written in place.
//!
//! For tests and benches, [`pair`] wires two in-memory ends back to back
//! (handles moved, not copied) and [`fault::FaultIo`] wraps any device in a
//! seeded link that drops, duplicates, reorders and delays packets.

pub mod alloc;
pub mod fault;
pub mod memory;
pub mod pair;
pub mod pcap;
pub mod tap;

use std::fmt;
use std::time::Duration;

use aa_runtime::{Packet, PoolError};

use crate::wire::LinkType;

/// Capture time, in nanoseconds since the Unix epoch (up to year 2554).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The wall-clock time now (what a device stamps received frames with;
    /// 0 if the clock is before 1970).
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::new(d.as_secs(), u64::from(d.subsec_nanos()))
    }
    /// From seconds and nanoseconds (`nanos` may exceed one second).
    pub fn new(secs: u64, nanos: u64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }
    /// Whole seconds.
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// Nanoseconds past the whole second.
    pub fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
    /// As a duration since the epoch.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

/// What a backend knows about a received frame besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// When it was received or captured.
    pub ts: Timestamp,
    /// What its first byte is.
    pub link: LinkType,
    /// Its length on the wire; more than the frame's when the capture cut it
    /// (snap length).
    pub wire_len: u32,
    /// The interface (pcapng interface id, DPDK port, ...) it came from.
    pub iface: u32,
    /// What the device found of its checksums, if it checks them.
    pub checksum: RxChecksum,
}

/// What a device with receive checksum offload found of a frame's IPv4 and
/// TCP checksums (a DPDK port's `RTE_MBUF_F_RX_*_CKSUM_*` flags, or an
/// in-memory pair set to offload). A frame from a device that does not check
/// them is `Unknown`, and software verifies it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Not checked by the device.
    #[default]
    Unknown,
    /// The device verified them: correct (or it vouches for the data where
    /// the checksum field was never filled in, as virtual devices do).
    Good,
    /// The device found a wrong IPv4 header or TCP checksum.
    Bad,
}

/// One received packet and its metadata.
#[derive(Clone, Debug)]
pub struct Rx<P> {
    /// The packet handle.
    pub packet: P,
    /// Its metadata.
    pub meta: RxMeta,
}

/// Caller-owned storage for one burst: a fixed capacity, allocated once,
/// never grown. Receive into it, process, drain or clear, receive again.
#[derive(Debug)]
pub struct Burst<T> {
    items: Vec<T>,
    cap: usize,
}

impl<T> Burst<T> {
    /// Storage for up to `cap` items.
    ///
    /// # Panics
    /// If `cap` is zero.
    pub fn with_capacity(cap: usize) -> Burst<T> {
        assert!(cap > 0, "a burst holds at least one packet");
        Burst {
            items: Vec::with_capacity(cap),
            cap,
        }
    }
    /// Maximum number of items.
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Number of items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// How many more items fit.
    pub fn room(&self) -> usize {
        self.cap - self.items.len()
    }
    /// Adds an item, or gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.items.len() == self.cap {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }
    /// The items, oldest first.
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }
    /// The items, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items
    }
    /// Iterates over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
    /// Removes and yields the items in `range`, keeping the capacity.
    pub fn drain<R: std::ops::RangeBounds<usize>>(&mut self, range: R) -> std::vec::Drain<'_, T> {
        self.items.drain(range)
    }
    /// Drops every item, keeping the capacity.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

impl<'a, T> IntoIterator for &'a Burst<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Why a backend could not receive or send.
#[derive(Debug)]
pub enum IoError {
    /// The operating system said no.
    Os(std::io::Error),
    /// No packet could be delivered: every pool buffer is in use. Nothing was
    /// lost; free packets and call again.
    Pool(PoolError),
    /// The backend cannot do this (sending into a capture file being read).
    Unsupported(&'static str),
    /// The file is neither pcap nor pcapng.
    NotACapture {
        /// Its first four bytes, as a little-endian number.
        magic: u32,
    },
    /// The capture's link type is not one [`LinkType`] covers.
    UnsupportedLinkType {
        /// The `LINKTYPE_*` number.
        linktype: u32,
    },
    /// The file ends inside a record: every complete packet before it was
    /// delivered.
    Truncated {
        /// Byte offset in the file where the incomplete record starts.
        offset: u64,
        /// Bytes there are from that offset to the end of the file.
        have: u64,
    },
    /// A record or block that cannot be right.
    Corrupt {
        /// Byte offset in the file where it starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Os(e) => write!(f, "I/O error: {e}"),
            IoError::Pool(e) => e.fmt(f),
            IoError::Unsupported(what) => write!(f, "unsupported: {what}"),
            IoError::NotACapture { magic } => write!(
                f,
                "not a pcap or pcapng file (starts with {:02x?})",
                magic.to_le_bytes()
            ),
            IoError::UnsupportedLinkType { linktype } => write!(
                f,
                "unsupported link type {linktype} ({}); supported: {}",
                crate::wire::link::linktype_name(*linktype),
                LinkType::SUPPORTED
            ),
            IoError::Truncated { offset, have } => write!(
                f,
                "capture truncated: the record at byte offset {offset} is incomplete \
                 ({have} bytes before end of file)"
            ),
            IoError::Corrupt { offset, reason } => {
                write!(f, "corrupt capture at byte offset {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IoError::Os(e) => Some(e),
            IoError::Pool(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError::Os(e)
    }
}

/// A packet device: receives and sends bursts of packet handles.
pub trait PacketIo {
    /// The handle type this device hands out and takes.
    type Packet: Packet;

    /// Appends up to `out.room()` received packets to `out`; returns how many.
    /// `Ok(0)` when nothing is there now (or, see [`at_end`](Self::at_end), ever).
    fn recv_burst(&mut self, out: &mut Burst<Rx<Self::Packet>>) -> Result<usize, IoError>;

    /// Sends packets from the front of `pkts`, removing those sent; returns how
    /// many. The rest stay in `pkts`, in order.
    fn send_burst(&mut self, pkts: &mut Burst<Self::Packet>) -> Result<usize, IoError>;

    /// Whether this source will never receive again (a file read to its end).
    fn at_end(&self) -> bool {
        false
    }

    /// Whether the device completes the TCP checksums of the IPv4/TCP frames
    /// it sends (transmit checksum offload). When it does, a sender of such
    /// frames puts the sum of the TCP pseudo-header (folded, not
    /// complemented) in the TCP checksum, as NICs expect, and the IPv4
    /// header's checksum itself; [`tcp::Stack`](crate::tcp::Stack) does.
    /// `false` unless the device was set up for it.
    fn tx_checksum_offload(&self) -> bool {
        false
    }

    /// Whether the device cuts the TCP frames it sends into segments
    /// (transmit segmentation offload): a sender may then hand it frames
    /// longer than the MTU, each marked with its segment size
    /// ([`FrameAlloc::set_segment_size`](crate::io::alloc::FrameAlloc::set_segment_size)),
    /// checksums left to the device as with
    /// [`tx_checksum_offload`](Self::tx_checksum_offload), which it implies.
    /// `false` unless the device was set up for it.
    fn tx_segmentation(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn burst_never_grows() {
        let mut b = Burst::with_capacity(2);
        assert_eq!(b.room(), 2);
        b.push(1).unwrap();
        b.push(2).unwrap();
        assert_eq!(b.push(3), Err(3));
        assert_eq!(b.drain(..1).collect::<Vec<_>>(), [1]);
        assert_eq!(b.as_slice(), [2]);
        assert_eq!(b.room(), 1);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 2);
    }

    #[test]
    fn timestamp_parts() {
        let t = Timestamp::new(1_700_000_000, 5);
        assert_eq!((t.secs(), t.subsec_nanos()), (1_700_000_000, 5));
        assert_eq!(t.to_string(), "1700000000.000000005");
        assert_eq!(t.as_duration(), Duration::new(1_700_000_000, 5));
    }
}
