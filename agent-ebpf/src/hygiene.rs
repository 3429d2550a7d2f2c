//! Miner-hygiene sensor: the system calls a tuned miner makes to squeeze
//! its hash rate (SIGNATURES.md, CPU proof-of-work). XMRig, by default,
//! opens `/dev/cpu/N/msr` for writing to disable hardware prefetchers,
//! loads the msr module when that device is missing, reserves huge pages
//! through `/proc/sys/vm/nr_hugepages` and maps its RandomX dataset with
//! `MAP_HUGETLB`.
//!
//! Classic syscall tracepoints (`syscalls:sys_enter_*`), so only these
//! system calls pay: openat reads at most [`HYGIENE_PATH_LEN`] bytes of its
//! path and compares two prefixes; mmap tests one flag bit. What passes is
//! rate-limited per process and kind (one event per second), so a loop
//! cannot flood the ring buffer. The argument offsets inside each record
//! come from the tracepoint's `format` file, handed in by user space.

use assay_common::{
    config::{KernelOffsets, counter},
    event::{HYGIENE_PATH_LEN, HygieneEvent, hygiene, kind},
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_user_str_bytes,
    },
    macros::{map, tracepoint},
    maps::LruHashMap,
    programs::TracePointContext,
};

use crate::maps::{EVENTS, config, count, wakeup_flags};

/// Last report per (tgid << 32 | kind), in ktime ns.
#[map]
pub static HYGIENE_LAST: LruHashMap<u64, u64> = LruHashMap::with_max_entries(4096, 0);

const REPORT_EVERY_NS: u64 = 1_000_000_000;
const O_ACCMODE: u32 = 0o3;
const MAP_HUGETLB: u64 = 0x40000;

const CPU_DEVICES: &[u8] = b"/dev/cpu/";
const VM_HUGEPAGE_SETTINGS: &[u8] = b"/proc/sys/vm/nr_";
const MM_HUGEPAGES: &[u8] = b"/sys/kernel/mm/hugepages/";

#[tracepoint]
pub fn assay_openat(ctx: TracePointContext) -> u32 {
    let offsets = config().syscalls;
    if offsets.openat_filename == KernelOffsets::UNKNOWN
        || offsets.openat_flags == KernelOffsets::UNKNOWN
    {
        return 0;
    }
    let (Ok(filename), Ok(flags)) = (unsafe {
        (
            ctx.read_at::<u64>(offsets.openat_filename as usize),
            ctx.read_at::<u64>(offsets.openat_flags as usize),
        )
    }) else {
        return 0;
    };
    let mut path = [0u8; HYGIENE_PATH_LEN];
    if unsafe { bpf_probe_read_user_str_bytes(filename as *const u8, &mut path) }.is_err() {
        return 0;
    }
    let flags = flags as u32;
    let what = if starts_with(&path, CPU_DEVICES) {
        hygiene::CPU_DEVICE_OPEN
    } else if flags & O_ACCMODE != 0
        && (starts_with(&path, VM_HUGEPAGE_SETTINGS) || starts_with(&path, MM_HUGEPAGES))
    {
        hygiene::HUGEPAGE_SETTING_OPEN
    } else {
        return 0;
    };
    report(what, flags, 0, &path);
    0
}

#[tracepoint]
pub fn assay_mmap(ctx: TracePointContext) -> u32 {
    let offsets = config().syscalls;
    if offsets.mmap_flags == KernelOffsets::UNKNOWN || offsets.mmap_len == KernelOffsets::UNKNOWN {
        return 0;
    }
    let Ok(flags) = (unsafe { ctx.read_at::<u64>(offsets.mmap_flags as usize) }) else {
        return 0;
    };
    if flags & MAP_HUGETLB == 0 {
        return 0;
    }
    let len = unsafe { ctx.read_at::<u64>(offsets.mmap_len as usize) }.unwrap_or(0);
    report(
        hygiene::HUGETLB_MAP,
        flags as u32,
        len,
        &[0; HYGIENE_PATH_LEN],
    );
    0
}

/// `init_module` and `finit_module`: which module is for user space to
/// find out (the msr module appears under /sys/module).
#[tracepoint]
pub fn assay_module_load(_ctx: TracePointContext) -> u32 {
    report(hygiene::MODULE_LOAD, 0, 0, &[0; HYGIENE_PATH_LEN]);
    0
}

#[inline(always)]
fn starts_with(path: &[u8; HYGIENE_PATH_LEN], prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() && i < HYGIENE_PATH_LEN {
        if path[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[inline(always)]
fn report(what: u32, flags: u32, value: u64, path: &[u8; HYGIENE_PATH_LEN]) {
    let cfg = config();
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if tgid == cfg.agent_tgid {
        return;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let key = (u64::from(tgid) << 32) | u64::from(what);
    if let Some(last) = HYGIENE_LAST.get_ptr_mut(&key) {
        if now.saturating_sub(unsafe { *last }) < REPORT_EVERY_NS {
            return;
        }
        unsafe { *last = now };
    } else {
        let _ = HYGIENE_LAST.insert(&key, &now, 0);
    }
    let Some(mut entry) = EVENTS.reserve::<HygieneEvent>(0) else {
        count(counter::HYGIENE_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        (*event).header = assay_common::event::EventHeader {
            kind: kind::HYGIENE,
            size: size_of::<HygieneEvent>() as u32,
            timestamp_ns: now,
            pid: pid_tgid as u32,
            tgid,
            cgroup_id: bpf_get_current_cgroup_id(),
        };
        (*event).what = what;
        (*event).flags = flags;
        (*event).value = value;
        (*event).path = *path;
    }
    entry.submit(wakeup_flags());
}
