//! The TCP endpoint end to end in memory: two `aa_stack::tcp::Stack`s over
//! an `io::pair`, beside smoltcp's own two-socket loopback, the same CSV
//! bytes per iteration (`Throughput::Bytes` = payload bytes).
//!
//! - `aa`: a server stack `send`s the CSV (copied into its send buffer,
//!   from there straight into pool buffers at MSS 1460, Ethernet + IPv4 + TCP with
//!   checksums); the frames move (handles, no copy) to the client stack,
//!   which checks checksums, inserts them into its `AaStream` and parses
//!   rows on arrival with the compiled `aa_grammars::csv` parser; the
//!   application reads every row, sums its field lengths and frees it.
//! - `aa_offload`: `aa` with the pair set to checksum offload
//!   (`PairIo::offload_checksums`): senders leave the checksums, receivers
//!   take frames as checked, as two stacks on NICs with checksum offload
//!   (and as smoltcp's loopback, which ignores checksums).
//! - `aa_handwritten`: the same with the runtime's hand-written
//!   `aa_runtime::csv::CsvParser`.
//! - `aa_chunks`: the same with a parser that makes each in-order fragment
//!   one record of one field (its bytes in place): the transport alone,
//!   the application still reading every byte through records. Compare it
//!   with `smoltcp_mtu1500`. `aa_chunks_offload`: that with checksum
//!   offload.
//! - `aa_chunks_offload_mtu65535`: `aa_chunks_offload` with frames of 65535
//!   bytes of IP (MSS 65495), smoltcp's loopback MTU: with checksums left
//!   to the link as that loopback ignores them, the like-for-like
//!   comparison with `smoltcp_loopback`. `aa_chunks_mtu65535`: that with
//!   checksums computed and checked. `aa_offload_mtu65535`: the compiled
//!   CSV parser at that MTU, checksums offloaded.
//! - `smoltcp_loopback`: one `smoltcp::iface::Interface` over smoltcp's
//!   `phy::Loopback` (IP medium, MTU 65535, checksums ignored, a `Vec` per
//!   packet), a client socket `send_slice`s the CSV (copy into its ring
//!   buffer), a server socket `recv_slice`s it (copy out of its ring
//!   buffer) into the application's buffer. No parsing: smoltcp's transport
//!   alone.
//! - `smoltcp_mtu1500`: the same over a loopback device of MTU 1500 (the
//!   segment size `aa` uses), its frame buffers recycled.
//! - `smoltcp_mtu1500_csv_core`: that, with the received bytes parsed by
//!   `csv_core::Reader` (what an application on a copying stack does).
//!
//! One run on a quiet 2-core AMD EPYC machine (criterion medians, 1 MiB per
//! iteration): `aa` 12.2 Gbit/s, `aa_offload` 13.3, `aa_handwritten` 7.9,
//! `aa_chunks` 55.5, `aa_chunks_offload` 73.3, `aa_chunks_offload_mtu65535`
//! 314.3, `aa_chunks_mtu65535` 161.9, `aa_offload_mtu65535` 15.2,
//! `smoltcp_loopback` 138.5, `smoltcp_mtu1500` 42.9,
//! `smoltcp_mtu1500_csv_core` 11.2. At smoltcp's loopback MTU, with no
//! checksums on either side, aa's transport is 2.27 times smoltcp's (2.12
//! in another run); 1.17 computing checksums, which smoltcp's loopback does
//! not. Per 1460-byte segment it is 1.29 times smoltcp's computing
//! checksums, 1.71 with them offloaded. CSV parsing takes most of `aa`'s
//! time: at the receiver it bounds the transfer near 15 Gbit/s whatever
//! the MTU.
//!
//! Both sides are established once; each iteration moves `BYTES` of CSV on
//! the same connection. Sockets and windows: 256 KiB each way; smoltcp's
//! delayed ACK and Nagle are off (with them, the tail of every iteration
//! waits for a timer).

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use aa_grammars::csv::CsvParser;
use aa_runtime::raw::RawParser;
use aa_runtime::{PacketPool, Parser, PoolPacket};
use aa_stack::io::pair::{pair, PairIo};
use aa_stack::link::MacAddr;
use aa_stack::tcp::{ConnId, Event, Stack, StackConfig};
use aa_stack::LinkType;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

/// CSV bytes per iteration.
const BYTES: usize = 1 << 20;
/// Socket buffers and windows.
const WINDOW: usize = 256 * 1024;

