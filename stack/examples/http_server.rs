//! An HTTP/1.1 file server on aa's own TCP endpoint: listens through a TAP
//! device (or, built with feature `dpdk`, a DPDK port: `--eal "ARGS"
//! [--dpdk-port NAME]` in place of `--tap`, see `csv_client`), reads each connection's requests as parsed `request` records (the
//! compiled grammar of `grammars/http_request.aag`), frees them at once, and
//! answers each GET (and HEAD) with the file of that name under `--dir`
//! (`Content-Length`, 404 when there is none), keeping connections alive
//! until the client closes or asks for `Connection: close`.
//!
//! ```text
//! cargo run --release -p aa-stack --example http_server -- \
//!     --tap NAME --ip 198.51.100.2/24 --port 8080 --dir DIR \
//!     [--requests N] [--mac 02:aa:00:00:00:02]
//! ```
//!
//! It serves until killed (SIGINT or SIGTERM), or with `--requests N` until
//! N requests have been answered and every connection has closed; then it
//! prints one line `connections=C requests=N body_bytes=M status_200=K ...
//! seconds=S`. Other methods get 405; a request the parser rejects gets 400
//! and the connection closes. Files are read into memory per request and
//! sent through the endpoint's (copying) send buffer.
//!
//! The device is opened (created if it does not exist) in the current
//! network namespace, which should be one of its own; for example, as root:
//!
//! ```text
//! ip netns add aa-demo
//! ip -n aa-demo tuntap add dev aa0 mode tap
//! ip -n aa-demo addr add 198.51.100.1/24 dev aa0
//! ip -n aa-demo link set aa0 up
//! ip netns exec aa-demo target/release/examples/http_server --tap aa0 \
//!     --ip 198.51.100.2/24 --port 8080 --dir data &
//! ip netns exec aa-demo curl -s http://198.51.100.2:8080/trades.csv | wc -c
//! kill %1; ip netns del aa-demo
//! ```
//!
//! The logic ([`serve`]) is shared with `stack/tests/http_apps.rs` and
//! `stack/tests/dpdk_tap.rs`.

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aa_grammars::http_request::{kinds, HttpRequestParser};
use aa_runtime::{AaState, Field, Packet};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::tcp::{ConnId, Event, Stack};

use common::{example_config, App, Device, TapOpts};

/// When [`serve`] stops.
pub struct ServeOpts<'a> {
    /// Where the files are.
    pub dir: PathBuf,
    /// Stop once this many requests have been answered and no connection is
    /// left.
    pub max_requests: Option<u64>,
    /// Give up then (open connections are reset).
    pub deadline: Option<Instant>,
    /// Stop (resetting open connections) when this becomes true.
    pub stop: Option<&'a AtomicBool>,
}

/// What [`serve`] did.
#[derive(Debug, Default)]
pub struct ServeSummary {
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered.
    pub requests: u64,
    /// Body bytes queued in responses.
    pub body_bytes: u64,
    /// Responses per status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections reset by the peer or timed out.
    pub resets: u64,
    /// Connections still open at the end (reset then).
    pub left_open: u64,
    /// The deadline passed.
    pub timed_out: bool,
    /// From the start to the end of serving.
    pub seconds: f64,
}

impl ServeSummary {
    /// The summary line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "connections={} requests={} body_bytes={}",
            self.connections, self.requests, self.body_bytes
        );
        for (code, n) in &self.statuses {
            s += &format!(" status_{code}={n}");
        }
        s += &format!(" seconds={:.6}", self.seconds);
        s
    }
}

/// One accepted connection.
#[derive(Default)]
struct Conn {
    /// Response bytes not yet taken by the send buffer, from `pos`.
    out: Vec<u8>,
    pos: usize,
    /// Close once `out` is sent (Connection: close, HTTP/1.0, bad request).
    close_after: bool,
    /// The peer sent its FIN.
    peer_fin: bool,
    fin_sent: bool,
}

