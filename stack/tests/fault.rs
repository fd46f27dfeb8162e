//! The faulty link ([`FaultIo`]) does what its configuration says, over many
//! packets and deterministically per seed, without leaking a buffer; and two
//! TCP endpoints talking over it (a [`pair`] in memory, 2% loss and
//! reordering both ways) move megabytes of CSV whose parsed rows equal what
//! was sent, with checksums computed and checked in software or left to the
//! link (checksum offload).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_runtime::{Packet, PacketPool, PoolPacket};
use aa_stack::io::fault::{Delay, FaultConfig, FaultIo, FaultStats, Faults};
use aa_stack::io::memory::MemoryIo;
use aa_stack::io::pair::{pair, PairIo};
use aa_stack::io::{IoError, Rx, RxChecksum};
use aa_stack::link::MacAddr;
use aa_stack::tcp::{Event, Stack, StackConfig, State};
use aa_stack::wire::tcp::{fold, ipv4_pseudo_sum};
use aa_stack::wire::{ipv4_tcp_header_len, parse, ChecksumStatus};
use aa_stack::{Burst, LinkType, PacketIo};

/// Counts heap allocations made by the current thread (tests run on
/// several threads at once).
struct Counting;

thread_local! {
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const
// thread-local (no allocation to reach it).
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        std::alloc::System.realloc(p, l, n)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// A device holding `n` frames; frame `i` starts with `i` as 4 bytes.
fn numbered(pool: &PacketPool, n: u32) -> MemoryIo {
    let frames = (0..n).map(|i| {
        let mut f = vec![0u8; 60];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f
    });
    MemoryIo::with_frames(pool.clone(), LinkType::Ethernet, frames)
}

fn id_of(p: &PoolPacket) -> u32 {
    u32::from_be_bytes(p.data()[..4].try_into().unwrap())
}

/// Receives everything through `dev` (polling on until nothing is held);
/// returns the frame numbers in delivery order.
fn drain(dev: &mut FaultIo<MemoryIo>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut burst = Burst::with_capacity(32);
    let mut idle = 0;
    while idle < 64 {
        let n = dev.recv_burst(&mut burst).unwrap();
        out.extend(burst.iter().map(|r| id_of(&r.packet)));
        burst.clear();
        if n == 0 && dev.inner().at_end() {
            idle += 1;
        }
    }
    out
}

fn within(what: &str, count: u64, of: u64, p: f64) {
    let rate = count as f64 / of as f64;
    // Five standard deviations of a binomial, and at least 0.2 points.
    let tol = (5.0 * (p * (1.0 - p) / of as f64).sqrt()).max(0.002);
    assert!(
        (rate - p).abs() <= tol,
        "{what}: {count} of {of} = {rate:.4}, configured {p} (tolerance {tol:.4})"
    );
}

const N: u32 = 40_000;

fn rx_config(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        rx: Faults::NONE
            .drop(0.1)
            .duplicate(0.05)
            .reorder(0.04, 3)
            .delay(0.06, Delay::Polls(2)),
        ..FaultConfig::default()
    }
}

fn check_rates(s: &FaultStats, f: &Faults, n: u64) {
    assert_eq!(s.packets, n);
    assert_eq!(s.overflow, 0);
    within("dropped", s.dropped, n, f.drop);
    let kept = n - s.dropped;
    within("duplicated", s.duplicated, kept, f.duplicate);
    within("reordered", s.reordered, kept, f.reorder);
    within("delayed", s.delayed, kept - s.reordered, f.delay);
    assert_eq!(s.delivered, kept + s.duplicated);
}

#[test]
fn receive_faults_match_the_configuration_and_the_seed() {
    let pool = PacketPool::new(256, 128);
    let cfg = rx_config(7);
    let mut dev = FaultIo::new(numbered(&pool, N), cfg);
    let got = drain(&mut dev);
    let s = dev.rx_stats();
    check_rates(&s, &cfg.rx, N as u64);
    assert_eq!(got.len() as u64, s.delivered);
    assert_eq!(dev.held(), 0);
    assert_eq!(dev.tx_stats(), FaultStats::default());
    // Every frame not dropped arrives, once or twice.
    let mut seen = vec![0u8; N as usize];
    for &i in &got {
        seen[i as usize] += 1;
    }
    assert_eq!(seen.iter().filter(|&&c| c == 0).count() as u64, s.dropped);
    assert_eq!(
        seen.iter().filter(|&&c| c == 2).count() as u64,
        s.duplicated
    );
    assert!(seen.iter().all(|&c| c <= 2));
    // The same seed, the same faults; another seed, others.
    let again = drain(&mut FaultIo::new(numbered(&pool, N), cfg));
    assert_eq!(again, got);
    let other = drain(&mut FaultIo::new(numbered(&pool, N), rx_config(8)));
    assert_ne!(other, got);
    drop(dev);
    assert!(pool.is_full(), "{} buffers out", 256 - pool.available());
}

