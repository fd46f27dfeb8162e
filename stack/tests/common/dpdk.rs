//! DPDK helpers shared by the DPDK tests and the DPDK bench (which includes
//! this file with `#[path]`): EAL started once with the process's CPUs noted
//! first, and whole lists of packets sent to and received from a port that
//! loops them back (`net_ring`).
#![allow(dead_code)]

use std::sync::OnceLock;

use aa_stack::dpdk::{current_thread_cpus, Eal};
use aa_stack::io::{Burst, PacketIo, Rx};

/// The CPUs this process may run on, as they were before EAL pinned the
/// thread that starts it.
static CPUS: OnceLock<Vec<usize>> = OnceLock::new();

/// EAL arguments for a test without a NIC or hugepages: the program name
/// `name`, 256 MiB of ordinary memory, no PCI scan, no shared configuration
/// or telemetry, then `vdevs` (the test's `--vdev=...`).
pub fn eal_args<'a>(name: &'a str, vdevs: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        name,
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--no-shconf",
        "--no-telemetry",
    ];
    args.extend_from_slice(vdevs);
    args
}

/// Starts EAL with `args` (once per process; later calls return it).
pub fn start_eal(args: &[&str]) -> &'static Eal {
    CPUS.get_or_init(current_thread_cpus);
    match Eal::init(args) {
        Ok(eal) => eal,
        Err(e) => panic!("EAL did not start ({e}); its log is on stderr above"),
    }
}

/// [`CPUS`], or CPU 0 before EAL started.
pub fn cpus() -> &'static [usize] {
    CPUS.get().map_or(&[0], |c| &c[..])
}

/// Sends every packet on `io`, in bursts of up to `burst`; the port must
/// take each burst whole (a ring with room).
pub fn send_all<I: PacketIo>(io: &mut I, pkts: Vec<I::Packet>, burst: usize) {
    let mut b = Burst::with_capacity(burst);
    let mut pkts = pkts.into_iter().peekable();
    while pkts.peek().is_some() || !b.is_empty() {
        while b.room() > 0 {
            match pkts.next() {
                Some(p) => {
                    if b.push(p).is_err() {
                        unreachable!("the burst has room");
                    }
                }
                None => break,
            }
        }
        let before = b.len();
        assert_eq!(io.send_burst(&mut b).unwrap(), before, "the ring has room");
    }
}

/// Receives until `n` packets came back (a ring gives them back at once).
pub fn recv_n<I: PacketIo>(io: &mut I, n: usize) -> Vec<Rx<I::Packet>> {
    let mut burst = Burst::with_capacity(32);
    let mut got = Vec::with_capacity(n);
    for _ in 0..100_000 {
        if got.len() >= n {
            break;
        }
        io.recv_burst(&mut burst).unwrap();
        got.extend(burst.drain(..));
    }
    assert_eq!(got.len(), n, "every frame sent came back");
    got
}
