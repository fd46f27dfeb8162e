//! aa's TCP endpoint over a TAP device against a plain kernel TCP socket
//! over a veth pair, reading the same CSV from the same server in the same
//! run (group `tap_csv`, `Throughput::Bytes` = bytes of the file).
//!
//! - `aa_tap`: an `aa_stack::tcp::Stack` on a `TapIo` with checksum offload
//!   (`TapIo::open_offloading`, as the `csv_client` example opens it) as 198.51.100.2
//!   connects to the server at 198.51.100.1 (the kernel's side of the TAP)
//!   and reads the file as `row` records of the compiled CSV grammar
//!   (`aa_grammars::csv::CsvParser`), each read and freed:
//!   `csv_client::fetch_csv`, the logic of the `csv_client` example. The
//!   stack and the device are set up once; one connection per iteration.
//! - `aa_tap_large_receive`: the same over a TAP device with large receive
//!   (`TapIo::open_large_receive`, as the examples open it: the kernel's
//!   segments as it built them, up to 64 KiB a frame), in a namespace of its
//!   own with a server of its own on the same file.
//! - `kernel_socket_csv_core`: a `std::net::TcpStream` from 198.51.100.66
//!   to the server at 198.51.100.65 over the veth pair, each read (256 KiB
//!   at most) fed to `csv_core::Reader`: `csv_socket::read_csv`, the logic
//!   of the `csv_socket` example, on a thread moved into the client
//!   namespace (`setns`). One connection per iteration.
//!
//! Each iteration times what both examples time: from the start of the
//! connection to the end of the stream.
//!
//! Group `tap_send` times the other direction: 16 MiB (`AA_TAP_BENCH_MB`)
//! uploaded to a Python sink that reads to the end and answers the byte
//! count, which each iteration checks; from connect to that answer.
//!
//! - `aa_tap_segmentation_offload`: an `aa_stack::tcp::Stack` on a TAP
//!   device with the virtio-net header (`TapIo::open_large_receive`),
//!   sending frames of up to 64 KiB for the kernel to cut into segments
//!   (`StackConfig::segmentation_offload`, the default).
//! - `aa_tap_frame_per_segment`: the same with the offload turned off, on a
//!   device and sink of its own.
//! - `kernel_socket`: a `std::net::TcpStream` from the client namespace over
//!   the veth pair to the first sink (`write_all`, half-close, read the
//!   count).
//!
//! Layout, two network namespaces of the bench's own (nothing in the host
//! namespace; both deleted at the end, on panic too):
//!
//! ```text
//! server ns aa-bt-srv-<pid>-<n>                   client ns aa-bt-cli-<pid>-<n>
//!   python3 on 0.0.0.0:<port>
//!   TAP aabt<pid>n<n> 198.51.100.1/24  <-> aa (this process, 198.51.100.2)
//!   veth aabs<pid>    198.51.100.65/26 <->    veth aabc<pid> 198.51.100.66/26
//! ```
//!
//! (the TAP's side is the test harness's `tap_net`; the veth's /26 is the
//! more specific route). The server sends the whole file to every client
//! with `sendfile`, half-closes and closes once the client has. The file is
//! generated once per run by Python's `csv` module: rows of 2 to 9 fields,
//! with quoted fields holding commas, doubled quotes and line breaks. Before
//! measuring, both clients must read the row count and the bytes the
//! generator wrote, and every iteration checks that again; at the end the
//! stack's packet pool must be full.
//!
//! ```text
//! cargo bench -p aa-stack --bench tap        # as root
//! AA_TAP_BENCH_MB=64 cargo bench -p aa-stack --bench tap
//! ```
//!
//! `AA_TAP_BENCH_MB` is the file's size in MiB (16 by default; the
//! generator writes whole chunks of 10,000 rows, so up to about 0.6 MB
//! more). Without
//! root, `/dev/net/tun`, `ip` (iproute2) or python3 the bench prints
//! "skipped: ..." and returns.
//!
//! Read the figures with this in mind: over a TAP device of frames of the
//! MTU, every 1500-byte frame costs aa's process one `read()` syscall and
//! the kernel segments to the MTU on one core, so the TAP device is the
//! ceiling for aa there, not aa's stack. With large receive the kernel
//! hands over super-segments (up to 64 KiB), as it moves them over the veth
//! to the kernel socket. The server, the kernel and the client share the
//! machine's cores.
//!
//! One run on a 2-core machine, 16 MiB (17,290,251 bytes, 300,000 rows;
//! medians of every timed pass): `aa_tap` 2.32 Gbit/s,
//! `aa_tap_large_receive` 2.83, `kernel_socket_csv_core` 2.81; aa/kernel
//! 0.83, with large receive 1.01 (some 330 frames a pass instead of some
//! 11,800; another run: 2.32, 2.86 and 2.87, 1.00 with large receive). (An earlier run with a TAP device without checksum offload gave
//! 0.78.) The bench also prints medians in Gbit/s and their ratios.

