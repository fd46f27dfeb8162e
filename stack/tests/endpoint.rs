//! The active TCP endpoint against the Linux kernel's TCP.
//!
//! Each test makes its own network namespace `aa-ep-<pid>-<n>`, opens a TAP
//! device from the test process, moves it into the namespace, gives the
//! kernel's side 198.51.100.1/24 there and brings it up. A python3 server in
//! the namespace generates CSV with quoted fields (commas, doubled quotes,
//! line breaks inside quotes), writes what Python's own `csv` module reads
//! from it in a canonical form to a file, accepts the first client, reads
//! and checks its request (if the case has one), sends the CSV and closes.
//! The test runs [`Stack`] in-process as 198.51.100.2: ARP, handshake,
//! request, receive parsed by the compiled CSV grammar, FIN, close. Every
//! field of every row must equal Python's, the request must be acknowledged,
//! and the packet pool must be full at the end. The cases: clean (about
//! 1.5 MB); a request of three segments first and frames from the kernel
//! lost and reordered on the way in (an [`Impaired`] device around the
//! TAP); a 16 KiB window with an application that frees its records only
//! every fourth poll; the kernel connecting to us; the kernel's segments
//! received as it built them, up to 64 KiB a frame
//! ([`TapIo::open_large_receive`]). The TAP device offloads checksums both
//! ways ([`TapIo::open_offloading`]; the HTTP tests use one that does not).
//! Nothing is configured in the host namespace; the
//! namespace is deleted at the end, on failure too (a guard).
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `/dev/net/tun`, `ip`
//! (iproute2) and python3. Without them the test prints "skipped: ..." and
//! passes, unless `AA_REQUIRE_NET=1`: then it fails.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_runtime::{AaState, PacketPool};
use aa_runtime::{Packet, PoolPacket};
use aa_stack::io::tap::{TapIo, LARGE_FRAME};
use aa_stack::tcp::{Event, Stack, StackConfig, State};
use aa_stack::{Burst, IoError, PacketIo, Rx};

use common::netns::{
    loud, skip, spawn_server, tap_net, OpenTap, TapNet, TempFile, OUR_IP, OUR_MAC,
};
use common::peers::{push_canonical, PY_CSV_SERVER};

/// Where the two canonical forms first differ, as a row number and both rows.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let a: Vec<&[u8]> = ours.split(|&b| b == 0x1e).collect();
    let b: Vec<&[u8]> = theirs.split(|&b| b == 0x1e).collect();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            return format!(
                "row {i}: aa {:?} python {:?}",
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
    }
    format!("aa has {} rows, python {}", a.len() - 1, b.len() - 1)
}

/// A device that loses and reorders some of the frames the kernel sends:
/// every `drop_every`-th frame longer than 200 bytes is dropped, and every
/// `swap_every`-th received frame changes places with the one after it.
struct Impaired {
    tap: TapIo,
    n: u64,
    drop_every: u64,
    swap_every: u64,
    dropped: u64,
    held: Vec<Rx<PoolPacket>>,
}

impl PacketIo for Impaired {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        let start = out.len();
        self.tap.recv_burst(out)?;
        self.held.extend(out.drain(start..));
        let mut i = 0;
        while i < self.held.len() {
            self.n += 1;
            if self.held[i].packet.data().len() > 200 && self.n % self.drop_every == 0 {
                self.held.remove(i);
                self.dropped += 1;
                continue;
            }
            if self.n % self.swap_every == 0 && i + 1 < self.held.len() {
                self.held.swap(i, i + 1);
                i += 1;
                self.n += 1;
            }
            i += 1;
        }
        let n = self.held.len();
        for rx in self.held.drain(..) {
            let _ = out.push(rx);
        }
        Ok(n)
    }

    fn send_burst(&mut self, pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        self.tap.send_burst(pkts)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.tap.tx_checksum_offload()
    }
}

