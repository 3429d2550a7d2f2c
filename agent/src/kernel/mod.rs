//! What the running kernel offers: struct offsets from its BTF, the features
//! sensors can use, where cgroup v2 is mounted, the capabilities the agent
//! holds, whether it sees host pids, and the loader that turns all that into an attach plan.

pub mod btf_offsets;
pub mod caps;
pub mod cgroup;
pub mod features;
pub mod loader;
pub mod pid_namespace;
