//! The TCP endpoint on DPDK, against the Linux kernel: the TAP live tests
//! again, over DPDK's `net_tap` driver instead of aa's own TAP backend.
//!
//! The test makes a network namespace `aa-dpdk-<pid>-<n>`, moves its own
//! thread into it (`setns`) and starts EAL there with
//! `--vdev=net_tap0,iface=aad<pid>`: the driver creates that kernel
//! interface in the namespace of the thread that starts EAL. The kernel's
//! side gets 198.51.100.1/24 and comes up; [`Stack`] runs on the DPDK port as
//! 198.51.100.2, receiving into mbufs (records point into them) and building
//! what it sends in mbufs of the same pool, with checksum offload both ways
//! (`net_tap` completes the checksums the stack leaves and checks received
//! ones): the kernel accepting every segment is the check of the transmit
//! marking. EAL starts once per process, so
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

#[path = "common/dpdk.rs"]
mod dpdk_common;
use dpdk_common::eal_args;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_grammars::http_request::HttpRequestParser;
use aa_grammars::http_response::HttpResponseParser;
use aa_runtime::{Packet, PoolError};
use aa_stack::dpdk::{DpdkError, Eal, Mempool, Port, PortConfig};
use aa_stack::io::alloc::FrameAlloc;
use aa_stack::tcp::{Stack, StackConfig};

use common::netns::{
    loud, missing_prerequisite, next_n, skip, spawn_server, InNetns, Netns, TempFile, OUR_IP,
    OUR_MAC,
};
use common::peers::{make_files, push_canonical, Curls, TempDir, PY_CSV_SERVER, PY_HTTP_SERVER};

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
    let args = eal_args("aa-dpdk-tap-test", &[&vdev]);
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
        // Promiscuous, as `aa inspect` opens ports: checked on the kernel's
        // interface below.
        // Checksum offload, as the examples ask for it: `net_tap` has it
        // both ways (it checks and completes checksums itself), so every
        // step below runs with the stack leaving its checksums to the port
        // and taking the port's word on received ones.
        let cfg = PortConfig {
            promiscuous: true,
            tx_checksum_offload: true,
            ..PortConfig::default()
        };
        // `net_tap` takes frames of 1522 bytes at most: a jumbo MTU is
        // refused before the port is touched, with the device's range.
        let jumbo = PortConfig {
            mtu: Some(9000),
            ..cfg
        };
        match Port::open(eal, id, &pool, jumbo) {
            Err(
                e @ DpdkError::Mtu {
                    asked: 9000,
                    max: 1504,
                    ..
                },
            ) => {
                assert!(e.to_string().contains("1504"), "{e}")
            }
            other => panic!("MTU 9000 on net_tap: {other:?}"),
        }
        let port = Port::open(eal, id, &pool, cfg).expect("open the port");
        assert!(
            port.tx_checksum_offload() && port.rx_checksum_offload(),
            "net_tap offers checksum offload"
        );
        (eal, port, pool)
    };
    let _ = eal;
    frames_built_in_mbufs(&pool);
    ns.run(&["ip", "addr", "add", "198.51.100.1/24", "dev", &iface]);
    ns.run(&["ip", "link", "set", &iface, "up"]);
    let flags = ns
        .cmd(&["cat", &format!("/sys/class/net/{iface}/flags")])
        .output()
        .expect("read the interface's flags");
    let flags = String::from_utf8_lossy(&flags.stdout);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("flags {flags:?}: {e}"));
    assert_ne!(
        flags & libc::IFF_PROMISC as u32,
        0,
        "promiscuous: {flags:#x}"
    );
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
    port.close().expect("rte_eth_dev_close");
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

/// Step 1: `fetch_csv` against Python's CSV.
fn csv_step(ns: &Netns, port: Port, pool: &Mempool) -> Port {
    let expected = TempFile(std::env::temp_dir().join(format!("{}.rows", ns.name)));
    let (mut child, line) = spawn_server(&mut ns.cmd(&[
        "python3",
        "-c",
        PY_CSV_SERVER,
        "1500000",
        expected.0.to_str().unwrap(),
        "0",
        "server",
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
        push_canonical(r, &mut field, &mut canon);
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
    let clients = 4;
    let curls = Curls::spawn(ns, &base, &files, &out.0, clients);
    let requests = curls.requests();
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

    assert!(!sum.timed_out, "timed out: {}", sum.summary());
    assert_eq!(sum.requests, requests);
    assert_eq!(sum.connections, clients as u64, "one connection per curl");
    assert_eq!((sum.resets, sum.left_open), (0, 0));
    curls.check();
    stack.into_device()
}
