//! The runtime of aa: packet handles, the zero-copy TCP stream, and the
//! application-aware stream of records whose fields point into packet buffers.
//!
//! Data path: a backend hands over [`Packet`]s; [`ZcStream::insert`] keeps their
//! payloads in order without copying (thesis 3.1); [`AaStream`] runs a
//! [`Parser`] on every in-order fragment and queues records of [`Field`]s
//! (thesis 4.2); the application reads them with [`AaStream::read_aa_records`] and
//! frees them with [`AaStream::free_aa_records`], which gives each packet back to
//! its pool once no record needs it.
#![deny(missing_docs)]

pub mod aa;
pub mod csv;
pub mod field;
pub mod packet;
pub mod parser;
pub mod raw;
pub mod scan;
pub mod seq;
pub mod signal;
pub mod stream;

pub use aa::{
    AaConfig, AaState, AaStats, AaStream, Buffers, Emitter, Parked, Record, RecordId, Records,
    StreamError, MAX_PENDING_ERRORS,
};
pub use field::{Field, IntError};
pub use packet::{prefetch, Packet, PacketPool, PoolError, PoolPacket};
pub use parser::{Chunk, Either, ErrorKind, Limits, ParseError, Parser, Schema, Step};
pub use seq::SeqNum;
pub use signal::Signals;
pub use stream::{Fragment, Insert, StreamConfig, StreamStats, ZcStream};