/// What a run varies.
struct Case {
    /// CSV bytes the server sends (about).
    csv_bytes: u64,
    /// Request bytes the client sends first.
    request: usize,
    /// Receive buffer (largest window).
    recv_buffer: u32,
    /// Loss and reordering: (drop every, swap every).
    impair: Option<(u64, u64)>,
    /// Read and free records only every this many polls.
    read_every: u32,
    /// The kernel connects to us (we listen) instead of the other way.
    passive: bool,
    /// The TAP device hands over the kernel's segments as it built them
    /// (`TapIo::open_large_receive`), up to 64 KiB a frame.
    large_receive: bool,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            csv_bytes: 1_500_000,
            request: 0,
            recv_buffer: StackConfig::default().aa.stream.recv_buffer,
            impair: None,
            read_every: 1,
            passive: false,
            large_receive: false,
        }
    }
}

/// The kernel sends about 1.5 MB of CSV; it is received clean.
#[test]
fn receives_csv_from_the_kernel_and_matches_python() {
    run_case("clean", Case::default());
}

/// A request of three segments first; frames from the kernel lost and
/// reordered on the way in (the kernel retransmits on our duplicate ACKs
/// or its timer).
#[test]
fn request_then_csv_with_loss_and_reordering() {
    run_case(
        "lossy",
        Case {
            request: 4000,
            impair: Some((29, 11)),
            ..Case::default()
        },
    );
}

/// A small window and an application that frees records only every fourth
/// poll: the window closes and reopens (window updates) many times.
#[test]
fn slow_reader_throttles_the_sender() {
    run_case(
        "slow reader",
        Case {
            csv_bytes: 400_000,
            recv_buffer: 16 * 1024,
            read_every: 4,
            ..Case::default()
        },
    );
}

/// The kernel connects to us: passive open, the CSV received, our FIN
/// after the kernel's.
#[test]
fn accepts_a_kernel_client_and_receives_its_csv() {
    run_case(
        "passive",
        Case {
            passive: true,
            ..Case::default()
        },
    );
}

/// The kernel's segments received as it built them, up to 64 KiB a frame
/// instead of 1514 bytes: the same rows.
#[test]
fn receives_large_frames_from_the_kernel() {
    run_case(
        "large receive",
        Case {
            large_receive: true,
            ..Case::default()
        },
    );
}

/// Large frames lost and reordered on the way in: the kernel resends what
/// a lost frame held (as it chooses to cut it), out-of-order frames wait
/// for the hole.
#[test]
fn large_frames_lost_and_reordered() {
    run_case(
        "large receive, lossy",
        Case {
            large_receive: true,
            impair: Some((9, 5)),
            ..Case::default()
        },
    );
}

/// The port we listen on in the passive case.
const LISTEN_PORT: u16 = 9000;

