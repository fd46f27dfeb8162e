//! EAL start-up and the errors of the DPDK backend.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::sync::OnceLock;

use dpdk_sys as sys;

/// Why a DPDK call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkError {
    /// `rte_eal_init` failed (its log, on stderr, says why).
    Eal {
        /// `rte_errno` after the call.
        errno: i32,
        /// `rte_strerror(rte_errno)`.
        message: String,
    },
    /// An argument for EAL holds a NUL byte.
    BadArgument(String),
    /// EAL arguments that cannot go together (checked before EAL starts,
    /// which would only say "invalid argument").
    Conflict(&'static str),
    /// A DPDK function returned an error.
    Call {
        /// The function.
        what: &'static str,
        /// What it returned (a negative errno), or `rte_errno` for functions
        /// that return a null pointer.
        code: i32,
        /// The error's text (`rte_strerror`).
        message: String,
    },
    /// No port of that name.
    NoSuchPort(String),
    /// [`Eal::find_port`] found no port of that name (`wanted`), or no port
    /// at all (`wanted` is `None`); `ports` are the names there are.
    PortNotFound {
        /// The name asked for.
        wanted: Option<String>,
        /// The ports there are, by name.
        ports: Vec<String>,
    },
    /// The pool has no free mbuf.
    PoolExhausted,
    /// The device has fewer queues than asked for (`rte_eth_dev_info_get`:
    /// `max_rx_queues`, `max_tx_queues`), or none were asked for.
    Queues {
        /// Queue pairs asked for.
        asked: u16,
        /// Most queue pairs the device has (the lower of its receive and
        /// transmit maximums).
        max: u16,
    },
    /// [`PortConfig::mtu`](super::PortConfig::mtu) outside the device's
    /// range (`rte_eth_dev_info`'s `min_mtu`, `max_mtu`).
    Mtu {
        /// The MTU asked for.
        asked: u16,
        /// The device's lowest.
        min: u16,
        /// The device's highest.
        max: u16,
    },
    /// A frame does not fit in one mbuf.
    TooLong {
        /// Length of the frame.
        len: usize,
        /// Room in one mbuf.
        room: usize,
    },
}

impl DpdkError {
    pub(super) fn call(what: &'static str, code: i32) -> DpdkError {
        DpdkError::Call {
            what,
            code,
            message: strerror(code.abs()),
        }
    }

    /// For functions that return a null pointer and set `rte_errno`.
    pub(super) fn errno(what: &'static str) -> DpdkError {
        DpdkError::call(what, errno())
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::Eal { errno, message } => {
                write!(f, "rte_eal_init failed: {message} (rte_errno {errno})")
            }
            DpdkError::BadArgument(a) => write!(f, "EAL argument holds a NUL byte: {a:?}"),
            DpdkError::Conflict(why) => write!(f, "EAL arguments: {why}"),
            DpdkError::Call {
                what,
                code,
                message,
            } => write!(f, "{what} failed: {message} ({code})"),
            DpdkError::NoSuchPort(name) => write!(f, "no DPDK port named {name:?}"),
            DpdkError::PortNotFound { wanted: None, .. } => write!(
                f,
                "no port (give EAL one with --vdev=... or a device bound to DPDK)"
            ),
            DpdkError::PortNotFound {
                wanted: Some(name),
                ports,
            } => write!(
                f,
                "no port named {name:?}; ports: {}",
                if ports.is_empty() {
                    "none".to_string()
                } else {
                    ports.join(", ")
                }
            ),
            DpdkError::PoolExhausted => write!(f, "mbuf pool exhausted"),
            DpdkError::Queues { asked, max } => write!(
                f,
                "{asked} queue pairs asked for, the device has 1 to {max}"
            ),
            DpdkError::Mtu { asked, min, max } => write!(
                f,
                "MTU {asked} is outside the device's range, {min} to {max}"
            ),
            DpdkError::TooLong { len, room } => {
                write!(
                    f,
                    "frame of {len} bytes does not fit in one mbuf ({room} bytes)"
                )
            }
        }
    }
}

impl std::error::Error for DpdkError {}

/// `rte_errno` of this thread.
pub(super) fn errno() -> i32 {
    // SAFETY: reads a thread-local int.
    unsafe { sys::aa_rte_errno() }
}

/// `rte_strerror(code)`.
pub(super) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a NUL-terminated string (static or per-lcore).
    unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// The running EAL. Proof that [`Eal::init`] succeeded, needed to create pools
/// and ports.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

static EAL: OnceLock<Result<Eal, DpdkError>> = OnceLock::new();

