//! Hardware counters, where a PMU exists: instructions, cycles and
//! last-level-cache misses of a busy thread, giving IPC (instructions per
//! cycle) and MPKI (misses per kilo-instruction).
//!
//! Hashing loops have steady, characteristic values (docs/signatures.md cites
//! Gangwal et al., arXiv 1909.00268: a classifier over such counters
//! separates miners from other CPU-heavy work on 5 s samples). assay has no
//! recorded ground truth of its own yet (its development VMs have no PMU),
//! so it reports the figures as facts in the finding's `cpu` block and
//! uses them for nothing else: no threshold here is guessed.
//!
//! Counting, not sampling: one group of three counters per followed
//! thread, read when a finding is written. Opened only for threads that
//! already keep a core busy, at most [`MAX_GROUPS`] at a time.

use std::{collections::HashMap, os::fd::OwnedFd};

use serde::Serialize;

/// Counter groups open at once, at most.
pub const MAX_GROUPS: usize = 64;

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_COUNT_HW_CACHE_MISSES: u64 = 3;
const PERF_FORMAT_GROUP: u64 = 1 << 3;
const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;

/// Counter values over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub instructions: u64,
    pub cycles: u64,
    pub cache_misses: u64,
}

impl Counts {
    fn since(self, earlier: Self) -> Self {
        Self {
            instructions: self.instructions.saturating_sub(earlier.instructions),
            cycles: self.cycles.saturating_sub(earlier.cycles),
            cache_misses: self.cache_misses.saturating_sub(earlier.cache_misses),
        }
    }
}

/// What the counters say about a thread's code.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fingerprint {
    /// Instructions per cycle.
    pub ipc: f64,
    /// Last-level-cache misses per 1000 instructions.
    pub mpki: f64,
    pub instructions: u64,
}

impl Fingerprint {
    /// None until enough ran to mean anything (10 M instructions, ~3 ms
    /// of a busy core).
    pub fn of(counts: Counts) -> Option<Self> {
        if counts.instructions < 10_000_000 || counts.cycles == 0 {
            return None;
        }
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Some(Self {
            ipc: round(counts.instructions as f64 / counts.cycles as f64),
            mpki: round(counts.cache_misses as f64 * 1000.0 / counts.instructions as f64),
            instructions: counts.instructions,
        })
    }
}

struct Group {
    leader: OwnedFd,
    _members: [OwnedFd; 2],
    last: Counts,
}

/// Counter groups per thread id.
#[derive(Default)]
pub struct HardwareCounters {
    groups: HashMap<u32, Group>,
    pub open_errors: u64,
}

impl HardwareCounters {
    /// Starts counting thread `tid` (no-op when already counting, or at
    /// the cap). Fails where there is no PMU.
    pub fn follow(&mut self, tid: u32) -> std::io::Result<()> {
        if self.groups.contains_key(&tid) || self.groups.len() >= MAX_GROUPS {
            return Ok(());
        }
        let leader = open_counter(PERF_COUNT_HW_INSTRUCTIONS, tid, None)?;
        use std::os::fd::AsRawFd as _;
        let cycles = open_counter(PERF_COUNT_HW_CPU_CYCLES, tid, Some(leader.as_raw_fd()))?;
        let misses = open_counter(PERF_COUNT_HW_CACHE_MISSES, tid, Some(leader.as_raw_fd()))?;
        // SAFETY: an ioctl on our own perf fd; no pointer argument.
        unsafe { libc::ioctl(leader.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) };
        self.groups.insert(
            tid,
            Group {
                leader,
                _members: [cycles, misses],
                last: Counts::default(),
            },
        );
        Ok(())
    }

    /// The fingerprint of `tid` since the last read.
    pub fn read(&mut self, tid: u32) -> Option<Fingerprint> {
        let group = self.groups.get_mut(&tid)?;
        let now = read_group(&group.leader)?;
        let delta = now.since(group.last);
        group.last = now;
        Fingerprint::of(delta)
    }

