//! A DPDK Ethernet port behind the burst packet-I/O trait, with one or
//! several receive/transmit queue pairs.

use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{DpdkError, Eal};
use super::mbuf::{MbufPacket, Mempool};
use crate::io::alloc::FrameAlloc;
use crate::io::{Burst, IoError, PacketIo, Rx, RxChecksum, RxMeta, Timestamp};
use crate::wire::LinkType;

/// `RTE_ETH_RSS_IP`: IPv4 and IPv6 addresses, fragments and other protocols.
pub const RSS_IP: u64 =
    (1 << 2) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 13) | (1 << 15);
/// `RTE_ETH_RSS_TCP`: TCP over IPv4 and IPv6, addresses and ports.
pub const RSS_TCP: u64 = (1 << 4) | (1 << 10) | (1 << 16);
/// `RTE_ETH_RX_OFFLOAD_RSS_HASH`: the device writes its hash into the mbuf.
const RX_OFFLOAD_RSS_HASH: u64 = 1 << 19;
/// `RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM`: the device
/// checks IPv4 header and TCP checksums and says so in `ol_flags`.
const RX_OFFLOAD_CKSUM: u64 = (1 << 1) | (1 << 3);
/// `RTE_ETH_TX_OFFLOAD_TCP_CKSUM`.
const TX_OFFLOAD_CKSUM: u64 = 1 << 3;
/// `RTE_MBUF_F_RX_IP_CKSUM_*` (mask, bad, good) and `RTE_MBUF_F_RX_L4_CKSUM_*`.
const RX_IP_CKSUM_MASK: u64 = (1 << 4) | (1 << 7);
const RX_IP_CKSUM_BAD: u64 = 1 << 4;
const RX_L4_CKSUM_MASK: u64 = (1 << 3) | (1 << 8);
const RX_L4_CKSUM_BAD: u64 = 1 << 3;
const RX_L4_CKSUM_GOOD: u64 = 1 << 8;
/// `RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4` (the IPv4 header's
/// checksum is the sender's).
const TX_TCP_IPV4_CKSUM: u64 = (1 << 52) | (1 << 55);

/// What the receive flags of an mbuf (`ol_flags`) say of its checksums.
///
/// Good when the device found the TCP checksum good (or vouches for the
/// data where the field is not filled in: `L4_CKSUM_NONE`) and did not find
/// the IPv4 header checksum bad; bad when it found either bad; unknown
/// when it said nothing of the TCP checksum (no offload, or not TCP).
pub fn rx_checksum(ol_flags: u64) -> RxChecksum {
    let ip_bad = ol_flags & RX_IP_CKSUM_MASK == RX_IP_CKSUM_BAD;
    match ol_flags & RX_L4_CKSUM_MASK {
        _ if ip_bad => RxChecksum::Bad,
        RX_L4_CKSUM_BAD => RxChecksum::Bad,
        // NONE is both bits: the data is known intact.
        RX_L4_CKSUM_GOOD | RX_L4_CKSUM_MASK => RxChecksum::Good,
        _ => RxChecksum::Unknown,
    }
}

/// Marks an Ethernet frame for transmit checksum offload, if it is an
/// untagged IPv4/TCP frame: sets `RTE_MBUF_F_TX_IPV4 | TX_TCP_CKSUM` in
/// `ol_flags` and the header lengths (`l2_len` 14, `l3_len` the IPv4
/// header's) in `tx_offload`. The TCP checksum field must hold the
/// pseudo-header's sum; the IPv4 header's checksum stays the sender's.
/// Other frames (ARP, ICMP) carry their own checksums and are left alone.
/// Returns whether it marked.
///
/// # Safety
/// `m` is a valid single-segment mbuf that no one else reads or writes.
pub unsafe fn mark_tx_checksum(m: *mut sys::rte_mbuf) -> bool {
    let data = std::slice::from_raw_parts(
        ((*m).buf_addr as *const u8).add(usize::from((*m).data_off)),
        usize::from((*m).data_len),
    );
    let Some(l3) = crate::wire::ipv4_tcp_header_len(data) else {
        return false;
    };
    let l3 = l3 as u64;
    (*m).ol_flags |= TX_TCP_IPV4_CKSUM;
    // `tx_offload`: l2_len in bits 0..7, l3_len in bits 7..16.
    (*m).__bindgen_anon_3.tx_offload = 14 | (l3 << 7);
    true
}

