//! Process events: exec, exit (of a process's last thread), fork.

use super::EventHeader;

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
