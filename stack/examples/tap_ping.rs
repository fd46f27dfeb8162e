//! Answers ARP and ping on a TAP device as a userspace host.
//!
//! ```text
//! cargo run -p aa-stack --example tap_ping -- [DEV] [IPV4] [SECONDS] [CAPTURE.pcap]
//! ```
//!
//! Defaults: device `aa0`, address 198.51.100.2, run for 30 seconds, no
//! capture. It opens (or creates) the device and configures nothing: give the
//! kernel's side an address in the same subnet yourself, preferably inside a
//! network namespace, for example (as root, while it runs):
//!
//! ```text
//! ip netns add aa-demo
//! ip link set aa0 netns aa-demo
//! ip -n aa-demo addr add 198.51.100.1/24 dev aa0
//! ip -n aa-demo link set aa0 up
//! ip netns exec aa-demo ping -c 3 198.51.100.2
//! ip netns del aa-demo
//! ```

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aa_runtime::{PacketPool, PoolPacket};
use aa_stack::io::tap::TapIo;
use aa_stack::link::{Handled, MacAddr, Responder};
use aa_stack::{Burst, IoError, PacketIo, Rx};

/// Our address on the link: locally administered, not the kernel's.
const OUR_MAC: MacAddr = MacAddr([0x02, 0xaa, 0x00, 0x00, 0x00, 0x02]);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = args.first().map_or("aa0", String::as_str);
    let ip: Ipv4Addr = match args
        .get(1)
        .map_or(Ok(Ipv4Addr::new(198, 51, 100, 2)), |s| s.parse())
    {
        Ok(ip) => ip,
        Err(e) => {
            eprintln!("tap_ping: bad IPv4 address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);

    let pool = PacketPool::new(256, 2048);
    let mut tap = match TapIo::open(dev, pool.clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tap_ping: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = args.get(3) {
        if let Err(e) = tap.capture_to_file(path) {
            eprintln!("tap_ping: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "tap_ping: {} (kernel side {}) answering as {ip} / {OUR_MAC} for {secs} s",
        tap.name(),
        tap.mac()
    );

    let mut resp = Responder::new(OUR_MAC, ip);
    let mut rx: Burst<Rx<PoolPacket>> = Burst::with_capacity(32);
    let mut tx: Burst<PoolPacket> = Burst::with_capacity(32);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Err(e) = step(&mut tap, &mut resp, &pool, &mut rx, &mut tx) {
            eprintln!("tap_ping: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(c) = tap.set_capture(None) {
        if let Err(e) = c.finish() {
            eprintln!("tap_ping: capture: {e}");
        }
    }
    eprintln!("tap_ping: {:?}", resp.stats());
    eprintln!("tap_ping: {:?}", tap.stats());
    ExitCode::SUCCESS
}

/// Waits up to 100 ms for frames, answers them.
fn step(
    tap: &mut TapIo,
    resp: &mut Responder,
    pool: &PacketPool,
    rx: &mut Burst<Rx<PoolPacket>>,
    tx: &mut Burst<PoolPacket>,
) -> Result<(), IoError> {
    tap.wait(Duration::from_millis(100))?;
    tap.recv_burst(rx)?;
    for p in rx.drain(..) {
        match resp.handle_rx(&p, pool) {
            // tx has room: it holds at most one burst of replies.
            Handled::Reply(reply) => drop(tx.push(reply)),
            Handled::Learned => eprintln!("tap_ping: learnt a neighbour"),
            Handled::Pass | Handled::Ignored(_) => {}
        }
    }
    while !tx.is_empty() {
        tap.send_burst(tx)?;
    }
    Ok(())
}
