//! The macro-generated parser on frames cut across packets.

use aa_example_frames::frames::{FramesParser, FramesRecord};
use aa_runtime::{AaConfig, AaStream, ErrorKind, PacketPool};

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.push(kind);
    v.extend_from_slice(payload);
    v
}

#[test]
fn frames_across_packets() {
    let mut input = frame(1, b"hello");
    input.extend(frame(0, b""));
    input.extend(frame(2, &[9u8; 1000]));
    for cut in [1, 3, 100, 5000] {
        let pool = PacketPool::new(4096, 128);
        let mut s = AaStream::new(AaConfig::default(), 7, FramesParser::new());
        let mut seq = 7u32;
        for c in input.chunks(cut.min(128)) {
            s.insert(seq, pool.packet_from(c).unwrap(), 0..c.len());
            seq += c.len() as u32;
        }
        s.finish();
        let got: Vec<(u64, Vec<u8>, usize)> = s
            .read_aa_records(10)
            .map(|r| match FramesRecord::from_record(r) {
                Some(FramesRecord::Frame(f)) => (
                    f.seq().unwrap(),
                    f.kind().unwrap().to_vec(),
                    f.payload().unwrap().len() as usize,
                ),
                None => panic!("unknown record"),
            })
            .collect();
        assert_eq!(
            got,
            [(1, vec![1], 5), (2, vec![0], 0), (3, vec![2], 1000)],
            "cut {cut}"
        );
        s.free_aa_records(3);
        assert!(s.error().is_none());
        drop(s);
        assert!(pool.is_full());
    }
}

#[test]
fn oversized_frame_is_rejected() {
    let pool = PacketPool::new(4, 64);
    let mut s = AaStream::new(AaConfig::default(), 0, FramesParser::new());
    let input = [0u8, 1, 0, 1, 5];
    s.insert(0, pool.packet_from(&input).unwrap(), 0..input.len());
    let e = s.error().unwrap();
    assert_eq!(
        e.kind,
        ErrorKind::Rejected {
            message: "frame too long"
        }
    );
    assert_eq!((e.record, e.field, e.offset), ("frame", Some("length"), 0));
    drop(s);
    assert!(pool.is_full());
}