/// Rows of four fields, cut at a row boundary near `bytes`; and the row count.
fn csv(bytes: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::with_capacity(bytes + 64);
    let mut rows = 0;
    let mut i = 0u64;
    loop {
        let row = format!(
            "{i},name{},{}.{:02},the quick brown fox\n",
            i % 977,
            i * 37 % 10_000,
            i % 100
        );
        if text.len() + row.len() > bytes {
            break;
        }
        text.extend_from_slice(row.as_bytes());
        rows += 1;
        i += 1;
    }
    (text, rows)
}

// aa: two stacks over a pair.

/// When a transfer is complete: after this many records, or field bytes.
#[derive(Clone, Copy)]
enum Target {
    Records(usize),
    FieldBytes(u64),
}

struct Aa<R: Parser> {
    server: Stack<PairIo<PoolPacket>, R>,
    client: Stack<PairIo<PoolPacket>, R>,
    sid: ConnId,
    cid: ConnId,
}

impl<R: Parser + 'static> Aa<R> {
    /// Two stacks connected; with `offload`, the pair does their checksums
    /// (as two NICs with checksum offload: none computed in software).
    fn new(parser: fn() -> R, offload: bool) -> Aa<R> {
        Self::with_mtu(parser, offload, 1500)
    }

    /// [`Aa::new`] with frames of `mtu` bytes of IP (MSS `mtu - 40`), in
    /// pools of 8 MiB whose buffers hold such a frame, at least 2 KiB.
    fn with_mtu(parser: fn() -> R, offload: bool, mtu: usize) -> Aa<R> {
        let buf = (mtu + 14).next_multiple_of(64).max(2048);
        let pool = || PacketPool::new(((8 << 20) / buf) as u32, buf);
        let server_ip = Ipv4Addr::new(10, 9, 0, 1);
        let (a, b) = pair::<PoolPacket>(4096, LinkType::Ethernet);
        a.offload_checksums(offload);
        let cfg = StackConfig {
            mss: (mtu - 40) as u16,
            send_buffer: WINDOW,
            ..StackConfig::default()
        };
        let mut server = Stack::new(a, pool(), MacAddr([2, 0xaa, 0, 0, 0, 1]), server_ip, cfg);
        let mut client = Stack::new(
            b,
            pool(),
            MacAddr([2, 0xaa, 0, 0, 0, 2]),
            Ipv4Addr::new(10, 9, 0, 2),
            cfg,
        );
        server.listen(9000, parser).unwrap();
        let cid = client
            .connect(SocketAddrV4::new(server_ip, 9000), parser())
            .unwrap();
        let (mut sid, mut connected) = (None, false);
        for _ in 0..100 {
            client.poll().unwrap();
            server.poll().unwrap();
            while let Some(ev) = server.next_event() {
                if let Event::Accepted(s) = ev {
                    sid = Some(s);
                }
            }
            while let Some(ev) = client.next_event() {
                connected |= ev == Event::Connected(cid);
            }
            if connected && sid.is_some() {
                break;
            }
        }
        assert!(connected, "aa: no handshake");
        Aa {
            server,
            client,
            sid: sid.expect("aa: not accepted"),
            cid,
        }
    }

    /// Moves `text` across; returns the records read and their field bytes.
    fn transfer(&mut self, text: &[u8], target: Target) -> (usize, u64) {
        let (mut off, mut got, mut field_bytes) = (0, 0usize, 0u64);
        let mut rounds = 0u32;
        while match target {
            Target::Records(n) => got < n,
            Target::FieldBytes(n) => field_bytes < n,
        } {
            rounds += 1;
            assert!(rounds < 1_000_000, "aa: stuck at {got} records");
            while off < text.len() {
                let n = self.server.send(self.sid, &text[off..]).unwrap();
                if n == 0 {
                    break;
                }
                off += n;
            }
            let now = Instant::now();
            self.server.poll_at(now).unwrap();
            self.client.poll_at(now).unwrap();
            while self.client.next_event().is_some() {}
            while self.server.next_event().is_some() {}
            let s = self.client.stream_mut(self.cid).unwrap();
            let mut n = 0;
            for r in s.read_aa_records(usize::MAX) {
                n += 1;
                for f in r.fields() {
                    field_bytes += f.len();
                }
            }
            s.free_aa_records(n);
            got += n;
        }
        (got, field_bytes)
    }
}

