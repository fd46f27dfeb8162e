//! MQTT 3.1.1 control packets through the application-aware stream, against
//! `mqttbytes` on a copying stack.
//!
//! Input (deterministic, built once, held in memory): the stream a broker
//! sends down a subscriber's connection, `PACKETS` control packets written
//! by `mqttbytes` (`v4::Publish::write`, `v4::PubAck::write`,
//! `v4::PingResp::write`, each into a buffer of its own, appended) and read
//! back by `mqttbytes` to check that they round-trip: 88 in 100 a PUBLISH
//! (QoS 0 or 1, half each, a QoS 1 one with the next Packet Identifier; a
//! topic of 13 to 39 bytes such as `sensors/building-3/floor-2/temp`; a
//! payload of 16 to 512 bytes, xorshift), 10 in 100 a PUBACK, 2 in 100 a
//! PINGRESP. The stream is cut into 1448-byte payloads behind a 66-byte
//! header in a `PacketPool`. Group `mqtt_1448`, `Throughput::Bytes(stream
//! length)`, and the same four again as group `mqtt_1448_pkts`,
//! `Throughput::Elements(PACKETS)` (MQTT control packets per second). One
//! criterion iteration takes the whole stream.
//!
//! Every path reads the same things of each control packet: its type, its
//! QoS, its Packet Identifier (0 if none), its topic's length and last byte,
//! and its payload's length and last byte.
//!
//! - `aa_generated`: `AaStream<PoolPacket, mqtt::MqttParser>` (generated
//!   from `mqtt.aag`). Per packet: clone the handle, `insert` it,
//!   `read_aa_records`; for each `packet` record take `kind`, `qos` and `id`
//!   (the record's variables, as the grammar parsed them) and the `topic`
//!   field's length and last byte; for each `payload` record (a piece of a
//!   PUBLISH's payload, at most one per TCP segment) add its `data` length
//!   and keep its last byte; then `free_aa_records`. The stream is made in
//!   the untimed setup of `iter_batched` and dropped untimed (as in
//!   `csv.rs`).
//! - `aa_interpreted`: the same with `aa_dsl::interp::Interp` running
//!   `mqtt.aag` (a grammar loaded at run time; its records have the
//!   generated parser's kinds and tags, so the same typed views read them).
//! - `mqttbytes_copy` (the baseline: an application on a copying stack, where
//!   `recv` copies each segment into its buffer): append each
//!   payload to a `BytesMut`, then call `mqttbytes::v4::read(&mut buf,
//!   MAX_PACKET)` until it returns `Error::InsufficientBytes`, reading the
//!   returned `v4::Packet`s (a PUBLISH's topic is a `String` it allocated
//!   and checked as UTF-8, its payload a `Bytes` split off the buffer).
//! - `mqttbytes_whole` (the upper reference): the same reads with the stream
//!   held whole in one `BytesMut` (filled in the untimed setup), `read` until
//!   it is empty: no segment boundaries, nothing read twice.
//!
//! Each iteration asserts that it saw every control packet and every payload
//! byte. Before measuring, the four are checked to give the same sequence of
//! control packets (type, QoS, Packet Identifier, topic bytes, payload length
//! and last byte), and the same folded reads; at the end the pool is full
//! again. The warm-up and measurement times are left to the command line
//! (`--warm-up-time`, `--measurement-time`): a group's own would override it.

use aa_dsl::interp::Grammar;
use aa_grammars::mqtt::{MqttParser, MqttRecord};
use aa_runtime::{AaConfig, AaState, AaStream, Insert, Packet as _, Parser, PoolPacket};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mqttbytes::v4::{self, PubAck, Publish};
use mqttbytes::QoS;
use std::hint::black_box;
use std::sync::Arc;

#[path = "../../aa-runtime/benches/support/csv_doc.rs"]
#[allow(dead_code)] // the packets of a document, not its CSV
mod csv_doc;
use csv_doc::{packets, HDR, ISN};

