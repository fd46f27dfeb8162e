//! What the endpoint examples share: the options naming the device (a TAP
//! device, or with feature `dpdk` a DPDK port), our address and the peer,
//! and opening the device under a [`Stack`]. Each example includes this with
//! `#[path = "common/mod.rs"] mod common;`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use aa_runtime::{PacketPool, Parser};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::io::tap::{TapIo, LARGE_FRAME};
use aa_stack::link::MacAddr;
use aa_stack::tcp::{Stack, StackConfig};
use aa_stack::PacketIo;

/// `--tap NAME | --eal "ARGS" [--dpdk-port NAME]`, `--ip A.B.C.D[/LEN]`,
/// `--peer A.B.C.D:PORT`, `--mac MAC`, `--timeout SECS`.
pub struct TapOpts {
    pub tap: Option<String>,
    /// EAL arguments, split at whitespace (feature `dpdk`).
    pub eal: Option<String>,
    /// The DPDK port's name; the first port if none.
    pub dpdk_port: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub peer: Option<SocketAddrV4>,
    pub mac: MacAddr,
    pub timeout: Duration,
}

impl TapOpts {
    /// No device, address or peer yet; our MAC 02:aa:00:00:00:02.
    pub fn new(timeout: Duration) -> TapOpts {
        TapOpts {
            tap: None,
            eal: None,
            dpdk_port: None,
            ip: None,
            peer: None,
            mac: MacAddr([0x02, 0xaa, 0x00, 0x00, 0x00, 0x02]),
            timeout,
        }
    }

    /// Takes option `a`, its value from `val`, if it is one of these:
    /// `Ok(false)` if it is not.
    pub fn take(
        &mut self,
        a: &str,
        mut val: impl FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match a {
            "--tap" => self.tap = Some(val()?),
            "--eal" | "--dpdk-port" if !cfg!(feature = "dpdk") => {
                return Err(format!(
                    "{a}: this build has no DPDK backend; build with `--features dpdk`"
                ));
            }
            "--eal" => self.eal = Some(val()?),
            "--dpdk-port" => self.dpdk_port = Some(val()?),
            "--ip" => {
                let v = val()?;
                let addr = v.split('/').next().unwrap_or("");
                self.ip = Some(
                    addr.parse::<Ipv4Addr>()
                        .map_err(|e| format!("--ip {v}: {e}"))?,
                );
            }
            "--peer" => {
                let v = val()?;
                self.peer = Some(v.parse().map_err(|e| format!("--peer {v}: {e}"))?);
            }
            "--mac" => {
                let v = val()?;
                self.mac = v.parse().map_err(|e| format!("--mac {v}: {e}"))?;
            }
            "--timeout" => {
                let v = val()?;
                let s: f64 = v.parse().map_err(|e| format!("--timeout {v}: {e}"))?;
                self.timeout = Duration::from_secs_f64(s.max(0.0));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that exactly one device was named.
    pub fn check_device(&self, usage: &str) -> Result<(), String> {
        match (&self.tap, &self.eal) {
            (Some(_), Some(_)) => Err(format!("--tap and --eal exclude each other\n{usage}")),
            (None, None) => Err(usage.to_owned()),
            _ => Ok(()),
        }
    }

    /// Opens the device named (see [`tap_stack`], [`dpdk_stack`]), puts a
    /// [`Stack`] with `cfg` on it as `ip` and runs `app` on it.
    pub fn run<R: Parser, F: App<R>>(
        &self,
        ip: Ipv4Addr,
        cfg: StackConfig,
        app: F,
    ) -> Result<F::Out, String> {
        #[cfg(feature = "dpdk")]
        if let Some(eal) = &self.eal {
            let mut stack = dpdk_stack::<R>(eal, self.dpdk_port.as_deref(), self.mac, ip, cfg)?;
            return Ok(app.run(&mut stack));
        }
        let tap = self.tap.as_deref().ok_or("no device named")?;
        let mut stack = tap_stack::<R>(tap, self.mac, ip, cfg)?;
        Ok(app.run(&mut stack))
    }
}

/// A packet device an example can wait on.
pub trait Device: PacketIo {
    /// Waits until a frame may be there to receive, at most `timeout`.
    fn wait_rx(&self, timeout: Duration) -> Result<(), String>;
}

impl Device for TapIo {
    fn wait_rx(&self, timeout: Duration) -> Result<(), String> {
        self.wait(timeout).map(drop).map_err(|e| e.to_string())
    }
}

/// A DPDK port has nothing to wait on (it is polled): an idle wait is a
/// short sleep, at most 50 µs, so the loop polls again soon.
#[cfg(feature = "dpdk")]
impl Device for aa_stack::dpdk::Port {
    fn wait_rx(&self, timeout: Duration) -> Result<(), String> {
        if !timeout.is_zero() {
            std::thread::sleep(timeout.min(Duration::from_micros(50)));
        }
        Ok(())
    }
}

/// What an example does on its stack, whatever the device.
pub trait App<R: Parser> {
    /// What it returns.
    type Out;
    /// Runs on `stack`.
    fn run<D: Device, A: FrameAlloc<Packet = D::Packet>>(
        self,
        stack: &mut Stack<D, R, A>,
    ) -> Self::Out;
}

/// The settings of the examples' stacks: [`StackConfig::default`] with five
/// ARP tries.
pub fn example_config() -> StackConfig {
    StackConfig {
        arp_tries: 5,
        ..StackConfig::default()
    }
}

/// Opens (creates if need be) the TAP device `tap`, with checksum offload
/// and large receive (the kernel's segments as it built them, up to 64 KiB
/// a frame), and puts a [`Stack`] on it as `ip`, `mac`: 256 buffers of
/// [`LARGE_FRAME`] bytes (16 MiB).
pub fn tap_stack<R: Parser>(
    tap: &str,
    mac: MacAddr,
    ip: Ipv4Addr,
    cfg: StackConfig,
) -> Result<Stack<TapIo, R>, String> {
    let pool = PacketPool::new(256, LARGE_FRAME);
    let tap = TapIo::open_large_receive(tap, pool.clone()).map_err(|e| e.to_string())?;
    Ok(Stack::new(tap, pool, mac, ip, cfg))
}

/// Starts EAL with `eal` (split at whitespace), opens the DPDK port named
/// `port` (the first port if `None`) receiving into a pool of 4095 mbufs,
/// and puts a [`Stack`] on it as `ip`, `mac`, sending from the same pool;
/// checksums are left to the device when it has checksum offload.
#[cfg(feature = "dpdk")]
pub fn dpdk_stack<R: Parser>(
    eal: &str,
    port: Option<&str>,
    mac: MacAddr,
    ip: Ipv4Addr,
    cfg: StackConfig,
) -> Result<Stack<aa_stack::dpdk::Port, R, aa_stack::dpdk::Mempool>, String> {
    use aa_stack::dpdk::{Eal, Mempool, Port, PortConfig};
    let eal = Eal::init_line("aa", eal).map_err(|e| e.to_string())?;
    let (id, _) = eal.find_port(port).map_err(|e| e.to_string())?;
    let pool = Mempool::new(eal, "aa-example", 4095, 0, Mempool::DEFAULT_DATA_ROOM)
        .map_err(|e| e.to_string())?;
    // The stack is the port's only sender of TCP frames, and leaves their
    // checksums to a device that can complete them.
    let cfg_port = PortConfig {
        tx_checksum_offload: true,
        ..PortConfig::default()
    };
    let port = Port::open(eal, id, &pool, cfg_port).map_err(|e| e.to_string())?;
    Ok(Stack::with_alloc(port, pool, mac, ip, cfg))
}
