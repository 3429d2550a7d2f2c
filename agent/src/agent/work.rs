//! The jobs the event loop hands to the blocking workers, and what they
//! bring back. Each job only reads; what its result means is decided on
//! the loop, where the tables are.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use assay_classify::cmdline::{self, Hint};
use tracing::debug;

use crate::{
    evidence::hygiene,
    procfs::{
        open::{self, Refused},
        sockets::Snapshot,
    },
};

/// Config files larger than this are not miner configs.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// How long evidence about a process waits for its command line to be
/// read, at most ([`super::state::Agent::hold_for_command_line`]).
const COMMAND_LINE_WAIT: Duration = Duration::from_secs(2);
/// Evidence held at once, at most: beyond it, evidence is reported at
/// once, without the command line.
const HELD_FOR_COMMAND_LINE: usize = 1024;

/// Evidence about a process whose command line is being read.
pub(super) struct AwaitingCommandLine {
    tgid: u32,
    until: Instant,
    evidence: crate::evidence::Evidence,
    first_packet_ns: Option<u64>,
}

/// A finished job.
#[derive(Debug)]
pub(super) enum Done {
    /// The socket tables, to find adopted flows' owners.
    Sockets(Snapshot),
    /// What a busy process's files and mappings say.
    Busy(BusyFindings),
    /// GPU libraries processes map, for the CUDA sensor to probe.
    CudaLibraries(Vec<crate::procfs::libraries::Mapped>),
    /// The thread groups in /proc, and when the listing began.
    Listing(Option<(u64, std::collections::HashSet<u32>)>),
    /// The command line of a process found in /proc (None: it is gone).
    CommandLine {
        tgid: u32,
        argv: Option<Vec<String>>,
    },
    /// Closed CUDA launch windows with the libraries each process maps,
    /// identified by content: to be judged.
    CudaWindows(Vec<crate::sensors::cuda::CudaWindow>),
    /// The chain modules a process on a TLS 1.3 link without ALPN maps.
    NativeModules(super::storage::ModulesFound),
    /// An enforcement ladder ran.
    Enforced(crate::enforce::Ran),
    /// An enforcement action was undone (and logged).
    Undone,
}

/// Permits the command-line reads leave free for the other jobs.
const PERMITS_KEPT_FOR_OTHERS: usize = 2;

/// What [`look_at_busy_process`] found.
#[derive(Debug, Default)]
pub(super) struct BusyFindings {
    pub tgid: u32,
    /// A RandomX-dataset-sized mapping: bytes and page size (KiB).
    pub dataset_mapping: Option<(u64, u32)>,
    /// The first config file with miner hints, as the process names it.
    pub config: Option<(String, Vec<Hint>)>,
    /// Files named that were not read (FIFOs, symlinks, too large…).
    pub refused: u32,
}

/// Reads a busy process's smaps (for a RandomX dataset mapping) and the
/// config files it names (on its command line, or XMRig's default
/// `config.json` next to its binary), each as hostile input
/// ([`crate::procfs::open`]).
/// `argv` is None when the table has not read it yet: it is read here.
pub(super) fn look_at_busy_process(tgid: u32, argv: Option<&[String]>, exe: &str) -> BusyFindings {
    let read;
    let argv = match argv {
        Some(argv) => argv,
        None => {
            read = crate::tables::processes::read_argv(tgid).unwrap_or_default();
            &read
        }
    };
    let mut found = BusyFindings {
        tgid,
        ..BusyFindings::default()
    };
    if let Ok(smaps) = std::fs::read_to_string(format!("/proc/{tgid}/smaps")) {
        found.dataset_mapping = hygiene::dataset_mapping(&smaps);
    }
    let mut candidates: Vec<PathBuf> = cmdline::config_paths(argv);
    if exe.starts_with('/')
        && let Some(dir) = Path::new(exe).parent()
    {
        candidates.push(dir.join("config.json"));
    }
    for path in candidates {
        match open::read_named_file(tgid, &path, MAX_CONFIG_FILE) {
            Ok(mut bytes) => {
                bytes.truncate(cmdline::MAX_CONFIG);
                let hints = cmdline::config_hints(&bytes);
                if !hints.is_empty() {
                    found.config = Some((path.display().to_string(), hints));
                    break;
                }
            }
            Err(Refused::NotFound) => {}
            Err(why) => {
                debug!(tgid, path = %path.display(), "named file not read: {why}");
                found.refused += 1;
            }
        }
    }
    found
}

