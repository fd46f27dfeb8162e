//! Requests and responses paired across the two directions of a connection
//! (`signal` in `http_request.aag`, `heard()` in `http_response.aag`),
//! through the passive path `aa inspect` runs: the response to a HEAD has
//! no body whatever its Content-Length, pipelined or not; after a CONNECT
//! and its 2xx, or a 101, both directions are tunnel bytes (the responses'
//! parser tells the requests' one, which hears it in its `begin`), and after
//! a refused CONNECT the next request is parsed as one; a response whose
//! request was never seen is parsed as before. The signals reach the
//! response direction whether it has not started yet, is open, or is
//! parked (more than 64 connections open). Every packet goes back to the
//! pool.

use std::net::{IpAddr, Ipv4Addr};

use aa::grammars::websocket::Unmask;
use aa::inspect::{AnyParser, PortMap};
use aa::runtime::{AaStream, Packet, PacketPool, ParseError, PoolPacket};
use aa::stack::flow::Endpoint;
use aa::stack::frame::TcpFrame;
use aa::stack::io::Timestamp;
use aa::stack::passive::{DirInfo, Passive, PassiveConfig, Side, Sink};
use aa::stack::wire::{parse, LinkType, TcpFlags};

#[path = "../grammars/tests/support/ws_frame.rs"]
mod ws_frame;
use ws_frame::ws_frame;

const SERVER: Endpoint = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 80);

/// One record: its direction, type, fields (name, bytes) and variables.
#[derive(Debug, Clone)]
struct Rec {
    port: u16,
    side: Side,
    name: &'static str,
    fields: Vec<(&'static str, Vec<u8>)>,
    vars: Vec<(&'static str, Option<u64>)>,
}

impl Rec {
    fn var(&self, name: &str) -> Option<u64> {
        self.vars.iter().find(|(n, _)| *n == name).and_then(|v| v.1)
    }
    fn field(&self, name: &str) -> Vec<u8> {
        self.fields
            .iter()
            .filter(|(n, _)| *n == name)
            .flat_map(|(_, b)| b.clone())
            .collect()
    }
}

#[derive(Default)]
struct Seen {
    recs: Vec<Rec>,
    errors: Vec<String>,
}

impl Seen {
    /// Records of `port`'s connection from `side`.
    fn of(&self, port: u16, side: Side) -> Vec<&Rec> {
        self.recs
            .iter()
            .filter(|r| r.port == port && r.side == side)
            .collect()
    }

    /// `(status, body bytes)` of each response of `port`'s connection.
    fn responses(&self, port: u16) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for r in self.of(port, Side::Server) {
            match r.name {
                "response" => out.push((r.var("code").unwrap(), Vec::new())),
                "body" => out.last_mut().unwrap().1.extend(r.field("data")),
                _ => {}
            }
        }
        out
    }

    /// How many `request` records `port`'s connection has.
    fn requests(&self, port: u16) -> usize {
        self.of(port, Side::Client)
            .iter()
            .filter(|r| r.name == "request")
            .count()
    }

    /// Bytes of the `tunnel` records from `side`.
    fn tunnel(&self, port: u16, side: Side) -> Vec<u8> {
        self.of(port, side)
            .iter()
            .filter(|r| r.name == "tunnel")
            .flat_map(|r| r.field("data"))
            .collect()
    }
}

impl<P: Packet> Sink<P, AnyParser> for Seen {
    fn records(&mut self, dir: &DirInfo, stream: &mut AaStream<P, AnyParser>) {
        let schema = stream.schema();
        let port = if dir.side == Side::Client {
            dir.src.1
        } else {
            dir.dst.1
        };
        let n = stream.ready();
        for r in stream.read_aa_records(n) {
            let rs = &schema.records[r.kind() as usize];
            self.recs.push(Rec {
                port,
                side: dir.side,
                name: rs.name,
                fields: r
                    .fields()
                    .map(|f| (rs.fields[f.tag() as usize], f.to_vec()))
                    .collect(),
                vars: (0..rs.values.len() as u16)
                    .map(|t| (rs.values[t as usize], r.value(t)))
                    .collect(),
            });
        }
        stream.free_aa_records(n);
    }
    fn error(&mut self, _dir: &DirInfo, e: &ParseError) {
        self.errors.push(e.to_string());
    }
}

/// Frames of one connection to port 80; each side's bytes so far.
struct Conn {
    client: Endpoint,
    isn: [u32; 2],
    sent: [u32; 2],
}

impl Conn {
    fn new(port: u16) -> Conn {
        Conn {
            client: (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), port),
            isn: [1000 * u32::from(port), 7_000_000 + u32::from(port)],
            sent: [0, 0],
        }
    }

