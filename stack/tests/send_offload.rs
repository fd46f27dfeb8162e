//! The endpoint sending to the Linux kernel's TCP with transmit segmentation
//! offload: over a TAP device with the virtio-net header, data goes out in
//! frames of up to 64 KiB marked with the peer's MSS
//! ([`StackConfig::segmentation_offload`]), which the kernel cuts into
//! segments; the bytes must arrive whole and in order.
//!
//! Each case makes its own network namespace `aa-so-<pid>-<n>` with a TAP
//! device opened by [`TapIo::open_large_receive`] (the kernel's side
//! 198.51.100.1/24, ours 198.51.100.2), starts a python3 sink there that
//! accepts one connection and writes what it reads to a file until the
//! end, and runs [`Stack`] in-process: connect, send 8 MiB,
//! close. The cases: clean; every 7th frame of several segments lost on its
//! way out (a hole of many segments, which the kernel's SACKs report and
//! the endpoint fills); and the offload turned off. The sink's bytes must be ours, frames of several
//! segments must have gone out (and, with the offload turned off, none),
//! and the pool must be full at the end. Nothing is configured in the host
//! namespace; the namespace is deleted at the end, on failure too.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `/dev/net/tun`, `ip`
//! (iproute2) and python3. Without them the test prints "skipped: ..." and
//! passes, unless `AA_REQUIRE_NET=1`: then it fails.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_runtime::{PacketPool, PoolPacket};
use aa_stack::io::tap::{TapIo, LARGE_FRAME};
use aa_stack::tcp::{Event, Stack, StackConfig, State};
use aa_stack::{Burst, IoError, PacketIo, Rx};

use common::netns::{loud, skip, spawn_server, tap_net, TapNet, TempFile, OUR_IP, OUR_MAC};

