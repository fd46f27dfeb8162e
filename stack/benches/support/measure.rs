//! Timing helpers of the benches' one-line summaries (included with
//! `#[path = "support/measure.rs"] mod measure;`).

use std::time::Instant;

/// Median seconds per pass of `f` over `n` passes.
pub fn median_secs(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[n / 2]
}

/// Whether criterion measures for real (not `--test`, `--list` or
/// `--profile-time`): only then is a summary worth its extra passes.
pub fn measuring() -> bool {
    !std::env::args().any(|a| a == "--test" || a == "--list" || a == "--profile-time")
}
