//! Whether the agent sees the host's process ids.
//!
//! The eBPF programs stamp every event with the pid the *initial* PID
//! namespace gives a task (`bpf_get_current_pid_tgid`). The agent reads
//! /proc with those pids and recognises itself by its own pid. Inside a
//! PID namespace of its own (a container without `--pid=host` or
//! `hostPID: true`) its pid, and /proc's, are another namespace's: the
//! agent would name the wrong processes in findings, read the wrong /proc
//! entries and watch itself. So it refuses to start there, saying how to
//! fix it, and `assay doctor` shows the check.

use std::{fs, path::Path};

use crate::kernel::features::Probe;

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`, fixed
/// since Linux 3.8).
pub const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// How to run the agent so that it sees host pids.
pub const FIX: &str = "run it in the host's PID namespace (docker/podman `--pid=host`, \
     Kubernetes `hostPID: true`, systemd: no PrivatePIDs=) with the host's /proc";

/// `ns_link`: the target of `/proc/self/ns/pid` (`pid:[4026531836]`).
fn namespace_inode(ns_link: &str) -> Option<u64> {
    ns_link
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The check, from the files that say it: `/proc/self/ns/pid`, and
/// `/proc/self` (which names our pid in /proc's namespace).
pub fn check_at(proc_root: &Path, own_pid: u32) -> Probe {
    let ns = match fs::read_link(proc_root.join("self/ns/pid")) {
        Ok(link) => link.to_string_lossy().into_owned(),
        Err(err) => return Probe::Unavailable(format!("cannot read /proc/self/ns/pid: {err}")),
    };
    match namespace_inode(&ns) {
        Some(INIT_PID_NS_INO) => {}
        Some(_) => {
            return Probe::Unavailable(format!(
                "the agent runs in a PID namespace of its own ({ns}), so event pids and /proc \
                 disagree: {FIX}"
            ));
        }
        None => return Probe::Unavailable(format!("unreadable PID namespace link {ns:?}")),
    }
    let proc_self = fs::read_link(proc_root.join("self"))
        .ok()
        .and_then(|l| l.to_str()?.parse::<u32>().ok());
    if proc_self != Some(own_pid) {
        return Probe::Unavailable(format!(
            "/proc is mounted for another PID namespace (it calls this process {proc_self:?}, \
             not {own_pid}): {FIX}"
        ));
    }
    Probe::Available(format!("host PID namespace ({ns})"))
}

/// The check for this process.
pub fn check() -> Probe {
    check_at(Path::new("/proc"), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_links_are_parsed_strictly() {
        assert_eq!(namespace_inode("pid:[4026531836]"), Some(INIT_PID_NS_INO));
        assert_eq!(namespace_inode("pid:[4026532412]"), Some(4_026_532_412));
        for bad in [
            "",
            "pid:[]",
            "net:[4026531836]",
            "pid:[x]",
            "pid:4026531836",
        ] {
            assert_eq!(namespace_inode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_pid_that_proc_does_not_call_us_by_is_refused() {
        // The suites run on the host: its namespace passes with our pid,
        // and fails with any other (as /proc of another namespace would).
        assert!(check().is_available(), "{:?}", check());
        let other = check_at(Path::new("/proc"), std::process::id() + 1);
        assert!(!other.is_available());
    }

    #[test]
    fn a_namespace_of_its_own_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("assay-pidns-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("self/ns")).unwrap();
        let _ = std::fs::remove_file(dir.join("self/ns/pid"));
        std::os::unix::fs::symlink("pid:[4026532412]", dir.join("self/ns/pid")).unwrap();
        let probe = check_at(&dir, std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        let Probe::Unavailable(why) = probe else {
            panic!("accepted a namespace of its own");
        };
        assert!(why.contains("hostPID"), "{why}");
    }
}
