//! A Linux TAP device as a [`PacketIo`]: Ethernet frames to and from the
//! kernel, through `/dev/net/tun`.
//!
//! [`TapIo::open`] opens `/dev/net/tun` non-blocking and attaches it to the
//! TAP device of that name with `TUNSETIFF` (`IFF_TAP | IFF_NO_PI`: frames
//! with no packet-information prefix), creating the device when there is
//! none in the caller's network namespace. A device the call created goes
//! away when the `TapIo` is dropped, unless [`TapIo::set_persist`] made it
//! persistent. The file descriptor keeps working after the device is moved
//! to another namespace (`ip link set DEV netns NS`).
//!
//! The kernel's side of the device is a network interface with its own MAC
//! address ([`TapIo::mac`]): the *peer* of whatever runs on this end. A
//! stack on this end uses another address of its own.
//!
//! - `recv_burst` reads frames one `readv(2)` each, straight into a buffer of
//!   the [`PacketPool`] (a one-byte spill slot behind it tells a frame longer
//!   than the buffer: it is dropped and counted), until the burst is full or
//!   the device has nothing (`EAGAIN`). Every frame of a burst carries the
//!   time of the burst's first read.
//! - `send_burst` writes each packet's bytes with one `write(2)`; on `EAGAIN`
//!   the rest stay in the burst. A frame the kernel refuses (`EINVAL`,
//!   `EMSGSIZE`, `EIO` while the interface is down) is dropped and counted:
//!   it would be refused again.
//! - [`TapIo::wait`] blocks in `poll(2)` until a frame is there or a timeout
//!   passes; [`TapIo::fd`] (and `AsFd`) for an epoll loop of your own.
//! - A capture ([`TapIo::set_capture`], [`TapIo::capture_to_file`]) writes
//!   every frame received and sent to a [`PcapWriter`], for debugging (the
//!   writer allocates per frame; the rest of the path does not).
//! - [`TapIo::open_offloading`] attaches with the kernel's virtio-net header
//!   (`IFF_VNET_HDR`, 10 bytes before each frame) and checksum offload
//!   (`TUNSETOFFLOAD` with `TUN_F_CSUM`): frames from the kernel that it
//!   left unchecksummed (`NEEDS_CSUM`: it wrote them itself) or checked
//!   (`DATA_VALID`) arrive as [`RxChecksum::Good`], and the device says
//!   [`PacketIo::tx_checksum_offload`]: IPv4/TCP frames sent go out with
//!   `NEEDS_CSUM`, for the kernel to take their TCP checksum as the
//!   pseudo-header's sum the sender left (a local socket does not check
//!   such a segment; one the kernel forwards gets its checksum completed).
//!   The device also says [`PacketIo::tx_segmentation`]: a TCP frame sent
//!   longer than its segment size ([`PoolPacket::set_tx_segment_size`])
//!   goes out with `GSO_TCPV4`, the headers' length and that size, and the
//!   kernel cuts it into segments, as a NIC with TSO would
//!   ([`TapStats::tx_large`]). No receive segmentation offload is asked
//!   for, so frames received stay within the MTU.
//! - [`TapIo::open_large_receive`] adds receive segmentation offload
//!   (`TUN_F_TSO4`, `TUN_F_TSO6`): the kernel hands its TCP segments over
//!   as it built them, up to 64 KiB in one frame (one `read(2)` where the
//!   MTU would take some forty), with the IP header's length the whole
//!   frame's; the receiver's stream takes them as any segment. The pool's
//!   buffers must hold [`LARGE_FRAME`] bytes.
//!
//! The descriptor is opened close-on-exec, but a process forked by another
//! thread holds a copy of it until its `exec`: in a program that spawns
//! processes, a device may stay attached (and busy, or not yet deleted) for
//! a moment after its `TapIo` is dropped.
//!
//! Errors are [`IoError::Os`] whose [`std::io::ErrorKind`] is the system's
//! (`NotFound`: no `/dev/net/tun`; `PermissionDenied`: not root or
//! `CAP_NET_ADMIN`; `ResourceBusy`: another process has the device;
//! `InvalidInput`: the name is taken by a device that is not a TAP, or is
//! too long) and whose message says which it is.

use std::ffi::CStr;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use aa_runtime::{Packet, PacketPool, PoolPacket};

