//! Wire formats: from a captured frame to a TCP segment view.
//!
//! [`parse`] takes the bytes of one frame and its [`LinkType`] and returns a
//! [`Segment`]: a small `Copy` value with the 4-tuple, sequence and
//! acknowledgment numbers, flags, window, the options the stack cares about
//! (MSS, window scale, SACK-permitted, timestamps), the payload's position
//! *within the frame* and the checksum status. Nothing is copied: the payload
//! stays in the packet buffer and the caller slices it with
//! [`Segment::payload`].
//!
//! Slicing is done by `etherparse`'s per-layer slicers (strict mode):
//! Ethernet II with up to three 802.1Q / 802.1ad / QinQ tags, IPv4 (with
//! options and AH), IPv6 (with extension headers), TCP; the note atop
//! `wire/parse.rs` says why it chains them rather than use `SlicedPacket`. Two
//! pieces are ours, each for a reason written where it lives: the Linux cooked
//! headers ([`link`]: etherparse's SLL slicer refuses loopback and tun
//! interfaces, which `tcpdump -i any` captures all the time, and it has no
//! SLL2) and the resumption of the TCP option walk ([`tcp`]: etherparse's
//! iterator stops at the first kind it does not know, so an MD5 or MPTCP
//! option would hide the MSS behind it).
//!
//! # Failure contract
//!
//! [`parse`] never panics, whatever the bytes: every frame that is not a
//! complete, well-formed TCP segment is an `Err(`[`WireError`]`)` naming the
//! reason (truncated at which layer, not IP, not TCP, fragment, bad IP header
//! length, bad TCP data offset, ...). A length field that points past the
//! packet is an error, never an out-of-bounds read. Callers count errors (see
//! [`Decoder`] and [`WireStats`]); they never stop on one.
//!
//! Strict mode means the whole IP packet must be in the frame: a frame cut by
//! the capture's snap length is `Truncated { layer: Ip }`, and Ethernet padding
//! after the IP packet is ignored (the IP length decides where the segment ends).
//!
//! # Checksums
//!
//! With `verify_checksum`, the TCP checksum is verified over the pseudo-header
//! and the whole segment ([`ChecksumStatus::Valid`] / `Invalid`); otherwise it
//! is `Unchecked`. What to do with a bad one is the [`ChecksumPolicy`]'s call,
//! including Suricata's `auto` mode for captures taken with checksum offload.

mod checksum;
mod decoder;
mod error;
pub mod link;
mod parse;
mod segment;
pub mod tcp;

pub use checksum::{AutoState, ChecksumMode, ChecksumPolicy, ChecksumReport};
pub use decoder::{Decoder, WireStats};
pub use error::{Layer, WireError};
pub use link::LinkType;
pub use parse::{ipv4_tcp_header_len, parse};
pub use segment::{ChecksumStatus, Segment, TcpFlags, TcpOpts};
