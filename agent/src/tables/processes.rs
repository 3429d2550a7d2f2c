//! The process table: every process the agent knows, from exec events and a
//! /proc scan at start (processes that predate the agent).
//!
//! Bounded: beyond `capacity` entries new processes are not recorded (and
//! counted); they are still looked up in /proc on demand when evidence names
//! them, so nothing is attributed wrongly, only less cheaply.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fs,
};

use assay_common::event::ExecEvent;
use procfs::process::{Process, Stat};
use serde::Serialize;

use crate::{
    kernel::cgroup,
    sensors::decode::{ExecEventExt as _, c_string, split_nul},
    tables::workload::{self, Workload},
};

#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
    pub argv_truncated: bool,
    /// `argv` is what the process runs with: from its exec event, or read
    /// from /proc on a worker. A process found in /proc (started before
    /// the agent, or missed) has it unread until then: reading another
    /// process's command line takes its memory-map lock, which a process
    /// can hold for as long as it likes (a fault on a FUSE mapping), so
    /// never on the event loop.
    #[serde(skip)]
    pub argv_known: bool,
    /// cgroup v2 path relative to the cgroup2 root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip)]
    pub cgroup_id: u64,
    #[serde(skip)]
    pub session: Option<u32>,
    /// Set once cgroup path and session were read from /proc. Exec events
    /// leave them unread: most processes never produce evidence, and an
    /// exec storm must not become a storm of /proc reads.
    #[serde(skip)]
    context_loaded: bool,
    /// How the agent learned of it: "exec", "fork" or "proc-scan".
    pub source: &'static str,
    /// When it started (exec or fork time; for older processes, from
    /// /proc/<pid>/stat), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Device and inode of the executable file (read with the context):
    /// the same binary under any name or path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_inode: Option<ExeInode>,
    /// The executable as the kernel resolved it (`/proc/<pid>/exe`), read
    /// with the context: no `..`, no symlinks, whatever path execve was
    /// given. Policy matches this, never [`Self::exe`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_exe: Option<String>,
    /// When the table took it in (CLOCK_MONOTONIC): a /proc listing taken
    /// before that cannot show it, and must not end it.
    #[serde(skip)]
    pub known_since_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExeInode {
    pub dev: u64,
    pub ino: u64,
}

/// Device and inode of the process's executable, from the inode the
/// kernel holds (`/proc/<pid>/exe` is followed without a path lookup).
/// `AT_STATX_DONT_SYNC` keeps network and FUSE file systems from asking
/// their server (or a hostile FUSE daemon that never answers): the inode
/// number and device are known locally either way.
fn exe_inode(pid: u32) -> Option<ExeInode> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/exe")).ok()?;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: a NUL-terminated path and a buffer of the size statx writes.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_INO,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: statx succeeded, so it filled the buffer.
    let stx = unsafe { stx.assume_init() };
    Some(ExeInode {
        dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
    })
}

fn rfc3339_of_monotonic(ns: u64) -> String {
    humantime::format_rfc3339_millis(crate::time::wall_of_monotonic(ns)).to_string()
}

impl ProcessInfo {
    /// Whether its cgroup path and session were read (see
    /// `context_loaded`): then [`Self::workload`] is its own.
    pub fn context_known(&self) -> bool {
        self.context_loaded
    }

    /// The workload this process belongs to.
    pub fn workload(&self) -> Workload {
        if let Some(w) = self.cgroup.as_deref().and_then(workload::from_cgroup_path) {
            return w;
        }
        match self.session {
            // Session 0 is the kernel's; 1 is init's: not a user's process tree.
            Some(sid) if sid > 1 => Workload::Session { sid },
            _ => Workload::Process { tgid: self.pid },
        }
    }
}

#[derive(Debug)]
pub struct ProcessTable {
    processes: HashMap<u32, ProcessInfo>,
    capacity: usize,
    pub dropped: u64,
    /// The last process looked up while the table was full.
    overflow: Option<ProcessInfo>,
    /// Processes found in /proc whose command line is still to be read
    /// (on a worker: see [`ProcessInfo::argv_known`]), oldest first.
    argv_wanted: VecDeque<u32>,
    /// Command-line reads not queued because the queue was full.
    pub argv_reads_dropped: u64,
}