/// The Toeplitz key byte pair that makes receive-side scaling symmetric.
///
/// With a key of period 16 bits (`6d 5a` repeated), the Toeplitz hash of
/// (source address, destination address, source port, destination port) is
/// the same as that of the swapped tuple, for IPv4 and IPv6: each field
/// starts at a bit offset that is a multiple of 16, so swapping two fields of
/// equal length swaps key windows that are equal. Both directions of a
/// connection then land on one queue (Woo and Park, "Scalable TCP Session
/// Monitoring with Symmetric Receive-side Scaling", 2012).
pub const SYMMETRIC_RSS_KEY_PAIR: [u8; 2] = [0x6d, 0x5a];

/// How a [`Port`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive descriptors (ring size) of each receive queue; the driver may
    /// round it (`rte_eth_dev_adjust_nb_rx_tx_desc`).
    pub rx_desc: u16,
    /// Transmit descriptors of each transmit queue.
    pub tx_desc: u16,
    /// Receive/transmit queue pairs (1 by default): queue pair `q` is
    /// receive queue `q` and transmit queue `q`.
    pub queues: u16,
    /// With more than one queue, spread received packets over the queues by
    /// the device's receive-side scaling when it has any (on by default); see
    /// [`Port::rss`].
    pub rss: bool,
    /// Receive every frame whatever its destination MAC address
    /// (`rte_eth_promiscuous_enable`; off by default): what passive
    /// inspection of a mirror port or a tap needs. Devices without the
    /// setting (most virtual ones, which pass every frame anyway) are left
    /// as they are.
    pub promiscuous: bool,
    /// Leave the TCP checksums of sent IPv4/TCP frames to the device, when
    /// it can complete them (off by default; see
    /// [`Port::tx_checksum_offload`]). Every such frame sent through the
    /// port must then hold the pseudo-header's sum in the TCP checksum, as
    /// [`tcp::Stack`](crate::tcp::Stack) writes it when the device says
    /// [`PacketIo::tx_checksum_offload`]: frames with finished checksums
    /// would go out wrong. (Receive checksum
    /// offload needs no setting: it is on whenever the device has it, and
    /// each frame's [`RxMeta::checksum`] says what the device found.)
    pub tx_checksum_offload: bool,
    /// The port's MTU in bytes of IP, for jumbo frames (`rte_eth_conf`'s
    /// `rxmode.mtu`; `None`, the default, leaves the device's own, 1500 for
    /// most). Frames are received whole into one mbuf, so the pool's
    /// [`frame_room`](crate::io::alloc::FrameAlloc::frame_room) must hold
    /// the MTU plus the Ethernet header: [`Port::open`] refuses a pool too
    /// small ([`DpdkError::TooLong`]) and an MTU outside the device's range
    /// ([`DpdkError::Mtu`]). Give the stack a matching
    /// [`StackConfig::mss`](crate::tcp::StackConfig::mss) (the MTU less 40).
    pub mtu: Option<u16>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_desc: 512,
            tx_desc: 512,
            queues: 1,
            rss: true,
            promiscuous: false,
            tx_checksum_offload: false,
            mtu: None,
        }
    }
}

/// The receive-side scaling a [`Port`] was set up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rss {
    /// Hash types in use (`RTE_ETH_RSS_*` bits): those of [`RSS_IP`] and
    /// [`RSS_TCP`] the device supports.
    pub hash_types: u64,
    /// Whether the device holds the symmetric key (read back with
    /// `rte_eth_dev_rss_hash_conf_get`): with the Toeplitz hash (most NICs'
    /// default), both directions of a connection go to one queue. `false`
    /// when the device would not take the key or cannot tell its key; then
    /// the two directions may go to two queues.
    pub symmetric: bool,
    /// Whether the device writes its hash into each mbuf
    /// ([`MbufPacket::rss_hash`]).
    pub hash_in_mbuf: bool,
}

