//! Application-aware stream behaviour with the hand-written CSV parser: records,
//! release, gaps, errors and backpressure.

use aa_runtime::csv::{unquote, CsvConfig, CsvParser};
use aa_runtime::{
    AaConfig, AaState, AaStream, ErrorKind, Insert, Packet, PacketPool, PoolPacket, SeqNum,
    StreamConfig,
};

const ISN: u32 = 7;

struct Feed {
    pool: PacketPool,
    seq: u32,
}

impl Feed {
    fn new(n: u32) -> Feed {
        Feed {
            pool: PacketPool::new(n, 128),
            seq: ISN,
        }
    }

    /// Sends `bytes` as the next segment (behind a 3-byte fake header).
    fn send(&mut self, s: &mut AaStream<PoolPacket, CsvParser>, bytes: &[u8]) -> Insert {
        let r = self.send_at(s, self.seq, bytes);
        self.seq = self.seq.wrapping_add(bytes.len() as u32);
        r
    }

    fn send_at(&self, s: &mut AaStream<PoolPacket, CsvParser>, seq: u32, bytes: &[u8]) -> Insert {
        let mut frame = b"hdr".to_vec();
        frame.extend_from_slice(bytes);
        let p = self.pool.packet_from(&frame).unwrap();
        let n = p.data().len();
        s.insert(seq, p, 3..n)
    }
}

fn csv(cfg: AaConfig) -> AaStream<PoolPacket, CsvParser> {
    AaStream::new(cfg, ISN, CsvParser::default())
}

/// Reads and frees every ready record, as decoded field values.
fn take(s: &mut AaStream<PoolPacket, CsvParser>) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = s
        .read_aa_records(usize::MAX)
        .map(|r| {
            assert_eq!(r.name(), "row");
            r.fields()
                .map(|f| {
                    let mut v = Vec::new();
                    unquote(&f, b'"', &mut v);
                    String::from_utf8(v).unwrap()
                })
                .collect()
        })
        .collect();
    s.free_aa_records(rows.len());
    rows
}

fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|r| r.iter().map(|f| f.to_string()).collect())
        .collect()
}