use super::pcap::{PcapWriter, TsPrecision};
use super::{Burst, IoError, PacketIo, Rx, RxChecksum, RxMeta, Timestamp};
use crate::link::MacAddr;
use crate::wire::LinkType;

/// Where the TUN/TAP clone device lives.
pub const TUN_PATH: &str = "/dev/net/tun";

const TUN_CPATH: &CStr = c"/dev/net/tun";

/// Bytes of the kernel's `struct virtio_net_hdr` (flags, gso_type, hdr_len,
/// gso_size, csum_start, csum_offset; no `num_buffers`), little-endian.
const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is for the device to finish.
const VNET_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was checked.
const VNET_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_TCPV4` and `_TCPV6`: a frame of several TCP segments.
const VNET_GSO_TCPV4: u8 = 1;
const VNET_GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`, or-ed into the GSO type.
const VNET_GSO_ECN: u8 = 0x80;

/// The longest frame [`TapIo::open_large_receive`] can bring: an IP packet
/// of 65535 bytes and its Ethernet header.
pub const LARGE_FRAME: usize = 65535 + 14;

/// The virtio-net header of an outgoing frame: for an untagged IPv4/TCP
/// frame, `NEEDS_CSUM` with the TCP checksum's place (`csum_start` the TCP
/// header, `csum_offset` 16), and, when its payload is longer than `seg`
/// (the frame's [`PoolPacket::tx_segment_size`], 0 for none), `GSO_TCPV4`
/// for the kernel to cut it into segments of `seg` bytes (`gso_size`) behind
/// copies of its headers (`hdr_len` bytes); none for the others, which carry
/// their own checksums.
fn vnet_header(frame: &[u8], seg: u16) -> [u8; VNET_HDR_LEN] {
    let mut h = [0u8; VNET_HDR_LEN];
    if let Some(l3) = crate::wire::ipv4_tcp_header_len(frame) {
        // At most 14 + 60.
        let start = 14 + l3;
        h[0] = VNET_NEEDS_CSUM;
        h[6..8].copy_from_slice(&(start as u16).to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        // At most 14 + 60 + 60; `ipv4_tcp_header_len` saw 20 TCP bytes.
        let headers = start + usize::from(frame[start + 12] >> 4) * 4;
        if seg > 0 && frame.len() > headers + usize::from(seg) {
            h[1] = VNET_GSO_TCPV4;
            h[2..4].copy_from_slice(&(headers as u16).to_le_bytes());
            h[4..6].copy_from_slice(&seg.to_le_bytes());
        }
    }
    h
}

/// A pcap writer for [`TapIo`]'s capture of every frame in and out.
pub type Capture = PcapWriter<Box<dyn Write>>;

/// Counters of a [`TapIo`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes of the frames received.
    pub rx_bytes: u64,
    /// Frames dropped because they do not fit in a pool buffer.
    pub rx_too_long: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes of the frames sent.
    pub tx_bytes: u64,
    /// Frames the kernel refused (too short, too long, interface down):
    /// dropped.
    pub tx_refused: u64,
    /// Sends that stopped because the device could take no more.
    pub tx_full: u64,
    /// Frames the capture failed to write.
    pub capture_errors: u64,
    /// Frames received whose checksums the kernel vouched for (with
    /// [`TapIo::open_offloading`]).
    pub rx_checksum_good: u64,
    /// Frames sent with their TCP checksum left to the kernel (with
    /// [`TapIo::open_offloading`]).
    pub tx_checksum_offloaded: u64,
    /// Frames received that hold several TCP segments of the MTU's size
    /// (with [`TapIo::open_large_receive`]).
    pub rx_large: u64,
    /// Frames sent for the kernel to cut into TCP segments (transmit
    /// segmentation offload, with [`TapIo::open_offloading`] or
    /// [`TapIo::open_large_receive`]).
    pub tx_large: u64,
}

/// A TAP device: Ethernet frames to and from the kernel.
pub struct TapIo {
    fd: OwnedFd,
    name: String,
    mac: MacAddr,
    pool: PacketPool,
    stats: TapStats,
    capture: Option<Capture>,
    /// An error met after packets were already delivered, for the next call.
    pending: Option<IoError>,
    offload: Offload,
}

/// What a [`TapIo`] asked the kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offload {
    /// Nothing: plain frames ([`TapIo::open`]).
    None,
    /// Checksums both ways: a virtio-net header before every frame
    /// ([`TapIo::open_offloading`]).
    Checksum,
    /// That, and frames of several TCP segments from the kernel
    /// ([`TapIo::open_large_receive`]).
    LargeReceive,
}

