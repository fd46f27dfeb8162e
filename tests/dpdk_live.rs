//! `aa inspect --eal` on live traffic between real programs: DPDK's
//! `net_af_packet` device on the server's end of a veth pair, while curl
//! fetches files from Python's `http.server`.
//!
//! Two network namespaces of the test's own (`aa-live-s-PID`, the server at
//! 198.51.100.2, and `aa-live-c-PID`, the client at 198.51.100.1) joined by
//! a veth pair, TSO/GSO/GRO off so frames are at most the MTU as on a wire;
//! `aa inspect` runs inside the server's namespace, reading the server's
//! veth end through `net_af_packet` (which sees both directions). The
//! namespaces are deleted at the end, on failure too.
//!
//! Needs root, `ip` and `ethtool`, python3 and curl. Without them the test
//! prints "skipped: ..." and passes, unless `AA_REQUIRE_NET=1`: then it fails.
#![cfg(feature = "dpdk")]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const SERVER: &str = "198.51.100.2";
const CLIENT: &str = "198.51.100.1";
const PORT: u16 = 8080;

macro_rules! skip {
    ($($why:tt)*) => {{
        let why = format!($($why)*);
        if std::env::var("AA_REQUIRE_NET").is_ok_and(|v| v == "1") {
            panic!("AA_REQUIRE_NET=1 and the network test cannot run: {why}");
        }
        eprintln!("skipped: {why} (set AA_REQUIRE_NET=1 to make this a failure)");
        return;
    }};
}

/// Runs `argv`; its stderr on failure.
fn run(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The two namespaces, deleted on drop (their veth ends go with them).
struct Net {
    server: String,
    client: String,
}

impl Net {
    fn new() -> Result<Net, String> {
        let pid = std::process::id();
        let net = Net {
            server: format!("aa-live-s-{pid}"),
            client: format!("aa-live-c-{pid}"),
        };
        run(&["ip", "netns", "add", &net.server])?;
        run(&["ip", "netns", "add", &net.client])?;
        let (s_if, c_if) = (format!("aals{pid}"), format!("aalc{pid}"));
        let (s_if, c_if) = (&s_if[..s_if.len().min(15)], &c_if[..c_if.len().min(15)]);
        run(&[
            "ip",
            "link",
            "add",
            s_if,
            "netns",
            &net.server,
            "type",
            "veth",
            "peer",
            "name",
            c_if,
            "netns",
            &net.client,
        ])?;
        for (ns, dev, addr) in [(&net.server, s_if, SERVER), (&net.client, c_if, CLIENT)] {
            let exec = |argv: &[&str]| {
                let mut all = vec!["ip", "netns", "exec", ns];
                all.extend_from_slice(argv);
                run(&all)
            };
            // No IPv6: no neighbour discovery or other traffic of the kernel's own.
            exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            exec(&["ip", "link", "set", dev, "up"])?;
            exec(&["ip", "link", "set", "lo", "up"])?;
            exec(&[
                "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
            ])?;
        }
        Ok(net)
    }

    fn cmd(ns: &str, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(argv);
        c
    }

    fn server_if(&self) -> String {
        let s = format!("aals{}", std::process::id());
        s[..s.len().min(15)].to_string()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.server]);
        let _ = run(&["ip", "netns", "del", &self.client]);
    }
}

/// A child killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` deterministic bytes.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

fn missing_tool() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in ["ip", "ethtool", "python3", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Fetches `paths` with one curl in the client's namespace; each path's
/// status and downloaded size.
fn curl(net: &Net, paths: &[&str]) -> Vec<(u16, u64)> {
    let mut argv = vec![
        "curl",
        "-s",
        "--max-time",
        "20",
        "-w",
        "%{http_code} %{size_download}\\n",
    ];
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("http://{SERVER}:{PORT}{p}"))
        .collect();
    for u in &urls {
        argv.extend(["-o", "/dev/null", u]);
    }
    let out = Net::cmd(&net.client, &argv).output().expect("run curl");
    assert!(out.status.success(), "curl: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v = l.split_whitespace().map(|x| x.parse::<u64>().unwrap());
            (v.next().unwrap() as u16, v.next().unwrap())
        })
        .collect()
}

