//! The capabilities the agent needs, checked before anything is loaded so
//! that a missing one is named, not discovered as an EPERM deep in a load.
//!
//! The exact set (deploy/assay.service grants these and nothing else):
//! - `CAP_BPF`: create maps, load programs, bpf_link.
//! - `CAP_PERFMON`: tracing programs (tp_btf, raw_tp, uprobes, perf
//!   events), `bpf_probe_read_*`, system-wide cpu-clock perf events.
//! - `CAP_NET_ADMIN`: attach cgroup programs (sock_addr, cgroup_skb,
//!   device, sysctl).
//! - `CAP_SYS_PTRACE`: read other processes' /proc entries that need
//!   ptrace access (fd links to find socket owners, maps and smaps, root,
//!   exe).
//! - `CAP_DAC_READ_SEARCH`: read /proc and files (configs, libraries in
//!   containers' roots) whatever their mode.
//! - `CAP_SYS_RESOURCE`: raise RLIMIT_MEMLOCK, which kernels before 5.11
//!   charge BPF memory to (optional on newer kernels).

/// (bit, name, why) of every capability the agent needs.
pub const REQUIRED: [(u32, &str, &str); 5] = [
    (39, "CAP_BPF", "load eBPF programs and maps"),
    (38, "CAP_PERFMON", "run tracing programs and perf events"),
    (12, "CAP_NET_ADMIN", "attach programs to cgroups"),
    (19, "CAP_SYS_PTRACE", "read other processes' /proc entries"),
    (
        2,
        "CAP_DAC_READ_SEARCH",
        "read /proc and files of any owner",
    ),
];

/// Capabilities in `required` that the effective set `cap_eff` (the hex
/// `CapEff:` of /proc/self/status) lacks.
pub fn missing(
    cap_eff: u64,
    required: &[(u32, &'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    required
        .iter()
        .filter(|(bit, _, _)| cap_eff & (1u64 << bit) == 0)
        .map(|(_, name, why)| (*name, *why))
        .collect()
}

/// The effective capability set of this process.
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// An error naming every missing capability, or Ok.
pub fn check() -> anyhow::Result<()> {
    let Some(eff) = effective() else {
        return Ok(());
    };
    let missing = missing(eff, &REQUIRED);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(name, why)| format!("{name} (to {why})"))
        .collect();
    anyhow::bail!(
        "missing capabilities: {}. Run as root, or grant them (deploy/assay.service does)",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_capability_is_named() {
        let all: u64 = REQUIRED.iter().map(|(bit, _, _)| 1u64 << bit).sum();
        assert!(missing(all, &REQUIRED).is_empty());
        assert!(missing(u64::MAX, &REQUIRED).is_empty());
        let without_bpf = all & !(1 << 39);
        assert_eq!(
            missing(without_bpf, &REQUIRED),
            vec![("CAP_BPF", "load eBPF programs and maps")]
        );
        assert_eq!(missing(0, &REQUIRED).len(), REQUIRED.len());
        assert!(effective().is_some());
    }
}