#[test]
fn transmit_faults_match_the_configuration() {
    let pool = PacketPool::new(512, 128);
    let cfg = FaultConfig {
        seed: 3,
        tx: Faults::NONE
            .drop(0.02)
            .duplicate(0.01)
            .reorder(0.05, 2)
            .delay(0.1, Delay::Polls(1)),
        ..FaultConfig::default()
    };
    let mut dev = FaultIo::new(MemoryIo::new(pool.clone(), LinkType::Ethernet), cfg);
    let mut burst = Burst::with_capacity(32);
    let mut rx = Burst::with_capacity(32);
    let mut sent = Vec::new();
    for i in 0..N {
        let mut f = [0u8; 60];
        f[..4].copy_from_slice(&i.to_be_bytes());
        burst.push(pool.packet_from(&f).unwrap()).unwrap();
        if burst.room() == 0 {
            assert_eq!(dev.send_burst(&mut burst).unwrap(), 32);
            assert!(burst.is_empty());
            // A poll: delayed packets come due.
            dev.recv_burst(&mut rx).unwrap();
            sent.extend(dev.inner_mut().take_sent().iter().map(id_of));
        }
    }
    dev.send_burst(&mut burst).unwrap();
    for _ in 0..16 {
        dev.recv_burst(&mut rx).unwrap();
    }
    dev.release_all().unwrap();
    sent.extend(dev.inner_mut().take_sent().iter().map(id_of));
    let s = dev.tx_stats();
    check_rates(&s, &cfg.tx, N as u64);
    assert_eq!(sent.len() as u64, s.delivered);
    assert_eq!(dev.held(), 0);
    drop(dev);
    assert!(pool.is_full());
}

#[test]
fn reordered_packets_are_overtaken_by_the_gap() {
    let pool = PacketPool::new(256, 128);
    let gap = 3;
    let cfg = FaultConfig {
        seed: 11,
        rx: Faults::NONE.reorder(0.1, gap),
        reorder_timeout: 1_000_000,
        ..FaultConfig::default()
    };
    let mut dev = FaultIo::new(numbered(&pool, 5000), cfg);
    let mut got = Vec::new();
    let mut burst = Burst::with_capacity(32);
    while !dev.inner().at_end() || dev.held() > 0 {
        if dev.inner().at_end() {
            // The last ones wait for packets that never come.
            dev.release_all().unwrap();
        }
        dev.recv_burst(&mut burst).unwrap();
        got.extend(burst.iter().map(|r| id_of(&r.packet)));
        burst.clear();
    }
    let s = dev.rx_stats();
    assert_eq!(got.len(), 5000);
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..5000).collect::<Vec<_>>(), "each exactly once");
    // A late packet: one after a later one. Each reordered packet is late,
    // overtaken by at least `gap` later packets (but the last few, released
    // at the end).
    let mut late = 0u64;
    for (pos, &x) in got.iter().enumerate() {
        let overtaken = got[..pos].iter().filter(|&&y| y > x).count();
        if overtaken > 0 {
            late += 1;
            assert!(overtaken >= gap as usize, "{x} overtaken by {overtaken}");
        }
    }
    assert!(
        late <= s.reordered && late + 3 >= s.reordered,
        "{late} {s:?}"
    );
    within("reordered", s.reordered, 5000, 0.1);
}

#[test]
fn duplicates_share_the_buffer_and_nothing_leaks() {
    let pool = PacketPool::new(64, 128);
    let cfg = FaultConfig {
        rx: Faults::NONE.duplicate(1.0),
        ..FaultConfig::default()
    };
    let mut dev = FaultIo::new(numbered(&pool, 4), cfg);
    let mut burst = Burst::with_capacity(16);
    assert_eq!(dev.recv_burst(&mut burst).unwrap(), 8);
    let ids: Vec<u32> = burst.iter().map(|r| id_of(&r.packet)).collect();
    assert_eq!(ids, [0, 0, 1, 1, 2, 2, 3, 3]);
    // Four buffers, each handed out twice.
    assert_eq!(pool.available(), 60);
    drop(burst);
    assert!(pool.is_full());

    // Held packets (delayed for ever, reordered, queued beyond the caller's
    // burst) go back to the pool with the device.
    let cfg = FaultConfig {
        rx: Faults::NONE.delay(0.5, Delay::Time(Duration::from_secs(3600))),
        tx: Faults::NONE.reorder(1.0, 5),
        cap: 8,
        ..FaultConfig::default()
    };
    let mut dev = FaultIo::new(numbered(&pool, 40), cfg);
    let mut one = Burst::with_capacity(1);
    for _ in 0..3 {
        dev.recv_burst(&mut one).unwrap();
        one.clear();
    }
    let mut tx = Burst::with_capacity(16);
    for _ in 0..12 {
        tx.push(pool.packet_from(&[9; 60]).unwrap()).unwrap();
    }
    assert_eq!(dev.send_burst(&mut tx).unwrap(), 12);
    assert!(tx.is_empty());
    let s = dev.tx_stats();
    assert_eq!((s.reordered, s.overflow), (12, 4), "a cap of 8");
    assert!(dev.held() > 8);
    assert!(!pool.is_full());
    drop(dev);
    assert!(pool.is_full(), "{} buffers out", 64 - pool.available());
}

