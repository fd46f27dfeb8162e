//! The userspace TCP stack of aa, first layers of the passive-inspection path.
//!
//! ```text
//! capture file / memory / (later: TAP, DPDK)
//!   → io:    PacketIo::recv_burst fills caller storage with pooled packet handles
//!   → wire:  parse(frame, link) → Segment (4-tuple, seq/ack, flags, options,
//!            payload range within the frame, checksum status), no copy
//!   → (next step: flow table, passive reassembly into aa_runtime::ZcStream)
//! ```
//!
//! - [`wire`] slices a captured frame (Ethernet II with 802.1Q/QinQ tags, raw IP,
//!   Linux cooked SLL and SLL2) down to a TCP segment with the `etherparse` crate,
//!   maps every malformed or uninteresting frame to a [`wire::WireError`] reason,
//!   and decides about bad checksums ([`wire::ChecksumPolicy`], Suricata's `auto`).
//! - [`io`] is the burst-oriented packet I/O contract ([`io::PacketIo`]) with two
//!   backends: [`io::memory`] (frames held in memory, for tests and benches) and
//!   [`io::pcap`] (pcap and pcapng files, read into a packet pool; plus a writer).
//! - [`frame`] builds Ethernet/IPv4|IPv6/TCP test frames with correct checksums.
#![deny(missing_docs)]

pub mod frame;
pub mod io;
pub mod wire;

pub use io::{Burst, IoError, PacketIo, Rx, RxMeta, Timestamp};
pub use wire::{
    parse, ChecksumMode, ChecksumPolicy, ChecksumStatus, Decoder, LinkType, Segment, TcpFlags,
    TcpOpts, WireError, WireStats,
};
