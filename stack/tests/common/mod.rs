//! Helpers shared by the integration tests (each includes this with
//! `mod common;`).

pub mod netns;
pub mod peers;

/// Every buffer of `pool` is back: no packet leaked and none freed twice.
#[track_caller]
#[allow(dead_code)] // not every test binary ends with a pool of its own
pub fn assert_pool_full(pool: &aa_runtime::PacketPool) {
    assert!(
        pool.is_full(),
        "{} of {} buffers free",
        pool.available(),
        pool.capacity()
    );
}
