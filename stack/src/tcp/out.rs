//! Outgoing segments: Ethernet II + IPv4 + TCP written straight into a
//! transmit buffer (a pool buffer, an mbuf), checksums included (no `Vec`, no
//! copy but the payload's).

use std::net::Ipv4Addr;

use aa_runtime::PoolError;

use crate::io::alloc::FrameAlloc;

use crate::link::MacAddr;
use crate::wire::tcp::{copy_sum32, fold, ipv4_pseudo_sum, sum32};
use crate::wire::TcpFlags;

/// Ethernet + IPv4 + TCP header bytes without options.
pub(crate) const HEADERS: usize = 14 + 20 + 20;

/// One segment to write.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutSeg {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub ip_id: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// SYN options: MSS, window scale (shift), SACK permitted.
    pub syn_opts: Option<(u16, Option<u8>, bool)>,
    /// SACK blocks (RFC 2018) to carry; none on a SYN.
    pub sack: SackBlocks,
}

/// Up to [`SackBlocks::MAX`] SACK blocks `(left, right)`, first sent first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SackBlocks {
    blocks: [(u32, u32); SackBlocks::MAX],
    len: u8,
}

impl SackBlocks {
    /// Most blocks in 40 option bytes without timestamps (RFC 2018 3).
    pub const MAX: usize = 4;
    /// No blocks.
    pub const NONE: SackBlocks = SackBlocks {
        blocks: [(0, 0); SackBlocks::MAX],
        len: 0,
    };

    /// The blocks, in the order they go out.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }

    /// Whether no more fit.
    pub fn is_full(&self) -> bool {
        usize::from(self.len) == Self::MAX
    }

    /// Appends `b` unless full or already present; returns whether it was added.
    pub fn push(&mut self, b: (u32, u32)) -> bool {
        if self.is_full() || self.as_slice().contains(&b) {
            return false;
        }
        self.blocks[usize::from(self.len)] = b;
        self.len += 1;
        true
    }
}

/// The SACK blocks of a TCP option area (the bytes after the 20 fixed ones),
/// up to [`SackBlocks::MAX`]; empty if there is no well-formed SACK option.
pub(crate) fn parse_sack(options: &[u8]) -> SackBlocks {
    let mut out = SackBlocks::NONE;
    let mut o = options;
    while let [kind, rest @ ..] = o {
        match kind {
            0 => break,
            1 => o = rest,
            _ => {
                let Some(&len) = rest.first() else { break };
                let len = usize::from(len);
                if len < 2 || len > o.len() {
                    break;
                }
                if *kind == 5 && len >= 10 && (len - 2) % 8 == 0 {
                    for b in o[2..len].chunks_exact(8) {
                        let l = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let r = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        out.push((l, r));
                    }
                }
                o = &o[len..];
            }
        }
    }
    out
}

/// A segment's payload in up to two pieces (a send buffer's ring wraps
/// around), copied into the frame one after the other.
pub(crate) type Payload<'a> = [&'a [u8]; 2];

/// A payload of one piece.
pub(crate) fn one(p: &[u8]) -> Payload<'_> {
    [p, &[]]
}

/// Writes `seg` with `payload` into a buffer of `pool`; with `offload`,
/// the checksums are left for the device to complete (see [`fill`]).
pub(crate) fn write<A: FrameAlloc>(
    pool: &A,
    seg: &OutSeg,
    payload: Payload<'_>,
    offload: bool,
) -> Result<A::Packet, PoolError> {
    // Every option is padded with leading NOPs to a multiple of 4 bytes, so
    // the header length (in words) stays exact.
    let mut opts = [0u8; 40];
    let mut olen = 0;
    let mut put = |bytes: &[u8]| {
        opts[olen..olen + bytes.len()].copy_from_slice(bytes);
        olen += bytes.len();
    };
    if let Some((mss, ws, sack_ok)) = seg.syn_opts {
        put(&[2, 4, (mss >> 8) as u8, mss as u8]);
        if let Some(s) = ws {
            put(&[1, 3, 3, s]);
        }
        if sack_ok {
            put(&[1, 1, 4, 2]);
        }
    }
    let blocks = seg.sack.as_slice();
    if !blocks.is_empty() {
        put(&[1, 1, 5, (2 + 8 * blocks.len()) as u8]);
        for &(l, r) in blocks {
            put(&l.to_be_bytes());
            put(&r.to_be_bytes());
        }
    }
    debug_assert!(olen % 4 == 0 && olen <= 40);
    let tcp_len = 20 + olen + payload[0].len() + payload[1].len();
    let len = 14 + 20 + tcp_len;
    let room = pool.frame_room();
    if room < len || 20 + tcp_len > usize::from(u16::MAX) {
        return Err(PoolError::TooLong {
            len,
            buf_size: room,
        });
    }
    pool.build(|space| {
        let f = space.get_mut(..len)?;
        fill(f, seg, &opts[..olen], payload, offload);
        Some(len)
    })
}

