//! Connects to a TCP server through a TAP device (or, built with feature
//! `dpdk`, a DPDK port) with aa's own endpoint,
//! reads the CSV it sends as parsed `row` records (the compiled grammar of
//! `grammars/csv.aag`), frees them, and prints one summary line.
//!
//! ```text
//! cargo run --release -p aa-stack --example csv_client -- \
//!     --tap NAME --ip 198.51.100.2/24 --peer 198.51.100.1:PORT \
//!     [--mac 02:aa:00:00:00:02] [--request TEXT] [--timeout SECS]
//! cargo run --release -p aa-stack --features dpdk --example csv_client -- \
//!     --eal "--no-huge --no-pci -m 256 --vdev=net_tap0,iface=aa0" \
//!     [--dpdk-port net_tap0] --ip 198.51.100.2/24 --peer 198.51.100.1:PORT
//! ```
//!
//! With `--eal`, EAL starts with those arguments, the port (the first one
//! unless `--dpdk-port` names it) receives into a pool of mbufs and the
//! endpoint sends from the same pool; records point into the mbufs. A DPDK
//! port is polled (an idle loop sleeps 50 µs at a time).
//!
//! Output: `rows=N bytes=M seconds=S` (bytes of the stream, seconds from the
//! SYN to the end of the stream), then `Mbit/s` on stderr. `--request TEXT`
//! sends TEXT and a newline once connected. The exit status is 0 when the
//! server closed the connection properly, 1 otherwise.
//!
//! The device is opened (created if it does not exist) in the current
//! network namespace, which should be one of its own; for example, as root:
//!
//! ```text
//! ip netns add aa-demo
//! ip -n aa-demo tuntap add dev aa0 mode tap
//! ip -n aa-demo addr add 198.51.100.1/24 dev aa0
//! ip -n aa-demo link set aa0 up
//! ip netns exec aa-demo python3 -c 'import socket; s=socket.create_server(("198.51.100.1",9000)); c,_=s.accept(); c.sendall(open("data/trades.csv","rb").read()); c.close()' &
//! ip netns exec aa-demo target/release/examples/csv_client --tap aa0 \
//!     --ip 198.51.100.2/24 --peer 198.51.100.1:9000
//! ip netns del aa-demo
//! ```
//!
//! DPDK's `net_tap` driver creates its kernel interface (`iface=`) in the
//! namespace the program runs in: run it under `ip netns exec aa-demo`, then
//! give the interface 198.51.100.1/24 and bring it up while it runs. The
//! logic ([`fetch_csv`]) is shared with `stack/tests/dpdk_tap.rs`.

#[path = "common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_runtime::{AaState, Record};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::tcp::{Event, Stack};

use common::{example_config, App, Device, TapOpts};

/// What [`fetch_csv`] got.
#[derive(Debug, Default)]
pub struct CsvResult {
    /// Rows read.
    pub rows: u64,
    /// Bytes of the stream.
    pub bytes: u64,
    /// Bytes in fields.
    pub field_bytes: u64,
    /// From the SYN to the end of the stream.
    pub seconds: f64,
    /// The parser ended the stream cleanly (its last row complete).
    pub ended: bool,
    /// The server closed and so did we (FIN both ways, acknowledged).
    pub clean: bool,
    /// What went wrong, if anything did.
    pub error: Option<String>,
}

