//! The TAP backend and the link-level responder against the real Linux
//! kernel.
//!
//! Each test makes its own network namespace `aa-tap-<pid>-<n>`, opens a TAP
//! device from the test process, moves the device into the namespace (the
//! descriptor keeps working), gives the kernel's side 198.51.100.1/24 there
//! and brings it up. The test thread then plays 198.51.100.2 on the TAP with
//! a [`Responder`]. Nothing is configured in the host namespace and nothing
//! is sent to any other address; the namespace is deleted at the end, on
//! failure too (a guard). Every test ends with its packet pool full again.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `/dev/net/tun` and `ip`
//! (iproute2); the ping test needs `ping` (iputils-ping) or, failing that,
//! python3 (a raw-socket pinger below). Without them a test prints
//! "skipped: ..." and passes, unless `AA_REQUIRE_NET=1`: then it fails.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aa_runtime::{Packet, PacketPool, PoolPacket};
use aa_stack::io::pcap::PcapReader;
use aa_stack::io::tap::TapIo;
use aa_stack::link::{Handled, Responder};
use aa_stack::{Burst, IoError, PacketIo, Rx, Timestamp};

use common::netns::{
    loud, missing_prerequisite, next_n, on_path, skip, tap_net, Netns, TapNet, TempFile, KERNEL_IP,
    OUR_IP, OUR_MAC,
};

/// Our end of the TAP, answering as 198.51.100.2.
struct Host {
    tap: TapIo,
    resp: Responder,
    pool: PacketPool,
    rx: Burst<Rx<PoolPacket>>,
    tx: Burst<PoolPacket>,
}

impl Host {
    /// Waits up to `timeout` for frames, answers them, sends the answers;
    /// returns how many frames came in.
    fn pump(&mut self, timeout: Duration) -> usize {
        self.tap.wait(timeout).expect("poll");
        let n = self.tap.recv_burst(&mut self.rx).expect("receive");
        for rx in self.rx.drain(..) {
            if let Handled::Reply(p) = self.resp.handle_rx(&rx, &self.pool) {
                if let Err(p) = self.tx.push(p) {
                    flush(&mut self.tap, &mut self.tx);
                    self.tx.push(p).expect("room after a flush");
                }
            }
        }
        flush(&mut self.tap, &mut self.tx);
        n
    }

    fn send(&mut self, p: PoolPacket) {
        self.tx.push(p).expect("room");
        flush(&mut self.tap, &mut self.tx);
    }
}

fn flush(tap: &mut TapIo, tx: &mut Burst<PoolPacket>) {
    while !tx.is_empty() {
        tap.send_burst(tx).expect("send");
    }
}

/// The namespace with the TAP in it, configured; fields drop in order, so
/// the device closes before the namespace goes.
struct Lab {
    host: Host,
    dev: String,
    ns: Netns,
}

/// Sets up a lab, or says why it cannot (`Err`: skip).
fn lab() -> Result<Lab, String> {
    lab_with(PacketPool::new(64, 2048))
}

/// [`lab`] receiving into `pool`.
fn lab_with(pool: PacketPool) -> Result<Lab, String> {
    let TapNet { tap, dev, ns } = tap_net("aa-tap", "aat", &pool, &[], TapIo::open, |tap, dev| {
        assert_eq!(tap.name(), dev);
        assert!(tap.mac().is_unicast(), "kernel MAC {}", tap.mac());
    })?;
    Ok(Lab {
        host: Host {
            tap,
            resp: Responder::new(OUR_MAC, OUR_IP),
            pool,
            rx: Burst::with_capacity(32),
            tx: Burst::with_capacity(32),
        },
        dev,
        ns,
    })
}

