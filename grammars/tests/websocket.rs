//! WebSocket frames after an HTTP upgrade (`http_response.aag`'s and
//! `http_request.aag`'s `ws_frame` and `ws_payload` records), generated and
//! interpreted: frames of every length encoding cut into packets of 1, 3 and
//! 1448 bytes; bad frames refused at their offset, every good frame before
//! them delivered; payloads unmasked with `aa_grammars::websocket::Unmask`.

mod common;
#[path = "support/ws_frame.rs"]
mod ws_frame;

use ws_frame::ws_frame as frame;

use aa_dsl::interp::Grammar;
use aa_grammars::http_response::{HttpResponseParser, HttpResponseRecord};
use aa_grammars::websocket::Unmask;
use aa_runtime::Parser;

const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                        Connection: Upgrade\r\n\r\n";

/// A frame to send: FIN, opcode, masking key, payload.
type Sent = (bool, u8, Option<[u8; 4]>, Vec<u8>);

/// What the frames of a stream read as: (fin, opcode, masked, length,
/// the masking key, the payload's bytes as sent).
type Frames = Vec<(bool, u64, bool, u64, Vec<u8>, Vec<u8>)>;

/// The frames after the 101 in `input` cut into `cut`-byte packets, with
/// the generated parser (through its typed records) or the interpreter.
fn frames<R: Parser>(parser: R, input: &[u8], cut: usize) -> (Frames, Option<String>) {
    let mut out: Frames = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        let name = r.name();
        match HttpResponseRecord::from_record(r) {
            Some(HttpResponseRecord::WsFrame(f)) => out.push((
                f.fin().unwrap() != 0,
                f.opcode().unwrap(),
                f.masked().unwrap() != 0,
                f.length().unwrap(),
                f.mask().unwrap().to_vec(),
                Vec::new(),
            )),
            Some(HttpResponseRecord::WsPayload(p)) => out
                .last_mut()
                .expect("a frame first")
                .5
                .extend(p.data().unwrap().to_vec()),
            Some(HttpResponseRecord::Response(_)) => {}
            _ => panic!("a `{name}` record"),
        }
    });
    (out, err)
}

fn both(input: &[u8], cut: usize) -> (Frames, Option<String>) {
    let g = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/http_response.aag")).unwrap(),
    );
    let generated = frames(HttpResponseParser::new(), input, cut);
    let interpreted = frames(g.parser(), input, cut);
    assert_eq!(generated, interpreted, "generated and interpreted differ");
    generated
}

#[test]
fn frames_of_every_length_encoding_whatever_the_cuts() {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let sent: Vec<Sent> = vec![
        (true, 1, None, b"hi".to_vec()),
        (false, 1, Some([9, 8, 7, 6]), vec![b'x'; 125]),
        (false, 0, None, vec![b'y'; 126]),
        (true, 0, Some([1, 2, 3, 4]), vec![0; 65_535]),
        (true, 2, None, big),
        (true, 9, None, Vec::new()),
        (true, 10, Some([0, 0, 0, 1]), b"pong".to_vec()),
        (true, 8, None, vec![0x03, 0xe8]),
    ];
    let input: Vec<u8> = [SWITCH.to_vec()]
        .into_iter()
        .chain(sent.iter().map(|(f, o, m, p)| frame(*f, *o, *m, p)))
        .collect::<Vec<_>>()
        .concat();
    let want: Frames = sent
        .iter()
        .map(|(fin, op, mask, p)| {
            let key = mask.map(|k| k.to_vec()).unwrap_or_default();
            let on_wire = frame(*fin, *op, *mask, p);
            (
                *fin,
                u64::from(*op),
                mask.is_some(),
                p.len() as u64,
                key,
                on_wire[on_wire.len() - p.len()..].to_vec(),
            )
        })
        .collect();
    for cut in [1448, 3, 1] {
        let (got, err) = both(&input, cut);
        assert_eq!(err, None, "cut {cut}");
        assert_eq!(got, want, "cut {cut}");
    }
}

