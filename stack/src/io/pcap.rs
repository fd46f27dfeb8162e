//! Capture files: [`PcapReader`] (pcap and pcapng, as a [`PacketIo`] source)
//! and [`PcapWriter`].
//!
//! Records are decoded by the `pcap-parser` crate on byte slices; this file
//! owns the buffering, so it always knows the file offset of the record it is
//! on. The reader keeps one buffer (256 KiB, doubled when a record is larger,
//! up to [`MAX_RECORD`]), reads the file into it in large chunks, and copies
//! each packet once into a [`PacketPool`] buffer: no allocation per packet
//! (pcap-parser allocates only for pcapng blocks that carry options).
//!
//! - Link types: those of [`LinkType`]; any other is
//!   [`IoError::UnsupportedLinkType`], naming it (at open for pcap, at the
//!   first packet of that interface for pcapng).
//! - pcapng: several sections (byte order may change between them) and
//!   interfaces, each with its own link type, `if_tsresol` and `if_tsoffset`;
//!   enhanced and simple packet blocks; other blocks are skipped and counted.
//! - A file that ends inside a record yields every complete packet, then
//!   [`IoError::Truncated`] with the record's byte offset (also kept in
//!   [`PcapReader::truncation`]), then `Ok(0)` with `at_end()`.
//! - A frame longer than a pool buffer is skipped and counted
//!   ([`PcapStats::too_long`]); size the pool for the capture's snap length.
//!
//! The writer emits little-endian pcap (micro- or nanosecond timestamps) or
//! pcapng (one section, one interface, nanosecond `if_tsresol`) through
//! `pcap-parser`'s serializer.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use aa_runtime::{PacketPool, PoolError, PoolPacket};
use pcap_parser::pcapng::{
    parse_block_be, parse_block_le, Block, EnhancedPacketBlock, InterfaceDescriptionBlock,
    SectionHeaderBlock,
};
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
    LegacyPcapBlock, Linktype, PcapHeader, ToVec, BOM_MAGIC, SHB_MAGIC,
};

use super::{Burst, IoError, PacketIo, Rx, RxChecksum, RxMeta, Timestamp};
use crate::wire::LinkType;

/// Largest record or block the reader accepts (16 MiB); a larger length field
/// is taken for corruption.
pub const MAX_RECORD: usize = 16 << 20;

const INITIAL_BUF: usize = 256 << 10;
const PCAP_HEADER_LEN: usize = 24;

/// Which file format a reader is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Counters of a [`PcapReader`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapStats {
    /// Packets delivered.
    pub packets: u64,
    /// Frame bytes delivered.
    pub bytes: u64,
    /// Delivered packets cut by the snap length (captured < wire length).
    pub snapped: u64,
    /// Packets skipped because they do not fit in a pool buffer.
    pub too_long: u64,
    /// pcapng blocks other than section, interface and packet blocks.
    pub other_blocks: u64,
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    /// The link type, or the unsupported number.
    link: Result<LinkType, u32>,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp.
    offset_secs: i64,
    snaplen: u32,
}

#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        modified: bool,
        link: LinkType,
    },
    PcapNg {
        big_endian: bool,
        ifaces: Vec<Iface>,
    },
}

/// What the next bytes of the file hold.
enum Step {
    /// A packet: `data` is relative to the record's first byte.
    Packet {
        consumed: usize,
        data: Range<usize>,
        meta: RxMeta,
    },
    /// A block that is not a packet.
    Skip { consumed: usize, counted: bool },
    /// The record is not all in the buffer.
    Incomplete,
}

/// Reads a pcap or pcapng file into pool packets.
#[derive(Debug)]
pub struct PcapReader<R> {
    src: R,
    buf: Vec<u8>,
    /// `buf[start..end]` holds unconsumed bytes.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    src_eof: bool,
    format: Format,
    pool: PacketPool,
    /// An error to report after the packets delivered before it.
    pending: Option<IoError>,
    done: bool,
    truncation: Option<(u64, u64)>,
    stats: PcapStats,
}

