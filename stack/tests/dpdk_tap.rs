//! The TCP endpoint on DPDK, against the Linux kernel: the TAP live tests
//! again, over DPDK's `net_tap` driver instead of aa's own TAP backend.
//!
//! The test makes a network namespace `aa-dpdk-<pid>-<n>`, moves its own
//! thread into it (`setns`) and starts EAL there with
//! `--vdev=net_tap0,iface=aad<pid>`: the driver creates that kernel
//! interface in the namespace of the thread that starts EAL. The kernel's
//! side gets 198.51.100.1/24 and comes up; [`Stack`] runs on the DPDK port as
//! 198.51.100.2, receiving into mbufs (records point into them) and building
//! what it sends in mbufs of the same pool. EAL starts once per process, so
//! the scenarios are steps of one test, each with a fresh stack on the same
//! port ([`Stack::into_device`]):
//!
//! 1. `csv_client`'s logic ([`csv_client::fetch_csv`]) against a python3
//!    server sending about 1.5 MB of CSV with quoted fields: every field of
//!    every row equals what Python's `csv` module reads.
//! 2. `http_sink`'s logic against Python's HTTP/1.1 server, one keep-alive
//!    connection: every status, body length and body equals the files (some
//!    chunked, a missing one).
//! 3. `http_server`'s logic answering four curl processes at once, each
//!    fetching several files on one keep-alive connection: every download is
//!    byte-identical to its file.
//!
//! After each step every mbuf is back in the pool except those the port's
//! receive ring holds (as many as right after the port started); once the
//! port is stopped and closed at the end, all of them. Nothing is configured in the host
//! namespace; the namespace and the temporary files are deleted at the end,
//! on failure too (guards).
//!
//! Needs root, `/dev/net/tun`, `ip` (iproute2), python3, curl and DPDK's
//! `net_tap` driver. Without the first ones the test prints "skipped: ..."
//! and passes, unless `AA_REQUIRE_NET=1`: then it fails.
#![cfg(feature = "dpdk")]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_grammars::http_request::HttpRequestParser;
use aa_grammars::http_response::HttpResponseParser;
use aa_runtime::{Packet, PoolError};
use aa_stack::dpdk::{Eal, Mempool, Port, PortConfig};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::tcp::{Stack, StackConfig};

use common::netns::{
    loud, missing_prerequisite, next_n, skip, spawn_server, Netns, Reaped, TempFile, OUR_IP,
    OUR_MAC,
};

#[allow(dead_code)]
#[path = "../examples/csv_client.rs"]
mod csv_client;

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/http_sink.rs"]
mod http_sink;

// Each example includes `examples/common/mod.rs` for itself.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/http_server.rs"]
mod http_server;

const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const SERVER_PORT: u16 = 8080;

/// This thread in another network namespace until dropped; then back in the
/// one it was in.
struct InNetns {
    home: OwnedFd,
}

impl InNetns {
    fn enter(ns: &Netns) -> Result<InNetns, String> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))?;
        let target = File::open(format!("/run/netns/{}", ns.name))
            .map_err(|e| format!("open /run/netns/{}: {e}", ns.name))?;
        // SAFETY: a valid namespace fd; setns changes this thread only.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        Ok(InNetns { home: home.into() })
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: the fd of the namespace this thread came from.
        if unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "warning: could not go back to the first network namespace: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// This thread's CPU affinity, to put back after EAL pinned it (so that the
/// processes it spawns may run on every CPU).
struct Affinity(libc::cpu_set_t);

impl Affinity {
    fn get() -> Affinity {
        // SAFETY: a zeroed cpu_set_t is an empty set; the size is its own.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let r = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            assert_eq!(r, 0, "sched_getaffinity");
            Affinity(set)
        }
    }

    fn restore(&self) {
        // SAFETY: a set read by sched_getaffinity.
        let r =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        assert_eq!(r, 0, "sched_setaffinity");
    }
}

/// A directory removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create a temporary directory");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> StackConfig {
    StackConfig {
        arp_tries: 5,
        ..StackConfig::default()
    }
}

