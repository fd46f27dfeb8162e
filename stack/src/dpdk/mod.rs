//! The DPDK backend (feature `dpdk`): EAL start-up, mbuf pools, mbuf packet
//! handles and an Ethernet port behind [`PacketIo`](crate::io::PacketIo).
//!
//! - [`Eal::init`] starts DPDK's environment abstraction layer from an
//!   argument list, once per process (DPDK cannot start it twice).
//! - [`Mempool`] is an `rte_pktmbuf` pool; [`Mempool::available`] counts the
//!   mbufs in it (`rte_mempool_avail_count`), so a test can check that every
//!   mbuf came back.
//! - [`MbufPacket`] is an [`aa_runtime::Packet`] over one `rte_mbuf`: `data()`
//!   is the frame in place (`buf_addr + data_off`), a clone is
//!   `rte_mbuf_refcnt_update(m, +1)`, a drop is `rte_pktmbuf_free` (which
//!   returns the mbuf to its pool when the count reaches zero). **Single
//!   segment only**: [`Port`] drops chained (multi-segment) mbufs it receives
//!   and counts them; scatter-gather is not supported yet.
//! - [`Port`] configures one DPDK port with one receive and one transmit
//!   queue and implements [`PacketIo`](crate::io::PacketIo) with
//!   `rte_eth_rx_burst` / `rte_eth_tx_burst`.
//!
//! Everything here is for one thread (one stack per core): pools, packets and
//! ports are neither `Send` nor `Sync`.
//!
//! ```no_run
//! use aa_stack::dpdk::{Eal, Mempool, Port, PortConfig};
//! let eal = Eal::init(&["aa", "--no-huge", "--no-pci", "-m", "256", "--vdev=net_ring0"])?;
//! let pool = Mempool::new(eal, "rx", 1023, 0, Mempool::DEFAULT_DATA_ROOM)?;
//! let port = Port::open(eal, eal.port_by_name("net_ring0")?, &pool, PortConfig::default())?;
//! # Ok::<(), aa_stack::dpdk::DpdkError>(())
//! ```

mod eal;
mod mbuf;
mod port;

pub use eal::{DpdkError, Eal};
pub use mbuf::{MbufPacket, Mempool};
pub use port::{Port, PortConfig};