impl PcapReader<File> {
    /// Opens a capture file, reading packets into `pool`.
    pub fn open(path: impl AsRef<Path>, pool: PacketPool) -> Result<PcapReader<File>, IoError> {
        PcapReader::new(File::open(path)?, pool)
    }
}

impl<R: Read> PcapReader<R> {
    /// Starts reading a capture from `src` (pcap or pcapng, told by its first
    /// bytes), reading packets into `pool`.
    pub fn new(src: R, pool: PacketPool) -> Result<PcapReader<R>, IoError> {
        let mut r = PcapReader {
            src,
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            pos: 0,
            src_eof: false,
            format: Format::PcapNg {
                big_endian: false,
                ifaces: Vec::new(),
            },
            pool,
            pending: None,
            done: false,
            truncation: None,
            stats: PcapStats::default(),
        };
        while r.end < PCAP_HEADER_LEN && r.refill()? {}
        let head = &r.buf[..r.end];
        let mut magic = [0u8; 4];
        magic[..head.len().min(4)].copy_from_slice(&head[..head.len().min(4)]);
        let magic = u32::from_le_bytes(magic);
        if magic == SHB_MAGIC {
            // The section header block is consumed by the first `step`.
            return Ok(r);
        }
        match parse_pcap_header(head) {
            Ok((_, h)) => {
                r.format = pcap_format(&h)?;
                r.consume(PCAP_HEADER_LEN);
                Ok(r)
            }
            Err(pcap_parser::nom::Err::Incomplete(_)) if head.len() >= 4 => {
                Err(r.truncated_at_eof(head.len() as u64))
            }
            Err(_) => Err(IoError::NotACapture { magic }),
        }
    }

