//! What the grammar tests share: a stream fed to a parser in packets.

use aa_runtime::{AaConfig, AaStream, PacketPool, Parser, PoolPacket, Record};

/// Feeds `input` to `parser` in packets of the lengths `sizes` gives (the
/// rest in one packet when it runs out), from a pool made for them. After
/// each packet, and at the end of the stream, hands every ready record to
/// `read`, then frees it. Returns the stream's error; asserts that every
/// packet went back to the pool.
pub fn feed<R: Parser>(
    parser: R,
    input: &[u8],
    sizes: impl IntoIterator<Item = usize>,
    mut read: impl FnMut(Record<'_, PoolPacket>),
) -> Option<String> {
    let mut pieces = Vec::new();
    let (mut at, mut sizes) = (0, sizes.into_iter());
    while at < input.len() {
        let n = sizes
            .next()
            .unwrap_or(usize::MAX)
            .clamp(1, input.len() - at);
        pieces.push(&input[at..at + n]);
        at += n;
    }
    let biggest = pieces.iter().map(|p| p.len()).max().unwrap_or(1);
    let pool = PacketPool::new(pieces.len() as u32 + 1, biggest);
    let mut s = AaStream::new(AaConfig::default(), 0, parser);
    let mut take = |s: &mut AaStream<PoolPacket, R>| {
        let recs = s.read_aa_records(usize::MAX);
        let n = recs.len();
        recs.for_each(&mut read);
        s.free_aa_records(n);
    };
    let mut seq = 0u32;
    for piece in pieces {
        s.insert(seq, pool.packet_from(piece).unwrap(), 0..piece.len());
        seq = seq.wrapping_add(piece.len() as u32);
        take(&mut s);
    }
    s.finish();
    take(&mut s);
    let err = s.error().map(|e| e.to_string());
    drop(s);
    assert!(pool.is_full(), "every packet back in the pool");
    err
}

/// [`feed`] in packets of `cut` bytes.
#[allow(dead_code)] // not every test file cuts evenly
pub fn feed_cut<R: Parser>(
    parser: R,
    input: &[u8],
    cut: usize,
    read: impl FnMut(Record<'_, PoolPacket>),
) -> Option<String> {
    feed(parser, input, std::iter::repeat(cut), read)
}
