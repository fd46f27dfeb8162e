//! `mqtt.aag` against the `mqttbytes` crate: streams of control packets
//! written by `mqttbytes` (PUBLISH at each QoS, with empty to 40 KiB
//! payloads; the acknowledgements; SUBSCRIBE and UNSUBSCRIBE with several
//! filters; SUBACK; CONNECT with a will and a login; the packets without a
//! body), cut into random packets down to one byte, parsed by the generated
//! parser, and each packet's type, flags, Remaining Length, topic, Packet
//! Identifier and body compared with what `mqttbytes` reads back from the
//! same bytes. Then bad input: a reserved type, QoS 3, a fifth length byte,
//! a topic longer than the packet; each an error at its offset after every
//! good packet before it.

use aa_grammars::mqtt::{MqttParser, MqttRecord};
use bytes::BytesMut;
use mqttbytes::v4::{
    self, Connect, LastWill, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck, Unsubscribe,
};
use mqttbytes::QoS;
use proptest::prelude::*;

mod common;

/// What the parser says of one control packet: its `packet` record and the
/// bytes of the `payload` records after it, joined.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    kind: u64,
    flags: u64,
    qos: u64,
    length: u64,
    /// Bytes of the fixed header: the type byte and 1 to 4 length bytes.
    header_bytes: u64,
    topic: Vec<u8>,
    id: u64,
    body: Vec<u8>,
    payload_records: usize,
}

/// Parses `input` cut at `cuts` and gives the packets seen and the error.
/// The pool ends full.
fn parse(input: &[u8], cuts: &[usize]) -> (Vec<Seen>, Option<String>) {
    let mut seen: Vec<Seen> = Vec::new();
    let err = common::feed(MqttParser::new(), input, cuts.iter().copied(), |r| {
        match MqttRecord::from_record(r).expect("a record of mqtt") {
            MqttRecord::Packet(p) => seen.push(Seen {
                kind: p.kind().unwrap(),
                flags: p.flags().unwrap(),
                qos: p.qos().unwrap(),
                length: p.length().unwrap(),
                header_bytes: 1 + p.remaining_length().count() as u64,
                topic: p.topic().map(|f| f.to_vec()).unwrap_or_default(),
                id: p.id().unwrap(),
                body: Vec::new(),
                payload_records: 0,
            }),
            MqttRecord::Payload(d) => {
                let data = d.data().expect("a payload has data");
                assert!(data.packets() == 1, "a payload record pins one packet");
                let last = seen.last_mut().expect("a payload follows its packet");
                last.body.extend(data.to_vec());
                last.payload_records += 1;
            }
        }
    });
    (seen, err)
}