    fn frame(&self, from: Side, flags: TcpFlags, seq: u32, data: &[u8]) -> Vec<u8> {
        let (src, dst, to) = match from {
            Side::Client => (self.client, SERVER, 1),
            Side::Server => (SERVER, self.client, 0),
        };
        let ack = self.isn[to].wrapping_add(1).wrapping_add(self.sent[to]);
        TcpFrame::new(src, dst)
            .seq(seq)
            .ack(ack)
            .flags(flags)
            .build(data)
            .unwrap()
    }

    fn handshake(&self) -> Vec<Vec<u8>> {
        vec![
            self.frame(Side::Client, TcpFlags::SYN, self.isn[0], b""),
            self.frame(
                Side::Server,
                TcpFlags::SYN | TcpFlags::ACK,
                self.isn[1],
                b"",
            ),
            self.frame(Side::Client, TcpFlags::ACK, self.isn[0] + 1, b""),
        ]
    }

    /// `bytes` from `from`, in segments of at most 1448 bytes.
    fn send(&mut self, from: Side, bytes: &[u8]) -> Vec<Vec<u8>> {
        let i = from as usize;
        let mut frames = Vec::new();
        for c in bytes.chunks(1448) {
            let seq = self.isn[i].wrapping_add(1).wrapping_add(self.sent[i]);
            frames.push(self.frame(from, TcpFlags::ACK | TcpFlags::PSH, seq, c));
            self.sent[i] += c.len() as u32;
        }
        frames
    }
}

struct Run {
    pool: PacketPool,
    passive: Passive<PoolPacket, PortMap>,
    seen: Seen,
}

impl Run {
    fn new() -> Run {
        Run {
            pool: PacketPool::new(1024, 2048),
            passive: Passive::new(PassiveConfig::default(), PortMap::well_known()),
            seen: Seen::default(),
        }
    }

    fn feed(&mut self, frames: Vec<Vec<u8>>) {
        for f in frames {
            let seg = parse(&f, LinkType::Ethernet, true).unwrap();
            let pkt = self.pool.packet_from(&f).unwrap();
            self.passive
                .segment(Timestamp::new(1, 0), &seg, &pkt, &mut self.seen);
        }
    }

    /// Ends the input; checks that nothing failed to parse, that no signal
    /// was dropped and that every packet went back to the pool.
    fn end(mut self) -> Seen {
        self.passive.finish(&mut self.seen);
        assert_eq!(self.seen.errors, Vec::<String>::new());
        assert_eq!(self.passive.stats().signals_dropped, 0);
        drop(self.passive);
        assert!(self.pool.is_full(), "packets leaked");
        self.seen
    }
}

fn head(path: &str) -> String {
    format!("HEAD {path} HTTP/1.1\r\nHost: a\r\n\r\n")
}
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n")
}
/// A 200 announcing `len` bytes, and carrying `body`.
fn ok(len: usize, body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}")
}

#[test]
fn a_head_response_has_no_body_whatever_its_content_length() {
    let mut run = Run::new();
    let mut c = Conn::new(41000);
    run.feed(c.handshake());
    run.feed(c.send(Side::Client, head("/a").as_bytes()));
    run.feed(c.send(Side::Server, ok(1234, "").as_bytes()));
    run.feed(c.send(Side::Client, get("/b").as_bytes()));
    run.feed(c.send(Side::Server, ok(5, "hello").as_bytes()));
    // Pipelined: three requests in one segment, their responses in another.
    let three = [head("/c"), get("/d"), head("/e")].concat();
    run.feed(c.send(Side::Client, three.as_bytes()));
    let answers = [ok(99, ""), ok(3, "abc"), ok(7, "")].concat();
    run.feed(c.send(Side::Server, answers.as_bytes()));
    // A large announced length, then an interim response before the final one.
    run.feed(c.send(Side::Client, head("/f").as_bytes()));
    let interim = "HTTP/1.1 100 Continue\r\n\r\n".to_string() + &ok(1 << 40, "");
    run.feed(c.send(Side::Server, interim.as_bytes()));
    run.feed(c.send(Side::Client, get("/g").as_bytes()));
    run.feed(c.send(Side::Server, ok(2, "ok").as_bytes()));
    let seen = run.end();
    let got = seen.responses(41000);
    let want: Vec<(u64, Vec<u8>)> = vec![
        (200, vec![]),
        (200, b"hello".to_vec()),
        (200, vec![]),
        (200, b"abc".to_vec()),
        (200, vec![]),
        (100, vec![]),
        (200, vec![]),
        (200, b"ok".to_vec()),
    ];
    assert_eq!(got, want);
    // The HEAD responses keep the Content-Length they announced.
    let lengths: Vec<u64> = seen
        .of(41000, Side::Server)
        .iter()
        .filter(|r| r.name == "response")
        .map(|r| r.var("content_length").unwrap())
        .collect();
    assert_eq!(lengths, [1234, 5, 99, 3, 7, 0, 1 << 40, 2]);
}

