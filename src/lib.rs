//! aa: application-aware, zero-copy TCP.
//!
//! Describe the records of a protocol once; aa parses every in-order TCP segment
//! as it arrives and hands the application finished records whose fields point
//! into the packet buffers. This façade re-exports the crates of the workspace:
//! the runtime ([`runtime`]: packet pools, the zero-copy stream, the
//! application-aware record stream, the hand-written CSV parser), the `.aag`
//! language ([`dsl`]: checks, IR, interpreter), the shipped grammars
//! ([`grammars`]) and the stack ([`stack`]: wire formats, capture files, flow
//! table, passive reassembly). [`inspect`] is `aa inspect` as a library,
//! [`parse`] `aa parse`.
#![deny(missing_docs)]

pub mod inspect;
pub mod parse;

pub use aa_dsl as dsl;
pub use aa_grammars as grammars;
pub use aa_runtime as runtime;
pub use aa_runtime::{
    AaConfig, AaStream, Field, Packet, PacketPool, Parser, Record, StreamConfig, ZcStream,
};
pub use aa_stack as stack;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
