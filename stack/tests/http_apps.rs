//! The HTTP examples against Linux peers, over a TAP device.
//!
//! Each test makes its own network namespace `aa-http-<pid>-<n>`, opens a
//! TAP device from the test process, moves it into the namespace, gives the
//! kernel's side 198.51.100.1/24 there and brings it up; the examples' logic
//! (`stack/examples/http_sink.rs` and `http_server.rs`, included as modules)
//! runs in-process as 198.51.100.2 on aa's TCP endpoint.
//!
//! - `sink_against_python`: a small HTTP/1.1 keep-alive server in Python
//!   (`BaseHTTPRequestHandler`, `protocol_version = "HTTP/1.1"`) serves a
//!   few generated files, some of them chunked; `run_sink` fetches them one
//!   after the other on one connection, a missing one (404) among them.
//!   Every status, body length and body must equal the files.
//! - `curl_against_server`: `serve` answers four curl processes running at
//!   once, each fetching several files (and a missing one) on one keep-alive
//!   connection. Every download must be byte-identical to its file, every
//!   curl must have connected once.
//!
//! The packet pool must be full at the end of each. Nothing is configured
//! in the host namespace; the namespace and the temporary files are deleted
//! at the end, on failure too (guards).
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `/dev/net/tun`, `ip`
//! (iproute2), python3 and curl. Without them a test prints "skipped: ..."
//! and passes, unless `AA_REQUIRE_NET=1`: then it fails.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aa_grammars::http_request::HttpRequestParser;
use aa_grammars::http_response::HttpResponseParser;
use aa_runtime::PacketPool;
use aa_stack::io::tap::TapIo;
use aa_stack::tcp::{Stack, StackConfig};

use common::netns::{loud, skip, spawn_server, tap_net, Netns, Reaped, TapNet, OUR_IP, OUR_MAC};
use common::peers::{make_files, Curls, TempDir, PY_HTTP_SERVER};

#[allow(dead_code)]
#[path = "../examples/http_sink.rs"]
mod http_sink;

// Each example includes `examples/common/mod.rs` for itself.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/http_server.rs"]
mod http_server;

const SERVER_PORT: u16 = 8080;

/// The namespace with the kernel's side of the TAP device up, and our side
/// opened in this process.
struct Net {
    ns: Netns,
    tap: TapIo,
    pool: PacketPool,
}

/// Sets up [`Net`]; `Err` is a reason to skip.
fn net(progs: &[&str]) -> Result<Net, String> {
    let pool = PacketPool::new(1024, 2048);
    let TapNet { tap, dev: _, ns } =
        tap_net("aa-http", "aah", &pool, progs, TapIo::open, |_, _| {})?;
    Ok(Net { ns, tap, pool })
}

/// `run_sink` fetches every file (some twice, some chunked) and a missing
/// one on one keep-alive connection to Python's HTTP/1.1 server.
#[test]
fn sink_against_python() {
    let net = match net(&["python3"]) {
        Ok(n) => n,
        Err(why) => skip!("{why}"),
    };
    let dir = TempDir::new(&format!("{}.files", net.ns.name));
    let files = make_files(&dir.0);

    let mut cmd = net
        .ns
        .cmd(&["python3", "-c", PY_HTTP_SERVER, dir.0.to_str().unwrap()]);
    let (child, line) = spawn_server(&mut cmd);
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));

    // What to fetch, and the (status, body) each should bring.
    let mut paths = Vec::new();
    let mut want: Vec<(u16, &[u8])> = Vec::new();
    for (name, data) in files.iter().chain(files.iter().rev()) {
        paths.push(format!("/{name}"));
        want.push((200, data));
    }
    paths.push("/missing.bin".into());
    want.push((404, b"no such file\n"));
    for (name, data) in files.iter().skip(1) {
        paths.push(format!("/chunked/{name}"));
        want.push((200, data));
    }
    paths.push(format!("/{}", files[2].0));
    want.push((200, &files[2].1));

    let Net { ns, tap, pool } = net;
    let cfg = StackConfig {
        arp_tries: 5,
        ..StackConfig::default()
    };
    let mut stack: Stack<TapIo, HttpResponseParser> =
        Stack::new(tap, pool.clone(), OUR_MAC, OUR_IP, cfg);
    let peer = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), port);
    let started = Instant::now();
    let res = http_sink::run_sink(
        &mut stack,
        peer,
        &peer.to_string(),
        &paths,
        true,
        Duration::from_secs(90),
    );
    let secs = started.elapsed().as_secs_f64();
    loud(&format!(
        "http_sink against python: {} ({secs:.3} s), {:?}",
        res.summary(),
        stack.stats()
    ));
    assert_eq!(res.error, None, "{}", res.summary());
    assert!(res.clean, "the connection did not close properly");
    assert_eq!(res.responses as usize, paths.len());
    for (i, ((status, len), body)) in res.each.iter().zip(&res.bodies).enumerate() {
        let (ws, wb) = want[i];
        assert_eq!(*status, ws, "response {i} to {}", paths[i]);
        assert_eq!(*len, wb.len() as u64, "body length of {}", paths[i]);
        assert!(body == wb, "body of {} differs", paths[i]);
    }
    let total: u64 = want.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(res.body_bytes, total);
    assert_eq!(res.statuses.get(&404), Some(&1));
    common::assert_pool_full(&pool);
    drop(stack);
    drop(child);
    drop(ns);
}

