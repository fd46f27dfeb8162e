//! What the TAP client examples share: the options naming the device, our
//! address and the peer, and opening the device under a [`Stack`]. Each
//! example includes this with `#[path = "common/mod.rs"] mod common;`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use aa_runtime::{PacketPool, Parser};
use aa_stack::io::tap::TapIo;
use aa_stack::link::MacAddr;
use aa_stack::tcp::{Stack, StackConfig};

/// `--tap NAME --ip A.B.C.D[/LEN] --peer A.B.C.D:PORT [--mac MAC]
/// [--timeout SECS]`.
pub struct TapOpts {
    pub tap: Option<String>,
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
}

/// Opens (creates if need be) the TAP device `tap` and puts a [`Stack`]
/// on it as `ip`, `mac`: 1024 buffers of 2048 bytes, five ARP tries.
pub fn tap_stack<R: Parser>(
    tap: &str,
    mac: MacAddr,
    ip: Ipv4Addr,
) -> Result<Stack<TapIo, R>, String> {
    let pool = PacketPool::new(1024, 2048);
    let tap = TapIo::open(tap, pool.clone()).map_err(|e| e.to_string())?;
    let cfg = StackConfig {
        arp_tries: 5,
        ..StackConfig::default()
    };
    Ok(Stack::new(tap, pool, mac, ip, cfg))
}