impl Offload {
    /// Whether frames carry the virtio-net header.
    fn vnet(self) -> bool {
        self != Offload::None
    }
}

impl std::fmt::Debug for TapIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapIo")
            .field("fd", &self.fd)
            .field("name", &self.name)
            .field("mac", &self.mac)
            .field("pool", &self.pool)
            .field("stats", &self.stats)
            .field("offload", &self.offload)
            .field("capture", &self.capture.is_some())
            .finish()
    }
}

/// An `IoError::Os` of `err`'s kind whose message starts with `what`.
fn os_error(err: std::io::Error, what: impl std::fmt::Display) -> IoError {
    IoError::Os(std::io::Error::new(err.kind(), format!("{what}: {err}")))
}

fn ifreq_named(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data (bytes, integers, a union of them and a
    // pointer nobody reads): all zeros is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr
}

impl TapIo {
    /// Attaches to the TAP device `name` in the caller's network namespace,
    /// creating it if there is none (an empty `name` lets the kernel choose
    /// `tapN`; see [`name`](Self::name)). Frames are received into `pool`,
    /// whose buffers should hold the interface's MTU plus 14 bytes (1514 for
    /// the default 1500).
    pub fn open(name: &str, pool: PacketPool) -> Result<TapIo, IoError> {
        Self::attach(name, pool, Offload::None)
    }

    /// [`open`](Self::open) with checksum offload both ways (see the module
    /// documentation): the kernel's virtio-net header on every frame.
    pub fn open_offloading(name: &str, pool: PacketPool) -> Result<TapIo, IoError> {
        Self::attach(name, pool, Offload::Checksum)
    }

    /// [`open_offloading`](Self::open_offloading) with receive segmentation
    /// offload too (see the module documentation): TCP frames from the
    /// kernel of up to [`LARGE_FRAME`] bytes, which `pool`'s buffers must
    /// hold (else `InvalidInput`).
    pub fn open_large_receive(name: &str, pool: PacketPool) -> Result<TapIo, IoError> {
        if pool.buf_size() < LARGE_FRAME {
            return Err(IoError::Os(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "large receive on {name:?} brings frames of up to {LARGE_FRAME} bytes; \
                     the pool's buffers hold {}",
                    pool.buf_size()
                ),
            )));
        }
        Self::attach(name, pool, Offload::LargeReceive)
    }

    fn attach(name: &str, pool: PacketPool, offload: Offload) -> Result<TapIo, IoError> {
        if name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0 || b == b'/') {
            return Err(IoError::Os(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "bad interface name {name:?}: at most {} bytes, no NUL or '/'",
                    libc::IFNAMSIZ - 1
                ),
            )));
        }
        // SAFETY: a NUL-terminated path and plain flags.
        let raw = unsafe {
            libc::open(
                TUN_CPATH.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            let err = std::io::Error::last_os_error();
            let what = match err.kind() {
                ErrorKind::NotFound => format!(
                    "cannot open {TUN_PATH}: no TUN/TAP support here (load the tun module, \
                     or give the container the device)"
                ),
                ErrorKind::PermissionDenied => {
                    format!("not permitted to open {TUN_PATH} (needs root or CAP_NET_ADMIN)")
                }
                _ if err.raw_os_error() == Some(libc::ENODEV)
                    || err.raw_os_error() == Some(libc::ENXIO) =>
                {
                    format!("cannot open {TUN_PATH}: no TUN/TAP driver in this kernel")
                }
                _ => format!("cannot open {TUN_PATH}"),
            };
            return Err(os_error(err, what));
        }
        // SAFETY: `raw` is a descriptor just opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut ifr = ifreq_named(name);
        let vnet_flag = if offload.vnet() {
            libc::IFF_VNET_HDR
        } else {
            0
        };
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet_flag) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which lives here.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) } < 0 {
            let err = std::io::Error::last_os_error();
            let what = match err.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => format!(
                    "not permitted to create or attach TAP device {name:?} (needs \
                     CAP_NET_ADMIN, or the device belongs to another user or group)"
                ),
                Some(libc::EBUSY) => {
                    format!("TAP device {name:?} is busy: another process has it open")
                }
                Some(libc::EINVAL) => format!(
                    "cannot attach {name:?}: a device of that name exists and is not a TAP \
                     device"
                ),
                _ => format!("cannot create or attach TAP device {name:?} (TUNSETIFF)"),
            };
            return Err(os_error(err, what));
        }
        let name: String = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        if offload.vnet() {
            let size = VNET_HDR_LEN as libc::c_int;
            let large = offload == Offload::LargeReceive;
            let tso = if large {
                libc::TUN_F_TSO4 | libc::TUN_F_TSO6
            } else {
                0
            };
            // SAFETY: TUNSETVNETHDRSZ reads one int, TUNSETOFFLOAD takes its
            // flags by value.
            let set = unsafe {
                libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ as _, &size) == 0
                    && libc::ioctl(
                        fd.as_raw_fd(),
                        libc::TUNSETOFFLOAD as _,
                        (libc::TUN_F_CSUM | tso) as libc::c_ulong,
                    ) == 0
            };
            if !set {
                let err = std::io::Error::last_os_error();
                let what = if large {
                    "checksum and segmentation"
                } else {
                    "checksum"
                };
                return Err(os_error(
                    err,
                    format!("cannot set {what} offload on TAP device {name:?}"),
                ));
            }
        }

        // The kernel answers SIOCGIFHWADDR on a tun descriptor by looking the
        // name up in the namespace the descriptor was opened in: ask now,
        // before the device can move.
        let mut ifr = ifreq_named(&name);
        // SAFETY: SIOCGIFHWADDR fills one ifreq, which lives here.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut ifr) } < 0 {
            let err = std::io::Error::last_os_error();
            return Err(os_error(
                err,
                format!("cannot read the MAC address of {name:?}"),
            ));
        }
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_data };
        let mac = MacAddr([
            sa[0] as u8,
            sa[1] as u8,
            sa[2] as u8,
            sa[3] as u8,
            sa[4] as u8,
            sa[5] as u8,
        ]);

        Ok(TapIo {
            fd,
            name,
            mac,
            pool,
            stats: TapStats::default(),
            capture: None,
            pending: None,
            offload,
        })
    }

    /// The interface's name (the kernel's choice when `open` got `""`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MAC address of the kernel's side of the device, as it was when
    /// the device was opened: the peer's address, not one to send from.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The descriptor, for `poll`/`epoll` (readable: a frame is waiting).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The pool frames are received into.
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }

    /// The counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// Makes the device outlive this `TapIo` (`true`) or go away when the
    /// last descriptor on it closes (`false`, the default for a device that
    /// `open` created).
    pub fn set_persist(&self, persist: bool) -> Result<(), IoError> {
        // SAFETY: TUNSETPERSIST takes its argument by value.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::TUNSETPERSIST as _,
                libc::c_ulong::from(persist),
            )
        };
        if r < 0 {
            let err = std::io::Error::last_os_error();
            return Err(os_error(
                err,
                format!("cannot set persistence of {:?}", self.name),
            ));
        }
        Ok(())
    }

    /// Waits until a frame can be received or `timeout` passes (rounded up
    /// to a millisecond); returns whether one can. A signal ends the wait
    /// early with `false`.
    pub fn wait(&self, timeout: Duration) -> Result<bool, IoError> {
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, which lives here.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(os_error(err, format!("poll on TAP device {:?}", self.name)));
        }
        // POLLERR/POLLHUP count as ready: the next receive reports them.
        Ok(r > 0 && pfd.revents != 0)
    }

    /// Starts writing every frame received and sent to `capture` (or stops,
    /// with `None`); returns the capture there was, to
    /// [`finish`](PcapWriter::finish).
    pub fn set_capture(&mut self, capture: Option<Capture>) -> Option<Capture> {
        std::mem::replace(&mut self.capture, capture)
    }

    /// Captures every frame received and sent to a new pcap file (Ethernet,
    /// nanosecond timestamps) at `path`; `set_capture(None)` ends it.
    pub fn capture_to_file(&mut self, path: impl AsRef<Path>) -> Result<(), IoError> {
        let path = path.as_ref();
        let file = File::create(path)
            .map_err(|e| os_error(e, format!("cannot create {}", path.display())))?;
        let out: Box<dyn Write> = Box::new(BufWriter::new(file));
        let w = PcapWriter::pcap(out, LinkType::Ethernet, TsPrecision::Nano)?;
        if let Some(old) = self.set_capture(Some(w)) {
            old.finish()?;
        }
        Ok(())
    }

    fn record(&mut self, ts: Timestamp, frame: &[u8]) {
        if let Some(c) = &mut self.capture {
            if c.write(ts, frame).is_err() {
                self.stats.capture_errors += 1;
            }
        }
    }

    fn read_error(&self, err: std::io::Error) -> IoError {
        let what = if err.raw_os_error() == Some(libc::EBADFD) {
            format!("TAP device {:?} is gone", self.name)
        } else {
            format!("read from TAP device {:?}", self.name)
        };
        os_error(err, what)
    }
}

