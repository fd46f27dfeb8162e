//! The `aa` command line.
//!
//! `aa inspect CAPTURE` prints the records of every TCP connection in a pcap or
//! pcapng file as JSON lines (`aa inspect --eal ARGS`, built with the feature
//! `dpdk`: live from a DPDK port); `aa check FILE.aag...` checks grammars and prints
//! rustc-style diagnostics; `aa gen FILE.aag` prints the Rust code generated
//! from a grammar; `aa parse FILE --grammar G.aag` prints the records of a
//! file of plain bytes.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "aa", version, about = "Application-aware, zero-copy TCP")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the records of every TCP connection in a capture, or live from a
    /// DPDK port (--eal; on N threads with --workers N), one JSON object per
    /// line; a summary goes to stderr.
    ///
    /// Exit status: 0 when the whole capture was read (live: when stopped by
    /// Ctrl-C, --packets or --idle), 1 when it could not be opened (missing,
    /// not a capture, unsupported link type; live: DPDK or the port would not
    /// start) or output failed, 3 when it ends inside a record or is corrupt
    /// (what came before is reported).
    Inspect(InspectArgs),
    /// Check `.aag` grammars; print every error, exit 1 if there is one.
    Check {
        /// Grammar files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the Rust parser generated from a `.aag` grammar.
    Gen {
        /// Grammar file.
        file: PathBuf,
    },
    /// Print the records of a protocol in a file of plain bytes (one
    /// direction of a stream, no capture around it), one JSON object per
    /// line, as aa inspect prints them; a summary goes to stderr. For trying
    /// a grammar on sample data.
    ///
    /// The bytes are cut into packets of --segment bytes and parsed as they
    /// arrive, as a connection's would be; after an error, parsing starts
    /// again at the grammar's sync pattern. Exit status: 0 when every byte
    /// was parsed into records, 1 when the input or the grammar could not be
    /// read (diagnostics for a grammar) or output failed, 3 after a parse
    /// error, a stream that ends inside a record, or a record larger than
    /// --buffer (what came before is printed).
    Parse(ParseArgs),
}

#[derive(clap::Args)]
struct ParseArgs {
    /// The bytes to parse; - for standard input.
    input: PathBuf,
    /// Parse with this grammar, loaded at run time and run by the
    /// interpreter.
    #[arg(long, value_name = "FILE.aag", required_unless_present = "protocol")]
    grammar: Option<PathBuf>,
    /// Parse as this compiled protocol: http_request, http_response, csv,
    /// tls, tls_handshake, resp, mqtt.
    #[arg(long, conflicts_with = "grammar")]
    protocol: Option<String>,
    /// Bytes per packet (1: every delimiter straddles two packets).
    #[arg(long, default_value_t = 1448, value_parser = clap::value_parser!(u32).range(1..=65535))]
    segment: u32,
    /// The stream's receive buffer in bytes: the most the records in
    /// progress may hold.
    #[arg(long, default_value_t = 256 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    buffer: u32,
    /// Most bytes of each field's text printed (`len` is always the full
    /// length).
    #[arg(long, default_value_t = 256)]
    max_text: usize,
    /// Print only the summary.
    #[arg(long)]
    stats: bool,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The capture file (pcap or pcapng; Ethernet, raw IP, Linux cooked).
    #[arg(required_unless_present = "eal", conflicts_with = "eal")]
    capture: Option<PathBuf>,
    /// Inspect live traffic from a DPDK port instead of a file: start DPDK
    /// with these EAL arguments, separated by spaces, as in
    /// --eal "-l 0 --vdev=net_pcap0,iface=eth0" (needs aa built with
    /// --features dpdk). Runs until Ctrl-C, --packets or --idle.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    eal: Option<String>,
    /// With --eal: the DPDK port to read (as net_pcap0); default: the first.
    #[arg(
        long,
        value_name = "NAME",
        requires = "eal",
        conflicts_with = "capture"
    )]
    dpdk_port: Option<String>,
    /// With --eal: stop after this many packets.
    #[arg(long, value_name = "N", requires = "eal", conflicts_with = "capture")]
    packets: Option<u64>,
    /// With --eal: stop after this many seconds without a packet.
    #[arg(
        long,
        value_name = "SECS",
        requires = "eal",
        conflicts_with = "capture",
        value_parser = parse_secs
    )]
    idle: Option<std::time::Duration>,
    /// With --eal: decode, reassemble and parse on N threads, each with its
    /// own connections, pinned to the CPUs aa may run on, in turn. A device
    /// with receive-side scaling that takes a symmetric key gets N receive
    /// queues, one per thread; any other (net_pcap, net_ring, net_tap) one
    /// queue, whose thread hands each frame to the thread of its connection
    /// and drops (and counts) frames for a thread whose queue is full. The
    /// summary says which, and what each thread decoded. Lines of one
    /// connection keep their order; lines of different connections may
    /// interleave. Default: 1, the receiving thread.
    #[arg(
        long,
        value_name = "N",
        requires = "eal",
        conflicts_with = "capture",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    workers: Option<u16>,
    /// Parse every connection as this compiled protocol: http (requests one
    /// way, responses the other), http_request, http_response, csv, tls,
    /// tls_handshake, resp, mqtt. Without it (and without --grammar), ports 80
    /// and 8080 are HTTP, 443 TLS handshakes, 1883 MQTT and 6379 Redis (resp).
    #[arg(long, conflicts_with = "grammar")]
    protocol: Option<String>,
    /// Parse every connection with this grammar, loaded at run time and run by
    /// the interpreter. Repeatable: with several, --port says which port
    /// speaks which (a client's grammar and a server's: --port
    /// P=CLIENT/SERVER), and other ports keep the defaults.
    #[arg(long, value_name = "FILE.aag")]
    grammar: Vec<PathBuf>,
    /// Parse connections to server port P as NAME (http, a compiled
    /// protocol, or the name of a --grammar's protocol), or as CLIENT/SERVER:
    /// the client's bytes as protocol CLIENT, the server's as SERVER (as
    /// http_request/http_response); repeatable.
    #[arg(long = "port", value_name = "P=NAME", value_parser = parse_port)]
    ports: Vec<(u16, String)>,
    /// Most bytes of each field's text printed (`len` is always the full
    /// length).
    #[arg(long, default_value_t = 256)]
    max_text: usize,
    /// Print only the summary.
    #[arg(long)]
    stats: bool,
    /// TCP checksum validation: auto notices captures taken with checksum
    /// offload and stops dropping for it.
    #[arg(long, value_enum, default_value_t = Checksums::Auto)]
    checksums: Checksums,
    /// Do not pick up connections whose handshake is not in the capture.
    #[arg(long)]
    no_midstream: bool,
    /// Packet buffers in the pool (64 KiB each, touched only when used; with
    /// --eal, mbufs of 2 KiB, which must outnumber the port's receive ring;
    /// with --workers N, N times this many, plus 1024 per thread for the
    /// queues of software spreading).
    #[arg(long, default_value_t = 4096)]
    pool: u32,
    /// Most connections tracked at once; new ones beyond are refused and
    /// counted.
    #[arg(long, default_value_t = 1 << 20)]
    max_flows: usize,
    /// Seconds without a segment after which a connection is ended.
    #[arg(long, default_value_t = 120)]
    idle_timeout: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Checksums {
    On,
    Off,
    Auto,
}