#[test]
fn no_allocation_per_packet_in_steady_state() {
    let pool = PacketPool::new(1024, 128);
    let faults = Faults::NONE
        .drop(0.05)
        .duplicate(0.05)
        .reorder(0.05, 3)
        .delay(0.05, Delay::Polls(2));
    let cfg = FaultConfig {
        seed: 5,
        rx: faults,
        tx: faults,
        cap: 256,
        ..FaultConfig::default()
    };
    let (a, b) = pair::<PoolPacket>(256, LinkType::Ethernet);
    let (mut a, mut b) = (FaultIo::new(a, cfg), FaultIo::new(b, cfg));
    let mut tx = Burst::with_capacity(32);
    let mut rx = Burst::with_capacity(32);
    let mut round = |a: &mut FaultIo<_>, b: &mut FaultIo<_>| {
        for i in 0..32u32 {
            let mut p = pool.alloc().unwrap();
            p.space()[..4].copy_from_slice(&i.to_be_bytes());
            tx.push(p.freeze(60)).unwrap();
        }
        a.send_burst(&mut tx).unwrap();
        let mut n = 0;
        while b.recv_burst(&mut rx).unwrap() > 0 {
            n += rx.len();
            rx.clear();
        }
        a.recv_burst(&mut rx).unwrap();
        rx.clear();
        n
    };
    for _ in 0..50 {
        round(&mut a, &mut b);
    }
    let before = allocs();
    black_box(vec![0u8; 1]);
    assert_eq!(allocs(), before + 1, "the counter counts");
    let before = allocs();
    let mut got = 0;
    for _ in 0..2000 {
        got += round(&mut a, &mut b);
    }
    assert_eq!(allocs() - before, 0, "allocations in 64000 packets");
    assert!(got > 50_000, "{got}");
    let (sa, sb) = (a.tx_stats(), b.rx_stats());
    assert!(sa.dropped > 0 && sa.duplicated > 0 && sb.reordered > 0 && sb.delayed > 0);
    drop((a, b));
    assert!(pool.is_full());
}

#[test]
fn delay_by_time() {
    let pool = PacketPool::new(8, 128);
    let cfg = FaultConfig {
        rx: Faults::NONE.delay(1.0, Delay::Time(Duration::from_millis(30))),
        ..FaultConfig::default()
    };
    let mut dev = FaultIo::new(numbered(&pool, 2), cfg);
    let mut burst = Burst::with_capacity(8);
    let t = Instant::now();
    assert_eq!(dev.recv_burst(&mut burst).unwrap(), 0);
    assert_eq!(dev.held(), 2);
    while dev.recv_burst(&mut burst).unwrap() == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(burst.len(), 2);
    assert_eq!(dev.rx_stats().delayed, 2);
}

// Two endpoints over a faulty pair.

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
const PORT: u16 = 8080;

/// A pair's end that notes the checksum status of the TCP frames it
/// receives, as software finds it: `Valid` when the sender computed them,
/// `Offloaded` when it left them to the device. One frame in 65536 or so is
/// both: its right checksum happens to equal the pseudo-header's sum. Such
/// frames are counted apart, in `either`, since they cannot tell the runs
/// apart.
struct Peek {
    io: PairIo<PoolPacket>,
    valid: u64,
    offloaded: u64,
    either: u64,
    other: u64,
    device_good: u64,
    /// The longest frame received.
    longest: usize,
}