fn run_case(what: &str, case: Case) {
    let (pool, open): (_, OpenTap) = if case.large_receive {
        (PacketPool::new(64, LARGE_FRAME), TapIo::open_large_receive)
    } else {
        (PacketPool::new(1024, 2048), TapIo::open_offloading)
    };
    let TapNet { tap, dev: _, ns } =
        match tap_net("aa-ep", "aae", &pool, &["python3"], open, |_, _| {}) {
            Ok(net) => net,
            Err(why) => skip!("{why}"),
        };

    let mut cfg = StackConfig::default();
    cfg.aa.stream.recv_buffer = case.recv_buffer;
    let (drop_every, swap_every) = case.impair.unwrap_or((u64::MAX, u64::MAX));
    let dev = Impaired {
        tap,
        n: 0,
        drop_every,
        swap_every,
        dropped: 0,
        held: Vec::new(),
    };
    let mut stack: Stack<Impaired, CsvParser> = Stack::new(dev, pool.clone(), OUR_MAC, OUR_IP, cfg);
    if case.passive {
        stack.listen(LISTEN_PORT, CsvParser::new).unwrap();
    }

    let expected = TempFile(std::env::temp_dir().join(format!("{}.rows", ns.name)));
    let (mut child, line) = spawn_server(&mut ns.cmd(&[
        "python3",
        "-c",
        PY_CSV_SERVER,
        &case.csv_bytes.to_string(),
        expected.0.to_str().unwrap(),
        &case.request.to_string(),
        if case.passive { "client" } else { "server" },
        &LISTEN_PORT.to_string(),
    ]));
    let nums: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "server said {line:?}");
    let (port, py_rows, py_bytes) = (nums[0] as u16, nums[1], nums[2]);

    let mut id = None;
    if !case.passive {
        let peer = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), port);
        id = Some(stack.connect(peer, CsvParser::new()).unwrap());
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let (mut connected, mut finished, mut closed, mut close_sent) = (false, false, false, false);
    let mut rows = 0u64;
    let mut canon = Vec::with_capacity(2 << 20);
    let mut field = Vec::new();
    let mut polls = 0u32;
    let request: Vec<u8> = (0..case.request).map(|i| b'a' + (i % 26) as u8).collect();
    while !closed {
        assert!(
            Instant::now() < deadline,
            "timed out: state {:?}, {rows} rows, stats {:?}",
            id.and_then(|id| stack.state(id)),
            stack.stats()
        );
        stack
            .device()
            .tap
            .wait(Duration::from_millis(20))
            .expect("poll");
        polls += 1;
        stack.poll().expect("stack poll");
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(c) => {
                    assert_eq!(Some(c), id);
                    assert!(!case.passive);
                    connected = true;
                    assert_eq!(stack.send(c, &request), Ok(request.len()));
                }
                Event::Accepted(c) => {
                    assert!(case.passive && id.is_none());
                    let (ours, theirs) = stack.addrs(c).unwrap();
                    assert_eq!(ours, SocketAddrV4::new(OUR_IP, LISTEN_PORT));
                    assert_eq!(*theirs.ip(), Ipv4Addr::new(198, 51, 100, 1));
                    id = Some(c);
                    connected = true;
                }
                Event::Records(_) => {}
                Event::ParseFailed(c) => {
                    panic!("parse error: {:?}", stack.stream(c).and_then(|s| s.error()))
                }
                Event::Finished(_) => finished = true,
                Event::Closed(_) => closed = true,
                Event::Reset(_, why) => panic!("connection reset: {why:?}"),
            }
        }
        if polls % case.read_every != 0 {
            continue;
        }
        let Some(id) = id else { continue };
        if let Some(s) = stack.stream_mut(id) {
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                push_canonical(&r, &mut field, &mut canon);
            }
            s.free_aa_records(n);
            rows += n as u64;
            if finished && !close_sent && s.ready() == 0 {
                assert_eq!(s.state(), AaState::Ended, "{:?}", s.error());
                assert_eq!(s.stream().rcv_nxt_offset(), py_bytes);
                stack.close(id).unwrap();
                close_sent = true;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(connected);
    let id = id.unwrap();
    assert_eq!(stack.unacked(id), Some(0), "the request was acknowledged");
    assert_eq!(stack.state(id), Some(State::Closed));
    let stats = stack.stats();
    loud(&format!(
        "endpoint ({what}): {} frames dropped, {rows} rows, {py_bytes} bytes in {secs:.3} s ({:.1} Mbit/s), srtt {:?}, {stats:?}",
        stack.device().dropped,
        py_bytes as f64 * 8.0 / secs / 1e6,
        stack.srtt(id)
    ));
    // The TAP device offloads checksums both ways: the kernel's segments
    // came unchecksummed (it vouches for them), ours went out with the
    // pseudo-header's sum for it to finish.
    let tap = stack.device().tap.stats();
    assert!(
        tap.rx_checksum_good > 0 && tap.tx_checksum_offloaded > 0 && stats.bad_checksum == 0,
        "{tap:?}"
    );
    // An impaired link did lose and reorder: the rows above came through
    // recovery.
    if case.impair.is_some() {
        assert!(
            stack.device().dropped > 0 && stats.out_of_order > 0,
            "no loss or reordering happened: {stats:?}"
        );
    }
    // Frames of several segments came in only when asked for.
    assert_eq!(tap.rx_large > 0, case.large_receive, "{tap:?}");
    assert_eq!(tap.rx_too_long, 0, "{tap:?}");
    if case.read_every > 1 {
        assert!(
            stats.zero_windows_out > 0 && stats.window_updates > 0,
            "the window should have closed and reopened: {stats:?}"
        );
    }
    let theirs = std::fs::read(&expected.0).expect("python's rows");
    assert_eq!(rows, py_rows, "{}", first_difference(&canon, &theirs));
    assert!(canon == theirs, "{}", first_difference(&canon, &theirs));

    stack.release(id).unwrap();
    assert_eq!(stack.state(id), None);
    common::assert_pool_full(&pool);
    let status = child.0.wait().expect("wait for python3");
    assert!(status.success(), "python3 server: {status}");
    drop(stack);
    drop(ns);
}
