//! An HTTP/1.1 client on aa's own TCP endpoint: one keep-alive connection
//! through a TAP device, `--count` GET requests for `--path` sent one at a
//! time, each response read as parsed `response` and `body` records (the
//! compiled grammar of `grammars/http_response.aag`) and freed at once.
//! Built with feature `dpdk`, `--eal "ARGS" [--dpdk-port NAME]` in place of
//! `--tap` runs it on a DPDK port instead (see `csv_client`).
//!
//! ```text
//! cargo run --release -p aa-stack --example http_sink -- \
//!     --tap NAME --ip 198.51.100.2/24 --peer 198.51.100.1:PORT \
//!     --path /FILE --count N [--mac 02:aa:00:00:00:02] [--timeout SECS]
//! ```
//!
//! Output: one line `responses=N body_bytes=M status_200=K ... seconds=S`
//! (a `status_CODE` count per status seen; seconds from the SYN to the end
//! of the last response). The exit status is 0 when every response came
//! and the connection closed properly, 1 otherwise.
//!
//! The device is opened (created if it does not exist) in the current
//! network namespace, which should be one of its own; for example, as root:
//!
//! ```text
//! ip netns add aa-demo
//! ip -n aa-demo tuntap add dev aa0 mode tap
//! ip -n aa-demo addr add 198.51.100.1/24 dev aa0
//! ip -n aa-demo link set aa0 up
//! ip netns exec aa-demo python3 -c 'import http.server as h; \
//!     h.SimpleHTTPRequestHandler.protocol_version = "HTTP/1.1"; \
//!     h.ThreadingHTTPServer(("198.51.100.1", 8080), h.SimpleHTTPRequestHandler).serve_forever()' &
//! ip netns exec aa-demo target/release/examples/http_sink --tap aa0 \
//!     --ip 198.51.100.2/24 --peer 198.51.100.1:8080 --path /README.md --count 100
//! ip netns del aa-demo
//! ```
//!
//! The logic ([`run_sink`]) is shared with `stack/tests/http_apps.rs` and
//! `stack/tests/dpdk_tap.rs`.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aa_grammars::http_response::{kinds, values, HttpResponseParser};
use aa_runtime::{AaState, Field, Packet};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::tcp::{Event, Stack};

use common::{example_config, App, Device, TapOpts};

/// What one connection of [`run_sink`] got.
#[derive(Debug, Default)]
pub struct SinkResult {
    /// Complete responses.
    pub responses: u64,
    /// Body bytes of all responses.
    pub body_bytes: u64,
    /// Responses per status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Status and body length of each response, in order.
    pub each: Vec<(u16, u64)>,
    /// The bodies, when asked to keep them.
    pub bodies: Vec<Vec<u8>>,
    /// From the connect to the end of the last response.
    pub seconds: f64,
    /// Every response came and the connection closed (FIN both ways).
    pub clean: bool,
    /// What went wrong, if anything did.
    pub error: Option<String>,
}

impl SinkResult {
    /// The summary line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "responses={} body_bytes={}",
            self.responses, self.body_bytes
        );
        for (code, n) in &self.statuses {
            s += &format!(" status_{code}={n}");
        }
        s += &format!(" seconds={:.6}", self.seconds);
        s
    }
}

/// The response being received.
struct Current {
    status: u16,
    /// Body bytes still to come by Content-Length; `None` when chunked or
    /// until the end of the stream.
    remaining: Option<u64>,
    chunked: bool,
    len: u64,
    body: Vec<u8>,
}

/// The value of header field `h` if its name is `name` (`name` ends in ':').
fn header_value<'a, P: Packet>(h: &Field<'a, P>, name: &[u8]) -> Option<Field<'a, P>> {
    h.starts_with_ignore_ascii_case(name)
        .then(|| h.slice(name.len() as u64, h.len()).trim_ascii())
}

