//! Miner-hygiene sensor: what a tuned miner does to squeeze its hash rate
//! (docs/signatures.md, CPU proof-of-work). XMRig, by default, opens
//! `/dev/cpu/N/msr` for writing to switch off hardware prefetchers, loads
//! the msr module when that device is missing, and reserves huge pages
//! through `/proc/sys/vm/nr_hugepages` for its RandomX dataset.
//!
//! Hooks that cost nothing on any other path (syscall tracepoints would put
//! every system call of the host on the tracing slow path):
//! - a cgroup **device** program: the kernel asks it only when a device
//!   node is opened or created; it reports write access to an MSR device
//!   (char major 202) and always allows;
//! - a cgroup **sysctl** program: asked only on /proc/sys accesses; it
//!   reports writes of the huge-page reservation and always allows;
//! - the `module_load` tracepoint (kernels with loadable modules): once per
//!   module load, with the module's name.
//!
//! Reports are rate-limited per process and kind (one per second). The
//! RandomX-sized memory mapping is found by user space in the maps of busy
//! processes (no hook at all).

use assay_common::{
    config::{KernelOffsets, counter},
    event::{EventHeader, HYGIENE_PATH_LEN, HygieneEvent, hygiene, kind},
};
use aya_ebpf::{
    bindings::bpf_cgroup_dev_ctx,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
        generated::{bpf_strtoul, bpf_sysctl_get_name, bpf_sysctl_get_new_value},
    },
    macros::{btf_tracepoint, cgroup_device, cgroup_sysctl, map, raw_tracepoint},
    maps::LruHashMap,
    programs::{BtfTracePointContext, DeviceContext, RawTracePointContext, SysctlContext},
};

use crate::maps::{SENSOR_EVENTS, config, count, ring_slot, wakeup_flags};

/// Last report per (tgid << 32 | kind), in ktime ns.
#[map]
pub static HYGIENE_LAST: LruHashMap<u64, u64> = LruHashMap::with_max_entries(4096, 0);

const REPORT_EVERY_NS: u64 = 1_000_000_000;
/// Character device major of `/dev/cpu/*/msr` (Documentation/admin-guide/
/// devices.txt).
const MSR_MAJOR: u32 = 202;
const BPF_DEVCG_DEV_CHAR: u32 = 2;
const BPF_DEVCG_ACC_WRITE: u32 = 4;
/// The sysctls that reserve huge pages, as `bpf_sysctl_get_name` spells
/// them (relative to /proc/sys).
const HUGEPAGE_SYSCTLS: [&[u8]; 2] = [b"vm/nr_hugepages\0", b"vm/nr_overcommit_hugepages\0"];
const ALLOW: i32 = 1;

#[cgroup_device]
pub fn assay_dev_access(ctx: DeviceContext) -> i32 {
    let device = unsafe { &*(ctx.device as *const bpf_cgroup_dev_ctx) };
    let kind = device.access_type & 0xffff;
    let access = device.access_type >> 16;
    if kind == BPF_DEVCG_DEV_CHAR && device.major == MSR_MAJOR && access & BPF_DEVCG_ACC_WRITE != 0
    {
        report(
            hygiene::MSR_WRITE,
            device.minor,
            u64::from(device.major),
            &[0; HYGIENE_PATH_LEN],
        );
    }
    // Only watching: every access is allowed.
    ALLOW
}

#[cgroup_sysctl]
pub fn assay_sysctl(ctx: SysctlContext) -> i32 {
    let sysctl = unsafe { &*ctx.sysctl };
    if sysctl.write == 0 {
        return ALLOW;
    }
    let mut name = [0u8; HYGIENE_PATH_LEN];
    let read =
        unsafe { bpf_sysctl_get_name(ctx.sysctl, name.as_mut_ptr().cast(), name.len() as u64, 0) };
    if read <= 0 {
        return ALLOW;
    }
    if !HUGEPAGE_SYSCTLS.iter().any(|s| starts_with(&name, s)) {
        return ALLOW;
    }
    let mut text = [0u8; 24];
    let mut value: u64 = 0;
    let len = unsafe {
        bpf_sysctl_get_new_value(ctx.sysctl, text.as_mut_ptr().cast(), text.len() as u64)
    };
    if len > 0 {
        unsafe { bpf_strtoul(text.as_ptr().cast(), text.len() as u64, 0, &raw mut value) };
    }
    report(hygiene::HUGEPAGE_SETTING, 1, value, &name);
    ALLOW
}

// module_load(struct module *mod)
#[btf_tracepoint(function = "module_load")]
pub fn assay_module_load_btf(ctx: BtfTracePointContext) -> u32 {
    on_module_load(ctx.arg::<*const u8>(0));
    0
}

#[raw_tracepoint(tracepoint = "module_load")]
pub fn assay_module_load_raw(ctx: RawTracePointContext) -> i32 {
    on_module_load(ctx.arg::<*const u8>(0));
    0
}

#[inline(always)]
fn on_module_load(module: *const u8) {
    let offset = config().offsets.module_name;
    let mut name = [0u8; HYGIENE_PATH_LEN];
    if !module.is_null() && offset != KernelOffsets::UNKNOWN {
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(module.add(offset as usize), &mut name) };
    }
    report(hygiene::MODULE_LOAD, 0, 0, &name);
}

#[inline(always)]
fn starts_with(bytes: &[u8; HYGIENE_PATH_LEN], prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() && i < HYGIENE_PATH_LEN {
        if bytes[i] != prefix[i] {
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
    if let Some(last) = HYGIENE_LAST.get_ptr_mut(key) {
        if now.saturating_sub(unsafe { *last }) < REPORT_EVERY_NS {
            return;
        }
        unsafe { *last = now };
    } else {
        let _ = HYGIENE_LAST.insert(key, now, 0);
    }
    let Some(mut entry) = SENSOR_EVENTS.reserve::<HygieneEvent>(0) else {
        count(counter::HYGIENE_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        (*event).header = EventHeader {
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
    entry.submit(wakeup_flags(&SENSOR_EVENTS, ring_slot::SENSOR));
}
