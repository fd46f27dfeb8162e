/* What dpdk-sys binds: EAL, ethdev, mbufs and mempools. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* rte_errno is a per-lcore (thread-local) macro bindgen cannot see through. */
int aa_rte_errno(void);
