//! The kernel-socket baseline for `csv_client`: connects to a TCP server with
//! a plain `std::net::TcpStream`, reads the stream into `csv-core` (copying
//! each read into a user buffer, as a conventional application does), counts
//! the records, and prints the same summary line.
//!
//! ```text
//! cargo run --release -p aa-stack --example csv_socket -- ADDR:PORT \
//!     [--buffer BYTES] [--timeout SECS]
//! ```
//!
//! Output: `rows=N bytes=M seconds=S` (bytes of the stream, seconds from the
//! start of `connect` to the end of the stream), then `Mbit/s` on stderr.
//! The exit status is 0 when the stream ended properly (EOF after complete
//! records), 1 otherwise. `scripts/bench-tap.sh` runs it over a veth pair
//! beside `csv_client` over a TAP device.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use csv_core::{ReadRecordResult, Reader};

struct Args {
    peer: SocketAddr,
    buffer: usize,
    timeout: Duration,
}

const USAGE: &str = "usage: csv_socket ADDR:PORT [--buffer BYTES] [--timeout SECS]";

fn args() -> Result<Args, String> {
    let mut peer = None;
    let mut buffer = 256 * 1024;
    let mut timeout = Duration::from_secs(60);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--buffer" => {
                let v = val()?;
                buffer = v.parse().map_err(|e| format!("--buffer {v}: {e}"))?;
                if buffer == 0 {
                    return Err("--buffer must be positive".into());
                }
            }
            "--timeout" => {
                let v = val()?;
                let s: f64 = v.parse().map_err(|e| format!("--timeout {v}: {e}"))?;
                timeout = Duration::from_secs_f64(s.max(0.001));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ if peer.is_none() && !a.starts_with('-') => {
                peer = Some(a.parse().map_err(|e| format!("{a}: {e}"))?);
            }
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    Ok(Args {
        peer: peer.ok_or(USAGE)?,
        buffer,
        timeout,
    })
}

/// Counts the records and field bytes of a CSV stream fed in pieces.
struct Counter {
    rdr: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    rows: u64,
    field_bytes: u64,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            rdr: Reader::new(),
            out: vec![0; 64 * 1024],
            ends: vec![0; 1024],
            rows: 0,
            field_bytes: 0,
        }
    }

    /// Feeds `input`; an empty slice marks the end of the stream.
    fn feed(&mut self, mut input: &[u8]) {
        let at_end = input.is_empty();
        loop {
            // The fields' contents are not kept: the output and the field
            // ends restart at zero whenever they fill up.
            let (res, nin, nout, _) = self.rdr.read_record(input, &mut self.out, &mut self.ends);
            input = &input[nin..];
            self.field_bytes += nout as u64;
            match res {
                ReadRecordResult::InputEmpty => {
                    if input.is_empty() && !at_end {
                        return;
                    }
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => self.rows += 1,
                ReadRecordResult::End => return,
            }
        }
    }
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("csv_socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut sock = match TcpStream::connect_timeout(&a.peer, a.timeout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("csv_socket: connect {}: {e}", a.peer);
            return ExitCode::FAILURE;
        }
    };
    let deadline = started + a.timeout;
    let mut buf = vec![0u8; a.buffer];
    let mut counter = Counter::new();
    let mut bytes = 0u64;
    let mut ok = false;
    if let Err(e) = sock.set_read_timeout(Some(a.timeout)) {
        eprintln!("csv_socket: {e}");
        return ExitCode::FAILURE;
    }
    loop {
        if Instant::now() >= deadline {
            eprintln!("csv_socket: timed out after {bytes} bytes");
            break;
        }
        match sock.read(&mut buf) {
            Ok(0) => {
                counter.feed(&[]);
                ok = true;
                break;
            }
            Ok(n) => {
                bytes += n as u64;
                counter.feed(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("csv_socket: read after {bytes} bytes: {e}");
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("rows={} bytes={bytes} seconds={secs:.6}", counter.rows);
    eprintln!(
        "csv_socket: {:.1} Mbit/s, {} field bytes",
        bytes as f64 * 8.0 / secs.max(1e-9) / 1e6,
        counter.field_bytes
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