/// Whether the TCP checksum of an Ethernet/IPv4 frame holds the folded
/// pseudo-header sum, what a sender leaves for a NIC to complete.
fn holds_pseudo_sum(frame: &[u8]) -> bool {
    let Some(l3) = ipv4_tcp_header_len(frame) else {
        return false;
    };
    let ip = &frame[14..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let pseudo = fold(ipv4_pseudo_sum(addr(12), addr(16), total - l3));
    let field = u16::from_ne_bytes([ip[l3 + 16], ip[l3 + 17]]);
    field == pseudo
}

impl PacketIo for Peek {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        let start = out.len();
        let n = self.io.recv_burst(out)?;
        for r in &out.as_slice()[start..] {
            self.longest = self.longest.max(r.packet.data().len());
            self.device_good += u64::from(r.meta.checksum == RxChecksum::Good);
            if let Ok(seg) = parse(r.packet.data(), LinkType::Ethernet, true) {
                match seg.checksum {
                    ChecksumStatus::Valid if holds_pseudo_sum(r.packet.data()) => self.either += 1,
                    ChecksumStatus::Valid => self.valid += 1,
                    ChecksumStatus::Offloaded if holds_pseudo_sum(r.packet.data()) => {
                        self.offloaded += 1
                    }
                    _ => self.other += 1,
                }
            }
        }
        Ok(n)
    }

    fn send_burst(&mut self, pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        self.io.send_burst(pkts)
    }

    fn tx_checksum_offload(&self) -> bool {
        self.io.tx_checksum_offload()
    }
}

type Dev = FaultIo<Peek>;

fn csv(bytes: usize) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let mut text = Vec::with_capacity(bytes + 64);
    let mut rows = Vec::new();
    let mut i = 0u64;
    while text.len() < bytes {
        let row = vec![
            i.to_string().into_bytes(),
            format!("name{}", i % 977).into_bytes(),
            format!("{}.{:02}", i * 37 % 10_000, i % 100).into_bytes(),
            b"the quick brown fox".to_vec(),
        ];
        text.extend_from_slice(&row.join(&b","[..]));
        text.push(b'\n');
        rows.push(row);
        i += 1;
    }
    (text, rows)
}

#[test]
fn two_stacks_move_megabytes_of_csv_over_a_lossy_reordering_link() {
    let [server, client] = csv_over_a_lossy_link(false, 1500);
    // Every TCP frame carried checksums computed in software.
    for p in [server, client] {
        assert!(p.valid > 0 && p.offloaded == 0 && p.other == 0 && p.device_good == 0);
    }
}

#[test]
fn with_checksum_offload_no_checksum_is_computed_or_checked() {
    let [server, client] = csv_over_a_lossy_link(true, 1500);
    // Every TCP frame left its checksums to the link, which vouched for
    // them: had a receiver checked them in software, it would have dropped
    // every segment (their checksums hold the pseudo-header's sum only).
    for p in [server, client] {
        assert!(p.offloaded > 0 && p.valid == 0 && p.other == 0);
        assert!(p.device_good >= p.offloaded);
    }
}

#[test]
fn jumbo_frames_carry_the_same_rows() {
    // A 9000-byte MTU, as DPDK ports and data-centre links are often set
    // up, and IPv4's largest packet, as in-memory links allow.
    for mtu in [9000, 65535] {
        for p in csv_over_a_lossy_link(false, mtu) {
            assert!(p.valid > 0 && p.offloaded == 0 && p.other == 0);
        }
    }
}

