//! [`RawParser`]: the byte stream itself as records, one per in-order piece.
//!
//! For an application that wants reassembled bytes through the record API
//! (a protocol without a grammar yet, a byte counter, a test that compares
//! reassembly with what was sent): every in-order piece of a packet becomes a
//! record `piece` with one field `bytes`, pointing into the packet. Gaps are
//! skipped; the stream never fails.

use crate::packet::Packet;
use crate::parser::{Chunk, Limits, ParseError, Parser, RecordSchema, Schema, Step};
use crate::Emitter;

/// See the [module](self) documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawParser;

static RAW: Schema = Schema {
    protocol: "raw",
    records: &[RecordSchema {
        name: "piece",
        fields: &["bytes"],
        values: &[],
    }],
};

impl Parser for RawParser {
    fn schema(&self) -> &'static Schema {
        &RAW
    }

    fn limits(&self) -> Limits {
        Limits {
            fields_per_record: 1,
            values_per_record: 0,
        }
    }

    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError> {
        if out.is_full() {
            return Ok(Step::Full { consumed: 0 });
        }
        let (start, end) = (chunk.offset, chunk.offset + chunk.data.len() as u64);
        // One field per record: the record queue has room (checked above).
        let _ = out.field(0, start, end, 0);
        out.commit(0, start, end);
        Ok(Step::Done)
    }

    fn gap(&mut self, _offset: u64, _len: u64) -> Result<(), ParseError> {
        Ok(())
    }

    fn finish<P: Packet>(
        &mut self,
        _offset: u64,
        _out: &mut Emitter<'_, P>,
    ) -> Result<(), ParseError> {
        Ok(())
    }

    fn retain_from(&self) -> u64 {
        u64::MAX
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{AaConfig, AaStream, PacketPool};

    #[test]
    fn pieces_are_the_bytes_in_order_across_gaps() {
        let pool = PacketPool::new(8, 64);
        let mut s = AaStream::new(AaConfig::default(), 100, RawParser);
        s.insert(105, pool.packet_from(b"world").unwrap(), 0..5);
        s.insert(100, pool.packet_from(b"hello").unwrap(), 0..5);
        s.insert(120, pool.packet_from(b"!").unwrap(), 0..1);
        s.skip_to(crate::SeqNum(120));
        s.finish();
        let got: Vec<(u64, Vec<u8>)> = s
            .read_aa_records(usize::MAX)
            .map(|r| (r.span().start, r.field(0).unwrap().to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (0, b"hello".to_vec()),
                (5, b"world".to_vec()),
                (20, b"!".to_vec())
            ]
        );
        s.free_aa_records(usize::MAX);
        drop(s);
        assert!(pool.is_full());
    }
}