#[test]
fn payloads_unmask_to_what_was_sent_whatever_the_cuts() {
    let sent: Vec<Sent> = vec![
        // RFC 6455, section 5.7.
        (true, 1, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello".to_vec()),
        (false, 2, Some([1, 2, 3, 4]), (0..=255).collect()),
        (true, 0, None, b"plain".to_vec()),
        (true, 9, Some([5, 6, 7, 8]), Vec::new()),
        (
            true,
            2,
            Some([9, 8, 7, 6]),
            (0..70_000u32).map(|i| (i * 13 % 256) as u8).collect(),
        ),
    ];
    let input: Vec<u8> = [SWITCH.to_vec()]
        .into_iter()
        .chain(sent.iter().map(|(f, o, m, p)| frame(*f, *o, *m, p)))
        .collect::<Vec<_>>()
        .concat();
    let want: Vec<Vec<u8>> = sent.iter().map(|s| s.3.clone()).collect();
    for cut in [1448, 7, 3, 1] {
        let mut u = Unmask::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let err = common::feed_cut(HttpResponseParser::new(), &input, cut, |r| {
            match HttpResponseRecord::from_record(r) {
                Some(HttpResponseRecord::WsFrame(f)) => {
                    u.frame(f.mask_key());
                    got.push(Vec::new());
                }
                Some(HttpResponseRecord::WsPayload(p)) => {
                    let out = got.last_mut().expect("a frame first");
                    u.payload_into(&p.data().unwrap(), out);
                }
                _ => {}
            }
        });
        assert_eq!(err, None, "cut {cut}");
        assert_eq!(got, want, "cut {cut}");
    }
}

/// The `rsv` variable of each frame after the 101 in `input`.
fn rsv_bits<R: Parser>(parser: R, input: &[u8], cut: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let err = common::feed_cut(parser, input, cut, |r| {
        if let Some(HttpResponseRecord::WsFrame(f)) = HttpResponseRecord::from_record(r) {
            out.push(f.rsv().unwrap());
        }
    });
    assert_eq!(err, None, "cut {cut}");
    out
}

#[test]
fn the_rsv_bits_of_each_frame() {
    // A frame of a message compressed by permessage-deflate has RSV1 (0x40)
    // set; the other two bits belong to extensions not negotiated here, but
    // the frame is still delivered.
    let mut compressed = frame(true, 1, None, b"\xf2\x48\xcd\xc9\xc9\x07\x00");
    compressed[0] |= 0x40;
    let mut every = frame(true, 2, Some([1, 2, 3, 4]), b"x");
    every[0] |= 0x70;
    let input = [SWITCH, &frame(true, 1, None, b"plain"), &compressed, &every].concat();
    let g = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/http_response.aag")).unwrap(),
    );
    for cut in [1448, 1] {
        assert_eq!(rsv_bits(HttpResponseParser::new(), &input, cut), [0, 4, 7]);
        assert_eq!(rsv_bits(g.parser(), &input, cut), [0, 4, 7]);
    }
}

#[test]
fn a_101_to_another_protocol_is_a_tunnel_not_frames() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x81\x02hi";
    let mut names = Vec::new();
    let err = common::feed_cut(HttpResponseParser::new(), input, 5, |r| {
        names.push(r.name())
    });
    assert_eq!(err, None);
    assert!(names[1..].iter().all(|n| *n == "tunnel"), "{names:?}");
}