/// Writes the frame of `seg` into `f` (exactly its length): headers,
/// options `opts`, `payload`, checksums. With `offload` (a device with
/// transmit checksum offload), the TCP checksum holds the pseudo-header's
/// folded sum, not complemented: what NICs and the kernel's virtio-net
/// offload complete, so the payload is not read again here. The IPv4
/// header's checksum (20 bytes) is always computed here.
fn fill(f: &mut [u8], seg: &OutSeg, opts: &[u8], payload: Payload<'_>, offload: bool) {
    let olen = opts.len();
    let tcp_len = f.len() - 34;
    f[0..6].copy_from_slice(&seg.dst_mac.0);
    f[6..12].copy_from_slice(&seg.src_mac.0);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&seg.ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&seg.src.0.octets());
    ip[16..20].copy_from_slice(&seg.dst.0.octets());
    let sum = !fold(sum32(ip));
    ip[10..12].copy_from_slice(&sum.to_ne_bytes());
    let tcp = &mut f[34..];
    tcp[0..2].copy_from_slice(&seg.src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&seg.dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&seg.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&seg.ack.to_be_bytes());
    tcp[12] = (((20 + olen) / 4) as u8) << 4;
    tcp[13] = seg.flags.0;
    tcp[14..16].copy_from_slice(&seg.window.to_be_bytes());
    tcp[16..20].fill(0); // checksum, urgent pointer
    tcp[20..20 + olen].copy_from_slice(opts);
    let pseudo = ipv4_pseudo_sum(seg.src.0, seg.dst.0, tcp_len);
    let (head, body) = tcp.split_at_mut(20 + olen);
    let (first, rest) = body.split_at_mut(payload[0].len());
    let sum = if offload {
        first.copy_from_slice(payload[0]);
        rest.copy_from_slice(payload[1]);
        fold(pseudo)
    } else {
        // The payload summed as it is copied, in two pieces (the send
        // buffer's ring may wrap inside a segment). The header's length is
        // a multiple of 4; after a first piece of odd length the second
        // starts at an odd offset, where its sum counts byte-swapped.
        let second = copy_sum32(rest, payload[1]);
        let second = if payload[0].len() % 2 == 0 {
            second
        } else {
            u64::from(fold(second).swap_bytes())
        };
        !fold(pseudo + sum32(head) + copy_sum32(first, payload[0]) + second)
    };
    tcp[16..18].copy_from_slice(&sum.to_ne_bytes());
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::{parse, ChecksumStatus, LinkType};
    use aa_runtime::{Packet, PacketPool};

    /// A SYN with every option, sequence numbers near the wrap.
    fn syn() -> OutSeg {
        OutSeg {
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            src: (Ipv4Addr::new(198, 51, 100, 2), 40000),
            dst: (Ipv4Addr::new(198, 51, 100, 1), 9000),
            ip_id: 7,
            seq: 0xfffffff0,
            ack: 12345,
            flags: TcpFlags::SYN,
            window: 65535,
            syn_opts: Some((1460, Some(3), true)),
            sack: SackBlocks::NONE,
        }
    }

    #[test]
    fn frames_parse_back_with_good_checksums() {
        let pool = PacketPool::new(4, 2048);
        let seg = syn();
        let p = write(&pool, &seg, one(b""), false).unwrap();
        let s = parse(p.data(), LinkType::Ethernet, true).unwrap();
        assert_eq!(s.checksum, ChecksumStatus::Valid);
        assert_eq!(
            (s.seq.0, s.ack.0, s.flags),
            (0xfffffff0, 12345, TcpFlags::SYN)
        );
        assert_eq!((s.opts.mss, s.opts.wscale), (Some(1460), Some(3)));
        assert!(s.opts.sack_permitted && !s.opts.malformed);
        assert_eq!(s.payload_len, 0);
        drop(p);
        let seg = OutSeg {
            syn_opts: None,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            ..seg
        };
        for n in [0usize, 1, 2, 3, 5, 1460] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let p = write(&pool, &seg, one(&data), false).unwrap();
            let s = parse(p.data(), LinkType::Ethernet, true).unwrap();
            assert_eq!(s.checksum, ChecksumStatus::Valid, "{n}");
            assert_eq!(s.payload(p.data()), &data[..]);
        }
        assert!(write(&pool, &seg, one(&[0; 2000]), false).is_err());
        // SACK blocks: NOP NOP 5 len, blocks; the header grows by 4 + 8n.
        for n in 1..=SackBlocks::MAX {
            let mut sack = SackBlocks::NONE;
            for i in 0..n as u32 {
                assert!(sack.push((0xffff_fff0u32.wrapping_add(100 * i), 50 + 100 * i)));
            }
            assert!(!sack.push(sack.as_slice()[0]), "no duplicates");
            let seg = OutSeg { sack, ..seg };
            let p = write(&pool, &seg, one(b"data"), false).unwrap();
            let s = parse(p.data(), LinkType::Ethernet, true).unwrap();
            assert_eq!(s.checksum, ChecksumStatus::Valid, "{n}");
            assert!(!s.opts.malformed);
            let opts = &p.data()[s.tcp_offset as usize + 20..s.payload_offset as usize];
            assert_eq!(opts.len(), 4 + 8 * n);
            assert_eq!(opts[..4], [1, 1, 5, (2 + 8 * n) as u8]);
            assert_eq!(parse_sack(opts), sack);
            assert_eq!(s.payload(p.data()), b"data");
        }
        assert!(pool.is_full());
    }

    #[test]
    fn payload_in_two_pieces_split_anywhere() {
        // The send buffer's ring hands the payload over in two pieces when
        // it wraps; the checksum is summed while copying them, the second
        // piece at an odd offset after an odd first one.
        let pool = PacketPool::new(4, 2048);
        let seg = OutSeg {
            flags: TcpFlags::ACK | TcpFlags::PSH,
            syn_opts: None,
            ..syn()
        };
        for n in [0usize, 1, 2, 7, 64, 300, 1460] {
            let data: Vec<u8> = (0..n).map(|i| (i * 13 + n) as u8).collect();
            for cut in 0..=n {
                let p = write(&pool, &seg, [&data[..cut], &data[cut..]], false).unwrap();
                let s = parse(p.data(), LinkType::Ethernet, true).unwrap();
                assert_eq!(s.checksum, ChecksumStatus::Valid, "{n} bytes cut at {cut}");
                assert_eq!(s.payload(p.data()), &data[..]);
            }
        }
        assert!(pool.is_full());
    }

    #[test]
    fn offloaded_frames_leave_the_checksums_to_the_device() {
        let pool = PacketPool::new(4, 2048);
        let seg = OutSeg {
            flags: TcpFlags::ACK | TcpFlags::PSH,
            syn_opts: None,
            ..syn()
        };
        let data: Vec<u8> = (0..1460).map(|i| (i * 7) as u8).collect();
        let p = write(&pool, &seg, one(&data), true).unwrap();
        let mut f = p.data().to_vec();
        // What a capture before the NIC sees: the offload pattern.
        let s = parse(&f, LinkType::Ethernet, true).unwrap();
        assert_eq!(s.checksum, ChecksumStatus::Offloaded);
        assert_eq!(fold(sum32(&f[14..34])), 0xffff, "IPv4 checksum computed");
        // What the NIC does: sum the segment with the pseudo-header's sum in
        // place.
        let tcp = !fold(sum32(&f[34..]));
        f[50..52].copy_from_slice(&tcp.to_ne_bytes());
        let s = parse(&f, LinkType::Ethernet, true).unwrap();
        assert_eq!(s.checksum, ChecksumStatus::Valid);
        assert_eq!(s.payload(&f), &data[..]);
        // The same as computing them here.
        let full = write(&pool, &seg, one(&data), false).unwrap();
        assert_eq!(full.data(), &f[..]);
        drop((p, full));
        assert!(pool.is_full());
    }
}