impl AsFd for TapIo {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TapIo {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PacketIo for TapIo {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let mut n = 0;
        let mut ts = None;
        while out.room() > 0 {
            let mut buf = match self.pool.alloc() {
                Ok(b) => b,
                Err(e) if n == 0 => return Err(IoError::Pool(e)),
                Err(_) => break,
            };
            let space = buf.space();
            let cap = space.len();
            let mut spill = [0u8; 1];
            let mut hdr = [0u8; VNET_HDR_LEN];
            let hlen = if self.offload.vnet() { VNET_HDR_LEN } else { 0 };
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: hlen,
                },
                libc::iovec {
                    iov_base: space.as_mut_ptr().cast(),
                    iov_len: cap,
                },
                libc::iovec {
                    iov_base: spill.as_mut_ptr().cast(),
                    iov_len: spill.len(),
                },
            ];
            // SAFETY: the iovecs point at writable memory of their length
            // that outlives the call.
            let r = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 3) };
            if r < 0 {
                let err = std::io::Error::last_os_error();
                match err.kind() {
                    ErrorKind::WouldBlock => break,
                    ErrorKind::Interrupted => continue,
                    _ => {
                        let e = self.read_error(err);
                        if n == 0 {
                            return Err(e);
                        }
                        self.pending = Some(e);
                        break;
                    }
                }
            }
            // A frame of several segments is taken only if asked for.
            let len = (r as usize).saturating_sub(hlen);
            let gso = hdr[1] & !VNET_GSO_ECN;
            let large = gso == VNET_GSO_TCPV4 || gso == VNET_GSO_TCPV6;
            if len > cap || (hdr[1] != 0 && !(self.offload == Offload::LargeReceive && large)) {
                self.stats.rx_too_long += 1;
                continue;
            }
            self.stats.rx_large += u64::from(large);
            let checksum = if hdr[0] & (VNET_NEEDS_CSUM | VNET_DATA_VALID) != 0 {
                // Written by the kernel itself, or checked by it.
                self.stats.rx_checksum_good += 1;
                RxChecksum::Good
            } else {
                RxChecksum::Unknown
            };
            let ts = *ts.get_or_insert_with(Timestamp::now);
            let packet = buf.freeze(len);
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
            if self.capture.is_some() {
                self.record(ts, packet.data());
            }
            let meta = RxMeta {
                ts,
                link: LinkType::Ethernet,
                wire_len: len as u32,
                iface: 0,
                checksum,
            };
            // Room was checked above.
            let _ = out.push(Rx { packet, meta });
            n += 1;
        }
        Ok(n)
    }

    /// Sends from the front of `pkts`; returns how many the device took, sent
    /// or refused (a refused frame is dropped and counted in
    /// [`TapStats::tx_refused`]). On `EAGAIN` the rest stay in `pkts`. Any
    /// other error ends the call with `Err`, the frames taken before it
    /// removed from `pkts`.
    fn send_burst(&mut self, pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        let mut taken = 0;
        let mut result = Ok(());
        let mut ts = None;
        for p in pkts.iter() {
            let data = p.data();
            let hdr = if self.offload.vnet() {
                vnet_header(data, p.tx_segment_size())
            } else {
                [0; VNET_HDR_LEN]
            };
            let hlen = if self.offload.vnet() { VNET_HDR_LEN } else { 0 };
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_ptr() as *mut _,
                    iov_len: hlen,
                },
                libc::iovec {
                    iov_base: data.as_ptr() as *mut _,
                    iov_len: data.len(),
                },
            ];
            // SAFETY: the iovecs point at readable memory of their length
            // that outlives the call; writev does not write through them.
            let r = loop {
                let r = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
                if r >= 0 {
                    break Ok(r as usize);
                }
                let err = std::io::Error::last_os_error();
                if err.kind() != ErrorKind::Interrupted {
                    break Err(err);
                }
            };
            match r {
                Ok(_) => {
                    self.stats.tx_packets += 1;
                    self.stats.tx_checksum_offloaded += u64::from(hdr[0] == VNET_NEEDS_CSUM);
                    self.stats.tx_large += u64::from(hdr[1] == VNET_GSO_TCPV4);
                    self.stats.tx_bytes += data.len() as u64;
                    if self.capture.is_some() {
                        let t = *ts.get_or_insert_with(Timestamp::now);
                        self.record(t, data);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stats.tx_full += 1;
                    break;
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL) | Some(libc::EMSGSIZE) | Some(libc::EIO)
                    ) =>
                {
                    self.stats.tx_refused += 1;
                }
                Err(e) => {
                    let what = if e.raw_os_error() == Some(libc::EBADFD) {
                        format!("TAP device {:?} is gone", self.name)
                    } else {
                        format!("write to TAP device {:?}", self.name)
                    };
                    result = Err(os_error(e, what));
                    break;
                }
            }
            taken += 1;
        }
        pkts.drain(..taken);
        result.map(|()| taken)
    }

    /// With [`TapIo::open_offloading`]: the kernel takes the TCP checksum
    /// of each IPv4/TCP frame sent as the pseudo-header's sum to finish
    /// (`NEEDS_CSUM`); every such frame sent must hold it.
    fn tx_checksum_offload(&self) -> bool {
        self.offload.vnet()
    }

    /// With the virtio-net header ([`TapIo::open_offloading`],
    /// [`TapIo::open_large_receive`]): the kernel cuts a TCP frame marked
    /// with a segment size ([`PoolPacket::set_tx_segment_size`]) into
    /// segments of that size, as a NIC with TSO would.
    fn tx_segmentation(&self) -> bool {
        self.offload.vnet()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_system_call() {
        let pool = PacketPool::new(1, 64);
        for name in ["sixteen-chars-xx", "a/b", "nul\0"] {
            match TapIo::open(name, pool.clone()) {
                Err(IoError::Os(e)) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name:?}");
                    assert!(e.to_string().contains("bad interface name"), "{e}");
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn large_receive_needs_buffers_for_64_kib_frames() {
        let pool = PacketPool::new(1, 2048);
        match TapIo::open_large_receive("aa-lro", pool.clone()) {
            Err(IoError::Os(e)) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput);
                let msg = e.to_string();
                assert!(msg.contains("65549") && msg.contains("2048"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(pool.is_full());
    }

    /// A TCP frame of 3,000 payload bytes behind 14 + 20 + 32 header bytes.
    fn tcp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32 + 3000];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[14 + 20 + 12] = 8 << 4;
        f
    }

    #[test]
    fn frames_longer_than_their_segment_size_go_out_for_the_kernel_to_cut() {
        let f = tcp_frame();
        let le = |h: &[u8], at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        // Segments of 1448: GSO_TCPV4, 66 header bytes, gso_size 1448, and
        // the checksum for the kernel as with any TCP frame.
        let h = vnet_header(&f, 1448);
        assert_eq!((h[0], h[1]), (VNET_NEEDS_CSUM, VNET_GSO_TCPV4));
        assert_eq!((le(&h, 2), le(&h, 4)), (66, 1448));
        assert_eq!((le(&h, 6), le(&h, 8)), (34, 16));
        // No segment size, or one the payload fits in: sent as it is.
        for seg in [0, 3000, 4000] {
            let h = vnet_header(&f, seg);
            assert_eq!(
                (h[0], h[1], le(&h, 2), le(&h, 4)),
                (VNET_NEEDS_CSUM, 0, 0, 0)
            );
        }
        // Not TCP: nothing for the kernel to do.
        let mut udp = f.clone();
        udp[23] = 17;
        assert_eq!(vnet_header(&udp, 1448), [0; VNET_HDR_LEN]);
    }

    #[test]
    fn a_buffer_back_in_the_pool_forgets_its_segment_size() {
        let pool = PacketPool::new(1, 64);
        let p = pool.packet_from(&[1, 2, 3]).unwrap();
        p.set_tx_segment_size(1448);
        assert_eq!(p.tx_segment_size(), 1448);
        drop(p);
        let q = pool.packet_from(&[1, 2, 3]).unwrap();
        assert_eq!(q.tx_segment_size(), 0);
        drop(q);
        assert!(pool.is_full());
    }
}
