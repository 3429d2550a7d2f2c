//! Events that travel from kernel to user space through the `EVENTS` ring
//! buffer.
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
    /// A successful execve: [`super::ExecEvent`].
    pub const PROCESS_EXEC: u32 = 1;
    /// A thread-group leader exited: [`super::ExitEvent`].
    pub const PROCESS_EXIT: u32 = 2;
    /// A process forked a new process (not a thread): [`super::ForkEvent`].
    pub const PROCESS_FORK: u32 = 3;
    /// A miner-hygiene system call: [`super::HygieneEvent`].
    pub const HYGIENE: u32 = 20;
    /// A CUDA driver or NVRTC setup call: [`crate::gpu::CudaEvent`].
    pub const CUDA: u32 = 80;
    /// A socket connected through a cgroup `connect4/6` hook: [`super::ConnectEvent`].
    pub const FLOW_CONNECT: u32 = 60;
    /// The first bytes of one segment of a flow: [`super::SampleEvent`].
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

/// Bytes of comm, as the kernel's `TASK_COMM_LEN`.
pub const COMM_LEN: usize = 16;
/// Bytes of the executable path kept per exec (longer paths are truncated).
pub const FILENAME_LEN: usize = 256;
/// Bytes of the NUL-separated argument vector kept per exec.
pub const ARGV_LEN: usize = 512;

/// A process image was replaced by `execve`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    pub header: EventHeader,
    /// Thread-group id of the parent (`real_parent`), 0 when unreadable.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes of `argv` that are valid (NUL-separated arguments).
    pub argv_len: u16,
    /// Set when the argument vector was longer than [`ARGV_LEN`].
    pub argv_truncated: u8,
    pub _pad: u8,
    pub comm: [u8; COMM_LEN],
    /// NUL-terminated path passed to execve.
    pub filename: [u8; FILENAME_LEN],
    pub argv: [u8; ARGV_LEN],
}
const _: () = assert!(size_of::<ExecEvent>() == 832);

/// A process (thread-group leader) exited.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: EventHeader,
    /// `task_struct.exit_code`: the wait(2) status.
    pub exit_code: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ExitEvent>() == 40);

/// A process forked a child process. The header is the parent's (the task
/// that called fork); the child runs the parent's image until it execs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub header: EventHeader,
    pub child_tgid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ForkEvent>() == 40);

/// What a [`HygieneEvent`] reports (docs/signatures.md, CPU proof-of-work:
/// XMRig writes MSRs, loads the msr module and reserves huge pages).
pub mod hygiene {
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
}

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

/// Address family values as the kernel numbers them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// A socket was connected from a process in the watched cgroup. The socket
/// cookie ties it to the [`SampleEvent`]s of the same flow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnectEvent {
    pub header: EventHeader,
    pub cookie: u64,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// IPPROTO_TCP (6) or IPPROTO_UDP (17).
    pub protocol: u8,
    pub _pad0: u8,
    /// Destination port, host byte order.
    pub dport: u16,
    pub _pad1: u16,
    /// Destination address: 4 bytes for IPv4, 16 for IPv6, network order.
    pub daddr: [u8; 16],
    pub comm: [u8; COMM_LEN],
}
const _: () = assert!(size_of::<ConnectEvent>() == 80);

/// Direction of a sampled segment, seen from the local socket.
pub mod direction {
    pub const EGRESS: u8 = 0;
    pub const INGRESS: u8 = 1;
}

/// Bytes of payload copied per sampled segment: enough for a whole stratum
/// login line (XMRig's lists every algorithm it supports: ~700 bytes) and a
/// full Ethernet-MSS segment.
pub const SAMPLE_LEN: usize = 2048;

/// The first bytes of one TCP segment's payload.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SampleEvent {
    pub header: EventHeader,
    pub cookie: u64,
    /// [`direction::EGRESS`] or [`direction::INGRESS`].
    pub direction: u8,
    /// 0-based index of this sample among the samples of its direction
    /// (a chunk of a long segment is a sample).
    pub segment: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub protocol: u8,
    /// Payload bytes in the whole segment (may exceed `offset + captured`).
    pub payload_len: u32,
    /// Bytes of `data` that are valid.
    pub captured: u32,
    /// Ports from the packet, host byte order.
    pub sport: u16,
    pub dport: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// Where `data` starts in the segment's payload: a segment longer than
    /// [`SAMPLE_LEN`] is sampled in consecutive chunks
    /// ([`crate::flow::CHUNKS_PER_SEGMENT`] at most), each its own sample.
    pub offset: u32,
    pub _pad: u32,
    pub data: [u8; SAMPLE_LEN],
}
const _: () = assert!(size_of::<SampleEvent>() == 96 + SAMPLE_LEN);
// The eBPF side bounds copy lengths with a mask.
const _: () = assert!(SAMPLE_LEN.is_power_of_two());

/// Size of the event whose header says `kind`, or `None` for an unknown kind.
pub const fn size_of_kind(kind: u32) -> Option<usize> {
    match kind {
        kind::PROCESS_EXEC => Some(size_of::<ExecEvent>()),
        kind::PROCESS_EXIT => Some(size_of::<ExitEvent>()),
        kind::PROCESS_FORK => Some(size_of::<ForkEvent>()),
        kind::HYGIENE => Some(size_of::<HygieneEvent>()),
        kind::CUDA => Some(size_of::<crate::gpu::CudaEvent>()),
        kind::FLOW_CONNECT => Some(size_of::<ConnectEvent>()),
        kind::FLOW_SAMPLE => Some(size_of::<SampleEvent>()),
        _ => None,
    }
}