// smoltcp: one interface, two sockets, a loopback device.

/// A loopback of MTU 1500 whose frame buffers are reused: consumed receive
/// buffers go to `rx_spare`, transmit buffers come from `tx_spare`, and the
/// first refills the second whenever the device is asked for tokens.
struct Mtu1500 {
    queue: VecDeque<Vec<u8>>,
    rx_spare: Vec<Vec<u8>>,
    tx_spare: Vec<Vec<u8>>,
}

impl Mtu1500 {
    fn new() -> Mtu1500 {
        Mtu1500 {
            queue: VecDeque::with_capacity(1024),
            rx_spare: Vec::with_capacity(1024),
            tx_spare: Vec::with_capacity(1024),
        }
    }

    fn recycle(&mut self) {
        if self.tx_spare.is_empty() {
            std::mem::swap(&mut self.tx_spare, &mut self.rx_spare);
        }
    }
}

struct RxTok<'a> {
    buf: Vec<u8>,
    spare: &'a mut Vec<Vec<u8>>,
}

struct TxTok<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    spare: &'a mut Vec<Vec<u8>>,
}

impl phy::RxToken for RxTok<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf);
        self.spare.push(self.buf);
        r
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        let r = f(&mut buf);
        self.queue.push_back(buf);
        r
    }
}

impl Device for Mtu1500 {
    type RxToken<'a> = RxTok<'a>;
    type TxToken<'a> = TxTok<'a>;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.recycle();
        let buf = self.queue.pop_front()?;
        Some((
            RxTok {
                buf,
                spare: &mut self.rx_spare,
            },
            TxTok {
                queue: &mut self.queue,
                spare: &mut self.tx_spare,
            },
        ))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.recycle();
        Some(TxTok {
            queue: &mut self.queue,
            spare: &mut self.tx_spare,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.max_transmission_unit = 1500;
        caps.medium = Medium::Ip;
        caps
    }
}

struct Smol<D: Device> {
    dev: D,
    iface: Interface,
    sockets: SocketSet<'static>,
    server: SocketHandle,
    client: SocketHandle,
    t0: Instant,
    buf: Vec<u8>,
}

impl<D: Device> Smol<D> {
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.t0.elapsed().as_micros() as i64)
    }

    fn new(mut dev: D) -> Smol<D> {
        let t0 = Instant::now();
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut dev,
            smoltcp::time::Instant::from_micros(0),
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
        });
        let socket = || {
            let mut s = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; WINDOW]),
                tcp::SocketBuffer::new(vec![0; WINDOW]),
            );
            s.set_ack_delay(None);
            s.set_nagle_enabled(false);
            s
        };
        let mut sockets = SocketSet::new(vec![]);
        let server = sockets.add(socket());
        let client = sockets.add(socket());
        sockets.get_mut::<tcp::Socket>(server).listen(1234).unwrap();
        sockets
            .get_mut::<tcp::Socket>(client)
            .connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 1234), 65000)
            .unwrap();
        let mut s = Smol {
            dev,
            iface,
            sockets,
            server,
            client,
            t0,
            buf: vec![0; WINDOW],
        };
        for _ in 0..100 {
            let now = s.now();
            s.iface.poll(now, &mut s.dev, &mut s.sockets);
            if s.sockets.get::<tcp::Socket>(s.client).may_send()
                && s.sockets.get::<tcp::Socket>(s.server).may_recv()
            {
                return s;
            }
        }
        panic!("smoltcp: no handshake");
    }

    /// Moves `text` across; every received chunk goes to `sink`.
    fn transfer(&mut self, text: &[u8], mut sink: impl FnMut(&[u8])) {
        let (mut off, mut got) = (0, 0);
        let mut rounds = 0u32;
        while got < text.len() {
            rounds += 1;
            assert!(rounds < 1_000_000, "smoltcp: stuck at {got}");
            if off < text.len() {
                off += self
                    .sockets
                    .get_mut::<tcp::Socket>(self.client)
                    .send_slice(&text[off..])
                    .unwrap();
            }
            let now = self.now();
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
            let s = self.sockets.get_mut::<tcp::Socket>(self.server);
            while s.can_recv() {
                let n = s.recv_slice(&mut self.buf).unwrap();
                sink(&self.buf[..n]);
                got += n;
            }
        }
    }
}

/// Counts CSV rows and field bytes with `csv_core`, across chunk boundaries.
struct CsvCore {
    rdr: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    o: usize,
    e: usize,
    rows: usize,
    field_bytes: u64,
}

