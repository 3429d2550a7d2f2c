//! Giving freed memory back to the kernel.
//!
//! glibc's allocator keeps what the program frees in its arenas and hands
//! it back to the kernel only when the top of the main heap is free. Two
//! things leave a lot behind that RSS then counts for the agent's whole
//! life: loading the programs (aya parses the kernel's BTF, several
//! megabytes of it, and drops it) and bursts (a connection storm fills the
//! flow table, which empties again as the flows idle out). Measured on
//! this VM: 27 MiB of an idle agent's 30 MiB of anonymous memory was such
//! free space (56 → 29 MiB RSS after one `malloc_trim`).
//!
//! So the agent calls [`release_free_memory`] once the programs are loaded
//! (before the tables reserve their memory, which would otherwise land on
//! pages the BTF touched), once it is ready, and then every
//! [`RELEASE_EVERY_TICKS`] ticks on a worker, not on the loop: the call
//! walks every free chunk and `madvise`s whole free pages away, which on a
//! fragmented heap takes tens of milliseconds (31 ms for 100 000 free
//! chunks here), and holds each arena's lock only while it walks that
//! arena. A page given back is simply faulted in again when it is needed.

/// Ticks (seconds) between two calls.
pub(super) const RELEASE_EVERY_TICKS: u64 = 30;

/// Returns the allocator's wholly free pages to the kernel.
pub(super) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes glibc's arena locks and releases
    // pages no live allocation uses; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