#[test]
fn endpoint_over_net_tap() {
    if let Some(why) = missing_prerequisite(&["python3", "curl"]) {
        skip!("{why}");
    }
    let ns = match Netns::create("aa-dpdk", next_n()) {
        Ok(ns) => ns,
        Err(e) => skip!("cannot create a network namespace: {e}"),
    };
    let iface = format!("aad{}", std::process::id());
    let vdev = format!("--vdev=net_tap0,iface={iface}");
    let args = [
        "aa-dpdk-tap-test",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--no-shconf",
        "--no-telemetry",
        &vdev,
    ];
    let affinity = Affinity::get();
    let (eal, port, pool) = {
        // EAL's threads and the driver's interface come to life in the
        // namespace of this thread.
        let _inside = InNetns::enter(&ns).unwrap_or_else(|e| panic!("{e}"));
        let eal = match Eal::init(&args) {
            Ok(eal) => eal,
            Err(e) => panic!("EAL did not start ({e}); its log is on stderr above"),
        };
        affinity.restore();
        let pool =
            Mempool::new(eal, "aa-tap", 4095, 0, Mempool::DEFAULT_DATA_ROOM).expect("mempool");
        let id = eal.port_by_name("net_tap0").expect("the net_tap port");
        let port = Port::open(eal, id, &pool, PortConfig::default()).expect("open the port");
        (eal, port, pool)
    };
    let _ = eal;
    frames_built_in_mbufs(&pool);
    ns.run(&["ip", "addr", "add", "198.51.100.1/24", "dev", &iface]);
    ns.run(&["ip", "link", "set", &iface, "up"]);
    // What the port's receive ring holds while it runs.
    let idle = pool.available();
    assert!(
        idle > pool.capacity() / 2,
        "{idle} of {} free",
        pool.capacity()
    );
    let check_pool = |what: &str| {
        assert_eq!(
            pool.available(),
            idle,
            "after {what}: {} of {} mbufs free, {idle} before",
            pool.available(),
            pool.capacity()
        );
    };

    let port = csv_step(&ns, port, &pool);
    check_pool("csv_client");
    let port = sink_step(&ns, port, &pool);
    check_pool("http_sink");
    let port = curl_step(&ns, port, &pool);
    check_pool("http_server");
    assert_eq!(port.dropped_multi_segment(), 0);

    // Stopped, the port still holds its receive ring; closing it releases
    // the queues (and deletes the kernel interface).
    let id = port.id();
    drop(port);
    // SAFETY: the port is stopped and nothing uses it any more.
    let closed = unsafe { dpdk_sys::rte_eth_dev_close(id) };
    assert_eq!(closed, 0, "rte_eth_dev_close");
    assert!(
        pool.is_full(),
        "port closed: {} of {} mbufs free",
        pool.available(),
        pool.capacity()
    );
    drop(ns);
}

/// The mempool as the stack's transmit allocator: a frame written in place
/// is the mbuf's data; a failed build gives its mbuf back.
fn frames_built_in_mbufs(pool: &Mempool) {
    let before = pool.available();
    assert_eq!(pool.frame_room(), 2048, "data room less the headroom");
    let p = pool
        .build(|b| {
            assert!(b.len() >= 2048);
            b[..5].copy_from_slice(b"frame");
            Some(5)
        })
        .expect("build a frame");
    assert_eq!((p.data(), p.segments(), p.refcnt()), (&b"frame"[..], 1, 1));
    assert_eq!(pool.available(), before - 1);
    assert!(matches!(
        pool.build(|_| None),
        Err(PoolError::TooLong { len: 0, .. })
    ));
    assert!(matches!(
        pool.build(|b| Some(b.len() + 1)),
        Err(PoolError::TooLong { .. })
    ));
    drop(p);
    assert_eq!(pool.available(), before, "every mbuf back");
}

/// Generates CSV of about `argv[1]` bytes, writes Python's reading of it in
/// canonical form (fields joined by 0x1f, each row ended by 0x1e) to
/// `argv[2]`, prints `PORT ROWS BYTES`, accepts the first client, sends the
/// CSV and closes.
const PY_CSV_SERVER: &str = r#"
import csv, io, random, socket, sys
random.seed(20261206)
words = ['alpha', 'beta', 'x,y', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '',
         'na\u00efve', '12.5', '-3', ' padded ', '""', 'a,"b",c']
buf = io.StringIO()
w = csv.writer(buf, lineterminator='\n')
target = int(sys.argv[1])
while buf.tell() < target:
    row = []
    for _ in range(random.randint(2, 9)):
        v = random.choice(words)
        if random.random() < 0.5:
            v += str(random.randint(0, 10**random.randint(1, 9)))
        row.append(v)
    w.writerow(row)