    /// Which format the file is in.
    pub fn format(&self) -> CaptureFormat {
        match self.format {
            Format::Pcap { .. } => CaptureFormat::Pcap,
            Format::PcapNg { .. } => CaptureFormat::PcapNg,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PcapStats {
        self.stats
    }

    /// If the file ended inside a record: its byte offset, and how many bytes
    /// of it there were.
    pub fn truncation(&self) -> Option<(u64, u64)> {
        self.truncation
    }

    /// The pool packets are read into.
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }

    fn truncated_at_eof(&mut self, have: u64) -> IoError {
        self.truncation = Some((self.pos, have));
        IoError::Truncated {
            offset: self.pos,
            have,
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// Reads more of the file; `false` at end of file.
    fn refill(&mut self) -> Result<bool, IoError> {
        if self.src_eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // One record fills the buffer; its length was checked against
            // MAX_RECORD, so this stops growing.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.end += n;
        self.src_eof = n == 0;
        Ok(n > 0)
    }

    /// Reports `err` now if nothing was delivered in this call, else after.
    fn fail(&mut self, err: IoError, delivered: usize) -> Result<usize, IoError> {
        if delivered > 0 {
            self.pending = Some(err);
            Ok(delivered)
        } else {
            self.done = true;
            Err(err)
        }
    }
}

fn pcap_format(h: &PcapHeader) -> Result<Format, IoError> {
    let linktype = h.network.0 as u32;
    let link =
        LinkType::from_linktype(linktype).ok_or(IoError::UnsupportedLinkType { linktype })?;
    Ok(Format::Pcap {
        big_endian: h.is_bigendian(),
        nanos: h.is_nanosecond_precision(),
        modified: h.is_modified_format(),
        link,
    })
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// Decodes the record at the start of `b` (file offset `offset`).
fn step(b: &[u8], format: &mut Format, offset: u64) -> Result<Step, IoError> {
    let corrupt = |reason| IoError::Corrupt { offset, reason };
    match format {
        Format::Pcap {
            big_endian,
            nanos,
            modified,
            link,
        } => {
            let hdr_len = if *modified { 24 } else { 16 };
            if b.len() < hdr_len {
                return Ok(Step::Incomplete);
            }
            if u32_at(b, 8, *big_endian) as usize > MAX_RECORD {
                return Err(corrupt("record length over 16 MiB"));
            }
            let parsed = match (*modified, *big_endian) {
                (true, _) => parse_pcap_frame_modified(b),
                (false, true) => parse_pcap_frame_be(b),
                (false, false) => parse_pcap_frame(b),
            };
            let (rest, rec): (&[u8], LegacyPcapBlock<'_>) = match parsed {
                Ok(ok) => ok,
                Err(pcap_parser::nom::Err::Incomplete(_)) => return Ok(Step::Incomplete),
                Err(_) => return Err(corrupt("malformed record header")),
            };
            let frac = u64::from(rec.ts_usec);
            let ts = Timestamp::new(
                u64::from(rec.ts_sec),
                if *nanos { frac } else { frac * 1000 },
            );
            Ok(Step::Packet {
                consumed: b.len() - rest.len(),
                data: range_in(b, rec.data),
                meta: RxMeta {
                    ts,
                    link: *link,
                    wire_len: rec.origlen,
                    iface: 0,
                    checksum: RxChecksum::Unknown,
                },
            })
        }
        Format::PcapNg { big_endian, ifaces } => {
            if b.len() < 12 {
                return Ok(Step::Incomplete);
            }
            let block_type = u32_at(b, 0, false);
            if block_type == SHB_MAGIC {
                // A new section may switch byte order: its BOM says.
                *big_endian = match u32_at(b, 8, false) {
                    BOM_MAGIC => false,
                    m if m == BOM_MAGIC.swap_bytes() => true,
                    _ => return Err(corrupt("section header with a bad byte-order magic")),
                };
            }
            let block_len = u32_at(b, 4, *big_endian) as usize;
            if block_len < 12 || block_len % 4 != 0 {
                return Err(corrupt("block length below 12 or not a multiple of 4"));
            }
            if block_len > MAX_RECORD {
                return Err(corrupt("block length over 16 MiB"));
            }
            if b.len() < block_len {
                return Ok(Step::Incomplete);
            }
            let parsed = if *big_endian {
                parse_block_be(b)
            } else {
                parse_block_le(b)
            };
            let (rest, block) = match parsed {
                Ok(ok) => ok,
                Err(pcap_parser::nom::Err::Incomplete(_)) => {
                    return Err(corrupt("block shorter than its contents"))
                }
                Err(_) => return Err(corrupt("malformed block")),
            };
            let consumed = b.len() - rest.len();
            let (if_id, data, wire_len, units) = match block {
                Block::SectionHeader(_) => {
                    ifaces.clear();
                    return Ok(Step::Skip {
                        consumed,
                        counted: false,
                    });
                }
                Block::InterfaceDescription(idb) => {
                    let linktype = idb.linktype.0 as u32;
                    ifaces.push(Iface {
                        link: LinkType::from_linktype(linktype).ok_or(linktype),
                        units_per_sec: idb
                            .ts_resolution()
                            .filter(|&r| r > 0)
                            .ok_or_else(|| corrupt("interface with a bad if_tsresol"))?,
                        offset_secs: idb.ts_offset(),
                        snaplen: idb.snaplen,
                    });
                    return Ok(Step::Skip {
                        consumed,
                        counted: false,
                    });
                }
                Block::EnhancedPacket(epb) => {
                    let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    // `data` includes the padding to 32 bits.
                    let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                    (epb.if_id, data, epb.origlen, units)
                }
                Block::SimplePacket(spb) => {
                    // No timestamp; captured length is the wire length capped
                    // by interface 0's snap length.
                    let snap = ifaces.first().map_or(0, |i| i.snaplen);
                    let mut data = &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                    if snap > 0 && data.len() > snap as usize {
                        data = &data[..snap as usize];
                    }
                    (0, data, spb.origlen, 0)
                }
                _ => {
                    return Ok(Step::Skip {
                        consumed,
                        counted: true,
                    })
                }
            };
            let iface = ifaces
                .get(if_id as usize)
                .ok_or_else(|| corrupt("packet of an interface not described before it"))?;
            let link = iface
                .link
                .map_err(|linktype| IoError::UnsupportedLinkType { linktype })?;
            let res = u128::from(iface.units_per_sec);
            let nanos = u128::from(units) * 1_000_000_000 / res;
            let nanos = i128::try_from(nanos).unwrap_or(i128::MAX)
                + i128::from(iface.offset_secs) * 1_000_000_000;
            let ts = Timestamp(nanos.clamp(0, i128::from(u64::MAX)) as u64);
            Ok(Step::Packet {
                consumed,
                data: range_in(b, data),
                meta: RxMeta {
                    ts,
                    link,
                    wire_len,
                    iface: if_id,
                    checksum: RxChecksum::Unknown,
                },
            })
        }
    }
}

impl<R: Read> PacketIo for PcapReader<R> {
    type Packet = PoolPacket;

    fn recv_burst(&mut self, out: &mut Burst<Rx<PoolPacket>>) -> Result<usize, IoError> {
        if let Some(err) = self.pending.take() {
            self.done = true;
            return Err(err);
        }
        let mut n = 0;
        while !self.done && out.room() > 0 {
            let avail = &self.buf[self.start..self.end];
            let step = match step(avail, &mut self.format, self.pos) {
                Ok(s) => s,
                Err(e) => return self.fail(e, n),
            };
            match step {
                Step::Packet {
                    consumed,
                    data,
                    meta,
                } => {
                    let frame = &avail[data];
                    match self.pool.packet_from(frame) {
                        Ok(packet) => {
                            self.stats.packets += 1;
                            self.stats.bytes += frame.len() as u64;
                            self.stats.snapped +=
                                u64::from((frame.len() as u64) < u64::from(meta.wire_len));
                            // Room was checked by the loop.
                            let _ = out.push(Rx { packet, meta });
                            n += 1;
                        }
                        Err(PoolError::TooLong { .. }) => self.stats.too_long += 1,
                        Err(e @ PoolError::Exhausted { .. }) => {
                            // Not consumed: the same record is read again.
                            return if n == 0 { Err(IoError::Pool(e)) } else { Ok(n) };
                        }
                    }
                    self.consume(consumed);
                }
                Step::Skip { consumed, counted } => {
                    self.stats.other_blocks += u64::from(counted);
                    self.consume(consumed);
                }
                Step::Incomplete => match self.refill() {
                    Ok(true) => {}
                    Ok(false) if self.start == self.end => self.done = true,
                    Ok(false) => {
                        let err = self.truncated_at_eof((self.end - self.start) as u64);
                        return self.fail(err, n);
                    }
                    Err(e) => return self.fail(e, n),
                },
            }
        }
        Ok(n)
    }

    fn send_burst(&mut self, _pkts: &mut Burst<PoolPacket>) -> Result<usize, IoError> {
        Err(IoError::Unsupported(
            "a capture file being read cannot send",
        ))
    }

    fn at_end(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

/// Timestamp precision of a pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsPrecision {
    /// Microseconds (magic 0xa1b2c3d4): what every reader understands.
    Micro,
    /// Nanoseconds (magic 0xa1b23c4d).
    Nano,
}

#[derive(Debug)]
enum WriterKind {
    Pcap(TsPrecision),
    PcapNg,
}

/// Writes frames with timestamps to a pcap or pcapng file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    kind: WriterKind,
    snaplen: u32,
}

/// Snap length written in file headers (libpcap's maximum).
pub const WRITER_SNAPLEN: u32 = 262_144;

fn gen_err<E: std::fmt::Debug>(e: E) -> IoError {
    IoError::Os(std::io::Error::other(format!("pcap serialization: {e:?}")))
}

impl<W: Write> PcapWriter<W> {
    /// A pcap file (little-endian) of `link` frames.
    pub fn pcap(out: W, link: LinkType, precision: TsPrecision) -> Result<Self, IoError> {
        let mut w = PcapWriter {
            out,
            kind: WriterKind::Pcap(precision),
            snaplen: WRITER_SNAPLEN,
        };
        let mut header = PcapHeader {
            magic_number: match precision {
                TsPrecision::Micro => 0xa1b2_c3d4,
                TsPrecision::Nano => 0xa1b2_3c4d,
            },
            snaplen: w.snaplen,
            network: Linktype(link.linktype() as i32),
            ..PcapHeader::new()
        };
        let bytes = header.to_vec().map_err(gen_err)?;
        w.out.write_all(&bytes)?;
        Ok(w)
    }

    /// A pcapng file (little-endian) with one interface of `link` frames and
    /// nanosecond timestamps.
    pub fn pcapng(out: W, link: LinkType) -> Result<Self, IoError> {
        let mut w = PcapWriter {
            out,
            kind: WriterKind::PcapNg,
            snaplen: WRITER_SNAPLEN,
        };
        let mut shb = SectionHeaderBlock {
            block_type: SHB_MAGIC,
            block_len1: 0,
            bom: BOM_MAGIC,
            major_version: 1,
            minor_version: 0,
            section_len: -1,
            options: Vec::new(),
            block_len2: 0,
        };
        let mut idb = InterfaceDescriptionBlock {
            block_type: pcap_parser::IDB_MAGIC,
            block_len1: 0,
            linktype: Linktype(link.linktype() as i32),
            reserved: 0,
            snaplen: w.snaplen,
            options: Vec::new(),
            block_len2: 0,
            if_tsresol: 9,
            if_tsoffset: 0,
        };
        w.out.write_all(&shb.to_vec().map_err(gen_err)?)?;
        w.out.write_all(&idb.to_vec().map_err(gen_err)?)?;
        Ok(w)
    }

    /// Writes one complete frame captured at `ts`.
    pub fn write(&mut self, ts: Timestamp, frame: &[u8]) -> Result<(), IoError> {
        self.write_snapped(ts, frame, frame.len() as u32)
    }

    /// Writes a frame that was `wire_len` bytes on the wire (at least
    /// `frame.len()`).
    pub fn write_snapped(
        &mut self,
        ts: Timestamp,
        frame: &[u8],
        wire_len: u32,
    ) -> Result<(), IoError> {
        if frame.len() > self.snaplen as usize {
            return Err(IoError::Unsupported(
                "frame longer than the snap length (262144)",
            ));
        }
        let caplen = frame.len() as u32;
        let wire_len = wire_len.max(caplen);
        let bytes = match self.kind {
            WriterKind::Pcap(precision) => {
                let secs = u32::try_from(ts.secs())
                    .map_err(|_| IoError::Unsupported("pcap timestamps end in 2106"))?;
                let frac = match precision {
                    TsPrecision::Micro => ts.subsec_nanos() / 1000,
                    TsPrecision::Nano => ts.subsec_nanos(),
                };
                LegacyPcapBlock {
                    ts_sec: secs,
                    ts_usec: frac,
                    caplen,
                    origlen: wire_len,
                    data: frame,
                }
                .to_vec_raw()
            }
            WriterKind::PcapNg => EnhancedPacketBlock {
                block_type: pcap_parser::EPB_MAGIC,
                block_len1: 0,
                if_id: 0,
                ts_high: (ts.0 >> 32) as u32,
                ts_low: ts.0 as u32,
                caplen,
                origlen: wire_len,
                data: frame,
                options: Vec::new(),
                block_len2: 0,
            }
            .to_vec(),
        }
        .map_err(gen_err)?;
        self.out.write_all(&bytes)?;
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W, IoError> {
        self.out.flush()?;
        Ok(self.out)
    }
}