/// What every queue handle of one port shares; the last one stops the port.
#[derive(Debug)]
struct PortShared {
    id: u16,
    pool: Mempool,
    queues: u16,
    rss: Option<Rss>,
    /// Receive checksum offload on.
    rx_cksum: bool,
    /// Transmit checksum offload on.
    tx_cksum: bool,
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // SAFETY: a started port; no queue handle is left to poll it.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
        }
    }
}

/// One started DPDK port with one or more receive/transmit queue pairs,
/// receiving into a [`Mempool`].
///
/// The port itself is a [`PacketIo`] on queue pair 0. Each queue pair is a
/// [`PortQueue`], also a [`PacketIo`], which can be moved to its own thread
/// ([`Port::queues_mut`] for scoped threads, [`Port::into_queues`] to own
/// them): one stack per core, each polling its own queues, no locks.
///
/// `recv_burst` is one `rte_eth_rx_burst` per call, `send_burst` one
/// `rte_eth_tx_burst`; neither allocates once its pointer array has grown to
/// the largest burst asked for. Received frames are Ethernet. The port is
/// stopped (`rte_eth_dev_stop`) when the port and all its queue handles are
/// dropped; it can be opened again.
///
/// A real NIC keeps up to `rx_desc` mbufs of the pool in each receive ring
/// while the port is started: [`Mempool::is_full`] holds again only once the
/// port is stopped. The `net_ring` and `net_null` virtual devices keep none.
#[derive(Debug)]
pub struct Port {
    /// Queue pairs 0.., never empty.
    queues: Vec<PortQueue>,
}

fn check(what: &'static str, ret: i32) -> Result<(), DpdkError> {
    if ret < 0 {
        Err(DpdkError::call(what, ret))
    } else {
        Ok(())
    }
}