/// A pinger for when iputils' `ping` is missing: three echo requests over a
/// raw socket, each answered within the timeout by a reply with the same
/// identifier, sequence number and data and a correct checksum.
const PY_PING: &str = r#"
import os, socket, struct, sys, time
dst, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
for seq in range(1, count + 1):
    data = bytes((seq + i) & 0xff for i in range(56))
    c = csum(struct.pack('!BBHHH', 8, 0, 0, ident, seq) + data)
    s.sendto(struct.pack('!BBHHH', 8, 0, c, ident, seq) + data, (dst, 0))
    deadline = time.time() + wait
    while True:
        left = deadline - time.time()
        if left <= 0: sys.exit('seq %d: no reply' % seq)
        s.settimeout(left)
        try: pkt, addr = s.recvfrom(2048)
        except socket.timeout: sys.exit('seq %d: no reply' % seq)
        icmp = pkt[(pkt[0] & 15) * 4:]
        if addr[0] != dst or len(icmp) < 8: continue
        t, _, _, rid, rseq = struct.unpack('!BBHHH', icmp[:8])
        if t != 0 or rid != ident or rseq != seq: continue
        if csum(icmp) != 0: sys.exit('seq %d: bad ICMP checksum' % seq)
        if icmp[8:] != data: sys.exit('seq %d: data differs' % seq)
        print('64 bytes from %s: icmp_seq=%d' % (dst, seq))
        break
print('%d packets transmitted, %d received' % (count, count))
"#;

/// (a) The kernel pings 198.51.100.2 three times and every ping is answered;
/// (b) its ARP table then holds our MAC for 198.51.100.2; the capture holds
/// every frame in and out; (d) the pool is full at the end.
#[test]
fn kernel_pings_us_and_learns_our_mac() {
    let mut lab = match lab() {
        Ok(l) => l,
        Err(why) => skip!("{why}"),
    };
    let started = Instant::now();
    let pcap = TempFile(std::env::temp_dir().join(format!("{}.pcap", lab.ns.name)));
    lab.host.tap.capture_to_file(&pcap.0).unwrap();

    let target = OUR_IP.to_string();
    let mut cmd = if on_path("ping").is_some() {
        lab.ns.cmd(&["ping", "-c", "3", "-W", "2", &target])
    } else if on_path("python3").is_some() {
        loud("note: no `ping` (iputils-ping) here: pinging with a python3 raw socket");
        lab.ns.cmd(&["python3", "-c", PY_PING, &target, "3", "2"])
    } else {
        skip!("neither `ping` (iputils-ping) nor python3 to ping with")
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the pinger");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        lab.host.pump(Duration::from_millis(20));
        if let Some(status) = child.try_wait().expect("wait for the pinger") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the pinger did not finish in 20 s; {:?}",
                lab.host.resp.stats()
            );
        }
    };
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    eprintln!("{text}");
    let stats = lab.host.resp.stats();
    assert!(
        status.success(),
        "ping failed ({status}): {text}\n{stats:?}"
    );
    assert!(text.contains("3 received"), "{text}");
    assert!(stats.echo_answered >= 3, "{stats:?}");
    assert!(stats.arp_answered >= 1, "{stats:?}");
    assert_eq!(
        stats.malformed + stats.bad_checksum + stats.no_buffer,
        0,
        "{stats:?}"
    );
    // The kernel asked for us by ARP: we know it now.
    assert_eq!(
        lab.host.resp.lookup(KERNEL_IP, Timestamp::now()),
        Some(lab.host.tap.mac())
    );

    // (b) The kernel's neighbour table has our MAC for 198.51.100.2.
    let neigh = lab
        .ns
        .run(&["ip", "neigh", "show", &target, "dev", &lab.dev]);
    assert!(
        neigh.contains(&format!("lladdr {OUR_MAC}")),
        "kernel neighbour table: {neigh:?}"
    );

    // Every frame in and out is in the capture.
    lab.host
        .tap
        .set_capture(None)
        .unwrap()
        .finish()
        .expect("finish the capture");
    let tap_stats = lab.host.tap.stats();
    assert_eq!(tap_stats.capture_errors, 0);
    let mut reader = PcapReader::open(&pcap.0, PacketPool::new(4, 2048)).unwrap();
    let mut burst = Burst::with_capacity(4);
    let (mut frames, mut replies) = (0, 0);
    while reader.recv_burst(&mut burst).unwrap() > 0 {
        for rx in burst.drain(..) {
            frames += 1;
            let d = rx.packet.data();
            // Ours: from our MAC, IPv4, ICMP, echo reply.
            if d.len() > 34 && d[6..12] == OUR_MAC.0 && d[12..14] == [8, 0] && d[23] == 1 {
                replies += u64::from(d[34] == 0);
            }
        }
    }
    assert_eq!(frames, tap_stats.rx_packets + tap_stats.tx_packets);
    assert_eq!(replies, stats.echo_answered);
    eprintln!(
        "ping test: {} frames in, {} out, {:?}; {:.2} s",
        tap_stats.rx_packets,
        tap_stats.tx_packets,
        stats,
        started.elapsed().as_secs_f64()
    );

    // (d) Every buffer is back.
    let pool = lab.host.pool.clone();
    drop(lab);
    assert!(pool.is_full(), "{pool:?}");
}

