//! The CSV document, packets and record loop both CSV benches run on (`aa-runtime` and
//! `aa-grammars`), so their figures are comparable. Included with `#[path]`.

use aa_runtime::{AaStream, Field, Insert, Packet, PacketPool, Parser, PoolPacket};

/// TCP payload per packet.
pub const MSS: usize = 1448;
/// Ethernet 14 + IPv4 20 + TCP 32 bytes before each payload.
pub const HDR: usize = 66;
/// Fields per row.
pub const FIELDS_PER_ROW: usize = 8;
/// Document size, about 1 MiB.
pub const TARGET_LEN: usize = 1 << 20;
/// Sequence number of the first payload byte.
pub const ISN: u32 = 0x1234_5678;

/// A deterministic document of `FIELDS_PER_ROW`-field rows of `field_len`-byte
/// fields, some quoted (with a comma, or a doubled quote, inside).
pub fn document(field_len: usize) -> Vec<u8> {
    assert!(field_len >= 4);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = Vec::with_capacity(TARGET_LEN + 1024);
    while out.len() < TARGET_LEN {
        for f in 0..FIELDS_PER_ROW {
            if f > 0 {
                out.push(b',');
            }
            let r = next();
            let mut content: Vec<u8> = (0..field_len)
                .map(|i| ALNUM[((r >> (i % 8 * 6)) as usize + i) % ALNUM.len()])
                .collect();
            match r % 8 {
                0 => {
                    content[field_len / 2] = b',';
                    out.push(b'"');
                    out.extend_from_slice(&content);
                    out.push(b'"');
                }
                1 => {
                    content[field_len / 2 - 1] = b'"';
                    content[field_len / 2] = b'"';
                    out.push(b'"');
                    out.extend_from_slice(&content);
                    out.push(b'"');
                }
                _ => out.extend_from_slice(&content),
            }
        }
        out.push(b'\n');
    }
    out
}

/// The document cut into `MSS`-byte payloads, each behind a `HDR`-byte header,
/// in a pool holding exactly these packets.
pub fn packets(doc: &[u8]) -> (PacketPool, Vec<PoolPacket>) {
    let n = doc.len().div_ceil(MSS);
    let pool = PacketPool::new(n as u32, HDR + MSS);
    let mut frame = vec![0u8; HDR + MSS];
    let pkts = doc
        .chunks(MSS)
        .map(|c| {
            frame[HDR..HDR + c.len()].copy_from_slice(c);
            pool.packet_from(&frame[..HDR + c.len()])
                .expect("pool sized for the document")
        })
        .collect();
    (pool, pkts)
}

/// Feeds every packet, reading and freeing records as they come; calls
/// `on_field(record_index, field)` for every field. Returns the stream (ended).
pub fn run_aa<R: Parser>(
    mut aa: AaStream<PoolPacket, R>,
    pkts: &[PoolPacket],
    mut on_field: impl FnMut(u64, &Field<'_, PoolPacket>),
) -> AaStream<PoolPacket, R> {
    let mut seq = ISN;
    let mut rec = 0u64;
    let mut drain = |aa: &mut AaStream<PoolPacket, R>| {
        let recs = aa.read_aa_records(usize::MAX);
        let n = recs.len();
        for r in recs {
            for f in r.fields() {
                on_field(rec, &f);
            }
            rec += 1;
        }
        aa.free_aa_records(n);
    };
    for p in pkts {
        let len = p.data().len();
        let r = aa.insert(seq, p.clone(), HDR..len);
        debug_assert!(matches!(r, Insert::InOrder { .. }));
        seq = seq.wrapping_add((len - HDR) as u32);
        drain(&mut aa);
    }
    aa.finish();
    drain(&mut aa);
    aa
}
