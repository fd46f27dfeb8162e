//! `#[aa_protocol]` with the bitwise operators and `repeat(stop_when = ...)`:
//! MQTT's fixed header (a type in the top 4 bits, flags in the low 4, a
//! length of 1 to 4 bytes of 7 bits), then that many bytes.

use aa_macros::aa_protocol;
use aa_runtime::{AaConfig, AaStream, Packet, PacketPool};

#[aa_protocol]
pub enum Mqtt {
    #[aa(
        start,
        vars = "var kind: u64; var flags: u64; var size: u64; var shift: u64;"
    )]
    Packet {
        #[aa(u8, actions = "kind = header >> 4; flags = header & 0x0f;")]
        header: (),
        #[aa(
            u8,
            repeat(count = 4, stop_when = "length & 0x80 == 0"),
            actions = "size = size | (length & 0x7f) << shift; shift = shift + 7;"
        )]
        length: (),
        #[aa(bytes = "size", max = 1000)]
        rest: (),
    },
}

#[test]
fn fixed_headers_with_lengths_of_one_and_two_bytes() {
    // PINGREQ (type 12, no body), then PUBLISH (type 3, flags 0b0010) with
    // 200 bytes: a length of two bytes, 0xc8 0x01.
    let mut input = vec![0xc0, 0x00, 0x32, 0xc8, 0x01];
    input.extend(std::iter::repeat_n(b'x', 200));
    let pool = PacketPool::new(512, 64);
    let mut s = AaStream::new(AaConfig::default(), 1, mqtt::MqttParser::default());
    let mut seq = 1u32;
    for c in input.chunks(7) {
        let p = pool.packet_from(c).unwrap();
        let n = p.data().len();
        s.insert(seq, p, 0..n);
        seq += c.len() as u32;
    }
    s.finish();
    assert_eq!(s.error(), None);
    let got: Vec<(u64, u64, u64, u64)> = s
        .read_aa_records(10)
        .map(|r| match mqtt::MqttRecord::from_record(r) {
            Some(mqtt::MqttRecord::Packet(p)) => (
                p.kind().unwrap(),
                p.flags().unwrap(),
                p.size().unwrap(),
                p.rest().map_or(0, |f| f.len()),
            ),
            None => panic!("not a packet"),
        })
        .collect();
    assert_eq!(got, vec![(12, 0, 0, 0), (3, 2, 200, 200)]);
    s.free_aa_records(2);
    drop(s);
    assert!(pool.is_full());
}