/// MQTT control packets in the stream.
const PACKETS: usize = 20_000;
/// The largest packet `mqttbytes` is let read (a broker's usual limit; every
/// packet here is far below it).
const MAX_PACKET: usize = 64 * 1024;

/// The stream, and the packets it was written from.
fn document() -> (Vec<u8>, Vec<v4::Packet>) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const MEASURES: &[&str] = &[
        "temp",
        "humidity",
        "co2",
        "power",
        "status",
        "battery",
        "vibration",
    ];
    const ROOMS: &[&str] = &["kitchen", "hall", "garage", "bedroom-2", "office"];
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    let mut out = BytesMut::new();
    let mut one = BytesMut::new();
    let mut sent = Vec::with_capacity(PACKETS);
    let mut pkid: u16 = 0;
    let mut next_pkid = || {
        pkid = pkid % u16::MAX + 1; // 1 to 65535, never 0
        pkid
    };
    for _ in 0..PACKETS {
        let r = next();
        let p = match r % 100 {
            0..=87 => {
                let s = (r >> 8) as usize;
                let m = MEASURES[(s >> 4) % MEASURES.len()];
                let topic = match s % 4 {
                    0 => format!(
                        "sensors/building-{}/floor-{}/{m}",
                        (s >> 8) % 200,
                        (s >> 16) % 40
                    ),
                    1 => format!("home/{}/{m}", ROOMS[(s >> 8) % ROOMS.len()]),
                    2 => format!(
                        "plant/line-{}/station-{}/{m}",
                        (s >> 8) % 20,
                        (s >> 16) % 300
                    ),
                    _ => format!("fleet/truck-{}/{m}", (s >> 8) % 1000),
                };
                assert!((10..=40).contains(&topic.len()), "{topic}");
                let r2 = next();
                let len = 16 + (r2 % 497) as usize;
                let mut y = r2;
                let payload: Vec<u8> = (0..len)
                    .map(|_| {
                        y = y.rotate_left(5).wrapping_add(0x2545_f491_4f6c_dd1d);
                        ALNUM[(y >> 58) as usize % ALNUM.len()]
                    })
                    .collect();
                if r >> 63 == 0 {
                    v4::Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))
                } else {
                    let mut p = Publish::new(topic, QoS::AtLeastOnce, payload);
                    p.pkid = next_pkid();
                    v4::Packet::Publish(p)
                }
            }
            88..=97 => v4::Packet::PubAck(PubAck::new(next_pkid())),
            _ => v4::Packet::PingResp,
        };
        one.clear();
        match &p {
            v4::Packet::Publish(x) => x.write(&mut one),
            v4::Packet::PubAck(x) => x.write(&mut one),
            v4::Packet::PingResp => v4::PingResp.write(&mut one),
            _ => unreachable!(),
        }
        .expect("mqttbytes writes the packet");
        out.extend_from_slice(&one);
        sent.push(p);
    }
    let doc = out.to_vec();

    // The encoding round-trips.
    let mut back = Vec::with_capacity(PACKETS);
    while !out.is_empty() {
        back.push(v4::read(&mut out, MAX_PACKET).expect("mqttbytes reads it back"));
    }
    assert!(back == sent, "the stream reads back as written");
    (doc, sent)
}

/// What each path reads of a control packet besides its payload.
#[derive(Debug, Clone, Copy)]
struct Control {
    kind: u64,
    qos: u64,
    id: u64,
    topic_len: u64,
    /// The topic's last byte, 0 without a topic.
    topic_last: u8,
}

/// Where a path hands what it reads: `Seen` folds it (the timed runs), `Log`
/// keeps it per control packet (the check before measuring).
trait Sink {
    /// A control packet; `topic` gives its topic's bytes, for the log.
    fn control(&mut self, c: Control, topic: impl FnOnce() -> Vec<u8>);
    /// A piece of the current PUBLISH's payload (the whole of it from
    /// `mqttbytes`, one per TCP segment from aa): its length, last byte.
    fn payload(&mut self, len: u64, last: u8);
}

