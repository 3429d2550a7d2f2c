//! Events that travel from kernel to user space through the ring buffers
//! (one per family: process, flow, the other sensors; see `config::ring`),
//! one file per event family: [`process`] (exec, exit, fork), [`hygiene`]
//! (miner-hygiene system calls), [`flow`] (connects and payload samples);
//! the CUDA events are in `crate::gpu`.
//!
//! Every event starts with an [`EventHeader`]. User space reads the header at
//! offset 0, checks `size` against the length it was handed and against the
//! size of the type named by `kind`, and only then decodes the body. Type ids
//! are stable and grouped by family with deliberate gaps (process 1.., network
//! 60.., agent 1100..), so that new events never renumber old ones.

/// Bumped whenever the layout of any event changes.
pub const SCHEMA_VERSION: u32 = 2;

/// Stable numeric event type ids.
pub mod kind {
    /// A successful execve: [`ExecEvent`].
    pub const PROCESS_EXEC: u32 = 1;
    /// A thread-group leader exited: [`ExitEvent`].
    pub const PROCESS_EXIT: u32 = 2;
    /// A process forked a new process (not a thread): [`ForkEvent`].
    pub const PROCESS_FORK: u32 = 3;
    /// A miner-hygiene system call: [`HygieneEvent`].
    pub const HYGIENE: u32 = 20;
    /// A CUDA driver or NVRTC setup call: [`crate::gpu::CudaEvent`].
    pub const CUDA: u32 = 80;
    // 60 was a connect record of its own; a flow's first sample names its
    // owner now (one record less per connection).
    /// The first bytes of one segment of a flow: [`SampleEvent`], in one
    /// of the sizes of [`SAMPLE_CLASSES`].
    pub const FLOW_SAMPLE: u32 = 61;
}

/// The fixed header that starts every event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of the ids in [`kind`].
    pub kind: u32,
    /// Size in bytes of the whole event, header included.
    pub size: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC, nanoseconds.
    pub timestamp_ns: u64,
    /// Kernel thread id of the task the event is about (0 when unknown).
    pub pid: u32,
    /// Kernel thread-group id, i.e. the user-visible process id (0 when unknown).
    pub tgid: u32,
    /// cgroup v2 id (the inode number of the cgroup directory; 0 when unknown).
    pub cgroup_id: u64,
}
const _: () = assert!(size_of::<EventHeader>() == 32);

pub mod flow;
pub mod hygiene;
pub mod process;

pub use self::{
    flow::{
        AF_INET, AF_INET6, SAMPLE_CLASSES, SAMPLE_HEAD_LEN, SAMPLE_LEN, SampleEvent, direction,
    },
    hygiene::{HYGIENE_PATH_LEN, HygieneEvent},
    process::{ARGV_LEN, COMM_LEN, ExecEvent, ExitEvent, FILENAME_LEN, ForkEvent},
};

/// Whether an event whose header says `kind` may be `size` bytes long:
/// `None` for an unknown kind.
pub const fn is_size_of_kind(kind: u32, size: usize) -> Option<bool> {
    if kind == kind::FLOW_SAMPLE {
        let mut i = 0;
        while i < SAMPLE_CLASSES.len() {
            if size == SAMPLE_HEAD_LEN + SAMPLE_CLASSES[i] {
                return Some(true);
            }
            i += 1;
        }
        return Some(false);
    }
    match size_of_kind(kind) {
        Some(expected) => Some(expected == size),
        None => None,
    }
}

/// Size of the event whose header says `kind` (the largest, for a kind that
/// comes in several), or `None` for an unknown kind.
pub const fn size_of_kind(kind: u32) -> Option<usize> {
    match kind {
        kind::PROCESS_EXEC => Some(size_of::<ExecEvent>()),
        kind::PROCESS_EXIT => Some(size_of::<ExitEvent>()),
        kind::PROCESS_FORK => Some(size_of::<ForkEvent>()),
        kind::HYGIENE => Some(size_of::<HygieneEvent>()),
        kind::CUDA => Some(size_of::<crate::gpu::CudaEvent>()),
        kind::FLOW_SAMPLE => Some(size_of::<SampleEvent>()),
        _ => None,
    }
}