#[test]
fn live_http_between_curl_and_python_through_af_packet() {
    if let Some(why) = missing_tool() {
        skip!("{why}");
    }
    let net = match Net::new() {
        Ok(n) => n,
        Err(e) => skip!("cannot make the namespaces: {e}"),
    };
    let dir = TempDir(std::env::temp_dir().join(format!("aa-live-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let files: Vec<(String, Vec<u8>)> =
        [("probe.txt", 5), ("big.bin", 300_000), ("small.txt", 700)]
            .iter()
            .enumerate()
            .map(|(i, &(name, len))| {
                let data = content(len, i as u64 + 1);
                std::fs::write(dir.0.join(name), &data).unwrap();
                (name.to_string(), data)
            })
            .collect();

    let _server = Reaped(
        Net::cmd(
            &net.server,
            &[
                "python3",
                "-m",
                "http.server",
                &PORT.to_string(),
                "--bind",
                SERVER,
                "--directory",
                dir.0.to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3"),
    );

    let eal = format!(
        "--no-huge --no-pci -m 256 --no-shconf --no-telemetry --vdev=net_af_packet0,iface={}",
        net.server_if()
    );
    let mut aa = Reaped(
        Net::cmd(
            &net.server,
            &[env!("CARGO_BIN_EXE_aa"), "inspect", "--eal", &eal],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aa"),
    );
    // Lines as aa writes them (it flushes whenever a receive finds nothing).
    let (tx, lines) = mpsc::channel::<Value>();
    let stdout = aa.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();

    // aa is live once a probe request shows up in its output (the server
    // may take a moment to listen, and EAL to start).
    let deadline = Instant::now() + Duration::from_secs(30);
    'probe: loop {
        assert!(Instant::now() < deadline, "aa never saw a probe request");
        let _ = Net::cmd(
            &net.client,
            &[
                "curl",
                "-s",
                "--max-time",
                "2",
                "-o",
                "/dev/null",
                &format!("http://{SERVER}:{PORT}/probe.txt"),
            ],
        )
        .output();
        while let Ok(v) = lines.recv_timeout(Duration::from_millis(300)) {
            let probe = v["record"] == "request" && v["fields"]["target"]["text"] == "/probe.txt";
            seen.push(v);
            if probe {
                break 'probe;
            }
        }
    }

    // The real fetches: each a connection of its own (the server speaks
    // HTTP/1.0).
    let paths = ["/big.bin", "/small.txt", "/missing.txt"];
    let got = curl(&net, &paths);
    let len = |i: usize| files[i].1.len() as u64;
    assert_eq!(
        got,
        [(200, len(1)), (200, len(2)), (404, got[2].1)],
        "what curl got"
    );

    // Wait until aa has reported the three exchanges, then stop it.
    let flows_of = |seen: &[Value]| -> Vec<String> {
        let mut f: Vec<String> = seen
            .iter()
            .filter(|v| {
                v["record"] == "request"
                    && paths.contains(&v["fields"]["target"]["text"].as_str().unwrap_or(""))
            })
            .map(|v| v["flow"].as_str().unwrap().to_string())
            .collect();
        f.dedup();
        f
    };
    let body_of = |seen: &[Value], client_flow: &str| -> (Option<String>, u64) {
        // The server's direction: the client flow's ends swapped.
        let (c, s) = client_flow.split_once('>').unwrap();
        let back = format!("{s}>{c}");
        let mut status = None;
        let mut body = 0;
        for v in seen.iter().filter(|v| v["flow"] == back.as_str()) {
            match v["record"].as_str() {
                Some("response") => {
                    status = v["fields"]["status"]["text"].as_str().map(String::from)
                }
                Some("body") => body += v["fields"]["data"]["len"].as_u64().unwrap(),
                _ => {}
            }
        }
        (status, body)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while let Ok(v) = lines.try_recv() {
            seen.push(v);
        }
        let flows = flows_of(&seen);
        let done = flows.len() == 3
            && flows
                .iter()
                .zip(&got)
                .all(|(f, &(_, size))| body_of(&seen, f).1 == size);
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "aa did not report the three exchanges: {flows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGINT: aa ends its connections and prints its summary.
    // SAFETY: a child of ours that has not been reaped.
    unsafe { libc::kill(aa.0.id() as i32, libc::SIGINT) };
    let mut stderr = String::new();
    aa.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = aa.0.wait().expect("wait for aa");
    reader.join().unwrap();
    while let Ok(v) = lines.try_recv() {
        seen.push(v);
    }
    assert!(status.success(), "aa: {status}\n{stderr}");

    // Each exchange: the request's target, the response's status, and the
    // body bytes equal what curl got.
    let flows = flows_of(&seen);
    for ((flow, path), &(code, size)) in flows.iter().zip(paths).zip(&got) {
        let req = seen
            .iter()
            .find(|v| v["flow"] == flow.as_str() && v["record"] == "request")
            .unwrap();
        assert_eq!(req["fields"]["method"]["text"], "GET");
        assert_eq!(req["fields"]["target"]["text"], path);
        let (status, body) = body_of(&seen, flow);
        assert_eq!(status, Some(code.to_string()), "{path}");
        assert_eq!(body, size, "{path}: body bytes");
    }
    let none = |event: &str| !seen.iter().any(|v| v["event"] == event);
    assert!(none("gap") && none("error"), "no gap, no error");
    assert!(
        stderr.contains("net_af_packet0 (DPDK port"),
        "the summary names the port:\n{stderr}"
    );
    assert!(
        !stderr.contains("not returned to the pool"),
        "every mbuf back:\n{stderr}"
    );
    drop(net);
}