text = buf.getvalue()
data = text.encode()
rows = list(csv.reader(io.StringIO(text, newline='')))
with open(sys.argv[2], 'wb') as f:
    for r in rows:
        f.write(b'\x1f'.join(x.encode() for x in r) + b'\x1e')
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.51.100.1', 0))
s.listen(1)
print(s.getsockname()[1], len(rows), len(data), flush=True)
c, _ = s.accept()
c.sendall(data)
c.close()
s.close()
"#;

/// Step 1: `fetch_csv` against Python's CSV.
fn csv_step(ns: &Netns, port: Port, pool: &Mempool) -> Port {
    let expected = TempFile(std::env::temp_dir().join(format!("{}.rows", ns.name)));
    let (mut child, line) = spawn_server(&mut ns.cmd(&[
        "python3",
        "-c",
        PY_CSV_SERVER,
        "1500000",
        expected.0.to_str().unwrap(),
    ]));
    let nums: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "server said {line:?}");
    let (py_port, py_rows, py_bytes) = (nums[0] as u16, nums[1], nums[2]);

    let mut stack: Stack<Port, CsvParser, Mempool> =
        Stack::with_alloc(port, pool.clone(), OUR_MAC, OUR_IP, config());
    let mut canon = Vec::with_capacity(2 << 20);
    let mut field = Vec::new();
    let peer = SocketAddrV4::new(KERNEL, py_port);
    let res = csv_client::fetch_csv(&mut stack, peer, None, Duration::from_secs(60), |r| {
        assert_eq!(r.name(), "row");
        for f in r.fields() {
            field.clear();
            aa_runtime::csv::unquote(&f, b'"', &mut field);
            canon.extend_from_slice(&field);
            canon.push(0x1f);
        }
        if canon.last() == Some(&0x1f) {
            canon.pop();
        }
        canon.push(0x1e);
    });
    loud(&format!(
        "dpdk net_tap, csv_client: rows={} bytes={} in {:.3} s ({:.1} Mbit/s), {:?}",
        res.rows,
        res.bytes,
        res.seconds,
        res.bytes as f64 * 8.0 / res.seconds.max(1e-9) / 1e6,
        stack.stats()
    ));
    assert_eq!(res.error, None);
    assert!(res.clean && res.ended, "{res:?}");
    assert_eq!(res.bytes, py_bytes);
    let theirs = std::fs::read(&expected.0).expect("python's rows");
    assert_eq!(res.rows, py_rows);
    assert!(canon == theirs, "the rows differ from Python's");
    let status = child.0.wait().expect("wait for python3");
    assert!(status.success(), "python3 server: {status}");
    stack.into_device()
}

/// `len` deterministic bytes (a linear congruential generator from `seed`).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// Files of awkward sizes (empty, one byte, around the MSS, several
/// windows' worth), written to `dir`; their names and contents.
fn make_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let sizes = [0usize, 1, 1000, 1460, 3 * 1460 + 7, 100_000, 700_001];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let name = format!("f{i}_{len}.bin");
            let data = content(len, i as u64 + 1);
            std::fs::write(dir.join(&name), &data).expect("write a file");
            (name, data)
        })
        .collect()
}

