//! The network-namespace harness of the TAP tests: a namespace of its own
//! per test, a TAP device opened from the test process and moved into it,
//! the kernel's side given 198.51.100.1/24 there and brought up; guards that
//! delete everything at the end, on failure too; a thread moved into a
//! namespace until dropped ([`InNetns`]); and the loud skip (a failure when
//! `AA_REQUIRE_NET=1`).
//!
//! Not every test uses every item; `stack/benches/tap.rs` includes it too.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use aa_runtime::PacketPool;
use aa_stack::io::tap::TapIo;
use aa_stack::link::MacAddr;
use aa_stack::IoError;

/// The kernel's side of the TAP, in the namespace.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Our side, played by the test process.
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const OUR_MAC: MacAddr = MacAddr([0x02, 0xaa, 0x00, 0x00, 0x00, 0x02]);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number for the next namespace and device of this process.
pub fn next_n() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn require_net() -> bool {
    std::env::var("AA_REQUIRE_NET").is_ok_and(|v| v == "1")
}

/// Skips the test loudly, or fails it when `AA_REQUIRE_NET=1`.
macro_rules! skip {
    ($($arg:tt)*) => {{
        let why = format!($($arg)*);
        if $crate::common::netns::require_net() {
            panic!("AA_REQUIRE_NET=1 and the network test cannot run: {why}");
        }
        $crate::common::netns::loud(&format!(
            "skipped: {why} (set AA_REQUIRE_NET=1 to make this a failure)"
        ));
        return;
    }};
}
pub(crate) use skip;

/// Writes to the real stderr, past the test harness's capture, so that a
/// skip shows in a normal `cargo test` run.
pub fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {msg} ***\n");
}

pub fn on_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Why this machine cannot run the tests, if it cannot: root,
/// `/dev/net/tun`, `ip` (iproute2) and every one of `progs` are needed.
pub fn missing_prerequisite(progs: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (needs to create network namespaces and TAP devices)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    if on_path("ip").is_none() {
        return Some("no `ip` command (iproute2)".into());
    }
    for p in progs {
        if on_path(p).is_none() {
            return Some(format!("no `{p}` command"));
        }
    }
    None
}

/// Runs `cmd` to the end; `Err` with its output unless it succeeded.
pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates the namespace `PREFIX-<pid>-<n>`.
    pub fn create(prefix: &str, n: u32) -> Result<Netns, String> {
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        Ok(Netns { name })
    }

    /// `ip netns exec NAME args...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` in the namespace; panics unless it succeeds; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = run(&mut self.cmd(args)).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// This thread in another network namespace until dropped; then back in the
/// one it was in.
pub struct InNetns {
    home: OwnedFd,
}

impl InNetns {
    pub fn enter(ns: &Netns) -> Result<InNetns, String> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))?;
        let target = File::open(format!("/run/netns/{}", ns.name))
            .map_err(|e| format!("open /run/netns/{}: {e}", ns.name))?;
        // SAFETY: a valid namespace fd; setns changes this thread only.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        Ok(InNetns { home: home.into() })
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: the fd of the namespace this thread came from.
        if unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "warning: could not go back to the first network namespace: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// A file removed on drop.
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process killed and reaped on drop.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A namespace with a TAP device in it, the kernel's side configured and
/// up, our side opened in this process. Fields drop in order: the device
/// closes before the namespace goes.
pub struct TapNet {
    pub tap: TapIo,
    pub dev: String,
    pub ns: Netns,
}

/// How a [`TapNet`]'s device is opened: [`TapIo::open`] or one of its
/// offloading kinds.
pub type OpenTap = fn(&str, PacketPool) -> Result<TapIo, IoError>;

/// Sets up a [`TapNet`]: the namespace `NS_PREFIX-<pid>-<n>`, the device
/// `DEV_PREFIX<pid>n<n>` opened by `open` ([`TapIo::open`], or one of its
/// offloading kinds) receiving into `pool`, 198.51.100.1/24 on the kernel's
/// side. `check` runs on the device before it moves. `Err` is a reason to
/// skip: a missing prerequisite (see [`missing_prerequisite`]), no
/// namespace, or no TAP device.
pub fn tap_net(
    ns_prefix: &str,
    dev_prefix: &str,
    pool: &PacketPool,
    progs: &[&str],
    open: OpenTap,
    check: impl FnOnce(&TapIo, &str),
) -> Result<TapNet, String> {
    if let Some(why) = missing_prerequisite(progs) {
        return Err(why);
    }
    let n = next_n();
    let ns = Netns::create(ns_prefix, n)
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let dev = format!("{dev_prefix}{}n{n}", std::process::id());
    let tap = match open(&dev, pool.clone()) {
        Ok(t) => t,
        Err(IoError::Os(e))
            if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) =>
        {
            return Err(format!("cannot open a TAP device: {e}"));
        }
        Err(e) => panic!("TapIo::open({dev}): {e}"),
    };
    check(&tap, &dev);
    // Into the namespace; only there does it get an address and come up.
    run(Command::new("ip").args(["link", "set", &dev, "netns", &ns.name]))
        .unwrap_or_else(|e| panic!("{e}"));
    ns.run(&["ip", "addr", "add", "198.51.100.1/24", "dev", &dev]);
    ns.run(&["ip", "link", "set", &dev, "up"]);
    Ok(TapNet { tap, dev, ns })
}

/// Spawns `cmd`, a server that prints one line (its port, say) when it is
/// ready, stdout piped and stderr inherited, and reads that line.
pub fn spawn_server(cmd: &mut Command) -> (Reaped, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut child = Reaped(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the server's first line");
    (child, line)
}