fn qos(n: u64) -> QoS {
    match n % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// A control packet of every kind `mqttbytes` writes, chosen by `r`.
fn packet(r: &mut impl FnMut() -> u64) -> Packet {
    let pkid = (r() % 65535 + 1) as u16;
    let text = |r: &mut dyn FnMut() -> u64, n: u64| -> String {
        (0..r() % n)
            .map(|_| ['a', 'b', '/', '+', '#', 'é'][r() as usize % 6])
            .collect()
    };
    match r() % 13 {
        0..=3 => {
            let q = qos(r());
            let size = match r() % 4 {
                0 => 0,
                1 => r() % 16,
                2 => r() % 3000,
                _ => 16_000 + r() % 24_000,
            };
            let payload: Vec<u8> = (0..size).map(|_| r() as u8).collect();
            let mut p = Publish::new(text(r, 40), q, payload);
            p.retain = r() % 2 == 0;
            if q != QoS::AtMostOnce {
                p.pkid = pkid;
                p.dup = r() % 2 == 0;
            }
            Packet::Publish(p)
        }
        4 => Packet::PubAck(PubAck::new(pkid)),
        5 => Packet::PubRec(PubRec::new(pkid)),
        6 => Packet::PubRel(PubRel::new(pkid)),
        7 => Packet::PubComp(PubComp::new(pkid)),
        8 => {
            let mut s = Subscribe::new(text(r, 30), qos(r()));
            for _ in 0..r() % 4 {
                s.add(text(r, 30), qos(r()));
            }
            s.pkid = pkid;
            Packet::Subscribe(s)
        }
        9 => {
            let codes = (0..1 + r() % 5)
                .map(|_| match r() % 3 {
                    0 => SubscribeReasonCode::Success(qos(r())),
                    _ => SubscribeReasonCode::Failure,
                })
                .collect();
            Packet::SubAck(SubAck::new(pkid, codes))
        }
        10 => {
            let mut u = Unsubscribe::new(text(r, 30));
            u.topics.extend((0..r() % 3).map(|_| text(r, 30)));
            u.pkid = pkid;
            Packet::Unsubscribe(u)
        }
        11 => Packet::UnsubAck(UnsubAck::new(pkid)),
        _ => match r() % 4 {
            0 => {
                let mut c = Connect::new(text(r, 20));
                if r() % 2 == 0 {
                    c.set_login(text(r, 10), text(r, 10));
                }
                if r() % 2 == 0 {
                    c.last_will = Some(LastWill::new(text(r, 10), vec![7; 5], qos(r()), false));
                }
                Packet::Connect(c)
            }
            1 => Packet::PingReq,
            2 => Packet::PingResp,
            _ => Packet::Disconnect,
        },
    }
}

/// Appends `p` as `mqttbytes` writes it (each packet into a buffer of its
/// own: its CONNECT writes its flags at an index from the buffer's start).
fn write(p: &Packet, out: &mut BytesMut) {
    let mut one = BytesMut::new();
    let r = match p {
        Packet::Connect(x) => x.write(&mut one),
        Packet::Publish(x) => x.write(&mut one),
        Packet::PubAck(x) => x.write(&mut one),
        Packet::PubRec(x) => x.write(&mut one),
        Packet::PubRel(x) => x.write(&mut one),
        Packet::PubComp(x) => x.write(&mut one),
        Packet::Subscribe(x) => x.write(&mut one),
        Packet::SubAck(x) => x.write(&mut one),
        Packet::Unsubscribe(x) => x.write(&mut one),
        Packet::UnsubAck(x) => x.write(&mut one),
        Packet::PingReq => v4::PingReq.write(&mut one),
        Packet::PingResp => v4::PingResp.write(&mut one),
        Packet::Disconnect => v4::Disconnect.write(&mut one),
        Packet::ConnAck(x) => x.write(&mut one),
    };
    r.expect("mqttbytes writes the packet");
    out.extend_from_slice(&one);
}

/// Reads a string of MQTT's encoding (u16be length, bytes) from `b`.
fn string<'a>(b: &mut &'a [u8]) -> &'a [u8] {
    let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
    let (s, rest) = b[2..].split_at(n);
    *b = rest;
    s
}

/// Checks what the parser saw of one packet against `mqttbytes`' reading of
/// the same bytes (`frame_len`: the whole packet, as `mqttbytes` framed it).
fn check(seen: &Seen, want: &Packet, frame_len: usize) {
    assert_eq!(
        seen.header_bytes + seen.length,
        frame_len as u64,
        "fixed header and Remaining Length of {want:?}"
    );
    let id_bytes = if seen.id != 0 || matches!(want, Packet::Publish(p) if p.qos != QoS::AtMostOnce)
    {
        2
    } else {
        0
    };
    let topic_bytes = if seen.kind == 3 { 2 } else { 0 };
    assert_eq!(
        seen.length,
        topic_bytes + seen.topic.len() as u64 + id_bytes + seen.body.len() as u64,
        "the records of {want:?} hold the whole packet"
    );
    let (kind, flags, id) = match want {
        Packet::Connect(_) => (1, 0, 0),
        Packet::ConnAck(_) => (2, 0, 0),
        Packet::Publish(p) => {
            let q = p.qos as u64;
            assert_eq!(seen.qos, q);
            assert_eq!(seen.topic, p.topic.as_bytes());
            assert_eq!(seen.body, p.payload);
            (
                3,
                u64::from(p.dup) << 3 | q << 1 | u64::from(p.retain),
                p.pkid,
            )
        }
        Packet::PubAck(p) => (4, 0, p.pkid),
        Packet::PubRec(p) => (5, 0, p.pkid),
        Packet::PubRel(p) => (6, 2, p.pkid),
        Packet::PubComp(p) => (7, 0, p.pkid),
        Packet::Subscribe(s) => {
            let mut b = &seen.body[..];
            for f in &s.filters {
                assert_eq!(string(&mut b), f.path.as_bytes());
                assert_eq!(b[0], f.qos as u8);
                b = &b[1..];
            }
            assert!(b.is_empty());
            (8, 2, s.pkid)
        }
        Packet::SubAck(s) => {
            let codes: Vec<u8> = s
                .return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    SubscribeReasonCode::Failure => 0x80,
                })
                .collect();
            assert_eq!(seen.body, codes);
            (9, 0, s.pkid)
        }
        Packet::Unsubscribe(u) => {
            let mut b = &seen.body[..];
            for t in &u.topics {
                assert_eq!(string(&mut b), t.as_bytes());
            }
            assert!(b.is_empty());
            (10, 2, u.pkid)
        }
        Packet::UnsubAck(u) => (11, 0, u.pkid),
        Packet::PingReq => (12, 0, 0),
        Packet::PingResp => (13, 0, 0),
        Packet::Disconnect => (14, 0, 0),
    };
    assert_eq!(
        (seen.kind, seen.flags, seen.id),
        (kind, flags, u64::from(id)),
        "{want:?}"
    );
    if kind != 3 {
        assert_eq!(seen.qos, 0);
        assert!(seen.topic.is_empty());
    }
}

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    x |= 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_packets_as_mqttbytes(seed: u64, cut_seed: u64) {
        let mut r = xorshift(seed);
        let mut stream = BytesMut::new();
        for _ in 0..1 + r() % 12 {
            write(&packet(&mut r), &mut stream);
        }
        let input = stream.to_vec();

        // Packets of 1 byte, of a few bytes, or of segment sizes.
        let mut c = xorshift(cut_seed);
        let most = [1, 7, 1448][c() as usize % 3];
        let cuts: Vec<usize> = (0..input.len()).map(|_| 1 + c() as usize % most).collect();
        let (seen, err) = parse(&input, &cuts);
        prop_assert_eq!(err, None);

        let mut want = Vec::new();
        while !stream.is_empty() {
            let frame = mqttbytes::check(stream.iter(), usize::MAX).unwrap().frame_length();
            want.push((v4::read(&mut stream, usize::MAX).unwrap(), frame));
        }
        prop_assert_eq!(seen.len(), want.len());
        for (s, (p, frame)) in seen.iter().zip(&want) {
            check(s, p, *frame);
        }
    }
}