/// The file `target` names under `dir`, if it is a plain relative path
/// without `..` (query and fragment dropped, no percent-decoding).
fn resolve(dir: &Path, target: &[u8]) -> Option<PathBuf> {
    let t = std::str::from_utf8(target).ok()?;
    let t = t.split(['?', '#']).next()?;
    let rel = t.strip_prefix('/')?;
    let rel = Path::new(rel);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel))
}

/// Whether header field `h` is named `name` (which ends in ':') and its
/// value contains `token` (case-insensitive).
fn header_has<P: Packet>(h: &Field<'_, P>, name: &[u8], token: &[u8]) -> bool {
    if !h.starts_with_ignore_ascii_case(name) {
        return false;
    }
    let v = h.slice(name.len() as u64, h.len()).to_vec();
    v.to_ascii_lowercase()
        .windows(token.len())
        .any(|w| w == token)
}

fn head(out: &mut Vec<u8>, status: u16, reason: &str, len: usize, close: bool, extra: &str) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {reason}\r\nServer: aa-http_server\r\nContent-Length: {len}\r\n{extra}{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )
        .as_bytes(),
    );
}

/// Listens on `port` and answers requests until `opts` says stop. Open
/// connections at the end are reset and released; every connection is
/// released.
pub fn serve<D: Device, A: FrameAlloc<Packet = D::Packet>>(
    stack: &mut Stack<D, HttpRequestParser, A>,
    port: u16,
    opts: &ServeOpts,
) -> Result<ServeSummary, String> {
    stack
        .listen(port, HttpRequestParser::new)
        .map_err(|e| format!("listen {port}: {e}"))?;
    let started = Instant::now();
    let mut sum = ServeSummary::default();
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut busy = false;
    let mut failure = None;
    loop {
        if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        if opts.max_requests.is_some_and(|m| sum.requests >= m) && conns.is_empty() {
            break;
        }
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            sum.timed_out = true;
            break;
        }
        let wait = if busy {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        if let Err(e) = stack.device().wait_rx(wait) {
            failure = Some(e);
            break;
        }
        if let Err(e) = stack.poll() {
            failure = Some(e.to_string());
            break;
        }
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Accepted(c) => {
                    sum.connections += 1;
                    conns.insert(c, Conn::default());
                }
                Event::Finished(c) => {
                    if let Some(k) = conns.get_mut(&c) {
                        k.peer_fin = true;
                    }
                }
                Event::Closed(c) => {
                    conns.remove(&c);
                    let _ = stack.release(c);
                }
                Event::Reset(c, _) => {
                    sum.resets += 1;
                    conns.remove(&c);
                    let _ = stack.release(c);
                }
                // A failed stream gets its 400 below, after its requests.
                Event::Connected(_) | Event::Records(_) | Event::ParseFailed(_) => {}
            }
        }
        busy = false;
        for (&id, k) in conns.iter_mut() {
            let Some(s) = stack.stream_mut(id) else {
                continue;
            };
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                if r.kind() != kinds::REQUEST || k.close_after {
                    continue;
                }
                let (Some(method), Some(target), Some(version)) =
                    (r.field(0), r.field(1), r.field(2))
                else {
                    continue;
                };
                let mut close = false;
                let mut keep_alive = false;
                for h in r.fields().skip(3) {
                    close |= header_has(&h, b"connection:", b"close");
                    keep_alive |= header_has(&h, b"connection:", b"keep-alive");
                }
                if version.eq_bytes(b"HTTP/1.0") && !keep_alive {
                    close = true;
                }
                k.close_after = close;
                let is_head = method.eq_bytes(b"HEAD");
                let status = if method.eq_bytes(b"GET") || is_head {
                    let file =
                        resolve(&opts.dir, &target.to_vec()).and_then(|p| std::fs::read(p).ok());
                    match file {
                        Some(body) => {
                            head(
                                &mut k.out,
                                200,
                                "OK",
                                body.len(),
                                close,
                                "Content-Type: application/octet-stream\r\n",
                            );
                            if !is_head {
                                k.out.extend_from_slice(&body);
                                sum.body_bytes += body.len() as u64;
                            }
                            200
                        }
                        None => {
                            let body = b"not found\n";
                            head(
                                &mut k.out,
                                404,
                                "Not Found",
                                body.len(),
                                close,
                                "Content-Type: text/plain\r\n",
                            );
                            if !is_head {
                                k.out.extend_from_slice(body);
                                sum.body_bytes += body.len() as u64;
                            }
                            404
                        }
                    }
                } else {
                    head(
                        &mut k.out,
                        405,
                        "Method Not Allowed",
                        0,
                        close,
                        "Allow: GET, HEAD\r\n",
                    );
                    405
                };
                sum.requests += 1;
                *sum.statuses.entry(status).or_default() += 1;
            }
            s.free_aa_records(n);
            if s.state() == AaState::Failed && !k.close_after {
                head(&mut k.out, 400, "Bad Request", 0, true, "");
                sum.requests += 1;
                *sum.statuses.entry(400).or_default() += 1;
                k.close_after = true;
            }
            let idle = s.ready() == 0;
            while k.pos < k.out.len() {
                match stack.send(id, &k.out[k.pos..]) {
                    Ok(0) | Err(_) => break,
                    Ok(m) => {
                        k.pos += m;
                        busy = true;
                    }
                }
            }
            if k.pos == k.out.len() {
                k.out.clear();
                k.pos = 0;
                if (k.close_after || k.peer_fin) && idle && !k.fin_sent {
                    let _ = stack.close(id);
                    k.fin_sent = true;
                    busy = true;
                }
            }
        }
    }
    for (id, _) in conns.drain() {
        sum.left_open += 1;
        let _ = stack.release(id);
    }
    stack.unlisten(port);
    sum.seconds = started.elapsed().as_secs_f64();
    match failure {
        Some(e) => Err(e),
        None => Ok(sum),
    }
}