impl Eal {
    /// Starts EAL with `args` (`args[0]` is the program name), the first time
    /// it is called in the process; later calls return the outcome of the
    /// first one and ignore their arguments (DPDK can start EAL only once,
    /// and not again after a failure either).
    ///
    /// For tests without a NIC or hugepages:
    /// `["aa", "--no-huge", "--no-pci", "-m", "256", "--vdev=net_ring0"]`.
    ///
    /// `--in-memory` together with `--no-huge` is refused up front (DPDK
    /// refuses it too, with a less helpful message), without using up the
    /// process's one start.
    pub fn init(args: &[&str]) -> Result<&'static Eal, DpdkError> {
        if EAL.get().is_none() {
            check_args(args)?;
        }
        EAL.get_or_init(|| Eal::start(args))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// [`Eal::init`] with the arguments of one line, split at whitespace, after
    /// the program name `program` (`--no-huge --vdev=net_ring0`, as given to
    /// a command's `--eal`).
    pub fn init_line(program: &str, line: &str) -> Result<&'static Eal, DpdkError> {
        let args: Vec<&str> = std::iter::once(program)
            .chain(line.split_whitespace())
            .collect();
        Eal::init(&args)
    }

    fn start(args: &[&str]) -> Result<Eal, DpdkError> {
        let owned = args
            .iter()
            .map(|a| CString::new(*a).map_err(|_| DpdkError::BadArgument((*a).to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        // EAL may keep pointers into argv (and permutes it): leak both, once.
        let argv: &mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = (argv.len() - 1) as i32;
        // SAFETY: argc NUL-terminated strings followed by a null pointer, all
        // leaked, so valid for the life of the process.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let e = errno();
            return Err(DpdkError::Eal {
                errno: e,
                message: strerror(e),
            });
        }
        Ok(Eal { _private: () })
    }

    /// EAL, if [`Eal::init`] started it in this process.
    pub fn running() -> Option<&'static Eal> {
        EAL.get().and_then(|r| r.as_ref().ok())
    }

    /// Shuts EAL down (`rte_eal_cleanup`): gives back its hugepage memory,
    /// ends its threads and removes its runtime files, as a program should
    /// before it exits.
    ///
    /// # Safety
    /// Every port, pool and packet handle is dropped first, and nothing in
    /// the process uses DPDK afterwards (EAL cannot start again).
    pub unsafe fn cleanup(&self) -> Result<(), DpdkError> {
        let ret = sys::rte_eal_cleanup();
        if ret < 0 {
            return Err(DpdkError::call("rte_eal_cleanup", ret));
        }
        Ok(())
    }

    /// The NUMA socket of the calling thread (`rte_socket_id`).
    pub fn socket_id(&self) -> u32 {
        // SAFETY: EAL is running.
        unsafe { sys::rte_socket_id() }
    }

    /// Number of usable ports (`rte_eth_dev_count_avail`).
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is running.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The id of the port named `name` (`net_ring0` for `--vdev=net_ring0`).
    pub fn port_by_name(&self, name: &str) -> Result<u16, DpdkError> {
        let c = CString::new(name).map_err(|_| DpdkError::NoSuchPort(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: a NUL-terminated name and a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DpdkError::NoSuchPort(name.to_owned()));
        }
        Ok(id)
    }

    /// The port named `name`, or the first port when `name` is `None`: its
    /// id and name.
    pub fn find_port(&self, name: Option<&str>) -> Result<(u16, String), DpdkError> {
        let ports = self.ports();
        let found = match name {
            Some(name) => ports.iter().find(|(_, n)| n == name),
            None => ports.first(),
        };
        found.cloned().ok_or_else(|| DpdkError::PortNotFound {
            wanted: name.map(str::to_owned),
            ports: ports.into_iter().map(|(_, n)| n).collect(),
        })
    }

    /// The usable ports, by id, with their names (`rte_eth_find_next`,
    /// `rte_eth_dev_get_name_by_port`).
    pub fn ports(&self) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        // SAFETY: EAL is running; `rte_eth_find_next` returns
        // RTE_MAX_ETHPORTS past the last port.
        let mut id = unsafe { sys::rte_eth_find_next(0) };
        while u32::from(id) < sys::RTE_MAX_ETHPORTS {
            // RTE_ETH_NAME_MAX_LEN.
            let mut name = [0 as c_char; 64];
            // SAFETY: a valid port and room for the longest name.
            if unsafe { sys::rte_eth_dev_get_name_by_port(id, name.as_mut_ptr()) } == 0 {
                // SAFETY: DPDK wrote a NUL-terminated name.
                let name = unsafe { CStr::from_ptr(name.as_ptr()) };
                out.push((id, name.to_string_lossy().into_owned()));
            }
            // SAFETY: as above.
            id = unsafe { sys::rte_eth_find_next(id + 1) };
        }
        out
    }
}

/// Refuses EAL argument combinations EAL cannot start with.
fn check_args(args: &[&str]) -> Result<(), DpdkError> {
    let has = |flag: &str| args.iter().skip(1).any(|a| *a == flag);
    if has("--no-huge") && has("--in-memory") {
        return Err(DpdkError::Conflict(
            "--in-memory cannot be used with --no-huge (it unlinks hugepage \
             files, and there are none); use --no-shconf with --no-huge instead",
        ));
    }
    Ok(())
}
