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
//! records), 1 otherwise. The logic ([`read_csv`]) is the kernel-socket side
//! of `stack/benches/tap.rs`, over a veth pair beside `csv_client`'s over a
//! TAP device.

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

/// What [`read_csv`] got.
#[derive(Debug, Default)]
pub struct SocketResult {
    /// Rows read.
    pub rows: u64,
    /// Bytes of the stream.
    pub bytes: u64,
    /// Bytes in fields.
    pub field_bytes: u64,
    /// From the start of `connect` to the end of the stream.
    pub seconds: f64,
    /// The stream ended properly (EOF after complete records).
    pub ended: bool,
    /// What went wrong, if anything did.
    pub error: Option<String>,
}

/// Connects to `peer`, reads the whole stream `buffer` bytes at a time into
/// `csv-core`, counting rows, until the server closes (or `timeout`).
pub fn read_csv(peer: SocketAddr, buffer: usize, timeout: Duration) -> SocketResult {
    let mut res = SocketResult::default();
    let started = Instant::now();
    let mut sock = match TcpStream::connect_timeout(&peer, timeout) {
        Ok(s) => s,
        Err(e) => {
            res.error = Some(format!("connect {peer}: {e}"));
            return res;
        }
    };
    let deadline = started + timeout;
    let mut buf = vec![0u8; buffer.max(1)];
    let mut counter = Counter::new();
    if let Err(e) = sock.set_read_timeout(Some(timeout)) {
        res.error = Some(e.to_string());
        return res;
    }
    loop {
        if Instant::now() >= deadline {
            res.error = Some(format!("timed out after {} bytes", res.bytes));
            break;
        }
        match sock.read(&mut buf) {
            Ok(0) => {
                counter.feed(&[]);
                res.ended = true;
                break;
            }
            Ok(n) => {
                res.bytes += n as u64;
                counter.feed(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                res.error = Some(format!("read after {} bytes: {e}", res.bytes));
                break;
            }
        }
    }
    res.seconds = started.elapsed().as_secs_f64();
    res.rows = counter.rows;
    res.field_bytes = counter.field_bytes;
    res
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("csv_socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = read_csv(a.peer, a.buffer, a.timeout);
    if let Some(e) = &r.error {
        eprintln!("csv_socket: {e}");
    }
    println!("rows={} bytes={} seconds={:.6}", r.rows, r.bytes, r.seconds);
    eprintln!(
        "csv_socket: {:.1} Mbit/s, {} field bytes",
        r.bytes as f64 * 8.0 / r.seconds.max(1e-9) / 1e6,
        r.field_bytes
    );
    if r.ended {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