// The test harness: its `skip!` (which fails under `AA_REQUIRE_NET=1`) is
// not for a bench.
#[allow(unused_macros, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../examples/csv_client.rs"]
mod csv_client;

#[allow(dead_code)]
#[path = "../examples/csv_socket.rs"]
mod csv_socket;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use aa_grammars::csv::CsvParser;
use aa_runtime::PacketPool;
use aa_stack::io::tap::{TapIo, LARGE_FRAME};
use aa_stack::tcp::{Event, Stack, StackConfig};
use criterion::{criterion_group, criterion_main, Bencher, Criterion, SamplingMode, Throughput};

use common::netns::{
    loud, next_n, spawn_server, tap_net, InNetns, Netns, OpenTap, Reaped, TapNet, TempFile,
    KERNEL_IP, OUR_IP, OUR_MAC,
};

/// The server's end of the veth pair, in the server namespace.
const VETH_SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 65);
/// The client's end, in the client namespace.
const VETH_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);
/// The kernel client's read size.
const READ_BUFFER: usize = 256 * 1024;
/// Longest any one download may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes about `argv[2]` bytes of CSV to `argv[1]`: lines drawn from a
/// pool of 50,000 rows written by Python's `csv` module (each checked on a
/// sample to be one record); prints `ROWS BYTES`.
const PY_GENERATE: &str = r#"
import csv, io, random, sys
random.seed(20261122)
words = ['alpha', 'beta', 'x,y', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '',
         'na\u00efve', '12.5', '-3', ' padded ', '""', 'a,"b",c', 'plain text']
pool = []
for _ in range(50000):
    buf = io.StringIO()
    row = []
    for _ in range(random.randint(2, 9)):
        v = random.choice(words)
        if random.random() < 0.5:
            v += str(random.randint(0, 10 ** random.randint(1, 9)))
        row.append(v)
    csv.writer(buf, lineterminator='\n').writerow(row)
    pool.append(buf.getvalue().encode())
sample = b''.join(pool[:2000]).decode()
assert len(list(csv.reader(io.StringIO(sample, newline='')))) == 2000
path, target = sys.argv[1], int(sys.argv[2])
rows = size = 0
with open(path, 'wb') as f:
    while size < target:
        chunk = random.choices(pool, k=10000)
        data = b''.join(chunk)
        f.write(data)
        rows += len(chunk)
        size += len(data)
print(rows, size, flush=True)
"#;

/// Serves the file `argv[1]` on 0.0.0.0, an ephemeral port it prints
/// first: to every client in turn the whole file (`sendfile`), then a
/// half-close, then a close once the client has closed.
const PY_SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
with open(sys.argv[1], 'rb') as f:
    while True:
        c, _ = s.accept()
        try:
            f.seek(0)
            c.sendfile(f)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        except OSError as e:
            print(f'server: {e}', file=sys.stderr)
        finally:
            c.close()
"#;

/// Takes one connection at a time on 0.0.0.0, an ephemeral port it prints
/// first: reads it to its end, answers the byte count (a line) and closes.
const PY_SINK: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    try:
        n = 0
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            n += k
        c.sendall(b'%d\n' % n)
    except OSError as e:
        print(f'sink: {e}', file=sys.stderr)
    finally:
        c.close()
"#;

/// The file's size in MiB: `AA_TAP_BENCH_MB`, 16 by default.
fn size_mib() -> u64 {
    match std::env::var("AA_TAP_BENCH_MB") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("AA_TAP_BENCH_MB={v:?}: a positive number of MiB"),
        },
        Err(_) => 16,
    }
}

/// What the generator wrote.
struct Expected {
    rows: u64,
    bytes: u64,
}

