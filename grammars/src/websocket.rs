//! Reading WebSocket payloads unmasked.
//!
//! After an upgrade to WebSocket, the HTTP grammars deliver each frame as a
//! `ws_frame` record and its payload as `ws_payload` records, at most one per
//! packet, with the bytes as they came. A client masks every frame it sends
//! (RFC 6455, section 5.3): byte `i` of the payload is XORed with byte
//! `i % 4` of the frame's masking key, the `mask` field of its `ws_frame`
//! record. [`Unmask`] undoes that for an application that wants the
//! payload's text: it keeps the key and how far into the frame's payload the
//! last piece ended, so that the pieces of a frame cut anywhere by packets
//! come out right. Unmasking writes new bytes, so it copies: the records stay
//! zero-copy, and only the application that needs plain bytes pays for them.
//!
//! ```
//! use aa_grammars::websocket::Unmask;
//!
//! // "Hello" masked with the key 37 fa 21 3d (RFC 6455, section 5.7), in
//! // two pieces as two packets would cut it.
//! let mut u = Unmask::new();
//! u.frame(Some([0x37, 0xfa, 0x21, 0x3d]));
//! let mut text = Vec::new();
//! u.bytes_into(&[0x7f, 0x9f], &mut text);
//! u.bytes_into(&[0x4d, 0x51, 0x58], &mut text);
//! assert_eq!(text, b"Hello");
//! ```

use aa_runtime::{Field, Packet};

/// The masking key in a `ws_frame` record's `mask` field: `None` when the
/// frame is not masked (the field is empty) or the field is missing.
pub fn mask_key<P: Packet>(mask: Option<Field<'_, P>>) -> Option<[u8; 4]> {
    let m = mask?;
    if m.len() != 4 {
        return None;
    }
    let mut key = [0u8; 4];
    for (i, k) in key.iter_mut().enumerate() {
        *k = m.byte_at(i as u64)?;
    }
    Some(key)
}

impl<P: Packet> crate::http_request::WsFrame<'_, P> {
    /// The frame's masking key, `None` when it is not masked (see
    /// [`Unmask`]).
    pub fn mask_key(&self) -> Option<[u8; 4]> {
        mask_key(self.mask())
    }
}

impl<P: Packet> crate::http_response::WsFrame<'_, P> {
    /// The frame's masking key, `None` when it is not masked (see
    /// [`Unmask`]).
    pub fn mask_key(&self) -> Option<[u8; 4]> {
        mask_key(self.mask())
    }
}

/// Unmasks the payload of one direction's frames, piece by piece: call
/// [`Unmask::frame`] on each `ws_frame` record, then [`Unmask::payload_into`]
/// on each of its `ws_payload` records, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unmask {
    key: Option<[u8; 4]>,
    /// Payload bytes of the current frame already unmasked.
    at: u64,
}

impl Unmask {
    /// No frame yet: bytes pass unchanged until [`Unmask::frame`] gives a key.
    pub const fn new() -> Unmask {
        Unmask { key: None, at: 0 }
    }

    /// A new frame starts, masked with `key` (`None`: not masked).
    pub fn frame(&mut self, key: Option<[u8; 4]>) {
        self.key = key;
        self.at = 0;
    }

    /// Appends `data`, the next piece of the current frame's payload (a
    /// `ws_payload` record's `data` field), to `out`, unmasked.
    pub fn payload_into<P: Packet>(&mut self, data: &Field<'_, P>, out: &mut Vec<u8>) {
        for chunk in data.chunks() {
            self.bytes_into(chunk, out);
        }
    }

    /// Passes over the next `n` bytes of the current frame's payload without
    /// unmasking them (a reader that keeps only a prefix of a piece).
    pub fn skip(&mut self, n: u64) {
        self.at += n;
    }

    /// Appends `bytes`, the next piece of the current frame's payload, to
    /// `out`, unmasked.
    pub fn bytes_into(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(bytes);
        if let Some(key) = self.key {
            xor(&mut out[start..], key, self.at);
        }
        self.at += bytes.len() as u64;
    }
}

/// `buf[i] ^= key[(phase + i) % 4]`, eight bytes at a time.
fn xor(buf: &mut [u8], key: [u8; 4], phase: u64) {
    // The key turned so that its byte for `buf[0]` comes first.
    let turned = u32::from_le_bytes(key).rotate_right(8 * (phase % 4) as u32);
    let wide = u64::from(turned) | u64::from(turned) << 32;
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes")) ^ wide;
        w.copy_from_slice(&v.to_le_bytes());
    }
    // A multiple of 8 bytes went before, so the rest starts at the key's
    // turned byte 0 again.
    let k = turned.to_le_bytes();
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pieces cut anywhere unmask to what one pass over the whole
        /// payload gives, at every phase of the key.
        #[test]
        fn pieces_unmask_as_the_whole(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            key: [u8; 4],
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let masked: Vec<u8> =
                payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(masked.len())).collect();
            cuts.sort_unstable();
            let mut u = Unmask::new();
            u.frame(Some(key));
            let mut out = vec![0xaa];
            let mut from = 0;
            for c in cuts.into_iter().chain([masked.len()]) {
                u.bytes_into(&masked[from..c], &mut out);
                from = c;
            }
            prop_assert_eq!(out[0], 0xaa, "what was in `out` stays");
            prop_assert_eq!(&out[1..], &payload[..]);
        }
    }

    #[test]
    fn a_new_frame_starts_at_its_key_s_first_byte_unmasked_frames_pass_and_skips_count() {
        let mut u = Unmask::new();
        let mut out = Vec::new();
        u.bytes_into(b"as sent", &mut out);
        u.frame(Some([1, 2, 3, 4]));
        u.bytes_into(&[1 ^ b'a', 2 ^ b'b', 3 ^ b'c'], &mut out);
        u.frame(Some([5, 6, 7, 8]));
        u.bytes_into(&[5 ^ b'x', 6 ^ b'y'], &mut out);
        u.frame(None);
        u.bytes_into(b"!", &mut out);
        assert_eq!(out, b"as sentabcxy!");
        // Skipped bytes keep the key's phase.
        u.frame(Some([1, 2, 3, 4]));
        u.skip(6);
        out.clear();
        u.bytes_into(&[3 ^ b'z', 4 ^ b'z', 1 ^ b'z'], &mut out);
        assert_eq!(out, b"zzz");
    }
}