struct Args {
    opts: TapOpts,
    ip: Ipv4Addr,
    port: u16,
    dir: PathBuf,
    requests: Option<u64>,
}

const USAGE: &str = "usage: http_server (--tap NAME | --eal \"EAL ARGS\" [--dpdk-port NAME]) \
                     --ip A.B.C.D[/LEN] --port P --dir DIR [--requests N] [--mac MAC]";

fn args() -> Result<Args, String> {
    let mut o = TapOpts::new(Duration::ZERO);
    let mut port = None;
    let mut dir = None;
    let mut requests = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        // A client's options: not this server's.
        if !matches!(a.as_str(), "--peer" | "--timeout") && o.take(&a, &mut val)? {
            continue;
        }
        match a.as_str() {
            "--port" => {
                let v = val()?;
                port = Some(v.parse().map_err(|e| format!("--port {v}: {e}"))?);
            }
            "--dir" => dir = Some(PathBuf::from(val()?)),
            "--requests" => {
                let v = val()?;
                requests = Some(v.parse().map_err(|e| format!("--requests {v}: {e}"))?);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    o.check_device(USAGE)?;
    Ok(Args {
        ip: o.ip.ok_or(USAGE)?,
        port: port.ok_or(USAGE)?,
        dir: dir.ok_or(USAGE)?,
        requests,
        opts: o,
    })
}

/// The example's run: [`serve`] until stopped, the summary printed.
struct Server {
    port: u16,
    opts: ServeOpts<'static>,
}

impl App<HttpRequestParser> for Server {
    type Out = bool;

    fn run<D: Device, A: FrameAlloc<Packet = D::Packet>>(
        self,
        stack: &mut Stack<D, HttpRequestParser, A>,
    ) -> bool {
        match serve(stack, self.port, &self.opts) {
            Ok(sum) => {
                println!("{}", sum.summary());
                eprintln!("http_server: {:?}", stack.stats());
                true
            }
            Err(e) => {
                eprintln!("http_server: {e}");
                false
            }
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("http_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !a.dir.is_dir() {
        eprintln!("http_server: --dir {}: not a directory", a.dir.display());
        return ExitCode::FAILURE;
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let h = on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
    }
    let server = Server {
        port: a.port,
        opts: ServeOpts {
            dir: a.dir,
            max_requests: a.requests,
            deadline: None,
            stop: Some(&STOP),
        },
    };
    match a.opts.run(a.ip, example_config(), server) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("http_server: {e}");
            ExitCode::FAILURE
        }
    }
}
