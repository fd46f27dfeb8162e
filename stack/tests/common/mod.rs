//! Helpers shared by the integration tests (each includes this with
//! `mod common;`).

pub mod netns;
pub mod peers;