/// Command-line reads waiting for a worker, at most.
const ARGV_QUEUE: usize = 4096;

impl ProcessTable {
    pub fn new(capacity: usize) -> Self {
        Self {
            processes: HashMap::new(),
            capacity,
            dropped: 0,
            overflow: None,
            argv_wanted: VecDeque::new(),
            argv_reads_dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Records every process in /proc. Returns how many were found.
    pub fn scan_proc(&mut self) -> usize {
        let Ok(processes) = procfs::process::all_processes() else {
            return 0;
        };
        let mut found = 0;
        for process in processes.flatten() {
            if let Some(info) = read_process(&process) {
                self.want_argv(info.pid);
                self.insert(info);
                found += 1;
            }
        }
        found
    }

    pub fn on_exec(&mut self, event: &ExecEvent) {
        self.insert(ProcessInfo {
            pid: event.header.tgid,
            ppid: event.ppid,
            uid: event.uid,
            comm: c_string(&event.comm),
            exe: c_string(&event.filename),
            argv: event.argv_list(),
            argv_truncated: event.argv_truncated != 0,
            argv_known: true,
            cgroup: None,
            cgroup_id: event.header.cgroup_id,
            session: None,
            context_loaded: false,
            source: "exec",
            started: Some(rfc3339_of_monotonic(event.header.timestamp_ns)),
            exe_inode: None,
            resolved_exe: None,
            known_since_ns: 0,
        });
    }

    /// A fork: the child runs its parent's image (exe, argv, uid) until it
    /// execs, in its parent's cgroup. A parent the table does not know is
    /// left to the lazy /proc lookup, as any unknown process. `cgroup_id`
    /// is the one the fork was seen in (0: unknown, the parent's is kept).
    pub fn on_fork(&mut self, parent: u32, child: u32, at_ns: u64, cgroup_id: u64) {
        let Some(parent_info) = self.processes.get(&parent) else {
            return;
        };
        let info = ProcessInfo {
            pid: child,
            ppid: parent,
            cgroup_id: if cgroup_id != 0 {
                cgroup_id
            } else {
                parent_info.cgroup_id
            },
            context_loaded: false,
            source: "fork",
            started: Some(rfc3339_of_monotonic(at_ns)),
            ..parent_info.clone()
        };
        if !info.argv_known {
            self.want_argv(child);
        }
        self.insert(info);
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProcessInfo> {
        self.processes.values()
    }

    /// The process with this tgid if the table has it; no /proc lookup.
    pub fn get(&self, tgid: u32) -> Option<&ProcessInfo> {
        self.processes.get(&tgid)
    }

    /// The chain of parents of `tgid`, nearest first, as far as the table
    /// knows them (at most `limit`; init and loops end it).
    pub fn ancestors(&self, tgid: u32, limit: usize) -> Vec<&ProcessInfo> {
        let mut chain: Vec<&ProcessInfo> = Vec::new();
        let mut next = self.processes.get(&tgid).map(|p| p.ppid);
        while let Some(ppid) = next {
            if chain.len() >= limit || ppid == 0 || chain.iter().any(|p| p.pid == ppid) {
                break;
            }
            let Some(parent) = self.processes.get(&ppid) else {
                break;
            };
            chain.push(parent);
            next = (parent.pid != 1).then_some(parent.ppid);
        }
        chain
    }

    pub fn on_exit(&mut self, tgid: u32) -> Option<ProcessInfo> {
        self.processes.remove(&tgid)
    }

    /// The process with this tgid, from the table or, failing that, /proc,
    /// with its cgroup path and session read while it is alive.
    pub fn get_or_load(&mut self, tgid: u32) -> Option<&ProcessInfo> {
        if !self.processes.contains_key(&tgid) {
            let info = read_proc(tgid)?;
            self.want_argv(tgid);
            if self.processes.len() >= self.capacity {
                // Table full: still answer, uncached, and count it.
                self.dropped += 1;
                self.overflow = Some(info);
                return self.overflow.as_ref();
            }
            self.processes.insert(
                tgid,
                ProcessInfo {
                    known_since_ns: crate::time::monotonic_ns(),
                    ..info
                },
            );
        }
        let info = self.processes.get_mut(&tgid)?;
        if !info.context_loaded {
            load_context(info);
        }
        Some(info)
    }

    /// The cgroup a live event saw the process in (a connect): when it is
    /// not the one on record, the process moved and its context (cgroup
    /// path, hence workload) is read again when next needed.
    pub fn note_cgroup(&mut self, tgid: u32, cgroup_id: u64) {
        if let Some(info) = self.processes.get_mut(&tgid)
            && cgroup_id != 0
            && info.cgroup_id != cgroup_id
        {
            info.cgroup_id = cgroup_id;
            info.context_loaded = false;
        }
    }

    /// As [`Self::get_or_load`], with the cgroup path read again: evidence
    /// must name the workload the process is in now, and a process can be
    /// moved between cgroups without any event of ours seeing it.
    pub fn get_for_evidence(&mut self, tgid: u32) -> Option<&ProcessInfo> {
        let info = self.processes.get_mut(&tgid);
        if let Some(info) = info
            && info.context_loaded
        {
            let now = cgroup::process_cgroup(tgid);
            if now.is_some() && now != info.cgroup {
                info.cgroup = now;
            }
        }
        self.get_or_load(tgid)
    }

    fn want_argv(&mut self, tgid: u32) {
        if self.argv_wanted.len() >= ARGV_QUEUE {
            self.argv_reads_dropped += 1;
            return;
        }
        self.argv_wanted.push_back(tgid);
    }

    /// The next process whose command line should be read, if any is
    /// still unread (one that exec'd meanwhile has it from the kernel).
    pub fn next_argv_wanted(&mut self) -> Option<u32> {
        while let Some(tgid) = self.argv_wanted.pop_front() {
            if self.processes.get(&tgid).is_none_or(|p| !p.argv_known) {
                return Some(tgid);
            }
        }
        None
    }

    /// Whether command lines are still waiting to be read.
    pub fn argv_wanted(&self) -> bool {
        !self.argv_wanted.is_empty()
    }

    /// A read that could not start (no free worker): first in line again.
    pub fn retry_argv_later(&mut self, tgid: u32) {
        self.argv_wanted.push_front(tgid);
    }

    /// The command line a worker read. Returns false when the table has
    /// no such process, or has it from an exec since (which wins: it is
    /// the newer image's).
    pub fn set_argv(&mut self, tgid: u32, argv: Vec<String>) -> bool {
        match self.processes.get_mut(&tgid) {
            Some(info) if !info.argv_known => {
                info.argv = argv;
                info.argv_known = true;
                true
            }
            _ => false,
        }
    }

    fn insert(&mut self, mut info: ProcessInfo) {
        if self.processes.len() >= self.capacity && !self.processes.contains_key(&info.pid) {
            self.dropped += 1;
            return;
        }
        info.known_since_ns = crate::time::monotonic_ns();
        self.processes.insert(info.pid, info);
    }

    /// Processes the table knew before `taken_ns` that a listing of /proc
    /// taken then did not show: their exits were lost (a full ring).
    pub fn missing_from(&self, listed: &HashSet<u32>, taken_ns: u64) -> Vec<u32> {
        self.processes
            .values()
            .filter(|p| p.known_since_ns < taken_ns && !listed.contains(&p.pid))
            .map(|p| p.pid)
            .collect()
    }
}

/// cgroup path and session, and the resolved executable when execve was
/// given a relative path: read from /proc while the process is alive.
fn load_context(info: &mut ProcessInfo) {
    info.context_loaded = true;
    info.cgroup = cgroup::process_cgroup(info.pid);
    info.exe_inode = exe_inode(info.pid);
    if let Some(fields) = open_process(info.pid)
        .and_then(|p| p.stat().ok())
        .and_then(StatFields::of)
    {
        info.session = Some(fields.session);
    }
    if let Ok(link) = fs::read_link(format!("/proc/{}/exe", info.pid)) {
        let link = link.to_string_lossy().into_owned();
        if !info.exe.starts_with('/') {
            info.exe = link.clone();
        }
        info.resolved_exe = Some(link);
    }
}

/// The thread groups /proc lists now, and when the listing began
/// (CLOCK_MONOTONIC), for a worker. None when /proc cannot be listed (or
/// lists nothing): then nothing can be concluded from it.
pub fn list_proc() -> Option<(u64, HashSet<u32>)> {
    let taken_ns = crate::time::monotonic_ns();
    let listed: HashSet<u32> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    (!listed.is_empty()).then_some((taken_ns, listed))
}

/// Whether /proc still has this thread group (a zombie counts: its exit
/// was seen, or will be).
pub fn in_proc(tgid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{tgid}")).exists()
}

/// A process's command line, read from /proc: for a worker, never the
/// loop (see [`ProcessInfo::argv_known`]). None when it is gone.
pub fn read_argv(pid: u32) -> Option<Vec<String>> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|bytes| split_nul(&bytes))
}

fn open_process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn read_proc(pid: u32) -> Option<ProcessInfo> {
    read_process(&open_process(pid)?)
}

/// stat, status and the exe link are read relative to one open
/// `/proc/<pid>` directory: all of the same process.
fn read_process(process: &Process) -> Option<ProcessInfo> {
    let pid = u32::try_from(process.pid()).ok()?;
    let fields = StatFields::of(process.stat().ok()?)?;
    let exe = process
        .exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The real uid (the first of status's `Uid:` line).
    let uid = process.status().map(|s| s.ruid).unwrap_or(0);
    Some(ProcessInfo {
        pid,
        ppid: fields.ppid,
        uid,
        comm: fields.comm,
        resolved_exe: (!exe.is_empty()).then(|| exe.clone()),
        known_since_ns: 0,
        exe,
        argv: Vec::new(),
        argv_truncated: false,
        argv_known: false,
        cgroup: cgroup::process_cgroup(pid),
        cgroup_id: 0,
        session: Some(fields.session),
        context_loaded: true,
        source: "proc-scan",
        started: Some(rfc3339_of_monotonic(
            fields.start_ticks.saturating_mul(1_000_000_000) / clock_ticks_per_second(),
        )),
        exe_inode: exe_inode(pid),
    })
}

#[cfg(test)]
impl ProcessInfo {
    /// As an exec event leaves it: cgroup path and session unread.
    pub(crate) fn with_context_unread(mut self) -> Self {
        self.context_loaded = false;
        self.cgroup = None;
        self.session = None;
        self
    }

    /// A process with every field empty but its pid, for other modules'
    /// tests.
    pub(crate) fn for_tests(pid: u32) -> Self {
        Self {
            pid,
            ppid: 0,
            uid: 0,
            comm: String::new(),
            exe: String::new(),
            argv: Vec::new(),
            argv_truncated: false,
            argv_known: true,
            cgroup: None,
            cgroup_id: 0,
            session: None,
            context_loaded: true,
            source: "exec",
            started: None,
            exe_inode: None,
            resolved_exe: None,
            known_since_ns: 0,
        }
    }
}

/// What the table keeps of `/proc/<pid>/stat`. procfs parses the line
/// ("pid (comm) state ppid pgrp session ..."): comm may hold spaces and
/// parentheses, and it splits at the last ')'.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    comm: String,
    ppid: u32,
    session: u32,
    /// Field 22: start time in clock ticks after boot.
    start_ticks: u64,
}

impl StatFields {
    fn of(stat: Stat) -> Option<Self> {
        Some(Self {
            ppid: u32::try_from(stat.ppid).ok()?,
            session: u32::try_from(stat.session).ok()?,
            start_ticks: stat.starttime,
            comm: stat.comm,
        })
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz as u64,
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_stat(stat: &str) -> Option<StatFields> {
        use procfs::FromRead as _;
        StatFields::of(Stat::from_read(stat.as_bytes()).ok()?)
    }

    /// A real line (Linux 6.x) with `comm` in place of its command name.
    fn stat_line(comm: &str) -> String {
        format!(
            "1234 ({comm}) S 77 1234 99 0 -1 4194560 123 0 0 0 5 6 0 0 20 0 1 0 \
             150227 3133440 409 18446744073709551615 94634752819200 94634752839081 \
             140730417102912 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94634752855088 \
             94634752856704 94634805579776 140730417105621 140730417105641 \
             140730417105641 140730417106923 0\n"
        )
    }

    #[test]
    fn stat_with_a_hostile_comm_parses() {
        for comm in [
            "evil) 1 2 (x",
            "a) b (c",
            "(",
            ")",
            ") S 1 1 1 (",
            "with space",
        ] {
            assert_eq!(
                parse_stat(&stat_line(comm)),
                Some(StatFields {
                    comm: comm.into(),
                    ppid: 77,
                    session: 99,
                    start_ticks: 150227,
                }),
                "{comm}"
            );
        }
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (a) S"), None);
        // Cut short before the start time: refused, not half read.
        assert_eq!(
            parse_stat("1234 (evil) 1 2 (x) S 77 1234 99 0 -1 4194560 123 0 0 0"),
            None
        );
    }

    #[test]
    fn this_process_is_found_in_proc() {
        let mut table = ProcessTable::new(16);
        let me = std::process::id();
        let info = table.get_or_load(me).expect("own /proc entry");
        assert_eq!(info.pid, me);
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        // SAFETY: getuid has no preconditions.
        assert_eq!(info.uid, unsafe { libc::getuid() });
        assert!(info.started.as_deref().is_some_and(|t| t.ends_with('Z')));
        let own = std::fs::metadata(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            info.exe_inode,
            Some(ExeInode {
                dev: std::os::unix::fs::MetadataExt::dev(&own),
                ino: std::os::unix::fs::MetadataExt::ino(&own)
            })
        );
        assert_eq!(
            info.resolved_exe.as_deref().map(std::path::Path::new),
            Some(std::env::current_exe().unwrap().as_path())
        );
        // The command line is not read on the loop: it waits for a worker.
        assert!(info.argv.is_empty() && !info.argv_known);
        assert!(info.session.is_some());
        assert_eq!(table.next_argv_wanted(), Some(me));
        let argv = read_argv(me).expect("own command line");
        assert_eq!(argv, std::env::args().collect::<Vec<_>>());
        assert!(table.set_argv(me, argv));
        assert!(table.get(me).unwrap().argv_known);
        // Read once: not wanted again, and a late second answer is ignored.
        assert_eq!(table.next_argv_wanted(), None);
        assert!(!table.set_argv(me, vec!["late".into()]));
    }

    #[test]
    fn an_exec_while_the_command_line_waits_wins() {
        let mut table = ProcessTable::new(16);
        let me = std::process::id();
        table.get_or_load(me).expect("own /proc entry");
        // SAFETY: ExecEvent is plain data (integers and byte arrays).
        let mut exec: ExecEvent = unsafe { std::mem::zeroed() };
        exec.header.tgid = me;
        exec.argv[..8].copy_from_slice(b"new\0arg\0");
        exec.argv_len = 8;
        table.on_exec(&exec);
        // The queued read finds the process known: skipped, and its
        // answer (the old image's) would not overwrite the exec's.
        assert_eq!(table.next_argv_wanted(), None);
        assert!(!table.set_argv(me, vec!["old".into()]));
        assert_eq!(table.get(me).unwrap().argv, ["new", "arg"]);
    }

    #[test]
    fn a_listing_ends_only_processes_known_before_it_was_taken() {
        let mut table = ProcessTable::new(16);
        let me = std::process::id();
        table.get_or_load(me).expect("own /proc entry");
        table.on_fork(me, 999_998, 0, 0);
        let (taken_ns, listed) = list_proc().expect("/proc lists");
        assert!(listed.contains(&me));
        // Known before the listing, not in it: its exit was lost.
        assert_eq!(table.missing_from(&listed, taken_ns), [999_998]);
        assert!(!in_proc(999_998) && in_proc(me));
        // Taken in after the listing: the listing cannot speak for it.
        table.on_fork(me, 999_997, 0, 0);
        let mut missing = table.missing_from(&listed, taken_ns);
        missing.sort_unstable();
        assert_eq!(missing, [999_998]);
    }

    #[test]
    fn a_fork_of_a_process_with_an_unread_command_line_is_queued_too() {
        let mut table = ProcessTable::new(16);
        let me = std::process::id();
        table.get_or_load(me).expect("own /proc entry");
        table.on_fork(me, 999_999, 0, 0);
        assert_eq!(table.next_argv_wanted(), Some(me));
        assert_eq!(table.next_argv_wanted(), Some(999_999));
    }

    #[test]
    fn the_scan_finds_this_process_with_its_comm() {
        let mut table = ProcessTable::new(1 << 16);
        assert!(table.scan_proc() > 0);
        let me = table.get(std::process::id()).expect("own /proc entry");
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(me.comm, comm.trim_end_matches('\n'));
        assert_eq!(me.source, "proc-scan");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = ProcessTable::new(1);
        assert!(table.get_or_load(std::process::id()).is_some());
        // Another live process: the parent. Answered, not stored, counted.
        let parent = std::os::unix::process::parent_id();
        assert_eq!(table.get_or_load(parent).map(|p| p.pid), Some(parent));
        assert_eq!(table.len(), 1);
        assert_eq!(table.dropped, 1);
    }

    fn known(pid: u32, ppid: u32, exe: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            uid: 1000,
            comm: exe.rsplit('/').next().unwrap_or(exe).into(),
            exe: exe.into(),
            argv: vec![exe.into(), "--flag".into()],
            argv_truncated: false,
            argv_known: true,
            cgroup: None,
            cgroup_id: 42,
            session: None,
            context_loaded: false,
            source: "exec",
            started: None,
            exe_inode: None,
            resolved_exe: None,
            known_since_ns: 0,
        }
    }