/// A good PUBLISH (QoS 1, topic "a/b", id 7, payload "hi") and a PINGREQ.
const GOOD: &[u8] = b"\x32\x09\x00\x03a/b\x00\x07hi\xc0\x00";

#[test]
fn bad_packets_fail_at_their_offset_after_the_good_ones() {
    // The bad packet starts at 13; each error is at the field that shows it
    // (a Remaining Length's fourth byte saying another follows).
    let cases: [(&[u8], u64, &str, &str); 5] = [
        (b"\xf0\x00", 13, "header", "reserved control packet type"),
        (b"\x00\x00", 13, "header", "reserved control packet type"),
        (b"\x36\x02\x00\x00", 13, "header", "PUBLISH with QoS 3"),
        (
            b"\x30\x80\x80\x80\x80\x01",
            17,
            "remaining_length",
            "more than 4",
        ),
        (
            b"\x32\x04\x00\x05abcde",
            15,
            "topic_length",
            "variable header longer than the packet",
        ),
    ];
    for (bad, offset, field, message) in cases {
        let input = [GOOD, bad].concat();
        for cut in [1, 2, 3, input.len()] {
            let cuts = vec![cut; input.len()];
            let (seen, err) = parse(&input, &cuts);
            assert_eq!(seen.len(), 2, "{bad:?} at cut {cut}: the good packets");
            assert_eq!(seen[0].topic, b"a/b");
            assert_eq!(seen[0].body, b"hi");
            assert_eq!(seen[1].kind, 12);
            let err = err.unwrap_or_else(|| panic!("{bad:?} is refused"));
            assert!(err.contains(&format!("offset {offset}:")), "{bad:?}: {err}");
            assert!(
                err.contains(field) && err.contains(message),
                "{bad:?}: {err}"
            );
        }
    }
}

/// A PUBLISH whose payload spans many TCP segments is one `payload` record
/// per segment: the segments are freed as the application reads, not held
/// until the end of the message.
#[test]
fn a_large_publish_is_a_payload_record_per_segment() {
    let mut out = BytesMut::new();
    write(
        &Packet::Publish(Publish::new("t", QoS::AtMostOnce, vec![0x5a; 100_000])),
        &mut out,
    );
    let cuts = vec![1448; out.len()];
    let (seen, err) = parse(&out, &cuts);
    assert_eq!(err, None);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].length, 100_000 + 3);
    assert_eq!(seen[0].body, vec![0x5a; 100_000]);
    // The first segment holds the 7 bytes of header and the payload's start.
    assert_eq!(seen[0].payload_records, out.len().div_ceil(1448));
}
