//! Raw bindings to the system DPDK, for aa-stack's `dpdk` feature.
//!
//! Empty unless feature `bind` is on (aa-stack's `dpdk` feature turns it on),
//! so a workspace build never needs DPDK. With it, the build script finds
//! `libdpdk` through pkg-config (linked dynamically; the PMDs are loaded by
//! EAL from its driver directory), runs bindgen on an allowlist of EAL,
//! ethdev, mbuf and mempool items, and compiles C wrappers for DPDK's static
//! inline functions (`rte_eth_rx_burst`, `rte_eth_tx_burst`,
//! `rte_pktmbuf_alloc`, `rte_pktmbuf_free`, `rte_mbuf_refcnt_update`, ...) with
//! DPDK's own cflags. Bindgen names those wrappers after the functions, so
//! they are called as if they were the inline functions.
//!
//! Macros are not bound: `rte_pktmbuf_mtod(m)` is `pktmbuf_mtod`;
//! `rte_errno` is `aa_rte_errno()`.
#![cfg_attr(
    feature = "bind",
    allow(
        non_camel_case_types,
        non_snake_case,
        non_upper_case_globals,
        missing_docs,
        clippy::all,
        clippy::pedantic,
        rustdoc::all,
        unknown_lints,
        unnecessary_transmutes
    )
)]

#[cfg(feature = "bind")]
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `rte_pktmbuf_mtod(m, void *)`: the first data byte of an mbuf's segment,
/// `buf_addr + data_off`.
///
/// # Safety
/// `m` points to a valid mbuf.
#[cfg(feature = "bind")]
#[inline]
pub unsafe fn pktmbuf_mtod(m: *const rte_mbuf) -> *mut u8 {
    ((*m).buf_addr as *mut u8).add((*m).data_off as usize)
}

/// The DPDK version pkg-config found, as it printed it.
#[cfg(feature = "bind")]
pub const DPDK_VERSION: &str = env!("DPDK_VERSION");