impl CsvCore {
    fn new() -> CsvCore {
        CsvCore {
            rdr: csv_core::Reader::new(),
            out: vec![0; 4096],
            ends: vec![0; 64],
            o: 0,
            e: 0,
            rows: 0,
            field_bytes: 0,
        }
    }

    fn feed(&mut self, mut input: &[u8]) {
        loop {
            let (res, nin, nout, nend) =
                self.rdr
                    .read_record(input, &mut self.out[self.o..], &mut self.ends[self.e..]);
            input = &input[nin..];
            self.o += nout;
            self.e += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => return,
                csv_core::ReadRecordResult::Record => {
                    self.rows += 1;
                    self.field_bytes += self.o as u64;
                    black_box(&self.ends[..self.e]);
                    self.o = 0;
                    self.e = 0;
                }
                csv_core::ReadRecordResult::End => return,
                r => panic!("csv_core: {r:?}"),
            }
        }
    }
}

fn endpoint(c: &mut Criterion) {
    let (text, rows) = csv(BYTES);
    let mut g = c.benchmark_group("endpoint_csv_1m");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let csv = Target::Records(rows);
    let mut aa = Aa::new(CsvParser::new, false);
    assert_eq!(aa.transfer(&text, csv).0, rows);
    g.bench_function("aa", |b| b.iter(|| black_box(aa.transfer(&text, csv))));

    let mut off = Aa::new(CsvParser::new, true);
    assert_eq!(off.transfer(&text, csv).0, rows);
    g.bench_function("aa_offload", |b| {
        b.iter(|| black_box(off.transfer(&text, csv)))
    });

    let mut hand = Aa::new(aa_runtime::csv::CsvParser::default, false);
    assert_eq!(hand.transfer(&text, csv).0, rows);
    g.bench_function("aa_handwritten", |b| {
        b.iter(|| black_box(hand.transfer(&text, csv)))
    });

    let all = Target::FieldBytes(text.len() as u64);
    let mut chunks = Aa::new(RawParser::default, false);
    chunks.transfer(&text, all);
    g.bench_function("aa_chunks", |b| {
        b.iter(|| black_box(chunks.transfer(&text, all)))
    });

    let mut chunks_off = Aa::new(RawParser::default, true);
    chunks_off.transfer(&text, all);
    g.bench_function("aa_chunks_offload", |b| {
        b.iter(|| black_box(chunks_off.transfer(&text, all)))
    });

    // At smoltcp's loopback MTU, checksums left to the link as it ignores
    // them: the like-for-like comparison with `smoltcp_loopback`.
    let mut big = Aa::with_mtu(RawParser::default, true, 65535);
    big.transfer(&text, all);
    g.bench_function("aa_chunks_offload_mtu65535", |b| {
        b.iter(|| black_box(big.transfer(&text, all)))
    });

    let mut big_sum = Aa::with_mtu(RawParser::default, false, 65535);
    big_sum.transfer(&text, all);
    g.bench_function("aa_chunks_mtu65535", |b| {
        b.iter(|| black_box(big_sum.transfer(&text, all)))
    });

    let mut big_csv = Aa::with_mtu(CsvParser::new, true, 65535);
    assert_eq!(big_csv.transfer(&text, csv).0, rows);
    g.bench_function("aa_offload_mtu65535", |b| {
        b.iter(|| black_box(big_csv.transfer(&text, csv)))
    });

    let mut lo = Smol::new(Loopback::new(Medium::Ip));
    g.bench_function("smoltcp_loopback", |b| {
        b.iter(|| {
            lo.transfer(&text, |d| {
                black_box(d);
            })
        })
    });

    let mut sm = Smol::new(Mtu1500::new());
    g.bench_function("smoltcp_mtu1500", |b| {
        b.iter(|| {
            sm.transfer(&text, |d| {
                black_box(d);
            })
        })
    });

    let mut smc = Smol::new(Mtu1500::new());
    let mut parse = CsvCore::new();
    smc.transfer(&text, |d| parse.feed(d));
    assert_eq!(parse.rows, rows);
    g.bench_function("smoltcp_mtu1500_csv_core", |b| {
        b.iter(|| smc.transfer(&text, |d| parse.feed(d)))
    });
    g.finish();
}

criterion_group!(benches, endpoint);
criterion_main!(benches);