/// One download by aa over the TAP: its time, after checking what came.
fn aa_once(stack: &mut Stack<TapIo, CsvParser>, peer: SocketAddrV4, want: &Expected) -> Duration {
    let res = csv_client::fetch_csv(stack, peer, None, TIMEOUT, |_| {});
    assert_eq!(res.error, None, "aa over TAP: {res:?}");
    assert!(res.ended && res.clean, "aa over TAP: {res:?}");
    assert_eq!(
        (res.rows, res.bytes),
        (want.rows, want.bytes),
        "aa over TAP: rows and bytes against the generator's"
    );
    Duration::from_secs_f64(res.seconds)
}

/// One download by a kernel socket over the veth, on a thread in the client
/// namespace: its time, after checking what came.
fn kernel_once(client_ns: &Netns, peer: SocketAddr, want: &Expected) -> Duration {
    let res = std::thread::scope(|s| {
        s.spawn(|| {
            let _inside = InNetns::enter(client_ns).unwrap_or_else(|e| panic!("{e}"));
            csv_socket::read_csv(peer, READ_BUFFER, TIMEOUT)
        })
        .join()
        .expect("the kernel client's thread")
    });
    assert_eq!(res.error, None, "kernel socket: {res:?}");
    assert!(res.ended, "kernel socket: {res:?}");
    assert_eq!(
        (res.rows, res.bytes),
        (want.rows, want.bytes),
        "kernel socket: rows and bytes against the generator's"
    );
    Duration::from_secs_f64(res.seconds)
}

/// Times `iters` downloads by `once` for criterion, each noted in `passes`.
fn timed(b: &mut Bencher<'_>, passes: &mut Vec<Duration>, mut once: impl FnMut() -> Duration) {
    b.iter_custom(|iters| {
        (0..iters)
            .map(|_| {
                let d = once();
                passes.push(d);
                d
            })
            .sum()
    })
}

/// A [`TapNet`] for the bench (python3 needed), or `None` after saying why
/// it is skipped.
fn tap_or_skip(ns: &str, dev: &str, pool: &PacketPool, open: OpenTap) -> Option<TapNet> {
    tap_net(ns, dev, pool, &["python3"], open, |_, _| {})
        .map_err(|why| loud(&format!("skipped: {why}")))
        .ok()
}

/// A client namespace `aa-bt-cli-<pid>-<n>` joined to `ns` by a veth pair
/// (`<server_dev><pid>` in `ns` as [`VETH_SERVER_IP`], `<client_dev><pid>`
/// in the client namespace as [`VETH_CLIENT_IP`]), both ends and both
/// loopbacks up; `None` after saying why it is skipped.
fn client_over_veth(ns: &Netns, server_dev: &str, client_dev: &str) -> Option<Netns> {
    let client_ns = Netns::create("aa-bt-cli", next_n())
        .map_err(|e| loud(&format!("skipped: cannot create a network namespace: {e}")))
        .ok()?;
    let pid = std::process::id();
    let (veth_s, veth_c) = (format!("{server_dev}{pid}"), format!("{client_dev}{pid}"));
    ns.run(&[
        "ip",
        "link",
        "add",
        &veth_s,
        "type",
        "veth",
        "peer",
        "name",
        &veth_c,
        "netns",
        &client_ns.name,
    ]);
    // Each end: its address, then it and the namespace's loopback up.
    for (ns, ip, dev) in [
        (ns, VETH_SERVER_IP, &veth_s),
        (&client_ns, VETH_CLIENT_IP, &veth_c),
    ] {
        ns.run(&["ip", "addr", "add", &format!("{ip}/26"), "dev", dev]);
        ns.run(&["ip", "link", "set", dev, "up"]);
        ns.run(&["ip", "link", "set", "lo", "up"]);
    }
    Some(client_ns)
}

/// Runs the criterion group `name` of three benches, `bytes` a pass, each
/// pass timed by its closure; returns each one's median rate in Gbit/s
/// (`None` for a bench filtered out) and its number of passes (warm-up
/// included).
fn bench_three(
    c: &mut Criterion,
    name: &str,
    bytes: u64,
    benches: [(&str, &mut dyn FnMut() -> Duration); 3],
) -> [(Option<f64>, usize); 3] {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(3));
    g.measurement_time(Duration::from_secs(15));
    let mut out = [(None, 0); 3];
    for ((bench, once), slot) in benches.into_iter().zip(&mut out) {
        let mut passes = Vec::new();
        g.bench_function(bench, |b| timed(b, &mut passes, &mut *once));
        *slot = (median(&mut passes).map(|d| gbps(bytes, d)), passes.len());
    }
    g.finish();
    out
}