/// What an application saw: control packets, PUBLISH, the sums of the types,
/// QoS and Packet Identifiers, topic and payload bytes; `touch` folds in the
/// last byte of every topic and payload so the reads stay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    packets: u64,
    publishes: u64,
    kind_sum: u64,
    qos_sum: u64,
    id_sum: u64,
    topic_bytes: u64,
    payload_bytes: u64,
    touch: u64,
    /// The last byte of the payload so far (folded into `touch` when the
    /// next control packet starts, or at `done`).
    payload_last: u8,
}

impl Sink for Seen {
    #[inline]
    fn control(&mut self, c: Control, _topic: impl FnOnce() -> Vec<u8>) {
        self.touch += u64::from(std::mem::take(&mut self.payload_last));
        self.packets += 1;
        self.publishes += u64::from(c.kind == 3);
        self.kind_sum += c.kind;
        self.qos_sum += c.qos;
        self.id_sum += c.id;
        self.topic_bytes += c.topic_len;
        self.touch += u64::from(c.topic_last);
    }

    #[inline]
    fn payload(&mut self, len: u64, last: u8) {
        self.payload_bytes += len;
        self.payload_last = last;
    }
}

impl Seen {
    fn done(mut self) -> Self {
        self.touch += u64::from(std::mem::take(&mut self.payload_last));
        self
    }

    fn check(&self, want: &Seen) {
        assert_eq!(self.packets, want.packets, "every control packet seen");
        assert_eq!(
            self.payload_bytes, want.payload_bytes,
            "every payload byte seen"
        );
    }
}

/// One control packet as a path saw it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Entry {
    kind: u64,
    qos: u64,
    id: u64,
    topic: Vec<u8>,
    topic_last: u8,
    payload_len: u64,
    payload_last: u8,
}

#[derive(Debug, Default)]
struct Log(Vec<Entry>);

impl Sink for Log {
    fn control(&mut self, c: Control, topic: impl FnOnce() -> Vec<u8>) {
        let topic = topic();
        assert_eq!(topic.len() as u64, c.topic_len);
        self.0.push(Entry {
            kind: c.kind,
            qos: c.qos,
            id: c.id,
            topic,
            topic_last: c.topic_last,
            ..Entry::default()
        });
    }

    fn payload(&mut self, len: u64, last: u8) {
        let e = self.0.last_mut().expect("a payload follows its packet");
        e.payload_len += len;
        e.payload_last = last;
    }
}

/// The aa paths: feeds every packet, reading and freeing records as they
/// come. Returns the stream (ended) so that dropping it is not timed.
fn run_aa<R: Parser, S: Sink>(
    mut aa: AaStream<PoolPacket, R>,
    pkts: &[PoolPacket],
    sink: &mut S,
) -> AaStream<PoolPacket, R> {
    let drain = |aa: &mut AaStream<PoolPacket, R>, sink: &mut S| {
        let recs = aa.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            match MqttRecord::from_record(r) {
                Some(MqttRecord::Packet(p)) => {
                    let topic = p.topic().filter(|t| !t.is_empty());
                    let (topic_len, topic_last) = topic.as_ref().map_or((0, 0), |t| {
                        (t.len(), t.byte_at(t.len() - 1).expect("a last byte"))
                    });
                    let c = Control {
                        kind: p.kind().expect("a type"),
                        qos: p.qos().expect("a QoS"),
                        id: p.id().expect("an id"),
                        topic_len,
                        topic_last,
                    };
                    sink.control(c, || topic.map(|t| t.to_vec()).unwrap_or_default());
                }
                Some(MqttRecord::Payload(d)) => {
                    let data = d.data().expect("a payload has data");
                    let len = data.len();
                    if len > 0 {
                        sink.payload(len, data.byte_at(len - 1).expect("a last byte"));
                    }
                }
                None => unreachable!("a record of mqtt"),
            }
        }
        aa.free_aa_records(n);
    };
    let mut seq = ISN;
    for p in pkts {
        let len = p.data().len();
        let r = aa.insert(seq, p.clone(), HDR..len);
        debug_assert!(matches!(r, Insert::InOrder { .. }));
        seq = seq.wrapping_add((len - HDR) as u32);
        drain(&mut aa, sink);
    }
    aa.finish();
    drain(&mut aa, sink);
    aa
}