#[test]
fn bad_frames_are_refused_at_their_offset_after_every_good_one() {
    let good = frame(true, 1, None, b"ok");
    let at = (SWITCH.len() + good.len()) as u64;
    let cases: [(&[u8], &str); 4] = [
        (b"\x83\x00", "reserved WebSocket opcode"),
        (
            b"\x89\x7e\x00\x7e",
            "control frame fragmented or longer than 125 bytes",
        ),
        (
            b"\x09\x00",
            "control frame fragmented or longer than 125 bytes",
        ),
        (
            b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
            "payload length with the top bit set",
        ),
    ];
    for (bad, why) in cases {
        let input = [SWITCH, &good[..], bad].concat();
        for cut in [1, 1448] {
            let (got, err) = both(&input, cut);
            assert_eq!(got.len(), 1, "{why}, cut {cut}: the good frame");
            assert_eq!(got[0].5, b"ok");
            let err = err.unwrap_or_else(|| panic!("{why}: no error"));
            let field = if why.contains("opcode") {
                "header"
            } else if why.contains("top bit") {
                "ext_length"
            } else {
                "length7"
            };
            let offset = at
                + match field {
                    "header" => 0,
                    "length7" => 1,
                    _ => 2,
                };
            assert!(
                err.starts_with(&format!(
                    "stream offset {offset}: record `ws_frame`, field `{field}`: "
                )) && err.contains(why),
                "{why}, cut {cut}: {err}"
            );
        }
    }
}

/// The records of an `http_request` stream that loses bytes, hears the
/// WebSocket signal, and then finds a request line split `POS` | `T ...`
/// over two packets: the parser replays the sync pattern's first bytes
/// from its own copy, and its `begin` turns them into a frame.
fn replayed_sync<R: Parser>(parser: R) -> Vec<(String, Vec<Vec<u8>>)> {
    use aa_runtime::signal::Signals;
    use aa_runtime::{AaConfig, AaStream, PacketPool, PoolPacket, SeqNum};
    let pool = PacketPool::new(4, 64);
    let mut s: AaStream<PoolPacket, R> = AaStream::new(AaConfig::default(), 0, parser);
    s.recover_from_errors(true);
    let mut recs = Vec::new();
    let mut take = |s: &mut AaStream<PoolPacket, R>| {
        let n = s.ready();
        for r in s.read_aa_records(n) {
            let fields = r.fields().map(|f| f.to_vec()).collect();
            recs.push((r.name().to_string(), fields));
        }
        s.free_aa_records(n);
    };
    let first = b"GET /a HTTP/1.1\r\n\r\n";
    s.insert(0, pool.packet_from(first).unwrap(), 0..first.len());
    take(&mut s);
    // 10 bytes lost, then the request line in two packets.
    s.skip_to(SeqNum(first.len() as u32 + 10));
    let at = first.len() as u32 + 10;
    s.insert(at, pool.packet_from(b"POS").unwrap(), 0..3);
    take(&mut s);
    // After the gap (which drops the signals waiting): the response's.
    let mut sig = Signals::new();
    assert!(!sig.push(3));
    s.give_signals(sig);
    let rest = b"T /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    s.insert(at + 3, pool.packet_from(rest).unwrap(), 0..rest.len());
    take(&mut s);
    s.finish();
    take(&mut s);
    drop(s);
    assert!(pool.is_full(), "every packet back in the pool");
    recs
}

#[test]
fn a_sync_pattern_replayed_into_a_frame_keeps_its_fields_where_they_are() {
    let g = Grammar::new(
        aa_dsl::load(concat!(env!("CARGO_MANIFEST_DIR"), "/http_request.aag")).unwrap(),
    );
    let generated = replayed_sync(aa_grammars::http_request::HttpRequestParser::new());
    assert_eq!(generated, replayed_sync(g.parser()));
    // `P` (FIN clear, opcode 0), `O` (unmasked, 79 bytes), no extended
    // length or key, then the payload from the bytes that follow.
    assert_eq!(generated[0].0, "request");
    assert_eq!(
        generated[1],
        (
            "ws_frame".to_string(),
            vec![b"P".to_vec(), b"O".to_vec(), vec![], vec![]]
        )
    );
    assert_eq!(generated[2].0, "ws_payload");
    assert_eq!(
        generated[2].1[0][0], b'S',
        "the payload starts with the replayed byte"
    );
}
