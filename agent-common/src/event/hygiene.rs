//! Miner-hygiene events: MSR writes, huge-page reservations, the msr
//! module, a RandomX-dataset-sized mapping.

use super::EventHeader;

// What a `HygieneEvent` reports (docs/signatures.md, CPU proof-of-work:
// XMRig writes MSRs, loads the msr module and reserves huge pages): its
// `what`, one of these.

/// An MSR device (char major 202, `/dev/cpu/N/msr`) opened for
/// writing: `flags` is the minor (the CPU), `value` the major.
pub const MSR_WRITE: u32 = 1;
/// A write of a huge-page reservation sysctl: `path` is its name
/// (`vm/nr_hugepages`), `value` the number written, `flags` 1.
pub const HUGEPAGE_SETTING: u32 = 2;
/// A memory mapping the size of a RandomX dataset, found by user space
/// in a busy process's maps: `value` is its size in bytes, `flags` its
/// page size in KiB. Never sent by the kernel.
pub const DATASET_MAPPING: u32 = 3;
/// A kernel module was loaded: `path` is its name.
pub const MODULE_LOAD: u32 = 4;

/// Bytes of path kept by a [`HygieneEvent`].
pub const HYGIENE_PATH_LEN: usize = 64;

/// One miner-hygiene system call, filtered in the kernel and rate-limited
/// per process and kind.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HygieneEvent {
    pub header: EventHeader,
    /// One of [`hygiene`].
    pub what: u32,
    pub flags: u32,
    pub value: u64,
    /// NUL-terminated sysctl or module name; empty otherwise.
    pub path: [u8; HYGIENE_PATH_LEN],
}
const _: () = assert!(size_of::<HygieneEvent>() == 112);