    #[test]
    fn a_forked_child_inherits_its_parents_image_and_has_a_lineage() {
        let mut table = ProcessTable::new(16);
        table.insert(known(1, 0, "/sbin/init"));
        table.insert(known(100, 1, "/bin/sh"));
        table.insert(known(200, 100, "/opt/x/kworker-sync"));
        table.on_fork(200, 201, 1, 0);
        let child = table.processes.get(&201).expect("child recorded");
        assert_eq!(
            (child.ppid, child.exe.as_str(), child.source),
            (200, "/opt/x/kworker-sync", "fork")
        );
        assert_eq!(child.argv, vec!["/opt/x/kworker-sync", "--flag"]);
        let chain: Vec<u32> = table.ancestors(201, 8).iter().map(|p| p.pid).collect();
        assert_eq!(chain, vec![200, 100, 1]);
        assert_eq!(table.ancestors(201, 2).len(), 2);
        // The cgroup: the one the fork was seen in, else its parent's.
        assert_eq!(child.cgroup_id, 42);
        table.on_fork(200, 202, 1, 7);
        assert_eq!(table.processes[&202].cgroup_id, 7);
        // Unknown parent: nothing invented.
        table.on_fork(999, 1000, 1, 0);
        assert!(!table.processes.contains_key(&1000));
    }

    #[test]
    fn a_ppid_loop_ends_the_lineage() {
        let mut table = ProcessTable::new(16);
        table.insert(known(10, 11, "/a"));
        table.insert(known(11, 10, "/b"));
        assert_eq!(table.ancestors(10, 8).len(), 2);
    }
}
