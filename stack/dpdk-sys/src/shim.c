/* Helpers for what bindgen cannot bind: macros over thread-local state. */
#include "wrapper.h"

int aa_rte_errno(void) { return rte_errno; }
