//! Feeds a CSV file, cut into TCP-sized segments held in a packet pool, through
//! the application-aware stream, and prints the records and a summary.
//!
//! This is what the stack does with every in-order segment of a connection: the
//! parser runs on each segment as it arrives; the application reads finished
//! records whose fields point into the packet buffers, then frees them.
//!
//! ```text
//! cargo run --release --example csv_records -- data/trades.csv
//! cargo run --release --example csv_records -- --segment 7 --reorder --quiet data/trades.csv
//! ```

use aa::runtime::csv::{unquote, CsvConfig, CsvParser};
use aa::runtime::{AaConfig, AaState, AaStream, Packet, PacketPool, PoolPacket, StreamConfig};
use clap::Parser as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Parser)]
#[command(about = "Parse a CSV file into zero-copy records, segment by segment")]
struct Args {
    /// CSV file to read.
    file: std::path::PathBuf,
    /// Payload bytes per segment (1448 is a full Ethernet TCP segment).
    #[arg(long, default_value_t = 1448)]
    segment: usize,
    /// Deliver segments pairwise swapped, to exercise out-of-order reassembly.
    #[arg(long)]
    reorder: bool,
    /// Field delimiter.
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Print only the summary.
    #[arg(long)]
    quiet: bool,
    /// First sequence number (try 4294967000 to cross the wrap).
    #[arg(long, default_value_t = 1)]
    seq: u32,
}

/// Ethernet + IPv4 + TCP header bytes put in front of each payload, so payloads
/// sit inside frames as they would off the wire.
const HEADERS: usize = 54;

fn main() -> ExitCode {
    let args = Args::parse();
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    if args.segment == 0 || !args.delimiter.is_ascii() {
        eprintln!("error: --segment must be positive and --delimiter one ASCII character");
        return ExitCode::FAILURE;
    }
    let delimiter = args.delimiter as u8;

    let segments: Vec<(u32, &[u8])> = data
        .chunks(args.segment)
        .enumerate()
        .map(|(i, c)| (args.seq.wrapping_add((i * args.segment) as u32), c))
        .collect();
    let mut order: Vec<usize> = (0..segments.len()).collect();
    if args.reorder {
        order.chunks_mut(2).for_each(|p| p.reverse());
    }

    let pool = PacketPool::new(4096, HEADERS + args.segment);
    let cfg = AaConfig {
        stream: StreamConfig {
            recv_buffer: 1 << 20,
            ..StreamConfig::default()
        },
        ..AaConfig::default()
    };
    let parser = CsvParser::new(CsvConfig {
        delimiter,
        ..CsvConfig::default()
    });
    let mut stream: AaStream<PoolPacket, CsvParser> = AaStream::new(cfg, args.seq, parser);

    let start = Instant::now();
    let (mut rows, mut fields, mut spanning, mut max_fields) = (0u64, 0u64, 0u64, 0usize);
    let mut value = Vec::new();
    let mut frame = vec![0u8; HEADERS + args.segment];
    let mut deliver = |stream: &mut AaStream<PoolPacket, CsvParser>| {
        let n = stream.ready();
        for r in stream.read_aa_records(n) {
            rows += 1;
            fields += r.len() as u64;
            max_fields = max_fields.max(r.len());
            spanning += r.fields().filter(|f| f.packets() > 1).count() as u64;
            if !args.quiet {
                let vals: Vec<String> = r
                    .fields()
                    .map(|f| {
                        value.clear();
                        unquote(&f, b'"', &mut value);
                        format!("{:?}", String::from_utf8_lossy(&value))
                    })
                    .collect();
                // A closed pipe (`| head`) stops the printing, not the run.
                let _ = writeln!(
                    std::io::stdout(),
                    "{} @{}: [{}]",
                    r.name(),
                    r.span().start,
                    vals.join(", ")
                );
            }
        }
        stream.free_aa_records(n);
    };
    for &i in &order {
        let (seq, payload) = segments[i];
        frame[HEADERS..HEADERS + payload.len()].copy_from_slice(payload);
        let pkt = match pool.packet_from(&frame[..HEADERS + payload.len()]) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let len = pkt.data().len();
        stream.insert(seq, pkt, HEADERS..len);
        deliver(&mut stream);
    }
    stream.finish();
    deliver(&mut stream);
    let elapsed = start.elapsed();

    let zs = stream.stream().stats();
    let _ = writeln!(
        std::io::stdout(),
        "summary: bytes={} segments={} rows={rows} fields={fields} max_fields_per_row={max_fields} \
         fields_spanning_packets={spanning} out_of_order={} seconds={:.6}",
        data.len(),
        segments.len(),
        zs.out_of_order,
        elapsed.as_secs_f64()
    );
    let failed = stream.state() == AaState::Failed;
    if let Some(e) = stream.error() {
        eprintln!("error: {}: {e}", args.file.display());
    }
    drop(stream);
    let _ = writeln!(
        std::io::stdout(),
        "pool: {}/{} buffers free after the last record was freed",
        pool.available(),
        pool.capacity()
    );
    if failed || !pool.is_full() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