#[test]
fn quoted_fields_across_packets() {
    let mut feed = Feed::new(16);
    let mut s = csv(AaConfig::default());
    for part in [
        &b"a,\"b,"[..],
        b"c\"\"d\",e\r",
        b"\n\"multi\nline\",x\"y\n",
        b"\"ab\"cd,,\n\n",
        b"last,row",
    ] {
        feed.send(&mut s, part);
    }
    assert_eq!(
        take(&mut s),
        rows(&[
            &["a", "b,c\"d", "e"],
            &["multi\nline", "x\"y"],
            &["abcd", "", ""],
        ])
    );
    s.finish();
    assert_eq!(take(&mut s), rows(&[&["last", "row"]]));
    assert_eq!(s.state(), AaState::Ended);
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn configurable_delimiter() {
    let mut feed = Feed::new(4);
    let cfg = CsvConfig {
        delimiter: b';',
        ..CsvConfig::default()
    };
    let mut s = AaStream::new(AaConfig::default(), ISN, CsvParser::new(cfg));
    feed.send(&mut s, b"a;b,c;\"d;e\"\n");
    assert_eq!(take(&mut s), rows(&[&["a", "b,c", "d;e"]]));
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn packets_are_held_until_records_are_freed_in_any_order() {
    let mut feed = Feed::new(8);
    let mut s = csv(AaConfig::default());
    feed.send(&mut s, b"one,tw");
    feed.send(&mut s, b"o\nthree\nfo");
    feed.send(&mut s, b"ur\n");
    assert_eq!(feed.pool.available(), 5, "all three packets back records");
    let ids: Vec<_> = s.read_aa_records(10).map(|r| r.id()).collect();
    assert_eq!(ids.len(), 3);
    let held = s.stream().held_bytes();
    // Free the middle record: packet 2 still backs "o" and "fo".
    assert!(s.free_record(ids[1]));
    assert!(!s.free_record(ids[1]), "freeing twice is refused");
    assert_eq!(feed.pool.available(), 5);
    // Free the last: "four" spans packets 2 and 3; packet 3 goes, packet 2 stays
    // for "two" of the first record.
    assert!(s.free_record(ids[2]));
    assert_eq!(feed.pool.available(), 6);
    assert!(s.stream().held_bytes() < held, "freeing grows the window");
    let r = s.record(ids[0]).unwrap();
    assert_eq!(r.field(1).unwrap().to_vec(), b"two");
    assert_eq!(r.field(1).unwrap().packets(), 2);
    assert!(s.free_record(ids[0]));
    assert!(feed.pool.is_full());
    assert_eq!(s.stream().window(), StreamConfig::default().recv_buffer);
}

#[test]
fn window_shrinks_while_records_are_held() {
    let mut feed = Feed::new(64);
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: 40,
            ..StreamConfig::default()
        },
        ..AaConfig::default()
    };
    let mut s = csv(cfg);
    for _ in 0..4 {
        assert_eq!(
            feed.send(&mut s, b"abcdefghi\n"),
            Insert::InOrder { bytes: 10 }
        );
    }
    assert_eq!(s.stream().window(), 0);
    assert_eq!(feed.send_at(&mut s, feed.seq, b"x\n"), Insert::OutOfWindow);
    assert_eq!(take(&mut s).len(), 4);
    assert_eq!(s.stream().window(), 40);
    assert_eq!(feed.send(&mut s, b"x\n"), Insert::InOrder { bytes: 2 });
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn full_record_queue_pauses_parsing() {
    let mut feed = Feed::new(64);
    let cfg = AaConfig {
        max_records: 2,
        ..AaConfig::default()
    };
    let mut s = csv(cfg);
    feed.send(&mut s, b"1\n2\n3\n4\n5");
    feed.send(&mut s, b"\n6\n");
    assert_eq!(s.ready(), 2, "parsing paused at the cap");
    assert_eq!(feed.pool.available(), 62);
    let mut all = Vec::new();
    while s.ready() > 0 {
        all.extend(take(&mut s));
    }
    s.finish();
    assert_eq!(all, rows(&[&["1"], &["2"], &["3"], &["4"], &["5"], &["6"]]));
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn gap_resynchronises_at_next_line() {
    let mut feed = Feed::new(16);
    let mut s = csv(AaConfig::default());
    feed.send(&mut s, b"a,b\nc,d"); // "c,d" is cut by the loss
    feed.seq += 6; // ",e\nf,g" never arrives
    feed.send(&mut s, b"h\ni,j\n");
    assert_eq!(take(&mut s), rows(&[&["a", "b"]]));
    assert_eq!(s.skip_to(SeqNum(feed.seq)), 6);
    assert_eq!(s.stream().stats().gap_bytes, 6);
    assert_eq!(s.stats().gaps, 1);
    // The partial "c,d" record is dropped; "h" ends the line the gap cut; "i,j" is whole.
    assert_eq!(take(&mut s), rows(&[&["i", "j"]]));
    assert_eq!(s.parser().resyncs(), 1);
    s.finish();
    assert_eq!(s.state(), AaState::Ended);
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn gap_at_end_of_stream_is_reported() {
    let mut feed = Feed::new(4);
    let mut s = csv(AaConfig::default());
    feed.send(&mut s, b"a\nb");
    feed.send_at(&mut s, feed.seq + 3, b"zz");
    s.skip_to(SeqNum(feed.seq + 5));
    s.finish();
    assert_eq!(take(&mut s), rows(&[&["a"]]));
    assert_eq!(s.stats().gaps, 1);
    assert_eq!(s.stats().gap_bytes, 3);
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn field_over_maximum_length_fails_the_stream_keeping_good_records() {
    let mut feed = Feed::new(16);
    let parser = CsvParser::new(CsvConfig {
        max_field_len: 8,
        ..CsvConfig::default()
    });
    let mut s = AaStream::new(AaConfig::default(), ISN, parser);
    feed.send(&mut s, b"ok,fine\nok,0123");
    assert_eq!(s.state(), AaState::Active);
    feed.send(&mut s, b"45678");
    assert_eq!(s.state(), AaState::Failed);
    let e = s.error().unwrap().clone();
    assert_eq!(e.kind, ErrorKind::FieldTooLong { max: 8 });
    assert_eq!((e.record, e.field, e.offset), ("row", Some("field"), 11));
    assert_eq!(
        e.to_string(),
        "stream offset 11: record `row`, field `field`: field longer than 8 bytes"
    );
    feed.send(&mut s, b"more,data\n");
    assert_eq!(s.stats().discarded_bytes, 10);
    assert_eq!(take(&mut s), rows(&[&["ok", "fine"]]));
    assert!(
        feed.pool.is_full(),
        "nothing is held after failure once records are freed"
    );
}

#[test]
fn too_many_fields_is_an_error() {
    let mut feed = Feed::new(4);
    let parser = CsvParser::new(CsvConfig {
        max_fields: 3,
        ..CsvConfig::default()
    });
    let mut s = AaStream::new(AaConfig::default(), ISN, parser);
    feed.send(&mut s, b"a,b,c\na,b,c,d\n");
    assert_eq!(
        s.error().map(|e| &e.kind),
        Some(&ErrorKind::TooManyFields { max: 3 })
    );
    assert_eq!(take(&mut s), rows(&[&["a", "b", "c"]]));
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn out_of_order_segments_are_parsed_when_the_hole_closes() {
    let feed = Feed::new(8);
    let mut s = csv(AaConfig::default());
    feed.send_at(&mut s, ISN + 4, b"c,d\n");
    assert_eq!(s.ready(), 0);
    feed.send_at(&mut s, ISN, b"a,b\n");
    assert_eq!(take(&mut s), rows(&[&["a", "b"], &["c", "d"]]));
    drop(s);
    assert!(feed.pool.is_full());
}

#[test]
fn an_idle_stream_parks_and_resumes_where_it_was_in_its_own_buffers() {
    let mut f = Feed::new(8);
    let mut s = csv(AaConfig::default());
    f.send(&mut s, b"a,b\n1,");
    // A record in progress: not idle.
    assert!(!s.is_idle());
    f.send(&mut s, b"2\n");
    // Records not freed: not idle either.
    assert!(!s.is_idle());
    let s = match s.park() {
        Ok(_) => panic!("parked with records held"),
        Err(s) => s,
    };
    let mut s = s;
    assert_eq!(take(&mut s), rows(&[&["a", "b"], &["1", "2"]]));
    assert!(s.is_idle());
    let (parked, buffers) = s.park().ok().expect("idle");
    assert_eq!((parked.offset, parked.seq), (8, SeqNum(ISN + 8)));
    assert!(f.pool.is_full(), "a parked stream holds no packet");

    let mut s = AaStream::resume(AaConfig::default(), parked, Some(buffers));
    f.send(&mut s, b"x,");
    f.send(&mut s, b"y\n");
    let r = s.read_aa_records(1).next().unwrap();
    // Offsets go on from where the stream was parked.
    assert_eq!(r.span(), 8..11);
    let fields: Vec<Vec<u8>> = r.fields().map(|f| f.to_vec()).collect();
    assert_eq!(fields, [b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(s.free_aa_records(1), 1);
    assert_eq!(s.stats().records, 1, "counters start again");
    assert_eq!(s.stream().rcv_nxt(), SeqNum(ISN + 12));
    drop(s);
    assert!(f.pool.is_full());
}

#[test]
fn a_failed_or_ended_stream_does_not_park() {
    let mut f = Feed::new(4);
    let mut s = csv(AaConfig::default());
    f.send(&mut s, b"a\n");
    take(&mut s);
    s.finish();
    assert_eq!(s.state(), AaState::Ended);
    assert!(s.park().is_err());
}

#[test]
fn with_recovery_on_an_error_is_counted_and_parsing_goes_on_at_the_next_line() {
    let mut feed = Feed::new(16);
    let parser = CsvParser::new(CsvConfig {
        max_field_len: 8,
        ..CsvConfig::default()
    });
    let mut s = AaStream::new(AaConfig::default(), ISN, parser);
    s.recover_from_errors(true);
    feed.send(&mut s, b"ok,fine\nok,0123");
    feed.send(&mut s, b"45678,x\nnext,");
    assert_eq!(s.state(), AaState::Active);
    assert_eq!(s.stats().errors, 1);
    let e = s.error().unwrap().clone();
    assert_eq!((e.kind, e.offset), (ErrorKind::FieldTooLong { max: 8 }, 11));
    feed.send(&mut s, b"row\n");
    s.finish();
    // The row in progress at the error is dropped; the next line is parsed.
    assert_eq!(take(&mut s), rows(&[&["ok", "fine"], &["next", "row"]]));
    assert_eq!(s.state(), AaState::Ended);
    drop(s);
    assert!(feed.pool.is_full());
}
