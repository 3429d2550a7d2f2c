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

use std::{
    collections::HashMap,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use perf_event_open_sys::{
    self as perf,
    bindings::{
        PERF_COUNT_HW_CACHE_MISSES, PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS,
        PERF_FLAG_FD_CLOEXEC, PERF_FORMAT_GROUP, PERF_TYPE_HARDWARE, perf_event_attr,
    },
};
use serde::Serialize;

/// Counter groups open at once, at most.
pub const MAX_GROUPS: usize = 64;

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
        let group = open_group(
            tid,
            PERF_TYPE_HARDWARE,
            [
                PERF_COUNT_HW_INSTRUCTIONS,
                PERF_COUNT_HW_CPU_CYCLES,
                PERF_COUNT_HW_CACHE_MISSES,
            ],
        )?;
        self.groups.insert(tid, group);
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

/// Three counters of `type_` on thread `tid`, read at once, counting
/// from now.
fn open_group(tid: u32, type_: u32, configs: [u32; 3]) -> std::io::Result<Group> {
    let [first, second, third] = configs.map(u64::from);
    let leader = open_counter(counter_attr(type_, first, true), tid, None)?;
    let second = open_counter(counter_attr(type_, second, false), tid, Some(&leader))?;
    let third = open_counter(counter_attr(type_, third, false), tid, Some(&leader))?;
    // SAFETY: an ioctl on our own perf fd, with an integer argument.
    if unsafe { perf::ioctls::ENABLE(leader.as_raw_fd(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Group {
        leader,
        _members: [second, third],
        last: Counts::default(),
    })
}

/// A counter of user-space events only: one of a group read at once
/// (PERF_FORMAT_GROUP), whose leader starts disabled until the group is
/// complete.
fn counter_attr(type_: u32, config: u64, leader: bool) -> perf_event_attr {
    let mut attr = perf_event_attr {
        type_,
        size: size_of::<perf_event_attr>() as u32,
        config,
        read_format: u64::from(PERF_FORMAT_GROUP),
        ..perf_event_attr::default()
    };
    attr.set_disabled(u64::from(leader));
    attr.set_exclude_kernel(1);
    attr
}

fn open_counter(
    mut attr: perf_event_attr,
    tid: u32,
    leader: Option<&OwnedFd>,
) -> std::io::Result<OwnedFd> {
    let pid = i32::try_from(tid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: `attr` is a whole perf_event_attr of our own (its size set)
    // that asks to count only; the group fd, if any, is an open one of
    // ours.
    let fd = unsafe {
        perf::perf_event_open(
            &mut attr,
            pid,
            -1,
            leader.map_or(-1, |fd| fd.as_raw_fd()),
            libc::c_ulong::from(PERF_FLAG_FD_CLOEXEC),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// PERF_FORMAT_GROUP: nr, then one value per member, in open order.
fn read_group(leader: &OwnedFd) -> Option<Counts> {
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
    fn counters_count_user_space_in_one_group_under_a_disabled_leader() {
        let leader = counter_attr(PERF_TYPE_HARDWARE, 1, true);
        assert_eq!(leader.type_, 0);
        assert_eq!(leader.config, 1);
        assert_eq!(leader.read_format, 1 << 3);
        assert_eq!(leader.size as usize, size_of::<perf_event_attr>());
        assert!(leader.size >= 128, "at least the fields set here");
        assert_eq!((leader.disabled(), leader.exclude_kernel()), (1, 1));
        let member = counter_attr(PERF_TYPE_HARDWARE, 3, false);
        assert_eq!(member.config, 3);
        assert_eq!((member.disabled(), member.exclude_kernel()), (0, 1));
        assert_eq!((member.exclude_user(), member.exclude_hv()), (0, 0));
        assert_eq!(member.sample_type, 0);
    }

    /// The same calls as for hardware counters, with software ones that
    /// every kernel with perf events has: the attribute's size, the group,
    /// enabling and the group read are checked even without a PMU.
    #[test]
    fn a_software_group_opens_enables_and_reads_through_the_same_calls() {
        use perf_event_open_sys::bindings::{
            PERF_COUNT_SW_CPU_CLOCK, PERF_COUNT_SW_PAGE_FAULTS, PERF_COUNT_SW_TASK_CLOCK,
            PERF_TYPE_SOFTWARE,
        };
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let configs = [
            PERF_COUNT_SW_TASK_CLOCK,
            PERF_COUNT_SW_CPU_CLOCK,
            PERF_COUNT_SW_PAGE_FAULTS,
        ];
        let group = match open_group(tid, PERF_TYPE_SOFTWARE, configs) {
            Ok(group) => group,
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::ENOSYS)
                ) =>
            {
                println!("perf events are not open to this process: {err}; skipped");
                return;
            }
            Err(err) => panic!("{err}"),
        };
        let mut x = 1u64;
        for i in 0..10_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let counts = read_group(&group.leader).expect("a group of three");
        // Nanoseconds of task clock, in the first place.
        assert!(counts.instructions > 0 && counts.cycles > 0, "{counts:?}");
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