/// Reads a packet `mqttbytes` returned: the same reads as the aa paths.
#[inline]
fn read_packet(p: &v4::Packet, sink: &mut impl Sink) {
    match p {
        v4::Packet::Publish(p) => {
            let topic = p.topic.as_bytes();
            let c = Control {
                kind: 3,
                qos: p.qos as u64,
                id: u64::from(p.pkid),
                topic_len: topic.len() as u64,
                topic_last: topic.last().copied().unwrap_or(0),
            };
            sink.control(c, || topic.to_vec());
            if let Some(&last) = p.payload.last() {
                sink.payload(p.payload.len() as u64, last);
            }
        }
        v4::Packet::PubAck(a) => {
            let c = Control {
                kind: 4,
                qos: 0,
                id: u64::from(a.pkid),
                topic_len: 0,
                topic_last: 0,
            };
            sink.control(c, Vec::new);
        }
        v4::Packet::PingResp => {
            let c = Control {
                kind: 13,
                qos: 0,
                id: 0,
                topic_len: 0,
                topic_last: 0,
            };
            sink.control(c, Vec::new);
        }
        other => unreachable!("not in this stream: {other:?}"),
    }
}

/// `mqttbytes_copy`: the application on a copying stack.
fn run_copy(pkts: &[PoolPacket], sink: &mut impl Sink) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    for p in pkts {
        // `recv`: the copy into the application's buffer.
        buf.extend_from_slice(&p.data()[HDR..]);
        loop {
            match v4::read(&mut buf, MAX_PACKET) {
                Ok(packet) => read_packet(&packet, sink),
                // Wait for the next segment.
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => panic!("mqttbytes refuses the stream: {e:?}"),
            }
        }
    }
    assert!(buf.is_empty(), "the stream ends clean");
}

/// `mqttbytes_whole`: every packet contiguous in one buffer, no segments.
/// Returns the (emptied) buffer so that freeing it is not timed.
fn run_whole(mut buf: BytesMut, sink: &mut impl Sink) -> BytesMut {
    while !buf.is_empty() {
        let packet = v4::read(&mut buf, MAX_PACKET).expect("a whole packet");
        read_packet(&packet, sink);
    }
    buf
}

/// One of the `aa_*` benches: a stream with the parser `make` gives, made
/// in the untimed setup, fed the whole stream, dropped untimed.
fn bench_aa<R: Parser>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pkts: &[PoolPacket],
    want: &Seen,
    make: impl Fn() -> R,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || AaStream::new(AaConfig::default(), ISN, make()),
            |aa| {
                let mut seen = Seen::default();
                let aa = run_aa(aa, pkts, &mut seen);
                let seen = seen.done();
                seen.check(want);
                black_box(seen);
                aa
            },
            BatchSize::PerIteration,
        )
    });
}

