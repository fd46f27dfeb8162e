//! This crate is empty: it is filled by a later issue (see the README, "Status").
//! Nothing here works yet, and nothing pretends to.