/// Accepts one connection, reads it to its end into the file `argv[1]`.
/// Prints its port first.
const PY_SINK: &str = r#"
import socket, sys
s = socket.socket()
s.bind(("0.0.0.0", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
with open(sys.argv[1], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
c.close()
"#;

/// The TAP device, losing every `drop_every`-th frame of several segments
/// that we send (none with `u64::MAX`): a burst of lost segments, as when a
/// NIC's segmentation offload loses a frame. Frames of one segment (the
/// retransmissions of holes among them) all go out.
struct LossyOut {
    tap: TapIo,
    n: u64,
    drop_every: u64,
    dropped: u64,
}

impl PacketIo for LossyOut {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        self.tap.recv_burst(out)
    }

    fn send_burst(&mut self, pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        let mut kept = Burst::with_capacity(pkts.len());
        let mut taken = 0;
        for p in pkts.drain(..) {
            taken += 1;
            if p.tx_segment_size() > 0 {
                self.n += 1;
                if self.n % self.drop_every == 0 {
                    self.dropped += 1;
                    continue;
                }
            }
            let _ = kept.push(p);
        }
        // The TAP device takes what it can; the rest is dropped here too
        // (TCP sends it again), so that every frame handed over is taken.
        self.tap.send_burst(&mut kept)?;
        Ok(taken)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.tap.tx_checksum_offload()
    }

    fn tx_segmentation(&self) -> bool {
        self.tap.tx_segmentation()
    }
}

/// Deterministic bytes to send.
fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends 8 MiB to the sink; checks what it got, the frames, the pool.
fn run_case(what: &str, drop_every: u64, offload: bool) {
    let pool = PacketPool::new(256, LARGE_FRAME);
    let TapNet { tap, dev: _, ns } = match tap_net(
        "aa-so",
        "aas",
        &pool,
        &["python3"],
        TapIo::open_large_receive,
        |_, _| {},
    ) {
        Ok(net) => net,
        Err(why) => skip!("{why}"),
    };
    let cfg = StackConfig {
        send_buffer: 1 << 20,
        segmentation_offload: offload,
        // A lost frame that was the last in flight is found by the timer
        // alone (no tail loss probe): a short one keeps the lossy case
        // short (round trips here are tens of microseconds).
        min_rto: Duration::from_millis(10),
        ..StackConfig::default()
    };
    let dev = LossyOut {
        tap,
        n: 0,
        drop_every,
        dropped: 0,
    };
    let mut stack: Stack<LossyOut, aa_grammars::csv::CsvParser> =
        Stack::new(dev, pool.clone(), OUR_MAC, OUR_IP, cfg);

    let result = TempFile(std::env::temp_dir().join(format!("{}.sink", ns.name)));
    let (mut child, line) =
        spawn_server(&mut ns.cmd(&["python3", "-c", PY_SINK, result.0.to_str().unwrap()]));
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("sink said {line:?}"));
    let peer = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), port);
    let id = stack
        .connect(peer, aa_grammars::csv::CsvParser::new())
        .unwrap();

    let bytes = data(8 << 20);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let (mut sent, mut connected, mut close_sent, mut closed) = (0usize, false, false, false);
    while !closed {
        assert!(
            Instant::now() < deadline,
            "timed out: state {:?}, {sent} bytes handed over, stats {:?}",
            stack.state(id),
            stack.stats()
        );
        stack
            .device()
            .tap
            .wait(Duration::from_millis(5))
            .expect("poll");
        stack.poll().expect("stack poll");
        while let Some(ev) = stack.next_event() {
            match ev {
                Event::Connected(_) => connected = true,
                Event::Closed(_) => closed = true,
                Event::Reset(_, why) => panic!("connection reset: {why:?}"),
                // The sink sends nothing.
                Event::Accepted(_)
                | Event::Records(_)
                | Event::ParseFailed(_)
                | Event::Finished(_) => {}
            }
        }
        if connected && sent < bytes.len() {
            sent += stack.send(id, &bytes[sent..]).expect("send");
        }
        if sent == bytes.len() && !close_sent {
            stack.close(id).unwrap();
            close_sent = true;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = stack.stats();
    let tap = stack.device().tap.stats();
    loud(&format!(
        "send offload ({what}): {} bytes in {secs:.3} s ({:.1} Mbit/s), {} frames lost on the way out, {stats:?}, {tap:?}",
        bytes.len(),
        bytes.len() as f64 * 8.0 / secs / 1e6,
        stack.device().dropped,
    ));
    let status = child.0.wait().expect("wait for python3");
    assert!(status.success(), "python3 sink: {status}");
    let got = std::fs::read(&result.0).expect("what the sink received");
    assert_eq!(got.len(), bytes.len(), "bytes the kernel received");
    let first = got.iter().zip(&bytes).position(|(a, b)| a != b);
    assert_eq!(first, None, "first byte that differs");
    assert_eq!(stack.unacked(id), Some(0), "everything acknowledged");
    // Frames of several segments went out exactly when the offload was on,
    // each one cut by the kernel (all but those lost on the way).
    assert_eq!(stats.large_frames_out > 0, offload, "{stats:?}");
    assert_eq!(
        tap.tx_large + stack.device().dropped,
        stats.large_frames_out,
        "{tap:?}"
    );
    assert_eq!(tap.tx_refused, 0, "{tap:?}");
    if drop_every != u64::MAX {
        assert!(
            stack.device().dropped > 0 && stats.retransmitted_bytes > 0,
            "no loss or no retransmission: {stats:?}"
        );
    }
    // We closed first: TIME-WAIT, or over already.
    assert!(
        matches!(stack.state(id), Some(State::TimeWait | State::Closed)),
        "{:?}",
        stack.state(id)
    );
    stack.release(id).unwrap();
    common::assert_pool_full(&pool);
    drop(stack);
    drop(ns);
}

/// 8 MiB in frames of up to 64 KiB that the kernel cuts into segments.
#[test]
fn sends_large_frames_the_kernel_cuts_into_segments() {
    run_case("clean", u64::MAX, true);
}

/// The same with every 7th frame of several segments lost on the way out:
/// a hole of many segments, found by the kernel's SACKs and filled again.
#[test]
fn large_frames_lost_on_the_way_out_are_sent_again() {
    run_case("lossy", 7, true);
}

/// With the offload turned off, a frame per segment, as on any device.
#[test]
fn without_the_offload_a_frame_per_segment() {
    run_case("off", u64::MAX, false);
}
