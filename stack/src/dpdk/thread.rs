//! Which cores the threads polling DPDK queues run on.

use super::eal::DpdkError;

/// Pins the calling thread to CPU `cpu` (`sched_setaffinity`).
///
/// [`Eal::init`](super::Eal::init) pins the thread that calls it to the main
/// lcore's core (EAL does so for every lcore it starts), and threads spawned
/// from it afterwards inherit that pinning: without a call like this one,
/// worker threads polling their own queues all share that one core. Pin each
/// worker to its own core, ideally one EAL was not given (`-l`).
pub fn pin_current_thread(cpu: usize) -> Result<(), DpdkError> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(DpdkError::call("sched_setaffinity", -libc::EINVAL));
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; `cpu` is within it.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if ret != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(DpdkError::call("sched_setaffinity", -errno));
    }
    Ok(())
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), in order.
pub fn current_thread_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t filled by the kernel; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}
