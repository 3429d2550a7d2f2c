//! Load-time configuration handed to the eBPF programs as a global.

/// Byte offsets of the kernel struct fields the programs read. They are never
/// hard-coded: user space reads them from the running kernel's BTF
/// (/sys/kernel/btf/vmlinux) at load time. [`KernelOffsets::UNKNOWN`] marks a
/// field the kernel does not have; programs then leave the value at 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_mm: u32,
    pub task_exit_code: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub bprm_filename: u32,
    /// `struct fpu.fpstate` (a pointer).
    pub fpu_fpstate: u32,
    /// MXCSR inside `struct fpstate`: `fpstate.regs` + `fxregs_state.mxcsr`
    /// (the legacy area starts every XSAVE image, so this holds for both).
    pub fpstate_mxcsr: u32,
    /// `task_struct.pid` (the thread id): tells a fork from a new thread.
    pub task_pid: u32,
    /// `module.name` (kernels with loadable modules).
    pub module_name: u32,
    /// `task_struct.signal` (a pointer) and `signal_struct.live` (an
    /// `atomic_t`): the threads of the group still running. The exit
    /// tracepoint fires after the exiting thread took itself off, so a
    /// process ends when a thread exits and sees it at 0.
    pub task_signal: u32,
    pub signal_live: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<KernelOffsets>() == 56);

impl KernelOffsets {
    pub const UNKNOWN: u32 = u32::MAX;
    pub const ALL_UNKNOWN: Self = Self {
        task_real_parent: Self::UNKNOWN,
        task_tgid: Self::UNKNOWN,
        task_mm: Self::UNKNOWN,
        task_exit_code: Self::UNKNOWN,
        mm_arg_start: Self::UNKNOWN,
        mm_arg_end: Self::UNKNOWN,
        bprm_filename: Self::UNKNOWN,
        fpu_fpstate: Self::UNKNOWN,
        fpstate_mxcsr: Self::UNKNOWN,
        task_pid: Self::UNKNOWN,
        module_name: Self::UNKNOWN,
        task_signal: Self::UNKNOWN,
        signal_live: Self::UNKNOWN,
        _pad: 0,
    };
}

/// The one global every program reads (`CONFIG` in the eBPF object).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The agent's own thread-group id: its own activity is never reported.
    pub agent_tgid: u32,
    /// Segments sampled per direction of each new flow.
    pub sample_segments: u32,
    pub offsets: KernelOffsets,
}
const _: () = assert!(size_of::<Config>() == 64);

impl Config {
    pub const DEFAULT: Self = Self {
        agent_tgid: 0,
        sample_segments: 4,
        offsets: KernelOffsets::ALL_UNKNOWN,
    };
}

/// Indexes of the per-CPU `COUNTERS` array: what the kernel side dropped or
/// skipped, read and exported by user space. Never silent.
pub mod counter {
    /// Ring buffer full: an exec event was lost.
    pub const EXEC_LOST: u32 = 0;
    /// Ring buffer full: an exit event was lost.
    pub const EXIT_LOST: u32 = 1;
    /// Ring buffer full: a payload sample was lost (the first sample of a
    /// flow names its owner: when it is lost, the next one does).
    pub const SAMPLE_LOST: u32 = 2;
    /// The flow table refused an insert (the LRU map evicts, so this is rare).
    pub const FLOW_INSERT_FAILED: u32 = 3;
    /// A followed flow's packet could not be sampled: headers unreadable, or
    /// IPv6 with extension headers.
    pub const PACKET_UNPARSED: u32 = 4;
    /// The FPU counter table refused a new thread.
    pub const FPU_INSERT_FAILED: u32 = 5;
    /// A flow no connect or sendmsg announced (accepted, or older than the
    /// agent) was adopted at its first packet with payload. Not a loss.
    pub const FLOW_ADOPTED: u32 = 6;
    /// Ring buffer full: a fork event was lost.
    pub const FORK_LOST: u32 = 7;
    /// Ring buffer full: a miner-hygiene event was lost.
    pub const HYGIENE_LOST: u32 = 8;
    /// The CPU sample table refused a new process.
    pub const CPU_SAMPLE_INSERT_FAILED: u32 = 9;
    /// Ring buffer full: a CUDA event was lost.
    pub const CUDA_LOST: u32 = 10;
    /// The launch table refused a new (process, function).
    pub const LAUNCH_INSERT_FAILED: u32 = 11;
    /// Number of counters.
    pub const COUNT: u32 = 12;
    /// Whether a counter counts something lost or skipped (as opposed to
    /// plain activity such as [`FLOW_ADOPTED`]).
    pub const fn is_loss(index: u32) -> bool {
        index != FLOW_ADOPTED
    }
    /// Names for logs and metrics, indexed by counter.
    pub const NAMES: [&str; COUNT as usize] = [
        "exec_lost",
        "exit_lost",
        "sample_lost",
        "flow_insert_failed",
        "packet_unparsed",
        "fpu_insert_failed",
        "flow_adopted",
        "fork_lost",
        "hygiene_lost",
        "cpu_sample_insert_failed",
        "cuda_lost",
        "launch_insert_failed",
    ];
}

/// The ring buffers, one per event family, so that a storm in one family
/// (an exec storm) cannot starve another (flow samples). Each with its map
/// name, a short name for logs and metrics, and the loss counters of the
/// events it carries: what it dropped.
pub mod ring {
    use super::counter;

    pub struct Ring {
        pub map: &'static str,
        pub name: &'static str,
        pub losses: &'static [u32],
    }

    pub const PROCESS: Ring = Ring {
        map: "PROCESS_EVENTS",
        name: "process",
        losses: &[counter::EXEC_LOST, counter::EXIT_LOST, counter::FORK_LOST],
    };
    pub const FLOW: Ring = Ring {
        map: "FLOW_EVENTS",
        name: "flow",
        losses: &[counter::SAMPLE_LOST],
    };
    pub const SENSOR: Ring = Ring {
        map: "SENSOR_EVENTS",
        name: "sensor",
        losses: &[counter::HYGIENE_LOST, counter::CUDA_LOST],
    };
    pub const ALL: [Ring; 3] = [PROCESS, FLOW, SENSOR];
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, explicit padding.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KernelOffsets {}
}