/// Connects to `peer`, sends `request` and a newline once connected (if
/// any), reads every row, calling `on_row` on each before it is freed,
/// closes when the server has, and releases the connection.
pub fn fetch_csv<D: Device, A: FrameAlloc<Packet = D::Packet>>(
    stack: &mut Stack<D, CsvParser, A>,
    peer: SocketAddrV4,
    request: Option<&str>,
    timeout: Duration,
    mut on_row: impl FnMut(&Record<'_, D::Packet>),
) -> CsvResult {
    let mut res = CsvResult::default();
    let id = match stack.connect(peer, CsvParser::new()) {
        Ok(id) => id,
        Err(e) => {
            res.error = Some(format!("connect {peer}: {e}"));
            return res;
        }
    };
    let started = Instant::now();
    let deadline = started + timeout;
    let mut finished = None;
    let mut close_sent = false;
    loop {
        if Instant::now() >= deadline {
            res.error = Some(format!("timed out in state {:?}", stack.state(id)));
            break;
        }
        if let Err(e) = stack.device().wait_rx(Duration::from_millis(10)) {
            res.error = Some(e);
            break;
        }
        if let Err(e) = stack.poll() {
            res.error = Some(e.to_string());
            break;
        }
        let mut done = false;
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(_) => {
                    if let Some(r) = request {
                        let msg = format!("{r}\n");
                        if stack.send(id, msg.as_bytes()) != Ok(msg.len()) {
                            res.error = Some("request too long for the send buffer".into());
                        }
                    }
                }
                Event::Records(_) | Event::Accepted(_) => {}
                Event::ParseFailed(_) => {
                    // The rows before the error are still read below; no
                    // more come, so stop the transfer.
                    if let Some(e) = stack.stream(id).and_then(|s| s.error()) {
                        res.error = Some(format!("parse error: {e}"));
                    }
                    if !close_sent {
                        let _ = stack.close(id);
                        close_sent = true;
                    }
                }
                Event::Finished(_) => finished = Some(started.elapsed()),
                Event::Closed(_) => {
                    res.clean = close_sent;
                    done = true;
                }
                Event::Reset(_, why) => {
                    res.error = Some(format!("connection {why:?}"));
                    done = true;
                }
            }
        }
        if let Some(s) = stack.stream_mut(id) {
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                res.field_bytes += r.fields().map(|f| f.len()).sum::<u64>();
                on_row(&r);
            }
            s.free_aa_records(n);
            res.rows += n as u64;
            if finished.is_some() && s.ready() == 0 && !close_sent {
                res.ended = s.state() == AaState::Ended;
                if let Some(e) = s.error() {
                    res.error = Some(format!("parse error: {e}"));
                }
                let _ = stack.close(id);
                close_sent = true;
            }
        }
        if done {
            break;
        }
    }
    res.bytes = stack.stream(id).map_or(0, |s| s.stream().rcv_nxt_offset());
    res.seconds = finished.unwrap_or_else(|| started.elapsed()).as_secs_f64();
    let _ = stack.release(id);
    res
}

struct Args {
    opts: TapOpts,
    ip: Ipv4Addr,
    peer: SocketAddrV4,
    request: Option<String>,
}

const USAGE: &str = "usage: csv_client (--tap NAME | --eal \"EAL ARGS\" [--dpdk-port NAME]) \
                     --ip A.B.C.D[/LEN] --peer A.B.C.D:PORT \
                     [--mac MAC] [--request TEXT] [--timeout SECS]";

fn args() -> Result<Args, String> {
    let mut o = TapOpts::new(Duration::from_secs(60));
    let mut request = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        if o.take(&a, &mut val)? {
            continue;
        }
        match a.as_str() {
            "--request" => request = Some(val()?),
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    o.check_device(USAGE)?;
    Ok(Args {
        ip: o.ip.ok_or(USAGE)?,
        peer: o.peer.ok_or(USAGE)?,
        opts: o,
        request,
    })
}

/// The example's run: [`fetch_csv`], the summary printed.
struct Client {
    peer: SocketAddrV4,
    request: Option<String>,
    timeout: Duration,
}

impl App<CsvParser> for Client {
    type Out = bool;

    fn run<D: Device, A: FrameAlloc<Packet = D::Packet>>(
        self,
        stack: &mut Stack<D, CsvParser, A>,
    ) -> bool {
        let r = fetch_csv(
            stack,
            self.peer,
            self.request.as_deref(),
            self.timeout,
            |_| {},
        );
        if let Some(e) = &r.error {
            eprintln!("csv_client: {e}");
        }
        println!("rows={} bytes={} seconds={:.6}", r.rows, r.bytes, r.seconds);
        eprintln!(
            "csv_client: {:.1} Mbit/s, {} field bytes, {:?}",
            r.bytes as f64 * 8.0 / r.seconds.max(1e-9) / 1e6,
            r.field_bytes,
            stack.stats()
        );
        r.clean
    }
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("csv_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client {
        peer: a.peer,
        request: a.request,
        timeout: a.opts.timeout,
    };
    match a.opts.run(a.ip, example_config(), client) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("csv_client: {e}");
            ExitCode::FAILURE
        }
    }
}