fn bench_all(
    c: &mut Criterion,
    group: &str,
    throughput: Throughput,
    doc: &[u8],
    pkts: &[PoolPacket],
    want: &Seen,
    grammar: &Arc<Grammar>,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(throughput);
    g.sample_size(30);
    bench_aa(&mut g, "aa_generated", pkts, want, MqttParser::new);
    bench_aa(&mut g, "aa_interpreted", pkts, want, || grammar.parser());
    g.bench_function("mqttbytes_copy", |b| {
        b.iter(|| {
            let mut seen = Seen::default();
            run_copy(black_box(pkts), &mut seen);
            let seen = seen.done();
            seen.check(want);
            black_box(seen)
        })
    });
    g.bench_function("mqttbytes_whole", |b| {
        b.iter_batched(
            || BytesMut::from(doc),
            |buf| {
                let mut seen = Seen::default();
                let buf = run_whole(buf, &mut seen);
                let seen = seen.done();
                seen.check(want);
                black_box(seen);
                buf
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Runs every path once with `sink` (made by `new`), returning what each saw,
/// in the order generated, interpreted, copy, whole.
fn every_path<S: Sink>(
    new: impl Fn() -> S,
    doc: &[u8],
    pkts: &[PoolPacket],
    grammar: &Arc<Grammar>,
) -> [S; 4] {
    let mut generated = new();
    let aa = run_aa(
        AaStream::new(AaConfig::default(), ISN, MqttParser::new()),
        pkts,
        &mut generated,
    );
    assert_eq!(aa.state(), AaState::Ended, "{:?}", aa.error());
    assert_eq!(aa.stream().held_bytes(), 0, "every fragment released");
    drop(aa);
    let mut interpreted = new();
    let aa = run_aa(
        AaStream::new(AaConfig::default(), ISN, grammar.parser()),
        pkts,
        &mut interpreted,
    );
    assert_eq!(aa.state(), AaState::Ended, "{:?}", aa.error());
    assert_eq!(aa.stream().held_bytes(), 0, "every fragment released");
    drop(aa);
    let mut copy = new();
    run_copy(pkts, &mut copy);
    let mut whole = new();
    run_whole(BytesMut::from(doc), &mut whole);
    [generated, interpreted, copy, whole]
}

fn mqtt_1448(c: &mut Criterion) {
    let (doc, sent) = document();
    let (pool, pkts) = packets(&doc);
    let grammar = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/mqtt.aag")).expect("mqtt.aag loads"),
    );

    // The four paths see the same packets, and as written.
    let [generated, interpreted, copy, whole] =
        every_path(Log::default, &doc, &pkts, &grammar).map(|l| l.0);
    let mut written = Log::default();
    for p in &sent {
        read_packet(p, &mut written);
    }
    assert_eq!(generated.len(), PACKETS, "every control packet seen");
    assert!(generated == written.0, "aa and what was written differ");
    assert!(generated == interpreted, "generated and interpreted differ");
    assert!(generated == copy, "aa and mqttbytes (segmented) differ");
    assert!(generated == whole, "aa and mqttbytes (whole) differ");
    // And fold it the same.
    let [generated, interpreted, copy, whole] =
        every_path(Seen::default, &doc, &pkts, &grammar).map(Seen::done);
    let mut want = Seen::default();
    for p in &sent {
        read_packet(p, &mut want);
    }
    let want = want.done();
    assert_eq!(generated, want, "aa and what was written differ");
    assert_eq!(generated, interpreted, "generated and interpreted differ");
    assert_eq!(generated, copy, "aa and mqttbytes (segmented) differ");
    assert_eq!(generated, whole, "aa and mqttbytes (whole) differ");
    eprintln!(
        "mqtt_1448: {} control packets ({} PUBLISH), {} bytes ({} of payloads) in {} packets",
        PACKETS,
        want.publishes,
        doc.len(),
        want.payload_bytes,
        pkts.len()
    );

    bench_all(
        c,
        "mqtt_1448",
        Throughput::Bytes(doc.len() as u64),
        &doc,
        &pkts,
        &want,
        &grammar,
    );
    bench_all(
        c,
        "mqtt_1448_pkts",
        Throughput::Elements(PACKETS as u64),
        &doc,
        &pkts,
        &want,
        &grammar,
    );

    drop(pkts);
    assert!(pool.is_full(), "every packet is back in the pool");
}

criterion_group!(benches, mqtt_1448);
criterion_main!(benches);