#[test]
fn after_connect_and_its_2xx_both_directions_are_a_tunnel() {
    let mut run = Run::new();
    let mut c = Conn::new(41001);
    run.feed(c.handshake());
    let connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    run.feed(c.send(Side::Client, connect.as_bytes()));
    run.feed(c.send(Side::Server, b"HTTP/1.1 200 Connection established\r\n\r\n"));
    // Tunnel bytes that look like HTTP are not parsed as HTTP.
    let up: Vec<u8> = [
        get("/inside").as_bytes(),
        &[0x16, 3, 1, 0, 5][..],
        &[7; 3000],
    ]
    .concat();
    let down: Vec<u8> = [ok(5, "hello").as_bytes(), &[0x17; 2000][..]].concat();
    run.feed(c.send(Side::Client, &up));
    run.feed(c.send(Side::Server, &down));
    let seen = run.end();
    assert_eq!(seen.responses(41001), [(200, vec![])]);
    assert_eq!(seen.requests(41001), 1);
    assert_eq!(seen.tunnel(41001, Side::Client), up);
    assert_eq!(seen.tunnel(41001, Side::Server), down);
}

#[test]
fn tunnel_bytes_sent_before_the_connects_answer_are_a_tunnel() {
    let mut run = Run::new();
    let mut c = Conn::new(41008);
    run.feed(c.handshake());
    // Optimistic data: the ClientHello right behind the CONNECT, in the
    // same segment and the next ones, before the proxy answers.
    let hello: Vec<u8> = [&[0x16, 3, 1, 0x0b, 0xb8][..], &[9; 3000]].concat();
    let connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    run.feed(c.send(Side::Client, &[connect.as_bytes(), &hello].concat()));
    assert_eq!(run.seen.tunnel(41008, Side::Client), b"", "it waits");
    run.feed(c.send(Side::Server, b"HTTP/1.1 200 Connection established\r\n\r\n"));
    // The answer lets the client's bytes go, without more from the client.
    assert_eq!(run.seen.tunnel(41008, Side::Client), hello);
    let down = [0x16; 2500];
    run.feed(c.send(Side::Server, &down));
    let more = get("/inside");
    run.feed(c.send(Side::Client, more.as_bytes()));
    let seen = run.end();
    assert_eq!(seen.requests(41008), 1);
    assert_eq!(seen.responses(41008), [(200, vec![])]);
    assert_eq!(
        seen.tunnel(41008, Side::Client),
        [&hello[..], more.as_bytes()].concat()
    );
    assert_eq!(seen.tunnel(41008, Side::Server), down);
}

#[test]
fn a_connect_never_answered_waits_until_the_connection_ends() {
    let mut run = Run::new();
    let mut c = Conn::new(41009);
    run.feed(c.handshake());
    let bytes = ["CONNECT example.com:443 HTTP/1.1\r\n\r\n", &get("/after")].concat();
    run.feed(c.send(Side::Client, bytes.as_bytes()));
    // Until the end, the request after the CONNECT waits for its answer.
    assert_eq!(run.seen.requests(41009), 1);
    let seen = run.end();
    // At the end nothing will answer: the bytes are parsed as they are.
    assert_eq!(seen.requests(41009), 2);
    assert_eq!(seen.of(41009, Side::Client)[1].field("target"), b"/after");
}