    pub fn forget(&mut self, tid: u32) {
        self.groups.remove(&tid);
    }
}

fn open_counter(config: u64, tid: u32, group: Option<i32>) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd as _;
    // struct perf_event_attr, zeroed: type @0, size @4, config @8,
    // read_format @32, flags @40 (bit 0 disabled, bit 5 exclude_kernel).
    let mut attr = [0u64; 16];
    let size = size_of_val(&attr) as u64;
    attr[0] = u64::from(PERF_TYPE_HARDWARE) | (size << 32);
    attr[1] = config;
    attr[4] = PERF_FORMAT_GROUP;
    attr[5] = if group.is_none() { 1 } else { 0 } | (1 << 5);
    // SAFETY: perf_event_open reads `size` bytes of attr, which we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            tid as i32,
            -1,
            group.unwrap_or(-1),
            0u64,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// PERF_FORMAT_GROUP: nr, then one value per member, in open order.
fn read_group(leader: &OwnedFd) -> Option<Counts> {
    use std::os::fd::AsRawFd as _;
    let mut buf = [0u64; 4];
    // SAFETY: reads into our own buffer of the given size.
    let n = unsafe {
        libc::read(
            leader.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            size_of_val(&buf),
        )
    };
    parse_group(&buf, n)
}

fn parse_group(buf: &[u64; 4], bytes_read: isize) -> Option<Counts> {
    if bytes_read != 32 || buf[0] != 3 {
        return None;
    }
    Some(Counts {
        instructions: buf[1],
        cycles: buf[2],
        cache_misses: buf[3],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipc_and_mpki_from_counts() {
        // Recorded shape of a memory-bound hashing thread over 5 s on a
        // 3 GHz core: 1.2 G instructions per second at IPC 0.8, 3 misses
        // per kilo-instruction.
        let counts = Counts {
            instructions: 6_000_000_000,
            cycles: 7_500_000_000,
            cache_misses: 18_000_000,
        };
        let fp = Fingerprint::of(counts).unwrap();
        assert_eq!(fp.ipc, 0.8);
        assert_eq!(fp.mpki, 3.0);
        // Too little ran: no fingerprint.
        assert_eq!(
            Fingerprint::of(Counts {
                instructions: 1000,
                cycles: 1000,
                cache_misses: 0
            }),
            None
        );
        assert_eq!(
            Fingerprint::of(Counts {
                instructions: 20_000_000,
                cycles: 0,
                cache_misses: 0
            }),
            None
        );
    }

    #[test]
    fn deltas_survive_counter_resets_and_group_reads_are_checked() {
        let before = Counts {
            instructions: 100,
            cycles: 100,
            cache_misses: 5,
        };
        assert_eq!(Counts::default().since(before), Counts::default());
        assert_eq!(
            parse_group(&[3, 10, 20, 30], 32),
            Some(Counts {
                instructions: 10,
                cycles: 20,
                cache_misses: 30
            })
        );
        assert_eq!(parse_group(&[2, 10, 20, 0], 24), None);
        assert_eq!(parse_group(&[3, 10, 20, 30], -1), None);
    }

    #[test]
    fn a_thread_is_counted_where_a_pmu_exists_and_refused_cleanly_where_not() {
        let mut counters = HardwareCounters::default();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        match counters.follow(tid) {
            Ok(()) => {
                let mut x = 1u64;
                for i in 0..50_000_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                let fp = counters.read(tid).expect("a busy loop ran");
                assert!(fp.ipc > 0.0 && fp.instructions >= 50_000_000);
            }
            Err(err) => assert!(
                matches!(
                    err.raw_os_error(),
                    Some(libc::ENOENT | libc::EOPNOTSUPP | libc::EACCES | libc::ENODEV)
                ),
                "{err}"
            ),
        }
    }
}