/// The symmetric key, `len` bytes long.
fn symmetric_key(len: usize) -> Vec<u8> {
    SYMMETRIC_RSS_KEY_PAIR
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// An RSS configuration with `key` (none if empty) and hash types `hf`; the
/// fields of later DPDK versions (`algorithm`) stay zero, their default.
fn rss_conf(key: &mut [u8], hf: u64) -> sys::rte_eth_rss_conf {
    // SAFETY: a plain C struct, zero being DPDK's default for every field.
    let mut conf: sys::rte_eth_rss_conf = unsafe { std::mem::zeroed() };
    if !key.is_empty() {
        conf.rss_key = key.as_mut_ptr();
        // The device's key size is a u8.
        conf.rss_key_len = key.len() as u8;
    }
    conf.rss_hf = hf;
    conf
}

impl Port {
    /// Configures port `id` (`rte_eth_dev_configure`) with `cfg.queues`
    /// receive and transmit queues, sets up each receive queue to receive
    /// into `pool`, and starts it.
    ///
    /// With more than one queue, `cfg.rss` on and a device that reports
    /// hash types (`flow_type_rss_offloads`), receive-side scaling is on:
    /// `RTE_ETH_MQ_RX_RSS` over the IP and TCP hash types the device
    /// supports, with the symmetric key ([`SYMMETRIC_RSS_KEY_PAIR`] repeated
    /// to the device's key size, 40 bytes if it does not tell one, then
    /// given only through the update), installed again with
    /// `rte_eth_dev_rss_hash_update` after start for devices that ignore the
    /// key given at configuration, and read back ([`Rss::symmetric`]).
    /// Otherwise the device decides which queue a frame lands on (`net_ring`:
    /// what was sent on queue `q` comes back on queue `q`); spread flows in
    /// software with [`flow_worker`](super::flow_worker) and a
    /// [`Dispatcher`](super::Dispatcher).
    pub fn open(_eal: &Eal, id: u16, pool: &Mempool, cfg: PortConfig) -> Result<Port, DpdkError> {
        // SAFETY (every call below): EAL is running and `id` is checked
        // first; the configuration structs are plain data, zero being DPDK's
        // defaults, and they and the key outlive the calls.
        unsafe {
            if sys::rte_eth_dev_is_valid_port(id) == 0 {
                return Err(DpdkError::NoSuchPort(format!("port {id}")));
            }
            let mut info: sys::rte_eth_dev_info = std::mem::zeroed();
            check(
                "rte_eth_dev_info_get",
                sys::rte_eth_dev_info_get(id, &mut info),
            )?;
            let max = info.max_rx_queues.min(info.max_tx_queues);
            if cfg.queues == 0 || cfg.queues > max {
                return Err(DpdkError::Queues {
                    asked: cfg.queues,
                    max,
                });
            }
            let mut conf: sys::rte_eth_conf = std::mem::zeroed();
            let hash_types = info.flow_type_rss_offloads & (RSS_IP | RSS_TCP);
            let want_rss = cfg.queues > 1 && cfg.rss && hash_types != 0;
            // DPDK wants a key given at configuration to be exactly the size
            // the device tells; a device that tells none gets no key there,
            // only the 40 bytes of the usual Toeplitz key through the update
            // below, which it may refuse.
            let key_size = usize::from(info.hash_key_size);
            let mut key = symmetric_key(if key_size == 0 { 40 } else { key_size });
            let hash_in_mbuf = want_rss && info.rx_offload_capa & RX_OFFLOAD_RSS_HASH != 0;
            if want_rss {
                conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                let key_at_configure = if key_size == 0 {
                    &mut [][..]
                } else {
                    &mut key[..]
                };
                conf.rx_adv_conf.rss_conf = rss_conf(key_at_configure, hash_types);
                if hash_in_mbuf {
                    conf.rxmode.offloads |= RX_OFFLOAD_RSS_HASH;
                }
            }
            let rx_cksum = info.rx_offload_capa & RX_OFFLOAD_CKSUM == RX_OFFLOAD_CKSUM;
            if rx_cksum {
                conf.rxmode.offloads |= RX_OFFLOAD_CKSUM;
            }
            let tx_cksum = cfg.tx_checksum_offload
                && info.tx_offload_capa & TX_OFFLOAD_CKSUM == TX_OFFLOAD_CKSUM;
            if tx_cksum {
                conf.txmode.offloads |= TX_OFFLOAD_CKSUM;
            }
            if let Some(mtu) = cfg.mtu {
                // What ethdev checks at configuration: the MTU within the
                // device's range, and the frame (the MTU and the device's
                // overhead: its own figure, else header and CRC) within its
                // longest.
                let overhead =
                    if info.max_mtu != u16::MAX && info.max_rx_pktlen > u32::from(info.max_mtu) {
                        info.max_rx_pktlen - u32::from(info.max_mtu)
                    } else {
                        18
                    };
                let max = u32::from(info.max_mtu).min(info.max_rx_pktlen.saturating_sub(overhead));
                if mtu < info.min_mtu || u32::from(mtu) > max {
                    return Err(DpdkError::Mtu {
                        asked: mtu,
                        min: info.min_mtu,
                        max: max as u16,
                    });
                }
                let room = pool.frame_room();
                if usize::from(mtu) + 14 > room {
                    return Err(DpdkError::TooLong {
                        len: usize::from(mtu) + 14,
                        room,
                    });
                }
                conf.rxmode.mtu = u32::from(mtu);
            }
            check(
                "rte_eth_dev_configure",
                sys::rte_eth_dev_configure(id, cfg.queues, cfg.queues, &conf),
            )?;
            let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
            check(
                "rte_eth_dev_adjust_nb_rx_tx_desc",
                sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc),
            )?;
            // SOCKET_ID_ANY (-1) when the port has no NUMA node; DPDK takes
            // it as an unsigned int.
            let socket = sys::rte_eth_dev_socket_id(id) as u32;
            for q in 0..cfg.queues {
                check(
                    "rte_eth_rx_queue_setup",
                    sys::rte_eth_rx_queue_setup(
                        id,
                        q,
                        rx_desc,
                        socket,
                        std::ptr::null(),
                        pool.as_ptr(),
                    ),
                )?;
                check(
                    "rte_eth_tx_queue_setup",
                    sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null()),
                )?;
            }
            check("rte_eth_dev_start", sys::rte_eth_dev_start(id))?;
            if cfg.promiscuous {
                let ret = sys::rte_eth_promiscuous_enable(id);
                if ret != -libc::ENOTSUP {
                    if let Err(e) = check("rte_eth_promiscuous_enable", ret) {
                        sys::rte_eth_dev_stop(id);
                        return Err(e);
                    }
                }
            }
            let rss = want_rss.then(|| {
                let symmetric = Self::rss_key_is(id, &key) || {
                    // Devices that take the key only through the update.
                    let mut update = rss_conf(&mut key, hash_types);
                    sys::rte_eth_dev_rss_hash_update(id, &mut update) == 0
                        && Self::rss_key_is(id, &key)
                };
                Rss {
                    hash_types,
                    symmetric,
                    hash_in_mbuf,
                }
            });
            let shared = Arc::new(PortShared {
                id,
                pool: pool.clone(),
                queues: cfg.queues,
                rss,
                rx_cksum,
                tx_cksum,
            });
            Ok(Port {
                queues: (0..cfg.queues)
                    .map(|q| PortQueue {
                        shared: Arc::clone(&shared),
                        queue: q,
                        scratch: Vec::new(),
                        multi_segment: 0,
                    })
                    .collect(),
            })
        }
    }

    /// Whether the device reports `key` as its RSS key.
    ///
    /// # Safety
    /// `id` is a configured port.
    unsafe fn rss_key_is(id: u16, key: &[u8]) -> bool {
        let mut got = vec![0u8; key.len()];
        let mut conf = rss_conf(&mut got, 0);
        sys::rte_eth_dev_rss_hash_conf_get(id, &mut conf) == 0 && got == key
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.queues[0].shared.id
    }

    /// The pool the port receives into.
    pub fn pool(&self) -> &Mempool {
        &self.queues[0].shared.pool
    }

    /// Number of receive/transmit queue pairs.
    pub fn queue_count(&self) -> u16 {
        self.queues[0].shared.queues
    }

    /// The receive-side scaling in use; `None` with one queue, with
    /// [`PortConfig::rss`] off, or on a device without RSS.
    pub fn rss(&self) -> Option<Rss> {
        self.queues[0].shared.rss
    }

    /// The port's MTU (`rte_eth_dev_get_mtu`): [`PortConfig::mtu`], or the
    /// device's own.
    pub fn mtu(&self) -> Result<u16, DpdkError> {
        let mut mtu = 0u16;
        // SAFETY: a started port; one u16 written.
        check("rte_eth_dev_get_mtu", unsafe {
            sys::rte_eth_dev_get_mtu(self.id(), &mut mtu)
        })?;
        Ok(mtu)
    }

    /// Whether the device checks received IPv4 header and TCP checksums
    /// (receive checksum offload, on whenever the device has it).
    pub fn rx_checksum_offload(&self) -> bool {
        self.queues[0].shared.rx_cksum
    }

    /// Whether the device completes the TCP checksums of sent IPv4/TCP frames:
    /// [`PortConfig::tx_checksum_offload`] asked and the device can. The
    /// same as [`PacketIo::tx_checksum_offload`].
    pub fn tx_checksum_offload(&self) -> bool {
        self.queues[0].shared.tx_cksum
    }

    /// Chained (multi-segment) mbufs received and dropped, all queues of
    /// this port: not supported yet.
    pub fn dropped_multi_segment(&self) -> u64 {
        self.queues.iter().map(|q| q.multi_segment).sum()
    }

    /// The queue pairs, to poll each from its own (scoped) thread.
    pub fn queues_mut(&mut self) -> &mut [PortQueue] {
        &mut self.queues
    }

    /// The queue pairs as owned handles, to move each to its own thread;
    /// the port is stopped when the last one is dropped.
    pub fn into_queues(self) -> Vec<PortQueue> {
        self.queues
    }

    /// Stops the port and closes it (`rte_eth_dev_close`). A stopped port
    /// may still hold mbufs in its receive rings (a NIC, `net_tap`); closing
    /// gives them back to the pool, so [`Mempool::is_full`] can hold again.
    /// A closed port cannot be opened again (a virtual device goes away).
    pub fn close(self) -> Result<(), DpdkError> {
        let id = self.id();
        // The port holds every queue handle (`into_queues` consumes it), so
        // this drops the last one and stops the port.
        drop(self);
        // SAFETY: a stopped port no handle refers to any more.
        check("rte_eth_dev_close", unsafe { sys::rte_eth_dev_close(id) })
    }
}