#[test]
fn after_a_101_both_directions_are_a_tunnel() {
    let mut run = Run::new();
    let mut c = Conn::new(41002);
    run.feed(c.handshake());
    run.feed(c.send(
        Side::Client,
        b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
    ));
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n";
    let down = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00HTTP/1.1 200 OK\r\n\r\n";
    run.feed(c.send(Side::Server, &[&switch[..], &down[..]].concat()));
    // The client's bytes, one of them a request line in disguise.
    let up = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    run.feed(c.send(Side::Client, up));
    let seen = run.end();
    assert_eq!(seen.responses(41002), [(101, vec![])]);
    assert_eq!(seen.tunnel(41002, Side::Server), down);
    assert_eq!(seen.tunnel(41002, Side::Client), up);
    assert_eq!(seen.requests(41002), 1);
}

/// One WebSocket frame as the records give it: FIN, opcode, whether
/// masked, and its payload unmasked.
type WsFrame = (bool, u64, bool, Vec<u8>);

/// The WebSocket frames from `side`, their payloads unmasked with the
/// frame's `mask` field.
fn ws_frames(seen: &Seen, port: u16, side: Side) -> Vec<WsFrame> {
    let mut out: Vec<WsFrame> = Vec::new();
    let mut unmask = Unmask::new();
    for r in seen.of(port, side) {
        match r.name {
            "ws_frame" => {
                unmask.frame(<[u8; 4]>::try_from(r.field("mask").as_slice()).ok());
                out.push((
                    r.var("fin") == Some(1),
                    r.var("opcode").unwrap(),
                    r.var("masked") == Some(1),
                    Vec::with_capacity(r.var("length").unwrap() as usize),
                ));
            }
            "ws_payload" => {
                let payload = &mut out.last_mut().expect("a frame first").3;
                unmask.bytes_into(&r.field("data"), payload);
            }
            other => assert!(
                other == "request" || other == "response",
                "a `{other}` record after the upgrade"
            ),
        }
    }
    out
}

