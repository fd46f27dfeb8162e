//! A user crate with its own protocol: `statsd.aag`, compiled by `build.rs`
//! with `aa_dsl::compile`, included here.
//!
//! A sample rate (`|@0.1`) is not modelled: the grammar ends `kind` at `|` or a
//! line end and would read the rate as the next metric's name.

/// The generated StatsD parser and record views.
pub mod statsd {
    include!(concat!(env!("OUT_DIR"), "/statsd.rs"));
}