/// Serves the files in `argv[1]` over HTTP/1.1 with keep-alive on
/// 198.51.100.1, an ephemeral port it prints first. `/NAME` gets the file
/// with Content-Length; `/chunked/NAME` gets it in chunked coding; anything
/// else a 404 with a short body.
const PY_HTTP_SERVER: &str = r#"
import http.server, os, sys
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        path = self.path
        chunked = path.startswith('/chunked/')
        if chunked:
            path = path[len('/chunked'):]
        name = path[1:]
        p = os.path.join(root, name)
        if '/' in name or not name or not os.path.isfile(p):
            body = b'no such file\n'
            self.send_response(404)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = open(p, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            i, n = 0, 1
            while i < len(body):
                c = body[i:i + n]
                self.wfile.write(b'%x\r\n' % len(c) + c + b'\r\n')
                i += len(c)
                n = n * 7 + 13
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(('198.51.100.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Step 2: `run_sink` fetches every file (plain and chunked) and a missing
/// one on one keep-alive connection to Python's HTTP/1.1 server.
fn sink_step(ns: &Netns, port: Port, pool: &Mempool) -> Port {
    let dir = TempDir::new(&format!("{}.sink", ns.name));
    let files = make_files(&dir.0);
    let mut cmd = ns.cmd(&["python3", "-c", PY_HTTP_SERVER, dir.0.to_str().unwrap()]);
    let (child, line) = spawn_server(&mut cmd);
    let py_port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));

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

    let mut stack: Stack<Port, HttpResponseParser, Mempool> =
        Stack::with_alloc(port, pool.clone(), OUR_MAC, OUR_IP, config());
    let peer = SocketAddrV4::new(KERNEL, py_port);
    let res = http_sink::run_sink(
        &mut stack,
        peer,
        &peer.to_string(),
        &paths,
        true,
        Duration::from_secs(60),
    );
    loud(&format!(
        "dpdk net_tap, http_sink against python: {}, {:?}",
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
    drop(child);
    stack.into_device()
}

/// Step 3: four curl processes at once, each fetching several files and a
/// missing one on one keep-alive connection, against `serve`.
fn curl_step(ns: &Netns, port: Port, pool: &Mempool) -> Port {
    let dir = TempDir::new(&format!("{}.files", ns.name));
    let out = TempDir::new(&format!("{}.out", ns.name));
    let files = make_files(&dir.0);
    let mut stack: Stack<Port, HttpRequestParser, Mempool> =
        Stack::with_alloc(port, pool.clone(), OUR_MAC, OUR_IP, config());

    let base = format!("http://{OUR_IP}:{SERVER_PORT}");
    let mut curls = Vec::new();
    let mut expect: Vec<(PathBuf, u16, Vec<u8>)> = Vec::new();
    let clients = 4;
    for k in 0..clients {
        let mut args: Vec<String> = [
            "curl",
            "-sS",
            "--http1.1",
            "--max-time",
            "60",
            "-w",
            "%{http_code} %{size_download} %{num_connects}\\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut order: Vec<usize> = (0..files.len()).map(|i| (i + k) % files.len()).collect();
        order.push(usize::MAX);
        order.push(k % files.len());
        for (j, &i) in order.iter().enumerate() {
            let dst = out.0.join(format!("c{k}_{j}"));
            let (url, status, data) = if i == usize::MAX {
                (format!("{base}/missing.bin"), 404, b"not found\n".to_vec())
            } else {
                (format!("{base}/{}", files[i].0), 200, files[i].1.clone())
            };
            args.push("-o".into());
            args.push(dst.to_str().unwrap().into());
            args.push(url);
            expect.push((dst, status, data));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = ns
            .cmd(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn curl");
        curls.push(Reaped(child));
    }

    let requests = expect.len() as u64;
    let opts = http_server::ServeOpts {
        dir: dir.0.clone(),
        max_requests: Some(requests),
        deadline: Some(Instant::now() + Duration::from_secs(60)),
        stop: None,
    };
    let sum = http_server::serve(&mut stack, SERVER_PORT, &opts).expect("serve");
    loud(&format!(
        "dpdk net_tap, http_server against {clients} curls: {}, {:?}",
        sum.summary(),
        stack.stats()
    ));

    let mut connects = 0;
    let mut codes = Vec::new();
    for mut c in curls {
        let stdout = c.0.stdout.take().unwrap();
        let stderr = c.0.stderr.take().unwrap();
        let status = c.0.wait().expect("wait for curl");
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err);
        assert!(status.success(), "curl: {status}: {err}");
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: Vec<u64> = line
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            assert_eq!(v.len(), 3, "{line:?}");
            codes.push(v[0] as u16);
            connects += v[2];
        }
    }
    assert!(!sum.timed_out, "timed out: {}", sum.summary());
    assert_eq!(sum.requests, requests);
    assert_eq!(sum.connections, clients as u64, "one connection per curl");
    assert_eq!((sum.resets, sum.left_open), (0, 0));
    assert_eq!(
        connects, clients as u64,
        "each curl kept its connection alive"
    );
    let want_codes: Vec<u16> = expect.iter().map(|e| e.1).collect();
    assert_eq!(codes, want_codes);
    for (path, _, data) in &expect {
        // curl may not create the file of an empty body.
        let got = match std::fs::read(path) {
            Err(e) if e.kind() == ErrorKind::NotFound && data.is_empty() => Vec::new(),
            r => r.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        };
        assert_eq!(got.len(), data.len(), "{}", path.display());
        assert!(got == *data, "{} differs from its file", path.display());
    }
    stack.into_device()
}
