//! A WebSocket frame (RFC 6455, 5.2) as a peer sends it, for the tests of
//! the HTTP grammars' `ws_frame` records. Included with `#[path]` by
//! `grammars/tests/websocket.rs` and the façade's `tests/pairing.rs`.

/// FIN, `opcode`, the shortest length encoding, and the payload masked
/// with `mask` if given.
pub fn ws_frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::from(fin) << 7 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => v.push(m | n as u8),
        n if n < 1 << 16 => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}
