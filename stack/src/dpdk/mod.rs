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
//! - [`Port`] configures one DPDK port with one or several receive/transmit
//!   queue pairs ([`PortConfig::queues`]) and implements
//!   [`PacketIo`](crate::io::PacketIo) on queue pair 0 with
//!   `rte_eth_rx_burst` / `rte_eth_tx_burst`; each queue pair is a
//!   [`PortQueue`], also a `PacketIo`, for its own thread. With several
//!   queues on a device with receive-side scaling, the port turns it on with
//!   a symmetric key, so both directions of a connection reach one queue
//!   ([`Rss`]); [`MbufPacket::rss_hash`] is the device's hash.
//! - Without RSS, [`flow_worker`] maps a frame to a worker by its connection
//!   (symmetric), and a [`Dispatcher`] on the receiving thread hands packets
//!   to worker threads through bounded queues, counting what it drops.
//!
//! Threads: one stack per core. [`Mempool`] handles, [`MbufPacket`]s and
//! [`PortQueue`]s are `Send` (DPDK's pools and mbuf reference counts are
//! thread-safe, and each queue pair has one handle); a [`Port`] and a
//! `PortQueue` are polled through `&mut self`, one thread at a time. EAL
//! pins the thread that starts it to one core, and threads it spawns later
//! inherit that: [`pin_current_thread`] puts each worker on its own core.
//!
//! ```no_run
//! use aa_stack::dpdk::{Eal, Mempool, Port, PortConfig};
//! let eal = Eal::init(&["aa", "--no-huge", "--no-pci", "-m", "256", "--vdev=net_ring0"])?;
//! let pool = Mempool::new(eal, "rx", 1023, 0, Mempool::DEFAULT_DATA_ROOM)?;
//! let port = Port::open(eal, eal.port_by_name("net_ring0")?, &pool, PortConfig::default())?;
//! # Ok::<(), aa_stack::dpdk::DpdkError>(())
//! ```

mod dispatch;
mod eal;
mod mbuf;
mod port;
mod thread;

pub use dispatch::{flow_worker, Dispatcher, WorkerCounts, WorkerQueue};
pub use eal::{DpdkError, Eal};
pub use mbuf::{MbufPacket, Mempool};
pub use port::{
    mark_tx_checksum, rx_checksum, Port, PortConfig, PortQueue, Rss, RSS_IP, RSS_TCP,
    SYMMETRIC_RSS_KEY_PAIR,
};
pub use thread::{current_thread_cpus, pin_current_thread};
