//! A user crate describing a binary framing protocol with `#[aa_protocol]`:
//! a `u32` big-endian length, a type byte, then the payload; type 0 frames are
//! heartbeats with no payload.

use aa_macros::aa_protocol;

#[aa_protocol(globals = "var frames: u64 = 0;")]
pub enum Frames {
    /// One frame.
    #[aa(
        start,
        vars = "var seq: u64;",
        then = "frames = frames + 1; seq = frames;"
    )]
    Frame {
        #[aa(u32be, actions = r#"if length > 65536 { fail "frame too long"; }"#)]
        length: (),
        #[aa(u8)]
        kind: (),
        #[aa(bytes = "length", max = 65536)]
        payload: (),
    },
}
