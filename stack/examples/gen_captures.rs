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
//! `--large FILE` writes instead one large capture, not committed, for timing
//! `aa inspect` against other tools (`scripts/inspect-vs-tshark.sh`): 64
//! interleaved HTTP/1.1 keep-alive connections of 200 messages each, bodies of
//! 0 to 4000 bytes (about 33 MB).
//!
//! The output depends only on the generator's code and seeds: the test
//! `stack/tests/synth.rs` fails when a committed file differs from it.

use std::error::Error;
use std::fs;
use std::path::PathBuf;

use aa_stack::io::Timestamp;
use aa_stack::synth::{http_keepalive, standard_captures, Capture, Conversation};

/// The `--large` capture.
fn large() -> Capture {
    let convs: Vec<Conversation> = (0..64u16)
        .map(|i| {
            let client = format!("198.51.100.{}:{}", 1 + i % 100, 41000 + i);
            let server = "198.51.100.200:80";
            Conversation::new(
                client.parse().expect("address"),
                server.parse().expect("address"),
                http_keepalive(200, 0..=4000, u64::from(i)),
                1000 + u64::from(i),
            )
        })
        .collect();
    Capture::interleave(Timestamp::new(1_700_000_000, 0), &convs)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--large") {
        let path = PathBuf::from(args.nth(1).ok_or("--large needs a file name")?);
        let capture = large();
        let bytes = capture.write_pcap(Vec::new())?;
        fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "{:>8} bytes {:>6} frames  {}",
            bytes.len(),
            capture.frames.len(),
            path.display()
        );
        return Ok(());
    }
    let dir = args.next().map_or_else(
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
