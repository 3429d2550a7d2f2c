//! CUDA driver sensor: uprobes on `libcuda.so.1` (and `libnvrtc`).
//!
//! Setup calls are rare (a few per kernel, per module, per allocation) and
//! go to user space as events. `cuLaunchKernel` can run a million times a
//! second, and a uprobe costs about 2 µs per hit: its programs only
//! aggregate into [`LAUNCHES`], and user space attaches them for a short
//! window now and then (the duty cycle), so the average cost stays a
//! fraction of a percent.
//!
//! Arguments follow the x86-64 SysV ABI: the first six in registers, which
//! is all these programs read (`cuLaunchKernel`'s seventh, `blockDimZ`, is
//! on the stack and left out: z block dimensions rarely vary).

use assay_common::{
    config::counter,
    event::{EventHeader, kind},
    gpu::{CudaEvent, KERNEL_NAME_LEN, LaunchKey, LaunchStats, SLOT_NS, cuda_call},
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
        bpf_probe_read_user_str_bytes,
    },
    macros::{map, uprobe, uretprobe},
    maps::{HashMap, LruHashMap},
    programs::{ProbeContext, RetProbeContext},
};

use crate::maps::{SENSOR_EVENTS, config, count, ring_slot, wakeup_flags};

/// Launch statistics per (process, function), while the launch probes are
/// attached. User space reads and clears it after each window.
#[map]
pub static LAUNCHES: LruHashMap<LaunchKey, LaunchStats> = LruHashMap::with_max_entries(16384, 0);

/// `cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)`
/// and `cuLibraryGetKernel(CUkernel *, CUlibrary, const char *)`: the
/// output pointer and the name, kept per thread from entry to return.
#[map]
static GET_FUNCTION_ARGS: HashMap<u64, [u64; 2]> = HashMap::with_max_entries(4096, 0);

#[uprobe]
pub fn assay_cu_ctx_create(_ctx: ProbeContext) -> u32 {
    emit(cuda_call::CTX_CREATE, 0, 0, 0);
    0
}

/// `cuModuleLoadData(CUmodule *, const void *image)`, `…Ex` and
/// `cuLibraryLoadData(CUlibrary *, const void *code, …)`: the image is the
/// second argument.
#[uprobe]
pub fn assay_cu_module_load(ctx: ProbeContext) -> u32 {
    let image: u64 = ctx.arg(1).unwrap_or(0);
    let magic = if image == 0 {
        0
    } else {
        unsafe { bpf_probe_read_user(image as *const u64) }.unwrap_or(0)
    };
    emit(cuda_call::MODULE_LOAD, magic, 0, 0);
    0
}

#[uprobe]
pub fn assay_cu_get_function(ctx: ProbeContext) -> u32 {
    let (Some(out), Some(name)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(2)) else {
        return 0;
    };
    let _ = GET_FUNCTION_ARGS.insert(bpf_get_current_pid_tgid(), [out, name], 0);
    0
}

#[uretprobe]
pub fn assay_cu_get_function_ret(ctx: RetProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(&[out, name]) = (unsafe { GET_FUNCTION_ARGS.get(pid_tgid) }) else {
        return 0;
    };
    let _ = GET_FUNCTION_ARGS.remove(pid_tgid);
    let result: u64 = ctx.ret();
    // CUDA_SUCCESS is 0: anything else wrote no handle.
    if result as u32 != 0 || out == 0 {
        return 0;
    }
    let handle = unsafe { bpf_probe_read_user(out as *const u64) }.unwrap_or(0);
    emit(cuda_call::GET_FUNCTION, 0, handle, name);
    0
}

/// `cuMemAlloc_v2(CUdeviceptr *, size_t bytesize)` and its siblings with
/// the size second (`cuMemAllocManaged`, `cuMemAllocAsync`).
#[uprobe]
pub fn assay_cu_mem_alloc(ctx: ProbeContext) -> u32 {
    emit(cuda_call::MEM_ALLOC, ctx.arg(1).unwrap_or(0), 0, 0);
    0
}

