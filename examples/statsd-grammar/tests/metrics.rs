//! The user grammar's parser on a stream cut into small packets.

use aa_example_statsd::statsd::{StatsdParser, StatsdRecord};
use aa_runtime::{AaConfig, AaState, AaStream, ErrorKind, PacketPool};

/// name, value, type, and the metric's sequence number.
type Metric = (String, String, String, u64);

fn parse(input: &[u8], cut: usize) -> (Vec<Metric>, Option<ErrorKind>) {
    let pool = PacketPool::new(1024, 64);
    let mut s = AaStream::new(AaConfig::default(), 0, StatsdParser::new());
    let mut seq = 0u32;
    for c in input.chunks(cut) {
        s.insert(seq, pool.packet_from(c).unwrap(), 0..c.len());
        seq += c.len() as u32;
    }
    s.finish();
    let text =
        |f: Option<aa_runtime::Field<'_, _>>| String::from_utf8(f.unwrap().to_vec()).unwrap();
    let out: Vec<_> = s
        .read_aa_records(usize::MAX)
        .map(|r| match StatsdRecord::from_record(r) {
            Some(StatsdRecord::Metric(m)) => (
                text(m.name()),
                text(m.value()),
                text(m.kind()),
                m.n().unwrap(),
            ),
            None => panic!("unknown record"),
        })
        .collect();
    let n = out.len();
    s.free_aa_records(n);
    let err = s.error().map(|e| e.kind.clone());
    assert!(err.is_some() || s.state() == AaState::Ended);
    drop(s);
    assert!(pool.is_full());
    (out, err)
}

#[test]
fn metrics_in_any_segmentation() {
    let input = b"api.hits:1|c\nqueue.depth:42|g\n\nlatency:320|ms\n";
    for cut in [1, 2, 3, 7, 64] {
        let (m, err) = parse(input, cut);
        assert_eq!(err, None);
        let want = [
            ("api.hits", "1", "c", 1),
            ("queue.depth", "42", "g", 2),
            ("latency", "320", "ms", 3),
        ];
        let got: Vec<(&str, &str, &str, u64)> = m
            .iter()
            .map(|(a, b, c, n)| (a.as_str(), b.as_str(), c.as_str(), *n))
            .collect();
        assert_eq!(got, want, "cut {cut}");
    }
}

#[test]
fn unknown_type_fails_after_the_good_metrics() {
    let (m, err) = parse(b"ok:1|c\nbad:2|x\n", 4);
    assert_eq!(m.len(), 1);
    assert_eq!(
        err,
        Some(ErrorKind::Rejected {
            message: "unknown metric type"
        })
    );
}