/// Two stacks move 3 MB of CSV over a pair with 2% loss and reordering
/// each way (more with frames above 1500 bytes) (the link set to checksum offload or not); checks every row and
/// that nothing leaks. Frames are of `mtu` bytes of IP (the pools' buffers
/// that plus the Ethernet header, the MSS that less 40 bytes of headers),
/// and the server sends full-sized ones. Returns the two ends' notes of what
/// they received.
fn csv_over_a_lossy_link(offload: bool, mtu: usize) -> [Peek; 2] {
    let (text, expected) = csv(3 << 20);
    // Fewer, larger frames lose more each, so that some are lost at all.
    let rate = (0.02 * mtu as f64 / 1500.0).min(0.1);
    let faults = Faults::NONE.drop(rate).reorder(rate, 3);
    let (a, b) = pair::<PoolPacket>(4096, LinkType::Ethernet);
    a.offload_checksums(offload);
    let link = |seed, io| {
        FaultIo::new(
            Peek {
                io,
                valid: 0,
                offloaded: 0,
                either: 0,
                other: 0,
                device_good: 0,
                longest: 0,
            },
            FaultConfig {
                seed,
                tx: faults,
                cap: 4096,
                ..FaultConfig::default()
            },
        )
    };
    let cfg = StackConfig {
        mss: (mtu - 40) as u16,
        send_buffer: 256 * 1024,
        initial_rto: Duration::from_millis(50),
        min_rto: Duration::from_millis(10),
        max_retries: 30,
        arp_retry: Duration::from_millis(20),
        arp_tries: 10,
        // Longer than the client's RTO can grow while its FIN goes
        // unanswered: a FIN retransmitted after TIME-WAIT gets a RST.
        time_wait: Duration::from_secs(5),
        ..StackConfig::default()
    };
    let buffers = (8 << 20) / mtu;
    let server_pool = PacketPool::new(buffers as u32, mtu + 14);
    let client_pool = PacketPool::new(buffers as u32, mtu + 14);
    let mut server: Stack<Dev, CsvParser> =
        Stack::new(link(1, a), server_pool.clone(), SERVER_MAC, SERVER_IP, cfg);
    let mut client: Stack<Dev, CsvParser> =
        Stack::new(link(2, b), client_pool.clone(), CLIENT_MAC, CLIENT_IP, cfg);
    server.listen(PORT, CsvParser::new).unwrap();
    let cid = client
        .connect(SocketAddrV4::new(SERVER_IP, PORT), CsvParser::new())
        .unwrap();

    // Virtual time: a millisecond per round.
    let mut now = Instant::now();
    let mut sid = None;
    let mut off = 0usize;
    let (mut rows, mut row) = (0usize, Vec::new());
    let (mut finished, mut client_closed, mut server_closed) = (false, false, false);
    let mut rounds = 0u32;
    while !(client_closed && server_closed) {
        rounds += 1;
        assert!(
            rounds < 2_000_000,
            "stuck: {rows} rows, {off} bytes queued, server {:?} {:?}, client {:?} {:?}",
            sid.and_then(|s| server.state(s)),
            server.stats(),
            client.state(cid),
            client.stats()
        );
        now += Duration::from_millis(1);
        server.poll_at(now).unwrap();
        while let Some(ev) = server.next_event() {
            match ev {
                Event::Accepted(s) => sid = Some(s),
                Event::Closed(_) => server_closed = true,
                Event::Reset(_, why) => panic!("server reset: {why:?} (MTU {mtu})"),
                _ => {}
            }
        }
        if let Some(s) = sid {
            if off < text.len() {
                loop {
                    let n = server.send(s, &text[off..]).unwrap();
                    off += n;
                    if n == 0 || off == text.len() {
                        break;
                    }
                }
                if off == text.len() {
                    server.close(s).unwrap();
                }
            }
        }
        client.poll_at(now).unwrap();
        while let Some(ev) = client.next_event() {
            match ev {
                Event::Finished(_) => finished = true,
                Event::Closed(_) => client_closed = true,
                Event::Reset(_, why) => panic!("client reset: {why:?} (MTU {mtu})"),
                _ => {}
            }
        }
        if let Some(st) = client.stream_mut(cid) {
            let mut n = 0;
            for r in st.read_aa_records(usize::MAX) {
                n += 1;
                assert_eq!(r.name(), "row");
                row.clear();
                row.extend(r.fields().map(|f| f.to_vec()));
                assert_eq!(row, expected[rows], "row {rows}");
                rows += 1;
            }
            st.free_aa_records(n);
            if finished && st.ready() == 0 && client.state(cid) == Some(State::CloseWait) {
                client.close(cid).unwrap();
            }
        }
    }
    assert_eq!(rows, expected.len());
    let (ss, cs) = (server.stats(), client.stats());
    let (sf, cf) = (server.device().tx_stats(), client.device().tx_stats());
    assert_eq!((ss.bad_checksum, cs.bad_checksum), (0, 0));
    eprintln!(
        "fault: {} bytes, {rows} rows in {rounds} rounds ({} ms virtual); \
         server tx {sf:?}, client tx {cf:?}; server {ss:?}; client {cs:?}",
        text.len(),
        rounds
    );
    assert!(sf.dropped > 0 && sf.reordered > 0 && cf.dropped > 0);
    assert!(ss.timeouts > 0 && ss.retransmitted_bytes > 0);
    // Full-sized segments, as large as the MTU allows and no larger.
    assert_eq!(client.device().inner().longest, mtu + 14);
    // Nothing leaks: with the connections released and the devices gone,
    // every buffer is back.
    if let Some(s) = sid {
        let _ = server.release(s);
    }
    let _ = client.release(cid);
    let peeks = [
        server.into_device().into_inner(),
        client.into_device().into_inner(),
    ];
    // What is still in flight on the wire.
    peeks[0].io.clear();
    assert!(server_pool.is_full(), "{}", server_pool.available());
    assert!(client_pool.is_full(), "{}", client_pool.available());
    peeks
}
