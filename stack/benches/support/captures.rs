//! The synthetic captures and the CSV port map the passive benches (`passive`,
//! `dpdk`) replay: the same connections, sizes given by each bench.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use aa_runtime::Parser;
use aa_stack::flow::Endpoint;
use aa_stack::passive::{Parsers, Side};
use aa_stack::synth::{self, Capture, Conversation, Dialogue};
use aa_stack::Timestamp;

fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)), port)
}

fn t0() -> Timestamp {
    Timestamp::new(1_700_000_000, 0)
}

/// `conns` interleaved HTTP/1.1 keep-alive connections to port 80, each
/// `messages` GETs answered by 200s with `body`-byte bodies.
pub fn http_capture(conns: usize, messages: usize, body: usize) -> Capture {
    let convs: Vec<Conversation> = (0..conns)
        .map(|i| {
            Conversation::new(
                v4(1, 40000 + i as u16),
                v4(2, 80),
                synth::http_fixed_bodies(messages, body, 100 + i as u64),
                200 + i as u64,
            )
        })
        .collect();
    Capture::interleave(t0(), &convs)
}

/// `conns` interleaved connections to port 9000, client to server only, each
/// `rows` CSV rows of `fields` fields of `len` bytes.
pub fn csv_capture(conns: usize, rows: usize, fields: usize, len: usize) -> Capture {
    let convs: Vec<Conversation> = (0..conns)
        .map(|i| {
            let rows = synth::csv_fixed_fields(rows, fields, len, 300 + i as u64);
            Conversation::new(
                v4(1, 41000 + i as u16),
                v4(2, 9000),
                Dialogue::one_way(synth::Side::Client, rows),
                400 + i as u64,
            )
        })
        .collect();
    Capture::interleave(t0(), &convs)
}

/// CSV to port 9000 (client to server only), with parser `R`.
pub struct CsvOn9000<R>(pub fn() -> R);

impl<R: Parser> Parsers for CsvOn9000<R> {
    type Parser = R;
    fn is_server_port(&self, port: u16) -> bool {
        port == 9000
    }
    fn parser(&mut self, server: Endpoint, side: Side) -> Option<R> {
        (server.1 == 9000 && side == Side::Client).then(self.0)
    }
}