/// (c) An ARP request we send for 198.51.100.1 is answered by the kernel and
/// lands in our cache; (d) the pool is full at the end.
#[test]
fn we_resolve_the_kernel_by_arp() {
    let mut lab = match lab() {
        Ok(l) => l,
        Err(why) => skip!("{why}"),
    };
    let started = Instant::now();
    let host = &mut lab.host;
    assert_eq!(host.resp.lookup(KERNEL_IP, Timestamp::now()), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_request = Instant::now();
    while host.resp.lookup(KERNEL_IP, Timestamp::now()).is_none() {
        assert!(
            Instant::now() < deadline,
            "no ARP reply from the kernel in 10 s: {:?} {:?}",
            host.resp.stats(),
            host.tap.stats()
        );
        if Instant::now() >= next_request {
            let req = host.resp.arp_request(KERNEL_IP, &host.pool).unwrap();
            host.send(req);
            next_request = Instant::now() + Duration::from_secs(1);
        }
        host.pump(Duration::from_millis(20));
    }
    assert_eq!(
        host.resp.lookup(KERNEL_IP, Timestamp::now()),
        Some(host.tap.mac())
    );
    let stats = host.resp.stats();
    assert!(
        stats.arp_learned >= 1 && stats.arp_requests >= 1,
        "{stats:?}"
    );
    // Our request told the kernel about us, too.
    let neigh = lab
        .ns
        .run(&["ip", "neigh", "show", "198.51.100.2", "dev", &lab.dev]);
    assert!(neigh.contains(&format!("lladdr {OUR_MAC}")), "{neigh:?}");
    eprintln!(
        "ARP test: {stats:?}; {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let pool = lab.host.pool.clone();
    drop(lab);
    assert!(pool.is_full(), "{pool:?}");
}

/// A frame longer than a pool buffer is dropped and counted, not cut; a
/// frame too short for Ethernet is refused by the kernel, dropped and
/// counted, and the burst goes on.
#[test]
fn oversized_and_runt_frames() {
    let mut lab = match lab_with(PacketPool::new(16, 128)) {
        Ok(l) => l,
        Err(why) => skip!("{why}"),
    };
    // A 600-byte UDP datagram from the kernel to us (port 9, discard): ARP
    // first (small frames, answered), then one frame of 642 bytes.
    let mut child = lab
        .ns
        .cmd(&[
            "bash",
            "-c",
            "head -c 600 /dev/zero > /dev/udp/198.51.100.2/9",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn bash");
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.host.tap.stats().rx_too_long == 0 {
        assert!(
            Instant::now() < deadline,
            "no oversized frame seen: {:?} {:?}",
            lab.host.tap.stats(),
            lab.host.resp.stats()
        );
        lab.host.pump(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait for bash");
    assert!(status.success(), "{status}");
    assert_eq!(lab.host.tap.stats().rx_too_long, 1);

    let host = &mut lab.host;
    let runt = host.pool.packet_from(&[0xff; 10]).unwrap();
    let req = host.resp.arp_request(KERNEL_IP, &host.pool).unwrap();
    host.tx.push(runt).unwrap();
    host.tx.push(req).unwrap();
    assert_eq!(host.tap.send_burst(&mut host.tx).unwrap(), 2);
    assert!(host.tx.is_empty());
    let s = host.tap.stats();
    assert_eq!(s.tx_refused, 1, "{s:?}");
    let pool = lab.host.pool.clone();
    drop(lab);
    assert!(pool.is_full(), "{pool:?}");
}

/// Runs `f` on a thread inside namespace `ns` (setns affects the calling
/// thread only), so that devices it opens are created there, not in the host
/// namespace.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(format!("/var/run/netns/{}", ns.name)).expect("namespace file");
    std::thread::spawn(move || {
        // SAFETY: a valid namespace descriptor; only this thread moves.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in the namespace")
}

/// Clear errors: a device already open elsewhere is busy, a name taken by a
/// device that is not a TAP is refused; a persistent device outlives its
/// descriptor, is attached to by name, and goes when made non-persistent.
/// All inside a namespace of its own.
#[test]
fn open_errors_and_persistence() {
    if let Some(why) = missing_prerequisite(&[]) {
        skip!("{why}");
    }
    let n = next_n();
    let ns = match Netns::create("aa-tap", n) {
        Ok(ns) => ns,
        Err(e) => skip!("cannot create a network namespace: {e}"),
    };
    let dev = format!("aat{}n{n}", std::process::id());
    let result = in_netns(&ns, {
        let dev = dev.clone();
        move || -> Result<(), String> {
            let pool = PacketPool::new(4, 2048);
            let first = TapIo::open(&dev, pool.clone()).map_err(|e| e.to_string())?;
            match TapIo::open(&dev, pool.clone()) {
                Err(IoError::Os(e)) => {
                    assert_eq!(e.kind(), ErrorKind::ResourceBusy, "{e}");
                    assert!(e.to_string().contains("busy"), "{e}");
                }
                other => panic!("second open of {dev}: {other:?}"),
            }
            match TapIo::open("lo", pool.clone()) {
                Err(IoError::Os(e)) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                    assert!(e.to_string().contains("not a TAP"), "{e}");
                }
                other => panic!("open lo: {other:?}"),
            }
            // Persistent: survives the close; attach by name; unpersist.
            first.set_persist(true).unwrap();
            let mac = first.mac();
            drop(first);
            // Another test thread spawning a process holds a copy of every
            // descriptor from fork to exec: the device may stay busy a moment.
            let again = retry_busy(|| TapIo::open(&dev, pool.clone()));
            assert_eq!(again.mac(), mac, "the same device");
            again.set_persist(false).unwrap();
            drop(again);
            // An empty name: the kernel picks one.
            let auto = TapIo::open("", pool.clone()).unwrap();
            assert!(auto.name().starts_with("tap"), "{}", auto.name());
            Ok(())
        }
    });
    if let Err(e) = result {
        skip!("cannot open a TAP device: {e}");
    }
    // The non-persistent device went with its last descriptor (once any
    // process forked by another test thread has let go of it).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let links = ns.run(&["ip", "-o", "link", "show"]);
        if !links.contains(&dev) {
            break;
        }
        assert!(Instant::now() < deadline, "{dev} still there: {links}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `open()`, again while it says the device is busy, for up to 5 s.
fn retry_busy(mut open: impl FnMut() -> Result<TapIo, IoError>) -> TapIo {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open() {
            Ok(t) => return t,
            Err(IoError::Os(e))
                if e.kind() == ErrorKind::ResourceBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