impl PacketIo for Port {
    type Packet = MbufPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<MbufPacket>>) -> Result<usize, IoError> {
        self.queues[0].recv_burst(out)
    }

    fn send_burst(&mut self, pkts: &mut Burst<MbufPacket>) -> Result<usize, IoError> {
        self.queues[0].send_burst(pkts)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.queues[0].tx_checksum_offload()
    }
}

/// Receive queue `q` and transmit queue `q` of a started [`Port`]: a
/// [`PacketIo`] that can be moved to another thread.
///
/// `Send` because DPDK's burst functions may be called concurrently on
/// distinct queues of one port (its threading model: one poller per queue),
/// from any thread; a handle is the only one on its queue pair (made once
/// per queue by [`Port::open`]) and polls it only through `&mut self`. Not
/// `Sync`: there is nothing to share.
pub struct PortQueue {
    shared: Arc<PortShared>,
    queue: u16,
    /// Pointer array handed to the burst functions, grown to the largest
    /// burst; holds no mbuf between calls.
    scratch: Vec<*mut sys::rte_mbuf>,
    multi_segment: u64,
}

// SAFETY: see the type's documentation. `scratch` only holds pointers
// during a burst call on the owning thread; the mbufs received are handed
// over as `MbufPacket`s, which are `Send`.
unsafe impl Send for PortQueue {}

