//! A DPDK Ethernet port behind the burst packet-I/O trait.

use std::time::SystemTime;

use dpdk_sys as sys;

use super::eal::{DpdkError, Eal};
use super::mbuf::{MbufPacket, Mempool};
use crate::io::{Burst, IoError, PacketIo, Rx, RxMeta, Timestamp};
use crate::wire::LinkType;

/// How a [`Port`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive descriptors (ring size) of the receive queue; the driver may
    /// round it (`rte_eth_dev_adjust_nb_rx_tx_desc`).
    pub rx_desc: u16,
    /// Transmit descriptors of the transmit queue.
    pub tx_desc: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_desc: 512,
            tx_desc: 512,
        }
    }
}

/// One started DPDK port with one receive and one transmit queue (queue 0),
/// receiving into a [`Mempool`].
///
/// `recv_burst` is one `rte_eth_rx_burst` per call, `send_burst` one
/// `rte_eth_tx_burst`; neither allocates once its pointer array has grown to
/// the largest burst asked for. Received frames are Ethernet. Dropping the
/// port stops it (`rte_eth_dev_stop`); it can be opened again.
///
/// A real NIC keeps up to `rx_desc` mbufs of the pool in its receive ring
/// while the port is started: [`Mempool::is_full`] holds again only once the
/// port is stopped. The `net_ring` and `net_null` virtual devices keep none.
#[derive(Debug)]
pub struct Port {
    id: u16,
    pool: Mempool,
    /// Pointer array handed to the burst functions, grown to the largest burst.
    scratch: Vec<*mut sys::rte_mbuf>,
    multi_segment: u64,
}

fn check(what: &'static str, ret: i32) -> Result<(), DpdkError> {
    if ret < 0 {
        Err(DpdkError::call(what, ret))
    } else {
        Ok(())
    }
}

impl Port {
    /// Configures port `id` (`rte_eth_dev_configure`, one receive and one
    /// transmit queue, default device settings), sets up its queues to receive
    /// into `pool`, and starts it.
    pub fn open(_eal: &Eal, id: u16, pool: &Mempool, cfg: PortConfig) -> Result<Port, DpdkError> {
        // SAFETY (every call below): EAL is running and `id` is checked
        // first; the configuration structs are plain data, zero being DPDK's
        // defaults, and outlive the calls.
        unsafe {
            if sys::rte_eth_dev_is_valid_port(id) == 0 {
                return Err(DpdkError::NoSuchPort(format!("port {id}")));
            }
            let conf: sys::rte_eth_conf = std::mem::zeroed();
            check(
                "rte_eth_dev_configure",
                sys::rte_eth_dev_configure(id, 1, 1, &conf),
            )?;
            let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
            check(
                "rte_eth_dev_adjust_nb_rx_tx_desc",
                sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc),
            )?;
            // SOCKET_ID_ANY (-1) when the port has no NUMA node; DPDK takes
            // it as an unsigned int.
            let socket = sys::rte_eth_dev_socket_id(id) as u32;
            check(
                "rte_eth_rx_queue_setup",
                sys::rte_eth_rx_queue_setup(
                    id,
                    0,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                ),
            )?;
            check(
                "rte_eth_tx_queue_setup",
                sys::rte_eth_tx_queue_setup(id, 0, tx_desc, socket, std::ptr::null()),
            )?;
            check("rte_eth_dev_start", sys::rte_eth_dev_start(id))?;
        }
        Ok(Port {
            id,
            pool: pool.clone(),
            scratch: Vec::new(),
            multi_segment: 0,
        })
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The pool the port receives into.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// Chained (multi-segment) mbufs received and dropped: not supported yet.
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

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: a started port.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs(), u64::from(d.subsec_nanos()))
}

impl PacketIo for Port {
    type Packet = MbufPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<MbufPacket>>) -> Result<usize, IoError> {
        let want = out.room().min(usize::from(u16::MAX));
        if want == 0 {
            return Ok(0);
        }
        let ptrs = self.scratch(want);
        // SAFETY: a started port with receive queue 0; room for `want` pointers.
        let got = usize::from(unsafe { sys::rte_eth_rx_burst(self.id, 0, ptrs, want as u16) });
        if got == 0 {
            return Ok(0);
        }
        let ts = now();
        let mut n = 0;
        for &m in &self.scratch[..got] {
            // SAFETY: rx_burst hands over one reference on each mbuf it
            // returns, from `self.pool`, which the port keeps alive.
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
                iface: u32::from(self.id),
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
        let ptrs = self.scratch(n);
        for (i, p) in pkts.iter().take(n).enumerate() {
            // SAFETY: `scratch` holds at least n pointers.
            unsafe { *ptrs.add(i) = p.as_ptr() };
        }
        // SAFETY: a started port with transmit queue 0; n valid mbufs.
        let sent = usize::from(unsafe { sys::rte_eth_tx_burst(self.id, 0, ptrs, n as u16) });
        // The driver now owns one reference on each mbuf it took.
        for p in pkts.drain(..sent) {
            let _ = p.into_raw();
        }
        Ok(sent)
    }
}
