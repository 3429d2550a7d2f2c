//! What each rung does to the kernel: files of the cgroup v2 interface,
//! and pidfd signals where a workload has no cgroup of its own. Run on
//! the bounded workers, never on the event loop: a write to `cgroup.freeze`
//! returns at once but the freeze completes later, and is waited for here.
//!
//! Every action that can be undone returns how: a frozen cgroup is thawed,
//! `cpu.max` gets its old value back, deny-egress entries are removed
//! ([`super::deny`]). A kill cannot be undone.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use assay_common::deny::DenyKey;

use super::{deny, ladder::Target};
use crate::correlate::policy::EnforceAction;

/// How long a freeze or a kill is waited for (under the workers' deadline).
const SETTLE: Duration = Duration::from_millis(1200);
/// `cpu.max` while throttled: a tenth of one CPU.
pub const THROTTLED_CPU_MAX: &str = "10000 100000";

/// How to take an action back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    Thaw(PathBuf),
    CpuMax(PathBuf, String),
    /// deny-egress entries to remove, and the cgroup they were for.
    Allow(PathBuf, Vec<DenyKey>),
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Self::Thaw(dir) => format!("thawed {}", dir.display()),
            Self::CpuMax(dir, old) => format!("cpu.max of {} back to {old:?}", dir.display()),
            Self::Allow(dir, keys) => format!(
                "deny-egress lifted for {} ({} entries removed)",
                dir.display(),
                keys.len()
            ),
        }
    }
}

/// The directory of cgroup `path` (relative to the mount) under `root`.
pub fn dir(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// What is checked again just before a cgroup is acted on.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// For a session's workload: the session every process in the cgroup
    /// must be in (the table may not know a process that joined it).
    pub session: Option<u32>,
    /// The offending process tree, killed instead when the cgroup turns
    /// out to be shared.
    pub tree: Vec<u32>,
}

/// Takes `action` on `target`: what was done, and how to undo it.
pub fn apply(
    root: &Path,
    action: EnforceAction,
    target: &Target,
    guard: &Guard,
) -> Result<(String, Option<Undo>), String> {
    if let Target::Cgroup(path) | Target::Egress { cgroup: path, .. } = target
        && let Err(shared) = only_session(&dir(root, path), guard.session)
    {
        return match action {
            EnforceAction::Kill if !guard.tree.is_empty() => kill_processes(&guard.tree)
                .map(|done| (format!("{shared}: {done}"), None))
                .map_err(|err| format!("{shared}: {err}")),
            _ => Err(shared),
        };
    }
    match (action, target) {
        (EnforceAction::Freeze, Target::Cgroup(path)) => freeze(&dir(root, path)),
        (EnforceAction::Throttle, Target::Cgroup(path)) => throttle(&dir(root, path)),
        (EnforceAction::Kill, Target::Cgroup(path)) => kill_cgroup(&dir(root, path)),
        (EnforceAction::DenyEgress, Target::Egress { cgroup, endpoints }) => {
            let dir = dir(root, cgroup);
            deny::deny(&dir, endpoints).map(|(done, keys)| (done, Some(Undo::Allow(dir, keys))))
        }
        (EnforceAction::Kill, Target::Processes(pids)) => {
            kill_processes(pids).map(|done| (done, None))
        }
        (action, target) => Err(format!(
            "{} cannot act on {}",
            action.name(),
            target.describe()
        )),
    }
}