/// The line that sums up [`bench_three`]'s `rates` of the group `name`,
/// the last of the three the baseline.
fn summary(name: &str, labels: [&str; 3], rates: [(Option<f64>, usize); 3]) -> String {
    let show = |r: Option<f64>| r.map_or("not run".to_string(), |r| format!("{r:.2}"));
    let ratio = |a: Option<f64>| match (a, rates[2].0) {
        (Some(a), Some(k)) => format!("{:.2}", a / k),
        _ => "not run".to_string(),
    };
    format!(
        "{name}, medians of every timed pass (warm-up included; {}, {} and {}): {} {} Gbit/s, {} {}, {} {} Gbit/s; ratios to the last: {}, {}",
        rates[0].1,
        rates[1].1,
        rates[2].1,
        labels[0],
        show(rates[0].0),
        labels[1],
        show(rates[1].0),
        labels[2],
        show(rates[2].0),
        ratio(rates[0].0),
        ratio(rates[1].0),
    )
}

/// The median of `passes`, `None` if there are none (a bench filtered out).
fn median(passes: &mut [Duration]) -> Option<Duration> {
    passes.sort();
    passes.get(passes.len() / 2).copied()
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64().max(1e-9) / 1e9
}

fn tap_csv(c: &mut Criterion) {
    let mib = size_mib();
    // Locals drop in reverse order: the stack (and its device), the server,
    // the file, then the namespaces.
    let pool = PacketPool::new(1024, 2048);
    let Some(TapNet { tap, dev: _, ns }) =
        tap_or_skip("aa-bt-srv", "aabt", &pool, TapIo::open_offloading)
    else {
        return;
    };
    let Some(client_ns) = client_over_veth(&ns, "aabs", "aabc") else {
        return;
    };

    let data = TempFile(std::env::temp_dir().join(format!("{}.csv", ns.name)));
    let path = data.0.to_str().expect("a UTF-8 temporary path");
    let line = ns.run(&["python3", "-c", PY_GENERATE, path, &(mib << 20).to_string()]);
    let nums: Vec<u64> = line
        .split_whitespace()
        .map(|x| {
            x.parse()
                .unwrap_or_else(|e| panic!("generator said {line:?}: {e}"))
        })
        .collect();
    assert_eq!(nums.len(), 2, "generator said {line:?}");
    let want = Expected {
        rows: nums[0],
        bytes: nums[1],
    };
    assert_eq!(
        std::fs::metadata(&data.0)
            .expect("the generated file")
            .len(),
        want.bytes
    );

    let (server, line): (Reaped, String) =
        spawn_server(&mut ns.cmd(&["python3", "-c", PY_SERVER, path]));
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("server said {line:?}: {e}"));
    let tap_peer = SocketAddrV4::new(KERNEL_IP, port);
    let veth_peer = SocketAddr::from((VETH_SERVER_IP, port));

    let cfg = StackConfig {
        arp_tries: 5,
        ..StackConfig::default()
    };
    let mut stack: Stack<TapIo, CsvParser> = Stack::new(tap, pool.clone(), OUR_MAC, OUR_IP, cfg);

    // The same over a TAP device with large receive, in a namespace of its
    // own with a server of its own on the same file.
    let big_pool = PacketPool::new(256, LARGE_FRAME);
    let Some(big_net) = tap_or_skip("aa-bt-lro", "aabl", &big_pool, TapIo::open_large_receive)
    else {
        return;
    };
    let (big_server, line): (Reaped, String) =
        spawn_server(&mut big_net.ns.cmd(&["python3", "-c", PY_SERVER, path]));
    let big_port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("server said {line:?}: {e}"));
    let big_peer = SocketAddrV4::new(KERNEL_IP, big_port);
    let TapNet {
        tap: big_tap,
        dev: _,
        ns: big_ns,
    } = big_net;
    let mut big_stack: Stack<TapIo, CsvParser> =
        Stack::new(big_tap, big_pool.clone(), OUR_MAC, OUR_IP, cfg);

    // Both see the whole file before anything is timed.
    let aa_first = aa_once(&mut stack, tap_peer, &want);
    let big_first = aa_once(&mut big_stack, big_peer, &want);
    let kernel_first = kernel_once(&client_ns, veth_peer, &want);
    loud(&format!(
        "tap_csv: {} rows, {} bytes, seen whole by all three; first passes: aa over TAP {:.2} Gbit/s, with large receive {:.2}, kernel socket over veth {:.2} Gbit/s",
        want.rows,
        want.bytes,
        gbps(want.bytes, aa_first),
        gbps(want.bytes, big_first),
        gbps(want.bytes, kernel_first)
    ));

    let rates = bench_three(
        c,
        "tap_csv",
        want.bytes,
        [
            ("aa_tap", &mut || aa_once(&mut stack, tap_peer, &want)),
            ("aa_tap_large_receive", &mut || {
                aa_once(&mut big_stack, big_peer, &want)
            }),
            ("kernel_socket_csv_core", &mut || {
                kernel_once(&client_ns, veth_peer, &want)
            }),
        ],
    );
    loud(&summary(
        "tap_csv",
        [
            "aa over TAP",
            "with large receive",
            "kernel socket over veth",
        ],
        rates,
    ));

    loud(&format!("tap_csv: aa's stack {:?}", stack.stats()));
    loud(&format!(
        "tap_csv: with large receive, aa's stack {:?}, its device {:?}",
        big_stack.stats(),
        big_stack.device().stats()
    ));
    assert!(
        big_stack.device().stats().rx_large > 0,
        "no large frame came"
    );
    for p in [&pool, &big_pool] {
        assert!(
            p.is_full(),
            "{} of {} packet buffers free",
            p.available(),
            p.capacity()
        );
    }
    drop(big_stack);
    drop(big_server);
    drop(big_ns);
    drop(stack);
    drop(server);
    drop(data);
    drop(client_ns);
    drop(ns);
}