#[uprobe]
pub fn assay_nvrtc_compile(_ctx: ProbeContext) -> u32 {
    emit(cuda_call::RUNTIME_COMPILE, 0, 0, 0);
    0
}

/// `cuLaunchKernel(CUfunction f, gridX, gridY, gridZ, blockX, blockY, …)`.
#[uprobe]
pub fn assay_cu_launch(ctx: ProbeContext) -> u32 {
    let arg = |n| ctx.arg::<u64>(n).unwrap_or(0) as u32;
    let function: u64 = ctx.arg(0).unwrap_or(0);
    on_launch(function, [arg(1), arg(2), arg(3)], [arg(4), arg(5), 1]);
    0
}

/// `cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, …)`;
/// the config starts with gridDimX..Z, blockDimX..Z (u32 each).
#[uprobe]
pub fn assay_cu_launch_ex(ctx: ProbeContext) -> u32 {
    let (Some(config), Some(function)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1)) else {
        return 0;
    };
    let Ok(dims) = (unsafe { bpf_probe_read_user(config as *const [u32; 6]) }) else {
        return 0;
    };
    on_launch(
        function,
        [dims[0], dims[1], dims[2]],
        [dims[3], dims[4], dims[5]],
    );
    0
}

#[inline(always)]
fn on_launch(function: u64, grid: [u32; 3], block: [u32; 3]) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let key = LaunchKey {
        tgid,
        _pad: 0,
        function,
    };
    let now = unsafe { bpf_ktime_get_ns() };
    let slot = 1u64 << ((now / SLOT_NS) % 64);
    match LAUNCHES.get_ptr_mut(key) {
        Some(stats) => {
            let stats = unsafe { &mut *stats };
            // Capped at u32 so that its square fits in u64 (no 128-bit
            // multiply in BPF): a gap over 71 minutes is "long" anyway.
            let gap_us = (now.saturating_sub(stats.last_ns) / 1000).min(u64::from(u32::MAX));
            stats.launches += 1;
            stats.last_ns = now;
            stats.busy_slots |= slot;
            stats.gap_sum_us = stats.gap_sum_us.saturating_add(gap_us);
            stats.gap_sq_sum_us = stats.gap_sq_sum_us.saturating_add(gap_us * gap_us);
            if stats.grid != grid || stats.block != block {
                stats.shape_changes += 1;
                stats.grid = grid;
                stats.block = block;
            }
        }
        None => {
            let fresh = LaunchStats {
                launches: 1,
                first_ns: now,
                last_ns: now,
                gap_sum_us: 0,
                gap_sq_sum_us: 0,
                grid,
                block,
                shape_changes: 0,
                busy_slots: slot,
            };
            if LAUNCHES.insert(key, fresh, 0).is_err() {
                count(counter::LAUNCH_INSERT_FAILED);
            }
        }
    }
}

#[inline(always)]
fn emit(call: u32, value: u64, handle: u64, name: u64) {
    let cfg = config();
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if tgid == cfg.agent_tgid {
        return;
    }
    let Some(mut entry) = SENSOR_EVENTS.reserve::<CudaEvent>(0) else {
        count(counter::CUDA_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        (*event).header = EventHeader {
            kind: kind::CUDA,
            size: size_of::<CudaEvent>() as u32,
            timestamp_ns: bpf_ktime_get_ns(),
            pid: pid_tgid as u32,
            tgid,
            cgroup_id: bpf_get_current_cgroup_id(),
        };
        (*event).call = call;
        (*event)._pad = 0;
        (*event).value = value;
        (*event).handle = handle;
        (*event).name = [0; KERNEL_NAME_LEN];
        if name != 0 {
            let _ = bpf_probe_read_user_str_bytes(name as *const u8, &mut (*event).name);
        }
    }
    entry.submit(wakeup_flags(&SENSOR_EVENTS, ring_slot::SENSOR));
}
