//! Writes the synthetic captures of `aa_stack::synth::standard_captures`
//! (HTTP keep-alive, chunked, pipelined, CSV, impaired variants, IPv6) into a
//! directory, by default the workspace's `data/captures`.
//!
//! Regenerate the committed files with
//!
//! ```sh
//! cargo run -p aa-stack --example gen_captures            # data/captures
//! cargo run -p aa-stack --example gen_captures -- OUT_DIR
//! ```
//!
//! The output depends only on the generator's code and seeds: the test
//! `stack/tests/synth.rs` fails when a committed file differs from it.

use std::error::Error;
use std::fs;
use std::path::PathBuf;

use aa_stack::synth::standard_captures;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/captures"),
        PathBuf::from,
    );
    fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let mut total = 0;
    for named in standard_captures() {
        let bytes = named.encode()?;
        let path = dir.join(named.name);
        fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "{:>8} bytes {:>4} frames  {}",
            bytes.len(),
            named.capture.frames.len(),
            path.display()
        );
        total += bytes.len();
    }
    println!("{total:>8} bytes in all");
    Ok(())
}
