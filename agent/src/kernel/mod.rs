//! What the running kernel offers: struct offsets from its BTF, the features
//! sensors can use, and where cgroup v2 is mounted.

pub mod btf_offsets;
pub mod caps;
pub mod cgroup;
pub mod features;
pub mod libraries;
pub mod sockets;