impl super::state::Agent {
    /// A job's result, back on the loop.
    pub(super) fn on_work_done(&mut self, done: Done) {
        match done {
            Done::Sockets(snapshot) => self.on_socket_snapshot(&snapshot),
            Done::Busy(found) => self.on_busy_findings(found),
            Done::CudaLibraries(found) => self.found_cuda_libraries = found,
            Done::CudaWindows(windows) => {
                for window in &windows {
                    self.on_cuda_window(window);
                }
            }
            Done::Listing(Some((taken_ns, listed))) => self.reconcile(taken_ns, &listed),
            Done::Listing(None) | Done::Undone => {}
            Done::Enforced(ran) => self.on_enforced(ran),
            Done::NativeModules(found) => self.on_native_modules(found),
            Done::CommandLine { tgid, argv } => {
                if let Some(argv) = argv
                    && self.tables.processes.set_argv(tgid, argv)
                {
                    self.check_command_line(tgid);
                }
                // Read or gone: what waited for it goes out either way.
                self.release_held(|held| held.tgid == tgid);
                self.read_command_lines();
            }
        }
    }

    /// Evidence about a process whose command line is not read yet (one
    /// that predates the agent, in the agent's first seconds; every
    /// process started since has it from its exec) waits for that read,
    /// moved to the front of the queue, up to [`COMMAND_LINE_WAIT`]: a
    /// finding without the command line is one an analyst must chase.
    /// Returns the evidence back when it need not wait.
    pub(super) fn hold_for_command_line(
        &mut self,
        evidence: crate::evidence::Evidence,
        first_packet_ns: Option<u64>,
    ) -> Option<(crate::evidence::Evidence, Option<u64>)> {
        let tgid = evidence.pid;
        let unread = self
            .tables
            .processes
            .get(tgid)
            .is_some_and(|p| !p.argv_known);
        if !unread || self.held_for_command_line.len() >= HELD_FOR_COMMAND_LINE {
            return Some((evidence, first_packet_ns));
        }
        if !self.held_for_command_line.iter().any(|h| h.tgid == tgid) {
            self.tables.processes.retry_argv_later(tgid);
            self.read_command_lines();
        }
        self.held_for_command_line.push(AwaitingCommandLine {
            tgid,
            until: Instant::now() + COMMAND_LINE_WAIT,
            evidence,
            first_packet_ns,
        });
        None
    }

    /// Reports the held evidence that `due` picks, in the order it came.
    pub(super) fn release_held(&mut self, due: impl Fn(&AwaitingCommandLine) -> bool) {
        if self.held_for_command_line.is_empty() {
            return;
        }
        let (released, kept) = std::mem::take(&mut self.held_for_command_line)
            .into_iter()
            .partition::<Vec<_>, _>(|held| due(held));
        self.held_for_command_line = kept;
        for held in released {
            self.report_now(held.evidence, held.first_packet_ns);
        }
    }

    /// Held evidence whose wait is over goes out without the command line.
    pub(super) fn release_overdue(&mut self) {
        let now = Instant::now();
        self.release_held(|held| held.until <= now);
    }

    /// Starts reads of the command lines the process table still lacks,
    /// as far as free workers allow; the rest wait for the next result or
    /// tick.
    pub(super) fn read_command_lines(&mut self) {
        while self.workers.available() > PERMITS_KEPT_FOR_OTHERS {
            let Some(tgid) = self.tables.processes.next_argv_wanted() else {
                return;
            };
            let job = move || Done::CommandLine {
                tgid,
                argv: crate::tables::processes::read_argv(tgid),
            };
            if !self.workers.submit(job) {
                self.tables.processes.retry_argv_later(tgid);
                return;
            }
        }
    }
}