impl std::fmt::Debug for PortQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortQueue")
            .field("port", &self.shared.id)
            .field("queue", &self.queue)
            .field("multi_segment", &self.multi_segment)
            .finish()
    }
}

impl PortQueue {
    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.shared.id
    }

    /// The queue pair's number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The pool the port receives into.
    pub fn pool(&self) -> &Mempool {
        &self.shared.pool
    }

    /// Whether the device completes the TCP checksums of sent IPv4/TCP frames
    /// (see [`Port::tx_checksum_offload`]).
    pub fn tx_checksum_offload(&self) -> bool {
        self.shared.tx_cksum
    }

    /// Chained (multi-segment) mbufs received on this queue and dropped:
    /// not supported yet.
    pub fn dropped_multi_segment(&self) -> u64 {
        self.multi_segment
    }

    fn scratch(&mut self, n: usize) -> *mut *mut sys::rte_mbuf {
        if self.scratch.len() < n {
            self.scratch.resize(n, std::ptr::null_mut());
        }
        self.scratch.as_mut_ptr()
    }
}

impl PacketIo for PortQueue {
    type Packet = MbufPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<MbufPacket>>) -> Result<usize, IoError> {
        let want = out.room().min(usize::from(u16::MAX));
        if want == 0 {
            return Ok(0);
        }
        let (id, queue) = (self.shared.id, self.queue);
        let ptrs = self.scratch(want);
        // SAFETY: a started port with this receive queue, polled by this
        // handle only; room for `want` pointers.
        let got = usize::from(unsafe { sys::rte_eth_rx_burst(id, queue, ptrs, want as u16) });
        if got == 0 {
            return Ok(0);
        }
        let ts = Timestamp::now();
        let mut n = 0;
        for &m in &self.scratch[..got] {
            // SAFETY: rx_burst hands over one reference on each mbuf it
            // returns, from the port's pool, which the handle keeps alive.
            let Some(packet) = (unsafe { MbufPacket::from_raw(m) }) else {
                continue;
            };
            if packet.segments() != 1 {
                self.multi_segment += 1;
                continue;
            }
            let meta = RxMeta {
                ts,
                link: LinkType::Ethernet,
                // SAFETY: a valid mbuf.
                wire_len: unsafe { (*m).pkt_len },
                iface: u32::from(id),
                // SAFETY: a valid mbuf. The flags say nothing (0) of
                // checksums when the offload is off.
                checksum: rx_checksum(unsafe { (*m).ol_flags }),
            };
            // At most `room` packets were asked for.
            let _ = out.push(Rx { packet, meta });
            n += 1;
        }
        Ok(n)
    }

    fn send_burst(&mut self, pkts: &mut Burst<MbufPacket>) -> Result<usize, IoError> {
        let n = pkts.len().min(usize::from(u16::MAX));
        if n == 0 {
            return Ok(0);
        }
        let (id, queue) = (self.shared.id, self.queue);
        let ptrs = self.scratch(n);
        let mark = self.shared.tx_cksum;
        for (i, p) in pkts.iter().take(n).enumerate() {
            // SAFETY: `scratch` holds at least n pointers; each mbuf is a
            // single-segment frame this handle is about to hand over.
            unsafe {
                if mark {
                    mark_tx_checksum(p.as_ptr());
                }
                *ptrs.add(i) = p.as_ptr();
            }
        }
        // SAFETY: a started port with this transmit queue, used by this
        // handle only; n valid mbufs.
        let sent = usize::from(unsafe { sys::rte_eth_tx_burst(id, queue, ptrs, n as u16) });
        // The driver now owns one reference on each mbuf it took.
        for p in pkts.drain(..sent) {
            let _ = p.into_raw();
        }
        Ok(sent)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.shared.tx_cksum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Toeplitz hash of `input` with `key` (what an RSS device computes).
    fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
        let mut hash = 0u32;
        for (i, byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    // The 32 key bits starting at bit i * 8 + bit.
                    let start = i * 8 + bit;
                    let mut window = 0u32;
                    for k in 0..32 {
                        let b = start + k;
                        let kb = (key[b / 8] >> (7 - b % 8)) & 1;
                        window = (window << 1) | u32::from(kb);
                    }
                    hash ^= window;
                }
            }
        }
        hash
    }

    fn tuple(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(src);
        v.extend_from_slice(dst);
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v
    }

    #[test]
    fn the_key_is_symmetric_for_ipv4_and_ipv6_tcp() {
        let key = symmetric_key(40);
        assert_eq!(&key[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        let (a4, b4) = ([198, 51, 100, 1], [198, 51, 100, 200]);
        let mut a6 = [0u8; 16];
        let mut b6 = [0u8; 16];
        a6[..2].copy_from_slice(&[0x20, 0x01]);
        b6[..2].copy_from_slice(&[0x20, 0x01]);
        a6[15] = 1;
        b6[14] = 7;
        let mut distinct = std::collections::HashSet::new();
        for port in [1u16, 80, 443, 40000, 65535] {
            let there = toeplitz(&key, &tuple(&a4, &b4, port, 9000));
            let back = toeplitz(&key, &tuple(&b4, &a4, 9000, port));
            assert_eq!(there, back, "IPv4 port {port}");
            distinct.insert(there);
            let there = toeplitz(&key, &tuple(&a6, &b6, port, 80));
            let back = toeplitz(&key, &tuple(&b6, &a6, 80, port));
            assert_eq!(there, back, "IPv6 port {port}");
        }
        assert!(distinct.len() > 1, "the hash still depends on the ports");
        // Microsoft's default key is not symmetric: the check can fail.
        let default_key: Vec<u8> = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ]
        .to_vec();
        assert_ne!(
            toeplitz(&default_key, &tuple(&a4, &b4, 40000, 9000)),
            toeplitz(&default_key, &tuple(&b4, &a4, 9000, 40000))
        );
    }
}