#[test]
fn after_a_101_to_websocket_both_directions_are_websocket_frames() {
    let mut run = Run::new();
    let mut c = Conn::new(41007);
    run.feed(c.handshake());
    run.feed(c.send(
        Side::Client,
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    let switch =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Accept: s3pPLMBiTxaQ9kKYzzhZRbK+xOo=\r\n\r\n";
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let down_frames: Vec<(bool, u8, Vec<u8>)> = vec![
        (true, 1, b"hello".to_vec()),
        (false, 2, vec![0xaa; 300]),
        (true, 0, b"HTTP/1.1 200 OK\r\n\r\n".to_vec()),
        (true, 2, big.clone()),
        (true, 9, Vec::new()),
    ];
    let down: Vec<u8> = down_frames
        .iter()
        .flat_map(|(fin, op, p)| ws_frame(*fin, *op, None, p))
        .collect();
    run.feed(c.send(Side::Server, &[&switch[..], &down[..]].concat()));
    // The client's frames are masked; one carries a request line.
    let up_frames: Vec<(bool, u8, Vec<u8>)> = vec![
        (true, 1, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        (true, 10, Vec::new()),
        (true, 2, vec![7; 2000]),
        (true, 8, vec![0x03, 0xe8]),
    ];
    let up: Vec<u8> = up_frames
        .iter()
        .enumerate()
        .flat_map(|(i, (fin, op, p))| ws_frame(*fin, *op, Some([1, 2, 3, i as u8]), p))
        .collect();
    run.feed(c.send(Side::Client, &up));
    let seen = run.end();
    assert_eq!(seen.responses(41007), [(101, vec![])]);
    assert_eq!(seen.requests(41007), 1);
    let want = |frames: &[(bool, u8, Vec<u8>)], masked: bool| -> Vec<WsFrame> {
        frames
            .iter()
            .map(|(fin, op, p)| (*fin, u64::from(*op), masked, p.clone()))
            .collect()
    };
    assert_eq!(
        ws_frames(&seen, 41007, Side::Server),
        want(&down_frames, false)
    );
    assert_eq!(
        ws_frames(&seen, 41007, Side::Client),
        want(&up_frames, true)
    );
}

#[test]
fn after_a_refused_connect_the_next_request_is_a_request() {
    let mut run = Run::new();
    let mut c = Conn::new(41005);
    run.feed(c.handshake());
    let connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    run.feed(c.send(Side::Client, connect.as_bytes()));
    let refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth";
    run.feed(c.send(Side::Server, refused.as_bytes()));
    let again = "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n";
    run.feed(c.send(Side::Client, again.as_bytes()));
    run.feed(c.send(Side::Server, b"HTTP/1.1 200 OK\r\n\r\n"));
    run.feed(c.send(Side::Client, &[0x16, 3, 1, 0, 1, 0xff]));
    run.feed(c.send(Side::Server, &[0x16, 3, 3, 0, 1, 0xee]));
    let seen = run.end();
    assert_eq!(
        seen.responses(41005),
        [(407, b"auth".to_vec()), (200, vec![])]
    );
    let targets: Vec<Vec<u8>> = seen
        .of(41005, Side::Client)
        .iter()
        .filter(|r| r.name == "request")
        .map(|r| r.field("method"))
        .collect();
    assert_eq!(targets, [b"CONNECT".to_vec(), b"CONNECT".to_vec()]);
    assert_eq!(seen.tunnel(41005, Side::Client), [0x16, 3, 1, 0, 1, 0xff]);
    assert_eq!(seen.tunnel(41005, Side::Server), [0x16, 3, 3, 0, 1, 0xee]);
}

#[test]
fn a_response_whose_request_was_not_seen_is_parsed_as_before() {
    let mut run = Run::new();
    let mut c = Conn::new(41003);
    // Picked up mid-stream: the server's bytes come first.
    c.sent = [100, 100];
    run.feed(c.send(Side::Server, ok(4, "abcd").as_bytes()));
    run.feed(c.send(Side::Client, head("/x").as_bytes()));
    run.feed(c.send(Side::Server, ok(4, "").as_bytes()));
    let seen = run.end();
    assert_eq!(
        seen.responses(41003),
        [(200, b"abcd".to_vec()), (200, vec![])]
    );
}

#[test]
fn signals_reach_directions_not_started_open_and_parked() {
    // 100 connections at once, more than the 64 kept open: idle directions
    // are parked between messages.
    const N: u16 = 100;
    let mut run = Run::new();
    let mut conns: Vec<Conn> = (0..N).map(|i| Conn::new(42000 + i)).collect();
    for c in &conns {
        run.feed(c.handshake());
    }
    // A HEAD to a server direction that has sent nothing yet, then to one
    // that has (and is parked if idle), then a GET with a body.
    for round in 0..3 {
        for c in conns.iter_mut() {
            let req = if round < 2 { head("/h") } else { get("/g") };
            run.feed(c.send(Side::Client, req.as_bytes()));
        }
        for c in conns.iter_mut() {
            let res = if round < 2 {
                ok(500, "")
            } else {
                ok(600, &"z".repeat(600))
            };
            run.feed(c.send(Side::Server, res.as_bytes()));
        }
    }
    let seen = run.end();
    for i in 0..N {
        let got = seen.responses(42000 + i);
        assert_eq!(
            got,
            [(200, vec![]), (200, vec![]), (200, vec![b'z'; 600])],
            "connection {i}"
        );
    }
}

#[test]
fn a_lost_response_takes_its_requests_signal_with_it() {
    let mut run = Run::new();
    let mut c = Conn::new(41004);
    run.feed(c.handshake());
    run.feed(c.send(Side::Client, head("/a").as_bytes()));
    // The HEAD's response is sent but not captured; the client's next
    // segment acknowledges it: a gap in the server's direction.
    let lost = c.send(Side::Server, ok(1234, "").as_bytes());
    assert_eq!(lost.len(), 1);
    run.feed(c.send(Side::Client, get("/b").as_bytes()));
    run.feed(c.send(Side::Server, ok(5, "hello").as_bytes()));
    run.feed(c.send(Side::Client, head("/c").as_bytes()));
    run.feed(c.send(Side::Server, ok(9, "").as_bytes()));
    run.feed(c.send(Side::Client, get("/d").as_bytes()));
    run.feed(c.send(Side::Server, ok(2, "ok").as_bytes()));
    let seen = run.end();
    assert_eq!(
        seen.responses(41004),
        [
            (200, b"hello".to_vec()),
            (200, vec![]),
            (200, b"ok".to_vec())
        ]
    );
}