/// One upload by aa over the TAP to the sink at `peer`: connect, send
/// `data`, close, and read the sink's count (a `row` of one field); its
/// time, after checking the count.
fn aa_send_once(stack: &mut Stack<TapIo, CsvParser>, peer: SocketAddrV4, data: &[u8]) -> Duration {
    let started = std::time::Instant::now();
    let id = stack.connect(peer, CsvParser::new()).expect("connect");
    let (mut sent, mut connected, mut close_sent, mut count) = (0, false, false, None);
    let mut done = false;
    while !done {
        assert!(
            started.elapsed() < TIMEOUT,
            "aa upload timed out: {:?}, {sent} bytes handed over, {:?}",
            stack.state(id),
            stack.stats()
        );
        stack.device().wait(Duration::from_millis(5)).expect("poll");
        stack.poll().expect("stack poll");
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(_) => connected = true,
                Event::Closed(_) => done = true,
                Event::Reset(_, why) => panic!("aa upload reset: {why:?}"),
                Event::ParseFailed(_) => panic!("the sink's answer is not a count"),
                Event::Accepted(_) | Event::Records(_) | Event::Finished(_) => {}
            }
        }
        if connected && sent < data.len() {
            sent += stack.send(id, &data[sent..]).expect("send");
        }
        if sent == data.len() && !close_sent {
            stack.close(id).expect("close");
            close_sent = true;
        }
        if let Some(s) = stack.stream_mut(id) {
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                let text = r.field(0).map(|f| f.to_vec()).unwrap_or_default();
                count = String::from_utf8_lossy(&text).trim().parse::<usize>().ok();
            }
            s.free_aa_records(n);
        }
    }
    let d = started.elapsed();
    assert_eq!(count, Some(data.len()), "aa upload: the sink's count");
    stack.release(id).expect("release");
    d
}

/// One upload by a kernel socket over the veth, on a thread in the client
/// namespace: write `data`, half-close, read the sink's count; its time.
fn kernel_send_once(client_ns: &Netns, peer: SocketAddr, data: &[u8]) -> Duration {
    use std::io::{Read, Write};
    let (d, answer) = std::thread::scope(|s| {
        s.spawn(|| {
            let _inside = InNetns::enter(client_ns).unwrap_or_else(|e| panic!("{e}"));
            let started = std::time::Instant::now();
            let mut c = std::net::TcpStream::connect_timeout(&peer, TIMEOUT).expect("connect");
            c.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            c.write_all(data).expect("write");
            c.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut answer = String::new();
            c.read_to_string(&mut answer).expect("the sink's count");
            (started.elapsed(), answer)
        })
        .join()
        .expect("the kernel sender's thread")
    });
    assert_eq!(
        answer.trim().parse::<usize>().ok(),
        Some(data.len()),
        "kernel upload: the sink's count"
    );
    d
}