/// Four curl processes at once, each fetching several files and a missing
/// one on one keep-alive connection, against `serve`.
#[test]
fn curl_against_server() {
    let net = match net(&["curl"]) {
        Ok(n) => n,
        Err(why) => skip!("{why}"),
    };
    let dir = TempDir::new(&format!("{}.files", net.ns.name));
    let out = TempDir::new(&format!("{}.out", net.ns.name));
    let files = make_files(&dir.0);
    let Net { ns, tap, pool } = net;
    let mut stack: Stack<TapIo, HttpRequestParser> =
        Stack::new(tap, pool.clone(), OUR_MAC, OUR_IP, StackConfig::default());

    // Curl k fetches the files rotated by k, then a missing file, then the
    // first of its files again.
    let base = format!("http://{OUR_IP}:{SERVER_PORT}");
    let clients = 4;
    let curls = Curls::spawn(&ns, &base, &files, &out.0, clients);
    let requests = curls.requests();
    let opts = http_server::ServeOpts {
        dir: dir.0.clone(),
        max_requests: Some(requests),
        deadline: Some(Instant::now() + Duration::from_secs(90)),
        stop: None,
    };
    let sum = http_server::serve(&mut stack, SERVER_PORT, &opts).expect("serve");
    loud(&format!(
        "http_server against {clients} curls: {}, {:?}",
        sum.summary(),
        stack.stats()
    ));

    assert!(!sum.timed_out, "timed out: {}", sum.summary());
    assert_eq!(sum.requests, requests);
    assert_eq!(sum.connections, clients as u64, "one connection per curl");
    assert_eq!((sum.resets, sum.left_open), (0, 0));
    curls.check();
    common::assert_pool_full(&pool);
    drop(stack);
    drop(ns);
}

/// Sends `stdin` to 198.51.100.2 port `argv[1]` in one write, reads until
/// the server closes, and writes what came to stdout.
const PY_RAW_CLIENT: &str = r#"
import socket, sys
data = sys.stdin.buffer.read()
s = socket.create_connection(('198.51.100.2', int(sys.argv[1])), timeout=30)
s.sendall(data)
out = b''
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"#;

/// Pipelined requests in one write (GET, a missing file, a path outside the
/// directory, HEAD, POST with a body, and a GET with `Connection: close`):
/// `serve` answers them in order, byte for byte, then closes.
#[test]
fn pipelined_requests_against_server() {
    let net = match net(&["python3"]) {
        Ok(n) => n,
        Err(why) => skip!("{why}"),
    };
    let dir = TempDir::new(&format!("{}.files", net.ns.name));
    let files = make_files(&dir.0);
    let Net { ns, tap, pool } = net;
    let mut stack: Stack<TapIo, HttpRequestParser> =
        Stack::new(tap, pool.clone(), OUR_MAC, OUR_IP, StackConfig::default());

    let (small, big) = (&files[2], &files[6]);
    let h = "Host: 198.51.100.2\r\n";
    let requests = format!(
        "GET /{} HTTP/1.1\r\n{h}\r\n\
         GET /missing.bin HTTP/1.1\r\n{h}\r\n\
         GET /../{}/{} HTTP/1.1\r\n{h}\r\n\
         HEAD /{} HTTP/1.1\r\n{h}\r\n\
         POST /{} HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\nhello\
         GET /{} HTTP/1.1\r\n{h}Connection: close\r\n\r\n",
        small.0,
        dir.0.file_name().unwrap().to_str().unwrap(),
        small.0,
        big.0,
        small.0,
        big.0,
    );
    let ok = |len: usize, close: bool| {
        format!(
            "HTTP/1.1 200 OK\r\nServer: aa-http_server\r\nContent-Length: {len}\r\n\
             Content-Type: application/octet-stream\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes()
    };
    let not_found = b"HTTP/1.1 404 Not Found\r\nServer: aa-http_server\r\nContent-Length: 10\r\n\
                      Content-Type: text/plain\r\n\r\nnot found\n";
    let mut want = ok(small.1.len(), false);
    want.extend_from_slice(&small.1);
    want.extend_from_slice(not_found);
    want.extend_from_slice(not_found);
    want.extend(ok(big.1.len(), false));
    want.extend_from_slice(
        b"HTTP/1.1 405 Method Not Allowed\r\nServer: aa-http_server\r\nContent-Length: 0\r\n\
          Allow: GET, HEAD\r\n\r\n",
    );
    want.extend(ok(big.1.len(), true));
    want.extend_from_slice(&big.1);

    let mut child = ns
        .cmd(&["python3", "-c", PY_RAW_CLIENT, &SERVER_PORT.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(requests.as_bytes())
        .expect("write the requests");
    // Read what it writes as it goes: it writes more than a pipe holds.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut got).map(|_| got)
    });
    let mut child = Reaped(child);

    let opts = http_server::ServeOpts {
        dir: dir.0.clone(),
        max_requests: Some(6),
        deadline: Some(Instant::now() + Duration::from_secs(60)),
        stop: None,
    };
    let sum = http_server::serve(&mut stack, SERVER_PORT, &opts).expect("serve");
    loud(&format!(
        "http_server, pipelined: {}, {:?}",
        sum.summary(),
        stack.stats()
    ));
    let status = child.0.wait().expect("wait for python3");
    assert!(status.success(), "python3 client: {status}");
    let got = reader.join().unwrap().expect("read the responses");
    assert!(!sum.timed_out, "timed out: {}", sum.summary());
    assert_eq!(
        (sum.connections, sum.requests, sum.resets, sum.left_open),
        (1, 6, 0, 0)
    );
    assert_eq!(
        got.len(),
        want.len(),
        "{}",
        String::from_utf8_lossy(&got[..got.len().min(600)])
    );
    assert!(got == want, "the responses differ");
    common::assert_pool_full(&pool);
    drop(stack);
    drop(ns);
}
