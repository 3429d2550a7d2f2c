//! CPU sensor: the RandomX fingerprint, and on-CPU time per process.
//!
//! At every context switch that saves a task's FPU registers
//! (`x86_fpu_regs_deactivated`), look at the saved MXCSR: almost always it
//! holds the default rounding, and the program returns before touching any
//! map. A switch that saved non-default rounding is counted for its thread,
//! by mode. How many switches a thread made in all, user space reads from
//! the kernel's own per-task counters (/proc/<pid>/task/<tid>/status) for
//! the few threads in the map. User space reads the counters every few
//! seconds; the kernel never decides.

use assay_common::{
    config::{KernelOffsets, counter},
    cpu::{FpuStats, MXCSR_ROUNDING_SHIFT},
};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::{btf_tracepoint, map, perf_event, raw_tracepoint},
    maps::{LruHashMap, LruPerCpuHashMap},
    programs::{BtfTracePointContext, PerfEventContext, RawTracePointContext},
};

use crate::maps::{config, count};

/// FPU switch counters per thread id.
#[map]
pub static FPU_STATS: LruHashMap<u32, FpuStats> = LruHashMap::with_max_entries(32768, 0);

// x86_fpu_regs_deactivated(struct fpu *fpu)
//
// With BTF the argument is a typed kernel pointer: the verifier lets the
// program load `fpu->fpstate->regs.fxsave.mxcsr` directly (the offsets,
// from the running kernel's BTF, are constants of the frozen config), which
// costs a load where `bpf_probe_read_kernel` costs a helper call each.
#[btf_tracepoint(function = "x86_fpu_regs_deactivated")]
pub fn assay_fpu_btf(ctx: BtfTracePointContext) -> u32 {
    let offsets = config().offsets;
    let fpu = ctx.arg::<*const u8>(0);
    if fpu.is_null()
        || offsets.fpu_fpstate == KernelOffsets::UNKNOWN
        || offsets.fpstate_mxcsr == KernelOffsets::UNKNOWN
    {
        return 0;
    }
    // SAFETY: a BTF-typed pointer the verifier checks every load through.
    let fpstate = unsafe {
        core::ptr::read_volatile(fpu.add(offsets.fpu_fpstate as usize).cast::<*const u8>())
    };
    if fpstate.is_null() {
        return 0;
    }
    // SAFETY: as above.
    let mxcsr = unsafe {
        core::ptr::read_volatile(fpstate.add(offsets.fpstate_mxcsr as usize).cast::<u32>())
    };
    count_rounding(mxcsr);
    0
}

#[raw_tracepoint(tracepoint = "x86_fpu_regs_deactivated")]
pub fn assay_fpu_raw(ctx: RawTracePointContext) -> i32 {
    on_fpu_saved(ctx.arg::<*const u8>(0));
    0
}

#[inline(always)]
fn on_fpu_saved(fpu: *const u8) {
    let cfg = config();
    let offsets = cfg.offsets;
    if fpu.is_null()
        || offsets.fpu_fpstate == KernelOffsets::UNKNOWN
        || offsets.fpstate_mxcsr == KernelOffsets::UNKNOWN
    {
        return;
    }
    let fpstate: *const u8 =
        match unsafe { bpf_probe_read_kernel(fpu.add(offsets.fpu_fpstate as usize).cast()) } {
            Ok(p) => p,
            Err(_) => return,
        };
    if fpstate.is_null() {
        return;
    }
    let mxcsr: u32 = match unsafe {
        bpf_probe_read_kernel(fpstate.add(offsets.fpstate_mxcsr as usize).cast())
    } {
        Ok(v) => v,
        Err(_) => return,
    };
    count_rounding(mxcsr);
}

/// Counts a switch that saved non-default rounding for its thread.
#[inline(always)]
fn count_rounding(mxcsr: u32) {
    let mode = ((mxcsr >> MXCSR_ROUNDING_SHIFT) & 3) as usize;
    // The default rounding: nearly every switch of every task ends here.
    if mode == 0 {
        return;
    }
    let cfg = config();
    // Kernel threads (tgid 0 never appears; their mm is NULL but they rarely
    // save FPU state) and the agent itself are of no interest.
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    if tgid == 0 || tgid == cfg.agent_tgid {
        return;
    }
    match FPU_STATS.get_ptr_mut(tid) {
        // A tid reused by another process starts over.
        Some(stats) if unsafe { (*stats).tgid } == tgid => unsafe {
            (*stats).switches += 1;
            (*stats).by_mode[mode] += 1;
        },
        _ => {
            let mut fresh = FpuStats {
                tgid,
                _pad: 0,
                switches: 1,
                by_mode: [0; 4],
            };
            fresh.by_mode[mode] = 1;
            if FPU_STATS.insert(tid, fresh, 0).is_err() {
                count(counter::FPU_INSERT_FAILED);
            }
        }
    }
}

/// On-CPU samples per process (tgid), from a `cpu-clock` perf event on
/// every CPU at a fixed frequency: samples / frequency = CPU seconds. Per
/// CPU, so no two programs ever write the same slot; user space sums. Only
/// processes that ran are in it, and user space deletes exited ones.
#[map]
pub static CPU_SAMPLES: LruPerCpuHashMap<u32, u64> = LruPerCpuHashMap::with_max_entries(4096, 0);

#[perf_event]
pub fn assay_cpu_sample(_ctx: PerfEventContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // tgid 0: the idle task; nothing ran.
    if tgid == 0 {
        return 0;
    }
    match CPU_SAMPLES.get_ptr_mut(tgid) {
        Some(samples) => unsafe { *samples += 1 },
        None => {
            if CPU_SAMPLES.insert(tgid, 1, 0).is_err() {
                count(counter::CPU_SAMPLE_INSERT_FAILED);
            }
        }
    }
    0
}