fn parse_port(s: &str) -> Result<(u16, String), String> {
    let (p, name) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected PORT=NAME, as in 9000=csv"))?;
    let port = p
        .parse()
        .map_err(|_| format!("`{p}`: not a port number (0-65535)"))?;
    if name.is_empty() {
        return Err(format!("`{s}`: no protocol name after `=`"));
    }
    Ok((port, name.to_string()))
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{s}`: not a number of seconds"))
}

fn inspect(a: InspectArgs) -> ExitCode {
    use aa::inspect::{PortMap, Protocol, Service};
    use std::io::IsTerminal;
    #[cfg(not(feature = "dpdk"))]
    if a.eal.is_some() {
        eprintln!(
            "aa inspect: --eal: this aa was built without DPDK; rebuild with --features dpdk"
        );
        return ExitCode::FAILURE;
    }
    let mut loaded: Vec<Protocol> = Vec::new();
    for path in &a.grammar {
        match Protocol::load(path) {
            Ok(p) if loaded.iter().any(|q| q.name() == p.name()) => {
                eprintln!(
                    "aa inspect: {}: protocol `{}` is already given by another --grammar",
                    path.display(),
                    p.name()
                );
                return ExitCode::FAILURE;
            }
            Ok(p) => loaded.push(p),
            Err(rendered) => {
                eprint!("{rendered}");
                return ExitCode::FAILURE;
            }
        }
    }
    let unknown = |name: &str| {
        let mine: String = loaded
            .iter()
            .map(|p| format!(", {} (--grammar)", p.name()))
            .collect();
        eprintln!(
            "aa inspect: unknown protocol `{name}`; known: http, {}{mine}",
            compiled_names()
        );
        ExitCode::FAILURE
    };
    let mut ports = match (&a.protocol, loaded.as_slice()) {
        (Some(name), _) => match Service::by_name(name, &[]) {
            Ok(s) => PortMap::all(s),
            Err(what) => return unknown(&what),
        },
        (None, [p]) => PortMap::all(Service::both(p.clone())),
        (None, []) => PortMap::well_known(),
        (None, several) => {
            if a.ports.is_empty() {
                let names: Vec<&str> = several.iter().map(|p| p.name()).collect();
                eprintln!(
                    "aa inspect: {} grammars ({}): say which port speaks which with \
                     --port P=NAME or --port P=CLIENT/SERVER",
                    several.len(),
                    names.join(", ")
                );
                return ExitCode::FAILURE;
            }
            PortMap::well_known()
        }
    };
    for (port, name) in &a.ports {
        match Service::by_name(name, &loaded) {
            Ok(s) => ports.set(*port, s),
            Err(what) => return unknown(&what),
        }
    }
    let opts = aa::inspect::Options {
        ports,
        max_text: a.max_text,
        stats_only: a.stats,
        checksums: match a.checksums {
            Checksums::On => aa::stack::ChecksumMode::On,
            Checksums::Off => aa::stack::ChecksumMode::Off,
            Checksums::Auto => aa::stack::ChecksumMode::Auto,
        },
        midstream: !a.no_midstream,
        pool: a.pool,
        flows: aa::stack::flow::FlowConfig {
            max_flows: a.max_flows,
            idle_timeout: std::time::Duration::from_secs(a.idle_timeout),
        },
        progress: std::io::stderr().is_terminal(),
    };
    let result = match (&a.capture, &a.eal) {
        (Some(capture), _) => aa::inspect::run(capture, &opts, std::io::stdout().lock()),
        #[cfg(feature = "dpdk")]
        (None, Some(eal)) => {
            let live = aa::inspect::Live {
                eal: eal.clone(),
                port: a.dpdk_port.clone(),
                packets: a.packets,
                idle: a.idle,
                workers: a.workers.map_or(1, usize::from),
            };
            stop_on_signals();
            // Not locked: with --workers, several threads write (whole
            // lines, each under the lock of `run_dpdk`'s own).
            let result = aa::inspect::run_dpdk(&live, &opts, std::io::stdout(), &STOP);
            if let Some(eal) = aa::stack::dpdk::Eal::running() {
                // SAFETY: `run_dpdk` has dropped its port, pool and packets,
                // and nothing uses DPDK after this.
                if let Err(e) = unsafe { eal.cleanup() } {
                    eprintln!("aa inspect: {e}");
                }
            }
            result
        }
        // clap requires one of them; without DPDK, --eal was refused above.
        _ => {
            eprintln!("aa inspect: no capture given");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            if summary.truncated.is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        // A closed pipe (`aa inspect x.pcap | head`) is not an error.
        Err(aa::inspect::InspectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aa inspect: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Set by SIGINT and SIGTERM: a live run stops and prints its summary.
#[cfg(feature = "dpdk")]
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "dpdk")]
extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    // A second one ends the process as usual.
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

#[cfg(feature = "dpdk")]
fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic and calls signal().
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// The protocols compiled into aa, for error messages.
fn compiled_names() -> String {
    let names: Vec<&str> = aa::grammars::SOURCES.iter().map(|(n, _)| *n).collect();
    names.join(", ")
}

fn parse(a: ParseArgs) -> ExitCode {
    use aa::inspect::Protocol;
    let protocol = match (&a.grammar, &a.protocol) {
        (Some(path), _) => match Protocol::load(path) {
            Ok(p) => p,
            Err(rendered) => {
                eprint!("{rendered}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(name)) => match Protocol::compiled(name) {
            Some(p) => p,
            None if name == "http" || name.contains('/') => {
                eprintln!(
                    "aa parse: `{name}` is a protocol per direction; aa parse reads one \
                     direction: give one protocol (such as http_request or http_response)"
                );
                return ExitCode::FAILURE;
            }
            None => {
                eprintln!(
                    "aa parse: unknown protocol `{name}`; known: {}",
                    compiled_names()
                );
                return ExitCode::FAILURE;
            }
        },
        // clap requires one of them.
        (None, None) => {
            eprintln!("aa parse: give --grammar FILE.aag or --protocol NAME");
            return ExitCode::FAILURE;
        }
    };
    let input = if a.input.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut v).map(|_| v)
    } else {
        std::fs::read(&a.input)
    };
    let input = match input {
        Ok(v) => v,
        Err(e) => {
            eprintln!("aa parse: {}: {e}", a.input.display());
            return ExitCode::FAILURE;
        }
    };
    let opts = aa::parse::ParseOptions {
        segment: a.segment as usize,
        max_text: a.max_text,
        stats_only: a.stats,
        buffer: a.buffer,
    };
    match aa::parse::run(&protocol, &input, &opts, std::io::stdout().lock()) {
        Ok(summary) => {
            eprintln!("{summary}");
            if summary.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        // A closed pipe (`aa parse x | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aa parse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Inspect(a) => inspect(a),
        Cmd::Parse(a) => parse(a),
        Cmd::Gen { file } => match aa::dsl::load(&file) {
            Ok(p) => {
                // A closed pipe (`aa gen x.aag | head`) is not an error.
                let _ = std::io::stdout().write_all(aa::dsl::codegen::generate(&p).as_bytes());
                ExitCode::SUCCESS
            }
            Err(rendered) => {
                eprint!("{rendered}");
                ExitCode::FAILURE
            }
        },
        Cmd::Check { files } => {
            let mut ok = true;
            for f in &files {
                match aa::dsl::load(f) {
                    Ok(p) => {
                        let names: Vec<&str> = p.records.iter().map(|r| r.name.as_str()).collect();
                        let _ = writeln!(
                            std::io::stdout(),
                            "{}: ok: protocol `{}`, {} record type{} ({})",
                            f.display(),
                            p.name,
                            names.len(),
                            if names.len() == 1 { "" } else { "s" },
                            names.join(", ")
                        );
                    }
                    Err(rendered) => {
                        eprint!("{rendered}");
                        ok = false;
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
