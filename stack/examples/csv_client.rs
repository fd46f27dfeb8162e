//! Connects to a TCP server through a TAP device with aa's own endpoint,
//! reads the CSV it sends as parsed `row` records (the compiled grammar of
//! `grammars/csv.aag`), frees them, and prints one summary line.
//!
//! ```text
//! cargo run --release -p aa-stack --example csv_client -- \
//!     --tap NAME --ip 198.51.100.2/24 --peer 198.51.100.1:PORT \
//!     [--mac 02:aa:00:00:00:02] [--request TEXT] [--timeout SECS]
//! ```
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

#[path = "common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_stack::io::tap::TapIo;
use aa_stack::link::MacAddr;
use aa_stack::tcp::{Event, Stack};

use common::{tap_stack, TapOpts};

struct Args {
    tap: String,
    ip: Ipv4Addr,
    peer: SocketAddrV4,
    mac: MacAddr,
    request: Option<String>,
    timeout: Duration,
}

const USAGE: &str = "usage: csv_client --tap NAME --ip A.B.C.D[/LEN] --peer A.B.C.D:PORT \
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
    Ok(Args {
        tap: o.tap.ok_or(USAGE)?,
        ip: o.ip.ok_or(USAGE)?,
        peer: o.peer.ok_or(USAGE)?,
        mac: o.mac,
        request,
        timeout: o.timeout,
    })
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("csv_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stack: Stack<TapIo, CsvParser> = match tap_stack(&a.tap, a.mac, a.ip) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("csv_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let id = match stack.connect(a.peer, CsvParser::new()) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("csv_client: connect {}: {e}", a.peer);
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let deadline = started + a.timeout;
    let mut rows = 0u64;
    let mut field_bytes = 0u64;
    let mut finished = None;
    let mut ok = false;
    loop {
        if Instant::now() >= deadline {
            eprintln!("csv_client: timed out in state {:?}", stack.state(id));
            break;
        }
        if let Err(e) = stack.device().wait(Duration::from_millis(10)) {
            eprintln!("csv_client: {e}");
            break;
        }
        if let Err(e) = stack.poll() {
            eprintln!("csv_client: {e}");
            break;
        }
        let mut done = false;
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(_) => {
                    if let Some(r) = &a.request {
                        let msg = format!("{r}\n");
                        if stack.send(id, msg.as_bytes()) != Ok(msg.len()) {
                            eprintln!("csv_client: request too long for the send buffer");
                        }
                    }
                }
                Event::Records(_) | Event::Accepted(_) => {}
                Event::Finished(_) => finished = Some(started.elapsed()),
                Event::Closed(_) => {
                    ok = true;
                    done = true;
                }
                Event::Reset(_, why) => {
                    eprintln!("csv_client: connection {why:?}");
                    done = true;
                }
            }
        }
        if let Some(s) = stack.stream_mut(id) {
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                field_bytes += r.fields().map(|f| f.len()).sum::<u64>();
            }
            s.free_aa_records(n);
            rows += n as u64;
            if finished.is_some() && s.ready() == 0 {
                if let Some(e) = s.error() {
                    eprintln!("csv_client: parse error: {e}");
                }
                let _ = stack.close(id);
            }
        }
        if done {
            break;
        }
    }
    let bytes = stack.stream(id).map_or(0, |s| s.stream().rcv_nxt_offset());
    let secs = finished.unwrap_or_else(|| started.elapsed()).as_secs_f64();
    println!("rows={rows} bytes={bytes} seconds={secs:.6}");
    eprintln!(
        "csv_client: {:.1} Mbit/s, {field_bytes} field bytes, {:?}",
        bytes as f64 * 8.0 / secs.max(1e-9) / 1e6,
        stack.stats()
    );
    let _ = stack.release(id);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