/// Whether every process in cgroup `dir` is in `session` (when given).
fn only_session(dir: &Path, session: Option<u32>) -> Result<(), String> {
    let Some(sid) = session else {
        return Ok(());
    };
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map_err(|e| format!("cannot read {}/cgroup.procs: {e}", dir.display()))?;
    for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        // A process gone meanwhile is no one else's.
        if let Some(other) = session_of(pid).filter(|s| *s != sid) {
            return Err(format!(
                "{} also holds pid {pid} of session {other}: not the workload's own",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The session id in /proc/PID/stat (the field after the ppid and pgrp).
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Undoes what [`apply`] did.
pub fn undo(undo: &Undo) -> Result<(), String> {
    match undo {
        Undo::Thaw(dir) => write(dir, "cgroup.freeze", "0"),
        Undo::CpuMax(dir, old) => write(dir, "cpu.max", old),
        Undo::Allow(_, keys) => {
            deny::lift(keys);
            Ok(())
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| format!("cannot write {value:?} to {}/{file}: {e}", dir.display()))
}

/// Whether `cgroup.events` in `dir` says `key value`.
fn event_is(dir: &Path, key: &str, value: &str) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|events| {
        events
            .lines()
            .any(|l| l.split_once(' ') == Some((key, value)))
    })
}

/// Polls `cgroup.events` until `key value` or [`SETTLE`] passes.
fn settle(dir: &Path, key: &str, value: &str) -> bool {
    let until = Instant::now() + SETTLE;
    loop {
        if event_is(dir, key, value) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn freeze(dir: &Path) -> Result<(String, Option<Undo>), String> {
    write(dir, "cgroup.freeze", "1")?;
    if settle(dir, "frozen", "1") {
        Ok((
            "frozen (cgroup.events: frozen 1)".into(),
            Some(Undo::Thaw(dir.to_owned())),
        ))
    } else {
        // Half frozen is worse than either: take it back.
        let _ = write(dir, "cgroup.freeze", "0");
        Err(format!(
            "{} did not report frozen within {} ms; thawed again",
            dir.display(),
            SETTLE.as_millis()
        ))
    }
}

fn throttle(dir: &Path) -> Result<(String, Option<Undo>), String> {
    let old = std::fs::read_to_string(dir.join("cpu.max")).map_err(|e| {
        format!(
            "cannot read {}/cpu.max ({e}): the cpu controller is not enabled for it",
            dir.display()
        )
    })?;
    let old = old.trim().to_owned();
    write(dir, "cpu.max", THROTTLED_CPU_MAX)?;
    Ok((
        format!("cpu.max {THROTTLED_CPU_MAX:?} (was {old:?})"),
        Some(Undo::CpuMax(dir.to_owned(), old)),
    ))
}

fn kill_cgroup(dir: &Path) -> Result<(String, Option<Undo>), String> {
    if dir.join("cgroup.kill").exists() {
        write(dir, "cgroup.kill", "1")?;
        return if settle(dir, "populated", "0") {
            Ok(("cgroup.kill: the cgroup is empty".into(), None))
        } else {
            Err(format!(
                "cgroup.kill written but {} still holds processes after {} ms",
                dir.display(),
                SETTLE.as_millis()
            ))
        };
    }
    // Before Linux 5.14: signal each process the cgroup holds.
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map_err(|e| format!("cannot read {}/cgroup.procs: {e}", dir.display()))?;
    let pids: Vec<u32> = procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    kill_processes(&pids).map(|done| (format!("no cgroup.kill: {done}"), None))
}

/// SIGKILL through a pidfd for each of `pids` (a pidfd names one process,
/// never a later one that reused its number once opened).
fn kill_processes(pids: &[u32]) -> Result<String, String> {
    let mut killed = Vec::new();
    let mut failed = Vec::new();
    for &pid in pids {
        match pidfd_kill(pid) {
            Ok(()) => killed.push(pid.to_string()),
            Err(err) => failed.push(format!("{pid}: {err}")),
        }
    }
    if killed.is_empty() {
        return Err(format!("no process killed ({})", failed.join("; ")));
    }
    let mut done = format!("SIGKILL to pids {}", killed.join(","));
    if !failed.is_empty() {
        done.push_str(&format!(" (not: {})", failed.join("; ")));
    }
    Ok(done)
}

fn pidfd_kill(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = fd as libc::c_int;
    // SAFETY: fd is the pidfd opened above; a null siginfo is allowed.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    let result = if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    result
}

/// What this kernel allows, for `assay doctor`: whether cgroup `dir` (a
/// cgroup other than the root, where these files do not exist) offers
/// `cgroup.kill` (Linux 5.14) and the v2 freezer (Linux 5.2).
pub fn kernel_allows(dir: &Path) -> (bool, bool) {
    (
        dir.join("cgroup.kill").exists(),
        dir.join("cgroup.freeze").exists(),
    )
}