/// A TAP device with the virtio-net header in a namespace of its own, a
/// sink there, and a stack on the device: the sink's address, the stack,
/// and what must outlive it (the sink, the namespace).
fn send_setup(
    ns: &str,
    dev: &str,
    pool: &PacketPool,
    cfg: StackConfig,
) -> Option<(SocketAddrV4, Stack<TapIo, CsvParser>, Reaped, Netns)> {
    let TapNet { tap, dev: _, ns } = tap_or_skip(ns, dev, pool, TapIo::open_large_receive)?;
    let (sink, line): (Reaped, String) = spawn_server(&mut ns.cmd(&["python3", "-c", PY_SINK]));
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("sink said {line:?}: {e}"));
    let stack = Stack::new(tap, pool.clone(), OUR_MAC, OUR_IP, cfg);
    Some((SocketAddrV4::new(KERNEL_IP, port), stack, sink, ns))
}

fn tap_send(c: &mut Criterion) {
    let bytes = (size_mib() << 20) as usize;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cfg = StackConfig {
        arp_tries: 5,
        send_buffer: 4 << 20,
        ..StackConfig::default()
    };
    // Locals drop in reverse order: each stack, its sink, its namespace.
    let pool = PacketPool::new(256, LARGE_FRAME);
    let Some((peer, mut stack, sink, ns)) = send_setup("aa-bs-tso", "aabx", &pool, cfg) else {
        return;
    };
    let seg_pool = PacketPool::new(256, LARGE_FRAME);
    let no_tso = StackConfig {
        segmentation_offload: false,
        ..cfg
    };
    let Some((seg_peer, mut seg_stack, seg_sink, seg_ns)) =
        send_setup("aa-bs-seg", "aaby", &seg_pool, no_tso)
    else {
        return;
    };
    let Some(client_ns) = client_over_veth(&ns, "aabv", "aabw") else {
        return;
    };
    let veth_peer = SocketAddr::from((VETH_SERVER_IP, peer.port()));

    let firsts = [
        aa_send_once(&mut stack, peer, &data),
        aa_send_once(&mut seg_stack, seg_peer, &data),
        kernel_send_once(&client_ns, veth_peer, &data),
    ];
    loud(&format!(
        "tap_send: {bytes} bytes counted whole by the sink from all three; first passes: aa over TAP with segmentation offload {:.2} Gbit/s, a frame per segment {:.2}, kernel socket over veth {:.2}",
        gbps(bytes as u64, firsts[0]),
        gbps(bytes as u64, firsts[1]),
        gbps(bytes as u64, firsts[2]),
    ));

    let rates = bench_three(
        c,
        "tap_send",
        bytes as u64,
        [
            ("aa_tap_segmentation_offload", &mut || {
                aa_send_once(&mut stack, peer, &data)
            }),
            ("aa_tap_frame_per_segment", &mut || {
                aa_send_once(&mut seg_stack, seg_peer, &data)
            }),
            ("kernel_socket", &mut || {
                kernel_send_once(&client_ns, veth_peer, &data)
            }),
        ],
    );
    loud(&summary(
        "tap_send",
        [
            "aa over TAP with segmentation offload",
            "a frame per segment",
            "kernel socket over veth",
        ],
        rates,
    ));
    loud(&format!(
        "tap_send: with segmentation offload, aa's stack {:?}, its device {:?}",
        stack.stats(),
        stack.device().stats()
    ));
    assert!(
        stack.stats().large_frames_out > 0,
        "no large frame went out"
    );
    assert_eq!(seg_stack.stats().large_frames_out, 0);
    drop(stack);
    drop(seg_stack);
    for p in [&pool, &seg_pool] {
        assert!(
            p.is_full(),
            "{} of {} packet buffers free",
            p.available(),
            p.capacity()
        );
    }
    drop(sink);
    drop(seg_sink);
    drop(client_ns);
    drop(seg_ns);
    drop(ns);
}

criterion_group!(benches, tap_csv, tap_send);
criterion_main!(benches);