/// Connects to `peer` and sends a GET for each of `paths`, one at a time on
/// the same connection, each once the previous response has been received
/// in full; then closes and releases the connection. `host` goes in the
/// Host header. Bodies are kept in [`SinkResult::bodies`] when
/// `keep_bodies` (otherwise only counted). Errors of the connection or the
/// parser end up in [`SinkResult::error`].
pub fn run_sink<D: Device, A: FrameAlloc<Packet = D::Packet>>(
    stack: &mut Stack<D, HttpResponseParser, A>,
    peer: SocketAddrV4,
    host: &str,
    paths: &[String],
    keep_bodies: bool,
    timeout: Duration,
) -> SinkResult {
    let mut res = SinkResult::default();
    let id = match stack.connect(peer, HttpResponseParser::new()) {
        Ok(id) => id,
        Err(e) => {
            res.error = Some(format!("connect {peer}: {e}"));
            return res;
        }
    };
    let started = Instant::now();
    let deadline = started + timeout;
    let mut sent = 0usize;
    let mut want_send = false;
    let mut cur: Option<Current> = None;
    let (mut peer_fin, mut close_sent, mut closed) = (false, false, false);
    let mut last_done = None;
    // The server said `Connection: close`: no more requests after this one.
    let mut server_closes = false;
    let mut queued = false;
    while !closed {
        if Instant::now() >= deadline {
            res.error = Some(format!(
                "timed out in state {:?} after {} responses",
                stack.state(id),
                res.responses
            ));
            break;
        }
        // What was queued last time goes out on this poll: no waiting then.
        let wait = if queued {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        queued = false;
        if let Err(e) = stack.device().wait_rx(wait) {
            res.error = Some(e);
            break;
        }
        if let Err(e) = stack.poll() {
            res.error = Some(e.to_string());
            break;
        }
        let mut reset = None;
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(_) => want_send = true,
                Event::Finished(_) => peer_fin = true,
                Event::Closed(_) => closed = true,
                Event::Reset(_, why) => reset = Some(why),
                // The stream's state is checked below, after its records.
                Event::Records(_) | Event::Accepted(_) | Event::ParseFailed(_) => {}
            }
        }
        if let Some(why) = reset {
            res.error = Some(format!("connection {why:?}"));
            break;
        }
        let mut stream_failed = None;
        let mut stream_ended = false;
        if let Some(s) = stack.stream_mut(id) {
            let mut n = 0;
            let mut done = Vec::new();
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                match r.kind() {
                    kinds::RESPONSE => {
                        if cur.is_some() {
                            stream_failed = Some("a response before the last one ended".into());
                        }
                        // The status code as the grammar parsed it.
                        let status = r.value(values::response::CODE).unwrap_or(0).min(999) as u16;
                        let (mut cl, mut chunked) = (None, false);
                        for h in r.fields().skip(3) {
                            if let Some(v) = header_value(&h, b"content-length:") {
                                cl = v.parse_dec().ok();
                            } else if let Some(v) = header_value(&h, b"transfer-encoding:") {
                                chunked = v.find(b"chunked").is_some();
                            } else if let Some(v) = header_value(&h, b"connection:") {
                                server_closes |= v.eq_ignore_ascii_case(b"close");
                            }
                        }
                        let no_body = status < 200 || status == 204 || status == 304;
                        let c = Current {
                            status,
                            remaining: if chunked { None } else { cl },
                            chunked,
                            len: 0,
                            body: Vec::new(),
                        };
                        if no_body || (!chunked && cl == Some(0)) {
                            done.push(c);
                        } else {
                            cur = Some(c);
                        }
                    }
                    kinds::BODY => {
                        let Some(c) = cur.as_mut() else {
                            stream_failed = Some("a body without a response".into());
                            continue;
                        };
                        if let Some(d) = r.field(0) {
                            let len = d.len();
                            c.len += len;
                            if keep_bodies {
                                for ch in d.chunks() {
                                    c.body.extend_from_slice(ch);
                                }
                            }
                            if let Some(rem) = c.remaining.as_mut() {
                                *rem = rem.saturating_sub(len);
                            }
                        }
                        if !c.chunked && c.remaining == Some(0) {
                            done.extend(cur.take());
                        }
                    }
                    kinds::TRAILERS => done.extend(cur.take()),
                    _ => {}
                }
            }
            s.free_aa_records(n);
            for c in done {
                res.responses += 1;
                res.body_bytes += c.len;
                *res.statuses.entry(c.status).or_default() += 1;
                res.each.push((c.status, c.len));
                if keep_bodies {
                    res.bodies.push(c.body);
                }
                last_done = Some(started.elapsed());
                want_send = true;
            }
            match s.state() {
                AaState::Failed => {
                    stream_failed = Some(format!("parse error: {:?}", s.error()));
                }
                AaState::Ended => stream_ended = s.ready() == 0,
                AaState::Active => {}
            }
        }
        // A body that lasts until the end of the stream.
        if peer_fin && stream_ended {
            if let Some(c) = cur.take().filter(|c| c.remaining.is_none() && !c.chunked) {
                res.responses += 1;
                res.body_bytes += c.len;
                *res.statuses.entry(c.status).or_default() += 1;
                res.each.push((c.status, c.len));
                if keep_bodies {
                    res.bodies.push(c.body);
                }
                last_done = Some(started.elapsed());
            }
        }
        if let Some(e) = stream_failed {
            res.error.get_or_insert(e);
        }
        if want_send
            && cur.is_none()
            && sent < paths.len()
            && !peer_fin
            && !close_sent
            && !server_closes
        {
            let req = format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aa-http_sink\r\nAccept: */*\r\n\r\n",
                paths[sent]
            );
            match stack.send(id, req.as_bytes()) {
                Ok(n) if n == req.len() => {
                    sent += 1;
                    queued = true;
                }
                Ok(_) => {
                    res.error = Some("request too long for the send buffer".into());
                    break;
                }
                Err(e) => {
                    res.error = Some(format!("send: {e}"));
                    break;
                }
            }
            want_send = false;
        }
        let all_done = res.responses as usize >= paths.len() || (server_closes && cur.is_none());
        if !close_sent && (all_done || (peer_fin && stream_ended) || res.error.is_some()) {
            let _ = stack.close(id);
            close_sent = true;
            queued = true;
        }
    }
    res.seconds = last_done.unwrap_or_else(|| started.elapsed()).as_secs_f64();
    if res.error.is_none() && res.responses as usize != paths.len() {
        res.error = Some(format!(
            "{} responses to {} requests{}",
            res.responses,
            paths.len(),
            if server_closes {
                " (the server sent `Connection: close`)"
            } else {
                ""
            }
        ));
    }
    res.clean = closed && res.error.is_none();
    let _ = stack.release(id);
    res
}

struct Args {
    opts: TapOpts,
    ip: Ipv4Addr,
    peer: SocketAddrV4,
    path: String,
    count: usize,
}

const USAGE: &str = "usage: http_sink (--tap NAME | --eal \"EAL ARGS\" [--dpdk-port NAME]) \
                     --ip A.B.C.D[/LEN] --peer A.B.C.D:PORT \
                     --path /P --count N [--mac MAC] [--timeout SECS]";

fn args() -> Result<Args, String> {
    let mut o = TapOpts::new(Duration::from_secs(120));
    let mut path = None;
    let mut count = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        if o.take(&a, &mut val)? {
            continue;
        }
        match a.as_str() {
            "--path" => {
                let v = val()?;
                if !v.starts_with('/') || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(format!("--path {v:?}: an absolute path without spaces"));
                }
                path = Some(v);
            }
            "--count" => {
                let v = val()?;
                count = v.parse().map_err(|e| format!("--count {v}: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    o.check_device(USAGE)?;
    Ok(Args {
        ip: o.ip.ok_or(USAGE)?,
        peer: o.peer.ok_or(USAGE)?,
        path: path.ok_or(USAGE)?,
        count,
        opts: o,
    })
}

/// The example's run: [`run_sink`], the summary printed.
struct Sink {
    peer: SocketAddrV4,
    paths: Vec<String>,
    timeout: Duration,
}

impl App<HttpResponseParser> for Sink {
    type Out = bool;

    fn run<D: Device, A: FrameAlloc<Packet = D::Packet>>(
        self,
        stack: &mut Stack<D, HttpResponseParser, A>,
    ) -> bool {
        let host = self.peer.to_string();
        let res = run_sink(stack, self.peer, &host, &self.paths, false, self.timeout);
        println!("{}", res.summary());
        if let Some(e) = &res.error {
            eprintln!("http_sink: {e}");
        }
        eprintln!("http_sink: {:?}", stack.stats());
        res.clean
    }
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("http_sink: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sink = Sink {
        peer: a.peer,
        paths: vec![a.path.clone(); a.count],
        timeout: a.opts.timeout,
    };
    match a.opts.run(a.ip, example_config(), sink) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("http_sink: {e}");
            ExitCode::FAILURE
        }
    }
}
