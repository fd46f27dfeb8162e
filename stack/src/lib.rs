//! The userspace TCP stack of aa, first layers of the passive-inspection path.
//!
//! ```text
//! capture file / memory / TAP / DPDK (feature `dpdk`)
//!   → io:    PacketIo::recv_burst fills caller storage with pooled packet handles
//!   → wire:  parse(frame, link) → Segment (4-tuple, seq/ack, flags, options,
//!            payload range within the frame, checksum status), no copy
//!   → flow:  the connection and direction of the segment (bounded table)
//!   → passive: each direction reassembled in an aa_runtime::AaStream and
//!            parsed on the fly; records, gaps and errors go to a Sink
//! ```
//!
//! - [`wire`] slices a captured frame (Ethernet II with 802.1Q/QinQ tags, raw IP,
//!   Linux cooked SLL and SLL2) down to a TCP segment with the `etherparse` crate,
//!   maps every malformed or uninteresting frame to a [`wire::WireError`] reason,
//!   and decides about bad checksums ([`wire::ChecksumPolicy`], Suricata's `auto`).
//! - [`io`] is the burst-oriented packet I/O contract ([`io::PacketIo`]) with three
//!   backends: [`io::memory`] (frames held in memory, for tests and benches),
//!   [`io::pcap`] (pcap and pcapng files, read into a packet pool; plus a writer)
//!   and [`io::tap`] (a Linux TAP device: Ethernet frames to and from the kernel).
//!   With feature `dpdk`, `dpdk` adds DPDK: EAL start-up, mbuf pools, an
//!   mbuf-backed packet handle, ports with one or several queue pairs
//!   (`rte_eth_rx_burst`/`tx_burst`, symmetric RSS, a queue per thread) and
//!   software spreading of connections over worker threads.
//! - [`link`] answers what a host must answer on an Ethernet segment: ARP for its
//!   IPv4 address (with a bounded, expiring ARP cache) and ICMP echo.
//! - [`flow`] is the bounded flow table that pairs both directions of a
//!   connection under one key (cap, idle eviction, every refusal counted).
//! - [`passive`] rebuilds both directions of every connection from a copy of
//!   the traffic: handshake or mid-stream pickup, reordering, retransmissions,
//!   losses turned into gaps once acknowledged, FIN and RST.
//! - [`tcp`] is the TCP endpoint (IPv4) over a packet device: connections
//!   this host opens (ARP first, SYN with MSS and window scale) or accepts
//!   (`listen`), each received into an `AaStream` and parsed on arrival, one
//!   ACK per burst, the stream's window advertised; what the application
//!   writes sent by MSS within the peer's window, with RFC 6298
//!   retransmission, fast retransmit, NewReno and SACK. It runs on any
//!   device, DPDK ports included.
//! - [`frame`] builds Ethernet/IPv4|IPv6/TCP test frames with correct checksums.
//! - [`synth`] generates deterministic synthetic captures (HTTP, CSV; with
//!   reordering, duplicates, overlaps and loss) and their ground truth.
#![deny(missing_docs)]

#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod flow;
pub mod frame;
pub mod io;
pub mod link;
pub mod passive;
pub mod synth;
pub mod tcp;
pub mod wire;

pub use io::{Burst, IoError, PacketIo, Rx, RxMeta, Timestamp};
pub use wire::{
    parse, ChecksumMode, ChecksumPolicy, ChecksumStatus, Decoder, LinkType, Segment, TcpFlags,
    TcpOpts, WireError, WireStats,
};
