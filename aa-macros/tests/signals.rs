//! `#[aa_protocol]` with signals: a command protocol whose requests say
//! what their replies will be, and whose replies hear it. Each side is an
//! `AaStream`; the test hands the signals across as the passive path does.

use aa_macros::aa_protocol;
use aa_runtime::{AaConfig, AaStream, PacketPool, Parser, PoolPacket, Signals};

/// The records ready, as `name:first field`, read and freed.
fn lines<R: Parser>(s: &mut AaStream<PoolPacket, R>) -> Vec<String> {
    let got: Vec<String> = s
        .read_aa_records(usize::MAX)
        .map(|r| {
            let f = r.fields().next().unwrap().to_vec();
            format!("{}:{}", r.name(), String::from_utf8(f).unwrap())
        })
        .collect();
    s.free_aa_records(got.len());
    got
}

/// Requests: `Q` or `S` then a line; a `Q` (query) is answered with data,
/// an `S` (set) with a bare status.
#[aa_protocol]
pub enum Ask {
    #[aa(start)]
    Request {
        #[aa(u8, actions = "if kind == 81 { signal 1; } else { signal 0; }")]
        kind: (),
        #[aa(until = "\n", max = 100)]
        line: (),
    },
}

/// Replies: a status line, then, when the request was a query, a data line.
#[aa_protocol]
pub enum Answer {
    #[aa(start, vars = "var query: u64;")]
    Status {
        #[aa(
            until = "\n",
            max = 100,
            actions = "query = heard(); if query == 1 { next data; }"
        )]
        status: (),
    },
    Data {
        #[aa(until = "\n", max = 100)]
        data: (),
    },
}

#[test]
fn replies_pair_with_their_requests_through_signals() {
    let pool = PacketPool::new(16, 256);
    let mut ask = AaStream::new(AaConfig::default(), 0, ask::AskParser::default());
    let mut answer = AaStream::new(AaConfig::default(), 0, answer::AnswerParser::default());
    let requests = b"Qtemperature\nSmode=eco\nQhumidity\n";
    ask.insert(0, pool.packet_from(requests).unwrap(), 0..requests.len());
    let sent = ask.take_signals();
    assert_eq!(sent.iter().collect::<Vec<_>>(), [1, 0, 1]);
    answer.give_signals(sent);
    // Two lines for each query, one for the set: without the signals the
    // data lines would be read as statuses.
    let replies = b"OK\n21.5\nOK\nOK\n40%\n";
    answer.insert(0, pool.packet_from(replies).unwrap(), 0..replies.len());
    let got = lines(&mut answer);
    assert_eq!(
        got,
        [
            "status:OK",
            "data:21.5",
            "status:OK",
            "status:OK",
            "data:40%"
        ]
    );
    assert_eq!(answer.pending_signals(), Signals::new());
    let n = ask.ready();
    ask.free_aa_records(n);
    drop((ask, answer));
    assert!(pool.is_full());
}

/// Replies again, told apart before their first byte (`begin`): a query's
/// is a bare data line, a set's a status line.
#[aa_protocol]
pub enum Reply {
    #[aa(
        start,
        vars = "var said: u64;",
        begin = "said = heard(); if said == 1 { next value; }"
    )]
    Status {
        #[aa(until = "\n", max = 100)]
        status: (),
    },
    Value {
        #[aa(until = "\n", max = 100)]
        value: (),
    },
}

#[test]
fn begin_chooses_the_record_before_its_first_byte() {
    let pool = PacketPool::new(16, 256);
    let mut reply = AaStream::new(AaConfig::default(), 0, reply::ReplyParser::default());
    let mut told = Signals::new();
    for v in [1, 0, 1] {
        told.push(v);
    }
    reply.give_signals(told);
    let replies = b"21.5\nOK\n40%\n";
    // One byte a packet: the choice is made once, at the first byte.
    for (k, b) in replies.chunks(1).enumerate() {
        reply.insert(k as u32, pool.packet_from(b).unwrap(), 0..1);
    }
    let got = lines(&mut reply);
    assert_eq!(got, ["value:21.5", "status:OK", "value:40%"]);
    drop(reply);
    assert!(pool.is_full());
}

/// Replies that wait for their request's signal before their first byte
/// (`wait` in `begin`): a reply that arrives first is held, not guessed.
#[aa_protocol]
pub enum Held {
    #[aa(
        start,
        vars = "var said: u64;",
        begin = "wait; said = heard(); if said == 1 { next value; }"
    )]
    Status {
        #[aa(until = "\n", max = 100)]
        status: (),
    },
    Value {
        #[aa(until = "\n", max = 100)]
        value: (),
    },
}

#[test]
fn wait_holds_a_reply_until_its_signal_or_the_end() {
    let pool = PacketPool::new(16, 256);
    let replies = b"21.5\nOK\n40%\n";
    // Parsed alone, nothing will signal: no wait.
    let mut alone = AaStream::new(AaConfig::default(), 0, held::HeldParser::default());
    alone.insert(0, pool.packet_from(replies).unwrap(), 0..replies.len());
    assert_eq!(alone.ready(), 3);
    drop(alone);
    let mut held = AaStream::new(AaConfig::default(), 0, held::HeldParser::default());
    held.expect_signals(true);
    held.insert(0, pool.packet_from(replies).unwrap(), 0..replies.len());
    assert_eq!(held.ready(), 0, "nothing before a signal");
    assert!(held.is_waiting());
    let mut told = Signals::new();
    for v in [1, 0] {
        told.push(v);
    }
    held.give_signals(told);
    assert_eq!(lines(&mut held), ["value:21.5", "status:OK"]);
    assert!(held.is_waiting(), "the third waits again");
    // At the end nothing will come: the last reply goes on without.
    held.finish();
    assert_eq!(lines(&mut held), ["status:40%"]);
    drop(held);
    assert!(pool.is_full());
}
