//! Reads of /proc and of files that processes name. Everything here can
//! block (a process holding its mmap lock stalls a read of its smaps or
//! cmdline; a path an untrusted process names may be a FIFO): the agent
//! calls it only from bounded blocking workers, never on the event loop.

pub(crate) mod diag;
pub mod identity;
pub mod libraries;
pub mod native_modules;
pub mod open;
pub mod sockets;
pub mod workers;
