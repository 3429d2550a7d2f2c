//! Process sensor: exec, fork and exit.
//!
//! Two entry points per event, the same body: `tp_btf` where the kernel has
//! BTF-typed tracepoints, `raw_tp` otherwise. Both read the current task with
//! field offsets that user space took from the running kernel's BTF.

use assay_common::{
    config::KernelOffsets,
    event::{ARGV_LEN, EventHeader, ExecEvent, ExitEvent, ForkEvent, kind},
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str_bytes, generated::bpf_probe_read_user,
    },
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};

use crate::maps::{PROCESS_EVENTS, config, count, ring_slot, wakeup_flags};
use assay_common::config::counter;

// sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
const EXEC_ARG_BPRM: usize = 2;

#[btf_tracepoint(function = "sched_process_exec")]
pub fn assay_exec_btf(ctx: BtfTracePointContext) -> u32 {
    on_exec(ctx.arg::<*const u8>(EXEC_ARG_BPRM));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn assay_exec_raw(ctx: RawTracePointContext) -> i32 {
    on_exec(ctx.arg::<*const u8>(EXEC_ARG_BPRM));
    0
}

// sched_process_fork(struct task_struct *parent, struct task_struct *child)
const FORK_ARG_CHILD: usize = 1;

#[btf_tracepoint(function = "sched_process_fork")]
pub fn assay_fork_btf(ctx: BtfTracePointContext) -> u32 {
    on_fork(ctx.arg::<*const u8>(FORK_ARG_CHILD));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn assay_fork_raw(ctx: RawTracePointContext) -> i32 {
    on_fork(ctx.arg::<*const u8>(FORK_ARG_CHILD));
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn assay_exit_btf(_ctx: BtfTracePointContext) -> u32 {
    on_exit();
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn assay_exit_raw(_ctx: RawTracePointContext) -> i32 {
    on_exit();
    0
}

#[inline(always)]
fn header(kind: u32, size: usize, pid_tgid: u64) -> EventHeader {
    EventHeader {
        kind,
        size: size as u32,
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
    }
}

/// Reads a kernel value at `base + offset`, or `None` when the offset is
/// unknown on this kernel or the read faults.
#[inline(always)]
unsafe fn read_at<T>(base: *const u8, offset: u32) -> Option<T> {
    if base.is_null() || offset == KernelOffsets::UNKNOWN {
        return None;
    }
    unsafe { bpf_probe_read_kernel(base.add(offset as usize).cast::<T>()) }.ok()
}

#[inline(always)]
fn on_exec(bprm: *const u8) {
    let cfg = config();
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == cfg.agent_tgid {
        return;
    }
    let Some(mut entry) = PROCESS_EVENTS.reserve::<ExecEvent>(0) else {
        count(counter::EXEC_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    let offsets = cfg.offsets;
    let uid_gid = bpf_get_current_uid_gid();
    unsafe {
        (*event).header = header(kind::PROCESS_EXEC, size_of::<ExecEvent>(), pid_tgid);
        (*event).uid = uid_gid as u32;
        (*event).gid = (uid_gid >> 32) as u32;
        (*event).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*event).argv_truncated = 0;
        (*event)._pad = 0;

        let task = bpf_get_current_task() as *const u8;
        let parent: Option<*const u8> = read_at(task, offsets.task_real_parent);
        (*event).ppid = parent
            .and_then(|parent| read_at::<u32>(parent, offsets.task_tgid))
            .unwrap_or(0);

        (*event).filename[0] = 0;
        if let Some(filename) = read_at::<*const u8>(bprm, offsets.bprm_filename) {
            let _ = bpf_probe_read_kernel_str_bytes(filename, &mut (*event).filename);
        }

        (*event).argv_len = 0;
        let mm: Option<*const u8> = read_at(task, offsets.task_mm);
        if let Some(mm) = mm {
            let start = read_at::<u64>(mm, offsets.mm_arg_start).unwrap_or(0);
            let end = read_at::<u64>(mm, offsets.mm_arg_end).unwrap_or(0);
            if start != 0 && end > start {
                let mut len = end - start;
                if len > ARGV_LEN as u64 {
                    len = ARGV_LEN as u64;
                    (*event).argv_truncated = 1;
                }
                let dst = (&raw mut (*event).argv).cast::<core::ffi::c_void>();
                if bpf_probe_read_user(dst, len as u32, start as *const core::ffi::c_void) == 0 {
                    (*event).argv_len = len as u16;
                }
            }
        }
    }
    entry.submit(wakeup_flags(&PROCESS_EVENTS, ring_slot::PROCESS));
}

/// A process ends when its last thread does, not its leader: a leader
/// that calls `pthread_exit` leaves its threads running (and hashing).
/// Where the kernel's BTF gave no `signal->live`, the leader's exit is
/// taken for the process's, as before.
#[inline(always)]
fn on_exit() {
    let cfg = config();
    let pid_tgid = bpf_get_current_pid_tgid();
    let (pid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    if tgid == cfg.agent_tgid {
        return;
    }
    let offsets = cfg.offsets;
    let last_thread = if offsets.task_signal == KernelOffsets::UNKNOWN
        || offsets.signal_live == KernelOffsets::UNKNOWN
    {
        pid == tgid
    } else {
        let task = unsafe { bpf_get_current_task() } as *const u8;
        let signal: Option<*const u8> = unsafe { read_at(task, offsets.task_signal) };
        // Unreadable: say nothing rather than end a live process; the
        // agent's reconciliation with /proc catches what is missed.
        match signal.and_then(|signal| unsafe { read_at::<i32>(signal, offsets.signal_live) }) {
            Some(live) => live == 0,
            None => false,
        }
    };
    if !last_thread {
        return;
    }
    let Some(mut entry) = PROCESS_EVENTS.reserve::<ExitEvent>(0) else {
        count(counter::EXIT_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        (*event).header = header(kind::PROCESS_EXIT, size_of::<ExitEvent>(), pid_tgid);
        let task = bpf_get_current_task() as *const u8;
        (*event).exit_code = read_at::<u32>(task, cfg.offsets.task_exit_code).unwrap_or(0);
        (*event)._pad = 0;
    }
    entry.submit(wakeup_flags(&PROCESS_EVENTS, ring_slot::PROCESS));
}

/// A new process, not a new thread: the child leads its own thread group.
#[inline(always)]
fn on_fork(child: *const u8) {
    let cfg = config();
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == cfg.agent_tgid {
        return;
    }
    let (Some(child_pid), Some(child_tgid)) = (unsafe {
        (
            read_at::<u32>(child, cfg.offsets.task_pid),
            read_at::<u32>(child, cfg.offsets.task_tgid),
        )
    }) else {
        return;
    };
    if child_pid != child_tgid {
        return;
    }
    let Some(mut entry) = PROCESS_EVENTS.reserve::<ForkEvent>(0) else {
        count(counter::FORK_LOST);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        (*event).header = header(kind::PROCESS_FORK, size_of::<ForkEvent>(), pid_tgid);
        (*event).child_tgid = child_tgid;
        (*event)._pad = 0;
    }
    entry.submit(wakeup_flags(&PROCESS_EVENTS, ring_slot::PROCESS));
}
